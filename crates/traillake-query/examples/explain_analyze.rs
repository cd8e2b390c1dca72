//! Runs one statement against the first event data store of a lake root, several times, and prints
//! the time of each run and the plan with its metrics (what EXPLAIN ANALYZE shows), for benchmark
//! investigations. `{store}` in the statement stands for the store's ID.
//!
//! cargo run --release -p traillake-query --example explain_analyze -- ROOT "SQL" [RUNS]

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_plan::collect;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use traillake_lake::{Catalog, EventTable, LakeRoot, RootLocation};
use traillake_query::dialect::prepare;
use traillake_query::planner::{StoreSource, plan};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let root = LakeRoot::open(RootLocation::parse(&args[1])?)?;
    let runs: usize = args.get(3).map_or(Ok(5), |runs| runs.parse())?;
    let catalog = Catalog::load(&root).await?;
    let store = catalog
        .all_event_data_stores()
        .await
        .into_iter()
        .next()
        .ok_or("no event data store")?;
    let statement = args[2].replace("{store}", &store.id);
    let runtime = Arc::new(RuntimeEnv::default());
    let table = EventTable::new(&root, &store.id, store.kind);
    let snapshot = table.snapshot().await?;
    if let Some(snapshot) = &snapshot {
        let files = table.data_files(snapshot)?;
        println!("store {}: {} data files", store.id, files.len());
    }
    for _ in 0..3 {
        let began = Instant::now();
        let refreshed = table.refresh(snapshot.clone()).await?;
        println!("refresh: {:.2} ms", began.elapsed().as_secs_f64() * 1000.0);
        drop(refreshed);
    }
    for run in 0..runs {
        let began = Instant::now();
        let prepared = prepare::<traillake_query::QueryError>(&statement, |_| Ok(store.id.clone()))?;
        let source = StoreSource {
            id: store.id.clone(),
            kind: store.kind,
            retention_days: store.retention_days,
            table: table.clone(),
            snapshot: snapshot.clone(),
        };
        let planned = plan(&prepared, &[source], Utc::now(), &runtime).await?;
        let planned_at = began.elapsed();
        let physical = planned.context.state().create_physical_plan(&planned.plan).await?;
        let physical_at = began.elapsed();
        let batches = collect(Arc::clone(&physical), planned.context.task_ctx()).await?;
        let rows: usize = batches.iter().map(|batch| batch.num_rows()).sum();
        println!(
            "run {run}: {rows} rows; logical plan {:.1} ms, physical {:.1} ms, total {:.1} ms",
            planned_at.as_secs_f64() * 1000.0,
            (physical_at - planned_at).as_secs_f64() * 1000.0,
            began.elapsed().as_secs_f64() * 1000.0
        );
        if run + 1 == runs {
            println!(
                "{}",
                DisplayableExecutionPlan::with_metrics(physical.as_ref()).indent(true)
            );
        }
    }
    Ok(())
}
