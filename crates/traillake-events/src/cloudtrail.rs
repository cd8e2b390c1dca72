//! Turning a CloudTrail record (JSON) into a row of the CloudTrail schema, as
//! `reference/cloudtrail-lake-semantics.md` §5.1.3 and §5.4 say:
//! - record keys match columns and struct fields case-insensitively (`requestID` → `requestid`,
//!   `ARNPrefix` → `arnprefix`); keys without a column stay reachable through `eventjson` only;
//! - values convert to their column's type as [`super::columns`] says (maps keep their top level,
//!   nested values as compact JSON text; timestamps in the forms real records carry; booleans
//!   also from the strings `"true"` / `"false"`);
//! - a missing `eventCategory` is derived (see [`derive_event_category`]);
//! - `eventjson` is the record's text without the whitespace between tokens (keys in their
//!   original order, strings as written), stored with the values its columns hold left out
//!   ([`super::event_json`]); `eventjsonchecksum`, its base64 SHA-256, is computed when read and
//!   not stored.
//!
//! A record that cannot be a row (not an object, no usable `eventTime`, a value of the wrong
//! shape) is an [`InvalidRecord`] naming the field and the reason.
//!
//! Records are read from their text without building trees of values: a row borrows its strings
//! from the record, and [`super::rows::EventRows`] appends rows straight into Arrow builders.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde_json::value::RawValue;
use traillake_api::selectors::StoreKind;

use super::columns::{Cell, Shape, StructShape, boolean, cell, members, parse_timestamp, string};
use super::event_json;
use super::json::{Kind, Members, compact};
use super::rows::EventRow;
use super::schema::{EVENT_JSON, EVENT_TIME, event_schema};

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

/// The CloudTrail columns made ready for reading records, with the positions of the columns
/// that are not read as they are.
struct CloudTrailColumns {
    shape: StructShape,
    event_time: usize,
    event_json: usize,
    checksum: usize,
    category: usize,
    management: usize,
    event_source: usize,
    event_name: usize,
    resources: usize,
    resource_type: usize,
    /// The positions of the columns `eventjson` refers to ([`event_json::positions`]).
    referenced: Vec<usize>,
}

static COLUMNS: LazyLock<CloudTrailColumns> = LazyLock::new(|| {
    let shape = StructShape::new(event_schema(StoreKind::CloudTrail).fields().clone());
    let position = |name: &str| {
        shape
            .position(name)
            .unwrap_or_else(|| panic!("the CloudTrail schema has {name}"))
    };
    let resources = position("resources");
    let Shape::List(_, item) = &shape.children[resources] else {
        panic!("resources is a list")
    };
    let Shape::Struct(item) = item.as_ref() else {
        panic!("resources holds structs")
    };
    let resource_type = item.position("type").expect("resources have a type");
    CloudTrailColumns {
        event_time: position(EVENT_TIME),
        event_json: position(EVENT_JSON),
        checksum: position("eventjsonchecksum"),
        category: position("eventcategory"),
        management: position("managementevent"),
        event_source: position("eventsource"),
        event_name: position("eventname"),
        resources,
        resource_type,
        referenced: event_json::positions(&shape),
        shape,
    }
});

/// Returns the row of a CloudTrail record.
pub fn cloudtrail_row(record: &RawValue) -> Result<EventRow<'_>, InvalidRecord> {
    let columns = &*COLUMNS;
    let Some(Members(members)) = members(record) else {
        return Err(InvalidRecord::new(format!(
            "the record is a JSON {}, not an object",
            Kind::of(record).name()
        )));
    };
    let slots = columns.shape.slots(&members);
    let event_time = match slots[columns.event_time] {
        None => return Err(InvalidRecord::new("eventTime is missing")),
        Some(value) if Kind::of(value) == Kind::Null => return Err(InvalidRecord::new("eventTime is missing")),
        Some(value) => string(value)
            .as_deref()
            .and_then(parse_timestamp)
            .ok_or_else(|| InvalidRecord::new(format!("eventTime {} is not a timestamp", compact(value))))?,
    };
    let mut cells = Vec::with_capacity(slots.len());
    for (position, ((slot, shape), field)) in slots
        .iter()
        .zip(&columns.shape.children)
        .zip(&columns.shape.fields)
        .enumerate()
    {
        let value = match slot {
            None => Cell::Null,
            // Parsed above already; the columns computed below are not read from the record.
            Some(_) if position == columns.event_time => Cell::Timestamp(event_time.timestamp_micros()),
            Some(_) if position == columns.event_json || position == columns.checksum => Cell::Null,
            Some(value) => {
                cell(value, shape).map_err(|error| InvalidRecord::new(error.within(field.name()).to_string()))?
            }
        };
        cells.push(value);
    }
    cells[columns.event_json] = Cell::Text(match compact(record) {
        // The record is compact already (as trail files are): its members are slices of the text.
        Cow::Borrowed(text) => event_json::stored(text, &slots, &columns.referenced, &cells),
        Cow::Owned(text) => {
            let compacted: &RawValue = serde_json::from_str(&text).expect("the compact text of a record is JSON");
            let Members(compacted_members) = super::columns::members(compacted).expect("the record is an object");
            let compacted_slots = columns.shape.slots(&compacted_members);
            Cow::Owned(event_json::stored(&text, &compacted_slots, &columns.referenced, &cells).into_owned())
        }
    });
    if cells[columns.category] == Cell::Null {
        let management = slots[columns.management].and_then(boolean);
        cells[columns.category] = Cell::Text(derive_event_category(management, &cells, columns).into());
    }
    Ok(EventRow { event_time, cells })
}

/// Returns `Data` or `Management` for a record written before `eventCategory` existed (v1.07).
///
/// The rule is a heuristic, as AWS does not publish one: `Data` when `managementEvent` is false, when
/// a resource is an S3 object, or for a Lambda `Invoke`; `Management` otherwise.
fn derive_event_category(management: Option<bool>, cells: &[Cell<'_>], columns: &CloudTrailColumns) -> &'static str {
    let text = |position: usize| match &cells[position] {
        Cell::Text(text) => Some(text.as_ref()),
        _ => None,
    };
    let resource_types: Vec<Option<&str>> = match &cells[columns.resources] {
        Cell::List(resources) => resources
            .iter()
            .map(|resource| match resource {
                Cell::Struct(fields) => match &fields[columns.resource_type] {
                    Cell::Text(text) => Some(text.as_ref()),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    derived_event_category(
        management,
        text(columns.event_source),
        text(columns.event_name),
        resource_types,
    )
}

/// The rule of [`derive_event_category`] over a record's facts: `managementEvent`, `eventSource`,
/// `eventName` and the types of its resources.
pub fn derived_event_category<'a>(
    management: Option<bool>,
    event_source: Option<&str>,
    event_name: Option<&str>,
    resource_types: impl IntoIterator<Item = Option<&'a str>>,
) -> &'static str {
    if management == Some(false) {
        return "Data";
    }
    let s3_object = resource_types
        .into_iter()
        .any(|resource_type| resource_type == Some("AWS::S3::Object"));
    let lambda_invoke = event_source == Some("lambda.amazonaws.com") && event_name == Some("Invoke");
    if s3_object || lambda_invoke {
        "Data"
    } else {
        "Management"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::rows::row_json;
    use crate::schema::EVENT_DATE;

    /// Returns the record's row as JSON, as Arrow's JSON writer renders it (NULLs left out).
    fn row(record: Value) -> Result<Map<String, Value>, InvalidRecord> {
        let text: Box<RawValue> = serde_json::from_str(&record.to_string()).unwrap();
        let row = cloudtrail_row(&text)?;
        Ok(row_json(StoreKind::CloudTrail, &row, text.get().len()))
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
            // The writer leaves out NULL values, "none" among them (columns.rs checks it is kept).
            json!({"bucketName": "b", "n": "5", "on": "true", "rules": "{\"a\":[1,2]}"})
        );
        assert_eq!(row[EVENT_TIME], json!("2024-01-02T03:04:05Z"));
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
        assert_eq!(
            row["resources"],
            json!([{"arnprefix": "arn:aws:s3:::b/", "type": "AWS::S3::Object"}])
        );
        assert_eq!(
            row["useridentity"]["sessioncontext"]["attributes"],
            json!({"creationdate": "2024-01-01T00:00:00Z", "mfaauthenticated": "false"})
        );
        let stored = row[EVENT_JSON].as_str().unwrap();
        assert!(stored.starts_with("{\"eventTime\":\u{1}B,\"requestID\":\u{1}M,\"vendorKey\":{\"x\":1}"));
        assert_eq!(row["eventcategory"], json!("Data"));
    }

    #[test]
    fn eventjson_is_the_record_without_whitespace_and_its_checksum() {
        let text =
            "{\"eventTime\" : \"2024-01-02T03:04:05Z\",\n  \"userAgent\": \"aws-cli/2 (a b)\", \"x\": [1, 2.50]}";
        let record: Box<RawValue> = serde_json::from_str(text).unwrap();
        let row = cloudtrail_row(&record).unwrap();
        let compact = r#"{"eventTime":"2024-01-02T03:04:05Z","userAgent":"aws-cli/2 (a b)","x":[1,2.50]}"#;
        let columns = &*COLUMNS;
        let Cell::Text(stored) = &row.cells[columns.event_json] else {
            panic!("eventjson is text")
        };
        assert_eq!(stored, "{\"eventTime\":\u{1}B,\"userAgent\":\u{1}G,\"x\":[1,2.50]}");
        assert_eq!(
            event_json::rebuild_row(stored, &columns.referenced, &row.cells).unwrap(),
            compact
        );
        assert_eq!(row.cells[columns.checksum], Cell::Null);
    }

    #[test]
    fn eventjson_refers_only_to_values_its_columns_give_back_exactly() {
        let text = concat!(
            r#"{"eventTime":"2024-01-02T03:04:05.250Z","eventName":"A\u0042","eventName":"C","errorCode":5,"#,
            r#""eventSource":"s3.amazonaws.com","requestParameters":{"b":"x","n":5,"o":{"p":[1]},"z":null},"#,
            r#""responseElements":{"k":"a\"b"},"additionalEventData":{"A":1,"A":2},"sourceIPAddress":"1.2.3.4"}"#
        );
        let record: Box<RawValue> = serde_json::from_str(text).unwrap();
        let row = cloudtrail_row(&record).unwrap();
        let columns = &*COLUMNS;
        let Cell::Text(stored) = &row.cells[columns.event_json] else {
            panic!("eventjson is text")
        };
        // Kept as written: an escaped string (and the second eventName, which no column holds), a
        // number in a text column, a map with an escaped value. Duplicate keys and a fraction of a
        // second come back as written, so they are referred to.
        assert_eq!(
            stored,
            concat!(
                "{\"eventTime\":\u{1}B,",
                r#""eventName":"A\u0042","eventName":"C","errorCode":5,"#,
                "\"eventSource\":\u{1}C,\"requestParameters\":\u{1}Jsjjj\u{2},",
                r#""responseElements":{"k":"a\"b"},"additionalEventData":"#,
                "\u{1}Ljj\u{2},\"sourceIPAddress\":\u{1}F}"
            )
        );
        assert_eq!(
            event_json::rebuild_row(stored, &columns.referenced, &row.cells).unwrap(),
            text
        );
    }

    #[test]
    fn event_time_variants_and_failures() {
        for text in [
            "2025-03-26 17:22:33.000000000",
            "2025-03-26T17:22:33Z",
            "2025-03-26T19:22:33+02:00",
        ] {
            let row = row(json!({"eventTime": text})).unwrap();
            assert_eq!(row[EVENT_TIME], json!("2025-03-26T17:22:33Z"), "{text}");
        }
        assert_eq!(
            row(json!({"@timestamp": "x"})).unwrap_err().reason,
            "eventTime is missing"
        );
        assert_eq!(
            row(json!({"eventTime": "ThisIsAWrongEventTime"})).unwrap_err().reason,
            "eventTime \"ThisIsAWrongEventTime\" is not a timestamp"
        );
        assert_eq!(
            row(json!([1])).unwrap_err().reason,
            "the record is a JSON array, not an object"
        );
        assert_eq!(
            row(json!({"eventTime": "2024-01-02T03:04:05Z", "readOnly": "maybe"}))
                .unwrap_err()
                .reason,
            "readonly: \"maybe\" is not a boolean"
        );
        assert_eq!(
            row(json!({"eventTime": "2024-01-02T03:04:05Z", "userIdentity": "root"}))
                .unwrap_err()
                .reason,
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
