//! The web console under `/console`: its files (`traillake_console`), and what the page reads
//! from the server before the caller signs in: the Region its requests are signed for
//! (`config.json`) and the columns of each kind of store (`schema.json`). Nothing here reads or
//! changes a store: every call the page makes is a signed API call like any SDK's.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::routing::get;
use traillake_api::selectors::StoreKind;
use traillake_lake::events::schema::event_schema;

use super::GatewayState;

/// Returns the console's routes.
pub(super) fn routes() -> Router<Arc<GatewayState>> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(|| async { file("") }))
        .route("/console/config.json", get(config))
        .route("/console/schema.json", get(|| async { schema() }))
        .route(
            "/console/{*path}",
            get(|Path(path): Path<String>| async move { file(&path) }),
        )
}

fn file(path: &str) -> Response {
    match traillake_console::asset(path) {
        Some(asset) => Response::builder()
            .header(header::CONTENT_TYPE, asset.content_type)
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from(asset.bytes))
            .expect("a console response builds"),
        None => (StatusCode::NOT_FOUND, "no such file of the console").into_response(),
    }
}

async fn config(State(state): State<Arc<GatewayState>>) -> Response {
    json(&serde_json::json!({ "region": state.settings.region }))
}

/// The columns queries see in each kind of store, with Lake's type names.
fn schema() -> Response {
    let kinds = [
        ("CloudTrail", StoreKind::CloudTrail),
        ("Insight", StoreKind::Insight),
        ("ConfigurationItem", StoreKind::ConfigurationItem),
        ("Evidence", StoreKind::Evidence),
        ("ActivityAuditLog", StoreKind::ActivityAuditLog),
    ];
    let mut schema = serde_json::Map::new();
    for (name, kind) in kinds {
        let columns: Vec<serde_json::Value> = event_schema(kind)
            .fields()
            .iter()
            .map(|field| serde_json::json!({ "name": field.name(), "type": type_name(field.data_type()) }))
            .collect();
        schema.insert(name.to_string(), serde_json::Value::Array(columns));
    }
    json(&serde_json::Value::Object(schema))
}

/// Returns a column type as Lake (Trino) names it.
fn type_name(data_type: &datafusion::arrow::datatypes::DataType) -> String {
    use datafusion::arrow::datatypes::DataType;
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".to_string(),
        DataType::Boolean => "boolean".to_string(),
        DataType::Int32 => "integer".to_string(),
        DataType::Int64 => "bigint".to_string(),
        DataType::Float64 => "double".to_string(),
        DataType::Timestamp(..) => "timestamp".to_string(),
        DataType::Struct(fields) => format!(
            "row({})",
            fields
                .iter()
                .map(|field| format!("{} {}", field.name(), type_name(field.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::List(item) | DataType::LargeList(item) => format!("array({})", type_name(item.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => format!(
                "map({}, {})",
                type_name(fields[0].data_type()),
                type_name(fields[1].data_type())
            ),
            other => format!("map({other})"),
        },
        other => other.to_string().to_ascii_lowercase(),
    }
}

fn json(value: &serde_json::Value) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(value.to_string()))
        .expect("a console response builds")
}
