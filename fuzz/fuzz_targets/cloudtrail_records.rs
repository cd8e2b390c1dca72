//! Fuzzes the CloudTrail record parser as an import runs it: a file's bytes (gzip or not) to its
//! text, the text to records (a `{"Records": [...]}` document, a LookupEvents answer or a stream
//! of records), each record to a row, the rows to a batch of the table schema. Files and records
//! may be refused, with a reason; nothing may panic, the batch holds one row per record taken, and
//! each row's stored `eventjson` rebuilds to the record's compact text exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traillake_api::selectors::StoreKind;
use traillake_events::columns::{Cell, StructShape};
use traillake_events::event_json::{positions, rebuild_row};
use traillake_events::files::{file_text, parse_records};
use traillake_events::json::compact;
use traillake_events::schema::{EVENT_JSON, event_schema};
use traillake_events::{EventRows, cloudtrail_row};

/// The most text a fuzzed file unpacks to: well inside libFuzzer's memory limit, and far beyond
/// what an input of a few kilobytes reaches without being a gzip bomb, which it refuses.
const MAX_TEXT_BYTES: u64 = 16 << 20;

fuzz_target!(|input: &[u8]| {
    let text = match file_text(input, MAX_TEXT_BYTES) {
        Ok(text) => text,
        Err(refused) => return assert!(!refused.reason.is_empty()),
    };
    let records = match parse_records(&text) {
        Ok(records) => records,
        Err(refused) => return assert!(!refused.reason.is_empty()),
    };
    let mut rows = EventRows::new(StoreKind::CloudTrail, records.len(), text.len());
    let shape = StructShape::new(event_schema(StoreKind::CloudTrail).fields().clone());
    let event_json = shape.position(EVENT_JSON).expect("CloudTrail rows have eventjson");
    let referenced = positions(&shape);
    let mut taken = 0;
    for record in &records {
        match cloudtrail_row(record) {
            Ok(row) => {
                let Cell::Text(stored) = &row.cells[event_json] else {
                    panic!("eventjson is text")
                };
                assert_eq!(
                    rebuild_row(stored, &referenced, &row.cells).as_deref(),
                    Ok(compact(record).as_ref())
                );
                rows.append(&row);
                taken += 1;
            }
            Err(refused) => assert!(!refused.reason.is_empty()),
        }
    }
    assert_eq!(rows.finish().num_rows(), taken);
});
