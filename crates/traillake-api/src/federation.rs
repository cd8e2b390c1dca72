//! Validation of EnableFederation and DisableFederation, and the names under which a federated
//! store is published (AWS's Glue database `aws:cloudtrail`, the Delta Sharing share of the same
//! name).

use crate::Result;
use crate::arn;
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorCode};
use crate::shapes::EnableFederationRequest;
use crate::validate::{Pattern, StringRule};

/// The database AWS creates in Glue for federated stores; traillake's metadata files live under
/// `federation/aws_cloudtrail/`.
pub const DATABASE: &str = "aws:cloudtrail";
/// The Delta Sharing share of the federated stores (`:` is not a share name character).
pub const SHARE: &str = "aws_cloudtrail";
/// The Delta Sharing schema of the federated stores' tables.
pub const SCHEMA: &str = "default";

static FEDERATION_ROLE_ARN_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._/\-:@=\+,\.]+$");
/// `FederationRoleArn`: 3..125 characters.
static FEDERATION_ROLE_ARN: StringRule = StringRule {
    min: 3,
    max: 125,
    pattern: Some(&FEDERATION_ROLE_ARN_PATTERN),
    code: ErrorCode::InvalidParameterException,
};
static IAM_ROLE_PATTERN: Pattern = Pattern::new(r"^arn:aws[a-z\-]*:iam::(\d{12}):role/[A-Za-z0-9_+=,.@\-/]+$");

/// Returns the store ID and the role ARN of an EnableFederation request. The role must be an IAM
/// role of the caller's account, as AWS requires ("the federation role must exist in your
/// account").
pub fn check_enable(ctx: &RequestContext, request: &EnableFederationRequest) -> Result<(String, String)> {
    let id = arn::event_data_store_id(ctx, "EventDataStore", request.event_data_store.as_deref())?;
    let role = FEDERATION_ROLE_ARN.check_required("FederationRoleArn", request.federation_role_arn.as_deref())?;
    if !IAM_ROLE_PATTERN.is_full_match(role) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterException,
            format!("FederationRoleArn '{role}' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
        ));
    }
    let account = role.split(':').nth(4).unwrap_or_default();
    if account != ctx.account_id {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterException,
            format!(
                "FederationRoleArn '{role}' is a role of account {account}; the federation role must be in the \
                 store's account {}",
                ctx.account_id
            ),
        ));
    }
    Ok((id, role.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext::for_tests()
    }

    fn request(role: &str) -> EnableFederationRequest {
        EnableFederationRequest {
            event_data_store: Some("5a1d9c3e-7b2f-4c61-9e8a-0d4b6f2a1c3e".into()),
            federation_role_arn: Some(role.into()),
        }
    }

    #[test]
    fn takes_a_role_of_the_callers_account() {
        let (_, role) = check_enable(&ctx(), &request("arn:aws:iam::123456789012:role/Federation")).unwrap();
        assert_eq!(role, "arn:aws:iam::123456789012:role/Federation");
    }

    #[test]
    fn refuses_other_roles_naming_the_field() {
        for role in [
            "ab",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::111122223333:role/Federation",
            "arn:aws:iam::123456789012:role/a b",
            &format!("arn:aws:iam::123456789012:role/{}", "r".repeat(100)),
        ] {
            let error = check_enable(&ctx(), &request(role)).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidParameterException, "{role}");
            assert!(error.message.contains("FederationRoleArn"), "{role}: {}", error.message);
        }
        let missing = EnableFederationRequest {
            federation_role_arn: None,
            ..request("x")
        };
        assert!(
            check_enable(&ctx(), &missing)
                .unwrap_err()
                .message
                .contains("FederationRoleArn")
        );
    }
}
