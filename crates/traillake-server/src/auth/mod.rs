//! Who is calling, for both front doors (gRPC metadata are HTTP/2 headers).
//!
//! With credentials configured ([`Authenticator::Verified`]), every request must carry an AWS
//! Signature Version 4 made with one of the configured keys ([`sigv4`]), and acts for that key's
//! account. Without ([`Authenticator::Development`], allowed only on a loopback address), no
//! signature is checked: an access key of 12 digits is taken as the caller's account ID (as
//! LocalStack does, so that tests and tools can act as several accounts), and every other access
//! key maps to the development account; the `Authorization` header, when present, must still be
//! a SigV4 header whose credential scope names the API the request is for, as AWS
//! clients always send one (its signature is not checked).

pub mod credentials;
pub(crate) mod sigv4;

use std::sync::Arc;

use axum::http::HeaderMap;
use traillake_api::ApiError;
use traillake_api::arn::is_account_id;

pub use credentials::Credentials;
pub(crate) use sigv4::SignedRequest;

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

/// How the server tells who calls.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// No credentials configured: no signature is checked (see the module documentation).
    Development {
        /// The account of every access key that is not itself an account ID.
        account_id: String,
    },
    /// Every request is signed with one of these keys.
    Verified(Arc<Credentials>),
}

impl Authenticator {
    /// Returns the account a request acts for, or why it is refused.
    pub(crate) fn account_id(&self, request: &SignedRequest<'_>, api: Api) -> Result<String, ApiError> {
        match self {
            Authenticator::Development { account_id } => development_account(request.headers, api, account_id),
            Authenticator::Verified(credentials) => Ok(sigv4::verify(request, api, credentials, chrono::Utc::now())?
                .account_id
                .clone()),
        }
    }
}

/// Returns the account of an unverified request's access key.
fn development_account(headers: &HeaderMap, api: Api, development_account_id: &str) -> Result<String, ApiError> {
    let Some(authorization) = headers.get("authorization") else {
        return Ok(development_account_id.to_string());
    };
    let scope = sigv4::credential_scope(authorization.to_str().unwrap_or_default())?;
    sigv4::check_service(scope.service, api)?;
    if is_account_id(scope.access_key_id) {
        return Ok(scope.access_key_id.to_string());
    }
    Ok(development_account_id.to_string())
}
