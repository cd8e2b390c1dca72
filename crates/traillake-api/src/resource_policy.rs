//! Resource policies: the validation of a policy document for a channel or an event data store
//! (`ResourcePolicyNotValidException` naming the rule), and the decision it makes on who may call
//! PutAuditEvents on a channel, as `reference/cloudtrail-lake-semantics.md` §3.2 says.
//!
//! The rules of a channel policy: 1..20 statements; each with `Effect` Allow or Deny, 1..50
//! principals under `Principal.AWS` (account IDs or `arn:aws:iam::ACCOUNT:root`; traillake
//! authorizes accounts, so other principals are refused rather than widened to their account),
//! the action `cloudtrail-data:PutAuditEvents` only, the channel's ARN as the resource, and as the
//! only condition `StringEquals` on `cloudtrail:ExternalId`. An event data store's policy follows
//! the same shape with `cloudtrail:` actions, and may also name service principals.

use serde_json::{Map, Value};

use crate::Result;
use crate::arn::is_account_id;
use crate::error::{ApiError, ErrorCode};
use crate::validate::StringRule;

/// `ResourcePolicy`: 1..8192 characters.
pub static POLICY_TEXT: StringRule = StringRule {
    min: 1,
    max: 8192,
    pattern: None,
    code: ErrorCode::ResourcePolicyNotValidException,
};

/// The only action a channel policy may grant.
pub const PUT_AUDIT_EVENTS_ACTION: &str = "cloudtrail-data:PutAuditEvents";
/// The condition key of the external ID.
pub const EXTERNAL_ID_KEY: &str = "cloudtrail:ExternalId";
const MAX_STATEMENTS: usize = 20;
const MAX_PRINCIPALS: usize = 50;

/// The kind of resource a policy is attached to, which decides its actions and principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyTarget {
    /// A channel: who may call PutAuditEvents.
    Channel,
    /// An event data store.
    EventDataStore,
}

/// One statement, reduced to what traillake decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    accounts: Vec<String>,
    /// The external IDs a `StringEquals` condition accepts; `None` without a condition.
    external_ids: Option<Vec<String>>,
}

/// A valid resource policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePolicy {
    statements: Vec<Statement>,
}

fn not_valid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ResourcePolicyNotValidException, message)
}

/// Returns a string or a list of strings as a list; anything else is `None`.
fn strings(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) => items.iter().map(|item| item.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

/// Returns the member `name` of a statement, matching the name case-sensitively as IAM does.
fn required<'a>(statement: &'a Map<String, Value>, index: usize, name: &str) -> Result<&'a Value> {
    statement
        .get(name)
        .ok_or_else(|| not_valid(format!("Statement[{index}] has no {name}")))
}

/// Returns the account of an AWS principal: a 12-digit account ID or `arn:aws:iam::ACCOUNT:root`.
fn principal_account(principal: &str) -> Option<String> {
    let account = principal
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.strip_suffix(":root"))
        .unwrap_or(principal);
    is_account_id(account).then(|| account.to_string())
}

impl ResourcePolicy {
    /// Parses and checks a policy document for the resource `resource_arn`.
    pub fn parse(text: &str, resource_arn: &str, target: PolicyTarget) -> Result<Self> {
        POLICY_TEXT.check("ResourcePolicy", text)?;
        let document: Value = serde_json::from_str(text)
            .map_err(|error| not_valid(format!("ResourcePolicy is not valid JSON: {error}")))?;
        let Value::Object(document) = document else {
            return Err(not_valid("ResourcePolicy must be a JSON object with a Statement"));
        };
        if let Some(version) = document.get("Version")
            && !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17"))
        {
            return Err(not_valid(format!(
                "ResourcePolicy has Version {version}; use \"2012-10-17\""
            )));
        }
        let statements = match document.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(item @ Value::Object(_)) => vec![item],
            _ => {
                return Err(not_valid(
                    "ResourcePolicy needs a Statement: an object or a list of objects",
                ));
            }
        };
        if statements.is_empty() || statements.len() > MAX_STATEMENTS {
            return Err(not_valid(format!(
                "ResourcePolicy has {} statements; it needs 1 to {MAX_STATEMENTS}",
                statements.len()
            )));
        }
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(index, statement)| parse_statement(index, statement, resource_arn, target))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { statements })
    }

    /// Returns true if `caller` may call PutAuditEvents on a channel of `owner` with `external_id`:
    /// the owner may unless a Deny statement matches; another account needs a matching Allow
    /// statement (with its external ID, if the statement has the condition) and no matching Deny.
    pub fn permits_put_audit_events(&self, caller: &str, owner: &str, external_id: Option<&str>) -> bool {
        let matches = |statement: &Statement| {
            statement.accounts.iter().any(|account| account == caller)
                && statement
                    .external_ids
                    .as_ref()
                    .is_none_or(|ids| external_id.is_some_and(|given| ids.iter().any(|id| id == given)))
        };
        if self
            .statements
            .iter()
            .any(|statement| !statement.allow && matches(statement))
        {
            return false;
        }
        caller == owner
            || self
                .statements
                .iter()
                .any(|statement| statement.allow && matches(statement))
    }
}

fn parse_statement(index: usize, value: &Value, resource_arn: &str, target: PolicyTarget) -> Result<Statement> {
    let Value::Object(statement) = value else {
        return Err(not_valid(format!("Statement[{index}] must be a JSON object")));
    };
    let allow = match required(statement, index, "Effect")?.as_str() {
        Some("Allow") => true,
        Some("Deny") => false,
        _ => {
            return Err(not_valid(format!(
                "Statement[{index}].Effect must be \"Allow\" or \"Deny\""
            )));
        }
    };
    let Value::Object(principal) = required(statement, index, "Principal")? else {
        return Err(not_valid(format!(
            "Statement[{index}].Principal must be an object such as {{\"AWS\": [\"111122223333\"]}}"
        )));
    };
    let mut accounts = Vec::new();
    let mut principals = 0;
    for (kind, values) in principal {
        let values = strings(values).ok_or_else(|| {
            not_valid(format!(
                "Statement[{index}].Principal.{kind} must be a string or a list of strings"
            ))
        })?;
        principals += values.len();
        match (kind.as_str(), target) {
            ("AWS", _) => {
                for value in values {
                    let account = principal_account(&value).ok_or_else(|| {
                        not_valid(format!(
                            "Statement[{index}].Principal.AWS '{value}' is not an account: name it as 111122223333 or arn:aws:iam::111122223333:root"
                        ))
                    })?;
                    accounts.push(account);
                }
            }
            ("Service", PolicyTarget::EventDataStore) => {}
            _ => {
                return Err(not_valid(format!(
                    "Statement[{index}].Principal.{kind} is not a principal this resource takes; use AWS"
                )));
            }
        }
    }
    if principals == 0 || principals > MAX_PRINCIPALS {
        return Err(not_valid(format!(
            "Statement[{index}] has {principals} principals; it needs 1 to {MAX_PRINCIPALS}"
        )));
    }
    let actions = strings(required(statement, index, "Action")?).ok_or_else(|| {
        not_valid(format!(
            "Statement[{index}].Action must be a string or a list of strings"
        ))
    })?;
    for action in &actions {
        let fits = match target {
            PolicyTarget::Channel => action == PUT_AUDIT_EVENTS_ACTION,
            PolicyTarget::EventDataStore => action.starts_with("cloudtrail:"),
        };
        if !fits {
            let allowed = match target {
                PolicyTarget::Channel => PUT_AUDIT_EVENTS_ACTION,
                PolicyTarget::EventDataStore => "cloudtrail: actions",
            };
            return Err(not_valid(format!(
                "Statement[{index}].Action '{action}' is not allowed; this resource takes {allowed}"
            )));
        }
    }
    if actions.is_empty() {
        return Err(not_valid(format!("Statement[{index}].Action names no action")));
    }
    let resources = strings(required(statement, index, "Resource")?).ok_or_else(|| {
        not_valid(format!(
            "Statement[{index}].Resource must be a string or a list of strings"
        ))
    })?;
    if resources.is_empty() || resources.iter().any(|resource| resource != resource_arn) {
        return Err(not_valid(format!(
            "Statement[{index}].Resource must be the resource's own ARN, {resource_arn}"
        )));
    }
    let external_ids = match statement.get("Condition") {
        None => None,
        Some(condition) => Some(parse_external_id_condition(index, condition)?),
    };
    Ok(Statement {
        allow,
        accounts,
        external_ids,
    })
}

/// Reads `{"StringEquals": {"cloudtrail:ExternalId": "id" | ["id", ...]}}`.
fn parse_external_id_condition(index: usize, condition: &Value) -> Result<Vec<String>> {
    let unsupported = || {
        not_valid(format!(
            "Statement[{index}].Condition is not supported: the only condition is {{\"StringEquals\": {{\"{EXTERNAL_ID_KEY}\": \"ID\"}}}}"
        ))
    };
    let Value::Object(operators) = condition else {
        return Err(unsupported());
    };
    let (Some((operator, keys)), 1) = (operators.iter().next(), operators.len()) else {
        return Err(unsupported());
    };
    let Value::Object(keys) = keys else {
        return Err(unsupported());
    };
    let (Some((key, values)), 1) = (keys.iter().next(), keys.len()) else {
        return Err(unsupported());
    };
    if operator != "StringEquals" || !key.eq_ignore_ascii_case(EXTERNAL_ID_KEY) {
        return Err(unsupported());
    }
    match strings(values) {
        Some(ids) if !ids.is_empty() => Ok(ids),
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CHANNEL: &str = "arn:aws:cloudtrail:us-east-1:123456789012:channel/c1";
    const OWNER: &str = "123456789012";

    fn policy(statements: Value) -> Result<ResourcePolicy> {
        let text = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        ResourcePolicy::parse(&text, CHANNEL, PolicyTarget::Channel)
    }

    fn allow(principals: Value, condition: Option<Value>) -> Value {
        let mut statement = json!({"Effect": "Allow", "Principal": {"AWS": principals},
                                   "Action": PUT_AUDIT_EVENTS_ACTION, "Resource": CHANNEL});
        if let Some(condition) = condition {
            statement["Condition"] = condition;
        }
        statement
    }

    #[test]
    fn lets_in_the_named_accounts_with_their_external_id() {
        let open = policy(json!([allow(json!(["arn:aws:iam::111122223333:root"]), None)])).unwrap();
        assert!(open.permits_put_audit_events("111122223333", OWNER, None));
        assert!(open.permits_put_audit_events(OWNER, OWNER, None));
        assert!(!open.permits_put_audit_events("444455556666", OWNER, None));
        let condition = json!({"StringEquals": {"cloudtrail:ExternalId": "ext-42"}});
        let guarded = policy(json!(allow(json!("111122223333"), Some(condition)))).unwrap();
        assert!(guarded.permits_put_audit_events("111122223333", OWNER, Some("ext-42")));
        assert!(!guarded.permits_put_audit_events("111122223333", OWNER, Some("ext-41")));
        assert!(!guarded.permits_put_audit_events("111122223333", OWNER, None));
        assert!(
            guarded.permits_put_audit_events(OWNER, OWNER, None),
            "the owner is not bound by the condition"
        );
        let mut deny = allow(json!(OWNER), None);
        deny["Effect"] = json!("Deny");
        assert!(
            !policy(json!([deny]))
                .unwrap()
                .permits_put_audit_events(OWNER, OWNER, None)
        );
    }

    #[test]
    fn refuses_what_the_rules_forbid() {
        let mut wrong_action = allow(json!("111122223333"), None);
        wrong_action["Action"] = json!("cloudtrail:StartQuery");
        let mut wrong_resource = allow(json!("111122223333"), None);
        wrong_resource["Resource"] = json!("arn:aws:cloudtrail:us-east-1:123456789012:channel/other");
        let too_many_principals: Vec<String> = (0..51).map(|n| format!("{:012}", n)).collect();
        let role = allow(json!("arn:aws:iam::111122223333:role/x"), None);
        let other_condition = allow(
            json!("111122223333"),
            Some(json!({"StringLike": {"cloudtrail:ExternalId": "*"}})),
        );
        for statements in [
            json!([]),
            json!(vec![allow(json!("111122223333"), None); 21]),
            json!([wrong_action]),
            json!([wrong_resource]),
            json!([allow(json!(too_many_principals), None)]),
            json!([allow(json!([]), None)]),
            json!([role]),
            json!([other_condition]),
            json!(["text"]),
        ] {
            let error = policy(statements.clone()).unwrap_err();
            assert_eq!(error.code, ErrorCode::ResourcePolicyNotValidException, "{statements}");
        }
        for text in ["not json", "[]", "", r#"{"Statement": 5}"#] {
            assert!(
                ResourcePolicy::parse(text, CHANNEL, PolicyTarget::Channel).is_err(),
                "{text}"
            );
        }
    }
}
