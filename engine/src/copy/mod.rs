//! Full data migration: key-range chunks copied by parallel workers, each chunk committed with its checkpoint.

pub mod displace;
pub mod load;
pub mod plan;
pub mod worker;

pub use worker::{run, CopyOptions, CopyReport};
