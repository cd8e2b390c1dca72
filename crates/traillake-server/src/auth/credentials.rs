//! `Credentials`: the access keys the operator configures, each with its secret, the account it
//! acts for and, for temporary credentials, the session token its requests must carry.
//!
//! The file is JSON:
//! `{"credentials": [{"accessKeyId": "...", "secretAccessKey": "...", "accountId": "123456789012",
//! "sessionToken": "...", "userName": "alice", "arn": "arn:aws:iam::123456789012:user/alice"}]}`
//! (`sessionToken`, `userName` and `arn` optional; the last two name the key's user in the
//! CloudTrail records of its calls).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use traillake_api::arn::is_account_id;

/// One configured access key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessKey {
    /// The access key ID, as clients name it in the signature's scope.
    pub access_key_id: String,
    /// The secret the signatures are made with.
    pub secret_access_key: String,
    /// The account the key acts for.
    pub account_id: String,
    /// The session token requests signed with the key must carry, for temporary credentials.
    #[serde(default)]
    pub session_token: Option<String>,
    /// The name of the key's user (or role session), as the records of its calls give it.
    #[serde(default)]
    pub user_name: Option<String>,
    /// The ARN of the key's user or assumed role, as the records of its calls give it.
    #[serde(default)]
    pub arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    credentials: Vec<AccessKey>,
}

/// The configured access keys, by ID.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    keys: HashMap<String, AccessKey>,
}

impl Credentials {
    /// Reads a credentials file; the error names the file, the entry and the field at fault.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("reading credentials file {}: {error}", path.display()))?;
        Self::parse(&text).map_err(|error| format!("credentials file {}: {error}", path.display()))
    }

    /// Parses the text of a credentials file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: CredentialsFile = serde_json::from_str(text).map_err(|error| error.to_string())?;
        if file.credentials.is_empty() {
            return Err("credentials holds no access key".to_string());
        }
        let mut keys = HashMap::new();
        for (index, key) in file.credentials.into_iter().enumerate() {
            let id = &key.access_key_id;
            if !(16..=128).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!(
                    "credentials[{index}].accessKeyId must be 16 to 128 letters and digits"
                ));
            }
            if key.secret_access_key.len() < 16 {
                return Err(format!(
                    "credentials[{index}].secretAccessKey ({id}) must be at least 16 characters"
                ));
            }
            if !is_account_id(&key.account_id) {
                return Err(format!("credentials[{index}].accountId ({id}) must be 12 digits"));
            }
            if key.session_token.as_ref().is_some_and(String::is_empty) {
                return Err(format!(
                    "credentials[{index}].sessionToken ({id}) is empty: leave it out for long-term keys"
                ));
            }
            if keys.contains_key(id) {
                return Err(format!("credentials[{index}].accessKeyId {id} appears twice"));
            }
            keys.insert(id.clone(), key);
        }
        Ok(Self { keys })
    }

    /// Returns the key with this ID.
    pub fn get(&self, access_key_id: &str) -> Option<&AccessKey> {
        self.keys.get(access_key_id)
    }

    /// Returns the number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Returns true when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = r#"{"accessKeyId": "AKIAEXAMPLE000001", "secretAccessKey": "secret-secret-secret", "accountId": "111122223333"}"#;

    #[test]
    fn reads_keys_and_names_the_field_at_fault() {
        let credentials = Credentials::parse(&format!(r#"{{"credentials": [{KEY}]}}"#)).unwrap();
        assert_eq!(credentials.get("AKIAEXAMPLE000001").unwrap().account_id, "111122223333");
        assert!(credentials.get("AKIAOTHER00000001").is_none());
        for (text, expected) in [
            (r#"{"credentials": []}"#.to_string(), "no access key"),
            (
                format!(r#"{{"credentials": [{KEY}, {KEY}]}}"#),
                "credentials[1].accessKeyId AKIAEXAMPLE000001 appears twice",
            ),
            (KEY.replace("111122223333", "1111"), "credentials[0].accountId"),
            (KEY.replace("AKIAEXAMPLE000001", "short"), "credentials[0].accessKeyId"),
            (
                KEY.replace("secret-secret-secret", "s"),
                "credentials[0].secretAccessKey",
            ),
            (
                KEY.replace("}", r#", "sessionToken": ""}"#),
                "credentials[0].sessionToken",
            ),
            (KEY.replace("}", r#", "region": "x"}"#), "unknown field `region`"),
        ] {
            let text = if text.starts_with(r#"{"credentials""#) {
                text
            } else {
                format!(r#"{{"credentials": [{text}]}}"#)
            };
            let error = Credentials::parse(&text).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}
