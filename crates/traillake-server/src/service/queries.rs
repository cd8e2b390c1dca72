//! StartQuery, DescribeQuery, GetQueryResults, CancelQuery, ListQueries.

use chrono::{SecondsFormat, Utc};
use traillake_api::arn::{self, ResourceType, resource_arn};
use traillake_api::paging;
use traillake_api::queries::{QueryRef, QuerySource, check_list, check_query_request, check_results, check_start};
use traillake_api::resource_policy::{Access, PolicyTarget, ResourcePolicy};
use traillake_api::sample_queries::search_sample_queries;
use traillake_api::shapes::{
    CancelQueryResponse, DescribeQueryResponse, GetQueryResultsRequest, GetQueryResultsResponse, ListQueriesRequest,
    ListQueriesResponse, Query, QueryRequest, QueryStatisticsForDescribeQuery, QueryStatus, SearchSampleQueriesRequest,
    SearchSampleQueriesResponse, StartQueryRequest, StartQueryResponse,
};
use traillake_api::wire::timestamp;
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::EventDataStoreRecord;
use traillake_query::dialect::fill_placeholders;
use traillake_query::{ArrowResults, QueryRecord, QueryTag, ResultPage};

use super::Service;
use super::errors::IntoApi as _;

/// QueryAlias names a dashboard widget of the caller's own account.
fn alias_of_other_account() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidParameterException,
        "QueryAlias names a dashboard widget of your own account; it cannot be used with the EventDataStoreOwnerAccountId \
         of another account",
    )
}

/// Returns the other account a call names with `EventDataStoreOwnerAccountId`, if it names one
/// other than the caller's.
fn other_owner<'a>(ctx: &RequestContext, owner: Option<&'a str>) -> Option<&'a str> {
    owner.filter(|owner| *owner != ctx.account_id)
}

/// Returns true if a store's resource policy lets the caller do `action` (`cloudtrail:StartQuery`,
/// ...). A store without a policy, or with one that no longer parses, grants nothing.
fn grants(ctx: &RequestContext, store: &EventDataStoreRecord, action: &str) -> bool {
    let Some(text) = &store.resource_policy else {
        return false;
    };
    let arn = resource_arn(&ctx.region, &store.account_id, ResourceType::EventDataStore, &store.id);
    let access = Access::by_account(action, &ctx.account_id, ctx.principal_arn.as_deref());
    ResourcePolicy::parse(text, &arn, PolicyTarget::EventDataStore)
        .is_ok_and(|policy| policy.permits(&store.account_id, &access))
}

impl Service {
    /// Returns the account whose query a call acts on: the caller's, or the other account it
    /// names with `EventDataStoreOwnerAccountId` once every store the query read grants the
    /// caller `action`. A query that does not exist and one the caller may not see are alike
    /// `QueryIdNotFoundException`.
    async fn query_account(
        &self,
        ctx: &RequestContext,
        owner: Option<&str>,
        query_id: &str,
        action: &str,
    ) -> Result<String, ApiError> {
        let Some(owner) = other_owner(ctx, owner) else {
            return Ok(ctx.account_id.clone());
        };
        let not_found = || {
            ApiError::new(
                ErrorCode::QueryIdNotFoundException,
                format!("query {query_id} not found"),
            )
        };
        let record = self.queries.describe(owner, query_id).await.map_err(|_| not_found())?;
        for store_id in &record.store_ids {
            let store = self
                .catalog
                .event_data_store(owner, store_id)
                .await
                .map_err(|_| not_found())?;
            if !grants(ctx, &store, action) {
                return Err(not_found());
            }
        }
        Ok(owner.to_string())
    }

    /// Returns the account whose query a DescribeQuery, CancelQuery or Arrow results call acts on
    /// ([`Service::query_account`]), with its deprecated EventDataStore member checked.
    async fn query_scope(
        &self,
        ctx: &RequestContext,
        request: &QueryRequest,
        query_id: &str,
        action: &str,
    ) -> Result<String, ApiError> {
        let owner = request.event_data_store_owner_account_id.as_deref();
        let account = self.query_account(ctx, owner, query_id, action).await?;
        self.check_query_store(ctx, owner, request.event_data_store.as_deref())
            .await?;
        Ok(account)
    }

    /// Checks the deprecated EventDataStore member, when given: a store of the caller, active. A
    /// call naming another owner account is checked on the query's stores instead.
    async fn check_query_store(
        &self,
        ctx: &RequestContext,
        owner: Option<&str>,
        store: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        let Some(store) = store.filter(|_| other_owner(ctx, owner).is_none()) else {
            return Ok(None);
        };
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

    /// Refuses a query of `account` while a store it read is pending deletion.
    async fn check_query_stores(&self, account: &str, record: &QueryRecord) -> Result<(), ApiError> {
        for store_id in &record.store_ids {
            if let Ok(store) = self.catalog.event_data_store(account, store_id).await
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

    /// Returns the QueryId a DescribeQuery or CancelQuery request names: its QueryId, or the
    /// latest query of its QueryAlias (in its RefreshId's refresh when given).
    async fn query_id(&self, ctx: &RequestContext, request: &QueryRequest) -> Result<String, ApiError> {
        match check_query_request(request)? {
            QueryRef::Id(id) => Ok(id),
            QueryRef::Alias { .. }
                if other_owner(ctx, request.event_data_store_owner_account_id.as_deref()).is_some() =>
            {
                Err(alias_of_other_account())
            }
            QueryRef::Alias { alias, refresh_id } => self
                .queries
                .find_alias(&ctx.account_id, &alias, refresh_id.as_deref())
                .await
                .api(),
        }
    }

    /// StartQuery: a statement (its `?` placeholders filled with QueryParameters' values), or a
    /// dashboard widget's query by its QueryAlias with the values of its placeholders.
    pub async fn start_query(
        &self,
        ctx: &RequestContext,
        request: StartQueryRequest,
    ) -> Result<StartQueryResponse, ApiError> {
        let query = check_start(&request)?;
        let owner = other_owner(ctx, query.owner_account_id.as_deref());
        if owner.is_some() && matches!(query.source, QuerySource::Alias(_)) {
            return Err(alias_of_other_account());
        }
        let (statement, tag) = match &query.source {
            QuerySource::Statement(statement) => (statement.clone(), QueryTag::default()),
            QuerySource::Alias(alias) => {
                let (statement, prompt) = self.alias_statement(ctx, alias).await?;
                let tag = QueryTag {
                    query_alias: Some(alias.clone()),
                    refresh_id: None,
                    prompt,
                };
                (statement, tag)
            }
        };
        let statement = if query.parameters.is_empty() && matches!(query.source, QuerySource::Statement(_)) {
            statement
        } else {
            fill_placeholders(&statement, &query.parameters)
                .map_err(|error| ApiError::new(ErrorCode::InvalidQueryStatementException, error.0))?
        };
        let delivery = query.delivery_s3_uri.as_deref();
        let query_id = match owner {
            None => {
                self.queries
                    .start_tagged(&ctx.account_id, &statement, delivery, tag)
                    .await
            }
            Some(owner) => {
                let grant = |store: &EventDataStoreRecord| grants(ctx, store, "cloudtrail:StartQuery");
                self.queries.start_shared(owner, &statement, delivery, &grant).await
            }
        }
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
        let query_id = self.query_id(ctx, &request).await?;
        let account = self
            .query_scope(ctx, &request, &query_id, "cloudtrail:DescribeQuery")
            .await?;
        let record = self.queries.describe_when_ended(&account, &query_id).await.api()?;
        self.check_query_stores(&account, &record).await?;
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
            prompt: record.prompt.clone(),
            event_data_store_owner_account_id: request.event_data_store_owner_account_id,
        })
    }

    /// GetQueryResults: a page of the rows produced so far, every value rendered as Lake does.
    pub async fn get_query_results(
        &self,
        ctx: &RequestContext,
        request: GetQueryResultsRequest,
    ) -> Result<GetQueryResultsResponse, ApiError> {
        self.result_page(ctx, request).await?.into_response().api()
    }

    /// GetQueryResults' page, its rows still Arrow, for the JSON gateway to write out.
    pub async fn result_page(
        &self,
        ctx: &RequestContext,
        request: GetQueryResultsRequest,
    ) -> Result<ResultPage, ApiError> {
        let page = check_results(&request)?;
        let owner = request.event_data_store_owner_account_id.as_deref();
        let account = self
            .query_account(ctx, owner, &page.query_id, "cloudtrail:GetQueryResults")
            .await?;
        self.check_query_store(ctx, owner, request.event_data_store.as_deref())
            .await?;
        let (record, rows) = self.queries.results(&account, &page.query_id).await.api()?;
        self.check_query_stores(&account, &record).await?;
        ResultPage::new(record, rows, page.next_token.as_deref(), page.max_rows).api()
    }

    /// CancelQuery.
    pub async fn cancel_query(
        &self,
        ctx: &RequestContext,
        request: QueryRequest,
    ) -> Result<CancelQueryResponse, ApiError> {
        let query_id = self.query_id(ctx, &request).await?;
        let account = self
            .query_scope(ctx, &request, &query_id, "cloudtrail:CancelQuery")
            .await?;
        let record = self.queries.describe(&account, &query_id).await.api()?;
        self.check_query_stores(&account, &record).await?;
        let record = self.queries.cancel(&account, &query_id).await.api()?;
        Ok(CancelQueryResponse {
            query_id: Some(record.id),
            query_status: Some(QueryStatus::Cancelled.into()),
            event_data_store_owner_account_id: request.event_data_store_owner_account_id,
        })
    }

    /// SearchSampleQueries: the sample queries that match a phrase, most relevant first.
    pub async fn search_sample_queries(
        &self,
        _ctx: &RequestContext,
        request: SearchSampleQueriesRequest,
    ) -> Result<SearchSampleQueriesResponse, ApiError> {
        search_sample_queries(&request)
    }

    /// ListQueries: the queries of the past days that read the store, newest first.
    pub async fn list_queries(
        &self,
        ctx: &RequestContext,
        request: ListQueriesRequest,
    ) -> Result<ListQueriesResponse, ApiError> {
        let listing = check_list(&request)?;
        let Some(store_id) = self
            .check_query_store(ctx, None, request.event_data_store.as_deref())
            .await?
        else {
            return Err(ApiError::missing(
                ErrorCode::InvalidParameterException,
                "EventDataStore",
            ));
        };
        let key = |r: &QueryRecord| format!("{}|{}", r.created.to_rfc3339_opts(SecondsFormat::Nanos, true), r.id);
        let matching: Vec<QueryRecord> = self
            .queries
            .list(&ctx.account_id, &store_id)
            .await
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

impl Service {
    /// GetQueryResultsArrow (gRPC) and Arrow Flight's DoGet: waits for a QUEUED or RUNNING query
    /// to end, then returns every row it kept with their Arrow types; a FAILED query has no results
    /// (InvalidQueryStatusException with its ErrorMessage).
    pub async fn query_results_arrow(
        &self,
        ctx: &RequestContext,
        request: QueryRequest,
    ) -> Result<ArrowResults, ApiError> {
        let query_id = self.query_id(ctx, &request).await?;
        let account = self
            .query_scope(ctx, &request, &query_id, "cloudtrail:GetQueryResults")
            .await?;
        let record = self.queries.wait_ended(&account, &query_id).await.api()?;
        self.check_query_stores(&account, &record).await?;
        if record.status == QueryStatus::Failed {
            let reason = record.error_message.as_deref().unwrap_or("no reason was recorded");
            return Err(ApiError::new(
                ErrorCode::InvalidQueryStatusException,
                format!("query {query_id} is FAILED and has no results: {reason}"),
            ));
        }
        let (record, rows) = self.queries.results(&account, &query_id).await.api()?;
        ArrowResults::new(&record, &rows).map_err(|error| {
            tracing::error!(query_id = %record.id, %error, "could not name the result columns");
            ApiError::internal()
        })
    }
}
