//! `LakeRoot`: the one place everything traillake knows lives, a local folder or
//! `s3://bucket/prefix` on any S3-compatible server, reached through object_store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use traillake_api::s3_location::S3Location;
use url::Url;

use crate::Result;
use crate::conditional_put::SettledPutStore;
use crate::durable_local::DurableLocalStore;
use crate::error::LakeError;
use crate::keys::KeyService;

/// Where the lake lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootLocation {
    /// A folder on this machine.
    Local(PathBuf),
    /// A bucket and a key prefix (possibly empty) on an S3-compatible server.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix, without leading or trailing `/`.
        prefix: String,
    },
}

impl RootLocation {
    /// Parses `s3://bucket/prefix` (read as every S3 URI of the API is, by [`S3Location`]) or a
    /// local path.
    pub fn parse(value: &str) -> Result<Self> {
        if !value.starts_with("s3://") {
            return Ok(RootLocation::Local(PathBuf::from(value)));
        }
        let location = S3Location::read(value)
            .map_err(|problem| LakeError::InvalidRoot(format!("{value} {}", problem.reason())))?;
        Ok(RootLocation::S3 {
            prefix: location.prefix.trim_end_matches('/').to_string(),
            bucket: location.bucket,
        })
    }
}

impl std::fmt::Display for RootLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootLocation::Local(path) => write!(f, "{}", path.display()),
            RootLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            RootLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Returns the object store of a bucket on the S3-compatible server the environment names: the
/// usual `AWS_*` variables, with `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) for a server other
/// than AWS. Lake roots and import sources are both reached this way. Conditional puts refused
/// after a lost reply are settled ([`SettledPutStore`]).
pub fn s3_bucket(bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    s3_bucket_encrypted(bucket, None)
}

/// Returns the object store of a bucket as [`s3_bucket`] does, whose puts ask the server to
/// encrypt objects with a KMS key (SSE-KMS) when one is named.
pub fn s3_bucket_encrypted(bucket: &str, kms_key_id: Option<&str>) -> Result<Arc<dyn ObjectStore>> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(key) = kms_key_id {
        builder = builder.with_sse_kms_encryption(key);
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").or_else(|_| std::env::var("AWS_ENDPOINT_URL"));
    if let Ok(endpoint) = endpoint {
        builder = builder
            .with_endpoint(&endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    Ok(Arc::new(SettledPutStore::new(Arc::new(builder.build()?))))
}

/// The lake's root, opened: its location and the object store that reads and writes under it.
#[derive(Debug, Clone)]
pub struct LakeRoot {
    location: RootLocation,
    store: Arc<dyn ObjectStore>,
    /// The store of the whole file system or bucket the root is in, for table formats that
    /// address files by URL.
    base_store: Arc<dyn ObjectStore>,
    /// The root as a URL ending in `/`: `file:///abs/path/` or `s3://bucket/prefix/`.
    url: Url,
    /// The operator's KMS keys, when given (`--kms-keys`).
    keys: Option<Arc<KeyService>>,
    /// The bucket's object stores asking for SSE-KMS, by key ARN, made once each.
    encrypted_stores: Arc<Mutex<HashMap<String, Arc<dyn ObjectStore>>>>,
}

impl LakeRoot {
    /// Opens the root, creating a local folder if it is missing. An S3 root takes its settings
    /// from the usual `AWS_*` variables, `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) naming an
    /// S3-compatible server.
    pub fn open(location: RootLocation) -> Result<Self> {
        let (store, base_store, url): (Arc<dyn ObjectStore>, Arc<dyn ObjectStore>, Url) = match &location {
            RootLocation::Local(path) => {
                let io_error = |source| LakeError::Io {
                    context: format!("creating the lake root {}", path.display()),
                    source,
                };
                std::fs::create_dir_all(path).map_err(io_error)?;
                let absolute = std::fs::canonicalize(path).map_err(io_error)?;
                let url = Url::from_directory_path(&absolute)
                    .map_err(|()| LakeError::InvalidRoot(format!("{}: not an absolute path", absolute.display())))?;
                (
                    Arc::new(DurableLocalStore::new(LocalFileSystem::new_with_prefix(&absolute)?)),
                    Arc::new(DurableLocalStore::new(LocalFileSystem::new())),
                    url,
                )
            }
            RootLocation::S3 { bucket, prefix } => {
                let s3 = s3_bucket(bucket)?;
                let folder = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                };
                let url = Url::parse(&format!("s3://{bucket}/{folder}"))
                    .map_err(|error| LakeError::InvalidRoot(format!("{location}: {error}")))?;
                if prefix.is_empty() {
                    (Arc::clone(&s3), s3, url)
                } else {
                    (Arc::new(PrefixStore::new(Arc::clone(&s3), prefix.as_str())), s3, url)
                }
            }
        };
        Ok(Self {
            location,
            store,
            base_store,
            url,
            keys: None,
            encrypted_stores: Arc::default(),
        })
    }

    /// Returns the root with the operator's KMS keys, which encrypt the stores and trails whose
    /// `KmsKeyId` names them.
    pub fn with_keys(mut self, keys: KeyService) -> Self {
        self.keys = Some(Arc::new(keys));
        self
    }

    /// Returns the operator's KMS keys, `None` when no key service is configured.
    pub fn keys(&self) -> Option<&KeyService> {
        self.keys.as_deref()
    }

    /// Returns the object store of the bucket holding an S3 root whose puts ask for SSE-KMS with
    /// `key_arn`; `None` for a local root.
    pub fn base_store_encrypted(&self, key_arn: &str) -> Result<Option<Arc<dyn ObjectStore>>> {
        match &self.location {
            RootLocation::Local(_) => Ok(None),
            RootLocation::S3 { bucket, .. } => {
                let mut stores = self.encrypted_stores.lock().expect("encrypted stores");
                if let Some(store) = stores.get(key_arn) {
                    return Ok(Some(Arc::clone(store)));
                }
                let store = s3_bucket_encrypted(bucket, Some(key_arn))?;
                stores.insert(key_arn.to_string(), Arc::clone(&store));
                Ok(Some(store))
            }
        }
    }

    /// Returns where the root is.
    pub fn location(&self) -> &RootLocation {
        &self.location
    }

    /// Returns the object store of the root; paths are relative to the root.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Returns the object store of the file system or bucket holding the root, whose paths are
    /// those of [`LakeRoot::url`]s.
    pub fn base_store(&self) -> &Arc<dyn ObjectStore> {
        &self.base_store
    }

    /// Returns the URL of the root itself, ending in `/`.
    pub fn root_url(&self) -> &Url {
        &self.url
    }

    /// Returns the URL of a folder under the root, ending in `/`.
    pub fn url(&self, folder: &str) -> Url {
        self.url
            .join(&format!("{}/", folder.trim_matches('/')))
            .expect("a relative folder joins the root URL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            RootLocation::parse("s3://lake/a/b/").unwrap(),
            RootLocation::S3 {
                bucket: "lake".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            RootLocation::parse("s3://lake").unwrap(),
            RootLocation::S3 {
                bucket: "lake".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            RootLocation::parse("./data").unwrap(),
            RootLocation::Local("./data".into())
        );
        assert!(RootLocation::parse("s3:///x").is_err());
    }
}
