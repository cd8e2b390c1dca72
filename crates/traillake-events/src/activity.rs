//! CloudTrail records of traillake's own API calls, as AWS writes the records of CloudTrail's calls
//! (eventVersion 1.11; shapes from the real records of `../shared/data/trails/`, see
//! `../shared/notes/anchors.md` §3.3):
//!
//! - `requestParameters` and `responseElements` are the request and response as sent on the wire,
//!   each member name's first character lower-cased, recursively (`Name` is `name`, `TrailARN`
//!   is `trailARN`);
//! - `responseElements` is null for reads, for calls that failed, and for calls whose response has
//!   no member (DeleteTrail, StopLogging);
//! - a refusal has `errorCode` (the AWS error code) and `errorMessage`;
//! - `userIdentity` is an `IAMUser`, or an `AssumedRole` for a key with a session token, of the
//!   caller's account and access key, with the user name and ARN the credentials give.
//!
//! The caller decides what a record may hold: no secrets, and no event bodies of PutAuditEvents.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// Who made a call.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The account the call acts for.
    pub account_id: &'a str,
    /// The access key that signed it; none for an unsigned development request.
    pub access_key_id: Option<&'a str>,
    /// Whether the key is a temporary one (it came with a session token).
    pub session: bool,
    /// The user's name, when the credentials give one.
    pub user_name: Option<&'a str>,
    /// The principal's ARN, when the credentials give one.
    pub arn: Option<&'a str>,
}

/// One call to traillake's API, as its record needs it.
#[derive(Debug, Clone)]
pub struct ApiCall<'a> {
    /// `cloudtrail.amazonaws.com`, or `cloudtrail-data.amazonaws.com` for PutAuditEvents.
    pub event_source: &'a str,
    /// The operation.
    pub event_name: &'a str,
    /// Whether the operation only reads.
    pub read_only: bool,
    /// Whether it is a management event (PutAuditEvents is a data event).
    pub management: bool,
    /// Who called.
    pub caller: Caller<'a>,
    /// The server's Region.
    pub region: &'a str,
    /// The caller's address.
    pub source_ip: &'a str,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<&'a str>,
    /// The request ID the answer carried.
    pub request_id: &'a str,
    /// The record's ID.
    pub event_id: &'a str,
    /// When the call was answered.
    pub time: DateTime<Utc>,
    /// The request as sent, with AWS's member names.
    pub request: Option<&'a Value>,
    /// The response as answered, with AWS's member names; `None` for a call that failed.
    pub response: Option<&'a Value>,
    /// The error code and message of a call that failed.
    pub error: Option<(&'a str, &'a str)>,
    /// The resources the call named: each resource type and ARN.
    pub resources: Vec<(&'a str, String)>,
}

/// Returns the CloudTrail record of a call.
pub fn activity_record(call: &ApiCall<'_>) -> Value {
    let caller = call.caller;
    let mut identity = Map::new();
    identity.insert(
        "type".into(),
        Value::from(if caller.session { "AssumedRole" } else { "IAMUser" }),
    );
    identity.insert(
        "principalId".into(),
        Value::from(caller.access_key_id.unwrap_or(caller.account_id)),
    );
    if let Some(arn) = caller.arn {
        identity.insert("arn".into(), Value::from(arn));
    }
    identity.insert("accountId".into(), Value::from(caller.account_id));
    if let Some(access_key_id) = caller.access_key_id {
        identity.insert("accessKeyId".into(), Value::from(access_key_id));
    }
    if let Some(user_name) = caller.user_name {
        identity.insert("userName".into(), Value::from(user_name));
    }
    let response_elements = match (call.read_only, call.error, call.response) {
        (false, None, Some(response @ Value::Object(members))) if !members.is_empty() => lower_camel(response),
        _ => Value::Null,
    };
    let mut record = json!({
        "eventVersion": "1.11",
        "userIdentity": Value::Object(identity),
        "eventTime": call.time.to_rfc3339_opts(SecondsFormat::Secs, true),
        "eventSource": call.event_source,
        "eventName": call.event_name,
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
        "requestParameters": call.request.map_or(Value::Null, lower_camel),
        "responseElements": response_elements,
        "requestID": call.request_id,
        "eventID": call.event_id,
        "readOnly": call.read_only,
        "eventType": "AwsApiCall",
        "managementEvent": call.management,
        "recipientAccountId": caller.account_id,
        "eventCategory": if call.management { "Management" } else { "Data" },
    });
    let members = record.as_object_mut().expect("a record is an object");
    if let Some((code, message)) = call.error {
        members.insert("errorCode".into(), Value::from(code));
        members.insert("errorMessage".into(), Value::from(message));
    }
    if !call.resources.is_empty() {
        let resources = call
            .resources
            .iter()
            .map(|(resource_type, arn)| json!({"accountId": caller.account_id, "type": resource_type, "ARN": arn}))
            .collect();
        members.insert("resources".into(), Value::Array(resources));
    }
    record
}

/// Returns a value with the first character of every object member name lower-cased, recursively.
fn lower_camel(value: &Value) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(name, value)| {
                    let mut chars = name.chars();
                    let lowered = match chars.next() {
                        Some(first) => first.to_lowercase().chain(chars).collect(),
                        None => String::new(),
                    };
                    (lowered, lower_camel(value))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(lower_camel).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::to_raw_value;

    use super::*;
    use crate::cloudtrail_row;

    fn call<'a>(request: &'a Value, response: Option<&'a Value>, error: Option<(&'a str, &'a str)>) -> ApiCall<'a> {
        ApiCall {
            event_source: "cloudtrail.amazonaws.com",
            event_name: "CreateEventDataStore",
            read_only: false,
            management: true,
            caller: Caller {
                account_id: "123456789012",
                access_key_id: Some("AKIAEXAMPLE000001"),
                session: false,
                user_name: Some("alice"),
                arn: Some("arn:aws:iam::123456789012:user/alice"),
            },
            region: "us-east-1",
            source_ip: "127.0.0.1",
            user_agent: Some("aws-cli/2.0"),
            request_id: "req-1",
            event_id: "event-1",
            time: DateTime::parse_from_rfc3339("2026-12-07T01:02:03Z").unwrap().to_utc(),
            request: Some(request),
            response,
            error,
            resources: vec![(
                "AWS::CloudTrail::EventDataStore",
                "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/abc".to_string(),
            )],
        }
    }

    #[test]
    fn writes_a_call_as_aws_writes_cloudtrails_own() {
        let request = json!({"Name": "store", "AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}], "TagsList": [{"Key": "k", "Value": "v"}]});
        let response = json!({"EventDataStoreArn": "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/abc", "Name": "store"});
        let record = activity_record(&call(&request, Some(&response), None));
        assert_eq!(record["eventVersion"], "1.11");
        assert_eq!(record["userIdentity"]["type"], "IAMUser");
        assert_eq!(record["userIdentity"]["userName"], "alice");
        assert_eq!(record["eventTime"], "2026-12-07T01:02:03Z");
        assert_eq!(
            record["requestParameters"],
            json!({"name": "store", "advancedEventSelectors": [{"fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]}], "tagsList": [{"key": "k", "value": "v"}]})
        );
        assert_eq!(
            record["responseElements"]["eventDataStoreArn"],
            response["EventDataStoreArn"]
        );
        assert_eq!(record["readOnly"], false);
        assert_eq!(record["eventCategory"], "Management");
        assert_eq!(record["recipientAccountId"], "123456789012");
        assert_eq!(record["resources"][0]["type"], "AWS::CloudTrail::EventDataStore");
        assert!(record.get("errorCode").is_none());
        // The record is one the lake stores as any CloudTrail record.
        let raw = to_raw_value(&record).unwrap();
        cloudtrail_row(&raw).unwrap();
    }

    #[test]
    fn refusals_reads_and_empty_responses_have_no_response_elements() {
        let request = json!({"Name": "store"});
        let refused = activity_record(&call(
            &request,
            None,
            Some((
                "EventDataStoreAlreadyExistsException",
                "an event data store named store exists",
            )),
        ));
        assert_eq!(refused["errorCode"], "EventDataStoreAlreadyExistsException");
        assert_eq!(refused["responseElements"], Value::Null);
        let empty = json!({});
        let deleted = activity_record(&call(&request, Some(&empty), None));
        assert_eq!(deleted["responseElements"], Value::Null);
        let listed = json!({"EventDataStores": []});
        let read = activity_record(&ApiCall {
            read_only: true,
            caller: Caller {
                session: true,
                user_name: None,
                arn: None,
                ..call(&request, None, None).caller
            },
            ..call(&request, Some(&listed), None)
        });
        assert_eq!(read["responseElements"], Value::Null);
        assert_eq!(read["readOnly"], true);
        assert_eq!(read["userIdentity"]["type"], "AssumedRole");
        assert!(read["userIdentity"].get("userName").is_none());
    }
}
