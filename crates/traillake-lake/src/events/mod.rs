//! Events: their Arrow schemas, the reading of record files, and the turning of records into
//! rows of a store's table.

pub mod cloudtrail;
pub mod columns;
pub mod files;
pub mod json;
pub mod schema;

pub use cloudtrail::{CloudTrailRows, EventRow, InvalidRecord, cloudtrail_row};
pub use files::InvalidFile;
