//! `QueryEngine`: the life of CloudTrail Lake queries.
//!
//! - StartQuery checks the statement at once (dialect, stores, planning) and answers with a
//!   QueryId; the query runs in the background. At most [`EngineSettings::max_active_per_account`]
//!   queries of an account are QUEUED or RUNNING; [`EngineSettings::execution_slots`] of all
//!   accounts' queries execute at a time, the rest wait QUEUED.
//! - A query ends FINISHED, FAILED (with ErrorMessage), CANCELLED (CancelQuery stops the execution
//!   by dropping its stream) or TIMED_OUT (past [`EngineSettings::time_limit`]); the rows produced
//!   before a cancel or a time-out stay readable.
//! - Executing queries share a memory pool of [`EngineSettings::memory_bytes`]: sorts,
//!   aggregations and joins spill to disk to stay within it, the rows a query has produced so far
//!   count against it too, and a query that still cannot fit fails with `ResourcesExhausted` in
//!   its ErrorMessage instead of taking the server's memory.
//! - Once a query ended and its rows are kept under the root, they leave the pool for a cache of
//!   the results read lately, of at most [`EngineSettings::result_cache_bytes`]; GetQueryResults
//!   of a result no longer cached reads it back from the root.
//! - Queries execute on a runtime of their own, so that a CPU-bound plan never starves the
//!   server's requests (DataFusion's advice for services); cancelling drops the plan's stream, and
//!   its tasks stop at their next yield.
//! - Each query is kept under the root as `queries/<id>/query.json` (its record) and
//!   `queries/<id>/result.arrow` (its rows, Arrow IPC with the real types), so DescribeQuery and
//!   GetQueryResults work after a restart, for [`EngineSettings::result_retention`] after the
//!   query ended. A query that was QUEUED or RUNNING when the server stopped is FAILED on start.
//! - A query started with a DeliveryS3Uri has its results delivered, signed, once it FINISHED
//!   (see [`crate::delivery`]); DeliveryStatus is PENDING until then, CANCELLED or FAILED when the
//!   query ended otherwise (partial results are never delivered). A delivery the server stopped
//!   in is done again from the kept results when it starts, into the same folder.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, AsArray as _, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::ipc::CompressionType;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryConsumer, MemoryReservation, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use deltalake::DeltaTable;
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};
use traillake_api::s3_location::S3Location;
use traillake_api::shapes::{DeliveryStatus, QueryStatus};
use traillake_lake::{Catalog, EventDataStoreRecord, EventTable, LakeRoot};

use crate::delivery::keys::SigningKeys;
use crate::delivery::{Delivery, DeliveryFailure, folder};
use crate::dialect::prepare;
use crate::error::QueryError;
use crate::planner::{PlannedQuery, StoreSource, plan};
use crate::statistics::{ScanStatistics, measure, spilled_bytes};

const QUERIES: &str = "queries";

/// The limits of the engine.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Queries an account may have QUEUED or RUNNING at once (10 in CloudTrail Lake).
    pub max_active_per_account: usize,
    /// Queries of all accounts that execute at once.
    pub execution_slots: usize,
    /// How long a query may run before it is TIMED_OUT.
    pub time_limit: Duration,
    /// How long a query's record and results are kept after it ended.
    pub result_retention: Duration,
    /// The server's Region, written in the sign files of deliveries.
    pub region: String,
    /// How long a signing key of deliveries is current before the next one is made.
    pub signing_key_period: Duration,
    /// The compressed size at which a delivered result file is closed and the next one begun.
    pub delivery_file_bytes: usize,
    /// The memory the executing queries share; operators that can (sorts, aggregations, joins)
    /// spill to disk to stay within it, and a query that still needs more fails with DataFusion's
    /// `ResourcesExhausted` in its ErrorMessage.
    pub memory_bytes: usize,
    /// Where queries spill; the OS temporary folder when `None`.
    pub spill_directory: Option<std::path::PathBuf>,
    /// The memory the results of ended queries may take while they are read; the results read
    /// least lately are dropped from memory first (they stay under the root).
    pub result_cache_bytes: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_active_per_account: 10,
            execution_slots: 4,
            time_limit: Duration::from_secs(3600),
            result_retention: Duration::from_secs(7 * 24 * 3600),
            region: "us-east-1".to_string(),
            signing_key_period: Duration::from_secs(30 * 24 * 3600),
            delivery_file_bytes: 128 << 20,
            memory_bytes: 4 << 30,
            spill_directory: None,
            result_cache_bytes: 512 << 20,
        }
    }
}

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

/// A query's rows: its schema and batches.
#[derive(Debug, Clone)]
pub struct ResultRows {
    /// The Arrow schema of the rows.
    pub schema: SchemaRef,
    /// The batches, in result order.
    pub batches: Vec<RecordBatch>,
}

impl ResultRows {
    /// Returns no rows, of no columns: the rows of a query that never ran.
    pub fn empty() -> Self {
        Self {
            schema: Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            batches: Vec::new(),
        }
    }

    /// Returns the number of rows.
    pub fn len(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Returns true if there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the memory the batches take.
    pub fn memory_size(&self) -> usize {
        self.batches.iter().map(RecordBatch::get_array_memory_size).sum()
    }
}

/// The results of ended queries read lately, least lately read first, within a memory limit.
#[derive(Debug)]
struct ResultCache {
    limit: usize,
    bytes: usize,
    entries: VecDeque<(String, Arc<ResultRows>, usize)>,
}

impl ResultCache {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            bytes: 0,
            entries: VecDeque::new(),
        }
    }

    /// Returns a query's rows if they are cached, marking them read.
    fn get(&mut self, id: &str) -> Option<Arc<ResultRows>> {
        let position = self.entries.iter().position(|(cached, ..)| cached == id)?;
        let entry = self.entries.remove(position).expect("the position is in range");
        let rows = Arc::clone(&entry.1);
        self.entries.push_back(entry);
        Some(rows)
    }

    /// Caches a query's rows, dropping the results read least lately to stay within the limit.
    /// Rows larger than the limit are not cached.
    fn insert(&mut self, id: &str, rows: Arc<ResultRows>) {
        if let Some(position) = self.entries.iter().position(|(cached, ..)| cached == id) {
            let (_, _, size) = self.entries.remove(position).expect("the position is in range");
            self.bytes -= size;
        }
        let size = rows.memory_size();
        if size > self.limit {
            return;
        }
        while self.bytes + size > self.limit {
            let (_, _, dropped) = self
                .entries
                .pop_front()
                .expect("the cache holds more than the limit leaves");
            self.bytes -= dropped;
        }
        self.bytes += size;
        self.entries.push_back((id.to_string(), rows, size));
    }
}

/// A query the engine knows, with what is live while it runs.
struct QueryEntry {
    record: Mutex<QueryRecord>,
    /// The rows so far while the query runs (and all of them if they could not be kept under the
    /// root); `None` once they are kept, when the engine's result cache has them or reads them back.
    rows: Mutex<Option<Arc<ResultRows>>>,
    /// The memory pool's account of `rows`.
    rows_reservation: Mutex<Option<MemoryReservation>>,
    /// The physical plan while it executes, for live statistics.
    plan: Mutex<Option<Arc<dyn ExecutionPlan>>>,
    /// Set to true by CancelQuery.
    cancel: watch::Sender<bool>,
    /// Set to true once the query ended and its record and rows are final.
    ended: watch::Sender<bool>,
    /// Held while the query's end or its cancel is decided and kept, so that one comes after the
    /// other and neither is seen before it is kept.
    transition: tokio::sync::Mutex<()>,
}

impl QueryEntry {
    fn new(record: QueryRecord, rows: Option<Arc<ResultRows>>) -> Arc<Self> {
        let ended = !record.is_active();
        Arc::new(Self {
            record: Mutex::new(record),
            rows: Mutex::new(rows),
            rows_reservation: Mutex::new(None),
            plan: Mutex::new(None),
            cancel: watch::channel(false).0,
            ended: watch::channel(ended).0,
            transition: tokio::sync::Mutex::new(()),
        })
    }

    fn record(&self) -> QueryRecord {
        self.record.lock().expect("query record lock").clone()
    }
}

/// The threads queries execute on; dropped without waiting for plans still in a CPU-bound step.
struct QueryRuntime(Option<tokio::runtime::Runtime>);

impl QueryRuntime {
    fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("traillake-query")
            .enable_all()
            .build()?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("the runtime lives until dropped").handle()
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The query engine of a lake root.
pub struct QueryEngine {
    runtime: QueryRuntime,
    /// DataFusion's runtime shared by every query: object stores, Parquet metadata cache.
    datafusion: Arc<RuntimeEnv>,
    /// The last snapshot of each store's table, brought up to date at each query's start.
    snapshots: Mutex<HashMap<String, DeltaTable>>,
    root: LakeRoot,
    catalog: Arc<Catalog>,
    settings: EngineSettings,
    queries: Mutex<HashMap<String, Arc<QueryEntry>>>,
    /// The results of ended queries read lately.
    results: Mutex<ResultCache>,
    slots: Arc<Semaphore>,
    /// The keys that sign deliveries.
    keys: SigningKeys,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn record_path(id: &str) -> Path {
    Path::from(format!("{QUERIES}/{id}/query.json"))
}

fn result_path(id: &str) -> Path {
    Path::from(format!("{QUERIES}/{id}/result.arrow"))
}

impl QueryEngine {
    /// Opens the engine: loads the kept queries, forgets those past retention, and fails those
    /// that were running when the server stopped.
    pub async fn open(
        root: LakeRoot,
        catalog: Arc<Catalog>,
        settings: EngineSettings,
    ) -> Result<Arc<Self>, QueryError> {
        let runtime = QueryRuntime::new().map_err(|error| QueryError::Engine(error.into()))?;
        let keys = SigningKeys::open(root.clone(), settings.signing_key_period).await?;
        let engine = Arc::new(Self {
            keys,
            runtime,
            datafusion: datafusion_runtime(&settings)?,
            snapshots: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(settings.execution_slots.max(1))),
            root,
            catalog,
            results: Mutex::new(ResultCache::new(settings.result_cache_bytes)),
            settings,
            queries: Mutex::new(HashMap::new()),
        });
        let store = engine.root.store().clone();
        let records: Vec<_> = store
            .list(Some(&Path::from(QUERIES)))
            .try_filter(|meta| futures::future::ready(meta.location.filename() == Some("query.json")))
            .try_collect()
            .await?;
        let now = Utc::now();
        let mut interrupted = Vec::new();
        for meta in records {
            let bytes = store.get(&meta.location).await?.bytes().await?;
            let mut record: QueryRecord = match serde_json::from_slice(&bytes) {
                Ok(record) => record,
                Err(error) => {
                    tracing::warn!(path = %meta.location, %error, "skipping an unreadable query record");
                    continue;
                }
            };
            if record.is_active() {
                record.status = QueryStatus::Failed;
                record.error_message = Some("the server stopped while the query ran; start it again".to_string());
                record.ended = Some(now);
                if record.delivery_s3_uri.is_some() {
                    record.delivery_status = Some(DeliveryStatus::Failed);
                }
                engine.save_record(&record).await?;
            } else if record.delivery_status == Some(DeliveryStatus::Pending) {
                tracing::warn!(query_id = %record.id, "the server stopped while the query's results were delivered; delivering them again");
                interrupted.push(record.clone());
            }
            engine
                .queries
                .lock()
                .expect("queries lock")
                .insert(record.id.clone(), QueryEntry::new(record, None));
        }
        engine.forget_expired(now).await?;
        for record in interrupted {
            let resumed = Arc::clone(&engine);
            engine
                .runtime
                .handle()
                .spawn(async move { resumed.redeliver(record).await });
        }
        Ok(engine)
    }

    /// Returns the engine's settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Removes the queries that ended longer ago than results are kept; returns how many.
    pub async fn forget_expired(&self, now: DateTime<Utc>) -> Result<usize, QueryError> {
        let retention = chrono::Duration::from_std(self.settings.result_retention).unwrap_or(chrono::Duration::MAX);
        let expired: Vec<String> = {
            let queries = self.queries.lock().expect("queries lock");
            queries
                .iter()
                .filter(|(_, entry)| entry.record().ended.is_some_and(|ended| now - ended > retention))
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in &expired {
            let prefix = Path::from(format!("{QUERIES}/{id}"));
            let locations = self
                .root
                .store()
                .list(Some(&prefix))
                .map_ok(|meta| meta.location)
                .boxed();
            self.root
                .store()
                .delete_stream(locations)
                .try_collect::<Vec<_>>()
                .await?;
            self.queries.lock().expect("queries lock").remove(id);
        }
        Ok(expired.len())
    }

    async fn save_record(&self, record: &QueryRecord) -> Result<(), QueryError> {
        let bytes = serde_json::to_vec_pretty(record).expect("a query record serializes");
        self.root
            .store()
            .put(&record_path(&record.id), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Returns the account's stores that a statement may name, by ID.
    async fn account_stores(&self, account_id: &str) -> HashMap<String, EventDataStoreRecord> {
        self.catalog
            .event_data_stores(account_id)
            .await
            .into_iter()
            .map(|store| (store.id.clone(), store))
            .collect()
    }

    /// Checks and plans a statement for an account, and starts it; its results are delivered to
    /// `delivery_s3_uri` (checked by the API layer) when it finishes. Returns the QueryId.
    pub async fn start(
        self: &Arc<Self>,
        account_id: &str,
        statement: &str,
        delivery_s3_uri: Option<&str>,
    ) -> Result<String, QueryError> {
        let stores = self.account_stores(account_id).await;
        let mut sources: Vec<StoreSource> = Vec::new();
        let prepared = prepare::<QueryError>(statement, |written| {
            let store = resolve_store(&stores, account_id, written)?;
            if !sources.iter().any(|source| source.id == store.id) {
                sources.push(StoreSource {
                    id: store.id.clone(),
                    kind: store.kind,
                    retention_days: store.retention_days,
                    table: EventTable::new(&self.root, &store.id, store.kind),
                    snapshot: None,
                });
            }
            Ok(store.id.clone())
        })?;
        for source in &mut sources {
            let earlier = self.snapshots.lock().expect("snapshots lock").get(&source.id).cloned();
            source.snapshot = source.table.refresh(earlier).await?;
            if let Some(snapshot) = &source.snapshot {
                self.snapshots
                    .lock()
                    .expect("snapshots lock")
                    .insert(source.id.clone(), snapshot.clone());
            }
        }
        let now = Utc::now();
        let planned = plan(&prepared, &sources, now, &self.datafusion).await?;
        if let Some(uri) = delivery_s3_uri {
            check_bucket(uri).await?;
        }
        let record = QueryRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account_id.to_string(),
            statement: statement.to_string(),
            store_ids: sources.iter().map(|source| source.id.clone()).collect(),
            status: QueryStatus::Queued,
            error_message: None,
            created: now,
            started: None,
            ended: None,
            column_keys: planned.column_keys.clone(),
            scan: ScanStatistics::default(),
            result_rows: 0,
            delivery_s3_uri: delivery_s3_uri.map(str::to_string),
            delivery_status: delivery_s3_uri.map(|_| DeliveryStatus::Pending),
        };
        let entry = {
            let mut queries = self.queries.lock().expect("queries lock");
            let active = queries
                .values()
                .filter(|entry| {
                    let record = entry.record();
                    record.account_id == account_id && record.is_active()
                })
                .count();
            if active >= self.settings.max_active_per_account {
                return Err(QueryError::MaxConcurrentQueries(self.settings.max_active_per_account));
            }
            let entry = QueryEntry::new(record.clone(), None);
            queries.insert(record.id.clone(), Arc::clone(&entry));
            entry
        };
        if let Err(error) = self.save_record(&record).await {
            self.queries.lock().expect("queries lock").remove(&record.id);
            return Err(error);
        }
        let engine = Arc::clone(self);
        self.runtime
            .handle()
            .spawn(async move { engine.run(entry, planned).await });
        Ok(record.id)
    }

    /// Runs a started query to its end and keeps its results.
    async fn run(self: Arc<Self>, entry: Arc<QueryEntry>, planned: PlannedQuery) {
        let mut cancelled = entry.cancel.subscribe();
        let permit = tokio::select! {
            permit = Arc::clone(&self.slots).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = cancel_requested(&mut cancelled) => {
                self.finish(&entry, None).await;
                return;
            }
        };
        let id = {
            let mut record = entry.record.lock().expect("query record lock");
            record.status = QueryStatus::Running;
            record.started = Some(Utc::now());
            record.id.clone()
        };
        let outcome = self.execute(&entry, planned, &mut cancelled).await;
        drop(permit);
        if let Err(error) = &outcome {
            tracing::info!(query_id = %id, %error, "query failed");
        }
        self.finish(&entry, outcome.err()).await;
    }

    /// Executes the plan, gathering rows, until it ends, is cancelled or runs out of time.
    async fn execute(
        &self,
        entry: &QueryEntry,
        planned: PlannedQuery,
        cancelled: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let state = planned.context.state();
        let physical = state
            .create_physical_plan(&planned.plan)
            .await
            .map_err(|e| e.to_string())?;
        *entry.plan.lock().expect("plan lock") = Some(Arc::clone(&physical));
        let schema = physical.schema();
        *entry.rows.lock().expect("rows lock") = Some(Arc::new(ResultRows {
            schema,
            batches: Vec::new(),
        }));
        let id = entry.record().id;
        let reservation = MemoryConsumer::new(format!("query {id} results")).register(&self.datafusion.memory_pool);
        *entry.rows_reservation.lock().expect("reservation lock") = Some(reservation);
        let mut stream = execute_stream(physical, planned.context.task_ctx()).map_err(|e| e.to_string())?;
        let deadline = tokio::time::sleep(self.settings.time_limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                batch = stream.next() => match batch {
                    None => return Ok(()),
                    Some(Err(error)) => return Err(error.find_root().to_string()),
                    Some(Ok(batch)) if batch.num_rows() == 0 => {}
                    Some(Ok(batch)) => {
                        let batch = without_unused_view_data(batch);
                        if let Some(reservation) = entry.rows_reservation.lock().expect("reservation lock").as_mut() {
                            reservation.try_grow(batch.get_array_memory_size()).map_err(|error| error.find_root().to_string())?;
                        }
                        let mut rows = entry.rows.lock().expect("rows lock");
                        Arc::make_mut(rows.as_mut().expect("rows were set")).batches.push(batch);
                    }
                },
                () = cancel_requested(cancelled) => return Ok(()),
                () = &mut deadline => {
                    let mut record = entry.record.lock().expect("query record lock");
                    record.status = QueryStatus::TimedOut;
                    record.error_message = Some(format!(
                        "the query ran past its time limit of {} seconds",
                        self.settings.time_limit.as_secs()
                    ));
                    return Ok(());
                }
            }
        }
    }

    /// Records the end of a query: its status, statistics and results.
    async fn finish(&self, entry: &QueryEntry, error: Option<String>) {
        let plan = entry.plan.lock().expect("plan lock").take();
        let rows = entry.rows.lock().expect("rows lock").clone();
        let spilled_bytes = plan.as_ref().map_or(0, spilled_bytes);
        // The ended record is kept under the root before callers see it: a client told FINISHED
        // finds the same answer, and the results, after a crash.
        let _transition = entry.transition.lock().await;
        let mut record = entry.record.lock().expect("query record lock").clone();
        record.ended = Some(Utc::now());
        if let Some(plan) = &plan {
            record.scan = measure(plan);
        }
        record.result_rows = rows.as_ref().map_or(0, |rows| rows.len() as u64);
        match (record.status, error) {
            (QueryStatus::Cancelled | QueryStatus::TimedOut, _) => {}
            (_, Some(message)) => {
                record.status = QueryStatus::Failed;
                record.error_message = Some(error_message(&message));
            }
            (_, None) => record.status = QueryStatus::Finished,
        }
        let keeping = std::time::Instant::now();
        let mut kept_rows = None;
        if let Some(rows) = &rows {
            match self.save_rows(&record.id, rows).await {
                Ok(()) => kept_rows = Some(rows),
                Err(error) => tracing::error!(query_id = %record.id, %error, "could not keep the query's results"),
            }
        }
        if let Err(error) = self.save_record(&record).await {
            tracing::error!(query_id = %record.id, %error, "could not keep the query's record");
        }
        *entry.record.lock().expect("query record lock") = record.clone();
        if let Some(rows) = kept_rows {
            // Kept, and the record says the query ended: the rows leave the pool for the cache.
            self.results
                .lock()
                .expect("results lock")
                .insert(&record.id, Arc::clone(rows));
            *entry.rows.lock().expect("rows lock") = None;
            entry.rows_reservation.lock().expect("reservation lock").take();
        }
        entry.ended.send_replace(true);
        tracing::info!(
            query_id = %record.id,
            status = ?record.status,
            rows = record.result_rows,
            events_scanned = record.scan.events_scanned,
            bytes_scanned = record.scan.bytes_scanned,
            spilled_bytes,
            execution_ms = record.execution_millis(Utc::now()),
            keeping_ms = keeping.elapsed().as_secs_f64() * 1000.0,
            "query ended"
        );
        if record.delivery_s3_uri.is_some() {
            self.finish_delivery(record, rows.as_deref()).await;
        }
    }

    /// Delivers a FINISHED query's results (nothing for a query that ended otherwise) and keeps
    /// the DeliveryStatus.
    async fn finish_delivery(&self, record: QueryRecord, rows: Option<&ResultRows>) {
        let status = match record.status {
            QueryStatus::Finished => match self.deliver(&record, rows).await {
                Ok(()) => DeliveryStatus::Success,
                Err(failure) => {
                    tracing::warn!(query_id = %record.id, status = ?failure.status, error = %failure, "delivering the results failed");
                    failure.status
                }
            },
            QueryStatus::Cancelled => DeliveryStatus::Cancelled,
            _ => DeliveryStatus::Failed,
        };
        self.keep_delivery_status(record, status).await;
    }

    /// Sets a query's DeliveryStatus and keeps its record.
    async fn keep_delivery_status(&self, mut record: QueryRecord, status: DeliveryStatus) {
        record.delivery_status = Some(status);
        if let Some(entry) = self.queries.lock().expect("queries lock").get(&record.id) {
            entry.record.lock().expect("query record lock").delivery_status = Some(status);
        }
        if let Err(error) = self.save_record(&record).await {
            tracing::error!(query_id = %record.id, %error, "could not keep the query's record");
        }
    }

    /// Delivers the kept results of a FINISHED query whose delivery the server stopped in.
    async fn redeliver(&self, record: QueryRecord) {
        match self.load_rows(&record.id).await {
            Ok(rows) if rows.len() as u64 == record.result_rows => self.finish_delivery(record, Some(&rows)).await,
            Ok(rows) => {
                tracing::error!(query_id = %record.id, kept = rows.len(), rows = record.result_rows, "the kept results are incomplete; not delivering them");
                self.keep_delivery_status(record, DeliveryStatus::Failed).await;
            }
            Err(error) => {
                tracing::error!(query_id = %record.id, %error, "could not read the results to deliver");
                self.keep_delivery_status(record, DeliveryStatus::Failed).await;
            }
        }
    }

    async fn deliver(&self, record: &QueryRecord, rows: Option<&ResultRows>) -> Result<(), DeliveryFailure> {
        let uri = record.delivery_s3_uri.as_deref().unwrap_or_default();
        let target =
            S3Location::read(uri).map_err(|problem| DeliveryFailure::failed(format!("{uri} {}", problem.reason())))?;
        let bucket = traillake_lake::root::s3_bucket(&target.bucket)
            .map_err(|error| DeliveryFailure::failed(error.to_string()))?;
        let now = Utc::now();
        let key = self.keys.current(now).await.map_err(|error| DeliveryFailure {
            status: DeliveryStatus::FailedSigningFile,
            message: format!("no signing key: {error}"),
        })?;
        let empty = ResultRows::empty();
        let delivery = Delivery {
            bucket,
            // The day the query ended, so that a delivery done again writes over the same files.
            folder: folder(&target, &record.account_id, &record.id, record.ended.unwrap_or(now)),
            column_keys: &record.column_keys,
            key: &key,
            region: &self.settings.region,
            max_file_bytes: self.settings.delivery_file_bytes,
        };
        let sign_file = delivery.deliver(rows.unwrap_or(&empty), now).await?;
        tracing::info!(query_id = %record.id, files = sign_file.files.len(), folder = %delivery.folder, "delivered the results");
        Ok(())
    }

    /// Returns the signing keys of deliveries.
    pub fn signing_keys(&self) -> &SigningKeys {
        &self.keys
    }

    async fn save_rows(&self, id: &str, rows: &ResultRows) -> Result<(), QueryError> {
        let mut buffer = Vec::new();
        {
            // LZ4: results are mostly text (eventJson) and shrink about fourfold, for less to write
            // and fsync before FINISHED, and less disk for the seven days they are kept.
            let options = IpcWriteOptions::default()
                .try_with_compression(Some(CompressionType::LZ4_FRAME))
                .map_err(datafusion::error::DataFusionError::from)?;
            let mut writer = FileWriter::try_new_with_options(&mut buffer, &rows.schema, options)
                .map_err(datafusion::error::DataFusionError::from)?;
            for batch in &rows.batches {
                writer.write(batch).map_err(datafusion::error::DataFusionError::from)?;
            }
            writer.finish().map_err(datafusion::error::DataFusionError::from)?;
        }
        self.root
            .store()
            .put(&result_path(id), PutPayload::from(buffer))
            .await?;
        Ok(())
    }

    fn entry(&self, account_id: &str, id: &str) -> Result<Arc<QueryEntry>, QueryError> {
        let queries = self.queries.lock().expect("queries lock");
        match queries.get(id) {
            Some(entry) if entry.record().account_id == account_id => Ok(Arc::clone(entry)),
            _ => Err(QueryError::QueryNotFound(id.to_string())),
        }
    }

    /// Returns a query of the account, with its live statistics while it runs.
    pub fn describe(&self, account_id: &str, id: &str) -> Result<QueryRecord, QueryError> {
        Ok(live_record(self.entry(account_id, id)?.as_ref()))
    }

    /// Waits until a query of the account ended (at once if it has), and returns its final record.
    pub async fn wait_ended(&self, account_id: &str, id: &str) -> Result<QueryRecord, QueryError> {
        let entry = self.entry(account_id, id)?;
        let mut ended = entry.ended.subscribe();
        // The sender lives in the entry held here, so the channel never closes while waiting.
        let _ = ended.wait_for(|ended| *ended).await;
        Ok(entry.record())
    }

    /// Returns a query's record and its rows so far (all of them once it ended).
    pub async fn results(&self, account_id: &str, id: &str) -> Result<(QueryRecord, Arc<ResultRows>), QueryError> {
        let entry = self.entry(account_id, id)?;
        // The rows before the record: `finish` lets go of the rows only after the record ended.
        let live_rows = entry.rows.lock().expect("rows lock").clone();
        let record = live_record(&entry);
        if let Some(rows) = live_rows {
            return Ok((record, rows));
        }
        if record.is_active() || record.started.is_none() {
            return Ok((record, Arc::new(ResultRows::empty())));
        }
        if let Some(rows) = self.results.lock().expect("results lock").get(id) {
            return Ok((record, rows));
        }
        let rows = Arc::new(self.load_rows(id).await?);
        self.results.lock().expect("results lock").insert(id, Arc::clone(&rows));
        Ok((record, rows))
    }

    async fn load_rows(&self, id: &str) -> Result<ResultRows, QueryError> {
        let bytes = match self.root.store().get(&result_path(id)).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(ResultRows::empty());
            }
            Err(error) => return Err(error.into()),
        };
        let reader =
            FileReader::try_new(std::io::Cursor::new(bytes), None).map_err(datafusion::error::DataFusionError::from)?;
        let schema = reader.schema();
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(datafusion::error::DataFusionError::from)?;
        Ok(ResultRows { schema, batches })
    }

    /// Cancels a QUEUED or RUNNING query; returns its record, now CANCELLED.
    pub async fn cancel(&self, account_id: &str, id: &str) -> Result<QueryRecord, QueryError> {
        let entry = self.entry(account_id, id)?;
        let _transition = entry.transition.lock().await;
        let mut record = entry.record();
        if !record.is_active() {
            return Err(QueryError::InactiveQuery(id.to_string(), status_name(record.status)));
        }
        record.status = QueryStatus::Cancelled;
        if record.delivery_s3_uri.is_some() {
            record.delivery_status = Some(DeliveryStatus::Cancelled);
        }
        self.save_record(&record).await?;
        {
            // The query may have gone from QUEUED to RUNNING meanwhile: only the status changes.
            let mut current = entry.record.lock().expect("query record lock");
            current.status = record.status;
            current.delivery_status = record.delivery_status;
        }
        entry.cancel.send_replace(true);
        Ok(record)
    }

    /// Returns the account's queries that read the store, newest first.
    pub fn list(&self, account_id: &str, store_id: &str) -> Vec<QueryRecord> {
        let queries = self.queries.lock().expect("queries lock");
        let mut records: Vec<QueryRecord> = queries
            .values()
            .map(|entry| entry.record())
            .filter(|record| record.account_id == account_id && record.store_ids.iter().any(|id| id == store_id))
            .collect();
        records.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        records
    }
}

/// Returns a batch whose string and binary view columns hold only the bytes of their own rows.
///
/// A scan's view columns share the buffers of the pages they were decoded from, so a result of a
/// few rows would otherwise keep (in memory and in its saved file) megabytes of other rows' data: a
/// one-row `SELECT *` was saved as a 1 MB file. Views nested in structs and lists are left as they
/// are; the scans produce views at the top level only.
fn without_unused_view_data(batch: RecordBatch) -> RecordBatch {
    if !batch
        .columns()
        .iter()
        .any(|column| matches!(column.data_type(), DataType::Utf8View | DataType::BinaryView))
    {
        return batch;
    }
    let columns = batch
        .columns()
        .iter()
        .map(|column| match column.data_type() {
            DataType::Utf8View => Arc::new(column.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(column.as_binary_view().gc()) as ArrayRef,
            _ => Arc::clone(column),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns).expect("the same columns under the same schema")
}

/// Returns an entry's record with the statistics and row count of the moment while it runs.
fn live_record(entry: &QueryEntry) -> QueryRecord {
    let mut record = entry.record();
    if let Some(plan) = entry.plan.lock().expect("plan lock").as_ref() {
        record.scan = measure(plan);
    }
    if let Some(rows) = entry.rows.lock().expect("rows lock").as_ref() {
        record.result_rows = rows.len() as u64;
    }
    record
}

/// Returns once CancelQuery asked for the query to stop.
async fn cancel_requested(cancelled: &mut watch::Receiver<bool>) {
    if cancelled.wait_for(|cancel| *cancel).await.is_err() {
        // The sender lives as long as the query's entry, so this does not happen; wait forever.
        std::future::pending::<()>().await;
    }
}

/// Returns the store a statement names (an ID or an ARN of the account), or why it cannot be read.
fn resolve_store<'a>(
    stores: &'a HashMap<String, EventDataStoreRecord>,
    account_id: &str,
    written: &str,
) -> Result<&'a EventDataStoreRecord, QueryError> {
    let not_a_store =
        || QueryError::InvalidStatement(format!("{written} in FROM is not an event data store of this account"));
    let id = match written.strip_prefix("arn:") {
        Some(_) => {
            let arn = traillake_api::arn::CloudTrailArn::parse(written).ok_or_else(not_a_store)?;
            if arn.account_id != account_id {
                return Err(not_a_store());
            }
            arn.resource_id.to_ascii_lowercase()
        }
        None => written.to_ascii_lowercase(),
    };
    let store = stores.get(&id).ok_or_else(not_a_store)?;
    if !store.is_active() {
        return Err(QueryError::InactiveEventDataStore(store.id.clone()));
    }
    Ok(store)
}

/// Checks that the bucket of a `DeliveryS3Uri` can be listed on the configured S3 endpoint.
async fn check_bucket(uri: &str) -> Result<(), QueryError> {
    let target = S3Location::read(uri)
        .map_err(|problem| QueryError::S3BucketDoesNotExist(uri.to_string(), problem.reason().to_string()))?;
    let unreachable = |reason: String| QueryError::S3BucketDoesNotExist(target.bucket.clone(), reason);
    let bucket = traillake_lake::root::s3_bucket(&target.bucket).map_err(|error| unreachable(error.to_string()))?;
    let prefix = (!target.prefix.is_empty()).then(|| Path::from(target.prefix.trim_end_matches('/')));
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        bucket.list(prefix.as_ref()).next().await
    })
    .await;
    match first {
        Err(_) => Err(unreachable("it did not answer within 10 seconds".to_string())),
        Ok(Some(Err(object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }))) => {
            Err(QueryError::InsufficientS3BucketPolicy(target.bucket.clone()))
        }
        Ok(Some(Err(error))) => Err(unreachable(error.to_string())),
        Ok(_) => Ok(()),
    }
}

/// Returns DataFusion's runtime of the engine's queries: a memory pool of
/// [`EngineSettings::memory_bytes`] shared fairly among the operators that spill (and naming the
/// largest consumers when it runs out), and the folder they spill to.
fn datafusion_runtime(settings: &EngineSettings) -> Result<Arc<RuntimeEnv>, QueryError> {
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(settings.memory_bytes),
        NonZeroUsize::new(3).expect("3 is not 0"),
    );
    let mode = match &settings.spill_directory {
        Some(folder) => DiskManagerMode::Directories(vec![folder.clone()]),
        None => DiskManagerMode::OsTmpDirectory,
    };
    Ok(RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
        .build_arc()?)
}

/// Returns an ErrorMessage within the model's 4..1000 characters.
fn error_message(message: &str) -> String {
    let mut text: String = message.chars().take(1000).collect();
    while text.chars().count() < 4 {
        text.push('.');
    }
    text
}

/// Returns the AWS name of a status.
pub fn status_name(status: QueryStatus) -> &'static str {
    match status {
        QueryStatus::Unspecified => "UNSPECIFIED",
        QueryStatus::Queued => "QUEUED",
        QueryStatus::Running => "RUNNING",
        QueryStatus::Finished => "FINISHED",
        QueryStatus::Failed => "FAILED",
        QueryStatus::Cancelled => "CANCELLED",
        QueryStatus::TimedOut => "TIMED_OUT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(bytes: usize) -> Arc<ResultRows> {
        use datafusion::arrow::array::UInt8Array;
        let column: ArrayRef = Arc::new(UInt8Array::from(vec![0u8; bytes]));
        let batch = RecordBatch::try_from_iter([("b", column)]).unwrap();
        Arc::new(ResultRows {
            schema: batch.schema(),
            batches: vec![batch],
        })
    }

    #[test]
    fn result_cache_drops_the_results_read_least_lately() {
        let size = rows_of(1000).memory_size();
        let mut cache = ResultCache::new(size * 2);
        cache.insert("a", rows_of(1000));
        cache.insert("b", rows_of(1000));
        assert!(cache.get("a").is_some(), "a is read: b is now read least lately");
        cache.insert("c", rows_of(1000));
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        assert_eq!(cache.bytes, size * 2);
        // Larger than the whole cache: not kept, and nothing dropped for it.
        cache.insert("huge", rows_of(10_000));
        assert!(cache.get("huge").is_none() && cache.get("a").is_some() && cache.get("c").is_some());
    }
}
