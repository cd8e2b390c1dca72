//! The Dashboards operations: CreateDashboard, UpdateDashboard, GetDashboard, ListDashboards,
//! DeleteDashboard and StartDashboardRefresh, and the refresh schedules, run by
//! [`Service::refresh_dashboards_every`].
//!
//! A refresh fills each widget's `?` placeholders with the refresh's values of its
//! QueryParameters (`traillake_sql::fill_placeholders`: literals, never SQL text) and starts its
//! query tagged with the widget's QueryAlias and the RefreshId, so that DescribeQuery finds it by
//! alias. RefreshIds are the refresh's time in epoch milliseconds (13 digits), one more than the
//! last when two fall in the same millisecond. A widget whose query cannot start (a store deleted
//! since, the account's 10 queries running) leaves the reason in `LastRefreshFailureReason`;
//! GetDashboard also reports a widget's query of the last refresh that failed while it ran.
//!
//! The managed Highlights dashboard (`AWSCloudTrail-Highlights`) has traillake's widgets over
//! `$EventDataStoreId$`: a refresh names the store (required, an active store of the account:
//! `EventDataStoreNotFoundException`, `InactiveEventDataStoreException`), a scheduled one takes the
//! account's oldest active store of CloudTrail events. Its widgets cannot be changed.
//!
//! A scheduled refresh is the CloudTrail service's, for the dashboard, as on AWS: the dashboard's
//! resource policy must allow `cloudtrail.amazonaws.com` `cloudtrail:StartDashboardRefresh`, and
//! each store its widgets read must allow the service `cloudtrail:StartQuery` (with
//! `aws:SourceArn` the dashboard's ARN where the policy says so); otherwise the refresh fails with
//! the reason in `LastRefreshFailureReason`. A refresh by StartDashboardRefresh is the caller's
//! own and needs no policy (AWS asks the stores' policies for it too).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use traillake_api::arn::{ResourceType, resource_arn};
use traillake_api::dashboards::{
    EVENT_DATA_STORE_ID, HIGHLIGHTS, check_highlights, check_name, check_refresh_schedule, check_refresh_values,
    check_widgets, dashboard_arn, dashboard_name, highlights_widgets, latest_due,
};
use traillake_api::paging;
use traillake_api::resource_policy::{Access, Caller, PolicyTarget, ResourcePolicy};
use traillake_api::shapes::{
    CreateDashboardRequest, CreateDashboardResponse, DashboardDetail, DashboardRequest, DashboardStatus, DashboardType,
    DeleteDashboardResponse, GetDashboardResponse, ListDashboardsRequest, ListDashboardsResponse,
    StartDashboardRefreshRequest, StartDashboardRefreshResponse, UpdateDashboardRequest, UpdateDashboardResponse,
    Widget,
};
use traillake_api::tags::check_tags;
use traillake_api::validate;
use traillake_api::wire::timestamp;
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::{DashboardRecord, EventDataStoreRecord};
use traillake_query::dialect::{count_placeholders, fill_placeholders};
use traillake_query::{QueryError, QueryTag, StoreGrant};

use super::Service;
use super::errors::IntoApi as _;

const LIST_OPERATION: &str = "ListDashboards";

/// The RefreshIds handed out: each is the later of now (epoch milliseconds) and one more than the
/// last.
#[derive(Debug, Default)]
pub(crate) struct RefreshIds {
    last: AtomicI64,
}

impl RefreshIds {
    fn next(&self, now: DateTime<Utc>) -> String {
        let now = now.timestamp_millis();
        let id = self
            .last
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(now.max(last + 1)))
            .map_or(now, |last| now.max(last + 1));
        id.to_string()
    }
}

fn dashboard_type(dashboard: &DashboardRecord) -> i32 {
    if dashboard.managed {
        DashboardType::Managed as i32
    } else {
        DashboardType::Custom as i32
    }
}

/// Returns the store ID a `$EventDataStoreId$` value names: the ID, or the last part of its ARN.
fn store_reference(value: &str) -> String {
    value.rsplit('/').next().unwrap_or(value).to_ascii_lowercase()
}

/// Returns the values of a widget's placeholders, in order, from a refresh's values.
fn widget_values(widget: &Widget, values: &HashMap<String, String>) -> Vec<String> {
    widget
        .query_parameters
        .iter()
        .map(|parameter| values.get(parameter).cloned().unwrap_or_default())
        .collect()
}

/// Returns whether a resource's policy (without one: no) lets the CloudTrail service do `action`
/// for the dashboard `source_arn` of the resource's account `owner`.
fn permits_service(
    policy: Option<&str>,
    resource_arn: &str,
    target: PolicyTarget,
    owner: &str,
    action: &str,
    source_arn: &str,
) -> bool {
    let Some(text) = policy else {
        return false;
    };
    let access = Access {
        action,
        caller: Caller::Service("cloudtrail.amazonaws.com"),
        source_arn: Some(source_arn),
        source_account: Some(owner),
        external_id: None,
    };
    ResourcePolicy::parse(text, resource_arn, target).is_ok_and(|policy| policy.permits(owner, &access))
}

impl Service {
    /// Checks widgets for a dashboard of the caller: their members, then each statement (its
    /// placeholders filled with the default refresh values) as StartQuery would plan it.
    async fn checked_widgets(
        &self,
        ctx: &RequestContext,
        name: &str,
        widgets: &[traillake_api::shapes::RequestWidget],
    ) -> Result<Vec<Widget>, ApiError> {
        let widgets = check_widgets(name, widgets, |statement| {
            count_placeholders(statement).map_err(|error| error.0)
        })?;
        let values = check_refresh_values(&HashMap::new(), false, Utc::now())?;
        for (i, widget) in widgets.iter().enumerate() {
            let statement = widget.query_statement.as_deref().unwrap_or_default();
            let filled = fill_placeholders(statement, &widget_values(widget, &values)).map_err(|error| {
                ApiError::new(
                    ErrorCode::InvalidQueryStatementException,
                    format!("Widgets[{i}].QueryStatement: {error}"),
                )
            })?;
            self.queries
                .check(&ctx.account_id, &filled)
                .await
                .api()
                .map_err(|mut error| {
                    error.message = format!("Widgets[{i}].QueryStatement: {}", error.message);
                    error
                })?;
        }
        Ok(widgets)
    }

    /// Returns the statement of the caller's dashboard widget that has a QueryAlias.
    pub(super) async fn widget_statement(&self, ctx: &RequestContext, alias: &str) -> Result<String, ApiError> {
        self.catalog
            .dashboards(&ctx.account_id)
            .await
            .iter()
            .flat_map(|dashboard| &dashboard.widgets)
            .find(|widget| widget.query_alias.as_deref() == Some(alias))
            .and_then(|widget| widget.query_statement.clone())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidParameterException,
                    format!(
                        "QueryAlias '{alias}' is the alias of no dashboard widget or generated query of this account"
                    ),
                )
            })
    }

    /// CreateDashboard: a custom dashboard of up to 10 widgets.
    pub async fn create_dashboard(
        &self,
        ctx: &RequestContext,
        request: CreateDashboardRequest,
    ) -> Result<CreateDashboardResponse, ApiError> {
        let name = request
            .name
            .as_deref()
            .ok_or_else(|| ApiError::missing(ErrorCode::ValidationException, "Name"))?;
        check_name("Name", name)?;
        check_tags("TagsList", &request.tags_list, ErrorCode::InvalidTagParameterException)?;
        let refresh_schedule = request
            .refresh_schedule
            .as_ref()
            .map(check_refresh_schedule)
            .transpose()?;
        let managed = name == HIGHLIGHTS;
        let widgets = if managed {
            check_highlights(&request.widgets, refresh_schedule.as_ref())?;
            highlights_widgets()
        } else {
            self.checked_widgets(ctx, name, &request.widgets).await?
        };
        let now = Utc::now();
        let dashboard = DashboardRecord {
            account_id: ctx.account_id.clone(),
            name: name.to_string(),
            managed,
            widgets,
            refresh_schedule,
            termination_protection: request.termination_protection_enabled.unwrap_or(false),
            tags: request.tags_list,
            resource_policy: None,
            changed: false,
            last_refresh_id: None,
            last_refresh_failure_reason: None,
            last_scheduled_refresh: None,
            created: now,
            updated: now,
        };
        let dashboard = self
            .catalog
            .create_dashboard(dashboard, self.settings.max_dashboards)
            .await
            .api()?;
        Ok(CreateDashboardResponse {
            dashboard_arn: Some(dashboard_arn(ctx, &dashboard.name)),
            name: Some(dashboard.name.clone()),
            r#type: Some(dashboard_type(&dashboard)),
            widgets: dashboard.widgets.clone(),
            tags_list: dashboard.tags.clone(),
            refresh_schedule: dashboard.refresh_schedule.clone(),
            termination_protection_enabled: Some(dashboard.termination_protection),
        })
    }

    /// UpdateDashboard: replaces the widgets (when some are given), the schedule and termination
    /// protection (when given).
    pub async fn update_dashboard(
        &self,
        ctx: &RequestContext,
        request: UpdateDashboardRequest,
    ) -> Result<UpdateDashboardResponse, ApiError> {
        let name = dashboard_name(ctx, request.dashboard_id.as_deref())?;
        let current = self.catalog.dashboard(&ctx.account_id, &name).await.api()?;
        let refresh_schedule = request
            .refresh_schedule
            .as_ref()
            .map(check_refresh_schedule)
            .transpose()?;
        if current.managed {
            if !request.widgets.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedOperationException,
                    format!("{name} is a managed dashboard: its widgets cannot be changed"),
                ));
            }
            if let Some(schedule) = &refresh_schedule {
                check_highlights(&[], Some(schedule))?;
            }
        }
        let widgets = if request.widgets.is_empty() {
            None
        } else {
            Some(self.checked_widgets(ctx, &current.name, &request.widgets).await?)
        };
        let dashboard = self
            .catalog
            .update_dashboard(&ctx.account_id, &name, Utc::now(), |dashboard| {
                if let Some(widgets) = widgets {
                    dashboard.widgets = widgets;
                }
                if let Some(schedule) = refresh_schedule {
                    dashboard.refresh_schedule = Some(schedule);
                }
                if let Some(protection) = request.termination_protection_enabled {
                    dashboard.termination_protection = protection;
                }
                dashboard.changed = true;
                Ok(())
            })
            .await
            .api()?;
        Ok(UpdateDashboardResponse {
            dashboard_arn: Some(dashboard_arn(ctx, &dashboard.name)),
            name: Some(dashboard.name.clone()),
            r#type: Some(dashboard_type(&dashboard)),
            widgets: dashboard.widgets.clone(),
            refresh_schedule: dashboard.refresh_schedule.clone(),
            termination_protection_enabled: Some(dashboard.termination_protection),
            created_timestamp: Some(timestamp(dashboard.created)),
            updated_timestamp: Some(timestamp(dashboard.updated)),
        })
    }

    /// GetDashboard.
    pub async fn get_dashboard(
        &self,
        ctx: &RequestContext,
        request: DashboardRequest,
    ) -> Result<GetDashboardResponse, ApiError> {
        let name = dashboard_name(ctx, request.dashboard_id.as_deref())?;
        let dashboard = self.catalog.dashboard(&ctx.account_id, &name).await.api()?;
        let failure = match (&dashboard.last_refresh_failure_reason, &dashboard.last_refresh_id) {
            (Some(reason), _) => Some(reason.clone()),
            (None, Some(refresh_id)) => self.queries.refresh_failure(&ctx.account_id, refresh_id).await,
            (None, None) => None,
        };
        Ok(GetDashboardResponse {
            dashboard_arn: Some(dashboard_arn(ctx, &dashboard.name)),
            r#type: Some(dashboard_type(&dashboard)),
            status: Some(if dashboard.changed {
                DashboardStatus::Updated as i32
            } else {
                DashboardStatus::Created as i32
            }),
            widgets: dashboard.widgets.clone(),
            refresh_schedule: dashboard.refresh_schedule.clone(),
            created_timestamp: Some(timestamp(dashboard.created)),
            updated_timestamp: Some(timestamp(dashboard.updated)),
            last_refresh_id: dashboard.last_refresh_id.clone(),
            last_refresh_failure_reason: failure,
            termination_protection_enabled: Some(dashboard.termination_protection),
        })
    }

    /// ListDashboards: the account's dashboards by name, filtered by a name prefix and a type.
    pub async fn list_dashboards(
        &self,
        ctx: &RequestContext,
        request: ListDashboardsRequest,
    ) -> Result<ListDashboardsResponse, ApiError> {
        if let Some(prefix) = request.name_prefix.as_deref() {
            check_name("NamePrefix", prefix)?;
        }
        let kind = validate::enum_value::<DashboardType>("Type", request.r#type)?;
        let page = paging::check_page(
            LIST_OPERATION,
            request.max_results,
            request.next_token.as_deref(),
            ErrorCode::ValidationException,
        )?;
        let mut dashboards: Vec<DashboardRecord> = self
            .catalog
            .dashboards(&ctx.account_id)
            .await
            .into_iter()
            .filter(|d| {
                request
                    .name_prefix
                    .as_deref()
                    .is_none_or(|prefix| d.name.starts_with(prefix))
            })
            .filter(|d| kind.is_none_or(|kind| dashboard_type(d) == kind as i32))
            .filter(|d| page.after.as_deref().is_none_or(|after| d.name.as_str() > after))
            .collect();
        dashboards.sort_by(|a, b| a.name.cmp(&b.name));
        let more = dashboards.len() > page.max_results;
        dashboards.truncate(page.max_results);
        let next_token = more
            .then(|| dashboards.last().map(|d| paging::encode_token(LIST_OPERATION, &d.name)))
            .flatten();
        Ok(ListDashboardsResponse {
            dashboards: dashboards
                .iter()
                .map(|d| DashboardDetail {
                    dashboard_arn: Some(dashboard_arn(ctx, &d.name)),
                    r#type: Some(dashboard_type(d)),
                })
                .collect(),
            next_token,
        })
    }

    /// DeleteDashboard: refused while termination protection is on (`ConflictException`).
    pub async fn delete_dashboard(
        &self,
        ctx: &RequestContext,
        request: DashboardRequest,
    ) -> Result<DeleteDashboardResponse, ApiError> {
        let name = dashboard_name(ctx, request.dashboard_id.as_deref())?;
        self.catalog.delete_dashboard(&ctx.account_id, &name).await.api()?;
        Ok(DeleteDashboardResponse {})
    }

    /// StartDashboardRefresh: starts each widget's query with the refresh's values.
    pub async fn start_dashboard_refresh(
        &self,
        ctx: &RequestContext,
        request: StartDashboardRefreshRequest,
    ) -> Result<StartDashboardRefreshResponse, ApiError> {
        let name = dashboard_name(ctx, request.dashboard_id.as_deref())?;
        let dashboard = self.catalog.dashboard(&ctx.account_id, &name).await.api()?;
        let now = Utc::now();
        let mut values = check_refresh_values(&request.query_parameter_values, dashboard.managed, now)?;
        if dashboard.managed {
            let store = values.get(EVENT_DATA_STORE_ID).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ValidationException,
                    format!(
                        "QueryParameterValues must give {EVENT_DATA_STORE_ID} to refresh the managed dashboard {name}"
                    ),
                )
            })?;
            let store = self
                .catalog
                .event_data_store(&ctx.account_id, &store_reference(store))
                .await
                .api()?;
            if !store.is_active() {
                return Err(ApiError::new(
                    ErrorCode::InactiveEventDataStoreException,
                    format!("event data store {} is pending deletion", store.id),
                ));
            }
            // The widgets read the store by the catalog's ID, never by the text given.
            values.insert(EVENT_DATA_STORE_ID.to_string(), store.id);
        }
        let refresh_id = self.refresh(&dashboard, &values, now, None).await.api()?;
        Ok(StartDashboardRefreshResponse {
            refresh_id: Some(refresh_id),
        })
    }

    /// Starts a refresh of a dashboard: each widget's query, tagged; records the refresh (and, for
    /// a scheduled one, the time it was due) and returns its RefreshId.
    async fn refresh(
        &self,
        dashboard: &DashboardRecord,
        values: &HashMap<String, String>,
        now: DateTime<Utc>,
        scheduled: Option<DateTime<Utc>>,
    ) -> Result<String, traillake_lake::LakeError> {
        let refresh_id = self.refresh_ids.next(now);
        let mut failure = None;
        // A managed dashboard's widgets read the store its refresh names (a catalog ID).
        let store = values.get(EVENT_DATA_STORE_ID);
        // A scheduled refresh is CloudTrail's, for the dashboard: each store its widgets read must
        // allow the service StartQuery for it.
        let dashboard_arn = resource_arn(
            self.trails.region(),
            &dashboard.account_id,
            ResourceType::Dashboard,
            &dashboard.name,
        );
        let service_grant = |store: &EventDataStoreRecord| {
            let store_arn = resource_arn(
                self.trails.region(),
                &store.account_id,
                ResourceType::EventDataStore,
                &store.id,
            );
            permits_service(
                store.resource_policy.as_deref(),
                &store_arn,
                PolicyTarget::EventDataStore,
                &store.account_id,
                "cloudtrail:StartQuery",
                &dashboard_arn,
            )
        };
        let grant: Option<StoreGrant<'_>> = scheduled.is_some().then_some(&service_grant);
        for widget in &dashboard.widgets {
            let alias = widget.query_alias.clone().unwrap_or_default();
            let mut statement = widget.query_statement.clone().unwrap_or_default();
            if let (true, Some(store)) = (dashboard.managed, store) {
                statement = statement.replace(EVENT_DATA_STORE_ID, store);
            }
            let started = match fill_placeholders(&statement, &widget_values(widget, values)) {
                Ok(filled) => self
                    .queries
                    .start_granted(
                        &dashboard.account_id,
                        &filled,
                        None,
                        QueryTag {
                            query_alias: Some(alias.clone()),
                            refresh_id: Some(refresh_id.clone()),
                            prompt: None,
                        },
                        grant,
                    )
                    .await
                    .map_err(|error| match error {
                        QueryError::StoreNotShared(store) => format!(
                            "the resource policy of event data store {store} does not allow cloudtrail.amazonaws.com \
                             to StartQuery for dashboard {dashboard_arn}, which a scheduled refresh needs"
                        ),
                        other => other.to_string(),
                    }),
                Err(error) => Err(error.0),
            };
            if let Err(reason) = started
                && failure.is_none()
            {
                failure = Some(format!("the query of widget {alias} could not start: {reason}"));
            }
        }
        self.catalog
            .record_dashboard_refresh(&dashboard.account_id, &dashboard.name, &refresh_id, failure, scheduled)
            .await?;
        Ok(refresh_id)
    }

    /// Records a scheduled refresh, due at `due`, that could not start, with the reason.
    async fn record_scheduled_failure(
        &self,
        dashboard: &DashboardRecord,
        reason: &str,
        now: DateTime<Utc>,
        due: DateTime<Utc>,
    ) {
        let refresh_id = self.refresh_ids.next(now);
        if let Err(error) = self
            .catalog
            .record_dashboard_refresh(
                &dashboard.account_id,
                &dashboard.name,
                &refresh_id,
                Some(reason.to_string()),
                Some(due),
            )
            .await
        {
            tracing::warn!(dashboard = %dashboard.name, %error, "recording a scheduled refresh failed");
        }
    }

    /// Refreshes every dashboard whose schedule came due since its last scheduled refresh (and
    /// after it was created), every `dashboard_schedule_interval`, with the default values (the
    /// last 24 hours, by hour). Runs until dropped.
    pub async fn refresh_dashboards_every(&self) {
        let every = self.settings.dashboard_schedule_interval;
        loop {
            let now = Utc::now();
            for dashboard in self.catalog.all_dashboards().await {
                let Some(due) = dashboard.refresh_schedule.as_ref().and_then(|s| latest_due(s, now)) else {
                    continue;
                };
                if due < dashboard.created || dashboard.last_scheduled_refresh.is_some_and(|last| last >= due) {
                    continue;
                }
                let dashboard_arn = resource_arn(
                    self.trails.region(),
                    &dashboard.account_id,
                    ResourceType::Dashboard,
                    &dashboard.name,
                );
                if !permits_service(
                    dashboard.resource_policy.as_deref(),
                    &dashboard_arn,
                    PolicyTarget::Dashboard,
                    &dashboard.account_id,
                    "cloudtrail:StartDashboardRefresh",
                    &dashboard_arn,
                ) {
                    let reason = "the dashboard's resource policy does not allow cloudtrail.amazonaws.com to \
                                  StartDashboardRefresh, which a scheduled refresh needs (PutResourcePolicy)";
                    self.record_scheduled_failure(&dashboard, reason, now, due).await;
                    continue;
                }
                let mut values =
                    check_refresh_values(&HashMap::new(), false, now).expect("the default values are valid");
                // A managed dashboard refreshes on schedule from the account's oldest active store
                // of CloudTrail events.
                if dashboard.managed {
                    let mut stores: Vec<_> = self
                        .catalog
                        .event_data_stores(&dashboard.account_id)
                        .await
                        .into_iter()
                        .filter(|s| s.is_active() && s.kind == traillake_api::selectors::StoreKind::CloudTrail)
                        .collect();
                    stores.sort_by_key(|s| s.created);
                    match stores.first() {
                        Some(store) => {
                            values.insert(EVENT_DATA_STORE_ID.to_string(), store.id.clone());
                        }
                        None => {
                            let reason = "no active event data store of CloudTrail events to refresh from";
                            self.record_scheduled_failure(&dashboard, reason, now, due).await;
                            continue;
                        }
                    }
                }
                match self.refresh(&dashboard, &values, now, Some(due)).await {
                    Ok(refresh_id) => {
                        tracing::info!(account_id = %dashboard.account_id, dashboard = %dashboard.name, %refresh_id, "scheduled dashboard refresh")
                    }
                    Err(error) => {
                        tracing::warn!(dashboard = %dashboard.name, %error, "a scheduled dashboard refresh failed; it is tried again")
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}
