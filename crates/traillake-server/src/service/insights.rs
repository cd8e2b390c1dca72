//! PutInsightSelectors and GetInsightSelectors of event data stores (a source store and the
//! Insight store its Insights events go to; the finding itself is `traillake_query::insights`),
//! and ListInsightsMetricData: the per-period counts of one API's write calls
//! (ApiCallRateInsight) or of one of its error codes (ApiErrorRateInsight) in the caller's Event
//! history, as Insights reads them. Insights of trails are not found yet: their operations answer
//! `UnsupportedOperationException`.

use chrono::Utc;
use traillake_api::arn::event_data_store_arn;
use traillake_api::insights::{
    InsightSource, check_get_insight_selectors, check_metric_request, check_put_insight_selectors, metric_page,
};
use traillake_api::shapes::{
    GetInsightSelectorsRequest, InsightSelector, InsightSelectorsResponse, InsightType, ListInsightsMetricDataRequest,
    ListInsightsMetricDataResponse, PutInsightSelectorsRequest,
};
use traillake_api::wire::timestamp;
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::catalog::insights::{API_CALL_RATE, API_ERROR_RATE};
use traillake_lake::{EventDataStoreRecord, LakeError};

use super::Service;
use super::errors::IntoApi as _;

/// Insights of trails are not found yet.
fn trail_insights(trail: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedOperationException,
        format!(
            "TrailName '{trail}': traillake finds Insights in event data stores (EventDataStore and InsightsDestination), \
             not yet in trails"
        ),
    )
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
        let (source, destination) = match source {
            InsightSource::Trail(trail) => return Err(trail_insights(&trail)),
            InsightSource::EventDataStore { source, destination } => (source, destination),
        };
        let types = selectors
            .iter()
            .map(
                |selector| match InsightType::try_from(selector.insight_type.unwrap_or_default()) {
                    Ok(InsightType::ApiErrorRateInsight) => API_ERROR_RATE.to_string(),
                    _ => API_CALL_RATE.to_string(),
                },
            )
            .collect();
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
            InsightSource::Trail(trail) => return Err(trail_insights(&trail)),
            InsightSource::EventDataStore { source, .. } => source,
        };
        let store = unknown_store_as_parameter(self.catalog.event_data_store(&ctx.account_id, &source).await)?;
        if store.insight_types.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InsightNotEnabledException,
                format!(
                    "Event data store {} does not have Insights enabled. Turn them on with PutInsightSelectors, and then \
                     try the operation again.",
                    store.id
                ),
            ));
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
}
