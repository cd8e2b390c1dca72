//! Queries over a store whose write-ahead log holds events its table does not: each event is
//! counted once before the flush, after it, and by a query planned on a snapshot taken before it.

use chrono::Utc;
use datafusion::arrow::array::{AsArray as _, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use traillake_api::selectors::StoreKind;
use traillake_lake::events::{AuditEnvelope, EventRows, audit_row};
use traillake_lake::{EventTable, LakeRoot, RootLocation, WriteAheadLog};
use traillake_query::dialect::prepare;
use traillake_query::planner::{StoreSource, plan};

const STORE: &str = "0aa1b2c3-0000-4000-8000-0000000000e1";

/// Returns the rows of channel events with these event IDs.
fn rows(ids: &[&str]) -> RecordBatch {
    let mut rows = EventRows::new(StoreKind::ActivityAuditLog, ids.len(), 4096);
    let data = serde_json::json!({
        "version": "1.0",
        "userIdentity": {"type": "CustomUser", "principalId": "alice"},
        "eventSource": "app.example.com",
        "eventName": "Login",
        "eventTime": Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "UID": "uid-1",
        "recipientAccountId": "123456789012",
    })
    .to_string();
    for id in ids {
        let envelope = AuditEnvelope {
            event_id: id,
            region: "us-east-1",
            owner_account_id: "123456789012",
            channel_arn: "arn:aws:cloudtrail:us-east-1:123456789012:channel/0aa1b2c3-0000-4000-8000-0000000000c1",
            ingestion_time: Utc::now(),
        };
        rows.append(&audit_row(&data, &envelope).unwrap());
    }
    rows.finish()
}

/// Returns (events, distinct event IDs) as a query over the store counts them.
async fn counts(store: &StoreSource) -> (i64, i64) {
    let sql = format!("SELECT count(*), count(DISTINCT eventID) FROM {STORE}");
    let prepared = prepare::<traillake_query::QueryError>(&sql, |written| Ok(written.to_ascii_lowercase())).unwrap();
    let planned = plan(&prepared, std::slice::from_ref(store), Utc::now(), &Default::default())
        .await
        .unwrap();
    let batches = planned
        .context
        .execute_logical_plan(planned.plan)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    (
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        batches[0].column(1).as_primitive::<Int64Type>().value(0),
    )
}

#[tokio::test]
async fn acknowledged_events_are_seen_once_before_during_and_after_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let table = EventTable::new(&root, STORE, StoreKind::ActivityAuditLog);
    let mut store = StoreSource {
        id: STORE.to_string(),
        kind: StoreKind::ActivityAuditLog,
        retention_days: 3653,
        table: table.clone(),
        snapshot: None,
    };
    let log = WriteAheadLog::new(&table).unwrap();
    let mut writer = log.writer();

    writer.append(&[rows(&["w1", "w2"])]).await.unwrap();
    assert_eq!(counts(&store).await, (2, 2), "only the log, no table yet");

    table.append(&[rows(&["t1", "t2", "t3"])]).await.unwrap();
    writer.append(&[rows(&["w3"])]).await.unwrap();
    assert_eq!(counts(&store).await, (6, 6), "the table and the log");

    // A snapshot taken before the flush: its pending segments are deleted by the flush, so the
    // planner takes a newer snapshot instead of missing or doubling them.
    store.snapshot = table.snapshot().await.unwrap();
    assert_eq!(log.flush().await.unwrap().rows, 3);
    assert_eq!(
        counts(&store).await,
        (6, 6),
        "planned on a snapshot older than the flush"
    );
    store.snapshot = None;
    assert_eq!(counts(&store).await, (6, 6), "after the flush");
}
