//! `ApiError` as a gRPC status: the AWS message as the status message, the AWS error code in the
//! trailing metadata `x-amzn-errortype` (the header name the REST-JSON wire uses), and a status
//! code a gRPC client can act on.

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use traillake_api::{ApiError, ErrorCode};

/// The metadata that carries the AWS error code of a failed call.
pub(super) const ERROR_TYPE: &str = "x-amzn-errortype";

/// Returns the gRPC status of an error.
pub(super) fn from_api_error(error: &ApiError) -> Status {
    let mut status = Status::new(code(error.code), error.message.clone());
    status
        .metadata_mut()
        .insert(ERROR_TYPE, MetadataValue::from_static(error.code.as_str()));
    status
}

/// Returns the gRPC status code of an AWS error code. Every code is listed, so that a new one
/// has to be placed.
pub(super) fn code(code: ErrorCode) -> Code {
    use ErrorCode::*;
    match code {
        EventDataStoreNotFoundException
        | AccountNotFoundException
        | ChannelNotFoundException
        | ChannelNotFound
        | ImportNotFoundException
        | QueryIdNotFoundException
        | ResourceNotFoundException
        | ResourcePolicyNotFoundException
        | S3BucketDoesNotExistException
        | TrailNotFoundException
        | TrailNotProvidedException
        | KmsKeyNotFoundException => Code::NotFound,
        EventDataStoreAlreadyExistsException
        | ChannelAlreadyExistsException
        | TrailAlreadyExistsException
        | AccountRegisteredException => Code::AlreadyExists,
        MaxConcurrentQueriesException
        | EventDataStoreMaxLimitExceededException
        | ChannelMaxLimitExceededException
        | MaximumNumberOfTrailsExceededException
        | ServiceQuotaExceededException
        | DelegatedAdminAccountLimitExceededException
        | TagsLimitExceededException
        | ThrottlingException
        | RequestEntityTooLargeException => Code::ResourceExhausted,
        AccountHasOngoingImportException
        | ChannelExistsForEDSException
        | EventDataStoreFederationEnabledException
        | EventDataStoreHasOngoingImportException
        | EventDataStoreTerminationProtectedException
        | InactiveEventDataStoreException
        | InactiveQueryException
        | InvalidEventDataStoreStatusException
        | InvalidQueryStatusException
        | OperationNotPermittedException
        | OrganizationsNotInUseException
        | OrganizationNotInAllFeaturesModeException
        | AccountNotRegisteredException
        | CannotDelegateManagementAccountException
        | InvalidHomeRegionException
        | InsightNotEnabledException
        | KmsException
        | KmsKeyDisabledException
        | CloudWatchLogsDeliveryUnavailableException => Code::FailedPrecondition,
        ConflictException | ConcurrentModificationException => Code::Aborted,
        AccessDeniedException
        | ChannelInsufficientPermission
        | InsufficientS3BucketPolicyException
        | InsufficientEncryptionPolicyException
        | NotOrganizationManagementAccountException
        | NotOrganizationMasterAccountException => Code::PermissionDenied,
        IncompleteSignatureException
        | InvalidSignatureException
        | MissingAuthenticationTokenException
        | UnrecognizedClientException => Code::Unauthenticated,
        UnknownOperationException | UnsupportedOperationException => Code::Unimplemented,
        InternalFailure => Code::Internal,
        ServiceUnavailable => Code::Unavailable,
        SerializationException
        | ValidationException
        | ChannelARNInvalidException
        | CloudTrailARNInvalidException
        | EventDataStoreARNInvalidException
        | InvalidDateRangeException
        | InvalidQueryStatementException
        | GenerateResponseException
        | InvalidS3BucketNameException
        | InvalidSourceException
        | InvalidS3PrefixException
        | InvalidSnsTopicNameException
        | InvalidInsightSelectorsException
        | InvalidCloudWatchLogsLogGroupArnException
        | InvalidCloudWatchLogsRoleArnException
        | InvalidParameterCombinationException
        | InvalidEventCategoryException
        | InvalidEventDataStoreCategoryException
        | InvalidLookupAttributesException
        | InvalidEventSelectorsException
        | InvalidImportSourceException
        | InvalidKmsKeyIdException
        | InvalidMaxResultsException
        | InvalidNextTokenException
        | InvalidParameterException
        | InvalidTagParameterException
        | InvalidTimeRangeException
        | InvalidTokenException
        | InvalidTrailNameException
        | ResourceARNNotValidException
        | ResourcePolicyNotValidException
        | ResourceTypeNotSupportedException
        | ChannelUnsupportedSchema
        | DuplicatedAuditEventId
        | InvalidChannelARN => Code::InvalidArgument,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_the_aws_code_and_message() {
        let error = ApiError::new(ErrorCode::MaxConcurrentQueriesException, "too many");
        let status = from_api_error(&error);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "too many");
        assert_eq!(
            status.metadata().get(ERROR_TYPE).unwrap(),
            "MaxConcurrentQueriesException"
        );
        assert_eq!(code(ErrorCode::QueryIdNotFoundException), Code::NotFound);
        assert_eq!(code(ErrorCode::InvalidParameterException), Code::InvalidArgument);
    }
}
