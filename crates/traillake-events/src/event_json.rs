//! `eventjson` as a CloudTrail store keeps it: the record's compact text in which each value that a
//! column holds exactly is replaced by a reference to that column, so that its bytes are stored once
//! (the IDs, the request parameters and the other high-entropy values made `eventjson` about half of
//! a store's bytes, and it repeated every one of them). [`rebuild`] puts the values back: the text a
//! query reads is the record's compact text, byte for byte.
//!
//! A reference is `\u{1}`, the letter of the column (`b'A' + `its place in [`REFERENCED`]), and for a
//! map column one flag per entry (`s`: the value was a JSON string, `j`: it was other JSON, or null)
//! and `\u{2}`. Neither control character can stand unescaped in JSON text, so a text without
//! references (every `eventjson` stored before, and those of other store kinds) is its own rebuild.
//!
//! A value is replaced only when writing the column's value back gives exactly the text it replaces
//! (a string without escapes, an `eventTime` in CloudTrail's own form, a map whose entries give its
//! object back), so the rebuild is exact by construction. [`REFERENCED`] may only grow at its end:
//! stored texts name columns by their place in it.

use std::borrow::Cow;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat};
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};

use super::columns::{Cell, StructShape};
use super::json::Kind;

/// How a referenced column's value is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A string, written back quoted.
    Text,
    /// A UTC timestamp, written back as `"YYYY-MM-DDTHH:MM:SSZ"`.
    Time,
    /// A `map<string,string>`, written back as the object it was read from.
    Map,
}

/// The columns whose values `eventjson` refers to, in the order that gives each its letter.
pub const REFERENCED: [(&str, Held); 27] = [
    ("eventversion", Held::Text),
    ("eventtime", Held::Time),
    ("eventsource", Held::Text),
    ("eventname", Held::Text),
    ("awsregion", Held::Text),
    ("sourceipaddress", Held::Text),
    ("useragent", Held::Text),
    ("errorcode", Held::Text),
    ("errormessage", Held::Text),
    ("requestparameters", Held::Map),
    ("responseelements", Held::Map),
    ("additionaleventdata", Held::Map),
    ("requestid", Held::Text),
    ("eventid", Held::Text),
    ("eventtype", Held::Text),
    ("apiversion", Held::Text),
    ("recipientaccountid", Held::Text),
    ("sharedeventid", Held::Text),
    ("annotation", Held::Text),
    ("vpcendpointid", Held::Text),
    ("vpcendpointaccountid", Held::Text),
    ("serviceeventdetails", Held::Map),
    ("addendum", Held::Map),
    ("edgedevicedetails", Held::Map),
    ("insightdetails", Held::Map),
    ("eventcategory", Held::Text),
    ("sessioncredentialfromconsole", Held::Text),
];

const REFERENCE: char = '\u{1}';
const END_OF_FLAGS: char = '\u{2}';

/// Writes a string column's value as the JSON string it was read from.
pub fn write_text(out: &mut String, value: &str) {
    out.push('"');
    out.push_str(value);
    out.push('"');
}

/// Writes a timestamp (microseconds since the epoch, UTC) in CloudTrail's form, quoted.
pub fn write_time(out: &mut String, micros: i64) -> bool {
    match DateTime::from_timestamp_micros(micros) {
        Some(time) => {
            out.push('"');
            out.push_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, true));
            out.push('"');
            true
        }
        None => false,
    }
}

/// Writes a map's entries as the JSON object they were read from, `flags` saying which values were
/// strings; returns false if the flags do not fit the entries.
pub fn write_map<'a>(
    out: &mut String,
    entries: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
    flags: &[u8],
) -> bool {
    if entries.len() != flags.len() {
        return false;
    }
    out.push('{');
    for (index, ((key, value), flag)) in entries.zip(flags).enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_text(out, key);
        out.push(':');
        match (value, flag) {
            (Some(value), b's') => write_text(out, value),
            (Some(value), b'j') => out.push_str(value),
            (None, b'j') => out.push_str("null"),
            _ => return false,
        }
    }
    out.push('}');
    true
}

/// Returns the place in `shape` (the CloudTrail schema) of each column of [`REFERENCED`], in order.
pub fn positions(shape: &StructShape) -> Vec<usize> {
    REFERENCED
        .iter()
        .map(|(name, _)| {
            shape
                .position(name)
                .unwrap_or_else(|| panic!("the CloudTrail schema has {name}"))
        })
        .collect()
}

/// Writes a cell of a referenced column of kind `held` as the record had it (a map with `flags`);
/// false if the cell is not of that kind or the flags do not fit it.
fn write_cell(out: &mut String, held: Held, cell: &Cell<'_>, flags: &[u8]) -> bool {
    match (held, cell) {
        (Held::Text, Cell::Text(text)) => {
            write_text(out, text);
            true
        }
        (Held::Time, Cell::Timestamp(micros)) => write_time(out, *micros),
        (Held::Map, Cell::Map(entries)) => write_map(
            out,
            entries.iter().map(|(key, value)| (key.as_ref(), value.as_deref())),
            flags,
        ),
        _ => false,
    }
}

/// Returns the stored form of a record's compact text `text`, given the row's `slots` (the member
/// of `text` each field of the row was read from, as [`StructShape::slots`] gives them), its
/// `cells`, and the [`positions`] of the referenced columns among them.
pub fn stored<'t>(text: &'t str, slots: &[Option<&RawValue>], positions: &[usize], cells: &[Cell<'_>]) -> Cow<'t, str> {
    // (start, end, place in REFERENCED, map flags) of each value to replace.
    let mut replaced: Vec<(usize, usize, usize, Vec<u8>)> = Vec::new();
    let mut rendered = String::new();
    for (place, ((_, held), &position)) in REFERENCED.iter().zip(positions).enumerate() {
        let Some(value) = slots[position] else {
            continue;
        };
        let span = value.get();
        let Some(start) = (span.as_ptr() as usize).checked_sub(text.as_ptr() as usize) else {
            continue;
        };
        if start + span.len() > text.len() {
            continue;
        }
        let flags = match held {
            Held::Map => match super::columns::members(value) {
                Some(super::json::Members(raw)) => raw
                    .iter()
                    .map(|(_, item)| if Kind::of(item) == Kind::String { b's' } else { b'j' })
                    .collect(),
                None => continue,
            },
            Held::Text | Held::Time => Vec::new(),
        };
        rendered.clear();
        if write_cell(&mut rendered, *held, &cells[position], &flags) && rendered == span {
            replaced.push((start, start + span.len(), place, flags));
        }
    }
    if replaced.is_empty() {
        return Cow::Borrowed(text);
    }
    replaced.sort_unstable_by_key(|(start, ..)| *start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end, place, flags) in replaced {
        out.push_str(&text[copied..start]);
        out.push(REFERENCE);
        out.push(char::from(b'A' + place as u8));
        if REFERENCED[place].1 == Held::Map {
            out.extend(flags.iter().map(|&flag| char::from(flag)));
            out.push(END_OF_FLAGS);
        }
        copied = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Returns the `eventjsonchecksum` of a record's text: the base64 of its SHA-256.
pub fn checksum(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// Why a stored `eventjson` could not be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stored eventjson {0}")]
pub struct RebuildError(pub String);

/// Rebuilds the record's text from its stored form into `out`: `value(place, flags, out)` writes the
/// value of the column at `place` in [`REFERENCED`] (with the map flags of its reference), and
/// returns false if the row has no such value.
pub fn rebuild(
    stored: &str,
    out: &mut String,
    mut value: impl FnMut(usize, &[u8], &mut String) -> bool,
) -> Result<(), RebuildError> {
    let mut rest = stored;
    while let Some(at) = rest.find(REFERENCE) {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let letter = *after
            .as_bytes()
            .first()
            .ok_or_else(|| RebuildError("ends in a reference".to_string()))?;
        let place = usize::from(letter.wrapping_sub(b'A'));
        let Some((name, held)) = REFERENCED.get(place) else {
            return Err(RebuildError(format!("refers to an unknown column {letter}")));
        };
        let (flags, next) = match held {
            Held::Map => {
                let end = after
                    .find(END_OF_FLAGS)
                    .ok_or_else(|| RebuildError(format!("has an unended reference to {name}")))?;
                (&after.as_bytes()[1..end], &after[end + 1..])
            }
            Held::Text | Held::Time => (&[][..], &after[1..]),
        };
        if !value(place, flags, out) {
            return Err(RebuildError(format!(
                "refers to {name}, which the row does not hold as it was"
            )));
        }
        rest = next;
    }
    out.push_str(rest);
    Ok(())
}

/// Rebuilds the record's text from its stored form and the row's `cells`, given the [`positions`]
/// of the referenced columns among them, as a query reads it.
pub fn rebuild_row(stored: &str, positions: &[usize], cells: &[Cell<'_>]) -> Result<String, RebuildError> {
    let mut out = String::with_capacity(stored.len() * 2);
    rebuild(stored, &mut out, |place, flags, out| {
        write_cell(out, REFERENCED[place].1, &cells[positions[place]], flags)
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_without_references_is_its_own_rebuild() {
        let mut out = String::new();
        rebuild(r#"{"a":"b"}"#, &mut out, |_, _, _| unreachable!()).unwrap();
        assert_eq!(out, r#"{"a":"b"}"#);
    }

    #[test]
    fn broken_references_are_errors() {
        let mut out = String::new();
        assert!(rebuild("{\"a\":\u{1}", &mut out, |_, _, _| true).is_err());
        assert!(rebuild("{\"a\":\u{1}~}", &mut out, |_, _, _| true).is_err());
        assert!(rebuild("{\"a\":\u{1}Jss}", &mut out, |_, _, _| true).is_err());
        assert!(rebuild("{\"a\":\u{1}A}", &mut out, |_, _, _| false).is_err());
    }

    #[test]
    fn times_are_written_in_cloudtrails_form() {
        let mut out = String::new();
        assert!(write_time(&mut out, 1_704_164_645_000_000));
        assert_eq!(out, "\"2024-01-02T03:04:05Z\"");
    }
}
