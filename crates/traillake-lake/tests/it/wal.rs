//! A store's write-ahead log on a local root: segments written, read as pending against a
//! snapshot, flushed into the table exactly once, including after a flush that committed but did
//! not get to delete its segments.

use chrono::{TimeZone, Utc};
use datafusion::arrow::array::RecordBatch;
use traillake_api::selectors::StoreKind;
use traillake_lake::loader::file_rows;
use traillake_lake::{EventTable, LakeRoot, RootLocation, WriteAheadLog};

fn rows(ids: &[&str]) -> RecordBatch {
    let keep_everything = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    let records: Vec<_> = ids
        .iter()
        .map(|id| serde_json::json!({"eventTime": "2024-05-01T10:00:00Z", "eventID": id}))
        .collect();
    file_rows(serde_json::Value::from(records).to_string().as_bytes(), keep_everything)
        .unwrap()
        .batch
}

fn count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

async fn table_rows(table: &EventTable) -> usize {
    let Some(snapshot) = table.snapshot().await.unwrap() else {
        return 0;
    };
    table
        .data_files(&snapshot)
        .unwrap()
        .iter()
        .map(|file| file.rows.unwrap())
        .sum()
}

#[tokio::test]
async fn segments_are_pending_until_flushed_then_in_the_table_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let table = EventTable::new(&root, "5c2a6f0e-1111-4222-8333-444455556666", StoreKind::CloudTrail);
    let log = WriteAheadLog::new(&table).unwrap();
    assert!(log.pending(None).await.unwrap().is_empty());
    assert_eq!(log.flush().await.unwrap().segments, 0, "nothing to flush");

    let mut first = log.writer();
    let mut second = log.writer();
    assert_ne!(first.name(), second.name());
    first.append(&[rows(&["a1", "a2"])]).await.unwrap();
    first.append(&[rows(&["a3"]), rows(&["a4"])]).await.unwrap();
    second.append(&[rows(&["b1"])]).await.unwrap();
    let pending = log.pending(None).await.unwrap();
    let mut numbers: Vec<_> = pending.iter().map(|s| (s.writer == first.name(), s.number)).collect();
    numbers.sort();
    assert_eq!(numbers, [(false, 1), (true, 1), (true, 2)]);
    assert_eq!(count(&log.read(&pending).await.unwrap()), 5);
    let first_segment = pending
        .iter()
        .find(|s| s.writer == first.name() && s.number == 1)
        .unwrap();
    // The local root's object store names files by their absolute paths.
    let first_segment = std::path::PathBuf::from(format!("/{}", first_segment.path));
    let first_segment = (first_segment.clone(), std::fs::read(&first_segment).unwrap());

    // A reader's snapshot taken before the flush still sees the segments as pending; after the
    // flush they are gone, and the latest snapshot holds their rows.
    let flushed = log.flush().await.unwrap();
    assert_eq!((flushed.segments, flushed.rows), (3, 5));
    assert_eq!(table_rows(&table).await, 5);
    let latest = table.snapshot().await.unwrap();
    assert!(log.pending(latest.as_ref()).await.unwrap().is_empty());
    assert!(log.segments().await.unwrap().is_empty(), "flushed segments are deleted");

    // A writer goes on numbering after a flush; only its new segment is pending.
    first.append(&[rows(&["a5"])]).await.unwrap();
    let pending = log.pending(latest.as_ref()).await.unwrap();
    assert_eq!((pending.len(), pending[0].number), (1, 3));

    // A flush that committed but stopped before deleting leaves segments the table holds: they are
    // never pending again, and the next flush deletes them without storing them twice.
    std::fs::write(&first_segment.0, &first_segment.1).unwrap();
    assert_eq!(log.segments().await.unwrap().len(), 2);
    assert_eq!(log.pending(latest.as_ref()).await.unwrap().len(), 1);
    let flushed = log.flush().await.unwrap();
    assert_eq!((flushed.segments, flushed.rows), (1, 1));
    assert_eq!(table_rows(&table).await, 6);
    assert!(log.segments().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_flush_moves_a_bounded_share_and_the_next_one_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let table = EventTable::new(&root, "6c2a6f0e-1111-4222-8333-444455556666", StoreKind::CloudTrail);
    let log = WriteAheadLog::new(&table).unwrap();
    let mut writer = log.writer();
    let ids: Vec<String> = (0..2000).map(|i| format!("e{i}")).collect();
    let big = rows(&ids.iter().map(String::as_str).collect::<Vec<_>>());
    let mut written = 0;
    let mut segments = 0;
    while written <= traillake_lake::wal::FLUSH_BYTES {
        written += writer.append(std::slice::from_ref(&big)).await.unwrap();
        segments += 1;
    }
    let first = log.flush().await.unwrap();
    assert!(
        first.segments < segments && first.bytes <= traillake_lake::wal::FLUSH_BYTES,
        "{first:?} of {segments}"
    );
    let second = log.flush().await.unwrap();
    assert_eq!(first.segments + second.segments, segments);
    assert_eq!(table_rows(&table).await, segments * 2000);
}
