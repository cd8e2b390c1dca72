//! `traillake worker`: executes the tasks of the queries of servers started with `--workers`,
//! reading the same lake root (`traillake_query::cluster`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use traillake_lake::RootLocation;
use traillake_query::EngineSettings;
use traillake_query::cluster::worker;

/// The arguments of `traillake worker`.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The lake root the server writes, as for `serve`: the same bucket (an S3 root, the normal case
    /// for a cluster), or a folder the server and the workers share.
    #[arg(long, env = "TRAILLAKE_ROOT", default_value = "./traillake-data")]
    root: String,
    /// The address to listen on (the one given to `serve --workers`); port 0 picks a free port.
    #[arg(long, env = "TRAILLAKE_WORKER_LISTEN", default_value = "127.0.0.1:4570")]
    listen: SocketAddr,
    /// A secret every task must carry (the server's --cluster-secret); required to listen on an
    /// address other than a loopback one, as a worker runs the plans it is sent over the root.
    #[arg(long, env = "TRAILLAKE_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,
    /// The memory the worker's tasks share (for example 4GiB); sorts, aggregations and joins spill
    /// to disk beyond it.
    #[arg(long, env = "TRAILLAKE_QUERY_MEMORY", default_value = "4GiB")]
    query_memory: bytesize::ByteSize,
    /// Where tasks spill; the OS temporary folder by default.
    #[arg(long, env = "TRAILLAKE_SPILL_DIRECTORY")]
    spill_directory: Option<std::path::PathBuf>,
}

/// How long a worker told to stop waits for its running tasks before it exits without them.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Runs the worker until `shutdown` (SIGINT or SIGTERM), then for at most [`STOP_WAIT`] while
/// its tasks end.
pub async fn run(args: WorkerArgs, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    if args.cluster_secret.is_none() && !args.listen.ip().is_loopback() {
        bail!(
            "refusing to listen on {} without --cluster-secret: a worker runs the plans it is sent over the lake root, \
             which is allowed without a secret only on a loopback address",
            args.listen
        );
    }
    let location = RootLocation::parse(&args.root)?;
    let root = worker::open_root(location).await.map_err(anyhow::Error::msg)?;
    let settings = EngineSettings {
        memory_bytes: usize::try_from(args.query_memory.as_u64()).unwrap_or(usize::MAX),
        spill_directory: args.spill_directory,
        ..EngineSettings::default()
    };
    let worker = worker::worker(&root, &settings, args.cluster_secret)?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "traillake worker listening on {} (root {})",
        listener.local_addr()?,
        root.location()
    );
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stop.send_replace(true);
    });
    let mut told = stopping.clone();
    let graceful = worker::serve(worker, listener, async move {
        let _ = told.wait_for(|stop| *stop).await;
    });
    let mut told = stopping;
    tokio::select! {
        served = graceful => served?,
        () = async move {
            let _ = told.wait_for(|stop| *stop).await;
            tokio::time::sleep(STOP_WAIT).await;
        } => {
            tracing::warn!("tasks still ran {} s after the signal to stop; stopping without them", STOP_WAIT.as_secs());
            std::process::exit(0);
        }
    }
    Ok(())
}
