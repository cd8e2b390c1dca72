//! Fuzzes the integration-event parser as PutAuditEvents runs it on each event's `eventData` (a
//! JSON text of up to 256 KB): to a row of an ActivityAuditLog store, then to a batch. An event may
//! be refused with a per-event code and a message; nothing may panic.
#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use traillake_api::selectors::StoreKind;
use traillake_events::{AuditEnvelope, EventRows, audit_row};

fuzz_target!(|input: &[u8]| {
    let Ok(event_data) = std::str::from_utf8(input) else {
        return;
    };
    let envelope = AuditEnvelope {
        event_id: "9c5ef5a6-cd10-4c3b-9f7f-4d5a2b1f1c11",
        region: "us-east-1",
        owner_account_id: "123456789012",
        channel_arn: "arn:aws:cloudtrail:us-east-1:123456789012:channel/0b7a4a5e-1a5d-4c6e-9d3f-5b8f7a2c1e90",
        ingestion_time: DateTime::from_timestamp(1_763_800_000, 0).expect("a time"),
    };
    match audit_row(event_data, &envelope) {
        Ok(row) => {
            let mut rows = EventRows::new(StoreKind::ActivityAuditLog, 1, event_data.len());
            rows.append(&row);
            assert_eq!(rows.finish().num_rows(), 1);
        }
        Err(refused) => assert!(!refused.message.is_empty() && !refused.problem.code().is_empty()),
    }
});
