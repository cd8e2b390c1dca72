//! Live events: CloudTrail records that arrive by themselves (traillake's own API calls, the log
//! files of followed trails), stored where AWS would put them (`../shared/notes/api-gaps.md` §3.0):
//!
//! - the account's Event history (`traillake_lake::EventTable::history`) takes its management
//!   events;
//! - each of the account's `ENABLED` CloudTrail event data stores takes the records its advanced
//!   event selectors match (`traillake_api::selectors::matches`), of every Region if the store is
//!   multi-Region and of the server's Region otherwise. A store whose ingestion is stopped, or that
//!   is pending deletion, takes nothing.
//!
//! [`LiveEvents::deliver`] writes each destination through group commit (its write-ahead log), for
//! records that come one call at a time; [`LiveEvents::deliver_marked`] appends to each destination
//! in one Delta commit that also records a writer's progress, for a follower that must store each
//! file exactly once across crashes. Either returns once every destination holds its records. The
//! stores are read from the catalog at each delivery, so a change of selectors or of ingestion
//! applies to the next one.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use serde_json::Value;
use serde_json::value::RawValue;
use traillake_api::selectors::{StoreKind, matches};
use traillake_api::shapes::EventDataStoreStatus;
use traillake_lake::events::selection::selected_event;
use traillake_lake::events::{EventRow, EventRows, InvalidRecord, cloudtrail_row};
use traillake_lake::{AppProgress, Catalog, EventTable, LakeError, LakeRoot};

use crate::group_commit::{CommitError, GroupCommit};

/// What one delivery did not store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Records that are not valid CloudTrail records, stored nowhere.
    pub invalid: usize,
}

/// Stores live CloudTrail records in the Event history and the stores that select them.
#[derive(Debug)]
pub struct LiveEvents {
    root: LakeRoot,
    catalog: Arc<Catalog>,
    commits: Arc<GroupCommit>,
    region: String,
}

/// A record made ready: its row, and the length of its text.
struct Ready<'a> {
    row: EventRow<'a>,
    text_bytes: usize,
}

impl LiveEvents {
    /// Returns the live ingestion of a root's catalog, for a server of `region`, writing through
    /// `commits`.
    pub fn new(root: LakeRoot, catalog: Arc<Catalog>, commits: Arc<GroupCommit>, region: String) -> Self {
        Self {
            root,
            catalog,
            commits,
            region,
        }
    }

    /// Stores the CloudTrail records of one account through group commit; returns once every
    /// destination holds them, or the first destination's error.
    pub async fn deliver(&self, account_id: &str, records: &[&RawValue]) -> Result<Delivered, CommitError> {
        let (delivered, writes) = self.destinations(account_id, records).await;
        let outcomes = futures::future::join_all(
            writes
                .into_iter()
                .map(|(table, batch)| async move { self.commits.append(&table, batch).await }),
        )
        .await;
        outcomes.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(delivered)
    }

    /// Stores the CloudTrail records of one account in one commit per destination that also
    /// records `mark`; a destination whose committed progress of `mark.writer` is already
    /// `mark.progress` or more holds these records and is left alone, so that a writer that
    /// resumes after a crash delivers again what it may have delivered, and stores it once.
    pub async fn deliver_marked(
        &self,
        account_id: &str,
        records: &[&RawValue],
        mark: &AppProgress,
    ) -> Result<Delivered, LakeError> {
        let (delivered, writes) = self.destinations(account_id, records).await;
        for (table, batch) in writes {
            table.append_once(&[batch], mark).await?;
        }
        Ok(delivered)
    }

    /// Returns where the records of one account go: the rows of each destination table.
    async fn destinations(
        &self,
        account_id: &str,
        records: &[&RawValue],
    ) -> (Delivered, Vec<(EventTable, RecordBatch)>) {
        let stores: Vec<_> = self
            .catalog
            .event_data_stores(account_id)
            .await
            .into_iter()
            .filter(|store| store.kind == StoreKind::CloudTrail && store.status == EventDataStoreStatus::Enabled)
            .collect();
        let mut delivered = Delivered::default();
        let mut ready = Vec::with_capacity(records.len());
        let mut history = Vec::new();
        let mut per_store: Vec<Vec<usize>> = vec![Vec::new(); stores.len()];
        for record in records {
            let (row, parsed) = match parse(record) {
                Ok(parsed) => parsed,
                Err(error) => {
                    delivered.invalid += 1;
                    tracing::warn!(account_id, %error, "a live record is not a valid CloudTrail record; it is stored nowhere");
                    continue;
                }
            };
            let event = selected_event(&parsed);
            let index = ready.len();
            if event.event_category == "Management" {
                history.push(index);
            }
            let region = parsed.get("awsRegion").and_then(Value::as_str);
            for (store, taken) in stores.iter().zip(per_store.iter_mut()) {
                let in_region = store.multi_region || region == Some(self.region.as_str());
                if in_region && matches(&store.selectors, &event) {
                    taken.push(index);
                }
            }
            ready.push(Ready {
                row,
                text_bytes: record.get().len(),
            });
        }

        let mut writes = Vec::new();
        if !history.is_empty() {
            writes.push((EventTable::history(&self.root, account_id), batch_of(&ready, &history)));
        }
        for (store, taken) in stores.iter().zip(&per_store) {
            if !taken.is_empty() {
                writes.push((
                    EventTable::new(&self.root, &store.id, store.kind),
                    batch_of(&ready, taken),
                ));
            }
        }
        (delivered, writes)
    }
}

/// Returns a record's row and its JSON, or why it is not a CloudTrail record.
fn parse(record: &RawValue) -> Result<(EventRow<'_>, Value), InvalidRecord> {
    let row = cloudtrail_row(record)?;
    let parsed = serde_json::from_str(record.get()).unwrap_or(Value::Null);
    Ok((row, parsed))
}

/// Returns the rows at `indexes` as one batch of a CloudTrail table.
fn batch_of(ready: &[Ready<'_>], indexes: &[usize]) -> RecordBatch {
    let text_bytes = indexes.iter().map(|&index| ready[index].text_bytes).sum();
    let mut rows = EventRows::new(StoreKind::CloudTrail, indexes.len(), text_bytes);
    for &index in indexes {
        rows.append(&ready[index].row);
    }
    rows.finish()
}
