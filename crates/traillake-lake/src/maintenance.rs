//! The lake's upkeep, run in the background by the server: each store's write-ahead log flushed
//! into its table, the days wholly older than the store keeps dropped (queries already never see
//! them), days written in many small appends compacted, and the files removed from the tables
//! deleted once no query can still read them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use traillake_api::selectors::StoreKind;

use crate::{Catalog, EventTable, LakeRoot, WriteAheadLog};

/// Maintains every store of the lake every `every`, for ever. `keep_removed_files` is how long
/// files removed from a table stay readable: longer than a query may run, since a query reads
/// the snapshot it started on.
pub async fn maintain_every(root: LakeRoot, catalog: Arc<Catalog>, every: Duration, keep_removed_files: Duration) {
    loop {
        maintain(&root, &catalog, keep_removed_files, Utc::now()).await;
        tokio::time::sleep(every).await;
    }
}

/// Maintains every store of the lake once, as of `now`; a step that fails is logged and tried
/// again the next time.
pub async fn maintain(root: &LakeRoot, catalog: &Catalog, keep_removed_files: Duration, now: DateTime<Utc>) {
    let keep_removed_files = chrono::Duration::from_std(keep_removed_files).unwrap_or(chrono::Duration::days(7));
    for store in catalog.all_event_data_stores().await {
        let first_kept_day = store.oldest_kept(now).date_naive();
        let table = EventTable::new(root, &store.id, store.kind);
        if store.kind == StoreKind::ActivityAuditLog {
            flush_write_ahead_log(&table, &store.id).await;
        }
        match table.drop_days_before(first_kept_day).await {
            Ok(0) => {}
            Ok(files) => {
                tracing::info!(store_id = %store.id, files, %first_kept_day, "dropped days outside retention")
            }
            Err(error) => tracing::warn!(store_id = %store.id, %error, "enforcing retention failed; will retry"),
        }
        if let Err(error) = table.compact().await {
            tracing::warn!(store_id = %store.id, %error, "compacting failed; will retry");
        }
        match table.vacuum(keep_removed_files).await {
            Ok(0) => {}
            Ok(files) => tracing::info!(store_id = %store.id, files, "deleted files removed from the table"),
            Err(error) => tracing::warn!(store_id = %store.id, %error, "vacuuming failed; will retry"),
        }
    }
}

/// Moves whatever waits in a store's write-ahead log into its table: the segments a server
/// stopped before flushing, at start, and any a flusher left behind.
async fn flush_write_ahead_log(table: &EventTable, store_id: &str) {
    let log = match WriteAheadLog::new(table) {
        Ok(log) => log,
        Err(error) => {
            return tracing::warn!(store_id = %store_id, %error, "the write-ahead log cannot be read; will retry");
        }
    };
    loop {
        match log.flush().await {
            Ok(flushed) if flushed.segments == 0 => return,
            Ok(flushed) => {
                tracing::info!(store_id = %store_id, segments = flushed.segments, rows = flushed.rows, "flushed the write-ahead log")
            }
            Err(error) => {
                return tracing::warn!(store_id = %store_id, %error, "flushing the write-ahead log failed; will retry");
            }
        }
    }
}
