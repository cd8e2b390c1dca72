//! Resource policies: the validation of a policy document for a channel, an event data store or a
//! dashboard (`ResourcePolicyNotValidException` naming the rule), and the decision it makes on who
//! may do what to the resource.
//!
//! The rules of a channel policy (`reference/cloudtrail-lake-semantics.md` §3.2): 1..20
//! statements; each with `Effect` Allow or Deny, 1..50 principals under `Principal.AWS` (account
//! IDs or `arn:aws:iam::ACCOUNT:root`), the action `cloudtrail-data:PutAuditEvents` only, the
//! channel's ARN as the resource, and as the only condition `StringEquals` on
//! `cloudtrail:ExternalId`.
//!
//! Event data store and dashboard policies take AWS's documented forms: principals of accounts,
//! IAM roles (which also match the sessions of the role) and users under `AWS`, and the service
//! `cloudtrail.amazonaws.com` under `Service`; `cloudtrail:` actions of the API or `cloudtrail:*`;
//! `Resource` optional (the resource's own ARN); conditions `StringEquals`, `StringLike`,
//! `ArnEquals`, `ArnLike` on `aws:SourceArn`, `aws:SourceAccount`, `aws:PrincipalAccount`,
//! `aws:PrincipalArn` (keys case-insensitive, as IAM reads them).
//!
//! The decision ([`ResourcePolicy::permits`]): a matching Deny refuses; the resource's own account
//! is allowed otherwise (traillake has no identity policies to consult); anyone else needs a
//! matching Allow.

use serde_json::{Map, Value};

use crate::Result;
use crate::arn::is_account_id;
use crate::error::{ApiError, ErrorCode};
use crate::operations::Operation;
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
/// The service principal of CloudTrail, which refreshes dashboards.
pub const CLOUDTRAIL_SERVICE: &str = "cloudtrail.amazonaws.com";
const MAX_STATEMENTS: usize = 20;
const MAX_PRINCIPALS: usize = 50;

/// The kind of resource a policy is attached to, which decides its actions and principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyTarget {
    /// A channel: who may call PutAuditEvents.
    Channel,
    /// An event data store: who may query it.
    EventDataStore,
    /// A dashboard.
    Dashboard,
}

/// Who a statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    /// Every caller of an account.
    Account(String),
    /// An IAM role, by its ARN: the role and its sessions (`arn:aws:sts::ACCOUNT:assumed-role/NAME/...`).
    Role(String),
    /// An IAM user, by its ARN.
    User(String),
    /// An AWS service.
    Service(String),
}

/// A condition key traillake knows the value of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    ExternalId,
    SourceArn,
    SourceAccount,
    PrincipalAccount,
    PrincipalArn,
}

/// One condition: the key's value must match one of the values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Condition {
    /// `Like` operators match `*` and `?` wildcards; the others compare whole values.
    like: bool,
    key: Key,
    values: Vec<String>,
}

/// One statement, reduced to what traillake decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    principals: Vec<Principal>,
    actions: Vec<String>,
    conditions: Vec<Condition>,
}

/// A valid resource policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePolicy {
    statements: Vec<Statement>,
}

/// Who asks for access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// A caller of an account, with its principal's ARN when the credentials give one.
    Account {
        /// The caller's account.
        account_id: &'a str,
        /// The caller's principal ARN.
        arn: Option<&'a str>,
    },
    /// An AWS service acting for a resource (a dashboard's refresh).
    Service(&'a str),
}

/// A request for access to the resource a policy is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access<'a> {
    /// The action, as `cloudtrail:StartQuery`.
    pub action: &'a str,
    /// Who asks.
    pub caller: Caller<'a>,
    /// `aws:SourceArn`: the resource a service acts for.
    pub source_arn: Option<&'a str>,
    /// `aws:SourceAccount`: the account of that resource.
    pub source_account: Option<&'a str>,
    /// `cloudtrail:ExternalId` of a PutAuditEvents call.
    pub external_id: Option<&'a str>,
}

impl<'a> Access<'a> {
    /// Returns the access of an account's caller to `action`, with no source or external ID.
    pub fn by_account(action: &'a str, account_id: &'a str, arn: Option<&'a str>) -> Self {
        Self {
            action,
            caller: Caller::Account { account_id, arn },
            source_arn: None,
            source_account: None,
            external_id: None,
        }
    }
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

/// Reads an AWS principal of a store or dashboard policy: an account, a role or a user.
fn aws_principal(value: &str) -> Option<Principal> {
    if let Some(account) = principal_account(value) {
        return Some(Principal::Account(account));
    }
    let rest = value.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    if !is_account_id(account) {
        return None;
    }
    let named = |kind: &str| {
        resource
            .strip_prefix(kind)
            .is_some_and(|name| !name.is_empty() && !name.ends_with('/'))
    };
    if named("role/") {
        Some(Principal::Role(value.to_string()))
    } else if named("user/") {
        Some(Principal::User(value.to_string()))
    } else {
        None
    }
}

/// Returns true if `value` matches an IAM pattern with `*` (any run) and `?` (any one character).
fn like(pattern: &str, value: &str) -> bool {
    let (pattern, value): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut p, mut v, mut star, mut mark) = (0, 0, None, 0);
    while v < value.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == value[v]) {
            p += 1;
            v += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = v;
            p += 1;
        } else if let Some(at) = star {
            p = at + 1;
            mark += 1;
            v = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

impl Principal {
    fn matches(&self, caller: &Caller<'_>) -> bool {
        match (self, caller) {
            (Principal::Account(account), Caller::Account { account_id, .. }) => account == account_id,
            (Principal::User(user), Caller::Account { arn, .. }) => arn.is_some_and(|arn| arn == user),
            (Principal::Role(role), Caller::Account { arn: Some(arn), .. }) => {
                *arn == role
                    || assumed_role_of(arn).is_some_and(|(account, name)| {
                        role.strip_prefix("arn:aws:iam::")
                            .and_then(|rest| rest.split_once(":role/"))
                            .is_some_and(|(role_account, path)| {
                                role_account == account && path.rsplit('/').next() == Some(name)
                            })
                    })
            }
            (Principal::Service(service), Caller::Service(caller)) => service == caller,
            _ => false,
        }
    }
}

/// Returns the account and role name of an assumed-role session ARN
/// (`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`).
fn assumed_role_of(arn: &str) -> Option<(&str, &str)> {
    let (account, rest) = arn.strip_prefix("arn:aws:sts::")?.split_once(":assumed-role/")?;
    let (name, _session) = rest.split_once('/')?;
    Some((account, name))
}

impl Condition {
    fn holds(&self, access: &Access<'_>) -> bool {
        let value = match (self.key, access.caller) {
            (Key::ExternalId, _) => access.external_id,
            (Key::SourceArn, _) => access.source_arn,
            (Key::SourceAccount, _) => access.source_account,
            (Key::PrincipalAccount, Caller::Account { account_id, .. }) => Some(account_id),
            (Key::PrincipalArn, Caller::Account { arn, .. }) => arn,
            (Key::PrincipalAccount | Key::PrincipalArn, Caller::Service(_)) => None,
        };
        value.is_some_and(|value| {
            self.values.iter().any(|wanted| {
                if self.like {
                    like(wanted, value)
                } else {
                    wanted == value
                }
            })
        })
    }
}

impl Statement {
    fn matches(&self, access: &Access<'_>) -> bool {
        self.principals
            .iter()
            .any(|principal| principal.matches(&access.caller))
            && self.actions.iter().any(|action| {
                action.eq_ignore_ascii_case(access.action)
                    || (action == "cloudtrail:*" && access.action.starts_with("cloudtrail:"))
            })
            && self.conditions.iter().all(|condition| condition.holds(access))
    }
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

    /// Returns true if the policy lets `access` through on a resource of account `owner`: no
    /// matching Deny, and either the caller is of the owner's account or an Allow matches.
    pub fn permits(&self, owner: &str, access: &Access<'_>) -> bool {
        if self
            .statements
            .iter()
            .any(|statement| !statement.allow && statement.matches(access))
        {
            return false;
        }
        matches!(access.caller, Caller::Account { account_id, .. } if account_id == owner)
            || self
                .statements
                .iter()
                .any(|statement| statement.allow && statement.matches(access))
    }

    /// Returns true if `caller` may call PutAuditEvents on a channel of `owner` with `external_id`:
    /// the owner may unless a Deny statement matches; another account needs a matching Allow
    /// statement (with its external ID, if the statement has the condition) and no matching Deny.
    pub fn permits_put_audit_events(&self, caller: &str, owner: &str, external_id: Option<&str>) -> bool {
        let access = Access {
            external_id,
            ..Access::by_account(PUT_AUDIT_EVENTS_ACTION, caller, None)
        };
        self.permits(owner, &access)
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
    let principals = parse_principals(index, required(statement, index, "Principal")?, target)?;
    let actions = strings(required(statement, index, "Action")?).ok_or_else(|| {
        not_valid(format!(
            "Statement[{index}].Action must be a string or a list of strings"
        ))
    })?;
    if actions.is_empty() {
        return Err(not_valid(format!("Statement[{index}].Action names no action")));
    }
    for action in &actions {
        let fits = match target {
            PolicyTarget::Channel => action == PUT_AUDIT_EVENTS_ACTION,
            PolicyTarget::EventDataStore | PolicyTarget::Dashboard => {
                action == "cloudtrail:*"
                    || action
                        .strip_prefix("cloudtrail:")
                        .is_some_and(|name| Operation::ALL.iter().any(|op| op.name().eq_ignore_ascii_case(name)))
            }
        };
        if !fits {
            let allowed = match target {
                PolicyTarget::Channel => PUT_AUDIT_EVENTS_ACTION,
                PolicyTarget::EventDataStore | PolicyTarget::Dashboard => {
                    "cloudtrail:* or a cloudtrail: action of the API (cloudtrail:StartQuery, ...)"
                }
            };
            return Err(not_valid(format!(
                "Statement[{index}].Action '{action}' is not allowed; this resource takes {allowed}"
            )));
        }
    }
    match (statement.get("Resource"), target) {
        (None, PolicyTarget::EventDataStore | PolicyTarget::Dashboard) => {}
        (resource, _) => {
            let resources = resource
                .ok_or_else(|| not_valid(format!("Statement[{index}] has no Resource")))
                .and_then(|value| {
                    strings(value).ok_or_else(|| {
                        not_valid(format!(
                            "Statement[{index}].Resource must be a string or a list of strings"
                        ))
                    })
                })?;
            if resources.is_empty() || resources.iter().any(|resource| resource != resource_arn) {
                return Err(not_valid(format!(
                    "Statement[{index}].Resource must be the resource's own ARN, {resource_arn}"
                )));
            }
        }
    }
    let conditions = match statement.get("Condition") {
        None => Vec::new(),
        Some(condition) => parse_conditions(index, condition, target)?,
    };
    Ok(Statement {
        allow,
        principals,
        actions,
        conditions,
    })
}

fn parse_principals(index: usize, value: &Value, target: PolicyTarget) -> Result<Vec<Principal>> {
    let Value::Object(principal) = value else {
        return Err(not_valid(format!(
            "Statement[{index}].Principal must be an object such as {{\"AWS\": [\"111122223333\"]}}"
        )));
    };
    let mut principals = Vec::new();
    for (kind, values) in principal {
        let values = strings(values).ok_or_else(|| {
            not_valid(format!(
                "Statement[{index}].Principal.{kind} must be a string or a list of strings"
            ))
        })?;
        for value in values {
            let read = match (kind.as_str(), target) {
                ("AWS", PolicyTarget::Channel) => principal_account(&value).map(Principal::Account).ok_or_else(|| {
                    not_valid(format!(
                        "Statement[{index}].Principal.AWS '{value}' is not an account: name it as 111122223333 or arn:aws:iam::111122223333:root"
                    ))
                }),
                ("AWS", _) => aws_principal(&value).ok_or_else(|| {
                    not_valid(format!(
                        "Statement[{index}].Principal.AWS '{value}' is not an account, role or user: name it as \
                         111122223333, arn:aws:iam::111122223333:root, arn:aws:iam::111122223333:role/NAME or \
                         arn:aws:iam::111122223333:user/NAME"
                    ))
                }),
                ("Service", PolicyTarget::EventDataStore | PolicyTarget::Dashboard) if value == CLOUDTRAIL_SERVICE => {
                    Ok(Principal::Service(value))
                }
                ("Service", PolicyTarget::EventDataStore | PolicyTarget::Dashboard) => Err(not_valid(format!(
                    "Statement[{index}].Principal.Service '{value}' is not a service this resource takes; use {CLOUDTRAIL_SERVICE}"
                ))),
                _ => Err(not_valid(format!(
                    "Statement[{index}].Principal.{kind} is not a principal this resource takes; use AWS"
                ))),
            };
            principals.push(read?);
        }
    }
    if principals.is_empty() || principals.len() > MAX_PRINCIPALS {
        return Err(not_valid(format!(
            "Statement[{index}] has {} principals; it needs 1 to {MAX_PRINCIPALS}",
            principals.len()
        )));
    }
    Ok(principals)
}

/// Reads a `Condition` block: `{"OPERATOR": {"KEY": "value" | ["value", ...]}, ...}`.
fn parse_conditions(index: usize, condition: &Value, target: PolicyTarget) -> Result<Vec<Condition>> {
    let supported = match target {
        PolicyTarget::Channel => format!("{{\"StringEquals\": {{\"{EXTERNAL_ID_KEY}\": \"ID\"}}}}"),
        PolicyTarget::EventDataStore | PolicyTarget::Dashboard => {
            "StringEquals, StringLike, ArnEquals or ArnLike on aws:SourceArn, aws:SourceAccount, \
             aws:PrincipalAccount or aws:PrincipalArn"
                .to_string()
        }
    };
    let unsupported = |what: &str| {
        not_valid(format!(
            "Statement[{index}].Condition {what} is not supported: the conditions are {supported}"
        ))
    };
    let Value::Object(operators) = condition else {
        return Err(unsupported("must be an object; it"));
    };
    let mut conditions = Vec::new();
    for (operator, keys) in operators {
        let like = match (operator.as_str(), target) {
            ("StringEquals", _) => false,
            ("StringLike" | "ArnLike", PolicyTarget::EventDataStore | PolicyTarget::Dashboard) => true,
            ("ArnEquals", PolicyTarget::EventDataStore | PolicyTarget::Dashboard) => false,
            _ => return Err(unsupported(&format!("operator {operator}"))),
        };
        let Value::Object(keys) = keys else {
            return Err(unsupported(&format!("{operator} (not an object of keys)")));
        };
        for (key, values) in keys {
            let lower = key.to_ascii_lowercase();
            let key = match (lower.as_str(), target) {
                ("cloudtrail:externalid", PolicyTarget::Channel) => Key::ExternalId,
                ("aws:sourcearn", PolicyTarget::EventDataStore | PolicyTarget::Dashboard) => Key::SourceArn,
                ("aws:sourceaccount", PolicyTarget::EventDataStore | PolicyTarget::Dashboard) => Key::SourceAccount,
                ("aws:principalaccount", PolicyTarget::EventDataStore | PolicyTarget::Dashboard) => {
                    Key::PrincipalAccount
                }
                ("aws:principalarn", PolicyTarget::EventDataStore | PolicyTarget::Dashboard) => Key::PrincipalArn,
                _ => return Err(unsupported(&format!("key {key}"))),
            };
            let values = match strings(values) {
                Some(values) if !values.is_empty() => values,
                _ => return Err(unsupported(&format!("{operator} {key:?} without a value"))),
            };
            conditions.push(Condition { like, key, values });
        }
    }
    if conditions.is_empty() {
        return Err(unsupported("without a key"));
    }
    Ok(conditions)
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

    const STORE: &str = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/ab4f0b6e-2f7c-4b4e-9a3a-2f1d9d0c7e11";
    const DASHBOARD: &str = "arn:aws:cloudtrail:us-east-1:123456789012:dashboard/ops";

    fn store_policy(statements: Value) -> Result<ResourcePolicy> {
        let text = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        ResourcePolicy::parse(&text, STORE, PolicyTarget::EventDataStore)
    }

    fn query(account: &'static str, arn: Option<&'static str>) -> Access<'static> {
        Access::by_account("cloudtrail:StartQuery", account, arn)
    }

    #[test]
    fn store_policies_grant_accounts_roles_and_users_their_actions() {
        let policy = store_policy(json!([
            {"Effect": "Allow", "Principal": {"AWS": ["111122223333", "arn:aws:iam::444455556666:role/Analysts",
                                                       "arn:aws:iam::777788889999:user/alice"]},
             "Action": ["cloudtrail:StartQuery", "cloudtrail:GetQueryResults"], "Resource": STORE},
            {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "cloudtrail:GetQueryResults"}
        ]))
        .unwrap();
        assert!(policy.permits(OWNER, &query("111122223333", None)));
        assert!(!policy.permits(
            OWNER,
            &Access::by_account("cloudtrail:GetQueryResults", "111122223333", None)
        ));
        assert!(!policy.permits(
            OWNER,
            &Access::by_account("cloudtrail:CancelQuery", "111122223333", None)
        ));
        assert!(policy.permits(
            OWNER,
            &query("444455556666", Some("arn:aws:iam::444455556666:role/Analysts"))
        ));
        assert!(policy.permits(
            OWNER,
            &query(
                "444455556666",
                Some("arn:aws:sts::444455556666:assumed-role/Analysts/s1")
            )
        ));
        assert!(!policy.permits(
            OWNER,
            &query("444455556666", Some("arn:aws:sts::444455556666:assumed-role/Other/s1"))
        ));
        assert!(
            !policy.permits(OWNER, &query("444455556666", None)),
            "a role names callers, not their account"
        );
        assert!(policy.permits(
            OWNER,
            &query("777788889999", Some("arn:aws:iam::777788889999:user/alice"))
        ));
        assert!(!policy.permits(
            OWNER,
            &query("777788889999", Some("arn:aws:iam::777788889999:user/bob"))
        ));
        assert!(!policy.permits(OWNER, &query("999999999999", None)));
        assert!(policy.permits(OWNER, &query(OWNER, None)), "the owner needs no grant");
    }

    #[test]
    fn documented_service_forms_are_taken_and_their_conditions_decide() {
        let statement = |operator: &str| {
            json!({"Sid": "EDSPolicy", "Effect": "Allow", "Principal": {"Service": CLOUDTRAIL_SERVICE},
                   "Action": "cloudtrail:StartQuery",
                   "Condition": {operator: {"AWS:SourceArn": "arn:aws:cloudtrail:us-east-1:123456789012:dashboard/*"},
                                 "StringEquals": {"AWS:SourceAccount": OWNER}}})
        };
        for operator in ["StringLike", "ArnLike"] {
            let policy = store_policy(json!([statement(operator)])).unwrap();
            let mut refresh = Access {
                source_arn: Some(DASHBOARD),
                source_account: Some(OWNER),
                ..Access::by_account("cloudtrail:StartQuery", OWNER, None)
            };
            refresh.caller = Caller::Service(CLOUDTRAIL_SERVICE);
            assert!(policy.permits(OWNER, &refresh));
            refresh.source_account = Some("111122223333");
            assert!(!policy.permits(OWNER, &refresh));
            refresh.source_account = Some(OWNER);
            refresh.source_arn = Some("arn:aws:cloudtrail:us-east-1:111122223333:dashboard/x");
            assert!(!policy.permits(OWNER, &refresh));
        }
        let text = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": CLOUDTRAIL_SERVICE}, "Action": "cloudtrail:StartDashboardRefresh",
            "Condition": {"StringEquals": {"AWS:SourceArn": DASHBOARD, "AWS:SourceAccount": OWNER}}}]})
        .to_string();
        assert!(ResourcePolicy::parse(&text, DASHBOARD, PolicyTarget::Dashboard).is_ok());
    }

    #[test]
    fn store_policies_refuse_what_they_cannot_decide() {
        let base = json!({"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "cloudtrail:StartQuery"});
        let with = |key: &str, value: Value| {
            let mut statement = base.clone();
            statement[key] = value;
            statement
        };
        for (statement, words) in [
            (with("Principal", json!({"AWS": "*"})), "Principal.AWS"),
            (
                with("Principal", json!({"AWS": "arn:aws:iam::111122223333:group/g"})),
                "Principal.AWS",
            ),
            (
                with("Principal", json!({"Service": "lambda.amazonaws.com"})),
                "Principal.Service",
            ),
            (
                with("Principal", json!({"Federated": "cognito-identity.amazonaws.com"})),
                "Principal.Federated",
            ),
            (with("Action", json!("s3:GetObject")), "Action"),
            (with("Action", json!("cloudtrail:NoSuchAction")), "Action"),
            (
                with(
                    "Resource",
                    json!("arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/other"),
                ),
                "Resource",
            ),
            (
                with("Condition", json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
                "IpAddress",
            ),
            (
                with("Condition", json!({"StringEquals": {"aws:SourceIp": "10.0.0.1"}})),
                "aws:SourceIp",
            ),
            (
                with("Condition", json!({"StringEquals": {"aws:SourceAccount": []}})),
                "without a value",
            ),
        ] {
            let error = store_policy(json!([statement])).unwrap_err();
            assert_eq!(error.code, ErrorCode::ResourcePolicyNotValidException);
            assert!(error.message.contains(words), "{words}: {}", error.message);
        }
        assert!(store_policy(json!([with("Action", json!("cloudtrail:*"))])).is_ok());
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(like("arn:*:dashboard/*", "arn:aws:cloudtrail:x:dashboard/ops"));
        assert!(like("a?c", "abc"));
        assert!(!like("a?c", "abbc"));
        assert!(like("*", ""));
        assert!(!like("abc", "abcd"));
        assert!(like("a*b*c", "a-b-b-c"));
    }
}
