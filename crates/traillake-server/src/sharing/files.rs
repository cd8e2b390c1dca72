//! The data files of federated stores, served by traillake under URLs it signs: a query's answer
//! names each Parquet file as
//! `/delta-sharing/files/<store>/<path in its table>?expires=<ms>&signature=<hex>`, an
//! HMAC-SHA256 of the store, the path and the expiry under a key made when the server starts.
//! A reader needs no access to the root's folder or bucket, the URL works for
//! [`URL_LIFETIME_MS`] (or until the server restarts, or the store's federation is disabled), and
//! `HEAD` and `Range` requests are answered, as the readers of remote Parquet files send them.

use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use futures::TryStreamExt as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStoreExt as _};
use sha2::Sha256;
use traillake_lake::table::table_folder;

use super::{SharingError, SharingState, query_parameter};

/// How long a file URL works: one hour, well within the time a removed file stays readable (the
/// server keeps files a compaction removed for at least two hours).
pub const URL_LIFETIME_MS: i64 = 3600 * 1000;

/// The key file URLs are signed with.
pub(super) struct UrlKey([u8; 32]);

impl UrlKey {
    /// Returns a new random key.
    pub(super) fn random() -> Self {
        Self(rand::random())
    }

    fn mac(&self, store_id: &str, path: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(format!("{store_id}\n{path}\n{expires}").as_bytes());
        mac
    }

    /// Returns the query string that signs `path` of a store until `expires` (Unix milliseconds).
    pub(super) fn sign(&self, store_id: &str, path: &str, expires: i64) -> String {
        let signature = hex::encode(self.mac(store_id, path, expires).finalize().into_bytes());
        format!("expires={expires}&signature={signature}")
    }

    fn verify(&self, store_id: &str, path: &str, expires: i64, signature: &str) -> bool {
        hex::decode(signature).is_ok_and(|tag| self.mac(store_id, path, expires).verify_slice(&tag).is_ok())
    }
}

/// `GET` or `HEAD` of a signed file URL.
pub(super) async fn serve(
    State(state): State<Arc<SharingState>>,
    method: Method,
    headers: HeaderMap,
    UrlPath((store_id, path)): UrlPath<(String, String)>,
    uri: Uri,
) -> Result<Response, SharingError> {
    let expires: i64 = query_parameter(&uri, "expires")
        .and_then(|value| value.parse().ok())
        .unwrap_or_default();
    let signature = query_parameter(&uri, "signature").unwrap_or_default();
    if !state.key.verify(&store_id, &path, expires, &signature) {
        return Err(SharingError::forbidden("the file URL's signature is not valid"));
    }
    if expires < chrono::Utc::now().timestamp_millis() {
        return Err(SharingError::forbidden(
            "the file URL has expired; query the table again for new URLs",
        ));
    }
    let store = state
        .catalog
        .federated_event_data_stores()
        .await
        .into_iter()
        .find(|store| store.id == store_id)
        .ok_or_else(|| SharingError::forbidden("the store of this file is no longer federated"))?;
    let relative = Path::parse(&path).map_err(|_| SharingError::not_found("no such file"))?;
    let location: Path = Path::from(table_folder(&store.id))
        .parts()
        .chain(relative.parts())
        .collect();
    let files = state.root.store();
    let size = files
        .head(&location)
        .await
        .map_err(|error| match error {
            object_store::Error::NotFound { .. } => SharingError::not_found("the file no longer exists"),
            other => SharingError::internal(&other),
        })?
        .size;
    let range = match headers.get(header::RANGE).and_then(|value| value.to_str().ok()) {
        Some(value) => Some(byte_range(value, size).ok_or_else(|| SharingError::range(size))?),
        None => None,
    };
    let builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream");
    let (builder, read) = match &range {
        Some(range) => (
            builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(
                    header::CONTENT_RANGE,
                    format!("bytes {}-{}/{size}", range.start, range.end - 1),
                )
                .header(header::CONTENT_LENGTH, range.end - range.start),
            range.clone(),
        ),
        None => (
            builder.status(StatusCode::OK).header(header::CONTENT_LENGTH, size),
            0..size,
        ),
    };
    if method == Method::HEAD || read.is_empty() {
        return Ok(builder.body(Body::empty()).expect("a file response builds"));
    }
    let options = GetOptions {
        range: Some(GetRange::Bounded(read)),
        ..Default::default()
    };
    let result = files
        .get_opts(&location, options)
        .await
        .map_err(|error| SharingError::internal(&error))?;
    let body = Body::from_stream(result.into_stream().map_err(std::io::Error::other));
    Ok(builder.body(body).expect("a file response builds"))
}

/// Returns the bytes one `Range` header asks of a file of `size` bytes (`bytes=a-b`, `bytes=a-`,
/// `bytes=-n`), or `None` when it is not one satisfiable range.
fn byte_range(value: &str, size: u64) -> Option<Range<u64>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let suffix: u64 = suffix.parse().ok()?;
            size.saturating_sub(suffix)..size
        }
        (start, "") => start.parse().ok()?..size,
        (start, end) => {
            let end: u64 = end.parse().ok()?;
            start.parse().ok()?..(end + 1).min(size)
        }
    };
    (range.start < range.end || (size == 0 && range.start == 0)).then_some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_byte_ranges() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some(0..100));
        assert_eq!(byte_range("bytes=900-", 1000), Some(900..1000));
        assert_eq!(byte_range("bytes=-8", 1000), Some(992..1000));
        assert_eq!(byte_range("bytes=990-2000", 1000), Some(990..1000));
        assert_eq!(byte_range("bytes=1000-", 1000), None);
        assert_eq!(byte_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(byte_range("lines=0-1", 1000), None);
    }

    #[test]
    fn signatures_bind_store_path_and_expiry() {
        let key = UrlKey::random();
        let query = key.sign("s", "stores/s/table/a.parquet", 10);
        let signature = query.split("signature=").nth(1).unwrap();
        assert!(key.verify("s", "stores/s/table/a.parquet", 10, signature));
        assert!(!key.verify("t", "stores/s/table/a.parquet", 10, signature));
        assert!(!key.verify("s", "stores/s/table/b.parquet", 10, signature));
        assert!(!key.verify("s", "stores/s/table/a.parquet", 11, signature));
        assert!(!UrlKey::random().verify("s", "stores/s/table/a.parquet", 10, signature));
        assert!(!key.verify("s", "stores/s/table/a.parquet", 10, "zz"));
    }
}
