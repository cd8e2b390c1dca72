//! One run of an import, from its checkpoint to its end or to StopImport.
//!
//! INITIALIZING lists the source once to count the day prefixes selected; IN_PROGRESS first
//! re-attempts the locations that failed before (a retry), then lists the source again from the
//! checkpoint's cursor. Objects are listed in key order, so the cursor says exactly which files
//! are done. Files are fetched and made rows `files_in_flight` at a time, in listing order, and
//! their results are applied in that order: rows gather until a checkpoint (every
//! `commit_rows` rows or `commit_every`), which commits them together with its sequence number
//! (see `record`). A file is stored whole or not at all: one that is not gzip, not JSON, or has a
//! record that cannot be made a row stores nothing and gets a failure entry, so that a retry can
//! read it again without storing any event twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use futures::StreamExt as _;
use object_store::{ObjectMeta, ObjectStore};
use tokio::sync::watch;
use traillake_api::shapes::{ImportFailureStatus, ImportStatus};
use traillake_lake::events::files::{FileProblem, InvalidFile, MAX_TEXT_BYTES, file_text, is_gzip, parse_records};
use traillake_lake::loader::records_rows;
use traillake_lake::{AppProgress, EventTable};

use super::failures::Failures;
use super::layout::{NameWindow, trail_file};
use super::record::{Checkpoint, ImportFailure, ImportRecord, save_failures, save_record};
use super::source::TrailSource;
use super::{ImportError, SharedSlot};

/// How an import runs.
#[derive(Debug, Clone, Copy)]
pub struct RunSettings {
    /// Rows gathered before a checkpoint commits them.
    pub commit_rows: usize,
    /// The longest time between checkpoints while files are processed, so statistics move.
    pub commit_every: Duration,
    /// Files fetched and made rows at once.
    pub files_in_flight: usize,
    /// The largest log file read, compressed (CloudTrail writes at most 50 MB).
    pub max_file_bytes: u64,
    /// The largest log file read, uncompressed.
    pub max_text_bytes: u64,
}

impl Default for RunSettings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            commit_rows: 64 * 1024,
            commit_every: Duration::from_secs(5),
            files_in_flight: 2 * cores,
            max_file_bytes: 64 * 1024 * 1024,
            max_text_bytes: MAX_TEXT_BYTES,
        }
    }
}

/// A unit of work: a file that failed before, or a file of the listing.
enum Work {
    Retry { key: String },
    Listed { key: String, day_prefix: String, size: u64 },
}

impl Work {
    fn key(&self) -> &str {
        match self {
            Work::Retry { key } | Work::Listed { key, .. } => key,
        }
    }
}

/// What reading a file gave.
enum FileOutcome {
    Stored { batch: RecordBatch },
    Failed(FileFailure),
}

/// Why a file stored nothing: the error types ListImportFailures reports.
#[derive(Debug, thiserror::Error)]
enum FileFailure {
    /// The object is not a gzip log file, or its gzip stream is broken.
    #[error("{0}")]
    InvalidFileFormat(String),
    /// The object, or its text once unpacked, is larger than an import reads.
    #[error("{0}")]
    FileTooLarge(String),
    /// The text is not JSON records.
    #[error("{0}")]
    InvalidJson(String),
    /// A record cannot be made a row, so none of the file is stored.
    #[error("{0}")]
    InvalidRecord(String),
    /// The bucket refused the credentials or the request.
    #[error("the object could not be read: {0}")]
    AccessDenied(object_store::Error),
    /// The object could not be read.
    #[error("the object could not be read: {0}")]
    ReadFailed(object_store::Error),
    /// Reading the file failed inside the server.
    #[error("reading the file failed: {0}")]
    Internal(tokio::task::JoinError),
}

impl FileFailure {
    /// Returns the error type of the failure entry.
    fn code(&self) -> &'static str {
        match self {
            FileFailure::InvalidFileFormat(_) => "InvalidFileFormat",
            FileFailure::FileTooLarge(_) => "FileTooLarge",
            FileFailure::InvalidJson(_) => "InvalidJson",
            FileFailure::InvalidRecord(_) => "InvalidRecord",
            FileFailure::AccessDenied(_) => "AccessDenied",
            FileFailure::ReadFailed(_) => "ReadFailed",
            FileFailure::Internal(_) => "InternalError",
        }
    }
}

impl From<InvalidFile> for FileFailure {
    fn from(invalid: InvalidFile) -> Self {
        match invalid.problem {
            FileProblem::Format => FileFailure::InvalidFileFormat(invalid.reason),
            FileProblem::TooLarge => FileFailure::FileTooLarge(invalid.reason),
            FileProblem::Json => FileFailure::InvalidJson(invalid.reason),
        }
    }
}

/// An import being run.
pub(super) struct Runner {
    /// The record as last stored.
    record: ImportRecord,
    /// The work done since, up to the next checkpoint.
    next: Checkpoint,
    /// The failure entries, with the changes not yet stored.
    failures: Failures,
    /// The failure entries changed since the last checkpoint.
    changes: Vec<ImportFailure>,
    batches: Vec<RecordBatch>,
    rows: usize,
    last_checkpoint: Instant,
    lake: Arc<dyn ObjectStore>,
    table: EventTable,
    source: TrailSource,
    window: NameWindow,
    oldest_kept: DateTime<Utc>,
    max_event_bytes: usize,
    slot: SharedSlot,
    stop: watch::Receiver<bool>,
    settings: RunSettings,
}

/// Returns the key and day prefix of a listed object the import reads, or `None` if it skips it.
fn selected(meta: &ObjectMeta, window: NameWindow) -> Option<Work> {
    let key = meta.location.as_ref();
    let file = trail_file(key)?;
    window.holds(&file).then(|| Work::Listed {
        key: key.to_string(),
        day_prefix: file.day_prefix.to_string(),
        size: meta.size,
    })
}

impl Runner {
    /// Returns the runner of a settled record (no pending checkpoint) and its failure entries.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        record: ImportRecord,
        failures: Failures,
        lake: Arc<dyn ObjectStore>,
        table: EventTable,
        source: TrailSource,
        oldest_kept: DateTime<Utc>,
        max_event_bytes: usize,
        slot: SharedSlot,
        stop: watch::Receiver<bool>,
        settings: RunSettings,
    ) -> Self {
        let window = NameWindow {
            start: record.start,
            end: record.end,
        };
        Self {
            next: record.checkpoint.clone(),
            record,
            failures,
            changes: Vec::new(),
            batches: Vec::new(),
            rows: 0,
            last_checkpoint: Instant::now(),
            lake,
            table,
            source,
            window,
            oldest_kept,
            max_event_bytes,
            slot,
            stop,
            settings,
        }
    }

    /// Runs the import to its end or to StopImport. A fault of the lake (not of a file) ends it
    /// FAILED; StartImport with its ID resumes it from its last checkpoint.
    pub(super) async fn run(mut self) {
        let id = self.record.id.clone();
        match self.run_to_end().await {
            Ok(status) => {
                tracing::info!(import_id = %id, ?status, statistics = ?self.record.checkpoint.statistics, "import ended")
            }
            Err(error) => {
                tracing::error!(import_id = %id, %error, "import failed on a fault of the lake; a retry resumes it");
                self.record.status = ImportStatus::Failed;
                self.record.updated = Utc::now();
                self.failures.upsert(ImportFailure {
                    location: self.record.source.uri.clone(),
                    status: ImportFailureStatus::Failed,
                    error_type: "InternalError".into(),
                    error_message:
                        "the import stopped on a fault of the lake's storage; StartImport with the ImportId resumes it"
                            .into(),
                    updated: self.record.updated,
                });
                if let Err(error) = save_record(self.lake.as_ref(), &self.record).await {
                    tracing::error!(import_id = %id, %error, "could not store the failed import's status");
                }
                let mut slot = self.slot.lock().expect("import slot");
                slot.record = self.record.clone();
                slot.failures = self.failures.clone();
            }
        }
        // A retry may already have started the next run, with its own stop channel.
        let mut slot = self.slot.lock().expect("import slot");
        if slot
            .stop
            .as_ref()
            .is_some_and(|stop| stop.subscribe().same_channel(&self.stop))
        {
            slot.stop = None;
            slot.run_ended.send_replace(());
        }
    }

    async fn run_to_end(&mut self) -> Result<ImportStatus, ImportError> {
        let mut stop = self.stop.clone();
        self.set_status(ImportStatus::Initializing).await?;
        let counted = tokio::select! {
            biased;
            () = stop_requested(&mut stop) => return self.stopped().await,
            counted = self.count_prefixes() => counted,
        };
        let found = match counted {
            Ok(found) => found,
            Err(error) => {
                self.source_failed(&error);
                return self.finish().await;
            }
        };
        self.next.statistics.prefixes_found = found;
        self.record.checkpoint.statistics.prefixes_found = found;
        self.set_status(ImportStatus::InProgress).await?;

        // A retry re-attempts what failed: files by reading them again, a listing by listing again.
        let now = Utc::now();
        let retried: Vec<ImportFailure> = self
            .failures
            .open()
            .map(|failure| ImportFailure {
                status: ImportFailureStatus::Retry,
                updated: now,
                ..failure.clone()
            })
            .collect();
        for failure in &retried {
            self.change(failure.clone());
        }
        if !retried.is_empty() {
            self.checkpoint(None).await?;
        }
        let (files, listings): (Vec<_>, Vec<_>) = retried.into_iter().partition(|f| trail_file(&f.location).is_some());

        let window = self.window;
        let retries = futures::stream::iter(
            files
                .into_iter()
                .map(|failure| Ok(Work::Retry { key: failure.location })),
        );
        let listed = self
            .source
            .list(self.next.cursor.as_deref())
            .filter_map(move |item| futures::future::ready(item.map(|meta| selected(&meta, window)).transpose()));
        let (source, settings, oldest_kept) = (self.source.clone(), self.settings, self.oldest_kept);
        let max_event_bytes = self.max_event_bytes;
        let outcomes = retries
            .chain(listed)
            .map(move |work| {
                let source = source.clone();
                async move {
                    let work = work?;
                    let outcome = read_file(&source, &work, oldest_kept, max_event_bytes, settings).await;
                    Ok::<_, object_store::Error>((work, outcome))
                }
            })
            .buffered(self.settings.files_in_flight);
        futures::pin_mut!(outcomes);
        loop {
            let next = tokio::select! {
                biased;
                () = stop_requested(&mut stop) => return self.stopped().await,
                next = outcomes.next() => next,
            };
            match next {
                None => break,
                Some(Ok((work, outcome))) => self.apply(work, outcome).await?,
                Some(Err(error)) => {
                    self.source_failed(&error);
                    return self.finish().await;
                }
            }
        }
        let now = Utc::now();
        for listing in listings {
            self.change(ImportFailure {
                status: ImportFailureStatus::Succeeded,
                updated: now,
                ..listing
            });
        }
        self.finish().await
    }

    /// Counts the day prefixes with files selected; keys come in order, so a day's are together.
    async fn count_prefixes(&self) -> Result<i64, object_store::Error> {
        let mut listing = self.source.list(None);
        let (mut found, mut last) = (0, None::<String>);
        while let Some(meta) = listing.next().await {
            if let Some(Work::Listed { day_prefix, .. }) = selected(&meta?, self.window)
                && last.as_deref() != Some(day_prefix.as_str())
            {
                found += 1;
                last = Some(day_prefix);
            }
        }
        Ok(found)
    }

    /// Applies a file's outcome, in listing order, and makes a checkpoint when it is time.
    async fn apply(&mut self, work: Work, outcome: FileOutcome) -> Result<(), ImportError> {
        if let Work::Listed { key, day_prefix, .. } = &work {
            if self.next.open_prefix.as_deref() != Some(day_prefix.as_str()) {
                if self.next.open_prefix.is_some() {
                    self.next.statistics.prefixes_completed += 1;
                }
                self.next.open_prefix = Some(day_prefix.clone());
            }
            self.next.cursor = Some(key.clone());
        }
        let now = Utc::now();
        match outcome {
            FileOutcome::Stored { batch } => {
                self.next.statistics.files_completed += 1;
                self.next.statistics.events_completed += batch.num_rows() as i64;
                self.rows += batch.num_rows();
                if batch.num_rows() > 0 {
                    self.batches.push(batch);
                }
                if let Work::Retry { key } = &work
                    && let Some(failure) = self.failures.get(key)
                {
                    let failure = ImportFailure {
                        status: ImportFailureStatus::Succeeded,
                        updated: now,
                        ..failure.clone()
                    };
                    self.change(failure);
                }
            }
            FileOutcome::Failed(failure) => self.change(ImportFailure {
                location: work.key().to_string(),
                status: ImportFailureStatus::Failed,
                error_type: failure.code().to_string(),
                error_message: failure.to_string(),
                updated: now,
            }),
        }
        if self.rows >= self.settings.commit_rows || self.last_checkpoint.elapsed() >= self.settings.commit_every {
            self.checkpoint(None).await?;
        }
        Ok(())
    }

    fn change(&mut self, failure: ImportFailure) {
        self.failures.upsert(failure.clone());
        self.changes.push(failure);
    }

    /// Records that the source could not be listed.
    fn source_failed(&mut self, error: &object_store::Error) {
        tracing::warn!(import_id = %self.record.id, %error, "listing the import's source failed");
        let error_type = if is_access_denied(error) {
            "AccessDenied"
        } else {
            "ListFailed"
        };
        self.change(ImportFailure {
            location: self.record.source.uri.clone(),
            status: ImportFailureStatus::Failed,
            error_type: error_type.into(),
            error_message: format!("the source could not be listed: {error}"),
            updated: Utc::now(),
        });
    }

    /// Ends the run: the last day prefix completes, and the import is FAILED if a location is
    /// still failed, COMPLETED otherwise.
    async fn finish(&mut self) -> Result<ImportStatus, ImportError> {
        if self.next.open_prefix.take().is_some() {
            self.next.statistics.prefixes_completed += 1;
        }
        let status = if self.failures.open().next().is_some() {
            ImportStatus::Failed
        } else {
            ImportStatus::Completed
        };
        self.checkpoint(Some(status)).await?;
        Ok(status)
    }

    /// Ends the run on StopImport: the work since the last checkpoint is dropped (a retry does it
    /// again), and the import is STOPPED.
    async fn stopped(&mut self) -> Result<ImportStatus, ImportError> {
        self.set_status(ImportStatus::Stopped).await?;
        Ok(ImportStatus::Stopped)
    }

    /// Stores a new status with the last checkpoint, and shows it.
    async fn set_status(&mut self, status: ImportStatus) -> Result<(), ImportError> {
        let mut record = self.record.clone();
        record.status = status;
        record.updated = Utc::now();
        save_record(self.lake.as_ref(), &record).await?;
        self.record = record;
        self.slot.lock().expect("import slot").record = self.record.clone();
        Ok(())
    }

    /// Stores the work done since the last checkpoint: the failure entries changed, then the rows
    /// with the checkpoint's sequence number, then the record; then shows it.
    async fn checkpoint(&mut self, status: Option<ImportStatus>) -> Result<(), ImportError> {
        let seq = self.record.checkpoint.seq + 1;
        self.next.seq = seq;
        self.next.statistics.failed_entries = self.failures.open().count() as i64;
        if !self.changes.is_empty() {
            save_failures(self.lake.as_ref(), &self.record.id, seq, &self.changes).await?;
        }
        let mut record = self.record.clone();
        record.status = status.unwrap_or(record.status);
        record.updated = Utc::now();
        if !self.batches.is_empty() {
            record.pending = Some(self.next.clone());
            save_record(self.lake.as_ref(), &record).await?;
            let mark = AppProgress {
                writer: record.writer(),
                progress: seq,
            };
            self.table.append_marked(&self.batches, &[mark]).await?;
            record.pending = None;
        }
        record.checkpoint = self.next.clone();
        save_record(self.lake.as_ref(), &record).await?;
        self.record = record;
        self.batches.clear();
        self.rows = 0;
        self.last_checkpoint = Instant::now();
        let mut slot = self.slot.lock().expect("import slot");
        slot.record = self.record.clone();
        for failure in self.changes.drain(..) {
            slot.failures.upsert(failure);
        }
        Ok(())
    }
}

/// Completes when StopImport asks the run to stop (never, if no one can ask any more).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Returns true if the bucket refused the credentials or the request.
fn is_access_denied(error: &object_store::Error) -> bool {
    matches!(
        error,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    )
}

/// Fetches a file and makes its rows on a blocking thread.
async fn read_file(
    source: &TrailSource,
    work: &Work,
    oldest_kept: DateTime<Utc>,
    max_event_bytes: usize,
    settings: RunSettings,
) -> FileOutcome {
    if let Work::Listed { size, .. } = work
        && *size > settings.max_file_bytes
    {
        return FileOutcome::Failed(too_large(*size, settings.max_file_bytes));
    }
    let bytes = match source.fetch(work.key()).await {
        Ok(bytes) => bytes,
        Err(error) if is_access_denied(&error) => return FileOutcome::Failed(FileFailure::AccessDenied(error)),
        Err(error) => return FileOutcome::Failed(FileFailure::ReadFailed(error)),
    };
    if bytes.len() as u64 > settings.max_file_bytes {
        return FileOutcome::Failed(too_large(bytes.len() as u64, settings.max_file_bytes));
    }
    tokio::task::spawn_blocking(move || file_outcome(&bytes, oldest_kept, max_event_bytes, settings.max_text_bytes))
        .await
        .unwrap_or_else(|error| FileOutcome::Failed(FileFailure::Internal(error)))
}

fn too_large(size: u64, max: u64) -> FileFailure {
    FileFailure::FileTooLarge(format!(
        "the object has {size} bytes; log files of at most {max} bytes are read"
    ))
}

/// Returns the rows of a gzip trail log file, or why it stores nothing.
fn file_outcome(bytes: &[u8], oldest_kept: DateTime<Utc>, max_event_bytes: usize, max_text_bytes: u64) -> FileOutcome {
    match file_rows(bytes, oldest_kept, max_event_bytes, max_text_bytes) {
        Ok(batch) => FileOutcome::Stored { batch },
        Err(failure) => FileOutcome::Failed(failure),
    }
}

fn file_rows(
    bytes: &[u8],
    oldest_kept: DateTime<Utc>,
    max_event_bytes: usize,
    max_text_bytes: u64,
) -> Result<RecordBatch, FileFailure> {
    if !is_gzip(bytes) {
        return Err(FileFailure::InvalidFileFormat(
            "the object is not gzip-compressed; only .json.gz log files are imported".to_string(),
        ));
    }
    let text = file_text(bytes, max_text_bytes)?;
    let records = parse_records(&text)?;
    let rows = records_rows(&records, oldest_kept, max_event_bytes);
    match rows.rejected.first() {
        Some(first) => Err(FileFailure::InvalidRecord(format!(
            "{} of {} records cannot be stored, so none of the file is (record {}: {})",
            rows.rejected.len(),
            rows.records,
            first.position,
            first.reason
        ))),
        None => Ok(rows.batch),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn failure_of(outcome: FileOutcome) -> (&'static str, String) {
        match outcome {
            FileOutcome::Failed(failure) => (failure.code(), failure.to_string()),
            FileOutcome::Stored { .. } => panic!("the file was stored"),
        }
    }

    #[test]
    fn stores_a_file_whole_or_not_at_all() {
        let oldest = DateTime::<Utc>::MIN_UTC;
        let good = r#"{"eventVersion":"1.08","eventTime":"2024-01-02T03:04:05Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"e1"}"#;
        match file_outcome(
            &gzip(&format!(r#"{{"Records":[{good},{good}]}}"#)),
            oldest,
            usize::MAX,
            1 << 20,
        ) {
            FileOutcome::Stored { batch } => assert_eq!(batch.num_rows(), 2),
            FileOutcome::Failed(failure) => panic!("{failure}"),
        }
        assert_eq!(
            failure_of(file_outcome(good.as_bytes(), oldest, usize::MAX, 1 << 20)).0,
            "InvalidFileFormat"
        );
        let mut corrupt = gzip(good);
        corrupt.truncate(corrupt.len() / 2);
        assert_eq!(
            failure_of(file_outcome(&corrupt, oldest, usize::MAX, 1 << 20)).0,
            "InvalidFileFormat"
        );
        assert_eq!(
            failure_of(file_outcome(&gzip("{\"Records\": [1, "), oldest, usize::MAX, 1 << 20)).0,
            "InvalidJson"
        );
        let (kind, message) = failure_of(file_outcome(
            &gzip(&format!(r#"{{"Records":[{good},{{"a":1}}]}}"#)),
            oldest,
            usize::MAX,
            1 << 20,
        ));
        assert_eq!(kind, "InvalidRecord");
        assert!(
            message.starts_with("1 of 2 records cannot be stored, so none of the file is (record 2:"),
            "{message}"
        );
        assert_eq!(
            failure_of(file_outcome(
                &gzip(&format!(r#"{{"Records":[{good}]}}"#)),
                oldest,
                usize::MAX,
                10
            ))
            .0,
            "FileTooLarge"
        );
        // A record larger than the store's MaxEventSize keeps the whole file out, with the reason.
        let (kind, message) = failure_of(file_outcome(
            &gzip(&format!(r#"{{"Records":[{good}]}}"#)),
            oldest,
            good.len() - 1,
            1 << 20,
        ));
        assert_eq!(kind, "InvalidRecord");
        assert!(message.contains("MaxEventSize"), "{message}");
    }
}
