//! Queries executed on a cluster of traillake workers, by datafusion-distributed.
//!
//! The server plans every query as it does alone; with workers, the physical plan then goes
//! through datafusion-distributed's planner, which splits it into stages at its exchanges
//! (repartitions, merges, broadcast joins) and runs the stages below the top one as tasks on the
//! workers, each task reading its share of the Parquet files; the top stage runs in the server,
//! which gathers the rows as before. Workers ([`worker`]) are tonic services that decode each
//! task's plan (datafusion-proto: stock Parquet scans, the write-ahead log's rows in memory, and
//! traillake's functions by name) and read the files from the same lake root.
//!
//! The rule that keeps small queries in the server: a Parquet scan is split into one task per
//! [`ClusterSettings::task_bytes`] of the files it reads (rounded up; every file is counted whole,
//! after the files of days outside the query's `eventTime` bounds are left out), at most one task
//! per worker; a scan that stops after a few rows (a `LIMIT` with nothing in its way) is one task.
//! A query whose scans all fit in one task runs in the server, unchanged.
//!
//! Which workers are used ([`Cluster`]): every few seconds each worker is asked who it is; only
//! workers that answer with this server's version and lake root take tasks. A worker that does
//! not answer, or serves another root, is left out (and logged) until it answers as it should.

pub mod worker;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::common::DataFusionError;
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedExec, DistributedExt, DistributedMetricsFormat,
    GetWorkerInfoRequest, SessionStateBuilderExt, WorkerResolver, grpc, rewrite_distributed_plan_with_metrics,
};
use http::{HeaderMap, HeaderValue};
use traillake_lake::LakeRoot;
use url::Url;

use crate::planner::PlannedQuery;

/// The workers of a server and when a query is sent to them.
#[derive(Clone)]
pub struct ClusterSettings {
    /// The workers' addresses (`http://host:port`).
    pub workers: Vec<Url>,
    /// Bytes of Parquet files a scan reads per task (see the module documentation).
    pub task_bytes: u64,
    /// How often the workers are asked who they are.
    pub check_interval: Duration,
    /// The secret the workers ask of every task (`--cluster-secret`), sent with each.
    pub secret: Option<String>,
}

impl ClusterSettings {
    /// The default bytes of files a scan reads per task: 256 MiB.
    pub const DEFAULT_TASK_BYTES: u64 = 256 << 20;

    /// Returns the settings of `workers` with the default rule.
    pub fn new(workers: Vec<Url>) -> Self {
        Self {
            workers,
            task_bytes: Self::DEFAULT_TASK_BYTES,
            check_interval: Duration::from_secs(5),
            secret: None,
        }
    }
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("workers", &self.workers)
            .field("task_bytes", &self.task_bytes)
            .field("check_interval", &self.check_interval)
            .field("secret", &self.secret.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// Parses a worker's address: `host:port`, or a URL `http://host:port`.
pub fn parse_worker(text: &str) -> Result<Url, String> {
    let url = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let url = Url::parse(&url).map_err(|error| format!("{text}: not a worker address ({error})"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("{text}: a worker address is host:port or http://host:port"));
    }
    if url.port_or_known_default().is_none() || url.host().is_none() {
        return Err(format!("{text}: a worker address names a host and a port"));
    }
    Ok(url)
}

/// Returns what a worker of `root` answers when asked who it is, and what the server expects:
/// traillake's version and the root's URL.
pub fn identity(root: &LakeRoot) -> String {
    format!("traillake {} {}", env!("CARGO_PKG_VERSION"), root.root_url())
}

/// The workers a server sends tasks to, kept up to date in the background.
#[derive(Debug, Clone)]
pub struct Cluster {
    settings: ClusterSettings,
    /// The workers that last answered with the expected identity.
    ready: Arc<RwLock<Vec<Url>>>,
}

/// The [`WorkerResolver`] of a query: the workers ready when it was planned.
struct ReadyWorkers(Vec<Url>);

impl WorkerResolver for ReadyWorkers {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        Ok(self.0.clone())
    }
}

impl Cluster {
    /// Returns the cluster of `settings` for a server of `root`, after asking each worker once who
    /// it is; then asks again every [`ClusterSettings::check_interval`] on the current runtime,
    /// until the cluster is dropped.
    pub async fn start(settings: ClusterSettings, root: &LakeRoot) -> Self {
        let ready = Arc::new(RwLock::new(Vec::new()));
        let expected = identity(root);
        let mut last = Vec::new();
        check(&settings.workers, &expected, &ready, &mut last).await;
        let (workers, interval, kept) = (
            settings.workers.clone(),
            settings.check_interval,
            Arc::downgrade(&ready),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(ready) = kept.upgrade() else { return };
                check(&workers, &expected, &ready, &mut last).await;
            }
        });
        Self { settings, ready }
    }

    /// Returns the settings.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// Returns the workers that take tasks now.
    pub fn ready_workers(&self) -> Vec<Url> {
        self.ready.read().expect("workers lock").clone()
    }

    /// Returns the error of a query that ran on the workers as its ErrorMessage should read: when
    /// a worker no longer answers, the query failed because it was lost, which the error (a broken
    /// stream) does not say.
    pub async fn task_error(&self, error: DataFusionError) -> DataFusionError {
        let answers = identities(&self.settings.workers).await;
        let lost: Vec<String> = (self.settings.workers.iter().zip(answers))
            .filter(|(_, answer)| answer.is_err())
            .map(|(url, _)| url.to_string())
            .collect();
        if lost.is_empty() {
            return error;
        }
        DataFusionError::Execution(format!(
            "a worker running the query's tasks was lost ({} no longer answers); start the query again: {}",
            lost.join(", "),
            error.find_root()
        ))
    }

    /// Returns a planned query whose physical plan is distributed over the ready workers when its
    /// scans are large enough (and stays the server's own otherwise).
    pub fn distribute(&self, planned: PlannedQuery) -> Result<PlannedQuery, DataFusionError> {
        let workers = self.ready_workers();
        if workers.is_empty() {
            return Ok(planned);
        }
        let state = planned.context.state();
        // DataFusion splits a scan into partitions; datafusion-distributed gives a task as many
        // partitions as the session has (`target_partitions`) of `bytes_per_partition` each.
        let partitions = state.config().target_partitions().max(1) as u64;
        let bytes_per_partition = (self.settings.task_bytes / partitions).max(1) as usize;
        let mut headers = HeaderMap::new();
        if let Some(secret) = &self.settings.secret {
            headers.insert(SECRET_HEADER, secret_value(secret)?);
        }
        let state = SessionStateBuilder::new_from_existing(state)
            .with_distributed_passthrough_headers(headers)?
            .with_distributed_planner()
            .with_distributed_worker_resolver(ReadyWorkers(workers))
            .with_distributed_file_scan_config_bytes_per_partition(bytes_per_partition)?
            .with_distributed_desired_task_count_handler(limited_scan_task_count)
            .build();
        Ok(PlannedQuery {
            context: SessionContext::new_with_state(state),
            ..planned
        })
    }
}

/// Gives one task (run in the server) to a Parquet scan with a row limit (a `LIMIT` with no
/// filter, join or aggregation in its way), which reads a few rows wherever its files are, and to a
/// scan of Parquet-encrypted files, whose key a plan sent to a worker would not carry
/// (datafusion-proto leaves the decryption options out).
fn limited_scan_task_count(
    event: DesiredTaskCountEvent,
) -> Option<Result<DesiredTaskCountEventResponse, DataFusionError>> {
    let scan = event.plan.downcast_ref::<DataSourceExec>()?;
    let files = scan.data_source().downcast_ref::<FileScanConfig>()?;
    let encrypted = files
        .file_source()
        .downcast_ref::<ParquetSource>()
        .is_some_and(|source| source.table_parquet_options().crypto.file_decryption.is_some());
    if files.limit.is_none() && !encrypted {
        return None;
    }
    Some(Ok(DesiredTaskCountEventResponse::maximum(1)))
}

/// The header of a task that carries the cluster's secret.
const SECRET_HEADER: &str = "x-traillake-cluster-secret";

/// Returns a secret as a header value.
fn secret_value(secret: &str) -> Result<HeaderValue, DataFusionError> {
    let mut value = HeaderValue::from_str(secret)
        .map_err(|_| DataFusionError::Configuration("the cluster secret is not a valid header value".to_string()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Returns whether a physical plan runs on workers.
pub fn is_distributed(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.is::<DistributedExec>()
}

/// Returns an executed plan with the metrics of its tasks on the workers folded in, so that
/// [`crate::statistics::measure`] sums what every worker scanned; the plan as it is when it runs
/// in the server, or when the workers' metrics do not arrive within 10 seconds (a lost worker).
pub async fn with_worker_metrics(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    if !is_distributed(&plan) {
        return plan;
    }
    let rewrite = rewrite_distributed_plan_with_metrics(Arc::clone(&plan), DistributedMetricsFormat::Aggregated);
    match tokio::time::timeout(Duration::from_secs(10), rewrite).await {
        Ok(Ok(rewritten)) => rewritten,
        Ok(Err(error)) => {
            tracing::warn!(%error, "the workers' metrics could not be gathered; statistics count the server's part");
            plan
        }
        Err(_) => {
            tracing::warn!("the workers' metrics did not arrive; statistics count the server's part");
            plan
        }
    }
}

/// Asks every worker who it is and keeps in `ready` those that answer `expected`; logs each change
/// of a worker's state (`last` holds the previous answers).
async fn check(workers: &[Url], expected: &str, ready: &RwLock<Vec<Url>>, last: &mut Vec<Result<(), String>>) {
    let answers: Vec<Result<(), String>> = (identities(workers).await.into_iter())
        .map(|answer| match answer? {
            identity if identity == expected => Ok(()),
            identity => Err(format!("it answers \"{identity}\", not \"{expected}\"")),
        })
        .collect();
    let mut now_ready = Vec::new();
    for (index, (url, answer)) in workers.iter().zip(&answers).enumerate() {
        let changed = last.get(index) != Some(answer);
        match answer {
            Ok(()) => {
                now_ready.push(url.clone());
                if changed {
                    tracing::info!(worker = %url, "worker ready: it takes tasks");
                }
            }
            Err(reason) if changed => tracing::error!(worker = %url, "worker left out: {reason}"),
            Err(_) => {}
        }
    }
    *ready.write().expect("workers lock") = now_ready;
    *last = answers;
}

/// Asks every worker at once who it is: each its identity, or why it did not answer within 3
/// seconds.
async fn identities(workers: &[Url]) -> Vec<Result<String, String>> {
    futures::future::join_all(workers.iter().map(|url| async move {
        match tokio::time::timeout(Duration::from_secs(3), worker_identity(url)).await {
            Ok(Ok(identity)) => Ok(identity),
            Ok(Err(error)) => Err(format!("it cannot be reached: {error}")),
            Err(_) => Err("it did not answer within 3 seconds".to_string()),
        }
    }))
    .await
}

/// Asks a worker who it is.
async fn worker_identity(url: &Url) -> Result<String, DataFusionError> {
    let channel = grpc::DefaultChannelResolver::default().get_channel(url).await?;
    let mut client = grpc::create_worker_client(channel);
    Ok(client.get_worker_info(GetWorkerInfoRequest {}).await?.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_worker_addresses() {
        assert_eq!(parse_worker("10.0.0.1:4570").unwrap().as_str(), "http://10.0.0.1:4570/");
        assert_eq!(
            parse_worker("http://worker-1:4570").unwrap().as_str(),
            "http://worker-1:4570/"
        );
        assert!(parse_worker("ftp://worker-1:4570").unwrap_err().contains("host:port"));
        assert!(
            parse_worker("not an address")
                .unwrap_err()
                .contains("not a worker address")
        );
    }

    #[test]
    fn the_secret_is_not_printed() {
        let settings = ClusterSettings {
            secret: Some("hunter2".to_string()),
            ..ClusterSettings::new(Vec::new())
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
