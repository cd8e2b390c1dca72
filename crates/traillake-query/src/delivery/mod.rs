//! Delivery of a finished query's results to an S3-compatible bucket, signed, as CloudTrail Lake
//! lays it out: `s3://bucket/prefix/AWSLogs/ACCOUNT/CloudTrail-Lake/Query/YYYY/MM/DD/QUERYID/` holds
//! `result_1.csv.gz`, `result_2.csv.gz`, ... (gzip CSV: a header row of the column keys, RFC 4180
//! quoting, values rendered as GetQueryResults renders them, NULL as an empty field; a new file
//! when one reaches the size bound) and then `result_sign.json`, which lists each file's SHA-256
//! and signs them with the current key of [`keys::SigningKeys`]. Files are written as multipart
//! uploads while the rows are rendered, so a large result is never held a second time in memory.
//! StartQuery checks the bucket of a DeliveryS3Uri first ([`check_bucket`]); an ended query's
//! delivery is [`deliver_query`], over the record, the rows and the [`DeliveryTarget`].

pub use traillake_lake::signing_keys as keys;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::RecordBatch;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures::StreamExt as _;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use traillake_api::s3_location::S3Location;
use traillake_api::shapes::{DeliveryStatus, QueryStatus};

use crate::record::QueryRecord;
use crate::render::render;
use crate::results::ResultRows;
use crate::{QueryError, Result as QueryResult};
use keys::{SigningKey, SigningKeys};

/// The name of the sign file of a delivery.
pub const SIGN_FILE: &str = "result_sign.json";

/// Returns the folder, in the bucket of `location`, of a query's delivery.
pub fn folder(location: &S3Location, account_id: &str, query_id: &str, delivered: DateTime<Utc>) -> String {
    let date = delivered.format("%Y/%m/%d");
    format!(
        "{}AWSLogs/{account_id}/CloudTrail-Lake/Query/{date}/{query_id}",
        location.prefix
    )
}

/// One result file as the sign file lists it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SignedFile {
    /// Hex SHA-256 of the file's (compressed) bytes.
    #[serde(rename = "fileHashValue")]
    pub file_hash_value: String,
    /// The file's name in the delivery folder.
    #[serde(rename = "fileName")]
    pub file_name: String,
}

/// The sign file, `result_sign.json`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SignFile {
    /// `1.0`.
    pub version: String,
    /// The Region of the server.
    pub region: String,
    /// The result files, in order.
    pub files: Vec<SignedFile>,
    /// `SHA-256`.
    pub hash_algorithm: String,
    /// `SHA256withRSA`.
    pub signature_algorithm: String,
    /// When the results were delivered (RFC 3339, UTC); selects the key in ListPublicKeys.
    pub query_complete_time: String,
    /// Hex SHA256withRSA signature of [`SignFile::signing_string`].
    pub hash_signature: String,
    /// Hex MD5 fingerprint of the signing key's DER public key.
    pub public_key_fingerprint: String,
}

impl SignFile {
    /// Returns the string that is signed: the files' hashes in order, joined by single spaces.
    pub fn signing_string(files: &[SignedFile]) -> String {
        files
            .iter()
            .map(|file| file.file_hash_value.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Why a delivery failed, as DeliveryStatus says it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryFailure {
    /// FAILED, ACCESS_DENIED, RESOURCE_NOT_FOUND, FAILED_SIGNING_FILE or ACCESS_DENIED_SIGNING_FILE.
    pub status: DeliveryStatus,
    /// What happened, for the log.
    pub message: String,
}

impl DeliveryFailure {
    fn storage(error: object_store::Error, signing_file: bool) -> Self {
        let status = match (&error, signing_file) {
            (object_store::Error::NotFound { .. }, _) => DeliveryStatus::ResourceNotFound,
            (object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }, false) => {
                DeliveryStatus::AccessDenied
            }
            (object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }, true) => {
                DeliveryStatus::AccessDeniedSigningFile
            }
            (_, false) => DeliveryStatus::Failed,
            (_, true) => DeliveryStatus::FailedSigningFile,
        };
        Self {
            status,
            message: error.to_string(),
        }
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            status: DeliveryStatus::Failed,
            message: message.into(),
        }
    }
}

impl From<std::io::Error> for DeliveryFailure {
    fn from(error: std::io::Error) -> Self {
        Self::failed(error.to_string())
    }
}

impl From<csv::Error> for DeliveryFailure {
    fn from(error: csv::Error) -> Self {
        Self::failed(error.to_string())
    }
}

/// Where a server's deliveries go and how they are cut and signed.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryTarget<'a> {
    /// The keys that sign.
    pub keys: &'a SigningKeys,
    /// The server's Region, for the sign file.
    pub region: &'a str,
    /// The compressed size at which a result file is closed and the next one begun.
    pub max_file_bytes: usize,
}

/// Delivers an ended query's results as its status asks (a FINISHED query's rows; nothing for a
/// query that ended otherwise: partial results are never delivered) and returns the
/// DeliveryStatus to keep.
pub async fn deliver_query(record: &QueryRecord, rows: &ResultRows, target: DeliveryTarget<'_>) -> DeliveryStatus {
    match record.status {
        QueryStatus::Finished => match deliver_finished(record, rows, target).await {
            Ok(()) => DeliveryStatus::Success,
            Err(failure) => {
                tracing::warn!(query_id = %record.id, status = ?failure.status, error = %failure, "delivering the results failed");
                failure.status
            }
        },
        QueryStatus::Cancelled => DeliveryStatus::Cancelled,
        _ => DeliveryStatus::Failed,
    }
}

async fn deliver_finished(
    record: &QueryRecord,
    rows: &ResultRows,
    target: DeliveryTarget<'_>,
) -> Result<(), DeliveryFailure> {
    let uri = record.delivery_s3_uri.as_deref().unwrap_or_default();
    let location =
        S3Location::read(uri).map_err(|problem| DeliveryFailure::failed(format!("{uri} {}", problem.reason())))?;
    let bucket = traillake_lake::root::s3_bucket(&location.bucket)
        .map_err(|error| DeliveryFailure::failed(error.to_string()))?;
    let now = Utc::now();
    let key = target.keys.current(now).await.map_err(|error| DeliveryFailure {
        status: DeliveryStatus::FailedSigningFile,
        message: format!("no signing key: {error}"),
    })?;
    let delivery = Delivery {
        bucket,
        // The day the query ended, so that a delivery done again writes over the same files.
        folder: folder(&location, &record.account_id, &record.id, record.ended.unwrap_or(now)),
        column_keys: &record.column_keys,
        key: &key,
        region: target.region,
        max_file_bytes: target.max_file_bytes,
    };
    let sign_file = delivery.deliver(rows, now).await?;
    tracing::info!(query_id = %record.id, files = sign_file.files.len(), folder = %delivery.folder, "delivered the results");
    Ok(())
}

/// Checks that the bucket of a `DeliveryS3Uri` can be listed on the configured S3 endpoint.
pub async fn check_bucket(uri: &str) -> QueryResult<()> {
    let target = S3Location::read(uri)
        .map_err(|problem| QueryError::S3BucketDoesNotExist(uri.to_string(), problem.reason().to_string()))?;
    let unreachable = |reason: String| QueryError::S3BucketDoesNotExist(target.bucket.clone(), reason);
    let bucket = traillake_lake::root::s3_bucket(&target.bucket).map_err(|error| unreachable(error.to_string()))?;
    let prefix = (!target.prefix.is_empty()).then(|| Path::from(target.prefix.trim_end_matches('/')));
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        bucket.list(prefix.as_ref()).next().await
    })
    .await;
    match first {
        Err(_) => Err(unreachable("it did not answer within 10 seconds".to_string())),
        Ok(Some(Err(object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }))) => {
            Err(QueryError::InsufficientS3BucketPolicy(target.bucket.clone()))
        }
        Ok(Some(Err(error))) => Err(unreachable(error.to_string())),
        Ok(_) => Ok(()),
    }
}

/// What a delivery needs besides the rows.
pub struct Delivery<'a> {
    /// The bucket's object store.
    pub bucket: Arc<dyn ObjectStore>,
    /// The delivery folder in the bucket ([`folder`]).
    pub folder: String,
    /// The result column keys, for the header row.
    pub column_keys: &'a [String],
    /// The key that signs.
    pub key: &'a SigningKey,
    /// The server's Region, for the sign file.
    pub region: &'a str,
    /// The compressed size at which a result file is closed and the next one begun.
    pub max_file_bytes: usize,
}

impl Delivery<'_> {
    /// Writes the result files and then the sign file; returns the sign file.
    pub async fn deliver(&self, rows: &ResultRows, now: DateTime<Utc>) -> Result<SignFile, DeliveryFailure> {
        let mut files = Vec::new();
        let mut file: Option<ResultFile> = None;
        for batch in &rows.batches {
            for row in 0..batch.num_rows() {
                if file.is_none() {
                    let name = format!("result_{}.csv.gz", files.len() + 1);
                    file = Some(self.start_file(name).await?);
                }
                let current = file.as_mut().expect("a file was started");
                current.write_row(batch, row)?;
                current.send_compressed().await?;
                if current.size() >= self.max_file_bytes {
                    files.push(file.take().expect("a file was started").finish().await?);
                }
            }
        }
        if files.is_empty() || file.is_some() {
            // A result of no rows is one file holding the header row.
            let current = match file {
                Some(current) => current,
                None => self.start_file("result_1.csv.gz".to_string()).await?,
            };
            files.push(current.finish().await?);
        }

        let signing_string = SignFile::signing_string(&files);
        let signature = self.key.sign(signing_string.as_bytes());
        let sign_file = SignFile {
            version: "1.0".to_string(),
            region: self.region.to_string(),
            files,
            hash_algorithm: "SHA-256".to_string(),
            signature_algorithm: "SHA256withRSA".to_string(),
            query_complete_time: now.to_rfc3339_opts(SecondsFormat::Secs, true),
            hash_signature: hex::encode(&signature),
            public_key_fingerprint: self.key.fingerprint.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&sign_file).expect("a sign file serializes");
        let path = Path::from(format!("{}/{SIGN_FILE}", self.folder));
        self.bucket
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|error| DeliveryFailure::storage(error, true))?;
        Ok(sign_file)
    }

    async fn start_file(&self, name: String) -> Result<ResultFile, DeliveryFailure> {
        let path = Path::from(format!("{}/{name}", self.folder));
        let upload = self
            .bucket
            .put_multipart(&path)
            .await
            .map_err(|error| DeliveryFailure::storage(error, false))?;
        let mut file = ResultFile {
            name,
            upload: WriteMultipart::new(upload),
            text: csv::Writer::from_writer(Vec::new()),
            gzip: GzEncoder::new(Vec::new(), Compression::default()),
            hash: Sha256::new(),
            compressed_bytes: 0,
        };
        file.text.write_record(self.column_keys)?;
        Ok(file)
    }
}

/// A result file being written: rows as CSV text, compressed with gzip, sent as the parts of a
/// multipart upload, hashed as they are sent.
struct ResultFile {
    name: String,
    upload: WriteMultipart,
    text: csv::Writer<Vec<u8>>,
    gzip: GzEncoder<Vec<u8>>,
    hash: Sha256,
    /// Compressed bytes sent so far.
    compressed_bytes: usize,
}

/// CSV text gathered before it is compressed.
const TEXT_BYTES: usize = 64 << 10;
/// Compressed bytes gathered before they are handed to the upload.
const COMPRESSED_BYTES: usize = 1 << 20;

impl ResultFile {
    fn write_row(&mut self, batch: &RecordBatch, row: usize) -> Result<(), DeliveryFailure> {
        for column in batch.columns() {
            let value =
                render(column, row).map_err(|error| DeliveryFailure::failed(format!("rendering a value: {error}")))?;
            self.text.write_field(value.unwrap_or_default())?;
        }
        self.text.write_record(None::<&[u8]>)?;
        if self.text.get_ref().len() >= TEXT_BYTES {
            self.compress_text()?;
        }
        Ok(())
    }

    /// Moves the CSV text written so far into the gzip stream, flushed, so that the file's
    /// compressed size is known to within one piece of text.
    fn compress_text(&mut self) -> Result<(), DeliveryFailure> {
        let text = std::mem::replace(&mut self.text, csv::Writer::from_writer(Vec::new()));
        let text = text.into_inner().map_err(|error| error.into_error())?;
        self.gzip.write_all(&text)?;
        Ok(self.gzip.flush()?)
    }

    /// Hands the compressed bytes gathered so far to the upload, which sends them in parts.
    async fn send_compressed(&mut self) -> Result<(), DeliveryFailure> {
        if self.gzip.get_ref().len() < COMPRESSED_BYTES {
            return Ok(());
        }
        let bytes = std::mem::take(self.gzip.get_mut());
        self.hash.update(&bytes);
        self.compressed_bytes += bytes.len();
        // At most two parts in flight, so that a slow bucket bounds the memory instead of filling it.
        self.upload
            .wait_for_capacity(2)
            .await
            .map_err(|error| DeliveryFailure::storage(error, false))?;
        self.upload.write(&bytes);
        Ok(())
    }

    /// Returns the compressed bytes of the file so far.
    fn size(&self) -> usize {
        self.compressed_bytes + self.gzip.get_ref().len()
    }

    async fn finish(mut self) -> Result<SignedFile, DeliveryFailure> {
        self.compress_text()?;
        let Self {
            name,
            mut upload,
            gzip,
            mut hash,
            ..
        } = self;
        let rest = gzip
            .finish()
            .map_err(|error| DeliveryFailure::failed(error.to_string()))?;
        hash.update(&rest);
        upload.write(&rest);
        upload
            .finish()
            .await
            .map_err(|error| DeliveryFailure::storage(error, false))?;
        Ok(SignedFile {
            file_hash_value: hex::encode(hash.finalize()),
            file_name: name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_deliveries_as_cloudtrail_lake_does() {
        let delivered = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let target = S3Location::read("s3://exports/team/lake/").unwrap();
        assert_eq!(
            folder(&target, "123456789012", "q1", delivered),
            "team/lake/AWSLogs/123456789012/CloudTrail-Lake/Query/2026/01/02/q1"
        );
        let bare = S3Location::read("s3://exports").unwrap();
        assert_eq!(
            folder(&bare, "123456789012", "q1", delivered),
            "AWSLogs/123456789012/CloudTrail-Lake/Query/2026/01/02/q1"
        );
        let files = [
            SignedFile {
                file_hash_value: "aa".into(),
                file_name: "result_1.csv.gz".into(),
            },
            SignedFile {
                file_hash_value: "bb".into(),
                file_name: "result_2.csv.gz".into(),
            },
        ];
        assert_eq!(SignFile::signing_string(&files), "aa bb");
    }
}
