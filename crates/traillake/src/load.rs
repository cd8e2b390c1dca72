//! `traillake load`: stores CloudTrail records from local files and folders in an event data store,
//! or the management events among them in an account's Event history (`--history`, to seed it from
//! exports of AWS's LookupEvents or trail files), through the lake's write path (the one imports
//! use), whether or not a server runs on the root.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::cmp::eq;
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use traillake_api::selectors::StoreKind;
use traillake_lake::catalog::oldest_kept;
use traillake_lake::keys::KeyService;
use traillake_lake::loader::{EventWriter, FileRows, file_rows_within};
use traillake_lake::table::HISTORY_RETENTION_DAYS;
use traillake_lake::{Catalog, EventDataStoreRecord, EventTable, LakeRoot, RootLocation};

/// The arguments of `traillake load`.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// The lake root, as for `serve`.
    #[arg(long, env = "TRAILLAKE_ROOT", default_value = "./traillake-data")]
    root: String,
    /// The account that owns the store.
    #[arg(long, env = "TRAILLAKE_ACCOUNT_ID", default_value = "123456789012")]
    account_id: String,
    /// The event data store: its ID, name or ARN.
    #[arg(long, required_unless_present = "history", conflicts_with = "history")]
    store: Option<String>,
    /// Store the management events of the last 90 days in the account's Event history (which
    /// LookupEvents reads) instead of a store; other events are counted and left out.
    #[arg(long)]
    history: bool,
    /// The server's KMS key file (`serve --kms-keys`), to load into a store encrypted with one.
    #[arg(long, env = "TRAILLAKE_KMS_KEYS")]
    kms_keys: Option<PathBuf>,
    /// Files and folders of CloudTrail records (folders are read recursively): trail log files
    /// (gzip or not), bare arrays, single records, JSON lines, LookupEvents output.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// What the load did, for the summary.
#[derive(Default)]
struct Summary {
    files: usize,
    failed_files: Vec<(PathBuf, String)>,
    records: usize,
    stored: usize,
    outside_retention: usize,
    not_management: usize,
    rejected: Vec<(PathBuf, usize, String)>,
}

/// Where a load stores its events.
struct Destination {
    /// What the summary calls it.
    name: String,
    table: EventTable,
    retention_days: i32,
    /// The largest event, in bytes, the destination takes (its MaxEventSize).
    max_event_bytes: usize,
    /// Whether only management events are stored (the Event history).
    management_only: bool,
}

impl Destination {
    /// Returns whose retention the summary names.
    fn whose(&self) -> &'static str {
        if self.management_only {
            "the Event history's"
        } else {
            "the store's"
        }
    }
}

/// Opens a lake root (a local path or `s3://bucket/prefix`) with the operator's KMS key file, when
/// one is given, for the stores encrypted with its keys.
pub fn open_root(root: &str, kms_keys: Option<&Path>) -> anyhow::Result<LakeRoot> {
    let mut opened =
        LakeRoot::open(RootLocation::parse(root)?).with_context(|| format!("opening the lake root {root}"))?;
    if let Some(path) = kms_keys {
        opened = opened.with_keys(KeyService::load(path).map_err(anyhow::Error::msg)?);
    }
    Ok(opened)
}

/// Runs `traillake load`; returns false if a file or a record could not be stored.
pub async fn load(args: LoadArgs) -> anyhow::Result<bool> {
    let root = open_root(&args.root, args.kms_keys.as_deref())?;
    let destination = match &args.store {
        Some(wanted) => {
            let catalog = Catalog::load(&root).await?;
            let store = find_store(&catalog, &args.account_id, wanted).await?;
            Destination {
                name: format!("event data store {} ({})", store.id, store.name),
                table: EventTable::new(&root, &store.id, store.kind),
                retention_days: store.retention_days,
                max_event_bytes: store.max_event_bytes(),
                management_only: false,
            }
        }
        None => Destination {
            name: format!("the Event history of account {}", args.account_id),
            table: EventTable::history(&root, &args.account_id),
            retention_days: HISTORY_RETENTION_DAYS,
            max_event_bytes: usize::MAX,
            management_only: true,
        },
    };
    let files = list_files(&args.paths)?;
    let oldest = oldest_kept(destination.retention_days, chrono::Utc::now());
    let max_event_bytes = destination.max_event_bytes;
    let mut writer = EventWriter::new(destination.table.clone(), EventWriter::COMMIT_ROWS);

    let progress = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files, {msg} [{elapsed_precise}]")
            .expect("a valid template"),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let mut summary = Summary::default();
    let parsed = futures::stream::iter(files)
        .map(|path| async move {
            let bytes = tokio::fs::read(&path).await.map_err(|error| error.to_string());
            let rows = tokio::task::spawn_blocking(move || {
                bytes.and_then(|b| file_rows_within(&b, oldest, max_event_bytes).map_err(|e| e.reason))
            })
            .await
            .expect("parsing a file does not panic");
            (path, rows)
        })
        .buffered(4);
    futures::pin_mut!(parsed);
    while let Some((path, rows)) = parsed.next().await {
        summary.files += 1;
        match rows {
            Err(reason) => summary.failed_files.push((path, reason)),
            Ok(FileRows {
                records,
                batch,
                outside_retention,
                rejected,
            }) => {
                summary.records += records;
                summary.outside_retention += outside_retention;
                let batch = if destination.management_only {
                    let management = management_rows(&batch)?;
                    summary.not_management += batch.num_rows() - management.num_rows();
                    management
                } else {
                    batch
                };
                summary
                    .rejected
                    .extend(rejected.into_iter().map(|r| (path.clone(), r.position, r.reason)));
                summary.stored += batch.num_rows();
                writer
                    .push(batch)
                    .await
                    .with_context(|| format!("storing the events of {}", path.display()))?;
            }
        }
        progress.inc(1);
        progress.set_message(format!("{} events", summary.stored));
    }
    writer.commit().await.context("storing the last events")?;
    progress.finish_and_clear();
    print_summary(&destination, &summary);
    Ok(summary.failed_files.is_empty() && summary.rejected.is_empty())
}

/// Returns the active CloudTrail store of the account named by ID, name or ARN.
pub(crate) async fn find_store(
    catalog: &Catalog,
    account_id: &str,
    wanted: &str,
) -> anyhow::Result<EventDataStoreRecord> {
    let id = wanted.rsplit('/').next().unwrap_or(wanted);
    let stores = catalog.event_data_stores(account_id).await;
    let Some(store) = stores.into_iter().find(|s| s.id == id || s.name == wanted) else {
        bail!("account {account_id} has no event data store with the ID, name or ARN {wanted}");
    };
    if !store.is_active() {
        bail!("event data store {} is pending deletion", store.id);
    }
    if store.kind != StoreKind::CloudTrail {
        bail!(
            "event data store {} holds {:?} events; load stores CloudTrail records",
            store.id,
            store.kind
        );
    }
    Ok(store)
}

/// Returns the files under the paths, each folder's files in name order.
fn list_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(files)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> walkdir::Result<()> {
    for entry in walkdir::WalkDir::new(path).follow_links(true).sort_by_file_name() {
        let entry = entry?;
        if !entry.file_type().is_dir() {
            files.push(entry.into_path());
        }
    }
    Ok(())
}

/// Returns the rows of a batch whose `eventcategory` is `Management`.
fn management_rows(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let category = batch
        .column_by_name("eventcategory")
        .context("a row batch has no eventcategory column")?;
    let management = eq(category, &StringArray::new_scalar("Management"))?;
    Ok(filter_record_batch(batch, &management)?)
}

fn print_summary(destination: &Destination, summary: &Summary) {
    println!("{}", destination.name);
    println!("files: {} read, {} failed", summary.files, summary.failed_files.len());
    println!(
        "events: {} read, {} stored, {} older than {} {}-day retention (not stored), {} rejected",
        summary.records,
        summary.stored,
        summary.outside_retention,
        destination.whose(),
        destination.retention_days,
        summary.rejected.len()
    );
    if destination.management_only {
        println!(
            "{} events are not management events (not stored: the Event history holds management events)",
            summary.not_management
        );
    }
    for (path, reason) in &summary.failed_files {
        println!("failed file {}: {reason}", path.display());
    }
    for (path, position, reason) in &summary.rejected {
        println!("rejected event {}#{position}: {reason}", path.display());
    }
}
