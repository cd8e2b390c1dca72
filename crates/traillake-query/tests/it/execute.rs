//! Executing a planned query as the engine does: in this process, or on a cluster of workers.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::{ExecutionPlan, collect};
use traillake_query::cluster::{self, Cluster};
use traillake_query::planner::PlannedQuery;
use traillake_query::statistics::{ScanStatistics, measure};

/// A query executed to its end.
pub struct Executed {
    pub batches: Vec<RecordBatch>,
    pub statistics: ScanStatistics,
    /// The executed plan (with the workers' metrics when it ran on them).
    pub plan: Arc<dyn ExecutionPlan>,
}

impl Executed {
    pub fn distributed(&self) -> bool {
        cluster::is_distributed(&self.plan)
    }
}

/// Executes `planned` in this process, or through `cluster` when one is given.
pub async fn execute(planned: PlannedQuery, cluster: Option<&Cluster>) -> Result<Executed, DataFusionError> {
    let planned = match cluster {
        Some(cluster) => cluster.distribute(planned)?,
        None => planned,
    };
    let physical = planned.context.state().create_physical_plan(&planned.plan).await?;
    let batches = collect(Arc::clone(&physical), planned.context.task_ctx()).await?;
    let plan = cluster::with_worker_metrics(physical).await;
    Ok(Executed {
        batches,
        statistics: measure(&plan),
        plan,
    })
}
