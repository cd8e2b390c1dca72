//! The one write path for CloudTrail record files, shared by `traillake load` and by imports: a
//! file's bytes become an Arrow batch of rows ([`file_rows`], CPU work that callers run on
//! blocking threads, several files at once), batches gather in an [`EventWriter`], and the writer
//! commits them to the store's table in large appends.
//!
//! A file's records stay JSON text until each is made a row, and rows go straight into Arrow
//! builders: a file in flight holds its text and its batch, not trees of parsed records, and
//! pending rows are held as compact Arrow batches.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use serde_json::value::RawValue;
use traillake_api::selectors::StoreKind;

use crate::Result;
use crate::table::{Commit, EventTable};
use traillake_events::files::{MAX_TEXT_BYTES, file_text, parse_records};
use traillake_events::{EventRows, InvalidFile, cloudtrail_row};

/// A record of a file that could not be made a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecord {
    /// The record's position in the file, from 1.
    pub position: usize,
    /// Why.
    pub reason: String,
}

/// The rows of one file of records.
#[derive(Debug)]
pub struct FileRows {
    /// Records the file holds.
    pub records: usize,
    /// The rows to store, in the table schema of CloudTrail stores.
    pub batch: RecordBatch,
    /// Records older than the store keeps, not stored.
    pub outside_retention: usize,
    /// Records that could not be made rows.
    pub rejected: Vec<RejectedRecord>,
}

/// Returns the rows of a file of CloudTrail records, leaving out events older than `oldest_kept`,
/// whatever their size (the Event history, tests).
pub fn file_rows(bytes: &[u8], oldest_kept: DateTime<Utc>) -> Result<FileRows, InvalidFile> {
    file_rows_within(bytes, oldest_kept, usize::MAX)
}

/// Returns the rows of a file of CloudTrail records for a store: events older than
/// `oldest_kept` left out, and records larger than `max_event_bytes` (the store's MaxEventSize)
/// rejected.
pub fn file_rows_within(
    bytes: &[u8],
    oldest_kept: DateTime<Utc>,
    max_event_bytes: usize,
) -> Result<FileRows, InvalidFile> {
    Ok(records_rows(
        &parse_records(&file_text(bytes, MAX_TEXT_BYTES)?)?,
        oldest_kept,
        max_event_bytes,
    ))
}

/// Returns the rows of a file's records (as [`parse_records`] returns them), leaving out events
/// older than `oldest_kept` and rejecting records of more than `max_event_bytes` bytes of JSON.
pub fn records_rows(records: &[Cow<'_, RawValue>], oldest_kept: DateTime<Utc>, max_event_bytes: usize) -> FileRows {
    let text_bytes = records.iter().map(|record| record.get().len()).sum();
    let mut rows = EventRows::new(StoreKind::CloudTrail, records.len(), text_bytes);
    let (mut outside_retention, mut rejected) = (0, Vec::new());
    for (index, record) in records.iter().enumerate() {
        let size = record.get().len();
        if size > max_event_bytes {
            rejected.push(RejectedRecord {
                position: index + 1,
                reason: format!(
                    "the event is {size} bytes, more than the store's MaxEventSize of {max_event_bytes} bytes \
                     (PutEventConfiguration MaxEventSize Large takes events up to 1 MB)"
                ),
            });
            continue;
        }
        match cloudtrail_row(record) {
            Ok(row) if row.event_time < oldest_kept => outside_retention += 1,
            Ok(row) => rows.append(&row),
            Err(invalid) => rejected.push(RejectedRecord {
                position: index + 1,
                reason: invalid.reason,
            }),
        }
    }
    FileRows {
        records: records.len(),
        batch: rows.finish(),
        outside_retention,
        rejected,
    }
}

/// Gathers rows for a store's table and commits them in appends of at least `commit_rows` rows.
#[derive(Debug)]
pub struct EventWriter {
    table: EventTable,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    commit_rows: usize,
}

impl EventWriter {
    /// Rows per commit by default: a full row group, and little enough memory: `traillake load` of
    /// 1M events peaked at 636-661 MiB with 128k rows, 949-1,064 MiB with 256k, at the same speed.
    pub const COMMIT_ROWS: usize = 128 * 1024;

    /// Returns a writer for the table.
    pub fn new(table: EventTable, commit_rows: usize) -> Self {
        Self {
            table,
            pending: Vec::new(),
            pending_rows: 0,
            commit_rows: commit_rows.max(1),
        }
    }

    /// Adds a batch of rows in the table's schema; commits when enough are pending. Returns the
    /// commit made, if one was.
    pub async fn push(&mut self, batch: RecordBatch) -> Result<Option<Commit>> {
        if batch.num_rows() > 0 {
            self.pending_rows += batch.num_rows();
            self.pending.push(batch);
        }
        if self.pending_rows < self.commit_rows {
            return Ok(None);
        }
        self.commit().await
    }

    /// Commits the pending rows, if there are any.
    pub async fn commit(&mut self) -> Result<Option<Commit>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let commit = self.table.append(&self.pending).await?;
        self.pending.clear();
        self.pending_rows = 0;
        Ok(Some(commit))
    }

    /// Returns the rows waiting for a commit.
    pub fn pending(&self) -> usize {
        self.pending_rows
    }
}
