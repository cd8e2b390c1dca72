//! The resource policies of the catalog's resources (event data stores and channels), kept as
//! their owners put them; `traillake-api` reads and checks them.

use chrono::{DateTime, Utc};

use super::Catalog;
use super::tags::{TaggedResource, resource_parts};
use crate::Result;
use crate::error::LakeError;

impl Catalog {
    /// Sets (`Some`) or deletes (`None`) the resource policy of an active resource; deleting a
    /// policy the resource does not have is `ResourcePolicyNotFound`.
    pub async fn set_resource_policy(
        &self,
        account_id: &str,
        resource: TaggedResource<'_>,
        policy: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.change(|doc| {
            let parts = resource_parts(doc, account_id, resource)?;
            let Some(kept) = parts.policy else {
                return Err(LakeError::InvalidParameter(format!(
                    "{} takes no resource policy",
                    parts.name
                )));
            };
            if policy.is_none() && kept.is_none() {
                return Err(LakeError::ResourcePolicyNotFound(parts.name));
            }
            *kept = policy;
            *parts.updated = now;
            Ok(())
        })
        .await
    }

    /// Returns the resource policy of an active resource.
    pub async fn resource_policy(&self, account_id: &str, resource: TaggedResource<'_>) -> Result<String> {
        let mut state = self.state.lock().await;
        let parts = resource_parts(&mut state, account_id, resource)?;
        parts
            .policy
            .and_then(|policy| policy.clone())
            .ok_or(LakeError::ResourcePolicyNotFound(parts.name))
    }
}
