//! Integration tests of the query crate, in one binary: the real sample queries over the real
//! trail files.

mod cluster;
mod event_json;
mod execute;
mod fixture;
mod samples;
mod slt;
mod wal;
