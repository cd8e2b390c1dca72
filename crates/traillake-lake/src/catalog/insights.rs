//! The Insights selectors of event data stores: which Insights types a source store finds, and
//! the Insight store they go to. The rules that depend on what is stored: a source is an active
//! store of CloudTrail events whose selectors take the management events its types need (write
//! calls for ApiCallRateInsight, read or write calls for ApiErrorRateInsight); a destination is an
//! active Insight store of the same account. A change of a source's selectors that would break its
//! Insights is refused; deleting a destination turns its sources' Insights off.

use chrono::{DateTime, Utc};
use traillake_api::selectors::{SelectedEvent, StoreKind, matches};
use traillake_api::shapes::AdvancedEventSelector;

use super::{Catalog, CatalogDocument, EventDataStoreRecord, find_active, find_active_mut};
use crate::Result;
use crate::error::LakeError;

/// `ApiCallRateInsight`.
pub const API_CALL_RATE: &str = "ApiCallRateInsight";
/// `ApiErrorRateInsight`.
pub const API_ERROR_RATE: &str = "ApiErrorRateInsight";

/// Returns why selectors do not take the management events an Insights type needs, if they do not.
pub fn missing_events(selectors: &[AdvancedEventSelector], insight_type: &str) -> Option<&'static str> {
    let management = |read_only| SelectedEvent {
        event_category: "Management",
        event_source: Some("traillake.amazonaws.com"),
        event_name: Some("Call"),
        event_type: Some("AwsApiCall"),
        read_only: Some(read_only),
        ..Default::default()
    };
    let writes = matches(selectors, &management(false));
    let reads = matches(selectors, &management(true));
    match insight_type {
        API_CALL_RATE if !writes => Some("ApiCallRateInsight needs a source that logs write management events"),
        API_ERROR_RATE if !writes && !reads => {
            Some("ApiErrorRateInsight needs a source that logs read or write management events")
        }
        _ => None,
    }
}

fn check_source(store: &EventDataStoreRecord, types: &[String]) -> Result<()> {
    if store.kind != StoreKind::CloudTrail {
        return Err(LakeError::InvalidInsightSelectors(format!(
            "event data store {} holds {:?} events; Insights are found in stores of CloudTrail management events",
            store.id, store.kind
        )));
    }
    for insight_type in types {
        if let Some(why) = missing_events(&store.selectors, insight_type) {
            return Err(LakeError::InvalidInsightSelectors(format!(
                "event data store {}: {why}",
                store.id
            )));
        }
    }
    Ok(())
}

/// Checks that a store's new selectors keep the management events its Insights need.
pub(super) fn check_insights_kept(store: &EventDataStoreRecord) -> Result<()> {
    for insight_type in &store.insight_types {
        if let Some(why) = missing_events(&store.selectors, insight_type) {
            return Err(LakeError::InvalidEventSelectors(format!(
                "event data store {} has {insight_type} Insights on: {why}; turn them off first (PutInsightSelectors \
                 with no selector)",
                store.id
            )));
        }
    }
    Ok(())
}

/// Turns off the Insights of the sources that write to a destination being deleted.
pub(super) fn forget_destination(doc: &mut CatalogDocument, account_id: &str, destination: &str, now: DateTime<Utc>) {
    for store in doc.event_data_stores.values_mut() {
        if store.account_id == account_id && store.insights_destination.as_deref() == Some(destination) {
            store.insight_types.clear();
            store.insights_destination = None;
            store.updated = now;
        }
    }
}

impl Catalog {
    /// Sets the Insights types of a source store and their destination; no type turns them off.
    pub async fn set_insight_selectors(
        &self,
        account_id: &str,
        source: &str,
        types: Vec<String>,
        destination: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<EventDataStoreRecord> {
        self.change(|doc| {
            let current = find_active(doc, account_id, source)?.clone();
            let destination = if types.is_empty() {
                None
            } else {
                check_source(&current, &types)?;
                let destination = destination.ok_or_else(|| {
                    LakeError::InvalidParameter("InsightsDestination is required to turn Insights on".into())
                })?;
                let target = find_active(doc, account_id, &destination)?;
                if target.kind != StoreKind::Insight {
                    return Err(LakeError::InvalidParameter(format!(
                        "InsightsDestination {} holds {:?} events; Insights go to an event data store of Insight events",
                        target.id, target.kind
                    )));
                }
                Some(target.id.clone())
            };
            let store = find_active_mut(doc, account_id, source)?;
            store.insight_types = types;
            store.insights_destination = destination;
            store.updated = now;
            Ok(store.clone())
        })
        .await
    }
}
