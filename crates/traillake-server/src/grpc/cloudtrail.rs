//! The CloudTrail and CloudTrailData gRPC services: each RPC calls the service layer's handler of
//! the operation of the same name, and GetQueryResultsArrow streams a query's results as Arrow IPC.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use futures::stream::{self, BoxStream};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};
use traillake_api::shapes::*;
use traillake_api::ApiError;
use traillake_api::wire::WireEnum as _;

use super::generated::cloud_trail_data_server::CloudTrailData;
use super::generated::cloud_trail_server::CloudTrail;
use super::{Call, Front};
use crate::auth::Api;
use crate::service::ArrowResults;

/// The metadata of GetQueryResultsArrow's and DoGet's response that holds the query's status.
pub(super) const QUERY_STATUS: &str = "x-traillake-query-status";

/// The most bytes (as Arrow counts them in memory) of one piece of an Arrow stream, below the
/// 4 MiB a gRPC client accepts in one message by default.
const PIECE_BYTES: usize = 2 << 20;

/// The CloudTrail service.
#[derive(Debug, Clone)]
pub(super) struct CloudTrailRpcs(pub(super) Front);

/// The CloudTrailData service.
#[derive(Debug, Clone)]
pub(super) struct CloudTrailDataRpcs(pub(super) Front);

/// Implements a service's unary RPCs, each as the service layer's handler of the same name.
macro_rules! unary_rpcs {
    ($rpcs:ident: $service:ident, $api:expr, { $($operation:ident => $handler:ident($request:ty) -> $response:ty;)* } $($rest:item)*) => {
        #[tonic::async_trait]
        impl $service for $rpcs {
            $(
                async fn $handler(&self, request: Request<$request>) -> Result<Response<$response>, Status> {
                    let call = Call::start(stringify!($operation));
                    let result = async {
                        let ctx = self.0.context(request.metadata(), $api, &call.request_id)?;
                        self.0.service.$handler(&ctx, request.into_inner()).await
                    }
                    .await;
                    call.answer(result)
                }
            )*
            $($rest)*
        }
    };
}

unary_rpcs!(CloudTrailRpcs: CloudTrail, Api::CloudTrail, {
    CreateEventDataStore => create_event_data_store(CreateEventDataStoreRequest) -> EventDataStoreDescription;
    GetEventDataStore => get_event_data_store(EventDataStoreRequest) -> EventDataStoreDescription;
    ListEventDataStores => list_event_data_stores(ListEventDataStoresRequest) -> ListEventDataStoresResponse;
    UpdateEventDataStore => update_event_data_store(UpdateEventDataStoreRequest) -> EventDataStoreDescription;
    DeleteEventDataStore => delete_event_data_store(EventDataStoreRequest) -> Empty;
    RestoreEventDataStore => restore_event_data_store(EventDataStoreRequest) -> EventDataStoreDescription;
    StartEventDataStoreIngestion => start_event_data_store_ingestion(EventDataStoreRequest) -> Empty;
    StopEventDataStoreIngestion => stop_event_data_store_ingestion(EventDataStoreRequest) -> Empty;
    AddTags => add_tags(TagsRequest) -> Empty;
    RemoveTags => remove_tags(TagsRequest) -> Empty;
    ListTags => list_tags(ListTagsRequest) -> ListTagsResponse;
    StartQuery => start_query(StartQueryRequest) -> StartQueryResponse;
    DescribeQuery => describe_query(QueryRequest) -> DescribeQueryResponse;
    GetQueryResults => get_query_results(GetQueryResultsRequest) -> GetQueryResultsResponse;
    CancelQuery => cancel_query(QueryRequest) -> CancelQueryResponse;
    ListQueries => list_queries(ListQueriesRequest) -> ListQueriesResponse;
    CreateChannel => create_channel(CreateChannelRequest) -> ChannelDescription;
    GetChannel => get_channel(ChannelRequest) -> ChannelDescription;
    ListChannels => list_channels(ListChannelsRequest) -> ListChannelsResponse;
    UpdateChannel => update_channel(UpdateChannelRequest) -> ChannelDescription;
    DeleteChannel => delete_channel(ChannelRequest) -> Empty;
    PutResourcePolicy => put_resource_policy(PutResourcePolicyRequest) -> ResourcePolicyResponse;
    GetResourcePolicy => get_resource_policy(ResourcePolicyRequest) -> ResourcePolicyResponse;
    DeleteResourcePolicy => delete_resource_policy(ResourcePolicyRequest) -> Empty;
    StartImport => start_import(StartImportRequest) -> ImportDescription;
    GetImport => get_import(ImportRequest) -> ImportDescription;
    ListImports => list_imports(ListImportsRequest) -> ListImportsResponse;
    ListImportFailures => list_import_failures(ListImportFailuresRequest) -> ListImportFailuresResponse;
    StopImport => stop_import(ImportRequest) -> ImportDescription;
}

    type GetQueryResultsArrowStream = BoxStream<'static, Result<ArrowIpcChunk, Status>>;

    async fn get_query_results_arrow(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<Self::GetQueryResultsArrowStream>, Status> {
        let call = Call::start("GetQueryResultsArrow");
        let result = async {
            let ctx = self.0.context(request.metadata(), Api::CloudTrail, &call.request_id)?;
            let results = self.0.service.query_results_arrow(&ctx, request.into_inner()).await?;
            let status = results.status;
            let chunks = IpcChunks::new(results).map_err(|error| {
                tracing::error!(%error, "could not write a result schema as Arrow IPC");
                ApiError::internal()
            })?;
            let chunks = stream::iter(chunks.map(|chunk| {
                chunk.map_err(|error| Status::internal(format!("could not write a result batch as Arrow IPC: {error}")))
            }));
            Ok((Box::pin(chunks) as Self::GetQueryResultsArrowStream, status))
        }
        .await;
        let (result, status) = match result {
            Ok((chunks, status)) => (Ok(chunks), Some(status)),
            Err(error) => (Err(error), None),
        };
        let mut response = call.answer(result)?;
        if let Some(status) = status {
            response.metadata_mut().insert(QUERY_STATUS, MetadataValue::from_static(status.wire_name().unwrap_or("UNKNOWN")));
        }
        Ok(response)
    }
);

unary_rpcs!(CloudTrailDataRpcs: CloudTrailData, Api::CloudTrailData, {
    PutAuditEvents => put_audit_events(PutAuditEventsRequest) -> PutAuditEventsResponse;
});

/// A query's results as the pieces of one Arrow IPC stream: the schema, then the batches (each cut
/// into pieces of at most [`PIECE_BYTES`]), then the end-of-stream marker. Pieces are written as
/// they are sent, so a large result is never encoded whole in memory.
struct IpcChunks {
    writer: StreamWriter<Vec<u8>>,
    batches: std::vec::IntoIter<RecordBatch>,
    /// Rows of the current batch not yet written.
    current: Option<RecordBatch>,
    finished: bool,
}

impl IpcChunks {
    fn new(results: ArrowResults) -> Result<Self, ArrowError> {
        let writer = StreamWriter::try_new(Vec::new(), &results.schema)?;
        Ok(Self { writer, batches: results.batches.into_iter(), current: None, finished: false })
    }

    /// Returns the next piece of the current batch, moving to the next batch when it is done.
    fn next_piece(&mut self) -> Option<RecordBatch> {
        loop {
            if let Some(batch) = self.current.take() {
                let rows = batch.num_rows();
                let bytes = batch.get_array_memory_size().max(1);
                let piece_rows = (rows * PIECE_BYTES / bytes).clamp(1, rows);
                if piece_rows < rows {
                    self.current = Some(batch.slice(piece_rows, rows - piece_rows));
                }
                return Some(batch.slice(0, piece_rows));
            }
            let batch = self.batches.next()?;
            if batch.num_rows() > 0 {
                self.current = Some(batch);
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
                Some(piece) => self.writer.write(&piece),
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
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::ipc::reader::StreamReader;
    use traillake_api::shapes::QueryStatus;

    use super::*;

    #[test]
    fn pieces_are_one_readable_stream_of_bounded_messages() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false), Field::new("text", DataType::Utf8, false)]));
        let rows = 200_000;
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(StringArray::from_iter_values((0..rows).map(|n| format!("row {n:08}")))),
            ],
        )
        .unwrap();
        let empty = batch.slice(0, 0);
        let results = ArrowResults { status: QueryStatus::Finished, schema, batches: vec![batch.clone(), empty, batch] };
        let pieces: Vec<Vec<u8>> = IpcChunks::new(results).unwrap().map(|chunk| chunk.unwrap().ipc.unwrap()).collect();
        assert!(pieces.len() > 4, "two 5 MB batches are cut into pieces: {}", pieces.len());
        assert!(pieces.iter().all(|piece| piece.len() <= PIECE_BYTES + 4096), "a piece over the bound");

        let reader = StreamReader::try_new(std::io::Cursor::new(pieces.concat()), None).unwrap();
        let read: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 2 * rows as usize);
        let first = read[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(first.value(0), 0);
        // The first piece holds the schema alone; the last, the end-of-stream marker alone.
        assert!(StreamReader::try_new(std::io::Cursor::new(pieces[0].clone()), None).unwrap().next().is_none());
        assert_eq!(pieces.last().unwrap().len(), 8);
    }
}
