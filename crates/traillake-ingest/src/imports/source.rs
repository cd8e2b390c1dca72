//! The bucket an import reads, on the S3-compatible server the environment names (see
//! `traillake_lake::root::s3_bucket`): listing its keys in order from a cursor, and fetching
//! objects.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt as _};

use super::ImportError;

/// The bucket and key prefix of an import.
#[derive(Debug, Clone)]
pub struct TrailSource {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl TrailSource {
    /// Returns the source of `bucket` and `prefix` (empty, or ending with `/`).
    pub fn open(bucket: &str, prefix: &str) -> Result<Self, ImportError> {
        Ok(Self {
            store: traillake_lake::root::s3_bucket(bucket)?,
            prefix: prefix.to_string(),
        })
    }

    /// Returns a source over any object store, for tests and local sources.
    pub fn over(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.to_string(),
        }
    }

    /// Checks with one listing request that the bucket exists and its prefix can be listed.
    pub async fn check_readable(&self) -> Result<(), object_store::Error> {
        self.store
            .list_with_delimiter(self.list_prefix().as_ref())
            .await
            .map(|_| ())
    }

    /// Returns the source's objects in key order, after `cursor` when one is given.
    pub fn list(&self, cursor: Option<&str>) -> BoxStream<'static, Result<ObjectMeta, object_store::Error>> {
        let prefix = self.list_prefix();
        match cursor {
            Some(cursor) => self.store.list_with_offset(prefix.as_ref(), &key_path(cursor)),
            None => self.store.list(prefix.as_ref()),
        }
        .boxed()
    }

    /// Returns the folders directly under `folder` (a key prefix ending in `/`, relative to the
    /// bucket), each as a key prefix ending in `/`.
    pub async fn folders(&self, folder: &str) -> Result<Vec<String>, object_store::Error> {
        let under = key_path(folder.trim_end_matches('/'));
        let listing = self.store.list_with_delimiter(Some(&under)).await?;
        Ok(listing
            .common_prefixes
            .iter()
            .map(|prefix| format!("{prefix}/"))
            .collect())
    }

    /// Returns the objects under `folder` (a key prefix ending in `/`) in key order, after
    /// `offset` when one is given.
    pub fn list_under(
        &self,
        folder: &str,
        offset: Option<&str>,
    ) -> BoxStream<'static, Result<ObjectMeta, object_store::Error>> {
        let under = key_path(folder.trim_end_matches('/'));
        match offset {
            Some(offset) => self.store.list_with_offset(Some(&under), &key_path(offset)),
            None => self.store.list(Some(&under)),
        }
        .boxed()
    }

    /// Returns the key prefix of the source: empty, or ending with `/`.
    pub fn prefix(&self) -> String {
        match self.prefix.trim_end_matches('/') {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        }
    }

    /// Returns an object's bytes.
    pub async fn fetch(&self, key: &str) -> Result<Bytes, object_store::Error> {
        self.store.get(&key_path(key)).await?.bytes().await
    }

    fn list_prefix(&self) -> Option<Path> {
        let prefix = self.prefix.trim_end_matches('/');
        (!prefix.is_empty()).then(|| Path::from(prefix))
    }
}

/// Returns the path of an object key as the listing gave it (not encoded again).
fn key_path(key: &str) -> Path {
    Path::parse(key).unwrap_or_else(|_| Path::from(key))
}
