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
use datafusion_distributed::{Worker, WorkerQueryContext};
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
/// runtime with the memory and spill settings of `settings` and the root's object store.
pub fn worker(root: &LakeRoot, settings: &EngineSettings) -> Result<Worker, DataFusionError> {
    let runtime = datafusion_runtime(settings).map_err(|error| DataFusionError::External(Box::new(error)))?;
    let url = root.url("");
    let mut store_url = url.clone();
    store_url.set_path("/");
    runtime.register_object_store(&store_url, Arc::clone(root.base_store()));
    Ok(Worker::from_session_builder(task_session)
        .with_runtime_env(runtime)
        .with_version(super::identity(root)))
}

/// Returns the session a task runs in: the worker's session (its task context, the runtime) with
/// traillake's settings and functions.
async fn task_session(mut context: WorkerQueryContext) -> Result<SessionState, DataFusionError> {
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
pub async fn spawn(root: &LakeRoot, address: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    let worker = worker(root, &EngineSettings::default()).map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        if let Err(error) = serve(worker, listener, std::future::pending()).await {
            tracing::error!(%error, "the worker stopped");
        }
    });
    Ok(local)
}
