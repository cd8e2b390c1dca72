//! Arrow columns built a row at a time from JSON, for the types the event schemas use (text,
//! boolean, UTC timestamp, `map<string,string>`, struct, list):
//! - a [`Shape`] is a schema field made ready for JSON: struct members are found by name
//!   case-insensitively through a table built once;
//! - [`cell`] reads a JSON value (left as text) into a [`Cell`] of the field's type, borrowing its
//!   strings, or says why it cannot ([`CellError`], with the path of the value);
//! - a [`ColumnBuilder`] appends cells and finishes as an Arrow array.
//!
//! A row is made cells first and appended after, so that a record that fails half way leaves the
//! builders untouched.
//!
//! The conversions, as `reference/cloudtrail-lake-semantics.md` says: text columns take strings as
//! they are and other values as their compact JSON text; booleans accept `true` / `false` and those
//! words as strings; timestamps accept the forms [`parse_timestamp`] reads; objects of
//! `map<string,string>` columns keep their top level, strings as they are, other values as compact
//! JSON text, `null` as a NULL value; a `null` value is a NULL of any type.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, ListArray, MapArray, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, FieldRef, Fields};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::value::RawValue;

use super::json::{Kind, Members, Text, compact};

/// Member names longer than this match no field (the schemas' longest name is far shorter).
const LONGEST_NAME: usize = 64;

/// A schema field made ready for reading JSON into it.
#[derive(Debug)]
pub enum Shape {
    /// A string.
    Text,
    /// A boolean.
    Boolean,
    /// A timestamp in microseconds, UTC.
    Timestamp,
    /// A `map<string,string>`, with its entries field.
    Map(FieldRef),
    /// A struct, with its fields' shapes.
    Struct(StructShape),
    /// A list, with its item field and the item's shape.
    List(FieldRef, Box<Shape>),
}

/// The fields of a struct (or of a whole row), with a lookup of members by lowercase name.
#[derive(Debug)]
pub struct StructShape {
    /// The fields, in order.
    pub fields: Fields,
    /// The shape of each field.
    pub children: Vec<Shape>,
    index: HashMap<Box<[u8]>, usize, foldhash::fast::FixedState>,
}

impl StructShape {
    /// Returns the shape of a struct with the given fields (lowercase names, as the schemas have).
    pub fn new(fields: Fields) -> Self {
        let children = fields.iter().map(|field| Shape::of(field)).collect();
        let index = fields
            .iter()
            .enumerate()
            .map(|(position, field)| {
                (
                    field.name().to_ascii_lowercase().into_bytes().into_boxed_slice(),
                    position,
                )
            })
            .collect();
        Self {
            fields,
            children,
            index,
        }
    }

    /// Returns the position of the field a member name matches, ignoring ASCII case.
    pub fn position(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        if name.len() > LONGEST_NAME {
            return None;
        }
        let mut lower = [0u8; LONGEST_NAME];
        for (to, from) in lower.iter_mut().zip(name) {
            *to = from.to_ascii_lowercase();
        }
        self.index.get(&lower[..name.len()]).copied()
    }

    /// Returns the values of an object's members by field position: the first member whose name
    /// matches a field, ignoring case, gives its value.
    pub fn slots<'a>(&self, members: &[(Cow<'a, str>, &'a RawValue)]) -> Vec<Option<&'a RawValue>> {
        let mut slots = vec![None; self.fields.len()];
        for (name, value) in members {
            if let Some(position) = self.position(name)
                && slots[position].is_none()
            {
                slots[position] = Some(*value);
            }
        }
        slots
    }
}

impl Shape {
    /// Returns the shape of a field of one of the event schemas.
    pub fn of(field: &Field) -> Shape {
        match field.data_type() {
            DataType::Utf8 => Shape::Text,
            DataType::Boolean => Shape::Boolean,
            DataType::Timestamp(..) => Shape::Timestamp,
            DataType::Map(entries, _) => Shape::Map(Arc::clone(entries)),
            DataType::Struct(fields) => Shape::Struct(StructShape::new(fields.clone())),
            DataType::List(item) => Shape::List(Arc::clone(item), Box::new(Shape::of(item))),
            other => unreachable!("the event schemas have no {other} column"),
        }
    }
}

/// One value of a row, of its field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// NULL.
    Null,
    /// A string.
    Text(Cow<'a, str>),
    /// A boolean.
    Boolean(bool),
    /// Microseconds since the epoch, UTC.
    Timestamp(i64),
    /// Entries in the object's order; a `None` value is NULL.
    Map(Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>),
    /// A value per field, in the fields' order.
    Struct(Vec<Cell<'a>>),
    /// The items, in order.
    List(Vec<Cell<'a>>),
}

/// Why a value could not be read into its field: `path` names the value (`useridentity.type`,
/// `resources[2].arn`), `problem` says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    /// Where the value is in the record.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

impl CellError {
    fn new(problem: String) -> Self {
        Self {
            path: String::new(),
            problem,
        }
    }

    /// Returns the error with `segment` (`name`, `.name` or `[n]`) put before its path.
    pub fn within(mut self, segment: &str) -> Self {
        self.path.insert_str(0, segment);
        self
    }
}

impl std::fmt::Display for CellError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}: {}", self.path, self.problem)
    }
}

/// Reads a JSON value into a cell of the given shape.
pub fn cell<'a>(value: &'a RawValue, shape: &Shape) -> Result<Cell<'a>, CellError> {
    let kind = Kind::of(value);
    if kind == Kind::Null {
        return Ok(Cell::Null);
    }
    let misfit = |expected: &str| CellError::new(format!("a JSON {} where {expected} belongs", kind.name()));
    match shape {
        Shape::Text => Ok(Cell::Text(text(value))),
        Shape::Boolean => boolean(value)
            .map(Cell::Boolean)
            .ok_or_else(|| CellError::new(format!("{} is not a boolean", compact(value)))),
        Shape::Timestamp => string(value)
            .as_deref()
            .and_then(parse_timestamp)
            .map(|time| Cell::Timestamp(time.timestamp_micros()))
            .ok_or_else(|| CellError::new(format!("{} is not a timestamp", compact(value)))),
        Shape::Map(_) => {
            let Members(members) = members(value).ok_or_else(|| misfit("an object"))?;
            let entries = members
                .into_iter()
                .map(|(key, value)| (key, (Kind::of(value) != Kind::Null).then(|| text(value))))
                .collect();
            Ok(Cell::Map(entries))
        }
        Shape::Struct(shape) => {
            let Members(members) = members(value).ok_or_else(|| misfit("an object"))?;
            struct_cell(&shape.slots(&members), shape).map(Cell::Struct)
        }
        Shape::List(_, item) => {
            let items: Vec<&RawValue> = serde_json::from_str(value.get()).map_err(|_| misfit("an array"))?;
            let mut cells = Vec::with_capacity(items.len());
            for (index, item_value) in items.into_iter().enumerate() {
                cells.push(cell(item_value, item).map_err(|error| error.within(&format!("[{}]", index + 1)))?);
            }
            Ok(Cell::List(cells))
        }
    }
}

/// Reads the values of a struct's fields (as [`StructShape::slots`] finds them) into cells.
pub fn struct_cell<'a>(slots: &[Option<&'a RawValue>], shape: &StructShape) -> Result<Vec<Cell<'a>>, CellError> {
    let mut cells = Vec::with_capacity(slots.len());
    for ((slot, child), field) in slots.iter().zip(&shape.children).zip(&shape.fields) {
        let value = match slot {
            None => Cell::Null,
            Some(value) => cell(value, child).map_err(|error| error.within(&format!(".{}", field.name())))?,
        };
        cells.push(value);
    }
    Ok(cells)
}

/// Returns an object's members, or `None` if the value is not an object.
pub fn members(value: &RawValue) -> Option<Members<'_>> {
    if Kind::of(value) != Kind::Object {
        return None;
    }
    serde_json::from_str(value.get()).ok()
}

/// Returns a string value's text, or `None` for any other value.
pub fn string(value: &RawValue) -> Option<Cow<'_, str>> {
    if Kind::of(value) != Kind::String {
        return None;
    }
    serde_json::from_str::<Text>(value.get()).ok().map(|Text(text)| text)
}

/// Returns a string as it is and any other value as compact JSON text.
fn text(value: &RawValue) -> Cow<'_, str> {
    string(value).unwrap_or_else(|| compact(value))
}

/// Returns a boolean, or the strings `true` / `false` in any case, as a boolean.
pub fn boolean(value: &RawValue) -> Option<bool> {
    match value.get() {
        "true" => Some(true),
        "false" => Some(false),
        _ => match string(value)?.as_ref() {
            word if word.eq_ignore_ascii_case("true") => Some(true),
            word if word.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        },
    }
}

/// Parses the `eventTime` forms real records carry: RFC 3339 with a zone, or a date and time
/// without one (taken as UTC) separated by `T` or a space, with up to nine fractional digits.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.fZ"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|time| time.and_utc())
}

/// Builds an Arrow column of one field from cells of that field's shape.
#[derive(Debug)]
pub enum ColumnBuilder {
    /// A string column.
    Text(StringBuilder),
    /// A boolean column.
    Boolean(BooleanBuilder),
    /// A timestamp column.
    Timestamp(TimestampMicrosecondBuilder),
    /// A `map<string,string>` column.
    Map {
        /// The map's entries field.
        entries: FieldRef,
        /// The keys of every entry so far.
        keys: StringBuilder,
        /// The values of every entry so far.
        values: StringBuilder,
        /// Where each row's entries start and end.
        offsets: Vec<i32>,
        /// Which rows are NULL.
        nulls: NullBufferBuilder,
    },
    /// A struct column.
    Struct {
        /// The struct's fields.
        fields: Fields,
        /// A builder per field.
        children: Vec<ColumnBuilder>,
        /// Which rows are NULL.
        nulls: NullBufferBuilder,
    },
    /// A list column.
    List {
        /// The item field.
        item: FieldRef,
        /// The builder of every item so far.
        values: Box<ColumnBuilder>,
        /// Where each row's items start and end.
        offsets: Vec<i32>,
        /// Which rows are NULL.
        nulls: NullBufferBuilder,
    },
}

impl ColumnBuilder {
    /// Returns an empty builder for a field of the given shape, with room for `rows` rows.
    pub fn new(shape: &Shape, rows: usize) -> Self {
        let offsets = || {
            let mut offsets = Vec::with_capacity(rows + 1);
            offsets.push(0);
            offsets
        };
        match shape {
            Shape::Text => ColumnBuilder::Text(StringBuilder::with_capacity(rows, rows * 16)),
            Shape::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(rows)),
            Shape::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"))
            }
            Shape::Map(entries) => ColumnBuilder::Map {
                entries: Arc::clone(entries),
                keys: StringBuilder::new(),
                values: StringBuilder::new(),
                offsets: offsets(),
                nulls: NullBufferBuilder::new(rows),
            },
            Shape::Struct(shape) => ColumnBuilder::Struct {
                fields: shape.fields.clone(),
                children: shape
                    .children
                    .iter()
                    .map(|child| ColumnBuilder::new(child, rows))
                    .collect(),
                nulls: NullBufferBuilder::new(rows),
            },
            Shape::List(item, item_shape) => ColumnBuilder::List {
                item: Arc::clone(item),
                values: Box::new(ColumnBuilder::new(item_shape, rows)),
                offsets: offsets(),
                nulls: NullBufferBuilder::new(rows),
            },
        }
    }

    /// Appends a cell made for this builder's shape.
    pub fn append(&mut self, cell: &Cell<'_>) {
        if matches!(cell, Cell::Null) {
            return self.append_null();
        }
        match (self, cell) {
            (ColumnBuilder::Text(builder), Cell::Text(text)) => builder.append_value(text),
            (ColumnBuilder::Boolean(builder), Cell::Boolean(flag)) => builder.append_value(*flag),
            (ColumnBuilder::Timestamp(builder), Cell::Timestamp(micros)) => builder.append_value(*micros),
            (
                ColumnBuilder::Map {
                    keys,
                    values,
                    offsets,
                    nulls,
                    ..
                },
                Cell::Map(entries),
            ) => {
                for (key, value) in entries {
                    keys.append_value(key);
                    values.append_option(value.as_deref());
                }
                offsets.push(offsets.last().copied().unwrap_or_default() + length(entries.len()));
                nulls.append_non_null();
            }
            (ColumnBuilder::Struct { children, nulls, .. }, Cell::Struct(cells)) => {
                for (child, cell) in children.iter_mut().zip(cells) {
                    child.append(cell);
                }
                nulls.append_non_null();
            }
            (
                ColumnBuilder::List {
                    values, offsets, nulls, ..
                },
                Cell::List(cells),
            ) => {
                for cell in cells {
                    values.append(cell);
                }
                offsets.push(offsets.last().copied().unwrap_or_default() + length(cells.len()));
                nulls.append_non_null();
            }
            (builder, cell) => unreachable!("a {cell:?} cell was made for another shape than {builder:?}"),
        }
    }

    /// Appends a NULL.
    pub fn append_null(&mut self) {
        match self {
            ColumnBuilder::Text(builder) => builder.append_null(),
            ColumnBuilder::Boolean(builder) => builder.append_null(),
            ColumnBuilder::Timestamp(builder) => builder.append_null(),
            ColumnBuilder::Map { offsets, nulls, .. } | ColumnBuilder::List { offsets, nulls, .. } => {
                offsets.push(offsets.last().copied().unwrap_or_default());
                nulls.append_null();
            }
            ColumnBuilder::Struct { children, nulls, .. } => {
                children.iter_mut().for_each(ColumnBuilder::append_null);
                nulls.append_null();
            }
        }
    }

    /// Returns the column built.
    pub fn finish(self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(mut builder) => Arc::new(builder.finish()),
            ColumnBuilder::Boolean(mut builder) => Arc::new(builder.finish()),
            ColumnBuilder::Timestamp(mut builder) => Arc::new(builder.finish()),
            ColumnBuilder::Map {
                entries,
                mut keys,
                mut values,
                offsets,
                mut nulls,
            } => {
                let DataType::Struct(fields) = entries.data_type() else {
                    unreachable!("map entries are structs")
                };
                let entry_columns: Vec<ArrayRef> = vec![Arc::new(keys.finish()), Arc::new(values.finish())];
                let entry_array = StructArray::new(fields.clone(), entry_columns, None);
                Arc::new(MapArray::new(
                    entries,
                    offset_buffer(offsets),
                    entry_array,
                    nulls.finish(),
                    false,
                ))
            }
            ColumnBuilder::Struct {
                fields,
                children,
                mut nulls,
            } => {
                let columns = children.into_iter().map(ColumnBuilder::finish).collect();
                Arc::new(StructArray::new(fields, columns, nulls.finish()))
            }
            ColumnBuilder::List {
                item,
                values,
                offsets,
                mut nulls,
            } => Arc::new(ListArray::new(
                item,
                offset_buffer(offsets),
                values.finish(),
                nulls.finish(),
            )),
        }
    }
}

fn length(count: usize) -> i32 {
    i32::try_from(count).expect("a row holds fewer than 2^31 entries")
}

fn offset_buffer(offsets: Vec<i32>) -> OffsetBuffer<i32> {
    OffsetBuffer::new(ScalarBuffer::from(offsets))
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;

    use super::*;
    use crate::schema::string_map_type;

    fn raw(text: &str) -> Box<RawValue> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn maps_keep_the_top_level_as_text() {
        let shape = Shape::of(&Field::new("m", string_map_type(), true));
        let value = raw(r#"{"bucketName": "b", "n": 5, "on": true, "rules": {"a": [1, 2]}, "none": null}"#);
        let Cell::Map(entries) = cell(&value, &shape).unwrap() else {
            panic!()
        };
        let entries: Vec<_> = entries.iter().map(|(k, v)| (k.as_ref(), v.as_deref())).collect();
        assert_eq!(
            entries,
            [
                ("bucketName", Some("b")),
                ("n", Some("5")),
                ("on", Some("true")),
                ("rules", Some(r#"{"a":[1,2]}"#)),
                ("none", None)
            ]
        );
    }

    #[test]
    fn builders_make_the_schema_types() {
        let item = Field::new(
            "element",
            DataType::Struct(Fields::from(vec![Field::new("arn", DataType::Utf8, true)])),
            true,
        );
        let fields = Fields::from(vec![
            Field::new("m", string_map_type(), true),
            Field::new("l", DataType::List(Arc::new(item)), true),
            Field::new("t", crate::schema::timestamp_type(), true),
        ]);
        let shape = StructShape::new(fields.clone());
        let mut builders: Vec<_> = shape
            .children
            .iter()
            .map(|child| ColumnBuilder::new(child, 2))
            .collect();
        for text in [
            r#"{"M": {"a": 1}, "L": [{"ARN": "x"}, null], "t": "2024-01-02T03:04:05Z"}"#,
            r#"{"m": null}"#,
        ] {
            let Members(members) = serde_json::from_str(text).unwrap();
            let cells = struct_cell(&shape.slots(&members), &shape).unwrap();
            builders
                .iter_mut()
                .zip(&cells)
                .for_each(|(builder, cell)| builder.append(cell));
        }
        let columns: Vec<_> = builders.into_iter().map(ColumnBuilder::finish).collect();
        for (column, field) in columns.iter().zip(&fields) {
            assert_eq!(column.data_type(), field.data_type());
            assert_eq!(column.len(), 2);
            assert!(column.is_null(1));
        }
        let list = columns[1].as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(list.value(0).len(), 2);
        assert!(list.value(0).is_null(1));
    }

    #[test]
    fn errors_name_the_value() {
        let item = Field::new(
            "element",
            DataType::Struct(Fields::from(vec![Field::new("flag", DataType::Boolean, true)])),
            true,
        );
        let shape = Shape::of(&Field::new("l", DataType::List(Arc::new(item)), true));
        let error = cell(&raw(r#"[{"flag": "TRUE"}, {"flag": "maybe"}]"#), &shape)
            .unwrap_err()
            .within("l");
        assert_eq!(error.to_string(), r#"l[2].flag: "maybe" is not a boolean"#);
        let error = cell(&raw(r#""root""#), &shape).unwrap_err().within("l");
        assert_eq!(error.to_string(), "l: a JSON string where an array belongs");
    }
}
