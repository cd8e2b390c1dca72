//! The CloudTrail and CloudTrailData gRPC services: each RPC calls the service layer's handler of
//! the operation of the same name, and GetQueryResultsArrow streams a query's results as Arrow IPC.

use futures::stream::{self, BoxStream};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};
use traillake_api::ApiError;
use traillake_api::shapes::*;
use traillake_api::wire::WireEnum as _;

use super::arrow::IpcChunks;
use super::generated::cloud_trail_data_server::CloudTrailData;
use super::generated::cloud_trail_server::CloudTrail;
use super::{Call, Caller, Front};

/// The metadata of GetQueryResultsArrow's and DoGet's response that holds the query's status.
pub(super) const QUERY_STATUS: &str = "x-traillake-query-status";

/// The CloudTrail service.
#[derive(Debug, Clone)]
pub(super) struct CloudTrailRpcs(pub(super) Front);

/// The CloudTrailData service.
#[derive(Debug, Clone)]
pub(super) struct CloudTrailDataRpcs(pub(super) Front);

/// Implements a service's unary RPCs, each as the service layer's handler of the same name.
macro_rules! unary_rpcs {
    ($rpcs:ident: $service:ident, { $($operation:ident => $handler:ident($request:ty) -> $response:ty;)* } $($rest:item)*) => {
        #[tonic::async_trait]
        impl $service for $rpcs {
            $(
                async fn $handler(&self, request: Request<$request>) -> Result<Response<$response>, Status> {
                    let call = Call::start(stringify!($operation));
                    let caller = request.extensions().get::<Caller>().cloned();
                    let parameters = serde_json::to_value(request.get_ref()).ok();
                    let result = async {
                        let ctx = self.0.context(request.extensions(), &call.request_id)?;
                        self.0.service.$handler(&ctx, request.into_inner()).await
                    }
                    .await;
                    if let Some(caller) = &caller {
                        let response = result.as_ref().ok().and_then(|response| serde_json::to_value(response).ok());
                        self.0.record(call.operation, caller, &call.request_id, parameters, response, result.as_ref().err());
                    }
                    call.answer(result)
                }
            )*
            $($rest)*
        }
    };
}

unary_rpcs!(CloudTrailRpcs: CloudTrail, {
    CreateEventDataStore => create_event_data_store(CreateEventDataStoreRequest) -> EventDataStoreDescription;
    GetEventDataStore => get_event_data_store(EventDataStoreRequest) -> EventDataStoreDescription;
    ListEventDataStores => list_event_data_stores(ListEventDataStoresRequest) -> ListEventDataStoresResponse;
    UpdateEventDataStore => update_event_data_store(UpdateEventDataStoreRequest) -> EventDataStoreDescription;
    DeleteEventDataStore => delete_event_data_store(EventDataStoreRequest) -> Empty;
    RestoreEventDataStore => restore_event_data_store(EventDataStoreRequest) -> EventDataStoreDescription;
    StartEventDataStoreIngestion => start_event_data_store_ingestion(EventDataStoreRequest) -> Empty;
    StopEventDataStoreIngestion => stop_event_data_store_ingestion(EventDataStoreRequest) -> Empty;
    EnableFederation => enable_federation(EnableFederationRequest) -> EnableFederationResponse;
    DisableFederation => disable_federation(EventDataStoreRequest) -> DisableFederationResponse;
    GetEventConfiguration => get_event_configuration(GetEventConfigurationRequest) -> EventConfiguration;
    PutEventConfiguration => put_event_configuration(PutEventConfigurationRequest) -> EventConfiguration;
    RegisterOrganizationDelegatedAdmin => register_organization_delegated_admin(RegisterOrganizationDelegatedAdminRequest) -> Empty;
    DeregisterOrganizationDelegatedAdmin => deregister_organization_delegated_admin(DeregisterOrganizationDelegatedAdminRequest) -> Empty;
    AddTags => add_tags(TagsRequest) -> Empty;
    RemoveTags => remove_tags(TagsRequest) -> Empty;
    ListTags => list_tags(ListTagsRequest) -> ListTagsResponse;
    StartQuery => start_query(StartQueryRequest) -> StartQueryResponse;
    DescribeQuery => describe_query(QueryRequest) -> DescribeQueryResponse;
    GetQueryResults => get_query_results(GetQueryResultsRequest) -> GetQueryResultsResponse;
    CancelQuery => cancel_query(QueryRequest) -> CancelQueryResponse;
    ListQueries => list_queries(ListQueriesRequest) -> ListQueriesResponse;
    GenerateQuery => generate_query(GenerateQueryRequest) -> GenerateQueryResponse;
    CreateChannel => create_channel(CreateChannelRequest) -> ChannelDescription;
    GetChannel => get_channel(ChannelRequest) -> ChannelDescription;
    ListChannels => list_channels(ListChannelsRequest) -> ListChannelsResponse;
    UpdateChannel => update_channel(UpdateChannelRequest) -> ChannelDescription;
    DeleteChannel => delete_channel(ChannelRequest) -> Empty;
    PutResourcePolicy => put_resource_policy(PutResourcePolicyRequest) -> ResourcePolicyResponse;
    GetResourcePolicy => get_resource_policy(ResourcePolicyRequest) -> ResourcePolicyResponse;
    DeleteResourcePolicy => delete_resource_policy(ResourcePolicyRequest) -> Empty;
    StartImport => start_import(StartImportRequest) -> ImportDescription;
    GetImport => get_import(ImportRequest) -> ImportDescription;
    ListImports => list_imports(ListImportsRequest) -> ListImportsResponse;
    ListImportFailures => list_import_failures(ListImportFailuresRequest) -> ListImportFailuresResponse;
    StopImport => stop_import(ImportRequest) -> ImportDescription;
    ListPublicKeys => list_public_keys(ListPublicKeysRequest) -> ListPublicKeysResponse;
    LookupEvents => lookup_events(LookupEventsRequest) -> LookupEventsResponse;
    ListInsightsMetricData => list_insights_metric_data(ListInsightsMetricDataRequest) -> ListInsightsMetricDataResponse;
    ListInsightsData => list_insights_data(ListInsightsDataRequest) -> ListInsightsDataResponse;
    CreateDashboard => create_dashboard(CreateDashboardRequest) -> CreateDashboardResponse;
    UpdateDashboard => update_dashboard(UpdateDashboardRequest) -> UpdateDashboardResponse;
    GetDashboard => get_dashboard(DashboardRequest) -> GetDashboardResponse;
    ListDashboards => list_dashboards(ListDashboardsRequest) -> ListDashboardsResponse;
    DeleteDashboard => delete_dashboard(DashboardRequest) -> DeleteDashboardResponse;
    StartDashboardRefresh => start_dashboard_refresh(StartDashboardRefreshRequest) -> StartDashboardRefreshResponse;
    SearchSampleQueries => search_sample_queries(SearchSampleQueriesRequest) -> SearchSampleQueriesResponse;
    PutInsightSelectors => put_insight_selectors(PutInsightSelectorsRequest) -> InsightSelectorsResponse;
    GetInsightSelectors => get_insight_selectors(GetInsightSelectorsRequest) -> InsightSelectorsResponse;
    CreateTrail => create_trail(CreateTrailRequest) -> Trail;
    UpdateTrail => update_trail(UpdateTrailRequest) -> Trail;
    DeleteTrail => delete_trail(TrailRequest) -> Empty;
    GetTrail => get_trail(TrailRequest) -> GetTrailResponse;
    DescribeTrails => describe_trails(DescribeTrailsRequest) -> DescribeTrailsResponse;
    ListTrails => list_trails(ListTrailsRequest) -> ListTrailsResponse;
    GetTrailStatus => get_trail_status(TrailRequest) -> GetTrailStatusResponse;
    StartLogging => start_logging(TrailRequest) -> Empty;
    StopLogging => stop_logging(TrailRequest) -> Empty;
    GetEventSelectors => get_event_selectors(GetEventSelectorsRequest) -> EventSelectorsResponse;
    PutEventSelectors => put_event_selectors(PutEventSelectorsRequest) -> EventSelectorsResponse;
}

    type GetQueryResultsArrowStream = BoxStream<'static, Result<ArrowIpcChunk, Status>>;

    async fn get_query_results_arrow(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<Self::GetQueryResultsArrowStream>, Status> {
        let call = Call::start("GetQueryResultsArrow");
        let caller = request.extensions().get::<Caller>().cloned();
        let parameters = serde_json::to_value(request.get_ref()).ok();
        let result = async {
            let ctx = self.0.context(request.extensions(), &call.request_id)?;
            let results = self.0.service.query_results_arrow(&ctx, request.into_inner()).await?;
            let status = results.status;
            let chunks = IpcChunks::new(results).map_err(|error| {
                tracing::error!(%error, "could not write a result schema as Arrow IPC");
                ApiError::internal()
            })?;
            let chunks = stream::iter(chunks.map(|chunk| {
                chunk.map_err(|error| {
                    tracing::error!(%error, "could not write a result batch as Arrow IPC");
                    Status::internal(ApiError::internal().message)
                })
            }));
            Ok((Box::pin(chunks) as Self::GetQueryResultsArrowStream, status))
        }
        .await;
        let (result, status) = match result {
            Ok((chunks, status)) => (Ok(chunks), Some(status)),
            Err(error) => (Err(error), None),
        };
        if let Some(caller) = &caller {
            self.0.record(call.operation, caller, &call.request_id, parameters, None, result.as_ref().err());
        }
        let mut response = call.answer(result)?;
        if let Some(status) = status {
            response.metadata_mut().insert(QUERY_STATUS, MetadataValue::from_static(status.wire_name().unwrap_or("UNKNOWN")));
        }
        Ok(response)
    }
);

unary_rpcs!(CloudTrailDataRpcs: CloudTrailData, {
    PutAuditEvents => put_audit_events(PutAuditEventsRequest) -> PutAuditEventsResponse;
});
