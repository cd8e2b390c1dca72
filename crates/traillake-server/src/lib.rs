//! traillake's server: the service layer (one handler per operation) and its front doors, the AWS
//! JSON gateway (and later gRPC), on one listener. It holds no storage or query logic.

pub mod gateway;
pub mod service;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use traillake_lake::Catalog;

pub use gateway::GatewaySettings;
pub use service::{Service, ServiceSettings};

/// Serves the gateway on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    settings: GatewaySettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = gateway::router(service, settings);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Purges, every `every`, the event data stores that have been pending deletion for `wait`.
pub async fn purge_deleted_stores(catalog: Arc<Catalog>, wait: Duration, every: Duration) {
    let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::days(7));
    loop {
        match catalog.purge_deleted(wait, chrono::Utc::now()).await {
            Ok(purged) => {
                for id in purged {
                    tracing::info!(store_id = %id, "event data store purged");
                }
            }
            Err(error) => tracing::warn!(%error, "purging deleted event data stores failed; will retry"),
        }
        tokio::time::sleep(every).await;
    }
}
