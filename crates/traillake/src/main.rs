//! The traillake command line: `traillake serve` runs the server on a lake root; `traillake worker`
//! runs the tasks of a server's large queries; `traillake load` stores CloudTrail records from
//! local files; `traillake import` copies trail log files from S3.

mod import;
mod load;
mod verify;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use traillake_ingest::follow::FollowSource;
use traillake_ingest::imports::runner::RunSettings;
use traillake_ingest::trails::TrailSettings;
use traillake_lake::Organization;
use traillake_query::EngineSettings;
use traillake_query::cluster::{self, ClusterSettings};
use traillake_server::{
    Authenticator, Credentials, FrontDoorSettings, Recipients, Server, ServerConfig, ServiceSettings,
};

/// A self-hosted CloudTrail Lake: event data stores as Parquet, queried in SQL, through AWS's API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server: the CloudTrail and CloudTrail Data APIs on one port.
    Serve(Box<ServeArgs>),
    /// Stores CloudTrail records from local files and folders in an event data store; exits
    /// non-zero if a file or a record could not be stored.
    Load(load::LoadArgs),
    /// Copies the trail log files of an S3-compatible bucket into an event data store, as
    /// StartImport does; exits non-zero unless every file was copied.
    Import(import::ImportArgs),
    /// Runs a worker: executes the tasks of the large queries of servers started with --workers,
    /// over the same lake root.
    Worker(worker::WorkerArgs),
    /// Checks a delivery of query results (s3://.../QUERYID/): every file's SHA-256, the sign
    /// file's signature, and that no file is missing or extra; exits non-zero otherwise.
    Verify(verify::VerifyArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The lake root: a local folder, or s3://bucket/prefix on the S3-compatible server that
    /// AWS_ENDPOINT_URL_S3 names (with the usual AWS_* credentials).
    #[arg(long, env = "TRAILLAKE_ROOT", default_value = "./traillake-data")]
    root: String,
    /// The address to listen on; port 0 picks a free port.
    #[arg(long, env = "TRAILLAKE_LISTEN", default_value = "127.0.0.1:4566")]
    listen: SocketAddr,
    /// The AWS Region the server serves; every ARN names it.
    #[arg(long, env = "TRAILLAKE_REGION", default_value = "us-east-1")]
    region: String,
    /// The development account that every access key maps to when no credentials are configured
    /// (an access key of 12 digits acts for that account instead).
    #[arg(long, env = "TRAILLAKE_ACCOUNT_ID", default_value = "123456789012", value_parser = parse_account_id)]
    account_id: String,
    /// A JSON file of the access keys requests must be signed with (SigV4), each with its secret,
    /// its account and optionally a session token: {"credentials": [{"accessKeyId": ...,
    /// "secretAccessKey": ..., "accountId": ..., "sessionToken": ...}]}. Without it, no signature
    /// is checked, which is allowed only on a loopback address.
    #[arg(long, env = "TRAILLAKE_CREDENTIALS")]
    credentials: Option<std::path::PathBuf>,
    /// A JSON file of the Delta Sharing endpoint's recipients, each with its bearer token and the
    /// federation role whose stores it reads: {"recipients": [{"name": ..., "bearerToken": ...,
    /// "roleArn": "arn:aws:iam::ACCOUNT:role/NAME"}]}. Without it, the endpoint serves no one.
    #[arg(long, env = "TRAILLAKE_SHARING_RECIPIENTS")]
    sharing_recipients: Option<std::path::PathBuf>,
    /// A JSON file of the organization the accounts belong to: {"id": "o-...",
    /// "managementAccountId": ..., "memberAccountIds": [...], "allFeatures": true}. Without it,
    /// organization features answer OrganizationsNotInUseException.
    #[arg(long, env = "TRAILLAKE_ORGANIZATION")]
    organization: Option<std::path::PathBuf>,
    /// A JSON file of the KMS keys stores and trails may name in KmsKeyId (there is no KMS here):
    /// {"keys": [{"arn": "arn:aws:kms:REGION:ACCOUNT:key/ID", "aliases": ["alias/NAME"],
    /// "enabled": true, "material": "64 hex digits"}]}. A key's material encrypts the Parquet files
    /// of its stores on a local root; on S3 its ARN goes with SSE-KMS. Without it, a KmsKeyId is
    /// refused with KmsException.
    #[arg(long, env = "TRAILLAKE_KMS_KEYS")]
    kms_keys: Option<std::path::PathBuf>,
    /// A PEM file of the server's certificate chain: with --tls-key, both front doors are served
    /// over TLS (HTTP/2 and HTTP/1.1 by ALPN).
    #[arg(long, env = "TRAILLAKE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// A PEM file of the private key of --tls-cert.
    #[arg(long, env = "TRAILLAKE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The most event data stores an account may have, not counting those pending deletion.
    #[arg(long, env = "TRAILLAKE_MAX_EVENT_DATA_STORES", default_value_t = 10)]
    max_event_data_stores: usize,
    /// The most channels an account may have.
    #[arg(long, env = "TRAILLAKE_MAX_CHANNELS", default_value_t = traillake_api::channels::MAX_CHANNELS)]
    max_channels: usize,
    /// The most trails an account may have.
    #[arg(long, env = "TRAILLAKE_MAX_TRAILS", default_value_t = traillake_api::trails::MAX_TRAILS)]
    max_trails: usize,
    /// The most dashboards an account may have.
    #[arg(long, env = "TRAILLAKE_MAX_DASHBOARDS", default_value_t = traillake_api::dashboards::MAX_DASHBOARDS)]
    max_dashboards: usize,
    /// How often the dashboards' refresh schedules are looked at for refreshes that came due.
    #[arg(long, env = "TRAILLAKE_DASHBOARD_SCHEDULE_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    dashboard_schedule_interval: Duration,
    /// A command that makes a query of a GenerateQuery prompt, run with `sh -c`: it reads
    /// {"prompt", "eventDataStore", "eventDataStoreArn", "columns", "dialect"} as JSON on its
    /// standard input and writes one SQL statement (it may wrap any language model). Without it,
    /// GenerateQuery is UnsupportedOperationException.
    #[arg(long, env = "TRAILLAKE_QUERY_GENERATOR")]
    query_generator: Option<String>,
    /// How often each logging trail writes the events it has gathered to its bucket as a log file.
    #[arg(long, env = "TRAILLAKE_TRAIL_DELIVERY_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    trail_delivery_interval: Duration,
    /// How often a trail with log file validation writes a signed digest file.
    #[arg(long, env = "TRAILLAKE_TRAIL_DIGEST_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    trail_digest_interval: Duration,
    /// How often the event data stores with Insights types are searched for Insights.
    #[arg(long, env = "TRAILLAKE_INSIGHTS_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    insights_interval: Duration,
    /// How long a deleted event data store stays restorable before it is purged.
    #[arg(long, env = "TRAILLAKE_PENDING_DELETION_PERIOD", default_value = "7d", value_parser = humantime::parse_duration)]
    pending_deletion_period: Duration,
    /// The largest request body accepted, in bytes; larger ones get HTTP 413.
    #[arg(long, env = "TRAILLAKE_MAX_REQUEST_BYTES", default_value_t = 2 * 1024 * 1024)]
    max_request_bytes: usize,
    /// How long a query may run before it ends TIMED_OUT.
    #[arg(long, env = "TRAILLAKE_QUERY_TIME_LIMIT", default_value = "1h", value_parser = humantime::parse_duration)]
    query_time_limit: Duration,
    /// How long DescribeQuery of a QUEUED or RUNNING query waits for it to end before answering
    /// (at once when it ends), so that a client polling in a loop learns of the end as it happens;
    /// short, as a client describing many running queries waits this long for each; 0s answers at
    /// once.
    #[arg(long, env = "TRAILLAKE_DESCRIBE_QUERY_WAIT", default_value = "100ms", value_parser = humantime::parse_duration)]
    describe_query_wait: Duration,
    /// Queries an account may have QUEUED or RUNNING at once; the next StartQuery gets
    /// MaxConcurrentQueriesException.
    #[arg(long, env = "TRAILLAKE_MAX_CONCURRENT_QUERIES", default_value_t = 10)]
    max_concurrent_queries: usize,
    /// The memory executing queries share (for example 4GiB), their rows so far included; sorts,
    /// aggregations and joins spill to disk beyond it, and a query that still needs more fails
    /// with ResourcesExhausted.
    #[arg(long, env = "TRAILLAKE_QUERY_MEMORY", default_value = "4GiB")]
    query_memory: bytesize::ByteSize,
    /// The memory the results of ended queries may take while they are read (for example
    /// 512MiB); those read least lately are dropped from memory first and read back from the root.
    #[arg(long, env = "TRAILLAKE_RESULT_CACHE", default_value = "512MiB")]
    result_cache: bytesize::ByteSize,
    /// Where queries spill to disk; the OS temporary folder by default.
    #[arg(long, env = "TRAILLAKE_SPILL_DIRECTORY")]
    spill_directory: Option<std::path::PathBuf>,
    /// Queries (of all accounts) that execute at once; the others wait QUEUED.
    #[arg(long, env = "TRAILLAKE_QUERY_SLOTS", default_value_t = 4)]
    query_slots: usize,
    /// How long query records and results are kept after the query ended.
    #[arg(long, env = "TRAILLAKE_QUERY_RESULT_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    query_result_retention: Duration,
    /// How long a key that signs result deliveries is current; then the next delivery makes a new
    /// one (ListPublicKeys lists them all with their validity).
    #[arg(long, env = "TRAILLAKE_SIGNING_KEY_ROTATION", default_value = "30d", value_parser = humantime::parse_duration)]
    signing_key_rotation: Duration,
    /// The compressed size, in bytes, at which a delivered result file is closed and the next
    /// one begun.
    #[arg(long, env = "TRAILLAKE_DELIVERY_FILE_BYTES", default_value_t = EngineSettings::default().delivery_file_bytes)]
    delivery_file_bytes: usize,
    /// How often the stores' tables are maintained: days outside retention dropped, days of many
    /// small files compacted.
    #[arg(long, env = "TRAILLAKE_MAINTENANCE_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    maintenance_interval: Duration,
    /// Events an import gathers before it commits them with its progress (also committed every
    /// few seconds, so that statistics move).
    #[arg(long, env = "TRAILLAKE_IMPORT_COMMIT_ROWS", default_value_t = RunSettings::default().commit_rows)]
    import_commit_rows: usize,
    /// Log files an import fetches and parses at once.
    #[arg(long, env = "TRAILLAKE_IMPORT_FILES_IN_FLIGHT", default_value_t = RunSettings::default().files_in_flight)]
    import_files_in_flight: usize,
    /// A bucket an AWS trail writes log files to (s3://bucket[/prefix], on the S3-compatible
    /// server AWS_ENDPOINT_URL_S3 names), read as it grows: each new log file's events go to the
    /// Event history and the stores whose selectors take them. Repeatable; in the environment,
    /// separated by commas.
    #[arg(long, env = "TRAILLAKE_FOLLOW", value_delimiter = ',', value_parser = FollowSource::parse)]
    follow: Vec<FollowSource>,
    /// How often each followed bucket is polled for new log files.
    #[arg(long, env = "TRAILLAKE_FOLLOW_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    follow_interval: Duration,
    /// Whether every call is recorded as a CloudTrail event (the Event history that LookupEvents
    /// reads, and the stores whose selectors take it); false records nothing.
    #[arg(long, env = "TRAILLAKE_RECORD_ACTIVITY", default_value_t = true, action = clap::ArgAction::Set)]
    record_activity: bool,
    /// Workers (`traillake worker`) that run the tasks of large queries, as host:port or
    /// http://host:port, separated by commas; without them every query runs in the server.
    #[arg(long, env = "TRAILLAKE_WORKERS", value_delimiter = ',', value_parser = cluster::parse_worker)]
    workers: Vec<url::Url>,
    /// The bytes of Parquet files (for example 256MiB) a scan reads per task on the workers: a
    /// query whose scans each read less stays in the server.
    #[arg(long, env = "TRAILLAKE_WORKER_TASK_BYTES", default_value = "256MiB")]
    worker_task_bytes: bytesize::ByteSize,
    /// The secret the workers were started with (--cluster-secret), sent with every task.
    #[arg(long, env = "TRAILLAKE_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,
}

/// Reads an account ID by the API's own rule (the model's `AccountId`, 12 to 16 digits).
fn parse_account_id(value: &str) -> Result<String, String> {
    match traillake_api::queries::ACCOUNT_ID.check("--account-id", value) {
        Ok(()) => Ok(value.to_string()),
        Err(_) => Err("an account ID is 12 to 16 digits".into()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,deltalake_core=warn,buoyant_kernel=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(*args).await,
        Command::Worker(args) => worker::run(args, terminate_signal()).await,
        Command::Load(args) => {
            if !load::load(args).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Import(args) => {
            if !import::import(args).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Verify(args) => {
            if !verify::verify(args).await? {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let authenticator = match &args.credentials {
        Some(path) => Authenticator::Verified(Arc::new(Credentials::load(path).map_err(anyhow::Error::msg)?)),
        None if args.listen.ip().is_loopback() => Authenticator::Development {
            account_id: args.account_id.clone(),
        },
        None => anyhow::bail!(
            "refusing to listen on {} without --credentials: with no credentials every access key is accepted, which is \
             allowed only on a loopback address",
            args.listen
        ),
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(certificate), Some(key)) => {
            Some(traillake_server::tls::server_config(certificate, key).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let organization = match &args.organization {
        Some(path) => Some(Organization::load(path).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let sharing_recipients = match &args.sharing_recipients {
        Some(path) => Recipients::load(path).map_err(anyhow::Error::msg)?,
        None => Recipients::default(),
    };
    let root = load::open_root(&args.root, args.kms_keys.as_deref())?;
    let config = ServerConfig {
        root,
        listen: args.listen,
        tls,
        front: FrontDoorSettings {
            region: args.region.clone(),
            authenticator,
            max_request_bytes: args.max_request_bytes,
            sharing_recipients,
        },
        service: ServiceSettings {
            max_event_data_stores: args.max_event_data_stores,
            max_channels: args.max_channels,
            max_trails: args.max_trails,
            max_dashboards: args.max_dashboards,
            dashboard_schedule_interval: args.dashboard_schedule_interval,
            query_generator: args.query_generator.clone(),
        },
        engine: EngineSettings {
            max_active_per_account: args.max_concurrent_queries,
            execution_slots: args.query_slots,
            time_limit: args.query_time_limit,
            describe_wait: args.describe_query_wait,
            result_retention: args.query_result_retention,
            region: args.region.clone(),
            signing_key_period: args.signing_key_rotation,
            delivery_file_bytes: args.delivery_file_bytes.max(1),
            memory_bytes: usize::try_from(args.query_memory.as_u64()).unwrap_or(usize::MAX),
            spill_directory: args.spill_directory.clone(),
            result_cache_bytes: usize::try_from(args.result_cache.as_u64()).unwrap_or(usize::MAX),
            insights_interval: args.insights_interval.max(Duration::from_millis(100)),
            cluster: (!args.workers.is_empty()).then(|| ClusterSettings {
                task_bytes: args.worker_task_bytes.as_u64().max(1),
                secret: args.cluster_secret.clone(),
                ..ClusterSettings::new(args.workers.clone())
            }),
            ..EngineSettings::default()
        },
        imports: RunSettings {
            commit_rows: args.import_commit_rows,
            files_in_flight: args.import_files_in_flight.max(1),
            ..RunSettings::default()
        },
        maintenance_interval: args.maintenance_interval,
        pending_deletion_period: args.pending_deletion_period,
        follow: args.follow.clone(),
        follow_interval: args.follow_interval,
        record_activity: args.record_activity,
        trails: TrailSettings {
            delivery_interval: args.trail_delivery_interval.max(Duration::from_millis(100)),
            digest_interval: args.trail_digest_interval.max(Duration::from_secs(1)),
        },
        organization,
    };
    let server = Server::open(config).await?;
    println!(
        "traillake listening on {scheme}://{} (root {}, region {})",
        server.local_addr(),
        server.root().location(),
        args.region
    );
    server.run(terminate_signal()).await?;
    Ok(())
}

async fn terminate_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
