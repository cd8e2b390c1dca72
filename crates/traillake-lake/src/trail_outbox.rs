//! A trail's outboxes under the root (`trails/ACCOUNT/NAME/`): the records waiting for its
//! delivery (`traillake_ingest::trails`), one feed per kind of log file it writes: the events it
//! logs (`outbox/`, delivered under `CloudTrail/`) and its Insights events (`insight-outbox/`,
//! delivered under `CloudTrail-Insight/`). Each append is a segment of its own, named by the hash
//! of its content, so that a batch appended again (a writer retrying after a crash) is the same
//! segment, and one sealed since is recognised by its name.

use object_store::path::Path;
use object_store::{ObjectStoreExt as _, PutPayload};
use rsa::sha2::{Digest as _, Sha256};

use crate::{LakeRoot, Result, TrailRecord};

/// A kind of log file a trail delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    /// The management and data events the trail logs.
    Events,
    /// The Insights events found for the trail.
    Insights,
}

impl Feed {
    /// Both feeds.
    pub const ALL: [Feed; 2] = [Feed::Events, Feed::Insights];

    /// The folder of the feed's outbox under the trail's folder.
    pub fn outbox(self) -> &'static str {
        match self {
            Feed::Events => "outbox",
            Feed::Insights => "insight-outbox",
        }
    }

    /// The folder of the feed's log files in the bucket, after `AWSLogs/ACCOUNT/`.
    pub fn log_folder(self) -> &'static str {
        match self {
            Feed::Events => "CloudTrail",
            Feed::Insights => "CloudTrail-Insight",
        }
    }
}

/// Returns a trail's folder under the root.
pub fn trail_folder(trail: &TrailRecord) -> Path {
    Path::from(format!("trails/{}/{}", trail.account_id, trail.name))
}

/// Keeps records of the trail's own account in one of a trail's outboxes; returns once they are
/// stored.
pub async fn append(root: &LakeRoot, trail: &TrailRecord, feed: Feed, records: &[&str]) -> Result<()> {
    append_of(root, trail, feed, &trail.account_id, records).await
}

/// Keeps records of one account in one of a trail's outboxes; returns once they are stored. An
/// organization trail keeps each account's records in a folder of the outbox named by the
/// account ([`segment_account`]), as its log files hold one account's events each.
pub async fn append_of(
    root: &LakeRoot,
    trail: &TrailRecord,
    feed: Feed,
    account_id: &str,
    records: &[&str],
) -> Result<()> {
    let mut text = String::with_capacity(records.iter().map(|record| record.len() + 1).sum());
    for record in records {
        // A line per record: a newline can only be whitespace between JSON tokens, never in a
        // string, so a record written across lines becomes one line that means the same.
        text.extend(record.chars().map(|c| if c == '\n' { ' ' } else { c }));
        text.push('\n');
    }
    let name = hex::encode(&Sha256::digest(text.as_bytes())[..16]);
    let path = if trail.organization {
        format!("{}/{}/{account_id}/{name}.jsonl", trail_folder(trail), feed.outbox())
    } else {
        format!("{}/{}/{name}.jsonl", trail_folder(trail), feed.outbox())
    };
    root.store()
        .put(&Path::from(path), PutPayload::from(text.into_bytes()))
        .await?;
    Ok(())
}

/// Returns the account whose records an outbox segment holds: the folder it is in under the
/// outbox (an organization trail's), else the trail's own account.
pub fn segment_account<'a>(trail: &'a TrailRecord, feed: Feed, segment: &'a Path) -> &'a str {
    let parts: Vec<_> = segment.as_ref().split('/').collect();
    match parts.iter().position(|part| *part == feed.outbox()) {
        Some(at) if parts.len() == at + 3 => parts[at + 1],
        _ => &trail.account_id,
    }
}
