//! LookupEvents over an account's Event history (`traillake_lake::EventTable::history`): the
//! events of a time range, newest first, that have one attribute.
//!
//! The history is partitioned by day, so a lookup reads the days of its range newest first, in
//! groups of 1, 1, 2, 4, 8... days (one plan per group over its days' files and the rows of the
//! write-ahead log), and stops as soon as it has a page: a lookup of the newest events reads one
//! day, one of rare events all 90 in seven plans. Each plan is `ORDER BY eventtime DESC, eventid
//! DESC LIMIT n` (DataFusion's top-k) with the attribute compared on its columns (eventid,
//! eventname, eventsource, readonly, useridentity's accesskeyid, username, arn and type), the
//! bloom filter of `eventid` and the row group statistics pruning what they can; ResourceType and
//! ResourceName are narrowed to the rows whose JSON text holds the value. Every row is then
//! decided on its parsed record (`traillake_api::lookup_events::has_attribute`). A page continues
//! after the (time, ID) of the last event of the one before.
//!
//! ListInsightsMetricData counts one API's write calls (or one error code of it) per period of the
//! history's management events ([`insights_metric_counts`]): one grouped plan over the days of
//! the range.

use std::sync::Arc;

use chrono::{DateTime, NaiveTime, Utc};
use datafusion::arrow::array::{AsArray as _, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};
use datafusion::common::ScalarValue;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::functions::expr_fn::{ends_with, get_field, strpos};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, col, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use deltalake::DeltaTable;
use serde_json::Value;
use traillake_api::insights::MetricQuery;
use traillake_api::lookup_events::{EventCursor, Lookup, LookupKey, has_attribute};
use traillake_api::shapes::InsightType;
use traillake_lake::EventTable;
use traillake_lake::events::schema::{EVENT_JSON, EVENT_TIME};
use traillake_lake::table::{DataFile, HISTORY_RETENTION_DAYS};

use crate::Result;
use crate::error::QueryError;
use crate::insights::runner::key_filter;
use crate::planner::{StoreSource, new_context, scan_columns, snapshot_and_log, table_rows};

/// One event found: where it sorts, and its record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundEvent {
    /// Its time and ID.
    pub cursor: EventCursor,
    /// The CloudTrail record, as JSON text.
    pub json: String,
}

/// Returns the events of `lookup` in the history `table` (whose latest snapshot the caller may
/// have at hand), newest first: at most `lookup.max_results + 1`, so that the caller knows whether
/// a next page exists.
pub async fn lookup_events(
    table: &EventTable,
    snapshot: Option<DeltaTable>,
    lookup: &Lookup,
    runtime: &Arc<RuntimeEnv>,
) -> Result<Vec<FoundEvent>> {
    // The Event history has no KMS key: its files are read as they are.
    let OpenTable {
        files,
        logged,
        context,
        object_store_url,
        ..
    } = open_table(table, snapshot, runtime).await?;
    let logged_days = logged_days(&logged);
    let mut days: Vec<_> = files
        .iter()
        .map(|file| file.day)
        .chain(logged_days)
        .filter(|day| (lookup.start.date_naive()..=lookup.end.date_naive()).contains(day))
        .collect();
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();

    let wanted = lookup.max_results + 1;
    let mut found = Vec::with_capacity(wanted);
    let mut cursor = lookup.after.clone();
    let mut days = days.as_slice();
    let mut groups = 0;
    while !days.is_empty() {
        // Days newest first, in groups of 1, 1, 2, 4, 8... days: a lookup of recent events reads
        // the newest day alone, and one of rare events reads 90 days in a few plans.
        let group = if groups == 0 { 1 } else { 1 << (groups - 1) };
        groups += 1;
        let (newest_days, older) = days.split_at(group.min(days.len()));
        days = older;
        let oldest_day = *newest_days.last().expect("a group has a day");
        let group_start = oldest_day.and_time(NaiveTime::MIN).and_utc();
        let group_end = newest_days[0].and_time(NaiveTime::MIN).and_utc() + chrono::Duration::days(1)
            - chrono::Duration::microseconds(1);
        let group_files: Vec<DataFile> = files
            .iter()
            .filter(|file| newest_days.contains(&file.day))
            .cloned()
            .collect();
        let from = lookup.start.max(group_start);
        let to = lookup.end.min(group_end);
        loop {
            let limit = (wanted - found.len()).max(16);
            let rows = range_rows(
                &context,
                table,
                &object_store_url,
                group_files.clone(),
                &logged,
                (from, to),
                cursor.as_ref(),
                lookup,
                limit,
            )
            .await?;
            let exhausted = rows.len() < limit;
            for row in rows {
                cursor = Some(row.cursor.clone());
                let keep = match &lookup.attribute {
                    Some((key, value)) => {
                        serde_json::from_str::<Value>(&row.json).is_ok_and(|record| has_attribute(&record, *key, value))
                    }
                    None => true,
                };
                if keep {
                    found.push(row);
                    if found.len() == wanted {
                        return Ok(found);
                    }
                }
            }
            if exhausted {
                break;
            }
        }
    }
    Ok(found)
}

/// Returns, oldest first, the periods of `query`'s range that have calls of its key in the history
/// `table`, each with its count: write management calls (ApiCallRateInsight) or management calls
/// that ended in its error code (ApiErrorRateInsight).
pub async fn insights_metric_counts(
    table: &EventTable,
    snapshot: Option<DeltaTable>,
    query: &MetricQuery,
    runtime: &Arc<RuntimeEnv>,
) -> Result<Vec<(DateTime<Utc>, u64)>> {
    let (context, rows) = range_scan(table, snapshot, (query.start, query.end), runtime).await?;
    let error_code = match query.insight_type {
        InsightType::ApiErrorRateInsight => query.error_code.as_deref(),
        _ => None,
    };
    let filter = key_filter(&query.event_source, &query.event_name, error_code);
    let period = cast(col(EVENT_TIME), DataType::Int64) / lit(query.period * 1_000_000);
    let plan = rows
        .filter(filter)?
        .aggregate(vec![period.alias("period")], vec![count(lit(1)).alias("calls")])?
        .build()?;
    let batches = DataFrame::new(context.state(), plan).collect().await?;
    let mut counts = Vec::new();
    for batch in &batches {
        let periods = batch.column(0).as_primitive::<Int64Type>();
        let calls = batch.column(1).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let start = DateTime::from_timestamp(periods.value(row) * query.period, 0).ok_or_else(|| {
                QueryError::Engine(datafusion::error::DataFusionError::Internal(
                    "a period out of the range of times".to_string(),
                ))
            })?;
            counts.push((start, u64::try_from(calls.value(row)).unwrap_or_default()));
        }
    }
    counts.sort_unstable();
    Ok(counts)
}

/// A history table opened for reading: the files of its latest snapshot, the rows of its
/// write-ahead log that the snapshot lacks, and a context that reads its object store. A store's
/// table (Insights reads them this way) may have Parquet-encrypted files, read with `footer_key`.
struct OpenTable {
    files: Vec<DataFile>,
    footer_key: Option<String>,
    logged: Vec<RecordBatch>,
    context: SessionContext,
    object_store_url: ObjectStoreUrl,
}

async fn open_table(table: &EventTable, snapshot: Option<DeltaTable>, runtime: &Arc<RuntimeEnv>) -> Result<OpenTable> {
    let source = StoreSource {
        id: table.name().to_string(),
        kind: table.kind(),
        retention_days: HISTORY_RETENTION_DAYS,
        table: table.clone(),
        snapshot,
    };
    let (snapshot, logged) = snapshot_and_log(&source).await?;
    let (files, footer_key) = match &snapshot {
        Some(snapshot) => (
            table.data_files(snapshot)?,
            table
                .decryption_key(snapshot)?
                .map(|key| key.material_hex().to_string()),
        ),
        None => (Vec::new(), None),
    };
    let context = new_context(runtime);
    let url = table.object_store_url();
    context
        .runtime_env()
        .register_object_store(&url, Arc::clone(table.object_store()));
    let object_store_url = ObjectStoreUrl::parse(url.as_str())?;
    Ok(OpenTable {
        files,
        footer_key,
        logged,
        context,
        object_store_url,
    })
}

/// Returns a context and the plan of a table's rows (its files and its write-ahead log) whose
/// `eventTime` is in `[from, to)`: only the days of the range are read.
pub(crate) async fn range_scan(
    table: &EventTable,
    snapshot: Option<DeltaTable>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    runtime: &Arc<RuntimeEnv>,
) -> Result<(SessionContext, LogicalPlanBuilder)> {
    let OpenTable {
        files,
        footer_key,
        logged,
        context,
        object_store_url,
    } = open_table(table, snapshot, runtime).await?;
    let days = from.date_naive()..=to.date_naive();
    let files: Vec<DataFile> = files.into_iter().filter(|file| days.contains(&file.day)).collect();
    let time = |time: DateTime<Utc>| {
        lit(ScalarValue::TimestampMicrosecond(
            Some(time.timestamp_micros()),
            Some("UTC".into()),
        ))
    };
    let rows = table_rows(table.name(), table.kind(), object_store_url, files, footer_key, &logged)?
        .project(scan_columns(table.kind()))?
        .filter(col(EVENT_TIME).gt_eq(time(from)).and(col(EVENT_TIME).lt(time(to))))?;
    Ok((context, rows))
}

/// Returns the days of the write-ahead log's rows.
fn logged_days(logged: &[RecordBatch]) -> Vec<chrono::NaiveDate> {
    let mut days = Vec::new();
    for batch in logged {
        let Some(times) = batch
            .column_by_name(EVENT_TIME)
            .and_then(|column| column.as_primitive_opt::<TimestampMicrosecondType>())
        else {
            continue;
        };
        for time in times.iter().flatten() {
            if let Some(time) = DateTime::from_timestamp_micros(time) {
                days.push(time.date_naive());
            }
        }
    }
    days
}

/// Returns, newest first, up to `limit` events of some days' files and of the log that fall in
/// `range`, come after `cursor` and may have the lookup's attribute.
#[allow(clippy::too_many_arguments, reason = "one range of days of one lookup")]
async fn range_rows(
    context: &SessionContext,
    table: &EventTable,
    object_store_url: &ObjectStoreUrl,
    files: Vec<DataFile>,
    logged: &[RecordBatch],
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    cursor: Option<&EventCursor>,
    lookup: &Lookup,
    limit: usize,
) -> Result<Vec<FoundEvent>> {
    let time = |time: i64| lit(ScalarValue::TimestampMicrosecond(Some(time), Some("UTC".into())));
    let mut filter = col(EVENT_TIME)
        .gt_eq(time(from.timestamp_micros()))
        .and(col(EVENT_TIME).lt_eq(time(to.timestamp_micros())))
        .and(col("eventcategory").eq(lit(if lookup.insight { "Insight" } else { "Management" })));
    if let Some(cursor) = cursor {
        let at = time(cursor.time_micros);
        filter = filter.and(
            col(EVENT_TIME).lt(at.clone()).or(col(EVENT_TIME)
                .eq(at)
                .and(col("eventid").lt(lit(cursor.event_id.as_str())))),
        );
    }
    if let Some((key, value)) = &lookup.attribute {
        filter = filter.and(attribute_filter(*key, value, lookup.insight));
    }

    let plan = table_rows(
        table.name(),
        table.kind(),
        object_store_url.clone(),
        files,
        None,
        logged,
    )?
    .project(scan_columns(table.kind()))?;
    let plan = plan
        .filter(filter)?
        .sort(vec![
            col(EVENT_TIME).sort(false, false),
            col("eventid").sort(false, false),
        ])?
        .limit(0, Some(limit))?
        .project(vec![col(EVENT_TIME), col("eventid"), col(EVENT_JSON)])?
        .build()?;
    let batches = DataFrame::new(context.state(), plan).collect().await?;
    let mut rows = Vec::new();
    for batch in &batches {
        let times = batch.column(0).as_primitive::<TimestampMicrosecondType>();
        let ids = batch.column(1);
        let texts = batch.column(2);
        for row in 0..batch.num_rows() {
            let (Some(id), Some(json)) = (string_at(ids, row), string_at(texts, row)) else {
                return Err(QueryError::Engine(datafusion::error::DataFusionError::Internal(
                    "an Event history row has no eventid or eventjson".to_string(),
                )));
            };
            rows.push(FoundEvent {
                cursor: EventCursor {
                    time_micros: times.value(row),
                    event_id: id,
                },
                json,
            });
        }
    }
    Ok(rows)
}

/// Returns the text at `row` of a string column of any string type.
fn string_at(column: &dyn datafusion::arrow::array::Array, row: usize) -> Option<String> {
    if column.is_null(row) {
        return None;
    }
    if let Some(view) = column.as_string_view_opt() {
        return Some(view.value(row).to_string());
    }
    column.as_string_opt::<i32>().map(|text| text.value(row).to_string())
}

/// Returns the filter that narrows rows to those that may have the attribute: exact on the
/// attribute's column where the table has one, the record's text holding the value otherwise.
fn attribute_filter(key: LookupKey, value: &str, insight: bool) -> Expr {
    // The JSON text holds the value as given unless JSON escapes it: then the record decides.
    let in_text = || {
        if value.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
            lit(true)
        } else {
            strpos(col(EVENT_JSON), lit(value)).gt(lit(0))
        }
    };
    match key {
        LookupKey::EventId => col("eventid").eq(lit(value)),
        // An Insights event names its API in `insightDetails`, a map column: narrowed on the text.
        LookupKey::EventName | LookupKey::EventSource if insight => in_text(),
        LookupKey::EventName => col("eventname").eq(lit(value)),
        LookupKey::EventSource => col("eventsource").eq(lit(value)),
        LookupKey::ReadOnly => col("readonly").eq(lit(value == "true")),
        LookupKey::AccessKeyId => get_field(col("useridentity"), "accesskeyid").eq(lit(value)),
        LookupKey::Username => {
            // userName; an assumed role's session name, the end of its ARN; root.
            let identity = |field: &str| get_field(col("useridentity"), field);
            let mut holds = identity("username").eq(lit(value)).or(identity("type")
                .eq(lit("AssumedRole"))
                .and(ends_with(identity("arn"), lit(format!("/{value}")))));
            if value == "root" {
                holds = holds.or(identity("type").eq(lit("Root")));
            }
            holds
        }
        LookupKey::ResourceType | LookupKey::ResourceName => in_text(),
    }
}
