//! ARNs and resource references: building the ARNs traillake returns, and resolving the "ARN or ID"
//! values that requests carry into IDs of the caller's account and Region.

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
    format!("arn:aws:cloudtrail:{}:{}:{}/{id}", ctx.region, ctx.account_id, kind.as_str())
}

/// Returns the ARN of an event data store of the caller's account and Region.
pub fn event_data_store_arn(ctx: &RequestContext, id: &str) -> String {
    arn(ctx, ResourceType::EventDataStore, id)
}

/// Resolves a required event data store reference (its ARN or ID) to the ID, lowercased: a
/// malformed value, another resource type, or another account or Region is
/// `EventDataStoreARNInvalidException`.
pub fn event_data_store_id(ctx: &RequestContext, field: &str, value: Option<&str>) -> Result<String, ApiError> {
    let value = EVENT_DATA_STORE_REF.check_required(field, value)?;
    resource_id(ctx, field, value, ResourceType::EventDataStore, ErrorCode::EventDataStoreARNInvalidException)
}

/// Resolves an "ARN or ID" value of `kind` to its lowercased ID, answering `code` when it is not
/// an ARN of that kind in the caller's account and Region.
pub fn resource_id(
    ctx: &RequestContext,
    field: &str,
    value: &str,
    kind: ResourceType,
    code: ErrorCode,
) -> Result<String, ApiError> {
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
        return Err(ApiError::new(code, format!("the value '{value}' of {field} is not a valid ARN")));
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
pub fn check_owner(
    ctx: &RequestContext,
    field: &str,
    value: &str,
    arn: &CloudTrailArn,
    code: ErrorCode,
) -> Result<(), ApiError> {
    if arn.region != ctx.region {
        return Err(ApiError::new(
            code,
            format!("the ARN '{value}' of {field} is in Region {}, not in {}", arn.region, ctx.region),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            request_id: "r".into(),
        }
    }

    #[test]
    fn resolves_arns_and_ids_case_insensitively() {
        let id = "0D5C3F8E-1b2a-4c7d-9e6f-a1b2c3d4e5f6";
        let arn = format!("arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/{id}");
        let lower = id.to_ascii_lowercase();
        assert_eq!(event_data_store_id(&ctx(), "EventDataStore", Some(id)).unwrap(), lower);
        assert_eq!(event_data_store_id(&ctx(), "EventDataStore", Some(&arn)).unwrap(), lower);
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
