//! ARNs and resource references: building the ARNs traillake returns, and resolving the "ARN or ID"
//! values that requests carry into IDs of the caller's account and Region.

use crate::Result;
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorCode};
use crate::validate::{Pattern, StringRule};

static ARN_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._/\-:]+$");

/// `EventDataStoreArn`: an event data store's ARN or ID, 3..256 characters.
pub static EVENT_DATA_STORE_REF: StringRule = StringRule {
    min: 3,
    max: 256,
    pattern: Some(&ARN_PATTERN),
    code: ErrorCode::EventDataStoreARNInvalidException,
};

/// The kinds of CloudTrail resource an ARN can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    /// `eventdatastore/<uuid>`.
    EventDataStore,
    /// `channel/<uuid>`.
    Channel,
    /// `dashboard/<name>`.
    Dashboard,
    /// `trail/<name>`.
    Trail,
}

impl ResourceType {
    /// Returns the resource type's word in an ARN.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::EventDataStore => "eventdatastore",
            ResourceType::Channel => "channel",
            ResourceType::Dashboard => "dashboard",
            ResourceType::Trail => "trail",
        }
    }

    fn from_word(word: &str) -> Option<Self> {
        match word {
            "eventdatastore" => Some(ResourceType::EventDataStore),
            "channel" => Some(ResourceType::Channel),
            "dashboard" => Some(ResourceType::Dashboard),
            "trail" => Some(ResourceType::Trail),
            _ => None,
        }
    }
}

/// A parsed CloudTrail ARN: `arn:aws:cloudtrail:<region>:<account>:<type>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudTrailArn {
    /// The Region.
    pub region: String,
    /// The owner's account ID.
    pub account_id: String,
    /// The resource type word, such as `eventdatastore`.
    pub resource_type: String,
    /// The resource ID or name after the `/`.
    pub resource_id: String,
}

impl CloudTrailArn {
    /// Parses `value` as a CloudTrail ARN, or returns `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.splitn(6, ':');
        let (arn, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
        let (region, account_id, resource) = (parts.next()?, parts.next()?, parts.next()?);
        if arn != "arn" || partition != "aws" || service != "cloudtrail" {
            return None;
        }
        let (resource_type, resource_id) = resource.split_once('/')?;
        if region.is_empty() || account_id.is_empty() || resource_id.is_empty() {
            return None;
        }
        Some(Self {
            region: region.to_string(),
            account_id: account_id.to_string(),
            resource_type: resource_type.to_string(),
            resource_id: resource_id.to_string(),
        })
    }

    /// Returns the resource type, if it is one CloudTrail has.
    pub fn kind(&self) -> Option<ResourceType> {
        ResourceType::from_word(&self.resource_type)
    }
}

/// Returns true if `value` is an AWS account ID: 12 ASCII digits.
pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// Returns the ARN of a resource of the caller's account and Region.
pub fn arn(ctx: &RequestContext, kind: ResourceType, id: &str) -> String {
    resource_arn(&ctx.region, &ctx.account_id, kind, id)
}

/// Returns the ARN of a CloudTrail resource of any account and Region.
pub fn resource_arn(region: &str, account_id: &str, kind: ResourceType, id: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account_id}:{}/{id}", kind.as_str())
}

/// Returns the ARN of an event data store of the caller's account and Region.
pub fn event_data_store_arn(ctx: &RequestContext, id: &str) -> String {
    arn(ctx, ResourceType::EventDataStore, id)
}

/// Resolves a required event data store reference (its ARN or ID) to the ID, lowercased: a
/// malformed value, another resource type, or another account or Region is
/// `EventDataStoreARNInvalidException`.
pub fn event_data_store_id(ctx: &RequestContext, field: &str, value: Option<&str>) -> Result<String> {
    let value = EVENT_DATA_STORE_REF.check_required(field, value)?;
    resource_id(
        ctx,
        field,
        value,
        ResourceType::EventDataStore,
        ErrorCode::EventDataStoreARNInvalidException,
    )
}

/// Resolves an "ARN or ID" value of `kind` to its lowercased ID, answering `code` when it is not
/// an ARN of that kind in the caller's account and Region.
pub fn resource_id(
    ctx: &RequestContext,
    field: &str,
    value: &str,
    kind: ResourceType,
    code: ErrorCode,
) -> Result<String> {
    if !value.contains(':') {
        if value.contains('/') {
            return Err(ApiError::new(
                code,
                format!("the value '{value}' of {field} is neither an ARN nor an ID"),
            ));
        }
        return Ok(value.to_ascii_lowercase());
    }
    let Some(arn) = CloudTrailArn::parse(value) else {
        return Err(ApiError::new(
            code,
            format!("the value '{value}' of {field} is not a valid ARN"),
        ));
    };
    if arn.kind() != Some(kind) {
        return Err(ApiError::new(
            code,
            format!("the ARN '{value}' of {field} is not a {} ARN", kind.as_str()),
        ));
    }
    check_owner(ctx, field, value, &arn, code)?;
    Ok(arn.resource_id.to_ascii_lowercase())
}

/// Checks that an ARN names the caller's account and the server's Region.
pub fn check_owner(ctx: &RequestContext, field: &str, value: &str, arn: &CloudTrailArn, code: ErrorCode) -> Result<()> {
    if arn.region != ctx.region {
        return Err(ApiError::new(
            code,
            format!(
                "the ARN '{value}' of {field} is in Region {}, not in {}",
                arn.region, ctx.region
            ),
        ));
    }
    if arn.account_id != ctx.account_id {
        return Err(ApiError::new(
            code,
            format!("the ARN '{value}' of {field} does not belong to the caller's account"),
        ));
    }
    Ok(())
}

/// Returns the full ARN of a KMS key reference as CloudTrail takes it: a key ID (a UUID, or
/// `mrk-` and 32 hex digits for a multi-Region key), an alias name (`alias/NAME`), or the ARN of
/// a key or an alias (`arn:aws:kms:REGION:ACCOUNT:key/ID` or `...:alias/NAME`). IDs and alias
/// names are taken as the caller's account and Region; an ARN of another Region, or anything
/// else, is `InvalidKmsKeyIdException`. No KMS is asked whether the key exists.
pub fn kms_key_arn(ctx: &RequestContext, field: &str, value: &str) -> Result<String> {
    let invalid = |why: &str| {
        ApiError::new(
            ErrorCode::InvalidKmsKeyIdException,
            format!(
                "the value '{value}' of {field} is not a KMS key: {why}; give a key ID, alias/NAME, or the ARN of a key \
                 or an alias (arn:aws:kms:{}:ACCOUNT:key/ID)",
                ctx.region
            ),
        )
    };
    let (region, account_id, resource) = match value.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, region, account_id, resource] = parts[..] else {
                return Err(invalid("an ARN has six parts separated by ':'"));
            };
            if partition != "aws" || service != "kms" {
                return Err(invalid("it is not the ARN of a KMS resource"));
            }
            if region != ctx.region {
                return Err(invalid(&format!(
                    "the key is in Region {region}; it must be in {}",
                    ctx.region
                )));
            }
            if !is_account_id(account_id) {
                return Err(invalid("the account of the ARN is not 12 digits"));
            }
            (region, account_id, resource.to_string())
        }
        None if value.starts_with("alias/") => (ctx.region.as_str(), ctx.account_id.as_str(), value.to_string()),
        None => (ctx.region.as_str(), ctx.account_id.as_str(), format!("key/{value}")),
    };
    match resource.split_once('/') {
        Some(("key", id)) if is_kms_key_id(id) => {}
        Some(("alias", name)) if is_kms_alias_name(name) => {}
        Some(("key", _)) => return Err(invalid("a key ID is a UUID or mrk- and 32 hex digits")),
        Some(("alias", _)) => {
            return Err(invalid(
                "an alias name is 1..250 characters of letters, digits, '/', '_' and '-'",
            ));
        }
        _ => return Err(invalid("it names neither a key nor an alias")),
    }
    Ok(format!("arn:aws:kms:{region}:{account_id}:{resource}"))
}

/// Returns true for a KMS key ID: a UUID, or `mrk-` and 32 lowercase hex digits.
fn is_kms_key_id(id: &str) -> bool {
    if let Some(hex) = id.strip_prefix("mrk-") {
        return hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    }
    uuid::Uuid::try_parse(id).is_ok_and(|uuid| uuid.hyphenated().to_string() == id.to_ascii_lowercase())
}

/// Returns true for a KMS alias name after `alias/`: 1..250 characters of `[a-zA-Z0-9/_-]`.
fn is_kms_alias_name(name: &str) -> bool {
    (1..=250).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext::for_tests()
    }

    #[test]
    fn resolves_arns_and_ids_case_insensitively() {
        let id = "0D5C3F8E-1b2a-4c7d-9e6f-a1b2c3d4e5f6";
        let arn = format!("arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/{id}");
        let lower = id.to_ascii_lowercase();
        assert_eq!(event_data_store_id(&ctx(), "EventDataStore", Some(id)).unwrap(), lower);
        assert_eq!(
            event_data_store_id(&ctx(), "EventDataStore", Some(&arn)).unwrap(),
            lower
        );
    }

    #[test]
    fn gives_kms_keys_their_full_arn() {
        let key = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let full = format!("arn:aws:kms:us-east-1:123456789012:key/{key}");
        assert_eq!(kms_key_arn(&ctx(), "KmsKeyId", key).unwrap(), full);
        assert_eq!(kms_key_arn(&ctx(), "KmsKeyId", &full).unwrap(), full);
        assert_eq!(
            kms_key_arn(&ctx(), "KmsKeyId", "alias/my-key").unwrap(),
            "arn:aws:kms:us-east-1:123456789012:alias/my-key"
        );
        let other_account = "arn:aws:kms:us-east-1:210987654321:alias/shared";
        assert_eq!(kms_key_arn(&ctx(), "KmsKeyId", other_account).unwrap(), other_account);
        let multi_region = "mrk-1234abcd12ab34cd56ef1234567890ab";
        assert!(
            kms_key_arn(&ctx(), "KmsKeyId", multi_region)
                .unwrap()
                .ends_with(":key/mrk-1234abcd12ab34cd56ef1234567890ab")
        );
        for bad in [
            "x",
            "alias/",
            "1234abcd-12ab-34cd-56ef",
            "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:s3:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:123456789012:secret/x",
            "mrk-xyz",
        ] {
            let error = kms_key_arn(&ctx(), "KmsKeyId", bad).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidKmsKeyIdException, "{bad}");
            assert!(error.message.contains("KmsKeyId"), "{}", error.message);
        }
    }

    #[test]
    fn refuses_other_accounts_regions_and_types() {
        for value in [
            "arn:aws:cloudtrail:us-east-1:999999999999:eventdatastore/abc",
            "arn:aws:cloudtrail:eu-west-1:123456789012:eventdatastore/abc",
            "arn:aws:cloudtrail:us-east-1:123456789012:channel/abc",
            "arn:aws:s3:::bucket/x",
            "eventdatastore/abc",
            "has space",
        ] {
            let err = event_data_store_id(&ctx(), "EventDataStore", Some(value)).unwrap_err();
            assert_eq!(err.code, ErrorCode::EventDataStoreARNInvalidException, "{value}");
        }
        let missing = event_data_store_id(&ctx(), "EventDataStore", None).unwrap_err();
        assert_eq!(missing.code, ErrorCode::EventDataStoreARNInvalidException);
        assert!(missing.message.contains("must not be null"), "{}", missing.message);
    }
}
