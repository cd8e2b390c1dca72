//! `Server`: a traillake server on a lake root, put together and run. [`Server::open`] takes the
//! root's lock and opens what lives under it (the catalog, the query engine, imports, channels);
//! [`Server::run`] serves both front doors on the listener with the background upkeep beside them
//! (the lake's maintenance, forgetting queries past result retention, purging deleted stores,
//! keeping the channels' IngestionStatus, following trail buckets), records every call as account activity, and stops in
//! order: requests in flight finished, the activity recorded so far stored, upkeep stopped,
//! IngestionStatus kept, the lock released. The command line only reads flags into a
//! [`ServerConfig`]; a test starts the same server in its own process.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use traillake_ingest::channels::{ChannelError, Channels};
use traillake_ingest::follow::{FollowError, FollowSource, Follower};
use traillake_ingest::group_commit::GroupCommit;
use traillake_ingest::imports::runner::RunSettings;
use traillake_ingest::imports::{ImportError, Imports};
use traillake_ingest::live::LiveEvents;
use traillake_ingest::trails::{TrailSettings, Trails};
use traillake_lake::{Catalog, LakeError, LakeRoot, RootLock};
use traillake_query::{EngineSettings, QueryEngine, QueryError};

use crate::activity::ActivityRecorder;
use crate::auth::Authenticator;
use crate::front::{FrontDoorSettings, serve};
use crate::service::{Service, ServiceSettings};

/// What a server is opened with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The lake root the server owns while it runs.
    pub root: LakeRoot,
    /// The address to listen on; port 0 takes a free port ([`Server::local_addr`]).
    pub listen: SocketAddr,
    /// TLS on both front doors, when given.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The Region, authentication and request limit of both front doors.
    pub front: FrontDoorSettings,
    /// The limits of the service layer.
    pub service: ServiceSettings,
    /// The query engine's limits.
    pub engine: EngineSettings,
    /// How imports run.
    pub imports: RunSettings,
    /// How often the lake is maintained (write-ahead logs flushed, retention, compaction, vacuum)
    /// and queries past result retention are forgotten.
    pub maintenance_interval: Duration,
    /// How long a deleted store stays pending deletion before it is purged.
    pub pending_deletion_period: Duration,
    /// The trail buckets followed: their new log files become live events.
    pub follow: Vec<FollowSource>,
    /// How often each followed bucket is polled.
    pub follow_interval: Duration,
    /// Whether calls are recorded as account activity (the Event history, stores' live events).
    pub record_activity: bool,
    /// How trails deliver their log files and digests.
    pub trails: TrailSettings,
    /// The organization the accounts belong to, if any (see `traillake_lake::Organization`).
    pub organization: Option<traillake_lake::Organization>,
}

/// Why a server could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The lake (its lock, its catalog, the channels' state) could not be opened.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The query engine could not be opened.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The kept imports could not be read.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The channels could not be opened.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A followed bucket's state could not be read.
    #[error("following a trail bucket: {0}")]
    Follow(#[from] FollowError),
    /// The address cannot be listened on.
    #[error("listening on {0}: {1}")]
    Listen(SocketAddr, #[source] std::io::Error),
}

/// A server on a lake root, opened and ready to run.
pub struct Server {
    config: ServerConfig,
    listener: TcpListener,
    local_addr: SocketAddr,
    lock: RootLock,
    catalog: Arc<Catalog>,
    queries: Arc<QueryEngine>,
    channels: Arc<Channels>,
    live: Arc<LiveEvents>,
    trails: Arc<Trails>,
    followers: Vec<Follower>,
    service: Service,
}

/// How long a stopping server waits for the activity recorded so far to be stored.
const RECORDER_DRAIN: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("root", &self.config.root.location())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Takes the root's lock, opens what lives under it and binds the listener.
    pub async fn open(config: ServerConfig) -> Result<Self, ServerError> {
        let root = config.root.clone();
        let lock = RootLock::acquire(&root).await?;
        let mut catalog = Catalog::load(&root).await?;
        catalog.set_organization(config.organization.clone());
        let catalog = Arc::new(catalog);
        let queries = QueryEngine::open(root.clone(), Arc::clone(&catalog), config.engine.clone()).await?;
        let imports = Imports::open(root.clone(), Arc::clone(&catalog), config.imports, true).await?;
        let commits = Arc::new(GroupCommit::default());
        let channels = Arc::new(Channels::open(root.clone(), Arc::clone(&catalog), Arc::clone(&commits)).await?);
        let trails = Arc::new(Trails::new(
            root.clone(),
            Arc::clone(&catalog),
            Arc::clone(queries.signing_keys()),
            config.front.region.clone(),
            config.trails.clone(),
            Arc::new(traillake_lake::root::s3_bucket_encrypted),
        ));
        let live = Arc::new(
            LiveEvents::new(root.clone(), Arc::clone(&catalog), commits, config.front.region.clone())
                .with_trails(Arc::clone(&trails)),
        );
        let service = Service::new(
            Arc::clone(&catalog),
            Arc::clone(&queries),
            imports,
            Arc::clone(&channels),
            Arc::clone(&trails),
            config.service.clone(),
        );
        let mut followers = Vec::with_capacity(config.follow.len());
        for source in &config.follow {
            followers.push(Follower::open(source.clone(), root.clone(), Arc::clone(&live)).await?);
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|error| ServerError::Listen(config.listen, error))?;
        let local_addr = listener
            .local_addr()
            .map_err(|error| ServerError::Listen(config.listen, error))?;
        match &config.front.authenticator {
            Authenticator::Development { account_id } => tracing::warn!(
                %account_id,
                "no credentials are configured: no signature is checked and every access key maps to the development account"
            ),
            Authenticator::Verified(credentials) => tracing::info!(
                access_keys = credentials.len(),
                "requests must be signed (SigV4) with a configured access key"
            ),
        }
        Ok(Self {
            config,
            listener,
            local_addr,
            lock,
            catalog,
            queries,
            channels,
            live,
            trails,
            followers,
            service,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The lake root the server owns.
    pub fn root(&self) -> &LakeRoot {
        &self.config.root
    }

    /// Serves until `shutdown` completes or the root's lock is lost, then stops in order.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self {
            config,
            listener,
            lock,
            catalog,
            queries,
            channels,
            live,
            trails,
            followers,
            service,
            ..
        } = self;
        let (recorder, recording) = if config.record_activity {
            let (recorder, task) = ActivityRecorder::start(live);
            (recorder, Some(task))
        } else {
            tracing::warn!("calls are not recorded as account activity (--record-activity false)");
            (ActivityRecorder::off(), None)
        };
        // Files removed from a table stay readable longer than a query may run, since a query
        // reads the snapshot it started on.
        let keep_removed_files =
            (config.engine.time_limit + Duration::from_secs(600)).max(Duration::from_secs(2 * 3600));
        let purge_every = (config.pending_deletion_period / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut upkeep = vec![
            tokio::spawn(traillake_lake::maintenance::maintain_every(
                config.root.clone(),
                Arc::clone(&catalog),
                config.maintenance_interval,
                keep_removed_files,
            )),
            tokio::spawn({
                let queries = Arc::clone(&queries);
                async move { queries.forget_expired_every(config.maintenance_interval).await }
            }),
            tokio::spawn({
                let catalog = Arc::clone(&catalog);
                async move {
                    catalog
                        .purge_deleted_every(config.pending_deletion_period, purge_every)
                        .await
                }
            }),
            tokio::spawn({
                let channels = Arc::clone(&channels);
                async move { channels.keep_ingestion_status_every(Duration::from_secs(5)).await }
            }),
            tokio::spawn(Arc::clone(&trails).deliver_every()),
            queries.spawn_insights(),
            tokio::spawn({
                let service = service.clone();
                async move { service.refresh_dashboards_every().await }
            }),
        ];
        upkeep.extend(
            followers
                .into_iter()
                .map(|follower| tokio::spawn(follower.follow_every(config.follow_interval))),
        );
        let mut lost = lock.lost();
        let shutdown = async move {
            tokio::select! {
                () = shutdown => tracing::info!("shutting down"),
                Ok(_) = lost.wait_for(Option::is_some) => tracing::error!("shutting down: the lake root's lock was lost"),
            }
        };
        let served = serve(listener, config.tls, service, config.front, recorder, shutdown).await;
        // The doors are gone with their recorder handles: the task stores what is queued and ends.
        if let Some(recording) = recording
            && tokio::time::timeout(RECORDER_DRAIN, recording).await.is_err()
        {
            tracing::error!("the activity still queued could not be stored in time; it is lost");
        }
        for task in upkeep {
            task.abort();
        }
        // What the trails hold is delivered, and their digest periods closed, before the root is
        // released; what cannot be delivered stays in their outboxes for the next start.
        if tokio::time::timeout(RECORDER_DRAIN, trails.finish()).await.is_err() {
            tracing::error!("the trails' deliveries did not finish in time; they resume at the next start");
        }
        if let Err(error) = channels.keep_ingestion_status().await {
            tracing::warn!(%error, "could not keep the channels' IngestionStatus");
        }
        lock.release().await;
        tracing::info!("stopped");
        served
    }
}
