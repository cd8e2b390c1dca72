//! Validation of the channel operations' requests (CreateChannel, GetChannel, ListChannels,
//! UpdateChannel, DeleteChannel): names, sources, destinations and channel references.

use std::collections::HashSet;

use crate::Result;
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorCode};
use crate::event_data_stores::MAX_TAGS;
use crate::paging::{self, PageRequest};
use crate::shapes::{
    CreateChannelRequest, Destination, DestinationType, ListChannelsRequest, Tag, UpdateChannelRequest,
};
use crate::validate::{self, Pattern, StringRule};
use crate::{arn, tags};

static NAME_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._\-]+$");
/// `ChannelName`: 3..128 characters of `[a-zA-Z0-9._-]`.
pub static NAME: StringRule = StringRule {
    min: 3,
    max: 128,
    pattern: Some(&NAME_PATTERN),
    code: ErrorCode::InvalidParameterException,
};
static REF_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._/\-:]+$");
/// `ChannelArn`: a channel's ARN or ID, 3..256 characters.
pub static CHANNEL_REF: StringRule = StringRule {
    min: 3,
    max: 256,
    pattern: Some(&REF_PATTERN),
    code: ErrorCode::ChannelARNInvalidException,
};
static LOCATION_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._/\-:*]+$");
static LOCATION: StringRule = StringRule {
    min: 3,
    max: 1024,
    pattern: Some(&LOCATION_PATTERN),
    code: ErrorCode::EventDataStoreARNInvalidException,
};
static SOURCE: StringRule = StringRule {
    min: 1,
    max: 256,
    pattern: None,
    code: ErrorCode::InvalidSourceException,
};

/// The most integration channels an account may have.
pub const MAX_CHANNELS: usize = 25;
/// The source of channels for the caller's own applications.
pub const CUSTOM_SOURCE: &str = "Custom";
/// The partner sources of CloudTrail Lake integrations, besides [`CUSTOM_SOURCE`].
pub const PARTNER_SOURCES: &[&str] = &[
    "CloudStorageSecurityConsole",
    "Clumio",
    "CrowdStrike",
    "CyberArk",
    "GitHub",
    "KongGatewayEnterprise",
    "LaunchDarkly",
    "NetskopeCloudExchange",
    "IBMMulticloud",
    "MontyCloud",
    "OktaSystemLogEvents",
    "OneLogin",
    "Shoreline",
    "Snyk",
    "WizAuditLogs",
];

/// Returns the ARN of a channel of the caller's account and Region.
pub fn channel_arn(ctx: &RequestContext, id: &str) -> String {
    arn::arn(ctx, arn::ResourceType::Channel, id)
}

/// Resolves a required channel reference (its ARN or ID) to the lowercase ID: a malformed value,
/// another resource type, or another account or Region is `ChannelARNInvalidException`.
pub fn channel_id(ctx: &RequestContext, field: &str, value: Option<&str>) -> Result<String> {
    let value = CHANNEL_REF.check_required(field, value)?;
    arn::resource_id(
        ctx,
        field,
        value,
        arn::ResourceType::Channel,
        ErrorCode::ChannelARNInvalidException,
    )
}

/// Checks a channel's destinations and returns the IDs of their event data stores, in order:
/// 1..200 `EVENT_DATA_STORE` destinations, each store named once.
pub fn check_destinations(ctx: &RequestContext, field: &str, destinations: &[Destination]) -> Result<Vec<String>> {
    validate::list_length(ErrorCode::InvalidParameterException, field, destinations.len(), 1, 200)?;
    let mut ids = Vec::with_capacity(destinations.len());
    let mut seen = HashSet::new();
    for (i, destination) in destinations.iter().enumerate() {
        let kind = validate::enum_value::<DestinationType>(&format!("{field}[{i}].Type"), destination.r#type)?;
        match kind {
            Some(DestinationType::EventDataStore) => {}
            Some(DestinationType::AwsService) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParameterException,
                    format!(
                        "{field}[{i}].Type AWS_SERVICE is for service-linked channels, which AWS services create; integration channels deliver to EVENT_DATA_STORE"
                    ),
                ));
            }
            _ => {
                return Err(ApiError::missing(
                    ErrorCode::InvalidParameterException,
                    &format!("{field}[{i}].Type"),
                ));
            }
        }
        let location_field = format!("{field}[{i}].Location");
        let location = LOCATION.check_required(&location_field, destination.location.as_deref())?;
        let id = arn::event_data_store_id(ctx, &location_field, Some(location))?;
        if !seen.insert(id.clone()) {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterException,
                format!("{field} names event data store {id} more than once"),
            ));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// A new channel, as a valid CreateChannel request describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChannel {
    /// The channel's name.
    pub name: String,
    /// `Custom` or a partner source.
    pub source: String,
    /// The IDs of the destination event data stores.
    pub destinations: Vec<String>,
    /// The channel's tags.
    pub tags: Vec<Tag>,
}

/// Checks a CreateChannel request and returns the channel it describes.
pub fn check_create(ctx: &RequestContext, request: &CreateChannelRequest) -> Result<NewChannel> {
    let name = NAME.check_required("Name", request.name.as_deref())?;
    let source = SOURCE.check_required("Source", request.source.as_deref())?;
    if source != CUSTOM_SOURCE && !PARTNER_SOURCES.contains(&source) {
        return Err(ApiError::new(
            ErrorCode::InvalidSourceException,
            format!(
                "Source '{source}' is neither {CUSTOM_SOURCE} nor a partner source ({})",
                PARTNER_SOURCES.join(", ")
            ),
        ));
    }
    let destinations = check_destinations(ctx, "Destinations", &request.destinations)?;
    tags::check_tags("Tags", &request.tags, ErrorCode::InvalidTagParameterException)?;
    if request.tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            ErrorCode::TagsLimitExceededException,
            format!(
                "Tags has {} tags; a resource takes at most {MAX_TAGS}",
                request.tags.len()
            ),
        ));
    }
    Ok(NewChannel {
        name: name.to_string(),
        source: source.to_string(),
        destinations,
        tags: request.tags.clone(),
    })
}

/// The changes a valid UpdateChannel request asks for; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelChanges {
    /// A new name.
    pub name: Option<String>,
    /// New destination store IDs, replacing the old ones.
    pub destinations: Option<Vec<String>>,
}

/// Checks an UpdateChannel request and returns the channel's ID and the changes.
pub fn check_update(ctx: &RequestContext, request: &UpdateChannelRequest) -> Result<(String, ChannelChanges)> {
    let id = channel_id(ctx, "Channel", request.channel.as_deref())?;
    NAME.check_optional("Name", request.name.as_deref())?;
    let destinations = if request.destinations.is_empty() {
        None
    } else {
        Some(check_destinations(ctx, "Destinations", &request.destinations)?)
    };
    Ok((
        id,
        ChannelChanges {
            name: request.name.clone(),
            destinations,
        },
    ))
}

/// Checks a ListChannels request and returns the page it asks for. The operation models no error
/// for a `MaxResults` out of range (only InvalidNextToken, OperationNotPermitted and
/// UnsupportedOperation), so it is the AWS JSON services' common `ValidationException`.
pub fn check_list(request: &ListChannelsRequest) -> Result<PageRequest> {
    paging::check_page(
        "ListChannels",
        request.max_results,
        request.next_token.as_deref(),
        ErrorCode::ValidationException,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext::for_tests()
    }

    fn destination(location: &str) -> Destination {
        Destination {
            r#type: Some(DestinationType::EventDataStore.into()),
            location: Some(location.into()),
        }
    }

    fn create(source: &str, destinations: Vec<Destination>) -> CreateChannelRequest {
        CreateChannelRequest {
            name: Some("app".into()),
            source: Some(source.into()),
            destinations,
            tags: vec![],
        }
    }

    #[test]
    fn resolves_destinations_to_store_ids() {
        let arn = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/ABC-1";
        let channel = check_create(&ctx(), &create("Custom", vec![destination(arn), destination("def-2")])).unwrap();
        assert_eq!(channel.destinations, ["abc-1", "def-2"]);
        assert_eq!(
            check_create(&ctx(), &create("GitHub", vec![destination("abc")]))
                .unwrap()
                .source,
            "GitHub"
        );
    }

    #[test]
    fn refuses_bad_sources_and_destinations() {
        let code = |request: CreateChannelRequest| check_create(&ctx(), &request).unwrap_err().code;
        assert_eq!(
            code(create("Nope", vec![destination("abc")])),
            ErrorCode::InvalidSourceException
        );
        assert_eq!(code(create("Custom", vec![])), ErrorCode::InvalidParameterException);
        assert_eq!(
            code(create("Custom", vec![destination("abc"), destination("ABC")])),
            ErrorCode::InvalidParameterException
        );
        let other_account = destination("arn:aws:cloudtrail:us-east-1:999999999999:eventdatastore/abc");
        assert_eq!(
            code(create("Custom", vec![other_account])),
            ErrorCode::EventDataStoreARNInvalidException
        );
        let service = Destination {
            r#type: Some(DestinationType::AwsService.into()),
            location: Some("config".into()),
        };
        assert_eq!(
            code(create("Custom", vec![service])),
            ErrorCode::InvalidParameterException
        );
        let untyped = Destination {
            r#type: None,
            location: Some("abc".into()),
        };
        assert_eq!(
            code(create("Custom", vec![untyped])),
            ErrorCode::InvalidParameterException
        );
    }

    #[test]
    fn channel_references_are_arns_or_ids_of_the_caller() {
        assert_eq!(channel_id(&ctx(), "Channel", Some("ABC-def")).unwrap(), "abc-def");
        let arn = "arn:aws:cloudtrail:us-east-1:123456789012:channel/abc";
        assert_eq!(channel_id(&ctx(), "Channel", Some(arn)).unwrap(), "abc");
        for bad in [
            "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/abc",
            "x",
            "a b c",
        ] {
            assert_eq!(
                channel_id(&ctx(), "Channel", Some(bad)).unwrap_err().code,
                ErrorCode::ChannelARNInvalidException
            );
        }
    }
}
