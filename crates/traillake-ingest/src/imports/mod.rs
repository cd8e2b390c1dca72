//! Imports of trail log files: which objects of a bucket are read ([`layout`]).

pub mod layout;
