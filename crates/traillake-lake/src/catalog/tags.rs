//! The tags of the catalog's resources (event data stores, channels, trails and dashboards): at most 50 per
//! resource, a key's value replaced when it is added again.

use chrono::{DateTime, Utc};
use traillake_api::event_data_stores::MAX_TAGS;
use traillake_api::shapes::Tag;

use super::{Catalog, CatalogDocument, channels, dashboards, find_active_mut, trails};
use crate::Result;
use crate::error::LakeError;

/// A resource that carries tags and a resource policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaggedResource<'a> {
    /// An event data store, by ID.
    EventDataStore(&'a str),
    /// A channel, by ID.
    Channel(&'a str),
    /// A trail, by name; it carries tags but no resource policy.
    Trail(&'a str),
    /// A dashboard, by name.
    Dashboard(&'a str),
}

/// The parts of a resource that tags and policies change.
pub(super) struct ResourceParts<'a> {
    pub(super) name: String,
    pub(super) tags: &'a mut Vec<Tag>,
    /// `None` for a resource that takes no resource policy.
    pub(super) policy: Option<&'a mut Option<String>>,
    pub(super) updated: &'a mut DateTime<Utc>,
}

/// Returns the parts of an active resource of the account.
pub(super) fn resource_parts<'a>(
    doc: &'a mut CatalogDocument,
    account_id: &str,
    resource: TaggedResource<'_>,
) -> Result<ResourceParts<'a>> {
    match resource {
        TaggedResource::EventDataStore(id) => {
            let store = find_active_mut(doc, account_id, id)?;
            Ok(ResourceParts {
                name: format!("event data store {}", store.id),
                tags: &mut store.tags,
                policy: Some(&mut store.resource_policy),
                updated: &mut store.updated,
            })
        }
        TaggedResource::Channel(id) => {
            let channel = channels::find_mut(doc, account_id, id)?;
            Ok(ResourceParts {
                name: format!("channel {}", channel.id),
                tags: &mut channel.tags,
                policy: Some(&mut channel.resource_policy),
                updated: &mut channel.updated,
            })
        }
        TaggedResource::Dashboard(name) => {
            let dashboard = dashboards::find_mut(doc, account_id, name)?;
            Ok(ResourceParts {
                name: format!("dashboard {}", dashboard.name),
                tags: &mut dashboard.tags,
                policy: Some(&mut dashboard.resource_policy),
                updated: &mut dashboard.updated,
            })
        }
        TaggedResource::Trail(name) => {
            let trail = trails::find_mut(doc, account_id, name)?;
            Ok(ResourceParts {
                name: format!("trail {}", trail.name),
                tags: &mut trail.tags,
                policy: None,
                updated: &mut trail.updated,
            })
        }
    }
}

impl Catalog {
    /// Adds tags to an active resource, replacing the values of keys it has; at most 50 in all.
    pub async fn add_tags(
        &self,
        account_id: &str,
        resource: TaggedResource<'_>,
        tags: &[Tag],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.change(|doc| {
            let parts = resource_parts(doc, account_id, resource)?;
            let mut merged = parts.tags.clone();
            for tag in tags {
                match merged.iter_mut().find(|t| t.key == tag.key) {
                    Some(existing) => existing.value = tag.value.clone(),
                    None => merged.push(tag.clone()),
                }
            }
            if merged.len() > MAX_TAGS {
                return Err(LakeError::TagsLimitExceeded(format!(
                    "{} would have {} tags; a resource takes at most {MAX_TAGS}",
                    parts.name,
                    merged.len()
                )));
            }
            *parts.tags = merged;
            *parts.updated = now;
            Ok(())
        })
        .await
    }

    /// Removes the tags with the given keys from an active resource.
    pub async fn remove_tags(
        &self,
        account_id: &str,
        resource: TaggedResource<'_>,
        tags: &[Tag],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.change(|doc| {
            let parts = resource_parts(doc, account_id, resource)?;
            parts.tags.retain(|t| !tags.iter().any(|r| r.key == t.key));
            *parts.updated = now;
            Ok(())
        })
        .await
    }

    /// Returns the tags of an active resource.
    pub async fn tags(&self, account_id: &str, resource: TaggedResource<'_>) -> Result<Vec<Tag>> {
        let mut state = self.state.lock().await;
        Ok(resource_parts(&mut state, account_id, resource)?.tags.clone())
    }
}
