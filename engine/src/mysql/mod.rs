//! Talking to MySQL-family servers: connections and sessions, error classification, identifier quoting.

pub mod classify;
pub mod conn;
pub mod quote;
