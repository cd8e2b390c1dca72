//! The table from CloudTrail operations to service handlers: decode the request shape, call the
//! handler, encode the response shape. Every one of the 60 operations has its handler; what a
//! handler does not build (GenerateQuery without a generator, organization trails) it refuses
//! itself.

use traillake_api::wire::{decode, encode};
use traillake_api::{ApiError, ErrorCode, Operation, RequestContext};

use crate::service::Service;

/// Calls the handler of `operation` with the JSON `body`.
pub(super) async fn call(
    service: &Service,
    operation: Operation,
    ctx: &RequestContext,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    macro_rules! handle {
        ($handler:ident) => {
            Ok(encode(&service.$handler(ctx, decode(body)?).await?))
        };
    }
    match operation {
        Operation::CreateEventDataStore => handle!(create_event_data_store),
        Operation::GetEventDataStore => handle!(get_event_data_store),
        Operation::ListEventDataStores => handle!(list_event_data_stores),
        Operation::UpdateEventDataStore => handle!(update_event_data_store),
        Operation::DeleteEventDataStore => handle!(delete_event_data_store),
        Operation::RestoreEventDataStore => handle!(restore_event_data_store),
        Operation::StartEventDataStoreIngestion => handle!(start_event_data_store_ingestion),
        Operation::StopEventDataStoreIngestion => handle!(stop_event_data_store_ingestion),
        Operation::EnableFederation => handle!(enable_federation),
        Operation::DisableFederation => handle!(disable_federation),
        Operation::GetEventConfiguration => handle!(get_event_configuration),
        Operation::PutEventConfiguration => handle!(put_event_configuration),
        Operation::RegisterOrganizationDelegatedAdmin => handle!(register_organization_delegated_admin),
        Operation::DeregisterOrganizationDelegatedAdmin => handle!(deregister_organization_delegated_admin),
        Operation::AddTags => handle!(add_tags),
        Operation::RemoveTags => handle!(remove_tags),
        Operation::ListTags => handle!(list_tags),
        Operation::StartQuery => handle!(start_query),
        Operation::DescribeQuery => handle!(describe_query),
        Operation::GetQueryResults => {
            super::result_page::encode_result_page(&service.result_page(ctx, decode(body)?).await?)
        }
        Operation::CancelQuery => handle!(cancel_query),
        Operation::CreateChannel => handle!(create_channel),
        Operation::GetChannel => handle!(get_channel),
        Operation::ListChannels => handle!(list_channels),
        Operation::UpdateChannel => handle!(update_channel),
        Operation::DeleteChannel => handle!(delete_channel),
        Operation::PutResourcePolicy => handle!(put_resource_policy),
        Operation::GetResourcePolicy => handle!(get_resource_policy),
        Operation::DeleteResourcePolicy => handle!(delete_resource_policy),
        Operation::StartImport => handle!(start_import),
        Operation::GetImport => handle!(get_import),
        Operation::ListImports => handle!(list_imports),
        Operation::ListImportFailures => handle!(list_import_failures),
        Operation::StopImport => handle!(stop_import),
        Operation::ListPublicKeys => handle!(list_public_keys),
        Operation::LookupEvents => handle!(lookup_events),
        Operation::ListInsightsMetricData => handle!(list_insights_metric_data),
        Operation::ListInsightsData => handle!(list_insights_data),
        Operation::CreateDashboard => handle!(create_dashboard),
        Operation::UpdateDashboard => handle!(update_dashboard),
        Operation::GetDashboard => handle!(get_dashboard),
        Operation::ListDashboards => handle!(list_dashboards),
        Operation::DeleteDashboard => handle!(delete_dashboard),
        Operation::StartDashboardRefresh => handle!(start_dashboard_refresh),
        Operation::SearchSampleQueries => handle!(search_sample_queries),
        Operation::GenerateQuery => handle!(generate_query),
        Operation::PutInsightSelectors => handle!(put_insight_selectors),
        Operation::GetInsightSelectors => handle!(get_insight_selectors),
        Operation::CreateTrail => handle!(create_trail),
        Operation::UpdateTrail => handle!(update_trail),
        Operation::DeleteTrail => handle!(delete_trail),
        Operation::GetTrail => handle!(get_trail),
        Operation::DescribeTrails => handle!(describe_trails),
        Operation::ListTrails => handle!(list_trails),
        Operation::GetTrailStatus => handle!(get_trail_status),
        Operation::StartLogging => handle!(start_logging),
        Operation::StopLogging => handle!(stop_logging),
        Operation::GetEventSelectors => handle!(get_event_selectors),
        Operation::PutEventSelectors => handle!(put_event_selectors),
        Operation::ListQueries => {
            // An unknown QueryStatus is InvalidQueryStatusException, as the model lists for ListQueries.
            let request = decode(body).map_err(|error| match error.code {
                ErrorCode::InvalidParameterException if error.message.contains("QueryStatus") => ApiError {
                    code: ErrorCode::InvalidQueryStatusException,
                    ..error
                },
                _ => error,
            })?;
            Ok(encode(&service.list_queries(ctx, request).await?))
        }
    }
}
