//! Integration tests of the query crate, in one binary: the real sample queries over the real
//! trail files.

mod event_json;
mod fixture;
mod samples;
mod slt;
mod wal;
