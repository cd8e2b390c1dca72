//! The event configuration of stores (their largest event, their context key selectors) and of
//! trails (their aggregation), as PutEventConfiguration sets it.

use chrono::{DateTime, Utc};
use traillake_api::event_configuration::MaxEventSize;
use traillake_api::selectors::StoreKind;
use traillake_api::shapes::{AggregationConfiguration, ContextKeySelector};

use super::{Catalog, EventDataStoreRecord, TrailRecord, find_active_mut, trails};
use crate::Result;
use crate::error::LakeError;

impl Catalog {
    /// Sets the event configuration of an active store of CloudTrail events: `size` when given,
    /// and the selectors, which need the size `Large`.
    pub async fn set_store_event_configuration(
        &self,
        account_id: &str,
        id: &str,
        size: Option<MaxEventSize>,
        selectors: Vec<ContextKeySelector>,
        now: DateTime<Utc>,
    ) -> Result<EventDataStoreRecord> {
        self.change(|doc| {
            let store = find_active_mut(doc, account_id, id)?;
            if store.kind != StoreKind::CloudTrail {
                return Err(LakeError::InvalidCategory(format!(
                    "event configuration applies to stores of CloudTrail events; event data store {id} holds {:?} events",
                    store.kind
                )));
            }
            let size = size.unwrap_or(store.max_event_size);
            if !selectors.is_empty() && size != MaxEventSize::Large {
                return Err(LakeError::InvalidParameter(
                    "ContextKeySelectors need MaxEventSize Large: events with context keys can be larger than 256 KB"
                        .into(),
                ));
            }
            store.max_event_size = size;
            store.context_key_selectors = selectors;
            store.updated = now;
            Ok(store.clone())
        })
        .await
    }

    /// Sets the aggregation configurations of a trail.
    pub async fn set_trail_aggregation(
        &self,
        account_id: &str,
        name: &str,
        configurations: Vec<AggregationConfiguration>,
        now: DateTime<Utc>,
    ) -> Result<TrailRecord> {
        self.change(|doc| {
            let trail = trails::find_mut(doc, account_id, name)?;
            trail.aggregation_configurations = configurations;
            trail.updated = now;
            Ok(trail.clone())
        })
        .await
    }
}
