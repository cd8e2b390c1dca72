//! traillake's query engine: CloudTrail Lake's SQL dialect on DataFusion (store IDs in FROM, Trino
//! functions), planning against stores with retention applied, execution with the concurrency
//! limit and time limit, statistics from the executed plan, result pages, and the signed delivery
//! of results to S3, and CloudTrail Insights found in the stores' management events. It knows
//! nothing of HTTP or gRPC.

pub mod cluster;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod event_json;
pub mod functions;
pub mod history;
pub mod insights;
pub mod planner;
pub mod record;
pub mod render;
pub mod results;
pub mod set_operations;
pub mod statistics;
pub mod store_files;

/// The SQL front end (`traillake-sql`): the dialect parsed, checked and rewritten.
pub use traillake_sql as dialect;

pub use engine::{EngineSettings, QueryEngine, QueryTag, StoreGrant};
pub use error::{QueryError, Result};
pub use record::QueryRecord;
pub use results::{ArrowResults, ResultPage, ResultRows};
