//! The selector evaluator over the real trail files of `../shared/data/trails`: for each selector,
//! the records it takes are exactly those a direct reading of the raw JSON picks.

use serde_json::Value;
use traillake_api::selectors::matches;
use traillake_api::shapes::{AdvancedEventSelector, AdvancedFieldSelector};
use traillake_lake::events::files::{MAX_TEXT_BYTES, file_text, parse_records};
use traillake_lake::events::selection::selected_event;

fn records() -> Vec<Value> {
    let folder = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/trails");
    let mut records = Vec::new();
    for entry in walkdir::WalkDir::new(folder).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.file_type().is_dir() {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        let Ok(text) = file_text(&bytes, MAX_TEXT_BYTES) else {
            continue;
        };
        let Ok(parsed) = parse_records(&text) else { continue };
        records.extend(
            parsed
                .iter()
                .filter_map(|record| serde_json::from_str(record.get()).ok()),
        );
    }
    records
}

fn field(name: &str, operator: &str, values: &[&str]) -> AdvancedFieldSelector {
    let values: Vec<String> = values.iter().map(|value| value.to_string()).collect();
    let mut field = AdvancedFieldSelector {
        field: Some(name.to_string()),
        ..Default::default()
    };
    match operator {
        "Equals" => field.equals = values,
        "NotEquals" => field.not_equals = values,
        "StartsWith" => field.starts_with = values,
        _ => unreachable!("the operators used here"),
    }
    field
}

fn selector(fields: Vec<AdvancedFieldSelector>) -> Vec<AdvancedEventSelector> {
    vec![AdvancedEventSelector {
        name: None,
        field_selectors: fields,
    }]
}

/// The category a record has, or the one traillake derives for a record without one.
fn category(record: &Value) -> String {
    if let Some(category) = record["eventCategory"].as_str() {
        return category.to_string();
    }
    let s3_object = record["resources"]
        .as_array()
        .is_some_and(|resources| resources.iter().any(|r| r["type"] == "AWS::S3::Object"));
    let lambda_invoke = record["eventSource"] == "lambda.amazonaws.com" && record["eventName"] == "Invoke";
    if record["managementEvent"] == Value::Bool(false) || s3_object || lambda_invoke {
        "Data".into()
    } else {
        "Management".into()
    }
}

/// A case: its name, the selectors, and which raw records they must take.
type Case = (&'static str, Vec<AdvancedEventSelector>, Box<dyn Fn(&Value) -> bool>);

#[test]
fn selectors_take_what_the_raw_records_say() {
    let records = records();
    assert!(records.len() > 1000, "the trail files hold {} records", records.len());
    let cases: Vec<Case> = vec![
        (
            "management writes",
            selector(vec![
                field("eventCategory", "Equals", &["Management"]),
                field("readOnly", "Equals", &["false"]),
            ]),
            Box::new(|r: &Value| category(r) == "Management" && r["readOnly"] == Value::Bool(false)),
        ),
        (
            "management events but KMS",
            selector(vec![
                field("eventCategory", "Equals", &["Management"]),
                field("eventSource", "NotEquals", &["kms.amazonaws.com"]),
            ]),
            Box::new(|r: &Value| category(r) == "Management" && r["eventSource"] != "kms.amazonaws.com"),
        ),
        (
            "S3 object data events",
            selector(vec![
                field("eventCategory", "Equals", &["Data"]),
                field("resources.type", "Equals", &["AWS::S3::Object"]),
            ]),
            Box::new(|r: &Value| {
                category(r) == "Data"
                    && r["resources"]
                        .as_array()
                        .is_some_and(|resources| resources.iter().any(|x| x["type"] == "AWS::S3::Object"))
            }),
        ),
        (
            "refused calls",
            selector(vec![
                field("eventCategory", "Equals", &["Management"]),
                field("errorCode", "StartsWith", &["AccessDenied", "UnauthorizedOperation"]),
            ]),
            Box::new(|r: &Value| {
                category(r) == "Management"
                    && r["errorCode"].as_str().is_some_and(|code| {
                        code.starts_with("AccessDenied") || code.starts_with("UnauthorizedOperation")
                    })
            }),
        ),
    ];
    for (name, selectors, expected) in cases {
        let taken = records
            .iter()
            .filter(|record| matches(&selectors, &selected_event(record)))
            .count();
        let wanted = records.iter().filter(|record| expected(record)).count();
        assert_eq!(taken, wanted, "{name}");
        assert!(
            taken > 0 && taken < records.len(),
            "{name}: {taken} of {}",
            records.len()
        );
    }
}
