//! The trails of the catalog: their settings, selectors, tags and whether they log. What their
//! delivery did (times, errors, the digest chain) is the delivery's, kept beside their outbox
//! (`traillake_ingest::trails`), not here. Names are unique per account; an account has at most
//! a configured number of trails.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use traillake_api::shapes::{AdvancedEventSelector, AggregationConfiguration, Tag};
use traillake_api::trails::{TrailSelectors, advanced_of_basic, default_event_selectors};

use super::insights::missing_events;
use super::{Catalog, CatalogDocument};
use crate::Result;
use crate::error::LakeError;

/// A trail as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrailRecord {
    /// The owner's account ID.
    pub account_id: String,
    /// The trail's name, unique in the account.
    pub name: String,
    /// The bucket its log files go to.
    pub bucket: String,
    /// The key prefix of its log files, if any.
    pub prefix: Option<String>,
    /// Whether events of global services are delivered.
    pub include_global_service_events: bool,
    /// Whether events of every Region are delivered.
    pub multi_region: bool,
    /// Whether digest files are written.
    pub log_file_validation: bool,
    /// The KMS key's ARN, recorded as given.
    pub kms_key_id: Option<String>,
    /// `RecursiveLogging`, recorded as given.
    pub recursive_logging: Option<bool>,
    /// The event selectors, basic or advanced.
    pub selectors: TrailSelectors,
    /// The trail's tags, in the order they were added.
    pub tags: Vec<Tag>,
    /// Whether the trail logs.
    pub logging: bool,
    /// When StartLogging was last called.
    pub start_logging_time: Option<DateTime<Utc>>,
    /// When StopLogging was last called.
    pub stop_logging_time: Option<DateTime<Utc>>,
    /// The Insights types found for the trail while it logs (`ApiCallRateInsight`,
    /// `ApiErrorRateInsight`), on its management events.
    #[serde(default)]
    pub insight_types: Vec<String>,
    /// Whether the trail is an organization trail (`IsOrganizationTrail`): one of the management
    /// account or a delegated administrator that takes the events of every account of the
    /// organization.
    #[serde(default)]
    pub organization: bool,
    /// How the trail's data events are aggregated (PutEventConfiguration), as configured: kept
    /// and returned, not applied (see README "Event configuration").
    #[serde(default)]
    pub aggregation_configurations: Vec<AggregationConfiguration>,
    /// When the trail was created.
    pub created: DateTime<Utc>,
    /// When the trail last changed.
    pub updated: DateTime<Utc>,
}

impl TrailRecord {
    /// Returns true unless the trail has the selectors AWS gives a new trail.
    pub fn has_custom_event_selectors(&self) -> bool {
        self.selectors != TrailSelectors::Basic(default_event_selectors())
    }

    /// Returns true if the trail logged at an event's `eventTime` (CloudTrail's form, to the
    /// second): from the second StartLogging was called, through the second StopLogging was, so
    /// that a call made while the trail logged is taken even when it is recorded after a stop.
    pub fn logged_at(&self, event_time: &str) -> bool {
        let Some(started) = self.start_logging_time else {
            return false;
        };
        let Ok(time) = DateTime::parse_from_rfc3339(event_time) else {
            return false;
        };
        let second = |time: DateTime<Utc>| time.timestamp();
        let time = time.timestamp();
        if time < second(started) {
            return false;
        }
        self.logging
            || self
                .stop_logging_time
                .is_some_and(|stopped| stopped >= started && time <= second(stopped))
    }

    /// Returns the trail's selectors as advanced ones, for the evaluator.
    pub fn advanced_selectors(&self) -> Vec<AdvancedEventSelector> {
        match &self.selectors {
            TrailSelectors::Basic(basic) => advanced_of_basic(basic),
            TrailSelectors::Advanced(advanced) => advanced.clone(),
        }
    }
}

fn key(account_id: &str, name: &str) -> String {
    format!("{account_id}/{name}")
}

pub(super) fn find_mut<'a>(doc: &'a mut CatalogDocument, account_id: &str, name: &str) -> Result<&'a mut TrailRecord> {
    doc.trails
        .get_mut(&key(account_id, name))
        .ok_or_else(|| LakeError::TrailNotFound(name.to_string()))
}

impl Catalog {
    /// Creates a trail; at most `max_trails` per account.
    pub async fn create_trail(&self, trail: TrailRecord, max_trails: usize) -> Result<TrailRecord> {
        self.change(|doc| {
            if doc.trails.contains_key(&key(&trail.account_id, &trail.name)) {
                return Err(LakeError::TrailAlreadyExists(trail.name));
            }
            let count = doc.trails.values().filter(|t| t.account_id == trail.account_id).count();
            if count >= max_trails {
                return Err(LakeError::TrailMaxLimitExceeded(max_trails));
            }
            doc.trails.insert(key(&trail.account_id, &trail.name), trail.clone());
            Ok(trail)
        })
        .await
    }

    /// Changes a trail of the account and returns it as changed. A change that leaves the trail
    /// without the management events its Insights types need is refused
    /// (`InvalidEventSelectorsException`), and nothing is changed.
    pub async fn update_trail(
        &self,
        account_id: &str,
        name: &str,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut TrailRecord),
    ) -> Result<TrailRecord> {
        self.change(|doc| {
            let trail = find_mut(doc, account_id, name)?;
            change(trail);
            for insight_type in &trail.insight_types {
                if let Some(why) = missing_events(&trail.advanced_selectors(), insight_type) {
                    return Err(LakeError::InvalidEventSelectors(format!(
                        "trail {name} has {insight_type} Insights on: {why}; turn them off first (PutInsightSelectors \
                         with no selector)"
                    )));
                }
            }
            trail.updated = now;
            Ok(trail.clone())
        })
        .await
    }

    /// Sets the Insights types of a trail; none turns them off. The trail must log the management
    /// events each type needs (`InvalidInsightSelectorsException`).
    pub async fn set_trail_insight_selectors(
        &self,
        account_id: &str,
        name: &str,
        types: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<TrailRecord> {
        self.change(|doc| {
            let trail = find_mut(doc, account_id, name)?;
            for insight_type in &types {
                if let Some(why) = missing_events(&trail.advanced_selectors(), insight_type) {
                    return Err(LakeError::InvalidInsightSelectors(format!("trail {name}: {why}")));
                }
            }
            trail.insight_types = types;
            trail.updated = now;
            Ok(trail.clone())
        })
        .await
    }

    /// Deletes a trail of the account and returns what it was.
    pub async fn delete_trail(&self, account_id: &str, name: &str) -> Result<TrailRecord> {
        self.change(|doc| {
            doc.trails
                .remove(&key(account_id, name))
                .ok_or_else(|| LakeError::TrailNotFound(name.to_string()))
        })
        .await
    }

    /// Returns a trail of the account.
    pub async fn trail(&self, account_id: &str, name: &str) -> Result<TrailRecord> {
        let state = self.state.lock().await;
        state
            .trails
            .get(&key(account_id, name))
            .cloned()
            .ok_or_else(|| LakeError::TrailNotFound(name.to_string()))
    }

    /// Returns the account's trails, by name.
    pub async fn trails(&self, account_id: &str) -> Vec<TrailRecord> {
        let state = self.state.lock().await;
        state
            .trails
            .values()
            .filter(|t| t.account_id == account_id)
            .cloned()
            .collect()
    }

    /// Returns the trails of every account.
    pub async fn all_trails(&self) -> Vec<TrailRecord> {
        self.state.lock().await.trails.values().cloned().collect()
    }
}
