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

/// Who made a request, as its access key tells: what the request acts for, and what the
/// CloudTrail record of the call says of its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account the request acts for.
    pub account_id: String,
    /// The access key that signed it; none for a development request without `Authorization`.
    pub access_key_id: Option<String>,
    /// Whether the key is temporary (its requests carry a session token).
    pub session: bool,
    /// The key's user name, when the credentials give one.
    pub user_name: Option<String>,
    /// The key's principal ARN, when the credentials give one.
    pub arn: Option<String>,
}

impl Principal {
    fn of_key(key: &credentials::AccessKey) -> Self {
        Self {
            account_id: key.account_id.clone(),
            access_key_id: Some(key.access_key_id.clone()),
            session: key.session_token.is_some(),
            user_name: key.user_name.clone(),
            arn: key.arn.clone(),
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
    /// Returns who a request comes from, or why it is refused.
    pub(crate) fn authenticate(&self, request: &SignedRequest<'_>, api: Api) -> Result<Principal, ApiError> {
        match self {
            Authenticator::Development { account_id } => development_principal(request.headers, api, account_id),
            Authenticator::Verified(credentials) => Ok(Principal::of_key(sigv4::verify(
                request,
                api,
                credentials,
                chrono::Utc::now(),
            )?)),
        }
    }

    /// Returns who a refused request says it comes from, for the record of the refusal: the
    /// configured key its `Authorization` header names, or in development the account that key
    /// maps to. A request naming a key that is not configured belongs to no account: `None`.
    pub(crate) fn claimed(&self, headers: &HeaderMap) -> Option<Principal> {
        let access_key_id = headers
            .get("authorization")
            .and_then(|header| header.to_str().ok())
            .and_then(|header| sigv4::credential_scope(header).ok())
            .map(|scope| scope.access_key_id);
        match self {
            Authenticator::Development { account_id } => Some(Principal {
                account_id: development_account(access_key_id, account_id),
                access_key_id: access_key_id.map(str::to_string),
                session: headers.contains_key("x-amz-security-token"),
                user_name: None,
                arn: None,
            }),
            Authenticator::Verified(credentials) => credentials.get(access_key_id?).map(Principal::of_key),
        }
    }
}

/// Returns who an unverified request comes from.
fn development_principal(headers: &HeaderMap, api: Api, development_account_id: &str) -> Result<Principal, ApiError> {
    let access_key_id = match headers.get("authorization") {
        Some(authorization) => {
            let scope = sigv4::credential_scope(authorization.to_str().unwrap_or_default())?;
            sigv4::check_service(scope.service, api)?;
            Some(scope.access_key_id)
        }
        None => None,
    };
    Ok(Principal {
        account_id: development_account(access_key_id, development_account_id),
        access_key_id: access_key_id.map(str::to_string),
        session: headers.contains_key("x-amz-security-token"),
        user_name: None,
        arn: None,
    })
}

/// Returns the account of an unverified access key: the key itself when it is an account ID.
fn development_account(access_key_id: Option<&str>, development_account_id: &str) -> String {
    match access_key_id {
        Some(key) if is_account_id(key) => key.to_string(),
        _ => development_account_id.to_string(),
    }
}
