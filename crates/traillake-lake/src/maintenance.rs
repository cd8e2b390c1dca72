//! The lake's upkeep, run in the background by the server, for every store's table and every
//! account's Event history: the write-ahead log flushed into the table, the days wholly older than
//! the table keeps dropped (queries already never see them), days written in many small appends
//! compacted, and the files removed from the table deleted once no query can still read them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::path::Path;

use crate::catalog::oldest_kept;
use crate::table::{HISTORY_FOLDER, HISTORY_RETENTION_DAYS};
use crate::{Catalog, EventTable, LakeRoot, Result, WriteAheadLog};

/// Maintains every store of the lake every `every`, for ever. `keep_removed_files` is how long
/// files removed from a table stay readable: longer than a query may run, since a query reads
/// the snapshot it started on.
pub async fn maintain_every(root: LakeRoot, catalog: Arc<Catalog>, every: Duration, keep_removed_files: Duration) {
    loop {
        maintain(&root, &catalog, keep_removed_files, Utc::now()).await;
        tokio::time::sleep(every).await;
    }
}

/// Maintains every store and Event history of the lake once, as of `now`; a step that fails is
/// logged and tried again the next time.
pub async fn maintain(root: &LakeRoot, catalog: &Catalog, keep_removed_files: Duration, now: DateTime<Utc>) {
    let keep_removed_files = chrono::Duration::from_std(keep_removed_files).unwrap_or(chrono::Duration::days(7));
    for store in catalog.all_event_data_stores().await {
        let table = EventTable::new(root, &store.id, store.kind);
        maintain_table(&table, store.oldest_kept(now), keep_removed_files).await;
    }
    match history_accounts(root).await {
        Ok(accounts) => {
            for account_id in accounts {
                let table = EventTable::history(root, &account_id);
                maintain_table(&table, oldest_kept(HISTORY_RETENTION_DAYS, now), keep_removed_files).await;
            }
        }
        Err(error) => tracing::warn!(%error, "listing the Event histories failed; will retry"),
    }
}

/// Returns the accounts that have an Event history.
pub async fn history_accounts(root: &LakeRoot) -> Result<Vec<String>> {
    let listing = root
        .store()
        .list_with_delimiter(Some(&Path::from(HISTORY_FOLDER)))
        .await?;
    Ok(listing
        .common_prefixes
        .iter()
        .filter_map(|prefix| prefix.filename().map(str::to_string))
        .collect())
}

/// Maintains one table: its log flushed, the days before `oldest`'s day dropped, small files
/// compacted, removed files deleted.
async fn maintain_table(table: &EventTable, oldest: DateTime<Utc>, keep_removed_files: chrono::Duration) {
    let name = table.name();
    let first_kept_day = oldest.date_naive();
    flush_write_ahead_log(table, name).await;
    match table.drop_days_before(first_kept_day).await {
        Ok(0) => {}
        Ok(files) => {
            tracing::info!(table = %name, files, %first_kept_day, "dropped days outside retention")
        }
        Err(error) => tracing::warn!(table = %name, %error, "enforcing retention failed; will retry"),
    }
    if let Err(error) = table.compact().await {
        tracing::warn!(table = %name, %error, "compacting failed; will retry");
    }
    match table.vacuum(keep_removed_files).await {
        Ok(0) => {}
        Ok(files) => tracing::info!(table = %name, files, "deleted files removed from the table"),
        Err(error) => tracing::warn!(table = %name, %error, "vacuuming failed; will retry"),
    }
}

/// Moves whatever waits in a store's write-ahead log into its table: the segments a server
/// stopped before flushing, at start, and any a flusher left behind.
async fn flush_write_ahead_log(table: &EventTable, name: &str) {
    let log = match WriteAheadLog::new(table) {
        Ok(log) => log,
        Err(error) => {
            return tracing::warn!(table = %name, %error, "the write-ahead log cannot be read; will retry");
        }
    };
    loop {
        match log.flush().await {
            Ok(flushed) if flushed.segments == 0 => return,
            Ok(flushed) => {
                tracing::info!(table = %name, segments = flushed.segments, rows = flushed.rows, "flushed the write-ahead log")
            }
            Err(error) => {
                return tracing::warn!(table = %name, %error, "flushing the write-ahead log failed; will retry");
            }
        }
    }
}
