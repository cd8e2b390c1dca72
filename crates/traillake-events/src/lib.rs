//! Events: their Arrow schemas, the reading of record files, and the turning of CloudTrail records
//! and integration (audit) events into rows of a store's table.
//!
//! A crate of its own, apart from the lake's tables, so that what parses untrusted input builds
//! with Arrow alone (no DataFusion, no Delta): the fuzz targets in `fuzz/` build it in minutes.
//! `traillake-lake` re-exports it as `traillake_lake::events`. It does no I/O.

pub mod activity;
pub mod audit;
pub mod cloudtrail;
pub mod columns;
pub mod event_json;
pub mod files;
pub mod json;
pub mod rows;
pub mod schema;
pub mod selection;

pub use audit::{AuditEnvelope, AuditProblem, InvalidAuditEvent, audit_row};
pub use cloudtrail::{InvalidRecord, cloudtrail_row};
pub use files::InvalidFile;
pub use rows::{EventRow, EventRows};
