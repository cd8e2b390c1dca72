//! Integration tests of the lake crate, in one binary.

mod catalog;
mod lock;
mod table;
mod wal;
