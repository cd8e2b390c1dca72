//! The caller's account, for both front doors (gRPC metadata are HTTP/2 headers). Until SigV4 verification lands (with configured credentials), no
//! signature is checked: an access key of 12 digits is taken as the caller's account ID (as
//! LocalStack does, so that tests and tools can act as several accounts), and every other access
//! key maps to the development account. The `Authorization` header, when present, must still be a
//! well-formed SigV4 header whose scope names the API the request is for, as AWS clients always
//! send one.

use axum::http::HeaderMap;
use traillake_api::arn::is_account_id;
use traillake_api::{ApiError, ErrorCode};

/// The API a request is routed to, which the SigV4 scope must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// CloudTrail (2013-11-01): every operation but PutAuditEvents.
    CloudTrail,
    /// CloudTrail Data (2021-08-11): PutAuditEvents.
    CloudTrailData,
}

impl Api {
    /// Returns the service name of the API's SigV4 scope.
    fn signing_name(self) -> &'static str {
        match self {
            Api::CloudTrail => "cloudtrail",
            Api::CloudTrailData => "cloudtrail-data",
        }
    }
}

/// Returns the account of the request's credentials.
pub(crate) fn account_id(headers: &HeaderMap, api: Api, development_account_id: &str) -> Result<String, ApiError> {
    let Some(authorization) = headers.get("authorization") else {
        return Ok(development_account_id.to_string());
    };
    let text = authorization.to_str().unwrap_or_default();
    let credential = text
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .and_then(|rest| rest.split(',').map(str::trim).find_map(|part| part.strip_prefix("Credential=")));
    let scope: Vec<&str> = credential.map(|credential| credential.split('/').collect()).unwrap_or_default();
    let [access_key, _date, _region, signing_name, "aws4_request"] = scope.as_slice() else {
        return Err(ApiError::new(
            ErrorCode::IncompleteSignatureException,
            "the Authorization header is not a valid AWS4-HMAC-SHA256 header with Credential=KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    };
    if *signing_name != api.signing_name() {
        let mut error = ApiError::new(
            ErrorCode::InvalidSignatureException,
            format!("the request is signed for the service {signing_name}, but it is a {} request", api.signing_name()),
        );
        error.status = 403;
        return Err(error);
    }
    if is_account_id(access_key) {
        return Ok(access_key.to_string());
    }
    Ok(development_account_id.to_string())
}
