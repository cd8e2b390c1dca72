//! The one write path for CloudTrail record files, shared by `traillake load` and by imports: a
//! file's bytes become rows ([`file_rows`]), rows gather in an [`EventWriter`], and the writer
//! commits them to the store's table in large appends.

use chrono::{DateTime, Utc};
use traillake_api::selectors::StoreKind;

use crate::error::LakeError;
use crate::events::schema::event_schema;
use crate::events::{EventRow, InvalidFile, cloudtrail_row, read_records, rows_to_batch};
use crate::table::{Commit, EventTable};

/// A record of a file that could not be made a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecord {
    /// The record's position in the file, from 1.
    pub position: usize,
    /// Why.
    pub reason: String,
}

/// The rows of one file of records.
#[derive(Debug, Default)]
pub struct FileRows {
    /// Records the file holds.
    pub records: usize,
    /// The rows to store.
    pub rows: Vec<EventRow>,
    /// Records older than the store keeps, not stored.
    pub outside_retention: usize,
    /// Records that could not be made rows.
    pub rejected: Vec<RejectedRecord>,
}

/// Returns the rows of a file of CloudTrail records, leaving out events older than `oldest_kept`.
pub fn file_rows(bytes: &[u8], oldest_kept: DateTime<Utc>) -> Result<FileRows, InvalidFile> {
    let records = read_records(bytes)?;
    let schema = event_schema(StoreKind::CloudTrail);
    let mut out = FileRows { records: records.len(), ..FileRows::default() };
    for (index, record) in records.iter().enumerate() {
        match cloudtrail_row(record, schema.fields()) {
            Ok(row) if row.event_time < oldest_kept => out.outside_retention += 1,
            Ok(row) => out.rows.push(row),
            Err(invalid) => out.rejected.push(RejectedRecord { position: index + 1, reason: invalid.reason }),
        }
    }
    Ok(out)
}

/// Returns the oldest event time a store with the given retention keeps at `now`.
pub fn oldest_kept(retention_days: i32, now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(retention_days))
}

/// Gathers rows for a store's table and commits them in appends of at least `commit_rows` rows.
#[derive(Debug)]
pub struct EventWriter {
    table: EventTable,
    pending: Vec<EventRow>,
    commit_rows: usize,
}

impl EventWriter {
    /// Rows per commit by default: large enough for full row groups, small enough to bound memory.
    pub const COMMIT_ROWS: usize = 256 * 1024;

    /// Returns a writer for the table.
    pub fn new(table: EventTable, commit_rows: usize) -> Self {
        Self { table, pending: Vec::new(), commit_rows: commit_rows.max(1) }
    }

    /// Adds rows; commits when enough are pending. Returns the commit made, if one was.
    pub async fn push(&mut self, rows: Vec<EventRow>) -> Result<Option<Commit>, LakeError> {
        self.pending.extend(rows);
        if self.pending.len() < self.commit_rows {
            return Ok(None);
        }
        self.commit().await
    }

    /// Commits the pending rows, if there are any.
    pub async fn commit(&mut self) -> Result<Option<Commit>, LakeError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let batch = rows_to_batch(self.table.schema(), &self.pending)?;
        let commit = self.table.append(&[batch]).await?;
        self.pending.clear();
        Ok(Some(commit))
    }

    /// Returns the rows waiting for a commit.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}
