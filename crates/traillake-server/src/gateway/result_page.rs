//! GetQueryResults' answer on the JSON wire, written straight from the page's Arrow rows: the
//! members of the response shape as `encode` writes them, and `QueryResultRows` as a list of rows,
//! each a list of one-entry objects `{"key": "value"}` (NULLs left out). A page of 1,000 rows of
//! `SELECT *` is about 1.7 MB of JSON; building the response shape first cost a map and three
//! allocations per value.

use serde::Serialize;
use serde::ser::{Error as _, SerializeMap as _, SerializeSeq as _, Serializer};
use traillake_api::ApiError;

use traillake_query::ResultPage;

/// Returns the JSON body of GetQueryResults' answer.
pub(super) fn encode_result_page(page: &ResultPage) -> Result<Vec<u8>, ApiError> {
    let Ok(serde_json::Value::Object(mut head)) = serde_json::to_value(page.head()) else {
        unreachable!("a response shape is a JSON object")
    };
    head.remove("QueryResultRows");
    serde_json::to_vec(&Body { head, rows: Rows(page) }).map_err(|error| {
        tracing::error!(%error, "could not write a page of results");
        ApiError::internal()
    })
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(flatten)]
    head: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "QueryResultRows")]
    rows: Rows<'a>,
}

struct Rows<'a>(&'a ResultPage);

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let page = self.0;
        let mut rows = serializer.serialize_seq(Some(page.len()))?;
        for (batch, row) in page.rows() {
            rows.serialize_element(&Row { page, batch, row })?;
        }
        rows.end()
    }
}

struct Row<'a> {
    page: &'a ResultPage,
    batch: &'a datafusion::arrow::array::RecordBatch,
    row: usize,
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut columns = serializer.serialize_seq(None)?;
        for (column, key) in self.batch.columns().iter().zip(&self.page.keys) {
            let value = self.page.value(column, self.row).map_err(S::Error::custom)?;
            if let Some(value) = value {
                columns.serialize_element(&Column(key, &value))?;
            }
        }
        columns.end()
    }
}

/// One value of a row: `{"key": "value"}`.
struct Column<'a>(&'a str, &'a str);

impl Serialize for Column<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entry = serializer.serialize_map(Some(1))?;
        entry.serialize_entry(self.0, self.1)?;
        entry.end()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use traillake_api::shapes::QueryStatus;
    use traillake_api::wire::encode;
    use traillake_query::{QueryRecord, ResultRows};

    use super::*;

    /// The page written straight from Arrow is the JSON of the response shape, rows and all, for a
    /// page that starts inside one batch and ends inside another, with NULLs left out.
    #[test]
    fn writes_what_the_response_shape_encodes_to() {
        let batch = |names: Vec<Option<&str>>, counts: Vec<i64>| {
            let columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(names)), Arc::new(Int64Array::from(counts))];
            RecordBatch::try_from_iter([("eventName", Arc::clone(&columns[0])), ("n", Arc::clone(&columns[1]))])
                .unwrap()
        };
        let first = batch(vec![Some("A"), Some("B \"quoted\""), None], vec![1, 2, 3]);
        let rows = ResultRows {
            schema: first.schema(),
            batches: vec![first, batch(vec![Some("D"), Some("E")], vec![4, 5])],
        };
        let record = QueryRecord {
            id: "q".into(),
            account_id: "123456789012".into(),
            statement: "SELECT eventName, n FROM store".into(),
            store_ids: vec!["store".into()],
            status: QueryStatus::Finished,
            error_message: None,
            created: chrono::Utc::now(),
            started: None,
            ended: None,
            column_keys: vec!["eventName".into(), "n".into()],
            scan: Default::default(),
            result_rows: 5,
            delivery_s3_uri: None,
            delivery_status: None,
            query_alias: None,
            refresh_id: None,
            prompt: None,
        };
        let token = ResultPage::new(record.clone(), Arc::new(rows.clone()), None, 1)
            .unwrap()
            .next_token;
        let page = ResultPage::new(record, Arc::new(rows), token.as_deref(), 3).unwrap();
        assert_eq!(page.len(), 3);
        let written: serde_json::Value = serde_json::from_slice(&encode_result_page(&page).unwrap()).unwrap();
        let shaped: serde_json::Value = serde_json::from_slice(&encode(&page.into_response().unwrap())).unwrap();
        assert_eq!(written, shaped);
        let expected = serde_json::json!([[{"eventName": "B \"quoted\""}, {"n": "2"}], [{"n": "3"}], [{"eventName": "D"}, {"n": "4"}]]);
        assert_eq!(written["QueryResultRows"], expected);
    }
}
