//! traillake's server: the service layer (one handler per operation) and its front doors, the AWS
//! JSON gateway and gRPC (with Arrow Flight), on one listener, put together as a [`Server`] that
//! opens a lake root and runs, recording every call as account activity. It holds no storage or
//! query logic.

pub mod activity;
pub mod auth;
pub mod front;
pub mod gateway;
pub mod grpc;
pub mod server;
pub mod service;
pub mod sharing;
pub mod tls;

pub use auth::{Authenticator, Credentials};
pub use front::{FrontDoorSettings, serve};
pub use server::{Server, ServerConfig, ServerError};
pub use service::{Service, ServiceSettings};
pub use sharing::Recipients;
