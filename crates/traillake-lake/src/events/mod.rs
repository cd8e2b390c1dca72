//! Events: their Arrow schemas, the reading of record files, and the turning of records into
//! Arrow batches ready for a store's table.

pub mod cloudtrail;
pub mod files;
pub mod schema;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;

pub use cloudtrail::{EventRow, InvalidRecord, cloudtrail_row};
pub use files::{InvalidFile, read_records};

/// Returns one Arrow batch of the given table schema holding the rows.
pub fn rows_to_batch(table_schema: SchemaRef, rows: &[EventRow]) -> Result<RecordBatch, ArrowError> {
    let mut decoder = ReaderBuilder::new(table_schema.clone()).with_batch_size(rows.len().max(1)).build_decoder()?;
    let columns: Vec<_> = rows.iter().map(|row| &row.columns).collect();
    decoder.serialize(&columns)?;
    Ok(decoder.flush()?.unwrap_or_else(|| RecordBatch::new_empty(table_schema)))
}
