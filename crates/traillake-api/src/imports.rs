//! The checks of the import operations' members (StartImport, GetImport, ListImports,
//! ListImportFailures, StopImport), before any store or bucket is looked at, and the parsing of
//! `S3LocationUri`.

use chrono::{DateTime, Utc};

use crate::Result;
use crate::arn::EVENT_DATA_STORE_REF;
use crate::error::{ApiError, ErrorCode};
use crate::paging;
use crate::queries::UUID;
use crate::s3_location::S3Location;
use crate::shapes::{ImportRequest, ImportStatus, ListImportFailuresRequest, ListImportsRequest, StartImportRequest};
use crate::validate::{self, Pattern, StringRule};
use crate::wire::utc;

static REGION_PATTERN: Pattern = Pattern::new(r"[a-z]{2}(-[a-z]+)+-\d+");
static REGION: StringRule = StringRule {
    min: 1,
    max: 64,
    pattern: Some(&REGION_PATTERN),
    code: ErrorCode::InvalidParameterException,
};
static ROLE_ARN_PATTERN: Pattern = Pattern::new(r"arn:aws[a-z\-]*:iam::\d{12}:role/[A-Za-z0-9_+=,.@\-/]+");
static ROLE_ARN: StringRule = StringRule {
    min: 20,
    max: 2048,
    pattern: Some(&ROLE_ARN_PATTERN),
    code: ErrorCode::InvalidParameterException,
};

/// Returns the location `S3LocationUri` names; anything else is `InvalidImportSourceException`.
pub fn source_location(uri: &str) -> Result<S3Location> {
    S3Location::read(uri).map_err(|problem| {
        ApiError::new(
            ErrorCode::InvalidImportSourceException,
            format!("the S3LocationUri '{uri}' {}", problem.reason()),
        )
    })
}

/// A new import that passed the member checks (the destination is resolved by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImport {
    /// The destination as written: an event data store ARN or ID.
    pub destination: String,
    /// `S3LocationUri` as written.
    pub uri: String,
    /// The bucket and prefix of `uri`.
    pub location: S3Location,
    /// `S3BucketRegion`.
    pub region: String,
    /// `S3BucketAccessRoleArn`.
    pub role_arn: String,
    /// Files delivered before this time are not read.
    pub start: Option<DateTime<Utc>>,
    /// Files delivered after this time are not read.
    pub end: Option<DateTime<Utc>>,
}

/// What StartImport asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportStart {
    /// A new import.
    New(NewImport),
    /// The retry of a FAILED or STOPPED import.
    Retry(String),
}

/// Checks StartImport's members.
pub fn check_start(request: &StartImportRequest) -> Result<ImportStart> {
    if let Some(id) = request.import_id.as_deref() {
        UUID.check("ImportId", id)?;
        if !request.destinations.is_empty()
            || request.import_source.is_some()
            || request.start_event_time.is_some()
            || request.end_event_time.is_some()
        {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterException,
                "a retry names the import by ImportId alone: Destinations, ImportSource, StartEventTime and EndEventTime are those of the import",
            ));
        }
        return Ok(ImportStart::Retry(id.to_string()));
    }
    if request.destinations.is_empty() {
        return Err(ApiError::missing(ErrorCode::InvalidParameterException, "Destinations"));
    }
    validate::list_length(
        ErrorCode::InvalidParameterException,
        "Destinations",
        request.destinations.len(),
        1,
        1,
    )?;
    let destination = &request.destinations[0];
    EVENT_DATA_STORE_REF.check("Destinations.member", destination)?;
    let Some(source) = request.import_source.as_ref() else {
        return Err(ApiError::missing(ErrorCode::InvalidParameterException, "ImportSource"));
    };
    let Some(s3) = source.s3.as_ref() else {
        return Err(ApiError::missing(
            ErrorCode::InvalidParameterException,
            "ImportSource.S3",
        ));
    };
    let Some(uri) = s3.s3_location_uri.as_deref() else {
        return Err(ApiError::missing(
            ErrorCode::InvalidParameterException,
            "ImportSource.S3.S3LocationUri",
        ));
    };
    let location = source_location(uri)?;
    let region = REGION.check_required("ImportSource.S3.S3BucketRegion", s3.s3_bucket_region.as_deref())?;
    let role_arn = ROLE_ARN.check_required(
        "ImportSource.S3.S3BucketAccessRoleArn",
        s3.s3_bucket_access_role_arn.as_deref(),
    )?;
    let start = request.start_event_time.as_ref().and_then(utc);
    let end = request.end_event_time.as_ref().and_then(utc);
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterException,
            format!("StartEventTime {start} is after EndEventTime {end}"),
        ));
    }
    Ok(ImportStart::New(NewImport {
        destination: destination.clone(),
        uri: uri.to_string(),
        location,
        region: region.to_string(),
        role_arn: role_arn.to_string(),
        start,
        end,
    }))
}

/// Checks the ImportId of GetImport and StopImport; returns it.
pub fn check_import_request(request: &ImportRequest) -> Result<String> {
    Ok(UUID
        .check_required("ImportId", request.import_id.as_deref())?
        .to_string())
}

/// A ListImports request that passed the member checks (the destination is resolved by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportListing {
    /// The key (creation time and ID) of the import after which the page starts.
    pub after: Option<String>,
    /// Imports per page.
    pub max_results: usize,
    /// Only imports into this store (ARN or ID, as written).
    pub destination: Option<String>,
    /// Only imports in this status.
    pub status: Option<ImportStatus>,
    /// The request's filters as its page tokens are bound to them.
    pub parameters: String,
}

/// Checks ListImports' members.
pub fn check_list(request: &ListImportsRequest) -> Result<ImportListing> {
    let max_results = request.max_results.unwrap_or(1000);
    validate::range(
        ErrorCode::InvalidParameterException,
        "MaxResults",
        max_results.into(),
        1,
        1000,
    )?;
    EVENT_DATA_STORE_REF.check_optional("Destination", request.destination.as_deref())?;
    let status = validate::enum_value::<ImportStatus>("ImportStatus", request.import_status)?;
    let parameters = format!("Destination={:?} ImportStatus={status:?}", request.destination);
    let after = match request.next_token.as_deref() {
        Some(token) => Some(paging::decode_bound_token("ListImports", &parameters, token)?),
        None => None,
    };
    Ok(ImportListing {
        after,
        max_results: max_results as usize,
        destination: request.destination.clone(),
        status,
        parameters,
    })
}

/// A ListImportFailures request that passed the member checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureListing {
    /// The import.
    pub import_id: String,
    /// The position (in the import's failure list) at which the page starts.
    pub start: usize,
    /// Failures per page.
    pub max_results: usize,
}

/// Checks ListImportFailures' members.
pub fn check_list_failures(request: &ListImportFailuresRequest) -> Result<FailureListing> {
    let import_id = UUID
        .check_required("ImportId", request.import_id.as_deref())?
        .to_string();
    let max_results = request.max_results.unwrap_or(1000);
    validate::range(
        ErrorCode::InvalidParameterException,
        "MaxResults",
        max_results.into(),
        1,
        1000,
    )?;
    let start = match request.next_token.as_deref() {
        Some(token) => {
            let after = paging::decode_token("ListImportFailures", token)?;
            let (id, position) = after.split_once('/').unwrap_or(("", ""));
            match position.parse::<usize>() {
                Ok(position) if id == import_id => position,
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidNextTokenException,
                        format!("the NextToken is not a token of the failures of import {import_id}"),
                    ));
                }
            }
        }
        None => 0,
    };
    Ok(FailureListing {
        import_id,
        start,
        max_results: max_results as usize,
    })
}

/// Returns the NextToken of the failures of `import_id` from `position` on.
pub fn failures_token(import_id: &str, position: usize) -> String {
    paging::encode_token("ListImportFailures", &format!("{import_id}/{position}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::{ImportSource, S3ImportSource};

    fn request(uri: &str, region: &str, role: &str) -> StartImportRequest {
        StartImportRequest {
            destinations: vec!["arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/abc".to_string()],
            import_source: Some(ImportSource {
                s3: Some(S3ImportSource {
                    s3_location_uri: Some(uri.to_string()),
                    s3_bucket_region: Some(region.to_string()),
                    s3_bucket_access_role_arn: Some(role.to_string()),
                }),
            }),
            ..Default::default()
        }
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/Admin";

    #[test]
    fn parses_the_source_uri() {
        assert_eq!(
            source_location("s3://trail-bucket").unwrap(),
            S3Location {
                bucket: "trail-bucket".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            source_location("s3://trail-bucket/logs/AWSLogs/").unwrap(),
            S3Location {
                bucket: "trail-bucket".into(),
                prefix: "logs/AWSLogs/".into()
            }
        );
        for bad in [
            "trail-bucket",
            "s3://",
            "s3://UPPER",
            "s3://a",
            "s3://bucket/../x",
            "https://bucket/x",
        ] {
            let error = source_location(bad).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidImportSourceException, "{bad}");
            assert!(error.message.contains("S3LocationUri"), "{}", error.message);
        }
    }

    #[test]
    fn checks_a_new_import() {
        let ImportStart::New(import) = check_start(&request("s3://b-1/p", "us-east-2", ROLE)).unwrap() else {
            panic!()
        };
        assert_eq!(import.location.prefix, "p/");
        assert_eq!(import.region, "us-east-2");
        let error = check_start(&request("s3://b-1/p", "mars", ROLE)).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameterException);
        assert!(error.message.contains("S3BucketRegion"), "{}", error.message);
        let error = check_start(&request("s3://b-1/p", "us-east-2", "arn:aws:iam::1:user/x")).unwrap_err();
        assert!(error.message.contains("S3BucketAccessRoleArn"), "{}", error.message);
        let mut two = request("s3://b-1/p", "us-east-2", ROLE);
        two.destinations.push("other".into());
        assert!(check_start(&two).unwrap_err().message.contains("Destinations"));
        let mut backwards = request("s3://b-1/p", "us-east-2", ROLE);
        backwards.start_event_time = Some(prost_types::Timestamp {
            seconds: 2_000_000,
            nanos: 0,
        });
        backwards.end_event_time = Some(prost_types::Timestamp {
            seconds: 1_000_000,
            nanos: 0,
        });
        assert!(check_start(&backwards).unwrap_err().message.contains("StartEventTime"));
        assert!(
            check_start(&StartImportRequest::default())
                .unwrap_err()
                .message
                .contains("Destinations")
        );
    }

    #[test]
    fn a_retry_is_the_import_id_alone() {
        let id = "0c2a6f0e-1111-4222-8333-444455556666";
        let retry = StartImportRequest {
            import_id: Some(id.into()),
            ..Default::default()
        };
        assert_eq!(check_start(&retry).unwrap(), ImportStart::Retry(id.into()));
        let mut mixed = request("s3://b-1/p", "us-east-2", ROLE);
        mixed.import_id = Some(id.into());
        assert_eq!(
            check_start(&mixed).unwrap_err().code,
            ErrorCode::InvalidParameterException
        );
        let bad = StartImportRequest {
            import_id: Some("nope".into()),
            ..Default::default()
        };
        assert!(check_start(&bad).unwrap_err().message.contains("ImportId"));
    }

    #[test]
    fn failure_tokens_belong_to_their_import() {
        let id = "0c2a6f0e-1111-4222-8333-444455556666";
        let token = failures_token(id, 5);
        let page = ListImportFailuresRequest {
            import_id: Some(id.into()),
            next_token: Some(token.clone()),
            max_results: None,
        };
        assert_eq!(check_list_failures(&page).unwrap().start, 5);
        let other = ListImportFailuresRequest {
            import_id: Some("1c2a6f0e-1111-4222-8333-444455556666".into()),
            next_token: Some(token),
            max_results: None,
        };
        assert_eq!(
            check_list_failures(&other).unwrap_err().code,
            ErrorCode::InvalidNextTokenException
        );
    }
}
