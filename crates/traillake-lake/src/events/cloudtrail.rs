//! Turning a CloudTrail record (JSON) into a row of the CloudTrail schema, as
//! `reference/cloudtrail-lake-semantics.md` §5.1.3 and §5.4 say:
//! - record keys match columns and struct fields case-insensitively (`requestID` → `requestid`,
//!   `ARNPrefix` → `arnprefix`); keys without a column stay reachable through `eventjson` only;
//! - JSON objects of `map<string,string>` columns keep their top level: strings as they are,
//!   numbers and booleans as their JSON text, objects and arrays as compact JSON text, `null` as a
//!   NULL value; a `null` or absent object is a NULL map;
//! - timestamps accept ISO-8601 with a zone, and `YYYY-MM-DD[T ]HH:MM:SS[.f]` without one (UTC);
//! - `readOnly` / `managementEvent` accept booleans and the strings `"true"` / `"false"`;
//! - a missing `eventCategory` is derived (see [`derive_event_category`]);
//! - `eventjson` is the compact record with its keys in their original order, `eventjsonchecksum`
//!   its base64 SHA-256.
//!
//! A record that cannot be a row (not an object, no usable `eventTime`, a value of the wrong
//! shape) is an [`InvalidRecord`] naming the field and the reason.

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::schema::{EVENT_DATE, EVENT_JSON, EVENT_TIME};

/// Why a record could not be made a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidRecord {
    /// The reason, naming the field.
    pub reason: String,
}

impl InvalidRecord {
    fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }
}

/// A record made ready for the table: a JSON object shaped like the table's schema.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// The event time, in UTC.
    pub event_time: DateTime<Utc>,
    /// The row, keyed by column name, in the form Arrow's JSON decoder reads.
    pub columns: Map<String, Value>,
}

/// Returns the row of a CloudTrail record for a table with the given event columns.
pub fn cloudtrail_row(record: &Value, columns: &Fields) -> Result<EventRow, InvalidRecord> {
    let Value::Object(object) = record else {
        return Err(InvalidRecord::new(format!("the record is a JSON {}, not an object", json_kind(record))));
    };
    let event_time = match lookup(object, EVENT_TIME) {
        None | Some(Value::Null) => return Err(InvalidRecord::new("eventTime is missing")),
        Some(value) => parse_timestamp(value).ok_or_else(|| {
            InvalidRecord::new(format!("eventTime {} is not a timestamp", compact(value)))
        })?,
    };

    let event_json = compact(record);
    let mut row = Map::with_capacity(columns.len() + 1);
    for field in columns.iter() {
        let name = field.name().as_str();
        let value = match name {
            EVENT_JSON => Value::String(event_json.clone()),
            "eventjsonchecksum" => Value::String(checksum(&event_json)),
            "eventcategory" => match lookup(object, name) {
                Some(value) if !value.is_null() => convert(value, field, name)?,
                _ => Value::String(derive_event_category(object).to_string()),
            },
            _ => match lookup(object, name) {
                None => Value::Null,
                Some(value) => convert(value, field, name)?,
            },
        };
        if !value.is_null() {
            row.insert(name.to_string(), value);
        }
    }
    row.insert(EVENT_DATE.to_string(), Value::String(event_time.format("%Y-%m-%d").to_string()));
    Ok(EventRow { event_time, columns: row })
}

/// Returns `Data` or `Management` for a record written before `eventCategory` existed (v1.07).
///
/// The rule is a heuristic, as AWS does not publish one: `Data` when `managementEvent` is false, when
/// a resource is an S3 object, or for a Lambda `Invoke`; `Management` otherwise.
pub fn derive_event_category(record: &Map<String, Value>) -> &'static str {
    let management = lookup(record, "managementevent").and_then(parse_boolean);
    if management == Some(false) {
        return "Data";
    }
    let s3_object = lookup(record, "resources").and_then(Value::as_array).is_some_and(|resources| {
        resources.iter().any(|resource| {
            resource.as_object().and_then(|r| lookup(r, "type")).and_then(Value::as_str) == Some("AWS::S3::Object")
        })
    });
    let event_source = lookup(record, "eventsource").and_then(Value::as_str);
    let event_name = lookup(record, "eventname").and_then(Value::as_str);
    let lambda_invoke = event_source == Some("lambda.amazonaws.com") && event_name == Some("Invoke");
    if s3_object || lambda_invoke { "Data" } else { "Management" }
}

/// Returns the value of `key` in `object`, matching names case-insensitively.
fn lookup<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(value) = object.get(key) {
        return Some(value);
    }
    object.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)).map(|(_, value)| value)
}

/// Converts a record value to the form the column's type takes; `path` names it in errors.
fn convert(value: &Value, field: &Field, path: &str) -> Result<Value, InvalidRecord> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match field.data_type() {
        DataType::Utf8 => Ok(Value::String(as_text(value))),
        DataType::Boolean => parse_boolean(value)
            .map(Value::Bool)
            .ok_or_else(|| InvalidRecord::new(format!("{path}: {} is not a boolean", compact(value)))),
        DataType::Timestamp(..) => parse_timestamp(value)
            .map(|time| Value::from(time.timestamp_micros()))
            .ok_or_else(|| InvalidRecord::new(format!("{path}: {} is not a timestamp", compact(value)))),
        DataType::Map(..) => {
            let Value::Object(object) = value else {
                return Err(InvalidRecord::new(format!("{path}: a JSON {} where an object belongs", json_kind(value))));
            };
            let entries = object
                .iter()
                .map(|(key, value)| (key.clone(), if value.is_null() { Value::Null } else { Value::String(as_text(value)) }))
                .collect();
            Ok(Value::Object(entries))
        }
        DataType::Struct(fields) => {
            let Value::Object(object) = value else {
                return Err(InvalidRecord::new(format!("{path}: a JSON {} where an object belongs", json_kind(value))));
            };
            let mut out = Map::new();
            for child in fields.iter() {
                let Some(value) = lookup(object, child.name()) else { continue };
                let value = convert(value, child, &format!("{path}.{}", child.name()))?;
                if !value.is_null() {
                    out.insert(child.name().clone(), value);
                }
            }
            Ok(Value::Object(out))
        }
        DataType::List(item) => {
            let Value::Array(items) = value else {
                return Err(InvalidRecord::new(format!("{path}: a JSON {} where an array belongs", json_kind(value))));
            };
            let mut out = Vec::with_capacity(items.len());
            for (index, item_value) in items.iter().enumerate() {
                out.push(convert(item_value, item, &format!("{path}[{}]", index + 1))?);
            }
            Ok(Value::Array(out))
        }
        other => unreachable!("the event schemas have no {other} column"),
    }
}

/// Returns a string as it is and any other value as compact JSON text.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => compact(other),
    }
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).expect("a JSON value serializes")
}

fn checksum(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn parse_boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Parses the `eventTime` forms real records carry: RFC 3339 with a zone, or a date and time
/// without one (taken as UTC) separated by `T` or a space, with up to nine fractional digits.
pub fn parse_timestamp(value: &Value) -> Option<DateTime<Utc>> {
    let text = value.as_str()?.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.fZ"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|time| time.and_utc())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use traillake_api::selectors::StoreKind;

    use super::*;
    use crate::events::schema::event_schema;

    fn row(record: Value) -> Result<Map<String, Value>, InvalidRecord> {
        cloudtrail_row(&record, event_schema(StoreKind::CloudTrail).fields()).map(|row| row.columns)
    }

    #[test]
    fn maps_keep_the_top_level_and_nested_values_as_json_text() {
        let row = row(json!({
            "eventTime": "2024-01-02T03:04:05Z",
            "requestParameters": {"bucketName": "b", "n": 5, "on": true, "rules": {"a": [1, 2]}, "none": null},
        }))
        .unwrap();
        assert_eq!(
            row["requestparameters"],
            json!({"bucketName": "b", "n": "5", "on": "true", "rules": "{\"a\":[1,2]}", "none": null})
        );
        assert_eq!(row[EVENT_TIME], json!(1_704_164_645_000_000i64));
        assert_eq!(row[EVENT_DATE], json!("2024-01-02"));
    }

    #[test]
    fn names_match_case_insensitively_and_unknown_keys_stay_in_eventjson() {
        let row = row(json!({
            "eventTime": "2024-01-02T03:04:05Z", "requestID": "r", "vendorKey": {"x": 1},
            "resources": [{"ARNPrefix": "arn:aws:s3:::b/", "type": "AWS::S3::Object"}],
            "userIdentity": {"sessionContext": {"attributes": {"creationDate": "2024-01-01T00:00:00Z", "mfaAuthenticated": "false"}}},
        }))
        .unwrap();
        assert_eq!(row["requestid"], json!("r"));
        assert_eq!(row["resources"], json!([{"arnprefix": "arn:aws:s3:::b/", "type": "AWS::S3::Object"}]));
        assert_eq!(
            row["useridentity"]["sessioncontext"]["attributes"],
            json!({"creationdate": 1_704_067_200_000_000i64, "mfaauthenticated": "false"})
        );
        let original = row[EVENT_JSON].as_str().unwrap();
        assert!(original.starts_with("{\"eventTime\":\"2024-01-02T03:04:05Z\",\"requestID\":\"r\",\"vendorKey\":{\"x\":1}"));
        assert_eq!(row["eventcategory"], json!("Data"));
    }

    #[test]
    fn event_time_variants_and_failures() {
        for text in ["2025-03-26 17:22:33.000000000", "2025-03-26T17:22:33Z", "2025-03-26T19:22:33+02:00"] {
            let row = row(json!({"eventTime": text})).unwrap();
            assert_eq!(row[EVENT_TIME], json!(1_743_009_753_000_000i64), "{text}");
        }
        assert_eq!(row(json!({"@timestamp": "x"})).unwrap_err().reason, "eventTime is missing");
        assert_eq!(
            row(json!({"eventTime": "ThisIsAWrongEventTime"})).unwrap_err().reason,
            "eventTime \"ThisIsAWrongEventTime\" is not a timestamp"
        );
        assert_eq!(row(json!([1])).unwrap_err().reason, "the record is a JSON array, not an object");
        assert_eq!(
            row(json!({"eventTime": "2024-01-02T03:04:05Z", "readOnly": "maybe"})).unwrap_err().reason,
            "readonly: \"maybe\" is not a boolean"
        );
        assert_eq!(
            row(json!({"eventTime": "2024-01-02T03:04:05Z", "userIdentity": "root"})).unwrap_err().reason,
            "useridentity: a JSON string where an object belongs"
        );
    }

    #[test]
    fn event_category_is_kept_or_derived() {
        let management = row(json!({"eventTime": "2024-01-02T03:04:05Z", "eventName": "RunInstances"})).unwrap();
        assert_eq!(management["eventcategory"], json!("Management"));
        let data = row(json!({"eventTime": "2024-01-02T03:04:05Z", "managementEvent": false})).unwrap();
        assert_eq!(data["eventcategory"], json!("Data"));
        let kept = row(json!({"eventTime": "2024-01-02T03:04:05Z", "eventCategory": "NetworkActivity"})).unwrap();
        assert_eq!(kept["eventcategory"], json!("NetworkActivity"));
    }
}
