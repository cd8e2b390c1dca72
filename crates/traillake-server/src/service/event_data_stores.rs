//! CreateEventDataStore ... StopEventDataStoreIngestion.

use chrono::Utc;
use traillake_api::arn::{self, CloudTrailArn, ResourceType, resource_arn};
use traillake_api::event_data_stores::{check_create, check_list, check_update};
use traillake_api::shapes::{
    CreateEventDataStoreRequest, Empty, EventDataStore, EventDataStoreDescription, EventDataStoreRequest,
    EventDataStoreStatus, FederationStatus, ListEventDataStoresRequest, ListEventDataStoresResponse,
    UpdateEventDataStoreRequest,
};
use traillake_api::wire::timestamp;
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::keys::find_key;
use traillake_lake::{EventDataStoreRecord, EventTable};

use super::errors::{IntoApi as _, key_error};
use super::{Service, page_after};

/// Which operation a description answers, since each returns different members.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Describe {
    Create,
    Get,
    Update,
    Restore,
}

/// Returns a store's ARN in its owner's account: an organization store a member sees is the
/// management account's or a delegated administrator's.
fn owned_store_arn(ctx: &RequestContext, store: &EventDataStoreRecord) -> String {
    resource_arn(&ctx.region, &store.account_id, ResourceType::EventDataStore, &store.id)
}

fn describe(ctx: &RequestContext, store: &EventDataStoreRecord, operation: Describe) -> EventDataStoreDescription {
    let status = if operation == Describe::Create {
        EventDataStoreStatus::Created
    } else {
        store.status
    };
    let federation = matches!(operation, Describe::Get | Describe::Update);
    EventDataStoreDescription {
        event_data_store_arn: Some(owned_store_arn(ctx, store)),
        name: Some(store.name.clone()),
        status: Some(status.into()),
        advanced_event_selectors: store.selectors.clone(),
        multi_region_enabled: Some(store.multi_region),
        organization_enabled: Some(store.organization),
        retention_period: Some(store.retention_days),
        termination_protection_enabled: Some(store.termination_protection),
        tags_list: if operation == Describe::Create {
            store.tags.clone()
        } else {
            Vec::new()
        },
        created_timestamp: Some(timestamp(store.created)),
        updated_timestamp: Some(timestamp(store.updated)),
        kms_key_id: store.kms_key_id.clone(),
        billing_mode: Some(store.billing_mode.into()),
        federation_status: federation.then_some(store.federation_status.into()),
        federation_role_arn: store.federation_role_arn.clone().filter(|_| federation),
        partition_keys: Vec::new(),
    }
}

fn store_id(ctx: &RequestContext, request: &EventDataStoreRequest) -> Result<String, ApiError> {
    arn::event_data_store_id(ctx, "EventDataStore", request.event_data_store.as_deref())
}

impl Service {
    /// Checks that a `KmsKeyId` (a full key or alias ARN) names an enabled key of the operator's
    /// key service: `KmsException` without one, `KmsKeyNotFoundException`,
    /// `KmsKeyDisabledException`.
    pub(super) fn check_kms_key(&self, reference: Option<&str>) -> Result<(), ApiError> {
        if let Some(reference) = reference {
            find_key(self.root().keys(), reference).map_err(key_error)?;
        }
        Ok(())
    }

    /// Refuses to change a store while an import copies events into it.
    fn check_no_ongoing_import(&self, ctx: &RequestContext, id: &str, change: &str) -> Result<(), ApiError> {
        if self.imports.has_ongoing_import(&ctx.account_id, id) {
            return Err(ApiError::new(
                ErrorCode::EventDataStoreHasOngoingImportException,
                format!(
                    "event data store {id} cannot be {change} while an import into it is running; stop the import or wait for it to end"
                ),
            ));
        }
        Ok(())
    }

    /// CreateEventDataStore.
    pub async fn create_event_data_store(
        &self,
        ctx: &RequestContext,
        request: CreateEventDataStoreRequest,
    ) -> Result<EventDataStoreDescription, ApiError> {
        let new = check_create(ctx, &request)?;
        self.check_organization(ctx, request.organization_enabled).await?;
        self.check_kms_key(new.kms_key_id.as_deref())?;
        // The table knows its key before the store exists, so that no writer ever writes it
        // without the key.
        let id = uuid::Uuid::new_v4().to_string();
        if let Some(key) = &new.kms_key_id {
            EventTable::new(self.root(), &id, new.kind)
                .encrypt_with(key)
                .await
                .api()?;
        }
        let encrypted = new.kms_key_id.is_some();
        let created = self
            .catalog
            .create_event_data_store_with_id(
                &ctx.account_id,
                id.clone(),
                new,
                self.settings.max_event_data_stores,
                Utc::now(),
            )
            .await;
        if created.is_err()
            && encrypted
            && let Err(error) = self.catalog.delete_store_files(&id).await
        {
            tracing::warn!(store_id = %id, %error, "the table of a store not created was left behind");
        }
        let store = created.api()?;
        tracing::info!(store_id = %store.id, name = %store.name, "event data store created");
        Ok(describe(ctx, &store, Describe::Create))
    }

    /// GetEventDataStore.
    pub async fn get_event_data_store(
        &self,
        ctx: &RequestContext,
        request: EventDataStoreRequest,
    ) -> Result<EventDataStoreDescription, ApiError> {
        // An organization store of another account, by its ARN: members see it, read-only.
        if let Some(arn) = request.event_data_store.as_deref().and_then(CloudTrailArn::parse)
            && arn.account_id != ctx.account_id
            && arn.region == ctx.region
            && arn.kind() == Some(ResourceType::EventDataStore)
            && let Some(store) =
                self.organization_stores_seen_by(ctx).await.into_iter().find(|store| {
                    store.account_id == arn.account_id && store.id == arn.resource_id.to_ascii_lowercase()
                })
        {
            return Ok(describe(ctx, &store, Describe::Get));
        }
        let id = store_id(ctx, &request)?;
        let store = self.catalog.event_data_store(&ctx.account_id, &id).await.api()?;
        Ok(describe(ctx, &store, Describe::Get))
    }

    /// Returns the organization stores of other accounts that a member of their organization sees
    /// (read-only) in Get/ListEventDataStores, as the User Guide's overview shows them: it can
    /// neither change nor query them.
    async fn organization_stores_seen_by(&self, ctx: &RequestContext) -> Vec<EventDataStoreRecord> {
        self.catalog
            .stores_taking_events_of(&ctx.account_id)
            .await
            .into_iter()
            .filter(|store| store.account_id != ctx.account_id)
            .collect()
    }

    /// ListEventDataStores: the account's stores, oldest first, pending deletion included.
    pub async fn list_event_data_stores(
        &self,
        ctx: &RequestContext,
        request: ListEventDataStoresRequest,
    ) -> Result<ListEventDataStoresResponse, ApiError> {
        let page = check_list(&request)?;
        let mut stores = self.catalog.event_data_stores(&ctx.account_id).await;
        stores.extend(self.organization_stores_seen_by(ctx).await);
        stores.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let (items, next_token) = page_after(&stores, &page, "ListEventDataStores", |s| (s.created, s.id.as_str()));
        Ok(ListEventDataStoresResponse {
            event_data_stores: items
                .into_iter()
                .map(|s| EventDataStore {
                    event_data_store_arn: Some(owned_store_arn(ctx, s)),
                    name: Some(s.name.clone()),
                    termination_protection_enabled: Some(s.termination_protection),
                    status: Some(s.status.into()),
                    advanced_event_selectors: s.selectors.clone(),
                    multi_region_enabled: Some(s.multi_region),
                    organization_enabled: Some(s.organization),
                    retention_period: Some(s.retention_days),
                    created_timestamp: Some(timestamp(s.created)),
                    updated_timestamp: Some(timestamp(s.updated)),
                })
                .collect(),
            next_token,
        })
    }

    /// UpdateEventDataStore.
    pub async fn update_event_data_store(
        &self,
        ctx: &RequestContext,
        request: UpdateEventDataStoreRequest,
    ) -> Result<EventDataStoreDescription, ApiError> {
        let (id, changes) = check_update(ctx, &request)?;
        self.check_organization(ctx, request.organization_enabled).await?;
        self.check_no_ongoing_import(ctx, &id, "updated")?;
        if let Some(key) = &changes.kms_key_id {
            self.check_kms_key(Some(key))?;
            let current = self.catalog.event_data_store(&ctx.account_id, &id).await.api()?;
            if current.federation_status != FederationStatus::Disabled {
                self.check_parquet_not_encrypted(&id, key)?;
            }
            // A store pending deletion, or a different key, is refused by the catalog's update.
            if current.is_active() && current.kms_key_id.as_ref().is_none_or(|existing| existing == key) {
                EventTable::new(self.root(), &id, current.kind)
                    .encrypt_with(key)
                    .await
                    .api()?;
            }
        }
        let store = self
            .catalog
            .update_event_data_store(&ctx.account_id, &id, changes, Utc::now())
            .await
            .api()?;
        Ok(describe(ctx, &store, Describe::Update))
    }

    /// DeleteEventDataStore: the store waits in PENDING_DELETION, restorable, until it is purged.
    pub async fn delete_event_data_store(
        &self,
        ctx: &RequestContext,
        request: EventDataStoreRequest,
    ) -> Result<Empty, ApiError> {
        let id = store_id(ctx, &request)?;
        self.check_no_ongoing_import(ctx, &id, "deleted")?;
        self.catalog
            .delete_event_data_store(&ctx.account_id, &id, Utc::now())
            .await
            .api()?;
        tracing::info!(store_id = %id, "event data store pending deletion");
        Ok(Empty {})
    }

    /// RestoreEventDataStore.
    pub async fn restore_event_data_store(
        &self,
        ctx: &RequestContext,
        request: EventDataStoreRequest,
    ) -> Result<EventDataStoreDescription, ApiError> {
        let id = store_id(ctx, &request)?;
        let store = self
            .catalog
            .restore_event_data_store(&ctx.account_id, &id, self.settings.max_event_data_stores, Utc::now())
            .await
            .api()?;
        Ok(describe(ctx, &store, Describe::Restore))
    }

    /// StartEventDataStoreIngestion.
    pub async fn start_event_data_store_ingestion(
        &self,
        ctx: &RequestContext,
        request: EventDataStoreRequest,
    ) -> Result<Empty, ApiError> {
        let id = store_id(ctx, &request)?;
        self.catalog
            .set_ingestion(&ctx.account_id, &id, true, Utc::now())
            .await
            .api()?;
        Ok(Empty {})
    }

    /// StopEventDataStoreIngestion.
    pub async fn stop_event_data_store_ingestion(
        &self,
        ctx: &RequestContext,
        request: EventDataStoreRequest,
    ) -> Result<Empty, ApiError> {
        let id = store_id(ctx, &request)?;
        self.catalog
            .set_ingestion(&ctx.account_id, &id, false, Utc::now())
            .await
            .api()?;
        Ok(Empty {})
    }
}
