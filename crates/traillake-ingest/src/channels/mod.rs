//! PutAuditEvents: events from outside AWS, taken through a channel into its ActivityAuditLog
//! event data stores, in the order of `reference/cloudtrail-lake-semantics.md` §3.3: the channel
//! (its owner may be another account), who may call it (the owner, or an account its resource
//! policy allows, with the external ID the policy names), each event on its own (its `id`, its
//! checksum, its `eventData` against the integration schema), then one group commit per
//! destination store. Events are acknowledged only once committed to every destination that
//! ingests; a destination whose ingestion is stopped gets nothing.
//!
//! Each channel's latest attempt, success and error code are kept for GetChannel: in memory, and
//! under the root (`channels/ingestion-status.json`) every few seconds when they changed and when
//! the server stops, so that a restart keeps them.

pub use crate::group_commit::CommitError;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt as _, PutPayload};
use sha2::{Digest as _, Sha256};
use traillake_api::arn::{ResourceType, resource_arn};
use traillake_api::audit_events::{ChannelRef, check_event_id};
use traillake_api::resource_policy::{PolicyTarget, ResourcePolicy};
use traillake_api::selectors::StoreKind;
use traillake_api::shapes::{
    AuditEvent, AuditEventResultEntry, EventDataStoreStatus, IngestionStatus, PutAuditEventsResponse, ResultErrorEntry,
};
use traillake_api::wire::timestamp;
use traillake_lake::events::{AuditEnvelope, EventRows, audit_row};
use traillake_lake::{Catalog, ChannelRecord, EventTable, LakeError, LakeRoot};

use crate::group_commit::GroupCommit;

/// A PutAuditEvents request that fails as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The channel does not exist in its owner's account.
    #[error("channel {0} not found")]
    NotFound(String),
    /// The caller may not put events on the channel.
    #[error("{0}")]
    InsufficientPermission(String),
    /// The channel's destinations cannot take audit events.
    #[error("{0}")]
    UnsupportedSchema(String),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// Who calls PutAuditEvents, on which channel, from where.
#[derive(Debug, Clone)]
pub struct AuditCall<'a> {
    /// The caller's account.
    pub caller_account_id: &'a str,
    /// The Region the server serves.
    pub region: &'a str,
    /// The channel named by the request.
    pub channel: &'a ChannelRef,
    /// The request's external ID.
    pub external_id: Option<&'a str>,
}

/// A channel's destination stores by whether they take events now.
#[derive(Debug, Default)]
struct Destinations {
    /// Stores that are `ENABLED`.
    ingesting: Vec<String>,
    /// Stores that have stopped ingestion.
    stopped: Vec<String>,
}

/// The channels' ingestion.
#[derive(Debug)]
pub struct Channels {
    root: LakeRoot,
    catalog: Arc<Catalog>,
    commits: Arc<GroupCommit>,
    status: Mutex<HashMap<String, IngestionStatus>>,
    /// Set when `status` changed since it was last kept under the root.
    status_changed: AtomicBool,
}

/// Where the channels' IngestionStatus is kept, relative to the root.
const INGESTION_STATUS: &str = "channels/ingestion-status.json";

impl Channels {
    /// Returns the ingestion of the channels of a root's catalog, with the IngestionStatus kept
    /// under the root; events are stored through `commits`, which the server's other writers share.
    pub async fn open(root: LakeRoot, catalog: Arc<Catalog>, commits: Arc<GroupCommit>) -> Result<Self, LakeError> {
        let status = match root.store().get(&Path::from(INGESTION_STATUS)).await {
            Ok(kept) => serde_json::from_slice(&kept.bytes().await?).unwrap_or_else(|error| {
                tracing::warn!(%error, "the channels' kept IngestionStatus is unreadable; starting without it");
                HashMap::new()
            }),
            Err(object_store::Error::NotFound { .. }) => HashMap::new(),
            Err(error) => return Err(error.into()),
        };
        Ok(Self {
            root,
            catalog,
            commits,
            status: Mutex::new(status),
            status_changed: AtomicBool::new(false),
        })
    }

    /// Keeps the channels' IngestionStatus under the root if it changed since it was last kept.
    pub async fn keep_ingestion_status(&self) -> Result<(), LakeError> {
        if !self.status_changed.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let bytes = {
            let status = self.status.lock().expect("the status lock is never poisoned");
            serde_json::to_vec(&*status).expect("IngestionStatus serializes")
        };
        if let Err(error) = self
            .root
            .store()
            .put(&Path::from(INGESTION_STATUS), PutPayload::from(bytes))
            .await
        {
            self.status_changed.store(true, Ordering::SeqCst);
            return Err(error.into());
        }
        Ok(())
    }

    /// Keeps the channels' IngestionStatus under the root every `every` when it changed.
    pub async fn keep_ingestion_status_every(&self, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(error) = self.keep_ingestion_status().await {
                tracing::warn!(%error, "keeping the channels' IngestionStatus failed; will retry");
            }
        }
    }

    /// Returns the latest ingestion attempt, success and error of a channel, as far as this server
    /// has seen them.
    pub fn ingestion_status(&self, channel_id: &str) -> IngestionStatus {
        let status = self.status.lock().expect("the status lock is never poisoned");
        status.get(channel_id).cloned().unwrap_or_default()
    }

    /// Stores the valid events of a request and reports each event as stored or failed, in
    /// request order. The request's own checks (`traillake_api::audit_events::check_request`) are
    /// the caller's to make first.
    pub async fn put_audit_events(
        &self,
        call: &AuditCall<'_>,
        events: &[AuditEvent],
    ) -> Result<PutAuditEventsResponse, ChannelError> {
        let owner = &call.channel.owner_account_id;
        let channel = match self.catalog.channel(owner, &call.channel.channel_id).await {
            Ok(channel) => channel,
            Err(LakeError::ChannelNotFound(_)) => {
                return Err(ChannelError::NotFound(channel_arn(call, &call.channel.channel_id)));
            }
            Err(error) => return Err(error.into()),
        };
        let arn = channel_arn(call, &channel.id);
        self.authorize(call, &channel, &arn)?;
        let destinations = self.destinations(&channel).await?;

        let now = Utc::now();
        let text_bytes = events
            .iter()
            .map(|e| e.event_data.as_ref().map_or(0, String::len) + 512)
            .sum();
        let mut rows = EventRows::new(StoreKind::ActivityAuditLog, events.len(), text_bytes);
        // Each event's eventID, or its error code and message, in request order.
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let event_id = uuid::Uuid::new_v4().to_string();
            let outcome = check_event(event, &event_id, call, &arn, now).map(|row| {
                rows.append(&row);
                event_id
            });
            outcomes.push(outcome);
        }

        if !rows.is_empty() {
            let refusal = if destinations.ingesting.is_empty() {
                // Every destination has stopped ingestion: the events are refused, not lost.
                Some(EventFailure::NotIngesting {
                    channel_id: channel.id.clone(),
                    stopped: destinations.stopped.join(", "),
                })
            } else {
                let batch = rows.finish();
                let commits = destinations.ingesting.iter().map(|store| {
                    let table = EventTable::new(&self.root, store, StoreKind::ActivityAuditLog);
                    let batch = batch.clone();
                    async move { self.commits.append(&table, batch).await }
                });
                let failed = futures::future::join_all(commits)
                    .await
                    .into_iter()
                    .find_map(Result::err);
                failed.map(EventFailure::Commit)
            };
            if let Some(refusal) = refusal {
                for outcome in outcomes.iter_mut().filter(|outcome| outcome.is_ok()) {
                    *outcome = Err(refusal.clone());
                }
            }
        }
        let mut response = PutAuditEventsResponse::default();
        for (event, outcome) in events.iter().zip(outcomes) {
            let id = event.id.clone().unwrap_or_default();
            match outcome {
                Ok(event_id) => response.successful.push(AuditEventResultEntry {
                    id: Some(id),
                    event_id: Some(event_id),
                }),
                Err(refusal) => response.failed.push(failure(id, &refusal)),
            }
        }
        self.record_attempt(&channel.id, &response, now);
        Ok(response)
    }

    /// The owner may call unless its policy denies it; another account needs the policy's Allow.
    fn authorize(&self, call: &AuditCall<'_>, channel: &ChannelRecord, arn: &str) -> Result<(), ChannelError> {
        let caller = call.caller_account_id;
        let refused = || {
            ChannelError::InsufficientPermission(format!(
                "account {caller} may not call PutAuditEvents on channel {arn}: it is not the owner and the channel's \
                 resource policy does not allow it{}",
                if call.external_id.is_none() {
                    " (a policy with an external ID needs externalId)"
                } else {
                    " with this externalId"
                }
            ))
        };
        let Some(text) = &channel.resource_policy else {
            return if caller == channel.account_id {
                Ok(())
            } else {
                Err(refused())
            };
        };
        let policy = ResourcePolicy::parse(text, arn, PolicyTarget::Channel).map_err(|error| {
            tracing::error!(channel_id = %channel.id, %error, "a stored channel policy no longer parses");
            ChannelError::InsufficientPermission(format!("the resource policy of channel {arn} cannot be evaluated"))
        })?;
        if policy.permits_put_audit_events(caller, &channel.account_id, call.external_id) {
            Ok(())
        } else {
            Err(refused())
        }
    }

    /// Returns the channel's destination stores, those that take events now and those that have
    /// stopped ingestion; a destination of another kind makes the channel unusable.
    async fn destinations(&self, channel: &ChannelRecord) -> Result<Destinations, ChannelError> {
        let mut destinations = Destinations::default();
        for id in &channel.destinations {
            let store = self.catalog.event_data_store(&channel.account_id, id).await?;
            if store.kind != StoreKind::ActivityAuditLog {
                return Err(ChannelError::UnsupportedSchema(format!(
                    "channel {} delivers to event data store {id}, which holds {:?} events, not ActivityAuditLog events",
                    channel.id, store.kind
                )));
            }
            if store.status == EventDataStoreStatus::Enabled {
                destinations.ingesting.push(store.id);
            } else {
                destinations.stopped.push(store.id);
            }
        }
        Ok(destinations)
    }

    fn record_attempt(&self, channel_id: &str, response: &PutAuditEventsResponse, now: DateTime<Utc>) {
        let mut status = self.status.lock().expect("the status lock is never poisoned");
        let entry = status.entry(channel_id.to_string()).or_default();
        entry.latest_ingestion_attempt_time = Some(timestamp(now));
        let last_success = response.successful.last().and_then(|entry| entry.event_id.clone());
        entry.latest_ingestion_attempt_event_id =
            last_success.clone().or(entry.latest_ingestion_attempt_event_id.take());
        if let Some(event_id) = last_success {
            entry.latest_ingestion_success_time = Some(timestamp(now));
            entry.latest_ingestion_success_event_id = Some(event_id);
        }
        if let Some(failure) = response.failed.last() {
            entry.latest_ingestion_error_code = failure.error_code.clone();
        }
        self.status_changed.store(true, Ordering::SeqCst);
    }
}

fn channel_arn(call: &AuditCall<'_>, id: &str) -> String {
    resource_arn(call.region, &call.channel.owner_account_id, ResourceType::Channel, id)
}

/// Why PutAuditEvents did not store one event, as its per-event error codes say it.
#[derive(Debug, Clone, thiserror::Error)]
enum EventFailure {
    /// The event itself is refused (its id, checksum or data): the code and message of the check.
    #[error("{1}")]
    Invalid(&'static str, String),
    /// No destination of the channel takes events now.
    #[error(
        "no destination of channel {channel_id} is ingesting: event data store {stopped} is STOPPED_INGESTION; start \
         it with StartEventDataStoreIngestion"
    )]
    NotIngesting {
        /// The channel.
        channel_id: String,
        /// The destinations that stopped ingestion, joined.
        stopped: String,
    },
    /// The events could not be stored; the detail is in the server log.
    #[error("{}", commit_message(.0))]
    Commit(CommitError),
}

impl EventFailure {
    /// Returns the per-event error code.
    fn code(&self) -> &'static str {
        match self {
            EventFailure::Invalid(code, _) => code,
            EventFailure::NotIngesting { .. } => "InvalidRecipient",
            EventFailure::Commit(_) => "InternalFailure",
        }
    }
}

/// Returns what a caller is told of a failed commit: a refusal of the lake's in its words, else
/// no detail of the server's.
fn commit_message(error: &CommitError) -> String {
    if let CommitError::Lake(error) = error
        && let LakeError::Invalid(reason) = error.as_ref()
    {
        return reason.clone();
    }
    "the events could not be committed to the event data store; see the server log".to_string()
}

fn failure(id: String, refusal: &EventFailure) -> ResultErrorEntry {
    let code = refusal.code();
    let mut message = refusal.to_string();
    if message.chars().count() > 1024 {
        message = message.chars().take(1021).collect::<String>() + "...";
    }
    ResultErrorEntry {
        id: Some(id),
        error_code: Some(code.to_string()),
        error_message: Some(message),
    }
}

/// Checks one event and returns its row, or the per-event error code and message.
fn check_event<'a>(
    event: &'a AuditEvent,
    event_id: &str,
    call: &AuditCall<'_>,
    channel_arn: &str,
    now: DateTime<Utc>,
) -> Result<traillake_lake::events::EventRow<'a>, EventFailure> {
    check_event_id(event.id.as_deref().unwrap_or_default())
        .map_err(|(code, message)| EventFailure::Invalid(code, message))?;
    let data = event.event_data.as_deref().unwrap_or_default();
    if let Some(expected) = &event.event_data_checksum {
        let actual = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data.as_bytes()));
        if *expected != actual {
            return Err(EventFailure::Invalid(
                "InvalidChecksum",
                "eventDataChecksum is not the base64 SHA-256 of eventData's UTF-8 bytes.".to_string(),
            ));
        }
    }
    let envelope = AuditEnvelope {
        event_id,
        region: call.region,
        owner_account_id: &call.channel.owner_account_id,
        channel_arn,
        ingestion_time: now,
    };
    audit_row(data, &envelope).map_err(|error| EventFailure::Invalid(error.problem.code(), error.message))
}
