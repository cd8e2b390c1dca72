//! Account activity: every call to traillake's API, through either front door, recorded as the
//! CloudTrail event AWS writes for a call to CloudTrail (`traillake_events::activity`), and
//! delivered to the caller's Event history and the stores whose selectors take it
//! (`traillake_ingest::live`).
//!
//! Recording never holds up a call: the front door hands the finished call to
//! [`ActivityRecorder::record`], which queues its record and returns; one task takes what is
//! queued (what arrived within [`GATHER`] of the first, a few thousand records at most) and stores
//! it through group commit, so that the writes of the lake grow with time, not with calls. When storage
//! falls so far behind that [`QUEUE`] records wait, further records are dropped and counted in the
//! log, rather than delaying answers. Records still queued when the server stops are stored before
//! it releases the lake (see `Server::run`); a record queued at the moment of a kill -9 is lost, as
//! it was never acknowledged to anyone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use traillake_api::ApiError;
use traillake_api::arn::{CloudTrailArn, ResourceType, resource_arn};
use traillake_ingest::live::LiveEvents;
use traillake_lake::events::activity::{ApiCall, Caller, activity_record};

use crate::auth::Principal;

/// Records waiting to be stored at most; more are dropped.
pub const QUEUE: usize = 65_536;

/// Records stored together at most.
const BATCH: usize = 4_096;

/// How long the storing task gathers records after the first before it writes them: one write
/// (one write-ahead log segment per table) for the calls of that moment instead of one per call.
const GATHER: Duration = Duration::from_millis(200);

/// One answered call, as a front door saw it.
pub(crate) struct AnsweredCall<'a> {
    /// The operation's name.
    pub operation: &'a str,
    /// Whether it is PutAuditEvents, of the CloudTrail Data API (a data event).
    pub data_api: bool,
    /// Whether the operation only reads.
    pub read_only: bool,
    /// Who called.
    pub principal: &'a Principal,
    /// The caller's address.
    pub peer: Option<SocketAddr>,
    /// The `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// The server's Region.
    pub region: &'a str,
    /// The request ID of the answer.
    pub request_id: &'a str,
    /// The request, with AWS's member names; PutAuditEvents' event bodies are left out here.
    pub request: Option<Value>,
    /// The response, with AWS's member names, for a call that succeeded and does not only read.
    pub response: Option<Value>,
    /// The refusal, for a call that failed.
    pub error: Option<&'a ApiError>,
    /// When the call was answered.
    pub time: DateTime<Utc>,
}

/// A call the JSON gateway answered, as the wire carried it: its record is made by the storing
/// task, so that reading the request's JSON (a PutAuditEvents body is up to 1 MB) costs the answer
/// nothing.
#[derive(Debug)]
pub(crate) struct GatewayCall {
    /// The operation's name.
    pub operation: &'static str,
    /// Whether it is PutAuditEvents, of the CloudTrail Data API.
    pub data_api: bool,
    /// Whether the operation only reads.
    pub read_only: bool,
    /// Who called.
    pub principal: Principal,
    /// The caller's address.
    pub peer: Option<SocketAddr>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The server's Region.
    pub region: String,
    /// The request ID of the answer.
    pub request_id: String,
    /// The request body.
    pub body: Bytes,
    /// The query string (PutAuditEvents names its channel there).
    pub query: Option<String>,
    /// The response body of a call that succeeded and does not only read.
    pub response: Option<Vec<u8>>,
    /// The refusal, for a call that failed.
    pub error: Option<ApiError>,
    /// When the call was answered.
    pub time: DateTime<Utc>,
}

impl GatewayCall {
    /// Returns the record of the call.
    fn recorded(&self) -> Option<Recorded> {
        let mut request: Option<Value> = serde_json::from_slice(&self.body).ok();
        if self.data_api {
            // The channel and external ID come in the query string.
            if let Some(Value::Object(members)) = &mut request {
                for (name, value) in url::form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes()) {
                    if name == "channelArn" || name == "externalId" {
                        members.insert(name.into_owned(), Value::from(value.into_owned()));
                    }
                }
            }
            request = request.map(audit_request_parameters);
        }
        let response = self
            .response
            .as_deref()
            .and_then(|bytes| serde_json::from_slice(bytes).ok());
        recorded(AnsweredCall {
            operation: self.operation,
            data_api: self.data_api,
            read_only: self.read_only,
            principal: &self.principal,
            peer: self.peer,
            user_agent: self.user_agent.as_deref(),
            region: &self.region,
            request_id: &self.request_id,
            request,
            response,
            error: self.error.as_ref(),
            time: self.time,
        })
    }
}

/// What waits for the storing task: a record, or a gateway call to make one of.
#[derive(Debug)]
enum Queued {
    Record(Recorded),
    Gateway(Box<GatewayCall>),
}

/// A record waiting to be stored, and its account.
struct Recorded {
    account_id: String,
    record: Box<RawValue>,
}

/// Queues the records of answered calls for storage.
#[derive(Debug)]
pub struct ActivityRecorder {
    /// Where records go; none when recording is off.
    sender: Option<mpsc::Sender<Queued>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorded")
            .field("account_id", &self.account_id)
            .finish()
    }
}

impl ActivityRecorder {
    /// Starts the task that stores recorded calls through `live`; it ends once every recorder
    /// handle is dropped and what was queued is stored.
    pub fn start(live: Arc<LiveEvents>) -> (Arc<Self>, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(store_recorded(live, receiver));
        let recorder = Arc::new(Self {
            sender: Some(sender),
            dropped: AtomicU64::new(0),
        });
        (recorder, task)
    }

    /// Returns a recorder that records nothing (`serve --record-activity false`).
    pub fn off() -> Arc<Self> {
        Arc::new(Self {
            sender: None,
            dropped: AtomicU64::new(0),
        })
    }

    /// Queues the record of an answered call; never waits.
    pub(crate) fn record(&self, call: AnsweredCall<'_>) {
        if self.sender.is_some()
            && let Some(recorded) = recorded(call)
        {
            self.enqueue(Queued::Record(recorded));
        }
    }

    /// Queues a call of the JSON gateway, whose record the storing task makes; never waits.
    pub(crate) fn record_gateway(&self, call: GatewayCall) {
        self.enqueue(Queued::Gateway(Box::new(call)));
    }

    fn enqueue(&self, queued: Queued) {
        let Some(sender) = &self.sender else {
            return;
        };
        if sender.try_send(queued).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::error!(
                    dropped,
                    "storage is behind: activity records are being dropped instead of delaying answers"
                );
            }
        }
    }
}

/// Returns the record of an answered call, or `None` (logged) if it cannot be written.
fn recorded(call: AnsweredCall<'_>) -> Option<Recorded> {
    let principal = call.principal;
    let account_id = principal.account_id.as_str();
    let event_id = uuid::Uuid::new_v4().to_string();
    let source_ip = call.peer.map(|peer| peer.ip().to_string()).unwrap_or_default();
    let error_code = call.error.map(|error| error.code.as_str());
    let record = activity_record(&ApiCall {
        event_source: if call.data_api {
            "cloudtrail-data.amazonaws.com"
        } else {
            "cloudtrail.amazonaws.com"
        },
        event_name: call.operation,
        read_only: call.read_only,
        management: !call.data_api,
        caller: Caller {
            account_id,
            access_key_id: principal.access_key_id.as_deref(),
            session: principal.session,
            user_name: principal.user_name.as_deref(),
            arn: principal.arn.as_deref(),
        },
        region: call.region,
        source_ip: &source_ip,
        user_agent: call.user_agent,
        request_id: call.request_id,
        event_id: &event_id,
        time: call.time,
        request: call.request.as_ref(),
        response: call.response.as_ref(),
        error: call
            .error
            .map(|error| (error_code.unwrap_or_default(), error.message.as_str())),
        resources: resources(
            call.region,
            account_id,
            call.operation,
            call.request.as_ref(),
            call.response.as_ref(),
        ),
    });
    match serde_json::value::to_raw_value(&record) {
        Ok(record) => Some(Recorded {
            account_id: account_id.to_string(),
            record,
        }),
        Err(error) => {
            tracing::error!(%error, "an activity record could not be written as JSON");
            None
        }
    }
}

/// Stores queued records, a batch at a time, grouped by account, until every sender is gone. A
/// batch whose storage fails is tried again, waiting longer each time, so that records are not
/// lost to a storage outage shorter than the queue.
async fn store_recorded(live: Arc<LiveEvents>, mut receiver: mpsc::Receiver<Queued>) {
    let mut waiting = Vec::with_capacity(BATCH);
    let mut queued = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut waiting, BATCH).await > 0 {
        tokio::time::sleep(GATHER).await;
        while waiting.len() < BATCH
            && let Ok(more) = receiver.try_recv()
        {
            waiting.push(more);
        }
        queued.extend(waiting.drain(..).filter_map(|waiting| match waiting {
            Queued::Record(recorded) => Some(recorded),
            Queued::Gateway(call) => call.recorded(),
        }));
        let mut by_account: BTreeMap<&str, Vec<&RawValue>> = BTreeMap::new();
        for recorded in &queued {
            by_account
                .entry(recorded.account_id.as_str())
                .or_default()
                .push(&recorded.record);
        }
        for (account_id, records) in by_account {
            let mut wait = Duration::from_millis(500);
            loop {
                match live.deliver(account_id, &records).await {
                    Ok(_) => break,
                    Err(error) => {
                        tracing::error!(account_id, records = records.len(), %error, "storing activity records failed; will retry");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        queued.clear();
    }
}

/// Returns the resources a call named (its stores, channels and trails), each as its CloudTrail
/// type and ARN, in the order the request and then the response name them.
fn resources(
    region: &str,
    account_id: &str,
    operation: &str,
    request: Option<&Value>,
    response: Option<&Value>,
) -> Vec<(&'static str, String)> {
    // `Name` names a trail in the trail operations only (CreateEventDataStore has one too).
    let names_trail = operation.contains("Trail") || operation.ends_with("Logging");
    let mut found: Vec<(&'static str, String)> = Vec::new();
    let mut add = |kind: ResourceType, value: &str| {
        let arn = if value.starts_with("arn:") {
            value.to_string()
        } else {
            resource_arn(region, account_id, kind, value)
        };
        let type_name = match kind {
            ResourceType::EventDataStore => "AWS::CloudTrail::EventDataStore",
            ResourceType::Channel => "AWS::CloudTrail::Channel",
            ResourceType::Dashboard => "AWS::CloudTrail::Dashboard",
            ResourceType::Trail => "AWS::CloudTrail::Trail",
        };
        if !found.iter().any(|(_, known)| *known == arn) {
            found.push((type_name, arn));
        }
    };
    for message in [request, response].into_iter().flatten() {
        let text = |name: &str| message.get(name).and_then(Value::as_str);
        for name in ["EventDataStore", "EventDataStoreArn"] {
            if let Some(value) = text(name) {
                add(ResourceType::EventDataStore, value);
            }
        }
        for name in ["Channel", "ChannelArn", "channelArn"] {
            if let Some(value) = text(name) {
                add(ResourceType::Channel, value);
            }
        }
        for name in ["TrailARN", "TrailName"] {
            if let Some(value) = text(name) {
                add(ResourceType::Trail, value);
            }
        }
        if names_trail && let Some(value) = text("Name") {
            add(ResourceType::Trail, value);
        }
        for name in ["ResourceId", "ResourceArn"] {
            if let Some(value) = text(name)
                && let Some(kind) = CloudTrailArn::parse(value).and_then(|arn| arn.kind())
            {
                add(kind, value);
            }
        }
        // StartImport's destinations are store ARNs.
        if let Some(destinations) = message.get("Destinations").and_then(Value::as_array) {
            for destination in destinations.iter().filter_map(Value::as_str) {
                add(ResourceType::EventDataStore, destination);
            }
        }
    }
    found
}

/// Returns a PutAuditEvents request as its record holds it: the channel, the external ID and each
/// event's ID and checksum, without the event bodies.
pub(crate) fn audit_request_parameters(mut request: Value) -> Value {
    if let Some(events) = request.get_mut("auditEvents").and_then(Value::as_array_mut) {
        for event in events.iter_mut().filter_map(Value::as_object_mut) {
            event.remove("eventData");
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_the_stores_and_channels_of_a_call() {
        let store = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE";
        let request = json!({"EventDataStore": "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE", "Channel": "c1"});
        let response =
            json!({"EventDataStoreArn": store, "ResourceId": "arn:aws:cloudtrail:us-east-1:123456789012:channel/c2"});
        assert_eq!(
            resources("us-east-1", "123456789012", "AddTags", Some(&request), Some(&response)),
            vec![
                ("AWS::CloudTrail::EventDataStore", store.to_string()),
                (
                    "AWS::CloudTrail::Channel",
                    "arn:aws:cloudtrail:us-east-1:123456789012:channel/c1".to_string()
                ),
                (
                    "AWS::CloudTrail::Channel",
                    "arn:aws:cloudtrail:us-east-1:123456789012:channel/c2".to_string()
                ),
            ]
        );
    }

    #[test]
    fn leaves_the_event_bodies_out_of_a_put_audit_events_record() {
        let request = json!({"channelArn": "c", "auditEvents": [{"id": "1", "eventData": "{\"secret\": 1}", "eventDataChecksum": "x"}]});
        assert_eq!(
            audit_request_parameters(request),
            json!({"channelArn": "c", "auditEvents": [{"id": "1", "eventDataChecksum": "x"}]})
        );
    }
}
