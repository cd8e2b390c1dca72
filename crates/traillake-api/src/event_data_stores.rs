//! Validation of the event data store operations' requests, and the settings they resolve to with
//! CloudTrail Lake's defaults applied.

use crate::Result;
use crate::arn;
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorCode};
use crate::paging::{self, PageRequest};
use crate::selectors::{self, StoreKind};
use crate::shapes::{
    AdvancedEventSelector, BillingMode, CreateEventDataStoreRequest, ListEventDataStoresRequest, Tag,
    UpdateEventDataStoreRequest,
};
use crate::tags;
use crate::validate::{self, Pattern, StringRule};

static NAME_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._\-]+$");
/// `EventDataStoreName`: 3..128 characters of `[a-zA-Z0-9._-]`.
pub static NAME: StringRule = StringRule {
    min: 3,
    max: 128,
    pattern: Some(&NAME_PATTERN),
    code: ErrorCode::InvalidParameterException,
};
static KMS_KEY_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._/\-:]+$");
/// `EventDataStoreKmsKeyId`: 1..350 characters.
pub static KMS_KEY_ID: StringRule = StringRule {
    min: 1,
    max: 350,
    pattern: Some(&KMS_KEY_PATTERN),
    code: ErrorCode::InvalidParameterException,
};

/// The least retention period, in days.
pub const MIN_RETENTION_DAYS: i32 = 7;
/// The greatest retention period with extendable retention pricing, in days.
pub const MAX_RETENTION_DAYS: i32 = 3653;
/// The greatest retention period with fixed retention pricing, in days.
pub const MAX_FIXED_RETENTION_DAYS: i32 = 2557;
/// The greatest number of tags on one resource.
pub const MAX_TAGS: usize = 50;

/// Returns the default retention period of a billing mode.
pub fn default_retention_days(billing_mode: BillingMode) -> i32 {
    match billing_mode {
        BillingMode::FixedRetentionPricing => MAX_FIXED_RETENTION_DAYS,
        _ => 366,
    }
}

/// Returns the greatest retention period of a billing mode.
pub fn max_retention_days(billing_mode: BillingMode) -> i32 {
    match billing_mode {
        BillingMode::FixedRetentionPricing => MAX_FIXED_RETENTION_DAYS,
        _ => MAX_RETENTION_DAYS,
    }
}

/// Checks a retention period against the range of a billing mode.
pub fn check_retention(days: i32, billing_mode: BillingMode) -> Result<()> {
    validate::range(
        ErrorCode::InvalidParameterException,
        "RetentionPeriod",
        days.into(),
        MIN_RETENTION_DAYS.into(),
        max_retention_days(billing_mode).into(),
    )
}

/// A new event data store, as a valid CreateEventDataStore request describes it with the defaults
/// applied.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEventDataStore {
    /// The store's name.
    pub name: String,
    /// The selectors, the default ones when the request gave none.
    pub selectors: Vec<AdvancedEventSelector>,
    /// The kind of events the selectors choose.
    pub kind: StoreKind,
    /// Whether the store takes events of every Region.
    pub multi_region: bool,
    /// Whether the store takes the events of an organization.
    pub organization: bool,
    /// Days an event is kept after its `eventTime`.
    pub retention_days: i32,
    /// Whether the store refuses to be deleted.
    pub termination_protection: bool,
    /// The full ARN of the KMS key the caller named.
    pub kms_key_id: Option<String>,
    /// Whether ingestion starts at once.
    pub start_ingestion: bool,
    /// The billing mode.
    pub billing_mode: BillingMode,
    /// The store's tags.
    pub tags: Vec<Tag>,
}

/// Checks a CreateEventDataStore request and returns the store it describes.
pub fn check_create(ctx: &RequestContext, request: &CreateEventDataStoreRequest) -> Result<NewEventDataStore> {
    let name = NAME.check_required("Name", request.name.as_deref())?;
    let billing_mode = validate::enum_value::<BillingMode>("BillingMode", request.billing_mode)?
        .unwrap_or(BillingMode::ExtendableRetentionPricing);
    let retention_days = request.retention_period.unwrap_or(default_retention_days(billing_mode));
    check_retention(retention_days, billing_mode)?;
    let kms_key_id = kms_key_id(ctx, request.kms_key_id.as_deref())?;
    let selectors = if request.advanced_event_selectors.is_empty() {
        selectors::default_selectors()
    } else {
        request.advanced_event_selectors.clone()
    };
    let kind = selectors::check_selectors("AdvancedEventSelectors", &selectors)?;
    tags::check_tags("TagsList", &request.tags_list, ErrorCode::InvalidTagParameterException)?;
    if request.tags_list.len() > MAX_TAGS {
        return Err(ApiError::new(
            ErrorCode::InvalidTagParameterException,
            format!(
                "TagsList has {} tags; a resource takes at most {MAX_TAGS}",
                request.tags_list.len()
            ),
        ));
    }
    Ok(NewEventDataStore {
        name: name.to_string(),
        selectors,
        kind,
        multi_region: request.multi_region_enabled.unwrap_or(true),
        organization: request.organization_enabled.unwrap_or(false),
        retention_days,
        termination_protection: request.termination_protection_enabled.unwrap_or(true),
        kms_key_id,
        start_ingestion: request.start_ingestion.unwrap_or(true),
        billing_mode,
        tags: request.tags_list.clone(),
    })
}

/// The changes a valid UpdateEventDataStore request asks for; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventDataStoreChanges {
    /// A new name.
    pub name: Option<String>,
    /// New selectors and the kind they choose.
    pub selectors: Option<(Vec<AdvancedEventSelector>, StoreKind)>,
    /// A new multi-Region setting.
    pub multi_region: Option<bool>,
    /// A new organization setting.
    pub organization: Option<bool>,
    /// A new retention period; its range is checked against the resulting billing mode.
    pub retention_days: Option<i32>,
    /// A new termination protection setting.
    pub termination_protection: Option<bool>,
    /// A KMS key (its full ARN) for a store that has none.
    pub kms_key_id: Option<String>,
    /// A new billing mode.
    pub billing_mode: Option<BillingMode>,
}

/// Checks an UpdateEventDataStore request and returns the store's ID and the changes.
pub fn check_update(
    ctx: &RequestContext,
    request: &UpdateEventDataStoreRequest,
) -> Result<(String, EventDataStoreChanges)> {
    let id = arn::event_data_store_id(ctx, "EventDataStore", request.event_data_store.as_deref())?;
    NAME.check_optional("Name", request.name.as_deref())?;
    let kms_key_id = kms_key_id(ctx, request.kms_key_id.as_deref())?;
    let billing_mode = validate::enum_value::<BillingMode>("BillingMode", request.billing_mode)?;
    if let Some(days) = request.retention_period {
        check_retention(days, BillingMode::ExtendableRetentionPricing)?;
    }
    let selectors = if request.advanced_event_selectors.is_empty() {
        None
    } else {
        let selectors = request.advanced_event_selectors.clone();
        let kind = selectors::check_selectors("AdvancedEventSelectors", &selectors)?;
        Some((selectors, kind))
    };
    let changes = EventDataStoreChanges {
        name: request.name.clone(),
        selectors,
        multi_region: request.multi_region_enabled,
        organization: request.organization_enabled,
        retention_days: request.retention_period,
        termination_protection: request.termination_protection_enabled,
        kms_key_id,
        billing_mode,
    };
    if changes == EventDataStoreChanges::default() {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterException,
            "UpdateEventDataStore needs at least one member besides EventDataStore: Name, \
             AdvancedEventSelectors, MultiRegionEnabled, OrganizationEnabled, RetentionPeriod, \
             TerminationProtectionEnabled, KmsKeyId or BillingMode",
        ));
    }
    Ok((id, changes))
}

/// Checks a `KmsKeyId` and returns the key's full ARN.
fn kms_key_id(ctx: &RequestContext, value: Option<&str>) -> Result<Option<String>> {
    let Some(value) = value else {
        return Ok(None);
    };
    KMS_KEY_ID.check("KmsKeyId", value)?;
    arn::kms_key_arn(ctx, "KmsKeyId", value).map(Some)
}

/// Checks a ListEventDataStores request and returns the page it asks for.
pub fn check_list(request: &ListEventDataStoresRequest) -> Result<PageRequest> {
    paging::check_page(
        "ListEventDataStores",
        request.max_results,
        request.next_token.as_deref(),
        ErrorCode::InvalidMaxResultsException,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str) -> CreateEventDataStoreRequest {
        CreateEventDataStoreRequest {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn check_create(request: &CreateEventDataStoreRequest) -> Result<NewEventDataStore> {
        super::check_create(&ctx(), request)
    }

    fn ctx() -> RequestContext {
        RequestContext::for_tests()
    }

    #[test]
    fn applies_lake_defaults() {
        let store = check_create(&create("my-store")).unwrap();
        assert_eq!(store.retention_days, 366);
        assert!(store.multi_region && store.termination_protection && store.start_ingestion);
        assert!(!store.organization);
        assert_eq!(store.kind, StoreKind::CloudTrail);
        let fixed = CreateEventDataStoreRequest {
            billing_mode: Some(BillingMode::FixedRetentionPricing.into()),
            ..create("fixed")
        };
        assert_eq!(check_create(&fixed).unwrap().retention_days, 2557);
    }

    #[test]
    fn bounds_retention_by_billing_mode() {
        let too_long_for_fixed = CreateEventDataStoreRequest {
            billing_mode: Some(BillingMode::FixedRetentionPricing.into()),
            retention_period: Some(3000),
            ..create("fixed")
        };
        assert_eq!(
            check_create(&too_long_for_fixed).unwrap_err().code,
            ErrorCode::InvalidParameterException
        );
        for days in [6, 3654] {
            let request = CreateEventDataStoreRequest {
                retention_period: Some(days),
                ..create("store")
            };
            assert!(check_create(&request).is_err(), "{days}");
        }
    }

    #[test]
    fn update_needs_a_change() {
        let ctx = ctx();
        let request = UpdateEventDataStoreRequest {
            event_data_store: Some("abcdef".into()),
            ..Default::default()
        };
        assert_eq!(
            check_update(&ctx, &request).unwrap_err().code,
            ErrorCode::InvalidParameterException
        );
        let request = UpdateEventDataStoreRequest {
            termination_protection_enabled: Some(false),
            ..request
        };
        assert_eq!(check_update(&ctx, &request).unwrap().0, "abcdef");
    }
}
