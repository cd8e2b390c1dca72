//! Live events: CloudTrail records that arrive by themselves (traillake's own API calls, the log
//! files of followed trails), stored where AWS would put them (`../shared/notes/api-gaps.md` §3.0):
//!
//! - the account's Event history (`traillake_lake::EventTable::history`) takes its management
//!   events;
//! - each of the account's `ENABLED` CloudTrail event data stores takes the records its advanced
//!   event selectors match (`traillake_api::selectors::matches`), of every Region if the store is
//!   multi-Region and of the server's Region otherwise. A store whose ingestion is stopped, or that
//!   is pending deletion, takes nothing; a store with ContextKeySelectors takes each record with
//!   its `eventContext` ([`crate::event_context`]);
//! - each trail of the account takes the records of the time it logged that its event selectors
//!   match (basic ones translated to advanced ones), of every Region if it is multi-Region and of
//!   the server's Region otherwise, without the events of global services unless it includes them.
//!   Records go to the trails' outboxes first, so a record the Event history holds is one its
//!   trails deliver.
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

use crate::event_context::{ContextKeys, ResourceTags, enrich, resource_tags};
use crate::group_commit::{CommitError, GroupCommit};
use crate::trails::Trails;

/// The event sources of global services, whose events a trail delivers only with
/// `IncludeGlobalServiceEvents`.
const GLOBAL_EVENT_SOURCES: &[&str] = &[
    "iam.amazonaws.com",
    "sts.amazonaws.com",
    "cloudfront.amazonaws.com",
    "route53.amazonaws.com",
    "signin.amazonaws.com",
];

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
    trails: Option<Arc<Trails>>,
}

/// A valid record made ready, read once for every destination: its text, row and JSON.
struct Ready<'a> {
    record: &'a RawValue,
    row: EventRow<'a>,
    value: Value,
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
            trails: None,
        }
    }

    /// Returns the live ingestion delivering to the logging trails too.
    pub fn with_trails(self, trails: Arc<Trails>) -> Self {
        Self {
            trails: Some(trails),
            ..self
        }
    }

    /// Stores the CloudTrail records of one account through group commit; returns once every
    /// destination holds them, or the first destination's error.
    pub async fn deliver(&self, account_id: &str, records: &[&RawValue]) -> Result<Delivered, CommitError> {
        let (delivered, ready) = read_records(account_id, records);
        self.deliver_to_trails(account_id, &ready).await?;
        let writes = self.destinations(account_id, &ready).await;
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
        let (delivered, ready) = read_records(account_id, records);
        for (table, batch) in self.destinations(account_id, &ready).await {
            table.append_once(&[batch], mark).await?;
        }
        Ok(delivered)
    }

    /// Keeps in each logging trail's outbox the records it selects.
    async fn deliver_to_trails(&self, account_id: &str, ready: &[Ready<'_>]) -> Result<(), CommitError> {
        let Some(trails) = &self.trails else {
            return Ok(());
        };
        // A trail that stopped may still take the calls made before it stopped, recorded since.
        let logging: Vec<_> = self
            .catalog
            .trails_taking_events_of(account_id)
            .await
            .into_iter()
            .filter(|trail| trail.start_logging_time.is_some())
            .collect();
        let appends = logging.iter().map(|trail| {
            let selectors = trail.advanced_selectors();
            let taken: Vec<&str> = ready
                .iter()
                .filter(|ready| {
                    let event = selected_event(&ready.value);
                    let region = ready.value.get("awsRegion").and_then(Value::as_str);
                    let in_region = trail.multi_region || region == Some(self.region.as_str());
                    let global = event
                        .event_source
                        .is_some_and(|source| GLOBAL_EVENT_SOURCES.contains(&source));
                    let logged = ready
                        .value
                        .get("eventTime")
                        .and_then(Value::as_str)
                        .is_some_and(|time| trail.logged_at(time));
                    logged
                        && in_region
                        && (trail.include_global_service_events || !global)
                        && matches(&selectors, &event)
                })
                .map(|ready| ready.record.get())
                .collect();
            async move {
                if taken.is_empty() {
                    return Ok(());
                }
                trails.append_of(trail, account_id, &taken).await
            }
        });
        for outcome in futures::future::join_all(appends).await {
            outcome?;
        }
        Ok(())
    }

    /// Returns where the records of one account go: the rows of each destination table (the
    /// account's Event history, its stores and the organization stores that take its events).
    async fn destinations(&self, account_id: &str, ready: &[Ready<'_>]) -> Vec<(EventTable, RecordBatch)> {
        let stores: Vec<_> = self
            .catalog
            .stores_taking_events_of(account_id)
            .await
            .into_iter()
            .filter(|store| store.kind == StoreKind::CloudTrail && store.status == EventDataStoreStatus::Enabled)
            .collect();
        let mut history = Vec::new();
        let mut per_store: Vec<Vec<usize>> = vec![Vec::new(); stores.len()];
        for (index, record) in ready.iter().enumerate() {
            let event = selected_event(&record.value);
            if event.event_category == "Management" {
                history.push(index);
            }
            let region = record.value.get("awsRegion").and_then(Value::as_str);
            let size = record.record.get().len();
            for (store, taken) in stores.iter().zip(per_store.iter_mut()) {
                let in_region = store.multi_region || region == Some(self.region.as_str());
                if !(in_region && matches(&store.selectors, &event)) {
                    continue;
                }
                if size > store.max_event_bytes() {
                    tracing::warn!(
                        store_id = %store.id,
                        size,
                        max_event_size = store.max_event_size.name(),
                        "a live event is larger than the store's MaxEventSize; the store does not take it"
                    );
                    continue;
                }
                taken.push(index);
            }
        }

        let mut writes = Vec::new();
        if !history.is_empty() {
            writes.push((EventTable::history(&self.root, account_id), batch_of(ready, &history)));
        }
        for (store, taken) in stores.iter().zip(&per_store) {
            if taken.is_empty() {
                continue;
            }
            let batch = match ContextKeys::of(&store.context_key_selectors) {
                None => batch_of(ready, taken),
                Some(keys) => {
                    let tags = if keys.wants_tags() {
                        let records: Vec<&Value> = taken.iter().map(|&index| &ready[index].value).collect();
                        resource_tags(&self.catalog, &records).await
                    } else {
                        ResourceTags::new()
                    };
                    enriched_batch(ready, taken, &keys, &tags, store.max_event_bytes())
                }
            };
            writes.push((EventTable::new(&self.root, &store.id, store.kind), batch));
        }
        writes
    }
}

/// Reads each record once for every destination; a record that is not a valid CloudTrail record
/// is counted and stored nowhere.
fn read_records<'a>(account_id: &str, records: &[&'a RawValue]) -> (Delivered, Vec<Ready<'a>>) {
    let mut delivered = Delivered::default();
    let mut ready = Vec::with_capacity(records.len());
    for record in records {
        match parse(record) {
            Ok((row, value)) => ready.push(Ready { record, row, value }),
            Err(error) => {
                delivered.invalid += 1;
                tracing::warn!(account_id, %error, "a live record is not a valid CloudTrail record; it is stored nowhere");
            }
        }
    }
    (delivered, ready)
}

/// Returns a record's row and its JSON, or why it is not a CloudTrail record.
fn parse(record: &RawValue) -> Result<(EventRow<'_>, Value), InvalidRecord> {
    let row = cloudtrail_row(record)?;
    let parsed = serde_json::from_str(record.get()).unwrap_or(Value::Null);
    Ok((row, parsed))
}

/// Returns the rows at `indexes` with the `eventContext` a store's context keys add
/// ([`crate::event_context`]); a record the keys find nothing in, or that its context would make
/// larger than the store's MaxEventSize, is stored as it came (AWS drops `eventContext` among the
/// first fields when it truncates a record).
fn enriched_batch(
    ready: &[Ready<'_>],
    indexes: &[usize],
    keys: &ContextKeys,
    tags: &ResourceTags,
    max_event_bytes: usize,
) -> RecordBatch {
    let texts: Vec<Option<Box<RawValue>>> = indexes
        .iter()
        .map(|&index| {
            let enriched = enrich(&ready[index].value, keys, tags)?;
            serde_json::value::to_raw_value(&enriched)
                .ok()
                .filter(|text| text.get().len() <= max_event_bytes)
        })
        .collect();
    let text_bytes = indexes
        .iter()
        .zip(&texts)
        .map(|(&index, text)| {
            text.as_ref()
                .map_or(ready[index].record.get().len(), |text| text.get().len())
        })
        .sum();
    let mut rows = EventRows::new(StoreKind::CloudTrail, indexes.len(), text_bytes);
    for (&index, text) in indexes.iter().zip(&texts) {
        match text.as_deref().map(cloudtrail_row) {
            Some(Ok(row)) => rows.append(&row),
            _ => rows.append(&ready[index].row),
        }
    }
    rows.finish()
}

/// Returns the rows at `indexes` as one batch of a CloudTrail table.
fn batch_of(ready: &[Ready<'_>], indexes: &[usize]) -> RecordBatch {
    let text_bytes = indexes.iter().map(|&index| ready[index].record.get().len()).sum();
    let mut rows = EventRows::new(StoreKind::CloudTrail, indexes.len(), text_bytes);
    for &index in indexes {
        rows.append(&ready[index].row);
    }
    rows.finish()
}
