//! `SettledPutStore`: an object store whose conditional puts survive a lost reply.
//!
//! An S3-compatible server can store an object and still fail the reply (a 500, a reset
//! connection). object_store then retries, and a retried conditional put (`If-None-Match: *` for a
//! new object, `If-Match` for an update) is refused, because the first attempt took effect. The
//! caller would take its own write for somebody else's: a write-ahead log segment or a Delta commit
//! reported failed although stored (and stored again when retried), the root's lease taken for
//! another server's. This store settles such a refusal by reading the object back: if it holds
//! exactly the bytes that were put, the put succeeded. Every object traillake writes conditionally
//! is unique to its writer (a commit names fresh files, a segment its writer's folder, a lease its
//! process and heartbeat), so equal bytes mean the writer's own write.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt as _,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// An object store whose conditional puts that were refused after a lost reply are settled by
/// reading the object back (see the module documentation).
#[derive(Debug)]
pub struct SettledPutStore {
    inner: Arc<dyn ObjectStore>,
}

impl SettledPutStore {
    /// Wraps a store.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }

    /// Returns the result of the put if the object holds exactly `payload`.
    async fn own_write(&self, location: &Path, payload: &PutPayload) -> Option<PutResult> {
        let stored = self.inner.get(location).await.ok()?;
        let (e_tag, version) = (stored.meta.e_tag.clone(), stored.meta.version.clone());
        let bytes = stored.bytes().await.ok()?;
        let put: Vec<u8> = payload.iter().flat_map(|chunk| chunk.iter().copied()).collect();
        (bytes.as_ref() == put.as_slice()).then_some(PutResult { e_tag, version })
    }
}

impl fmt::Display for SettledPutStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SettledPutStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for SettledPutStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        let conditional = !matches!(opts.mode, PutMode::Overwrite);
        let outcome = self.inner.put_opts(location, payload.clone(), opts).await;
        match outcome {
            Err(error @ (object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }))
                if conditional =>
            {
                match self.own_write(location, &payload).await {
                    Some(result) => {
                        tracing::info!(%location, "a conditional put was refused after a lost reply, but the object is the one put");
                        Ok(result)
                    }
                    None => Err(error),
                }
            }
            other => other,
        }
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    /// A store that stores every put, then fails the first reply of each, as a server whose
    /// reply is lost does (object_store's retry of it is the second call).
    #[derive(Debug, Default)]
    struct LostFirstReply {
        inner: InMemory,
        lost: std::sync::Mutex<std::collections::HashSet<Path>>,
    }

    impl fmt::Display for LostFirstReply {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("LostFirstReply")
        }
    }

    #[async_trait]
    impl ObjectStore for LostFirstReply {
        async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
            let result = self.inner.put_opts(location, payload.clone(), opts.clone()).await?;
            if self.lost.lock().unwrap().insert(location.clone()) {
                // The retry, as object_store sends it after the lost reply.
                return self.inner.put_opts(location, payload, opts).await;
            }
            Ok(result)
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(locations)
        }
        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[tokio::test]
    async fn settles_its_own_writes_and_refuses_others() {
        let store = SettledPutStore::new(Arc::new(LostFirstReply::default()));
        let path = Path::from("a/segment");
        let created = store
            .put_opts(&path, PutPayload::from_static(b"mine"), PutMode::Create.into())
            .await
            .unwrap();
        let update = object_store::UpdateVersion {
            e_tag: created.e_tag,
            version: created.version,
        };
        store
            .put_opts(
                &path,
                PutPayload::from_static(b"mine, later"),
                PutMode::Update(update.clone()).into(),
            )
            .await
            .unwrap();
        assert_eq!(
            store.get(&path).await.unwrap().bytes().await.unwrap().as_ref(),
            b"mine, later"
        );

        // Somebody else's object, or a stale version, stays a refusal.
        let other = store
            .put_opts(&path, PutPayload::from_static(b"theirs"), PutMode::Create.into())
            .await;
        assert!(
            matches!(other, Err(object_store::Error::AlreadyExists { .. })),
            "{other:?}"
        );
        let stale = store
            .put_opts(&path, PutPayload::from_static(b"stale"), PutMode::Update(update).into())
            .await;
        assert!(
            matches!(stale, Err(object_store::Error::Precondition { .. })),
            "{stale:?}"
        );
    }
}
