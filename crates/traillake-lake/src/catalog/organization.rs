//! The organization: server configuration, as there is no AWS Organizations here
//! (`--organization FILE`: `{"id": "o-...", "managementAccountId": "...", "memberAccountIds": [...],
//! "allFeatures": true}`), and its CloudTrail delegated administrators, which
//! RegisterOrganizationDelegatedAdmin and DeregisterOrganizationDelegatedAdmin keep in the catalog.
//!
//! An organization store (`OrganizationEnabled`) or organization trail (`IsOrganizationTrail`) of
//! the management account or of a delegated administrator takes the live events of every account
//! of the organization.

use std::path::Path;

use serde::Deserialize;
use traillake_api::arn::is_account_id;
use traillake_api::shapes::EventDataStoreStatus;

use super::{Catalog, EventDataStoreRecord, TrailRecord};
use crate::Result;
use crate::error::LakeError;

/// The most delegated administrators an organization may have, as on AWS.
pub const MAX_DELEGATED_ADMINS: usize = 3;

/// An organization as the operator configures it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Organization {
    /// The organization's ID, `o-` and 10 to 32 lowercase letters or digits.
    pub id: String,
    /// The management account.
    pub management_account_id: String,
    /// The member accounts, the management account left out.
    pub member_account_ids: Vec<String>,
    /// Whether all features are enabled (AWS needs them for organization trails and stores).
    #[serde(default = "all_features")]
    pub all_features: bool,
}

fn all_features() -> bool {
    true
}

impl Organization {
    /// Reads an organization file; the error names the file and the member at fault.
    pub fn load(path: &Path) -> std::result::Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("reading organization file {}: {error}", path.display()))?;
        Self::parse(&text).map_err(|error| format!("organization file {}: {error}", path.display()))
    }

    /// Parses the text of an organization file.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let organization: Organization = serde_json::from_str(text).map_err(|error| error.to_string())?;
        let id_ok = organization.id.strip_prefix("o-").is_some_and(|rest| {
            (10..=32).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if !id_ok {
            return Err(format!(
                "id '{}' is not an organization ID (o- and 10 to 32 lowercase letters or digits)",
                organization.id
            ));
        }
        if !is_account_id(&organization.management_account_id) {
            return Err("managementAccountId must be 12 digits".into());
        }
        for (index, member) in organization.member_account_ids.iter().enumerate() {
            if !is_account_id(member) {
                return Err(format!("memberAccountIds[{index}] must be 12 digits"));
            }
            if *member == organization.management_account_id {
                return Err(format!(
                    "memberAccountIds[{index}] is the management account; list only the other accounts"
                ));
            }
        }
        Ok(organization)
    }

    /// Returns true if the account is the management account or a member.
    pub fn has(&self, account_id: &str) -> bool {
        self.management_account_id == account_id || self.member_account_ids.iter().any(|m| m == account_id)
    }
}

impl Catalog {
    /// Sets the organization the server is configured with (none by default).
    pub fn set_organization(&mut self, organization: Option<Organization>) {
        self.organization = organization;
    }

    /// Returns the organization, if the server has one.
    pub fn organization(&self) -> Option<&Organization> {
        self.organization.as_ref()
    }

    /// Returns the organization's delegated administrators, in the order they were registered.
    pub async fn delegated_admins(&self) -> Vec<String> {
        self.state.lock().await.delegated_admins.clone()
    }

    /// Registers a member account as a delegated administrator.
    pub async fn register_delegated_admin(&self, account_id: &str) -> Result<()> {
        self.change(|doc| {
            if doc.delegated_admins.iter().any(|admin| admin == account_id) {
                return Err(LakeError::AccountRegistered(account_id.to_string()));
            }
            if doc.delegated_admins.len() >= MAX_DELEGATED_ADMINS {
                return Err(LakeError::DelegatedAdminLimitExceeded(MAX_DELEGATED_ADMINS));
            }
            doc.delegated_admins.push(account_id.to_string());
            Ok(())
        })
        .await
    }

    /// Deregisters a delegated administrator; its organization stores stay, and stop taking the
    /// other accounts' events until it is registered again.
    pub async fn deregister_delegated_admin(&self, account_id: &str) -> Result<()> {
        self.change(|doc| {
            let before = doc.delegated_admins.len();
            doc.delegated_admins.retain(|admin| admin != account_id);
            if doc.delegated_admins.len() == before {
                return Err(LakeError::AccountNotRegistered(account_id.to_string()));
            }
            Ok(())
        })
        .await
    }

    /// Returns true if the account may create and change organization stores: the management
    /// account or a delegated administrator.
    pub async fn administers_organization(&self, account_id: &str) -> bool {
        let Some(organization) = &self.organization else {
            return false;
        };
        organization.management_account_id == account_id
            || self.delegated_admins().await.iter().any(|a| a == account_id)
    }

    /// Returns the stores that take an account's live events: its own, and the organization
    /// stores of the organization's administrators when the account is in the organization.
    pub async fn stores_taking_events_of(&self, account_id: &str) -> Vec<EventDataStoreRecord> {
        let mut stores = self.event_data_stores(account_id).await;
        let Some(administrators) = self.other_administrators(account_id).await else {
            return stores;
        };
        let state = self.state.lock().await;
        let mut others: Vec<EventDataStoreRecord> = state
            .event_data_stores
            .values()
            .filter(|s| s.organization && s.status != EventDataStoreStatus::PendingDeletion)
            .filter(|s| administrators.contains(&s.account_id))
            .cloned()
            .collect();
        others.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        stores.extend(others);
        stores
    }

    /// Returns the trails that take the live events of an account: its own, and the organization
    /// trails of the organization's management account and delegated administrators when the
    /// account is in the organization.
    pub async fn trails_taking_events_of(&self, account_id: &str) -> Vec<TrailRecord> {
        let mut trails = self.trails(account_id).await;
        let Some(administrators) = self.other_administrators(account_id).await else {
            return trails;
        };
        let state = self.state.lock().await;
        trails.extend(
            state
                .trails
                .values()
                .filter(|t| t.organization && administrators.contains(&t.account_id))
                .cloned(),
        );
        trails
    }

    /// Returns the organization's management account and delegated administrators other than
    /// `account_id`, or `None` when the account is in no organization.
    async fn other_administrators(&self, account_id: &str) -> Option<Vec<String>> {
        let organization = self.organization.as_ref().filter(|o| o.has(account_id))?;
        let state = self.state.lock().await;
        Some(
            std::iter::once(organization.management_account_id.as_str())
                .chain(state.delegated_admins.iter().map(String::as_str))
                .filter(|admin| *admin != account_id)
                .map(str::to_string)
                .collect(),
        )
    }
}
