//! The conversion of lake and query errors into `ApiError` at the service boundary.

use traillake_api::{ApiError, ErrorCode};
use traillake_ingest::channels::ChannelError;
use traillake_ingest::imports::ImportError;
use traillake_lake::LakeError;
use traillake_lake::keys::KeyProblem;
use traillake_query::QueryError;

/// Returns the `ApiError` of a KMS key that cannot be used: `KmsException` when no key service is
/// configured, `KmsKeyNotFoundException`, `KmsKeyDisabledException`.
pub(crate) fn key_error(problem: KeyProblem) -> ApiError {
    let code = match problem {
        KeyProblem::NotConfigured(_) => ErrorCode::KmsException,
        KeyProblem::NotFound(_) => ErrorCode::KmsKeyNotFoundException,
        KeyProblem::Disabled(_) => ErrorCode::KmsKeyDisabledException,
    };
    ApiError::new(code, format!("KmsKeyId: {problem}"))
}

/// Returns the `ApiError` of a lake error; faults of the server are logged and answered as
/// `InternalFailure` without their detail.
fn api_error(error: LakeError) -> ApiError {
    let code = match &error {
        LakeError::EventDataStoreNotFound(_) => ErrorCode::EventDataStoreNotFoundException,
        LakeError::EventDataStoreAlreadyExists(_) => ErrorCode::EventDataStoreAlreadyExistsException,
        LakeError::EventDataStoreMaxLimitExceeded(_) => ErrorCode::EventDataStoreMaxLimitExceededException,
        LakeError::InactiveEventDataStore(_) => ErrorCode::InactiveEventDataStoreException,
        LakeError::TerminationProtected(_) => ErrorCode::EventDataStoreTerminationProtectedException,
        LakeError::AccountRegistered(_) => ErrorCode::AccountRegisteredException,
        LakeError::AccountNotRegistered(_) => ErrorCode::AccountNotRegisteredException,
        LakeError::DelegatedAdminLimitExceeded(_) => ErrorCode::DelegatedAdminAccountLimitExceededException,
        LakeError::FederationEnabled(_) => ErrorCode::EventDataStoreFederationEnabledException,
        LakeError::InvalidStatus(_) => ErrorCode::InvalidEventDataStoreStatusException,
        LakeError::InvalidCategory(_) => ErrorCode::InvalidEventDataStoreCategoryException,
        LakeError::InvalidParameter(_) => ErrorCode::InvalidParameterException,
        LakeError::InvalidEventSelectors(_) => ErrorCode::InvalidEventSelectorsException,
        LakeError::TagsLimitExceeded(_) => ErrorCode::TagsLimitExceededException,
        LakeError::ChannelNotFound(_) => ErrorCode::ChannelNotFoundException,
        LakeError::ChannelAlreadyExists(_) => ErrorCode::ChannelAlreadyExistsException,
        LakeError::ChannelMaxLimitExceeded(_) => ErrorCode::ChannelMaxLimitExceededException,
        LakeError::ChannelExistsForEventDataStore { .. } => ErrorCode::ChannelExistsForEDSException,
        LakeError::InvalidInsightSelectors(_) => ErrorCode::InvalidInsightSelectorsException,
        LakeError::TrailNotFound(_) => ErrorCode::TrailNotFoundException,
        LakeError::TrailAlreadyExists(_) => ErrorCode::TrailAlreadyExistsException,
        LakeError::TrailMaxLimitExceeded(_) => ErrorCode::MaximumNumberOfTrailsExceededException,
        LakeError::ResourcePolicyNotFound(_) => ErrorCode::ResourcePolicyNotFoundException,
        LakeError::DashboardNotFound(_) => ErrorCode::ResourceNotFoundException,
        LakeError::DashboardConflict(_) => ErrorCode::ConflictException,
        LakeError::ServiceQuotaExceeded(_) => ErrorCode::ServiceQuotaExceededException,
        LakeError::Kms(problem) => return key_error(problem.clone()),
        _ => {
            tracing::error!(%error, "lake operation failed");
            return ApiError::internal();
        }
    };
    ApiError::new(code, error.to_string())
}

/// Converts a lake result into an API result.
pub(crate) trait IntoApi<T> {
    /// Returns the result with a lake error turned into its `ApiError`.
    fn api(self) -> Result<T, ApiError>;
}

impl<T> IntoApi<T> for Result<T, traillake_lake::signing_keys::SigningError> {
    fn api(self) -> Result<T, ApiError> {
        self.map_err(|error| api_error(LakeError::from(error)))
    }
}

impl<T> IntoApi<T> for Result<T, LakeError> {
    fn api(self) -> Result<T, ApiError> {
        self.map_err(api_error)
    }
}

/// Returns the `ApiError` of a query error; faults of the server are logged and answered as
/// `InternalFailure` without their detail.
fn query_api_error(error: QueryError) -> ApiError {
    let code = match &error {
        QueryError::InvalidStatement(_) => ErrorCode::InvalidQueryStatementException,
        QueryError::InactiveEventDataStore(_) => ErrorCode::InactiveEventDataStoreException,
        QueryError::StoreNotShared(_) => ErrorCode::EventDataStoreNotFoundException,
        QueryError::MaxConcurrentQueries(_) => ErrorCode::MaxConcurrentQueriesException,
        QueryError::QueryNotFound(_) => ErrorCode::QueryIdNotFoundException,
        QueryError::InactiveQuery(..) => ErrorCode::InactiveQueryException,
        QueryError::S3BucketDoesNotExist(..) => ErrorCode::S3BucketDoesNotExistException,
        QueryError::InsufficientS3BucketPolicy(_) => ErrorCode::InsufficientS3BucketPolicyException,
        QueryError::InvalidNextToken(_) => ErrorCode::InvalidNextTokenException,
        // A store's key the key service lacks or has disabled: CloudTrail cannot use the key.
        QueryError::Lake(LakeError::Kms(_)) => ErrorCode::InsufficientEncryptionPolicyException,
        QueryError::Lake(_)
        | QueryError::Engine(_)
        | QueryError::Storage(_)
        | QueryError::Signing(_)
        | QueryError::Arrow(_)
        | QueryError::Render(..) => {
            tracing::error!(%error, "query operation failed");
            return ApiError::internal();
        }
    };
    ApiError::new(code, error.to_string())
}

impl<T> IntoApi<T> for Result<T, QueryError> {
    fn api(self) -> Result<T, ApiError> {
        self.map_err(query_api_error)
    }
}

/// Returns the `ApiError` of an import error; faults of the server are logged and answered as
/// `InternalFailure` without their detail.
pub(crate) fn import_api_error(error: ImportError) -> ApiError {
    if let ImportError::Lake(error) = error {
        return api_error(error);
    }
    let code = match &error {
        ImportError::NotFound(_) => ErrorCode::ImportNotFoundException,
        ImportError::AccountHasOngoingImport(_) => ErrorCode::AccountHasOngoingImportException,
        ImportError::InvalidSource(_) => ErrorCode::InvalidImportSourceException,
        ImportError::InvalidCategory(_) => ErrorCode::InvalidEventDataStoreCategoryException,
        ImportError::InvalidParameter(_) => ErrorCode::InvalidParameterException,
        ImportError::Lake(_) | ImportError::Storage(_) | ImportError::Corrupt { .. } => {
            tracing::error!(%error, "import operation failed");
            return ApiError::internal();
        }
    };
    ApiError::new(code, error.to_string())
}

impl<T> IntoApi<T> for Result<T, ImportError> {
    fn api(self) -> Result<T, ApiError> {
        self.map_err(import_api_error)
    }
}

/// Returns the `ApiError` of a PutAuditEvents failure, in the CloudTrail Data API's codes.
fn channel_api_error(error: ChannelError) -> ApiError {
    let code = match &error {
        ChannelError::NotFound(_) => ErrorCode::ChannelNotFound,
        ChannelError::InsufficientPermission(_) => ErrorCode::ChannelInsufficientPermission,
        ChannelError::UnsupportedSchema(_) => ErrorCode::ChannelUnsupportedSchema,
        ChannelError::Lake(_) => {
            tracing::error!(%error, "PutAuditEvents failed");
            return ApiError::internal();
        }
    };
    ApiError::new(code, error.to_string())
}

impl<T> IntoApi<T> for Result<T, ChannelError> {
    fn api(self) -> Result<T, ApiError> {
        self.map_err(channel_api_error)
    }
}
