//! Whether an event matches advanced event selectors: the one evaluator every live path that fills
//! a store (or a trail) asks, as the CloudTrail API reference defines the selectors.
//!
//! - An event matches a list of selectors if any selector matches it (an empty list matches
//!   nothing).
//! - A selector matches if every one of its field selectors holds.
//! - A field selector holds for a value if, for each positive operator it has (`Equals`,
//!   `StartsWith`, `EndsWith`), one of the operator's values holds, and no value of a negative
//!   operator (`NotEquals`, `NotStartsWith`, `NotEndsWith`) holds. Values are compared as written
//!   (case-sensitive); `readOnly` and `sessionCredentialFromConsole` compare as `true` / `false`.
//! - A field the event does not have (no `errorCode` on a call that succeeded, no
//!   `userIdentity.arn`) holds for no positive operator and for every negative one: `errorCode
//!   NotEquals AccessDenied` keeps the calls that succeeded.
//! - `resources.type` and `resources.ARN` are facts of one resource of the event: a selector's
//!   resource field selectors hold if one resource of the event meets all of them together, so
//!   `resources.type Equals AWS::S3::Object` with `resources.ARN StartsWith arn:aws:s3:::bucket/`
//!   takes an event on an object of that bucket, not an event on a bucket beside an object
//!   elsewhere. An event with no resources meets no resource field selector.
//! - A field the evaluator does not know matches nothing (`check_selectors` refuses such fields
//!   before they are stored).

use crate::shapes::{AdvancedEventSelector, AdvancedFieldSelector};

/// The facts of an event that advanced event selectors look at, borrowed from the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectedEvent<'a> {
    /// `Management`, `Data`, `NetworkActivity`, `Insight`, `ConfigurationItem`, `Evidence` or
    /// `ActivityAuditLog`.
    pub event_category: &'a str,
    /// `eventSource`, such as `s3.amazonaws.com`.
    pub event_source: Option<&'a str>,
    /// `eventName`, such as `GetObject`.
    pub event_name: Option<&'a str>,
    /// `eventType`, such as `AwsApiCall`.
    pub event_type: Option<&'a str>,
    /// `readOnly`.
    pub read_only: Option<bool>,
    /// `errorCode`, on a call that failed.
    pub error_code: Option<&'a str>,
    /// `userIdentity.arn`.
    pub user_identity_arn: Option<&'a str>,
    /// `sessionCredentialFromConsole`.
    pub session_credential_from_console: Option<bool>,
    /// `vpcEndpointId`.
    pub vpc_endpoint_id: Option<&'a str>,
    /// `resources`, in the record's order.
    pub resources: Vec<SelectedResource<'a>>,
}

/// One resource of an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelectedResource<'a> {
    /// `resources[].type`, such as `AWS::S3::Object`.
    pub resource_type: Option<&'a str>,
    /// `resources[].ARN`.
    pub arn: Option<&'a str>,
}

/// Returns true if any of `selectors` matches the event.
pub fn matches(selectors: &[AdvancedEventSelector], event: &SelectedEvent<'_>) -> bool {
    selectors.iter().any(|selector| selector_matches(selector, event))
}

fn selector_matches(selector: &AdvancedEventSelector, event: &SelectedEvent<'_>) -> bool {
    let (resource_fields, event_fields): (Vec<&AdvancedFieldSelector>, Vec<&AdvancedFieldSelector>) =
        selector.field_selectors.iter().partition(|field| {
            field
                .field
                .as_deref()
                .is_some_and(|name| name.starts_with("resources."))
        });
    let event_fields_hold = event_fields.iter().all(|field| match event_value(field, event) {
        Some(value) => holds(field, value.as_deref()),
        None => false,
    });
    event_fields_hold
        && (resource_fields.is_empty()
            || event.resources.iter().any(|resource| {
                resource_fields
                    .iter()
                    .all(|field| match resource_value(field, resource) {
                        Some(value) => holds(field, value),
                        None => false,
                    })
            }))
}

/// The value of an event field (`None` inside when the event lacks it), or `None` for a field the
/// evaluator does not know.
fn event_value<'a>(field: &AdvancedFieldSelector, event: &SelectedEvent<'a>) -> Option<Option<Text<'a>>> {
    let text = |value: Option<&'a str>| value.map(Text::Borrowed);
    let flag = |value: Option<bool>| value.map(|value| Text::Borrowed(if value { "true" } else { "false" }));
    Some(match field.field.as_deref()? {
        "eventCategory" => Some(Text::Borrowed(event.event_category)),
        "eventSource" => text(event.event_source),
        "eventName" => text(event.event_name),
        "eventType" => text(event.event_type),
        "readOnly" => flag(event.read_only),
        "errorCode" => text(event.error_code),
        "userIdentity.arn" => text(event.user_identity_arn),
        "sessionCredentialFromConsole" => flag(event.session_credential_from_console),
        "vpcEndpointId" => text(event.vpc_endpoint_id),
        _ => return None,
    })
}

/// The value of a resource field, or `None` for a field the evaluator does not know.
fn resource_value<'a>(field: &AdvancedFieldSelector, resource: &SelectedResource<'a>) -> Option<Option<&'a str>> {
    match field.field.as_deref()? {
        "resources.type" => Some(resource.resource_type),
        "resources.ARN" => Some(resource.arn),
        _ => None,
    }
}

/// A field's value as text.
type Text<'a> = std::borrow::Cow<'a, str>;

/// An operator's values, and the test of one of them against a field's value.
type Operator<'s> = (&'s [String], fn(&str, &str) -> bool);

/// Whether a field selector holds for a value (`None`: the event lacks the field).
fn holds(field: &AdvancedFieldSelector, value: Option<&str>) -> bool {
    let positive: [Operator<'_>; 3] = [
        (&field.equals, |value, wanted| value == wanted),
        (&field.starts_with, |value, wanted| value.starts_with(wanted)),
        (&field.ends_with, |value, wanted| value.ends_with(wanted)),
    ];
    let negative: [Operator<'_>; 3] = [
        (&field.not_equals, |value, unwanted| value == unwanted),
        (&field.not_starts_with, |value, unwanted| value.starts_with(unwanted)),
        (&field.not_ends_with, |value, unwanted| value.ends_with(unwanted)),
    ];
    let positive_hold = positive
        .iter()
        .filter(|(values, _)| !values.is_empty())
        .all(|(values, test)| value.is_some_and(|value| values.iter().any(|wanted| test(value, wanted))));
    let negative_hold = negative
        .iter()
        .all(|(values, test)| value.is_none_or(|value| !values.iter().any(|unwanted| test(value, unwanted))));
    positive_hold && negative_hold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, build: impl FnOnce(&mut AdvancedFieldSelector)) -> AdvancedFieldSelector {
        let mut field = AdvancedFieldSelector {
            field: Some(name.to_string()),
            ..Default::default()
        };
        build(&mut field);
        field
    }

    fn equals(name: &str, values: &[&str]) -> AdvancedFieldSelector {
        field(name, |f| f.equals = values.iter().map(|v| v.to_string()).collect())
    }

    /// Whether one selector matches.
    fn one(selector: &AdvancedEventSelector, event: &SelectedEvent<'_>) -> bool {
        matches(std::slice::from_ref(selector), event)
    }

    fn selector(fields: Vec<AdvancedFieldSelector>) -> AdvancedEventSelector {
        AdvancedEventSelector {
            name: None,
            field_selectors: fields,
        }
    }

    fn management<'a>(source: &'a str, name: &'a str, read_only: bool) -> SelectedEvent<'a> {
        SelectedEvent {
            event_category: "Management",
            event_source: Some(source),
            event_name: Some(name),
            event_type: Some("AwsApiCall"),
            read_only: Some(read_only),
            ..Default::default()
        }
    }

    fn s3_data<'a>(name: &'a str, resources: Vec<SelectedResource<'a>>) -> SelectedEvent<'a> {
        SelectedEvent {
            event_category: "Data",
            event_source: Some("s3.amazonaws.com"),
            event_name: Some(name),
            read_only: Some(name.starts_with("Get")),
            resources,
            ..Default::default()
        }
    }

    fn resource<'a>(resource_type: &'a str, arn: &'a str) -> SelectedResource<'a> {
        SelectedResource {
            resource_type: Some(resource_type),
            arn: Some(arn),
        }
    }

    #[test]
    fn any_selector_and_every_field_selector() {
        let writes = selector(vec![
            equals("eventCategory", &["Management"]),
            equals("readOnly", &["false"]),
        ]);
        let event = management("ec2.amazonaws.com", "RunInstances", false);
        assert!(one(&writes, &event));
        assert!(!one(
            &writes,
            &management("ec2.amazonaws.com", "DescribeInstances", true)
        ));
        assert!(!matches(&[], &event), "no selector matches nothing");
        let data = selector(vec![
            equals("eventCategory", &["Data"]),
            equals("resources.type", &["AWS::S3::Object"]),
        ]);
        assert!(matches(&[data.clone(), writes], &event), "any selector");
        assert!(!one(&data, &event));
    }

    #[test]
    fn operators_positive_ored_within_and_across_anded_negative_excluding() {
        let name = |build: fn(&mut AdvancedFieldSelector)| {
            selector(vec![
                equals("eventCategory", &["Management"]),
                field("eventName", build),
            ])
        };
        let create = management("cloudtrail.amazonaws.com", "CreateEventDataStore", false);
        let delete = management("cloudtrail.amazonaws.com", "DeleteEventDataStore", false);
        let list = management("cloudtrail.amazonaws.com", "ListEventDataStores", true);
        let either = name(|f| f.equals = vec!["CreateEventDataStore".into(), "ListEventDataStores".into()]);
        assert!(one(&either, &create) && one(&either, &list));
        assert!(!one(&either, &delete));
        // StartsWith and EndsWith in one field selector: both must hold.
        let both = name(|f| {
            f.starts_with = vec!["Create".into(), "Delete".into()];
            f.ends_with = vec!["Store".into()];
        });
        assert!(one(&both, &create) && one(&both, &delete));
        assert!(!one(&both, &list));
        // A positive and a negative operator: the positive holds and no negative value does.
        let but_not = name(|f| {
            f.ends_with = vec!["EventDataStore".into(), "EventDataStores".into()];
            f.not_starts_with = vec!["Delete".into()];
        });
        assert!(one(&but_not, &create) && one(&but_not, &list));
        assert!(!one(&but_not, &delete));
        let not_equals = name(|f| f.not_equals = vec!["ListEventDataStores".into()]);
        assert!(one(&not_equals, &create) && !one(&not_equals, &list));
        let not_ends = name(|f| f.not_ends_with = vec!["s".into()]);
        assert!(one(&not_ends, &create) && !one(&not_ends, &list));
    }

    #[test]
    fn management_events_without_an_event_source() {
        let no_kms = selector(vec![
            equals("eventCategory", &["Management"]),
            field("eventSource", |f| f.not_equals = vec!["kms.amazonaws.com".into()]),
        ]);
        assert!(one(&no_kms, &management("ec2.amazonaws.com", "RunInstances", false)));
        assert!(!one(&no_kms, &management("kms.amazonaws.com", "Decrypt", true)));
    }

    #[test]
    fn a_missing_field_holds_only_for_negative_operators() {
        let succeeded = management("iam.amazonaws.com", "CreateUser", false);
        let refused = SelectedEvent {
            error_code: Some("AccessDenied"),
            ..management("iam.amazonaws.com", "CreateUser", false)
        };
        let not_denied = selector(vec![
            equals("eventCategory", &["Management"]),
            field("errorCode", |f| f.not_equals = vec!["AccessDenied".into()]),
        ]);
        assert!(one(&not_denied, &succeeded));
        assert!(!one(&not_denied, &refused));
        let denied = selector(vec![
            equals("eventCategory", &["Management"]),
            equals("errorCode", &["AccessDenied"]),
        ]);
        assert!(one(&denied, &refused));
        assert!(!one(&denied, &succeeded));
        let console = selector(vec![
            equals("eventCategory", &["Management"]),
            equals("sessionCredentialFromConsole", &["true"]),
        ]);
        assert!(!one(&console, &succeeded));
        let from_console = SelectedEvent {
            session_credential_from_console: Some(true),
            user_identity_arn: Some("arn:aws:iam::123456789012:user/alice"),
            ..succeeded.clone()
        };
        assert!(one(&console, &from_console));
        let alice = selector(vec![
            equals("eventCategory", &["Management"]),
            field("userIdentity.arn", |f| f.ends_with = vec![":user/alice".into()]),
        ]);
        assert!(one(&alice, &from_console) && !one(&alice, &succeeded));
    }

    #[test]
    fn resource_fields_hold_on_one_resource_together() {
        let objects_of_bucket = selector(vec![
            equals("eventCategory", &["Data"]),
            equals("resources.type", &["AWS::S3::Object"]),
            field("resources.ARN", |f| f.starts_with = vec!["arn:aws:s3:::logs/".into()]),
        ]);
        let get = |bucket: &'static str, object: &'static str| {
            s3_data(
                "GetObject",
                vec![resource("AWS::S3::Bucket", bucket), resource("AWS::S3::Object", object)],
            )
        };
        assert!(one(
            &objects_of_bucket,
            &get("arn:aws:s3:::logs", "arn:aws:s3:::logs/a.gz")
        ));
        assert!(!one(
            &objects_of_bucket,
            &get("arn:aws:s3:::other", "arn:aws:s3:::other/a.gz")
        ));
        // The type and the ARN must be one resource's: a bucket ARN that starts like the prefix
        // does not lend its ARN to an object elsewhere.
        let mixed = s3_data(
            "GetObject",
            vec![
                resource("AWS::S3::Bucket", "arn:aws:s3:::logs/x"),
                resource("AWS::S3::Object", "arn:aws:s3:::other/a.gz"),
            ],
        );
        assert!(!one(&objects_of_bucket, &mixed));
        assert!(!one(&objects_of_bucket, &s3_data("GetObject", Vec::new())));
        let all_but_secret = selector(vec![
            equals("eventCategory", &["Data"]),
            equals("resources.type", &["AWS::S3::Object"]),
            field("resources.ARN", |f| {
                f.not_starts_with = vec!["arn:aws:s3:::secret/".into()]
            }),
            field("eventName", |f| f.not_equals = vec!["HeadObject".into()]),
        ]);
        assert!(one(
            &all_but_secret,
            &get("arn:aws:s3:::logs", "arn:aws:s3:::logs/a.gz")
        ));
        assert!(!one(
            &all_but_secret,
            &get("arn:aws:s3:::secret", "arn:aws:s3:::secret/a.gz")
        ));
        let head = s3_data(
            "HeadObject",
            vec![resource("AWS::S3::Object", "arn:aws:s3:::logs/a.gz")],
        );
        assert!(!one(&all_but_secret, &head));
    }

    #[test]
    fn categories_and_unknown_fields() {
        let activity = SelectedEvent {
            event_category: "ActivityAuditLog",
            ..Default::default()
        };
        assert!(matches(
            &[selector(vec![equals("eventCategory", &["ActivityAuditLog"])])],
            &activity
        ));
        assert!(!matches(
            &[selector(vec![equals("eventCategory", &["Management"])])],
            &activity
        ));
        let unknown = selector(vec![
            equals("eventCategory", &["ActivityAuditLog"]),
            equals("color", &["blue"]),
        ]);
        assert!(!one(&unknown, &activity));
    }
}
