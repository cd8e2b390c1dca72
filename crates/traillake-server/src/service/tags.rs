//! AddTags, RemoveTags and ListTags.

use chrono::Utc;
use traillake_api::arn::{CloudTrailArn, ResourceType, check_owner, event_data_store_arn};
use traillake_api::shapes::{Empty, ListTagsRequest, ListTagsResponse, ResourceTag, TagsRequest};
use traillake_api::tags::{check_list_tags, check_tags};
use traillake_api::{ApiError, ErrorCode, RequestContext};

use super::Service;
use super::errors::IntoApi as _;

/// Checks the tags of AddTags and RemoveTags: at least one, each valid.
fn check_request_tags(request: &TagsRequest) -> Result<(), ApiError> {
    if request.tags_list.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidTagParameterException, "TagsList must hold at least one tag"));
    }
    check_tags("TagsList", &request.tags_list, ErrorCode::InvalidTagParameterException)
}

/// Resolves a tagged resource's ARN to the ID of an event data store of the caller.
fn tagged_store_id(ctx: &RequestContext, field: &str, value: Option<&str>) -> Result<String, ApiError> {
    let value = value.ok_or_else(|| ApiError::missing(ErrorCode::CloudTrailARNInvalidException, field))?;
    let Some(arn) = CloudTrailArn::parse(value) else {
        return Err(ApiError::new(
            ErrorCode::CloudTrailARNInvalidException,
            format!(
                "{field} '{value}' is not the ARN of a CloudTrail resource \
                 (arn:aws:cloudtrail:REGION:ACCOUNT:eventdatastore/ID, channel/ID, trail/NAME or dashboard/NAME)"
            ),
        ));
    };
    match arn.kind() {
        Some(ResourceType::EventDataStore) => {
            check_owner(ctx, field, value, &arn, ErrorCode::EventDataStoreARNInvalidException)?;
            Ok(arn.resource_id.to_ascii_lowercase())
        }
        Some(ResourceType::Channel) => {
            check_owner(ctx, field, value, &arn, ErrorCode::ChannelARNInvalidException)?;
            Err(ApiError::new(ErrorCode::ChannelNotFoundException, format!("channel {value} not found")))
        }
        Some(kind @ (ResourceType::Trail | ResourceType::Dashboard)) => Err(ApiError::new(
            ErrorCode::UnsupportedOperationException,
            format!("traillake does not keep {}s, so {value} cannot be tagged", kind.as_str()),
        )),
        None => Err(ApiError::new(
            ErrorCode::ResourceTypeNotSupportedException,
            format!("{field} '{value}' names a resource type that cannot be tagged: {}", arn.resource_type),
        )),
    }
}

impl Service {
    /// AddTags: adds tags, replacing the values of existing keys; at most 50 per resource.
    pub async fn add_tags(&self, ctx: &RequestContext, request: TagsRequest) -> Result<Empty, ApiError> {
        let id = tagged_store_id(ctx, "ResourceId", request.resource_id.as_deref())?;
        check_request_tags(&request)?;
        self.catalog.add_tags(&ctx.account_id, &id, &request.tags_list, Utc::now()).await.api()?;
        Ok(Empty {})
    }

    /// RemoveTags: removes the tags with the given keys.
    pub async fn remove_tags(&self, ctx: &RequestContext, request: TagsRequest) -> Result<Empty, ApiError> {
        let id = tagged_store_id(ctx, "ResourceId", request.resource_id.as_deref())?;
        check_request_tags(&request)?;
        self.catalog.remove_tags(&ctx.account_id, &id, &request.tags_list, Utc::now()).await.api()?;
        Ok(Empty {})
    }

    /// ListTags: the tags of 1..20 resources.
    pub async fn list_tags(&self, ctx: &RequestContext, request: ListTagsRequest) -> Result<ListTagsResponse, ApiError> {
        check_list_tags(&request)?;
        let mut resource_tags = Vec::with_capacity(request.resource_id_list.len());
        for (i, resource) in request.resource_id_list.iter().enumerate() {
            let id = tagged_store_id(ctx, &format!("ResourceIdList[{i}]"), Some(resource))?;
            let store = self.catalog.event_data_store(&ctx.account_id, &id).await.api()?;
            if !store.is_active() {
                return Err(ApiError::new(
                    ErrorCode::InactiveEventDataStoreException,
                    format!("event data store {id} is pending deletion"),
                ));
            }
            resource_tags.push(ResourceTag {
                resource_id: Some(event_data_store_arn(ctx, &store.id)),
                tags_list: store.tags,
            });
        }
        Ok(ListTagsResponse { resource_tag_list: resource_tags, next_token: None })
    }
}
