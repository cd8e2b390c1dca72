//! Verifying AWS Signature Version 4 on a request: the `Authorization` header read, the access key
//! looked up in the configured [`Credentials`], and the signature computed again with `aws-sigv4`
//! over the headers the client signed, then compared in constant time.
//!
//! Errors follow the AWS JSON services (`reference/aws-wire-protocol.md` §2.3): no header 403
//! `MissingAuthenticationTokenException`; a malformed header or scope 400
//! `IncompleteSignatureException`; an unknown key or a wrong session token 403
//! `UnrecognizedClientException`; a wrong signature, a scope for another service, or an
//! `X-Amz-Date` more than 15 minutes from the server's clock 403 `InvalidSignatureException`.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::http::{HeaderMap, Uri};
use chrono::{DateTime, NaiveDateTime, Utc};
use traillake_api::{ApiError, ErrorCode};

use super::Api;
use super::credentials::{AccessKey, Credentials};

/// How far `X-Amz-Date` may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// What of a request its signature covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The request target (path and query; the authority too over HTTP/2).
    pub uri: &'a Uri,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The body, or `None` for requests signed with `UNSIGNED-PAYLOAD` (gRPC).
    pub body: Option<&'a [u8]>,
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Authorization<'a> {
    pub scope: Scope<'a>,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

fn incomplete(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::IncompleteSignatureException, message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidSignatureException, message)
}

/// The credential scope of an `Authorization` header: `Credential=KEY/DATE/REGION/SERVICE/aws4_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scope<'a> {
    pub access_key_id: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// Returns the comma-separated parts of an `AWS4-HMAC-SHA256 ...` header after the scheme.
fn header_parts(text: &str) -> Result<impl Iterator<Item = &str>, ApiError> {
    let Some(rest) = text.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(incomplete(
            "the Authorization header must start with AWS4-HMAC-SHA256 (Signature Version 4)",
        ));
    };
    Ok(rest.split(',').map(str::trim))
}

/// Reads the credential scope of an `Authorization` header, which the development mode reads
/// too; the error says what is missing.
pub(crate) fn credential_scope(text: &str) -> Result<Scope<'_>, ApiError> {
    let credential = header_parts(text)?
        .find_map(|part| part.strip_prefix("Credential="))
        .unwrap_or_default();
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(incomplete(
            "the Authorization header needs Credential=ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request",
        ));
    };
    Ok(Scope {
        access_key_id,
        date,
        region,
        service,
    })
}

/// Reads an `Authorization` header; the error says which part is missing or malformed.
pub(crate) fn parse_authorization(text: &str) -> Result<Authorization<'_>, ApiError> {
    let scope = credential_scope(text)?;
    let Scope {
        access_key_id,
        date,
        region,
        service,
    } = scope;
    if access_key_id.is_empty() || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || region.is_empty() {
        return Err(incomplete(format!(
            "the credential scope {access_key_id}/{date}/{region}/{service} is malformed"
        )));
    }
    let (mut signed_headers, mut signature) = (None, None);
    for part in header_parts(text)? {
        if let Some(value) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(value);
        } else if let Some(value) = part.strip_prefix("Signature=") {
            signature = Some(value);
        }
    }
    let Some(signed_headers) = signed_headers.filter(|names| !names.is_empty()) else {
        return Err(incomplete("the Authorization header needs SignedHeaders=name;name;..."));
    };
    let Some(signature) = signature.filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())) else {
        return Err(incomplete(
            "the Authorization header needs Signature= with 64 hexadecimal digits",
        ));
    };
    Ok(Authorization {
        scope,
        signed_headers: signed_headers.split(';').collect(),
        signature,
    })
}

/// Refuses a request whose scope names another service than the API it is routed to.
pub(crate) fn check_service(service: &str, api: Api) -> Result<(), ApiError> {
    if service != api.signing_name() {
        return Err(invalid(format!(
            "the request is signed for the service {service}, but it is a {} request",
            api.signing_name()
        )));
    }
    Ok(())
}

/// Verifies a request's signature against the configured keys; returns the key that signed it.
pub(crate) fn verify<'c>(
    request: &SignedRequest<'_>,
    api: Api,
    credentials: &'c Credentials,
    now: DateTime<Utc>,
) -> Result<&'c AccessKey, ApiError> {
    let Some(header) = request.headers.get("authorization") else {
        return Err(ApiError::new(
            ErrorCode::MissingAuthenticationTokenException,
            "the request carries no Authorization header: sign it with AWS Signature Version 4",
        ));
    };
    let authorization = parse_authorization(header.to_str().unwrap_or_default())?;
    check_service(authorization.scope.service, api)?;
    let signed_at = signing_time(request.headers, &authorization)?;
    check_skew(signed_at, now)?;

    let unrecognized = || {
        ApiError::new(
            ErrorCode::UnrecognizedClientException,
            "The security token included in the request is invalid.",
        )
    };
    let key = credentials
        .get(authorization.scope.access_key_id)
        .ok_or_else(unrecognized)?;
    let token = request
        .headers
        .get("x-amz-security-token")
        .map(|value| value.to_str().unwrap_or_default());
    if token != key.session_token.as_deref() {
        return Err(unrecognized());
    }
    for required in ["host", "x-amz-date"] {
        if !authorization.signed_headers.contains(&required) {
            return Err(incomplete(format!("SignedHeaders must include {required}")));
        }
    }
    let expected = signature(request, &authorization, key, signed_at)?;
    if !constant_time_eq(
        expected.as_bytes(),
        authorization.signature.to_ascii_lowercase().as_bytes(),
    ) {
        return Err(invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key \
             and signing method.",
        ));
    }
    Ok(key)
}

/// Returns the request's `X-Amz-Date`, which must fall on the scope's date.
fn signing_time(headers: &HeaderMap, authorization: &Authorization<'_>) -> Result<DateTime<Utc>, ApiError> {
    let Some(value) = headers.get("x-amz-date").and_then(|value| value.to_str().ok()) else {
        return Err(incomplete(
            "the request carries no X-Amz-Date header (YYYYMMDDTHHMMSSZ)",
        ));
    };
    let time = NaiveDateTime::parse_from_str(value, DATE_FORMAT)
        .map_err(|_| incomplete(format!("X-Amz-Date {value} is not a time of the form YYYYMMDDTHHMMSSZ")))?
        .and_utc();
    if !value.starts_with(authorization.scope.date) {
        return Err(invalid(format!(
            "the credential scope's date {} is not the date of X-Amz-Date {value}",
            authorization.scope.date
        )));
    }
    Ok(time)
}

/// Refuses a signature made more than [`MAX_SKEW`] before or after `now`, in AWS's words.
fn check_skew(signed_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ApiError> {
    let skew = chrono::Duration::from_std(MAX_SKEW).expect("15 minutes fit");
    let format = |time: DateTime<Utc>| time.format(DATE_FORMAT).to_string();
    if signed_at < now - skew {
        return Err(invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            format(signed_at),
            format(now - skew),
            format(now)
        )));
    }
    if signed_at > now + skew {
        return Err(invalid(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            format(signed_at),
            format(now + skew),
            format(now)
        )));
    }
    Ok(())
}

/// Returns the signature the key makes of the request, over the headers the client signed.
fn signature(
    request: &SignedRequest<'_>,
    authorization: &Authorization<'_>,
    key: &AccessKey,
    signed_at: DateTime<Utc>,
) -> Result<String, ApiError> {
    let host = request.uri.authority().map(|authority| authority.as_str().to_string());
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(authorization.signed_headers.len());
    for name in &authorization.signed_headers {
        let value = match request.headers.get(*name) {
            Some(value) => value
                .to_str()
                .map_err(|_| incomplete(format!("the signed header {name} is not text")))?,
            None if *name == "host" => host.as_deref().ok_or_else(|| incomplete("the request names no host"))?,
            None => {
                return Err(incomplete(format!(
                    "SignedHeaders names {name}, which the request does not carry"
                )));
            }
        };
        headers.push((name, value));
    }
    let identity = AwsCredentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        key.session_token.clone(),
        None,
        "traillake",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(authorization.scope.region)
        .name(authorization.scope.service)
        .time(SystemTime::from(signed_at))
        .settings(settings)
        .build()
        .map_err(|error| incomplete(format!("the signature cannot be checked: {error}")))?
        .into();
    let target = request.uri.path_and_query().map_or("/", |target| target.as_str());
    let body = match request.body {
        Some(bytes) => SignableBody::Bytes(bytes),
        None => SignableBody::UnsignedPayload,
    };
    let signable = SignableRequest::new(request.method, target, headers.into_iter(), body)
        .map_err(|error| incomplete(format!("the request cannot be signed: {error}")))?;
    let output =
        sign(signable, &params).map_err(|error| incomplete(format!("the request cannot be signed: {error}")))?;
    Ok(output.signature().to_string())
}

/// Compares two byte strings in time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |difference, (x, y)| difference | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parts_of_an_authorization_header() {
        let header = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250102/us-east-1/cloudtrail/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={}",
            "a".repeat(64)
        );
        let parsed = parse_authorization(&header).unwrap();
        assert_eq!(
            (
                parsed.scope.access_key_id,
                parsed.scope.date,
                parsed.scope.region,
                parsed.scope.service
            ),
            ("AKIDEXAMPLE", "20250102", "us-east-1", "cloudtrail")
        );
        assert_eq!(parsed.signed_headers, ["content-type", "host", "x-amz-date"]);
        for broken in [
            "Bearer abc".to_string(),
            "AWS4-HMAC-SHA256 Credential=AKID/20250102/us-east-1/cloudtrail, SignedHeaders=host, Signature=00"
                .to_string(),
            header.replace("Signature=", "Sig="),
            header.replace(&"a".repeat(64), "xyz"),
            header.replace("SignedHeaders=content-type;host;x-amz-date", "SignedHeaders="),
            header.replace("20250102", "2025-1-2"),
        ] {
            assert_eq!(
                parse_authorization(&broken).unwrap_err().code,
                ErrorCode::IncompleteSignatureException,
                "{broken}"
            );
        }
    }

    #[test]
    fn refuses_signatures_older_or_newer_than_fifteen_minutes() {
        let now = Utc::now();
        assert!(check_skew(now - chrono::Duration::minutes(14), now).is_ok());
        assert!(check_skew(now + chrono::Duration::minutes(14), now).is_ok());
        let expired = check_skew(now - chrono::Duration::minutes(16), now).unwrap_err();
        assert_eq!(
            (expired.code, expired.status),
            (ErrorCode::InvalidSignatureException, 403)
        );
        assert!(expired.message.starts_with("Signature expired"), "{}", expired.message);
        assert!(
            check_skew(now + chrono::Duration::minutes(16), now)
                .unwrap_err()
                .message
                .starts_with("Signature not yet current")
        );
    }

    #[test]
    fn compares_in_constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
