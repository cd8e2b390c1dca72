//! LookupEvents' request, checked: at most one lookup attribute (one of eight keys, a value of
//! 1 to 2,000 characters where `_`, space, `,` and newline count twice), a time range within the
//! last 90 days, the `insight` category or none, MaxResults 1..50 (default 50), and a NextToken
//! bound to the other parameters (`reference/aws-docs`, LookupEvents). Each bad member is the error
//! the model lists for it.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::Result;
use crate::error::{ApiError, ErrorCode};
use crate::paging::{decode_bound_token, encode_bound_token};
use crate::shapes::{Event, LookupEventsRequest, Resource};
use crate::wire::{timestamp, utc};

/// How far back the Event history goes.
pub const HISTORY_DAYS: i64 = 90;

/// The most events one call returns, and the default.
pub const MAX_RESULTS: i32 = 50;

/// The longest attribute value, counting `_`, space, `,` and newline twice.
const MAX_VALUE_LENGTH: usize = 2000;

const OPERATION: &str = "LookupEvents";

/// What an event must have to be looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKey {
    /// `eventID`.
    EventId,
    /// `eventName`.
    EventName,
    /// `readOnly`, `true` or `false`.
    ReadOnly,
    /// The user name, or an assumed role's session name.
    Username,
    /// The type of one of `resources`.
    ResourceType,
    /// The ARN (name) of one of `resources`.
    ResourceName,
    /// `eventSource`.
    EventSource,
    /// `userIdentity.accessKeyId`.
    AccessKeyId,
}

impl LookupKey {
    const ALL: [(&'static str, LookupKey); 8] = [
        ("EventId", LookupKey::EventId),
        ("EventName", LookupKey::EventName),
        ("ReadOnly", LookupKey::ReadOnly),
        ("Username", LookupKey::Username),
        ("ResourceType", LookupKey::ResourceType),
        ("ResourceName", LookupKey::ResourceName),
        ("EventSource", LookupKey::EventSource),
        ("AccessKeyId", LookupKey::AccessKeyId),
    ];

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().find(|(name, _)| *name == text).map(|(_, key)| *key)
    }

    /// Returns the key's name on the wire.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, key)| *key == self)
            .map(|(name, _)| *name)
            .expect("every key is listed")
    }
}

/// The page of events after which a page starts: the last event of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor {
    /// Its event time, in microseconds since the epoch.
    pub time_micros: i64,
    /// Its event ID.
    pub event_id: String,
}

/// A checked LookupEvents request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The attribute an event must have, if any.
    pub attribute: Option<(LookupKey, String)>,
    /// Events at or after this time.
    pub start: DateTime<Utc>,
    /// Events at or before this time.
    pub end: DateTime<Utc>,
    /// Whether Insights events are asked for instead of management events.
    pub insight: bool,
    /// The most events to return.
    pub max_results: usize,
    /// Where the page starts, from the NextToken.
    pub after: Option<EventCursor>,
    /// The parameters a NextToken is bound to.
    bound: String,
}

impl Lookup {
    /// Returns the NextToken of the page that starts after `last`.
    pub fn next_token(&self, last: &EventCursor) -> String {
        encode_bound_token(
            OPERATION,
            &self.bound,
            &format!("{}|{}", last.time_micros, last.event_id),
        )
    }
}

/// Checks a LookupEvents request as of `now`.
pub fn check_lookup(request: &LookupEventsRequest, now: DateTime<Utc>) -> Result<Lookup> {
    let invalid_attributes = |message: String| ApiError::new(ErrorCode::InvalidLookupAttributesException, message);
    let attribute = match request.lookup_attributes.as_slice() {
        [] => None,
        [attribute] => {
            let key_text = attribute.attribute_key.as_deref().unwrap_or_default();
            let key = LookupKey::parse(key_text).ok_or_else(|| {
                invalid_attributes(format!(
                    "LookupAttributes[0].AttributeKey '{key_text}' is not one of {}",
                    LookupKey::ALL.map(|(name, _)| name).join(", ")
                ))
            })?;
            let value = attribute.attribute_value.clone().unwrap_or_default();
            if value.is_empty() {
                return Err(invalid_attributes(
                    "LookupAttributes[0].AttributeValue must not be empty".to_string(),
                ));
            }
            let length: usize = value
                .chars()
                .map(|c| if matches!(c, '_' | ' ' | ',' | '\n') { 2 } else { 1 })
                .sum();
            if length > MAX_VALUE_LENGTH {
                return Err(invalid_attributes(format!(
                    "LookupAttributes[0].AttributeValue is longer than {MAX_VALUE_LENGTH} characters \
                     ('_', ' ', ',' and newlines count twice)"
                )));
            }
            if key == LookupKey::ReadOnly && value != "true" && value != "false" {
                return Err(invalid_attributes(format!(
                    "LookupAttributes[0].AttributeValue of ReadOnly must be true or false, not '{value}'"
                )));
            }
            Some((key, value))
        }
        more => {
            return Err(invalid_attributes(format!(
                "LookupAttributes holds {} attributes; it takes at most one",
                more.len()
            )));
        }
    };

    let time = |value: Option<&prost_types::Timestamp>, field: &str| -> Result<Option<DateTime<Utc>>> {
        value
            .map(|value| {
                utc(value).ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidTimeRangeException, format!("{field} is out of range"))
                })
            })
            .transpose()
    };
    let oldest = now - Duration::days(HISTORY_DAYS);
    let start = time(request.start_time.as_ref(), "StartTime")?;
    let end = time(request.end_time.as_ref(), "EndTime")?;
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(ApiError::new(
            ErrorCode::InvalidTimeRangeException,
            "StartTime must not be after EndTime",
        ));
    }

    let insight = match request.event_category.as_deref() {
        None => false,
        Some("insight") => true,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidEventCategoryException,
                format!("EventCategory '{other}' is not valid; the only category is insight"),
            ));
        }
    };

    let max_results = request.max_results.unwrap_or(MAX_RESULTS);
    crate::validate::range(
        ErrorCode::InvalidMaxResultsException,
        "MaxResults",
        max_results.into(),
        1,
        MAX_RESULTS.into(),
    )?;

    let micros = |time: Option<DateTime<Utc>>| time.map_or(String::new(), |time| time.timestamp_micros().to_string());
    let bound = format!(
        "{}={}|{}|{}|{}",
        attribute.as_ref().map_or("", |(key, _)| key.name()),
        attribute.as_ref().map_or("", |(_, value)| value.as_str()),
        micros(start),
        micros(end),
        insight
    );
    let after = match request.next_token.as_deref() {
        None => None,
        Some(token) => Some(cursor(&decode_bound_token(OPERATION, &bound, token)?)?),
    };
    Ok(Lookup {
        attribute,
        start: start.map_or(oldest, |start| start.max(oldest)),
        end: end.unwrap_or(now),
        insight,
        max_results: max_results as usize,
        after,
        bound,
    })
}

/// Returns the user name LookupEvents gives an event: `userIdentity.userName`; for an assumed
/// role, the session name (the last part of its ARN); for the root user, `root`.
pub fn user_name(record: &Value) -> Option<&str> {
    let identity = record.get("userIdentity")?;
    if let Some(name) = identity.get("userName").and_then(Value::as_str) {
        return Some(name);
    }
    match identity.get("type").and_then(Value::as_str) {
        Some("AssumedRole") => identity
            .get("arn")
            .and_then(Value::as_str)
            .and_then(|arn| arn.rsplit_once('/'))
            .map(|(_, session)| session),
        Some("Root") => Some("root"),
        _ => None,
    }
}

/// Returns a text member of a record; an Insights event's `eventName` and `eventSource` are those
/// of its `insightDetails`, the API it is about.
fn record_text<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record
        .get(name)
        .or_else(|| record.get("insightDetails").and_then(|details| details.get(name)))
        .and_then(Value::as_str)
}

/// Returns true if a CloudTrail record has the attribute `key` with `value`.
pub fn has_attribute(record: &Value, key: LookupKey, value: &str) -> bool {
    let text = |name: &str| record_text(record, name);
    let resources = || record.get("resources").and_then(Value::as_array).into_iter().flatten();
    match key {
        LookupKey::EventId => text("eventID") == Some(value),
        LookupKey::EventName => text("eventName") == Some(value),
        LookupKey::EventSource => text("eventSource") == Some(value),
        LookupKey::ReadOnly => match record.get("readOnly") {
            Some(Value::Bool(read_only)) => read_only.to_string() == value,
            Some(Value::String(read_only)) => read_only == value,
            _ => false,
        },
        LookupKey::AccessKeyId => {
            record
                .get("userIdentity")
                .and_then(|identity| identity.get("accessKeyId"))
                .and_then(Value::as_str)
                == Some(value)
        }
        LookupKey::Username => user_name(record) == Some(value),
        LookupKey::ResourceType => {
            resources().any(|resource| resource.get("type").and_then(Value::as_str) == Some(value))
        }
        LookupKey::ResourceName => {
            resources().any(|resource| resource.get("ARN").and_then(Value::as_str) == Some(value))
        }
    }
}

/// Returns the `Event` LookupEvents answers for a CloudTrail record given as its JSON text.
pub fn event_of(json: &str) -> Event {
    let record: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    let text = |name: &str| record_text(&record, name).map(str::to_string);
    let read_only = match record.get("readOnly") {
        Some(Value::Bool(read_only)) => Some(read_only.to_string()),
        Some(Value::String(read_only)) => Some(read_only.clone()),
        _ => None,
    };
    let event_time = record
        .get("eventTime")
        .and_then(Value::as_str)
        .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
        .map(|time| timestamp(time.with_timezone(&Utc)));
    let resources = record
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|resource| Resource {
            resource_type: resource.get("type").and_then(Value::as_str).map(str::to_string),
            resource_name: resource.get("ARN").and_then(Value::as_str).map(str::to_string),
        })
        .collect();
    Event {
        event_id: text("eventID"),
        event_name: text("eventName"),
        read_only,
        access_key_id: record
            .get("userIdentity")
            .and_then(|identity| identity.get("accessKeyId"))
            .and_then(Value::as_str)
            .map(str::to_string),
        event_time,
        event_source: text("eventSource"),
        username: user_name(&record).map(str::to_string),
        resources,
        cloud_trail_event: Some(json.to_string()),
    }
}

/// Reads the cursor a NextToken holds.
fn cursor(text: &str) -> Result<EventCursor> {
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidNextTokenException,
            "the NextToken is not a token of LookupEvents",
        )
    };
    let (time, event_id) = text.split_once('|').ok_or_else(invalid)?;
    Ok(EventCursor {
        time_micros: time.parse().map_err(|_| invalid())?,
        event_id: event_id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::LookupAttribute;
    use crate::wire::timestamp;

    fn request(attributes: &[(&str, &str)]) -> LookupEventsRequest {
        LookupEventsRequest {
            lookup_attributes: attributes
                .iter()
                .map(|(key, value)| LookupAttribute {
                    attribute_key: Some(key.to_string()),
                    attribute_value: Some(value.to_string()),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn code(request: &LookupEventsRequest) -> ErrorCode {
        check_lookup(request, Utc::now()).unwrap_err().code
    }

    #[test]
    fn defaults_to_the_last_ninety_days_and_fifty_events() {
        let now = Utc::now();
        let lookup = check_lookup(&request(&[("EventName", "StartQuery")]), now).unwrap();
        assert_eq!(lookup.attribute, Some((LookupKey::EventName, "StartQuery".to_string())));
        assert_eq!((lookup.start, lookup.end), (now - Duration::days(90), now));
        assert_eq!((lookup.max_results, lookup.insight), (50, false));
    }

    #[test]
    fn refuses_each_bad_member_with_its_modelled_error() {
        use ErrorCode::*;
        assert_eq!(code(&request(&[("Color", "red")])), InvalidLookupAttributesException);
        assert_eq!(
            code(&request(&[("EventName", "a"), ("EventSource", "b")])),
            InvalidLookupAttributesException
        );
        assert_eq!(code(&request(&[("EventName", "")])), InvalidLookupAttributesException);
        assert_eq!(code(&request(&[("ReadOnly", "yes")])), InvalidLookupAttributesException);
        assert_eq!(
            code(&request(&[("Username", &"_".repeat(1001))])),
            InvalidLookupAttributesException
        );
        assert!(check_lookup(&request(&[("Username", &"_".repeat(1000))]), Utc::now()).is_ok());
        let now = Utc::now();
        let backwards = LookupEventsRequest {
            start_time: Some(timestamp(now)),
            end_time: Some(timestamp(now - Duration::hours(1))),
            ..Default::default()
        };
        assert_eq!(code(&backwards), InvalidTimeRangeException);
        let category = LookupEventsRequest {
            event_category: Some("Management".into()),
            ..Default::default()
        };
        assert_eq!(code(&category), InvalidEventCategoryException);
        for max_results in [0, 51] {
            let page = LookupEventsRequest {
                max_results: Some(max_results),
                ..Default::default()
            };
            assert_eq!(code(&page), InvalidMaxResultsException);
        }
    }

    #[test]
    fn reads_an_event_as_lookup_events_gives_it() {
        let json = r#"{"eventVersion":"1.11","eventTime":"2026-11-30T10:00:00Z","eventID":"e-1",
            "eventName":"StartQuery","eventSource":"cloudtrail.amazonaws.com","readOnly":false,
            "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::123456789012:assumed-role/Admin/alice",
            "accessKeyId":"ASIAEXAMPLE"},
            "resources":[{"type":"AWS::CloudTrail::EventDataStore","ARN":"arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/s"}]}"#;
        let event = event_of(json);
        assert_eq!(event.username.as_deref(), Some("alice"));
        assert_eq!(event.read_only.as_deref(), Some("false"));
        assert_eq!(event.access_key_id.as_deref(), Some("ASIAEXAMPLE"));
        let time: DateTime<Utc> = "2026-11-30T10:00:00Z".parse().unwrap();
        assert_eq!(event.event_time.unwrap().seconds, time.timestamp());
        assert_eq!(
            event.resources[0].resource_type.as_deref(),
            Some("AWS::CloudTrail::EventDataStore")
        );
        assert_eq!(event.cloud_trail_event.as_deref(), Some(json));
        let record: Value = serde_json::from_str(json).unwrap();
        assert!(has_attribute(&record, LookupKey::Username, "alice"));
        assert!(has_attribute(&record, LookupKey::ReadOnly, "false"));
        assert!(!has_attribute(&record, LookupKey::ReadOnly, "true"));
        assert!(has_attribute(
            &record,
            LookupKey::ResourceType,
            "AWS::CloudTrail::EventDataStore"
        ));
        assert!(!has_attribute(&record, LookupKey::ResourceName, "s"));
        assert!(has_attribute(&record, LookupKey::AccessKeyId, "ASIAEXAMPLE"));
    }

    #[test]
    fn a_next_token_holds_only_with_the_parameters_it_was_returned_for() {
        let now = Utc::now();
        let first = request(&[("EventName", "StartQuery")]);
        let lookup = check_lookup(&first, now).unwrap();
        let last = EventCursor {
            time_micros: 1_700_000_000_000_000,
            event_id: "e-1".into(),
        };
        let token = lookup.next_token(&last);
        let next = LookupEventsRequest {
            next_token: Some(token.clone()),
            max_results: Some(10),
            ..first.clone()
        };
        assert_eq!(check_lookup(&next, now).unwrap().after, Some(last));
        let other = LookupEventsRequest {
            next_token: Some(token),
            ..request(&[("EventName", "CancelQuery")])
        };
        assert_eq!(code(&other), ErrorCode::InvalidNextTokenException);
        let garbage = LookupEventsRequest {
            next_token: Some("garbage".into()),
            ..first
        };
        assert_eq!(code(&garbage), ErrorCode::InvalidNextTokenException);
    }

    #[test]
    fn an_insights_event_is_named_by_the_api_it_is_about() {
        let json = r#"{"eventID":"e1","eventTime":"2026-12-07T09:00:00Z","eventCategory":"Insight",
            "insightDetails":{"state":"Start","eventSource":"iam.amazonaws.com","eventName":"GetRolePolicy"}}"#;
        let event = event_of(json);
        assert_eq!(event.event_name.as_deref(), Some("GetRolePolicy"));
        assert_eq!(event.event_source.as_deref(), Some("iam.amazonaws.com"));
        let record: Value = serde_json::from_str(json).unwrap();
        assert!(has_attribute(&record, LookupKey::EventName, "GetRolePolicy"));
        assert!(has_attribute(&record, LookupKey::EventSource, "iam.amazonaws.com"));
        assert!(!has_attribute(&record, LookupKey::EventName, "Start"));
    }
}
