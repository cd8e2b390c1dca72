//! AddTags, RemoveTags and ListTags.

use chrono::Utc;
use traillake_api::arn::{CloudTrailArn, ResourceType, check_owner, event_data_store_arn};
use traillake_api::channels::channel_arn;
use traillake_api::dashboards::{self, dashboard_arn};
use traillake_api::shapes::{Empty, ListTagsRequest, ListTagsResponse, ResourceTag, TagsRequest};
use traillake_api::tags::{check_list_tags, check_tags};
use traillake_api::trails::{check_name, trail_arn};
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::{LakeError, TaggedResource};

use super::Service;
use super::errors::IntoApi as _;

/// Checks the tags of AddTags and RemoveTags: at least one, each valid.
fn check_request_tags(request: &TagsRequest) -> Result<(), ApiError> {
    if request.tags_list.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidTagParameterException,
            "TagsList must hold at least one tag",
        ));
    }
    check_tags("TagsList", &request.tags_list, ErrorCode::InvalidTagParameterException)
}

/// A resource of the caller that carries tags and a resource policy, by ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Resource {
    EventDataStore(String),
    Channel(String),
    /// A trail, by name: tags only, no resource policy.
    Trail(String),
    /// A dashboard, by name.
    Dashboard(String),
}

impl Resource {
    /// Returns the catalog's reference to the resource.
    pub(super) fn catalog_ref(&self) -> TaggedResource<'_> {
        match self {
            Resource::EventDataStore(id) => TaggedResource::EventDataStore(id),
            Resource::Channel(id) => TaggedResource::Channel(id),
            Resource::Trail(name) => TaggedResource::Trail(name),
            Resource::Dashboard(name) => TaggedResource::Dashboard(name),
        }
    }

    /// Returns the resource's ARN.
    pub(super) fn arn(&self, ctx: &RequestContext) -> String {
        match self {
            Resource::EventDataStore(id) => event_data_store_arn(ctx, id),
            Resource::Channel(id) => channel_arn(ctx, id),
            Resource::Trail(name) => trail_arn(ctx, name),
            Resource::Dashboard(name) => dashboard_arn(ctx, name),
        }
    }
}

/// Resolves the full ARN of a resource of the caller: `malformed` answers a value that is not a
/// CloudTrail ARN; `foreign` answers an ARN of another account or Region, by resource type.
pub(super) fn resolve_resource(
    ctx: &RequestContext,
    field: &str,
    value: Option<&str>,
    malformed: ErrorCode,
    foreign: impl Fn(ResourceType) -> ErrorCode,
) -> Result<Resource, ApiError> {
    let value = value.ok_or_else(|| ApiError::missing(malformed, field))?;
    let Some(arn) = CloudTrailArn::parse(value) else {
        return Err(ApiError::new(
            malformed,
            format!(
                "{field} '{value}' is not the ARN of a CloudTrail resource \
                 (arn:aws:cloudtrail:REGION:ACCOUNT:eventdatastore/ID, channel/ID, trail/NAME or dashboard/NAME)"
            ),
        ));
    };
    match arn.kind() {
        Some(kind @ (ResourceType::EventDataStore | ResourceType::Channel)) => {
            check_owner(ctx, field, value, &arn, foreign(kind))?;
            let id = arn.resource_id.to_ascii_lowercase();
            Ok(if kind == ResourceType::Channel {
                Resource::Channel(id)
            } else {
                Resource::EventDataStore(id)
            })
        }
        Some(ResourceType::Trail) => {
            check_owner(ctx, field, value, &arn, foreign(ResourceType::Trail))?;
            check_name(field, &arn.resource_id)?;
            Ok(Resource::Trail(arn.resource_id))
        }
        Some(ResourceType::Dashboard) => {
            check_owner(ctx, field, value, &arn, foreign(ResourceType::Dashboard))?;
            dashboards::check_name(field, &arn.resource_id)?;
            Ok(Resource::Dashboard(arn.resource_id))
        }
        None => Err(ApiError::new(
            ErrorCode::ResourceTypeNotSupportedException,
            format!(
                "{field} '{value}' names a resource type that cannot be tagged or given a policy: {}",
                arn.resource_type
            ),
        )),
    }
}

/// Resolves a tagged resource's ARN.
fn tagged_resource(ctx: &RequestContext, field: &str, value: Option<&str>) -> Result<Resource, ApiError> {
    resolve_resource(
        ctx,
        field,
        value,
        ErrorCode::CloudTrailARNInvalidException,
        |kind| match kind {
            ResourceType::Channel => ErrorCode::ChannelARNInvalidException,
            ResourceType::Trail | ResourceType::Dashboard => ErrorCode::CloudTrailARNInvalidException,
            _ => ErrorCode::EventDataStoreARNInvalidException,
        },
    )
}

/// The tag operations model no TrailNotFoundException: an unknown trail is
/// `ResourceNotFoundException`, as an unknown dashboard is.
fn unknown_trail_as_resource<T>(result: Result<T, LakeError>) -> Result<T, ApiError> {
    match result {
        Err(error @ LakeError::TrailNotFound(_)) => {
            Err(ApiError::new(ErrorCode::ResourceNotFoundException, error.to_string()))
        }
        other => other.api(),
    }
}

impl Service {
    /// AddTags: adds tags, replacing the values of existing keys; at most 50 per resource.
    pub async fn add_tags(&self, ctx: &RequestContext, request: TagsRequest) -> Result<Empty, ApiError> {
        let resource = tagged_resource(ctx, "ResourceId", request.resource_id.as_deref())?;
        check_request_tags(&request)?;
        unknown_trail_as_resource(
            self.catalog
                .add_tags(&ctx.account_id, resource.catalog_ref(), &request.tags_list, Utc::now())
                .await,
        )?;
        Ok(Empty {})
    }

    /// RemoveTags: removes the tags with the given keys.
    pub async fn remove_tags(&self, ctx: &RequestContext, request: TagsRequest) -> Result<Empty, ApiError> {
        let resource = tagged_resource(ctx, "ResourceId", request.resource_id.as_deref())?;
        check_request_tags(&request)?;
        unknown_trail_as_resource(
            self.catalog
                .remove_tags(&ctx.account_id, resource.catalog_ref(), &request.tags_list, Utc::now())
                .await,
        )?;
        Ok(Empty {})
    }

    /// ListTags: the tags of 1..20 resources.
    pub async fn list_tags(
        &self,
        ctx: &RequestContext,
        request: ListTagsRequest,
    ) -> Result<ListTagsResponse, ApiError> {
        check_list_tags(&request)?;
        let mut resource_tags = Vec::with_capacity(request.resource_id_list.len());
        for (i, resource) in request.resource_id_list.iter().enumerate() {
            let resource = tagged_resource(ctx, &format!("ResourceIdList[{i}]"), Some(resource))?;
            let tags = match self.catalog.tags(&ctx.account_id, resource.catalog_ref()).await {
                // ListTags models ResourceNotFoundException, not ChannelNotFoundException.
                Err(error @ (LakeError::ChannelNotFound(_) | LakeError::TrailNotFound(_))) => {
                    return Err(ApiError::new(ErrorCode::ResourceNotFoundException, error.to_string()));
                }
                other => other.api()?,
            };
            resource_tags.push(ResourceTag {
                resource_id: Some(resource.arn(ctx)),
                tags_list: tags,
            });
        }
        Ok(ListTagsResponse {
            resource_tag_list: resource_tags,
            next_token: None,
        })
    }
}
