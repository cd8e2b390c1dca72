//! `EventTable`: the events of one event data store, a Delta Lake table under
//! `stores/<id>/table/` in the lake root.
//!
//! - Partitioned by [`EVENT_DATE`] (the UTC date of `eventtime`), so retention drops whole days
//!   with a metadata-only delete, and a time-bounded query skips the files of other days; every
//!   file's rows are sorted by `eventtime`, so the Parquet row group and page statistics prune
//!   within a day.
//! - Commits are Delta transactions: atomic, optimistic (concurrent writers, such as the server and
//!   `traillake load`, both append), and readers keep the snapshot they loaded.
//! - Small files are compacted per day ([`EventTable::compact`]): a day written by many small
//!   appends is rewritten as files sorted by `eventtime`, in one commit that removes exactly the
//!   files it read, so appends made meanwhile are kept.
//! - Parquet settings: see [`writer_properties`].
//! - A store with a KMS key has the key's ARN in its table's configuration ([`KMS_KEY_PROPERTY`],
//!   set by [`EventTable::encrypt_with`] before the catalog records the key), so every writer and
//!   reader of the table finds it there: on an S3 root every object the table's writes put asks
//!   for SSE-KMS with the key; on a local root the Parquet files are encrypted (Parquet modular
//!   encryption, AES-GCM, footer and every column) with the key's material. The Delta log itself
//!   is not encrypted on a local root: it names the files, their days and the `eventtime` bounds of
//!   each file.

use std::collections::BTreeMap;
use std::sync::{Arc, Once};

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::array::{Array as _, AsArray as _};
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use deltalake::TableProperty;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
use deltalake::kernel::scalars::ScalarExt;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::{StructType, Transaction};
use deltalake::logstore::{LogStore, LogStoreFactory, StorageConfig, default_logstore, logstore_factories};
use deltalake::operations::optimize::OptimizeType;
use deltalake::parquet::basic::{Compression, Encoding, ZstdLevel};
use deltalake::parquet::encryption::encrypt::FileEncryptionProperties;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::SaveMode;
use deltalake::writer::{DeltaWriter as _, RecordBatchWriter, WriteMode};
use deltalake::{DeltaResult, DeltaTable, DeltaTableBuilder, ObjectStore, Path};
use deltalake::{FilterOp, FilterValue};
use futures::StreamExt as _;
use indexmap::IndexMap;
use object_store::ObjectStoreExt as _;
use traillake_api::selectors::StoreKind;
use url::Url;

use crate::Result;
use crate::error::LakeError;
use crate::keys::{Key, find_key};
use crate::root::{LakeRoot, RootLocation};
use traillake_events::schema::{EVENT_DATE, EVENT_TIME, table_schema};

/// The table property holding the ARN of the KMS key that encrypts the table's files.
pub const KMS_KEY_PROPERTY: &str = "traillake.kmsKeyArn";

/// Files a day may have before [`EventTable::compact`] rewrites it.
pub const COMPACT_AT_FILES: usize = 4;

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows per Parquet data page at most, so that the page index prunes time windows finely. Measured
/// on 1 million events over 30 days (`benches/`): 4k-row pages made the 1-hour window read 0.67% of
/// the store instead of 1.05% with 8k rows; once `eventjson` kept only what no column holds (a store
/// 2.3x smaller, so the same pages a larger share of it) 1.06%, and 2k-row pages 0.95%, for a store
/// 0.6% larger.
pub const PAGE_ROWS: usize = 2 * 1024;

/// Returns the Parquet settings of event files: zstd level 1, row groups of [`ROW_GROUP_ROWS`] rows, pages
/// of at most [`PAGE_ROWS`] rows, row group statistics on every column and page statistics (the
/// column index) on `eventtime` only, a bloom filter on `eventid`, no dictionary for the columns
/// of distinct values, and `eventtime` delta-encoded.
///
/// Rows are sorted by `eventtime`, so only its pages have ranges narrow enough to prune; the page
/// statistics of the other columns cost every filtered query the reading and evaluation of a
/// column index that prunes nothing (measured on 1 million events in 34 files: the scan of a
/// `WHERE errorCode IS NOT NULL` opened its files in 7 ms without them, 22 ms with them, and the
/// 1-hour window query read the same pages).
///
/// zstd level 1 rather than 3: on 4k-row pages it compressed both the real trails of
/// `../shared/data/trails` and the benchmark's synthetic events 2-3% smaller, and wrote them
/// 15-25% faster.
pub fn writer_properties() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("zstd level 1 exists")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_column_statistics_enabled(ColumnPath::from(EVENT_TIME), EnabledStatistics::Page)
        .set_column_bloom_filter_enabled(ColumnPath::from("eventid"), true);
    // Columns whose values are (nearly) all distinct: a dictionary only costs a page that every
    // read of the column chunk must fetch.
    for column in [
        "eventid",
        "requestid",
        "eventjson",
        "eventjsonchecksum",
        "sharedeventid",
        EVENT_TIME,
    ] {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    // Sorted timestamps: their deltas are small.
    builder = builder.set_column_encoding(ColumnPath::from(EVENT_TIME), Encoding::DELTA_BINARY_PACKED);
    builder.build()
}

/// Returns [`writer_properties`] that also encrypt the file with a key's material: the footer and
/// every column with the one AES-256 key (AES-GCM), the key's ARN as the footer key's metadata.
pub fn encrypted_writer_properties(key: &Key) -> Result<WriterProperties> {
    let encryption = FileEncryptionProperties::builder(key.material())
        .with_footer_key_metadata(key.arn.clone().into_bytes())
        .build()
        .map_err(|error| LakeError::Invalid(format!("the Parquet encryption of key {}: {error}", key.arn)))?;
    Ok(writer_properties()
        .into_builder()
        .with_file_encryption_properties(encryption)
        .build())
}

/// Returns the ARN of the KMS key a snapshot's table is encrypted with ([`KMS_KEY_PROPERTY`]).
pub fn kms_key_of(snapshot: &DeltaTable) -> Result<Option<String>> {
    Ok(snapshot
        .snapshot()?
        .metadata()
        .configuration()
        .get(KMS_KEY_PROPERTY)
        .cloned())
}

/// Returns the folder of a store's table, relative to the root.
pub fn table_folder(store_id: &str) -> String {
    format!("stores/{store_id}/table")
}

/// The folder, relative to the root, that holds each account's Event history (`history/<account>/`).
pub const HISTORY_FOLDER: &str = "history";

/// Days the Event history keeps a management event, as AWS's does.
pub const HISTORY_RETENTION_DAYS: i32 = 90;

/// Returns the folder of an account's Event history table, relative to the root.
pub fn history_folder(account_id: &str) -> String {
    format!("{HISTORY_FOLDER}/{account_id}/table")
}

/// The events of one event data store.
#[derive(Debug, Clone)]
pub struct EventTable {
    store_id: String,
    kind: StoreKind,
    url: Url,
    root: LakeRoot,
}

/// One Parquet file of a table snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// The file's path in [`EventTable::object_store`].
    pub path: Path,
    /// Its size in bytes.
    pub size: u64,
    /// The UTC day of its events (the file's partition).
    pub day: NaiveDate,
    /// Its rows, when the log records them.
    pub rows: Option<usize>,
}

/// What one append committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The table version the append created.
    pub version: u64,
    /// The rows appended.
    pub rows: usize,
}

/// A writer's progress counter, committed with its rows: see [`EventTable::append_marked`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppProgress {
    /// Who writes: one name per resumable piece of work (an import).
    pub writer: String,
    /// How far the writer got with this commit; grows with each commit.
    pub progress: i64,
}

impl EventTable {
    /// Returns the table of a store; nothing is read or written until it is used.
    pub fn new(root: &LakeRoot, store_id: &str, kind: StoreKind) -> Self {
        Self::at(root, store_id, kind, &table_folder(store_id))
    }

    /// Returns the Event history table of an account: the CloudTrail management events of the
    /// last [`HISTORY_RETENTION_DAYS`] days that LookupEvents reads, kept apart from the stores
    /// (not listed, not counted against the store limit). Its name is `history-<account>`.
    pub fn history(root: &LakeRoot, account_id: &str) -> Self {
        Self::at(
            root,
            &format!("history-{account_id}"),
            StoreKind::CloudTrail,
            &history_folder(account_id),
        )
    }

    fn at(root: &LakeRoot, name: &str, kind: StoreKind, folder: &str) -> Self {
        register_s3_log_store();
        Self {
            store_id: name.to_string(),
            kind,
            url: root.url(folder),
            root: root.clone(),
        }
    }

    /// Returns the table's name: the store's ID, or `history-<account>` for an Event history.
    pub fn name(&self) -> &str {
        &self.store_id
    }

    /// Returns the kind of events the table holds.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// Returns the object store holding the table's files, whose paths are those of
    /// [`DataFile::path`].
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        self.root.base_store()
    }

    /// Returns the URL under which [`EventTable::object_store`] is registered for reading:
    /// `file:///` or `s3://bucket/`.
    pub fn object_store_url(&self) -> Url {
        let mut url = self.url.clone();
        url.set_path("/");
        url
    }

    /// Returns the data files of a snapshot of the table.
    pub fn data_files(&self, snapshot: &DeltaTable) -> Result<Vec<DataFile>> {
        let folder = Path::from_url_path(self.url.path()).map_err(object_store::Error::from)?;
        let mut files = Vec::new();
        for file in snapshot.snapshot()?.log_data() {
            let relative = file.object_store_path();
            let day = file.partition_values_map().remove(EVENT_DATE).flatten();
            let day = day
                .as_deref()
                .and_then(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok())
                .ok_or_else(|| {
                    LakeError::Invalid(format!(
                        "data file {relative} of store {} has no valid {EVENT_DATE}",
                        self.store_id
                    ))
                })?;
            files.push(DataFile {
                path: folder.parts().chain(relative.parts()).collect(),
                size: u64::try_from(file.size()).unwrap_or_default(),
                day,
                rows: file.num_records(),
            });
        }
        Ok(files)
    }

    /// Returns the number of data files of each day (`YYYY-MM-DD`) of a snapshot, oldest day first.
    fn days_of(&self, snapshot: &DeltaTable) -> Result<BTreeMap<String, usize>> {
        let mut days = BTreeMap::new();
        for file in self.data_files(snapshot)? {
            *days.entry(file.day.format("%Y-%m-%d").to_string()).or_insert(0) += 1;
        }
        Ok(days)
    }

    /// Returns the columns of the stored table, the partition column last.
    pub fn schema(&self) -> SchemaRef {
        table_schema(self.kind)
    }

    fn builder(&self) -> DeltaResult<DeltaTableBuilder> {
        self.builder_on(Arc::clone(self.root.base_store()))
    }

    fn builder_on(&self, store: Arc<dyn ObjectStore>) -> DeltaResult<DeltaTableBuilder> {
        Ok(DeltaTableBuilder::from_url(self.url.clone())?.with_storage_backend(store, self.url.clone()))
    }

    /// Returns the operator's key a snapshot's table is encrypted with, `None` for a table
    /// without one; a key the key service does not have, or has disabled, is an error
    /// ([`LakeError::Kms`]), as nothing may be written or read with it.
    pub fn key_of(&self, snapshot: &DeltaTable) -> Result<Option<&Key>> {
        let Some(arn) = kms_key_of(snapshot)? else {
            return Ok(None);
        };
        find_key(self.root.keys(), &arn).map(Some).map_err(LakeError::Kms)
    }

    /// Returns the key whose material decrypts the table's Parquet files: the table's key on a
    /// local root, `None` on an S3 root (the server decrypts SSE-KMS objects) or for a table
    /// without a key.
    pub fn decryption_key(&self, snapshot: &DeltaTable) -> Result<Option<&Key>> {
        match self.root.location() {
            RootLocation::Local(_) => self.key_of(snapshot),
            RootLocation::S3 { .. } => self.key_of(snapshot).map(|_| None),
        }
    }

    /// Returns a snapshot ready for a write, and the Parquet settings of its files: on an S3 root
    /// a table with a key is loaded again through an object store whose puts ask for SSE-KMS, on
    /// a local root its files are encrypted with the key's material.
    async fn for_writing(&self, table: DeltaTable) -> Result<(DeltaTable, WriterProperties)> {
        let Some(key) = self.key_of(&table)? else {
            return Ok((table, writer_properties()));
        };
        match self.root.base_store_encrypted(&key.arn)? {
            None => Ok((table, encrypted_writer_properties(key)?)),
            Some(store) => {
                let mut builder = self.builder_on(store)?;
                if let Some(version) = table.version() {
                    builder = builder.with_version(version);
                }
                Ok((builder.load().await?, writer_properties()))
            }
        }
    }

    /// Makes the table encrypted with a KMS key of the operator's (a full key or alias ARN): it is
    /// created with the key if it has no log yet, or the key is added to its configuration; a
    /// table encrypted with another key is refused, as a store's key cannot change. Files written
    /// before the key was added stay as they were, and are read as before.
    pub async fn encrypt_with(&self, key_reference: &str) -> Result<()> {
        let key = find_key(self.root.keys(), key_reference).map_err(LakeError::Kms)?;
        let table = match self.written_snapshot().await? {
            Some(table) => table,
            None => self.create_with(Some(&key.arn)).await?,
        };
        match kms_key_of(&table)? {
            Some(current) if current == key.arn => Ok(()),
            Some(current) => Err(LakeError::InvalidParameter(format!(
                "the files of event data store {} are encrypted with the KMS key {current}, which cannot be changed",
                self.store_id
            ))),
            None => {
                table
                    .set_tbl_properties()
                    .with_properties([(KMS_KEY_PROPERTY.to_string(), key.arn.clone())].into())
                    .with_raise_if_not_exists(false)
                    .await?;
                Ok(())
            }
        }
    }

    /// Returns the latest snapshot of the table, or `None` while nothing was ever written.
    pub async fn snapshot(&self) -> Result<Option<DeltaTable>> {
        match self.builder()?.load().await {
            Ok(table) => Ok(Some(table)),
            Err(error) if !self.has_log().await? => {
                tracing::debug!(store_id = %self.store_id, %error, "the table has no log yet");
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Returns the latest snapshot, bringing a snapshot loaded before up to date by reading only
    /// the commits made since; `None` while nothing was ever written.
    ///
    /// Delta commits are numbered without gaps, so a snapshot is current exactly when the log has no
    /// commit after its version: one `head` request answers that (0.2 ms on a local disk, where the log
    /// listing took 1.4 ms), and on S3 it is one HEAD instead of a LIST.
    pub async fn refresh(&self, earlier: Option<DeltaTable>) -> Result<Option<DeltaTable>> {
        let Some((mut table, version)) = earlier.and_then(|table| table.version().map(|version| (table, version)))
        else {
            return self.written_snapshot().await;
        };
        let next_commit = self.log_path()?.join(format!("{:020}.json", version + 1));
        match self.root.base_store().head(&next_commit).await {
            Ok(_) => table.update_incremental(None).await?,
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        Ok(Some(table))
    }

    /// Returns true once the table's `_delta_log/` holds anything.
    async fn has_log(&self) -> Result<bool> {
        Ok(self
            .root
            .base_store()
            .list(Some(&self.log_path()?))
            .next()
            .await
            .transpose()?
            .is_some())
    }

    /// Returns the path of the table's `_delta_log/` folder in the base store.
    fn log_path(&self) -> Result<Path> {
        Ok(Path::from_url_path(self.url.path())
            .map_err(object_store::Error::from)?
            .join("_delta_log"))
    }

    /// Returns the path of a folder beside the table's, in the store's folder of the base store.
    pub(crate) fn sibling_path(&self, name: &str) -> Result<Path> {
        let table = Path::from_url_path(self.url.path()).map_err(object_store::Error::from)?;
        let parts: Vec<_> = table.parts().collect();
        Ok(parts[..parts.len().saturating_sub(1)]
            .iter()
            .cloned()
            .chain([name.into()])
            .collect())
    }

    /// Appends batches of the table's schema in one commit, each file sorted by `eventtime`.
    pub async fn append(&self, batches: &[RecordBatch]) -> Result<Commit> {
        self.append_marked(batches, &[]).await
    }

    /// Appends batches in one commit that also records `marks`: writers' own progress counters
    /// (Delta application transactions), committed atomically with the rows, so that a writer
    /// that resumes after a crash knows exactly which of its work is stored.
    ///
    /// The rows are ordered by `eventtime` across the batches, and each day's rows are written to
    /// that day's file in chunks of [`WRITE_CHUNK_ROWS`] gathered from the batches: no copy of all
    /// the rows is made, so an append needs little memory beyond its batches.
    pub async fn append_marked(&self, batches: &[RecordBatch], marks: &[AppProgress]) -> Result<Commit> {
        self.append_in(self.written_snapshot().await?, batches, marks).await
    }

    /// Appends batches with `mark` as [`EventTable::append_marked`] does, unless the table already
    /// holds the mark's progress (or a later one) of its writer: then nothing is written and `None`
    /// is returned. One snapshot is read for both, so a writer that delivers again what a crash
    /// may have cut short stores it once.
    pub async fn append_once(&self, batches: &[RecordBatch], mark: &AppProgress) -> Result<Option<Commit>> {
        let snapshot = self.written_snapshot().await?;
        if let Some(snapshot) = &snapshot
            && Self::progress_in(snapshot, &mark.writer)
                .await?
                .is_some_and(|committed| committed >= mark.progress)
        {
            return Ok(None);
        }
        self.append_in(snapshot, batches, std::slice::from_ref(mark))
            .await
            .map(Some)
    }

    /// Returns the latest snapshot as [`EventTable::snapshot`] does, but looks for the log first:
    /// a first write then loads nothing, and Delta's kernel logs no error about a missing table.
    async fn written_snapshot(&self) -> Result<Option<DeltaTable>> {
        if !self.has_log().await? {
            return Ok(None);
        }
        self.snapshot().await
    }

    /// Appends as [`EventTable::append_marked`] does, on a snapshot the caller loaded (`None`
    /// when the table had none); commits made since are merged in by Delta's conflict resolution,
    /// which refuses the commit if one of them recorded progress for the same writer.
    pub(crate) async fn append_in(
        &self,
        snapshot: Option<DeltaTable>,
        batches: &[RecordBatch],
        marks: &[AppProgress],
    ) -> Result<Commit> {
        check_not_empty(batches)?;
        let table = match snapshot {
            Some(table) => table,
            None => self.snapshot_or_create().await?,
        };
        let (mut table, properties) = self.for_writing(table).await?;
        self.write(&mut table, properties, batches, marks).await
    }

    /// Writes the batches to `table`'s files with the Parquet settings given and commits them,
    /// bringing `table` to the new version.
    async fn write(
        &self,
        table: &mut DeltaTable,
        properties: WriterProperties,
        batches: &[RecordBatch],
        marks: &[AppProgress],
    ) -> Result<Commit> {
        let order = event_time_order(batches)?;
        let transactions = marks
            .iter()
            .map(|mark| Transaction::new(&mark.writer, mark.progress))
            .collect();
        let commit = CommitProperties::default().with_application_transactions(transactions);
        let mut writer = RecordBatchWriter::for_table(table)?
            .with_writer_properties(properties)
            .with_commit_properties(commit);
        let batches: Vec<&RecordBatch> = batches.iter().collect();
        for day in order.chunk_by(|a, b| a.day == b.day) {
            let first = &day[0];
            let dates = batches[first.batch]
                .column_by_name(EVENT_DATE)
                .expect("every table has eventdate");
            let date = ScalarExt::from_array(dates.as_ref(), first.row)
                .ok_or_else(|| LakeError::Invalid(format!("an event has no {EVENT_DATE}")))?;
            let values = IndexMap::from([(EVENT_DATE.to_string(), date)]);
            for chunk in day.chunks(WRITE_CHUNK_ROWS) {
                let rows: Vec<(usize, usize)> = chunk.iter().map(|place| (place.batch, place.row)).collect();
                writer
                    .write_partition(interleave_record_batch(&batches, &rows)?, &values, WriteMode::Default)
                    .await?;
            }
        }
        let version = writer.flush_and_commit(table).await?;
        Ok(Commit {
            version,
            rows: order.len(),
        })
    }

    /// Returns the latest snapshot, creating the table (schema and partitioning, no rows) if
    /// nothing was written yet. A table another writer created meanwhile is kept as it is.
    ///
    /// The log keeps column statistics of `eventtime` only (`delta.dataSkippingStatsColumns`):
    /// queries prune with the Parquet files' own statistics, and every commit replays the
    /// statistics of the files in the log, so statistics of the ~100 columns made each
    /// PutAuditEvents group commit parse ~30 times more JSON than it needs.
    async fn snapshot_or_create(&self) -> Result<DeltaTable> {
        self.create_if_missing().await
    }

    /// Returns the latest snapshot, creating the table without rows if it has none yet: see
    /// [`EventTable::snapshot_or_create`].
    pub async fn create_if_missing(&self) -> Result<DeltaTable> {
        if let Some(table) = self.written_snapshot().await? {
            return Ok(table);
        }
        self.create_with(None).await
    }

    /// Creates the table without rows, with the ARN of the KMS key that encrypts it when one is
    /// given; a table another writer created meanwhile is kept as it is.
    async fn create_with(&self, kms_key_arn: Option<&str>) -> Result<DeltaTable> {
        let schema: StructType = self.schema().as_ref().try_into_kernel()?;
        let store = match kms_key_arn {
            Some(arn) => self.root.base_store_encrypted(arn)?,
            None => None,
        };
        let table = self
            .builder_on(store.unwrap_or_else(|| Arc::clone(self.root.base_store())))?
            .build()?
            .create()
            .with_columns(schema.fields().cloned())
            .with_partition_columns([EVENT_DATE])
            .with_configuration_property(TableProperty::DataSkippingStatsColumns, Some(EVENT_TIME))
            .with_configuration(kms_key_arn.map(|arn| (KMS_KEY_PROPERTY, Some(arn))))
            .with_raise_if_key_not_exists(false)
            .with_save_mode(SaveMode::Ignore)
            .await?;
        Ok(table)
    }

    /// Returns the progress a writer last committed with [`EventTable::append_marked`] in the
    /// latest snapshot, or `None` if it never committed.
    pub async fn committed_progress(&self, writer: &str) -> Result<Option<i64>> {
        let Some(table) = self.written_snapshot().await? else {
            return Ok(None);
        };
        Self::progress_in(&table, writer).await
    }

    /// Returns the progress a writer last committed in a snapshot, or `None` if it never committed.
    pub(crate) async fn progress_in(snapshot: &DeltaTable, writer: &str) -> Result<Option<i64>> {
        Ok(snapshot
            .snapshot()?
            .transaction_version(snapshot.log_store().as_ref(), writer)
            .await?)
    }

    /// Returns the number of data files of each day of the latest snapshot.
    pub async fn files_per_day(&self) -> Result<BTreeMap<String, usize>> {
        match self.snapshot().await? {
            Some(table) => self.days_of(&table),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Rewrites each day that has at least [`COMPACT_AT_FILES`] files as files sorted by
    /// `eventtime`; returns the days rewritten.
    ///
    /// A table whose Parquet files are encrypted (a store with a KMS key on a local root) is not
    /// compacted: Delta's optimize reads files without a way to decrypt them.
    pub async fn compact(&self) -> Result<Vec<String>> {
        let mut compacted = Vec::new();
        let Some(table) = self.snapshot().await? else {
            return Ok(compacted);
        };
        if self.decryption_key(&table)?.is_some() {
            tracing::debug!(store_id = %self.store_id, "an encrypted table is not compacted");
            return Ok(compacted);
        }
        let (mut table, properties) = self.for_writing(table).await?;
        for (day, files) in self.days_of(&table)? {
            if files < COMPACT_AT_FILES {
                continue;
            }
            let filters = [(EVENT_DATE, FilterOp::Eq, FilterValue::Scalar(day.as_str()))];
            let (optimized, metrics) = table
                .optimize()
                .with_type(OptimizeType::ZOrder(vec![EVENT_TIME.to_string()]))
                .with_filters(&filters)
                .with_writer_properties(properties.clone())
                .await?;
            tracing::info!(
                store_id = %self.store_id,
                %day,
                files_removed = metrics.num_files_removed,
                files_added = metrics.num_files_added,
                "compacted a day"
            );
            table = optimized;
            compacted.push(day);
        }
        Ok(compacted)
    }

    /// Deletes the files that retention or compaction removed from the table more than
    /// `removed_before` ago (readers of older snapshots may still read them until then); returns
    /// how many were deleted.
    pub async fn vacuum(&self, removed_before: chrono::Duration) -> Result<usize> {
        let Some(table) = self.snapshot().await? else {
            return Ok(0);
        };
        let (_, metrics) = table
            .vacuum()
            .with_retention_period(removed_before)
            .with_enforce_retention_duration(false)
            .await?;
        Ok(metrics.files_deleted.len())
    }

    /// Drops the days wholly before `first_kept_day` from the table, a metadata-only commit; the
    /// files go when [`EventTable::vacuum`] runs. Returns the number of files removed.
    pub async fn drop_days_before(&self, first_kept_day: NaiveDate) -> Result<usize> {
        let Some(table) = self.snapshot().await? else {
            return Ok(0);
        };
        let predicate = format!("{EVENT_DATE} < '{}'", first_kept_day.format("%Y-%m-%d"));
        let (table, _) = self.for_writing(table).await?;
        let (_, metrics) = table.delete().with_predicate(predicate).await?;
        Ok(metrics.num_removed_files)
    }
}

/// Makes `s3://` tables use Delta's default log store, which commits with a conditional put
/// (`If-None-Match`), as every S3-compatible server traillake supports offers.
fn register_s3_log_store() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        logstore_factories().insert(
            Url::parse("s3://").expect("a scheme URL"),
            Arc::new(ConditionalPutLogStore),
        );
    });
}

struct ConditionalPutLogStore;

impl LogStoreFactory for ConditionalPutLogStore {
    fn with_options(
        &self,
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

/// Refuses an append of no rows, before anything is created or written.
fn check_not_empty(batches: &[RecordBatch]) -> Result<()> {
    if batches.iter().all(|batch| batch.num_rows() == 0) {
        return Err(LakeError::Invalid("an append needs at least one event".to_string()));
    }
    Ok(())
}

/// Rows gathered from an append's batches and written at a time: small enough that the buffers
/// are reused rather than taken fresh from the system for each append.
pub const WRITE_CHUNK_ROWS: usize = 8 * 1024;

/// Where a row of an append is: its batch, its row, and the day of its event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RowPlace {
    time: i64,
    batch: usize,
    row: usize,
    day: i64,
}

/// Returns the rows of the batches ordered by `eventtime` (ties in batch and row order).
fn event_time_order(batches: &[RecordBatch]) -> Result<Vec<RowPlace>> {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    let mut order = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for (batch, rows) in batches.iter().enumerate() {
        let times = rows.column_by_name(EVENT_TIME).expect("every table has eventtime");
        let times = times
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| LakeError::Invalid(format!("{EVENT_TIME} is a {}, not a timestamp", times.data_type())))?;
        if times.null_count() > 0 {
            return Err(LakeError::Invalid(format!("an event has no {EVENT_TIME}")));
        }
        for (row, &time) in times.values().iter().enumerate() {
            order.push(RowPlace {
                time,
                batch,
                row,
                day: time.div_euclid(MICROS_PER_DAY),
            });
        }
    }
    order.sort_unstable();
    Ok(order)
}
