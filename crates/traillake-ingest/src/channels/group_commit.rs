//! Group commit: one writer task per event data store takes the batches of every PutAuditEvents
//! request that arrives while its previous commit runs, and appends them all in one Delta commit.
//! A request is answered only once the commit that holds its events has landed, so an
//! acknowledged event is stored; concurrent requests share one write, so the commit rate stays
//! bounded however many clients send.

use std::collections::HashMap;
use std::sync::Mutex;

use datafusion::arrow::array::RecordBatch;
use tokio::sync::{mpsc, oneshot};
use traillake_api::selectors::StoreKind;
use traillake_lake::{EventTable, LakeError, LakeRoot};

/// Requests waiting for one store's writer at most; more wait for room (backpressure).
const QUEUE: usize = 1024;

/// A batch waiting to be committed, and where to say how its commit went.
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
    /// Appends a batch to a store's table with the batches of concurrent callers; returns once it
    /// is committed, or the reason it is not.
    pub async fn append(&self, root: &LakeRoot, store_id: &str, batch: RecordBatch) -> Result<(), String> {
        let sender = {
            let mut writers = self.writers.lock().expect("the writers' lock is never poisoned");
            writers
                .entry(store_id.to_string())
                .or_insert_with(|| {
                    let (sender, receiver) = mpsc::channel(QUEUE);
                    let table = EventTable::new(root, store_id, StoreKind::ActivityAuditLog);
                    tokio::spawn(run_writer(table, store_id.to_string(), receiver));
                    sender
                })
                .clone()
        };
        let (done, outcome) = oneshot::channel();
        sender.send(Pending { batch, done }).await.map_err(|_| "the store's writer has stopped".to_string())?;
        outcome.await.map_err(|_| "the store's writer has stopped".to_string())?
    }
}

/// Commits whatever is waiting, again and again, until every sender is gone.
async fn run_writer(table: EventTable, store_id: String, mut receiver: mpsc::Receiver<Pending>) {
    let mut kept = None;
    while let Some(first) = receiver.recv().await {
        let mut group = vec![first];
        while let Ok(next) = receiver.try_recv() {
            group.push(next);
        }
        let batches: Vec<RecordBatch> = group.iter().map(|pending| pending.batch.clone()).collect();
        let started = std::time::Instant::now();
        let outcome = match table.append_kept(&mut kept, &batches).await {
            Ok(commit) => {
                tracing::debug!(
                    store_id = %store_id,
                    requests = group.len(),
                    rows = commit.rows,
                    version = commit.version,
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

fn describe(error: &LakeError) -> String {
    match error {
        LakeError::Invalid(reason) => reason.clone(),
        _ => "the events could not be committed to the event data store; see the server log".to_string(),
    }
}
