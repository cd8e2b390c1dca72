//! The channels of the catalog: their records and the rules that depend on what is stored (names
//! and sources unique per account, a limit of channels per account, destinations that are
//! active, single-Region ActivityAuditLog stores of the account).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use traillake_api::channels::{ChannelChanges, NewChannel};
use traillake_api::selectors::StoreKind;
use traillake_api::shapes::Tag;

use super::{Catalog, CatalogDocument, EventDataStoreRecord, find};
use crate::Result;
use crate::error::LakeError;

/// A channel as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// The channel's ID, a lowercase UUID.
    pub id: String,
    /// The owner's account ID.
    pub account_id: String,
    /// The channel's name, unique in the account.
    pub name: String,
    /// `Custom` or a partner source, unique in the account.
    pub source: String,
    /// The IDs of the event data stores it delivers to.
    pub destinations: Vec<String>,
    /// The channel's tags, in the order they were added.
    pub tags: Vec<Tag>,
    /// The channel's resource policy, as the owner put it.
    pub resource_policy: Option<String>,
    /// When the channel was created.
    pub created: DateTime<Utc>,
    /// When the channel last changed.
    pub updated: DateTime<Utc>,
}

pub(super) fn find_mut<'a>(doc: &'a mut CatalogDocument, account_id: &str, id: &str) -> Result<&'a mut ChannelRecord> {
    doc.channels
        .get_mut(id)
        .filter(|c| c.account_id == account_id)
        .ok_or_else(|| LakeError::ChannelNotFound(id.to_string()))
}

/// Checks that each destination is an active, single-Region, non-organization ActivityAuditLog
/// store of the account.
fn check_destinations(doc: &CatalogDocument, account_id: &str, destinations: &[String]) -> Result<()> {
    for id in destinations {
        let store = find(doc, account_id, id)?;
        if !store.is_active() {
            return Err(LakeError::InactiveEventDataStore(store.id.clone()));
        }
        if store.kind != StoreKind::ActivityAuditLog {
            return Err(LakeError::InvalidCategory(format!(
                "event data store {} holds {:?} events; a channel delivers to stores of ActivityAuditLog events",
                store.id, store.kind
            )));
        }
        if let Some(rule) = broken_destination_rule(store) {
            return Err(LakeError::InvalidParameter(format!(
                "event data store {} is {rule}; a channel's destinations must have MultiRegionEnabled and \
                 OrganizationEnabled false",
                store.id
            )));
        }
    }
    Ok(())
}

/// Returns what keeps a store from being a channel's destination: being multi-Region or
/// organization-wide.
fn broken_destination_rule(store: &EventDataStoreRecord) -> Option<&'static str> {
    if store.multi_region {
        return Some("multi-Region");
    }
    if store.organization {
        return Some("an organization event data store");
    }
    None
}

/// Checks that a store's new settings keep it a valid destination of the channels that deliver
/// to it: the rules of CreateChannel hold at every change of the store.
pub(super) fn check_destination_rules(doc: &CatalogDocument, store: &EventDataStoreRecord) -> Result<()> {
    let Some(rule) = broken_destination_rule(store) else {
        return Ok(());
    };
    let delivering = doc
        .channels
        .values()
        .find(|c| c.account_id == store.account_id && c.destinations.contains(&store.id));
    match delivering {
        Some(channel) => Err(LakeError::InvalidParameter(format!(
            "event data store {} is a destination of channel {}, so it cannot become {rule}: a channel's \
             destinations must have MultiRegionEnabled and OrganizationEnabled false",
            store.id, channel.id
        ))),
        None => Ok(()),
    }
}

/// Checks that no other channel of the account has the name.
fn check_name_free(doc: &CatalogDocument, account_id: &str, name: &str, except: Option<&str>) -> Result<()> {
    let taken = doc
        .channels
        .values()
        .any(|c| c.account_id == account_id && c.name == name && Some(c.id.as_str()) != except);
    if taken {
        return Err(LakeError::ChannelAlreadyExists(format!(
            "a channel named {name} already exists"
        )));
    }
    Ok(())
}

impl Catalog {
    /// Creates a channel; at most `max_channels` per account.
    pub async fn create_channel(
        &self,
        account_id: &str,
        new: NewChannel,
        max_channels: usize,
        now: DateTime<Utc>,
    ) -> Result<ChannelRecord> {
        self.change(|doc| {
            check_name_free(doc, account_id, &new.name, None)?;
            if let Some(other) = doc
                .channels
                .values()
                .find(|c| c.account_id == account_id && c.source == new.source)
            {
                return Err(LakeError::ChannelAlreadyExists(format!(
                    "channel {} already takes events of the source {}; an account has one channel per source",
                    other.id, new.source
                )));
            }
            if doc.channels.values().filter(|c| c.account_id == account_id).count() >= max_channels {
                return Err(LakeError::ChannelMaxLimitExceeded(max_channels));
            }
            check_destinations(doc, account_id, &new.destinations)?;
            let record = ChannelRecord {
                id: uuid::Uuid::new_v4().to_string(),
                account_id: account_id.to_string(),
                name: new.name,
                source: new.source,
                destinations: new.destinations,
                tags: new.tags,
                resource_policy: None,
                created: now,
                updated: now,
            };
            doc.channels.insert(record.id.clone(), record.clone());
            Ok(record)
        })
        .await
    }

    /// Returns a channel of the account.
    pub async fn channel(&self, account_id: &str, id: &str) -> Result<ChannelRecord> {
        let state = self.state.lock().await;
        state
            .channels
            .get(id)
            .filter(|c| c.account_id == account_id)
            .cloned()
            .ok_or_else(|| LakeError::ChannelNotFound(id.to_string()))
    }

    /// Returns the account's channels, oldest first.
    pub async fn channels(&self, account_id: &str) -> Vec<ChannelRecord> {
        let state = self.state.lock().await;
        let mut channels: Vec<_> = state
            .channels
            .values()
            .filter(|c| c.account_id == account_id)
            .cloned()
            .collect();
        channels.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        channels
    }

    /// Renames a channel or replaces its destinations.
    pub async fn update_channel(
        &self,
        account_id: &str,
        id: &str,
        changes: ChannelChanges,
        now: DateTime<Utc>,
    ) -> Result<ChannelRecord> {
        self.change(|doc| {
            find_mut(doc, account_id, id)?;
            if let Some(name) = &changes.name {
                check_name_free(doc, account_id, name, Some(id))?;
            }
            if let Some(destinations) = &changes.destinations {
                check_destinations(doc, account_id, destinations)?;
            }
            let channel = find_mut(doc, account_id, id)?;
            if let Some(name) = changes.name {
                channel.name = name;
            }
            if let Some(destinations) = changes.destinations {
                channel.destinations = destinations;
            }
            channel.updated = now;
            Ok(channel.clone())
        })
        .await
    }

    /// Deletes a channel; the events it delivered stay in their stores.
    pub async fn delete_channel(&self, account_id: &str, id: &str) -> Result<()> {
        self.change(|doc| {
            find_mut(doc, account_id, id)?;
            doc.channels.remove(id);
            Ok(())
        })
        .await
    }
}
