//! Every statement of `../shared/queries/lake-samples` over the loaded lake: each finishes, or is
//! refused as an invalid statement where the samples' README says it must be.

use chrono::Utc;
use datafusion::arrow::array::RecordBatch;
use traillake_query::QueryError;
use traillake_query::dialect::prepare;
use traillake_query::planner::{StoreSource, plan};

use crate::fixture::{ACTIVITY, CLOUDTRAIL, CONFIG, lake, shared};

/// Samples that must be refused: an Athena query, and four that do not parse as published.
pub const REFUSED: &[&str] = &[
    "ConfigItemCountQuery",
    "list-all-errors-for-s3-events",
    "list-all-events-not-in-authorized-region",
    "list-attempted-s3-requests",
    "list-publicly-accessible-rds-instances",
];

/// Returns the statement with the samples' placeholders filled in.
pub fn substitute(sql: &str) -> String {
    let mut sql = sql.to_string();
    for (placeholder, value) in [
        ("config_event_data_store_ID", CONFIG),
        ("074365db-2079-4c18-ab83-e753897b74fe", ACTIVITY),
        ("181660c8-d56d-4ec1-aa32-c1713fb3bca3", CLOUDTRAIL),
        ("<$EDS_ID>", CLOUDTRAIL),
        ("$EDS_ID", CLOUDTRAIL),
        ("<EDS ID>", CLOUDTRAIL),
        ("<event_data_store_id>", CLOUDTRAIL),
        ("<Event data store Id>", CLOUDTRAIL),
        ("<event data store id>", ACTIVITY),
        ("event_data_store_ID", CLOUDTRAIL),
        ("<$EVENT_ID>", "'3d0dc5f0-8a2e-4d5c-9c1a-0123456789ab'"),
        ("$EVENT_ID", "'3d0dc5f0-8a2e-4d5c-9c1a-0123456789ab'"),
        ("${date_filter}", "2017-06-01 00:00:00"),
    ] {
        sql = sql.replace(placeholder, value);
    }
    sql
}

pub async fn run(sql: &str, stores: &[StoreSource]) -> Result<Vec<RecordBatch>, QueryError> {
    let prepared = prepare(sql, |written| {
        let id = written.rsplit('/').next().unwrap_or(written).to_ascii_lowercase();
        if stores.iter().any(|store| store.id == id) {
            Ok(id)
        } else {
            Err(QueryError::InvalidStatement(format!(
                "{written} is not an event data store of this account"
            )))
        }
    })?;
    let planned = plan(&prepared, stores, Utc::now(), &Default::default()).await?;
    let frame = planned.context.execute_logical_plan(planned.plan).await?;
    Ok(frame.collect().await?)
}

#[tokio::test]
async fn every_sample_finishes_or_is_refused_as_lake_refuses_it() {
    let lake = lake().await;
    let folder = shared().join("queries/lake-samples");
    let mut names: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    let (mut finished, mut refused, mut problems) = (0, 0, Vec::new());
    for name in &names {
        let sql = substitute(&std::fs::read_to_string(folder.join(name)).unwrap());
        let must_refuse = REFUSED.iter().any(|r| name.contains(r));
        match (run(&sql, &lake.stores).await, must_refuse) {
            (Ok(_), false) => finished += 1,
            (Err(QueryError::InvalidStatement(_)), true) => refused += 1,
            (Ok(_), true) => problems.push(format!("{name}: finished, but must be refused")),
            (Err(error), _) => problems.push(format!("{name}: {error}")),
        }
    }
    println!(
        "{finished} of {} samples finished, {refused} refused as they must be",
        names.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(lake.visible_events > 10_000);
}
