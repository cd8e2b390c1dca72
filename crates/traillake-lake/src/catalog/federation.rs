//! The federation status of stores (EnableFederation, DisableFederation): a change is begun
//! (`Enabling` / `Disabling`, stored) before the store's table is published or withdrawn, and
//! finished after, so that a server stopped in between leaves a status that says so.

use chrono::{DateTime, Utc};
use traillake_api::shapes::FederationStatus;
use traillake_api::wire::WireEnum as _;

use super::{Catalog, EventDataStoreRecord, find_active_mut};
use crate::Result;
use crate::error::LakeError;

impl Catalog {
    /// Begins federating an active store with `role` (status `Enabling`); a store already
    /// federated is refused, whatever its role.
    pub async fn begin_enable_federation(
        &self,
        account_id: &str,
        id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<EventDataStoreRecord> {
        self.change(|doc| {
            let store = find_active_mut(doc, account_id, id)?;
            if store.federation_status == FederationStatus::Enabled {
                return Err(LakeError::FederationEnabled(format!(
                    "Lake query federation is already enabled on event data store {} with role {}; run \
                     DisableFederation first to federate it with another role",
                    store.id,
                    store.federation_role_arn.as_deref().unwrap_or("(none)")
                )));
            }
            store.federation_status = FederationStatus::Enabling;
            store.federation_role_arn = Some(role.to_string());
            store.updated = now;
            Ok(store.clone())
        })
        .await
    }

    /// Begins withdrawing an active store's federation (status `Disabling`); a store not
    /// federated is returned as it is, with nothing changed.
    pub async fn begin_disable_federation(
        &self,
        account_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<EventDataStoreRecord> {
        self.change(|doc| {
            let store = find_active_mut(doc, account_id, id)?;
            if store.federation_status != FederationStatus::Disabled {
                store.federation_status = FederationStatus::Disabling;
                store.updated = now;
            }
            Ok(store.clone())
        })
        .await
    }

    /// Ends a federation change begun by this server: `Enabled` (keeping the role) or `Disabled`
    /// (forgetting it).
    pub async fn finish_federation(
        &self,
        account_id: &str,
        id: &str,
        status: FederationStatus,
        now: DateTime<Utc>,
    ) -> Result<EventDataStoreRecord> {
        self.change(|doc| {
            let store = find_active_mut(doc, account_id, id)?;
            match status {
                FederationStatus::Enabled => {}
                FederationStatus::Disabled => store.federation_role_arn = None,
                other => {
                    return Err(LakeError::Invalid(format!(
                        "a federation change ends ENABLED or DISABLED, not {}",
                        other.wire_name().unwrap_or("UNSPECIFIED")
                    )));
                }
            }
            store.federation_status = status;
            store.updated = now;
            Ok(store.clone())
        })
        .await
    }

    /// Returns the stores of every account whose federation is `Enabled`.
    pub async fn federated_event_data_stores(&self) -> Vec<EventDataStoreRecord> {
        let state = self.state.lock().await;
        state
            .event_data_stores
            .values()
            .filter(|s| s.is_active() && s.federation_status == FederationStatus::Enabled)
            .cloned()
            .collect()
    }
}
