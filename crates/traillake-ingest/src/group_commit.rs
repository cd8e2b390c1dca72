//! Group commit: one writer task per table (an event data store's, or an account's Event history)
//! takes the batches of every caller that arrives while its previous write runs (PutAuditEvents
//! requests, recorded API calls, followed trail files), and stores them all as one segment of the
//! table's write-ahead log (`traillake_lake::wal`). A caller is answered only once the segment that
//! holds its events is stored, so an acknowledged event is stored, and queries see it.
//!
//! A flusher per table, on a thread of its own, moves the log's segments into the store's table: once
//! [`FLUSH_AT_BYTES`] are waiting, or [`FLUSH_AFTER`] after the oldest waiting segment was
//! written. When more than [`MAX_BACKLOG_BYTES`] wait (the table's storage fails or falls behind),
//! the writer waits for the flusher before it writes more, so the log stays bounded. A flusher
//! that found nothing to flush for [`FLUSHER_IDLE`] stops, and the writer starts another with its
//! next segment, so a server does not keep a thread for every table ever written to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use tokio::sync::{Notify, mpsc, oneshot};
use traillake_lake::wal::SegmentWriter;
use traillake_lake::{EventTable, LakeError, WriteAheadLog};

/// Requests waiting for one store's writer at most; more wait for room (backpressure).
const QUEUE: usize = 1024;

/// Bytes of waiting segments that start a flush.
pub const FLUSH_AT_BYTES: u64 = 32 * 1024 * 1024;

/// How long a segment waits for a flush at most.
pub const FLUSH_AFTER: Duration = Duration::from_secs(5);

/// Bytes of waiting segments above which the writer waits for the flusher.
pub const MAX_BACKLOG_BYTES: u64 = 512 * 1024 * 1024;

/// How long a flusher with nothing to flush waits before it stops.
pub const FLUSHER_IDLE: Duration = Duration::from_secs(60);

/// A batch waiting to be stored, and where to say how its write went.
struct Pending {
    batch: RecordBatch,
    done: oneshot::Sender<Result<(), CommitError>>,
}

/// Why a batch was not stored; one error answers every request of the group, so it is shared.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The write-ahead log could not be opened or written.
    #[error(transparent)]
    Lake(Arc<LakeError>),
    /// The store's writer task has stopped.
    #[error("the store's writer has stopped")]
    WriterStopped,
}

impl From<LakeError> for CommitError {
    fn from(error: LakeError) -> Self {
        CommitError::Lake(Arc::new(error))
    }
}

/// The writer tasks, one per table (by its name), started on first use.
#[derive(Debug)]
pub struct GroupCommit {
    writers: Mutex<HashMap<String, Writer>>,
    /// How long a flusher with nothing to flush waits before it stops.
    flusher_idle: Duration,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            writers: Mutex::default(),
            flusher_idle: FLUSHER_IDLE,
        }
    }
}

/// A store's writer task: where to send it batches, and what waits for its flusher.
#[derive(Debug, Clone)]
struct Writer {
    sender: mpsc::Sender<Pending>,
    #[cfg_attr(not(test), expect(dead_code, reason = "the tests read it to see the flusher stop"))]
    backlog: Arc<Backlog>,
}

impl GroupCommit {
    /// Stores a batch in a table's write-ahead log with the batches of concurrent callers; returns
    /// once it is stored, or the reason it is not.
    pub async fn append(&self, table: &EventTable, batch: RecordBatch) -> Result<(), CommitError> {
        let Writer { sender, .. } = self.writer(table)?;
        let (done, outcome) = oneshot::channel();
        sender
            .send(Pending { batch, done })
            .await
            .map_err(|_| CommitError::WriterStopped)?;
        outcome.await.map_err(|_| CommitError::WriterStopped)?
    }

    /// Returns the writer of a table, started if it was not.
    fn writer(&self, table: &EventTable) -> Result<Writer, LakeError> {
        let store_id = table.name();
        let mut writers = self.writers.lock().expect("the writers' lock is never poisoned");
        if let Some(writer) = writers.get(store_id) {
            return Ok(writer.clone());
        }
        let wal = WriteAheadLog::new(table)?;
        let (sender, receiver) = mpsc::channel(QUEUE);
        let backlog = Arc::new(Backlog::default());
        let flusher = Flusher {
            wal: wal.clone(),
            store_id: store_id.to_string(),
            backlog: Arc::clone(&backlog),
            idle: self.flusher_idle,
        };
        tokio::spawn(run_writer(wal.writer(), flusher, receiver));
        let writer = Writer { sender, backlog };
        writers.insert(store_id.to_string(), writer.clone());
        Ok(writer)
    }
}

/// What a table's flusher needs; the writer starts one when none runs.
#[derive(Clone)]
struct Flusher {
    wal: WriteAheadLog,
    store_id: String,
    backlog: Arc<Backlog>,
    idle: Duration,
}

impl Flusher {
    /// Starts the flusher on a thread of its own: a flush encodes and compresses tens of thousands
    /// of rows without yielding, so there it takes turns with the request handlers instead of
    /// stalling one of them.
    fn start(&self) -> Result<(), LakeError> {
        let describe = |source| LakeError::Io {
            context: "starting the write-ahead log's flusher".to_string(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(describe)?;
        let flusher = self.clone();
        std::thread::Builder::new()
            .name("wal-flusher".to_string())
            .spawn(move || {
                let backlog = Arc::clone(&flusher.backlog);
                let run = std::panic::AssertUnwindSafe(|| runtime.block_on(run_flusher(flusher)));
                if std::panic::catch_unwind(run).is_err() {
                    // The panic is printed; the next segment starts another flusher.
                    backlog.flusher_stopped();
                }
            })
            .map(drop)
            .map_err(describe)
    }
}

/// The bytes the writer stored and the flusher has not yet moved into the table.
#[derive(Debug, Default)]
struct Backlog {
    waiting: Mutex<Waiting>,
    written: Notify,
    flushed: Notify,
}

#[derive(Debug, Default, Clone, Copy)]
struct Waiting {
    bytes: u64,
    /// When the oldest waiting segment was written.
    since: Option<Instant>,
    /// Whether a flusher runs.
    flusher: bool,
}

impl Backlog {
    fn waiting(&self) -> Waiting {
        *self.waiting.lock().expect("the backlog's lock is never poisoned")
    }

    /// Counts a written segment; returns whether a flusher must be started (none runs).
    fn add(&self, bytes: u64) -> bool {
        let mut waiting = self.waiting.lock().expect("the backlog's lock is never poisoned");
        waiting.bytes += bytes;
        waiting.since.get_or_insert_with(Instant::now);
        self.written.notify_one();
        !std::mem::replace(&mut waiting.flusher, true)
    }

    fn remove(&self, bytes: u64) {
        let mut waiting = self.waiting.lock().expect("the backlog's lock is never poisoned");
        waiting.bytes = waiting.bytes.saturating_sub(bytes);
        if waiting.bytes == 0 {
            waiting.since = None;
        }
        self.flushed.notify_one();
    }

    /// Marks the flusher stopped if nothing waits for it; returns whether it stopped.
    fn stop_flusher_if_idle(&self) -> bool {
        let mut waiting = self.waiting.lock().expect("the backlog's lock is never poisoned");
        if waiting.since.is_some() {
            return false;
        }
        waiting.flusher = false;
        true
    }

    /// Marks the flusher stopped, as when it could not be started or it panicked.
    fn flusher_stopped(&self) {
        self.waiting
            .lock()
            .expect("the backlog's lock is never poisoned")
            .flusher = false;
    }
}

/// Stores whatever is waiting as one segment, again and again, until every sender is gone.
async fn run_writer(mut segments: SegmentWriter, flusher: Flusher, mut receiver: mpsc::Receiver<Pending>) {
    let Flusher { store_id, backlog, .. } = flusher.clone();
    while let Some(first) = receiver.recv().await {
        while backlog.waiting().bytes > MAX_BACKLOG_BYTES {
            tracing::warn!(store_id = %store_id, "the write-ahead log is full; waiting for the flusher");
            let _ = tokio::time::timeout(Duration::from_secs(1), backlog.flushed.notified()).await;
        }
        let mut group = vec![first];
        while let Ok(next) = receiver.try_recv() {
            group.push(next);
        }
        let batches: Vec<RecordBatch> = group.iter().map(|pending| pending.batch.clone()).collect();
        let started = Instant::now();
        let outcome = match segments.append(&batches).await {
            Ok(bytes) => {
                if backlog.add(bytes)
                    && let Err(error) = flusher.start()
                {
                    // The segment is stored; the next one tries again, and a restart flushes it.
                    backlog.flusher_stopped();
                    tracing::error!(store_id = %store_id, %error, "could not start the write-ahead log's flusher");
                }
                tracing::debug!(
                    store_id = %store_id,
                    requests = group.len(),
                    rows = batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
                    bytes,
                    duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "group commit"
                );
                Ok(())
            }
            Err(error) => {
                tracing::error!(store_id = %store_id, %error, requests = group.len(), "group commit failed");
                Err(CommitError::from(error))
            }
        };
        for pending in group {
            let _ = pending.done.send(outcome.clone());
        }
    }
}

/// Moves the log's segments into the table when enough of them wait, or when they waited long
/// enough; stops once nothing waited for the flusher's idle time.
async fn run_flusher(flusher: Flusher) {
    let Flusher {
        wal,
        store_id,
        backlog,
        idle,
    } = flusher;
    loop {
        let Waiting { bytes, since, .. } = backlog.waiting();
        let Some(since) = since else {
            if tokio::time::timeout(idle, backlog.written.notified()).await.is_err() && backlog.stop_flusher_if_idle() {
                tracing::debug!(store_id = %store_id, "the write-ahead log's flusher stopped: nothing to flush");
                return;
            }
            continue;
        };
        let waited = since.elapsed();
        if bytes < FLUSH_AT_BYTES && waited < FLUSH_AFTER {
            let _ = tokio::time::timeout(FLUSH_AFTER - waited, backlog.written.notified()).await;
            continue;
        }
        let started = Instant::now();
        match wal.flush().await {
            Ok(flushed) => {
                backlog.remove(flushed.bytes);
                tracing::debug!(
                    store_id = %store_id,
                    segments = flushed.segments,
                    rows = flushed.rows,
                    bytes = flushed.bytes,
                    duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "flushed the write-ahead log"
                );
                if flushed.segments == 0 {
                    // Nothing the table lacked: the bytes counted were flushed by another flush.
                    backlog.remove(bytes);
                }
            }
            Err(error) => {
                tracing::warn!(store_id = %store_id, %error, "flushing the write-ahead log failed; will retry");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use traillake_api::selectors::StoreKind;
    use traillake_lake::events::{AuditEnvelope, EventRows, audit_row};
    use traillake_lake::{LakeRoot, RootLocation};

    use super::*;

    fn one_event() -> RecordBatch {
        let envelope = AuditEnvelope {
            event_id: "6f1d2c7a-0c1e-4f0e-9a61-3c3b1f0d8e52",
            region: "us-east-1",
            owner_account_id: "123456789012",
            channel_arn: "arn:aws:cloudtrail:us-east-1:123456789012:channel/c1",
            ingestion_time: chrono::Utc::now(),
        };
        let data = r#"{"version": "1.0", "userIdentity": {"type": "CustomUser", "principalId": "alice"},
            "eventSource": "app.example.com", "eventName": "Login", "eventTime": "2026-11-01T00:00:00Z",
            "UID": "u-1", "recipientAccountId": "123456789012"}"#;
        let mut rows = EventRows::new(StoreKind::ActivityAuditLog, 1, 1024);
        rows.append(&audit_row(data, &envelope).unwrap());
        rows.finish()
    }

    async fn flusher_stops(writer: &Writer) {
        for _ in 0..300 {
            if !writer.backlog.waiting().flusher {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the flusher did not stop");
    }

    /// A store's flusher moves what waits into the table, stops once it found nothing to flush for
    /// its idle time, and is started again by the next segment.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_flusher_stops_when_idle_and_the_next_segment_starts_another() {
        let dir = tempfile::tempdir().unwrap();
        let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
        let commits = GroupCommit {
            flusher_idle: Duration::from_millis(200),
            ..GroupCommit::default()
        };
        let store = "5c2a6f0e-1111-4222-8333-444455556666";
        let table = EventTable::new(&root, store, StoreKind::ActivityAuditLog);
        let wal = WriteAheadLog::new(&table).unwrap();
        for written in 1..=2_usize {
            commits.append(&table, one_event()).await.unwrap();
            let writer = commits.writer(&table).unwrap();
            assert!(writer.backlog.waiting().flusher, "a segment starts a flusher");
            flusher_stops(&writer).await;
            assert_eq!(writer.backlog.waiting().bytes, 0);
            assert!(
                wal.segments().await.unwrap().is_empty(),
                "the flusher moved the segment before it stopped"
            );
            let snapshot = table.snapshot().await.unwrap().unwrap();
            let rows: usize = table
                .data_files(&snapshot)
                .unwrap()
                .iter()
                .map(|file| file.rows.unwrap())
                .sum();
            assert_eq!(rows, written);
        }
    }
}
