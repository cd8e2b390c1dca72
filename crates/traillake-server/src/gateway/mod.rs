//! The JSON gateway: AWS JSON 1.1 for the CloudTrail API (`POST /` routed by `X-Amz-Target`) and
//! REST-JSON for the CloudTrail Data API (`POST /PutAuditEvents`), on one axum router. It decodes
//! requests, calls the service layer, and encodes responses and errors as AWS clients read them; it
//! holds no operation's logic. Each answered call is handed to the activity recorder. The web
//! console's files are served under `/console` (`console`).

mod console;
mod dispatch;
mod result_page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use traillake_api::shapes::PutAuditEventsRequest;
use traillake_api::wire::{decode, encode};
use traillake_api::{ApiError, ErrorCode, Operation, RequestContext};

use crate::activity::{ActivityRecorder, GatewayCall};
use crate::auth::{Api, Principal, SignedRequest};
use crate::front::{FrontDoorSettings, peer_of};
use crate::service::Service;

const CLOUDTRAIL_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const CLOUDTRAIL_DATA_CONTENT_TYPE: &str = "application/json";

struct GatewayState {
    service: Service,
    settings: FrontDoorSettings,
    recorder: Arc<ActivityRecorder>,
}

/// Returns the router of the JSON gateway.
pub fn router(service: Service, settings: FrontDoorSettings, recorder: Arc<ActivityRecorder>) -> Router {
    console::routes().fallback(handle).with_state(Arc::new(GatewayState {
        service,
        settings,
        recorder,
    }))
}

async fn handle(State(state): State<Arc<GatewayState>>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let route = Route::of(method, uri, headers);
    let (result, close, principal, body) = match read_body(body, headers, state.settings.max_request_bytes).await {
        Ok(body) => {
            let signed = SignedRequest {
                method: method.as_str(),
                uri,
                headers,
                body: Some(&body),
            };
            match state.settings.authenticator.authenticate(&signed, route.api()) {
                Ok(principal) => {
                    let result = call(&state, &route, method, uri, &principal, &body, &request_id).await;
                    (result, false, Some(principal), body)
                }
                Err(refusal) => (Err(refusal), false, state.settings.authenticator.claimed(headers), body),
            }
        }
        Err(refusal) => (
            Err(refusal.error),
            refusal.close,
            state.settings.authenticator.claimed(headers),
            bytes::Bytes::new(),
        ),
    };
    if let Some(principal) = principal {
        let peer = peer_of(&parts.extensions);
        record(
            &state,
            &route,
            principal,
            peer,
            uri,
            headers,
            &request_id,
            body,
            &result,
        );
    }
    let mut response = match result {
        Ok(bytes) => json_response(route.api(), StatusCode::OK, bytes, &request_id, None),
        Err(error) => error_response(route.api(), &error, &request_id),
    };
    if close {
        // The rest of the body was not read: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    tracing::info!(
        operation = %route.name(),
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    response
}

/// Hands an answered call to the activity recorder: calls of an operation and PutAuditEvents, not
/// requests that name no operation. The recorder reads the request and response itself, off the
/// answer's path.
#[allow(clippy::too_many_arguments, reason = "one call's parts, each read once")]
fn record(
    state: &GatewayState,
    route: &Route,
    principal: Principal,
    peer: Option<SocketAddr>,
    uri: &Uri,
    headers: &HeaderMap,
    request_id: &str,
    body: bytes::Bytes,
    result: &Result<Vec<u8>, ApiError>,
) {
    let (operation, data_api, read_only) = match route {
        Route::Operation(operation) => (operation.name(), false, operation.is_read_only()),
        Route::PutAuditEvents => ("PutAuditEvents", true, false),
        Route::UnknownTarget(_) | Route::Nowhere => return,
    };
    state.recorder.record_gateway(GatewayCall {
        operation,
        data_api,
        read_only,
        principal,
        peer,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
        region: state.settings.region.clone(),
        request_id: request_id.to_string(),
        body,
        query: uri.query().map(str::to_string),
        response: match result {
            Ok(bytes) if !read_only => Some(bytes.clone()),
            _ => None,
        },
        error: result.as_ref().err().cloned(),
        time: chrono::Utc::now(),
    });
}

/// Where a request goes, as its target, method and path say.
enum Route {
    /// A CloudTrail operation (`X-Amz-Target` with either prefix).
    Operation(Operation),
    /// An `X-Amz-Target` that names no operation.
    UnknownTarget(String),
    /// `POST /PutAuditEvents` of the CloudTrail Data API.
    PutAuditEvents,
    /// Anything else.
    Nowhere,
}

impl Route {
    fn of(method: &Method, uri: &Uri, headers: &HeaderMap) -> Route {
        if let Some(target) = headers.get("x-amz-target") {
            let target = String::from_utf8_lossy(target.as_bytes()).into_owned();
            return match Operation::from_target(&target) {
                Some(operation) => Route::Operation(operation),
                None => Route::UnknownTarget(target),
            };
        }
        if method == Method::POST && uri.path() == "/PutAuditEvents" {
            return Route::PutAuditEvents;
        }
        Route::Nowhere
    }

    fn api(&self) -> Api {
        match self {
            Route::PutAuditEvents => Api::CloudTrailData,
            _ => Api::CloudTrail,
        }
    }

    fn name(&self) -> &str {
        match self {
            Route::Operation(operation) => operation.name(),
            Route::UnknownTarget(_) => "unknown",
            Route::PutAuditEvents => "PutAuditEvents",
            Route::Nowhere => "none",
        }
    }
}

/// Calls what an authenticated request's route names (a request is refused for its signature
/// before anything is said about its target).
async fn call(
    state: &GatewayState,
    route: &Route,
    method: &Method,
    uri: &Uri,
    principal: &Principal,
    body: &[u8],
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let ctx = RequestContext {
        account_id: principal.account_id.clone(),
        region: state.settings.region.clone(),
        request_id: request_id.to_string(),
        principal_arn: principal.arn.clone(),
    };
    match route {
        Route::Operation(operation) if method == Method::POST => {
            dispatch::call(&state.service, *operation, &ctx, body).await
        }
        Route::Operation(operation) => Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            format!("{} takes POST, not {method}", operation.name()),
        )),
        Route::UnknownTarget(target) => Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            format!("unknown operation target '{target}'"),
        )),
        Route::PutAuditEvents => {
            let mut request: PutAuditEventsRequest = decode(body)?;
            for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
                match name.as_ref() {
                    "channelArn" => request.channel_arn = Some(value.into_owned()),
                    "externalId" => request.external_id = Some(value.into_owned()),
                    _ => {}
                }
            }
            Ok(encode(&state.service.put_audit_events(&ctx, request).await?))
        }
        Route::Nowhere => {
            let mut error = ApiError::new(
                ErrorCode::UnknownOperationException,
                format!(
                    "no operation at {method} {}: CloudTrail requests carry X-Amz-Target",
                    uri.path()
                ),
            );
            error.status = 404;
            Err(error)
        }
    }
}

/// How much of a too-large body is read and dropped so that its connection can carry the next
/// request; past this, the response closes the connection instead.
const DRAIN_LIMIT: u64 = 32 * 1024 * 1024;

/// A body that was not read: the error to answer, and whether the connection must close.
struct BodyRefusal {
    error: ApiError,
    close: bool,
}

/// Reads a request body of at most `limit` bytes. A larger one is HTTP 413; its rest is read and
/// dropped (up to [`DRAIN_LIMIT`]) so that keep-alive clients can go on using the connection.
async fn read_body(mut body: Body, headers: &HeaderMap, limit: usize) -> Result<bytes::Bytes, BodyRefusal> {
    use http_body_util::BodyExt;

    let too_large = || {
        ApiError::new(
            ErrorCode::RequestEntityTooLargeException,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    let unreadable = |error: axum::Error| BodyRefusal {
        error: ApiError::new(
            ErrorCode::SerializationException,
            format!("the request body could not be read: {error}"),
        ),
        close: true,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64 + DRAIN_LIMIT) {
        return Err(BodyRefusal {
            error: too_large(),
            close: true,
        });
    }
    let mut bytes = bytes::BytesMut::new();
    let mut read: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(unreadable)?.into_data() else {
            continue;
        };
        read += data.len() as u64;
        if read > limit as u64 + DRAIN_LIMIT {
            return Err(BodyRefusal {
                error: too_large(),
                close: true,
            });
        }
        if read <= limit as u64 {
            bytes.extend_from_slice(&data);
        }
    }
    if read > limit as u64 {
        return Err(BodyRefusal {
            error: too_large(),
            close: false,
        });
    }
    Ok(bytes.freeze())
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
    headers.insert(
        "x-amzn-requestid",
        HeaderValue::from_str(request_id).expect("uuid is a header value"),
    );
    if let Some(error_type) = error_type {
        headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_str(error_type).expect("codes are header values"),
        );
    }
    response
}

fn error_response(api: Api, error: &ApiError, request_id: &str) -> Response {
    let code = error.code.as_str();
    // botocore reads `message`, the Smithy Python SDK `Message`: both carry the text.
    let body = match api {
        Api::CloudTrail => serde_json::json!({ "__type": code, "message": error.message, "Message": error.message }),
        Api::CloudTrailData => serde_json::json!({ "__type": code, "message": error.message }),
    };
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    json_response(
        api,
        status,
        serde_json::to_vec(&body).expect("json serializes"),
        request_id,
        Some(code),
    )
}
