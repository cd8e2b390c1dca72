//! `ApiError`: what every operation answers when it fails, with the AWS error code, the HTTP status
//! and the message, the same for the JSON gateway and gRPC.

use std::fmt;

macro_rules! error_codes {
    ($($code:ident),* $(,)?) => {
        /// The AWS error codes traillake answers with: the botocore model's exceptions of the
        /// CloudTrail and CloudTrail Data APIs, and the unmodelled codes of the AWS JSON protocol.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $(#[doc = concat!("`", stringify!($code), "`.")] $code),* }

        impl ErrorCode {
            /// Returns the code as it travels in `__type` and `X-Amzn-ErrorType`.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$code => stringify!($code)),* }
            }
        }
    };
}

error_codes!(
    // Unmodelled codes of the AWS JSON protocol.
    SerializationException,
    UnknownOperationException,
    InternalFailure,
    ServiceUnavailable,
    RequestEntityTooLargeException,
    ValidationException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
    // Modelled CloudTrail exceptions.
    AccessDeniedException,
    AccountHasOngoingImportException,
    AccountNotFoundException,
    AccountNotRegisteredException,
    AccountRegisteredException,
    CannotDelegateManagementAccountException,
    DelegatedAdminAccountLimitExceededException,
    NotOrganizationManagementAccountException,
    NotOrganizationMasterAccountException,
    OrganizationNotInAllFeaturesModeException,
    IncompleteSignatureException,
    InvalidSignatureException,
    ChannelARNInvalidException,
    ChannelAlreadyExistsException,
    ChannelExistsForEDSException,
    ChannelMaxLimitExceededException,
    ChannelNotFoundException,
    CloudTrailARNInvalidException,
    ConcurrentModificationException,
    GenerateResponseException,
    ConflictException,
    EventDataStoreARNInvalidException,
    EventDataStoreAlreadyExistsException,
    EventDataStoreFederationEnabledException,
    EventDataStoreHasOngoingImportException,
    EventDataStoreMaxLimitExceededException,
    EventDataStoreNotFoundException,
    EventDataStoreTerminationProtectedException,
    InactiveEventDataStoreException,
    ImportNotFoundException,
    InactiveQueryException,
    InsufficientS3BucketPolicyException,
    InvalidDateRangeException,
    InvalidQueryStatementException,
    InvalidQueryStatusException,
    InvalidS3BucketNameException,
    InvalidSourceException,
    InvalidS3PrefixException,
    MaxConcurrentQueriesException,
    QueryIdNotFoundException,
    S3BucketDoesNotExistException,
    InvalidEventCategoryException,
    InvalidEventDataStoreCategoryException,
    InvalidEventDataStoreStatusException,
    InvalidEventSelectorsException,
    InvalidImportSourceException,
    InvalidKmsKeyIdException,
    InsufficientEncryptionPolicyException,
    KmsException,
    KmsKeyDisabledException,
    KmsKeyNotFoundException,
    InvalidLookupAttributesException,
    InvalidMaxResultsException,
    InvalidNextTokenException,
    InvalidParameterException,
    InvalidTagParameterException,
    InvalidTimeRangeException,
    InvalidTokenException,
    InvalidTrailNameException,
    InvalidHomeRegionException,
    InvalidInsightSelectorsException,
    InsightNotEnabledException,
    InvalidSnsTopicNameException,
    InvalidCloudWatchLogsLogGroupArnException,
    InvalidCloudWatchLogsRoleArnException,
    CloudWatchLogsDeliveryUnavailableException,
    InvalidParameterCombinationException,
    MaximumNumberOfTrailsExceededException,
    TrailAlreadyExistsException,
    TrailNotFoundException,
    TrailNotProvidedException,
    OperationNotPermittedException,
    OrganizationsNotInUseException,
    ResourceARNNotValidException,
    ResourceNotFoundException,
    ResourcePolicyNotFoundException,
    ResourcePolicyNotValidException,
    ResourceTypeNotSupportedException,
    ServiceQuotaExceededException,
    TagsLimitExceededException,
    ThrottlingException,
    UnsupportedOperationException,
    // Modelled CloudTrail Data exceptions (PutAuditEvents).
    ChannelInsufficientPermission,
    ChannelNotFound,
    ChannelUnsupportedSchema,
    DuplicatedAuditEventId,
    InvalidChannelARN,
);

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed operation: the AWS error code, the HTTP status and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The AWS error code.
    pub code: ErrorCode,
    /// The HTTP status: 400 for every caller mistake, 5xx only for faults of the server.
    pub status: u16,
    /// The message for the caller; never holds internal details.
    pub message: String,
}

impl ApiError {
    /// Returns an error with the status AWS answers `code` with: the `httpError` of AWS's Smithy
    /// model of CloudTrail (`reference/error-status.md`), 400 for every other modelled error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        use ErrorCode::*;
        let status = match code {
            InternalFailure => 500,
            ServiceUnavailable => 503,
            RequestEntityTooLargeException => 413,
            AccountNotFoundException
            | ChannelNotFoundException
            | EventDataStoreNotFoundException
            | ImportNotFoundException
            | OrganizationsNotInUseException
            | QueryIdNotFoundException
            | ResourcePolicyNotFoundException
            | S3BucketDoesNotExistException
            | TrailNotFoundException
            | TrailNotProvidedException => 404,
            AccessDeniedException
            | NotOrganizationManagementAccountException
            | InsufficientS3BucketPolicyException
            | MaximumNumberOfTrailsExceededException
            | MissingAuthenticationTokenException
            | UnrecognizedClientException
            | InvalidSignatureException => 403,
            ConflictException => 409,
            MaxConcurrentQueriesException | ThrottlingException => 429,
            _ => 400,
        };
        Self {
            code,
            status,
            message: message.into(),
        }
    }

    /// Returns an internal failure; the detail belongs in the log, not in the response.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::InternalFailure,
            "an internal error occurred; see the server log",
        )
    }

    /// Returns a constraint violation in AWS's words: `1 validation error detected: Value 'x' at
    /// 'Name' failed to satisfy constraint: Member must ...`.
    pub fn validation(code: ErrorCode, field: &str, value: &str, constraint: &str) -> Self {
        Self::new(
            code,
            format!(
                "1 validation error detected: Value '{}' at '{field}' failed to satisfy constraint: {constraint}",
                shorten(value)
            ),
        )
    }

    /// Returns the error for a required member that is absent.
    pub fn missing(code: ErrorCode, field: &str) -> Self {
        Self::new(
            code,
            format!(
                "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ),
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Returns a value short enough to quote in a message.
fn shorten(value: &str) -> String {
    const LIMIT: usize = 80;
    if value.chars().count() <= LIMIT {
        return value.to_string();
    }
    let head: String = value.chars().take(LIMIT).collect();
    format!("{head}... ({} characters)", value.chars().count())
}

/// The result of a check or a decoding of the API.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;
