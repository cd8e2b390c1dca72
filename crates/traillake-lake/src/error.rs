//! `LakeError`: what can go wrong in the lake, for the service layer to turn into `ApiError`.

/// A failure of a lake operation.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// No event data store of the account has the ID.
    #[error("event data store {0} not found")]
    EventDataStoreNotFound(String),
    /// Another store of the account has the name.
    #[error("an event data store named {0} already exists")]
    EventDataStoreAlreadyExists(String),
    /// The account has as many active stores as it may.
    #[error("the account already has the maximum of {0} event data stores")]
    EventDataStoreMaxLimitExceeded(usize),
    /// The store is pending deletion.
    #[error("event data store {0} is pending deletion")]
    InactiveEventDataStore(String),
    /// The store has termination protection on.
    #[error("event data store {0} has termination protection enabled; turn it off before deleting the store")]
    TerminationProtected(String),
    /// The store is federated (or its federation is changing), which the operation does not allow.
    #[error("{0}")]
    FederationEnabled(String),
    /// The account is already a delegated administrator.
    #[error("account {0} is already a CloudTrail delegated administrator of the organization")]
    AccountRegistered(String),
    /// The account is not a delegated administrator.
    #[error("account {0} is not a CloudTrail delegated administrator of the organization")]
    AccountNotRegistered(String),
    /// The organization has as many delegated administrators as it may.
    #[error("the organization already has the maximum of {0} CloudTrail delegated administrators")]
    DelegatedAdminLimitExceeded(usize),
    /// A KMS key cannot be used: no key service, no such key, or a disabled key.
    #[error(transparent)]
    Kms(#[from] crate::keys::KeyProblem),
    /// The store's status does not allow the operation.
    #[error("{0}")]
    InvalidStatus(String),
    /// The store's kind of events does not allow the operation.
    #[error("{0}")]
    InvalidCategory(String),
    /// A change contradicts the store's current settings.
    #[error("{0}")]
    InvalidParameter(String),
    /// New selectors contradict the store's kind.
    #[error("{0}")]
    InvalidEventSelectors(String),
    /// No channel of the account has the ID.
    #[error("channel {0} not found")]
    ChannelNotFound(String),
    /// Another channel of the account has the name or the source.
    #[error("{0}")]
    ChannelAlreadyExists(String),
    /// The account has as many channels as it may.
    #[error("the account already has the maximum of {0} channels")]
    ChannelMaxLimitExceeded(usize),
    /// A channel delivers to the store.
    #[error(
        "event data store {store} is the destination of channel {channel}; delete the channel or change its destinations first"
    )]
    ChannelExistsForEventDataStore {
        /// The store.
        store: String,
        /// A channel that names it.
        channel: String,
    },
    /// A signing key could not be made or read.
    #[error(transparent)]
    Signing(#[from] crate::signing_keys::SigningError),
    /// Insights selectors a source cannot take.
    #[error("{0}")]
    InvalidInsightSelectors(String),
    /// No trail of the account has the name.
    #[error("Unknown trail: {0} for the user")]
    TrailNotFound(String),
    /// Another trail of the account has the name.
    #[error("a trail named {0} already exists")]
    TrailAlreadyExists(String),
    /// The account has as many trails as it may.
    #[error("the account already has the maximum of {0} trails")]
    TrailMaxLimitExceeded(usize),
    /// No dashboard of the account has the name.
    #[error("dashboard {0} not found")]
    DashboardNotFound(String),
    /// A dashboard change conflicts with what exists (its name, termination protection).
    #[error("{0}")]
    DashboardConflict(String),
    /// The account has as many of a resource as it may.
    #[error("{0}")]
    ServiceQuotaExceeded(String),
    /// The resource has no resource policy.
    #[error("{0} has no resource policy")]
    ResourcePolicyNotFound(String),
    /// A resource would carry more tags than allowed.
    #[error("{0}")]
    TagsLimitExceeded(String),
    /// The root cannot be used.
    #[error("invalid lake root: {0}")]
    InvalidRoot(String),
    /// Another traillake server holds the root.
    #[error("{0}")]
    RootInUse(String),
    /// This server no longer holds the root's lock.
    #[error("lost the lock on the lake root: {0}")]
    LockLost(String),
    /// Object storage failed.
    #[error("object storage: {0}")]
    Storage(#[from] object_store::Error),
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A stored document could not be read.
    #[error("{context}: {source}")]
    Corrupt {
        /// Which document.
        context: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The Delta Lake table of a store failed.
    #[error("table: {0}")]
    Table(#[from] deltalake::DeltaTableError),
    /// Building or reshaping Arrow data failed.
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// A request to the lake makes no sense (a caller's mistake, not the data's).
    #[error("{0}")]
    Invalid(String),
}

/// The result of a lake operation.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;
