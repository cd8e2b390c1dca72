//! traillake's ingestion: events from outside AWS through channels (PutAuditEvents, with group
//! commit), and copies of CloudTrail trail log files from an S3-compatible bucket into an event
//! data store (imports). It writes through `traillake-lake` and knows nothing of HTTP, gRPC or SQL.

pub mod channels;
pub mod imports;
