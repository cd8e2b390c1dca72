//! Validation of PutAuditEvents requests (the CloudTrail Data API), in the order of
//! `reference/cloudtrail-lake-semantics.md` §3.3: the channel reference (`InvalidChannelARN`), the
//! request's size (1..100 events, at most 1 MB: `ValidationException`), the external ID's form,
//! then IDs unique in the request (`DuplicatedAuditEventId`). Each event's own checks (its `id`
//! here, its `eventData` in the lake) fail only that event.

use std::collections::HashSet;

use crate::Result;
use crate::arn::{CloudTrailArn, ResourceType, is_account_id};
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorCode};
use crate::shapes::PutAuditEventsRequest;
use crate::validate::{Pattern, StringRule};

/// The most events in one request.
pub const MAX_EVENTS: usize = 100;
/// The most bytes of events in one request: the `id`, `eventData` and `eventDataChecksum` texts.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
static EXTERNAL_ID_PATTERN: Pattern = Pattern::new(r"^[\w+=,.@:\/-]*$");
/// `ExternalId`: 2..1224 characters of `[\w+=,.@:/-]`.
pub static EXTERNAL_ID: StringRule = StringRule {
    min: 2,
    max: 1224,
    pattern: Some(&EXTERNAL_ID_PATTERN),
    code: ErrorCode::ValidationException,
};
static EVENT_ID_PATTERN: Pattern = Pattern::new(r"^[-_A-Za-z0-9]+$");

/// The channel a PutAuditEvents request names: its owner may be another account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRef {
    /// The account that owns the channel: the ARN's, or the caller's for a bare ID.
    pub owner_account_id: String,
    /// The channel's ID, lowercase.
    pub channel_id: String,
}

/// Resolves `channelArn`: a channel ARN of the server's Region (of any account), or a channel ID
/// of the caller's account; anything else is `InvalidChannelARN`.
pub fn channel_ref(ctx: &RequestContext, value: Option<&str>) -> Result<ChannelRef> {
    let value = value.unwrap_or_default();
    let invalid = |why: &str| ApiError::new(ErrorCode::InvalidChannelARN, format!("channelArn '{value}' {why}"));
    if value.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidChannelARN,
            "channelArn is required: the ARN or ID of a channel",
        ));
    }
    if !value.contains(':') {
        let is_id = value.len() <= 256 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !is_id {
            return Err(invalid("is neither a channel ARN nor a channel ID"));
        }
        return Ok(ChannelRef {
            owner_account_id: ctx.account_id.clone(),
            channel_id: value.to_ascii_lowercase(),
        });
    }
    let arn = CloudTrailArn::parse(value).ok_or_else(|| invalid("is not a valid CloudTrail ARN"))?;
    if arn.kind() != Some(ResourceType::Channel) {
        return Err(invalid(
            "is not a channel ARN (arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID)",
        ));
    }
    if arn.region != ctx.region {
        return Err(invalid(&format!("is in Region {}, not in {}", arn.region, ctx.region)));
    }
    if !is_account_id(&arn.account_id) {
        return Err(invalid("does not name a 12-digit account"));
    }
    Ok(ChannelRef {
        owner_account_id: arn.account_id,
        channel_id: arn.resource_id.to_ascii_lowercase(),
    })
}

/// Checks what makes the whole request fail, after the channel: its size, every event's required
/// members, the external ID's form, and IDs unique in the request.
pub fn check_request(request: &PutAuditEventsRequest) -> Result<()> {
    let events = &request.audit_events;
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(ApiError::new(
            ErrorCode::ValidationException,
            format!(
                "auditEvents has {} events; a request takes 1 to {MAX_EVENTS}",
                events.len()
            ),
        ));
    }
    let mut bytes = 0;
    for (i, event) in events.iter().enumerate() {
        let (Some(id), Some(data)) = (&event.id, &event.event_data) else {
            let member = if event.id.is_none() { "id" } else { "eventData" };
            return Err(ApiError::missing(
                ErrorCode::ValidationException,
                &format!("auditEvents[{i}].{member}"),
            ));
        };
        bytes += id.len() + data.len() + event.event_data_checksum.as_ref().map_or(0, String::len);
    }
    if bytes > MAX_REQUEST_BYTES {
        return Err(ApiError::new(
            ErrorCode::ValidationException,
            format!("auditEvents hold {bytes} bytes; a request takes at most {MAX_REQUEST_BYTES} (1 MB)"),
        ));
    }
    EXTERNAL_ID.check_optional("externalId", request.external_id.as_deref())?;
    let mut seen = HashSet::with_capacity(events.len());
    for event in events {
        let id = event.id.as_deref().unwrap_or_default();
        if !seen.insert(id) {
            return Err(ApiError::new(
                ErrorCode::DuplicatedAuditEventId,
                format!("the id '{id}' is given to more than one event of the request"),
            ));
        }
    }
    Ok(())
}

/// Checks one event's `id`: 1..128 characters of `[-_A-Za-z0-9]`. Returns the per-event error
/// code and message when it is not.
pub fn check_event_id(id: &str) -> Result<(), (&'static str, String)> {
    let length = id.chars().count();
    if length > 128 {
        return Err((
            "FieldTooLong",
            format!("Field id has {length} characters; at most 128 are allowed."),
        ));
    }
    if length == 0 || !EVENT_ID_PATTERN.is_full_match(id) {
        return Err((
            "InvalidData",
            "Field id must be 1 to 128 characters of A-Z, a-z, 0-9, - and _.".to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::AuditEvent;

    fn ctx() -> RequestContext {
        RequestContext::for_tests()
    }

    fn event(id: &str) -> AuditEvent {
        AuditEvent {
            id: Some(id.into()),
            event_data: Some("{}".into()),
            event_data_checksum: None,
        }
    }

    #[test]
    fn resolves_channel_arns_of_any_account_and_ids_of_the_caller() {
        let arn = "arn:aws:cloudtrail:us-east-1:111122223333:channel/ABC";
        let reference = channel_ref(&ctx(), Some(arn)).unwrap();
        assert_eq!(
            (reference.owner_account_id.as_str(), reference.channel_id.as_str()),
            ("111122223333", "abc")
        );
        assert_eq!(
            channel_ref(&ctx(), Some("abc-1")).unwrap().owner_account_id,
            "123456789012"
        );
        for bad in [
            "abc/def",
            "arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/abc",
            "arn:aws:cloudtrail:eu-west-1:111122223333:channel/abc",
            "arn:aws:s3:::bucket",
            "",
        ] {
            assert_eq!(
                channel_ref(&ctx(), Some(bad)).unwrap_err().code,
                ErrorCode::InvalidChannelARN,
                "{bad}"
            );
        }
    }

    #[test]
    fn checks_the_request_as_a_whole() {
        let request = |events: Vec<AuditEvent>| PutAuditEventsRequest {
            audit_events: events,
            ..Default::default()
        };
        assert!(check_request(&request(vec![event("a"), event("b")])).is_ok());
        assert_eq!(
            check_request(&request(vec![])).unwrap_err().code,
            ErrorCode::ValidationException
        );
        assert_eq!(
            check_request(&request(vec![event("a"); 101])).unwrap_err().code,
            ErrorCode::ValidationException
        );
        assert_eq!(
            check_request(&request(vec![event("a"), event("a")])).unwrap_err().code,
            ErrorCode::DuplicatedAuditEventId
        );
        let big = AuditEvent {
            event_data: Some("x".repeat(MAX_REQUEST_BYTES)),
            ..event("a")
        };
        assert_eq!(
            check_request(&request(vec![big])).unwrap_err().code,
            ErrorCode::ValidationException
        );
        let bad_external_id = PutAuditEventsRequest {
            external_id: Some("a b".into()),
            ..request(vec![event("a")])
        };
        assert_eq!(
            check_request(&bad_external_id).unwrap_err().code,
            ErrorCode::ValidationException
        );
        assert_eq!(check_event_id("ok_id-1"), Ok(()));
        assert_eq!(check_event_id("not ok").unwrap_err().0, "InvalidData");
        assert_eq!(check_event_id(&"a".repeat(129)).unwrap_err().0, "FieldTooLong");
    }
}
