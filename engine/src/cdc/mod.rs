//! Binlog change data capture: positions, the binlog stream, decoding row images, and applying them.

pub mod apply;
pub mod catalog;
pub mod compact;
pub mod ddl;
pub mod decode;
pub mod event;
pub mod file;
pub mod gtid;
pub mod pipeline;
pub mod position;
pub mod recopy;
pub mod scope;
pub mod session;
pub mod settings;
pub mod sql;
pub mod start;
pub mod stream;
pub mod sync;
