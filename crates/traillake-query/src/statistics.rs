//! The statistics of a query, measured from the metrics of its executed physical plan.
//!
//! Definitions (also in README.md):
//! - **EventsScanned**: rows the scans of the stores read from Parquet after pruning files by
//!   their day, row groups by their statistics and pages by the page index (`eventTime` bounds and
//!   retention prune there), summed over every scan of the query: the scans' output rows plus the rows the
//!   scans' own row filters dropped; and the rows read from the write-ahead log (events
//!   acknowledged but not yet in the table), all of which its in-memory scan reads.
//! - **EventsMatched**: rows that passed the `WHERE` predicates evaluated on those scans (the
//!   filter right above each scan, or the scan's own row filter), before joins, aggregation and
//!   `LIMIT`. A `LIMIT` that stops a scan early stops both counts early.
//! - **BytesScanned**: bytes of Parquet data the scans fetched from storage (compressed column
//!   chunks and pages of the referenced columns only).
//! - **ExecutionTimeInMillis**: wall time from the query's start of execution (RUNNING) to its end,
//!   or to now while it runs; it excludes the time spent QUEUED.

use std::sync::Arc;

use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

/// What a query's scans read and kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStatistics {
    /// See the module documentation.
    pub events_scanned: u64,
    /// See the module documentation.
    pub events_matched: u64,
    /// See the module documentation.
    pub bytes_scanned: u64,
}

/// Returns the statistics of an executed (or executing) plan.
pub fn measure(plan: &Arc<dyn ExecutionPlan>) -> ScanStatistics {
    let mut statistics = ScanStatistics::default();
    walk(plan, &mut statistics);
    statistics
}

fn metric(node: &Arc<dyn ExecutionPlan>, name: &str) -> u64 {
    node.metrics()
        .and_then(|metrics| metrics.sum_by_name(name))
        .map_or(0, |value| value.as_usize() as u64)
}

fn output_rows(node: &Arc<dyn ExecutionPlan>) -> u64 {
    if let Some(rows) = node.metrics().and_then(|metrics| metrics.output_rows()) {
        return rows as u64;
    }
    memory_rows(node)
}

/// Returns the rows of an in-memory scan (the write-ahead log's), which records no metrics of its
/// own: it reads every row it holds.
fn memory_rows(node: &Arc<dyn ExecutionPlan>) -> u64 {
    let memory = node
        .downcast_ref::<DataSourceExec>()
        .and_then(|scan| scan.data_source().downcast_ref::<MemorySourceConfig>());
    let Some(memory) = memory else { return 0 };
    memory
        .partitions()
        .iter()
        .flatten()
        .map(|batch| batch.num_rows() as u64)
        .sum()
}

fn walk(node: &Arc<dyn ExecutionPlan>, statistics: &mut ScanStatistics) {
    let children = node.children();
    if node.name() == "FilterExec"
        && let [child] = children.as_slice()
        && let Some(scan) = scan_below(child)
    {
        statistics.events_matched += output_rows(node);
        add_scan(&scan, statistics);
        return;
    }
    if children.is_empty() {
        statistics.events_matched += output_rows(node);
        add_scan(node, statistics);
        return;
    }
    for child in children {
        walk(child, statistics);
    }
}

/// Returns the scan under a node if only row-preserving nodes stand between them.
fn scan_below(node: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    const CHANGES_ROWS: &[&str] = &[
        "Filter",
        "Aggregate",
        "Limit",
        "Join",
        "Sort",
        "Window",
        "Union",
        "Unnest",
    ];
    let mut current = Arc::clone(node);
    loop {
        let name = current.name();
        if CHANGES_ROWS.iter().any(|word| name.contains(word)) {
            return None;
        }
        let children = current.children();
        match children.as_slice() {
            [] => return Some(current),
            [child] => {
                let next = Arc::clone(child);
                current = next;
            }
            _ => return None,
        }
    }
}

fn add_scan(scan: &Arc<dyn ExecutionPlan>, statistics: &mut ScanStatistics) {
    statistics.events_scanned += output_rows(scan) + metric(scan, "pushdown_rows_pruned");
    statistics.bytes_scanned += metric(scan, "bytes_scanned");
}

/// Returns the bytes the operators of an executed plan spilled to disk to stay within the memory
/// pool.
pub fn spilled_bytes(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    let own = plan.metrics().and_then(|metrics| metrics.spilled_bytes()).unwrap_or(0) as u64;
    own + plan.children().into_iter().map(spilled_bytes).sum::<u64>()
}
