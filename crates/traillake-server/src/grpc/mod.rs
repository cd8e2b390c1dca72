//! The gRPC front door: the services of `proto/traillake/v1/service.proto` (CloudTrail and
//! CloudTrailData, one RPC per operation of the JSON gateway, over the same service layer), query
//! results as Arrow Flight, server reflection and the standard health service, as one axum router
//! that shares the JSON gateway's listener. It decodes nothing by hand and holds no operation's
//! logic: the messages are `traillake_api::shapes`, the same types the JSON gateway speaks. Each
//! answered call of the CloudTrail and CloudTrailData services (refusals of authentication
//! included) is handed to the activity recorder, as the gateway's are.

mod arrow;
mod cloudtrail;
mod flight;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use serde_json::Value;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::{Extensions, Response, Status};
use traillake_api::{ApiError, Operation, RequestContext};

use crate::activity::{ActivityRecorder, AnsweredCall, audit_request_parameters};
use crate::auth::{Api, Principal, SignedRequest};
use crate::front::{FrontDoorSettings, is_grpc, peer_of};
use crate::service::Service;

/// The services generated from `proto/traillake/v1/service.proto`.
#[allow(missing_docs, clippy::all, clippy::clone_on_ref_ptr)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/traillake.v1.rs"));
}

/// The descriptors of traillake's .proto files, which server reflection serves.
const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/traillake_descriptor.bin"));

/// The response metadata that carries the request ID, as the JSON gateway's header does.
const REQUEST_ID: &str = "x-amzn-requestid";

/// What every gRPC service of traillake acts with.
#[derive(Debug, Clone)]
struct Front {
    service: Service,
    settings: FrontDoorSettings,
    recorder: Arc<ActivityRecorder>,
}

impl Front {
    /// Returns the context of a call: the account [`authenticate`] found for it.
    fn context(&self, extensions: &Extensions, request_id: &str) -> Result<RequestContext, ApiError> {
        let Some(caller) = extensions.get::<Caller>() else {
            tracing::error!(
                request_id,
                "a gRPC call reached its service without being authenticated"
            );
            return Err(ApiError::internal());
        };
        Ok(RequestContext {
            account_id: caller.principal.account_id.clone(),
            region: self.settings.region.clone(),
            request_id: request_id.to_string(),
            principal_arn: caller.principal.arn.clone(),
        })
    }

    /// Hands an answered call to the activity recorder: `request` and `response` are the call's
    /// messages, as the JSON wire would carry them.
    fn record(
        &self,
        operation: &str,
        caller: &Caller,
        request_id: &str,
        request: Option<Value>,
        response: Option<Value>,
        error: Option<&ApiError>,
    ) {
        let data_api = operation == "PutAuditEvents";
        let read_only = is_read_only(operation);
        self.recorder.record(AnsweredCall {
            operation,
            data_api,
            read_only,
            principal: &caller.principal,
            peer: caller.peer,
            user_agent: caller.user_agent.as_deref(),
            region: &self.settings.region,
            request_id,
            request: if data_api {
                request.map(audit_request_parameters)
            } else {
                request
            },
            response: if read_only { None } else { response },
            error,
            time: chrono::Utc::now(),
        });
    }
}

/// Returns true for the RPCs that only read: those of read-only operations, and
/// GetQueryResultsArrow, which reads results as GetQueryResults does.
fn is_read_only(rpc: &str) -> bool {
    rpc == "GetQueryResultsArrow"
        || Operation::ALL
            .iter()
            .any(|operation| operation.name() == rpc && operation.is_read_only())
}

/// Who made a gRPC call, put in the request's extensions by [`authenticate`].
#[derive(Debug, Clone)]
struct Caller {
    principal: Principal,
    peer: Option<SocketAddr>,
    user_agent: Option<String>,
}

impl Caller {
    fn of(principal: Principal, request: &Request) -> Self {
        Self {
            principal,
            peer: peer_of(request.extensions()),
            user_agent: request
                .headers()
                .get(axum::http::header::USER_AGENT)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string),
        }
    }
}

/// Authenticates a gRPC call before its service sees it, as the JSON gateway authenticates its
/// requests: the `authorization`, `x-amz-date` (and `x-amz-security-token`) metadata are SigV4
/// headers, signed over `POST /package.Service/Method` with the host (`:authority`) and an
/// unsigned payload (`x-amz-content-sha256: UNSIGNED-PAYLOAD`, as S3 allows), since the message
/// is streamed. CloudTrailData calls are signed for `cloudtrail-data`, every other service for
/// `cloudtrail`; the health service answers anyone. A refused call ends with the error's status.
async fn authenticate(State(front): State<Front>, mut request: Request, next: Next) -> axum::response::Response {
    let authenticator = &front.settings.authenticator;
    let path = request.uri().path();
    if !is_grpc(request.headers()) || path.starts_with("/grpc.health.v1.Health/") {
        return next.run(request).await;
    }
    let api = if path.starts_with("/traillake.v1.CloudTrailData/") {
        Api::CloudTrailData
    } else {
        Api::CloudTrail
    };
    let signed = SignedRequest {
        method: request.method().as_str(),
        uri: request.uri(),
        headers: request.headers(),
        body: None,
    };
    match authenticator.authenticate(&signed, api) {
        Ok(principal) => {
            let caller = Caller::of(principal, &request);
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => {
            let request_id = uuid::Uuid::new_v4().to_string();
            tracing::info!(path = %request.uri().path(), code = error.code.as_str(), request_id = %request_id, "grpc request refused");
            let recorded_service = path.starts_with("/traillake.v1.CloudTrail/") || api == Api::CloudTrailData;
            if recorded_service && let Some(principal) = authenticator.claimed(request.headers()) {
                let rpc = path.rsplit('/').next().unwrap_or_default();
                front.record(
                    rpc,
                    &Caller::of(principal, &request),
                    &request_id,
                    None,
                    None,
                    Some(&error),
                );
            }
            let mut status = status::from_api_error(&error);
            status.metadata_mut().insert(
                REQUEST_ID,
                MetadataValue::try_from(request_id.as_str()).expect("a uuid is a metadata value"),
            );
            status.into_http()
        }
    }
}

/// One gRPC call, from its start to its answer: its request ID, and the log line of its end.
struct Call {
    operation: &'static str,
    request_id: String,
    started: Instant,
}

impl Call {
    fn start(operation: &'static str) -> Self {
        Self {
            operation,
            request_id: uuid::Uuid::new_v4().to_string(),
            started: Instant::now(),
        }
    }

    /// Returns the answer of the call, logging it as the JSON gateway logs its requests.
    fn answer<T>(self, result: Result<T, ApiError>) -> Result<Response<T>, Status> {
        let request_id = MetadataValue::try_from(self.request_id.as_str()).expect("a uuid is a metadata value");
        let (answer, code) = match result {
            Ok(message) => {
                let mut response = Response::new(message);
                response.metadata_mut().insert(REQUEST_ID, request_id);
                (Ok(response), tonic::Code::Ok)
            }
            Err(error) => {
                let mut status = status::from_api_error(&error);
                status.metadata_mut().insert(REQUEST_ID, request_id);
                let code = status.code();
                (Err(status), code)
            }
        };
        tracing::info!(
            operation = self.operation,
            grpc_status = ?code,
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            request_id = %self.request_id,
            "grpc request"
        );
        answer
    }
}

/// Returns the router of the gRPC services, to serve beside the JSON gateway's.
pub async fn router(service: Service, settings: FrontDoorSettings, recorder: Arc<ActivityRecorder>) -> axum::Router {
    let max_message = settings.max_request_bytes;
    let front = Front {
        service,
        settings,
        recorder,
    };
    let cloudtrail = generated::cloud_trail_server::CloudTrailServer::new(cloudtrail::CloudTrailRpcs(front.clone()))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_message);
    let cloudtrail_data =
        generated::cloud_trail_data_server::CloudTrailDataServer::new(cloudtrail::CloudTrailDataRpcs(front.clone()))
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message);
    let flight =
        arrow_flight::flight_service_server::FlightServiceServer::new(flight::QueryResultsFlight(front.clone()))
            .accept_compressed(CompressionEncoding::Gzip);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<generated::cloud_trail_server::CloudTrailServer<cloudtrail::CloudTrailRpcs>>()
        .await;
    health_reporter
        .set_serving::<generated::cloud_trail_data_server::CloudTrailDataServer<cloudtrail::CloudTrailDataRpcs>>()
        .await;
    health_reporter
        .set_serving::<arrow_flight::flight_service_server::FlightServiceServer<flight::QueryResultsFlight>>()
        .await;

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().expect("the descriptor sets are valid");
    let reflection_v1alpha = reflection().build_v1alpha().expect("the descriptor sets are valid");

    tonic::service::Routes::new(cloudtrail)
        .add_service(cloudtrail_data)
        .add_service(flight)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .into_axum_router()
        .layer(axum::middleware::from_fn_with_state(front, authenticate))
}
