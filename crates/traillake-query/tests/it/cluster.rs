//! Queries on a cluster of two workers (in this process, on loopback ports, reading the same lake
//! root), each scan split in two tasks however small: every lake sample gives the rows and the
//! statistics of a single process, and the plan shows its stages on the workers.

use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::array::RecordBatch;
use datafusion::physical_plan::ExecutionPlan;
use traillake_lake::{LakeRoot, RootLocation};
use traillake_query::QueryError;
use traillake_query::cluster::{Cluster, ClusterSettings, is_distributed, worker};
use traillake_query::dialect::prepare;
use traillake_query::planner::{PlannedQuery, StoreSource, plan};
use traillake_query::render::render;
use traillake_query::statistics::ScanStatistics;
use url::Url;

use crate::execute::execute;
use crate::fixture::{CLOUDTRAIL, lake, shared};
use crate::samples::{REFUSED, substitute};

/// Starts two workers of `root` and returns the cluster of both, with a scan split into one task
/// per byte (so into one task per worker).
pub async fn two_workers(root: &LakeRoot) -> Cluster {
    let mut workers = Vec::new();
    for _ in 0..2 {
        let address = worker::spawn(root, "127.0.0.1:0".parse().unwrap(), Some("s3cret".to_string()))
            .await
            .unwrap();
        workers.push(Url::parse(&format!("http://{address}")).unwrap());
    }
    let settings = ClusterSettings {
        task_bytes: 1,
        secret: Some("s3cret".to_string()),
        ..ClusterSettings::new(workers)
    };
    let cluster = Cluster::start(settings, root).await;
    assert_eq!(
        cluster.ready_workers().len(),
        2,
        "both workers answer as workers of the root"
    );
    cluster
}

async fn planned(sql: &str, stores: &[StoreSource]) -> Result<PlannedQuery, QueryError> {
    let prepared = prepare(sql, |written| {
        let id = written.rsplit('/').next().unwrap_or(written).to_ascii_lowercase();
        match stores.iter().any(|store| store.id == id) {
            true => Ok(id),
            false => Err(QueryError::not_a_store(written)),
        }
    })?;
    plan(&prepared, stores, Utc::now(), &Default::default()).await
}

/// Returns the rows as GetQueryResults renders them, sorted (row order is the query's only with
/// ORDER BY, and may differ between two runs otherwise).
fn sorted_rows(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|column| render(column, row).unwrap())
                    .collect::<Vec<_>>(),
            );
        }
    }
    rows.sort();
    rows
}

#[tokio::test]
async fn every_sample_gives_on_two_workers_what_it_gives_in_one_process() {
    let lake = lake().await;
    let root = LakeRoot::open(RootLocation::Local(lake._dir.path().to_path_buf())).unwrap();
    let cluster = two_workers(&root).await;
    let folder = shared().join("queries/lake-samples");
    let mut names: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql") && !REFUSED.iter().any(|refused| name.contains(refused)))
        .collect();
    names.sort();
    let (mut compared, mut reading, mut distributed, mut problems) = (0, 0, 0, Vec::new());
    for name in &names {
        let sql = substitute(&std::fs::read_to_string(folder.join(name)).unwrap());
        let one = execute(planned(&sql, &lake.stores).await.unwrap(), None).await.unwrap();
        let two = match execute(planned(&sql, &lake.stores).await.unwrap(), Some(&cluster)).await {
            Ok(two) => two,
            Err(error) => {
                problems.push(format!("{name}: failed on the workers: {error}"));
                continue;
            }
        };
        compared += 1;
        let text = datafusion::physical_plan::displayable(one.plan.as_ref())
            .indent(false)
            .to_string();
        if text.contains("file_groups=") {
            reading += 1;
        }
        if two.distributed() {
            distributed += 1;
        }
        // A LIMIT without an order that decides every row may keep other rows: their number is
        // the same.
        let limited = sql.to_ascii_uppercase().contains("LIMIT");
        let (rows_one, rows_two) = (sorted_rows(&one.batches), sorted_rows(&two.batches));
        if limited && rows_one.len() != rows_two.len() {
            problems.push(format!(
                "{name}: {} rows, {} on the workers",
                rows_one.len(),
                rows_two.len()
            ));
        }
        if !limited && rows_one != rows_two {
            problems.push(format!("{name}: other rows on the workers"));
        }
        // A join that finds one side empty stops reading the other as soon as it knows, which
        // depends on timing (in one process too): its scans count no more on the workers.
        let joined = text.contains("Join");
        let fewer = |a: &ScanStatistics, b: &ScanStatistics| {
            b.events_scanned <= a.events_scanned
                && b.events_matched <= a.events_matched
                && b.bytes_scanned <= a.bytes_scanned
        };
        let same = one.statistics == two.statistics || (joined && fewer(&one.statistics, &two.statistics));
        if !limited && !same {
            problems.push(format!(
                "{name}: statistics {:?}, on the workers {:?}",
                one.statistics, two.statistics
            ));
        }
    }
    println!("{compared} samples compared; {reading} read files, {distributed} of them on the workers");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // The others read no file (their eventTime bounds miss the trails' days) and stay in the
    // server, as does a sort of one file's rows (nothing to split).
    assert!(
        reading >= 15 && distributed + 1 >= reading,
        "{distributed} of {reading} samples reading files ran on the workers"
    );
}

/// Returns the physical plan of `sql` through `cluster`, and the planned query.
async fn plan_through(cluster: &Cluster, sql: &str, stores: &[StoreSource]) -> (PlannedQuery, Arc<dyn ExecutionPlan>) {
    let planned = cluster.distribute(planned(sql, stores).await.unwrap()).unwrap();
    let plan = planned
        .context
        .state()
        .create_physical_plan(&planned.plan)
        .await
        .unwrap();
    (planned, plan)
}

#[tokio::test]
async fn the_plan_of_a_large_scan_is_split_across_the_workers_and_a_small_one_stays() {
    let lake = lake().await;
    let root = LakeRoot::open(RootLocation::Local(lake._dir.path().to_path_buf())).unwrap();
    let cluster = two_workers(&root).await;
    let sql = format!("SELECT eventSource, count(*) FROM {CLOUDTRAIL} GROUP BY eventSource ORDER BY 2 DESC");
    let (_, plan) = plan_through(&cluster, &sql, &lake.stores).await;
    let text = datafusion_distributed::display_plan_ascii(plan.as_ref(), false);
    assert!(text.starts_with("┌───── DistributedExec"), "{text}");
    // The scan and the partial aggregation run as two tasks, one a worker; the final aggregation
    // after the shuffle on the workers too; the server merges the sorted rows.
    assert!(text.contains("Stage 1 ── tasks=2"), "{text}");
    assert!(text.contains("NetworkShuffleExec"), "{text}");
    assert!(text.contains("DistributedLeafExec"), "{text}");
    assert!(text.contains("AggregateExec: mode=Partial"), "{text}");

    // A scan that stops after a few rows stays in the server, however many files it could read.
    let limited = format!("SELECT eventName FROM {CLOUDTRAIL} LIMIT 10");
    assert!(!is_distributed(&plan_through(&cluster, &limited, &lake.stores).await.1));

    // With the default rule (256 MiB of files a task), the real trails' few MiB stay in the server.
    let default_rule = Cluster::start(ClusterSettings::new(cluster.settings().workers.clone()), &root).await;
    assert!(!is_distributed(
        &plan_through(&default_rule, &sql, &lake.stores).await.1
    ));

    // A server without the workers' secret gets its tasks refused.
    let settings = ClusterSettings {
        task_bytes: 1,
        ..ClusterSettings::new(cluster.settings().workers.clone())
    };
    let without_secret = Cluster::start(settings, &root).await;
    let error = execute(planned(&sql, &lake.stores).await.unwrap(), Some(&without_secret))
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("without the cluster's secret"), "{error}");
}

/// datafusion-distributed runs a stage of one task in the server: with a single worker, nothing is
/// gained by a network hop, and the plan stays the server's.
#[tokio::test]
async fn with_one_worker_the_plan_stays_in_the_server() {
    let lake = lake().await;
    let root = LakeRoot::open(RootLocation::Local(lake._dir.path().to_path_buf())).unwrap();
    let address = worker::spawn(&root, "127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let settings = ClusterSettings {
        task_bytes: 1,
        ..ClusterSettings::new(vec![Url::parse(&format!("http://{address}")).unwrap()])
    };
    let cluster = Cluster::start(settings, &root).await;
    assert_eq!(cluster.ready_workers().len(), 1);
    let sql = format!("SELECT eventSource, count(*) FROM {CLOUDTRAIL} GROUP BY eventSource ORDER BY 2 DESC");
    assert!(!is_distributed(&plan_through(&cluster, &sql, &lake.stores).await.1));
}
