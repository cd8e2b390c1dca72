//! traillake's server: the service layer (one handler per operation) and its front doors, the AWS
//! JSON gateway and gRPC (with Arrow Flight), on one listener. It holds no storage or query logic.

pub mod auth;
pub mod gateway;
pub mod grpc;
pub mod service;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use traillake_api::selectors::StoreKind;
use traillake_lake::{Catalog, EventTable, LakeRoot, WriteAheadLog};

pub use auth::{Authenticator, Credentials};
pub use gateway::GatewaySettings;
pub use service::{Service, ServiceSettings};

/// Serves the JSON gateway and gRPC on `listener` (HTTP/1.1 and HTTP/2, told apart per
/// connection; over TLS when `tls` is given) until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: Service,
    settings: GatewaySettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // gRPC calls are routed by their method path; every other request goes to the JSON gateway.
    let app = grpc::router(service.clone(), settings.clone())
        .await
        .fallback_service(gateway::router(service, settings));
    match tls {
        Some(config) => {
            axum::serve(tls::TlsListener::new(listener, config)?, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await,
    }
}

/// Maintains the lake every `every`: flushes the write-ahead logs of channel stores, drops from each store's table the days wholly older than the
/// store keeps (queries already never see them), compacts days written in many small appends,
/// deletes the files removed from the tables more than `keep_removed_files` ago (longer than a
/// query may run, since a query reads the snapshot it started on), and forgets queries past result
/// retention.
pub async fn maintain_lake(
    root: LakeRoot,
    catalog: Arc<Catalog>,
    queries: Arc<traillake_query::QueryEngine>,
    every: Duration,
    keep_removed_files: Duration,
) {
    let keep_removed_files = chrono::Duration::from_std(keep_removed_files).unwrap_or(chrono::Duration::days(7));
    loop {
        let now = chrono::Utc::now();
        for store in catalog.all_event_data_stores().await {
            let first_kept_day = traillake_lake::loader::oldest_kept(store.retention_days, now).date_naive();
            let table = EventTable::new(&root, &store.id, store.kind);
            if store.kind == StoreKind::ActivityAuditLog {
                flush_write_ahead_log(&table, &store.id).await;
            }
            match table.drop_days_before(first_kept_day).await {
                Ok(0) => {}
                Ok(files) => {
                    tracing::info!(store_id = %store.id, files, %first_kept_day, "dropped days outside retention")
                }
                Err(error) => tracing::warn!(store_id = %store.id, %error, "enforcing retention failed; will retry"),
            }
            if let Err(error) = table.compact().await {
                tracing::warn!(store_id = %store.id, %error, "compacting failed; will retry");
            }
            match table.vacuum(keep_removed_files).await {
                Ok(0) => {}
                Ok(files) => tracing::info!(store_id = %store.id, files, "deleted files removed from the table"),
                Err(error) => tracing::warn!(store_id = %store.id, %error, "vacuuming failed; will retry"),
            }
        }
        match queries.forget_expired(now).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "forgot queries past result retention"),
            Err(error) => tracing::warn!(%error, "forgetting expired queries failed; will retry"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Moves whatever waits in a store's write-ahead log into its table: the segments a server
/// stopped before flushing, at start, and any a flusher left behind.
async fn flush_write_ahead_log(table: &EventTable, store_id: &str) {
    let log = match WriteAheadLog::new(table) {
        Ok(log) => log,
        Err(error) => {
            return tracing::warn!(store_id = %store_id, %error, "the write-ahead log cannot be read; will retry");
        }
    };
    loop {
        match log.flush().await {
            Ok(flushed) if flushed.segments == 0 => return,
            Ok(flushed) => {
                tracing::info!(store_id = %store_id, segments = flushed.segments, rows = flushed.rows, "flushed the write-ahead log")
            }
            Err(error) => {
                return tracing::warn!(store_id = %store_id, %error, "flushing the write-ahead log failed; will retry");
            }
        }
    }
}

/// Purges the stores whose pending deletion period ended, every `every`.
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
