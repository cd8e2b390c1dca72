//! CreateChannel, GetChannel, ListChannels, UpdateChannel, DeleteChannel, and PutAuditEvents (the
//! CloudTrail Data API).

use chrono::Utc;
use traillake_api::audit_events::{channel_ref, check_request};
use traillake_api::channels::{channel_arn, channel_id, check_create, check_list, check_update};
use traillake_api::shapes::{
    AdvancedEventSelector, AdvancedFieldSelector, Channel, ChannelDescription, ChannelRequest, CreateChannelRequest,
    Destination, DestinationType, Empty, ListChannelsRequest, ListChannelsResponse, PutAuditEventsRequest,
    PutAuditEventsResponse, SourceConfig, UpdateChannelRequest,
};
use traillake_api::{ApiError, RequestContext, arn};
use traillake_ingest::channels::AuditCall;
use traillake_lake::ChannelRecord;

use super::errors::IntoApi as _;
use super::{Service, page_after};

/// Which operation a description answers, since each returns different members.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Describe {
    Create,
    Get,
    Update,
}

impl Service {
    fn describe_channel(
        &self,
        ctx: &RequestContext,
        channel: &ChannelRecord,
        operation: Describe,
    ) -> ChannelDescription {
        let destinations = channel
            .destinations
            .iter()
            .map(|id| Destination {
                r#type: Some(DestinationType::EventDataStore.into()),
                location: Some(arn::event_data_store_arn(ctx, id)),
            })
            .collect();
        let source_config = (operation == Describe::Get).then(|| SourceConfig {
            apply_to_all_regions: Some(false),
            advanced_event_selectors: vec![AdvancedEventSelector {
                name: None,
                field_selectors: vec![AdvancedFieldSelector {
                    field: Some("eventCategory".into()),
                    equals: vec!["ActivityAuditLog".into()],
                    ..Default::default()
                }],
            }],
        });
        ChannelDescription {
            channel_arn: Some(channel_arn(ctx, &channel.id)),
            name: Some(channel.name.clone()),
            source: Some(channel.source.clone()),
            source_config,
            destinations,
            ingestion_status: (operation == Describe::Get).then(|| self.channels.ingestion_status(&channel.id)),
            tags: if operation == Describe::Create {
                channel.tags.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// CreateChannel.
    pub async fn create_channel(
        &self,
        ctx: &RequestContext,
        request: CreateChannelRequest,
    ) -> Result<ChannelDescription, ApiError> {
        let new = check_create(ctx, &request)?;
        let channel = self
            .catalog
            .create_channel(&ctx.account_id, new, self.settings.max_channels, Utc::now())
            .await
            .api()?;
        tracing::info!(channel_id = %channel.id, name = %channel.name, source = %channel.source, "channel created");
        Ok(self.describe_channel(ctx, &channel, Describe::Create))
    }

    /// GetChannel.
    pub async fn get_channel(
        &self,
        ctx: &RequestContext,
        request: ChannelRequest,
    ) -> Result<ChannelDescription, ApiError> {
        let id = channel_id(ctx, "Channel", request.channel.as_deref())?;
        let channel = self.catalog.channel(&ctx.account_id, &id).await.api()?;
        Ok(self.describe_channel(ctx, &channel, Describe::Get))
    }

    /// ListChannels: the account's channels, oldest first.
    pub async fn list_channels(
        &self,
        ctx: &RequestContext,
        request: ListChannelsRequest,
    ) -> Result<ListChannelsResponse, ApiError> {
        let page = check_list(&request)?;
        let channels = self.catalog.channels(&ctx.account_id).await;
        let (items, next_token) = page_after(&channels, &page, "ListChannels", |c| (c.created, c.id.as_str()));
        Ok(ListChannelsResponse {
            channels: items
                .into_iter()
                .map(|c| Channel {
                    channel_arn: Some(channel_arn(ctx, &c.id)),
                    name: Some(c.name.clone()),
                })
                .collect(),
            next_token,
        })
    }

    /// UpdateChannel: a new name, or new destinations in place of the old ones.
    pub async fn update_channel(
        &self,
        ctx: &RequestContext,
        request: UpdateChannelRequest,
    ) -> Result<ChannelDescription, ApiError> {
        let (id, changes) = check_update(ctx, &request)?;
        let channel = self
            .catalog
            .update_channel(&ctx.account_id, &id, changes, Utc::now())
            .await
            .api()?;
        Ok(self.describe_channel(ctx, &channel, Describe::Update))
    }

    /// DeleteChannel: the events it delivered stay in their stores.
    pub async fn delete_channel(&self, ctx: &RequestContext, request: ChannelRequest) -> Result<Empty, ApiError> {
        let id = channel_id(ctx, "Channel", request.channel.as_deref())?;
        self.catalog.delete_channel(&ctx.account_id, &id).await.api()?;
        tracing::info!(channel_id = %id, "channel deleted");
        Ok(Empty {})
    }

    /// PutAuditEvents: stores the valid events, each acknowledged once committed.
    pub async fn put_audit_events(
        &self,
        ctx: &RequestContext,
        request: PutAuditEventsRequest,
    ) -> Result<PutAuditEventsResponse, ApiError> {
        let channel = channel_ref(ctx, request.channel_arn.as_deref())?;
        check_request(&request)?;
        let call = AuditCall {
            caller_account_id: &ctx.account_id,
            region: &ctx.region,
            channel: &channel,
            external_id: request.external_id.as_deref(),
        };
        self.channels.put_audit_events(&call, &request.audit_events).await.api()
    }
}
