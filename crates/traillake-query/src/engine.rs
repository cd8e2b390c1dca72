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
//! - Each query is kept under the root, its record ([`crate::record`]) and its rows
//!   ([`crate::results`]), so DescribeQuery and GetQueryResults work after a restart, for [`EngineSettings::result_retention`] after the
//!   query ended. A query that was QUEUED or RUNNING when the server stopped is FAILED on start.
//! - A query started with a DeliveryS3Uri has its results delivered, signed, once it FINISHED
//!   (see [`crate::delivery`]); DeliveryStatus is PENDING until then, CANCELLED or FAILED when the
//!   query ended otherwise (partial results are never delivered). A delivery the server stopped
//!   in is done again from the kept results when it starts, into the same folder.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryConsumer, MemoryReservation, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion_distributed::display_plan_ascii;
use deltalake::DeltaTable;
use futures::StreamExt as _;
use tokio::sync::{Semaphore, watch};
use traillake_api::insights::MetricQuery;
use traillake_api::lookup_events::Lookup;
use traillake_api::shapes::{DeliveryStatus, QueryStatus};
use traillake_api::wire::WireEnum as _;
use traillake_lake::{Catalog, EventDataStoreRecord, EventTable, LakeRoot};
use traillake_sql::prepare;

use crate::cluster::{self, Cluster, ClusterSettings};
use crate::delivery::keys::SigningKeys;
use crate::delivery::{DeliveryTarget, check_bucket, deliver_query};
use crate::history::{FoundEvent, insights_metric_counts, lookup_events};
use crate::insights::Insights;
use crate::insights::detector::DetectorSettings;
use crate::planner::{PlannedQuery, StoreSource, plan};
use crate::record::{self, QueryRecord};
use crate::results::{ResultRows, ResultStore, without_unused_view_data};
use crate::statistics::{ScanStatistics, measure, spilled_bytes};
use crate::{QueryError, Result};

/// The limits of the engine.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Queries an account may have QUEUED or RUNNING at once (10 in CloudTrail Lake).
    pub max_active_per_account: usize,
    /// Queries of all accounts that execute at once.
    pub execution_slots: usize,
    /// How long a query may run before it is TIMED_OUT.
    pub time_limit: Duration,
    /// How long DescribeQuery of a QUEUED or RUNNING query waits for it to end before answering.
    pub describe_wait: Duration,
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
    /// How often the stores with Insights types are searched for Insights.
    pub insights_interval: Duration,
    /// The rule's parameters.
    pub insights_detector: DetectorSettings,
    /// The workers queries with large scans run on; none runs every query in the server.
    pub cluster: Option<ClusterSettings>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_active_per_account: 10,
            execution_slots: 4,
            time_limit: Duration::from_secs(3600),
            describe_wait: Duration::from_millis(100),
            result_retention: Duration::from_secs(7 * 24 * 3600),
            region: "us-east-1".to_string(),
            signing_key_period: Duration::from_secs(30 * 24 * 3600),
            delivery_file_bytes: 128 << 20,
            memory_bytes: 4 << 30,
            spill_directory: None,
            result_cache_bytes: 512 << 20,
            insights_interval: Duration::from_secs(60),
            insights_detector: DetectorSettings::default(),
            cluster: None,
        }
    }
}

/// How far a query is: what the entry's watch tells those who wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// QUEUED or RUNNING.
    Active,
    /// CancelQuery kept CANCELLED; the execution is stopping.
    Cancelling,
    /// The record and the rows are final and kept.
    Ended,
}

/// What is known of a query while it runs, changed only under the entry's one lock.
struct QueryState {
    record: QueryRecord,
    /// The rows so far while the query runs (and all of them if they could not be kept under the
    /// root); `None` once they are kept, when the engine's result store has them.
    rows: Option<Arc<ResultRows>>,
    /// The memory pool's account of `rows`.
    reservation: Option<MemoryReservation>,
    /// The physical plan while it executes, for live statistics.
    plan: Option<Arc<dyn ExecutionPlan>>,
}

impl QueryState {
    /// Returns the record with the statistics and row count of the moment while the query runs.
    fn live_record(&self) -> QueryRecord {
        let mut record = self.record.clone();
        if let Some(plan) = &self.plan {
            record.scan = measure(plan);
        }
        if let Some(rows) = &self.rows {
            record.result_rows = rows.len() as u64;
        }
        record
    }
}

/// What a query is run for, besides itself: a dashboard widget's alias and refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryTag {
    /// The widget's QueryAlias.
    pub query_alias: Option<String>,
    /// The refresh's RefreshId.
    pub refresh_id: Option<String>,
    /// The prompt of a generated query (GenerateQuery), which DescribeQuery shows.
    pub prompt: Option<String>,
}

/// A query the engine knows. Its end and its cancel are each decided and kept under the root
/// while the state's lock is held, so one comes after the other and neither is seen before it is
/// kept.
struct QueryEntry {
    account_id: String,
    state: tokio::sync::Mutex<QueryState>,
    phase: watch::Sender<Phase>,
}

impl QueryEntry {
    fn new(record: QueryRecord) -> Arc<Self> {
        let phase = if record.is_active() {
            Phase::Active
        } else {
            Phase::Ended
        };
        Arc::new(Self {
            account_id: record.account_id.clone(),
            state: tokio::sync::Mutex::new(QueryState {
                record,
                rows: None,
                reservation: None,
                plan: None,
            }),
            phase: watch::channel(phase).0,
        })
    }

    fn is_active(&self) -> bool {
        *self.phase.borrow() == Phase::Active
    }

    async fn record(&self) -> QueryRecord {
        self.state.lock().await.record.clone()
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

/// Whether a store's resource policy lets another account's query read it
/// ([`QueryEngine::start_shared`]).
pub type StoreGrant<'a> = &'a (dyn Fn(&EventDataStoreRecord) -> bool + Send + Sync);

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
    /// The results of ended queries, kept and read lately.
    results: ResultStore,
    slots: Arc<Semaphore>,
    /// The keys that sign deliveries.
    keys: Arc<SigningKeys>,
    /// The finding of Insights in the stores that have Insights types.
    insights: Arc<Insights>,
    /// The workers, when queries may run on them.
    cluster: Option<Cluster>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// Opens the engine: loads the kept queries, forgets those past retention, and fails those
    /// that were running when the server stopped.
    pub async fn open(root: LakeRoot, catalog: Arc<Catalog>, settings: EngineSettings) -> Result<Arc<Self>> {
        let runtime = QueryRuntime::new().map_err(|error| QueryError::Engine(error.into()))?;
        let keys = Arc::new(SigningKeys::open(root.clone(), settings.signing_key_period).await?);
        let datafusion = datafusion_runtime(&settings)?;
        let insights = Arc::new(Insights::new(
            root.clone(),
            Arc::clone(&catalog),
            Arc::clone(&datafusion),
            settings.region.clone(),
            settings.insights_detector.clone(),
            settings.insights_interval,
        ));
        let cluster = match &settings.cluster {
            Some(cluster) => Some(Cluster::start(cluster.clone(), &root).await),
            None => None,
        };
        let engine = Arc::new(Self {
            cluster,
            keys,
            insights,
            runtime,
            datafusion,
            snapshots: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(settings.execution_slots.max(1))),
            results: ResultStore::new(root.clone(), settings.result_cache_bytes),
            root,
            catalog,
            settings,
            queries: Mutex::new(HashMap::new()),
        });
        let now = Utc::now();
        let mut interrupted = Vec::new();
        for mut record in record::load_all(&engine.root).await? {
            if record.is_active() {
                record.status = QueryStatus::Failed;
                record.error_message = Some("the server stopped while the query ran; start it again".to_string());
                record.ended = Some(now);
                if record.delivery_s3_uri.is_some() {
                    record.delivery_status = Some(DeliveryStatus::Failed);
                }
                record::save(&engine.root, &record).await?;
            } else if record.delivery_status == Some(DeliveryStatus::Pending) {
                tracing::warn!(query_id = %record.id, "the server stopped while the query's results were delivered; delivering them again");
                interrupted.push(record.clone());
            }
            engine
                .queries
                .lock()
                .expect("queries lock")
                .insert(record.id.clone(), QueryEntry::new(record));
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

    /// Returns every query the engine knows.
    fn entries(&self) -> Vec<Arc<QueryEntry>> {
        self.queries.lock().expect("queries lock").values().cloned().collect()
    }

    /// Removes the queries that ended longer ago than results are kept; returns how many.
    pub async fn forget_expired(&self, now: DateTime<Utc>) -> Result<usize> {
        let retention = chrono::Duration::from_std(self.settings.result_retention).unwrap_or(chrono::Duration::MAX);
        let mut expired = Vec::new();
        for entry in self.entries() {
            let record = entry.record().await;
            if record.ended.is_some_and(|ended| now - ended > retention) {
                expired.push(record.id);
            }
        }
        for id in &expired {
            record::forget(&self.root, id).await?;
            self.queries.lock().expect("queries lock").remove(id);
        }
        Ok(expired.len())
    }

    /// Forgets the queries past result retention every `every`, for ever.
    pub async fn forget_expired_every(&self, every: Duration) {
        loop {
            match self.forget_expired(Utc::now()).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "forgot queries past result retention"),
                Err(error) => tracing::warn!(%error, "forgetting expired queries failed; will retry"),
            }
            tokio::time::sleep(every).await;
        }
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

    /// Checks and plans a statement for an account without running it: what StartQuery would
    /// refuse, this refuses alike (a dashboard's widgets are checked so when they are saved).
    pub async fn check(&self, account_id: &str, statement: &str) -> Result<()> {
        self.prepare(account_id, statement, None).await.map(|_| ())
    }

    /// Parses a statement, resolves its stores among the account's and plans it.
    ///
    /// With `grant`, the query is another account's than the stores': a store it does not grant,
    /// or that does not exist, is [`QueryError::StoreNotShared`] alike, before anything about the
    /// store (its status, its columns) is looked at.
    async fn prepare(
        &self,
        account_id: &str,
        statement: &str,
        grant: Option<StoreGrant<'_>>,
    ) -> Result<(Vec<StoreSource>, PlannedQuery)> {
        let stores = self.account_stores(account_id).await;
        let mut sources: Vec<StoreSource> = Vec::new();
        let prepared = prepare::<QueryError>(statement, |written| {
            if let Some(grant) = grant {
                let granted = store_named(&stores, account_id, written).is_some_and(grant);
                if !granted {
                    return Err(QueryError::StoreNotShared(written.to_string()));
                }
            }
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
        let planned = plan(&prepared, &sources, Utc::now(), &self.datafusion).await?;
        Ok((sources, planned))
    }

    /// Checks and plans a statement for an account, and starts it; its results are delivered to
    /// `delivery_s3_uri` (checked by the API layer) when it finishes. Returns the QueryId.
    pub async fn start(
        self: &Arc<Self>,
        account_id: &str,
        statement: &str,
        delivery_s3_uri: Option<&str>,
    ) -> Result<String> {
        self.start_tagged(account_id, statement, delivery_s3_uri, QueryTag::default())
            .await
    }

    /// Starts a query as [`QueryEngine::start`] does, tagged with a dashboard widget's alias and
    /// the refresh it belongs to, for DescribeQuery by alias.
    pub async fn start_tagged(
        self: &Arc<Self>,
        account_id: &str,
        statement: &str,
        delivery_s3_uri: Option<&str>,
        tag: QueryTag,
    ) -> Result<String> {
        self.start_granted(account_id, statement, delivery_s3_uri, tag, None)
            .await
    }

    /// Starts a query of another account on the stores of `account_id`, each of which `grant`
    /// must let through (their resource policies): the query is the stores' account's, which
    /// the other account reaches by naming it (`EventDataStoreOwnerAccountId`).
    pub async fn start_shared(
        self: &Arc<Self>,
        account_id: &str,
        statement: &str,
        delivery_s3_uri: Option<&str>,
        grant: StoreGrant<'_>,
    ) -> Result<String> {
        self.start_granted(account_id, statement, delivery_s3_uri, QueryTag::default(), Some(grant))
            .await
    }

    /// Starts a tagged query as [`QueryEngine::start_tagged`] does, each store of which `grant`
    /// must let through when one is given (a dashboard's scheduled refresh, which CloudTrail runs
    /// for the dashboard only where the stores' policies allow it).
    pub async fn start_granted(
        self: &Arc<Self>,
        account_id: &str,
        statement: &str,
        delivery_s3_uri: Option<&str>,
        tag: QueryTag,
        grant: Option<StoreGrant<'_>>,
    ) -> Result<String> {
        let (sources, planned) = self.prepare(account_id, statement, grant).await?;
        let now = Utc::now();
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
            query_alias: tag.query_alias,
            refresh_id: tag.refresh_id,
            prompt: tag.prompt,
        };
        let entry = {
            let mut queries = self.queries.lock().expect("queries lock");
            let active = queries
                .values()
                .filter(|entry| entry.account_id == account_id && entry.is_active())
                .count();
            if active >= self.settings.max_active_per_account {
                return Err(QueryError::MaxConcurrentQueries(self.settings.max_active_per_account));
            }
            let entry = QueryEntry::new(record.clone());
            queries.insert(record.id.clone(), Arc::clone(&entry));
            entry
        };
        if let Err(error) = record::save(&self.root, &record).await {
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
        let mut phase = entry.phase.subscribe();
        let permit = tokio::select! {
            permit = Arc::clone(&self.slots).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = cancel_requested(&mut phase) => {
                self.finish(&entry, None).await;
                return;
            }
        };
        let id = {
            let mut state = entry.state.lock().await;
            state.record.status = QueryStatus::Running;
            state.record.started = Some(Utc::now());
            state.record.id.clone()
        };
        let outcome = self.execute(&entry, planned, &mut phase).await;
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
        phase: &mut watch::Receiver<Phase>,
    ) -> Result<(), DataFusionError> {
        let planned = match &self.cluster {
            Some(cluster) => cluster.distribute(planned)?,
            None => planned,
        };
        let physical = planned.context.state().create_physical_plan(&planned.plan).await?;
        let distributed = cluster::is_distributed(&physical);
        {
            let mut state = entry.state.lock().await;
            let consumer = MemoryConsumer::new(format!("query {} results", state.record.id));
            state.plan = Some(Arc::clone(&physical));
            state.rows = Some(Arc::new(ResultRows {
                schema: physical.schema(),
                batches: Vec::new(),
            }));
            state.reservation = Some(consumer.register(&self.datafusion.memory_pool));
        }
        if distributed {
            let query_id = entry.state.lock().await.record.id.clone();
            tracing::info!(%query_id, "the query runs on workers");
            tracing::debug!(%query_id, plan = %display_plan_ascii(physical.as_ref(), false), "its distributed plan");
        }
        let mut stream = execute_stream(Arc::clone(&physical), planned.context.task_ctx())?;
        let deadline = tokio::time::sleep(self.settings.time_limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                batch = stream.next() => match batch {
                    None => {
                        if distributed {
                            let measured = cluster::with_worker_metrics(Arc::clone(&physical)).await;
                            tracing::debug!(plan = %display_plan_ascii(measured.as_ref(), true), "the plan with the workers' metrics");
                            entry.state.lock().await.plan = Some(measured);
                        }
                        return Ok(());
                    }
                    Some(Err(error)) => return Err(match &self.cluster {
                        Some(cluster) if distributed => cluster.task_error(error).await,
                        _ => error,
                    }),
                    Some(Ok(batch)) if batch.num_rows() == 0 => {}
                    Some(Ok(batch)) => {
                        let batch = without_unused_view_data(batch);
                        let mut state = entry.state.lock().await;
                        if let Some(reservation) = state.reservation.as_mut() {
                            reservation.try_grow(batch.get_array_memory_size())?;
                        }
                        Arc::make_mut(state.rows.as_mut().expect("rows were set")).batches.push(batch);
                    }
                },
                () = cancel_requested(phase) => return Ok(()),
                () = &mut deadline => {
                    let mut state = entry.state.lock().await;
                    state.record.status = QueryStatus::TimedOut;
                    state.record.error_message = Some(format!(
                        "the query ran past its time limit of {} seconds",
                        self.settings.time_limit.as_secs()
                    ));
                    return Ok(());
                }
            }
        }
    }

    /// Records the end of a query: its status, statistics and results, kept under the root before
    /// callers see them, so a client told FINISHED finds the same answer, and the results, after a
    /// crash.
    async fn finish(&self, entry: &QueryEntry, error: Option<DataFusionError>) {
        let mut state = entry.state.lock().await;
        let plan = state.plan.take();
        let rows = state.rows.clone();
        let spilled_bytes = plan.as_ref().map_or(0, spilled_bytes);
        let mut record = state.record.clone();
        record.ended = Some(Utc::now());
        if let Some(plan) = &plan {
            record.scan = measure(plan);
        }
        record.result_rows = rows.as_ref().map_or(0, |rows| rows.len() as u64);
        match (record.status, error) {
            (QueryStatus::Cancelled | QueryStatus::TimedOut, _) => {}
            (_, Some(error)) => {
                record.status = QueryStatus::Failed;
                record.error_message = Some(error_message(&error.find_root().to_string()));
            }
            (_, None) => record.status = QueryStatus::Finished,
        }
        let keeping = std::time::Instant::now();
        let mut kept = false;
        if let Some(rows) = &rows {
            match self.results.save(&record.id, rows).await {
                Ok(()) => kept = true,
                Err(error) => tracing::error!(query_id = %record.id, %error, "could not keep the query's results"),
            }
        }
        if let Err(error) = record::save(&self.root, &record).await {
            tracing::error!(query_id = %record.id, %error, "could not keep the query's record");
        }
        state.record = record.clone();
        if let (true, Some(rows)) = (kept, &rows) {
            // Kept, and the record says the query ended: the rows leave the pool for the cache.
            self.results.cache(&record.id, Arc::clone(rows));
            state.rows = None;
            state.reservation = None;
        }
        drop(state);
        entry.phase.send_replace(Phase::Ended);
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
            let empty = ResultRows::empty();
            let status = deliver_query(&record, rows.as_deref().unwrap_or(&empty), self.delivery_target()).await;
            self.keep_delivery_status(record, status).await;
        }
    }

    fn delivery_target(&self) -> DeliveryTarget<'_> {
        DeliveryTarget {
            keys: &self.keys,
            region: &self.settings.region,
            max_file_bytes: self.settings.delivery_file_bytes,
        }
    }

    /// Sets a query's DeliveryStatus and keeps its record.
    async fn keep_delivery_status(&self, mut record: QueryRecord, status: DeliveryStatus) {
        record.delivery_status = Some(status);
        let entry = self.queries.lock().expect("queries lock").get(&record.id).cloned();
        if let Some(entry) = entry {
            entry.state.lock().await.record.delivery_status = Some(status);
        }
        if let Err(error) = record::save(&self.root, &record).await {
            tracing::error!(query_id = %record.id, %error, "could not keep the query's record");
        }
    }

    /// Delivers the kept results of a FINISHED query whose delivery the server stopped in.
    async fn redeliver(&self, record: QueryRecord) {
        let status = match self.results.load(&record.id).await {
            Ok(rows) if rows.len() as u64 == record.result_rows => {
                deliver_query(&record, &rows, self.delivery_target()).await
            }
            Ok(rows) => {
                tracing::error!(query_id = %record.id, kept = rows.len(), rows = record.result_rows, "the kept results are incomplete; not delivering them");
                DeliveryStatus::Failed
            }
            Err(error) => {
                tracing::error!(query_id = %record.id, %error, "could not read the results to deliver");
                DeliveryStatus::Failed
            }
        };
        self.keep_delivery_status(record, status).await;
    }

    /// Returns the lake root the engine reads.
    pub fn root(&self) -> &LakeRoot {
        &self.root
    }

    /// Returns the signing keys of deliveries, which trails' digests share.
    pub fn signing_keys(&self) -> &Arc<SigningKeys> {
        &self.keys
    }

    /// Looks up events in an account's Event history (see [`crate::history`]), on the query
    /// runtime: at most `lookup.max_results + 1`, newest first.
    pub async fn lookup_events(&self, account_id: &str, lookup: &Lookup) -> Result<Vec<FoundEvent>> {
        let (table, snapshot) = self.history(account_id).await?;
        let lookup = lookup.clone();
        let runtime = Arc::clone(&self.datafusion);
        self.runtime
            .handle()
            .spawn(async move { lookup_events(&table, snapshot, &lookup, &runtime).await })
            .await
            .map_err(|error| QueryError::Engine(DataFusionError::External(Box::new(error))))?
    }

    /// Returns, oldest first, the periods of a ListInsightsMetricData range that have calls of its
    /// key in the account's Event history, with their counts.
    pub async fn insights_metric_counts(
        &self,
        account_id: &str,
        query: &MetricQuery,
    ) -> Result<Vec<(DateTime<Utc>, u64)>> {
        let (table, snapshot) = self.history(account_id).await?;
        let query = query.clone();
        let runtime = Arc::clone(&self.datafusion);
        self.runtime
            .handle()
            .spawn(async move { insights_metric_counts(&table, snapshot, &query, &runtime).await })
            .await
            .map_err(|error| QueryError::Engine(DataFusionError::External(Box::new(error))))?
    }

    /// Starts the finding of Insights on the engine's runtime, every `insights_interval`; returns
    /// its task, to be aborted when the server stops.
    pub fn spawn_insights(&self) -> tokio::task::JoinHandle<()> {
        self.runtime.handle().spawn(Arc::clone(&self.insights).find_every())
    }

    /// Asks for a search for Insights now (a store's Insights were turned on).
    pub fn wake_insights(&self) {
        self.insights.wake();
    }

    /// Returns an account's Event history and its latest snapshot (kept for the next reader).
    async fn history(&self, account_id: &str) -> Result<(EventTable, Option<DeltaTable>)> {
        let table = EventTable::history(&self.root, account_id);
        let earlier = self
            .snapshots
            .lock()
            .expect("snapshots lock")
            .get(table.name())
            .cloned();
        let snapshot = table.refresh(earlier).await?;
        if let Some(snapshot) = &snapshot {
            self.snapshots
                .lock()
                .expect("snapshots lock")
                .insert(table.name().to_string(), snapshot.clone());
        }
        Ok((table, snapshot))
    }

    fn entry(&self, account_id: &str, id: &str) -> Result<Arc<QueryEntry>> {
        let queries = self.queries.lock().expect("queries lock");
        match queries.get(id) {
            Some(entry) if entry.account_id == account_id => Ok(Arc::clone(entry)),
            _ => Err(QueryError::QueryNotFound(id.to_string())),
        }
    }

    /// Returns a query of the account, with its live statistics while it runs.
    pub async fn describe(&self, account_id: &str, id: &str) -> Result<QueryRecord> {
        Ok(self.entry(account_id, id)?.state.lock().await.live_record())
    }

    /// Returns a query of the account as [`QueryEngine::describe`] does, for DescribeQuery: a QUEUED
    /// or RUNNING query is awaited first for up to [`EngineSettings::describe_wait`] and described
    /// as soon as it ends (or is cancelled), so that a client polling in a loop learns of the end as
    /// it happens, with fewer calls.
    pub async fn describe_when_ended(&self, account_id: &str, id: &str) -> Result<QueryRecord> {
        let entry = self.entry(account_id, id)?;
        if entry.is_active() && !self.settings.describe_wait.is_zero() {
            let mut phase = entry.phase.subscribe();
            // The sender lives in the entry held here, so the channel never closes while waiting.
            let _ = tokio::time::timeout(
                self.settings.describe_wait,
                phase.wait_for(|phase| *phase != Phase::Active),
            )
            .await;
        }
        Ok(entry.state.lock().await.live_record())
    }

    /// Waits until a query of the account ended (at once if it has), and returns its final record.
    pub async fn wait_ended(&self, account_id: &str, id: &str) -> Result<QueryRecord> {
        let entry = self.entry(account_id, id)?;
        let mut phase = entry.phase.subscribe();
        // The sender lives in the entry held here, so the channel never closes while waiting.
        let _ = phase.wait_for(|phase| *phase == Phase::Ended).await;
        Ok(entry.record().await)
    }

    /// Returns a query's record and its rows so far (all of them once it ended).
    pub async fn results(&self, account_id: &str, id: &str) -> Result<(QueryRecord, Arc<ResultRows>)> {
        let entry = self.entry(account_id, id)?;
        let (record, live_rows) = {
            let state = entry.state.lock().await;
            (state.live_record(), state.rows.clone())
        };
        if let Some(rows) = live_rows {
            return Ok((record, rows));
        }
        if record.is_active() || record.started.is_none() {
            return Ok((record, Arc::new(ResultRows::empty())));
        }
        let rows = self.results.read(id).await?;
        Ok((record, rows))
    }

    /// Cancels a QUEUED or RUNNING query; returns its record, now CANCELLED.
    pub async fn cancel(&self, account_id: &str, id: &str) -> Result<QueryRecord> {
        let entry = self.entry(account_id, id)?;
        let mut state = entry.state.lock().await;
        let mut record = state.record.clone();
        if !record.is_active() {
            return Err(QueryError::InactiveQuery(
                id.to_string(),
                record.status.wire_name().unwrap_or("UNSPECIFIED"),
            ));
        }
        record.status = QueryStatus::Cancelled;
        if record.delivery_s3_uri.is_some() {
            record.delivery_status = Some(DeliveryStatus::Cancelled);
        }
        record::save(&self.root, &record).await?;
        state.record.status = record.status;
        state.record.delivery_status = record.delivery_status;
        drop(state);
        entry.phase.send_replace(Phase::Cancelling);
        Ok(record)
    }

    /// Returns the account's latest query run under a dashboard widget's alias (in one refresh,
    /// when `refresh_id` is given).
    pub async fn find_alias(&self, account_id: &str, alias: &str, refresh_id: Option<&str>) -> Result<String> {
        let mut latest: Option<QueryRecord> = None;
        for entry in self.entries() {
            if entry.account_id != account_id {
                continue;
            }
            let record = entry.record().await;
            let tagged = record.query_alias.as_deref() == Some(alias)
                && refresh_id.is_none_or(|refresh| record.refresh_id.as_deref() == Some(refresh));
            if tagged
                && latest
                    .as_ref()
                    .is_none_or(|l| (record.created, &record.id) > (l.created, &l.id))
            {
                latest = Some(record);
            }
        }
        latest.map(|record| record.id).ok_or_else(|| {
            QueryError::QueryNotFound(match refresh_id {
                Some(refresh) => format!("of alias {alias} in refresh {refresh}"),
                None => format!("of alias {alias}"),
            })
        })
    }

    /// Returns why a query of a dashboard refresh failed, if one did: the first failure's message.
    pub async fn refresh_failure(&self, account_id: &str, refresh_id: &str) -> Option<String> {
        let mut failures = Vec::new();
        for entry in self.entries() {
            if entry.account_id != account_id {
                continue;
            }
            let record = entry.record().await;
            if record.refresh_id.as_deref() == Some(refresh_id)
                && matches!(record.status, QueryStatus::Failed | QueryStatus::TimedOut)
            {
                let alias = record.query_alias.clone().unwrap_or_default();
                failures.push((
                    alias,
                    record.error_message.unwrap_or_else(|| "the query failed".to_string()),
                ));
            }
        }
        failures.sort();
        failures
            .into_iter()
            .next()
            .map(|(alias, message)| format!("the query of widget {alias} failed: {message}"))
    }

    /// Returns the account's queries that read the store, newest first.
    pub async fn list(&self, account_id: &str, store_id: &str) -> Vec<QueryRecord> {
        let mut records = Vec::new();
        for entry in self.entries() {
            if entry.account_id == account_id {
                let record = entry.record().await;
                if record.store_ids.iter().any(|id| id == store_id) {
                    records.push(record);
                }
            }
        }
        records.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        records
    }
}

/// Returns once CancelQuery asked for the query to stop.
async fn cancel_requested(phase: &mut watch::Receiver<Phase>) {
    if phase.wait_for(|phase| *phase != Phase::Active).await.is_err() {
        // The sender lives as long as the query's entry, so this does not happen; wait forever.
        std::future::pending::<()>().await;
    }
}

/// Returns the store a statement names (an ID or an ARN of the account), or why it cannot be read.
/// Returns the store of the account a FROM reference names (its ID or ARN), whatever its status.
fn store_named<'a>(
    stores: &'a HashMap<String, EventDataStoreRecord>,
    account_id: &str,
    written: &str,
) -> Option<&'a EventDataStoreRecord> {
    let id = match written.strip_prefix("arn:") {
        Some(_) => {
            let arn = traillake_api::arn::CloudTrailArn::parse(written)?;
            if arn.account_id != account_id {
                return None;
            }
            arn.resource_id.to_ascii_lowercase()
        }
        None => written.to_ascii_lowercase(),
    };
    stores.get(&id)
}

fn resolve_store<'a>(
    stores: &'a HashMap<String, EventDataStoreRecord>,
    account_id: &str,
    written: &str,
) -> Result<&'a EventDataStoreRecord> {
    let store = store_named(stores, account_id, written).ok_or_else(|| QueryError::not_a_store(written))?;
    if !store.is_active() {
        return Err(QueryError::InactiveEventDataStore(store.id.clone()));
    }
    Ok(store)
}

/// Returns DataFusion's runtime of the engine's queries: a memory pool of
/// [`EngineSettings::memory_bytes`] shared fairly among the operators that spill (and naming the
/// largest consumers when it runs out), and the folder they spill to.
pub(crate) fn datafusion_runtime(settings: &EngineSettings) -> Result<Arc<RuntimeEnv>> {
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
