//! `eventContext`: what a store's ContextKeySelectors (PutEventConfiguration) add to each live
//! record it takes, AWS's "enriched events".
//!
//! - `RequestContext` keys are IAM global condition keys. traillake evaluates no IAM policy, so it
//!   gives the keys a record itself answers: `aws:SourceIp`, `aws:UserAgent`, `aws:PrincipalArn`,
//!   `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:userid`, `aws:username`,
//!   `aws:RequestedRegion`, `aws:CurrentTime`, `aws:EpochTime` and `aws:SecureTransport`. Keys are
//!   matched without regard to case, as IAM does, and given as the selector spells them; a key the
//!   record does not answer is left out, as AWS leaves out keys its evaluation did not use.
//! - `TagContext` keys are tag keys: the record's `resources` (the stores, channels, trails and
//!   dashboards a call named) with the tags of those keys they carry now.
//!
//! The shape, `{"requestContext": {KEY: VALUE}, "tagContext": {"resourceTags": [{"arn": ARN,
//! "tags": {KEY: VALUE}}]}}`, follows the names of AWS's documentation; AWS publishes no complete
//! example, so it is unverified. It has no column of its own: it is kept in `eventjson`, where
//! `eventJSON` and `json_extract` read it.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use traillake_api::arn::{CloudTrailArn, ResourceType};
use traillake_api::shapes::{ContextKeySelector, Tag};
use traillake_lake::Catalog;
use traillake_lake::catalog::TaggedResource;

/// The keys a store's ContextKeySelectors ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextKeys {
    request: Vec<String>,
    tags: Vec<String>,
}

impl ContextKeys {
    /// Returns the keys of a store's selectors, `None` when it has none.
    pub fn of(selectors: &[ContextKeySelector]) -> Option<Self> {
        let mut keys = Self::default();
        for selector in selectors {
            match selector.r#type.as_deref() {
                Some("RequestContext") => keys.request.extend(selector.equals.iter().cloned()),
                Some("TagContext") => keys.tags.extend(selector.equals.iter().cloned()),
                _ => {}
            }
        }
        (!keys.request.is_empty() || !keys.tags.is_empty()).then_some(keys)
    }

    /// Returns whether the keys ask for resource tags.
    pub fn wants_tags(&self) -> bool {
        !self.tags.is_empty()
    }
}

/// The current tags of the resources records name, by ARN.
pub type ResourceTags = BTreeMap<String, Vec<Tag>>;

/// Returns the current tags of every resource the records name (their `resources[].ARN`), read
/// from the catalog; a resource that no longer exists has none.
pub async fn resource_tags(catalog: &Catalog, records: &[&Value]) -> ResourceTags {
    let mut found = ResourceTags::new();
    for arn in records.iter().flat_map(|record| resource_arns(record)) {
        if found.contains_key(arn) {
            continue;
        }
        let Some(parsed) = CloudTrailArn::parse(arn) else {
            continue;
        };
        let id = parsed.resource_id.as_str();
        let resource = match parsed.kind() {
            Some(ResourceType::EventDataStore) => TaggedResource::EventDataStore(id),
            Some(ResourceType::Channel) => TaggedResource::Channel(id),
            Some(ResourceType::Trail) => TaggedResource::Trail(id),
            Some(ResourceType::Dashboard) => TaggedResource::Dashboard(id),
            None => continue,
        };
        let tags = catalog.tags(&parsed.account_id, resource).await.unwrap_or_default();
        found.insert(arn.to_string(), tags);
    }
    found
}

/// Returns the ARNs of a record's `resources`.
fn resource_arns(record: &Value) -> impl Iterator<Item = &str> {
    record
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|resource| resource.get("ARN").and_then(Value::as_str))
}

/// Returns the record with its `eventContext`, or `None` when the keys find nothing in it.
pub fn enrich(record: &Value, keys: &ContextKeys, tags: &ResourceTags) -> Option<Value> {
    let mut context = Map::new();
    let request: Map<String, Value> = keys
        .request
        .iter()
        .filter_map(|key| request_value(record, key).map(|value| (key.clone(), Value::String(value))))
        .collect();
    if !request.is_empty() {
        context.insert("requestContext".into(), Value::Object(request));
    }
    let resource_tags: Vec<Value> = resource_arns(record)
        .filter_map(|arn| {
            let selected: Map<String, Value> = tags
                .get(arn)?
                .iter()
                .filter_map(|tag| {
                    let key = tag.key.as_ref().filter(|key| keys.tags.contains(key))?;
                    Some((key.clone(), Value::String(tag.value.clone().unwrap_or_default())))
                })
                .collect();
            (!selected.is_empty()).then(|| json!({"arn": arn, "tags": selected}))
        })
        .collect();
    if !resource_tags.is_empty() {
        context.insert("tagContext".into(), json!({"resourceTags": resource_tags}));
    }
    if context.is_empty() {
        return None;
    }
    let mut enriched = record.clone();
    enriched
        .as_object_mut()?
        .insert("eventContext".into(), Value::Object(context));
    Some(enriched)
}

/// Returns the value a record answers for an IAM global condition key, matched without regard to
/// case.
fn request_value(record: &Value, key: &str) -> Option<String> {
    let text = |path: &[&str]| {
        path.iter()
            .try_fold(record, |value, name| value.get(name))
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    };
    let identity_type = || {
        // IAM's aws:PrincipalType names: Account, User, FederatedUser, AssumedRole, Anonymous.
        text(&["userIdentity", "type"]).map(|kind| match kind.as_str() {
            "Root" => "Account".to_string(),
            "IAMUser" => "User".to_string(),
            _ => kind,
        })
    };
    match key.to_ascii_lowercase().as_str() {
        "aws:sourceip" => text(&["sourceIPAddress"]),
        "aws:useragent" => text(&["userAgent"]),
        "aws:principalarn" => text(&["userIdentity", "arn"]),
        "aws:principalaccount" => text(&["userIdentity", "accountId"]),
        "aws:principaltype" => identity_type(),
        "aws:userid" => text(&["userIdentity", "principalId"]),
        "aws:username" => text(&["userIdentity", "userName"]),
        "aws:requestedregion" => text(&["awsRegion"]),
        "aws:currenttime" => text(&["eventTime"]),
        "aws:epochtime" => text(&["eventTime"])
            .and_then(|time| chrono::DateTime::parse_from_rfc3339(&time).ok())
            .map(|time| time.timestamp().to_string()),
        "aws:securetransport" => record
            .get("tlsDetails")
            .map(|tls| (!tls.is_null()).to_string())
            .or_else(|| Some("false".to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(kind: &str, keys: &[&str]) -> ContextKeySelector {
        ContextKeySelector {
            r#type: Some(kind.into()),
            equals: keys.iter().map(|key| key.to_string()).collect(),
        }
    }

    #[test]
    fn adds_the_request_keys_a_record_answers_and_the_selected_tags() {
        let store = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/x";
        let record = json!({
            "eventTime": "2026-01-02T03:04:05Z", "sourceIPAddress": "10.1.2.3", "userAgent": "boto3/1",
            "awsRegion": "us-east-1", "tlsDetails": {"tlsVersion": "TLSv1.3"},
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/ana", "accountId": "123456789012"},
            "resources": [{"ARN": store, "type": "AWS::CloudTrail::EventDataStore"}],
        });
        let keys = ContextKeys::of(&[
            selector(
                "RequestContext",
                &[
                    "aws:SourceIp",
                    "AWS:PRINCIPALTYPE",
                    "aws:EpochTime",
                    "aws:SecureTransport",
                    "aws:username",
                ],
            ),
            selector("TagContext", &["team"]),
        ])
        .unwrap();
        let tag = |key: &str, value: &str| Tag {
            key: Some(key.into()),
            value: Some(value.into()),
        };
        let tags = ResourceTags::from([(store.to_string(), vec![tag("team", "sec"), tag("cost", "1")])]);
        let enriched = enrich(&record, &keys, &tags).unwrap();
        assert_eq!(
            enriched["eventContext"],
            json!({
                "requestContext": {"aws:SourceIp": "10.1.2.3", "AWS:PRINCIPALTYPE": "User",
                                   "aws:EpochTime": "1767323045", "aws:SecureTransport": "true"},
                "tagContext": {"resourceTags": [{"arn": store, "tags": {"team": "sec"}}]},
            })
        );
        let nothing = ContextKeys::of(&[selector("RequestContext", &["aws:PrincipalOrgID"])]).unwrap();
        assert_eq!(enrich(&record, &nothing, &tags), None);
        assert_eq!(ContextKeys::of(&[]), None);
    }
}
