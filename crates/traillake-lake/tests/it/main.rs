//! Integration tests of the lake crate, in one binary.

mod catalog;
mod lock;
mod selection;
mod table;
mod wal;
