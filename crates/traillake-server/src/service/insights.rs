//! PutInsightSelectors and GetInsightSelectors of trails and of event data stores (a source store
//! and the Insight store its Insights events go to; the finding itself is
//! `traillake_query::insights`); ListInsightsMetricData: the per-period counts of one API's write
//! calls (ApiCallRateInsight) or of one of its error codes (ApiErrorRateInsight) in the caller's
//! Event history, as Insights reads them; ListInsightsData: the Insights events of a trail.
//!
//! traillake finds Insights on management events only: EventCategories `Data` is refused
//! (`InvalidInsightSelectorsException` when the trail logs no data events,
//! `UnsupportedOperationException` when it does).

use chrono::Utc;
use traillake_api::arn::event_data_store_arn;
use traillake_api::insights::{
    InsightSource, check_get_insight_selectors, check_list_insights_data, check_metric_request,
    check_put_insight_selectors, metric_page,
};
use traillake_api::lookup_events::event_of;
use traillake_api::shapes::{
    GetInsightSelectorsRequest, InsightSelector, InsightSelectorsResponse, InsightType, ListInsightsDataRequest,
    ListInsightsDataResponse, ListInsightsMetricDataRequest, ListInsightsMetricDataResponse,
    PutInsightSelectorsRequest,
};
use traillake_api::trails::{Access, trail_arn, trail_name};
use traillake_api::wire::timestamp;
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::catalog::insights::{API_CALL_RATE, API_ERROR_RATE};
use traillake_lake::{EventDataStoreRecord, LakeError, TrailRecord};

use super::Service;
use super::errors::IntoApi as _;

fn not_enabled(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InsightNotEnabledException,
        format!(
            "{what} does not have Insights enabled. Turn them on with PutInsightSelectors, and then try the operation again."
        ),
    )
}

/// Returns what Put/GetInsightSelectors answer of a trail.
fn trail_selectors_response(ctx: &RequestContext, trail: &TrailRecord) -> InsightSelectorsResponse {
    InsightSelectorsResponse {
        trail_arn: Some(trail_arn(ctx, &trail.name)),
        insight_selectors: selectors_of(&trail.insight_types),
        event_data_store_arn: None,
        insights_destination: None,
    }
}

/// Refuses Insights on a trail's data events.
fn data_insights(trail: &TrailRecord) -> ApiError {
    let logs_data = trail.advanced_selectors().iter().any(|selector| {
        selector.field_selectors.iter().any(|field| {
            field.field.as_deref() == Some("eventCategory") && field.equals.iter().any(|value| value == "Data")
        })
    });
    if logs_data {
        ApiError::new(
            ErrorCode::UnsupportedOperationException,
            format!(
                "trail {}: traillake finds Insights on management events only; give EventCategories Management",
                trail.name
            ),
        )
    } else {
        ApiError::new(
            ErrorCode::InvalidInsightSelectorsException,
            format!(
                "trail {} logs no data events, which Insights on data events need; give EventCategories Management",
                trail.name
            ),
        )
    }
}

/// The Insights operations model no EventDataStoreNotFoundException: an unknown store is
/// `InvalidParameterException`.
fn unknown_store_as_parameter<T>(result: Result<T, LakeError>) -> Result<T, ApiError> {
    match result {
        Err(error @ (LakeError::EventDataStoreNotFound(_) | LakeError::InactiveEventDataStore(_))) => {
            Err(ApiError::new(ErrorCode::InvalidParameterException, error.to_string()))
        }
        other => other.api(),
    }
}

/// Returns what Put/GetInsightSelectors answer of a source store.
fn selectors_response(ctx: &RequestContext, store: &EventDataStoreRecord) -> InsightSelectorsResponse {
    InsightSelectorsResponse {
        trail_arn: None,
        insight_selectors: selectors_of(&store.insight_types),
        event_data_store_arn: Some(event_data_store_arn(ctx, &store.id)),
        insights_destination: store
            .insights_destination
            .as_deref()
            .map(|id| event_data_store_arn(ctx, id)),
    }
}

fn selectors_of(types: &[String]) -> Vec<InsightSelector> {
    types
        .iter()
        .map(|name| InsightSelector {
            insight_type: Some(if name == API_ERROR_RATE {
                InsightType::ApiErrorRateInsight as i32
            } else {
                InsightType::ApiCallRateInsight as i32
            }),
            event_categories: vec!["Management".to_string()],
        })
        .collect()
}

impl Service {
    /// PutInsightSelectors: turns a source store's Insights types on (with their destination) or
    /// off (no selector).
    pub async fn put_insight_selectors(
        &self,
        ctx: &RequestContext,
        request: PutInsightSelectorsRequest,
    ) -> Result<InsightSelectorsResponse, ApiError> {
        let (source, selectors) = check_put_insight_selectors(ctx, &request)?;
        let types: Vec<String> = selectors
            .iter()
            .map(
                |selector| match InsightType::try_from(selector.insight_type.unwrap_or_default()) {
                    Ok(InsightType::ApiErrorRateInsight) => API_ERROR_RATE.to_string(),
                    _ => API_CALL_RATE.to_string(),
                },
            )
            .collect();
        let (source, destination) = match source {
            InsightSource::Trail(trail) => {
                let name = trail_name(ctx, "TrailName", Some(&trail), Access::Change)?;
                if selectors.iter().any(|s| s.event_categories.iter().any(|c| c == "Data")) {
                    let trail = self.catalog.trail(&ctx.account_id, &name).await.api()?;
                    return Err(data_insights(&trail));
                }
                let trail = self
                    .catalog
                    .set_trail_insight_selectors(&ctx.account_id, &name, types, Utc::now())
                    .await
                    .api()?;
                self.queries.wake_insights();
                return Ok(trail_selectors_response(ctx, &trail));
            }
            InsightSource::EventDataStore { source, destination } => (source, destination),
        };
        let store = unknown_store_as_parameter(
            self.catalog
                .set_insight_selectors(&ctx.account_id, &source, types, destination, Utc::now())
                .await,
        )?;
        self.queries.wake_insights();
        Ok(selectors_response(ctx, &store))
    }

    /// GetInsightSelectors: a source store's Insights types and destination, or
    /// `InsightNotEnabledException` when it has none.
    pub async fn get_insight_selectors(
        &self,
        ctx: &RequestContext,
        request: GetInsightSelectorsRequest,
    ) -> Result<InsightSelectorsResponse, ApiError> {
        let source = match check_get_insight_selectors(ctx, &request)? {
            InsightSource::Trail(trail) => {
                let name = trail_name(ctx, "TrailName", Some(&trail), Access::Read)?;
                let trail = self.catalog.trail(&ctx.account_id, &name).await.api()?;
                if trail.insight_types.is_empty() {
                    return Err(not_enabled(&format!("Trail {}", trail.name)));
                }
                return Ok(trail_selectors_response(ctx, &trail));
            }
            InsightSource::EventDataStore { source, .. } => source,
        };
        let store = unknown_store_as_parameter(self.catalog.event_data_store(&ctx.account_id, &source).await)?;
        if store.insight_types.is_empty() {
            return Err(not_enabled(&format!("Event data store {}", store.id)));
        }
        Ok(selectors_response(ctx, &store))
    }

    /// ListInsightsMetricData.
    pub async fn list_insights_metric_data(
        &self,
        ctx: &RequestContext,
        request: ListInsightsMetricDataRequest,
    ) -> Result<ListInsightsMetricDataResponse, ApiError> {
        let query = check_metric_request(&request, Utc::now())?;
        if let Some(trail) = request.trail_name.as_deref() {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperationException,
                format!(
                    "TrailName '{trail}': traillake does not compute Insights on data events; leave TrailName out for \
                     the management events of the account"
                ),
            ));
        }
        let counts = self
            .queries
            .insights_metric_counts(&ctx.account_id, &query)
            .await
            .api()?;
        let (points, next_token) = metric_page(&query, &counts);
        Ok(ListInsightsMetricDataResponse {
            trail_arn: None,
            event_source: Some(query.event_source.clone()),
            event_name: Some(query.event_name.clone()),
            insight_type: Some(query.insight_type as i32),
            error_code: (query.insight_type == InsightType::ApiErrorRateInsight)
                .then(|| query.error_code.clone())
                .flatten(),
            timestamps: points.iter().map(|(time, _)| timestamp(*time)).collect(),
            values: points.iter().map(|(_, value)| *value).collect(),
            next_token,
        })
    }

    /// ListInsightsData: the Insights events of the caller's Event history of the types the trail
    /// finds, newest first (none when it finds none). traillake finds Insights on management
    /// events, so these are the trail's management-event Insights, where AWS lists its data-event
    /// ones.
    pub async fn list_insights_data(
        &self,
        ctx: &RequestContext,
        request: ListInsightsDataRequest,
    ) -> Result<ListInsightsDataResponse, ApiError> {
        let (name, lookup) = check_list_insights_data(ctx, &request, Utc::now())?;
        let trail = match self.catalog.trail(&ctx.account_id, &name).await {
            Ok(trail) => trail,
            Err(LakeError::TrailNotFound(_)) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameterException,
                    format!("InsightSource: the trail {name} does not exist"),
                ));
            }
            Err(error) => return Err(error).api(),
        };
        if trail.insight_types.is_empty() {
            return Ok(ListInsightsDataResponse::default());
        }
        let (found, next_token) = self.lookup_page(ctx, &lookup).await?;
        // Events of a type the trail does not find are left out after the page is cut, so that
        // the token still continues after the last event read.
        let events = found
            .iter()
            .filter(|event| {
                serde_json::from_str::<serde_json::Value>(&event.json)
                    .ok()
                    .and_then(|record| record["insightDetails"]["insightType"].as_str().map(str::to_string))
                    .is_some_and(|insight_type| trail.insight_types.contains(&insight_type))
            })
            .map(|event| event_of(&event.json))
            .collect();
        Ok(ListInsightsDataResponse { events, next_token })
    }
}
