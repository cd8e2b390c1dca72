//! Trino's date and time functions that DataFusion lacks or spells otherwise: `day_of_week` (`dow`),
//! `date_add`, `date_diff`, `from_iso8601_timestamp`, `to_iso8601`, `date_format`, `date`. Every
//! timestamp is UTC with microseconds, as `eventtime` is.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, Date32Builder, Int64Builder, StringBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

use super::{call_rows, finish, string_args};

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Returns the time functions.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        day_of_week("day_of_week"),
        day_of_week("dow"),
        date_add(),
        date_diff(),
        from_iso8601_timestamp(),
        to_iso8601(),
        date_format(),
        date(),
    ]
}

/// Returns argument `index` as UTC microsecond timestamps, repeated to `rows`.
fn timestamps(args: &[ColumnarValue], index: usize, rows: usize) -> Result<TimestampMicrosecondArray> {
    let array = cast(&args[index].to_array(rows)?, &timestamp_type())?;
    Ok(array
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("cast to timestamps")
        .clone())
}

fn utc(micros: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| DataFusionError::Execution(format!("timestamp {micros} is out of range")))
}

/// `day_of_week(ts)`: ISO day of the week, 1 (Monday) to 7 (Sunday).
fn day_of_week(name: &str) -> ScalarUDF {
    create_udf(
        name,
        vec![timestamp_type()],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let rows = call_rows(args);
            let times = timestamps(args, 0, rows)?;
            let mut out = Int64Builder::with_capacity(rows);
            for row in 0..rows {
                if times.is_null(row) {
                    out.append_null();
                    continue;
                }
                out.append_value(i64::from(utc(times.value(row))?.weekday().number_from_monday()));
            }
            finish(args, Arc::new(out.finish()))
        }),
    )
}

/// Returns `time` moved by `amount` of `unit`.
fn add(unit: &str, amount: i64, time: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let months = |count: i64| -> Result<DateTime<Utc>> {
        let shifted = if count >= 0 {
            time.checked_add_months(Months::new(count as u32))
        } else {
            time.checked_sub_months(Months::new(count.unsigned_abs() as u32))
        };
        shifted.ok_or_else(|| DataFusionError::Execution("date_add: the result is out of range".to_string()))
    };
    let duration = match unit.to_ascii_lowercase().as_str() {
        "millisecond" => Duration::milliseconds(amount),
        "second" => Duration::seconds(amount),
        "minute" => Duration::minutes(amount),
        "hour" => Duration::hours(amount),
        "day" => Duration::days(amount),
        "week" => Duration::weeks(amount),
        "month" => return months(amount),
        "quarter" => return months(amount * 3),
        "year" => return months(amount * 12),
        other => return exec_err!("'{other}' is not a unit of date_add or date_diff"),
    };
    Ok(time + duration)
}

/// `date_add(unit, amount, ts)`.
fn date_add() -> ScalarUDF {
    create_udf(
        "date_add",
        vec![DataType::Utf8, DataType::Int64, timestamp_type()],
        timestamp_type(),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let rows = call_rows(args);
            let (_, text) = string_args(&args[..2])?;
            let times = timestamps(args, 2, rows)?;
            let mut out = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
            for row in 0..rows {
                let amount = text[1].get(row).and_then(|a| a.parse::<i64>().ok());
                match (text[0].get(row), amount, times.is_valid(row)) {
                    (Some(unit), Some(amount), true) => {
                        out.append_value(add(unit, amount, utc(times.value(row))?)?.timestamp_micros())
                    }
                    _ => out.append_null(),
                }
            }
            finish(args, Arc::new(out.finish()))
        }),
    )
}

/// Returns whole `unit`s from `start` to `end`, as Trino counts them.
fn difference(unit: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<i64> {
    let span = end - start;
    let months = || {
        let mut count = (end.year() - start.year()) as i64 * 12 + end.month() as i64 - start.month() as i64;
        // A month is complete only once the day and time of day are reached.
        if count > 0 && add("month", count, start)? > end {
            count -= 1;
        } else if count < 0 && add("month", count, start)? < end {
            count += 1;
        }
        Ok::<i64, DataFusionError>(count)
    };
    Ok(match unit.to_ascii_lowercase().as_str() {
        "millisecond" => span.num_milliseconds(),
        "second" => span.num_seconds(),
        "minute" => span.num_minutes(),
        "hour" => span.num_hours(),
        "day" => span.num_days(),
        "week" => span.num_weeks(),
        "month" => months()?,
        "quarter" => months()? / 3,
        "year" => months()? / 12,
        other => return exec_err!("'{other}' is not a unit of date_add or date_diff"),
    })
}

/// `date_diff(unit, ts1, ts2)`.
fn date_diff() -> ScalarUDF {
    create_udf(
        "date_diff",
        vec![DataType::Utf8, timestamp_type(), timestamp_type()],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let rows = call_rows(args);
            let (_, unit) = string_args(&args[..1])?;
            let (start, end) = (timestamps(args, 1, rows)?, timestamps(args, 2, rows)?);
            let mut out = Int64Builder::with_capacity(rows);
            for row in 0..rows {
                match (unit[0].get(row), start.is_valid(row) && end.is_valid(row)) {
                    (Some(unit), true) => {
                        out.append_value(difference(unit, utc(start.value(row))?, utc(end.value(row))?)?)
                    }
                    _ => out.append_null(),
                }
            }
            finish(args, Arc::new(out.finish()))
        }),
    )
}

/// `from_iso8601_timestamp(text)`: an ISO-8601 time, UTC when it carries no zone.
fn from_iso8601_timestamp() -> ScalarUDF {
    create_udf(
        "from_iso8601_timestamp",
        vec![DataType::Utf8],
        timestamp_type(),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let (rows, text) = string_args(args)?;
            let mut out = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
            for row in 0..rows {
                let Some(value) = text[0].get(row) else {
                    out.append_null();
                    continue;
                };
                let parsed = traillake_lake::events::columns::parse_timestamp(value).or_else(|| {
                    NaiveDate::parse_from_str(value, "%Y-%m-%d")
                        .ok()
                        .map(|d| d.and_time(Default::default()).and_utc())
                });
                match parsed {
                    Some(time) => out.append_value(time.timestamp_micros()),
                    None => return exec_err!("'{value}' is not an ISO-8601 timestamp"),
                }
            }
            finish(args, Arc::new(out.finish()))
        }),
    )
}

fn format_times(name: &str, arity: usize, render: fn(DateTime<Utc>, Option<&str>) -> Result<String>) -> ScalarUDF {
    let mut inputs = vec![timestamp_type()];
    inputs.extend(std::iter::repeat_n(DataType::Utf8, arity - 1));
    create_udf(
        name,
        inputs,
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let rows = call_rows(args);
            let times = timestamps(args, 0, rows)?;
            let (_, formats) = string_args(&args[1..])?;
            let mut out = StringBuilder::new();
            for row in 0..rows {
                let format = formats.first().and_then(|f| f.get(row));
                if times.is_null(row) || (arity > 1 && format.is_none()) {
                    out.append_null();
                    continue;
                }
                out.append_value(render(utc(times.value(row))?, format)?);
            }
            finish(args, Arc::new(out.finish()))
        }),
    )
}

/// `to_iso8601(ts)`.
fn to_iso8601() -> ScalarUDF {
    format_times("to_iso8601", 1, |time, _| {
        Ok(time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
    })
}

/// `date_format(ts, format)` with MySQL's specifiers, as Trino takes them.
fn date_format() -> ScalarUDF {
    format_times("date_format", 2, |time, format| {
        let mut out = String::new();
        let mut chars = format.unwrap_or_default().chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(spec) = chars.next() else { break };
            let piece = match spec {
                'Y' => "%Y",
                'y' => "%y",
                'm' => "%m",
                'c' => "%-m",
                'd' => "%d",
                'e' => "%-d",
                'H' => "%H",
                'k' => "%-H",
                'h' | 'I' => "%I",
                'l' => "%-I",
                'i' => "%M",
                's' | 'S' => "%S",
                'f' => "%6f",
                'p' => "%p",
                'a' => "%a",
                'W' => "%A",
                'b' => "%b",
                'M' => "%B",
                'j' => "%j",
                'T' => "%H:%M:%S",
                'r' => "%I:%M:%S %p",
                '%' => "%%",
                other => return exec_err!("date_format: %{other} is not supported"),
            };
            out.push_str(&time.format(piece).to_string());
        }
        Ok(out)
    })
}

/// `date(x)`: the UTC date of a timestamp or of `YYYY-MM-DD...` text.
fn date() -> ScalarUDF {
    create_udf(
        "date",
        vec![timestamp_type()],
        DataType::Date32,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let rows = call_rows(args);
            let times = timestamps(args, 0, rows)?;
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
            let mut out = Date32Builder::with_capacity(rows);
            for row in 0..rows {
                if times.is_null(row) {
                    out.append_null();
                    continue;
                }
                out.append_value((utc(times.value(row))?.date_naive() - epoch).num_days() as i32);
            }
            finish(args, Arc::new(out.finish()) as ArrayRef)
        }),
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn adds_and_counts_units_as_trino() {
        let start = Utc.with_ymd_and_hms(2024, 1, 31, 10, 0, 0).unwrap();
        assert_eq!(
            add("month", 1, start).unwrap(),
            Utc.with_ymd_and_hms(2024, 2, 29, 10, 0, 0).unwrap()
        );
        assert_eq!(
            add("week", -1, start).unwrap(),
            Utc.with_ymd_and_hms(2024, 1, 24, 10, 0, 0).unwrap()
        );
        let end = Utc.with_ymd_and_hms(2024, 3, 31, 9, 0, 0).unwrap();
        assert_eq!(difference("month", start, end).unwrap(), 1);
        assert_eq!(difference("day", start, end).unwrap(), 59);
        assert_eq!(difference("month", end, start).unwrap(), -1);
        assert!(add("fortnight", 1, start).is_err());
    }
}
