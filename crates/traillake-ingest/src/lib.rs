//! traillake's ingestion: events from outside AWS through channels (PutAuditEvents), copies of
//! CloudTrail trail log files from an S3-compatible bucket into an event data store (imports), and
//! live CloudTrail records (traillake's own API calls, followed trails) put in the Event history
//! and the stores whose selectors take them, and the trails that log them (delivered to S3 as log
//! files and signed digests); the live paths write through group commit. It writes through `traillake-lake` and knows nothing of HTTP, gRPC or SQL.

pub mod channels;
pub mod event_context;
pub mod follow;
pub mod group_commit;
pub mod imports;
pub mod live;
pub mod trails;
