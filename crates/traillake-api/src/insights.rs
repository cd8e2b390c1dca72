//! Validation of the Insights operations. PutInsightSelectors / GetInsightSelectors: a trail, or a
//! source event data store with its Insights destination, never both
//! (`InvalidParameterCombinationException`); selectors of known types, each once, of management
//! events on stores (`InvalidInsightSelectorsException`). ListInsightsMetricData: the key
//! (EventSource, EventName, InsightType and, for error rates, ErrorCode), the period and its
//! availability window, the time range, the data type and the page; every refusal is
//! `InvalidParameterException` naming the member, the only validation error the model gives it.

use chrono::{DateTime, Duration, Utc};

use crate::Result;
use crate::arn::{self, CloudTrailArn, ResourceType};
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorCode};
use crate::lookup_events::{Lookup, check_lookup};
use crate::paging::{decode_bound_token, encode_bound_token};
use crate::shapes::{
    GetInsightSelectorsRequest, InsightSelector, InsightType, InsightsMetricDataType, ListInsightsDataRequest,
    ListInsightsDataType, ListInsightsMetricDataRequest, LookupAttribute, LookupEventsRequest,
    PutInsightSelectorsRequest,
};
use crate::validate::{self, Pattern, StringRule};
use crate::wire::utc;

const OPERATION: &str = "ListInsightsMetricData";
/// The most data points one page holds: 15 days of minutes.
pub const MAX_RESULTS: i32 = 21_600;

static EVENT_SOURCE_PATTERN: Pattern = Pattern::new(r"^[a-z0-9_-]+\.amazonaws\.com$");
static EVENT_SOURCE: StringRule = StringRule {
    min: 1,
    max: 256,
    pattern: Some(&EVENT_SOURCE_PATTERN),
    code: ErrorCode::InvalidParameterException,
};
static EVENT_NAME_PATTERN: Pattern = Pattern::new(r"^[A-Za-z0-9_]+$");
static EVENT_NAME: StringRule = StringRule {
    min: 1,
    max: 128,
    pattern: Some(&EVENT_NAME_PATTERN),
    code: ErrorCode::InvalidParameterException,
};
static ERROR_CODE_PATTERN: Pattern = Pattern::new(r"^[\w\d\s_.,\-:\[\]]+$");
static ERROR_CODE: StringRule = StringRule {
    min: 1,
    max: 128,
    pattern: Some(&ERROR_CODE_PATTERN),
    code: ErrorCode::InvalidParameterException,
};

/// What PutInsightSelectors and GetInsightSelectors name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsightSource {
    /// A trail, by name or ARN as given.
    Trail(String),
    /// A source event data store (its ID) and, for PutInsightSelectors, its destination's ID.
    EventDataStore {
        /// The source's ID.
        source: String,
        /// The destination's ID.
        destination: Option<String>,
    },
}

fn combination(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameterCombinationException, message)
}

fn store_id(ctx: &RequestContext, field: &str, value: &str) -> Result<String> {
    arn::resource_id(
        ctx,
        field,
        value,
        ResourceType::EventDataStore,
        ErrorCode::InvalidParameterException,
    )
}

fn source_of(
    ctx: &RequestContext,
    trail: Option<&str>,
    store: Option<&str>,
    destination: Option<&str>,
) -> Result<InsightSource> {
    match (trail, store, destination) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(combination(
            "TrailName cannot be given with EventDataStore or InsightsDestination",
        )),
        (Some(trail), None, None) => Ok(InsightSource::Trail(trail.to_string())),
        (None, Some(store), destination) => Ok(InsightSource::EventDataStore {
            source: store_id(ctx, "EventDataStore", store)?,
            destination: destination
                .map(|destination| store_id(ctx, "InsightsDestination", destination))
                .transpose()?,
        }),
        (None, None, Some(_)) => Err(combination("InsightsDestination is given without EventDataStore")),
        (None, None, None) => Err(combination(
            "give TrailName, or EventDataStore (with InsightsDestination to turn Insights on)",
        )),
    }
}

/// Checks a PutInsightSelectors request; returns its source and the Insights types it turns on
/// (none turns Insights off), with each selector as it is answered.
pub fn check_put_insight_selectors(
    ctx: &RequestContext,
    request: &PutInsightSelectorsRequest,
) -> Result<(InsightSource, Vec<InsightSelector>)> {
    let source = source_of(
        ctx,
        request.trail_name.as_deref(),
        request.event_data_store.as_deref(),
        request.insights_destination.as_deref(),
    )?;
    let on_store = matches!(source, InsightSource::EventDataStore { .. });
    let mut checked: Vec<InsightSelector> = Vec::new();
    for (i, selector) in request.insight_selectors.iter().enumerate() {
        let field = format!("InsightSelectors[{i}].InsightType");
        let invalid = |message: String| ApiError::new(ErrorCode::InvalidInsightSelectorsException, message);
        let insight_type = validate::enum_value::<InsightType>(&field, selector.insight_type)?.ok_or_else(|| {
            invalid(format!(
                "{field} is required: ApiCallRateInsight or ApiErrorRateInsight"
            ))
        })?;
        if checked.iter().any(|c| c.insight_type == Some(insight_type as i32)) {
            return Err(invalid(format!(
                "{field}: {} is given twice",
                insight_type.as_str_name()
            )));
        }
        let mut categories = Vec::new();
        for category in &selector.event_categories {
            match category.as_str() {
                "Management" | "Data" if !categories.contains(category) => categories.push(category.clone()),
                "Management" | "Data" => {}
                other => {
                    return Err(invalid(format!(
                        "InsightSelectors[{i}].EventCategories: '{other}' is not Management or Data"
                    )));
                }
            }
        }
        if categories.is_empty() {
            categories.push("Management".to_string());
        }
        if on_store && categories.iter().any(|c| c == "Data") {
            return Err(invalid(
                "Insights on data events are not supported on event data stores; give EventCategories Management"
                    .to_string(),
            ));
        }
        checked.push(InsightSelector {
            insight_type: Some(insight_type as i32),
            event_categories: categories,
        });
    }
    if let InsightSource::EventDataStore { destination: None, .. } = &source
        && !checked.is_empty()
    {
        return Err(combination(
            "EventDataStore is given without InsightsDestination; both are needed to turn Insights on",
        ));
    }
    Ok((source, checked))
}

/// Checks a GetInsightSelectors request; returns its source.
pub fn check_get_insight_selectors(
    ctx: &RequestContext,
    request: &GetInsightSelectorsRequest,
) -> Result<InsightSource> {
    source_of(
        ctx,
        request.trail_name.as_deref(),
        request.event_data_store.as_deref(),
        None,
    )
}

/// Returns the wire name of an Insights type.
pub fn insight_type_name(insight_type: InsightType) -> &'static str {
    match insight_type {
        InsightType::ApiErrorRateInsight => "ApiErrorRateInsight",
        _ => "ApiCallRateInsight",
    }
}

/// A checked ListInsightsMetricData request.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    /// `eventSource` of the calls.
    pub event_source: String,
    /// `eventName` of the calls.
    pub event_name: String,
    /// Write calls (ApiCallRateInsight) or errors (ApiErrorRateInsight).
    pub insight_type: InsightType,
    /// The error counted, for ApiErrorRateInsight.
    pub error_code: Option<String>,
    /// The first period's start, on the period's boundary.
    pub start: DateTime<Utc>,
    /// The end, exclusive.
    pub end: DateTime<Utc>,
    /// Seconds a data point covers.
    pub period: i64,
    /// Whether periods without calls are answered (as zeros).
    pub fill_with_zeros: bool,
    /// Data points a page holds at most.
    pub max_results: usize,
    /// The start of the last period of the page before, if this is a next page.
    pub after: Option<DateTime<Utc>>,
    /// The request's parameters, to which its page tokens are bound.
    bound: String,
}

impl MetricQuery {
    /// Returns the token of the page after the period that starts at `last`.
    pub fn next_token(&self, last: DateTime<Utc>) -> String {
        encode_bound_token(OPERATION, &self.bound, &last.timestamp().to_string())
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameterException, message)
}

/// Checks a request at `now` and returns its query.
pub fn check_metric_request(request: &ListInsightsMetricDataRequest, now: DateTime<Utc>) -> Result<MetricQuery> {
    let event_source = EVENT_SOURCE.check_required("EventSource", request.event_source.as_deref())?;
    let event_name = EVENT_NAME.check_required("EventName", request.event_name.as_deref())?;
    let insight_type = validate::enum_value::<InsightType>("InsightType", request.insight_type)?
        .ok_or_else(|| ApiError::missing(ErrorCode::InvalidParameterException, "InsightType"))?;
    let error_code = match (insight_type, request.error_code.as_deref()) {
        (InsightType::ApiErrorRateInsight, None) => {
            return Err(invalid(
                "ErrorCode is required when InsightType is ApiErrorRateInsight".to_string(),
            ));
        }
        (InsightType::ApiErrorRateInsight, Some(code)) => {
            ERROR_CODE.check("ErrorCode", code)?;
            Some(code.to_string())
        }
        (_, Some(_)) => {
            return Err(invalid(
                "ErrorCode is given only when InsightType is ApiErrorRateInsight".to_string(),
            ));
        }
        (_, None) => None,
    };
    let period = i64::from(request.period.unwrap_or(3600));
    let kept_days = match period {
        60 => 15,
        300 => 63,
        3600 => 90,
        other => {
            return Err(invalid(format!(
                "Period {other} is not valid; give 60, 300 or 3600 seconds"
            )));
        }
    };
    let fill_with_zeros = matches!(
        validate::enum_value::<InsightsMetricDataType>("DataType", request.data_type)?,
        Some(InsightsMetricDataType::FillWithZeros)
    );
    let max_results = request.max_results.unwrap_or(MAX_RESULTS);
    validate::range(
        ErrorCode::InvalidParameterException,
        "MaxResults",
        max_results.into(),
        1,
        MAX_RESULTS.into(),
    )?;
    let time = |value: Option<&prost_types::Timestamp>, field: &str| -> Result<Option<DateTime<Utc>>> {
        value
            .map(|value| utc(value).ok_or_else(|| invalid(format!("{field} is out of range"))))
            .transpose()
    };
    let given_start = time(request.start_time.as_ref(), "StartTime")?;
    let given_end = time(request.end_time.as_ref(), "EndTime")?;
    let end = given_end.unwrap_or(now).min(now);
    let start = given_start.unwrap_or(end - Duration::days(90));
    if start >= end {
        return Err(invalid("StartTime must be before EndTime".to_string()));
    }
    // Periods start on multiples of the period since the epoch; none older than the period keeps.
    let align = |time: DateTime<Utc>| {
        DateTime::from_timestamp(time.timestamp().div_euclid(period) * period, 0).expect("an aligned time")
    };
    let start = align(start.max(now - Duration::days(kept_days)));

    let seconds = |time: Option<DateTime<Utc>>| time.map_or(String::new(), |time| time.timestamp().to_string());
    let bound = format!(
        "{event_source}|{event_name}|{}|{}|{}|{}|{period}|{fill_with_zeros}",
        insight_type.as_str_name(),
        error_code.as_deref().unwrap_or_default(),
        seconds(given_start),
        seconds(given_end),
    );
    let after = match request.next_token.as_deref() {
        None => None,
        Some(token) => {
            let unreadable = || invalid("NextToken is not a token of this request's data points".to_string());
            let after = decode_bound_token(OPERATION, &bound, token).map_err(|_| unreadable())?;
            let seconds: i64 = after.parse().map_err(|_| unreadable())?;
            Some(DateTime::from_timestamp(seconds, 0).ok_or_else(unreadable)?)
        }
    };
    Ok(MetricQuery {
        event_source: event_source.to_string(),
        event_name: event_name.to_string(),
        insight_type,
        error_code,
        start,
        end,
        period,
        fill_with_zeros,
        max_results: max_results as usize,
        after,
        bound,
    })
}

/// Returns a page of data points from the counts of the periods that have calls (period start,
/// count; oldest first): every period of the range with FillWithZeros, the counted ones
/// otherwise; the token of the next page when the range has more.
pub fn metric_page(
    query: &MetricQuery,
    counts: &[(DateTime<Utc>, u64)],
) -> (Vec<(DateTime<Utc>, f64)>, Option<String>) {
    let first = match query.after {
        Some(after) => after + Duration::seconds(query.period),
        None => query.start,
    };
    let mut points = Vec::new();
    let mut more = false;
    if query.fill_with_zeros {
        let mut counted = counts.iter().peekable();
        let mut time = first;
        while time < query.end {
            while counted.next_if(|(at, _)| *at < time).is_some() {}
            let value = counted.next_if(|(at, _)| *at == time).map_or(0, |(_, count)| *count);
            if points.len() == query.max_results {
                more = true;
                break;
            }
            points.push((time, value as f64));
            time += Duration::seconds(query.period);
        }
    } else {
        for &(time, count) in counts
            .iter()
            .filter(|(at, count)| *at >= first && *at < query.end && *count > 0)
        {
            if points.len() == query.max_results {
                more = true;
                break;
            }
            points.push((time, count as f64));
        }
    }
    let next_token = more
        .then(|| points.last().map(|(last, _)| query.next_token(*last)))
        .flatten();
    (points, next_token)
}

/// Checks a ListInsightsData request at `now`: the trail's name (its ARN must name a trail of the
/// caller in the server's Region) and the lookup of Insights events it asks for. Every refusal is
/// `InvalidParameterException`, the only validation error the model gives the operation.
pub fn check_list_insights_data(
    ctx: &RequestContext,
    request: &ListInsightsDataRequest,
    now: DateTime<Utc>,
) -> Result<(String, Lookup)> {
    let source = request
        .insight_source
        .as_deref()
        .ok_or_else(|| ApiError::missing(ErrorCode::InvalidParameterException, "InsightSource"))?;
    let arn = CloudTrailArn::parse(source)
        .filter(|arn| arn.kind() == Some(ResourceType::Trail))
        .ok_or_else(|| {
            invalid(format!(
                "InsightSource '{source}' is not a trail ARN (arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME)"
            ))
        })?;
    if arn.account_id != ctx.account_id || arn.region != ctx.region {
        return Err(invalid(format!(
            "InsightSource '{source}' is not a trail of account {} in {}",
            ctx.account_id, ctx.region
        )));
    }
    match validate::enum_value::<ListInsightsDataType>("DataType", request.data_type)? {
        Some(ListInsightsDataType::InsightsEvents) => {}
        _ => return Err(invalid("DataType is required: InsightsEvents".to_string())),
    }
    let attribute = match request.dimensions.iter().collect::<Vec<_>>().as_slice() {
        [] => Vec::new(),
        [(key, value)] => {
            if !matches!(key.as_str(), "EventId" | "EventName" | "EventSource") {
                return Err(invalid(format!(
                    "Dimensions key '{key}' is not one of EventId, EventName, EventSource"
                )));
            }
            vec![LookupAttribute {
                attribute_key: Some(key.to_string()),
                attribute_value: Some(value.to_string()),
            }]
        }
        more => {
            return Err(invalid(format!(
                "Dimensions holds {} items; it takes at most one",
                more.len()
            )));
        }
    };
    let lookup = LookupEventsRequest {
        lookup_attributes: attribute,
        start_time: request.start_time,
        end_time: request.end_time,
        event_category: Some("insight".to_string()),
        max_results: request.max_results,
        next_token: request.next_token.clone(),
    };
    let lookup = check_lookup(&lookup, now).map_err(|error| {
        let message = error
            .message
            .replace("LookupAttributes[0].AttributeValue", "Dimensions' value");
        invalid(message)
    })?;
    Ok((arn.resource_id, lookup))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::timestamp;

    fn request() -> ListInsightsMetricDataRequest {
        ListInsightsMetricDataRequest {
            event_source: Some("cloudtrail.amazonaws.com".into()),
            event_name: Some("CreateTrail".into()),
            insight_type: Some(InsightType::ApiCallRateInsight as i32),
            ..Default::default()
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn defaults_and_availability() {
        let now = at("2026-12-07T10:17:33Z");
        let query = check_metric_request(&request(), now).unwrap();
        assert_eq!((query.period, query.end), (3600, now));
        assert_eq!(query.start, at("2026-09-08T10:00:00Z"), "90 days, on the hour");
        let minutes = check_metric_request(
            &ListInsightsMetricDataRequest {
                period: Some(60),
                ..request()
            },
            now,
        )
        .unwrap();
        assert_eq!(
            minutes.start,
            at("2026-11-22T10:17:00Z"),
            "a minute's points are kept 15 days"
        );
    }

    #[test]
    fn bad_members_are_refused() {
        let now = Utc::now();
        let cases = [
            ListInsightsMetricDataRequest {
                event_source: Some("CloudTrail".into()),
                ..request()
            },
            ListInsightsMetricDataRequest {
                event_name: Some("Create Trail".into()),
                ..request()
            },
            ListInsightsMetricDataRequest {
                period: Some(120),
                ..request()
            },
            ListInsightsMetricDataRequest {
                insight_type: Some(InsightType::ApiErrorRateInsight as i32),
                ..request()
            },
            ListInsightsMetricDataRequest {
                error_code: Some("AccessDenied".into()),
                ..request()
            },
            ListInsightsMetricDataRequest {
                max_results: Some(21_601),
                ..request()
            },
            ListInsightsMetricDataRequest {
                start_time: Some(timestamp(now)),
                end_time: Some(timestamp(now - Duration::hours(1))),
                ..request()
            },
            ListInsightsMetricDataRequest {
                next_token: Some("not a token".into()),
                ..request()
            },
            ListInsightsMetricDataRequest {
                insight_type: None,
                ..request()
            },
        ];
        for case in cases {
            let error = check_metric_request(&case, now).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidParameterException, "{case:?}");
        }
    }

    #[test]
    fn pages_of_points() {
        let now = at("2026-12-07T10:00:00Z");
        let mut query = check_metric_request(
            &ListInsightsMetricDataRequest {
                period: Some(300),
                start_time: Some(timestamp(at("2026-12-07T09:00:00Z"))),
                max_results: Some(5),
                data_type: Some(InsightsMetricDataType::FillWithZeros as i32),
                ..request()
            },
            now,
        )
        .unwrap();
        let counts = [(at("2026-12-07T09:05:00Z"), 3), (at("2026-12-07T09:50:00Z"), 7)];
        let (points, token) = metric_page(&query, &counts);
        assert_eq!(points.len(), 5);
        assert_eq!(points[1], (at("2026-12-07T09:05:00Z"), 3.0));
        assert_eq!(points[0].1 + points[2].1, 0.0);
        let token = token.expect("a next page");
        let next = ListInsightsMetricDataRequest {
            period: Some(300),
            start_time: Some(timestamp(at("2026-12-07T09:00:00Z"))),
            max_results: Some(5),
            data_type: Some(InsightsMetricDataType::FillWithZeros as i32),
            next_token: Some(token),
            ..request()
        };
        query = check_metric_request(&next, now).unwrap();
        let (points, token) = metric_page(&query, &counts);
        assert_eq!(points.first().unwrap().0, at("2026-12-07T09:25:00Z"));
        assert_eq!(points.len(), 5);
        assert!(token.is_some());
        query.after = Some(at("2026-12-07T09:45:00Z"));
        let (points, token) = metric_page(&query, &counts);
        assert_eq!(
            points,
            [(at("2026-12-07T09:50:00Z"), 7.0), (at("2026-12-07T09:55:00Z"), 0.0)]
        );
        assert!(token.is_none());

        query.fill_with_zeros = false;
        query.after = None;
        let (points, token) = metric_page(&query, &counts);
        assert_eq!(
            points,
            [(at("2026-12-07T09:05:00Z"), 3.0), (at("2026-12-07T09:50:00Z"), 7.0)]
        );
        assert!(token.is_none());
    }

    #[test]
    fn list_insights_data_takes_a_trail_of_the_caller_and_one_dimension() {
        let ctx = RequestContext::for_tests();
        let now = at("2026-12-07T10:00:00Z");
        let trail = "arn:aws:cloudtrail:us-east-1:123456789012:trail/main";
        let request = ListInsightsDataRequest {
            insight_source: Some(trail.into()),
            data_type: Some(ListInsightsDataType::InsightsEvents as i32),
            dimensions: [("EventName".to_string(), "PutObject".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let (name, lookup) = check_list_insights_data(&ctx, &request, now).unwrap();
        assert_eq!(name, "main");
        assert!(lookup.insight);
        assert_eq!(lookup.max_results, 50);
        assert_eq!(
            lookup.attribute,
            Some((crate::lookup_events::LookupKey::EventName, "PutObject".to_string()))
        );
        let refused = |request: ListInsightsDataRequest| {
            let error = check_list_insights_data(&ctx, &request, now).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidParameterException, "{}", error.message);
            error.message
        };
        let other_account = trail.replace("123456789012", "210987654321");
        assert!(
            refused(ListInsightsDataRequest {
                insight_source: Some(other_account),
                ..request.clone()
            })
            .contains("InsightSource")
        );
        assert!(
            refused(ListInsightsDataRequest {
                data_type: None,
                ..request.clone()
            })
            .contains("DataType")
        );
        assert!(
            refused(ListInsightsDataRequest {
                dimensions: [("ReadOnly".to_string(), "true".to_string())].into_iter().collect(),
                ..request.clone()
            })
            .contains("ReadOnly")
        );
        refused(ListInsightsDataRequest {
            max_results: Some(51),
            ..request.clone()
        });
        refused(ListInsightsDataRequest {
            next_token: Some("not a token".into()),
            ..request
        });
    }
}
