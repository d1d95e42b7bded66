//! Binlog change data capture: positions, the binlog stream, and decoding row images into ferry's values.

pub mod decode;
pub mod position;
pub mod stream;
