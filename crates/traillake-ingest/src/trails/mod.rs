//! Trails' delivery: the account's events a logging trail selects, written to its bucket as
//! CloudTrail log files, and, with log file validation, signed digest files (`files`); the
//! Insights events found for it (`traillake_query::insights`), as Insights log files.
//!
//! Under the root, each trail has a folder `trails/ACCOUNT/NAME/`:
//! - `outbox/HASH.jsonl`: records waiting for delivery, one segment per [`Trails::append`] (one per
//!   recorded batch), each record a line of compact JSON, named by the hash of its content
//!   (`traillake_lake::trail_outbox`). A record is in the outbox before it is in the Event
//!   history, so a recorded call is delivered. `insight-outbox/` holds Insights events alike,
//!   delivered under `CloudTrail-Insight/` and listed in no digest. An organization trail keeps
//!   each account's segments in `outbox/ACCOUNT/`, sealed into log files of that account alone,
//!   under `AWSLogs/ORG-ID/ACCOUNT/`.
//! - `ready/ID.json.gz`: a log file sealed from segments and waiting to be put in the bucket.
//! - `state.json` ([`TrailState`]): the sealed files (with the segments each consumed), the
//!   delivered files no digest lists yet, the digest chain, and GetTrailStatus's times and errors.
//!
//! Exactly once across kill -9, step by step: sealing writes the ready file, then the state that
//! names it and the segments it consumed, then deletes those segments; a restart deletes the
//! consumed segments it finds still there instead of sealing them again, and a batch appended
//! again after its segment was sealed (a retried delivery) is recognised by its name. A ready file is put under
//! the key chosen when it was sealed, so putting it again after a crash writes the same object. A
//! digest is made and kept in the state before it is put, so a digest put again is the same
//! digest, and the chain links each digest to the one before exactly once.
//!
//! One task ([`Trails::deliver_every`]) seals and delivers each trail's outbox every
//! `delivery_interval` and writes its digest every `digest_interval`; StartLogging, StopLogging
//! and DeleteTrail wake it ([`Trails::wake`]); [`Trails::finish`] delivers everything at shutdown.
//! A failed put leaves the file ready, records the S3 error code as `LatestDeliveryError`, and is
//! tried again at the next pass.

pub mod files;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use object_store::path::Path;
use object_store::{Attribute, AttributeValue, Attributes, ObjectStore, ObjectStoreExt as _, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use traillake_lake::keys::{KeyProblem, find_key};
use traillake_lake::signing_keys::SigningKeys;
use traillake_lake::trail_outbox::{self, Feed, segment_account, trail_folder};
use traillake_lake::{Catalog, LakeError, LakeRoot, TrailRecord};

use files::{DigestLogFile, DigestPeriod, Layout, PreviousDigest, SignedDigest, log_file};

/// Uncompressed bytes of records one log file holds at most; a larger outbox makes several files.
const LOG_FILE_BYTES: usize = 64 << 20;

/// Names of sealed segments a trail's state remembers, so that a batch stored again after it was
/// sealed is not delivered twice.
const SEALED_NAMES: usize = 2_000;

/// How a trail's delivery is paced.
#[derive(Debug, Clone)]
pub struct TrailSettings {
    /// How often each trail's outbox is delivered (AWS: about every 5 minutes).
    pub delivery_interval: Duration,
    /// How often a trail with log file validation writes a digest (AWS: every hour).
    pub digest_interval: Duration,
}

impl Default for TrailSettings {
    fn default() -> Self {
        Self {
            delivery_interval: Duration::from_secs(300),
            digest_interval: Duration::from_secs(3600),
        }
    }
}

/// Opens the object store of a bucket, whose puts encrypt with the KMS key named, if any.
pub type OpenBucket = Arc<dyn Fn(&str, Option<&str>) -> Result<Arc<dyn ObjectStore>, LakeError> + Send + Sync>;

/// The delivery of every trail of a root.
pub struct Trails {
    root: LakeRoot,
    catalog: Arc<Catalog>,
    keys: Arc<SigningKeys>,
    region: String,
    settings: TrailSettings,
    open_bucket: OpenBucket,
    /// One lock per trail folder: a pass, a final delivery and a removal take turns.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    wake: Notify,
}

impl std::fmt::Debug for Trails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trails")
            .field("region", &self.region)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What a trail's delivery did, and what it has yet to do; GetTrailStatus reads the first part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrailState {
    /// When a log file was last put in the bucket.
    pub latest_delivery_time: Option<DateTime<Utc>>,
    /// The S3 error code of the last put that failed, cleared by the next that succeeds.
    pub latest_delivery_error: Option<String>,
    /// When a put of a log file was last tried.
    pub latest_delivery_attempt_time: Option<DateTime<Utc>>,
    /// Whether that try succeeded.
    pub latest_delivery_attempt_succeeded: Option<bool>,
    /// When a digest was last put in the bucket.
    pub latest_digest_delivery_time: Option<DateTime<Utc>>,
    /// The S3 error code of the last digest put that failed, cleared by the next that succeeds.
    pub latest_digest_delivery_error: Option<String>,
    /// Log files sealed and not yet in the bucket, oldest first.
    pub ready: Vec<ReadyFile>,
    /// Log files in the bucket that no digest lists yet.
    pub undigested: Vec<DigestLogFile>,
    /// The start of the period the next digest covers, while one is open.
    pub digest_start: Option<DateTime<Utc>>,
    /// The last digest put, which the next one links to.
    pub previous_digest: Option<PreviousDigest>,
    /// A digest made and not yet put.
    pub pending_digest: Option<SignedDigest>,
    /// The file names of the outbox segments sealed most lately, oldest first.
    #[serde(default)]
    pub sealed: std::collections::VecDeque<String>,
}

/// A log file sealed from outbox segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyFile {
    /// Its name under `ready/`.
    pub id: String,
    /// The bucket it goes to.
    pub bucket: String,
    /// Its key there.
    pub key: String,
    /// The outbox segments it was made from.
    pub segments: Vec<String>,
    /// What the digest says of it (none for an Insights log file).
    pub listed: Option<DigestLogFile>,
}

impl Trails {
    /// Returns the delivery of the trails of `root`'s catalog, for a server of `region`, signing
    /// digests with `keys` and opening buckets with `open_bucket`.
    pub fn new(
        root: LakeRoot,
        catalog: Arc<Catalog>,
        keys: Arc<SigningKeys>,
        region: String,
        settings: TrailSettings,
        open_bucket: OpenBucket,
    ) -> Self {
        Self {
            root,
            catalog,
            keys,
            region,
            settings,
            open_bucket,
            locks: Mutex::default(),
            wake: Notify::new(),
        }
    }

    /// Returns the server's Region, the home Region of its trails.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Keeps records in a trail's outbox of logged events; returns once they are stored.
    pub async fn append(&self, trail: &TrailRecord, records: &[&str]) -> Result<(), LakeError> {
        trail_outbox::append(&self.root, trail, Feed::Events, records).await
    }

    /// Keeps the records of one account for a trail's next delivery: an organization trail takes
    /// the records of every account of the organization, each delivered under its account.
    pub async fn append_of(&self, trail: &TrailRecord, account_id: &str, records: &[&str]) -> Result<(), LakeError> {
        trail_outbox::append_of(&self.root, trail, Feed::Events, account_id, records).await
    }

    /// Returns a trail's delivery state as kept under the root.
    pub async fn state(&self, trail: &TrailRecord) -> Result<TrailState, LakeError> {
        read_state(self.root.store(), &folder(trail)).await
    }

    /// Asks the delivery task for a pass now (a trail started or stopped logging).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers every trail's outbox every `delivery_interval` (and when woken), and writes the
    /// digests that are due. Runs until dropped.
    pub async fn deliver_every(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.settings.delivery_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = self.wake.notified() => {}
            }
            self.pass(false).await;
        }
    }

    /// Delivers what every trail has waiting and writes the final digest of each trail with log
    /// file validation, as a stopping server does.
    pub async fn finish(&self) {
        self.pass(true).await;
    }

    /// One pass over every trail: deliver what waits, write the digests that are due (all of them
    /// when `closing`).
    async fn pass(&self, closing: bool) {
        for trail in self.catalog.all_trails().await {
            if let Err(error) = self.deliver(&trail, closing, Utc::now()).await {
                tracing::warn!(account_id = %trail.account_id, trail = %trail.name, %error, "trail delivery failed; it is tried again");
            }
        }
    }

    /// Delivers what a deleted trail has waiting, writes its final digest, and removes its folder.
    pub async fn finish_deleted(&self, trail: &TrailRecord) -> Result<(), LakeError> {
        self.deliver(trail, true, Utc::now()).await?;
        let lock = self.lock(trail);
        let _turn = lock.lock().await;
        let store = self.root.store();
        let paths: Vec<Path> = store
            .list(Some(&folder(trail)))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        for path in paths {
            delete_if_present(store, &path).await?;
        }
        Ok(())
    }

    fn lock(&self, trail: &TrailRecord) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("the trail locks are never poisoned");
        Arc::clone(locks.entry(folder(trail).to_string()).or_default())
    }

    /// Seals the trail's outbox, puts what is ready, and writes its digest if one is due (or if
    /// `closing` and a period is open). A trail that does not log only finishes what it has.
    pub async fn deliver(&self, trail: &TrailRecord, closing: bool, now: DateTime<Utc>) -> Result<(), LakeError> {
        let lock = self.lock(trail);
        let _turn = lock.lock().await;
        let store = self.root.store();
        let folder = folder(trail);
        let mut state = read_state(store, &folder).await?;
        let organization_id = match trail.organization {
            true => self.catalog.organization().map(|organization| organization.id.clone()),
            false => None,
        };
        let layout = Layout {
            account_id: &trail.account_id,
            organization_id: organization_id.as_deref(),
            region: &self.region,
            trail_name: &trail.name,
            prefix: trail.prefix.as_deref(),
        };
        for feed in Feed::ALL {
            self.seal(trail, &layout, feed, &folder, &mut state, now).await?;
        }
        self.put_ready(trail, &folder, &mut state, now).await?;

        // The digest period opens when the trail logs with validation, and is closed by a
        // digest when due, or when the trail stops, loses validation, or the server stops.
        let validating = trail.logging && trail.log_file_validation;
        if validating && state.digest_start.is_none() {
            state.digest_start = Some(now);
            write_state(store, &folder, &state).await?;
        }
        let due = state.digest_start.is_some_and(|start| {
            !validating
                || closing
                || now.signed_duration_since(start).to_std().unwrap_or_default() >= self.settings.digest_interval
        });
        // A digest whose put failed is put again before the next is made, so that the chain has
        // no hole and every log file is in a digest.
        if due && state.pending_digest.is_none() {
            let start = state.digest_start.expect("a due digest has a start");
            // Digest keys name their end to the second: a period lasts at least one, so that no
            // digest is written over the one before.
            let end = now.max(start + chrono::Duration::seconds(1));
            let key = self.keys.current(now).await?;
            let period = DigestPeriod {
                layout,
                bucket: &trail.bucket,
                start,
                end,
                log_files: &state.undigested,
                previous: state.previous_digest.as_ref(),
            };
            let digest = period.signed(&key.fingerprint, |message| key.sign(message));
            state.pending_digest = Some(digest);
            state.undigested.clear();
            state.digest_start = validating.then_some(end);
            write_state(store, &folder, &state).await?;
        }
        if let Some(digest) = state.pending_digest.clone() {
            // Digest files are not encrypted with the trail's key: AWS leaves them to the bucket's
            // own encryption (SSE-S3).
            let bucket = (self.open_bucket)(&digest.bucket, None)?;
            match put_digest(&bucket, &digest).await {
                Ok(()) => {
                    state.previous_digest = Some(PreviousDigest {
                        bucket: digest.bucket.clone(),
                        key: digest.key.clone(),
                        hash: digest.hash.clone(),
                        signature: digest.signature.clone(),
                    });
                    state.pending_digest = None;
                    state.latest_digest_delivery_time = Some(now);
                    state.latest_digest_delivery_error = None;
                }
                Err(error) => {
                    tracing::warn!(trail = %trail.name, key = %digest.key, %error, "putting a digest file failed");
                    state.latest_digest_delivery_error = Some(s3_error_code(&error));
                }
            }
            write_state(store, &folder, &state).await?;
        }
        Ok(())
    }

    /// Seals the segments of a feed's outbox into ready log files.
    async fn seal(
        &self,
        trail: &TrailRecord,
        layout: &Layout<'_>,
        feed: Feed,
        folder: &Path,
        state: &mut TrailState,
        now: DateTime<Utc>,
    ) -> Result<(), LakeError> {
        let store = self.root.store();
        let mut segments: Vec<Path> = store
            .list(Some(&under(folder, feed.outbox())))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        segments.sort();
        // A ready file the state does not name was written by a seal that a crash cut short: its
        // segments are still in their outbox and are sealed again.
        let ready: Vec<Path> = store
            .list(Some(&under(folder, "ready")))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        for path in ready {
            if !state.ready.iter().any(|file| ready_path(folder, &file.id) == path) {
                delete_if_present(store, &path).await?;
            }
        }
        // Segments a ready file was made from, still there after a crash, and batches stored again
        // after they were sealed, are deleted, not sealed again.
        let consumed: std::collections::HashSet<&str> = state
            .ready
            .iter()
            .flat_map(|file| file.segments.iter().map(String::as_str))
            .collect();
        let sealed_names: std::collections::HashSet<&str> = state.sealed.iter().map(String::as_str).collect();
        let mut fresh = Vec::new();
        for segment in segments {
            if consumed.contains(segment.as_ref()) || segment.filename().is_some_and(|name| sealed_names.contains(name))
            {
                delete_if_present(store, &segment).await?;
            } else {
                fresh.push(segment);
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let mut texts = Vec::with_capacity(fresh.len());
        for segment in &fresh {
            let bytes = store.get(segment).await?.bytes().await?;
            texts.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        // Files of at most LOG_FILE_BYTES, each of whole segments of one account.
        let mut by_account: Vec<(&str, &Path, &String)> = fresh
            .iter()
            .zip(&texts)
            .map(|(segment, text)| (segment_account(trail, feed, segment), segment, text))
            .collect();
        by_account.sort_by_key(|(account, ..)| *account);
        let mut groups: Vec<(&str, Vec<String>, Vec<&str>)> = Vec::new();
        let mut bytes = 0;
        for (account, segment, text) in by_account {
            if groups.last().is_none_or(|(last, ..)| *last != account) || bytes + text.len() > LOG_FILE_BYTES {
                groups.push((account, Vec::new(), Vec::new()));
                bytes = 0;
            }
            let (_, names, records) = groups.last_mut().expect("a group was pushed");
            names.push(segment.to_string());
            records.extend(text.lines().filter(|line| !line.is_empty()));
            bytes += text.len();
        }
        let mut sealed = Vec::new();
        for (account, names, records) in groups {
            if records.is_empty() {
                sealed.extend(names);
                continue;
            }
            let file = log_file(&records);
            let unique: String = uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
            let key = Layout {
                account_id: account,
                ..*layout
            }
            .log_file_key(feed, now, &unique);
            let id = uuid::Uuid::new_v4().simple().to_string();
            store.put(&ready_path(folder, &id), PutPayload::from(file.gzip)).await?;
            let (oldest, newest) = file.event_times.unzip();
            state.ready.push(ReadyFile {
                id,
                bucket: trail.bucket.clone(),
                key: key.clone(),
                segments: names.clone(),
                // Digests list the log files of events; Insights log files are in none.
                listed: (feed == Feed::Events).then(|| DigestLogFile {
                    s3_bucket: trail.bucket.clone(),
                    s3_object: key,
                    hash_value: file.hash,
                    hash_algorithm: "SHA-256".to_string(),
                    newest_event_time: newest,
                    oldest_event_time: oldest,
                }),
            });
            sealed.extend(names);
        }
        state.sealed.extend(
            sealed
                .iter()
                .filter_map(|segment| segment.rsplit_once('/').map(|(_, name)| name.to_string())),
        );
        while state.sealed.len() > SEALED_NAMES {
            state.sealed.pop_front();
        }
        write_state(store, folder, state).await?;
        for segment in sealed {
            delete_if_present(store, &Path::from(segment)).await?;
        }
        Ok(())
    }

    /// Puts the ready files in their bucket, oldest first, until one fails; with the trail's KMS
    /// key, the objects are encrypted with it (SSE-KMS naming the key's ARN). A key the operator's
    /// key service lacks or has disabled delivers nothing, and is the trail's latest delivery
    /// error (`KMS.NotFoundException`, `KMS.DisabledException`, as AWS reports them).
    async fn put_ready(
        &self,
        trail: &TrailRecord,
        folder: &Path,
        state: &mut TrailState,
        now: DateTime<Utc>,
    ) -> Result<(), LakeError> {
        let store = self.root.store();
        let kms_key_arn = match trail.kms_key_id.as_deref().map(|key| find_key(self.root.keys(), key)) {
            None => None,
            Some(Ok(key)) => Some(key.arn.clone()),
            Some(Err(problem)) if !state.ready.is_empty() => {
                tracing::warn!(trail = %trail.name, %problem, "a trail's log files are not delivered");
                state.latest_delivery_attempt_time = Some(now);
                state.latest_delivery_error = Some(
                    match problem {
                        KeyProblem::Disabled(_) => "KMS.DisabledException",
                        KeyProblem::NotFound(_) | KeyProblem::NotConfigured(_) => "KMS.NotFoundException",
                    }
                    .to_string(),
                );
                state.latest_delivery_attempt_succeeded = Some(false);
                write_state(store, folder, state).await?;
                return Ok(());
            }
            Some(Err(_)) => return Ok(()),
        };
        let mut buckets: HashMap<String, Arc<dyn ObjectStore>> = HashMap::new();
        while let Some(file) = state.ready.first().cloned() {
            let path = ready_path(folder, &file.id);
            let gzip = match store.get(&path).await {
                Ok(result) => result.bytes().await?,
                // A ready file is deleted only after the state stops naming it.
                Err(object_store::Error::NotFound { .. }) => {
                    tracing::error!(key = %file.key, path = %path, "a sealed trail log file is missing under the root; its events are lost");
                    state.ready.remove(0);
                    write_state(store, folder, state).await?;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            let target = match buckets.get(&file.bucket) {
                Some(bucket) => Arc::clone(bucket),
                None => {
                    let bucket = (self.open_bucket)(&file.bucket, kms_key_arn.as_deref())?;
                    buckets.insert(file.bucket.clone(), Arc::clone(&bucket));
                    bucket
                }
            };
            state.latest_delivery_attempt_time = Some(now);
            match target.put(&Path::from(file.key.as_str()), PutPayload::from(gzip)).await {
                Ok(_) => {
                    state.ready.remove(0);
                    state.undigested.extend(file.listed.clone());
                    state.latest_delivery_time = Some(now);
                    state.latest_delivery_error = None;
                    state.latest_delivery_attempt_succeeded = Some(true);
                    write_state(store, folder, state).await?;
                    delete_if_present(store, &path).await?;
                }
                Err(error) => {
                    tracing::warn!(key = %file.key, bucket = %file.bucket, %error, "putting a trail log file failed");
                    state.latest_delivery_error = Some(s3_error_code(&error));
                    state.latest_delivery_attempt_succeeded = Some(false);
                    write_state(store, folder, state).await?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// Puts a digest with its signature in the object's metadata, as `validate-logs` reads it.
async fn put_digest(bucket: &Arc<dyn ObjectStore>, digest: &SignedDigest) -> Result<(), object_store::Error> {
    let gzip = base64::engine::general_purpose::STANDARD
        .decode(&digest.gzip_base64)
        .map_err(|error| object_store::Error::Generic {
            store: "trail",
            source: Box::new(error),
        })?;
    let attributes = Attributes::from_iter([
        (
            Attribute::Metadata("signature".into()),
            AttributeValue::from(digest.signature.clone()),
        ),
        (
            Attribute::Metadata("signature-algorithm".into()),
            AttributeValue::from("SHA256withRSA"),
        ),
    ]);
    let options = PutOptions {
        attributes,
        ..Default::default()
    };
    bucket
        .put_opts(&Path::from(digest.key.as_str()), PutPayload::from(gzip), options)
        .await?;
    Ok(())
}

/// Returns what GetTrailStatus says of a failed put: the S3 error code when the server gave one
/// (`NoSuchBucket`, `AccessDenied`), or the kind of failure.
fn s3_error_code(error: &object_store::Error) -> String {
    let text = error.to_string();
    for code in [
        "NoSuchBucket",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "SlowDown",
    ] {
        if text.contains(code) {
            return code.to_string();
        }
    }
    match error {
        object_store::Error::NotFound { .. } => "NoSuchBucket".to_string(),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            "AccessDenied".to_string()
        }
        _ => "ServiceUnavailable".to_string(),
    }
}

fn folder(trail: &TrailRecord) -> Path {
    trail_folder(trail)
}

/// Returns the path of `rest` under a folder.
fn under(folder: &Path, rest: &str) -> Path {
    Path::from(format!("{folder}/{rest}"))
}

fn ready_path(folder: &Path, id: &str) -> Path {
    under(folder, &format!("ready/{id}.json.gz"))
}

async fn read_state(store: &Arc<dyn ObjectStore>, folder: &Path) -> Result<TrailState, LakeError> {
    match store.get(&under(folder, "state.json")).await {
        Ok(result) => {
            let bytes = result.bytes().await?;
            serde_json::from_slice(&bytes).map_err(|source| LakeError::Corrupt {
                context: format!("reading {folder}/state.json"),
                source,
            })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(TrailState::default()),
        Err(error) => Err(error.into()),
    }
}

async fn write_state(store: &Arc<dyn ObjectStore>, folder: &Path, state: &TrailState) -> Result<(), LakeError> {
    let bytes = serde_json::to_vec(state).expect("a trail state serializes");
    store.put(&under(folder, "state.json"), PutPayload::from(bytes)).await?;
    Ok(())
}

async fn delete_if_present(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<(), LakeError> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use object_store::local::LocalFileSystem;
    use traillake_api::trails::{TrailSelectors, default_event_selectors};
    use traillake_lake::RootLocation;

    use super::*;

    async fn trails(folder: &std::path::Path) -> (Trails, TrailRecord, Arc<dyn ObjectStore>) {
        let root = LakeRoot::open(RootLocation::Local(folder.join("lake"))).unwrap();
        let catalog = Arc::new(Catalog::load(&root).await.unwrap());
        let keys = Arc::new(
            SigningKeys::open(root.clone(), Duration::from_secs(3600))
                .await
                .unwrap(),
        );
        std::fs::create_dir_all(folder.join("bucket")).unwrap();
        let bucket: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(folder.join("bucket")).unwrap());
        let opened = Arc::clone(&bucket);
        let open_bucket: OpenBucket = Arc::new(move |_, _| Ok(Arc::clone(&opened)));
        let now = Utc::now();
        let trail = TrailRecord {
            account_id: "123456789012".into(),
            name: "main".into(),
            bucket: "bucket".into(),
            prefix: None,
            include_global_service_events: true,
            multi_region: false,
            log_file_validation: false,
            kms_key_id: None,
            recursive_logging: None,
            selectors: TrailSelectors::Basic(default_event_selectors()),
            tags: Vec::new(),
            logging: true,
            start_logging_time: Some(now),
            stop_logging_time: None,
            insight_types: Vec::new(),
            organization: false,
            aggregation_configurations: Vec::new(),
            created: now,
            updated: now,
        };
        let trail = catalog.create_trail(trail, 5).await.unwrap();
        let trails = Trails::new(
            root,
            catalog,
            keys,
            "us-east-1".into(),
            TrailSettings::default(),
            open_bucket,
        );
        (trails, trail, bucket)
    }

    async fn delivered(bucket: &Arc<dyn ObjectStore>) -> Vec<String> {
        let mut ids = Vec::new();
        let files: Vec<_> = bucket.list(None).try_collect().await.unwrap();
        for file in files {
            let gzip = bucket.get(&file.location).await.unwrap().bytes().await.unwrap();
            let mut text = String::new();
            flate2::read::GzDecoder::new(&gzip[..])
                .read_to_string(&mut text)
                .unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            for record in value["Records"].as_array().unwrap() {
                ids.push(record["eventID"].as_str().unwrap().to_string());
            }
        }
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn a_batch_stored_again_is_delivered_once() {
        let folder = tempfile::tempdir().unwrap();
        let (trails, trail, bucket) = trails(folder.path()).await;
        let batch = [
            r#"{"eventID":"a","eventTime":"2026-12-07T09:00:00Z"}"#,
            r#"{"eventID":"b","eventTime":"2026-12-07T09:00:01Z"}"#,
        ];
        // A caller that retries after a later destination failed stores the batch twice.
        trails.append(&trail, &batch).await.unwrap();
        trails.append(&trail, &batch).await.unwrap();
        trails.deliver(&trail, false, Utc::now()).await.unwrap();
        assert_eq!(delivered(&bucket).await, ["a", "b"]);
        // And again once it is sealed and delivered.
        trails.append(&trail, &batch).await.unwrap();
        trails
            .append(&trail, &[r#"{"eventID":"c","eventTime":"2026-12-07T09:00:02Z"}"#])
            .await
            .unwrap();
        trails.deliver(&trail, false, Utc::now()).await.unwrap();
        assert_eq!(delivered(&bucket).await, ["a", "b", "c"]);
        let state = trails.state(&trail).await.unwrap();
        assert!(state.ready.is_empty() && state.latest_delivery_time.is_some());
        assert_eq!(state.undigested.len(), 2, "two log files");
    }

    #[tokio::test]
    async fn insights_events_are_delivered_under_cloudtrail_insight_and_listed_in_no_digest() {
        let folder = tempfile::tempdir().unwrap();
        let (trails, trail, bucket) = trails(folder.path()).await;
        let insight = [r#"{"eventID":"i","eventTime":"2026-12-07T09:00:00Z","eventCategory":"Insight"}"#];
        trail_outbox::append(&trails.root, &trail, Feed::Insights, &insight)
            .await
            .unwrap();
        trails
            .append(&trail, &[r#"{"eventID":"a","eventTime":"2026-12-07T09:00:01Z"}"#])
            .await
            .unwrap();
        trails.deliver(&trail, false, Utc::now()).await.unwrap();
        assert_eq!(delivered(&bucket).await, ["a", "i"]);
        let keys: Vec<String> = bucket
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(
            keys.iter()
                .filter(|key| key.contains("/CloudTrail-Insight/us-east-1/"))
                .count(),
            1
        );
        assert_eq!(
            keys.iter().filter(|key| key.contains("/CloudTrail/us-east-1/")).count(),
            1
        );
        let state = trails.state(&trail).await.unwrap();
        assert_eq!(state.undigested.len(), 1, "only the events' log file is in a digest");
        assert!(state.undigested[0].s3_object.contains("/CloudTrail/"));
        // Written again (a finding redone after a crash), it is not delivered twice.
        trail_outbox::append(&trails.root, &trail, Feed::Insights, &insight)
            .await
            .unwrap();
        trails.deliver(&trail, false, Utc::now()).await.unwrap();
        assert_eq!(delivered(&bucket).await, ["a", "i"]);
    }

    #[tokio::test]
    async fn a_digest_whose_put_failed_is_put_again_before_the_next_is_made() {
        let temporary = tempfile::tempdir().unwrap();
        let (trails, mut trail, _bucket) = trails(temporary.path()).await;
        trail.log_file_validation = true;
        let start = Utc::now();
        trails.deliver(&trail, false, start).await.unwrap();
        trails
            .append(&trail, &[r#"{"eventID":"a","eventTime":"2026-12-07T09:00:00Z"}"#])
            .await
            .unwrap();
        // A local folder takes no object metadata: the digest's put fails.
        trails
            .deliver(&trail, false, start + chrono::Duration::hours(2))
            .await
            .unwrap();
        let state = trails.state(&trail).await.unwrap();
        let pending = state.pending_digest.clone().expect("the digest waits");
        assert!(state.latest_digest_delivery_error.is_some() && state.undigested.is_empty());
        trails
            .append(&trail, &[r#"{"eventID":"b","eventTime":"2026-12-07T09:00:01Z"}"#])
            .await
            .unwrap();
        trails
            .deliver(&trail, false, start + chrono::Duration::hours(4))
            .await
            .unwrap();
        let state = trails.state(&trail).await.unwrap();
        assert_eq!(
            state.pending_digest,
            Some(pending),
            "the same digest waits, not a newer one"
        );
        assert_eq!(state.undigested.len(), 1, "the second file waits for the next digest");
    }

    #[tokio::test]
    async fn a_seal_cut_short_is_finished_by_the_next_pass() {
        let temporary = tempfile::tempdir().unwrap();
        let (trails, trail, bucket) = trails(temporary.path()).await;
        trails
            .append(&trail, &[r#"{"eventID":"a","eventTime":"2026-12-07T09:00:00Z"}"#])
            .await
            .unwrap();
        // A crash after the seal was recorded and before its segment was deleted: the segment
        // is still in the outbox, the state names it, and nothing was put.
        let store = trails.root.store();
        let segment: Vec<_> = store
            .list(Some(&Path::from("trails/123456789012/main/outbox")))
            .try_collect()
            .await
            .unwrap();
        let kept = store.get(&segment[0].location).await.unwrap().bytes().await.unwrap();
        let folder_path = folder(&trail);
        let mut state = trails.state(&trail).await.unwrap();
        let layout = Layout {
            account_id: &trail.account_id,
            organization_id: None,
            region: "us-east-1",
            trail_name: &trail.name,
            prefix: None,
        };
        trails
            .seal(&trail, &layout, Feed::Events, &folder_path, &mut state, Utc::now())
            .await
            .unwrap();
        store.put(&segment[0].location, PutPayload::from(kept)).await.unwrap();
        trails.deliver(&trail, false, Utc::now()).await.unwrap();
        trails.deliver(&trail, false, Utc::now()).await.unwrap();
        assert_eq!(delivered(&bucket).await, ["a"]);
    }
}
