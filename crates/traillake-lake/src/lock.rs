//! `RootLock`: one server per lake root. A local root is locked with an OS file lock, which the
//! kernel releases if the process dies. An S3 root is locked with a lease object written with a
//! conditional put (`If-None-Match` / `If-Match`) and renewed by a heartbeat; a lease whose
//! heartbeat is older than `LEASE_TTL` belongs to a server that died and may be taken over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Result;
use crate::error::LakeError;
use crate::root::{LakeRoot, RootLocation};

const LOCK_NAME: &str = "traillake.lock";
/// How long a lease on an S3 root lasts without a heartbeat.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
const HEARTBEAT: Duration = Duration::from_secs(10);

/// Who holds a root.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    owner: String,
    host: String,
    pid: u32,
    since: DateTime<Utc>,
    heartbeat: DateTime<Utc>,
}

impl Holder {
    fn describe(&self) -> String {
        format!(
            "process {} on {} since {}",
            self.pid,
            self.host,
            self.since.to_rfc3339()
        )
    }
}

/// The lock this server holds on its root, released when dropped or by `release`.
#[derive(Debug)]
pub struct RootLock {
    kind: LockKind,
    lost: watch::Receiver<Option<String>>,
    /// Keeps the channel open for locks that cannot be lost.
    _never_lost: Option<watch::Sender<Option<String>>>,
}

#[derive(Debug)]
enum LockKind {
    Local(File),
    Lease {
        store: Arc<dyn ObjectStore>,
        heartbeat: JoinHandle<()>,
        version: Arc<tokio::sync::Mutex<UpdateVersion>>,
    },
}

impl RootLock {
    /// Takes the lock on `root`, or fails with `RootInUse` naming the server that holds it.
    pub async fn acquire(root: &LakeRoot) -> Result<Self> {
        let holder = Holder {
            owner: uuid::Uuid::new_v4().to_string(),
            host: hostname(),
            pid: std::process::id(),
            since: Utc::now(),
            heartbeat: Utc::now(),
        };
        match root.location() {
            RootLocation::Local(path) => acquire_local(&path.join(LOCK_NAME), &holder, root),
            RootLocation::S3 { .. } => acquire_lease(root, holder).await,
        }
    }

    /// Returns a receiver that turns `Some(reason)` if the lock is lost (a lease taken over).
    pub fn lost(&self) -> watch::Receiver<Option<String>> {
        self.lost.clone()
    }

    /// Releases the lock.
    pub async fn release(self) {
        match self.kind {
            LockKind::Local(file) => drop(file),
            LockKind::Lease {
                store,
                heartbeat,
                version,
            } => {
                heartbeat.abort();
                let _ = heartbeat.await;
                let version = version.lock().await.clone();
                // Remove the lease only while it is still ours: write a tombstone conditionally.
                let released = store
                    .put_opts(
                        &Path::from(LOCK_NAME),
                        PutPayload::from_static(b"{}"),
                        PutOptions::from(PutMode::Update(version)),
                    )
                    .await;
                if released.is_ok() {
                    let _ = store.delete(&Path::from(LOCK_NAME)).await;
                }
            }
        }
    }
}

fn acquire_local(path: &std::path::Path, holder: &Holder, root: &LakeRoot) -> Result<RootLock> {
    let io = |context: &str, source| LakeError::Io {
        context: format!("{context} {}", path.display()),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io("opening", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| serde_json::from_str::<Holder>(&text).ok())
                .map(|h| h.describe())
                .unwrap_or_else(|| "another process".into());
            return Err(LakeError::RootInUse(format!(
                "the lake root {} is in use by another traillake server ({holder}); stop it first or use another --root",
                root.location()
            )));
        }
        Err(TryLockError::Error(e)) => return Err(io("locking", e)),
    }
    file.set_len(0).map_err(|e| io("writing", e))?;
    let text = serde_json::to_string(holder).expect("holder serializes");
    file.write_all(text.as_bytes()).map_err(|e| io("writing", e))?;
    let (never_lost, lost) = watch::channel(None);
    Ok(RootLock {
        kind: LockKind::Local(file),
        lost,
        _never_lost: Some(never_lost),
    })
}

async fn acquire_lease(root: &LakeRoot, holder: Holder) -> Result<RootLock> {
    let store = Arc::clone(root.store());
    let path = Path::from(LOCK_NAME);
    let body = || PutPayload::from(serde_json::to_vec(&holder).expect("holder serializes"));
    let created = store.put_opts(&path, body(), PutOptions::from(PutMode::Create)).await;
    let result = match created {
        Ok(result) => result,
        Err(object_store::Error::AlreadyExists { .. }) => {
            let existing = store.get(&path).await?;
            let version = UpdateVersion {
                e_tag: existing.meta.e_tag.clone(),
                version: existing.meta.version.clone(),
            };
            let bytes = existing.bytes().await?;
            if let Ok(other) = serde_json::from_slice::<Holder>(&bytes) {
                let age = Utc::now().signed_duration_since(other.heartbeat);
                if age.to_std().unwrap_or_default() < LEASE_TTL {
                    return Err(LakeError::RootInUse(format!(
                        "the lake root {} is in use by another traillake server ({}, last seen {}s ago); \
                         stop it first or use another --root",
                        root.location(),
                        other.describe(),
                        age.num_seconds()
                    )));
                }
                tracing::warn!(holder = %other.describe(), "taking over the lease of a server that stopped renewing it");
            }
            store
                .put_opts(&path, body(), PutOptions::from(PutMode::Update(version)))
                .await
                .map_err(|e| match e {
                    object_store::Error::Precondition { .. } => LakeError::RootInUse(format!(
                        "another traillake server took the lake root {} first",
                        root.location()
                    )),
                    other => other.into(),
                })?
        }
        Err(e) => return Err(e.into()),
    };
    let version = Arc::new(tokio::sync::Mutex::new(UpdateVersion {
        e_tag: result.e_tag,
        version: result.version,
    }));
    let (lost_tx, lost) = watch::channel(None);
    let heartbeat = tokio::spawn(renew_lease(Arc::clone(&store), holder, Arc::clone(&version), lost_tx));
    Ok(RootLock {
        kind: LockKind::Lease {
            store,
            heartbeat,
            version,
        },
        lost,
        _never_lost: None,
    })
}

async fn renew_lease(
    store: Arc<dyn ObjectStore>,
    mut holder: Holder,
    version: Arc<tokio::sync::Mutex<UpdateVersion>>,
    lost: watch::Sender<Option<String>>,
) {
    let path = Path::from(LOCK_NAME);
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        holder.heartbeat = Utc::now();
        let body = PutPayload::from(serde_json::to_vec(&holder).expect("holder serializes"));
        let mut current = version.lock().await;
        let put = store
            .put_opts(&path, body, PutOptions::from(PutMode::Update(current.clone())))
            .await;
        match put {
            Ok(result) => {
                *current = UpdateVersion {
                    e_tag: result.e_tag,
                    version: result.version,
                }
            }
            Err(object_store::Error::Precondition { .. }) => {
                tracing::error!("another server took over the lake root's lease");
                let _ = lost.send(Some("another server took over the lake root's lease".into()));
                return;
            }
            Err(error) => tracing::warn!(%error, "could not renew the lake root's lease; retrying"),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into())
}
