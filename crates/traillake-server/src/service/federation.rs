//! EnableFederation and DisableFederation: a store's Delta table published for other engines
//! (`traillake_lake::federation`'s metadata file, and the Delta Sharing endpoint, which serves
//! the stores whose federation is `ENABLED`). Deleting no data, as AWS's does not.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::Utc;
use traillake_api::arn::{self, event_data_store_arn};
use traillake_api::federation::check_enable;
use traillake_api::shapes::{
    DisableFederationResponse, EnableFederationRequest, EnableFederationResponse, EventDataStoreRequest,
    FederationStatus,
};
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::{RootLocation, federation};

use super::Service;
use super::errors::IntoApi as _;

/// The stores whose federation a call is changing right now: a second call for one of them is
/// `ConcurrentModificationException`, as AWS answers while a change is in progress.
#[derive(Debug, Default)]
pub(crate) struct FederationCalls(Mutex<HashSet<String>>);

/// A store's place in [`FederationCalls`], given back when the call ends.
struct InFlight<'a> {
    calls: &'a FederationCalls,
    id: String,
}

impl FederationCalls {
    fn begin(&self, id: &str) -> Result<InFlight<'_>, ApiError> {
        let mut calls = self.0.lock().expect("the federation calls lock is not poisoned");
        if !calls.insert(id.to_string()) {
            return Err(ApiError::new(
                ErrorCode::ConcurrentModificationException,
                format!(
                    "another EnableFederation or DisableFederation call for event data store {id} is in progress; \
                     wait for it to complete, then retry"
                ),
            ));
        }
        Ok(InFlight {
            calls: self,
            id: id.to_string(),
        })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.calls
            .0
            .lock()
            .expect("the federation calls lock is not poisoned")
            .remove(&self.id);
    }
}

impl Service {
    /// EnableFederation: the store's table is created if it has no rows yet, its metadata file
    /// written, and its status `ENABLED`; `ENABLING` meanwhile. A failure leaves it `DISABLED`.
    pub async fn enable_federation(
        &self,
        ctx: &RequestContext,
        request: EnableFederationRequest,
    ) -> Result<EnableFederationResponse, ApiError> {
        let (id, role) = check_enable(ctx, &request)?;
        let _in_flight = self.federation_calls.begin(&id)?;
        let account = &ctx.account_id;
        let current = self.catalog.event_data_store(account, &id).await.api()?;
        if let Some(key) = &current.kms_key_id {
            self.check_parquet_not_encrypted(&id, key)?;
        }
        let store = self
            .catalog
            .begin_enable_federation(account, &id, &role, Utc::now())
            .await
            .api()?;
        let arn = event_data_store_arn(ctx, &id);
        if let Err(error) = federation::publish(self.queries.root(), &store, &arn).await {
            tracing::error!(store_id = %id, %error, "publishing the store for federation failed");
            self.catalog
                .finish_federation(account, &id, FederationStatus::Disabled, Utc::now())
                .await
                .api()?;
            return Err(ApiError::internal());
        }
        let store = self
            .catalog
            .finish_federation(account, &id, FederationStatus::Enabled, Utc::now())
            .await
            .api()?;
        tracing::info!(store_id = %id, role = %role, "event data store federated");
        Ok(EnableFederationResponse {
            event_data_store_arn: Some(arn),
            federation_status: Some(store.federation_status.into()),
            federation_role_arn: store.federation_role_arn,
        })
    }

    /// Refuses to publish, or to keep published, a store whose Parquet files are encrypted with
    /// a KMS key (on a local root): the readers of federation (DuckDB, delta-rs, Delta Sharing
    /// clients) cannot decrypt them. On an S3 root, SSE-KMS is the bucket's to undo for readers
    /// allowed to use the key.
    pub(super) fn check_parquet_not_encrypted(&self, id: &str, key: &str) -> Result<(), ApiError> {
        if matches!(self.root().location(), RootLocation::Local(_)) {
            return Err(ApiError::new(
                ErrorCode::OperationNotPermittedException,
                format!(
                    "event data store {id} is encrypted with the KMS key {key}, and on this local root its Parquet files \
                     are encrypted with the key: the readers of federation (DuckDB, delta-rs, Delta Sharing clients) \
                     cannot decrypt them"
                ),
            ));
        }
        Ok(())
    }

    /// DisableFederation: the metadata file is deleted and the store leaves the Delta Sharing
    /// endpoint (file URLs handed out before stop working); the table is kept. A store not
    /// federated answers `DISABLED` with nothing changed.
    pub async fn disable_federation(
        &self,
        ctx: &RequestContext,
        request: EventDataStoreRequest,
    ) -> Result<DisableFederationResponse, ApiError> {
        let id = arn::event_data_store_id(ctx, "EventDataStore", request.event_data_store.as_deref())?;
        let _in_flight = self.federation_calls.begin(&id)?;
        let account = &ctx.account_id;
        let store = self
            .catalog
            .begin_disable_federation(account, &id, Utc::now())
            .await
            .api()?;
        if store.federation_status != FederationStatus::Disabled {
            if let Err(error) = federation::withdraw(self.queries.root(), &id).await {
                tracing::error!(store_id = %id, %error, "withdrawing the store's federation failed; it stays DISABLING");
                return Err(ApiError::internal());
            }
            self.catalog
                .finish_federation(account, &id, FederationStatus::Disabled, Utc::now())
                .await
                .api()?;
            tracing::info!(store_id = %id, "event data store no longer federated");
        }
        Ok(DisableFederationResponse {
            event_data_store_arn: Some(event_data_store_arn(ctx, &id)),
            federation_status: Some(FederationStatus::Disabled.into()),
        })
    }
}
