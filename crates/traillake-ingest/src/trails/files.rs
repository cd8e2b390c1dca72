//! What a trail writes to its bucket, byte for byte: log files (`{"Records":[...]}`, gzip) and
//! digest files, under the keys AWS uses (the CloudTrail User Guide, "Finding your CloudTrail log
//! files" and "CloudTrail digest file structure"), so that what reads AWS trail buckets (StartImport,
//! `aws cloudtrail validate-logs`, SIEM collectors) reads these.

use std::io::Write as _;

use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use traillake_lake::trail_outbox::Feed;

/// Where a trail's files go: its account, Region, name and key prefix.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// The account whose events the files hold: the trail's, or for an organization trail the
    /// member account whose events a log file holds.
    pub account_id: &'a str,
    /// The organization of an organization trail, whose files are under `AWSLogs/ORG-ID/ACCOUNT/`.
    pub organization_id: Option<&'a str>,
    /// The Region of the events (and of the server).
    pub region: &'a str,
    /// The trail's name.
    pub trail_name: &'a str,
    /// The trail's key prefix, without a trailing `/`.
    pub prefix: Option<&'a str>,
}

impl Layout<'_> {
    /// Returns the key of a feed's log file published at `time`, made unique by `unique` (16
    /// letters and digits): `[prefix/]AWSLogs/ACCOUNT/FOLDER/REGION/YYYY/MM/DD/ACCOUNT_FOLDER_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz`
    /// with FOLDER `CloudTrail` for events and `CloudTrail-Insight` for Insights events; an
    /// organization trail's are under `AWSLogs/ORG-ID/ACCOUNT/`.
    pub fn log_file_key(&self, feed: Feed, time: DateTime<Utc>, unique: &str) -> String {
        let Self { account_id, region, .. } = self;
        let folder = feed.log_folder();
        self.prefixed(format!(
            "{account_id}/{folder}/{region}/{}/{account_id}_{folder}_{region}_{}_{unique}.json.gz",
            time.format("%Y/%m/%d"),
            time.format("%Y%m%dT%H%MZ"),
        ))
    }

    /// Returns the key of the digest that ends at `end`:
    /// `[prefix/]AWSLogs/ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail-Digest_REGION_NAME_HOMEREGION_YYYYMMDDTHHMMSSZ.json.gz`.
    pub fn digest_key(&self, end: DateTime<Utc>) -> String {
        let Self {
            account_id,
            region,
            trail_name,
            ..
        } = self;
        self.prefixed(format!(
            "{account_id}/CloudTrail-Digest/{region}/{}/{account_id}_CloudTrail-Digest_{region}_{trail_name}_{region}_{}.json.gz",
            end.format("%Y/%m/%d"),
            end.format("%Y%m%dT%H%M%SZ"),
        ))
    }

    /// Returns `[prefix/]AWSLogs/[ORG-ID/]` and `key`.
    fn prefixed(&self, key: String) -> String {
        let logs = match self.organization_id {
            Some(organization) => format!("AWSLogs/{organization}/{key}"),
            None => format!("AWSLogs/{key}"),
        };
        match self.prefix {
            Some(prefix) => format!("{prefix}/{logs}"),
            None => logs,
        }
    }
}

/// A log file made from records: its gzip bytes, and what a digest says of it.
#[derive(Debug, Clone)]
pub struct LogFile {
    /// The gzip-compressed `{"Records":[...]}`.
    pub gzip: Vec<u8>,
    /// Hex SHA-256 of the uncompressed text, as digests list it.
    pub hash: String,
    /// The oldest and newest `eventTime` of its records.
    pub event_times: Option<(String, String)>,
    /// Its records.
    pub records: usize,
}

/// Returns the log file of records, each a compact JSON object.
pub fn log_file(records: &[&str]) -> LogFile {
    let mut text = Vec::with_capacity(records.iter().map(|record| record.len() + 1).sum::<usize>() + 16);
    text.extend_from_slice(b"{\"Records\":[");
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        text.extend_from_slice(record.as_bytes());
    }
    text.extend_from_slice(b"]}");
    let mut event_times: Option<(String, String)> = None;
    for time in records.iter().filter_map(|record| event_time(record)) {
        event_times = Some(match event_times {
            None => (time.clone(), time),
            Some((oldest, newest)) => (oldest.min(time.clone()), newest.max(time)),
        });
    }
    LogFile {
        gzip: gzip(&text),
        hash: hex::encode(Sha256::digest(&text)),
        event_times,
        records: records.len(),
    }
}

/// Returns a record's `eventTime`, as written.
fn event_time(record: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Time {
        #[serde(rename = "eventTime")]
        event_time: String,
    }
    serde_json::from_str::<Time>(record).ok().map(|time| time.event_time)
}

/// Returns bytes compressed with gzip.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 8 + 64), Compression::default());
    encoder.write_all(bytes).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

/// A log file in the bucket, as a digest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestLogFile {
    /// Its bucket.
    pub s3_bucket: String,
    /// Its key.
    pub s3_object: String,
    /// Hex SHA-256 of its uncompressed bytes.
    pub hash_value: String,
    /// `SHA-256`.
    pub hash_algorithm: String,
    /// Its newest `eventTime`.
    pub newest_event_time: Option<String>,
    /// Its oldest `eventTime`.
    pub oldest_event_time: Option<String>,
}

/// The digest before it links to its previous one: what the digest of a period covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousDigest {
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// Hex SHA-256 of its uncompressed bytes.
    pub hash: String,
    /// Its hex signature.
    pub signature: String,
}

/// A digest file's content, with the members in AWS's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DigestFile<'a> {
    aws_account_id: &'a str,
    digest_start_time: String,
    digest_end_time: String,
    #[serde(rename = "digestS3Bucket")]
    digest_s3_bucket: &'a str,
    #[serde(rename = "digestS3Object")]
    digest_s3_object: &'a str,
    digest_public_key_fingerprint: &'a str,
    digest_signature_algorithm: &'a str,
    newest_event_time: Option<&'a str>,
    oldest_event_time: Option<&'a str>,
    #[serde(rename = "previousDigestS3Bucket")]
    previous_digest_s3_bucket: Option<&'a str>,
    #[serde(rename = "previousDigestS3Object")]
    previous_digest_s3_object: Option<&'a str>,
    previous_digest_hash_value: Option<&'a str>,
    previous_digest_hash_algorithm: Option<&'a str>,
    previous_digest_signature: Option<&'a str>,
    log_files: &'a [DigestLogFile],
}

/// A digest ready to be put: its bytes, where, and the signature that goes in its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDigest {
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// The gzip bytes, base64.
    pub gzip_base64: String,
    /// Hex SHA-256 of its uncompressed bytes.
    pub hash: String,
    /// Hex SHA256withRSA signature of its string to sign.
    pub signature: String,
    /// Its end time: the next digest's start.
    pub end: DateTime<Utc>,
}

/// What a digest covers.
pub struct DigestPeriod<'a> {
    /// The trail's layout.
    pub layout: Layout<'a>,
    /// The bucket the digest goes to.
    pub bucket: &'a str,
    /// The period's start (the previous digest's end, or when logging started).
    pub start: DateTime<Utc>,
    /// The period's end.
    pub end: DateTime<Utc>,
    /// The log files delivered in the period.
    pub log_files: &'a [DigestLogFile],
    /// The digest before, if there is one.
    pub previous: Option<&'a PreviousDigest>,
}

/// The time format of digests: `2015-08-17T14:01:31Z`.
const DIGEST_TIME: &str = "%Y-%m-%dT%H:%M:%SZ";

impl DigestPeriod<'_> {
    /// Returns the digest of the period, signed by `sign` (the key's fingerprint, and a function
    /// that returns the SHA256withRSA signature of a message).
    pub fn signed(&self, fingerprint: &str, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> SignedDigest {
        let key = self.layout.digest_key(self.end);
        let newest = self
            .log_files
            .iter()
            .filter_map(|file| file.newest_event_time.as_deref())
            .max();
        let oldest = self
            .log_files
            .iter()
            .filter_map(|file| file.oldest_event_time.as_deref())
            .min();
        let end_time = self.end.format(DIGEST_TIME).to_string();
        let file = DigestFile {
            aws_account_id: self.layout.account_id,
            digest_start_time: self.start.format(DIGEST_TIME).to_string(),
            digest_end_time: end_time.clone(),
            digest_s3_bucket: self.bucket,
            digest_s3_object: &key,
            digest_public_key_fingerprint: fingerprint,
            digest_signature_algorithm: "SHA256withRSA",
            newest_event_time: newest,
            oldest_event_time: oldest,
            previous_digest_s3_bucket: self.previous.map(|p| p.bucket.as_str()),
            previous_digest_s3_object: self.previous.map(|p| p.key.as_str()),
            previous_digest_hash_value: self.previous.map(|p| p.hash.as_str()),
            previous_digest_hash_algorithm: self.previous.map(|_| "SHA-256"),
            previous_digest_signature: self.previous.map(|p| p.signature.as_str()),
            log_files: self.log_files,
        };
        let text = serde_json::to_vec(&file).expect("a digest serializes");
        let hash = hex::encode(Sha256::digest(&text));
        let previous_signature = self.previous.map_or("null", |p| p.signature.as_str());
        let to_sign = format!("{end_time}\n{}/{key}\n{hash}\n{previous_signature}", self.bucket);
        let signature = hex::encode(sign(to_sign.as_bytes()));
        use base64::Engine as _;
        SignedDigest {
            bucket: self.bucket.to_string(),
            key,
            gzip_base64: base64::engine::general_purpose::STANDARD.encode(gzip(&text)),
            hash,
            signature,
            end: self.end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(prefix: Option<&str>) -> Layout<'_> {
        Layout {
            account_id: "123456789012",
            organization_id: None,
            region: "us-east-1",
            trail_name: "main",
            prefix,
        }
    }

    #[test]
    fn keys_follow_the_aws_layout() {
        let time = DateTime::parse_from_rfc3339("2026-12-07T09:05:31Z").unwrap().to_utc();
        assert_eq!(
            layout(None).log_file_key(Feed::Events, time, "ABCDEFGH12345678"),
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/07/123456789012_CloudTrail_us-east-1_20261207T0905Z_ABCDEFGH12345678.json.gz"
        );
        assert_eq!(
            layout(None).log_file_key(Feed::Insights, time, "ABCDEFGH12345678"),
            "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2026/12/07/123456789012_CloudTrail-Insight_us-east-1_20261207T0905Z_ABCDEFGH12345678.json.gz"
        );
        assert_eq!(
            layout(Some("logs/x")).digest_key(time),
            "logs/x/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/12/07/123456789012_CloudTrail-Digest_us-east-1_main_us-east-1_20261207T090531Z.json.gz"
        );
        let organization = Layout {
            organization_id: Some("o-exampleorg1"),
            ..layout(Some("org"))
        };
        assert_eq!(
            organization.log_file_key(Feed::Events, time, "ABCDEFGH12345678"),
            "org/AWSLogs/o-exampleorg1/123456789012/CloudTrail/us-east-1/2026/12/07/123456789012_CloudTrail_us-east-1_20261207T0905Z_ABCDEFGH12345678.json.gz"
        );
    }

    #[test]
    fn log_files_hash_their_text_and_know_their_times() {
        let records = [
            r#"{"eventTime":"2026-12-07T09:00:02Z","eventName":"B"}"#,
            r#"{"eventTime":"2026-12-07T09:00:01Z","eventName":"A"}"#,
        ];
        let file = log_file(&records);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&file.gzip[..]), &mut text).unwrap();
        assert_eq!(text, format!("{{\"Records\":[{},{}]}}", records[0], records[1]));
        assert_eq!(file.hash, hex::encode(Sha256::digest(text.as_bytes())));
        assert_eq!(
            file.event_times,
            Some(("2026-12-07T09:00:01Z".into(), "2026-12-07T09:00:02Z".into()))
        );
    }

    #[test]
    fn digests_sign_their_end_location_hash_and_previous_signature() {
        let start = DateTime::parse_from_rfc3339("2026-12-07T08:00:00Z").unwrap().to_utc();
        let end = DateTime::parse_from_rfc3339("2026-12-07T09:00:00Z").unwrap().to_utc();
        let previous = PreviousDigest {
            bucket: "b".into(),
            key: "k".into(),
            hash: "00".into(),
            signature: "abcd".into(),
        };
        let period = DigestPeriod {
            layout: layout(None),
            bucket: "b",
            start,
            end,
            log_files: &[],
            previous: Some(&previous),
        };
        let mut signed_message = Vec::new();
        let digest = period.signed("f1", |message| {
            signed_message = message.to_vec();
            vec![1, 2]
        });
        assert_eq!(digest.signature, "0102");
        assert_eq!(
            String::from_utf8(signed_message).unwrap(),
            format!("2026-12-07T09:00:00Z\nb/{}\n{}\nabcd", digest.key, digest.hash)
        );
        use base64::Engine as _;
        let gzip = base64::engine::general_purpose::STANDARD
            .decode(&digest.gzip_base64)
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gzip[..]), &mut text).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["digestS3Object"], digest.key.as_str());
        assert_eq!(value["previousDigestSignature"], "abcd");
        assert_eq!(value["logFiles"], serde_json::json!([]));
        assert!(value["newestEventTime"].is_null());
        assert!(text.starts_with("{\"awsAccountId\":\"123456789012\",\"digestStartTime\":\"2026-12-07T08:00:00Z\""));
    }
}
