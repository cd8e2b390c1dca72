//! Group commit: one writer task per event data store takes the batches of every PutAuditEvents
//! request that arrives while its previous write runs, and stores them all as one segment of the
//! store's write-ahead log (`traillake_lake::wal`). A request is answered only once the segment
//! that holds its events is stored, so an acknowledged event is stored, and queries see it.
//!
//! A flusher per store, on a thread of its own, moves the log's segments into the store's table: once
//! [`FLUSH_AT_BYTES`] are waiting, or [`FLUSH_AFTER`] after the oldest waiting segment was
//! written. When more than [`MAX_BACKLOG_BYTES`] wait (the table's storage fails or falls behind),
//! the writer waits for the flusher before it writes more, so the log stays bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use tokio::sync::{Notify, mpsc, oneshot};
use traillake_api::selectors::StoreKind;
use traillake_lake::wal::SegmentWriter;
use traillake_lake::{EventTable, LakeError, LakeRoot, WriteAheadLog};

/// Requests waiting for one store's writer at most; more wait for room (backpressure).
const QUEUE: usize = 1024;

/// Bytes of waiting segments that start a flush.
pub const FLUSH_AT_BYTES: u64 = 32 * 1024 * 1024;

/// How long a segment waits for a flush at most.
pub const FLUSH_AFTER: Duration = Duration::from_secs(5);

/// Bytes of waiting segments above which the writer waits for the flusher.
pub const MAX_BACKLOG_BYTES: u64 = 512 * 1024 * 1024;

/// A batch waiting to be stored, and where to say how its write went.
struct Pending {
    batch: RecordBatch,
    done: oneshot::Sender<Result<(), String>>,
}

/// The writer tasks, one per store, started on first use.
#[derive(Debug, Default)]
pub struct GroupCommit {
    writers: Mutex<HashMap<String, mpsc::Sender<Pending>>>,
}

impl GroupCommit {
    /// Stores a batch in a store's write-ahead log with the batches of concurrent callers; returns
    /// once it is stored, or the reason it is not.
    pub async fn append(&self, root: &LakeRoot, store_id: &str, batch: RecordBatch) -> Result<(), String> {
        let sender = {
            let mut writers = self.writers.lock().expect("the writers' lock is never poisoned");
            match writers.get(store_id) {
                Some(sender) => sender.clone(),
                None => {
                    let sender = start(root, store_id).map_err(|error| describe(&error))?;
                    writers.insert(store_id.to_string(), sender.clone());
                    sender
                }
            }
        };
        let (done, outcome) = oneshot::channel();
        sender.send(Pending { batch, done }).await.map_err(|_| "the store's writer has stopped".to_string())?;
        outcome.await.map_err(|_| "the store's writer has stopped".to_string())?
    }
}

/// Starts the writer and the flusher of a store; returns where to send batches.
fn start(root: &LakeRoot, store_id: &str) -> Result<mpsc::Sender<Pending>, LakeError> {
    let table = EventTable::new(root, store_id, StoreKind::ActivityAuditLog);
    let wal = WriteAheadLog::new(&table)?;
    let backlog = Arc::new(Backlog::default());
    let (sender, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(run_writer(wal.writer(), store_id.to_string(), receiver, Arc::clone(&backlog)));
    // A flush encodes and compresses tens of thousands of rows without yielding: on a thread of
    // its own, it takes turns with the request handlers instead of stalling one of them.
    let flusher = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|source| LakeError::Io {
        context: "starting the write-ahead log's flusher".to_string(),
        source,
    })?;
    let store_id = store_id.to_string();
    std::thread::Builder::new()
        .name("wal-flusher".to_string())
        .spawn(move || flusher.block_on(run_flusher(wal, store_id, backlog)))
        .map_err(|source| LakeError::Io { context: "starting the write-ahead log's flusher".to_string(), source })?;
    Ok(sender)
}

/// The bytes the writer stored and the flusher has not yet moved into the table.
#[derive(Debug, Default)]
struct Backlog {
    bytes: Mutex<(u64, Option<Instant>)>,
    written: Notify,
    flushed: Notify,
}

impl Backlog {
    /// Returns the bytes waiting, and when the oldest of them was written.
    fn waiting(&self) -> (u64, Option<Instant>) {
        *self.bytes.lock().expect("the backlog's lock is never poisoned")
    }

    fn add(&self, bytes: u64) {
        let mut waiting = self.bytes.lock().expect("the backlog's lock is never poisoned");
        waiting.0 += bytes;
        waiting.1.get_or_insert_with(Instant::now);
        self.written.notify_one();
    }

    fn remove(&self, bytes: u64) {
        let mut waiting = self.bytes.lock().expect("the backlog's lock is never poisoned");
        waiting.0 = waiting.0.saturating_sub(bytes);
        if waiting.0 == 0 {
            waiting.1 = None;
        }
        self.flushed.notify_one();
    }
}

/// Stores whatever is waiting as one segment, again and again, until every sender is gone.
async fn run_writer(mut segments: SegmentWriter, store_id: String, mut receiver: mpsc::Receiver<Pending>, backlog: Arc<Backlog>) {
    while let Some(first) = receiver.recv().await {
        while backlog.waiting().0 > MAX_BACKLOG_BYTES {
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
                backlog.add(bytes);
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
                Err(describe(&error))
            }
        };
        for pending in group {
            let _ = pending.done.send(outcome.clone());
        }
    }
}

/// Moves the log's segments into the table when enough of them wait, or when they waited long
/// enough.
async fn run_flusher(wal: WriteAheadLog, store_id: String, backlog: Arc<Backlog>) {
    loop {
        let (bytes, since) = backlog.waiting();
        let Some(since) = since else {
            backlog.written.notified().await;
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

fn describe(error: &LakeError) -> String {
    match error {
        LakeError::Invalid(reason) => reason.clone(),
        _ => "the events could not be committed to the event data store; see the server log".to_string(),
    }
}
