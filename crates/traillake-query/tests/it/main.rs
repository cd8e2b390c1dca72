//! Integration tests of the query crate, in one binary: the real sample queries over the real
//! trail files.

mod fixture;
mod samples;
mod slt;
mod wal;
