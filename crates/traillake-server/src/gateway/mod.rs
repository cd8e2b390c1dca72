//! The JSON gateway: AWS JSON 1.1 for the CloudTrail API (`POST /` routed by `X-Amz-Target`) and
//! REST-JSON for the CloudTrail Data API (`POST /PutAuditEvents`), on one axum router. It decodes
//! requests, calls the service layer, and encodes responses and errors as AWS clients read them; it
//! holds no operation's logic.

mod dispatch;
mod result_page;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use traillake_api::shapes::PutAuditEventsRequest;
use traillake_api::wire::{decode, encode};
use traillake_api::{ApiError, ErrorCode, Operation, RequestContext};

use crate::auth::{Api, Authenticator, SignedRequest};
use crate::service::Service;

const CLOUDTRAIL_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const CLOUDTRAIL_DATA_CONTENT_TYPE: &str = "application/json";

/// The settings of the gateway.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The Region the server serves.
    pub region: String,
    /// How requests are authenticated.
    pub authenticator: Authenticator,
    /// The largest request body accepted; larger ones get HTTP 413.
    pub max_request_bytes: usize,
}

struct GatewayState {
    service: Service,
    settings: GatewaySettings,
}

/// Returns the router of the JSON gateway.
pub fn router(service: Service, settings: GatewaySettings) -> Router {
    Router::new().fallback(handle).with_state(Arc::new(GatewayState { service, settings }))
}

async fn handle(State(state): State<Arc<GatewayState>>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    if crate::grpc::is_grpc(&headers) {
        // gRPC methods are routed before the gateway: a gRPC call here names no method traillake has.
        return tonic::Status::unimplemented(format!("no gRPC method at {}", uri.path())).into_http();
    }
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (api, operation, result) = route(&state, &method, &uri, &headers, body, &request_id).await;
    let response = match result {
        Ok(bytes) => json_response(api, StatusCode::OK, bytes, &request_id, None),
        Err(error) => error_response(api, &error, &request_id),
    };
    tracing::info!(
        operation = %operation,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    response
}

async fn route(
    state: &GatewayState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
) -> (Api, String, Result<Vec<u8>, ApiError>) {
    if let Some(target) = headers.get("x-amz-target") {
        let target = target.to_str().unwrap_or_default();
        let Some(operation) = Operation::from_target(target) else {
            let error = ApiError::new(ErrorCode::UnknownOperationException, format!("unknown operation target '{target}'"));
            return (Api::CloudTrail, "unknown".into(), Err(error));
        };
        let name = operation.name().to_string();
        if method != Method::POST {
            let error = ApiError::new(ErrorCode::UnknownOperationException, format!("{name} takes POST, not {method}"));
            return (Api::CloudTrail, name, Err(error));
        }
        let result = async {
            let body = read_body(body, state.settings.max_request_bytes).await?;
            let ctx = context(state, method, uri, headers, &body, request_id, Api::CloudTrail)?;
            dispatch::call(&state.service, operation, &ctx, &body).await
        }
        .await;
        return (Api::CloudTrail, name, result);
    }
    if method == Method::POST && uri.path() == "/PutAuditEvents" {
        let result = async {
            let body = read_body(body, state.settings.max_request_bytes).await?;
            let ctx = context(state, method, uri, headers, &body, request_id, Api::CloudTrailData)?;
            let mut request: PutAuditEventsRequest = decode(&body)?;
            for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
                match name.as_ref() {
                    "channelArn" => request.channel_arn = Some(value.into_owned()),
                    "externalId" => request.external_id = Some(value.into_owned()),
                    _ => {}
                }
            }
            Ok(encode(&state.service.put_audit_events(&ctx, request).await?))
        }
        .await;
        return (Api::CloudTrailData, "PutAuditEvents".into(), result);
    }
    let mut error = ApiError::new(
        ErrorCode::UnknownOperationException,
        format!("no operation at {method} {}: CloudTrail requests carry X-Amz-Target", uri.path()),
    );
    error.status = 404;
    (Api::CloudTrail, "none".into(), Err(error))
}

/// Returns the context of a request: the account its signature (or, in development, its access
/// key) names.
fn context(
    state: &GatewayState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
    api: Api,
) -> Result<RequestContext, ApiError> {
    let signed = SignedRequest { method: method.as_str(), uri, headers, body: Some(body) };
    let account_id = state.settings.authenticator.account_id(&signed, api)?;
    Ok(RequestContext { account_id, region: state.settings.region.clone(), request_id: request_id.to_string() })
}

async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    to_bytes(body, limit).await.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::new(
                ErrorCode::RequestEntityTooLargeException,
                format!("the request body is larger than the limit of {limit} bytes"),
            )
        } else {
            ApiError::new(ErrorCode::SerializationException, format!("the request body could not be read: {error}"))
        }
    })
}

fn json_response(api: Api, status: StatusCode, body: Vec<u8>, request_id: &str, error_type: Option<&str>) -> Response {
    let content_type = match api {
        Api::CloudTrail => CLOUDTRAIL_CONTENT_TYPE,
        Api::CloudTrailData => CLOUDTRAIL_DATA_CONTENT_TYPE,
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("x-amzn-requestid", HeaderValue::from_str(request_id).expect("uuid is a header value"));
    if let Some(error_type) = error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_str(error_type).expect("codes are header values"));
    }
    response
}

fn error_response(api: Api, error: &ApiError, request_id: &str) -> Response {
    let code = error.code.as_str();
    let body = serde_json::json!({ "__type": code, "message": error.message });
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(api, status, serde_json::to_vec(&body).expect("json serializes"), request_id, Some(code))
}
