//! `QueryError`: what can go wrong with a query, for the service layer to turn into `ApiError`.

use datafusion::arrow::error::ArrowError;
use traillake_lake::LakeError;
pub use traillake_lake::signing_keys::SigningError;

/// A failure of a query operation.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement is not a query traillake runs: syntax, a table that is no store of the
    /// account, an unknown column or function, a type error found while planning.
    #[error("{0}")]
    InvalidStatement(String),
    /// A query of another account than the stores' names a store that its owner does not share
    /// with the caller, or that does not exist: the two are told apart by nothing.
    #[error("{0} is not an event data store that its owner account shares with you")]
    StoreNotShared(String),
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
