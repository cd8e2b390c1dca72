//! `KeyService`: the KMS keys the operator gives traillake (`--kms-keys FILE`), as there is no KMS
//! here. A store or trail whose `KmsKeyId` names one of them has what it writes encrypted with it:
//! SSE-KMS naming the key's ARN on S3 roots and trail buckets, Parquet modular encryption with the
//! key's material on local roots ([`crate::table`]).
//!
//! The file: `{"keys": [{"arn": "arn:aws:kms:REGION:ACCOUNT:key/ID", "aliases": ["alias/NAME"],
//! "enabled": true, "material": "64 hex digits"}]}`. `material` is the AES-256 key that encrypts
//! the Parquet files of local roots; `enabled: false` is a disabled key, which nothing may write or
//! read with, as on AWS.

use std::path::Path;

use serde::Deserialize;

/// Why a key reference cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// No key file was given to the server.
    #[error(
        "no KMS key service is configured on this server, so {0} cannot be used: the operator gives the keys with \
         --kms-keys FILE"
    )]
    NotConfigured(String),
    /// The key file has no key of that ARN or alias.
    #[error("the KMS key {0} does not exist")]
    NotFound(String),
    /// The key is disabled.
    #[error("the KMS key {0} is disabled")]
    Disabled(String),
}

/// One key of the key file.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Key {
    /// The key's ARN: `arn:aws:kms:REGION:ACCOUNT:key/ID`.
    pub arn: String,
    /// Its aliases, `alias/NAME`, in the key's account and Region.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Whether the key may be used.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// The AES-256 key of Parquet encryption, as 64 hex digits.
    material: String,
}

fn enabled() -> bool {
    true
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("arn", &self.arn)
            .field("aliases", &self.aliases)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// Returns the key's 32 bytes of AES-256 material.
    pub fn material(&self) -> Vec<u8> {
        hex::decode(&self.material).expect("checked when the file was read")
    }

    /// Returns the key's material as hex digits, as DataFusion's Parquet options take it.
    pub fn material_hex(&self) -> &str {
        &self.material
    }

    /// Returns the ARN of one of the key's aliases (`alias/NAME`) in the key's account and Region.
    fn alias_arn(&self, alias: &str) -> String {
        let prefix = self.arn.split_once(":key/").map_or("", |(prefix, _)| prefix);
        format!("{prefix}:{alias}")
    }
}

/// The operator's KMS keys.
#[derive(Debug, Clone, Default)]
pub struct KeyService {
    keys: Vec<Key>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    keys: Vec<Key>,
}

impl KeyService {
    /// Reads a key file; the error names the file and the key at fault.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("reading KMS key file {}: {error}", path.display()))?;
        Self::parse(&text).map_err(|error| format!("KMS key file {}: {error}", path.display()))
    }

    /// Parses the text of a key file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: KeyFile = serde_json::from_str(text).map_err(|error| error.to_string())?;
        let mut names = std::collections::HashSet::new();
        for key in &file.keys {
            let parts: Vec<&str> = key.arn.splitn(6, ':').collect();
            let well_formed = matches!(parts[..], ["arn", "aws", "kms", region, account, resource]
                if !region.is_empty()
                    && traillake_api::arn::is_account_id(account)
                    && resource.strip_prefix("key/").is_some_and(|id| !id.is_empty() && !id.contains('/')));
            if !well_formed {
                return Err(format!(
                    "'{}' is not the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)",
                    key.arn
                ));
            }
            if key.material.len() != 64 || hex::decode(&key.material).is_err() {
                return Err(format!(
                    "the material of key {} is not 64 hex digits (an AES-256 key)",
                    key.arn
                ));
            }
            for alias in &key.aliases {
                let name_ok = alias.strip_prefix("alias/").is_some_and(|name| {
                    !name.is_empty()
                        && !name.starts_with("aws/")
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
                });
                if !name_ok {
                    return Err(format!(
                        "'{alias}' of key {} is not an alias name (alias/ and letters, digits, '/', '_', '-')",
                        key.arn
                    ));
                }
            }
            for name in std::iter::once(key.arn.clone()).chain(key.aliases.iter().map(|alias| key.alias_arn(alias))) {
                if !names.insert(name.clone()) {
                    return Err(format!("{name} is given twice"));
                }
            }
        }
        Ok(Self { keys: file.keys })
    }

    /// Returns the enabled key a reference names: the full ARN of a key or of one of its aliases,
    /// as `traillake_api::arn::kms_key_arn` makes it.
    pub fn find(&self, reference: &str) -> Result<&Key, KeyProblem> {
        let key = self
            .keys
            .iter()
            .find(|key| key.arn == reference || key.aliases.iter().any(|alias| key.alias_arn(alias) == reference))
            .ok_or_else(|| KeyProblem::NotFound(reference.to_string()))?;
        if !key.enabled {
            return Err(KeyProblem::Disabled(reference.to_string()));
        }
        Ok(key)
    }
}

/// Returns the enabled key a reference names in `keys`, or why it cannot be used (no key service
/// among them).
pub fn find_key<'a>(keys: Option<&'a KeyService>, reference: &str) -> Result<&'a Key, KeyProblem> {
    keys.ok_or_else(|| KeyProblem::NotConfigured(reference.to_string()))?
        .find(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn file(aliases: &str, enabled: bool, material: &str) -> String {
        format!(
            r#"{{"keys": [{{"arn": "{ARN}", "aliases": {aliases}, "enabled": {enabled}, "material": "{material}"}}]}}"#
        )
    }

    #[test]
    fn finds_keys_by_arn_and_alias() {
        let keys = KeyService::parse(&file(r#"["alias/lake"]"#, true, &"ab".repeat(32))).unwrap();
        assert_eq!(keys.find(ARN).unwrap().material(), vec![0xab; 32]);
        let alias = "arn:aws:kms:us-east-1:123456789012:alias/lake";
        assert_eq!(keys.find(alias).unwrap().arn, ARN);
        for missing in [
            "arn:aws:kms:us-east-1:123456789012:alias/other",
            "arn:aws:kms:us-east-1:210987654321:alias/lake",
        ] {
            assert_eq!(keys.find(missing).unwrap_err(), KeyProblem::NotFound(missing.into()));
        }
        assert!(
            !format!("{:?}", keys.find(ARN).unwrap()).contains("abab"),
            "Debug hides the material"
        );
    }

    #[test]
    fn a_disabled_key_is_refused_and_no_service_is_named() {
        let keys = KeyService::parse(&file("[]", false, &"00".repeat(32))).unwrap();
        assert_eq!(keys.find(ARN).unwrap_err(), KeyProblem::Disabled(ARN.into()));
        let problem = find_key(None, ARN).unwrap_err();
        assert!(problem.to_string().contains("--kms-keys"), "{problem}");
    }

    #[test]
    fn bad_files_are_named() {
        for (text, expected) in [
            (file("[]", true, "00"), "64 hex digits"),
            (file(r#"["lake"]"#, true, &"00".repeat(32)), "not an alias name"),
            (file(r#"["alias/aws/s3"]"#, true, &"00".repeat(32)), "not an alias name"),
            (file(r#"["alias/a", "alias/a"]"#, true, &"00".repeat(32)), "given twice"),
            (
                file("[]", true, &"00".repeat(32)).replace(":key/", ":alias/"),
                "not the ARN of a KMS key",
            ),
            (r#"{"keys": [], "other": 1}"#.to_string(), "unknown field"),
        ] {
            let error = KeyService::parse(&text).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}
