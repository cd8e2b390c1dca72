//! Reading the records out of a file of CloudTrail events, in every shape
//! `../shared/data/trails/README.md` lists: gzip or not; a `{"Records": [...]}` envelope (the trail
//! format); a bare array; one bare record; JSON lines; and the output of `LookupEvents`
//! (`{"Events": [{"CloudTrailEvent": "<record as text>"}]}`). A file that is none of these is an
//! [`InvalidFile`] with the reason.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Why a file holds no records that can be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidFile {
    /// What kind of problem it is.
    pub problem: FileProblem,
    /// The reason, for the load summary and for import failures.
    pub reason: String,
}

/// The kinds of [`InvalidFile`], which imports report as their error types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileProblem {
    /// Not a file of records at all: an archive, or a broken gzip stream.
    Format,
    /// More text than [`MAX_TEXT_BYTES`] (or the reader's own bound) once unpacked.
    TooLarge,
    /// Text that is not JSON records: empty, broken, or JSON of no record shape.
    Json,
}

impl InvalidFile {
    fn new(reason: impl Into<String>) -> Self {
        Self::of(FileProblem::Json, reason)
    }

    fn of(problem: FileProblem, reason: impl Into<String>) -> Self {
        Self {
            problem,
            reason: reason.into(),
        }
    }
}

/// The most text a file is unpacked to by default (1 GiB): a gzip stream larger than this once
/// unpacked is refused instead of taking the memory.
pub const MAX_TEXT_BYTES: u64 = 1 << 30;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Returns true if the bytes start like a gzip stream.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Returns a file's text: its bytes, unpacked first if they are gzip, to at most
/// `max_text_bytes` of text.
pub fn file_text(bytes: &[u8], max_text_bytes: u64) -> Result<Cow<'_, [u8]>, InvalidFile> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(InvalidFile::of(
            FileProblem::Format,
            "the file is a zip archive: unpack it and load what it holds",
        ));
    }
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut text = Vec::with_capacity(bytes.len().saturating_mul(8).min(max_text_bytes as usize));
    MultiGzDecoder::new(bytes)
        .take(max_text_bytes.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(|error| InvalidFile::of(FileProblem::Format, format!("the gzip stream is broken: {error}")))?;
    if text.len() as u64 > max_text_bytes {
        return Err(InvalidFile::of(
            FileProblem::TooLarge,
            format!("the file holds more than {max_text_bytes} bytes of text"),
        ));
    }
    Ok(Cow::Owned(text))
}

/// Returns the records of uncompressed JSON text.
///
/// Each record is its JSON text, checked but not parsed into a tree: a file's records as trees
/// take about ten times the file's text, and callers parse one record at a time. Records borrow
/// the text, except those of a `LookupEvents` answer, which are unescaped from strings.
pub fn parse_records(text: &[u8]) -> Result<Vec<Cow<'_, RawValue>>, InvalidFile> {
    let mut values = Vec::new();
    for (index, value) in serde_json::Deserializer::from_slice(text)
        .into_iter::<&RawValue>()
        .enumerate()
    {
        match value {
            Ok(value) => values.push(Cow::Borrowed(value)),
            Err(error) if index == 0 => return Err(InvalidFile::new(format!("the file is not JSON: {error}"))),
            Err(error) => return Err(InvalidFile::new(format!("JSON value {} is broken: {error}", index + 1))),
        }
    }
    match values.pop() {
        None => Err(InvalidFile::new("the file is empty")),
        Some(Cow::Borrowed(document)) if values.is_empty() => unwrap_document(document),
        Some(last) => {
            values.push(last);
            Ok(values)
        }
    }
}

/// The members of a document object that say what it is; the others are skipped unparsed.
#[derive(Deserialize)]
struct Document<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<&'a RawValue>,
    #[serde(rename = "Events", borrow)]
    events: Option<&'a RawValue>,
}

/// Returns the records of a file that holds one JSON document.
fn unwrap_document(document: &RawValue) -> Result<Vec<Cow<'_, RawValue>>, InvalidFile> {
    fn borrowed(records: Vec<&RawValue>) -> Vec<Cow<'_, RawValue>> {
        records.into_iter().map(Cow::Borrowed).collect()
    }
    let text = document.get();
    if text.starts_with('[') {
        return serde_json::from_str(text)
            .map(borrowed)
            .map_err(|error| InvalidFile::new(format!("the file is not JSON: {error}")));
    }
    if !text.starts_with('{') {
        return Err(InvalidFile::new(format!(
            "the file holds a bare JSON value ({text}), not records"
        )));
    }
    let members: Document =
        serde_json::from_str(text).map_err(|error| InvalidFile::new(format!("the file is not JSON: {error}")))?;
    if let Some(records) = members.records {
        return serde_json::from_str(records.get())
            .map(borrowed)
            .map_err(|_| InvalidFile::new("the Records member is not an array"));
    }
    if let Some(events) = members.events
        && let Ok(events) = serde_json::from_str::<Vec<Value>>(events.get())
    {
        return lookup_events_records(&events);
    }
    Ok(vec![Cow::Borrowed(document)])
}

/// Returns the records of a `LookupEvents` answer: each event's `CloudTrailEvent` text.
fn lookup_events_records(events: &[Value]) -> Result<Vec<Cow<'static, RawValue>>, InvalidFile> {
    let mut records = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        let Some(text) = event.get("CloudTrailEvent").and_then(Value::as_str) else {
            return Err(InvalidFile::new(format!("Events[{index}] has no CloudTrailEvent text")));
        };
        let record = RawValue::from_string(text.to_string())
            .map_err(|error| InvalidFile::new(format!("Events[{index}].CloudTrailEvent is not JSON: {error}")))?;
        records.push(Cow::Owned(record));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::json;

    use super::*;

    fn values(records: Vec<Cow<'_, RawValue>>) -> Vec<Value> {
        records
            .iter()
            .map(|record| serde_json::from_str(record.get()).unwrap())
            .collect()
    }

    fn read_records(bytes: &[u8]) -> Result<Vec<Value>, InvalidFile> {
        Ok(values(parse_records(&file_text(bytes, MAX_TEXT_BYTES)?)?))
    }

    #[test]
    fn reads_every_shape() {
        let record = json!({"eventTime": "2024-01-02T03:04:05Z"});
        let envelope = json!({"Records": [record, record]}).to_string();
        let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
        gzip.write_all(envelope.as_bytes()).unwrap();
        assert_eq!(read_records(&gzip.finish().unwrap()).unwrap().len(), 2);
        assert_eq!(read_records(envelope.as_bytes()).unwrap().len(), 2);
        assert_eq!(
            read_records(json!([record]).to_string().as_bytes()).unwrap(),
            vec![record.clone()]
        );
        assert_eq!(
            read_records(record.to_string().as_bytes()).unwrap(),
            vec![record.clone()]
        );
        let lines = format!("{record}\n{record}\n{record}\n");
        assert_eq!(read_records(lines.as_bytes()).unwrap().len(), 3);
        let lookup = json!({"Events": [{"EventId": "x", "CloudTrailEvent": record.to_string()}]}).to_string();
        assert_eq!(read_records(lookup.as_bytes()).unwrap(), vec![record]);
        // An object with an Events member that is not a list of events is one record.
        let odd = json!({"eventTime": "2024-01-02T03:04:05Z", "Events": 3});
        assert_eq!(read_records(odd.to_string().as_bytes()).unwrap(), vec![odd]);
    }

    #[test]
    fn refuses_what_is_not_records() {
        assert!(
            read_records(b"a,b,c\n1,2,3\n")
                .unwrap_err()
                .reason
                .starts_with("the file is not JSON")
        );
        assert!(
            read_records(b"{\"Records\": [{\"a\": 1}, ...]}")
                .unwrap_err()
                .reason
                .starts_with("the file is not JSON")
        );
        assert!(
            read_records(b"{\"a\": 1}\n{\"a\": ")
                .unwrap_err()
                .reason
                .starts_with("JSON value 2 is broken")
        );
        assert_eq!(read_records(b"  ").unwrap_err().reason, "the file is empty");
        assert!(
            read_records(b"PK\x03\x04rest")
                .unwrap_err()
                .reason
                .contains("zip archive")
        );
        assert_eq!(
            read_records(b"{\"Records\": 5}").unwrap_err().reason,
            "the Records member is not an array"
        );
        assert!(
            read_records(&[0x1f, 0x8b, 0, 1, 2])
                .unwrap_err()
                .reason
                .starts_with("the gzip stream is broken")
        );
    }
}
