//! Planning a prepared query against the stores it names.
//!
//! Each store becomes a view registered under its ID: the Parquet files of the store's snapshot
//! ([`StoreFiles`]), with the rows of its write-ahead log that the snapshot does not hold yet
//! (events acknowledged to PutAuditEvents, `traillake_lake::wal`) as an in-memory table beside
//! them, filtered to `eventtime >= now - retention` so that retention is exact at
//! query time (the filter is left out when the snapshot holds no day that old, so that a full scan
//! does not read `eventtime` for nothing). DataFusion inlines the views, so the retention filter
//! and the query's own `eventtime` predicates reach the Parquet scan, which skips files by their
//! day, then row groups and pages by the Parquet statistics.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::config::{ConfigNonZeroUsize, ConfigOptions};
use datafusion::common::{ScalarValue, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, col, lit};
use datafusion::optimizer::{Analyzer, AnalyzerRule};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use deltalake::DeltaTable;
use traillake_api::selectors::StoreKind;
use traillake_lake::catalog::oldest_kept;
use traillake_lake::events::schema::{EVENT_JSON, EVENT_TIME, event_schema};
use traillake_lake::table::DataFile;
use traillake_lake::{EventTable, LakeError, WriteAheadLog};

use crate::Result;
use crate::error::QueryError;
use crate::event_json::{EVENT_JSON_CHECKSUM, event_json, event_json_checksum};
use crate::functions;
use crate::set_operations::TimestampsMeetTextAsText;
use crate::store_files::{StoreFiles, log_rows_table, scan_schema};
use traillake_sql::PreparedQuery;

/// A store a query reads, as the catalog describes it.
#[derive(Debug, Clone)]
pub struct StoreSource {
    /// The store's ID, the name its view is registered under.
    pub id: String,
    /// The kind of events it holds.
    pub kind: StoreKind,
    /// Days an event is visible after its `eventTime`.
    pub retention_days: i32,
    /// Its table.
    pub table: EventTable,
    /// The table's latest snapshot when the caller has it at hand; loaded while planning otherwise.
    pub snapshot: Option<DeltaTable>,
}

/// A query planned and ready to run.
pub struct PlannedQuery {
    /// The session the plan belongs to (functions, object stores).
    pub context: SessionContext,
    /// The optimized-to-be logical plan.
    pub plan: LogicalPlan,
    /// The result column keys, one per output column.
    pub column_keys: Vec<String>,
}

/// Returns a session with traillake's configuration and the dialect's functions.
///
/// Queries with lambdas plan without the physical `ProjectionPushdown` rule: on DataFusion 55.2 it
/// re-indexes the columns a projection reads when it merges projections, but not the lambda
/// variables, whose index then points at the wrong column ("Field of physical LambdaVariable ...
/// doesn't match batch field").
fn context_for(prepared: &PreparedQuery, runtime: &Arc<RuntimeEnv>) -> SessionContext {
    let context = new_context(runtime);
    if !prepared.has_lambdas {
        return context;
    }
    let state = context.state();
    let rules = state
        .physical_optimizers()
        .iter()
        .filter(|rule| rule.name() != "ProjectionPushdown")
        .cloned()
        .collect();
    let state = SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rules(rules)
        .build();
    SessionContext::new_with_state(state)
}

/// Returns a session with traillake's configuration and the dialect's functions, on a runtime
/// shared by the engine's queries (so that their object stores and the Parquet metadata cache
/// carry over from one query to the next).
pub fn new_context(runtime: &Arc<RuntimeEnv>) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_create_default_catalog_and_schema(true)
        .set_bool("datafusion.sql_parser.enable_ident_normalization", true);
    set_options(config.options_mut());
    let mut analyzer_rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![Arc::new(TimestampsMeetTextAsText)];
    analyzer_rules.extend(Analyzer::new().rules);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(Arc::clone(runtime))
        .with_default_features()
        .with_analyzer_rules(analyzer_rules)
        .build();
    let context = SessionContext::new_with_state(state);
    functions::register(&context);
    context
}

/// Sets the options that execution reads, in the server's sessions and in the workers' (which
/// run the tasks of its plans): large batches, filters evaluated in the Parquet reader.
pub fn set_options(options: &mut ConfigOptions) {
    options.execution.batch_size = ConfigNonZeroUsize::try_new(32 * 1024).expect("not 0");
    options.execution.parquet.pushdown_filters = true;
    options.execution.parquet.reorder_filters = true;
}

/// Plans a prepared query over its stores, as they are at `now`, on the engine's runtime.
pub async fn plan(
    prepared: &PreparedQuery,
    stores: &[StoreSource],
    now: DateTime<Utc>,
    runtime: &Arc<RuntimeEnv>,
) -> Result<PlannedQuery> {
    let context = context_for(prepared, runtime);
    for store in stores {
        let view = store_view(&context, store, now).await?;
        context.register_table(TableReference::bare(store.id.clone()), view)?;
    }
    let statement = DFStatement::Statement(Box::new(Statement::Query(Box::new(prepared.query.clone()))));
    let plan = context
        .state()
        .statement_to_plan(statement)
        .await
        .map_err(|error| QueryError::InvalidStatement(planning_message(&error)))?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|error| QueryError::InvalidStatement(planning_message(&error)))?;
    let column_keys = result_keys(prepared, &plan);
    Ok(PlannedQuery {
        context,
        plan,
        column_keys,
    })
}

/// Returns a planning error as the caller should read it: without DataFusion's wrapping, and
/// without the list of every valid field that follows an unknown column.
fn planning_message(error: &datafusion::error::DataFusionError) -> String {
    let text = error.find_root().to_string();
    match text.split_once("\nValid fields are") {
        Some((head, _)) => head.to_string(),
        None => text,
    }
}

/// Returns the view of one store: its events within retention, without the partition column.
async fn store_view(
    context: &SessionContext,
    store: &StoreSource,
    now: DateTime<Utc>,
) -> Result<Arc<dyn TableProvider>> {
    let oldest = oldest_kept(store.retention_days, now);
    let (snapshot, logged) = snapshot_and_log(store).await?;
    let files = match &snapshot {
        Some(snapshot) => store.table.data_files(snapshot)?,
        None => Vec::new(),
    };
    // A day after the oldest kept day holds no event older than retention; the log's rows are few,
    // and filtered whatever their days.
    let may_hold_older = files.iter().any(|file| file.day <= oldest.date_naive()) || !logged.is_empty();
    let footer_key = match &snapshot {
        Some(snapshot) => store
            .table
            .decryption_key(snapshot)?
            .map(|key| key.material_hex().to_string()),
        None => None,
    };
    let url = store.table.object_store_url();
    context
        .runtime_env()
        .register_object_store(&url, Arc::clone(store.table.object_store()));
    let mut plan = table_rows(
        &store.id,
        store.kind,
        ObjectStoreUrl::parse(url.as_str())?,
        files,
        footer_key,
        &logged,
    )?;
    if may_hold_older {
        let oldest = lit(ScalarValue::TimestampMicrosecond(
            Some(oldest.timestamp_micros()),
            Some("UTC".into()),
        ));
        plan = plan.filter(col(EVENT_TIME).gt_eq(oldest))?;
    }
    Ok(Arc::new(ViewTable::new(
        plan.project(scan_columns(store.kind))?.build()?,
        None,
    )))
}

/// Returns the plan of a table's rows: the Parquet `files` of its snapshot and the rows of its
/// write-ahead log that the snapshot lacks (`logged`), both with the columns of [`scan_schema`].
/// Files encrypted with a key's material are read with `footer_key` (hex digits).
pub(crate) fn table_rows(
    name: &str,
    kind: StoreKind,
    object_store_url: ObjectStoreUrl,
    files: Vec<DataFile>,
    footer_key: Option<String>,
    logged: &[RecordBatch],
) -> Result<LogicalPlanBuilder> {
    let source = StoreFiles::new(kind, object_store_url, files).with_footer_key(footer_key);
    let mut plan = LogicalPlanBuilder::scan(format!("{name}.table"), provider_as_source(Arc::new(source)), None)?;
    if !logged.is_empty() {
        let log = log_rows_table(kind, logged)?;
        plan = plan.union(
            LogicalPlanBuilder::scan(format!("{name}.wal"), provider_as_source(Arc::new(log)), None)?.build()?,
        )?;
    }
    Ok(plan)
}

/// Returns the columns of [`scan_schema`], to project a plan on: as stored, but for the
/// `eventjson` and `eventjsonchecksum` of CloudTrail-schema stores, which are rebuilt
/// ([`crate::event_json`]).
pub(crate) fn scan_columns(kind: StoreKind) -> Vec<Expr> {
    let cloudtrail = event_schema(kind).field_with_name(EVENT_JSON_CHECKSUM).is_ok();
    scan_schema(kind)
        .fields()
        .iter()
        .map(|field| match field.name().as_str() {
            EVENT_JSON if cloudtrail => event_json().alias(EVENT_JSON),
            EVENT_JSON_CHECKSUM if cloudtrail => event_json_checksum().alias(EVENT_JSON_CHECKSUM),
            name => col(name),
        })
        .collect()
}

/// Returns the store's snapshot (the caller's, or the latest) and the rows of its write-ahead log
/// that the snapshot does not hold (events of channels, of account activity, of followed trails).
///
/// A flush commits segments and then deletes them, so the log is read between two looks at the
/// table: if no commit came after the snapshot by the time the segments were read, no segment the
/// snapshot lacks was deleted before; otherwise the newer snapshot is taken and the log read again.
pub(crate) async fn snapshot_and_log(
    store: &StoreSource,
) -> Result<(Option<DeltaTable>, Vec<RecordBatch>), QueryError> {
    let mut snapshot = match &store.snapshot {
        Some(snapshot) => Some(snapshot.clone()),
        None => store.table.snapshot().await?,
    };
    let log = WriteAheadLog::new(&store.table)?;
    loop {
        let pending = log.pending(snapshot.as_ref()).await?;
        let batches = match log.read(&pending).await {
            Ok(batches) => batches,
            Err(LakeError::Storage(object_store::Error::NotFound { .. })) => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        let version = snapshot.as_ref().and_then(DeltaTable::version);
        let latest = store.table.refresh(snapshot).await?;
        if latest.as_ref().and_then(DeltaTable::version) == version {
            return Ok((latest, batches));
        }
        snapshot = latest;
    }
}

/// Returns one key per output column: the select list's keys, with a wildcard's columns keeping
/// their names.
fn result_keys(prepared: &PreparedQuery, plan: &LogicalPlan) -> Vec<String> {
    let names: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect();
    let keys = prepared.column_keys.clone();
    let wildcards = keys.iter().filter(|key| key.is_none()).count();
    let named = keys.len() - wildcards;
    if wildcards > 1 || names.len() < named || (wildcards == 0 && names.len() != named) {
        return names;
    }
    let expanded = names.len() - named;
    let mut out = Vec::with_capacity(names.len());
    for key in keys {
        match key {
            Some(key) => out.push(key),
            None => out.extend(names[out.len()..out.len() + expanded].iter().cloned()),
        }
    }
    out
}
