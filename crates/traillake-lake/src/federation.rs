//! The metadata file that publishes a federated store's table to other engines:
//! `federation/aws_cloudtrail/<store-id>.json` under the root, written by EnableFederation and
//! deleted by DisableFederation. It says where the store's Delta table is, its format, its
//! partition column and its columns as SQL sees them (with Glue's type names), and what a reader
//! of the table sees that a traillake query does not. DuckDB (`delta_scan`), delta-rs and Polars
//! read the table at `location` directly; the Delta Sharing endpoint serves the same table.

use datafusion::arrow::datatypes::DataType;
use object_store::ObjectStoreExt as _;
use object_store::PutPayload;
use object_store::path::Path;
use serde_json::{Value, json};
use traillake_api::federation::{DATABASE, SCHEMA, SHARE};
use traillake_api::selectors::StoreKind;

use crate::Result;
use crate::catalog::EventDataStoreRecord;
use crate::events::schema::{EVENT_DATE, event_schema};
use crate::root::LakeRoot;
use crate::table::{EventTable, table_folder};

/// The folder of the metadata files, relative to the root.
pub const FOLDER: &str = "federation/aws_cloudtrail";

/// What an engine reading the table itself sees that a traillake query of the store does not.
pub const READER_NOTES: [&str; 4] = [
    "Events older than the store's retention period are still in the table until maintenance drops their whole day; traillake queries never return them.",
    "Live events (PutAuditEvents, recorded calls, followed trail buckets) are first kept in the store's write-ahead log and reach the table at the next maintenance flush (every --maintenance-interval, 10 minutes by default); until then only traillake queries see them.",
    "The eventjson column holds the stored form of each record (what no other column holds); traillake queries rebuild the whole record from it, and compute eventjsonchecksum, which the table does not have.",
    "The eventdate column (the UTC day of eventtime) partitions the table; traillake queries do not show it.",
];

/// Returns the path of a store's metadata file, relative to the root.
pub fn metadata_path(store_id: &str) -> Path {
    Path::from(format!("{FOLDER}/{store_id}.json"))
}

/// Returns the columns of a store of `kind` as SQL sees them, each `{"name": ..., "type": ...}`
/// with Glue's type names.
pub fn columns(kind: StoreKind) -> Vec<Value> {
    event_schema(kind)
        .fields()
        .iter()
        .map(|field| json!({ "name": field.name(), "type": glue_type(field.data_type()) }))
        .collect()
}

/// Returns the metadata file of a store federated as `arn`.
pub fn metadata(root: &LakeRoot, store: &EventDataStoreRecord, arn: &str) -> Value {
    let mut columns = columns(store.kind);
    columns.push(json!({ "name": EVENT_DATE, "type": "string" }));
    json!({
        "database": DATABASE,
        "table": store.id,
        "eventDataStoreArn": arn,
        "federationRoleArn": store.federation_role_arn,
        "location": root.url(&table_folder(&store.id)).as_str().trim_end_matches('/'),
        "format": "delta",
        "partitionColumns": [EVENT_DATE],
        "columns": columns,
        "deltaSharing": { "share": SHARE, "schema": SCHEMA, "table": store.id },
        "readerNotes": READER_NOTES,
    })
}

/// Publishes a store: creates its table if nothing was written to it yet (so that readers find
/// an empty table rather than none), then writes its metadata file.
pub async fn publish(root: &LakeRoot, store: &EventDataStoreRecord, arn: &str) -> Result<()> {
    EventTable::new(root, &store.id, store.kind).create_if_missing().await?;
    let bytes = serde_json::to_vec_pretty(&metadata(root, store, arn)).expect("the metadata serializes");
    root.store()
        .put(&metadata_path(&store.id), PutPayload::from(bytes))
        .await?;
    Ok(())
}

/// Withdraws a store's metadata file; a file already gone is not an error.
pub async fn withdraw(root: &LakeRoot, store_id: &str) -> Result<()> {
    match root.store().delete(&metadata_path(store_id)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Returns the type of a column in Glue's (Hive's) notation, as Athena shows a federated table's.
fn glue_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float64 => "double".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::List(item) => format!("array<{}>", glue_type(item.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => format!(
                "map<{},{}>",
                glue_type(fields[0].data_type()),
                glue_type(fields[1].data_type())
            ),
            other => format!("map<{}>", glue_type(other)),
        },
        DataType::Struct(fields) => {
            let members: Vec<String> = fields
                .iter()
                .map(|field| format!("{}:{}", field.name(), glue_type(field.data_type())))
                .collect();
            format!("struct<{}>", members.join(","))
        }
        other => other.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::Field;

    use super::*;
    use crate::events::schema::string_map_type;

    #[test]
    fn names_types_as_glue_does() {
        assert_eq!(glue_type(&string_map_type()), "map<string,string>");
        let user = DataType::Struct(
            vec![
                Field::new("type", DataType::Utf8, true),
                Field::new("mfa", DataType::Boolean, true),
            ]
            .into(),
        );
        assert_eq!(glue_type(&user), "struct<type:string,mfa:boolean>");
        let list = DataType::List(Arc::new(Field::new("item", user, true)));
        assert_eq!(glue_type(&list), "array<struct<type:string,mfa:boolean>>");
    }
}
