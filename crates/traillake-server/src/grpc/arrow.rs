//! Query results on the wire as Arrow: string and binary views made plain (every Arrow client reads
//! them, and a slice of them carries only its own rows' bytes), and the pieces of one Arrow IPC
//! stream that GetQueryResultsArrow sends. Arrow Flight encodes with arrow-flight's own encoder.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use traillake_api::shapes::ArrowIpcChunk;

use traillake_query::ArrowResults;

/// The most bytes of one piece of an Arrow stream, below the 4 MiB a gRPC client accepts in one
/// message by default.
const PIECE_BYTES: usize = 2 << 20;

/// Returns the type a column has on the wire: views as their plain counterparts.
fn portable_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    }
}

/// Returns the schema of the results on the wire.
pub(super) fn portable_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| field.as_ref().clone().with_data_type(portable_type(field.data_type())))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Returns a batch as it goes on the wire. The scans produce views at the top level only, so
/// nested columns are left as they are.
pub(super) fn portable(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch
        .columns()
        .iter()
        .any(|column| matches!(column.data_type(), DataType::Utf8View | DataType::BinaryView))
    {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .map(|column| cast(column, &portable_type(column.data_type())))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(portable_schema(&batch.schema()), columns)
}

/// Returns the bytes of the rows of a (possibly sliced) batch.
fn slice_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|column| {
            column
                .to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size())
        })
        .sum()
}

/// A query's results as the pieces of one Arrow IPC stream: the schema, then the batches (each cut
/// into pieces of at most [`PIECE_BYTES`]), then the end-of-stream marker. Pieces are written as
/// they are sent, so a large result is never encoded whole in memory.
pub(super) struct IpcChunks {
    writer: StreamWriter<Vec<u8>>,
    batches: std::vec::IntoIter<RecordBatch>,
    /// Rows of the current batch not yet written.
    current: Option<RecordBatch>,
    finished: bool,
}

impl IpcChunks {
    pub(super) fn new(results: ArrowResults) -> Result<Self, ArrowError> {
        let writer = StreamWriter::try_new(Vec::new(), &portable_schema(&results.schema))?;
        Ok(Self {
            writer,
            batches: results.batches.into_iter(),
            current: None,
            finished: false,
        })
    }

    /// Returns the next piece of the current batch, moving to the next batch when it is done.
    fn next_piece(&mut self) -> Option<Result<RecordBatch, ArrowError>> {
        loop {
            if let Some(batch) = self.current.take() {
                let rows = batch.num_rows();
                let piece_rows = (rows * PIECE_BYTES / slice_bytes(&batch).max(1)).clamp(1, rows);
                if piece_rows < rows {
                    self.current = Some(batch.slice(piece_rows, rows - piece_rows));
                }
                return Some(Ok(batch.slice(0, piece_rows)));
            }
            let batch = self.batches.next()?;
            if batch.num_rows() > 0 {
                match portable(&batch) {
                    Ok(batch) => self.current = Some(batch),
                    Err(error) => return Some(Err(error)),
                }
            }
        }
    }
}

impl Iterator for IpcChunks {
    type Item = Result<ArrowIpcChunk, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        // The schema was written when the writer was made: it goes out as the first piece alone.
        if self.writer.get_ref().is_empty() {
            if self.finished {
                return None;
            }
            let written = match self.next_piece() {
                Some(Ok(piece)) => self.writer.write(&piece),
                Some(Err(error)) => Err(error),
                None => {
                    self.finished = true;
                    self.writer.finish()
                }
            };
            if let Err(error) = written {
                self.finished = true;
                self.writer.get_mut().clear();
                return Some(Err(error));
            }
        }
        let ipc = std::mem::take(self.writer.get_mut());
        Some(Ok(ArrowIpcChunk { ipc: Some(ipc) }))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray, StringViewArray};
    use datafusion::arrow::ipc::reader::StreamReader;
    use traillake_api::shapes::QueryStatus;

    use super::*;

    #[test]
    fn pieces_are_one_readable_stream_of_bounded_messages_with_plain_strings() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("text", DataType::Utf8View, false),
        ]));
        let rows = 200_000;
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(StringViewArray::from_iter_values(
                    (0..rows).map(|n| format!("the row {n:08}")),
                )),
            ],
        )
        .unwrap();
        let empty = batch.slice(0, 0);
        let results = ArrowResults {
            status: QueryStatus::Finished,
            schema,
            batches: vec![batch.clone(), empty, batch],
        };
        let pieces: Vec<Vec<u8>> = IpcChunks::new(results)
            .unwrap()
            .map(|chunk| chunk.unwrap().ipc.unwrap())
            .collect();
        assert!(
            pieces.len() > 4,
            "two 5 MB batches are cut into pieces: {}",
            pieces.len()
        );
        assert!(
            pieces.iter().all(|piece| piece.len() <= PIECE_BYTES + 4096),
            "a piece over the bound"
        );
        // 8 + 4 + 16 bytes a row as plain strings: each piece carries its own rows' bytes only.
        let total: usize = pieces.iter().map(Vec::len).sum();
        assert!(
            total < 2 * rows as usize * 30,
            "{total} bytes sent for {} rows",
            2 * rows
        );

        let reader = StreamReader::try_new(std::io::Cursor::new(pieces.concat()), None).unwrap();
        let read: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 2 * rows as usize);
        let first = read[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(first.value(0), 0);
        let text = read[0]
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("views go out as plain strings");
        assert_eq!(text.value(1), "the row 00000001");
        // The first piece holds the schema alone; the last, the end-of-stream marker alone.
        assert!(
            StreamReader::try_new(std::io::Cursor::new(pieces[0].clone()), None)
                .unwrap()
                .next()
                .is_none()
        );
        assert_eq!(pieces.last().unwrap().len(), 8);
    }
}
