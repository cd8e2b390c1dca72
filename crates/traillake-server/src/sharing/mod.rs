//! The Delta Sharing endpoint (delta-io/delta-sharing `PROTOCOL.md`) under `/delta-sharing`: the
//! federated stores (EnableFederation) as tables other engines read without access to the lake
//! root: Spark, pandas and the `delta-sharing` Python client, Power BI, DuckDB's and Trino's
//! community connectors. One share, `aws_cloudtrail`, with one schema, `default`, whose tables
//! are the store IDs a recipient's role was federated with ([`recipients`]). Answers use the
//! protocol's `parquet` response format: the table's protocol and metadata, then one `file` line
//! per data file of the table's latest version, each a URL this server signs and serves
//! ([`files`]). Predicate and limit hints are ignored (the protocol makes them best-effort, and
//! clients filter again); reading past versions, by timestamp, and change data feed are refused.

mod files;
pub mod recipients;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path as UrlPath, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use traillake_api::federation::{SCHEMA, SHARE};
use traillake_lake::table::table_folder;
use traillake_lake::{Catalog, EventDataStoreRecord, EventTable, LakeRoot};

pub use recipients::{Recipient, Recipients};

/// The path under which the endpoint is served; a recipient's profile file names
/// `http(s)://HOST:PORT/delta-sharing` as its `endpoint`.
pub const PREFIX: &str = "/delta-sharing";

/// What the endpoint's handlers share.
struct SharingState {
    catalog: Arc<Catalog>,
    root: LakeRoot,
    recipients: Recipients,
    key: files::UrlKey,
    scheme: &'static str,
}

/// Returns the endpoint's router, for the federated stores of `catalog` under `root`; `tls` says
/// whether file URLs are `https`.
pub fn router(catalog: Arc<Catalog>, root: LakeRoot, recipients: Recipients, tls: bool) -> Router {
    let state = Arc::new(SharingState {
        catalog,
        root,
        recipients,
        key: files::UrlKey::random(),
        scheme: if tls { "https" } else { "http" },
    });
    let table = format!("{PREFIX}/shares/{{share}}/schemas/{{schema}}/tables/{{table}}");
    Router::new()
        .route(&format!("{PREFIX}/shares"), get(list_shares))
        .route(&format!("{PREFIX}/shares/{{share}}"), get(get_share))
        .route(&format!("{PREFIX}/shares/{{share}}/schemas"), get(list_schemas))
        .route(
            &format!("{PREFIX}/shares/{{share}}/schemas/{{schema}}/tables"),
            get(list_tables),
        )
        .route(&format!("{PREFIX}/shares/{{share}}/all-tables"), get(list_all_tables))
        .route(&format!("{table}/version"), get(table_version))
        .route(&format!("{table}/metadata"), get(table_metadata))
        .route(&format!("{table}/query"), post(query_table))
        .route(&format!("{table}/changes"), get(table_changes))
        .route(
            &format!("{PREFIX}/files/{{store}}/{{*path}}"),
            get(files::serve).head(files::serve),
        )
        .route(
            &format!("{PREFIX}/{{*rest}}"),
            any(|| async { SharingError::not_found("no such Delta Sharing resource") }),
        )
        .with_state(state)
}

/// A refusal in the protocol's form: `{"errorCode": ..., "message": ...}` with its HTTP status.
#[derive(Debug)]
pub(crate) struct SharingError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl SharingError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }

    fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
    }

    fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST", message)
    }

    fn range(size: u64) -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "INVALID_PARAMETER_VALUE",
            format!("the Range header does not name one range of this file's {size} bytes"),
        )
    }

    fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "a Delta Sharing request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "an internal error occurred; see the server log",
        )
    }
}

impl IntoResponse for SharingError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "errorCode": self.code, "message": self.message }).to_string(),
        )
            .into_response()
    }
}

/// The recipient a request's `Authorization: Bearer` token names.
struct Caller(Recipient);

impl FromRequestParts<Arc<SharingState>> for Caller {
    type Rejection = SharingError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<SharingState>) -> Result<Self, SharingError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                SharingError::unauthenticated("send the recipient's bearer token: Authorization: Bearer TOKEN")
            })?;
        if state.recipients.is_empty() {
            return Err(SharingError::unauthenticated(
                "this server has no Delta Sharing recipients configured (traillake serve --sharing-recipients FILE)",
            ));
        }
        let recipient = state
            .recipients
            .of_token(token.trim())
            .ok_or_else(|| SharingError::unauthenticated("the bearer token is not a recipient's"))?;
        Ok(Caller(recipient.clone()))
    }
}

/// `maxResults` and `pageToken` of the list requests.
struct Page {
    max_results: Option<i64>,
    page_token: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = SharingError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, SharingError> {
        let max_results = match query_parameter(&parts.uri, "maxResults") {
            Some(value) => Some(
                value
                    .parse()
                    .map_err(|_| SharingError::invalid(format!("maxResults '{value}' is not a number")))?,
            ),
            None => None,
        };
        Ok(Page {
            max_results,
            page_token: query_parameter(&parts.uri, "pageToken"),
        })
    }
}

/// Returns a parameter of a request's query string, decoded.
fn query_parameter(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

fn json_response(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

/// Returns a page of names sorted ascending, after `pageToken`, with the next token if more remain.
fn page(mut items: Vec<Value>, page: &Page) -> Result<Value, SharingError> {
    let max = match page.max_results {
        Some(max) if !(0..=1000).contains(&max) => {
            return Err(SharingError::invalid("maxResults must be from 0 to 1000"));
        }
        Some(max) => usize::try_from(max).unwrap_or(0),
        None => 500,
    };
    let name = |item: &Value| item["name"].as_str().unwrap_or_default().to_string();
    items.sort_by_key(name);
    if let Some(after) = page.page_token.as_deref().filter(|token| !token.is_empty()) {
        items.retain(|item| name(item).as_str() > after);
    }
    let more = items.len() > max;
    items.truncate(max);
    let mut answer = json!({ "items": items });
    if more && let Some(last) = items_last_name(&answer) {
        answer["nextPageToken"] = Value::String(last);
    }
    Ok(answer)
}

fn items_last_name(answer: &Value) -> Option<String> {
    answer["items"].as_array()?.last()?["name"].as_str().map(str::to_string)
}

fn check_share(share: &str) -> Result<(), SharingError> {
    if share.eq_ignore_ascii_case(SHARE) {
        Ok(())
    } else {
        Err(SharingError::not_found(format!(
            "share {share} does not exist; the share is {SHARE}"
        )))
    }
}

fn check_schema(share: &str, schema: &str) -> Result<(), SharingError> {
    check_share(share)?;
    if schema.eq_ignore_ascii_case(SCHEMA) {
        Ok(())
    } else {
        Err(SharingError::not_found(format!(
            "schema {schema} does not exist in share {SHARE}; its schema is {SCHEMA}"
        )))
    }
}

impl SharingState {
    /// Returns the stores the recipient reads: those federated with its role.
    async fn stores_of(&self, recipient: &Recipient) -> Vec<EventDataStoreRecord> {
        let mut stores: Vec<_> = self
            .catalog
            .federated_event_data_stores()
            .await
            .into_iter()
            .filter(|store| store.federation_role_arn.as_deref() == Some(recipient.role_arn.as_str()))
            .collect();
        stores.sort_by(|a, b| a.id.cmp(&b.id));
        stores
    }

    /// Returns the store a table names, if the recipient reads it.
    async fn table(
        &self,
        recipient: &Recipient,
        share: &str,
        schema: &str,
        table: &str,
    ) -> Result<EventDataStoreRecord, SharingError> {
        check_schema(share, schema)?;
        self.stores_of(recipient)
            .await
            .into_iter()
            .find(|store| store.id.eq_ignore_ascii_case(table))
            .ok_or_else(|| {
                SharingError::not_found(format!(
                    "table {table} does not exist in {SHARE}.{SCHEMA}, or is not shared with you"
                ))
            })
    }
}

fn table_item(store: &EventDataStoreRecord) -> Value {
    json!({ "name": store.id, "schema": SCHEMA, "share": SHARE, "id": store.id })
}

async fn list_shares(Caller(_): Caller, query: Page) -> Result<Response, SharingError> {
    Ok(json_response(page(vec![json!({ "name": SHARE })], &query)?).into_response())
}

async fn get_share(Caller(_): Caller, UrlPath(share): UrlPath<String>) -> Result<Response, SharingError> {
    check_share(&share)?;
    Ok(json_response(json!({ "share": { "name": SHARE } })).into_response())
}

async fn list_schemas(
    Caller(_): Caller,
    UrlPath(share): UrlPath<String>,
    query: Page,
) -> Result<Response, SharingError> {
    check_share(&share)?;
    Ok(json_response(page(vec![json!({ "name": SCHEMA, "share": SHARE })], &query)?).into_response())
}

async fn list_tables(
    State(state): State<Arc<SharingState>>,
    Caller(recipient): Caller,
    UrlPath((share, schema)): UrlPath<(String, String)>,
    query: Page,
) -> Result<Response, SharingError> {
    check_schema(&share, &schema)?;
    let items = state.stores_of(&recipient).await.iter().map(table_item).collect();
    Ok(json_response(page(items, &query)?).into_response())
}

async fn list_all_tables(
    State(state): State<Arc<SharingState>>,
    Caller(recipient): Caller,
    UrlPath(share): UrlPath<String>,
    query: Page,
) -> Result<Response, SharingError> {
    check_share(&share)?;
    let items = state.stores_of(&recipient).await.iter().map(table_item).collect();
    Ok(json_response(page(items, &query)?).into_response())
}

/// The latest snapshot of a shared store's table and its version.
async fn snapshot(
    state: &SharingState,
    store: &EventDataStoreRecord,
) -> Result<(EventTable, deltalake::DeltaTable, u64), SharingError> {
    let table = EventTable::new(&state.root, &store.id, store.kind);
    let snapshot = table
        .create_if_missing()
        .await
        .map_err(|error| SharingError::internal(&error))?;
    let version = snapshot
        .version()
        .ok_or_else(|| SharingError::internal(&"the shared table has no version"))?;
    Ok((table, snapshot, version))
}

fn version_header(version: u64) -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::HeaderName::from_static("delta-table-version"),
        HeaderValue::from(version),
    )]
}

async fn table_version(
    State(state): State<Arc<SharingState>>,
    Caller(recipient): Caller,
    UrlPath((share, schema, table)): UrlPath<(String, String, String)>,
    uri: Uri,
) -> Result<Response, SharingError> {
    let store = state.table(&recipient, &share, &schema, &table).await?;
    if query_parameter(&uri, "startingTimestamp").is_some() {
        return Err(SharingError::invalid(
            "startingTimestamp is not supported: traillake shares the latest version of each table",
        ));
    }
    let (_, _, version) = snapshot(&state, &store).await?;
    Ok((version_header(version), "").into_response())
}

/// The protocol and metadata lines every table answer starts with.
fn protocol_and_metadata(snapshot: &deltalake::DeltaTable) -> Result<String, SharingError> {
    let state = snapshot.snapshot().map_err(|error| SharingError::internal(&error))?;
    let metadata = serde_json::to_value(state.metadata()).map_err(|error| SharingError::internal(&error))?;
    let meta = json!({
        "id": metadata["id"],
        "format": { "provider": "parquet" },
        "schemaString": metadata["schemaString"],
        "partitionColumns": metadata["partitionColumns"],
        "configuration": metadata["configuration"],
    });
    Ok(format!(
        "{}\n{}\n",
        json!({ "protocol": { "minReaderVersion": 1 } }),
        json!({ "metaData": meta })
    ))
}

fn ndjson(version: u64, body: String) -> Response {
    (
        version_header(version),
        [(header::CONTENT_TYPE, "application/x-ndjson; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn table_metadata(
    State(state): State<Arc<SharingState>>,
    Caller(recipient): Caller,
    UrlPath((share, schema, table)): UrlPath<(String, String, String)>,
) -> Result<Response, SharingError> {
    let store = state.table(&recipient, &share, &schema, &table).await?;
    let (_, snapshot, version) = snapshot(&state, &store).await?;
    Ok(ndjson(version, protocol_and_metadata(&snapshot)?))
}

/// The body of a query request; the hints are accepted and not applied.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct QueryRequest {
    version: Option<u64>,
    timestamp: Option<String>,
    starting_version: Option<i64>,
    ending_version: Option<i64>,
}

async fn query_table(
    State(state): State<Arc<SharingState>>,
    Caller(recipient): Caller,
    headers: HeaderMap,
    UrlPath((share, schema, table)): UrlPath<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, SharingError> {
    let store = state.table(&recipient, &share, &schema, &table).await?;
    let request: QueryRequest = if body.is_empty() {
        QueryRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| SharingError::invalid(format!("the query body is not valid: {error}")))?
    };
    if request.timestamp.is_some() || request.starting_version.is_some() || request.ending_version.is_some() {
        return Err(SharingError::invalid(
            "timestamp, startingVersion and endingVersion are not supported: traillake shares the latest version of each table",
        ));
    }
    let (table, snapshot, version) = snapshot(&state, &store).await?;
    if let Some(asked) = request.version
        && asked != version
    {
        return Err(SharingError::invalid(format!(
            "version {asked} is not served: traillake shares the latest version of each table, now {version}"
        )));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| SharingError::invalid("the request has no Host header to build file URLs from"))?;
    let expires = chrono::Utc::now().timestamp_millis() + files::URL_LIFETIME_MS;
    let mut body = protocol_and_metadata(&snapshot)?;
    let data_files = table
        .data_files(&snapshot)
        .map_err(|error| SharingError::internal(&error))?;
    let folder = object_store::path::Path::from_url_path(state.root.url(&table_folder(&store.id)).path())
        .map_err(|error| SharingError::internal(&error))?;
    for file in data_files {
        // The URL names the file within the table's folder, not where the lake lives.
        let path: object_store::path::Path = file
            .path
            .prefix_match(&folder)
            .ok_or_else(|| SharingError::internal(&format!("data file {} is outside its table", file.path)))?
            .collect();
        let path = path.to_string();
        let url = format!(
            "{}://{host}{PREFIX}/files/{}/{path}?{}",
            state.scheme,
            store.id,
            state.key.sign(&store.id, &path, expires)
        );
        let line = json!({ "file": {
            "url": url,
            "id": hex::encode(&Sha256::digest(path.as_bytes())[..16]),
            "partitionValues": { traillake_lake::events::schema::EVENT_DATE: file.day.format("%Y-%m-%d").to_string() },
            "size": file.size,
            "expirationTimestamp": expires,
        }});
        body.push_str(&line.to_string());
        body.push('\n');
    }
    tracing::info!(recipient = %recipient.name, store_id = %store.id, version, "a Delta Sharing recipient queried a table");
    Ok(ndjson(version, body))
}

async fn table_changes(
    State(state): State<Arc<SharingState>>,
    Caller(recipient): Caller,
    UrlPath((share, schema, table)): UrlPath<(String, String, String)>,
) -> Result<Response, SharingError> {
    state.table(&recipient, &share, &schema, &table).await?;
    Err(SharingError::invalid(
        "the change data feed is not enabled on traillake's tables; query the table instead",
    ))
}
