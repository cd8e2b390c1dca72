//! `Catalog`: the event data stores, channels, trails and dashboards of every account, with their
//! tags and resource policies, persisted as one JSON document under the lake root (`catalog/catalog.json`), rewritten whole on every change. The
//! lock on the root (see `lock`) makes this server its only writer; a mutex orders its own
//! changes, and a change is visible only once it is stored.
//!
//! The catalog owns the rules that depend on what is stored: names unique per account, the limits
//! on stores, channels, trails (`trails`) and dashboards (`dashboards`), the status machine of a store, the settings that may not change, and
//! which stores a channel may deliver to (`channels`), the tags and resource policies of stores and
//! channels (`tags`, `policies`).

mod channels;
mod dashboards;
mod event_configuration;
mod federation;
pub mod insights;
pub mod organization;
mod policies;
mod tags;
mod trails;

pub use channels::ChannelRecord;
pub use dashboards::DashboardRecord;
pub use tags::TaggedResource;
pub use trails::TrailRecord;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use traillake_api::event_configuration::MaxEventSize;
use traillake_api::event_data_stores::{EventDataStoreChanges, NewEventDataStore, check_retention};
use traillake_api::selectors::StoreKind;
use traillake_api::shapes::{
    AdvancedEventSelector, BillingMode, ContextKeySelector, EventDataStoreStatus, FederationStatus, Tag,
};
use traillake_api::wire::WireEnum as _;

use crate::Result;
use crate::error::LakeError;
use crate::root::LakeRoot;

const CATALOG_PATH: &str = "catalog/catalog.json";
const FORMAT_VERSION: u32 = 1;

/// An event data store as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDataStoreRecord {
    /// The store's ID, a lowercase UUID.
    pub id: String,
    /// The owner's account ID.
    pub account_id: String,
    /// The store's name, unique in the account.
    pub name: String,
    /// `Enabled`, `StoppedIngestion` or `PendingDeletion`; transitions complete at once.
    pub status: EventDataStoreStatus,
    /// The kind of events the store holds.
    pub kind: StoreKind,
    /// The advanced event selectors.
    pub selectors: Vec<AdvancedEventSelector>,
    /// Whether the store takes events of every Region.
    pub multi_region: bool,
    /// Whether the store takes the events of an organization.
    pub organization: bool,
    /// Days an event is kept after its `eventTime`.
    pub retention_days: i32,
    /// Whether the store refuses deletion.
    pub termination_protection: bool,
    /// The KMS key the owner named, recorded as given.
    pub kms_key_id: Option<String>,
    /// The billing mode.
    pub billing_mode: BillingMode,
    /// The store's tags, in the order they were added.
    pub tags: Vec<Tag>,
    /// When the store was created.
    pub created: DateTime<Utc>,
    /// When the store last changed.
    pub updated: DateTime<Utc>,
    /// When the store entered `PendingDeletion`.
    pub deleted: Option<DateTime<Utc>>,
    /// The status the store had when it was deleted, which RestoreEventDataStore gives back.
    #[serde(default)]
    pub status_before_deletion: Option<EventDataStoreStatus>,
    /// The store's resource policy, as the owner put it.
    #[serde(default)]
    pub resource_policy: Option<String>,
    /// The Insights types the store finds in its management events (`ApiCallRateInsight`,
    /// `ApiErrorRateInsight`).
    #[serde(default)]
    pub insight_types: Vec<String>,
    /// The store its Insights events go to, while it has Insights types.
    #[serde(default)]
    pub insights_destination: Option<String>,
    /// Whether the store's table is published for other engines (EnableFederation); `Enabling` or
    /// `Disabling` while a call is under way, or after a server stopped in the middle of one.
    #[serde(default = "federation_disabled")]
    pub federation_status: FederationStatus,
    /// The role the store is federated with, while federation is not `Disabled`.
    #[serde(default)]
    pub federation_role_arn: Option<String>,
    /// The largest event the store takes (PutEventConfiguration).
    #[serde(default)]
    pub max_event_size: MaxEventSize,
    /// The context keys added to its events (PutEventConfiguration).
    #[serde(default)]
    pub context_key_selectors: Vec<ContextKeySelector>,
}

fn federation_disabled() -> FederationStatus {
    FederationStatus::Disabled
}

impl EventDataStoreRecord {
    /// Returns true unless the store is pending deletion.
    pub fn is_active(&self) -> bool {
        self.status != EventDataStoreStatus::PendingDeletion
    }

    /// Returns the largest event, in bytes, the store takes.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_size.bytes()
    }

    /// Returns the object store folder of the store's data, relative to the root.
    pub fn data_prefix(&self) -> Path {
        data_prefix(&self.id)
    }

    /// Returns the oldest event time the store keeps at `now`: queries see no older event, and
    /// loads and imports store none.
    pub fn oldest_kept(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        oldest_kept(self.retention_days, now)
    }
}

/// Returns the oldest event time a store with the given retention keeps at `now`.
pub fn oldest_kept(retention_days: i32, now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(i64::from(retention_days))
}

/// Returns the folder of a store's data, relative to the root.
pub fn data_prefix(id: &str) -> Path {
    Path::from(format!("stores/{id}"))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CatalogDocument {
    version: u32,
    event_data_stores: BTreeMap<String, EventDataStoreRecord>,
    #[serde(default)]
    channels: BTreeMap<String, ChannelRecord>,
    /// Trails by `ACCOUNT/NAME`.
    #[serde(default)]
    trails: BTreeMap<String, TrailRecord>,
    /// Dashboards by `ACCOUNT/NAME`.
    #[serde(default)]
    dashboards: BTreeMap<String, DashboardRecord>,
    /// The organization's CloudTrail delegated administrators (see `organization`).
    #[serde(default)]
    delegated_admins: Vec<String>,
}

/// The catalog of a lake root.
#[derive(Debug)]
pub struct Catalog {
    store: Arc<dyn ObjectStore>,
    state: Mutex<CatalogDocument>,
    /// The organization the server is configured with.
    organization: Option<organization::Organization>,
}

impl Catalog {
    /// Loads the catalog of `root`, or starts an empty one if the root has none yet.
    pub async fn load(root: &LakeRoot) -> Result<Self> {
        let store = Arc::clone(root.store());
        let document = match store.get(&Path::from(CATALOG_PATH)).await {
            Ok(result) => {
                let bytes = result.bytes().await?;
                serde_json::from_slice::<CatalogDocument>(&bytes).map_err(|source| LakeError::Corrupt {
                    context: format!("reading {CATALOG_PATH}"),
                    source,
                })?
            }
            Err(object_store::Error::NotFound { .. }) => CatalogDocument {
                version: FORMAT_VERSION,
                ..Default::default()
            },
            Err(error) => return Err(error.into()),
        };
        if document.version > FORMAT_VERSION {
            return Err(LakeError::InvalidRoot(format!(
                "{CATALOG_PATH} has format version {}, newer than this traillake understands ({FORMAT_VERSION})",
                document.version
            )));
        }
        Ok(Self {
            store,
            state: Mutex::new(document),
            organization: None,
        })
    }

    /// Applies `change` to a copy of the catalog, stores the copy, and then makes it current.
    async fn change<T>(&self, change: impl FnOnce(&mut CatalogDocument) -> Result<T>) -> Result<T> {
        let mut state = self.state.lock().await;
        let mut next = state.clone();
        let result = change(&mut next)?;
        next.version = FORMAT_VERSION;
        let bytes = serde_json::to_vec_pretty(&next).expect("the catalog serializes");
        self.store
            .put(&Path::from(CATALOG_PATH), PutPayload::from(bytes))
            .await?;
        *state = next;
        Ok(result)
    }

    /// Returns a store of the account, whatever its status.
    pub async fn event_data_store(&self, account_id: &str, id: &str) -> Result<EventDataStoreRecord> {
        let state = self.state.lock().await;
        find(&state, account_id, id).cloned()
    }

    /// Returns the stores of every account, pending deletion included.
    pub async fn all_event_data_stores(&self) -> Vec<EventDataStoreRecord> {
        let state = self.state.lock().await;
        state.event_data_stores.values().cloned().collect()
    }

    /// Returns the account's stores, oldest first, pending deletion included.
    pub async fn event_data_stores(&self, account_id: &str) -> Vec<EventDataStoreRecord> {
        let state = self.state.lock().await;
        let mut stores: Vec<_> = state
            .event_data_stores
            .values()
            .filter(|s| s.account_id == account_id)
            .cloned()
            .collect();
        stores.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        stores
    }

    /// Creates a store; at most `max_stores` active stores per account.
    pub async fn create_event_data_store(
        &self,
        account_id: &str,
        new: NewEventDataStore,
        max_stores: usize,
        now: DateTime<Utc>,
    ) -> Result<EventDataStoreRecord> {
        let id = uuid::Uuid::new_v4().to_string();
        self.create_event_data_store_with_id(account_id, id, new, max_stores, now)
            .await
    }

    /// Creates a store as [`Catalog::create_event_data_store`] does, with an ID chosen before (a
    /// fresh UUID), so that its table can be made before the store is recorded.
    pub async fn create_event_data_store_with_id(
        &self,
        account_id: &str,
        id: String,
        new: NewEventDataStore,
        max_stores: usize,
        now: DateTime<Utc>,
    ) -> Result<EventDataStoreRecord> {
        self.change(|doc| {
            check_name_free(doc, account_id, &new.name, None)?;
            check_below_limit(doc, account_id, max_stores)?;
            let status = if new.start_ingestion {
                EventDataStoreStatus::Enabled
            } else {
                EventDataStoreStatus::StoppedIngestion
            };
            let record = EventDataStoreRecord {
                id: id.clone(),
                account_id: account_id.to_string(),
                name: new.name,
                status,
                kind: new.kind,
                selectors: new.selectors,
                multi_region: new.multi_region,
                organization: new.organization,
                retention_days: new.retention_days,
                termination_protection: new.termination_protection,
                kms_key_id: new.kms_key_id,
                billing_mode: new.billing_mode,
                tags: new.tags,
                created: now,
                updated: now,
                deleted: None,
                status_before_deletion: None,
                resource_policy: None,
                insight_types: Vec::new(),
                insights_destination: None,
                federation_status: FederationStatus::Disabled,
                federation_role_arn: None,
                max_event_size: MaxEventSize::Standard,
                context_key_selectors: Vec::new(),
            };
            doc.event_data_stores.insert(record.id.clone(), record.clone());
            Ok(record)
        })
        .await
    }

    /// Changes the settings of an active store.
    pub async fn update_event_data_store(
        &self,
        account_id: &str,
        id: &str,
        changes: EventDataStoreChanges,
        now: DateTime<Utc>,
    ) -> Result<EventDataStoreRecord> {
        self.change(|doc| {
            let current = find_active(doc, account_id, id)?.clone();
            if let Some(name) = &changes.name {
                check_name_free(doc, account_id, name, Some(id))?;
            }
            let mut next = current.clone();
            if let Some(mode) = changes.billing_mode {
                if current.billing_mode == BillingMode::ExtendableRetentionPricing
                    && mode == BillingMode::FixedRetentionPricing
                {
                    return Err(LakeError::InvalidParameter(
                        "BillingMode cannot change from EXTENDABLE_RETENTION_PRICING to FIXED_RETENTION_PRICING; \
                         create a new event data store instead"
                            .into(),
                    ));
                }
                next.billing_mode = mode;
            }
            if let Some(days) = changes.retention_days {
                next.retention_days = days;
            }
            check_retention(next.retention_days, next.billing_mode)
                .map_err(|e| LakeError::InvalidParameter(e.message))?;
            if let Some((selectors, kind)) = changes.selectors {
                if kind != current.kind {
                    return Err(LakeError::InvalidEventSelectors(format!(
                        "the store holds {:?} events and its selectors cannot switch it to {kind:?} events",
                        current.kind
                    )));
                }
                next.selectors = selectors;
            }
            if let Some(key) = changes.kms_key_id {
                match &current.kms_key_id {
                    Some(existing) if *existing != key => {
                        return Err(LakeError::InvalidParameter(format!(
                            "the store is encrypted with the KMS key {existing}, which cannot be changed or removed"
                        )));
                    }
                    _ => next.kms_key_id = Some(key),
                }
            }
            if let Some(name) = changes.name {
                next.name = name;
            }
            next.multi_region = changes.multi_region.unwrap_or(next.multi_region);
            next.organization = changes.organization.unwrap_or(next.organization);
            channels::check_destination_rules(doc, &next)?;
            insights::check_insights_kept(&next)?;
            next.termination_protection = changes.termination_protection.unwrap_or(next.termination_protection);
            next.updated = now.max(current.created);
            doc.event_data_stores.insert(next.id.clone(), next.clone());
            Ok(next)
        })
        .await
    }

    /// Moves an active store without termination protection to `PendingDeletion`.
    pub async fn delete_event_data_store(&self, account_id: &str, id: &str, now: DateTime<Utc>) -> Result<()> {
        self.change(|doc| {
            let delivering = doc
                .channels
                .values()
                .find(|c| c.account_id == account_id && c.destinations.iter().any(|d| d == id));
            if let Some(channel) = delivering {
                return Err(LakeError::ChannelExistsForEventDataStore {
                    store: id.to_string(),
                    channel: channel.id.clone(),
                });
            }
            let store = find_active_mut(doc, account_id, id)?;
            if store.termination_protection {
                return Err(LakeError::TerminationProtected(store.id.clone()));
            }
            if store.federation_status != FederationStatus::Disabled {
                return Err(LakeError::FederationEnabled(format!(
                    "event data store {} cannot be deleted while Lake query federation is {}; run DisableFederation first",
                    store.id,
                    store.federation_status.wire_name().unwrap_or("UNSPECIFIED")
                )));
            }
            store.status_before_deletion = Some(store.status);
            store.status = EventDataStoreStatus::PendingDeletion;
            store.deleted = Some(now);
            store.updated = now;
            insights::forget_destination(doc, account_id, id, now);
            Ok(())
        })
        .await
    }

    /// Brings a store pending deletion back to the status it had (`Enabled` or `StoppedIngestion`),
    /// within the limit on stores.
    pub async fn restore_event_data_store(
        &self,
        account_id: &str,
        id: &str,
        max_stores: usize,
        now: DateTime<Utc>,
    ) -> Result<EventDataStoreRecord> {
        self.change(|doc| {
            let store = find(doc, account_id, id)?;
            if store.is_active() {
                return Err(LakeError::InvalidStatus(format!(
                    "event data store {} is {}; only a store pending deletion can be restored",
                    store.id,
                    store.status.wire_name().unwrap_or("UNSPECIFIED")
                )));
            }
            check_below_limit(doc, account_id, max_stores)?;
            let store = find_mut(doc, account_id, id)?;
            store.status = store
                .status_before_deletion
                .take()
                .unwrap_or(EventDataStoreStatus::Enabled);
            store.deleted = None;
            store.updated = now;
            Ok(store.clone())
        })
        .await
    }

    /// Starts (`start` true) or stops ingestion of a store of CloudTrail events, Config items or
    /// channel events.
    pub async fn set_ingestion(&self, account_id: &str, id: &str, start: bool, now: DateTime<Utc>) -> Result<()> {
        self.change(|doc| {
            let store = find_mut(doc, account_id, id)?;
            let operation = if start {
                "StartEventDataStoreIngestion"
            } else {
                "StopEventDataStoreIngestion"
            };
            if !store.kind.has_ingestion_control() {
                return Err(LakeError::InvalidCategory(format!(
                    "{operation} applies to stores of CloudTrail events, Config configuration items or \
                     ActivityAuditLog events; event data store {} holds {:?} events",
                    store.id, store.kind
                )));
            }
            let (from, to) = if start {
                (EventDataStoreStatus::StoppedIngestion, EventDataStoreStatus::Enabled)
            } else {
                (EventDataStoreStatus::Enabled, EventDataStoreStatus::StoppedIngestion)
            };
            if store.status != from {
                return Err(LakeError::InvalidStatus(format!(
                    "{operation} needs the event data store to be {}, but {} is {}",
                    from.wire_name().unwrap_or("UNSPECIFIED"),
                    store.id,
                    store.status.wire_name().unwrap_or("UNSPECIFIED")
                )));
            }
            store.status = to;
            store.updated = now;
            Ok(())
        })
        .await
    }

    /// Purges the stores whose pending deletion period `wait` ended, every `every`, for ever.
    pub async fn purge_deleted_every(&self, wait: std::time::Duration, every: std::time::Duration) {
        let wait = Duration::from_std(wait).unwrap_or(Duration::days(7));
        loop {
            match self.purge_deleted(wait, Utc::now()).await {
                Ok(purged) => {
                    for id in purged {
                        tracing::info!(store_id = %id, "event data store purged");
                    }
                }
                Err(error) => tracing::warn!(%error, "purging deleted event data stores failed; will retry"),
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Deletes every file of a store (`stores/<id>/`).
    pub async fn delete_store_files(&self, id: &str) -> Result<()> {
        let prefix = data_prefix(id);
        let locations = self.store.list(Some(&prefix)).map_ok(|meta| meta.location).boxed();
        self.store.delete_stream(locations).try_collect::<Vec<_>>().await?;
        Ok(())
    }

    /// Purges the stores that have been pending deletion for `wait` or longer: their data, then
    /// their catalog entries. Returns the purged IDs.
    pub async fn purge_deleted(&self, wait: Duration, now: DateTime<Utc>) -> Result<Vec<String>> {
        let expired: Vec<String> = {
            let state = self.state.lock().await;
            state
                .event_data_stores
                .values()
                .filter(|s| s.deleted.is_some_and(|deleted| now - deleted >= wait))
                .map(|s| s.id.clone())
                .collect()
        };
        for id in &expired {
            self.delete_store_files(id).await?;
        }
        if expired.is_empty() {
            return Ok(expired);
        }
        self.change(|doc| {
            for id in &expired {
                doc.event_data_stores.remove(id);
            }
            Ok(())
        })
        .await?;
        Ok(expired)
    }
}

fn find<'a>(doc: &'a CatalogDocument, account_id: &str, id: &str) -> Result<&'a EventDataStoreRecord> {
    doc.event_data_stores
        .get(id)
        .filter(|s| s.account_id == account_id)
        .ok_or_else(|| LakeError::EventDataStoreNotFound(id.to_string()))
}

fn find_mut<'a>(doc: &'a mut CatalogDocument, account_id: &str, id: &str) -> Result<&'a mut EventDataStoreRecord> {
    doc.event_data_stores
        .get_mut(id)
        .filter(|s| s.account_id == account_id)
        .ok_or_else(|| LakeError::EventDataStoreNotFound(id.to_string()))
}

fn find_active<'a>(doc: &'a CatalogDocument, account_id: &str, id: &str) -> Result<&'a EventDataStoreRecord> {
    let store = find(doc, account_id, id)?;
    if !store.is_active() {
        return Err(LakeError::InactiveEventDataStore(store.id.clone()));
    }
    Ok(store)
}

fn find_active_mut<'a>(
    doc: &'a mut CatalogDocument,
    account_id: &str,
    id: &str,
) -> Result<&'a mut EventDataStoreRecord> {
    let store = find_mut(doc, account_id, id)?;
    if !store.is_active() {
        return Err(LakeError::InactiveEventDataStore(store.id.clone()));
    }
    Ok(store)
}

/// Names stay reserved while a store is pending deletion, so that a restore cannot collide.
fn check_name_free(doc: &CatalogDocument, account_id: &str, name: &str, except: Option<&str>) -> Result<()> {
    let taken = doc
        .event_data_stores
        .values()
        .any(|s| s.account_id == account_id && s.name == name && Some(s.id.as_str()) != except);
    if taken {
        return Err(LakeError::EventDataStoreAlreadyExists(name.to_string()));
    }
    Ok(())
}

fn check_below_limit(doc: &CatalogDocument, account_id: &str, max_stores: usize) -> Result<()> {
    let active = doc
        .event_data_stores
        .values()
        .filter(|s| s.account_id == account_id && s.is_active())
        .count();
    if active >= max_stores {
        return Err(LakeError::EventDataStoreMaxLimitExceeded(max_stores));
    }
    Ok(())
}
