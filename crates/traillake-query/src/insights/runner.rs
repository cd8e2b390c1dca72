//! Finding Insights: every interval, for each source with Insights types (a store, or the logging
//! trails of an account, found once in the account's Event history), the minutes completed since
//! the last pass are counted (one grouped plan per type over the source's management events:
//! write calls per `eventSource` / `eventName`, errors per error code), each key's
//! [`KeyDetector`] takes its minutes, and the Insights that start or end become Insights events
//! (two per Insight, Start and End, sharing `sharedEventID`, with `insightDetails` as the
//! CloudTrail User Guide lays it out: statistics, and attributions of the top 5 users, user agents
//! and error codes in the Insight and in its baseline): a store's go to its destination store, a
//! trail's to the Event history and to the Insights outbox of each trail with the type on
//! (`traillake_lake::trail_outbox`).
//!
//! State, per source, in `insights/<source>/state.json` under the root (`<source>` a store's ID,
//! or `trails-<account>`): the first minute of the source's history, the minutes done per type,
//! every key's detector, the number of commits written, and the events of a commit not yet known
//! written. Exactly once across kill -9: a pass keeps its events in the state, writes them (the
//! outboxes' segments are named by their content; the table's commit carries the Delta
//! application transaction `insights-<source>` = the commit's number), then clears them; after a
//! crash the kept events are written again as they were, and a pass done again over lost state
//! finds the mark and the segment names. IDs are derived from the source, the key and the
//! Insight's start, so a Start and its End share their `sharedEventID` whichever pass writes them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::{Array, AsArray as _};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::functions::expr_fn::get_field;
use datafusion::functions_aggregate::expr_fn::{count, min};
use datafusion::logical_expr::{Expr, cast, col, lit};
use datafusion::prelude::DataFrame;
use object_store::path::Path;
use object_store::{ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::sync::Notify;
use traillake_api::selectors::StoreKind;
use traillake_lake::catalog::insights::{API_CALL_RATE, API_ERROR_RATE};
use traillake_lake::events::{EventRows, cloudtrail_row};
use traillake_lake::trail_outbox::{self, Feed};
use traillake_lake::{AppProgress, Catalog, EventDataStoreRecord, EventTable, LakeError, LakeRoot, TrailRecord};

use super::detector::{DetectorSettings, Edge, InsightFigures, KeyDetector};
use crate::Result;
use crate::error::QueryError;
use crate::history::range_scan;

/// What one source's Insights finding remembers between passes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SourceState {
    /// The first minute of the source's management events (epoch minutes).
    history_start: Option<i64>,
    /// Per Insights type, the minutes before this one are done.
    #[serde(default)]
    done: BTreeMap<String, i64>,
    /// The minutes done of every type, as the first version of this state kept them.
    #[serde(default, skip_serializing)]
    done_until: Option<i64>,
    /// The detector of each key (`TYPE|eventSource|eventName[|errorCode]`).
    detectors: BTreeMap<String, KeyDetector>,
    /// Commits of Insights events written to the destination.
    commits: i64,
    /// Insights events made and not yet known written: written again (to the same outboxes and
    /// under the same commit mark) before anything else.
    #[serde(default)]
    pending: Option<Pending>,
}

/// The Insights events of one commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    /// The commit's number, its mark's progress.
    commit: i64,
    /// Each event's Insights type and record.
    records: Vec<(String, String)>,
}

/// Where Insights are found, and where their events go.
#[derive(Debug, Clone)]
enum Source {
    /// A store with Insights types: found in its management events, written to its destination.
    Store {
        store: Box<EventDataStoreRecord>,
        destination: String,
    },
    /// The trails of an account with Insights types, logging: found once in the account's
    /// management events (its Event history), as AWS's Insights analyze an account's API usage
    /// in a Region; written to the Event history and to the Insights outbox of each trail with
    /// the event's type on.
    Trails {
        account_id: String,
        trails: Vec<TrailRecord>,
    },
}

impl Source {
    /// The name of the source in its state's path, its events' IDs and its commit mark.
    fn name(&self) -> String {
        match self {
            Source::Store { store, .. } => store.id.clone(),
            Source::Trails { account_id, .. } => format!("trails-{account_id}"),
        }
    }

    fn account_id(&self) -> &str {
        match self {
            Source::Store { store, .. } => &store.account_id,
            Source::Trails { account_id, .. } => account_id,
        }
    }

    /// The Insights types found: a store's, or those of any of the trails.
    fn types(&self) -> Vec<String> {
        match self {
            Source::Store { store, .. } => store.insight_types.clone(),
            Source::Trails { trails, .. } => {
                let mut types: Vec<String> = trails.iter().flat_map(|t| t.insight_types.iter().cloned()).collect();
                types.sort();
                types.dedup();
                types
            }
        }
    }

    /// The table whose management events are counted.
    fn table(&self, root: &LakeRoot) -> EventTable {
        match self {
            Source::Store { store, .. } => EventTable::new(root, &store.id, store.kind),
            Source::Trails { account_id, .. } => EventTable::history(root, account_id),
        }
    }
}

/// One key's count in one minute.
struct MinuteCount {
    key: String,
    minute: i64,
    count: u64,
}

/// The finding of Insights in every source store of a root, and for every account's trails.
#[derive(Debug)]
pub struct Insights {
    root: LakeRoot,
    catalog: Arc<Catalog>,
    runtime: Arc<RuntimeEnv>,
    region: String,
    settings: DetectorSettings,
    interval: Duration,
    wake: Notify,
}

impl Insights {
    /// Returns the finding of Insights of a root's stores and trails, every `interval`.
    pub fn new(
        root: LakeRoot,
        catalog: Arc<Catalog>,
        runtime: Arc<RuntimeEnv>,
        region: String,
        settings: DetectorSettings,
        interval: Duration,
    ) -> Self {
        Self {
            root,
            catalog,
            runtime,
            region,
            settings,
            interval,
            wake: Notify::new(),
        }
    }

    /// Asks for a pass now (Insights were turned on).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Finds Insights every interval (and when woken) until dropped.
    pub async fn find_every(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = self.wake.notified() => {}
            }
            self.pass(Utc::now()).await;
        }
    }

    /// One pass over every source, with minutes complete before `now`'s minute done.
    pub async fn pass(&self, now: DateTime<Utc>) {
        let mut sources = Vec::new();
        for store in self.catalog.all_event_data_stores().await {
            if let (false, true, Some(destination)) = (
                store.insight_types.is_empty(),
                store.is_active(),
                store.insights_destination.clone(),
            ) {
                sources.push(Source::Store {
                    store: Box::new(store),
                    destination,
                });
            }
        }
        // A trail finds Insights while it logs (StopLogging turns its Insights off until
        // StartLogging, as AWS's do).
        let mut trails: BTreeMap<String, Vec<TrailRecord>> = BTreeMap::new();
        for trail in self.catalog.all_trails().await {
            if trail.logging && !trail.insight_types.is_empty() {
                trails.entry(trail.account_id.clone()).or_default().push(trail);
            }
        }
        sources.extend(
            trails
                .into_iter()
                .map(|(account_id, trails)| Source::Trails { account_id, trails }),
        );
        for source in sources {
            if let Err(error) = self.find(&source, now).await {
                tracing::warn!(source = %source.name(), %error, "finding Insights failed; the next pass tries again");
            }
        }
    }

    /// Finds the Insights of one source in the minutes done since the last pass.
    async fn find(&self, source: &Source, now: DateTime<Utc>) -> Result<()> {
        let state_path = Path::from(format!("insights/{}/state.json", source.name()));
        let mut state: SourceState = match self.root.store().get(&state_path).await {
            Ok(result) => serde_json::from_slice(&result.bytes().await?).map_err(|source| {
                QueryError::Lake(LakeError::Corrupt {
                    context: format!("reading {state_path}"),
                    source,
                })
            })?,
            Err(object_store::Error::NotFound { .. }) => SourceState::default(),
            Err(error) => return Err(error.into()),
        };
        let save = |state: &SourceState| {
            let bytes = serde_json::to_vec(state).expect("an Insights state serializes");
            self.root.store().put(&state_path, PutPayload::from(bytes))
        };
        // Events a crash may have cut short are written first, exactly as they were made.
        if let Some(pending) = state.pending.take() {
            self.write(source, &pending).await?;
            state.commits = pending.commit;
            save(&state).await?;
        }
        let types = source.types();
        if let Some(done_until) = state.done_until.take() {
            for insight_type in &types {
                state.done.insert(insight_type.clone(), done_until);
            }
        }
        // A type turned off forgets its keys: turned on again, it starts from the history.
        state.done.retain(|insight_type, _| types.contains(insight_type));
        state
            .detectors
            .retain(|key, _| types.iter().any(|t| key.split('|').next() == Some(t.as_str())));

        let table = source.table(&self.root);
        // The minute before now's may still take events: it is done at the next pass.
        let end = now.timestamp().div_euclid(60) - 1;
        let history_start = match state.history_start {
            Some(start) => start,
            None => match self.first_minute(&table, now).await? {
                Some(start) => start,
                None => return Ok(()),
            },
        };
        state.history_start = Some(history_start);
        let mut edges = Vec::new();
        for insight_type in &types {
            let from = state.done.get(insight_type).copied().unwrap_or(history_start);
            if from >= end {
                continue;
            }
            let counts = self.minute_counts(&table, insight_type, (from, end)).await?;
            let mut by_key: BTreeMap<&str, Vec<(i64, u64)>> = BTreeMap::new();
            for count in &counts {
                by_key.entry(&count.key).or_default().push((count.minute, count.count));
            }
            // Every key of the type with a detector (an open Insight ends in quiet minutes too)
            // or with counts.
            let prefix = format!("{insight_type}|");
            let keys: std::collections::BTreeSet<String> = state
                .detectors
                .keys()
                .filter(|key| key.starts_with(&prefix))
                .cloned()
                .chain(by_key.keys().map(|k| k.to_string()))
                .collect();
            for key in keys {
                let detector = state
                    .detectors
                    .entry(key.clone())
                    .or_insert_with(|| KeyDetector::new(history_start));
                let mut minutes = by_key.get(key.as_str()).cloned().unwrap_or_default();
                minutes.sort_unstable();
                for (minute, count) in minutes.into_iter().chain([(end - 1, 0)]) {
                    if let Some(edge) = detector.observe(minute, count, &self.settings) {
                        edges.push((key.clone(), edge));
                    }
                }
            }
            state.done.insert(insight_type.clone(), end);
        }
        // Keys no longer needed: nothing open and nothing counted for a whole baseline.
        state
            .detectors
            .retain(|_, detector| detector.is_open() || !detector.is_quiet_since(end, &self.settings));

        if !edges.is_empty() {
            let mut records = Vec::with_capacity(edges.len());
            for (key, edge) in &edges {
                let attributions = self.attributions(&table, key, edge).await?;
                let insight_type = key.split('|').next().unwrap_or_default().to_string();
                records.push((insight_type, self.record(source, key, edge, attributions)));
            }
            let pending = Pending {
                commit: state.commits + 1,
                records,
            };
            // Kept before it is written, so that a crash between the two writes it again as it is.
            state.pending = Some(pending.clone());
            save(&state).await?;
            self.write(source, &pending).await?;
            state.pending = None;
            state.commits = pending.commit;
            tracing::info!(source = %source.name(), events = pending.records.len(), "Insights events written");
        }
        save(&state).await?;
        Ok(())
    }

    /// Writes the Insights events of a commit where the source's go: the destination store, or
    /// the outboxes of the trails with their types on and the account's Event history. Written
    /// again after a crash, they are stored once: outbox segments are named by their content, and
    /// the table's commit carries the mark `insights-<source>` = the commit's number.
    async fn write(&self, source: &Source, pending: &Pending) -> Result<()> {
        let (target, kind) = match source {
            Source::Store { destination, .. } => (
                EventTable::new(&self.root, destination, StoreKind::Insight),
                StoreKind::Insight,
            ),
            Source::Trails { account_id, trails } => {
                for trail in trails {
                    let records: Vec<&str> = pending
                        .records
                        .iter()
                        .filter(|(insight_type, _)| trail.insight_types.contains(insight_type))
                        .map(|(_, record)| record.as_str())
                        .collect();
                    if !records.is_empty() {
                        trail_outbox::append(&self.root, trail, Feed::Insights, &records).await?;
                    }
                }
                (EventTable::history(&self.root, account_id), StoreKind::CloudTrail)
            }
        };
        let raw: Vec<Box<serde_json::value::RawValue>> = pending
            .records
            .iter()
            .filter_map(|(_, text)| serde_json::value::RawValue::from_string(text.clone()).ok())
            .collect();
        let text_bytes = pending.records.iter().map(|(_, text)| text.len()).sum();
        let mut rows = EventRows::new(kind, raw.len(), text_bytes);
        for record in &raw {
            let row = cloudtrail_row(record).map_err(|error| {
                QueryError::Engine(datafusion::error::DataFusionError::Internal(format!(
                    "an Insights event is not a valid record: {error}"
                )))
            })?;
            rows.append(&row);
        }
        let mark = AppProgress {
            writer: format!("insights-{}", source.name()),
            progress: pending.commit,
        };
        target.append_once(&[rows.finish()], &mark).await?;
        Ok(())
    }

    /// Returns the first minute of a source's management events, if it has any.
    async fn first_minute(&self, table: &EventTable, now: DateTime<Utc>) -> Result<Option<i64>> {
        let since = now - chrono::Duration::days(3650);
        let (context, rows) = range_scan(table, None, (since, now), &self.runtime).await?;
        let plan = rows
            .filter(col("eventcategory").eq(lit("Management")))?
            .aggregate(
                Vec::<datafusion::logical_expr::Expr>::new(),
                vec![min(cast(col("eventtime"), DataType::Int64)).alias("first")],
            )?
            .build()?;
        let batches = DataFrame::new(context.state(), plan).collect().await?;
        Ok(batches
            .first()
            .map(|batch| batch.column(0).as_primitive::<Int64Type>().clone())
            .filter(|first| first.len() == 1 && !first.is_null(0))
            .map(|first| first.value(0).div_euclid(60_000_000)))
    }

    /// Returns the counts of every key of an Insights type in `[from, to)` (minutes).
    async fn minute_counts(
        &self,
        table: &EventTable,
        insight_type: &str,
        (from, to): (i64, i64),
    ) -> Result<Vec<MinuteCount>> {
        let time = |minute: i64| DateTime::from_timestamp(minute * 60, 0).expect("a minute in range");
        // One plan per type: each filters to its own rows (errors are few), which measured faster
        // than one plan grouping both types' rows by error code and readOnly (0.55 s against
        // 0.72 s a million events in benches/live.py --insights).
        let mut counts = Vec::new();
        let (context, rows) = range_scan(table, None, (time(from), time(to)), &self.runtime).await?;
        let management = col("eventcategory").eq(lit("Management"));
        let (filter, mut groups) = if insight_type == API_ERROR_RATE {
            (management.and(col("errorcode").is_not_null()), vec![col("errorcode")])
        } else {
            (management.and(col("readonly").eq(lit(false))), Vec::new())
        };
        groups.splice(0..0, [col("eventsource"), col("eventname")]);
        groups.push((cast(col("eventtime"), DataType::Int64) / lit(60_000_000_i64)).alias("minute"));
        let plan = rows
            .filter(filter)?
            .aggregate(groups, vec![count(lit(1)).alias("calls")])?
            .build()?;
        for batch in DataFrame::new(context.state(), plan).collect().await? {
            let text = |index: usize, row: usize| {
                let column = batch.column(index);
                (!column.is_null(row))
                    .then(|| string_value(column.as_ref(), row))
                    .flatten()
            };
            let error_column = (insight_type == API_ERROR_RATE).then_some(2);
            let minutes = batch
                .column_by_name("minute")
                .expect("minute")
                .as_primitive::<Int64Type>();
            let calls = batch
                .column_by_name("calls")
                .expect("calls")
                .as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                let (Some(event_source), Some(event_name)) = (text(0, row), text(1, row)) else {
                    continue;
                };
                let mut key = format!("{insight_type}|{event_source}|{event_name}");
                if let Some(error) = error_column.and_then(|index| text(index, row)) {
                    key = format!("{key}|{error}");
                }
                counts.push(MinuteCount {
                    key,
                    minute: minutes.value(row),
                    count: u64::try_from(calls.value(row)).unwrap_or_default(),
                });
            }
        }
        Ok(counts)
    }

    /// Returns the attributions of an Insight: per attribute (`userIdentityArn`, `userAgent`, and
    /// `errorCode` for call rates, `"null"` for a call without one), its top 5 values in the
    /// Insight's minutes and in the baseline's, each with its mean count a minute there.
    async fn attributions(&self, table: &EventTable, key: &str, edge: &Edge) -> Result<serde_json::Value> {
        let figures = match edge {
            Edge::Start(figures) | Edge::End(figures) => figures,
        };
        let mut parts = key.splitn(4, '|');
        let insight_type = parts.next().unwrap_or(API_CALL_RATE);
        let (event_source, event_name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let error_code = parts.next();
        let minute = |m: i64| DateTime::from_timestamp(m * 60, 0).expect("a minute in range");
        let windows = [
            (
                figures.start,
                figures.start + figures.insight_duration,
                figures.insight_duration,
            ),
            (
                figures.start - figures.baseline_duration,
                figures.start,
                figures.baseline_duration,
            ),
        ];
        let attributes: &[&str] = if insight_type == API_ERROR_RATE {
            &["userIdentityArn", "userAgent"]
        } else {
            &["userIdentityArn", "userAgent", "errorCode"]
        };
        let mut found: Vec<[Vec<serde_json::Value>; 2]> = vec![[Vec::new(), Vec::new()]; attributes.len()];
        for (window, (from, to, minutes)) in windows.into_iter().enumerate() {
            if minutes <= 0 {
                continue;
            }
            let (context, rows) = range_scan(table, None, (minute(from), minute(to)), &self.runtime).await?;
            let plan = rows
                .filter(key_filter(event_source, event_name, error_code))?
                .aggregate(
                    vec![
                        get_field(col("useridentity"), "arn").alias("arn"),
                        col("useragent"),
                        col("errorcode"),
                    ],
                    vec![count(lit(1)).alias("calls")],
                )?
                .build()?;
            let mut totals: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); attributes.len()];
            for batch in DataFrame::new(context.state(), plan).collect().await? {
                let calls = batch.column(3).as_primitive::<Int64Type>();
                for row in 0..batch.num_rows() {
                    let calls = u64::try_from(calls.value(row)).unwrap_or_default();
                    for (index, total) in totals.iter_mut().enumerate() {
                        let column = batch.column(index);
                        let value = (!column.is_null(row))
                            .then(|| string_value(column.as_ref(), row))
                            .flatten()
                            .unwrap_or_else(|| "null".to_string());
                        *total.entry(value).or_default() += calls;
                    }
                }
            }
            for (index, total) in totals.into_iter().enumerate() {
                let mut values: Vec<(String, u64)> = total.into_iter().collect();
                values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                found[index][window] = values
                    .into_iter()
                    .take(5)
                    .map(|(value, calls)| json!({"value": value, "average": calls as f64 / minutes as f64}))
                    .collect();
            }
        }
        Ok(serde_json::Value::Array(
            attributes
                .iter()
                .zip(found)
                .map(|(attribute, [insight, baseline])| json!({"attribute": attribute, "insight": insight, "baseline": baseline}))
                .collect(),
        ))
    }

    /// Returns the Insights event of an edge, as CloudTrail writes one.
    fn record(&self, source: &Source, key: &str, edge: &Edge, attributions: serde_json::Value) -> String {
        let mut parts = key.splitn(4, '|');
        let insight_type = parts.next().unwrap_or(API_CALL_RATE);
        let event_source = parts.next().unwrap_or_default();
        let event_name = parts.next().unwrap_or_default();
        let error_code = parts.next();
        let (state, figures) = match edge {
            Edge::Start(figures) => ("Start", figures),
            Edge::End(figures) => ("End", figures),
        };
        let InsightFigures {
            start,
            insight_duration,
            insight_average,
            baseline_duration,
            baseline_average,
        } = figures;
        let shared = derived_uuid(&format!("{}|{key}|{start}", source.name()));
        let event_id = derived_uuid(&format!("{shared}|{state}"));
        let minute = if state == "Start" {
            *start
        } else {
            start + insight_duration
        };
        let time = DateTime::from_timestamp(minute * 60, 0)
            .expect("a minute in range")
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut details = json!({
            "state": state,
            "eventSource": event_source,
            "eventName": event_name,
            "insightType": insight_type,
            "insightContext": {
                "statistics": {
                    "baseline": {"average": baseline_average},
                    "insight": {"average": insight_average},
                    "insightDuration": insight_duration,
                    "baselineDuration": baseline_duration,
                },
                "attributions": attributions,
            },
        });
        if let Some(error_code) = error_code {
            details["errorCode"] = json!(error_code);
        }
        json!({
            "eventVersion": "1.08",
            "eventTime": time,
            "awsRegion": self.region,
            "eventID": event_id,
            "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": source.account_id(),
            "sharedEventID": shared,
            "insightDetails": details,
            "eventCategory": "Insight",
        })
        .to_string()
    }
}

/// Returns the filter of one key's events: management calls of an API that wrote (no error code
/// given, ApiCallRateInsight) or that ended in the error code (ApiErrorRateInsight).
pub(crate) fn key_filter(event_source: &str, event_name: &str, error_code: Option<&str>) -> Expr {
    let api = col("eventcategory")
        .eq(lit("Management"))
        .and(col("eventsource").eq(lit(event_source)))
        .and(col("eventname").eq(lit(event_name)));
    match error_code {
        Some(code) => api.and(col("errorcode").eq(lit(code))),
        None => api.and(col("readonly").eq(lit(false))),
    }
}

/// Returns a UUID (version 4's form) derived from text: the same text, the same ID.
fn derived_uuid(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// Returns the text of a string column of any string type at a row.
fn string_value(column: &dyn Array, row: usize) -> Option<String> {
    if let Some(view) = column.as_string_view_opt() {
        return Some(view.value(row).to_string());
    }
    if let Some(text) = column.as_string_opt::<i32>() {
        return Some(text.value(row).to_string());
    }
    column.as_string_opt::<i64>().map(|text| text.value(row).to_string())
}
