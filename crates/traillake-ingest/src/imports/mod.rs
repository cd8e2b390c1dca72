//! Imports of CloudTrail trail log files from an S3-compatible bucket into an event data store:
//! which objects are read ([`layout`]), the bucket ([`source`]), what the lake keeps of an import
//! ([`record`], [`failures`]), one run ([`runner`]), and [`Imports`], the imports of a lake:
//! starting, retrying, stopping and listing them, and resuming at start those that were running
//! when the server stopped.

pub mod failures;
pub mod layout;
pub mod record;
pub mod runner;
pub mod source;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use traillake_api::selectors::StoreKind;
use traillake_api::shapes::ImportStatus;
use traillake_lake::{Catalog, EventDataStoreRecord, EventTable, LakeError, LakeRoot};

use self::failures::Failures;
use self::record::{ImportFailure, ImportRecord, ImportSourceRecord, load_failures, load_records, save_record};
use self::runner::{RunSettings, Runner};
use self::source::TrailSource;

/// A failure of an import operation.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The account has no import with the ID.
    #[error("import {0} not found")]
    NotFound(String),
    /// An import of the account is INITIALIZING or IN_PROGRESS.
    #[error("import {0} of the account is still running; an account runs one import at a time")]
    AccountHasOngoingImport(String),
    /// The bucket or prefix cannot be read.
    #[error("{0}")]
    InvalidSource(String),
    /// The destination does not hold CloudTrail events.
    #[error("{0}")]
    InvalidCategory(String),
    /// The request contradicts the import's state.
    #[error("{0}")]
    InvalidParameter(String),
    /// The lake failed, or refused the destination.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Object storage failed.
    #[error("object storage: {0}")]
    Storage(#[from] object_store::Error),
    /// A stored document could not be read.
    #[error("{context}: {source}")]
    Corrupt {
        /// Which document.
        context: String,
        /// The cause.
        source: serde_json::Error,
    },
}

/// An import as the operations see it, and the way to stop its run.
pub(crate) struct Slot {
    record: ImportRecord,
    failures: Failures,
    /// Set while a run is going: sending `true` stops it.
    stop: Option<watch::Sender<bool>>,
    /// Told whenever a run ends (or an import ends without one), for those who wait for it.
    run_ended: watch::Sender<()>,
}

impl Slot {
    fn new(record: ImportRecord, failures: Failures) -> Self {
        Self {
            record,
            failures,
            stop: None,
            run_ended: watch::channel(()).0,
        }
    }
}

pub(crate) type SharedSlot = Arc<Mutex<Slot>>;

/// A new import whose members passed their checks.
#[derive(Debug, Clone)]
pub struct NewImport {
    /// The ID of the destination event data store.
    pub destination: String,
    /// The bucket and prefix to read.
    pub source: ImportSourceRecord,
    /// `StartEventTime`.
    pub start: Option<DateTime<Utc>>,
    /// `EndEventTime`.
    pub end: Option<DateTime<Utc>>,
}

impl NewImport {
    /// Returns the import StartImport's checked members ask for, into the store `destination` (the
    /// ID the caller resolved from the ARN or name given).
    pub fn new(destination: String, checked: traillake_api::imports::NewImport) -> Self {
        Self {
            destination,
            source: ImportSourceRecord {
                uri: checked.uri,
                bucket: checked.location.bucket,
                prefix: checked.location.prefix,
                region: checked.region,
                role_arn: checked.role_arn,
            },
            start: checked.start,
            end: checked.end,
        }
    }
}

/// The imports of a lake.
pub struct Imports {
    root: LakeRoot,
    catalog: Arc<Catalog>,
    slots: Mutex<BTreeMap<String, SharedSlot>>,
    settings: RunSettings,
}

impl std::fmt::Debug for Imports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imports")
            .field("root", self.root.location())
            .finish_non_exhaustive()
    }
}

impl Imports {
    /// Loads the imports stored under the root. With `resume` (a server, which owns the root),
    /// settles their pending checkpoints and runs again those that were running when the last
    /// server stopped; without (`traillake import`, which may run beside a server), only reads
    /// them.
    pub async fn open(
        root: LakeRoot,
        catalog: Arc<Catalog>,
        settings: RunSettings,
        resume: bool,
    ) -> Result<Arc<Self>, ImportError> {
        let mut slots = BTreeMap::new();
        for record in load_records(root.store().as_ref()).await? {
            let (record, failures) = if resume {
                settle(&root, record).await?
            } else {
                let failures = load_failures(root.store().as_ref(), &record.id, record.checkpoint.seq, false).await?;
                (record, Failures::new(failures))
            };
            let slot = Slot::new(record, failures);
            slots.insert(slot.record.id.clone(), Arc::new(Mutex::new(slot)));
        }
        let imports = Arc::new(Self {
            root,
            catalog,
            slots: Mutex::new(slots),
            settings,
        });
        if resume {
            let ongoing: Vec<SharedSlot> = imports
                .all()
                .into_iter()
                .filter(|slot| slot.lock().expect("import slot").record.is_ongoing())
                .collect();
            for slot in ongoing {
                let id = slot.lock().expect("import slot").record.id.clone();
                tracing::info!(import_id = %id, "resuming the import that was running when the server stopped");
                if let Err(error) = imports.launch(&slot).await {
                    tracing::error!(import_id = %id, %error, "could not resume the import");
                    imports.end_unlaunched(&slot).await;
                }
            }
        }
        Ok(imports)
    }

    fn all(&self) -> Vec<SharedSlot> {
        self.slots.lock().expect("imports").values().cloned().collect()
    }

    fn slot(&self, account_id: &str, id: &str) -> Result<SharedSlot, ImportError> {
        let slots = self.slots.lock().expect("imports");
        slots
            .get(id)
            .filter(|slot| slot.lock().expect("import slot").record.account_id == account_id)
            .cloned()
            .ok_or_else(|| ImportError::NotFound(id.to_string()))
    }

    /// Returns the destination store, checked: of the account, active, of CloudTrail events.
    async fn destination(&self, account_id: &str, store_id: &str) -> Result<EventDataStoreRecord, ImportError> {
        let store = self.catalog.event_data_store(account_id, store_id).await?;
        if !store.is_active() {
            return Err(LakeError::InactiveEventDataStore(store.id).into());
        }
        if store.kind != StoreKind::CloudTrail {
            return Err(ImportError::InvalidCategory(format!(
                "event data store {} holds {:?} events; imports copy CloudTrail events into stores of CloudTrail events",
                store.id, store.kind
            )));
        }
        Ok(store)
    }

    /// Starts a new import, once its destination and source are checked.
    pub async fn start(
        self: &Arc<Self>,
        account_id: &str,
        new: NewImport,
        now: DateTime<Utc>,
    ) -> Result<ImportRecord, ImportError> {
        self.destination(account_id, &new.destination).await?;
        let source = TrailSource::open(&new.source.bucket, &new.source.prefix)?;
        if let Err(error) = source.check_readable().await {
            return Err(ImportError::InvalidSource(format!(
                "the import source {} cannot be read: {error}",
                new.source.uri
            )));
        }
        let record = ImportRecord {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account_id.to_string(),
            destination: new.destination,
            source: new.source,
            start: new.start,
            end: new.end,
            status: ImportStatus::Initializing,
            created: now,
            updated: now,
            checkpoint: Default::default(),
            pending: None,
        };
        let slot = Arc::new(Mutex::new(Slot::new(record.clone(), Failures::default())));
        {
            // Checked and taken under one lock, so that two starts cannot both run.
            let mut slots = self.slots.lock().expect("imports");
            if let Some(ongoing) = self.ongoing_in(&slots, account_id) {
                return Err(ImportError::AccountHasOngoingImport(ongoing));
            }
            slots.insert(record.id.clone(), Arc::clone(&slot));
        }
        if let Err(error) = save_record(self.root.store().as_ref(), &record).await {
            self.slots.lock().expect("imports").remove(&record.id);
            return Err(error);
        }
        tracing::info!(import_id = %record.id, source = %record.source.uri, store_id = %record.destination, "import started");
        if let Err(error) = self.launch(&slot).await {
            self.end_unlaunched(&slot).await;
            return Err(error);
        }
        Ok(record)
    }

    fn ongoing_in(&self, slots: &BTreeMap<String, SharedSlot>, account_id: &str) -> Option<String> {
        slots.values().find_map(|slot| {
            let slot = slot.lock().expect("import slot");
            (slot.record.account_id == account_id && slot.record.is_ongoing()).then(|| slot.record.id.clone())
        })
    }

    /// Resumes a FAILED or STOPPED import from its last checkpoint, re-attempting what failed.
    pub async fn retry(self: &Arc<Self>, account_id: &str, id: &str) -> Result<ImportRecord, ImportError> {
        let slot = self.slot(account_id, id)?;
        let destination = slot.lock().expect("import slot").record.destination.clone();
        self.destination(account_id, &destination).await?;
        let previous = {
            // Checked and taken under the lock of all imports, so that no start comes between.
            let slots = self.slots.lock().expect("imports");
            let status = slot.lock().expect("import slot").record.status;
            match status {
                ImportStatus::Failed | ImportStatus::Stopped => {}
                ImportStatus::Completed => {
                    return Err(ImportError::InvalidParameter(format!(
                        "import {id} is COMPLETED; only a FAILED or STOPPED import can be retried"
                    )));
                }
                _ => return Err(ImportError::AccountHasOngoingImport(id.to_string())),
            }
            if let Some(ongoing) = self.ongoing_in(&slots, account_id) {
                return Err(ImportError::AccountHasOngoingImport(ongoing));
            }
            std::mem::replace(
                &mut slot.lock().expect("import slot").record.status,
                ImportStatus::Initializing,
            )
        };
        let settled = async {
            let record = slot.lock().expect("import slot").record.clone();
            let (record, failures) = settle(&self.root, record).await?;
            {
                let mut guard = slot.lock().expect("import slot");
                guard.record = record;
                guard.failures = failures;
            }
            self.launch(&slot).await
        };
        if let Err(error) = settled.await {
            slot.lock().expect("import slot").record.status = previous;
            return Err(error);
        }
        tracing::info!(import_id = %id, "import retried");
        Ok(slot.lock().expect("import slot").record.clone())
    }

    /// Starts the run of a settled import.
    async fn launch(&self, slot: &SharedSlot) -> Result<(), ImportError> {
        let (record, failures) = {
            let guard = slot.lock().expect("import slot");
            (guard.record.clone(), guard.failures.clone())
        };
        let store = self
            .catalog
            .event_data_store(&record.account_id, &record.destination)
            .await?;
        let source = TrailSource::open(&record.source.bucket, &record.source.prefix)?;
        let table = EventTable::new(&self.root, &record.destination, StoreKind::CloudTrail);
        let (stop, stopped) = watch::channel(false);
        let oldest = store.oldest_kept(Utc::now());
        let runner = Runner::new(
            record,
            failures,
            Arc::clone(self.root.store()),
            table,
            source,
            oldest,
            store.max_event_bytes(),
            Arc::clone(slot),
            stopped,
            self.settings,
        );
        slot.lock().expect("import slot").stop = Some(stop);
        tokio::spawn(runner.run());
        Ok(())
    }

    /// Ends an import whose run could not start (its destination is gone) as FAILED, so that it
    /// does not hold the account's one running import.
    async fn end_unlaunched(&self, slot: &SharedSlot) {
        let record = {
            let mut guard = slot.lock().expect("import slot");
            guard.record.status = ImportStatus::Failed;
            guard.record.updated = Utc::now();
            guard.run_ended.send_replace(());
            guard.record.clone()
        };
        if let Err(error) = save_record(self.root.store().as_ref(), &record).await {
            tracing::error!(import_id = %record.id, %error, "could not store the import's status");
        }
    }

    /// Returns an import of the account.
    pub fn get(&self, account_id: &str, id: &str) -> Result<ImportRecord, ImportError> {
        Ok(self.slot(account_id, id)?.lock().expect("import slot").record.clone())
    }

    /// Returns the imports of the account, oldest first.
    pub fn list(&self, account_id: &str) -> Vec<ImportRecord> {
        let mut records: Vec<ImportRecord> = self
            .all()
            .into_iter()
            .map(|slot| slot.lock().expect("import slot").record.clone())
            .filter(|record| record.account_id == account_id)
            .collect();
        records.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        records
    }

    /// Returns the failure entries of an import of the account, in the order they were first made.
    pub fn failures(&self, account_id: &str, id: &str) -> Result<Vec<ImportFailure>, ImportError> {
        Ok(self
            .slot(account_id, id)?
            .lock()
            .expect("import slot")
            .failures
            .entries()
            .to_vec())
    }

    /// Returns true if an import into the store is running.
    pub fn has_ongoing_import(&self, account_id: &str, store_id: &str) -> bool {
        self.list(account_id)
            .iter()
            .any(|record| record.destination == store_id && record.is_ongoing())
    }

    /// Stops a running import and waits (at most `wait`) until its run has ended; returns the
    /// import, unchanged if it was not running.
    pub async fn stop(&self, account_id: &str, id: &str, wait: Duration) -> Result<ImportRecord, ImportError> {
        let slot = self.slot(account_id, id)?;
        let mut run_ended = {
            let guard = slot.lock().expect("import slot");
            if let Some(stop) = guard.stop.as_ref() {
                stop.send_replace(true);
            }
            guard.run_ended.subscribe()
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let record = slot.lock().expect("import slot").record.clone();
            // The sender lives in the slot held here, so the channel never closes while waiting.
            if !record.is_ongoing() || tokio::time::timeout_at(deadline, run_ended.changed()).await.is_err() {
                return Ok(slot.lock().expect("import slot").record.clone());
            }
        }
    }

    /// Waits until the import's run has ended; returns it.
    pub async fn wait(&self, account_id: &str, id: &str) -> Result<ImportRecord, ImportError> {
        let slot = self.slot(account_id, id)?;
        let mut run_ended = slot.lock().expect("import slot").run_ended.subscribe();
        loop {
            {
                let guard = slot.lock().expect("import slot");
                if !guard.record.is_ongoing() && guard.stop.is_none() {
                    return Ok(guard.record.clone());
                }
            }
            // The sender lives in the slot held here, so the channel never closes while waiting.
            let _ = run_ended.changed().await;
        }
    }
}

/// Settles a record's pending checkpoint by what the destination's table committed, stores the
/// record if that changed it, and loads its failure entries up to its checkpoint.
async fn settle(root: &LakeRoot, mut record: ImportRecord) -> Result<(ImportRecord, Failures), ImportError> {
    if record.pending.is_some() {
        let table = EventTable::new(root, &record.destination, StoreKind::CloudTrail);
        let committed = table.committed_progress(&record.writer()).await?;
        record.settle(committed);
        save_record(root.store().as_ref(), &record).await?;
    }
    let failures = load_failures(root.store().as_ref(), &record.id, record.checkpoint.seq, true).await?;
    Ok((record, Failures::new(failures)))
}
