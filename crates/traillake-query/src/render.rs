//! Result values as CloudTrail Lake renders them in GetQueryResults (semantics §8.2), every value
//! a string:
//! - strings as they are; booleans `true` / `false`; integers in decimal;
//! - doubles in Trino's (Java's) text: `1.5`, `2.0`, `2.0E10`, `1.0E-4`;
//! - timestamps in UTC as `YYYY-MM-DD HH:MM:SS.fff`; dates as `YYYY-MM-DD`;
//! - maps as `{k1=v1, k2=v2}`, structs as `{field1=v1, field2=v2}`, arrays as `[v1, v2]`, with
//!   `null` for NULLs inside them;
//! - a NULL column value has no text: its entry is left out of the row.

use std::fmt::Write as _;

use chrono::DateTime;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// Returns the text of one value of a column, `None` for NULL.
pub fn render(array: &ArrayRef, row: usize) -> Result<Option<String>, ArrowError> {
    if array.is_null(row) {
        return Ok(None);
    }
    let mut out = String::new();
    write_value(array.as_ref(), row, &mut out)?;
    Ok(Some(out))
}

fn write_value(array: &dyn Array, row: usize, out: &mut String) -> Result<(), ArrowError> {
    if array.is_null(row) {
        out.push_str("null");
        return Ok(());
    }
    match array.data_type() {
        DataType::Utf8 => out.push_str(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => out.push_str(array.as_string::<i64>().value(row)),
        DataType::Utf8View => out.push_str(array.as_string_view().value(row)),
        DataType::Boolean => out.push_str(if array.as_boolean().value(row) { "true" } else { "false" }),
        DataType::Int8 => write!(out, "{}", array.as_primitive::<Int8Type>().value(row)).expect("write to string"),
        DataType::Int16 => write!(out, "{}", array.as_primitive::<Int16Type>().value(row)).expect("write to string"),
        DataType::Int32 => write!(out, "{}", array.as_primitive::<Int32Type>().value(row)).expect("write to string"),
        DataType::Int64 => write!(out, "{}", array.as_primitive::<Int64Type>().value(row)).expect("write to string"),
        DataType::UInt8 => write!(out, "{}", array.as_primitive::<UInt8Type>().value(row)).expect("write to string"),
        DataType::UInt16 => write!(out, "{}", array.as_primitive::<UInt16Type>().value(row)).expect("write to string"),
        DataType::UInt32 => write!(out, "{}", array.as_primitive::<UInt32Type>().value(row)).expect("write to string"),
        DataType::UInt64 => write!(out, "{}", array.as_primitive::<UInt64Type>().value(row)).expect("write to string"),
        DataType::Float16 => out.push_str(&double_text(f64::from(array.as_primitive::<Float16Type>().value(row)))),
        DataType::Float32 => out.push_str(&double_text(f64::from(array.as_primitive::<Float32Type>().value(row)))),
        DataType::Float64 => out.push_str(&double_text(array.as_primitive::<Float64Type>().value(row))),
        DataType::Timestamp(unit, _) => {
            let micros = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(row)
                    .saturating_mul(1_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(row)
                    .saturating_mul(1_000),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row) / 1_000,
            };
            let time = DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| ArrowError::ComputeError(format!("timestamp {micros} is out of range")))?;
            write!(out, "{}", time.format("%Y-%m-%d %H:%M:%S%.3f")).expect("write to string");
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let date = DateTime::from_timestamp(i64::from(days) * 86_400, 0)
                .ok_or_else(|| ArrowError::ComputeError(format!("date {days} is out of range")))?;
            write!(out, "{}", date.format("%Y-%m-%d")).expect("write to string");
        }
        DataType::Map(..) => {
            let map = array.as_map();
            let (keys, values) = (map.keys(), map.values());
            let offsets = map.value_offsets();
            out.push('{');
            for (n, entry) in (offsets[row] as usize..offsets[row + 1] as usize).enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_value(keys.as_ref(), entry, out)?;
                out.push('=');
                write_value(values.as_ref(), entry, out)?;
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            let structure = array.as_struct();
            out.push('{');
            for (n, field) in fields.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                out.push_str(field.name());
                out.push('=');
                write_value(structure.column(n).as_ref(), row, out)?;
            }
            out.push('}');
        }
        DataType::List(_) => write_items(array.as_list::<i32>().value(row).as_ref(), out)?,
        DataType::LargeList(_) => write_items(array.as_list::<i64>().value(row).as_ref(), out)?,
        DataType::ListView(_) => write_items(array.as_list_view::<i32>().value(row).as_ref(), out)?,
        DataType::FixedSizeList(..) => write_items(array.as_fixed_size_list().value(row).as_ref(), out)?,
        _ => {
            let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
            write!(out, "{}", formatter.value(row)).expect("write to string");
        }
    }
    Ok(())
}

fn write_items(items: &dyn Array, out: &mut String) -> Result<(), ArrowError> {
    out.push('[');
    for index in 0..items.len() {
        if index > 0 {
            out.push_str(", ");
        }
        write_value(items, index, out)?;
    }
    out.push(']');
    Ok(())
}

/// Returns a double as Java's `Double.toString` writes it, which is how Trino renders doubles.
pub fn double_text(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let text = format!("{value}");
        return if text.contains('.') { text } else { format!("{text}.0") };
    }
    let text = format!("{value:E}");
    let (mantissa, exponent) = text.split_once('E').expect("scientific notation has an E");
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BooleanArray, Float64Array, Int64Array, ListBuilder, MapBuilder, StringArray, StringBuilder, StructArray,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::Field;

    use super::*;

    fn texts(array: ArrayRef) -> Vec<Option<String>> {
        (0..array.len()).map(|row| render(&array, row).unwrap()).collect()
    }

    #[test]
    fn renders_scalars_as_trino_text() {
        assert_eq!(
            texts(Arc::new(BooleanArray::from(vec![Some(true), None]))),
            vec![Some("true".into()), None]
        );
        assert_eq!(texts(Arc::new(Int64Array::from(vec![812]))), vec![Some("812".into())]);
        let doubles = texts(Arc::new(Float64Array::from(vec![1.5, 2.0, 2e10, 1e-4, -0.25])));
        assert_eq!(
            doubles,
            ["1.5", "2.0", "2.0E10", "1.0E-4", "-0.25"].map(|s| Some(s.to_string()))
        );
        let times = TimestampMicrosecondArray::from(vec![1_735_689_792_000_123]).with_timezone("UTC");
        assert_eq!(texts(Arc::new(times)), vec![Some("2025-01-01 00:03:12.000".into())]);
    }

    #[test]
    fn renders_nested_values_in_trino_text_form() {
        let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        map.keys().append_value("bucketName");
        map.values().append_value("b");
        map.keys().append_value("key");
        map.values().append_null();
        map.append(true).unwrap();
        assert_eq!(
            texts(Arc::new(map.finish())),
            vec![Some("{bucketName=b, key=null}".into())]
        );

        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value("a");
        list.values().append_value("b");
        list.append(true);
        assert_eq!(texts(Arc::new(list.finish())), vec![Some("[a, b]".into())]);

        let structure = StructArray::from(vec![
            (
                Arc::new(Field::new("type", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec!["IAMUser"])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("arn", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec![None::<&str>])) as ArrayRef,
            ),
        ]);
        assert_eq!(
            texts(Arc::new(structure)),
            vec![Some("{type=IAMUser, arn=null}".into())]
        );
    }
}
