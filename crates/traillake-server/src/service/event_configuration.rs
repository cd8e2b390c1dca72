//! GetEventConfiguration and PutEventConfiguration: a store's largest event and context key
//! selectors, a trail's aggregation configurations.

use chrono::Utc;
use traillake_api::arn::event_data_store_arn;
use traillake_api::event_configuration::{
    ConfigurationTarget, check_store_settings, check_target, check_trail_settings,
};
use traillake_api::selectors::StoreKind;
use traillake_api::shapes::{EventConfiguration, GetEventConfigurationRequest, PutEventConfigurationRequest};
use traillake_api::trails::{Access, trail_arn};
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::{EventDataStoreRecord, TrailRecord};

use super::Service;
use super::errors::IntoApi as _;

fn of_store(ctx: &RequestContext, store: &EventDataStoreRecord) -> EventConfiguration {
    EventConfiguration {
        event_data_store_arn: Some(event_data_store_arn(ctx, &store.id)),
        max_event_size: Some(store.max_event_size.name().to_string()),
        context_key_selectors: store.context_key_selectors.clone(),
        ..Default::default()
    }
}

fn of_trail(ctx: &RequestContext, trail: &TrailRecord) -> EventConfiguration {
    EventConfiguration {
        trail_arn: Some(trail_arn(ctx, &trail.name)),
        aggregation_configurations: trail.aggregation_configurations.clone(),
        ..Default::default()
    }
}

impl Service {
    /// GetEventConfiguration.
    pub async fn get_event_configuration(
        &self,
        ctx: &RequestContext,
        request: GetEventConfigurationRequest,
    ) -> Result<EventConfiguration, ApiError> {
        let target = check_target(
            ctx,
            request.trail_name.as_deref(),
            request.event_data_store.as_deref(),
            Access::Read,
        )?;
        match target {
            ConfigurationTarget::Trail(name) => {
                let trail = self.catalog.trail(&ctx.account_id, &name).await.api()?;
                Ok(of_trail(ctx, &trail))
            }
            ConfigurationTarget::EventDataStore(id) => {
                let store = self.catalog.event_data_store(&ctx.account_id, &id).await.api()?;
                if store.kind != StoreKind::CloudTrail {
                    return Err(ApiError::new(
                        ErrorCode::InvalidEventDataStoreCategoryException,
                        format!(
                            "event configuration applies to stores of CloudTrail events; event data store {id} holds {:?} events",
                            store.kind
                        ),
                    ));
                }
                Ok(of_store(ctx, &store))
            }
        }
    }

    /// PutEventConfiguration.
    pub async fn put_event_configuration(
        &self,
        ctx: &RequestContext,
        request: PutEventConfigurationRequest,
    ) -> Result<EventConfiguration, ApiError> {
        let target = check_target(
            ctx,
            request.trail_name.as_deref(),
            request.event_data_store.as_deref(),
            Access::Change,
        )?;
        match target {
            ConfigurationTarget::Trail(name) => {
                let configurations = check_trail_settings(&request)?;
                let trail = self
                    .catalog
                    .set_trail_aggregation(&ctx.account_id, &name, configurations, Utc::now())
                    .await
                    .api()?;
                Ok(of_trail(ctx, &trail))
            }
            ConfigurationTarget::EventDataStore(id) => {
                let (size, selectors) = check_store_settings(&request)?;
                let store = self
                    .catalog
                    .set_store_event_configuration(&ctx.account_id, &id, size, selectors, Utc::now())
                    .await
                    .api()?;
                Ok(of_store(ctx, &store))
            }
        }
    }
}
