//! What the two front doors share, and the choice between them on one listener: the settings
//! both read ([`FrontDoorSettings`]), and [`serve`], which sends gRPC calls (by their content
//! type and method path) to the gRPC router and every other request to the JSON gateway.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderMap;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

use crate::activity::ActivityRecorder;
use crate::auth::Authenticator;
use crate::service::Service;
use crate::sharing::Recipients;
use crate::{gateway, grpc, sharing, tls};

/// The settings of both front doors.
#[derive(Debug, Clone)]
pub struct FrontDoorSettings {
    /// The Region the server serves.
    pub region: String,
    /// How requests are authenticated.
    pub authenticator: Authenticator,
    /// The largest request body accepted; larger ones get HTTP 413.
    pub max_request_bytes: usize,
    /// Who reads federated stores through the Delta Sharing endpoint.
    pub sharing_recipients: Recipients,
}

/// The address a connection comes from, which requests read as `ConnectInfo<Peer>` (over TLS too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, NoDelayListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, NoDelayListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// A plain TCP listener whose connections send at once (`TCP_NODELAY`): without it, the last small
/// segment of an answer (a gRPC frame, a short JSON body) could wait up to 40 ms for the client's
/// delayed acknowledgement.
pub struct NoDelayListener(pub TcpListener);

impl axum::serve::Listener for NoDelayListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, peer) = axum::serve::Listener::accept(&mut self.0).await;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
        }
        (stream, peer)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tls::TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls::TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Returns the address a request's connection comes from.
pub(crate) fn peer_of(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<Peer>>()
        .map(|info| info.0.0)
}

/// Returns true for a request in the gRPC protocol, by its content type.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// Serves the JSON gateway and gRPC on `listener` (HTTP/1.1 and HTTP/2, told apart per
/// connection; over TLS when `tls` is given) until `shutdown` completes, then finishes the
/// requests in flight. Both doors hand their answered calls to `recorder`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: Service,
    settings: FrontDoorSettings,
    recorder: Arc<ActivityRecorder>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sharing = sharing::router(
        Arc::clone(service.catalog()),
        service.root().clone(),
        settings.sharing_recipients.clone(),
        tls.is_some(),
    );
    let gateway = sharing.merge(gateway::router(
        service.clone(),
        settings.clone(),
        Arc::clone(&recorder),
    ));
    // gRPC calls are routed by their method path; a gRPC call that no route took names no method
    // traillake has, and every other request goes to the JSON gateway.
    let app = grpc::router(service, settings, recorder)
        .await
        .fallback(move |request: Request| async move {
            if is_grpc(request.headers()) {
                let status = tonic::Status::unimplemented(format!("no gRPC method at {}", request.uri().path()));
                return status.into_http::<axum::body::Body>();
            }
            match gateway.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        });
    // The peer's address is the `sourceIPAddress` of the call's record.
    let app = app.into_make_service_with_connect_info::<Peer>();
    match tls {
        Some(config) => {
            axum::serve(tls::TlsListener::new(listener, config)?, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(NoDelayListener(listener), app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
