//! CreateTrail, UpdateTrail, DeleteTrail, GetTrail, DescribeTrails, ListTrails, GetTrailStatus,
//! StartLogging, StopLogging, GetEventSelectors and PutEventSelectors. The trail's settings live
//! in the catalog; its delivery (`traillake_ingest::trails`) is woken when it starts or stops
//! logging, and finishes a deleted trail's deliveries in the background.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use traillake_api::arn::{ResourceType, kms_key_arn, resource_arn};
use traillake_api::paging;
use traillake_api::shapes::{
    CreateTrailRequest, DescribeTrailsRequest, DescribeTrailsResponse, Empty, EventSelectorsResponse,
    GetEventSelectorsRequest, GetTrailResponse, GetTrailStatusResponse, ListTrailsRequest, ListTrailsResponse,
    PutEventSelectorsRequest, Trail, TrailInfo, TrailRequest, UpdateTrailRequest,
};
use traillake_api::tags::check_tags;
use traillake_api::trails::{
    Access, Integrations, MAX_REQUEST_TAGS, TrailSelectors, check_bucket, check_integrations, check_name,
    check_put_selectors, default_event_selectors, prefix, trail_name,
};
use traillake_api::validate::{self, PAGINATION_TOKEN};
use traillake_api::wire::timestamp;
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::TrailRecord;

use super::Service;
use super::errors::IntoApi as _;

/// Trails one ListTrails page holds at most.
const LIST_PAGE: usize = 50;

/// Which operation a description answers: GetTrail and DescribeTrails add the home Region and
/// what the trail's selectors are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Describe {
    Changed,
    Read,
}

/// Returns a trail's ARN, in its owner's account: an organization trail a member sees is the
/// management account's or a delegated administrator's.
fn owned_trail_arn(ctx: &RequestContext, trail: &TrailRecord) -> String {
    resource_arn(&ctx.region, &trail.account_id, ResourceType::Trail, &trail.name)
}

fn describe(ctx: &RequestContext, trail: &TrailRecord, operation: Describe) -> Trail {
    let read = operation == Describe::Read;
    Trail {
        name: Some(trail.name.clone()),
        s3_bucket_name: Some(trail.bucket.clone()),
        s3_key_prefix: trail.prefix.clone(),
        sns_topic_name: None,
        sns_topic_arn: None,
        include_global_service_events: Some(trail.include_global_service_events),
        is_multi_region_trail: Some(trail.multi_region),
        home_region: read.then(|| ctx.region.clone()),
        trail_arn: Some(owned_trail_arn(ctx, trail)),
        log_file_validation_enabled: Some(trail.log_file_validation),
        cloud_watch_logs_log_group_arn: None,
        cloud_watch_logs_role_arn: None,
        kms_key_id: trail.kms_key_id.clone(),
        has_custom_event_selectors: read.then(|| trail.has_custom_event_selectors()),
        has_insight_selectors: read.then_some(!trail.insight_types.is_empty()),
        is_organization_trail: Some(trail.organization),
        recursive_logging: trail.recursive_logging,
    }
}

fn selectors_response(ctx: &RequestContext, trail: &TrailRecord) -> EventSelectorsResponse {
    let (basic, advanced) = match &trail.selectors {
        TrailSelectors::Basic(basic) => (basic.clone(), Vec::new()),
        TrailSelectors::Advanced(advanced) => (Vec::new(), advanced.clone()),
    };
    EventSelectorsResponse {
        trail_arn: Some(owned_trail_arn(ctx, trail)),
        event_selectors: basic,
        advanced_event_selectors: advanced,
    }
}

/// The time format of GetTrailStatus's deprecated string members.
fn status_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Service {
    /// Returns the organization trails of other accounts that a member of their organization
    /// sees (read-only) in DescribeTrails and ListTrails, as AWS shows them to every account.
    async fn organization_trails_seen_by(&self, ctx: &RequestContext) -> Vec<TrailRecord> {
        self.catalog
            .trails_taking_events_of(&ctx.account_id)
            .await
            .into_iter()
            .filter(|trail| trail.account_id != ctx.account_id)
            .collect()
    }

    /// Returns the trail a read operation's member names.
    async fn read_trail(
        &self,
        ctx: &RequestContext,
        field: &str,
        value: Option<&str>,
    ) -> Result<TrailRecord, ApiError> {
        let name = trail_name(ctx, field, value, Access::Read)?;
        self.catalog.trail(&ctx.account_id, &name).await.api()
    }

    /// Checks that a trail's bucket exists on the S3-compatible server and can be listed.
    async fn check_trail_bucket(&self, bucket: &str) -> Result<(), ApiError> {
        traillake_query::delivery::check_bucket(&format!("s3://{bucket}"))
            .await
            .api()
    }

    /// CreateTrail: a trail of the caller's account in the server's Region; it logs once
    /// StartLogging is called, as AWS's trails do.
    pub async fn create_trail(&self, ctx: &RequestContext, request: CreateTrailRequest) -> Result<Trail, ApiError> {
        let name = request
            .name
            .as_deref()
            .ok_or_else(|| ApiError::missing(ErrorCode::InvalidTrailNameException, "Name"))?;
        check_name("Name", name)?;
        let bucket = request
            .s3_bucket_name
            .as_deref()
            .ok_or_else(|| ApiError::missing(ErrorCode::InvalidS3BucketNameException, "S3BucketName"))?;
        check_bucket("S3BucketName", bucket)?;
        let prefix = prefix("S3KeyPrefix", request.s3_key_prefix.as_deref())?;
        check_integrations(&Integrations {
            sns_topic_name: request.sns_topic_name.as_deref(),
            log_group_arn: request.cloud_watch_logs_log_group_arn.as_deref(),
            log_role_arn: request.cloud_watch_logs_role_arn.as_deref(),
        })?;
        self.check_organization(ctx, request.is_organization_trail).await?;
        let kms_key_id = match request.kms_key_id.as_deref().filter(|key| !key.is_empty()) {
            Some(key) => Some(kms_key_arn(ctx, "KmsKeyId", key)?),
            None => None,
        };
        self.check_kms_key(kms_key_id.as_deref())?;
        validate::list_length(
            ErrorCode::InvalidParameterException,
            "TagsList",
            request.tags_list.len(),
            0,
            MAX_REQUEST_TAGS,
        )?;
        check_tags("TagsList", &request.tags_list, ErrorCode::InvalidTagParameterException)?;
        if request.tags_list.len() > traillake_api::event_data_stores::MAX_TAGS {
            return Err(ApiError::new(
                ErrorCode::TagsLimitExceededException,
                format!(
                    "TagsList has {} tags; a trail takes at most {}",
                    request.tags_list.len(),
                    traillake_api::event_data_stores::MAX_TAGS
                ),
            ));
        }
        if self.catalog.trail(&ctx.account_id, name).await.is_ok() {
            return Err(ApiError::new(
                ErrorCode::TrailAlreadyExistsException,
                format!("a trail named {name} already exists"),
            ));
        }
        self.check_trail_bucket(bucket).await?;
        let now = Utc::now();
        let trail = TrailRecord {
            account_id: ctx.account_id.clone(),
            name: name.to_string(),
            bucket: bucket.to_string(),
            prefix,
            include_global_service_events: request.include_global_service_events.unwrap_or(true),
            multi_region: request.is_multi_region_trail.unwrap_or(false),
            log_file_validation: request.enable_log_file_validation.unwrap_or(false),
            kms_key_id,
            recursive_logging: request.recursive_logging,
            selectors: TrailSelectors::Basic(default_event_selectors()),
            tags: request.tags_list,
            logging: false,
            start_logging_time: None,
            stop_logging_time: None,
            insight_types: Vec::new(),
            organization: request.is_organization_trail.unwrap_or(false),
            aggregation_configurations: Vec::new(),
            created: now,
            updated: now,
        };
        let trail = self.catalog.create_trail(trail, self.settings.max_trails).await.api()?;
        Ok(describe(ctx, &trail, Describe::Changed))
    }

    /// UpdateTrail: changes the members given; an empty S3KeyPrefix or KmsKeyId removes it.
    pub async fn update_trail(&self, ctx: &RequestContext, request: UpdateTrailRequest) -> Result<Trail, ApiError> {
        let name = trail_name(ctx, "Name", request.name.as_deref(), Access::Change)?;
        if let Some(bucket) = request.s3_bucket_name.as_deref() {
            check_bucket("S3BucketName", bucket)?;
        }
        let new_prefix = match request.s3_key_prefix.as_deref() {
            Some(value) => Some(prefix("S3KeyPrefix", Some(value))?),
            None => None,
        };
        check_integrations(&Integrations {
            sns_topic_name: request.sns_topic_name.as_deref(),
            log_group_arn: request.cloud_watch_logs_log_group_arn.as_deref(),
            log_role_arn: request.cloud_watch_logs_role_arn.as_deref(),
        })?;
        self.check_organization(ctx, request.is_organization_trail).await?;
        let kms_key_id = match request.kms_key_id.as_deref() {
            Some("") => Some(None),
            Some(key) => Some(Some(kms_key_arn(ctx, "KmsKeyId", key)?)),
            None => None,
        };
        self.check_kms_key(kms_key_id.as_ref().and_then(Option::as_deref))?;
        self.catalog.trail(&ctx.account_id, &name).await.api()?;
        if let Some(bucket) = request.s3_bucket_name.as_deref() {
            self.check_trail_bucket(bucket).await?;
        }
        let trail = self
            .catalog
            .update_trail(&ctx.account_id, &name, Utc::now(), |trail| {
                if let Some(bucket) = request.s3_bucket_name {
                    trail.bucket = bucket;
                }
                if let Some(prefix) = new_prefix {
                    trail.prefix = prefix;
                }
                if let Some(value) = request.include_global_service_events {
                    trail.include_global_service_events = value;
                }
                if let Some(value) = request.is_multi_region_trail {
                    trail.multi_region = value;
                }
                if let Some(value) = request.enable_log_file_validation {
                    trail.log_file_validation = value;
                }
                if let Some(value) = kms_key_id {
                    trail.kms_key_id = value;
                }
                if let Some(value) = request.recursive_logging {
                    trail.recursive_logging = Some(value);
                }
                if let Some(value) = request.is_organization_trail {
                    trail.organization = value;
                }
            })
            .await
            .api()?;
        // A trail that stops validating closes its digest period with a last digest.
        self.trails.wake();
        Ok(describe(ctx, &trail, Describe::Changed))
    }

    /// DeleteTrail: the trail is gone at once; what it had waiting is delivered, with a last
    /// digest, in the background. Delivered files stay in the bucket.
    pub async fn delete_trail(&self, ctx: &RequestContext, request: TrailRequest) -> Result<Empty, ApiError> {
        let name = trail_name(ctx, "Name", request.name.as_deref(), Access::Change)?;
        let mut deleted = self.catalog.delete_trail(&ctx.account_id, &name).await.api()?;
        deleted.logging = false;
        let trails = Arc::clone(&self.trails);
        tokio::spawn(async move {
            if let Err(error) = trails.finish_deleted(&deleted).await {
                tracing::warn!(trail = %deleted.name, %error, "could not deliver what a deleted trail had waiting");
            }
        });
        Ok(Empty {})
    }

    /// GetTrail.
    pub async fn get_trail(&self, ctx: &RequestContext, request: TrailRequest) -> Result<GetTrailResponse, ApiError> {
        let trail = self.read_trail(ctx, "Name", request.name.as_deref()).await?;
        Ok(GetTrailResponse {
            trail: Some(describe(ctx, &trail, Describe::Read)),
        })
    }

    /// DescribeTrails: the trails named (names or ARNs), or every trail of the account; names of
    /// no trail are left out, as AWS does.
    pub async fn describe_trails(
        &self,
        ctx: &RequestContext,
        request: DescribeTrailsRequest,
    ) -> Result<DescribeTrailsResponse, ApiError> {
        let trails = self.catalog.trails(&ctx.account_id).await;
        if request.trail_name_list.is_empty() {
            let mut trails = trails;
            if request.include_shadow_trails != Some(false) {
                trails.extend(self.organization_trails_seen_by(ctx).await);
            }
            return Ok(DescribeTrailsResponse {
                trail_list: trails.iter().map(|t| describe(ctx, t, Describe::Read)).collect(),
            });
        }
        let mut listed = Vec::new();
        for (i, value) in request.trail_name_list.iter().enumerate() {
            let name = match trail_name(ctx, &format!("trailNameList[{i}]"), Some(value), Access::Read) {
                Ok(name) => name,
                Err(error) if error.code == ErrorCode::TrailNotFoundException => continue,
                Err(error) => return Err(error),
            };
            if let Some(trail) = trails.iter().find(|t| t.name == name)
                && !listed.iter().any(|t: &&TrailRecord| t.name == name)
            {
                listed.push(trail);
            }
        }
        Ok(DescribeTrailsResponse {
            trail_list: listed.into_iter().map(|t| describe(ctx, t, Describe::Read)).collect(),
        })
    }

    /// ListTrails: the account's trails by name, 50 a page.
    pub async fn list_trails(
        &self,
        ctx: &RequestContext,
        request: ListTrailsRequest,
    ) -> Result<ListTrailsResponse, ApiError> {
        PAGINATION_TOKEN.check_optional("NextToken", request.next_token.as_deref())?;
        let after = match request.next_token.as_deref() {
            Some(token) => Some(paging::decode_token("ListTrails", token)?),
            None => None,
        };
        let mut trails = self.catalog.trails(&ctx.account_id).await;
        trails.extend(self.organization_trails_seen_by(ctx).await);
        trails.sort_by(|a, b| (&a.name, &a.account_id).cmp(&(&b.name, &b.account_id)));
        let rest: Vec<&TrailRecord> = trails
            .iter()
            .filter(|t| after.as_deref().is_none_or(|after| t.name.as_str() > after))
            .collect();
        let page = &rest[..rest.len().min(LIST_PAGE)];
        let next_token = (rest.len() > page.len())
            .then(|| page.last().map(|t| paging::encode_token("ListTrails", &t.name)))
            .flatten();
        Ok(ListTrailsResponse {
            trails: page
                .iter()
                .map(|t| TrailInfo {
                    trail_arn: Some(owned_trail_arn(ctx, t)),
                    name: Some(t.name.clone()),
                    home_region: Some(ctx.region.clone()),
                })
                .collect(),
            next_token,
        })
    }

    /// GetTrailStatus: whether the trail logs, and what its delivery last did.
    pub async fn get_trail_status(
        &self,
        ctx: &RequestContext,
        request: TrailRequest,
    ) -> Result<GetTrailStatusResponse, ApiError> {
        let trail = self.read_trail(ctx, "Name", request.name.as_deref()).await?;
        let state = self.trails.state(&trail).await.api()?;
        Ok(GetTrailStatusResponse {
            is_logging: Some(trail.logging),
            latest_delivery_error: state.latest_delivery_error.clone(),
            latest_notification_error: None,
            latest_delivery_time: state.latest_delivery_time.map(timestamp),
            latest_notification_time: None,
            start_logging_time: trail.start_logging_time.map(timestamp),
            stop_logging_time: trail.stop_logging_time.map(timestamp),
            latest_cloud_watch_logs_delivery_error: None,
            latest_cloud_watch_logs_delivery_time: None,
            latest_digest_delivery_time: state.latest_digest_delivery_time.map(timestamp),
            latest_digest_delivery_error: state.latest_digest_delivery_error.clone(),
            latest_delivery_attempt_time: state.latest_delivery_attempt_time.map(status_time),
            latest_notification_attempt_time: None,
            latest_notification_attempt_succeeded: None,
            latest_delivery_attempt_succeeded: state.latest_delivery_time.map(status_time),
            time_logging_started: trail.start_logging_time.map(status_time),
            time_logging_stopped: trail.stop_logging_time.map(status_time),
        })
    }

    /// StartLogging: the trail logs the calls that follow.
    pub async fn start_logging(&self, ctx: &RequestContext, request: TrailRequest) -> Result<Empty, ApiError> {
        self.set_logging(ctx, request, true).await
    }

    /// StopLogging: the trail delivers what it has and logs no more; with log file validation, a
    /// last digest closes its period.
    pub async fn stop_logging(&self, ctx: &RequestContext, request: TrailRequest) -> Result<Empty, ApiError> {
        self.set_logging(ctx, request, false).await
    }

    async fn set_logging(&self, ctx: &RequestContext, request: TrailRequest, logging: bool) -> Result<Empty, ApiError> {
        let name = trail_name(ctx, "Name", request.name.as_deref(), Access::Change)?;
        let now = Utc::now();
        self.catalog
            .update_trail(&ctx.account_id, &name, now, |trail| {
                if trail.logging != logging {
                    trail.logging = logging;
                    if logging {
                        trail.start_logging_time = Some(now);
                    } else {
                        trail.stop_logging_time = Some(now);
                    }
                }
            })
            .await
            .api()?;
        self.trails.wake();
        Ok(Empty {})
    }

    /// GetEventSelectors: the trail's selectors, in the form they were put.
    pub async fn get_event_selectors(
        &self,
        ctx: &RequestContext,
        request: GetEventSelectorsRequest,
    ) -> Result<EventSelectorsResponse, ApiError> {
        let trail = self.read_trail(ctx, "TrailName", request.trail_name.as_deref()).await?;
        Ok(selectors_response(ctx, &trail))
    }

    /// PutEventSelectors: replaces the trail's selectors with basic or advanced ones.
    pub async fn put_event_selectors(
        &self,
        ctx: &RequestContext,
        request: PutEventSelectorsRequest,
    ) -> Result<EventSelectorsResponse, ApiError> {
        let name = trail_name(ctx, "TrailName", request.trail_name.as_deref(), Access::Change)?;
        let selectors = check_put_selectors(&request.event_selectors, &request.advanced_event_selectors)?;
        let trail = self
            .catalog
            .update_trail(&ctx.account_id, &name, Utc::now(), |trail| trail.selectors = selectors)
            .await
            .api()?;
        Ok(selectors_response(ctx, &trail))
    }
}
