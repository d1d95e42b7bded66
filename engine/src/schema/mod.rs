//! Schema migration: read the source's objects, rewrite what must change, create them on the destination.

pub mod apply;
pub mod existing;
pub mod introspect;
pub mod model;
pub mod names;
pub mod reshape;
pub mod rewrite;
