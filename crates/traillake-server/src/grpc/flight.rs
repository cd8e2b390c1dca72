//! Query results as Arrow Flight, so pyarrow and every Flight client read them with no
//! traillake-specific code: DoGet with a QueryId as the ticket streams the query's results;
//! GetFlightInfo and GetSchema take the QueryId as the descriptor's command (or its one path
//! element). All three wait for a QUEUED or RUNNING query to end, as GetQueryResultsArrow does.
//! The other Flight methods answer UNIMPLEMENTED: traillake takes no data through Flight.

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use futures::stream::{self, BoxStream};
use futures::{StreamExt as _, TryStreamExt as _};
use tonic::Extensions;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};
use traillake_api::shapes::QueryRequest;
use traillake_api::wire::WireEnum as _;
use traillake_api::{ApiError, ErrorCode};

use super::arrow::{portable, portable_schema};
use super::cloudtrail::QUERY_STATUS;
use super::{Call, Front};
use traillake_query::ArrowResults;

/// The Flight service over query results.
#[derive(Debug, Clone)]
pub(super) struct QueryResultsFlight(pub(super) Front);

impl QueryResultsFlight {
    /// Returns the results of a query of the caller.
    async fn results(
        &self,
        extensions: &Extensions,
        query_id: String,
        request_id: &str,
    ) -> Result<ArrowResults, ApiError> {
        let ctx = self.0.context(extensions, request_id)?;
        let request = QueryRequest {
            query_id: Some(query_id),
            ..Default::default()
        };
        self.0.service.query_results_arrow(&ctx, request).await
    }
}

/// Returns the QueryId a ticket or command holds.
fn query_id(bytes: &[u8], what: &str) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidParameterException,
            format!("the {what} must be a QueryId in UTF-8"),
        )
    })
}

/// Returns the QueryId a descriptor names: its command, or its one path element.
fn descriptor_query_id(descriptor: &FlightDescriptor) -> Result<String, ApiError> {
    match descriptor.path.as_slice() {
        [] => query_id(&descriptor.cmd, "descriptor's command"),
        [query_id] => Ok(query_id.clone()),
        _ => Err(ApiError::new(
            ErrorCode::InvalidParameterException,
            "the descriptor's path must be one element, the QueryId",
        )),
    }
}

/// Returns the answer of a Flight method traillake does not serve.
fn unimplemented<T>(method: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "traillake serves query results through Flight (DoGet with a QueryId as the ticket, GetFlightInfo, GetSchema), not {method}"
    )))
}

#[tonic::async_trait]
impl FlightService for QueryResultsFlight {
    type HandshakeStream = BoxStream<'static, Result<HandshakeResponse, Status>>;
    type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;
    type DoGetStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoPutStream = BoxStream<'static, Result<PutResult, Status>>;
    type DoExchangeStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = BoxStream<'static, Result<ActionType, Status>>;

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let call = Call::start("FlightDoGet");
        let result = match query_id(&request.get_ref().ticket, "ticket") {
            Ok(query_id) => self.results(request.extensions(), query_id, &call.request_id).await,
            Err(error) => Err(error),
        };
        let status = result.as_ref().ok().map(|results| results.status);
        let result = result.map(|results| {
            let batches = stream::iter(
                results
                    .batches
                    .into_iter()
                    .map(|batch| portable(&batch).map_err(FlightError::from)),
            );
            let encoder = FlightDataEncoderBuilder::new().with_schema(portable_schema(&results.schema));
            let failed = |error: FlightError| {
                tracing::error!(%error, "could not encode a result batch for Flight");
                Status::internal(ApiError::internal().message)
            };
            encoder.build(batches).map_err(failed).boxed()
        });
        let mut response = call.answer(result)?;
        if let Some(status) = status {
            response.metadata_mut().insert(
                QUERY_STATUS,
                MetadataValue::from_static(status.wire_name().unwrap_or("UNKNOWN")),
            );
        }
        Ok(response)
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let call = Call::start("FlightGetFlightInfo");
        let descriptor = request.get_ref().clone();
        let result = async {
            let query_id = descriptor_query_id(&descriptor)?;
            let results = self
                .results(request.extensions(), query_id.clone(), &call.request_id)
                .await?;
            let ticket = Ticket::new(query_id);
            let info = FlightInfo::new()
                .try_with_schema(&portable_schema(&results.schema))
                .map_err(|error| {
                    tracing::error!(%error, "could not encode a result schema");
                    ApiError::internal()
                })?
                .with_descriptor(descriptor)
                .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
                .with_total_records(results.num_rows() as i64)
                .with_ordered(true);
            Ok(info)
        }
        .await;
        call.answer(result)
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let call = Call::start("FlightGetSchema");
        let result = async {
            let query_id = descriptor_query_id(request.get_ref())?;
            let results = self.results(request.extensions(), query_id, &call.request_id).await?;
            SchemaAsIpc::new(&portable_schema(&results.schema), &IpcWriteOptions::default())
                .try_into()
                .map_err(|error: datafusion::arrow::error::ArrowError| {
                    tracing::error!(%error, "could not encode a result schema");
                    ApiError::internal()
                })
        }
        .await;
        call.answer(result)
    }

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        unimplemented("Handshake (credentials travel in the authorization metadata of each call)")
    }

    async fn list_flights(&self, _request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        unimplemented("ListFlights (ListQueries lists a store's queries)")
    }

    async fn poll_flight_info(&self, _request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        unimplemented("PollFlightInfo")
    }

    async fn do_put(&self, _request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        unimplemented("DoPut")
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        unimplemented("DoExchange")
    }

    async fn do_action(&self, _request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        unimplemented("DoAction")
    }

    async fn list_actions(&self, _request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        unimplemented("ListActions")
    }
}
