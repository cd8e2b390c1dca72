//! `SigningKeys`: the RSA key pairs that sign query result deliveries and trail digest files, kept
//! under the lake root as
//! `signing-keys/<fingerprint>.json` (the private key too: the root is the operator's, as the
//! tables are). One key is current at a time; when its validity period ends, the next signature
//! makes a new one, and the old keys stay listed so that older sign files can still be checked.

use std::sync::Arc;

use crate::root::LakeRoot;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt as _;
use md5::{Digest as _, Md5};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use rsa::pkcs1::{DecodeRsaPublicKey as _, EncodeRsaPublicKey as _};
use rsa::pkcs1v15::{Signature, SigningKey as RsaSigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

type Result<T, E = SigningError> = std::result::Result<T, E>;

const KEYS: &str = "signing-keys";
const KEY_BITS: usize = 2048;

/// Why a key could not be made or read, or a signature could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// RSA failed to make a key.
    #[error("making a key: {0}")]
    Rsa(#[from] rsa::Error),
    /// The task that makes a key failed.
    #[error("making a key: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A public key could not be written or read as PKCS#1 DER.
    #[error("the public key is not PKCS#1 DER: {0}")]
    PublicKey(#[from] rsa::pkcs1::Error),
    /// A private key could not be written or read as PKCS#8 DER.
    #[error("the private key is not PKCS#8 DER: {0}")]
    PrivateKey(#[from] rsa::pkcs8::Error),
    /// A kept key file is not JSON of a key.
    #[error("the key file is unreadable: {0}")]
    File(#[from] serde_json::Error),
    /// A kept key is not base64.
    #[error("the key is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// A kept key's fingerprint is not its public key's.
    #[error("the fingerprint does not match the public key")]
    Fingerprint,
    /// A signature is not an RSA signature.
    #[error("the signature is malformed: {0}")]
    Malformed(rsa::signature::Error),
    /// The root could not be read or written.
    #[error("keeping the keys under the root: {0}")]
    Storage(#[from] object_store::Error),
    /// A signature is not the key's signature of the message.
    #[error("the signature does not match the files' hashes")]
    Mismatch,
}

/// A signing key pair and the time it is valid.
#[derive(Debug)]
pub struct SigningKey {
    /// Hex MD5 of the DER public key: the sign file's `publicKeyFingerprint`.
    pub fingerprint: String,
    /// When the key became current.
    pub valid_from: DateTime<Utc>,
    /// When the key stops being current.
    pub valid_until: DateTime<Utc>,
    /// The public key, DER encoded in PKCS#1 (ListPublicKeys' `Value`).
    pub public_key_der: Vec<u8>,
    private_key: RsaPrivateKey,
}

impl SigningKey {
    /// Returns the SHA256withRSA (PKCS#1 v1.5) signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        RsaSigningKey::<Sha256>::new(self.private_key.clone())
            .sign(message)
            .to_vec()
    }
}

/// Checks a SHA256withRSA signature of `message` with a DER (PKCS#1) public key.
pub fn verify_signature(public_key_der: &[u8], message: &[u8], signature: &[u8]) -> Result<(), SigningError> {
    let public_key = RsaPublicKey::from_pkcs1_der(public_key_der)?;
    let signature = Signature::try_from(signature).map_err(SigningError::Malformed)?;
    VerifyingKey::<Sha256>::new(public_key)
        .verify(message, &signature)
        .map_err(|_| SigningError::Mismatch)
}

/// Returns the hex MD5 fingerprint of a DER public key.
pub fn fingerprint(public_key_der: &[u8]) -> String {
    hex::encode(Md5::digest(public_key_der))
}

/// A key as kept under the root.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    fingerprint: String,
    valid_from: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    /// Base64 of the DER public key (PKCS#1).
    public_key: String,
    /// Base64 of the DER private key (PKCS#8).
    private_key: String,
}

/// The signing keys of a lake root.
#[derive(Debug)]
pub struct SigningKeys {
    root: LakeRoot,
    period: Duration,
    /// Every key, oldest first.
    keys: Mutex<Vec<Arc<SigningKey>>>,
}

impl SigningKeys {
    /// Loads the keys kept under the root; each new key is current for `period`.
    pub async fn open(root: LakeRoot, period: std::time::Duration) -> Result<Self> {
        let period = Duration::from_std(period)
            .unwrap_or(Duration::days(30))
            .max(Duration::seconds(1));
        let store = Arc::clone(root.store());
        let metas: Vec<_> = store.list(Some(&Path::from(KEYS))).try_collect().await?;
        let mut keys = Vec::new();
        for meta in metas {
            let bytes = store.get(&meta.location).await?.bytes().await?;
            match read_key(&bytes) {
                Ok(key) => keys.push(Arc::new(key)),
                Err(error) => tracing::warn!(path = %meta.location, %error, "skipping an unreadable signing key"),
            }
        }
        keys.sort_by_key(|key| key.valid_from);
        Ok(Self {
            root,
            period,
            keys: Mutex::new(keys),
        })
    }

    /// Returns the key current at `now`, making (and keeping) a new one when none is.
    pub async fn current(&self, now: DateTime<Utc>) -> Result<Arc<SigningKey>> {
        let mut keys = self.keys.lock().await;
        if let Some(key) = keys.last()
            && key.valid_from <= now
            && now < key.valid_until
        {
            return Ok(Arc::clone(key));
        }
        let key = Arc::new(self.make_key(now).await?);
        keys.push(Arc::clone(&key));
        tracing::info!(fingerprint = %key.fingerprint, valid_until = %key.valid_until, "made a new signing key");
        Ok(key)
    }

    /// Returns the keys valid at some time between `start` and `end`, oldest first; a range that
    /// reaches now includes the current key.
    pub async fn valid_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Arc<SigningKey>>> {
        if start <= now && now <= end {
            self.current(now).await?;
        }
        let keys = self.keys.lock().await;
        Ok(keys
            .iter()
            .filter(|key| key.valid_from <= end && start < key.valid_until)
            .cloned()
            .collect())
    }

    /// Returns the key of a fingerprint, if the root keeps it.
    pub async fn by_fingerprint(&self, fingerprint: &str) -> Option<Arc<SigningKey>> {
        self.keys
            .lock()
            .await
            .iter()
            .find(|key| key.fingerprint == fingerprint)
            .cloned()
    }

    async fn make_key(&self, now: DateTime<Utc>) -> Result<SigningKey> {
        let private_key =
            tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)).await??;
        let public_key_der = RsaPublicKey::from(&private_key).to_pkcs1_der()?.as_bytes().to_vec();
        let private_der = private_key.to_pkcs8_der()?;
        // Whole seconds, as sign files write queryCompleteTime.
        let valid_from = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let key = SigningKey {
            fingerprint: fingerprint(&public_key_der),
            valid_from,
            valid_until: valid_from + self.period,
            public_key_der,
            private_key,
        };
        let file = KeyFile {
            fingerprint: key.fingerprint.clone(),
            valid_from: key.valid_from,
            valid_until: key.valid_until,
            public_key: BASE64.encode(&key.public_key_der),
            private_key: BASE64.encode(private_der.as_bytes()),
        };
        let path = Path::from(format!("{KEYS}/{}.json", key.fingerprint));
        let bytes = serde_json::to_vec_pretty(&file).expect("a key file serializes");
        self.root.store().put(&path, PutPayload::from(bytes)).await?;
        Ok(key)
    }
}

fn read_key(bytes: &[u8]) -> Result<SigningKey, SigningError> {
    let file: KeyFile = serde_json::from_slice(bytes)?;
    let public_key_der = BASE64.decode(&file.public_key)?;
    let private_der = BASE64.decode(&file.private_key)?;
    let private_key = RsaPrivateKey::from_pkcs8_der(&private_der)?;
    if fingerprint(&public_key_der) != file.fingerprint {
        return Err(SigningError::Fingerprint);
    }
    Ok(SigningKey {
        fingerprint: file.fingerprint,
        valid_from: file.valid_from,
        valid_until: file.valid_until,
        public_key_der,
        private_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_sign_rotate_and_come_back_after_a_restart() {
        let folder = tempfile::tempdir().unwrap();
        let root = LakeRoot::open(crate::RootLocation::Local(folder.path().to_path_buf())).unwrap();
        let keys = SigningKeys::open(root.clone(), std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let now = Utc::now();
        let first = keys.current(now).await.unwrap();
        assert_eq!(first.fingerprint.len(), 32);
        assert!(
            Arc::ptr_eq(&first, &keys.current(now + Duration::seconds(30)).await.unwrap()),
            "still current"
        );
        let signature = first.sign(b"aaa bbb");
        verify_signature(&first.public_key_der, b"aaa bbb", &signature).unwrap();
        assert!(verify_signature(&first.public_key_der, b"aaa bbc", &signature).is_err());

        let second = keys.current(now + Duration::seconds(61)).await.unwrap();
        assert_ne!(first.fingerprint, second.fingerprint);
        let both = keys
            .valid_between(now, now + Duration::seconds(61), now + Duration::seconds(61))
            .await
            .unwrap();
        assert_eq!(both.len(), 2);

        let reopened = SigningKeys::open(root, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let kept = reopened
            .by_fingerprint(&first.fingerprint)
            .await
            .expect("kept under the root");
        verify_signature(&kept.public_key_der, b"aaa bbb", &kept.sign(b"aaa bbb")).unwrap();
        assert_eq!(kept.valid_until, first.valid_until);
    }
}
