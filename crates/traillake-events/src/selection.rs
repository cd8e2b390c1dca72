//! The facts of a CloudTrail record that advanced event selectors look at
//! ([`traillake_api::selectors::SelectedEvent`]), read from the record as JSON. A record written
//! before `eventCategory` existed gets the category its row gets
//! ([`crate::cloudtrail::derived_event_category`]). `readOnly` and `sessionCredentialFromConsole`
//! are read whether the record writes them as booleans or as the strings `"true"` / `"false"`
//! (CloudTrail writes `sessionCredentialFromConsole` as a string).

use serde_json::Value;
use traillake_api::selectors::{SelectedEvent, SelectedResource};

use crate::cloudtrail::derived_event_category;

/// Returns the facts of a CloudTrail record that selectors look at.
pub fn selected_event(record: &Value) -> SelectedEvent<'_> {
    let text = |name: &str| record.get(name).and_then(Value::as_str);
    let resources: Vec<SelectedResource<'_>> = record
        .get("resources")
        .and_then(Value::as_array)
        .map(|resources| {
            resources
                .iter()
                .map(|resource| SelectedResource {
                    resource_type: resource.get("type").and_then(Value::as_str),
                    arn: resource.get("ARN").and_then(Value::as_str),
                })
                .collect()
        })
        .unwrap_or_default();
    let event_category = text("eventCategory").unwrap_or_else(|| {
        derived_event_category(
            flag(record.get("managementEvent")),
            text("eventSource"),
            text("eventName"),
            resources.iter().map(|resource| resource.resource_type),
        )
    });
    SelectedEvent {
        event_category,
        event_source: text("eventSource"),
        event_name: text("eventName"),
        event_type: text("eventType"),
        read_only: flag(record.get("readOnly")),
        error_code: text("errorCode"),
        user_identity_arn: record
            .get("userIdentity")
            .and_then(|identity| identity.get("arn"))
            .and_then(Value::as_str),
        session_credential_from_console: flag(record.get("sessionCredentialFromConsole")),
        vpc_endpoint_id: text("vpcEndpointId"),
        resources,
    }
}

/// Reads a boolean written as JSON `true` / `false` or as the string `"true"` / `"false"`.
fn flag(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text == "true" => Some(true),
        Value::String(text) if text == "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_what_selectors_look_at() {
        let record = json!({
            "eventVersion": "1.11",
            "eventCategory": "Data",
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
            "eventType": "AwsApiCall",
            "readOnly": true,
            "errorCode": "AccessDenied",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
            "sessionCredentialFromConsole": "true",
            "vpcEndpointId": "vpce-1",
            "resources": [
                {"type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::logs"},
                {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::logs/a.gz"}
            ]
        });
        assert_eq!(
            selected_event(&record),
            SelectedEvent {
                event_category: "Data",
                event_source: Some("s3.amazonaws.com"),
                event_name: Some("GetObject"),
                event_type: Some("AwsApiCall"),
                read_only: Some(true),
                error_code: Some("AccessDenied"),
                user_identity_arn: Some("arn:aws:iam::123456789012:user/alice"),
                session_credential_from_console: Some(true),
                vpc_endpoint_id: Some("vpce-1"),
                resources: vec![
                    SelectedResource {
                        resource_type: Some("AWS::S3::Bucket"),
                        arn: Some("arn:aws:s3:::logs"),
                    },
                    SelectedResource {
                        resource_type: Some("AWS::S3::Object"),
                        arn: Some("arn:aws:s3:::logs/a.gz"),
                    },
                ],
            }
        );
    }

    #[test]
    fn derives_the_category_of_records_written_before_it_existed() {
        let object = json!({"eventSource": "s3.amazonaws.com", "eventName": "GetObject",
            "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::b/k"}]});
        assert_eq!(selected_event(&object).event_category, "Data");
        let management = json!({"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "readOnly": "false"});
        let facts = selected_event(&management);
        assert_eq!((facts.event_category, facts.read_only), ("Management", Some(false)));
        let data = json!({"eventSource": "dynamodb.amazonaws.com", "managementEvent": false});
        assert_eq!(selected_event(&data).event_category, "Data");
    }
}
