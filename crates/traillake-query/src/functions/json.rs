//! Trino's JSON functions over JSON kept as text: `json_parse`, `json_format`, `json_extract`,
//! `json_extract_scalar`, `json_array_get`, `json_array_length`, `json_array_contains`, `json_size`,
//! and the casts the dialect rewrites to functions: `json_to_varchar` (`CAST(json AS VARCHAR)`),
//! `json_to_map` (`CAST(json AS MAP(VARCHAR, JSON))`), `json_to_array` (`CAST(json AS ARRAY(JSON))`).
//!
//! JSON paths are Trino's simple form: `$`, `.name`, `["name"]` or `['name']`, `[index]`, `[*]`
//! is not supported; a name after `.` runs to the next `.` or `[` (so `$.AWS:ComplianceItem.x`
//! works). Text that is not JSON gives NULL, as in Trino; a malformed path is an error.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Builder, ListBuilder, MapBuilder, MapFieldNames, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use serde_json::Value;

use super::{string_args, text_udf};

/// Returns the JSON functions.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        text_udf("json_parse", 1, |args| Ok(parse(args[0]).map(|v| v.to_string()))),
        text_udf("json_format", 1, |args| Ok(parse(args[0]).map(|v| v.to_string()))),
        text_udf("json_extract", 2, |args| {
            Ok(extract(args[0], args[1])?.map(|v| v.to_string()))
        }),
        text_udf("json_extract_scalar", 2, |args| {
            Ok(extract(args[0], args[1])?.and_then(|v| scalar_text(&v)))
        }),
        text_udf("json_to_varchar", 1, |args| {
            Ok(parse(args[0]).and_then(|v| scalar_text(&v)))
        }),
        array_get(),
        length("json_array_length", |value| {
            value.as_array().map(|items| items.len() as i64)
        }),
        length("json_size", |value| match value {
            Value::Array(items) => Some(items.len() as i64),
            Value::Object(members) => Some(members.len() as i64),
            _ => Some(0),
        }),
        to_map(),
        to_array(),
    ]
}

/// Returns the value of JSON text, or `None` when it is not JSON.
pub fn parse(text: Option<&str>) -> Option<Value> {
    serde_json::from_str(text?).ok()
}

/// Returns a JSON scalar as Trino's `CAST(json AS VARCHAR)` does; objects, arrays and null give NULL.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Returns the value at `path` in the JSON text, `None` when the text is not JSON or nothing is there.
fn extract(text: Option<&str>, path: Option<&str>) -> Result<Option<Value>> {
    let (Some(value), Some(path)) = (parse(text), path) else {
        return Ok(None);
    };
    let mut current = &value;
    for step in path_steps(path)? {
        let next = match (&step, current) {
            (Step::Name(name), Value::Object(members)) => members.get(name),
            (Step::Index(index), Value::Array(items)) => items.get(*index),
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => return Ok(None),
        }
    }
    Ok(Some(current.clone()))
}

#[derive(Debug, PartialEq)]
enum Step {
    Name(String),
    Index(usize),
}

fn path_steps(path: &str) -> Result<Vec<Step>> {
    let invalid = || DataFusionError::Execution(format!("invalid JSON path '{path}'"));
    let rest = path.trim().strip_prefix('$').ok_or_else(invalid)?;
    let mut steps = Vec::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            '.' => {
                let mut end = rest.len();
                while let Some(&(i, next)) = chars.peek() {
                    if next == '.' || next == '[' {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                let name = &rest[start + 1..end];
                if name.is_empty() {
                    return Err(invalid());
                }
                steps.push(Step::Name(name.to_string()));
            }
            '[' => {
                let close = rest[start..].find(']').ok_or_else(invalid)? + start;
                let inside = rest[start + 1..close].trim();
                let quoted = inside.len() >= 2
                    && ((inside.starts_with('"') && inside.ends_with('"'))
                        || (inside.starts_with('\'') && inside.ends_with('\'')));
                if quoted {
                    steps.push(Step::Name(inside[1..inside.len() - 1].to_string()));
                } else {
                    steps.push(Step::Index(inside.parse().map_err(|_| invalid())?));
                }
                while chars.peek().is_some_and(|&(i, _)| i <= close) {
                    chars.next();
                }
            }
            _ => return Err(invalid()),
        }
    }
    Ok(steps)
}

/// `json_array_get(json, index)`: the element at a 0-based index, negative from the end.
fn array_get() -> ScalarUDF {
    create_udf(
        "json_array_get",
        vec![DataType::Utf8, DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let (rows, arrays) = string_args(args)?;
            let mut out = StringBuilder::new();
            for row in 0..rows {
                let items = parse(arrays[0].get(row)).and_then(|v| v.as_array().cloned());
                let index = arrays[1].get(row).and_then(|text| text.parse::<i64>().ok());
                let item = match (items, index) {
                    (Some(items), Some(index)) => {
                        let position = if index < 0 { items.len() as i64 + index } else { index };
                        usize::try_from(position).ok().and_then(|p| items.get(p).cloned())
                    }
                    _ => None,
                };
                out.append_option(item.map(|v| v.to_string()));
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
        }),
    )
}

fn length(name: &str, measure: fn(&Value) -> Option<i64>) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let (rows, arrays) = string_args(args)?;
            let mut out = Int64Builder::with_capacity(rows);
            for row in 0..rows {
                out.append_option(parse(arrays[0].get(row)).as_ref().and_then(measure));
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
        }),
    )
}

/// `CAST(json AS MAP(VARCHAR, JSON))`: an object's members, values as JSON text.
fn to_map() -> ScalarUDF {
    let entries = Fields::from(vec![
        Field::new("keys", DataType::Utf8, false),
        Field::new("values", DataType::Utf8, true),
    ]);
    let map_type = DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false);
    create_udf(
        "json_to_map",
        vec![DataType::Utf8],
        map_type,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let (rows, arrays) = string_args(args)?;
            let names = MapFieldNames {
                entry: "entries".into(),
                key: "keys".into(),
                value: "values".into(),
            };
            let mut out = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
            for row in 0..rows {
                match parse(arrays[0].get(row)) {
                    Some(Value::Object(members)) => {
                        for (key, value) in members {
                            out.keys().append_value(key);
                            out.values().append_value(value.to_string());
                        }
                        out.append(true)?;
                    }
                    Some(Value::Null) | None => out.append(false)?,
                    Some(other) => return exec_err!("cannot cast JSON {other} to MAP(VARCHAR, JSON)"),
                }
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
        }),
    )
}

/// `CAST(json AS ARRAY(JSON))`: an array's elements as JSON text.
fn to_array() -> ScalarUDF {
    create_udf(
        "json_to_array",
        vec![DataType::Utf8],
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let (rows, arrays) = string_args(args)?;
            let mut out = ListBuilder::new(StringBuilder::new());
            for row in 0..rows {
                match parse(arrays[0].get(row)) {
                    Some(Value::Array(items)) => {
                        for item in items {
                            out.values().append_value(item.to_string());
                        }
                        out.append(true);
                    }
                    Some(Value::Null) | None => out.append(false),
                    Some(other) => return exec_err!("cannot cast JSON {other} to ARRAY(JSON)"),
                }
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_by_trino_paths() {
        let doc = r#"{"a":{"b":[1,{"c":"x"}]},"AWS:Item":{"Content":{"k":true}},"d e":2}"#;
        let get = |path| extract(Some(doc), Some(path)).unwrap().map(|v| v.to_string());
        assert_eq!(get("$.a.b[1].c").as_deref(), Some("\"x\""));
        assert_eq!(get("$.AWS:Item.Content.k").as_deref(), Some("true"));
        assert_eq!(get("$[\"d e\"]").as_deref(), Some("2"));
        assert_eq!(get("$.a.missing"), None);
        assert_eq!(
            get("$").as_deref(),
            Some(serde_json::from_str::<Value>(doc).unwrap().to_string().as_str())
        );
        assert!(extract(Some(doc), Some("a.b")).is_err());
        assert_eq!(extract(Some("not json"), Some("$.a")).unwrap(), None);
        assert_eq!(scalar_text(&Value::String("x".into())).as_deref(), Some("x"));
    }
}
