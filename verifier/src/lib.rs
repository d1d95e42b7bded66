//! ferry-verifier: proves source and destination hold the same rows (sha256 over a canonical row encoding).

pub mod canonical;
pub mod compare;
pub mod diff;
pub mod digest;
pub mod online;
pub mod output;
pub mod repair;
pub mod since;

pub use compare::{verify, Mode, TableResult, VerifyOptions, VerifyReport};
