//! traillake's operations as data: the request and response shapes (generated from
//! `proto/traillake/v1/` and shared by the JSON gateway and gRPC), the validation of every member
//! against the botocore model's constraints, ARNs and resource references, page tokens, and
//! `ApiError` with the AWS error codes. This crate does no I/O.

pub mod arn;
pub mod audit_events;
pub mod channels;
pub mod context;
pub mod dashboards;
pub mod error;
pub mod event_configuration;
pub mod event_data_stores;
pub mod federation;
pub mod imports;
pub mod insights;
pub mod lookup_events;
pub mod operations;
pub mod paging;
pub mod queries;
pub mod resource_policy;
pub mod s3_location;
pub mod sample_queries;
pub mod selectors;
pub mod tags;
pub mod trails;
pub mod validate;
pub mod wire;

/// The generated shapes of `proto/traillake/v1/`.
#[allow(clippy::all, missing_docs)]
pub mod shapes {
    include!(concat!(env!("OUT_DIR"), "/traillake.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/wire_enums.rs"));
}

pub use context::RequestContext;
pub use error::{ApiError, ErrorCode, Result};
pub use operations::Operation;
