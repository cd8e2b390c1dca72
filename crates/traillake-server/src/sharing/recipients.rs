//! `Recipients`: who may read federated stores through the Delta Sharing endpoint, as the
//! operator configures them (`--sharing-recipients FILE`):
//! `{"recipients": [{"name": "analytics", "bearerToken": "...", "roleArn":
//! "arn:aws:iam::111122223333:role/Federation"}]}`. A recipient reads the stores federated with
//! its role (EnableFederation's `FederationRoleArn`), as a principal that may assume the role
//! would on AWS. Tokens are kept as SHA-256 digests, so a lookup compares digests, not secrets.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The shortest bearer token accepted: 32 characters.
const MIN_TOKEN_CHARS: usize = 32;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RecipientEntry {
    name: String,
    bearer_token: String,
    role_arn: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientsFile {
    recipients: Vec<RecipientEntry>,
}

/// One recipient: its name (for the log) and the role whose federated stores it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The recipient's name.
    pub name: String,
    /// The federation role it reads the stores of.
    pub role_arn: String,
}

/// The configured recipients, by the digest of their bearer token.
#[derive(Clone, Default)]
pub struct Recipients {
    by_token_digest: HashMap<[u8; 32], Recipient>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipients")
            .field("count", &self.by_token_digest.len())
            .finish_non_exhaustive()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Recipients {
    /// Reads a recipients file; the error names the file, the entry and the field at fault.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("reading sharing recipients file {}: {error}", path.display()))?;
        Self::parse(&text).map_err(|error| format!("sharing recipients file {}: {error}", path.display()))
    }

    /// Parses the text of a recipients file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: RecipientsFile = serde_json::from_str(text).map_err(|error| error.to_string())?;
        let mut by_token_digest = HashMap::new();
        for (index, entry) in file.recipients.into_iter().enumerate() {
            let name = &entry.name;
            if name.is_empty() {
                return Err(format!("recipients[{index}].name must not be empty"));
            }
            if entry.bearer_token.chars().count() < MIN_TOKEN_CHARS
                || !entry.bearer_token.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(format!(
                    "recipients[{index}].bearerToken ({name}) must be at least {MIN_TOKEN_CHARS} printable characters \
                     without spaces"
                ));
            }
            if !entry.role_arn.starts_with("arn:aws") || !entry.role_arn.contains(":role/") {
                return Err(format!(
                    "recipients[{index}].roleArn ({name}) must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
                ));
            }
            let recipient = Recipient {
                name: entry.name,
                role_arn: entry.role_arn,
            };
            if by_token_digest.insert(digest(&entry.bearer_token), recipient).is_some() {
                return Err(format!(
                    "recipients[{index}].bearerToken is the token of an earlier recipient"
                ));
            }
        }
        Ok(Self { by_token_digest })
    }

    /// Returns the recipient a bearer token belongs to.
    pub fn of_token(&self, token: &str) -> Option<&Recipient> {
        self.by_token_digest.get(&digest(token))
    }

    /// Returns the number of recipients.
    pub fn len(&self) -> usize {
        self.by_token_digest.len()
    }

    /// Returns true when no recipient is configured.
    pub fn is_empty(&self) -> bool {
        self.by_token_digest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::111122223333:role/Federation";

    #[test]
    fn finds_recipients_by_token() {
        let token = "t".repeat(40);
        let text = format!(r#"{{"recipients": [{{"name": "a", "bearerToken": "{token}", "roleArn": "{ROLE}"}}]}}"#);
        let recipients = Recipients::parse(&text).unwrap();
        assert_eq!(recipients.of_token(&token).unwrap().role_arn, ROLE);
        assert!(recipients.of_token(&"u".repeat(40)).is_none());
        assert!(!format!("{recipients:?}").contains(&token));
    }

    #[test]
    fn refuses_weak_or_repeated_tokens_and_other_arns() {
        let entry =
            |token: &str, role: &str| format!(r#"{{"name": "a", "bearerToken": "{token}", "roleArn": "{role}"}}"#);
        let long = "t".repeat(40);
        for (text, field) in [
            (
                format!(r#"{{"recipients": [{}]}}"#, entry("short", ROLE)),
                "bearerToken",
            ),
            (
                format!(
                    r#"{{"recipients": [{}]}}"#,
                    entry(&long, "arn:aws:iam::111122223333:user/x")
                ),
                "roleArn",
            ),
            (
                format!(r#"{{"recipients": [{}, {}]}}"#, entry(&long, ROLE), entry(&long, ROLE)),
                "recipients[1].bearerToken",
            ),
        ] {
            let error = Recipients::parse(&text).unwrap_err();
            assert!(error.contains(field), "{error}");
        }
    }
}
