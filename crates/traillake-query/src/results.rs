//! A query's results, from the rows it produced to the pages clients read.
//!
//! - [`ResultRows`]: the rows, with their Arrow types, in result order.
//! - [`ResultStore`]: the rows of ended queries kept under the root as `queries/<id>/result.arrow`
//!   (Arrow IPC, LZ4), and a cache of those read lately, least lately read dropped first, within a
//!   memory limit.
//! - [`ResultPage`]: one page of GetQueryResults (1..1000 rows from an offset that its NextToken
//!   carries), named by the result column keys, every value rendered as Lake renders it
//!   ([`crate::render`]); front doors only encode it.
//! - [`ArrowResults`]: every row with its Arrow type, named by the column keys, for the gRPC
//!   stream and Arrow Flight.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, AsArray as _, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::CompressionType;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use object_store::{ObjectStoreExt as _, PutPayload};
use traillake_api::paging;
use traillake_api::shapes::{GetQueryResultsResponse, QueryResultColumn, QueryResultRow, QueryStatistics, QueryStatus};
use traillake_lake::LakeRoot;

use crate::record::{QueryRecord, query_file};
use crate::render::render;
use crate::{QueryError, Result};

/// A query's rows: its schema and batches.
#[derive(Debug, Clone)]
pub struct ResultRows {
    /// The Arrow schema of the rows.
    pub schema: SchemaRef,
    /// The batches, in result order.
    pub batches: Vec<RecordBatch>,
}

impl ResultRows {
    /// Returns no rows, of no columns: the rows of a query that never ran.
    pub fn empty() -> Self {
        Self {
            schema: Arc::new(Schema::empty()),
            batches: Vec::new(),
        }
    }

    /// Returns the number of rows.
    pub fn len(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Returns true if there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the memory the batches take.
    pub fn memory_size(&self) -> usize {
        self.batches.iter().map(RecordBatch::get_array_memory_size).sum()
    }
}

/// Returns a batch whose string and binary view columns hold only the bytes of their own rows.
///
/// A scan's view columns share the buffers of the pages they were decoded from, so a result of a
/// few rows would otherwise keep (in memory and in its saved file) megabytes of other rows' data: a
/// one-row `SELECT *` was saved as a 1 MB file. Views nested in structs and lists are left as they
/// are; the scans produce views at the top level only.
pub(crate) fn without_unused_view_data(batch: RecordBatch) -> RecordBatch {
    if !batch
        .columns()
        .iter()
        .any(|column| matches!(column.data_type(), DataType::Utf8View | DataType::BinaryView))
    {
        return batch;
    }
    let columns = batch
        .columns()
        .iter()
        .map(|column| match column.data_type() {
            DataType::Utf8View => Arc::new(column.as_string_view().gc()) as ArrayRef,
            DataType::BinaryView => Arc::new(column.as_binary_view().gc()) as ArrayRef,
            _ => Arc::clone(column),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns).expect("the same columns under the same schema")
}

const RESULT_FILE: &str = "result.arrow";

/// The results of ended queries: kept under the root, and cached while they are read.
#[derive(Debug)]
pub(crate) struct ResultStore {
    root: LakeRoot,
    cache: Mutex<ResultCache>,
}

impl ResultStore {
    /// A store of results under `root`, caching at most `cache_bytes` of them in memory.
    pub(crate) fn new(root: LakeRoot, cache_bytes: usize) -> Self {
        Self {
            root,
            cache: Mutex::new(ResultCache::new(cache_bytes)),
        }
    }

    /// Keeps a query's rows under the root, over any kept before.
    pub(crate) async fn save(&self, id: &str, rows: &ResultRows) -> Result<()> {
        let mut buffer = Vec::new();
        {
            // LZ4: results are mostly text (eventJson) and shrink about fourfold, for less to write
            // and fsync before FINISHED, and less disk for the seven days they are kept.
            let options = IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
            let mut writer = FileWriter::try_new_with_options(&mut buffer, &rows.schema, options)?;
            for batch in &rows.batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        self.root
            .store()
            .put(&query_file(id, RESULT_FILE), PutPayload::from(buffer))
            .await?;
        Ok(())
    }

    /// Caches the rows of a query that ended and whose rows are kept.
    pub(crate) fn cache(&self, id: &str, rows: Arc<ResultRows>) {
        self.cache.lock().expect("result cache lock").insert(id, rows);
    }

    /// Returns a kept query's rows, from the cache or else read back from the root (and cached).
    pub(crate) async fn read(&self, id: &str) -> Result<Arc<ResultRows>> {
        if let Some(rows) = self.cache.lock().expect("result cache lock").get(id) {
            return Ok(rows);
        }
        let rows = Arc::new(self.load(id).await?);
        self.cache(id, Arc::clone(&rows));
        Ok(rows)
    }

    /// Reads a query's kept rows from the root, without the cache; no rows if none were kept.
    pub(crate) async fn load(&self, id: &str) -> Result<ResultRows> {
        let bytes = match self.root.store().get(&query_file(id, RESULT_FILE)).await {
            Ok(result) => result.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(ResultRows::empty()),
            Err(error) => return Err(error.into()),
        };
        let reader = FileReader::try_new(std::io::Cursor::new(bytes), None)?;
        let schema = reader.schema();
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        Ok(ResultRows { schema, batches })
    }
}

/// The results of ended queries read lately, within a memory limit: `lru` keeps the order of
/// reading, this keeps the count of bytes.
#[derive(Debug)]
struct ResultCache {
    limit: usize,
    bytes: usize,
    entries: lru::LruCache<String, Arc<ResultRows>>,
}

impl ResultCache {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            bytes: 0,
            entries: lru::LruCache::unbounded(),
        }
    }

    /// Returns a query's rows if they are cached, marking them read.
    fn get(&mut self, id: &str) -> Option<Arc<ResultRows>> {
        self.entries.get(id).cloned()
    }

    /// Caches a query's rows, dropping the results read least lately to stay within the limit.
    /// Rows larger than the limit are not cached.
    fn insert(&mut self, id: &str, rows: Arc<ResultRows>) {
        if let Some(replaced) = self.entries.pop(id) {
            self.bytes -= replaced.memory_size();
        }
        let size = rows.memory_size();
        if size > self.limit {
            return;
        }
        while self.bytes + size > self.limit {
            let (_, dropped) = self
                .entries
                .pop_lru()
                .expect("the cache holds more than the limit leaves");
            self.bytes -= dropped.memory_size();
        }
        self.bytes += size;
        self.entries.put(id.to_string(), rows);
    }
}

/// Returns the key of each of `columns` result columns in a result row: the record's column keys,
/// `_colN` for a column past them.
fn column_keys(record: &QueryRecord, columns: usize) -> Vec<String> {
    (0..columns)
        .map(|index| {
            record
                .column_keys
                .get(index)
                .cloned()
                .unwrap_or_else(|| format!("_col{index}"))
        })
        .collect()
}

/// A page of GetQueryResults with its rows still Arrow: gRPC takes it as the response shape
/// ([`ResultPage::into_response`]); the JSON gateway writes [`ResultPage::head`] and the rows
/// straight to the wire, each value rendered once, with no map per value.
#[derive(Debug)]
pub struct ResultPage {
    /// The query's record, with its statistics of the moment.
    pub record: QueryRecord,
    /// Each column's key in a result row.
    pub keys: Vec<String>,
    /// The token of the next page, if rows follow this page.
    pub next_token: Option<String>,
    rows: Arc<ResultRows>,
    range: Range<usize>,
}

impl ResultPage {
    /// The page of at most `max_rows` of `rows` from where `next_token` points (the first row
    /// without one). A token of another query, or past the rows, is
    /// [`QueryError::InvalidNextToken`].
    pub fn new(record: QueryRecord, rows: Arc<ResultRows>, next_token: Option<&str>, max_rows: usize) -> Result<Self> {
        let total = rows.len();
        let start = match next_token {
            None => 0,
            Some(token) => page_offset(&record.id, token, total)?,
        };
        let end = start.saturating_add(max_rows).min(total);
        let next_token =
            (end < total).then(|| paging::encode_token("GetQueryResults", &format!("{}:{end}", record.id)));
        Ok(Self {
            keys: column_keys(&record, rows.schema.fields().len()),
            record,
            next_token,
            rows,
            range: start..end,
        })
    }

    /// The response without its rows (`query_result_rows` is empty).
    pub fn head(&self) -> GetQueryResultsResponse {
        GetQueryResultsResponse {
            query_status: Some(self.record.status.into()),
            query_statistics: Some(QueryStatistics {
                results_count: Some(self.len() as i32),
                total_results_count: Some(self.rows.len().min(i32::MAX as usize) as i32),
                bytes_scanned: Some(self.record.scan.bytes_scanned as i64),
            }),
            query_result_rows: Vec::new(),
            next_token: self.next_token.clone(),
            error_message: self.record.error_message.clone(),
        }
    }

    /// The page's rows, each as a batch and a row of it.
    pub fn rows(&self) -> impl Iterator<Item = (&RecordBatch, usize)> {
        let Range { start, end } = self.range;
        self.rows
            .batches
            .iter()
            .scan(0, |first, batch| {
                let at = *first;
                *first += batch.num_rows();
                Some((at, batch))
            })
            .flat_map(move |(at, batch)| {
                (start.max(at)..end.min(at + batch.num_rows())).map(move |row| (batch, row - at))
            })
    }

    /// The number of rows in the page.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Returns whether the page has no rows.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// A value as Lake renders it; `None` for NULL, which a result row leaves out.
    pub fn value(&self, column: &ArrayRef, row: usize) -> Result<Option<String>> {
        render(column, row).map_err(|error| QueryError::Render(self.record.id.clone(), error))
    }

    /// The response shape, its rows rendered.
    pub fn into_response(self) -> Result<GetQueryResultsResponse> {
        let mut out = Vec::with_capacity(self.len());
        for (batch, row) in self.rows() {
            let mut columns = Vec::with_capacity(batch.num_columns());
            for (column, key) in batch.columns().iter().zip(&self.keys) {
                if let Some(value) = self.value(column, row)? {
                    columns.push(QueryResultColumn {
                        entry: [(key.clone(), value)].into(),
                    });
                }
            }
            out.push(QueryResultRow { columns });
        }
        Ok(GetQueryResultsResponse {
            query_result_rows: out,
            ..self.head()
        })
    }
}

/// Returns the row a GetQueryResults token of `query_id` starts at.
fn page_offset(query_id: &str, token: &str, total: usize) -> Result<usize> {
    let invalid = || QueryError::InvalidNextToken(query_id.to_string());
    let position = paging::decode_token("GetQueryResults", token).map_err(|_| invalid())?;
    let (id, offset) = position.rsplit_once(':').ok_or_else(invalid)?;
    let offset: usize = offset.parse().map_err(|_| invalid())?;
    if id != query_id || offset > total {
        return Err(invalid());
    }
    Ok(offset)
}

/// A query's results with their Arrow types, for the gRPC stream and Arrow Flight.
#[derive(Debug, Clone)]
pub struct ArrowResults {
    /// The query's status: FINISHED, CANCELLED or TIMED_OUT.
    pub status: QueryStatus,
    /// The schema, its fields named by the result column keys (as GetQueryResults names columns).
    pub schema: SchemaRef,
    /// Every row the query kept, in result order.
    pub batches: Vec<RecordBatch>,
}

impl ArrowResults {
    /// Every row of `rows`, its columns named by the record's column keys.
    pub fn new(record: &QueryRecord, rows: &ResultRows) -> Result<Self, ArrowError> {
        let keys = column_keys(record, rows.schema.fields().len());
        let fields: Vec<Field> = rows
            .schema
            .fields()
            .iter()
            .zip(keys)
            .map(|(field, key)| field.as_ref().clone().with_name(key))
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, rows.schema.metadata().clone()));
        let batches = rows
            .batches
            .iter()
            .map(|batch| RecordBatch::try_new(Arc::clone(&schema), batch.columns().to_vec()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            status: record.status,
            schema,
            batches,
        })
    }

    /// Returns the number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::UInt8Array;

    use super::*;

    fn rows_of(bytes: usize) -> Arc<ResultRows> {
        let column: ArrayRef = Arc::new(UInt8Array::from(vec![0u8; bytes]));
        let batch = RecordBatch::try_from_iter([("b", column)]).unwrap();
        Arc::new(ResultRows {
            schema: batch.schema(),
            batches: vec![batch],
        })
    }

    #[test]
    fn result_cache_drops_the_results_read_least_lately() {
        let size = rows_of(1000).memory_size();
        let mut cache = ResultCache::new(size * 2);
        cache.insert("a", rows_of(1000));
        cache.insert("b", rows_of(1000));
        assert!(cache.get("a").is_some(), "a is read: b is now read least lately");
        cache.insert("c", rows_of(1000));
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        assert_eq!(cache.bytes, size * 2);
        // Larger than the whole cache: not kept, and nothing dropped for it.
        cache.insert("huge", rows_of(10_000));
        assert!(cache.get("huge").is_none() && cache.get("a").is_some() && cache.get("c").is_some());
    }
}
