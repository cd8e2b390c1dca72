//! StartQuery, DescribeQuery, GetQueryResults, CancelQuery, ListQueries.

use std::ops::Range;
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use traillake_api::arn;
use traillake_api::paging;
use traillake_api::queries::{check_list, check_query_request, check_results, check_start};
use traillake_api::shapes::{
    CancelQueryResponse, DescribeQueryResponse, GetQueryResultsRequest, GetQueryResultsResponse, ListQueriesRequest,
    ListQueriesResponse, Query, QueryRequest, QueryResultColumn, QueryResultRow, QueryStatistics,
    QueryStatisticsForDescribeQuery, QueryStatus, StartQueryRequest, StartQueryResponse,
};
use traillake_api::wire::timestamp;
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_query::render::render;
use traillake_query::{QueryRecord, ResultRows};

use super::Service;
use super::errors::IntoApi as _;

impl Service {
    /// Checks that an owner account named by the caller is the caller's own: stores shared by
    /// resource policies are not supported yet, so any other account has no store to offer.
    fn check_owner_account(ctx: &RequestContext, owner: Option<&str>) -> Result<(), ApiError> {
        match owner {
            Some(owner) if owner != ctx.account_id => Err(ApiError::new(
                ErrorCode::EventDataStoreNotFoundException,
                format!(
                    "account {owner} shares no event data store with account {}",
                    ctx.account_id
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Checks the deprecated EventDataStore member, when given: a store of the caller, active.
    async fn check_query_store(&self, ctx: &RequestContext, store: Option<&str>) -> Result<Option<String>, ApiError> {
        let Some(store) = store else { return Ok(None) };
        let id = arn::event_data_store_id(ctx, "EventDataStore", Some(store))?;
        let record = self.catalog.event_data_store(&ctx.account_id, &id).await.api()?;
        if !record.is_active() {
            return Err(ApiError::new(
                ErrorCode::InactiveEventDataStoreException,
                format!("event data store {id} is pending deletion"),
            ));
        }
        Ok(Some(id))
    }

    /// Refuses a query of the caller while a store it read is pending deletion.
    async fn check_query_stores(&self, ctx: &RequestContext, record: &QueryRecord) -> Result<(), ApiError> {
        for store_id in &record.store_ids {
            if let Ok(store) = self.catalog.event_data_store(&ctx.account_id, store_id).await
                && !store.is_active()
            {
                return Err(ApiError::new(
                    ErrorCode::InactiveEventDataStoreException,
                    format!("event data store {store_id} of query {} is pending deletion", record.id),
                ));
            }
        }
        Ok(())
    }

    /// StartQuery.
    pub async fn start_query(
        &self,
        ctx: &RequestContext,
        request: StartQueryRequest,
    ) -> Result<StartQueryResponse, ApiError> {
        let query = check_start(&request)?;
        Self::check_owner_account(ctx, query.owner_account_id.as_deref())?;
        let query_id = self
            .queries
            .start(&ctx.account_id, &query.statement, query.delivery_s3_uri.as_deref())
            .await
            .api()?;
        Ok(StartQueryResponse {
            query_id: Some(query_id),
            event_data_store_owner_account_id: query.owner_account_id,
        })
    }

    /// DescribeQuery.
    pub async fn describe_query(
        &self,
        ctx: &RequestContext,
        request: QueryRequest,
    ) -> Result<DescribeQueryResponse, ApiError> {
        let query_id = check_query_request(&request)?;
        Self::check_owner_account(ctx, request.event_data_store_owner_account_id.as_deref())?;
        self.check_query_store(ctx, request.event_data_store.as_deref()).await?;
        let record = self.queries.describe(&ctx.account_id, &query_id).api()?;
        self.check_query_stores(ctx, &record).await?;
        let now = Utc::now();
        Ok(DescribeQueryResponse {
            query_id: Some(record.id.clone()),
            query_string: Some(record.statement.clone()),
            query_status: Some(record.status.into()),
            query_statistics: Some(QueryStatisticsForDescribeQuery {
                events_matched: Some(record.scan.events_matched as i64),
                events_scanned: Some(record.scan.events_scanned as i64),
                bytes_scanned: Some(record.scan.bytes_scanned as i64),
                execution_time_in_millis: Some(record.execution_millis(now).min(i64::from(i32::MAX)) as i32),
                creation_time: Some(timestamp(record.created)),
            }),
            error_message: record.error_message.clone(),
            delivery_s3_uri: record.delivery_s3_uri.clone(),
            delivery_status: record.delivery_status.map(Into::into),
            prompt: None,
            event_data_store_owner_account_id: request.event_data_store_owner_account_id,
        })
    }

    /// GetQueryResults: a page of the rows produced so far, every value rendered as Lake does.
    pub async fn get_query_results(
        &self,
        ctx: &RequestContext,
        request: GetQueryResultsRequest,
    ) -> Result<GetQueryResultsResponse, ApiError> {
        self.result_page(ctx, request).await?.into_response()
    }

    /// GetQueryResults' page, its rows still Arrow, for the JSON gateway to write out.
    pub async fn result_page(
        &self,
        ctx: &RequestContext,
        request: GetQueryResultsRequest,
    ) -> Result<ResultPage, ApiError> {
        let page = check_results(&request)?;
        Self::check_owner_account(ctx, request.event_data_store_owner_account_id.as_deref())?;
        self.check_query_store(ctx, request.event_data_store.as_deref()).await?;
        let (record, rows) = self.queries.results(&ctx.account_id, &page.query_id).await.api()?;
        self.check_query_stores(ctx, &record).await?;
        let total = rows.len();
        let start = match page.next_token.as_deref() {
            None => 0,
            Some(token) => page_offset(&page.query_id, token, total)?,
        };
        let end = (start + page.max_rows).min(total);
        let next_token =
            (end < total).then(|| paging::encode_token("GetQueryResults", &format!("{}:{end}", record.id)));
        let keys = (0..rows.schema.fields().len())
            .map(|index| {
                record
                    .column_keys
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| format!("_col{index}"))
            })
            .collect();
        let head = GetQueryResultsResponse {
            query_status: Some(record.status.into()),
            query_statistics: Some(QueryStatistics {
                results_count: Some((end - start) as i32),
                total_results_count: Some(total.min(i32::MAX as usize) as i32),
                bytes_scanned: Some(record.scan.bytes_scanned as i64),
            }),
            query_result_rows: Vec::new(),
            next_token,
            error_message: record.error_message,
        };
        Ok(ResultPage::new(head, keys, record.id, rows, start..end))
    }

    /// CancelQuery.
    pub async fn cancel_query(
        &self,
        ctx: &RequestContext,
        request: QueryRequest,
    ) -> Result<CancelQueryResponse, ApiError> {
        let query_id = check_query_request(&request)?;
        Self::check_owner_account(ctx, request.event_data_store_owner_account_id.as_deref())?;
        self.check_query_store(ctx, request.event_data_store.as_deref()).await?;
        let record = self.queries.describe(&ctx.account_id, &query_id).api()?;
        self.check_query_stores(ctx, &record).await?;
        let record = self.queries.cancel(&ctx.account_id, &query_id).await.api()?;
        Ok(CancelQueryResponse {
            query_id: Some(record.id),
            query_status: Some(QueryStatus::Cancelled.into()),
            event_data_store_owner_account_id: request.event_data_store_owner_account_id,
        })
    }

    /// ListQueries: the queries of the past days that read the store, newest first.
    pub async fn list_queries(
        &self,
        ctx: &RequestContext,
        request: ListQueriesRequest,
    ) -> Result<ListQueriesResponse, ApiError> {
        let listing = check_list(&request)?;
        let Some(store_id) = self.check_query_store(ctx, request.event_data_store.as_deref()).await? else {
            return Err(ApiError::missing(
                ErrorCode::InvalidParameterException,
                "EventDataStore",
            ));
        };
        let key = |r: &QueryRecord| format!("{}|{}", r.created.to_rfc3339_opts(SecondsFormat::Nanos, true), r.id);
        let matching: Vec<QueryRecord> = self
            .queries
            .list(&ctx.account_id, &store_id)
            .into_iter()
            .filter(|r| listing.start.is_none_or(|start| r.created >= start))
            .filter(|r| listing.end.is_none_or(|end| r.created <= end))
            .filter(|r| listing.status.is_none_or(|status| r.status == status))
            .filter(|r| listing.after.as_deref().is_none_or(|after| key(r).as_str() < after))
            .collect();
        let items: Vec<&QueryRecord> = matching.iter().take(listing.max_results).collect();
        let next_token = (matching.len() > items.len())
            .then(|| {
                items
                    .last()
                    .map(|r| paging::encode_bound_token("ListQueries", &listing.parameters, &key(r)))
            })
            .flatten();
        Ok(ListQueriesResponse {
            queries: items
                .into_iter()
                .map(|r| Query {
                    query_id: Some(r.id.clone()),
                    query_status: Some(r.status.into()),
                    creation_time: Some(timestamp(r.created)),
                })
                .collect(),
            next_token,
        })
    }
}

/// A query's results with their Arrow types, for the gRPC stream and Arrow Flight.
#[derive(Debug, Clone)]
pub struct ArrowResults {
    /// The query's status: FINISHED, CANCELLED or TIMED_OUT.
    pub status: QueryStatus,
    /// The schema, its fields named by the result column keys (as GetQueryResults names columns).
    pub schema: SchemaRef,
    /// Every row the query kept, in result order.
    pub batches: Vec<RecordBatch>,
}

impl ArrowResults {
    /// Returns the number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

impl Service {
    /// GetQueryResultsArrow (gRPC) and Arrow Flight's DoGet: waits for a QUEUED or RUNNING query
    /// to end, then returns every row it kept with their Arrow types; a FAILED query has no results
    /// (InvalidQueryStatusException with its ErrorMessage).
    pub async fn query_results_arrow(
        &self,
        ctx: &RequestContext,
        request: QueryRequest,
    ) -> Result<ArrowResults, ApiError> {
        let query_id = check_query_request(&request)?;
        Self::check_owner_account(ctx, request.event_data_store_owner_account_id.as_deref())?;
        self.check_query_store(ctx, request.event_data_store.as_deref()).await?;
        let record = self.queries.wait_ended(&ctx.account_id, &query_id).await.api()?;
        self.check_query_stores(ctx, &record).await?;
        if record.status == QueryStatus::Failed {
            let reason = record.error_message.as_deref().unwrap_or("no reason was recorded");
            return Err(ApiError::new(
                ErrorCode::InvalidQueryStatusException,
                format!("query {query_id} is FAILED and has no results: {reason}"),
            ));
        }
        let (record, rows) = self.queries.results(&ctx.account_id, &query_id).await.api()?;
        let fields: Vec<Field> = rows
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(index, field)| match record.column_keys.get(index) {
                Some(key) => field.as_ref().clone().with_name(key),
                None => field.as_ref().clone(),
            })
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, rows.schema.metadata().clone()));
        let mut batches = Vec::with_capacity(rows.batches.len());
        for batch in &rows.batches {
            let renamed = RecordBatch::try_new(Arc::clone(&schema), batch.columns().to_vec()).map_err(|error| {
                tracing::error!(query_id = %record.id, %error, "could not name the result columns");
                ApiError::internal()
            })?;
            batches.push(renamed);
        }
        Ok(ArrowResults {
            status: record.status,
            schema,
            batches,
        })
    }
}

/// Returns the row a GetQueryResults token of `query_id` starts at, or InvalidNextTokenException.
fn page_offset(query_id: &str, token: &str, total: usize) -> Result<usize, ApiError> {
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidNextTokenException,
            format!("the NextToken is not a page token of query {query_id}"),
        )
    };
    let position = paging::decode_token("GetQueryResults", token).map_err(|_| invalid())?;
    let (id, offset) = position.rsplit_once(':').ok_or_else(invalid)?;
    let offset: usize = offset.parse().map_err(|_| invalid())?;
    if id != query_id || offset > total {
        return Err(invalid());
    }
    Ok(offset)
}

/// A page of GetQueryResults with its rows still Arrow: gRPC takes it as the response shape
/// ([`ResultPage::into_response`]); the JSON gateway writes the rows straight to the wire, each
/// value rendered once, with no map per value.
#[derive(Debug)]
pub struct ResultPage {
    /// The response without its rows (`query_result_rows` is empty).
    pub head: GetQueryResultsResponse,
    /// Each column's key in a result row.
    pub keys: Vec<String>,
    query_id: String,
    rows: Arc<ResultRows>,
    start: usize,
    end: usize,
}

impl ResultPage {
    /// A page of `rows`, the rows `range` of them.
    pub fn new(
        head: GetQueryResultsResponse,
        keys: Vec<String>,
        query_id: String,
        rows: Arc<ResultRows>,
        range: Range<usize>,
    ) -> Self {
        Self {
            head,
            keys,
            query_id,
            rows,
            start: range.start,
            end: range.end,
        }
    }

    /// The page's rows, each as a batch and a row of it.
    pub fn rows(&self) -> impl Iterator<Item = (&RecordBatch, usize)> {
        let (start, end) = (self.start, self.end);
        self.rows
            .batches
            .iter()
            .scan(0, |first, batch| {
                let at = *first;
                *first += batch.num_rows();
                Some((at, batch))
            })
            .flat_map(move |(at, batch)| {
                (start.max(at)..end.min(at + batch.num_rows())).map(move |row| (batch, row - at))
            })
    }

    /// The number of rows in the page.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Returns whether the page has no rows.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// A value as Lake renders it; `None` for NULL, which a result row leaves out.
    pub fn value(&self, column: &ArrayRef, row: usize) -> Result<Option<String>, ApiError> {
        render(column, row).map_err(|error| {
            tracing::error!(query_id = %self.query_id, %error, "could not render a result value");
            ApiError::internal()
        })
    }

    /// The response shape, its rows rendered.
    pub fn into_response(self) -> Result<GetQueryResultsResponse, ApiError> {
        let mut out = Vec::with_capacity(self.len());
        for (batch, row) in self.rows() {
            let mut columns = Vec::with_capacity(batch.num_columns());
            for (column, key) in batch.columns().iter().zip(&self.keys) {
                if let Some(value) = self.value(column, row)? {
                    columns.push(QueryResultColumn {
                        entry: [(key.clone(), value)].into(),
                    });
                }
            }
            out.push(QueryResultRow { columns });
        }
        Ok(GetQueryResultsResponse {
            query_result_rows: out,
            ..self.head
        })
    }
}
