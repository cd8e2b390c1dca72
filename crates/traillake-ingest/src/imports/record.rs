//! What traillake keeps of an import under the lake root, and how it is stored:
//! `imports/{id}/import.json` holds the [`ImportRecord`] (the request, the status, and the
//! checkpoint the import's work reached, with its statistics), rewritten whole at each change;
//! `imports/{id}/failures/{seq}.json` holds the failure entries that checkpoint `seq` added or
//! changed, so that the entries of a large import are written once each, not at every
//! checkpoint.
//!
//! A checkpoint that stores events is first written as `pending`, then committed to the store's
//! table together with its sequence number (a Delta application transaction), then written as
//! the record's `checkpoint`. After a crash, the table says whether the pending checkpoint was
//! committed ([`ImportRecord::settle`]), so the import resumes exactly where its events end.

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};
use traillake_api::shapes::{ImportFailureStatus, ImportStatus};

use super::ImportError;

/// The counters GetImport shows, as of a checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    /// Day prefixes with files selected.
    pub prefixes_found: i64,
    /// Day prefixes whose every selected file was processed.
    pub prefixes_completed: i64,
    /// Log files whose events were all stored.
    pub files_completed: i64,
    /// Events stored.
    pub events_completed: i64,
    /// Failure entries recorded.
    pub failed_entries: i64,
}

/// How far an import's work got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Grows by one with each checkpoint; the table records it with the checkpoint's events.
    pub seq: i64,
    /// The last object key of the source listing that was processed (keys are listed in order).
    pub cursor: Option<String>,
    /// The day prefix of the cursor, not yet counted as completed.
    pub open_prefix: Option<String>,
    /// The statistics as of this checkpoint.
    pub statistics: Statistics,
}

/// Where an import reads from, as StartImport gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSourceRecord {
    /// `S3LocationUri`.
    pub uri: String,
    /// The bucket of the URI.
    pub bucket: String,
    /// The key prefix of the URI: empty, or ending with `/`.
    pub prefix: String,
    /// `S3BucketRegion`.
    pub region: String,
    /// `S3BucketAccessRoleArn`.
    pub role_arn: String,
}

/// An import as the lake keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// The import's ID, a lowercase UUID.
    pub id: String,
    /// The account that started it.
    pub account_id: String,
    /// The ID of the destination event data store.
    pub destination: String,
    /// The bucket and prefix read.
    pub source: ImportSourceRecord,
    /// `StartEventTime`.
    pub start: Option<DateTime<Utc>>,
    /// `EndEventTime`.
    pub end: Option<DateTime<Utc>>,
    /// The status.
    pub status: ImportStatus,
    /// When the import was started.
    pub created: DateTime<Utc>,
    /// When the import last changed.
    pub updated: DateTime<Utc>,
    /// The work done and stored.
    pub checkpoint: Checkpoint,
    /// A checkpoint whose events are being committed to the table.
    pub pending: Option<Checkpoint>,
}

impl ImportRecord {
    /// Returns true while the import runs (INITIALIZING or IN_PROGRESS).
    pub fn is_ongoing(&self) -> bool {
        matches!(self.status, ImportStatus::Initializing | ImportStatus::InProgress)
    }

    /// Returns the name under which the import's commits record their checkpoint in the table.
    pub fn writer(&self) -> String {
        format!("import-{}", self.id)
    }

    /// Settles a pending checkpoint once the table's committed checkpoint is known: it becomes
    /// the checkpoint if the table holds its events, and is dropped otherwise.
    pub fn settle(&mut self, committed_seq: Option<i64>) {
        if let Some(pending) = self.pending.take()
            && committed_seq == Some(pending.seq)
        {
            self.checkpoint = pending;
        }
    }
}

/// A location an import could not copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportFailure {
    /// The object key (or the prefix, for a listing that failed).
    pub location: String,
    /// FAILED, RETRY or SUCCEEDED.
    pub status: ImportFailureStatus,
    /// What went wrong: `InvalidFileFormat`, `InvalidJson`, `InvalidRecord`, `FileTooLarge`,
    /// `AccessDenied`, `ReadFailed`.
    pub error_type: String,
    /// Why, in words.
    pub error_message: String,
    /// When the entry last changed.
    pub updated: DateTime<Utc>,
}

/// The folder of an import under the root.
fn folder(id: &str) -> Path {
    Path::from(format!("imports/{id}"))
}

fn record_path(id: &str) -> Path {
    folder(id).join("import.json")
}

fn failures_folder(id: &str) -> Path {
    folder(id).join("failures")
}

fn failures_path(id: &str, seq: i64) -> Path {
    failures_folder(id).join(format!("{seq:020}.json"))
}

/// Stores the record.
pub async fn save_record(store: &dyn ObjectStore, record: &ImportRecord) -> Result<(), ImportError> {
    let bytes = serde_json::to_vec_pretty(record).expect("an import record serializes");
    store.put(&record_path(&record.id), PutPayload::from(bytes)).await?;
    Ok(())
}

/// Stores the failure entries added or changed by checkpoint `seq`.
pub async fn save_failures(
    store: &dyn ObjectStore,
    id: &str,
    seq: i64,
    failures: &[ImportFailure],
) -> Result<(), ImportError> {
    let bytes = serde_json::to_vec(failures).expect("failure entries serialize");
    store.put(&failures_path(id, seq), PutPayload::from(bytes)).await?;
    Ok(())
}

/// Returns every import record under the root.
pub async fn load_records(store: &dyn ObjectStore) -> Result<Vec<ImportRecord>, ImportError> {
    let listing = store.list_with_delimiter(Some(&Path::from("imports"))).await?;
    let mut records = Vec::with_capacity(listing.common_prefixes.len());
    for folder in listing.common_prefixes {
        let path = folder.join("import.json");
        let bytes = match store.get(&path).await {
            Ok(result) => result.bytes().await?,
            // A folder without a record is an import whose first write did not finish.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(error) => return Err(error.into()),
        };
        let record = serde_json::from_slice(&bytes).map_err(|source| ImportError::Corrupt {
            context: format!("reading {path}"),
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Returns the failure entries of an import up to checkpoint `seq`, each location once with its
/// latest entry, in the order the locations first failed. With `discard_later`, deletes the
/// entries of checkpoints after `seq`, which were never committed (only the import's runner may:
/// they may be the pending checkpoint of a run in another process).
pub async fn load_failures(
    store: &dyn ObjectStore,
    id: &str,
    seq: i64,
    discard_later: bool,
) -> Result<Vec<ImportFailure>, ImportError> {
    let mut paths: Vec<Path> = store
        .list(Some(&failures_folder(id)))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await?;
    paths.sort();
    let mut failures: Vec<ImportFailure> = Vec::new();
    let mut position = std::collections::HashMap::new();
    for path in paths {
        let chunk_seq = path
            .filename()
            .and_then(|name| name.strip_suffix(".json"))
            .and_then(|n| n.parse::<i64>().ok());
        if chunk_seq.is_none_or(|chunk_seq| chunk_seq > seq) {
            if discard_later {
                store.delete(&path).await?;
            }
            continue;
        }
        let bytes = store.get(&path).await?.bytes().await?;
        let chunk: Vec<ImportFailure> = serde_json::from_slice(&bytes).map_err(|source| ImportError::Corrupt {
            context: format!("reading {path}"),
            source,
        })?;
        for failure in chunk {
            match position.get(&failure.location) {
                Some(&at) => failures[at] = failure,
                None => {
                    position.insert(failure.location.clone(), failures.len());
                    failures.push(failure);
                }
            }
        }
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_a_pending_checkpoint_by_what_the_table_committed() {
        let mut record = ImportRecord {
            id: "i".into(),
            account_id: "123456789012".into(),
            destination: "d".into(),
            source: ImportSourceRecord {
                uri: "s3://b".into(),
                bucket: "b".into(),
                prefix: String::new(),
                region: "us-east-1".into(),
                role_arn: "arn:aws:iam::123456789012:role/r".into(),
            },
            start: None,
            end: None,
            status: ImportStatus::InProgress,
            created: Utc::now(),
            updated: Utc::now(),
            checkpoint: Checkpoint {
                seq: 3,
                ..Default::default()
            },
            pending: Some(Checkpoint {
                seq: 4,
                cursor: Some("k".into()),
                ..Default::default()
            }),
        };
        let mut landed = record.clone();
        landed.settle(Some(4));
        assert_eq!(
            (
                landed.checkpoint.seq,
                landed.checkpoint.cursor.as_deref(),
                landed.pending
            ),
            (4, Some("k"), None)
        );
        record.settle(Some(3));
        assert_eq!((record.checkpoint.seq, record.pending), (3, None));
    }
}
