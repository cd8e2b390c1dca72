//! PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy, for channels, event data stores
//! and dashboards of the caller.

use chrono::Utc;
use traillake_api::resource_policy::{PolicyTarget, ResourcePolicy};
use traillake_api::shapes::{Empty, PutResourcePolicyRequest, ResourcePolicyRequest, ResourcePolicyResponse};
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::LakeError;

use super::Service;
use super::errors::IntoApi as _;
use super::tags::{Resource, resolve_resource};

/// Resolves the `ResourceArn` of a policy operation: a store, a channel or a dashboard; trails take
/// no policy.
fn policy_resource(ctx: &RequestContext, value: Option<&str>) -> Result<Resource, ApiError> {
    let resource = resolve_resource(
        ctx,
        "ResourceArn",
        value,
        ErrorCode::ResourceARNNotValidException,
        |_| ErrorCode::ResourceARNNotValidException,
    )?;
    match resource {
        Resource::Trail(_) => Err(trail_policy(&resource.arn(ctx))),
        other => Ok(other),
    }
}

/// Returns the refusal of a policy on a trail.
fn trail_policy(arn: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceTypeNotSupportedException,
        format!("ResourceArn '{arn}' is a trail; resource policies are for event data stores, channels and dashboards"),
    )
}

/// A resource the caller does not have is `ResourceNotFoundException` in these operations, and a
/// store pending deletion `OperationNotPermittedException`: they model neither
/// EventDataStoreNotFound, ChannelNotFound nor InactiveEventDataStore.
fn not_found_as_resource<T>(result: Result<T, LakeError>) -> Result<T, ApiError> {
    match result {
        Err(error @ (LakeError::EventDataStoreNotFound(_) | LakeError::ChannelNotFound(_))) => {
            Err(ApiError::new(ErrorCode::ResourceNotFoundException, error.to_string()))
        }
        Err(error @ LakeError::InactiveEventDataStore(_)) => Err(ApiError::new(
            ErrorCode::OperationNotPermittedException,
            error.to_string(),
        )),
        other => other.api(),
    }
}

impl Service {
    /// PutResourcePolicy: checks the policy against the resource's rules and replaces any other.
    pub async fn put_resource_policy(
        &self,
        ctx: &RequestContext,
        request: PutResourcePolicyRequest,
    ) -> Result<ResourcePolicyResponse, ApiError> {
        let resource = policy_resource(ctx, request.resource_arn.as_deref())?;
        let text = request
            .resource_policy
            .ok_or_else(|| ApiError::missing(ErrorCode::ResourcePolicyNotValidException, "ResourcePolicy"))?;
        let arn = resource.arn(ctx);
        let target = match resource {
            Resource::Channel(_) => PolicyTarget::Channel,
            Resource::EventDataStore(_) => PolicyTarget::EventDataStore,
            Resource::Dashboard(_) => PolicyTarget::Dashboard,
            Resource::Trail(_) => return Err(trail_policy(&arn)),
        };
        ResourcePolicy::parse(&text, &arn, target)?;
        let stored = self
            .catalog
            .set_resource_policy(&ctx.account_id, resource.catalog_ref(), Some(text.clone()), Utc::now())
            .await;
        not_found_as_resource(stored)?;
        Ok(ResourcePolicyResponse {
            resource_arn: Some(arn),
            resource_policy: Some(text),
            delegated_admin_resource_policy: None,
        })
    }

    /// GetResourcePolicy.
    pub async fn get_resource_policy(
        &self,
        ctx: &RequestContext,
        request: ResourcePolicyRequest,
    ) -> Result<ResourcePolicyResponse, ApiError> {
        let resource = policy_resource(ctx, request.resource_arn.as_deref())?;
        let policy = not_found_as_resource(
            self.catalog
                .resource_policy(&ctx.account_id, resource.catalog_ref())
                .await,
        )?;
        Ok(ResourcePolicyResponse {
            resource_arn: Some(resource.arn(ctx)),
            resource_policy: Some(policy),
            delegated_admin_resource_policy: None,
        })
    }

    /// DeleteResourcePolicy.
    pub async fn delete_resource_policy(
        &self,
        ctx: &RequestContext,
        request: ResourcePolicyRequest,
    ) -> Result<Empty, ApiError> {
        let resource = policy_resource(ctx, request.resource_arn.as_deref())?;
        let deleted = self
            .catalog
            .set_resource_policy(&ctx.account_id, resource.catalog_ref(), None, Utc::now())
            .await;
        not_found_as_resource(deleted)?;
        Ok(Empty {})
    }
}
