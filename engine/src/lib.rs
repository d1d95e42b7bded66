//! ferry-engine: moves MySQL-family databases between servers (schema, full copy) with resumable, checked steps.

pub mod admin;
pub mod alerts;
pub mod cdc;
pub mod codes;
pub mod config;
pub mod copy;
pub mod cutover;
pub mod error;
pub mod failpoint;
pub mod meta;
pub mod migration;
pub mod mysql;
pub mod precheck;
pub mod progress;
pub mod release;
pub mod retry;
pub mod schema;
pub mod status;
pub mod throttle;
pub mod value;

pub use error::{Error, Result};
