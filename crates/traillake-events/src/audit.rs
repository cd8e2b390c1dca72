//! Turning an integration event (the `eventData` of a PutAuditEvents entry) into a row of the
//! ActivityAuditLog schema, checked against the integration schema of
//! `reference/cloudtrail-lake-semantics.md` §3.4 and stored as §3.5 says:
//! - required: `version`, `userIdentity.type`, `userIdentity.principalId`, `eventSource`,
//!   `eventName`, `eventTime`, `UID`, `recipientAccountId`, each a non-empty string;
//! - limits: strings of at most 128 to 1024 characters by field, `requestParameters` and
//!   `responseElements` objects of at most 100 kB of JSON, `additionalEventData` of at most 28 kB;
//! - `eventTime` a timestamp, `sourceIPAddress` an IPv4 or IPv6 address, `recipientAccountId` the
//!   channel owner's account;
//! - the row: `eventdata` from the object (members matched case-insensitively, unknown members kept
//!   in `eventjson` only), the top-level `eventtime` parsed from `eventData.eventTime` (which stays
//!   a string inside `eventdata`), `metadata` with the ingestion time and channel, and `eventjson`
//!   the stored record: the envelope with `eventData` as the caller's object without whitespace.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::value::RawValue;
use traillake_api::selectors::StoreKind;

use super::columns::{Cell, Shape, StructShape, members, parse_timestamp, string, struct_cell};
use super::json::{Kind, Members, compact};
use super::rows::EventRow;
use super::schema::{EVENT_JSON, EVENT_TIME, event_schema};

/// What is wrong with an event, as PutAuditEvents' per-event error codes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditProblem {
    /// A required field is missing or empty.
    FieldNotFound,
    /// A field is longer or larger than the schema allows.
    FieldTooLong,
    /// The event is not a JSON object, or a field has the wrong type or form.
    InvalidData,
    /// `recipientAccountId` is not the channel owner's account.
    InvalidRecipient,
}

impl AuditProblem {
    /// Returns the error code PutAuditEvents reports.
    pub fn code(self) -> &'static str {
        match self {
            AuditProblem::FieldNotFound => "FieldNotFound",
            AuditProblem::FieldTooLong => "FieldTooLong",
            AuditProblem::InvalidData => "InvalidData",
            AuditProblem::InvalidRecipient => "InvalidRecipient",
        }
    }
}

/// Why an event could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidAuditEvent {
    /// The kind of problem.
    pub problem: AuditProblem,
    /// What is wrong, naming the field.
    pub message: String,
}

fn invalid(problem: AuditProblem, message: impl Into<String>) -> InvalidAuditEvent {
    InvalidAuditEvent {
        problem,
        message: message.into(),
    }
}

/// What traillake adds to an event when it stores it.
#[derive(Debug, Clone, Copy)]
pub struct AuditEnvelope<'a> {
    /// The event's `eventID`, a UUID.
    pub event_id: &'a str,
    /// The Region PutAuditEvents was called in.
    pub region: &'a str,
    /// The channel owner's account: `recipientAccountId` must name it.
    pub owner_account_id: &'a str,
    /// The channel's ARN, kept as `metadata.channelarn`.
    pub channel_arn: &'a str,
    /// When traillake took the event, kept as `metadata.ingestiontime`.
    pub ingestion_time: DateTime<Utc>,
}

/// The string fields of `eventData` with their required flag and greatest length in characters.
const STRING_FIELDS: &[(&str, bool, usize)] = &[
    ("version", true, 256),
    ("userAgent", false, 1024),
    ("eventSource", true, 1024),
    ("eventName", true, 1024),
    ("eventTime", true, 1024),
    ("UID", true, 1024),
    ("errorCode", false, 256),
    ("errorMessage", false, 256),
    ("sourceIPAddress", false, 1024),
    ("recipientAccountId", true, 1024),
];
/// The string fields of `eventData.userIdentity`, likewise.
const IDENTITY_FIELDS: &[(&str, bool, usize)] = &[("type", true, 128), ("principalId", true, 1024)];
/// The object fields of `eventData` with their greatest size in bytes of compact JSON.
const OBJECT_FIELDS: &[(&str, usize)] = &[
    ("requestParameters", 100 * 1024),
    ("responseElements", 100 * 1024),
    ("additionalEventData", 28 * 1024),
];

/// The ActivityAuditLog columns made ready, with the positions of the columns traillake fills.
struct AuditColumns {
    shape: StructShape,
    event_json: usize,
    event_data: usize,
}

impl AuditColumns {
    /// Returns the fields of the `eventdata` struct.
    fn event_data_shape(&self) -> &StructShape {
        let Shape::Struct(shape) = &self.shape.children[self.event_data] else {
            unreachable!("eventdata is a struct")
        };
        shape
    }
}

static COLUMNS: LazyLock<AuditColumns> = LazyLock::new(|| {
    let shape = StructShape::new(event_schema(StoreKind::ActivityAuditLog).fields().clone());
    let event_data = shape
        .position("eventdata")
        .expect("the ActivityAuditLog schema has eventdata");
    assert!(
        matches!(shape.children[event_data], Shape::Struct(_)),
        "eventdata is a struct"
    );
    let event_json = shape
        .position(EVENT_JSON)
        .expect("the ActivityAuditLog schema has eventjson");
    AuditColumns {
        shape,
        event_json,
        event_data,
    }
});

/// Returns the member of an object named `name` (ignoring ASCII case), if it has one.
fn member<'a>(members: &[(Cow<'a, str>, &'a RawValue)], name: &str) -> Option<&'a RawValue> {
    members
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
}

/// Checks the string fields of an object; `prefix` names the object in messages.
fn check_strings<'a>(
    members: &[(Cow<'a, str>, &'a RawValue)],
    fields: &[(&str, bool, usize)],
    prefix: &str,
) -> Result<(), InvalidAuditEvent> {
    for &(name, required, max) in fields {
        let value = member(members, name).filter(|value| Kind::of(value) != Kind::Null);
        let Some(value) = value else {
            if required {
                return Err(invalid(
                    AuditProblem::FieldNotFound,
                    format!("Required field {prefix}{name} is missing."),
                ));
            }
            continue;
        };
        let Some(text) = string(value) else {
            return Err(invalid(
                AuditProblem::InvalidData,
                format!(
                    "Field {prefix}{name} must be a string, not a JSON {}.",
                    Kind::of(value).name()
                ),
            ));
        };
        if required && text.trim().is_empty() {
            return Err(invalid(
                AuditProblem::FieldNotFound,
                format!("Required field {prefix}{name} is empty."),
            ));
        }
        let length = text.chars().count();
        if length > max {
            return Err(invalid(
                AuditProblem::FieldTooLong,
                format!("Field {prefix}{name} has {length} characters; at most {max} are allowed."),
            ));
        }
    }
    Ok(())
}

/// Returns the row of one event's `eventData` text, or why it cannot be stored.
pub fn audit_row<'a>(event_data: &'a str, envelope: &AuditEnvelope<'_>) -> Result<EventRow<'a>, InvalidAuditEvent> {
    let columns = &*COLUMNS;
    let data: &RawValue = serde_json::from_str(event_data).map_err(|error| {
        invalid(
            AuditProblem::InvalidData,
            format!("eventData is not valid JSON: {error}."),
        )
    })?;
    let Some(Members(fields)) = members(data) else {
        return Err(invalid(
            AuditProblem::InvalidData,
            format!("eventData must be a JSON object, not a JSON {}.", Kind::of(data).name()),
        ));
    };
    let identity = member(&fields, "userIdentity").filter(|value| Kind::of(value) != Kind::Null);
    let Some(identity) = identity else {
        return Err(invalid(
            AuditProblem::FieldNotFound,
            "Required field userIdentity is missing.",
        ));
    };
    let Some(Members(identity_fields)) = members(identity) else {
        return Err(invalid(
            AuditProblem::InvalidData,
            "Field userIdentity must be a JSON object.",
        ));
    };
    check_strings(&fields, &STRING_FIELDS[..1], "")?;
    check_strings(&identity_fields, IDENTITY_FIELDS, "userIdentity.")?;
    check_strings(&fields, &STRING_FIELDS[1..], "")?;
    if let Some(details) = member(&identity_fields, "details")
        && !matches!(Kind::of(details), Kind::Object | Kind::Null)
    {
        return Err(invalid(
            AuditProblem::InvalidData,
            "Field userIdentity.details must be a JSON object.",
        ));
    }
    for &(name, max) in OBJECT_FIELDS {
        let Some(value) = member(&fields, name) else { continue };
        match Kind::of(value) {
            Kind::Null => {}
            Kind::Object => {
                let size = compact(value).len();
                if size > max {
                    return Err(invalid(
                        AuditProblem::FieldTooLong,
                        format!("Field {name} is {size} bytes of JSON; at most {max} are allowed."),
                    ));
                }
            }
            other => {
                return Err(invalid(
                    AuditProblem::InvalidData,
                    format!("Field {name} must be a JSON object, not a JSON {}.", other.name()),
                ));
            }
        }
    }
    let text_of = |name: &str| member(&fields, name).and_then(string);
    let event_time_text = text_of("eventTime").unwrap_or_default();
    let event_time = parse_timestamp(&event_time_text).ok_or_else(|| {
        invalid(
            AuditProblem::InvalidData,
            format!("Field eventTime '{event_time_text}' is not a timestamp (yyyy-MM-ddTHH:mm:ssZ)."),
        )
    })?;
    if let Some(address) = text_of("sourceIPAddress")
        && address.parse::<IpAddr>().is_err()
    {
        return Err(invalid(
            AuditProblem::InvalidData,
            format!("Field sourceIPAddress '{address}' is not an IPv4 or IPv6 address."),
        ));
    }
    let recipient = text_of("recipientAccountId").unwrap_or_default();
    if recipient != envelope.owner_account_id {
        return Err(invalid(
            AuditProblem::InvalidRecipient,
            format!(
                "Field recipientAccountId '{recipient}' is not the channel owner's account {}.",
                envelope.owner_account_id
            ),
        ));
    }

    // The checks above leave no value that cannot be read into its field.
    let event_data_shape = columns.event_data_shape();
    let data_cells = struct_cell(&event_data_shape.slots(&fields), event_data_shape)
        .map_err(|error| invalid(AuditProblem::InvalidData, format!("Field eventData{error}.")))?;

    let ingestion_time = envelope.ingestion_time.to_rfc3339_opts(SecondsFormat::Secs, true);
    let quoted = |text: &str| serde_json::to_string(text).expect("strings serialize");
    // The stored record: the envelope, then the caller's object as its own text (keys in their
    // order, strings as written).
    let mut event_json = String::with_capacity(event_data.len() + 320);
    write!(
        event_json,
        "{{\"eventVersion\":\"1.0\",\"eventCategory\":\"ActivityAuditLog\",\"eventType\":\"ActivityLog\",\
         \"eventID\":{},\"eventTime\":\"{}\",\"awsRegion\":{},\"recipientAccountId\":{},\
         \"metadata\":{{\"ingestionTime\":\"{ingestion_time}\",\"channelARN\":{}}},\"eventData\":{}}}",
        quoted(envelope.event_id),
        event_time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        quoted(envelope.region),
        quoted(&recipient),
        quoted(envelope.channel_arn),
        compact(data),
    )
    .expect("writes to memory");

    let text = |value: &str| Cell::Text(Cow::Owned(value.to_string()));
    let mut cells = Vec::with_capacity(columns.shape.fields.len());
    for field in columns.shape.fields.iter() {
        let value = match field.name().as_str() {
            "eventversion" => text("1.0"),
            "eventcategory" => text("ActivityAuditLog"),
            "eventtype" => text("ActivityLog"),
            "eventid" => text(envelope.event_id),
            EVENT_TIME => Cell::Timestamp(event_time.timestamp_micros()),
            "awsregion" => text(envelope.region),
            "recipientaccountid" => text(&recipient),
            "metadata" => Cell::Struct(vec![text(&ingestion_time), text(envelope.channel_arn)]),
            _ => Cell::Null,
        };
        cells.push(value);
    }
    cells[columns.event_json] = Cell::Text(Cow::Owned(event_json));
    cells[columns.event_data] = Cell::Struct(data_cells);
    Ok(EventRow { event_time, cells })
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::rows::row_json;

    const OWNER: &str = "123456789012";

    fn envelope() -> AuditEnvelope<'static> {
        AuditEnvelope {
            event_id: "6f1d2c7a-0c1e-4f0e-9a61-3c3b1f0d8e52",
            region: "us-east-1",
            owner_account_id: OWNER,
            channel_arn: "arn:aws:cloudtrail:us-east-1:123456789012:channel/c1",
            ingestion_time: DateTime::parse_from_rfc3339("2025-01-02T03:04:09.5Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    fn event() -> Value {
        json!({
            "version": "1.0",
            "userIdentity": {"type": "CustomUser", "principalId": "alice", "details": {"alternateId": "a@x", "n": 1}},
            "eventSource": "app.example.com", "eventName": "Login", "eventTime": "2025-01-02T03:04:05Z",
            "UID": "u-1", "recipientAccountId": OWNER, "sourceIPAddress": "10.0.0.1",
            "requestParameters": {"k": {"deep": true}}, "vendorField": 7,
        })
    }

    fn row(data: &Value) -> Result<Map<String, Value>, InvalidAuditEvent> {
        let text = data.to_string();
        let row = audit_row(&text, &envelope())?;
        Ok(row_json(StoreKind::ActivityAuditLog, &row, text.len()))
    }

    fn problem(data: Value) -> (AuditProblem, String) {
        let error = audit_row(&data.to_string(), &envelope()).unwrap_err();
        (error.problem, error.message)
    }

    #[test]
    fn stores_the_event_with_its_envelope() {
        let row = row(&event()).unwrap();
        assert_eq!(row["eventcategory"], "ActivityAuditLog");
        assert_eq!(row["eventtype"], "ActivityLog");
        assert_eq!(row["eventid"], envelope().event_id);
        assert_eq!(row[EVENT_TIME], "2025-01-02T03:04:05Z");
        assert_eq!(row["eventdate"], "2025-01-02");
        assert_eq!(
            row["metadata"],
            json!({"ingestiontime": "2025-01-02T03:04:09Z", "channelarn": envelope().channel_arn})
        );
        let data = &row["eventdata"];
        assert_eq!(data["eventtime"], "2025-01-02T03:04:05Z");
        assert_eq!(data["uid"], "u-1");
        assert_eq!(data["useridentity"]["details"], json!({"alternateId": "a@x", "n": "1"}));
        assert_eq!(data["requestparameters"], json!({"k": "{\"deep\":true}"}));
        let stored: Value = serde_json::from_str(row[EVENT_JSON].as_str().unwrap()).unwrap();
        assert_eq!(stored["eventData"], event());
        assert_eq!(stored["eventID"], envelope().event_id);
        assert_eq!(stored["metadata"]["channelARN"], envelope().channel_arn);
    }

    #[test]
    fn reports_each_problem_with_its_code() {
        let with = |key: &str, value: Value| {
            let mut data = event();
            data[key] = value;
            data
        };
        let without = |key: &str| {
            let mut data = event();
            data.as_object_mut().unwrap().remove(key);
            data
        };
        assert_eq!(problem(json!([1])).0, AuditProblem::InvalidData);
        assert_eq!(
            audit_row("{not json", &envelope()).unwrap_err().problem,
            AuditProblem::InvalidData
        );
        assert_eq!(
            problem(without("UID")),
            (AuditProblem::FieldNotFound, "Required field UID is missing.".into())
        );
        assert_eq!(problem(without("userIdentity")).0, AuditProblem::FieldNotFound);
        assert_eq!(
            problem(with("userIdentity", json!({"type": "x"}))).1,
            "Required field userIdentity.principalId is missing."
        );
        assert_eq!(problem(with("eventName", json!(""))).0, AuditProblem::FieldNotFound);
        assert_eq!(problem(with("eventName", json!(5))).0, AuditProblem::InvalidData);
        assert_eq!(
            problem(with("errorCode", json!("e".repeat(257)))).0,
            AuditProblem::FieldTooLong
        );
        assert_eq!(
            problem(with("requestParameters", json!({"k": "v".repeat(100 * 1024)}))).0,
            AuditProblem::FieldTooLong
        );
        assert_eq!(
            problem(with("requestParameters", json!("text"))).0,
            AuditProblem::InvalidData
        );
        assert_eq!(
            problem(with("eventTime", json!("yesterday"))).0,
            AuditProblem::InvalidData
        );
        assert_eq!(
            problem(with("sourceIPAddress", json!("10.0.0.300"))).0,
            AuditProblem::InvalidData
        );
        assert!(row(&with("sourceIPAddress", json!("2001:db8::1"))).is_ok());
        assert_eq!(
            problem(with("recipientAccountId", json!("999999999999"))).0,
            AuditProblem::InvalidRecipient
        );
    }
}
