//! ferry-verifier: proves source and destination hold the same rows (sha256 over a canonical row encoding).

pub mod canonical;
pub mod compare;

pub use compare::{verify, TableResult, VerifyOptions, VerifyReport};
