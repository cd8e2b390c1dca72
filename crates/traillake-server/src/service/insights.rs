//! ListInsightsMetricData: the per-period counts of one API's write calls (ApiCallRateInsight) or
//! of one of its error codes (ApiErrorRateInsight) in the caller's Event history, as Insights
//! reads them. Data-event Insights of a trail (`TrailName`) are not computed.

use chrono::Utc;
use traillake_api::insights::{check_metric_request, metric_page};
use traillake_api::shapes::{InsightType, ListInsightsMetricDataRequest, ListInsightsMetricDataResponse};
use traillake_api::wire::timestamp;
use traillake_api::{ApiError, ErrorCode, RequestContext};

use super::Service;
use super::errors::IntoApi as _;

impl Service {
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
