//! Fuzzes the JSON request parsing of both APIs as the gateway runs it: a body decoded as the
//! request shape of an operation, then the operation's member checks. An input is the operation's
//! name, a newline, and the body (`StartQuery\n{"QueryStatement": "..."}`), so that the corpus
//! reads as requests. A request may be refused with a modelled error and a message; nothing may
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use traillake_api::arn::{CloudTrailArn, ResourceType, check_owner, event_data_store_id};
use traillake_api::resource_policy::{PolicyTarget, ResourcePolicy};
use traillake_api::shapes::*;
use traillake_api::wire::decode;
use traillake_api::{
    ApiError, ErrorCode, RequestContext, audit_events, channels, event_data_stores, imports, queries, tags,
};

fuzz_target!(|input: &[u8]| {
    let Some(newline) = input.iter().position(|&byte| byte == b'\n') else {
        return;
    };
    let (name, body) = (&input[..newline], &input[newline + 1..]);
    let ctx = RequestContext {
        account_id: "123456789012".to_string(),
        region: "us-east-1".to_string(),
        request_id: "fuzz".to_string(),
        principal_arn: None,
    };
    if let Err(refused) = check(name, &ctx, body) {
        assert!(!refused.message.is_empty(), "{:?} without a message", refused.code);
        assert!(
            matches!(refused.status, 400 | 403 | 404 | 409),
            "{:?} answers {}",
            refused.code,
            refused.status
        );
    }
});

/// Decodes `body` as the request of the operation `name` and checks it as its handler does.
fn check(name: &[u8], ctx: &RequestContext, body: &[u8]) -> Result<(), ApiError> {
    match name {
        b"PutAuditEvents" => with::<PutAuditEventsRequest>(body, |request| {
            audit_events::channel_ref(ctx, request.channel_arn.as_deref())?;
            audit_events::check_request(request)?;
            for event in &request.audit_events {
                let _ = audit_events::check_event_id(event.id.as_deref().unwrap_or_default());
            }
            Ok(())
        }),
        b"CreateEventDataStore" => with(body, |request| event_data_stores::check_create(ctx, request).map(drop)),
        b"UpdateEventDataStore" => with(body, |request| event_data_stores::check_update(ctx, request).map(drop)),
        b"ListEventDataStores" => with(body, |request| event_data_stores::check_list(request).map(drop)),
        b"GetEventDataStore" | b"DeleteEventDataStore" | b"RestoreEventDataStore" => {
            with::<EventDataStoreRequest>(body, |request| {
                event_data_store_id(ctx, "EventDataStore", request.event_data_store.as_deref()).map(drop)
            })
        }
        b"CreateChannel" => with(body, |request| channels::check_create(ctx, request).map(drop)),
        b"UpdateChannel" => with(body, |request| channels::check_update(ctx, request).map(drop)),
        b"ListChannels" => with(body, |request| channels::check_list(request).map(drop)),
        b"AddTags" | b"RemoveTags" => with::<TagsRequest>(body, |request| {
            any_resource(ctx, request.resource_id.as_deref().unwrap_or_default())?;
            tags::check_tags("TagsList", &request.tags_list, ErrorCode::InvalidTagParameterException)
        }),
        b"ListTags" => with(body, |request| tags::check_list_tags(request)),
        b"PutResourcePolicy" => with::<PutResourcePolicyRequest>(body, |request| {
            let arn = request.resource_arn.as_deref().unwrap_or_default();
            let target = match any_resource(ctx, arn)? {
                ResourceType::Channel => PolicyTarget::Channel,
                ResourceType::Dashboard => PolicyTarget::Dashboard,
                _ => PolicyTarget::EventDataStore,
            };
            ResourcePolicy::parse(request.resource_policy.as_deref().unwrap_or_default(), arn, target).map(drop)
        }),
        b"StartImport" => with(body, |request| imports::check_start(request).map(drop)),
        b"GetImport" | b"StopImport" => with(body, |request| imports::check_import_request(request).map(drop)),
        b"ListImports" => with(body, |request| imports::check_list(request).map(drop)),
        b"ListImportFailures" => with(body, |request| imports::check_list_failures(request).map(drop)),
        b"StartQuery" => with(body, |request| queries::check_start(request).map(drop)),
        b"DescribeQuery" | b"CancelQuery" => with(body, |request| queries::check_query_request(request).map(drop)),
        b"GetQueryResults" => with(body, |request| queries::check_results(request).map(drop)),
        b"ListQueries" => with(body, |request| queries::check_list(request).map(drop)),
        b"GenerateQuery" => with(body, |request| queries::check_generate(ctx, request).map(drop)),
        b"EnableFederation" => with(body, |request| {
            traillake_api::federation::check_enable(ctx, request).map(drop)
        }),
        _ => Ok(()),
    }
}

/// Decodes a request shape and checks it.
fn with<T: DeserializeOwned>(body: &[u8], check: impl FnOnce(&T) -> Result<(), ApiError>) -> Result<(), ApiError> {
    check(&decode::<T>(body)?)
}

/// Resolves the ARN of a resource of the caller, as tags and policies take it.
fn any_resource(ctx: &RequestContext, value: &str) -> Result<ResourceType, ApiError> {
    let code = ErrorCode::ResourceARNNotValidException;
    let arn = CloudTrailArn::parse(value).ok_or_else(|| ApiError::new(code, format!("{value} is not an ARN")))?;
    check_owner(ctx, "ResourceArn", value, &arn, code)?;
    arn.kind().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceTypeNotSupportedException,
            format!("{value} has no tags"),
        )
    })
}
