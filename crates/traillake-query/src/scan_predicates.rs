//! A physical optimizer rule that removes repeated conjuncts from the predicate of Parquet scans.
//!
//! A filter on a Delta table reaches the Parquet source twice: once from the Delta provider's scan
//! and once from DataFusion's filter pushdown, so `userAgent LIKE '%Boto3%'` was evaluated twice per
//! row (`... LIKE ... AND ... LIKE ...`). Dropping an identical conjunct changes no result.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, FileSource as _, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// The rule; see the module documentation.
#[derive(Debug, Default)]
pub struct DistinctScanPredicates;

impl PhysicalOptimizerRule for DistinctScanPredicates {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else { return Ok(Transformed::no(node)) };
            let Some((config, parquet)) = exec.downcast_to_file_source::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            let Some(predicate) = parquet.filter() else { return Ok(Transformed::no(node)) };
            let conjuncts = split_conjunction(&predicate);
            let mut distinct: Vec<Arc<dyn PhysicalExpr>> = Vec::with_capacity(conjuncts.len());
            for conjunct in &conjuncts {
                if !distinct.iter().any(|kept| kept.as_ref() == conjunct.as_ref()) {
                    distinct.push(Arc::clone(conjunct));
                }
            }
            if distinct.len() == conjuncts.len() {
                return Ok(Transformed::no(node));
            }
            let source = Arc::new(parquet.with_predicate(conjunction(distinct)));
            let config = FileScanConfigBuilder::from(config.clone()).with_source(source).build();
            Ok(Transformed::yes(DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "distinct_scan_predicates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
