//! The checks of the query operations' members (StartQuery, DescribeQuery, GetQueryResults,
//! CancelQuery, ListQueries), before any store is looked at.

use chrono::{DateTime, Utc};

use crate::Result;
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorCode};
use crate::paging;
use crate::s3_location::{S3Location, S3LocationProblem};
use crate::shapes::{
    GenerateQueryRequest, GetQueryResultsRequest, ListQueriesRequest, QueryRequest, QueryStatus, StartQueryRequest,
};
use crate::validate::{self, Pattern, StringRule};
use crate::wire::utc;

/// The longest statement StartQuery takes, in characters.
pub const MAX_STATEMENT_CHARS: usize = 10_000;
/// Rows per GetQueryResults page when MaxQueryResults is absent.
pub const DEFAULT_PAGE_ROWS: usize = 1000;

static UUID_PATTERN: Pattern = Pattern::new(r"^[a-f0-9\-]+$");
/// `UUID`: a query or import ID, 36 characters.
pub static UUID: StringRule = StringRule {
    min: 36,
    max: 36,
    pattern: Some(&UUID_PATTERN),
    code: ErrorCode::InvalidParameterException,
};
static DIGITS: Pattern = Pattern::new(r"\d+");
/// `AccountId`: 12..16 digits.
pub static ACCOUNT_ID: StringRule = StringRule {
    min: 12,
    max: 16,
    pattern: Some(&DIGITS),
    code: ErrorCode::InvalidParameterException,
};
static DELIVERY_S3_URI_PATTERN: Pattern = Pattern::new(r"s3://[a-z0-9][\.\-a-z0-9]{1,61}[a-z0-9](/.*)?");
/// `DeliveryS3Uri`: `s3://bucket[/prefix]`, up to 1024 characters.
pub static DELIVERY_S3_URI: StringRule = StringRule {
    min: 0,
    max: 1024,
    pattern: Some(&DELIVERY_S3_URI_PATTERN),
    code: ErrorCode::InvalidS3BucketNameException,
};
static QUERY_ALIAS_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z][a-zA-Z0-9._\-]*$");
static QUERY_ALIAS: StringRule = StringRule {
    min: 1,
    max: 256,
    pattern: Some(&QUERY_ALIAS_PATTERN),
    code: ErrorCode::InvalidParameterException,
};
static REFRESH_ID_PATTERN: Pattern = Pattern::new(r"\d+");
static REFRESH_ID: StringRule = StringRule {
    min: 10,
    max: 20,
    pattern: Some(&REFRESH_ID_PATTERN),
    code: ErrorCode::InvalidParameterException,
};

/// What a StartQuery request runs: a statement, or a dashboard widget's query by its alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuerySource {
    /// The statement as sent.
    Statement(String),
    /// A widget's QueryAlias; the service finds its statement.
    Alias(String),
}

/// A StartQuery request that passed the member checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuery {
    /// What it runs.
    pub source: QuerySource,
    /// The values of the statement's `?` placeholders, in order.
    pub parameters: Vec<String>,
    /// The owner account named by the caller, if any.
    pub owner_account_id: Option<String>,
    /// `s3://bucket[/prefix]` to deliver the results to, checked.
    pub delivery_s3_uri: Option<String>,
}

/// Checks StartQuery's members: `QueryStatement` or `QueryAlias` (a dashboard widget's), never
/// both, and the values of its placeholders.
pub fn check_start(request: &StartQueryRequest) -> Result<NewQuery> {
    QUERY_ALIAS.check_optional("QueryAlias", request.query_alias.as_deref())?;
    if !request.query_parameters.is_empty() {
        crate::dashboards::check_query_parameters(&request.query_parameters)?;
    }
    ACCOUNT_ID.check_optional(
        "EventDataStoreOwnerAccountId",
        request.event_data_store_owner_account_id.as_deref(),
    )?;
    let source = match (request.query_statement.as_deref(), request.query_alias.as_deref()) {
        (Some(statement), None) => {
            crate::dashboards::check_statement_length("QueryStatement", statement)?;
            QuerySource::Statement(statement.to_string())
        }
        (None, Some(alias)) => QuerySource::Alias(alias.to_string()),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterException,
                "give QueryStatement or QueryAlias, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::missing(
                ErrorCode::InvalidParameterException,
                "QueryStatement",
            ));
        }
    };
    if let Some(uri) = request.delivery_s3_uri.as_deref() {
        check_delivery_uri(uri)?;
    }
    Ok(NewQuery {
        source,
        parameters: request.query_parameters.clone(),
        owner_account_id: request.event_data_store_owner_account_id.clone(),
        delivery_s3_uri: request.delivery_s3_uri.clone(),
    })
}

/// Checks a `DeliveryS3Uri`: the model's pattern and a bucket name S3 allows
/// (InvalidS3BucketNameException), then a key prefix that is an S3 location's and, as the keys
/// of delivered files are built on it, of at most 200 characters without backslashes or control
/// characters (InvalidS3PrefixException).
fn check_delivery_uri(uri: &str) -> Result<()> {
    DELIVERY_S3_URI.check("DeliveryS3Uri", uri)?;
    let (code, constraint) = match S3Location::read(uri) {
        Ok(location) => {
            let prefix = location.prefix.trim_end_matches('/');
            if prefix.chars().count() <= 200 && !prefix.chars().any(|c| c.is_control() || c == '\\') {
                return Ok(());
            }
            (
                ErrorCode::InvalidS3PrefixException,
                "the key prefix must be at most 200 characters, without backslashes or control characters",
            )
        }
        Err(problem @ S3LocationProblem::Prefix) => (ErrorCode::InvalidS3PrefixException, problem.reason()),
        Err(problem) => (ErrorCode::InvalidS3BucketNameException, problem.reason()),
    };
    Err(ApiError::validation(code, "DeliveryS3Uri", uri, constraint))
}

/// The query DescribeQuery or CancelQuery names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryRef {
    /// By its QueryId.
    Id(String),
    /// The latest query of a dashboard widget's alias, in one refresh when `refresh_id` is given.
    Alias {
        /// The widget's QueryAlias.
        alias: String,
        /// The refresh's RefreshId.
        refresh_id: Option<String>,
    },
}

/// Checks the members DescribeQuery and CancelQuery share; returns the query they name: a
/// QueryId, or a QueryAlias with an optional RefreshId.
pub fn check_query_request(request: &QueryRequest) -> Result<QueryRef> {
    QUERY_ALIAS.check_optional("QueryAlias", request.query_alias.as_deref())?;
    REFRESH_ID.check_optional("RefreshId", request.refresh_id.as_deref())?;
    ACCOUNT_ID.check_optional(
        "EventDataStoreOwnerAccountId",
        request.event_data_store_owner_account_id.as_deref(),
    )?;
    let invalid = |message: &str| ApiError::new(ErrorCode::InvalidParameterException, message);
    match (request.query_id.as_deref(), request.query_alias.as_deref()) {
        (Some(_), Some(_)) => Err(invalid("give QueryId, or QueryAlias (with RefreshId), not both")),
        (Some(id), None) if request.refresh_id.is_none() => {
            Ok(QueryRef::Id(UUID.check("QueryId", id).map(|()| id.to_string())?))
        }
        (Some(_), None) => Err(invalid("RefreshId is given only with QueryAlias")),
        (None, Some(alias)) => Ok(QueryRef::Alias {
            alias: alias.to_string(),
            refresh_id: request.refresh_id.clone(),
        }),
        (None, None) if request.refresh_id.is_some() => Err(invalid("RefreshId is given only with QueryAlias")),
        (None, None) => Err(ApiError::missing(ErrorCode::InvalidParameterException, "QueryId")),
    }
}

/// A GetQueryResults page request that passed the member checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsPage {
    /// The query.
    pub query_id: String,
    /// The token of the page, still to be checked against the query.
    pub next_token: Option<String>,
    /// Rows per page.
    pub max_rows: usize,
}

/// Checks GetQueryResults' members.
pub fn check_results(request: &GetQueryResultsRequest) -> Result<ResultsPage> {
    ACCOUNT_ID.check_optional(
        "EventDataStoreOwnerAccountId",
        request.event_data_store_owner_account_id.as_deref(),
    )?;
    let query_id = UUID.check_required("QueryId", request.query_id.as_deref())?.to_string();
    let max_rows = request.max_query_results.unwrap_or(DEFAULT_PAGE_ROWS as i32);
    validate::range(
        ErrorCode::InvalidMaxResultsException,
        "MaxQueryResults",
        max_rows.into(),
        1,
        1000,
    )?;
    if let Some(token) = request.next_token.as_deref() {
        validate::PAGINATION_TOKEN.check("NextToken", token)?;
    }
    Ok(ResultsPage {
        query_id,
        next_token: request.next_token.clone(),
        max_rows: max_rows as usize,
    })
}

/// A ListQueries request that passed the member checks (the store is resolved by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryListing {
    /// The key after which the page starts.
    pub after: Option<String>,
    /// Queries per page.
    pub max_results: usize,
    /// Queries created at or after this time.
    pub start: Option<DateTime<Utc>>,
    /// Queries created at or before this time.
    pub end: Option<DateTime<Utc>>,
    /// Only queries in this status.
    pub status: Option<QueryStatus>,
    /// The request's filters as its page tokens are bound to them.
    pub parameters: String,
}

/// Checks ListQueries' members but EventDataStore.
pub fn check_list(request: &ListQueriesRequest) -> Result<QueryListing> {
    let max_results = request.max_results.unwrap_or(1000);
    validate::range(
        ErrorCode::InvalidMaxResultsException,
        "MaxResults",
        max_results.into(),
        1,
        1000,
    )?;
    let start = request.start_time.as_ref().and_then(utc);
    let end = request.end_time.as_ref().and_then(utc);
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(ApiError::new(
            ErrorCode::InvalidDateRangeException,
            format!("StartTime {start} is after EndTime {end}"),
        ));
    }
    let status = match validate::enum_value::<QueryStatus>("QueryStatus", request.query_status) {
        Ok(status) => status,
        Err(error) => {
            return Err(ApiError {
                code: ErrorCode::InvalidQueryStatusException,
                ..error
            });
        }
    };
    let parameters = format!(
        "EventDataStore={:?} StartTime={start:?} EndTime={end:?} QueryStatus={status:?}",
        request.event_data_store
    );
    let after = match request.next_token.as_deref() {
        Some(token) => Some(paging::decode_bound_token("ListQueries", &parameters, token)?),
        None => None,
    };
    Ok(QueryListing {
        after,
        max_results: max_results as usize,
        start,
        end,
        status,
        parameters,
    })
}

/// `Prompt`: 3..500 printable ASCII characters and newlines.
static PROMPT_PATTERN: Pattern = Pattern::new(r"^[ -~\n]*$");
static PROMPT: StringRule = StringRule {
    min: 3,
    max: 500,
    pattern: Some(&PROMPT_PATTERN),
    code: ErrorCode::InvalidParameterException,
};

/// Returns the store ID and the prompt of a GenerateQuery request: exactly one store.
pub fn check_generate(ctx: &RequestContext, request: &GenerateQueryRequest) -> Result<(String, String)> {
    validate::list_length(
        ErrorCode::InvalidParameterException,
        "EventDataStores",
        request.event_data_stores.len(),
        1,
        1,
    )?;
    let id = crate::arn::event_data_store_id(
        ctx,
        "EventDataStores",
        request.event_data_stores.first().map(String::as_str),
    )?;
    let prompt = PROMPT.check_required("Prompt", request.prompt.as_deref())?;
    Ok((id, prompt.to_string()))
}
