//! `DurableLocalStore`: a local folder whose writes are on disk before they are reported done.
//!
//! object_store's `LocalFileSystem` writes an object to a staging file and renames (or, for a
//! conditional put, hard-links) it into place, but never calls `fsync`: a write it reported done,
//! and so an acknowledged PutAuditEvents or a committed import, can be lost when the machine
//! loses power, and a commit's file (a Delta commit, a write-ahead log segment, a catalog file)
//! can come back empty under its final name. This store writes a put the same way with the
//! staging file's data synced before it gets its final name, and the folder synced after; the
//! files of multipart uploads, copies and renames are synced once complete. Reads, lists and
//! deletes are `LocalFileSystem`'s.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};

/// A `LocalFileSystem` whose puts, multipart uploads, copies and renames are synced to disk
/// before they return (see the module documentation).
#[derive(Debug)]
pub struct DurableLocalStore {
    inner: Arc<LocalFileSystem>,
}

impl DurableLocalStore {
    /// Wraps a local file system store.
    pub fn new(inner: LocalFileSystem) -> Self {
        Self { inner: Arc::new(inner) }
    }
}

impl fmt::Display for DurableLocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DurableLocalStore({})", self.inner)
    }
}

fn io_error(path: &FsPath, source: std::io::Error) -> object_store::Error {
    if source.kind() == ErrorKind::AlreadyExists {
        return object_store::Error::AlreadyExists {
            path: path.display().to_string(),
            source: Box::new(source),
        };
    }
    object_store::Error::Generic {
        store: "DurableLocalStore",
        source: Box::new(std::io::Error::new(
            source.kind(),
            format!("{}: {source}", path.display()),
        )),
    }
}

/// Syncs a file's data and metadata to disk.
fn sync_file(path: &FsPath) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Syncs the folder holding `path`, so that the name it was given survives a power loss.
fn sync_folder_of(path: &FsPath) -> std::io::Result<()> {
    match path.parent() {
        Some(folder) => File::open(folder)?.sync_all(),
        None => Ok(()),
    }
}

/// Creates a staging file beside `path`, named as `LocalFileSystem` names its own (`name#N`, which
/// its listings leave out), creating the folders on the way.
fn staging_file(path: &FsPath) -> std::io::Result<(File, PathBuf)> {
    for attempt in 1u32.. {
        let mut staging = path.as_os_str().to_owned();
        staging.push(format!("#{attempt}"));
        let staging = PathBuf::from(staging);
        match OpenOptions::new().write(true).create_new(true).open(&staging) {
            Ok(file) => return Ok((file, staging)),
            Err(error) if error.kind() == ErrorKind::AlreadyExists => continue,
            Err(error) if error.kind() == ErrorKind::NotFound => {
                let folder = path.parent().ok_or(error)?;
                std::fs::create_dir_all(folder)?;
            }
            Err(error) => return Err(error),
        }
    }
    unreachable!("u32 attempts run out")
}

/// Returns the ETag `LocalFileSystem` gives a file: its inode, modification time and size.
fn e_tag(metadata: &std::fs::Metadata) -> String {
    let inode = std::os::unix::fs::MetadataExt::ino(metadata);
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|mtime| mtime.duration_since(SystemTime::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    format!("{inode:x}-{mtime:x}-{:x}", metadata.len())
}

/// Writes `payload` to `path` durably: staged, synced, then renamed (or hard-linked for `create`,
/// which fails if `path` exists), and the folder synced.
fn write_durably(path: &FsPath, payload: &PutPayload, create: bool) -> std::io::Result<PutResult> {
    let (mut file, staging) = staging_file(path)?;
    let written = (|| {
        for chunk in payload.iter() {
            file.write_all(chunk)?;
        }
        file.sync_all()?;
        let metadata = file.metadata()?;
        drop(file);
        if create {
            std::fs::hard_link(&staging, path)?;
            std::fs::remove_file(&staging)?;
        } else {
            std::fs::rename(&staging, path)?;
        }
        sync_folder_of(path)?;
        Ok(PutResult {
            e_tag: Some(e_tag(&metadata)),
            version: None,
        })
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    written
}

#[async_trait]
impl ObjectStore for DurableLocalStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        let create = match opts.mode {
            PutMode::Overwrite => false,
            PutMode::Create => true,
            // Refused by LocalFileSystem, with its error.
            PutMode::Update(_) => return self.inner.put_opts(location, payload, opts).await,
        };
        if !opts.attributes.is_empty() {
            return self.inner.put_opts(location, payload, opts).await;
        }
        let path = self.inner.path_to_filesystem(location)?;
        tokio::task::spawn_blocking(move || {
            write_durably(&path, &payload, create).map_err(|error| io_error(&path, error))
        })
        .await
        .map_err(|error| object_store::Error::Generic {
            store: "DurableLocalStore",
            source: Box::new(error),
        })?
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(DurableUpload {
            upload,
            path: self.inner.path_to_filesystem(location)?,
        }))
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
        self.inner.copy_opts(from, to, options).await?;
        self.synced(to).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await?;
        self.synced(to).await
    }
}

impl DurableLocalStore {
    /// Syncs a file the inner store wrote, and its folder.
    async fn synced(&self, location: &Path) -> Result<()> {
        let path = self.inner.path_to_filesystem(location)?;
        sync_written(path).await
    }
}

async fn sync_written(path: PathBuf) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        sync_file(&path)
            .and_then(|()| sync_folder_of(&path))
            .map_err(|error| io_error(&path, error))
    })
    .await
    .map_err(|error| object_store::Error::Generic {
        store: "DurableLocalStore",
        source: Box::new(error),
    })?
}

/// A `LocalFileSystem` multipart upload whose file is synced once complete.
#[derive(Debug)]
struct DurableUpload {
    upload: Box<dyn MultipartUpload>,
    path: PathBuf,
}

#[async_trait]
impl MultipartUpload for DurableUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.upload.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let result = self.upload.complete().await?;
        sync_written(self.path.clone()).await?;
        Ok(result)
    }

    async fn abort(&mut self) -> Result<()> {
        self.upload.abort().await
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt as _;
    use object_store::ObjectStoreExt as _;

    use super::*;

    #[tokio::test]
    async fn writes_as_local_file_system_does() {
        let folder = tempfile::tempdir().unwrap();
        let store = DurableLocalStore::new(LocalFileSystem::new_with_prefix(folder.path()).unwrap());
        let path = Path::from("a/b/commit.json");
        let created = store
            .put_opts(&path, PutPayload::from_static(b"first"), PutMode::Create.into())
            .await
            .unwrap();
        assert!(created.e_tag.is_some());
        let again = store
            .put_opts(&path, PutPayload::from_static(b"second"), PutMode::Create.into())
            .await;
        assert!(
            matches!(again, Err(object_store::Error::AlreadyExists { .. })),
            "{again:?}"
        );
        assert_eq!(
            store.get(&path).await.unwrap().bytes().await.unwrap().as_ref(),
            b"first"
        );
        let third = store.put(&path, PutPayload::from_static(b"third")).await.unwrap();
        assert_eq!(
            store.get(&path).await.unwrap().bytes().await.unwrap().as_ref(),
            b"third"
        );
        assert_eq!(
            third.e_tag,
            store.head(&path).await.unwrap().e_tag,
            "the ETag LocalFileSystem reads back"
        );

        let mut upload = store.put_multipart(&Path::from("a/data.parquet")).await.unwrap();
        upload.put_part(PutPayload::from_static(b"part one, ")).await.unwrap();
        upload.put_part(PutPayload::from_static(b"part two")).await.unwrap();
        upload.complete().await.unwrap();
        assert_eq!(
            store
                .get(&Path::from("a/data.parquet"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .as_ref(),
            b"part one, part two"
        );

        // No staging file is left, and listings show the objects only.
        let listed: Vec<_> = store
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(listed.len(), 2, "{listed:?}");
        let names: Vec<_> = std::fs::read_dir(folder.path().join("a/b"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("commit.json")]);
    }
}
