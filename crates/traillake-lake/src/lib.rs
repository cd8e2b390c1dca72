//! traillake's lake: the root on object storage (a local folder or `s3://bucket/prefix`), the lock
//! that makes one server its owner, and the catalog of event data stores persisted under it. It
//! knows nothing of HTTP, gRPC or SQL text.

pub mod catalog;
pub mod error;
pub mod lock;
pub mod root;

pub use catalog::{Catalog, EventDataStoreRecord};
pub use error::LakeError;
pub use lock::RootLock;
pub use root::{LakeRoot, RootLocation};
