//! `traillake import`: copies the trail log files of an S3-compatible bucket into an event data
//! store with the code StartImport runs, showing its progress, for users without the AWS CLI.
//! The import is kept under the root like one started through the API: ListImports and
//! ListImportFailures show it (a server running on the root sees it after its next start), and
//! `--retry` resumes it after a failure or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use traillake_api::imports::{ImportStart, check_start};
use traillake_api::shapes::{ImportFailureStatus, ImportSource, ImportStatus, S3ImportSource, StartImportRequest};
use traillake_ingest::imports::record::ImportRecord;
use traillake_ingest::imports::runner::RunSettings;
use traillake_ingest::imports::{Imports, NewImport};
use traillake_lake::Catalog;

use crate::load::{find_store, open_root};

/// The arguments of `traillake import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The lake root, as for `serve`.
    #[arg(long, env = "TRAILLAKE_ROOT", default_value = "./traillake-data")]
    root: String,
    /// The account that owns the store.
    #[arg(long, env = "TRAILLAKE_ACCOUNT_ID", default_value = "123456789012")]
    account_id: String,
    /// The trail logs: s3://bucket[/prefix] on the S3-compatible server AWS_ENDPOINT_URL_S3 names.
    #[arg(required_unless_present = "retry")]
    source: Option<String>,
    /// The event data store (ID, name or ARN) of CloudTrail events to copy into.
    #[arg(long, required_unless_present = "retry")]
    store: Option<String>,
    /// The bucket's Region, recorded with the import.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    bucket_region: String,
    /// The IAM role recorded as the one that reads the bucket (traillake reads with its own
    /// credentials); by default a role named traillake-import in the account.
    #[arg(long)]
    role_arn: Option<String>,
    /// Reads only the files whose day and delivery time are at or after this time (RFC 3339).
    #[arg(long)]
    start_event_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Reads only the files whose day and delivery time are at or before this time (RFC 3339).
    #[arg(long)]
    end_event_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Resumes a FAILED or STOPPED import instead of starting one.
    #[arg(long, conflicts_with_all = ["source", "store", "start_event_time", "end_event_time"])]
    retry: Option<String>,
    /// The server's KMS key file (`serve --kms-keys`), to import into a store encrypted with one.
    #[arg(long, env = "TRAILLAKE_KMS_KEYS")]
    kms_keys: Option<std::path::PathBuf>,
}

/// Runs `traillake import`; returns false unless the import COMPLETED.
pub async fn import(args: ImportArgs) -> anyhow::Result<bool> {
    let root = open_root(&args.root, args.kms_keys.as_deref())?;
    let catalog = Arc::new(Catalog::load(&root).await?);
    let imports = Imports::open(root, Arc::clone(&catalog), RunSettings::default(), false).await?;
    let account = args.account_id.as_str();
    let started = match &args.retry {
        Some(id) => imports.retry(account, id).await?,
        None => {
            let store = find_store(&catalog, account, args.store.as_deref().unwrap_or_default()).await?;
            let role_arn = args
                .role_arn
                .clone()
                .unwrap_or_else(|| format!("arn:aws:iam::{account}:role/traillake-import"));
            let request = StartImportRequest {
                destinations: vec![store.id.clone()],
                import_source: Some(ImportSource {
                    s3: Some(S3ImportSource {
                        s3_location_uri: args.source.clone(),
                        s3_bucket_region: Some(args.bucket_region.clone()),
                        s3_bucket_access_role_arn: Some(role_arn),
                    }),
                }),
                start_event_time: args.start_event_time.map(traillake_api::wire::timestamp),
                end_event_time: args.end_event_time.map(traillake_api::wire::timestamp),
                import_id: None,
            };
            let ImportStart::New(new) = check_start(&request).map_err(|error| anyhow::anyhow!("{}", error.message))?
            else {
                bail!("a new import was asked for");
            };
            imports
                .start(account, NewImport::new(store.id, new), chrono::Utc::now())
                .await?
        }
    };
    println!(
        "import {} from {} into event data store {}",
        started.id, started.source.uri, started.destination
    );

    let progress = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]").expect("a valid template"));
    progress.enable_steady_tick(Duration::from_millis(200));
    let ended = loop {
        tokio::select! {
            ended = imports.wait(account, &started.id) => break ended?,
            _ = tokio::signal::ctrl_c() => {
                progress.set_message("stopping");
                imports.stop(account, &started.id, Duration::from_secs(60)).await?;
            }
            () = tokio::time::sleep(Duration::from_millis(250)) => {
                progress.set_message(describe(&imports.get(account, &started.id)?));
            }
        }
    };
    progress.finish_and_clear();
    println!("{}", describe(&ended));
    for failure in imports.failures(account, &ended.id)? {
        if failure.status != ImportFailureStatus::Succeeded {
            println!(
                "failed {}: {}: {}",
                failure.location, failure.error_type, failure.error_message
            );
        }
    }
    if ended.status != ImportStatus::Completed {
        println!("`traillake import --retry {}` resumes it", ended.id);
    }
    Ok(ended.status == ImportStatus::Completed)
}

fn describe(record: &ImportRecord) -> String {
    let statistics = record.checkpoint.statistics;
    format!(
        "{:?}: {}/{} day prefixes, {} files, {} events stored, {} failed",
        record.status,
        statistics.prefixes_completed,
        statistics.prefixes_found,
        statistics.files_completed,
        statistics.events_completed,
        statistics.failed_entries
    )
}
