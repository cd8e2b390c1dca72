//! The caller's account. Until SigV4 verification lands (with configured credentials), every
//! access key maps to the development account; the `Authorization` header, when present, must still
//! be a well-formed SigV4 header, as AWS clients always send one.

use axum::http::HeaderMap;
use traillake_api::{ApiError, ErrorCode};

/// Returns the account of the request's credentials.
pub(super) fn account_id(headers: &HeaderMap, development_account_id: &str) -> Result<String, ApiError> {
    let Some(authorization) = headers.get("authorization") else {
        return Ok(development_account_id.to_string());
    };
    let text = authorization.to_str().unwrap_or_default();
    let credential = text
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .and_then(|rest| rest.split(',').map(str::trim).find_map(|part| part.strip_prefix("Credential=")));
    let scope_is_valid = credential.is_some_and(|credential| credential.split('/').count() == 5);
    if !scope_is_valid {
        return Err(ApiError::new(
            ErrorCode::IncompleteSignatureException,
            "the Authorization header is not a valid AWS4-HMAC-SHA256 header with Credential=KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    }
    Ok(development_account_id.to_string())
}
