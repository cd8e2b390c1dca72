//! `QueryError`: what can go wrong with a query, for the service layer to turn into `ApiError`.

use datafusion::arrow::error::ArrowError;
use traillake_lake::LakeError;

/// A failure of a query operation.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement is not a query traillake runs: syntax, a table that is no store of the
    /// account, an unknown column or function, a type error found while planning.
    #[error("{0}")]
    InvalidStatement(String),
    /// A store the query names is pending deletion.
    #[error("event data store {0} is pending deletion")]
    InactiveEventDataStore(String),
    /// The account already has as many queries queued or running as it may.
    #[error("the account already has {0} queries queued or running; wait for one to end")]
    MaxConcurrentQueries(usize),
    /// No query of the account has the ID (or it is older than results are kept).
    #[error("query {0} not found")]
    QueryNotFound(String),
    /// CancelQuery on a query that already ended.
    #[error("query {0} is {1} and can no longer be cancelled")]
    InactiveQuery(String, &'static str),
    /// The bucket of a DeliveryS3Uri cannot be reached.
    #[error("the S3 bucket {0} of DeliveryS3Uri cannot be reached: {1}")]
    S3BucketDoesNotExist(String, String),
    /// The bucket of a DeliveryS3Uri refuses traillake's credentials.
    #[error("the S3 bucket {0} of DeliveryS3Uri refuses access to traillake's credentials")]
    InsufficientS3BucketPolicy(String),
    /// A signing key could not be made or read.
    #[error("signing key: {0}")]
    Signing(#[from] SigningError),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// DataFusion failed while preparing a query.
    #[error("query engine: {0}")]
    Engine(#[from] datafusion::error::DataFusionError),
    /// Object storage failed.
    #[error("object storage: {0}")]
    Storage(#[from] object_store::Error),
    /// Arrow failed on the results (keeping, reading or naming their columns).
    #[error("results: {0}")]
    Arrow(#[from] ArrowError),
    /// A value of query `.0`'s results could not be rendered as text.
    #[error("rendering a value of query {0}: {1}")]
    Render(String, #[source] ArrowError),
    /// A GetQueryResults token that is not a page token of query `.0`.
    #[error("the NextToken is not a page token of query {0}")]
    InvalidNextToken(String),
}

/// The result of a query operation.
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

impl QueryError {
    /// A table reference `written` that names no active event data store of the account.
    pub fn not_a_store(written: &str) -> Self {
        QueryError::InvalidStatement(format!("{written} in FROM is not an event data store of this account"))
    }
}

impl From<traillake_sql::InvalidStatement> for QueryError {
    fn from(error: traillake_sql::InvalidStatement) -> Self {
        QueryError::InvalidStatement(error.0)
    }
}

/// Why a key could not be made or read, or a signature could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// RSA failed to make a key.
    #[error("making a key: {0}")]
    Rsa(#[from] rsa::Error),
    /// The task that makes a key failed.
    #[error("making a key: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A public key could not be written or read as PKCS#1 DER.
    #[error("the public key is not PKCS#1 DER: {0}")]
    PublicKey(#[from] rsa::pkcs1::Error),
    /// A private key could not be written or read as PKCS#8 DER.
    #[error("the private key is not PKCS#8 DER: {0}")]
    PrivateKey(#[from] rsa::pkcs8::Error),
    /// A kept key file is not JSON of a key.
    #[error("the key file is unreadable: {0}")]
    File(#[from] serde_json::Error),
    /// A kept key is not base64.
    #[error("the key is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// A kept key's fingerprint is not its public key's.
    #[error("the fingerprint does not match the public key")]
    Fingerprint,
    /// A signature is not an RSA signature.
    #[error("the signature is malformed: {0}")]
    Malformed(rsa::signature::Error),
    /// A signature is not the key's signature of the message.
    #[error("the signature does not match the files' hashes")]
    Mismatch,
}
