//! The dashboards of the catalog: their widgets (each a query with its alias, parameters and view
//! properties), refresh schedule, termination protection, tags and resource policy, and what their
//! last refresh was. Names are unique per account; an account has at most a configured number of
//! dashboards. Checking widgets against the SQL front end is the service's; running refreshes is
//! `traillake_server`'s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use traillake_api::shapes::{RefreshSchedule, Tag, Widget};

use super::{Catalog, CatalogDocument};
use crate::Result;
use crate::error::LakeError;

/// A dashboard as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardRecord {
    /// The owner's account ID.
    pub account_id: String,
    /// The dashboard's name, unique in the account.
    pub name: String,
    /// Whether traillake keeps its widgets (the Highlights dashboard).
    pub managed: bool,
    /// Its widgets, each with its query alias.
    pub widgets: Vec<Widget>,
    /// When it refreshes by itself, if it does.
    pub refresh_schedule: Option<RefreshSchedule>,
    /// Whether DeleteDashboard is refused.
    pub termination_protection: bool,
    /// Its tags, in the order they were added.
    pub tags: Vec<Tag>,
    /// Its resource policy, as put.
    #[serde(default)]
    pub resource_policy: Option<String>,
    /// Whether it was changed since it was created (`UPDATED`) or not (`CREATED`).
    pub changed: bool,
    /// The ID of its last refresh.
    pub last_refresh_id: Option<String>,
    /// Why its last refresh could not start a widget's query.
    pub last_refresh_failure_reason: Option<String>,
    /// The time of the scheduled refresh last run.
    pub last_scheduled_refresh: Option<DateTime<Utc>>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it last changed.
    pub updated: DateTime<Utc>,
}

fn key(account_id: &str, name: &str) -> String {
    format!("{account_id}/{name}")
}

pub(super) fn find_mut<'a>(
    doc: &'a mut CatalogDocument,
    account_id: &str,
    name: &str,
) -> Result<&'a mut DashboardRecord> {
    doc.dashboards
        .get_mut(&key(account_id, name))
        .ok_or_else(|| LakeError::DashboardNotFound(name.to_string()))
}

impl Catalog {
    /// Creates a dashboard; at most `max_dashboards` per account.
    pub async fn create_dashboard(&self, dashboard: DashboardRecord, max_dashboards: usize) -> Result<DashboardRecord> {
        self.change(|doc| {
            if doc
                .dashboards
                .contains_key(&key(&dashboard.account_id, &dashboard.name))
            {
                return Err(LakeError::DashboardConflict(format!(
                    "a dashboard named {} already exists",
                    dashboard.name
                )));
            }
            let count = doc
                .dashboards
                .values()
                .filter(|d| d.account_id == dashboard.account_id)
                .count();
            if count >= max_dashboards {
                return Err(LakeError::ServiceQuotaExceeded(format!(
                    "the account already has the maximum of {max_dashboards} dashboards"
                )));
            }
            doc.dashboards
                .insert(key(&dashboard.account_id, &dashboard.name), dashboard.clone());
            Ok(dashboard)
        })
        .await
    }

    /// Changes a dashboard of the account and returns it as changed; a change that fails changes
    /// nothing.
    pub async fn update_dashboard(
        &self,
        account_id: &str,
        name: &str,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut DashboardRecord) -> Result<()>,
    ) -> Result<DashboardRecord> {
        self.change(|doc| {
            let dashboard = find_mut(doc, account_id, name)?;
            change(dashboard)?;
            dashboard.updated = now;
            Ok(dashboard.clone())
        })
        .await
    }

    /// Records a refresh of a dashboard (its ID, and why a widget's query could not start), and
    /// for a scheduled one the time it was due.
    pub async fn record_dashboard_refresh(
        &self,
        account_id: &str,
        name: &str,
        refresh_id: &str,
        failure: Option<String>,
        scheduled: Option<DateTime<Utc>>,
    ) -> Result<DashboardRecord> {
        self.change(|doc| {
            let dashboard = find_mut(doc, account_id, name)?;
            dashboard.last_refresh_id = Some(refresh_id.to_string());
            dashboard.last_refresh_failure_reason = failure;
            if scheduled.is_some() {
                dashboard.last_scheduled_refresh = scheduled;
            }
            Ok(dashboard.clone())
        })
        .await
    }

    /// Deletes a dashboard of the account, unless termination protection is on.
    pub async fn delete_dashboard(&self, account_id: &str, name: &str) -> Result<DashboardRecord> {
        self.change(|doc| {
            let dashboard = find_mut(doc, account_id, name)?;
            if dashboard.termination_protection {
                return Err(LakeError::DashboardConflict(format!(
                    "dashboard {name} has termination protection enabled; turn it off with UpdateDashboard first"
                )));
            }
            Ok(doc
                .dashboards
                .remove(&key(account_id, name))
                .expect("the dashboard was found"))
        })
        .await
    }

    /// Returns a dashboard of the account.
    pub async fn dashboard(&self, account_id: &str, name: &str) -> Result<DashboardRecord> {
        let state = self.state.lock().await;
        state
            .dashboards
            .get(&key(account_id, name))
            .cloned()
            .ok_or_else(|| LakeError::DashboardNotFound(name.to_string()))
    }

    /// Returns the account's dashboards, by name.
    pub async fn dashboards(&self, account_id: &str) -> Vec<DashboardRecord> {
        let state = self.state.lock().await;
        state
            .dashboards
            .values()
            .filter(|d| d.account_id == account_id)
            .cloned()
            .collect()
    }

    /// Returns the dashboards of every account.
    pub async fn all_dashboards(&self) -> Vec<DashboardRecord> {
        self.state.lock().await.dashboards.values().cloned().collect()
    }
}
