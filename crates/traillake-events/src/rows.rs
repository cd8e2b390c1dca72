//! Rows on their way into a store's table: an [`EventRow`] is an event made ready (a cell per
//! column of its store kind's schema), and [`EventRows`] gathers rows as the Arrow columns of the
//! table schema, the partition column [`EVENT_DATE`](super::schema::EVENT_DATE) computed from the
//! event time.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::{RecordBatch, builder::StringBuilder};
use chrono::{DateTime, Datelike, Utc};
use traillake_api::selectors::StoreKind;

use super::columns::{Cell, ColumnBuilder, StructShape};
use super::schema::{EVENT_JSON, event_schema, table_schema};

/// An event made ready for the table: a cell per column of its store kind's event schema.
#[derive(Debug, Clone)]
pub struct EventRow<'a> {
    /// The event time, in UTC.
    pub event_time: DateTime<Utc>,
    /// The cells, in the order of the schema's columns.
    pub cells: Vec<Cell<'a>>,
}

/// Gathers rows as Arrow columns of a store kind's table schema.
#[derive(Debug)]
pub struct EventRows {
    kind: StoreKind,
    columns: Vec<ColumnBuilder>,
    event_dates: StringBuilder,
    rows: usize,
}

impl EventRows {
    /// Returns an empty set of rows of `kind` with room for `rows` rows whose `eventjson` texts
    /// take `text_bytes` bytes in all.
    pub fn new(kind: StoreKind, rows: usize, text_bytes: usize) -> Self {
        let shape = StructShape::new(event_schema(kind).fields().clone());
        let mut builders: Vec<_> = shape
            .children
            .iter()
            .map(|child| ColumnBuilder::new(child, rows))
            .collect();
        if let Some(event_json) = shape.position(EVENT_JSON) {
            builders[event_json] = ColumnBuilder::Text(StringBuilder::with_capacity(rows, text_bytes));
        }
        Self {
            kind,
            columns: builders,
            event_dates: StringBuilder::with_capacity(rows, rows * 10),
            rows: 0,
        }
    }

    /// Appends a row made for this store kind.
    pub fn append(&mut self, row: &EventRow<'_>) {
        for (column, cell) in self.columns.iter_mut().zip(&row.cells) {
            column.append(cell);
        }
        let date = row.event_time.date_naive();
        write!(
            self.event_dates,
            "{:04}-{:02}-{:02}",
            date.year(),
            date.month(),
            date.day()
        )
        .expect("writes to memory");
        self.event_dates.append_value("");
        self.rows += 1;
    }

    /// Returns the number of rows appended.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Returns true if no row was appended.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Returns the rows as a batch of the table schema.
    pub fn finish(mut self) -> RecordBatch {
        let mut arrays: Vec<_> = self.columns.into_iter().map(ColumnBuilder::finish).collect();
        arrays.push(Arc::new(self.event_dates.finish()));
        RecordBatch::try_new(table_schema(self.kind), arrays).expect("the builders follow the table schema")
    }
}

/// Returns one row as Arrow's JSON writer renders its batch (NULLs left out), for the tests of the
/// record readers.
#[cfg(test)]
pub(crate) fn row_json(
    kind: StoreKind,
    row: &EventRow<'_>,
    text_bytes: usize,
) -> serde_json::Map<String, serde_json::Value> {
    let mut rows = EventRows::new(kind, 1, text_bytes);
    rows.append(row);
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    writer.write(&rows.finish()).unwrap();
    writer.finish().unwrap();
    let serde_json::Value::Array(mut rows) = serde_json::from_slice(&writer.into_inner()).unwrap() else {
        panic!()
    };
    let Some(serde_json::Value::Object(row)) = rows.pop() else {
        panic!()
    };
    row
}
