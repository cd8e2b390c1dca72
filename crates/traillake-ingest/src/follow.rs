//! Following trail buckets (`traillake serve --follow s3://bucket[/prefix]`): a bucket that an AWS
//! trail writes log files to, in the layout StartImport reads
//! (`AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`), is polled every interval, and each new
//! log file is read once and its records delivered as live events (`crate::live`): to the
//! account's Event history and to the account's stores whose selectors take them.
//!
//! Which files are new: each poll lists the `REGION/` folders of every account, from the day before
//! the newest day read in that folder (the first poll lists everything: the bucket's backlog is
//! read too), and takes the log files not read yet. The keys read of those recent days are kept.
//!
//! Exactly once, across restarts and kill -9: files are read in batches (up to 64 files, 16 MiB),
//! numbered 1, 2, ...; the
//! follower's state (`follow/<source>/state.json` under the lake root) says which batch is under
//! way and its keys before anything of it is stored, each destination table stores its part of
//! the batch in one commit together with the Delta application transaction `follow-<source>` =
//! the batch's number, and the state then records the keys as read. A follower that finds a
//! batch under way when it starts delivers it again, and each table that already committed that
//! batch number is left alone.
//!
//! Progress (files and events read, files that could not be read, the newest file, its lag, the
//! last error) is logged after each batch and kept in the state's `status`, a JSON object a user
//! can read.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use traillake_lake::events::files::{MAX_TEXT_BYTES, file_text, parse_records};
use traillake_lake::{AppProgress, LakeError, LakeRoot};

use crate::imports::layout::trail_file;
use crate::imports::source::TrailSource;
use crate::live::LiveEvents;

/// Log files read and delivered together at most.
const BATCH_FILES: usize = 64;

/// Bytes of log files (compressed, as listed) read and delivered together at most: with their text
/// (about ten times larger) and rows, a batch holds a few hundred MiB at most.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// Log files fetched at once.
const FILES_IN_FLIGHT: usize = 8;

/// Log files larger than this (compressed) are not read, as an import does not read them.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// A bucket to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowSource {
    /// The bucket, on the S3-compatible server the environment names.
    pub bucket: String,
    /// The key prefix the trail writes under: empty, or ending with `/`.
    pub prefix: String,
}

impl FollowSource {
    /// Reads `s3://bucket[/prefix]`; the error says what is wrong.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{uri}: a followed bucket is named s3://bucket[/prefix]"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{uri}: the bucket name is missing"));
        }
        let prefix = prefix.trim_matches('/');
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }

    /// Returns `s3://bucket/prefix`.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// Returns the name of the source under `follow/` and in its progress marks: the bucket and
    /// prefix with every character but letters, digits, `.` and `-` made `-`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.bucket, self.prefix)
            .trim_end_matches('/')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    }
}

/// A follower's progress, as the state file keeps it and the log says it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FollowStatus {
    /// `s3://bucket/prefix`.
    pub source: String,
    /// Log files whose events were delivered.
    pub files_read: u64,
    /// Events delivered.
    pub events_read: u64,
    /// Log files that could not be read or parsed, and will not be tried again.
    pub files_failed: u64,
    /// The key of the newest log file read (by its last-modified time).
    pub newest_file: Option<String>,
    /// When the newest log file read was written to the bucket.
    pub newest_file_written: Option<DateTime<Utc>>,
    /// Seconds between the writing of the newest file of the last batch and its delivery.
    pub lag_seconds: Option<f64>,
    /// When the bucket was last polled.
    pub last_poll: Option<DateTime<Utc>>,
    /// The last error, and when it happened.
    pub last_error: Option<String>,
    /// When the last error happened.
    pub last_error_time: Option<DateTime<Utc>>,
}

/// A batch that was begun and may not be wholly stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pending {
    batch: i64,
    keys: Vec<String>,
}

/// What a follower keeps under the root.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct FollowState {
    status: FollowStatus,
    /// The number of the next batch.
    next_batch: i64,
    /// The newest day read in each `REGION/` folder.
    newest_days: BTreeMap<String, NaiveDate>,
    /// The keys read of the days still listed.
    read: BTreeSet<String>,
    /// The batch under way.
    pending: Option<Pending>,
}

/// A log file listed and not read yet.
#[derive(Debug, Clone)]
struct Listed {
    key: String,
    size: u64,
    written: DateTime<Utc>,
}

/// Why a poll stopped.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The bucket could not be listed or read.
    #[error("the bucket could not be read: {0}")]
    Source(#[from] object_store::Error),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The state file is not a follower's state.
    #[error("the follower's state is unreadable: {0}")]
    State(#[from] serde_json::Error),
}

/// One followed bucket.
pub struct Follower {
    source: FollowSource,
    bucket: TrailSource,
    root: LakeRoot,
    live: Arc<LiveEvents>,
    state: FollowState,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// Opens the follower of a bucket, with the state kept under the root.
    pub async fn open(source: FollowSource, root: LakeRoot, live: Arc<LiveEvents>) -> Result<Self, FollowError> {
        let bucket = TrailSource::over(traillake_lake::root::s3_bucket(&source.bucket)?, &source.prefix);
        Self::over(source, bucket, root, live).await
    }

    /// Opens the follower of a source read through `bucket` (for tests over any object store).
    pub async fn over(
        source: FollowSource,
        bucket: TrailSource,
        root: LakeRoot,
        live: Arc<LiveEvents>,
    ) -> Result<Self, FollowError> {
        let mut state = match root.store().get(&state_path(&source)).await {
            Ok(kept) => serde_json::from_slice(&kept.bytes().await?)?,
            Err(object_store::Error::NotFound { .. }) => FollowState {
                next_batch: 1,
                ..FollowState::default()
            },
            Err(error) => return Err(error.into()),
        };
        state.status.source = source.uri();
        Ok(Self {
            source,
            bucket,
            root,
            live,
            state,
        })
    }

    /// Polls the bucket every `interval`, for ever; a poll that fails is logged, kept in the
    /// status, and tried again at the next.
    pub async fn follow_every(mut self, interval: Duration) {
        tracing::info!(source = %self.source.uri(), interval_s = interval.as_secs_f64(), "following a trail bucket");
        loop {
            if let Err(error) = self.poll().await {
                tracing::warn!(source = %self.source.uri(), %error, "following the trail bucket failed; will retry");
                self.state.status.last_error = Some(error.to_string());
                self.state.status.last_error_time = Some(Utc::now());
                if let Err(error) = self.save().await {
                    tracing::warn!(source = %self.source.uri(), %error, "keeping the follower's state failed");
                }
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Reads every log file not read yet: first the batch a crash may have left under way, then
    /// the new files, a batch at a time.
    pub async fn poll(&mut self) -> Result<(), FollowError> {
        if let Some(pending) = self.state.pending.clone() {
            tracing::info!(source = %self.source.uri(), batch = pending.batch, files = pending.keys.len(), "delivering again a batch a stop interrupted");
            let listed = pending
                .keys
                .iter()
                .map(|key| Listed {
                    key: key.clone(),
                    size: 0,
                    written: Utc::now(),
                })
                .collect::<Vec<_>>();
            self.deliver(pending.batch, &listed).await?;
        }
        let new = self.new_files().await?;
        self.state.status.last_poll = Some(Utc::now());
        let mut batch: Vec<Listed> = Vec::new();
        let mut bytes = 0;
        for file in new {
            if !batch.is_empty() && (batch.len() == BATCH_FILES || bytes + file.size > BATCH_BYTES) {
                self.begin_and_deliver(std::mem::take(&mut batch)).await?;
                bytes = 0;
            }
            bytes += file.size;
            batch.push(file);
        }
        if !batch.is_empty() {
            self.begin_and_deliver(batch).await?;
        }
        self.save().await
    }

    /// Records a batch as under way, then delivers it.
    async fn begin_and_deliver(&mut self, files: Vec<Listed>) -> Result<(), FollowError> {
        let number = self.state.next_batch;
        self.state.next_batch += 1;
        self.state.pending = Some(Pending {
            batch: number,
            keys: files.iter().map(|file| file.key.clone()).collect(),
        });
        self.save().await?;
        self.deliver(number, &files).await
    }

    /// Reads a batch's files and delivers their records, each table's part with the batch's
    /// number as the follower's progress; then records the files as read.
    async fn deliver(&mut self, number: i64, files: &[Listed]) -> Result<(), FollowError> {
        let fetches: Vec<_> = files
            .iter()
            .map(|file| fetch(self.bucket.clone(), file.key.clone(), file.size))
            .collect();
        let fetched: Vec<Result<bytes::Bytes, object_store::Error>> =
            futures::stream::iter(fetches).buffered(FILES_IN_FLIGHT).collect().await;
        let mut texts = Vec::with_capacity(files.len());
        for (file, bytes) in files.iter().zip(fetched) {
            if file.size > MAX_FILE_BYTES {
                self.failed(
                    &file.key,
                    &format!(
                        "the object has {} bytes; log files of at most {MAX_FILE_BYTES} bytes are read",
                        file.size
                    ),
                );
                continue;
            }
            let bytes = match bytes {
                Ok(bytes) => bytes,
                // Gone since it was listed, or refused to the server's credentials: skipped.
                Err(
                    error @ (object_store::Error::NotFound { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }),
                ) => {
                    self.failed(&file.key, &error.to_string());
                    continue;
                }
                // Any other fault may pass: the poll stops, and the next one reads this batch again.
                Err(error) => return Err(error.into()),
            };
            match file_text(&bytes, MAX_TEXT_BYTES) {
                Ok(text) => texts.push((file, text.into_owned())),
                Err(error) => self.failed(&file.key, &error.to_string()),
            }
        }
        let mut by_account: BTreeMap<&str, Vec<Cow<'_, RawValue>>> = BTreeMap::new();
        let mut files_read = 0;
        for (file, text) in &texts {
            let records = match parse_records(text) {
                Ok(records) => records,
                Err(error) => {
                    self.failed(&file.key, &error.to_string());
                    continue;
                }
            };
            let account = account_of(&file.key).unwrap_or_default();
            by_account.entry(account).or_default().extend(records);
            files_read += 1;
        }
        let mark = AppProgress {
            writer: format!("follow-{}", self.source.name()),
            progress: number,
        };
        let mut events = 0;
        for (account_id, records) in &by_account {
            let records: Vec<&RawValue> = records.iter().map(|record| record.as_ref()).collect();
            let delivered = self.live.deliver_marked(account_id, &records, &mark).await?;
            events += records.len() - delivered.invalid;
        }

        for file in files {
            self.state.read.insert(file.key.clone());
            if let Some((folder, day)) = region_day(&file.key) {
                let newest = self.state.newest_days.entry(folder).or_insert(day);
                *newest = (*newest).max(day);
            }
        }
        self.state.pending = None;
        let status = &mut self.state.status;
        status.files_read += files_read;
        status.events_read += events as u64;
        if let Some(newest) = files
            .iter()
            .filter(|file| file.size > 0)
            .max_by_key(|file| file.written)
        {
            let now = Utc::now();
            if status
                .newest_file_written
                .is_none_or(|written| newest.written >= written)
            {
                status.newest_file = Some(newest.key.clone());
                status.newest_file_written = Some(newest.written);
            }
            status.lag_seconds = Some((now - newest.written).num_milliseconds() as f64 / 1000.0);
        }
        self.prune();
        self.save().await?;
        tracing::info!(
            source = %self.source.uri(),
            batch = number,
            files = files_read,
            events,
            files_read = self.state.status.files_read,
            events_read = self.state.status.events_read,
            files_failed = self.state.status.files_failed,
            newest_file = self.state.status.newest_file.as_deref().unwrap_or_default(),
            lag_s = self.state.status.lag_seconds.unwrap_or_default(),
            "followed trail files delivered"
        );
        Ok(())
    }

    /// Counts a file that cannot be read; it is not tried again.
    fn failed(&mut self, key: &str, reason: &str) {
        tracing::warn!(source = %self.source.uri(), key, reason, "a followed log file cannot be read; it is skipped");
        self.state.status.files_failed += 1;
        self.state.status.last_error = Some(format!("{key}: {reason}"));
        self.state.status.last_error_time = Some(Utc::now());
    }

    /// Returns the log files of the bucket not read yet, in key order.
    async fn new_files(&self) -> Result<Vec<Listed>, FollowError> {
        let mut new = Vec::new();
        for folder in self.region_folders().await? {
            let offset = self
                .state
                .newest_days
                .get(&folder)
                .and_then(|day| day.pred_opt())
                .map(|day| format!("{folder}{}", day.format("%Y/%m/%d")));
            let mut listing = self.bucket.list_under(&folder, offset.as_deref());
            while let Some(meta) = listing.try_next().await? {
                let key = meta.location.to_string();
                if trail_file(&key).is_none() || self.state.read.contains(&key) {
                    continue;
                }
                new.push(Listed {
                    key,
                    size: meta.size,
                    written: meta.last_modified,
                });
            }
        }
        new.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(new)
    }

    /// Returns the `AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/` folders of the bucket.
    async fn region_folders(&self) -> Result<Vec<String>, FollowError> {
        let logs = format!("{}AWSLogs/", self.bucket.prefix());
        let mut accounts = Vec::new();
        for folder in self.bucket.folders(&logs).await? {
            let name = folder.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
            if name.starts_with("o-") {
                accounts.extend(self.bucket.folders(&folder).await?);
            } else {
                accounts.push(folder);
            }
        }
        let mut regions = Vec::new();
        for account in accounts {
            regions.extend(self.bucket.folders(&format!("{account}CloudTrail/")).await?);
        }
        Ok(regions)
    }

    /// Forgets the keys of days no longer listed: before the day before each folder's newest.
    fn prune(&mut self) {
        let newest_days = &self.state.newest_days;
        self.state.read.retain(|key| match region_day(key) {
            Some((folder, day)) => newest_days
                .get(&folder)
                .and_then(|newest| newest.pred_opt())
                .is_none_or(|first_listed| day >= first_listed),
            None => true,
        });
    }

    /// Keeps the state under the root.
    async fn save(&self) -> Result<(), FollowError> {
        let bytes = serde_json::to_vec_pretty(&self.state)?;
        self.root
            .store()
            .put(&state_path(&self.source), PutPayload::from(bytes))
            .await?;
        Ok(())
    }
}

/// Fetches a log file; one larger than a log file is is not fetched (and then skipped).
async fn fetch(bucket: TrailSource, key: String, size: u64) -> Result<bytes::Bytes, object_store::Error> {
    if size > MAX_FILE_BYTES {
        return Ok(bytes::Bytes::new());
    }
    bucket.fetch(&key).await
}

/// Returns where a source's state is kept under the root.
fn state_path(source: &FollowSource) -> Path {
    Path::from(format!("follow/{}/state.json", source.name()))
}

/// Returns the `REGION/` folder of a log file's key and the day of its day prefix.
fn region_day(key: &str) -> Option<(String, NaiveDate)> {
    let file = trail_file(key)?;
    let day = file.day?;
    // DAY_PREFIX is FOLDER + YYYY/MM/DD/.
    let folder = file.day_prefix.get(..file.day_prefix.len().checked_sub(11)?)?;
    Some((folder.to_string(), day))
}

/// Returns the account a log file's key names: the folder after `AWSLogs/` (and the organization).
fn account_of(key: &str) -> Option<&str> {
    let mut parts = key.split('/').skip_while(|part| *part != "AWSLogs").skip(1);
    let first = parts.next()?;
    if first.starts_with("o-") {
        parts.next()
    } else {
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sources_and_keys() {
        let source = FollowSource::parse("s3://trail-bucket/exports/org/").unwrap();
        assert_eq!(source.prefix, "exports/org/");
        assert_eq!(source.uri(), "s3://trail-bucket/exports/org/");
        assert_eq!(source.name(), "trail-bucket-exports-org");
        assert_eq!(FollowSource::parse("s3://b").unwrap().prefix, "");
        assert!(FollowSource::parse("trail-bucket").is_err());
        assert!(FollowSource::parse("s3:///x").is_err());

        let key = "p/AWSLogs/o-abc/111122223333/CloudTrail/eu-west-1/2024/01/31/f.json.gz";
        assert_eq!(account_of(key), Some("111122223333"));
        assert_eq!(
            region_day(key),
            Some((
                "p/AWSLogs/o-abc/111122223333/CloudTrail/eu-west-1/".to_string(),
                NaiveDate::from_ymd_opt(2024, 1, 31).unwrap()
            ))
        );
        assert_eq!(account_of("AWSLogs/111122223333/CloudTrail/x"), Some("111122223333"));
    }
}
