//! `eventjson` as queries read it is each real trail record's compact text, byte for byte, although
//! the store keeps it with the values its columns hold left out; `eventjsonchecksum` is its checksum.

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray as _};
use traillake_lake::events::event_json::checksum;
use traillake_lake::events::files::{file_text, parse_records};
use traillake_lake::events::json::compact;

use crate::fixture::{CLOUDTRAIL, lake, shared};
use crate::samples::run;

#[tokio::test]
async fn eventjson_is_every_records_own_compact_text() {
    let lake = lake().await;
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for entry in walkdir::WalkDir::new(shared().join("data/trails")) {
        let entry = entry.unwrap();
        if entry.file_type().is_dir() {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        let Ok(text) = file_text(&bytes, 1 << 30) else { continue };
        let Ok(records) = parse_records(&text) else { continue };
        for record in records {
            let text = compact(&record).into_owned();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            if let Some(id) = value.get("eventID").and_then(|id| id.as_str()) {
                expected.entry(id.to_string()).or_default().push(text);
            }
        }
    }
    let batches = run(
        &format!("SELECT eventid, eventjson, eventjsonchecksum FROM {CLOUDTRAIL}"),
        &lake.stores,
    )
    .await
    .unwrap();
    let (mut compared, mut rows) = (0, 0);
    for batch in &batches {
        let (ids, texts, sums) = (batch.column(0), batch.column(1), batch.column(2));
        let (ids, texts, sums) = (ids.as_string_view(), texts.as_string_view(), sums.as_string_view());
        for row in 0..batch.num_rows() {
            rows += 1;
            let text = texts.value(row);
            assert_eq!(sums.value(row), checksum(text));
            if ids.is_null(row) {
                continue;
            }
            let candidates = &expected[ids.value(row)];
            assert!(
                candidates.iter().any(|candidate| candidate == text),
                "eventjson of {} is not its record's text:\n{text}\n{}",
                ids.value(row),
                candidates[0]
            );
            compared += 1;
        }
    }
    assert_eq!(rows, lake.visible_events);
    assert!(compared > 10_000, "{compared} rows compared");
}
