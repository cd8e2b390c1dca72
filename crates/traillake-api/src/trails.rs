//! Validation of the trail operations' requests (CreateTrail, UpdateTrail, DeleteTrail, GetTrail,
//! DescribeTrails, ListTrails, GetTrailStatus, StartLogging, StopLogging, GetEventSelectors,
//! PutEventSelectors): trail names and references, buckets and prefixes, the members traillake
//! refuses (SNS, CloudWatch Logs), and event selectors, basic or advanced. Basic
//! selectors are translated to advanced ones ([`advanced_of_basic`]) so that one evaluator
//! (`selectors::matches`) decides for trails as for stores.
//!
//! Rules, from the CloudTrail API reference (CreateTrail, PutEventSelectors, EventSelector):
//! - a name is 3..128 ASCII letters, digits, `.`, `_`, `-`; it starts and ends with a letter or a
//!   digit, has no two of `.`, `_`, `-` side by side, and is not an IP address;
//! - basic selectors: at most 5, at most 250 data resource values in all, data resources of
//!   `AWS::S3::Object`, `AWS::Lambda::Function` or `AWS::DynamoDB::Table`, management event
//!   sources excluded only `kms.amazonaws.com` and `rdsdata.amazonaws.com`;
//! - advanced selectors: the store rules, of CloudTrail events (`Management`, `Data`,
//!   `NetworkActivity`) only;
//! - never both forms in one request.

use crate::Result;
use crate::arn::{self, CloudTrailArn, ResourceType};
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorCode};
use crate::selectors::{self, StoreKind};
use crate::shapes::{AdvancedEventSelector, AdvancedFieldSelector, DataResource, EventSelector, ReadWriteType};
use crate::validate::{self, Pattern, StringRule};

/// The most trails an account may have, by default.
pub const MAX_TRAILS: usize = 5;
/// The most tags CreateTrail's TagsList may hold.
pub const MAX_REQUEST_TAGS: usize = 200;
/// The longest S3KeyPrefix.
pub const MAX_PREFIX: usize = 200;
const MAX_BASIC_SELECTORS: usize = 5;
const MAX_DATA_RESOURCE_VALUES: usize = 250;
/// The resource types basic event selectors log data events of.
const BASIC_RESOURCE_TYPES: &[&str] = &["AWS::S3::Object", "AWS::Lambda::Function", "AWS::DynamoDB::Table"];
/// The event sources a basic selector may leave out of management events.
const EXCLUDABLE_EVENT_SOURCES: &[&str] = &["kms.amazonaws.com", "rdsdata.amazonaws.com"];

static NAME_PATTERN: Pattern = Pattern::new(r"^[A-Za-z0-9](?:[A-Za-z0-9]|[._\-][A-Za-z0-9])*$");
static IP_ADDRESS: Pattern = Pattern::new(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$");
/// A trail reference: a name or a trail ARN, at most 256 characters.
static TRAIL_REF: StringRule = StringRule {
    min: 1,
    max: 256,
    pattern: None,
    code: ErrorCode::InvalidTrailNameException,
};
static BUCKET_PATTERN: Pattern = Pattern::new(r"^[a-z0-9](?:[a-z0-9.\-]{1,61})[a-z0-9]$");

/// Returns the ARN of a trail of the caller's account and Region.
pub fn trail_arn(ctx: &RequestContext, name: &str) -> String {
    arn::arn(ctx, ResourceType::Trail, name)
}

/// Checks a trail name: `InvalidTrailNameException` naming the rule it breaks.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    let invalid = |rule: &str| {
        ApiError::new(
            ErrorCode::InvalidTrailNameException,
            format!("the value '{name}' of {field} is not a valid trail name: {rule}"),
        )
    };
    let length = name.chars().count();
    if !(3..=128).contains(&length) {
        return Err(invalid(&format!("it has {length} characters; a name has 3 to 128")));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid(
            "a name holds only ASCII letters, digits, periods, underscores and dashes",
        ));
    }
    if !NAME_PATTERN.is_full_match(name) {
        return Err(invalid(
            "a name starts and ends with a letter or a digit and has no two of '.', '_', '-' side by side",
        ));
    }
    if IP_ADDRESS.is_full_match(name) {
        return Err(invalid("a name is not an IP address"));
    }
    Ok(())
}

/// What a trail reference may do when it names another Region: a trail is changed only in its
/// home Region (`InvalidHomeRegionException`), and is read anywhere (a trail of another Region is
/// not one this server has: `TrailNotFoundException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// GetTrail, DescribeTrails, GetTrailStatus, GetEventSelectors.
    Read,
    /// UpdateTrail, DeleteTrail, StartLogging, StopLogging, PutEventSelectors.
    Change,
}

/// Resolves a required trail reference (a name or a trail ARN) to the trail's name.
pub fn trail_name(ctx: &RequestContext, field: &str, value: Option<&str>, access: Access) -> Result<String> {
    let value = TRAIL_REF.check_required(field, value)?;
    if !value.starts_with("arn:") {
        check_name(field, value)?;
        return Ok(value.to_string());
    }
    let arn = CloudTrailArn::parse(value)
        .filter(|arn| arn.kind() == Some(ResourceType::Trail) && arn::is_account_id(&arn.account_id))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::CloudTrailARNInvalidException,
                format!(
                    "the value '{value}' of {field} is not a trail ARN (arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME)"
                ),
            )
        })?;
    check_name(field, &arn.resource_id)?;
    if arn.account_id != ctx.account_id {
        return Err(not_found(&arn.resource_id, "it belongs to another account"));
    }
    if arn.region != ctx.region {
        return Err(match access {
            Access::Change => ApiError::new(
                ErrorCode::InvalidHomeRegionException,
                format!(
                    "the trail '{value}' has its home in {}; it is changed only there, and this server serves {}",
                    arn.region, ctx.region
                ),
            ),
            Access::Read => not_found(&arn.resource_id, &format!("this server serves {}", ctx.region)),
        });
    }
    Ok(arn.resource_id)
}

/// Returns `TrailNotFoundException` for a trail name.
pub fn not_found(name: &str, why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::TrailNotFoundException,
        format!("Unknown trail: {name} ({why})"),
    )
}

/// Checks an S3 bucket name: `InvalidS3BucketNameException`.
pub fn check_bucket(field: &str, bucket: &str) -> Result<()> {
    if !BUCKET_PATTERN.is_full_match(bucket) || bucket.contains("..") || IP_ADDRESS.is_full_match(bucket) {
        return Err(ApiError::new(
            ErrorCode::InvalidS3BucketNameException,
            format!(
                "the value '{bucket}' of {field} is not a valid bucket name: 3 to 63 lowercase letters, digits, \
                 periods and dashes, starting and ending with a letter or a digit, not an IP address"
            ),
        ));
    }
    Ok(())
}

/// Checks an S3 key prefix and returns it, `None` when empty: `InvalidS3PrefixException`.
pub fn prefix(field: &str, value: Option<&str>) -> Result<Option<String>> {
    let Some(value) = value.filter(|value| !value.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > MAX_PREFIX {
        return Err(ApiError::new(
            ErrorCode::InvalidS3PrefixException,
            format!(
                "{field} has {} characters; a prefix has at most {MAX_PREFIX}",
                value.chars().count()
            ),
        ));
    }
    if value.starts_with('/') || value.ends_with('/') || value.contains("//") {
        return Err(ApiError::new(
            ErrorCode::InvalidS3PrefixException,
            format!(
                "the value '{value}' of {field} is not a valid prefix: it neither starts nor ends with '/', nor has an empty folder"
            ),
        ));
    }
    Ok(Some(value.to_string()))
}

/// The members of CreateTrail and UpdateTrail that traillake cannot honour: SNS notifications,
/// CloudWatch Logs delivery.
pub struct Integrations<'a> {
    /// `SnsTopicName`.
    pub sns_topic_name: Option<&'a str>,
    /// `CloudWatchLogsLogGroupArn`.
    pub log_group_arn: Option<&'a str>,
    /// `CloudWatchLogsRoleArn`.
    pub log_role_arn: Option<&'a str>,
}

/// Refuses what traillake cannot do with the modelled error: a role without a log group is
/// `InvalidParameterCombinationException`, a log group `CloudWatchLogsDeliveryUnavailableException`,
/// an SNS topic `InvalidSnsTopicNameException`. Empty strings (UpdateTrail's way to remove a setting) pass.
pub fn check_integrations(integrations: &Integrations<'_>) -> Result<()> {
    let given = |value: Option<&str>| value.is_some_and(|value| !value.is_empty());
    if given(integrations.log_role_arn) && !given(integrations.log_group_arn) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterCombinationException,
            "CloudWatchLogsRoleArn is given without CloudWatchLogsLogGroupArn; both or neither",
        ));
    }
    if given(integrations.log_group_arn) {
        return Err(ApiError::new(
            ErrorCode::CloudWatchLogsDeliveryUnavailableException,
            "CloudWatchLogsLogGroupArn: traillake delivers trails to S3 only; there is no CloudWatch Logs to deliver to",
        ));
    }
    if let Some(topic) = integrations.sns_topic_name.filter(|topic| !topic.is_empty()) {
        return Err(ApiError::new(
            ErrorCode::InvalidSnsTopicNameException,
            format!("SnsTopicName '{topic}': traillake sends no SNS notifications; leave SnsTopicName out"),
        ));
    }
    Ok(())
}

/// Returns the basic event selectors AWS gives a new trail: every read and write management event,
/// no data event.
pub fn default_event_selectors() -> Vec<EventSelector> {
    vec![EventSelector {
        read_write_type: Some(ReadWriteType::All as i32),
        include_management_events: Some(true),
        data_resources: Vec::new(),
        exclude_management_event_sources: Vec::new(),
    }]
}

/// Checks basic event selectors and returns them with their defaults filled in (`ReadWriteType`
/// All, `IncludeManagementEvents` true), as GetEventSelectors answers them.
pub fn check_event_selectors(selectors: &[EventSelector]) -> Result<Vec<EventSelector>> {
    if selectors.len() > MAX_BASIC_SELECTORS {
        return Err(invalid(format!(
            "EventSelectors has {} selectors; a trail takes at most {MAX_BASIC_SELECTORS}",
            selectors.len()
        )));
    }
    let mut values = 0;
    let mut checked = Vec::with_capacity(selectors.len());
    for (i, selector) in selectors.iter().enumerate() {
        let path = format!("EventSelectors[{i}]");
        let read_write =
            validate::enum_value::<ReadWriteType>(&format!("{path}.ReadWriteType"), selector.read_write_type)?
                .unwrap_or(ReadWriteType::All);
        for source in &selector.exclude_management_event_sources {
            if !EXCLUDABLE_EVENT_SOURCES.contains(&source.as_str()) {
                return Err(invalid(format!(
                    "{path}.ExcludeManagementEventSources: '{source}' cannot be left out; only {}",
                    EXCLUDABLE_EVENT_SOURCES.join(" and ")
                )));
            }
        }
        for (j, resource) in selector.data_resources.iter().enumerate() {
            let resource_path = format!("{path}.DataResources[{j}]");
            let resource_type = resource.r#type.as_deref().unwrap_or_default();
            if !BASIC_RESOURCE_TYPES.contains(&resource_type) {
                return Err(invalid(format!(
                    "{resource_path}.Type '{resource_type}' is not a type basic event selectors log; expected one of \
                     {} (use advanced event selectors for the others)",
                    BASIC_RESOURCE_TYPES.join(", ")
                )));
            }
            for (k, value) in resource.values.iter().enumerate() {
                if !value.starts_with("arn:") || value.len() > 2048 {
                    return Err(invalid(format!(
                        "{resource_path}.Values[{k}] '{value}' is not an ARN or ARN prefix (such as arn:aws:s3:::bucket/)"
                    )));
                }
            }
            values += resource.values.len();
        }
        checked.push(EventSelector {
            read_write_type: Some(read_write as i32),
            include_management_events: Some(selector.include_management_events.unwrap_or(true)),
            data_resources: selector.data_resources.clone(),
            exclude_management_event_sources: selector.exclude_management_event_sources.clone(),
        });
    }
    if values > MAX_DATA_RESOURCE_VALUES {
        return Err(invalid(format!(
            "EventSelectors has {values} data resource values; a trail takes at most {MAX_DATA_RESOURCE_VALUES}"
        )));
    }
    Ok(checked)
}

/// Checks the advanced event selectors of a trail: the store rules, and CloudTrail events only.
pub fn check_advanced_selectors(selectors: &[AdvancedEventSelector]) -> Result<()> {
    let kind = selectors::check_selectors("AdvancedEventSelectors", selectors)?;
    if kind != StoreKind::CloudTrail {
        return Err(invalid(format!(
            "AdvancedEventSelectors select {kind:?} events; a trail logs Management, Data and NetworkActivity events"
        )));
    }
    Ok(())
}

/// The selectors PutEventSelectors sets: one form, never both.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum TrailSelectors {
    /// Basic selectors, defaults filled in.
    Basic(Vec<EventSelector>),
    /// Advanced selectors.
    Advanced(Vec<AdvancedEventSelector>),
}

/// Checks the selectors of a PutEventSelectors request.
pub fn check_put_selectors(basic: &[EventSelector], advanced: &[AdvancedEventSelector]) -> Result<TrailSelectors> {
    match (basic.is_empty(), advanced.is_empty()) {
        (false, false) => Err(invalid(
            "EventSelectors and AdvancedEventSelectors are both given; a trail takes one form or the other".to_string(),
        )),
        (true, true) => Err(invalid(
            "neither EventSelectors nor AdvancedEventSelectors is given; give one".to_string(),
        )),
        (false, true) => Ok(TrailSelectors::Basic(check_event_selectors(basic)?)),
        (true, false) => {
            check_advanced_selectors(advanced)?;
            Ok(TrailSelectors::Advanced(advanced.to_vec()))
        }
    }
}

/// Returns the advanced selectors that select what basic selectors select: per basic selector,
/// one selector of management events (`readOnly` per `ReadWriteType`, excluded sources as
/// `eventSource NotEquals`) and one of data events per data resource (`resources.type`, and
/// `resources.ARN StartsWith` its values).
pub fn advanced_of_basic(basic: &[EventSelector]) -> Vec<AdvancedEventSelector> {
    let mut advanced = Vec::new();
    for selector in basic {
        let read_only = match ReadWriteType::try_from(selector.read_write_type.unwrap_or_default()) {
            Ok(ReadWriteType::ReadOnly) => Some("true"),
            Ok(ReadWriteType::WriteOnly) => Some("false"),
            _ => None,
        };
        let common = |category: &str| {
            let mut fields = vec![equals("eventCategory", category)];
            if let Some(read_only) = read_only {
                fields.push(equals("readOnly", read_only));
            }
            fields
        };
        if selector.include_management_events.unwrap_or(true) {
            let mut fields = common("Management");
            if !selector.exclude_management_event_sources.is_empty() {
                fields.push(AdvancedFieldSelector {
                    field: Some("eventSource".into()),
                    not_equals: selector.exclude_management_event_sources.clone(),
                    ..Default::default()
                });
            }
            advanced.push(AdvancedEventSelector {
                name: None,
                field_selectors: fields,
            });
        }
        for DataResource { r#type, values } in &selector.data_resources {
            let mut fields = common("Data");
            fields.push(equals("resources.type", r#type.as_deref().unwrap_or_default()));
            if !values.is_empty() {
                fields.push(AdvancedFieldSelector {
                    field: Some("resources.ARN".into()),
                    starts_with: values.clone(),
                    ..Default::default()
                });
            }
            advanced.push(AdvancedEventSelector {
                name: None,
                field_selectors: fields,
            });
        }
    }
    advanced
}

fn equals(field: &str, value: &str) -> AdvancedFieldSelector {
    AdvancedFieldSelector {
        field: Some(field.into()),
        equals: vec![value.into()],
        ..Default::default()
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidEventSelectorsException, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selectors::{SelectedEvent, SelectedResource, matches};

    fn ctx() -> RequestContext {
        RequestContext::for_tests()
    }

    #[test]
    fn names_follow_the_rules() {
        for good in ["abc", "my-trail", "a.b_c-d", "Trail123", &"a".repeat(128)] {
            check_name("Name", good).unwrap();
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a..b",
            "a-_b",
            "a b",
            "10.0.0.1",
            "tráil",
            &"a".repeat(129),
        ] {
            let error = check_name("Name", bad).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidTrailNameException, "{bad}");
        }
    }

    #[test]
    fn references_are_names_or_arns_of_the_home_region() {
        let arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/trail1";
        assert_eq!(trail_name(&ctx(), "Name", Some(arn), Access::Change).unwrap(), "trail1");
        assert_eq!(
            trail_name(&ctx(), "Name", Some("trail1"), Access::Read).unwrap(),
            "trail1"
        );
        let elsewhere = "arn:aws:cloudtrail:eu-west-1:123456789012:trail/trail1";
        assert_eq!(
            trail_name(&ctx(), "Name", Some(elsewhere), Access::Change)
                .unwrap_err()
                .code,
            ErrorCode::InvalidHomeRegionException
        );
        assert_eq!(
            trail_name(&ctx(), "Name", Some(elsewhere), Access::Read)
                .unwrap_err()
                .code,
            ErrorCode::TrailNotFoundException
        );
        let store = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/t1";
        assert_eq!(
            trail_name(&ctx(), "Name", Some(store), Access::Read).unwrap_err().code,
            ErrorCode::CloudTrailARNInvalidException
        );
        assert_eq!(
            trail_name(&ctx(), "Name", None, Access::Read).unwrap_err().code,
            ErrorCode::InvalidTrailNameException
        );
    }

    #[test]
    fn buckets_and_prefixes() {
        check_bucket("S3BucketName", "my-bucket.logs").unwrap();
        for bad in ["ab", "My-Bucket", "-bucket", "bucket-", "a..b", "192.168.1.1"] {
            assert_eq!(
                check_bucket("S3BucketName", bad).unwrap_err().code,
                ErrorCode::InvalidS3BucketNameException
            );
        }
        assert_eq!(prefix("S3KeyPrefix", Some("")).unwrap(), None);
        assert_eq!(prefix("S3KeyPrefix", Some("a/b")).unwrap().as_deref(), Some("a/b"));
        assert_eq!(
            prefix("S3KeyPrefix", Some(&"a".repeat(201))).unwrap_err().code,
            ErrorCode::InvalidS3PrefixException
        );
    }

    #[test]
    fn basic_selectors_translate_to_advanced_ones() {
        let basic = check_event_selectors(&[EventSelector {
            read_write_type: Some(ReadWriteType::WriteOnly as i32),
            include_management_events: None,
            data_resources: vec![DataResource {
                r#type: Some("AWS::S3::Object".into()),
                values: vec!["arn:aws:s3:::bucket/".into()],
            }],
            exclude_management_event_sources: vec!["kms.amazonaws.com".into()],
        }])
        .unwrap();
        let advanced = advanced_of_basic(&basic);
        check_advanced_selectors(&advanced).unwrap();
        let write = SelectedEvent {
            event_category: "Management",
            event_source: Some("cloudtrail.amazonaws.com"),
            read_only: Some(false),
            ..Default::default()
        };
        assert!(matches(&advanced, &write));
        assert!(!matches(
            &advanced,
            &SelectedEvent {
                read_only: Some(true),
                ..write.clone()
            }
        ));
        assert!(!matches(
            &advanced,
            &SelectedEvent {
                event_source: Some("kms.amazonaws.com"),
                ..write.clone()
            }
        ));
        let object = |arn| SelectedEvent {
            event_category: "Data",
            read_only: Some(false),
            resources: vec![SelectedResource {
                resource_type: Some("AWS::S3::Object"),
                arn: Some(arn),
            }],
            ..Default::default()
        };
        assert!(matches(&advanced, &object("arn:aws:s3:::bucket/key")));
        assert!(!matches(&advanced, &object("arn:aws:s3:::other/key")));
        let default = advanced_of_basic(&default_event_selectors());
        assert!(
            matches(&default, &write)
                && matches(
                    &default,
                    &SelectedEvent {
                        read_only: Some(true),
                        ..write
                    }
                )
        );
    }

    #[test]
    fn bad_selectors_are_refused() {
        let bad_type = [EventSelector {
            data_resources: vec![DataResource {
                r#type: Some("AWS::SNS::Topic".into()),
                values: vec!["arn:aws:sns".into()],
            }],
            ..Default::default()
        }];
        let excluded = [EventSelector {
            exclude_management_event_sources: vec!["s3.amazonaws.com".into()],
            ..Default::default()
        }];
        let too_many = vec![EventSelector::default(); 6];
        for selectors in [&bad_type[..], &excluded[..], &too_many[..]] {
            assert_eq!(
                check_event_selectors(selectors).unwrap_err().code,
                ErrorCode::InvalidEventSelectorsException
            );
        }
        let advanced = selectors::default_selectors();
        assert_eq!(
            check_put_selectors(&default_event_selectors(), &advanced)
                .unwrap_err()
                .code,
            ErrorCode::InvalidEventSelectorsException
        );
        assert_eq!(
            check_put_selectors(&[], &[]).unwrap_err().code,
            ErrorCode::InvalidEventSelectorsException
        );
        let insight = vec![AdvancedEventSelector {
            name: None,
            field_selectors: vec![equals("eventCategory", "Insight")],
        }];
        assert_eq!(
            check_put_selectors(&[], &insight).unwrap_err().code,
            ErrorCode::InvalidEventSelectorsException
        );
    }
}
