//! `traillake worker`: a datafusion-distributed worker that executes the tasks of a server's
//! queries over one lake root.
//!
//! Each task's plan arrives serialized; the worker's session decodes it with traillake's
//! functions registered (the dialect's and the rebuilt `eventjson`, which datafusion-proto names
//! rather than ships) and the root's object store (`file:///` or `s3://bucket/`, the URLs the
//! server's scans name), and runs it with the server's session settings on a memory pool of its
//! own. A worker that cannot read its root refuses to start.

use std::net::SocketAddr;
use std::sync::Arc;

use datafusion::common::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use datafusion_distributed::{DistributedExt, Worker, WorkerQueryContext};
use http::HeaderMap;
use traillake_lake::{LakeRoot, RootLocation};

use crate::engine::{EngineSettings, datafusion_runtime};
use crate::{event_json, functions, planner};

/// Opens the lake root a worker reads, and checks that it can: a local root must be an existing
/// folder (the one the server writes), an S3 root a bucket the worker's credentials list.
pub async fn open_root(location: RootLocation) -> Result<LakeRoot, String> {
    if let RootLocation::Local(path) = &location
        && !path.is_dir()
    {
        return Err(format!(
            "the lake root {} is not a folder on this machine: a worker reads the server's root, so a local root must be \
             a folder the server and its workers share",
            path.display()
        ));
    }
    let root = LakeRoot::open(location.clone()).map_err(|error| format!("the lake root {location}: {error}"))?;
    root.store()
        .list_with_delimiter(None)
        .await
        .map_err(|error| format!("the lake root {location} cannot be read: {error}"))?;
    Ok(root)
}

/// Returns the worker of `root`: tasks run with traillake's functions and session settings, on a
/// runtime with the memory and spill settings of `settings` and the root's object store. With a
/// `secret`, a task that does not carry it is refused.
pub fn worker(root: &LakeRoot, settings: &EngineSettings, secret: Option<String>) -> Result<Worker, DataFusionError> {
    let runtime = datafusion_runtime(settings).map_err(|error| DataFusionError::External(Box::new(error)))?;
    // The scans name the root's file system or bucket, as `EventTable::object_store_url` does.
    let mut store_url = root.root_url().clone();
    store_url.set_path("/");
    runtime.register_object_store(&store_url, Arc::clone(root.base_store()));
    let secret = Arc::new(secret);
    let sessions = move |context: WorkerQueryContext| task_session(context, Arc::clone(&secret));
    Ok(Worker::from_session_builder(sessions)
        .with_runtime_env(runtime)
        .with_version(super::identity(root)))
}

/// Returns the session a task runs in: the worker's session (its task context, the runtime) with
/// traillake's settings and functions; refused when the worker has a secret the task lacks. The
/// secret goes on with the task's own calls to other workers.
async fn task_session(
    mut context: WorkerQueryContext,
    secret: Arc<Option<String>>,
) -> Result<SessionState, DataFusionError> {
    if let Some(secret) = secret.as_ref() {
        let given = context.headers.get(super::SECRET_HEADER);
        if given.is_none_or(|given| given.as_bytes() != secret.as_bytes()) {
            return Err(DataFusionError::Execution(
                "the worker refused a task without the cluster's secret (--cluster-secret)".to_string(),
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(super::SECRET_HEADER, super::secret_value(secret)?);
        context.builder = context.builder.with_distributed_passthrough_headers(headers)?;
    }
    let config = context.builder.config().get_or_insert_default();
    planner::set_options(config.options_mut());
    let state = context.builder.build();
    let session = SessionContext::new_with_state(state);
    functions::register(&session);
    for function in event_json::functions() {
        session.register_udf(function);
    }
    Ok(session.state())
}

/// Serves `worker` on `listener` until `shutdown` completes.
pub async fn serve(
    worker: Worker,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(worker.into_worker_server())
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), shutdown)
        .await
}

/// Starts the worker of `root` on `address` in the background (for tests): returns its address.
pub async fn spawn(root: &LakeRoot, address: SocketAddr, secret: Option<String>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    let worker = worker(root, &EngineSettings::default(), secret).map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        if let Err(error) = serve(worker, listener, std::future::pending()).await {
            tracing::error!(%error, "the worker stopped");
        }
    });
    Ok(local)
}
