//! traillake's lake: the root on object storage (a local folder or `s3://bucket/prefix`), the lock
//! that makes one server its owner, the catalog of event data stores persisted under it, each
//! store's table and write-ahead log, and (re-exported from `traillake-events`) the events' schemas
//! and rows. It knows nothing of HTTP, gRPC or SQL text.

pub mod catalog;
pub mod conditional_put;
pub mod durable_local;
pub mod error;
pub mod federation;
pub mod generated_queries;
pub mod keys;
pub use traillake_events as events;
pub mod loader;
pub mod lock;
pub mod maintenance;
pub mod root;
pub mod signing_keys;
pub mod table;
pub mod trail_outbox;
pub mod wal;

pub use catalog::organization::Organization;
pub use catalog::{Catalog, ChannelRecord, DashboardRecord, EventDataStoreRecord, TaggedResource, TrailRecord};
pub use error::{LakeError, Result};
pub use lock::RootLock;
pub use root::{LakeRoot, RootLocation};
pub use table::{AppProgress, EventTable};
pub use wal::WriteAheadLog;
