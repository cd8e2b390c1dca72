//! `QueryRecord`: what is kept of a query under the root, as `queries/<id>/query.json`, so that
//! DescribeQuery, ListQueries and GetQueryResults answer the same after a restart; and the folder
//! `queries/<id>/` that holds it with the query's results ([`crate::results`]) until it is forgotten.

use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};
use traillake_api::shapes::{DeliveryStatus, QueryStatus};
use traillake_lake::LakeRoot;

use crate::Result;
use crate::statistics::ScanStatistics;

/// The folder under the root that holds one folder per query.
const QUERIES: &str = "queries";

/// What the engine keeps of a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    /// The QueryId.
    pub id: String,
    /// The account that started it.
    pub account_id: String,
    /// The statement as sent.
    pub statement: String,
    /// The IDs of the stores it reads.
    pub store_ids: Vec<String>,
    /// Its status.
    pub status: QueryStatus,
    /// Why it FAILED (or was TIMED_OUT).
    pub error_message: Option<String>,
    /// When StartQuery accepted it.
    pub created: DateTime<Utc>,
    /// When it started executing.
    pub started: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended: Option<DateTime<Utc>>,
    /// The result column keys.
    pub column_keys: Vec<String>,
    /// What its scans read, final once it ended.
    pub scan: ScanStatistics,
    /// Result rows produced (so far).
    pub result_rows: u64,
    /// Where the results are delivered, when StartQuery asked for it.
    #[serde(default)]
    pub delivery_s3_uri: Option<String>,
    /// How the delivery went, when there is one.
    #[serde(default)]
    pub delivery_status: Option<DeliveryStatus>,
    /// The dashboard widget's alias it ran under, if any.
    #[serde(default)]
    pub query_alias: Option<String>,
    /// The dashboard refresh it belongs to, if any.
    #[serde(default)]
    pub refresh_id: Option<String>,
    /// The prompt of the generated query it runs, if any.
    #[serde(default)]
    pub prompt: Option<String>,
}

impl QueryRecord {
    /// Returns true while the query is QUEUED or RUNNING.
    pub fn is_active(&self) -> bool {
        matches!(self.status, QueryStatus::Queued | QueryStatus::Running)
    }

    /// Returns the execution time in milliseconds, up to `now` while it runs.
    pub fn execution_millis(&self, now: DateTime<Utc>) -> i64 {
        match self.started {
            Some(started) => (self.ended.unwrap_or(now) - started).num_milliseconds().max(0),
            None => 0,
        }
    }
}

/// Returns the path of a file of a query's folder.
pub(crate) fn query_file(id: &str, name: &str) -> Path {
    Path::from(format!("{QUERIES}/{id}/{name}"))
}

/// Keeps a query's record under the root, over the one kept before.
pub(crate) async fn save(root: &LakeRoot, record: &QueryRecord) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(record).expect("a query record serializes");
    root.store()
        .put(&query_file(&record.id, "query.json"), PutPayload::from(bytes))
        .await?;
    Ok(())
}

/// Returns every query record kept under the root; a record that cannot be read is logged and
/// skipped.
pub(crate) async fn load_all(root: &LakeRoot) -> Result<Vec<QueryRecord>> {
    let store = root.store();
    let metas: Vec<_> = store
        .list(Some(&Path::from(QUERIES)))
        .try_filter(|meta| futures::future::ready(meta.location.filename() == Some("query.json")))
        .try_collect()
        .await?;
    let mut records = Vec::with_capacity(metas.len());
    for meta in metas {
        let bytes = store.get(&meta.location).await?.bytes().await?;
        match serde_json::from_slice(&bytes) {
            Ok(record) => records.push(record),
            Err(error) => tracing::warn!(path = %meta.location, %error, "skipping an unreadable query record"),
        }
    }
    Ok(records)
}

/// Deletes a query's folder: its record and its results.
pub(crate) async fn forget(root: &LakeRoot, id: &str) -> Result<()> {
    let prefix = Path::from(format!("{QUERIES}/{id}"));
    let locations = root.store().list(Some(&prefix)).map_ok(|meta| meta.location).boxed();
    root.store().delete_stream(locations).try_collect::<Vec<_>>().await?;
    Ok(())
}
