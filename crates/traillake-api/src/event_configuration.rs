//! Validation of GetEventConfiguration and PutEventConfiguration: which resource a request names
//! (a trail or an event data store, never both), and the settings each kind takes: a store's
//! `MaxEventSize` and `ContextKeySelectors`, a trail's `AggregationConfigurations`.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::arn;
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorCode};
use crate::shapes::{AggregationConfiguration, ContextKeySelector, PutEventConfigurationRequest};
use crate::trails::{Access, trail_name};

/// The largest event a store takes with `Standard` event size: 256 KB.
pub const STANDARD_EVENT_BYTES: usize = 256 * 1024;
/// The largest event a store takes with `Large` event size: 1 MB.
pub const LARGE_EVENT_BYTES: usize = 1024 * 1024;
/// The context key selectors a store may have.
pub const MAX_CONTEXT_KEY_SELECTORS: usize = 2;
const CONTEXT_TYPES: [&str; 2] = ["RequestContext", "TagContext"];
const TEMPLATES: [&str; 3] = ["API_ACTIVITY", "RESOURCE_ACCESS", "USER_ACTIONS"];

/// The largest event a store takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaxEventSize {
    /// 256 KB, the default.
    #[default]
    Standard,
    /// 1 MB, needed by context key selectors.
    Large,
}

impl MaxEventSize {
    /// Returns the size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            MaxEventSize::Standard => STANDARD_EVENT_BYTES,
            MaxEventSize::Large => LARGE_EVENT_BYTES,
        }
    }

    /// Returns the name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            MaxEventSize::Standard => "Standard",
            MaxEventSize::Large => "Large",
        }
    }
}

/// The resource a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigurationTarget {
    /// A trail, by name.
    Trail(String),
    /// An event data store, by ID.
    EventDataStore(String),
}

/// Returns the trail or store a request names: exactly one of `TrailName` and `EventDataStore`.
pub fn check_target(
    ctx: &RequestContext,
    trail: Option<&str>,
    store: Option<&str>,
    access: Access,
) -> Result<ConfigurationTarget> {
    match (trail, store) {
        (Some(_), Some(_)) => Err(ApiError::new(
            ErrorCode::InvalidParameterCombinationException,
            "give TrailName or EventDataStore, not both",
        )),
        (None, None) => Err(ApiError::new(
            ErrorCode::InvalidParameterException,
            "the request needs TrailName (a trail's event configuration) or EventDataStore (a store's)",
        )),
        (Some(trail), None) => Ok(ConfigurationTarget::Trail(trail_name(
            ctx,
            "TrailName",
            Some(trail),
            access,
        )?)),
        (None, Some(store)) => Ok(ConfigurationTarget::EventDataStore(arn::event_data_store_id(
            ctx,
            "EventDataStore",
            Some(store),
        )?)),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameterException, message)
}

/// Returns a store's settings of a PutEventConfiguration request: its `MaxEventSize` if given
/// and its context key selectors. A trail's member is refused.
pub fn check_store_settings(
    request: &PutEventConfigurationRequest,
) -> Result<(Option<MaxEventSize>, Vec<ContextKeySelector>)> {
    if !request.aggregation_configurations.is_empty() {
        return Err(invalid(
            "AggregationConfigurations apply to trails; an event data store takes MaxEventSize and ContextKeySelectors",
        ));
    }
    let size = match request.max_event_size.as_deref() {
        None => None,
        Some("Standard") => Some(MaxEventSize::Standard),
        Some("Large") => Some(MaxEventSize::Large),
        Some(other) => {
            return Err(invalid(format!("MaxEventSize '{other}' is not one of Standard, Large")));
        }
    };
    if request.context_key_selectors.len() > MAX_CONTEXT_KEY_SELECTORS {
        return Err(invalid(format!(
            "ContextKeySelectors has {} selectors; at most {MAX_CONTEXT_KEY_SELECTORS}",
            request.context_key_selectors.len()
        )));
    }
    for (index, selector) in request.context_key_selectors.iter().enumerate() {
        let kind = selector.r#type.as_deref().unwrap_or_default();
        if !CONTEXT_TYPES.contains(&kind) {
            return Err(invalid(format!(
                "ContextKeySelectors[{index}].Type '{kind}' is not one of RequestContext, TagContext"
            )));
        }
        if selector.equals.is_empty() || selector.equals.len() > 50 {
            return Err(invalid(format!(
                "ContextKeySelectors[{index}].Equals needs 1 to 50 keys, not {}",
                selector.equals.len()
            )));
        }
        if let Some(key) = selector.equals.iter().find(|key| key.is_empty() || key.len() > 2048) {
            return Err(invalid(format!(
                "ContextKeySelectors[{index}].Equals has a key of {} characters; keys have 1 to 2048",
                key.len()
            )));
        }
    }
    Ok((size, request.context_key_selectors.clone()))
}

/// Returns a trail's aggregation configurations of a PutEventConfiguration request. A store's
/// members are refused.
pub fn check_trail_settings(request: &PutEventConfigurationRequest) -> Result<Vec<AggregationConfiguration>> {
    if request.max_event_size.is_some() || !request.context_key_selectors.is_empty() {
        return Err(invalid(
            "MaxEventSize and ContextKeySelectors apply to event data stores; a trail takes AggregationConfigurations",
        ));
    }
    if request.aggregation_configurations.len() > 1 {
        return Err(invalid(format!(
            "AggregationConfigurations has {} configurations; at most 1",
            request.aggregation_configurations.len()
        )));
    }
    for (index, configuration) in request.aggregation_configurations.iter().enumerate() {
        let category = configuration.event_category.as_deref().unwrap_or_default();
        if category != "Data" {
            return Err(invalid(format!(
                "AggregationConfigurations[{index}].EventCategory '{category}' is not Data, the one category aggregated"
            )));
        }
        if configuration.templates.is_empty() || configuration.templates.len() > 50 {
            return Err(invalid(format!(
                "AggregationConfigurations[{index}].Templates needs 1 to 50 templates"
            )));
        }
        if let Some(template) = configuration
            .templates
            .iter()
            .find(|t| !TEMPLATES.contains(&t.as_str()))
        {
            return Err(invalid(format!(
                "AggregationConfigurations[{index}].Templates '{template}' is not one of API_ACTIVITY, RESOURCE_ACCESS, \
                 USER_ACTIONS"
            )));
        }
    }
    Ok(request.aggregation_configurations.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> PutEventConfigurationRequest {
        PutEventConfigurationRequest::default()
    }

    #[test]
    fn names_one_resource() {
        let ctx = RequestContext::for_tests();
        let both = check_target(&ctx, Some("t"), Some("s"), Access::Read).unwrap_err();
        assert_eq!(both.code, ErrorCode::InvalidParameterCombinationException);
        let neither = check_target(&ctx, None, None, Access::Read).unwrap_err();
        assert_eq!(neither.code, ErrorCode::InvalidParameterException);
        assert_eq!(
            check_target(&ctx, Some("main"), None, Access::Read).unwrap(),
            ConfigurationTarget::Trail("main".into())
        );
    }

    #[test]
    fn checks_each_kinds_settings() {
        let large = PutEventConfigurationRequest {
            max_event_size: Some("Large".into()),
            context_key_selectors: vec![ContextKeySelector {
                r#type: Some("RequestContext".into()),
                equals: vec!["aws:SourceIp".into()],
            }],
            ..request()
        };
        let (size, selectors) = check_store_settings(&large).unwrap();
        assert_eq!(size, Some(MaxEventSize::Large));
        assert_eq!(selectors.len(), 1);
        assert!(
            check_trail_settings(&large)
                .unwrap_err()
                .message
                .contains("MaxEventSize")
        );
        let huge = PutEventConfigurationRequest {
            max_event_size: Some("Huge".into()),
            ..request()
        };
        assert!(
            check_store_settings(&huge)
                .unwrap_err()
                .message
                .contains("MaxEventSize")
        );
        let aggregation = PutEventConfigurationRequest {
            aggregation_configurations: vec![AggregationConfiguration {
                templates: vec!["API_ACTIVITY".into(), "NOPE".into()],
                event_category: Some("Data".into()),
            }],
            ..request()
        };
        assert!(check_trail_settings(&aggregation).unwrap_err().message.contains("NOPE"));
        assert!(
            check_store_settings(&aggregation)
                .unwrap_err()
                .message
                .contains("trails")
        );
    }
}
