//! The dialect and its functions, in sqllogictest files (`tests/slt/*.slt`), run against two stores
//! loaded from `tests/slt/events.json`: `5e2676f8-9fce-46ef-8142-3e36a94e6691` holds every event,
//! `0b3c8e1a-4f2d-4c6e-9a7b-1d2e3f4a5b6c` the events from February on. Values are rendered as
//! GetQueryResults renders them, NULL as `NULL`. `EXPLAIN <query>` answers, one row per scan, the
//! number of Parquet files it reads and the predicate that reaches it.
//!
//! Two environment variables steer the run: `SLT_FILE=dialect` runs only the files whose name
//! contains `dialect`; `SLT_COMPLETE=1` writes each record's actual output into its file instead
//! of comparing (sqllogictest's complete mode, as DataFusion's `--complete`): run it, then read
//! the diff.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use datafusion::physical_plan::displayable;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use traillake_api::selectors::StoreKind;
use traillake_lake::loader::{EventWriter, file_rows};
use traillake_lake::{EventTable, LakeRoot, RootLocation};
use traillake_query::QueryError;
use traillake_query::cluster::Cluster;
use traillake_query::dialect::prepare;
use traillake_query::planner::{StoreSource, plan};
use traillake_query::render::render;

use crate::cluster::two_workers;
use crate::execute::execute;

const ALL: &str = "5e2676f8-9fce-46ef-8142-3e36a94e6691";
const LATER: &str = "0b3c8e1a-4f2d-4c6e-9a7b-1d2e3f4a5b6c";

struct Lake {
    stores: Vec<StoreSource>,
    /// The workers the queries run on; none runs them in this process.
    cluster: Option<Cluster>,
}

impl Lake {
    async fn load(root: &LakeRoot) -> Self {
        let bytes = std::fs::read(slt_folder().join("events.json")).unwrap();
        let mut stores = Vec::new();
        for (id, from) in [(ALL, (2000, 1)), (LATER, (2026, 2))] {
            // The events before `from` are left out as if they were past retention.
            let rows = file_rows(&bytes, Utc.with_ymd_and_hms(from.0, from.1, 1, 0, 0, 0).unwrap()).unwrap();
            assert!(rows.rejected.is_empty(), "{:?}", rows.rejected);
            let table = EventTable::new(root, id, StoreKind::CloudTrail);
            let mut writer = EventWriter::new(table.clone(), usize::MAX);
            writer.push(rows.batch).await.unwrap();
            writer.commit().await.unwrap();
            stores.push(StoreSource {
                id: id.to_string(),
                kind: StoreKind::CloudTrail,
                retention_days: 3653,
                table,
                snapshot: None,
            });
        }
        Self { stores, cluster: None }
    }
}

fn slt_folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt")
}

#[async_trait::async_trait]
impl AsyncDB for Lake {
    type Error = QueryError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, QueryError> {
        let trimmed = sql.trim_start();
        let (explain, sql) = match trimmed.get(..8) {
            Some(head) if head.eq_ignore_ascii_case("EXPLAIN ") => (true, &trimmed[8..]),
            _ => (false, sql),
        };
        let stores = &self.stores;
        let prepared = prepare(sql, |written| {
            let id = written.to_ascii_lowercase();
            match stores.iter().any(|store| store.id == id) {
                true => Ok(id),
                false => Err(QueryError::not_a_store(written)),
            }
        })?;
        let planned = plan(&prepared, stores, Utc::now(), &Default::default()).await?;
        if explain {
            let physical = planned.context.state().create_physical_plan(&planned.plan).await?;
            return Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Text],
                rows: scan_summaries(&displayable(physical.as_ref()).indent(false).to_string()),
            });
        }
        let batches = execute(planned, self.cluster.as_ref()).await?.batches;
        let mut rows = Vec::new();
        for batch in &batches {
            for row in 0..batch.num_rows() {
                let values = batch
                    .columns()
                    .iter()
                    .map(|column| render(column, row).map(|v| v.unwrap_or_else(|| "NULL".to_string())));
                rows.push(
                    values
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(datafusion::error::DataFusionError::from)?,
                );
            }
        }
        let types = vec![DefaultColumnType::Any; batches.first().map_or(0, |b| b.num_columns())];
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "traillake"
    }
}

/// Returns, for each scan of a physical plan, the files it reads and the predicate it evaluates
/// (`2 files: eventtime@2 >= ...`); a scan that reads no file is `no files`.
fn scan_summaries(plan: &str) -> Vec<Vec<String>> {
    let mut scans = Vec::new();
    for line in plan.lines() {
        if line.contains("EmptyExec") {
            scans.push(vec!["no files".to_string()]);
            continue;
        }
        if !line.contains("DataSourceExec") {
            continue;
        }
        let files: std::collections::BTreeSet<&str> = line
            .split(['[', ']', ',', ' '])
            .filter_map(|part| part.split(':').next())
            .filter(|part| part.ends_with(".parquet"))
            .collect();
        let summary = match line.split_once(", predicate=") {
            Some((_, rest)) => format!(
                "{} files: {}",
                files.len(),
                rest.split(", pruning_predicate=").next().unwrap_or(rest)
            ),
            None => format!("{} files", files.len()),
        };
        scans.push(vec![summary]);
    }
    scans
}

#[tokio::test]
async fn sqllogictest_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let lake = Lake::load(&root).await;
    run_files(lake, &[]).await;
}

/// The same files on two workers (in this process, on loopback ports, reading the same root), each
/// scan split in two tasks however small: every answer is the one of a single process. The
/// `EXPLAIN` file is left out, as its answers list the files of each scan (each task's share here);
/// `cluster.rs` checks the distributed plans.
#[tokio::test]
async fn sqllogictest_files_on_two_workers() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let mut lake = Lake::load(&root).await;
    lake.cluster = Some(two_workers(&root).await);
    run_files(lake, &["explain.slt"]).await;
}

/// Runs the `.slt` files (those `SLT_FILE` names, without `skip`) against `lake`.
async fn run_files(lake: Lake, skip: &[&str]) {
    let Lake { stores, cluster } = lake;
    let only = std::env::var("SLT_FILE").unwrap_or_default();
    let complete = std::env::var("SLT_COMPLETE").is_ok_and(|value| value == "1");
    let mut files: Vec<_> = std::fs::read_dir(slt_folder())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "slt"))
        .filter(|path| {
            path.file_name().is_some_and(|name| {
                let name = name.to_string_lossy();
                name.contains(&only) && !skip.contains(&name.as_ref())
            })
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt file matches SLT_FILE={only}");
    let mut failures = Vec::new();
    for file in &files {
        let (stores, cluster) = (stores.clone(), cluster.clone());
        let mut runner = Runner::new(move || {
            let (stores, cluster) = (stores.clone(), cluster.clone());
            async move { Ok(Lake { stores, cluster }) }
        });
        let outcome = if complete {
            runner
                .update_test_file(
                    file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .map_err(|error| error.to_string())
        } else {
            runner.run_file_async(file).await.map_err(|error| error.to_string())
        };
        if let Err(error) = outcome {
            failures.push(format!("{}: {error}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
