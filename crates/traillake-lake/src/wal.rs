//! The write-ahead log of a store: events acknowledged to their senders but not yet in the store's
//! table, as Arrow IPC segments under `stores/<id>/wal/<writer>/<number>.arrows`.
//!
//! Why: a Delta commit re-derives the table's file list, at a cost that grows with the table's
//! files, and writes one file per commit; committing each group of PutAuditEvents requests made
//! the commit, not the requests, the limit. A group is acknowledged once its segment is stored
//! (one object put, no encoding), and [`WriteAheadLog::flush`] moves the segments into the table,
//! many groups in one commit.
//!
//! Exactly once: a writer ([`SegmentWriter`], one per server process and store) numbers its
//! segments 1, 2, ... and writes each only after the one before it is stored. A flush commits a
//! writer's segments together with the Delta application transaction `wal-<writer>` = the number
//! of its last segment, so in any snapshot a segment is in the table exactly when its number is
//! at most that version. Readers take a snapshot first and then the segments above its versions
//! ([`WriteAheadLog::pending`]), so they see every acknowledged event once; flushed segments are
//! deleted after their commit, and a reader that finds one gone takes a newer snapshot.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use deltalake::{DeltaTable, ObjectStore, Path};
use futures::TryStreamExt as _;
use object_store::{ObjectStoreExt as _, PutMode, PutOptions, PutPayload};

use crate::Result;
use crate::error::LakeError;
use crate::table::{AppProgress, EventTable};

/// Bytes of segments one flush moves into the table at most; a flush that leaves more behind is
/// followed by another.
pub const FLUSH_BYTES: u64 = 128 * 1024 * 1024;

/// A stored segment of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The writer that wrote it.
    pub writer: String,
    /// Its number among the writer's segments, from 1.
    pub number: i64,
    /// Where it is in the table's object store.
    pub path: Path,
    /// Its size in bytes.
    pub size: u64,
}

/// What one flush moved into the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// The segments committed.
    pub segments: usize,
    /// Their rows.
    pub rows: usize,
    /// Their size in bytes.
    pub bytes: u64,
}

/// The write-ahead log of one store's table.
#[derive(Debug, Clone)]
pub struct WriteAheadLog {
    table: EventTable,
    folder: Path,
}

impl WriteAheadLog {
    /// Returns the log of a store's table; nothing is read or written until it is used.
    pub fn new(table: &EventTable) -> Result<Self> {
        Ok(Self {
            table: table.clone(),
            folder: table.sibling_path("wal")?,
        })
    }

    /// Returns a writer of new segments, under a name no other writer has.
    pub fn writer(&self) -> SegmentWriter {
        let name = uuid::Uuid::new_v4().simple().to_string();
        SegmentWriter {
            store: Arc::clone(self.table.object_store()),
            folder: self.folder.clone().join(name.as_str()),
            name,
            next: 1,
        }
    }

    /// Returns the stored segments of every writer, in each writer's order.
    pub async fn segments(&self) -> Result<Vec<Segment>> {
        let mut listing = self.table.object_store().list(Some(&self.folder));
        let mut segments = Vec::new();
        while let Some(object) = listing.try_next().await? {
            let parts: Vec<String> = object
                .location
                .prefix_match(&self.folder)
                .into_iter()
                .flatten()
                .map(|part| part.as_ref().to_string())
                .collect();
            let [writer, file] = parts.as_slice() else { continue };
            let Some(number) = file.strip_suffix(".arrows").and_then(|number| number.parse().ok()) else {
                continue;
            };
            segments.push(Segment {
                writer: writer.clone(),
                number,
                path: object.location,
                size: object.size,
            });
        }
        segments.sort_by(|a, b| (&a.writer, a.number).cmp(&(&b.writer, b.number)));
        Ok(segments)
    }

    /// Returns the segments whose events `snapshot` does not hold (every segment when the table has
    /// no snapshot yet), in each writer's order.
    pub async fn pending(&self, snapshot: Option<&DeltaTable>) -> Result<Vec<Segment>> {
        let segments = self.segments().await?;
        let flushed = self.flushed_numbers(snapshot, &segments).await?;
        Ok(segments
            .into_iter()
            .filter(|segment| segment.number > flushed[&segment.writer])
            .collect())
    }

    /// Returns, for each writer of `segments`, the number of its last segment `snapshot` holds.
    async fn flushed_numbers(
        &self,
        snapshot: Option<&DeltaTable>,
        segments: &[Segment],
    ) -> Result<BTreeMap<String, i64>> {
        let mut flushed = BTreeMap::new();
        for segment in segments {
            if flushed.contains_key(&segment.writer) {
                continue;
            }
            let number = match snapshot {
                Some(snapshot) => EventTable::progress_in(snapshot, &transaction_of(&segment.writer))
                    .await?
                    .unwrap_or(0),
                None => 0,
            };
            flushed.insert(segment.writer.clone(), number);
        }
        Ok(flushed)
    }

    /// Returns the rows of segments, in their order. A segment that is gone was flushed (and
    /// deleted) after the caller listed it: the error says so, and the caller takes a newer snapshot.
    pub async fn read(&self, segments: &[Segment]) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        for segment in segments {
            let bytes = self.table.object_store().get(&segment.path).await?.bytes().await?;
            let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
            for batch in reader {
                batches.push(batch?);
            }
        }
        Ok(batches)
    }

    /// Moves pending segments into the table, up to [`FLUSH_BYTES`] of them, in one commit that
    /// records each writer's last segment; then deletes the segments the table holds. Returns what
    /// was committed (nothing when no segment was pending).
    pub async fn flush(&self) -> Result<Flushed> {
        let snapshot = self.table.snapshot().await?;
        let segments = self.segments().await?;
        let flushed = self.flushed_numbers(snapshot.as_ref(), &segments).await?;
        let (done, pending): (Vec<_>, Vec<_>) = segments
            .into_iter()
            .partition(|segment| segment.number <= flushed[&segment.writer]);
        let mut taken = Vec::new();
        let mut bytes = 0;
        for segment in pending {
            if bytes > 0 && bytes + segment.size > FLUSH_BYTES {
                break;
            }
            bytes += segment.size;
            taken.push(segment);
        }
        let mut outcome = Flushed::default();
        if !taken.is_empty() {
            let batches = self.read(&taken).await?;
            let mut marks: BTreeMap<&str, i64> = BTreeMap::new();
            for segment in &taken {
                marks.insert(&segment.writer, segment.number);
            }
            let marks: Vec<AppProgress> = marks
                .into_iter()
                .map(|(writer, number)| AppProgress {
                    writer: transaction_of(writer),
                    progress: number,
                })
                .collect();
            outcome.rows = batches.iter().map(RecordBatch::num_rows).sum();
            if outcome.rows > 0 {
                self.table.append_in(snapshot, &batches, &marks).await?;
            }
            outcome.segments = taken.len();
            outcome.bytes = bytes;
        }
        for segment in done.iter().chain(&taken) {
            match self.table.object_store().delete(&segment.path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(outcome)
    }
}

/// Returns the Delta application transaction that records how far a writer's segments are flushed.
fn transaction_of(writer: &str) -> String {
    format!("wal-{writer}")
}

/// Writes one writer's segments, one after the other.
#[derive(Debug)]
pub struct SegmentWriter {
    store: Arc<dyn ObjectStore>,
    folder: Path,
    name: String,
    next: i64,
}

impl SegmentWriter {
    /// Returns the writer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stores batches of the table's schema as the writer's next segment; returns its size in
    /// bytes once it is stored. A number is never used twice, even when its write failed (the
    /// object may still have been stored): the rows of a failed write may reach the table, as with
    /// any write whose outcome the caller never learnt.
    pub async fn append(&mut self, batches: &[RecordBatch]) -> Result<u64> {
        let Some(first) = batches.first() else {
            return Err(LakeError::Invalid("a segment needs at least one batch".to_string()));
        };
        let mut bytes =
            Vec::with_capacity(batches.iter().map(RecordBatch::get_array_memory_size).sum::<usize>() + 4096);
        let mut writer = StreamWriter::try_new(&mut bytes, first.schema_ref())?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
        drop(writer);
        let size = bytes.len() as u64;
        let path = self.folder.clone().join(format!("{:020}.arrows", self.next));
        self.next += 1;
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.store.put_opts(&path, PutPayload::from(bytes), options).await?;
        Ok(size)
    }
}
