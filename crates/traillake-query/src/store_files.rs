//! `StoreFiles`: the DataFusion table of the Parquet files of one store's snapshot (and
//! [`log_rows_table`], the rows of its write-ahead log beside them).
//!
//! The files come from the Delta log of the snapshot, so a query reads exactly the files of one
//! committed version, and the scan is a stock `DataSourceExec` over a `ParquetSource` (serializable,
//! and optimized like any Parquet scan: filters pushed into the reader, struct fields read leaf by
//! leaf, the Parquet metadata cached in the shared runtime across queries).
//!
//! Files are skipped before any footer is read when the query's `eventtime` bounds miss their day
//! (every file holds the events of one UTC day); row groups and pages are pruned by the Parquet
//! statistics after that. The log's row counts give an exact row count to `count(*)`. Top-level
//! strings are read as `Utf8View`, as DataFusion reads Parquet by default.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveTime;
use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, TimestampMicrosecondArray, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::config::ConfigFileDecryptionProperties;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::stats::Precision;
use datafusion::common::{Column, DFSchema, DataFusionError, Result, ScalarValue, Statistics, project_schema};
use datafusion::datasource::MemTable;
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat as _;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::transform_schema_to_view;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use traillake_api::selectors::StoreKind;
use traillake_lake::events::schema::{EVENT_TIME, event_schema};
use traillake_lake::table::DataFile;

/// Returns the columns a query sees of a store of `kind`: the event columns, top-level strings as
/// `Utf8View`.
pub fn scan_schema(kind: StoreKind) -> SchemaRef {
    Arc::new(transform_schema_to_view(&event_schema(kind)))
}

/// Returns the rows of a store's write-ahead log (batches of the table's schema) as an in-memory
/// table of the columns of [`scan_schema`].
pub fn log_rows_table(kind: StoreKind, batches: &[RecordBatch]) -> Result<MemTable> {
    let schema = scan_schema(kind);
    let mut converted = Vec::with_capacity(batches.len());
    for batch in batches {
        let mut columns = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let column = batch.column_by_name(field.name()).ok_or_else(|| {
                DataFusionError::Internal(format!("a write-ahead log batch has no column {}", field.name()))
            })?;
            columns.push(cast(column, field.data_type())?);
        }
        converted.push(RecordBatch::try_new(Arc::clone(&schema), columns)?);
    }
    MemTable::try_new(schema, vec![converted])
}

/// The files of one snapshot of a store's table.
#[derive(Debug)]
pub struct StoreFiles {
    schema: SchemaRef,
    object_store_url: ObjectStoreUrl,
    files: Vec<DataFile>,
    /// The AES-256 key of Parquet-encrypted files, as hex digits.
    footer_key_hex: Option<String>,
}

impl StoreFiles {
    /// Returns the table of `files`, which are read from the object store registered under
    /// `object_store_url`.
    pub fn new(kind: StoreKind, object_store_url: ObjectStoreUrl, files: Vec<DataFile>) -> Self {
        Self {
            schema: scan_schema(kind),
            object_store_url,
            files,
            footer_key_hex: None,
        }
    }

    /// Returns the table reading files encrypted with a key's material (hex digits), the key of
    /// a store with a KMS key on a local root; `None` for plaintext files. Plaintext files among
    /// them (written before the key was added) are read as they are.
    pub fn with_footer_key(mut self, footer_key_hex: Option<String>) -> Self {
        self.footer_key_hex = footer_key_hex;
        self
    }

    /// Returns the files that may hold rows matching every filter, judged by their days.
    fn files_matching(&self, state: &dyn Session, filters: &[Expr]) -> Result<Vec<&DataFile>> {
        let on_time = filters
            .iter()
            .filter(|filter| filter.column_refs().iter().all(|column| column.name == EVENT_TIME));
        let Some(filter) = conjunction(on_time.cloned()) else {
            return Ok(self.files.iter().collect());
        };
        let schema = DFSchema::try_from(Arc::clone(&self.schema))?;
        let predicate = PruningPredicateBuilder::new()
            .with_file_schema(Arc::clone(&self.schema))
            .try_build(state.create_physical_expr(filter, &schema)?)?;
        let keep = predicate.prune(&FileDays { files: &self.files })?;
        Ok(self
            .files
            .iter()
            .zip(keep)
            .filter_map(|(file, keep)| keep.then_some(file))
            .collect())
    }
}

/// The bounds of `eventtime` in each file, given by its day, for pruning files.
struct FileDays<'a> {
    files: &'a [DataFile],
}

impl PruningStatistics for FileDays<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        (column.name == EVENT_TIME).then(|| day_bounds(self.files, |first, _| first))
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        (column.name == EVENT_TIME).then(|| day_bounds(self.files, |_, last| last))
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        // Every stored event has an eventTime (records without one are rejected).
        (column.name == EVENT_TIME).then(|| Arc::new(UInt64Array::from(vec![0; self.files.len()])) as ArrayRef)
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let rows: UInt64Array = self
            .files
            .iter()
            .map(|file| file.rows.map(|rows| rows as u64))
            .collect();
        Some(Arc::new(rows))
    }

    fn contained(&self, _: &Column, _: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// Returns one bound of each file's day as `eventtime` values: `pick(first, last)` of the day's
/// first and last microsecond.
fn day_bounds(files: &[DataFile], pick: fn(i64, i64) -> i64) -> ArrayRef {
    let bounds: TimestampMicrosecondArray = files
        .iter()
        .map(|file| {
            let first = file.day.and_time(NaiveTime::MIN).and_utc().timestamp_micros();
            Some(pick(first, first + 24 * 3600 * 1_000_000 - 1))
        })
        .collect();
    Arc::new(bounds.with_timezone("UTC"))
}

#[async_trait]
impl TableProvider for StoreFiles {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // The Parquet reader prunes with them and filters rows, and the filter stays above.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let matching = self.files_matching(state, filters)?;
        if matching.is_empty() {
            return Ok(Arc::new(EmptyExec::new(project_schema(&self.schema, projection)?)));
        }
        // The log's row counts are exact, so `count(*)` without a filter needs no file read.
        let mut total = Statistics::new_unknown(&self.schema);
        total.num_rows = matching
            .iter()
            .map(|file| file.rows)
            .sum::<Option<usize>>()
            .map_or(Precision::Absent, Precision::Exact);
        let files = matching
            .iter()
            .map(|file| PartitionedFile::new(file.path.to_string(), file.size))
            .collect();
        let groups = FileGroup::new(files).split_files(state.config().target_partitions());
        let source = Arc::new(ParquetSource::new(Arc::clone(&self.schema)));
        let config = FileScanConfigBuilder::new(self.object_store_url.clone(), source)
            .with_file_groups(groups)
            .with_statistics(total)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        let mut options = state.table_options().parquet.clone();
        if let Some(key) = &self.footer_key_hex {
            options.crypto.file_decryption = Some(ConfigFileDecryptionProperties {
                footer_key_as_hex: key.clone(),
                ..ConfigFileDecryptionProperties::default()
            });
        }
        let format = ParquetFormat::default().with_options(options);
        format.create_physical_plan(state, config).await
    }
}
