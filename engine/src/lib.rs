//! ferry-engine: moves MySQL-family databases between servers (schema, full copy) with resumable, checked steps.

pub mod cdc;
pub mod codes;
pub mod config;
pub mod copy;
pub mod error;
pub mod meta;
pub mod migration;
pub mod mysql;
pub mod precheck;
pub mod progress;
pub mod schema;
pub mod status;
pub mod value;

pub use error::{Error, Result};
