//! traillake's ingestion: copying CloudTrail trail log files from an S3-compatible bucket into an
//! event data store (imports). It writes through `traillake-lake` and knows nothing of HTTP, gRPC
//! or SQL.

pub mod imports;
