//! The AWS JSON wire of the generated shapes: the serde adapters that build.rs attaches to their
//! fields (enums as AWS strings, timestamps as epoch seconds, `null` as absent), and `decode` /
//! `encode` of whole request and response bodies with the errors AWS clients expect.

use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Result;
use crate::error::{ApiError, ErrorCode};

/// A protobuf enum that travels on the AWS wire as the names of its values without their prefix.
pub trait WireEnum: Copy + TryFrom<i32> + Into<i32> {
    /// The prefix every value name carries in the .proto, such as `BILLING_MODE_`.
    const PREFIX: &'static str;
    /// The AWS names of the values, in declaration order, without the `UNSPECIFIED` value.
    const WIRE_NAMES: &'static [&'static str];
    /// Returns the value's name in the .proto.
    fn proto_name(self) -> &'static str;
    /// Returns the value named `name` in the .proto.
    fn from_proto_name(name: &str) -> Option<Self>;

    /// Returns the AWS name of the value, or `None` for the `UNSPECIFIED` value.
    fn wire_name(self) -> Option<&'static str> {
        let name = self.proto_name().strip_prefix(Self::PREFIX)?;
        (name != "UNSPECIFIED").then_some(name)
    }

    /// Returns the value with the AWS name `name`.
    fn from_wire_name(name: &str) -> Option<Self> {
        if name == "UNSPECIFIED" {
            return None;
        }
        Self::from_proto_name(&format!("{}{name}", Self::PREFIX))
    }

    /// Returns the AWS name of a raw enum number, if it is a known value other than `UNSPECIFIED`.
    fn wire_name_of(value: i32) -> Option<&'static str> {
        Self::try_from(value).ok().and_then(Self::wire_name)
    }
}

/// Marks a decoding error caused by an unknown enum value, so that `decode` answers it as a
/// validation error rather than a malformed body.
const ENUM_ERROR_MARK: &str = "\u{1}enum\u{1}";

/// Serializes an optional enum field as its AWS name.
pub fn serialize_enum<E: WireEnum, S: Serializer>(value: &Option<i32>, serializer: S) -> Result<S::Ok, S::Error> {
    match value.and_then(E::wire_name_of) {
        Some(name) => serializer.serialize_str(name),
        None => serializer.serialize_none(),
    }
}

/// Deserializes an optional enum field from its AWS name; `null` is absent.
pub fn deserialize_enum<'de, E: WireEnum, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    let Some(name) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    match E::from_wire_name(&name) {
        Some(value) => Ok(Some(value.into())),
        None => Err(D::Error::custom(format!(
            "{ENUM_ERROR_MARK}{name}{ENUM_ERROR_MARK}{}",
            E::WIRE_NAMES.join(", ")
        ))),
    }
}

/// Serializes an optional timestamp as epoch seconds with millisecond precision.
pub fn serialize_timestamp<S: Serializer>(
    value: &Option<prost_types::Timestamp>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(ts) => serializer.serialize_f64(epoch_seconds(ts)),
        None => serializer.serialize_none(),
    }
}

/// Returns a timestamp as epoch seconds to the millisecond, as the AWS JSON wire writes it.
fn epoch_seconds(ts: &prost_types::Timestamp) -> f64 {
    let millis = ts.seconds as f64 * 1000.0 + (ts.nanos / 1_000_000) as f64;
    millis / 1000.0
}

/// Deserializes an optional timestamp from epoch seconds (a number or a numeric string) or an
/// ISO-8601 string; `null` is absent.
pub fn deserialize_timestamp<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<prost_types::Timestamp>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    let seconds = match value {
        None => return Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok().or_else(|| {
            DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|t| t.timestamp_micros() as f64 / 1e6)
        }),
        Some(_) => None,
    };
    match seconds {
        Some(s) if s.is_finite() && s.abs() < 1e13 => Ok(Some(timestamp_from_epoch_seconds(s))),
        _ => Err(D::Error::custom("expected a timestamp in epoch seconds")),
    }
}

/// Serializes a list of timestamps as epoch seconds, as [`serialize_timestamp`] writes one.
pub fn serialize_timestamps<S: Serializer>(
    values: &[prost_types::Timestamp],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq as _;
    let mut list = serializer.serialize_seq(Some(values.len()))?;
    for value in values {
        list.serialize_element(&epoch_seconds(value))?;
    }
    list.end()
}

/// Deserializes a list of timestamps from epoch seconds; `null` is an empty list.
pub fn deserialize_timestamps<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<prost_types::Timestamp>, D::Error> {
    let values = Option::<Vec<f64>>::deserialize(deserializer)?.unwrap_or_default();
    values
        .into_iter()
        .map(|seconds| {
            if seconds.is_finite() && seconds.abs() < 1e13 {
                Ok(timestamp_from_epoch_seconds(seconds))
            } else {
                Err(D::Error::custom("expected a timestamp in epoch seconds"))
            }
        })
        .collect()
}

/// Serializes optional bytes as base64, as the AWS JSON protocols write blobs.
pub fn serialize_bytes<S: Serializer>(value: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    match value {
        Some(bytes) => serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes)),
        None => serializer.serialize_none(),
    }
}

/// Deserializes optional bytes from base64; `null` is absent.
pub fn deserialize_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
    use base64::Engine as _;
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map(Some)
        .map_err(|_| D::Error::custom("expected base64 bytes"))
}

/// Deserializes a list or map field, taking `null` as empty.
pub fn null_as_default<'de, T: Deserialize<'de> + Default, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Marks a decoding error caused by an explicit empty list where the model needs at least one
/// entry, so that `decode` answers it as a validation error naming the member.
const EMPTY_LIST_MARK: &str = "\u{1}empty\u{1}";

/// Deserializes a list that may be absent but, when given, must not be empty (`null` is absent).
/// The generated shapes cannot tell an absent list from `[]` afterwards, so the wire refuses it.
pub fn non_empty_list<'de, T: Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    match Option::<Vec<T>>::deserialize(deserializer)? {
        Some(list) if list.is_empty() => Err(D::Error::custom(EMPTY_LIST_MARK)),
        list => Ok(list.unwrap_or_default()),
    }
}

/// Returns the protobuf timestamp of epoch seconds.
pub fn timestamp_from_epoch_seconds(seconds: f64) -> prost_types::Timestamp {
    // To the microsecond, the finest a double of today's epoch seconds holds: 1763801399.853 is
    // 1763801399.85299992... as a double, which nanoseconds would keep as .852999920.
    let whole = seconds.floor();
    let micros = ((seconds - whole) * 1e6).round() as i64;
    let (whole, micros) = if micros >= 1_000_000 {
        (whole as i64 + 1, micros - 1_000_000)
    } else {
        (whole as i64, micros)
    };
    prost_types::Timestamp {
        seconds: whole,
        nanos: (micros * 1000) as i32,
    }
}

/// Returns the protobuf timestamp of a UTC time.
pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// Returns the UTC time of a protobuf timestamp, if it is in chrono's range.
pub fn utc(timestamp: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(timestamp.seconds, timestamp.nanos.clamp(0, 999_999_999) as u32)
}

/// Decodes a request body: an empty body is `{}`, unknown members are ignored, `null` is absent.
/// Malformed JSON or a member of the wrong JSON type is `SerializationException`; an unknown enum
/// value is `InvalidParameterException` naming the member.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(not_json("the body must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let err = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            return match deserializer.end() {
                Ok(()) => Ok(value),
                Err(err) => Err(not_json(&err.to_string())),
            };
        }
        Err(err) => err,
    };
    let path = err.path().to_string();
    let inner = err.into_inner();
    let message = inner.to_string();
    if message.starts_with(EMPTY_LIST_MARK) {
        return Err(ApiError::validation(
            ErrorCode::InvalidParameterException,
            &path,
            "[]",
            "Member must have length greater than or equal to 1",
        ));
    }
    if let Some(rest) = message.strip_prefix(ENUM_ERROR_MARK) {
        let (value, allowed) = rest.split_once(ENUM_ERROR_MARK).unwrap_or((rest, ""));
        let allowed = allowed.split(" at line ").next().unwrap_or(allowed);
        return Err(ApiError::validation(
            ErrorCode::InvalidParameterException,
            &path,
            value,
            &format!("Member must satisfy enum value set: [{allowed}]"),
        ));
    }
    if inner.is_syntax() || inner.is_eof() || path == "." || path.is_empty() {
        return Err(not_json(&message));
    }
    Err(ApiError::new(
        ErrorCode::SerializationException,
        format!("the member '{path}' has the wrong JSON type: {message}"),
    ))
}

fn not_json(detail: &str) -> ApiError {
    ApiError::new(
        ErrorCode::SerializationException,
        format!("the request body is not a valid JSON object: {detail}"),
    )
}

/// Encodes a response body.
pub fn encode<T: Serialize>(response: &T) -> Vec<u8> {
    serde_json::to_vec(response).expect("response shapes always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::{BillingMode, CreateEventDataStoreRequest, EventDataStoreDescription, EventDataStoreStatus};

    #[test]
    fn speaks_aws_member_names_and_enum_strings() {
        let body = br#"{"Name":"s1","BillingMode":"FIXED_RETENTION_PRICING","RetentionPeriod":90,
                        "TagsList":null,"KmsKeyId":null,"Unknown":{"x":1}}"#;
        let request: CreateEventDataStoreRequest = decode(body).unwrap();
        assert_eq!(request.name.as_deref(), Some("s1"));
        assert_eq!(request.billing_mode, Some(BillingMode::FixedRetentionPricing.into()));
        assert_eq!(request.retention_period, Some(90));
        assert!(request.tags_list.is_empty() && request.kms_key_id.is_none());
    }

    #[test]
    fn epoch_seconds_round_trip_to_the_millisecond() {
        for millis in [
            1_763_801_399_853_i64,
            1_763_801_399_999,
            1_763_801_400_000,
            1_735_787_045_417,
            0,
            1,
        ] {
            let time = prost_types::Timestamp {
                seconds: millis / 1000,
                nanos: (millis % 1000) as i32 * 1_000_000,
            };
            let mut text = Vec::new();
            serialize_timestamp(&Some(time), &mut serde_json::Serializer::new(&mut text)).unwrap();
            let read = deserialize_timestamp(&mut serde_json::Deserializer::from_slice(&text)).unwrap();
            assert_eq!(read, Some(time), "{}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn writes_epoch_seconds_and_omits_absent_members() {
        let description = EventDataStoreDescription {
            name: Some("s1".into()),
            status: Some(EventDataStoreStatus::Created.into()),
            created_timestamp: Some(prost_types::Timestamp {
                seconds: 1735787045,
                nanos: 417_000_000,
            }),
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::from_slice(&encode(&description)).unwrap();
        assert_eq!(json["Name"], "s1");
        assert_eq!(json["Status"], "CREATED");
        assert_eq!(json["CreatedTimestamp"].as_f64(), Some(1735787045.417));
        assert!(json.get("KmsKeyId").is_none() && json.get("BillingMode").is_none());
    }

    #[test]
    fn reads_timestamps_in_every_form() {
        for text in [
            "1704240000",
            "1704240000.5",
            "\"1704240000\"",
            "\"2024-01-03T00:00:00Z\"",
        ] {
            let body = format!(r#"{{"CreatedTimestamp":{text}}}"#);
            let description: EventDataStoreDescription = decode(body.as_bytes()).unwrap();
            assert_eq!(description.created_timestamp.unwrap().seconds, 1704240000, "{text}");
        }
    }

    #[test]
    fn answers_bad_bodies_with_aws_codes() {
        let not_json = decode::<CreateEventDataStoreRequest>(b"{not json").unwrap_err();
        assert_eq!(not_json.code, ErrorCode::SerializationException);
        let array = decode::<CreateEventDataStoreRequest>(b"[]").unwrap_err();
        assert_eq!(array.code, ErrorCode::SerializationException);
        let wrong_type = decode::<CreateEventDataStoreRequest>(br#"{"RetentionPeriod":"7"}"#).unwrap_err();
        assert_eq!(wrong_type.code, ErrorCode::SerializationException);
        assert!(wrong_type.message.contains("RetentionPeriod"), "{}", wrong_type.message);
        let bad_enum = decode::<CreateEventDataStoreRequest>(br#"{"BillingMode":"CHEAP"}"#).unwrap_err();
        assert_eq!(bad_enum.code, ErrorCode::InvalidParameterException);
        assert!(
            bad_enum.message.contains("'CHEAP' at 'BillingMode'"),
            "{}",
            bad_enum.message
        );
        assert!(
            bad_enum
                .message
                .contains("[EXTENDABLE_RETENTION_PRICING, FIXED_RETENTION_PRICING]"),
            "{}",
            bad_enum.message
        );
        let unspecified = decode::<CreateEventDataStoreRequest>(br#"{"BillingMode":"UNSPECIFIED"}"#).unwrap_err();
        assert_eq!(unspecified.code, ErrorCode::InvalidParameterException);
        let empty_selectors =
            decode::<crate::shapes::UpdateEventDataStoreRequest>(br#"{"AdvancedEventSelectors":[]}"#).unwrap_err();
        assert_eq!(empty_selectors.code, ErrorCode::InvalidParameterException);
        assert!(
            empty_selectors.message.contains("at 'AdvancedEventSelectors'"),
            "{}",
            empty_selectors.message
        );
        let absent: crate::shapes::UpdateEventDataStoreRequest = decode(br#"{"AdvancedEventSelectors":null}"#).unwrap();
        assert!(absent.advanced_event_selectors.is_empty());
        let empty: CreateEventDataStoreRequest = decode(b"").unwrap();
        assert!(empty.name.is_none());
    }
}
