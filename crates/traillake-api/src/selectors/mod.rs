//! Advanced event selectors of event data stores: the checks of their fields and operators, the
//! kind of events (`StoreKind`) that a store's selectors choose, and whether an event matches them
//! ([`matches()`], in `evaluate`).
//!
//! Rules, from the CloudTrail API reference for `AdvancedFieldSelector`:
//! - at most 5 selectors and 500 condition values in all;
//! - every selector has exactly one `eventCategory` condition, with `Equals` only;
//! - `readOnly`, `eventCategory` and `resources.type` take `Equals` only, `readOnly` only
//!   `true` / `false`;
//! - a field is one of those CloudTrail filters on; each operator list has at least one value;
//! - CloudTrail events (`Management`, `Data`, `NetworkActivity`) may be mixed; every other
//!   category (`Insight`, `ConfigurationItem`, `Evidence`, `ActivityAuditLog`) stands alone and
//!   takes no condition besides `eventCategory`;
//! - `Data` selectors need a `resources.type` condition.

mod evaluate;

pub use evaluate::{SelectedEvent, SelectedResource, matches};

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::error::{ApiError, ErrorCode};
use crate::shapes::{AdvancedEventSelector, AdvancedFieldSelector};
use crate::validate::{self, Pattern, StringRule};

/// The kind of events a store holds, fixed by its `eventCategory` selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreKind {
    /// CloudTrail management, data and network activity events.
    CloudTrail,
    /// CloudTrail Insights events.
    Insight,
    /// Config configuration items.
    ConfigurationItem,
    /// Audit Manager evidence.
    Evidence,
    /// Events from integrations outside AWS, delivered through channels.
    ActivityAuditLog,
}

impl StoreKind {
    /// Returns true if Start/StopEventDataStoreIngestion apply to stores of this kind: stores of
    /// CloudTrail events and Config items (as the reference says), and the stores channels
    /// deliver to, which can be created with `StartIngestion` false and must be startable.
    pub fn has_ingestion_control(self) -> bool {
        matches!(
            self,
            StoreKind::CloudTrail | StoreKind::ConfigurationItem | StoreKind::ActivityAuditLog
        )
    }

    fn of_category(category: &str) -> Option<Self> {
        match category {
            "Management" | "Data" | "NetworkActivity" => Some(StoreKind::CloudTrail),
            "Insight" => Some(StoreKind::Insight),
            "ConfigurationItem" => Some(StoreKind::ConfigurationItem),
            "Evidence" => Some(StoreKind::Evidence),
            "ActivityAuditLog" => Some(StoreKind::ActivityAuditLog),
            _ => None,
        }
    }
}

const MAX_SELECTORS: usize = 5;
const MAX_VALUES: usize = 500;
const FIELDS: &[&str] = &[
    "eventCategory",
    "eventSource",
    "eventName",
    "eventType",
    "readOnly",
    "resources.type",
    "resources.ARN",
    "userIdentity.arn",
    "sessionCredentialFromConsole",
    "errorCode",
    "vpcEndpointId",
];
const EQUALS_ONLY: &[&str] = &["eventCategory", "readOnly", "resources.type"];
/// Fields that filter data events only (seed API reference, AdvancedFieldSelector): a selector of
/// management events refuses them.
const DATA_EVENT_FIELDS: &[&str] = &["eventName", "resources.type", "resources.ARN"];
/// The values `eventSource` takes in a selector of management events, with `NotEquals` only.
const EXCLUDABLE_EVENT_SOURCES: &[&str] = &["kms.amazonaws.com", "rdsdata.amazonaws.com"];
/// The `resources.type` values of data events, as the seed API reference lists them.
const RESOURCE_TYPES: &[&str] = &[
    "AWS::AppConfig::Configuration",
    "AWS::B2BI::Transformer",
    "AWS::Bedrock::AgentAlias",
    "AWS::Bedrock::KnowledgeBase",
    "AWS::Cassandra::Table",
    "AWS::CloudFront::KeyValueStore",
    "AWS::CloudTrail::Channel",
    "AWS::CodeWhisperer::Customization",
    "AWS::CodeWhisperer::Profile",
    "AWS::Cognito::IdentityPool",
    "AWS::DynamoDB::Stream",
    "AWS::DynamoDB::Table",
    "AWS::EC2::Snapshot",
    "AWS::EMRWAL::Workspace",
    "AWS::FinSpace::Environment",
    "AWS::Glue::Table",
    "AWS::GreengrassV2::ComponentVersion",
    "AWS::GreengrassV2::Deployment",
    "AWS::GuardDuty::Detector",
    "AWS::IoT::Certificate",
    "AWS::IoT::Thing",
    "AWS::IoTSiteWise::Asset",
    "AWS::IoTSiteWise::TimeSeries",
    "AWS::IoTTwinMaker::Entity",
    "AWS::IoTTwinMaker::Workspace",
    "AWS::KendraRanking::ExecutionPlan",
    "AWS::KinesisVideo::Stream",
    "AWS::Lambda::Function",
    "AWS::ManagedBlockchain::Network",
    "AWS::ManagedBlockchain::Node",
    "AWS::MedicalImaging::Datastore",
    "AWS::NeptuneGraph::Graph",
    "AWS::PCAConnectorAD::Connector",
    "AWS::QBusiness::Application",
    "AWS::QBusiness::DataSource",
    "AWS::QBusiness::Index",
    "AWS::QBusiness::WebExperience",
    "AWS::RDS::DBCluster",
    "AWS::S3::AccessPoint",
    "AWS::S3::Object",
    "AWS::S3ObjectLambda::AccessPoint",
    "AWS::S3Outposts::Object",
    "AWS::SCN::Instance",
    "AWS::SNS::PlatformEndpoint",
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
    "AWS::SSM::ManagedNode",
    "AWS::SSMMessages::ControlChannel",
    "AWS::SWF::Domain",
    "AWS::SageMaker::Endpoint",
    "AWS::SageMaker::ExperimentTrialComponent",
    "AWS::SageMaker::FeatureGroup",
    "AWS::ServiceDiscovery::Namespace",
    "AWS::ServiceDiscovery::Service",
    "AWS::ThinClient::Device",
    "AWS::ThinClient::Environment",
    "AWS::Timestream::Database",
    "AWS::Timestream::Table",
    "AWS::VerifiedPermissions::PolicyStore",
    "AWS::XRay::Trace",
];

static SELECTOR_NAME: StringRule = StringRule {
    min: 0,
    max: 1000,
    pattern: None,
    code: ErrorCode::InvalidParameterException,
};
static FIELD_PATTERN: Pattern = Pattern::new(r"[\w|\d|\.|_]+");
static FIELD: StringRule = StringRule {
    min: 1,
    max: 1000,
    pattern: Some(&FIELD_PATTERN),
    code: ErrorCode::InvalidParameterException,
};
static OPERATOR_VALUE: StringRule = StringRule {
    min: 1,
    max: 2048,
    pattern: None,
    code: ErrorCode::InvalidParameterException,
};

/// Returns the selectors a store gets when a request gives none: management events.
pub fn default_selectors() -> Vec<AdvancedEventSelector> {
    vec![AdvancedEventSelector {
        name: Some("Default management events".into()),
        field_selectors: vec![AdvancedFieldSelector {
            field: Some("eventCategory".into()),
            equals: vec!["Management".into()],
            ..Default::default()
        }],
    }]
}

/// Checks the selectors of member `field` and returns the kind of store they describe.
pub fn check_selectors(field: &str, selectors: &[AdvancedEventSelector]) -> Result<StoreKind> {
    if selectors.len() > MAX_SELECTORS {
        return Err(invalid(format!(
            "{field} has {} selectors; an event data store takes at most {MAX_SELECTORS}",
            selectors.len()
        )));
    }
    let mut kind: Option<StoreKind> = None;
    let mut values = 0;
    for (i, selector) in selectors.iter().enumerate() {
        let path = format!("{field}[{i}]");
        SELECTOR_NAME.check_optional(&format!("{path}.Name"), selector.name.as_deref())?;
        let (selector_kind, selector_values) = check_selector(&path, selector)?;
        values += selector_values;
        match kind {
            None => kind = Some(selector_kind),
            Some(existing) if existing != selector_kind => {
                return Err(invalid(format!(
                    "{path} selects {selector_kind:?} events but an earlier selector selects {existing:?} events; \
                     a store holds one kind of event"
                )));
            }
            Some(_) => {}
        }
    }
    if values > MAX_VALUES {
        return Err(invalid(format!(
            "{field} has {values} condition values; an event data store takes at most {MAX_VALUES}"
        )));
    }
    kind.ok_or_else(|| invalid(format!("{field} must hold at least one selector")))
}

/// Checks one selector and returns its kind and its number of condition values.
fn check_selector(path: &str, selector: &AdvancedEventSelector) -> Result<(StoreKind, usize)> {
    let field_path = format!("{path}.FieldSelectors");
    validate::list_length(
        ErrorCode::InvalidParameterException,
        &field_path,
        selector.field_selectors.len(),
        1,
        usize::MAX,
    )?;
    let mut categories: Vec<&str> = Vec::new();
    let mut fields: Vec<&str> = Vec::new();
    let mut values = 0;
    for (j, condition) in selector.field_selectors.iter().enumerate() {
        let condition_path = format!("{field_path}[{j}]");
        let name = FIELD.check_required(&format!("{condition_path}.Field"), condition.field.as_deref())?;
        values += check_condition(&condition_path, name, condition)?;
        if name == "eventCategory" {
            if !categories.is_empty() {
                return Err(invalid(format!("{path} has more than one eventCategory condition")));
            }
            categories.extend(condition.equals.iter().map(String::as_str));
        }
        fields.push(name);
    }
    let [category] = categories[..] else {
        return Err(match categories.len() {
            0 => invalid(format!("{path} must have an eventCategory condition")),
            _ => invalid(format!(
                "{path}: eventCategory takes one value; add another selector for another category"
            )),
        });
    };
    let Some(kind) = StoreKind::of_category(category) else {
        return Err(invalid(format!(
            "{path} has the unknown eventCategory '{category}'; expected one of Management, Data, \
             NetworkActivity, Insight, ConfigurationItem, Evidence, ActivityAuditLog"
        )));
    };
    if kind != StoreKind::CloudTrail && fields.iter().any(|f| *f != "eventCategory") {
        return Err(invalid(format!(
            "{path} selects {kind:?} events, which take no condition besides eventCategory"
        )));
    }
    match category {
        "Management" => check_management_selector(path, selector)?,
        "Data" => check_data_selector(path, selector)?,
        _ => {}
    }
    Ok((kind, values))
}

/// Checks the rules of a selector of management events: no data-event field, and `eventSource`
/// only to leave out KMS or RDS Data API events.
fn check_management_selector(path: &str, selector: &AdvancedEventSelector) -> Result<()> {
    for condition in &selector.field_selectors {
        let name = condition.field.as_deref().unwrap_or_default();
        if DATA_EVENT_FIELDS.contains(&name) {
            return Err(invalid(format!(
                "{path} selects Management events, and {name} filters data events only; management events take \
                 eventCategory, eventSource and readOnly"
            )));
        }
        if name != "eventSource" {
            continue;
        }
        let other_operators = [
            &condition.equals,
            &condition.starts_with,
            &condition.ends_with,
            &condition.not_starts_with,
            &condition.not_ends_with,
        ];
        let excludable = condition
            .not_equals
            .iter()
            .all(|value| EXCLUDABLE_EVENT_SOURCES.contains(&value.as_str()));
        if other_operators.iter().any(|values| !values.is_empty()) || !excludable {
            return Err(invalid(format!(
                "{path}: eventSource in a selector of management events takes NotEquals {} only",
                EXCLUDABLE_EVENT_SOURCES.join(" or NotEquals ")
            )));
        }
    }
    Ok(())
}

/// Checks the rules of a selector of data events: exactly one `resources.type` condition, of
/// one known resource type, and no `eventSource`.
fn check_data_selector(path: &str, selector: &AdvancedEventSelector) -> Result<()> {
    let mut types = Vec::new();
    for condition in &selector.field_selectors {
        match condition.field.as_deref().unwrap_or_default() {
            "resources.type" => types.push(&condition.equals),
            "eventSource" => {
                return Err(invalid(format!(
                    "{path} selects Data events, and eventSource filters management events only"
                )));
            }
            _ => {}
        }
    }
    let [values] = types[..] else {
        return Err(invalid(match types.len() {
            0 => format!("{path} selects Data events and must have a resources.type condition"),
            _ => format!(
                "{path} has {} resources.type conditions; a selector takes one, add a selector per resource type",
                types.len()
            ),
        }));
    };
    let [resource_type] = &values[..] else {
        return Err(invalid(format!(
            "{path}: resources.type takes one value; add a selector per resource type"
        )));
    };
    if !RESOURCE_TYPES.contains(&resource_type.as_str()) {
        return Err(invalid(format!(
            "{path}: '{resource_type}' is not a resources.type of data events (such as AWS::S3::Object, \
             AWS::Lambda::Function or AWS::DynamoDB::Table)"
        )));
    }
    Ok(())
}

/// Checks one field condition and returns its number of values.
fn check_condition(path: &str, name: &str, condition: &AdvancedFieldSelector) -> Result<usize> {
    if !FIELDS.contains(&name) {
        return Err(invalid(format!(
            "{path}.Field '{name}' is not a field event data store selectors filter on; expected one of {}",
            FIELDS.join(", ")
        )));
    }
    let operators: [(&str, &Vec<String>); 6] = [
        ("Equals", &condition.equals),
        ("StartsWith", &condition.starts_with),
        ("EndsWith", &condition.ends_with),
        ("NotEquals", &condition.not_equals),
        ("NotStartsWith", &condition.not_starts_with),
        ("NotEndsWith", &condition.not_ends_with),
    ];
    let mut values = 0;
    for (operator, list) in operators {
        if list.is_empty() {
            continue;
        }
        if operator != "Equals" && EQUALS_ONLY.contains(&name) {
            return Err(invalid(format!(
                "{path}: the field {name} takes the Equals operator only"
            )));
        }
        for (k, value) in list.iter().enumerate() {
            OPERATOR_VALUE.check(&format!("{path}.{operator}[{k}]"), value)?;
            if name == "readOnly" && value != "true" && value != "false" {
                return Err(invalid(format!(
                    "{path}: readOnly takes the values true and false, not '{value}'"
                )));
            }
        }
        values += list.len();
    }
    if values == 0 {
        return Err(invalid(format!("{path}: the field {name} has no operator with values")));
    }
    Ok(values)
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidEventSelectorsException, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(field: &str, equals: &[&str]) -> AdvancedFieldSelector {
        AdvancedFieldSelector {
            field: Some(field.into()),
            equals: equals.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        }
    }

    fn selector(conditions: Vec<AdvancedFieldSelector>) -> AdvancedEventSelector {
        AdvancedEventSelector {
            name: None,
            field_selectors: conditions,
        }
    }

    #[test]
    fn tells_the_kind_of_store() {
        let kind = check_selectors("S", &default_selectors()).unwrap();
        assert_eq!(kind, StoreKind::CloudTrail);
        let channel = [selector(vec![condition("eventCategory", &["ActivityAuditLog"])])];
        assert_eq!(check_selectors("S", &channel).unwrap(), StoreKind::ActivityAuditLog);
        let mixed_ct = [
            selector(vec![condition("eventCategory", &["Management"])]),
            selector(vec![
                condition("eventCategory", &["Data"]),
                condition("resources.type", &["AWS::S3::Object"]),
            ]),
        ];
        assert_eq!(check_selectors("S", &mixed_ct).unwrap(), StoreKind::CloudTrail);
        let without_kms = [selector(vec![
            condition("eventCategory", &["Management"]),
            AdvancedFieldSelector {
                field: Some("eventSource".into()),
                not_equals: vec!["kms.amazonaws.com".into(), "rdsdata.amazonaws.com".into()],
                ..Default::default()
            },
            condition("readOnly", &["false"]),
        ])];
        assert_eq!(check_selectors("S", &without_kms).unwrap(), StoreKind::CloudTrail);
    }

    #[test]
    fn refuses_bad_selectors() {
        let cases = vec![
            vec![selector(vec![condition("eventSource", &["s3.amazonaws.com"])])],
            vec![selector(vec![condition("eventCategory", &["Bogus"])])],
            vec![selector(vec![
                condition("eventCategory", &["Management"]),
                condition("nope", &["x"]),
            ])],
            vec![selector(vec![
                condition("eventCategory", &["Management"]),
                condition("readOnly", &["maybe"]),
            ])],
            vec![selector(vec![condition("eventCategory", &["Data"])])],
            vec![selector(vec![condition("eventCategory", &["Management", "Data"])])],
            vec![selector(vec![
                condition("eventCategory", &["Management"]),
                condition("eventName", &["PutObject"]),
            ])],
            vec![selector(vec![
                condition("eventCategory", &["Management"]),
                condition("resources.type", &["AWS::S3::Object"]),
            ])],
            vec![selector(vec![
                condition("eventCategory", &["Management"]),
                condition("eventSource", &["s3.amazonaws.com"]),
            ])],
            vec![selector(vec![
                condition("eventCategory", &["Management"]),
                AdvancedFieldSelector {
                    field: Some("eventSource".into()),
                    not_equals: vec!["s3.amazonaws.com".into()],
                    ..Default::default()
                },
            ])],
            vec![selector(vec![
                condition("eventCategory", &["Data"]),
                condition("resources.type", &["AWS::S3::Bucket"]),
            ])],
            vec![selector(vec![
                condition("eventCategory", &["Data"]),
                condition("resources.type", &["AWS::S3::Object", "AWS::Lambda::Function"]),
            ])],
            vec![selector(vec![
                condition("eventCategory", &["Data"]),
                condition("resources.type", &["AWS::S3::Object"]),
                condition("resources.type", &["AWS::Lambda::Function"]),
            ])],
            vec![selector(vec![
                condition("eventCategory", &["Data"]),
                condition("resources.type", &["AWS::S3::Object"]),
                condition("eventSource", &["s3.amazonaws.com"]),
            ])],
            vec![
                selector(vec![condition("eventCategory", &["Management"])]),
                selector(vec![condition("eventCategory", &["ActivityAuditLog"])]),
            ],
            vec![selector(vec![
                condition("eventCategory", &["Insight"]),
                condition("eventName", &["x"]),
            ])],
            vec![selector(vec![AdvancedFieldSelector {
                field: Some("eventCategory".into()),
                starts_with: vec!["Man".into()],
                ..Default::default()
            }])],
            (0..6)
                .map(|_| selector(vec![condition("eventCategory", &["Management"])]))
                .collect(),
        ];
        for (i, case) in cases.iter().enumerate() {
            let err = check_selectors("AdvancedEventSelectors", case).unwrap_err();
            assert_eq!(
                err.code,
                ErrorCode::InvalidEventSelectorsException,
                "case {i}: {}",
                err.message
            );
        }
    }

    #[test]
    fn counts_values_across_selectors() {
        let many: Vec<String> = (0..300).map(|i| format!("Op{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let one = selector(vec![
            condition("eventCategory", &["Data"]),
            condition("resources.type", &["AWS::S3::Object"]),
            condition("eventName", &many),
        ]);
        assert!(check_selectors("S", std::slice::from_ref(&one)).is_ok());
        let err = check_selectors("S", &[one.clone(), one]).unwrap_err();
        assert!(err.message.contains("at most 500"), "{}", err.message);
    }
}
