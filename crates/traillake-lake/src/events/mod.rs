//! Events: their Arrow schemas, the reading of record files, and the turning of CloudTrail records
//! and integration (audit) events into rows of a store's table.

pub mod audit;
pub mod cloudtrail;
pub mod columns;
pub mod files;
pub mod json;
pub mod rows;
pub mod schema;

pub use audit::{AuditEnvelope, AuditProblem, InvalidAuditEvent, audit_row};
pub use cloudtrail::{InvalidRecord, cloudtrail_row};
pub use rows::{EventRow, EventRows};
pub use files::InvalidFile;
