//! Validation of the Dashboards operations (CreateDashboard, UpdateDashboard, GetDashboard,
//! ListDashboards, DeleteDashboard, StartDashboardRefresh) and of StartQuery's QueryAlias and
//! QueryParameters.
//!
//! Rules, from the botocore model and the CloudTrail Lake dashboard pages of the User Guide:
//! - a name is 3..128 letters, digits, `_` and `-`; a `DashboardId` is a name or a dashboard ARN
//!   of the caller's account and Region (else `ResourceNotFoundException`);
//! - at most 10 widgets; a widget's statement is 1..10000 characters whose `?` placeholders are
//!   as many as its 1..10 QueryParameters, each `$StartTime$`, `$EndTime$` or `$Period$`; its
//!   ViewProperties name a `View` (Table, LineChart, PieChart, BarChart), keys 3..128 of letters,
//!   digits, `.`, `_`, `-`, values 1..128 of those and spaces;
//! - a refresh schedule is every 1, 6, 12 or 24 hours, or every day, at a `TimeOfDay` "HH:MM" UTC
//!   (default "00:00");
//! - StartDashboardRefresh's QueryParameterValues are keyed by those names, values 1..128 of
//!   letters, digits, `.`, `_`, `/`, `-`, `:`.
//!
//! Every breach of a member's constraint the model states is `ValidationException` (the model
//! lists no InvalidParameterException for these operations), except a widget's statement and its
//! parameters, which are `InvalidQueryStatementException`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveTime, Utc};

use crate::Result;
use crate::arn::{self, CloudTrailArn, ResourceType};
use crate::context::RequestContext;
use crate::error::{ApiError, ErrorCode};
use crate::queries::MAX_STATEMENT_CHARS;
use crate::shapes::{RefreshSchedule, RefreshScheduleFrequencyUnit, RefreshScheduleStatus, RequestWidget, Widget};
use crate::validate::{self, Pattern, StringRule};

/// The most widgets a custom dashboard holds.
pub const MAX_WIDGETS: usize = 10;
/// The most dashboards an account may have, by default.
pub const MAX_DASHBOARDS: usize = 100;
/// The name that makes CreateDashboard create the managed Highlights dashboard.
pub const HIGHLIGHTS: &str = "AWSCloudTrail-Highlights";
/// The parameters a widget's placeholders take their values from.
pub const PARAMETERS: [&str; 3] = ["$StartTime$", "$EndTime$", "$Period$"];
/// The view types a widget may be drawn as.
pub const VIEWS: [&str; 4] = ["Table", "LineChart", "PieChart", "BarChart"];

static NAME_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9_\-]+$");
static NAME: StringRule = StringRule {
    min: 3,
    max: 128,
    pattern: Some(&NAME_PATTERN),
    code: ErrorCode::ValidationException,
};
static DASHBOARD_ID_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._/\-:]+$");
static DASHBOARD_ID: StringRule = StringRule {
    min: 1,
    max: 2048,
    pattern: Some(&DASHBOARD_ID_PATTERN),
    code: ErrorCode::ValidationException,
};
static VIEW_KEY_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._\-]+$");
static VIEW_KEY: StringRule = StringRule {
    min: 3,
    max: 128,
    pattern: Some(&VIEW_KEY_PATTERN),
    code: ErrorCode::ValidationException,
};
static VIEW_VALUE_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._\- ]+$");
static VIEW_VALUE: StringRule = StringRule {
    min: 1,
    max: 128,
    pattern: Some(&VIEW_VALUE_PATTERN),
    code: ErrorCode::ValidationException,
};
static PARAMETER_KEY_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._/\-:$]+$");
static PARAMETER_KEY: StringRule = StringRule {
    min: 3,
    max: 128,
    pattern: Some(&PARAMETER_KEY_PATTERN),
    code: ErrorCode::ValidationException,
};
static PARAMETER_VALUE_PATTERN: Pattern = Pattern::new(r"^[a-zA-Z0-9._/\-:]+$");
static PARAMETER_VALUE: StringRule = StringRule {
    min: 1,
    max: 128,
    pattern: Some(&PARAMETER_VALUE_PATTERN),
    code: ErrorCode::ValidationException,
};
static TIME_OF_DAY_PATTERN: Pattern = Pattern::new(r"^[0-9]{2}:[0-9]{2}$");

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::ValidationException, message)
}

fn invalid_statement(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidQueryStatementException, message)
}

/// Returns the ARN of a dashboard of the caller's account and Region.
pub fn dashboard_arn(ctx: &RequestContext, name: &str) -> String {
    arn::arn(ctx, ResourceType::Dashboard, name)
}

/// Checks a dashboard name.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    NAME.check(field, name)
}

/// Resolves a `DashboardId` (a name or a dashboard ARN) to the dashboard's name; an ARN of
/// another account or Region names no dashboard of the caller (`ResourceNotFoundException`).
pub fn dashboard_name(ctx: &RequestContext, value: Option<&str>) -> Result<String> {
    let value = DASHBOARD_ID.check_required("DashboardId", value)?;
    if !value.starts_with("arn:") {
        check_name("DashboardId", value)?;
        return Ok(value.to_string());
    }
    let arn = CloudTrailArn::parse(value)
        .filter(|arn| arn.kind() == Some(ResourceType::Dashboard))
        .ok_or_else(|| {
            invalid(format!(
                "DashboardId '{value}' is not a dashboard name or ARN (arn:aws:cloudtrail:REGION:ACCOUNT:dashboard/NAME)"
            ))
        })?;
    if arn.account_id != ctx.account_id || arn.region != ctx.region {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFoundException,
            format!(
                "dashboard {value} is not a dashboard of account {} in {}",
                ctx.account_id, ctx.region
            ),
        ));
    }
    check_name("DashboardId", &arn.resource_id)?;
    Ok(arn.resource_id)
}

/// Checks a statement's length, for a widget or StartQuery.
pub fn check_statement_length(field: &str, statement: &str) -> Result<()> {
    let length = statement.chars().count();
    if length == 0 || length > MAX_STATEMENT_CHARS {
        return Err(ApiError::validation(
            ErrorCode::InvalidQueryStatementException,
            field,
            "",
            &format!("Member must have length between 1 and {MAX_STATEMENT_CHARS}, not {length}"),
        ));
    }
    Ok(())
}

/// Checks the widgets of CreateDashboard or UpdateDashboard and returns them with the aliases
/// their queries run under (`<dashboard>.widget<N>`, or `d-<dashboard>...` when the name does not
/// start with a letter, as an alias must). `placeholders` counts a statement's `?` (the SQL front
/// end's); the statement itself is checked against the stores by the caller.
pub fn check_widgets(
    dashboard: &str,
    widgets: &[RequestWidget],
    placeholders: impl Fn(&str) -> std::result::Result<usize, String>,
) -> Result<Vec<Widget>> {
    if widgets.len() > MAX_WIDGETS {
        return Err(invalid(format!(
            "Widgets holds {} widgets; a dashboard takes at most {MAX_WIDGETS}",
            widgets.len()
        )));
    }
    let prefix = if dashboard.starts_with(|c: char| c.is_ascii_alphabetic()) {
        dashboard.to_string()
    } else {
        format!("d-{dashboard}")
    };
    let mut checked = Vec::with_capacity(widgets.len());
    for (i, widget) in widgets.iter().enumerate() {
        let field = format!("Widgets[{i}]");
        let statement = widget.query_statement.as_deref().ok_or_else(|| {
            ApiError::missing(
                ErrorCode::InvalidQueryStatementException,
                &format!("{field}.QueryStatement"),
            )
        })?;
        check_statement_length(&format!("{field}.QueryStatement"), statement)?;
        if widget.query_parameters.len() > 10 {
            return Err(invalid_statement(format!(
                "{field}.QueryParameters holds {} values; a widget takes at most 10",
                widget.query_parameters.len()
            )));
        }
        for (j, parameter) in widget.query_parameters.iter().enumerate() {
            if !PARAMETERS.contains(&parameter.as_str()) {
                return Err(invalid_statement(format!(
                    "{field}.QueryParameters[{j}] '{parameter}' is not one of {}",
                    PARAMETERS.join(", ")
                )));
            }
        }
        let count =
            placeholders(statement).map_err(|error| invalid_statement(format!("{field}.QueryStatement: {error}")))?;
        if count != widget.query_parameters.len() {
            return Err(invalid_statement(format!(
                "{field}.QueryStatement has {count} placeholders (?) and {field}.QueryParameters {} values; give one \
                 parameter per placeholder, in order",
                widget.query_parameters.len()
            )));
        }
        check_view_properties(&field, &widget.view_properties)?;
        checked.push(Widget {
            query_alias: Some(format!("{prefix}.widget{}", i + 1)),
            query_statement: Some(statement.to_string()),
            query_parameters: widget.query_parameters.clone(),
            view_properties: widget.view_properties.clone(),
        });
    }
    Ok(checked)
}

fn check_view_properties(field: &str, properties: &HashMap<String, String>) -> Result<()> {
    for (key, value) in properties {
        VIEW_KEY.check(&format!("{field}.ViewProperties key"), key)?;
        VIEW_VALUE.check(&format!("{field}.ViewProperties[{key}]"), value)?;
    }
    match properties.get("View").map(String::as_str) {
        Some(view) if VIEWS.contains(&view) => Ok(()),
        Some(view) => Err(invalid(format!(
            "{field}.ViewProperties[View] '{view}' is not one of {}",
            VIEWS.join(", ")
        ))),
        None => Err(invalid(format!(
            "{field}.ViewProperties must name a View: one of {}",
            VIEWS.join(", ")
        ))),
    }
}

/// Checks a refresh schedule; returns it with its defaults (`TimeOfDay` "00:00").
pub fn check_refresh_schedule(schedule: &RefreshSchedule) -> Result<RefreshSchedule> {
    let frequency = schedule
        .frequency
        .as_ref()
        .ok_or_else(|| invalid("RefreshSchedule.Frequency is required".to_string()))?;
    let unit = validate::enum_value::<RefreshScheduleFrequencyUnit>("RefreshSchedule.Frequency.Unit", frequency.unit)?
        .ok_or_else(|| invalid("RefreshSchedule.Frequency.Unit is required: HOURS or DAYS".to_string()))?;
    let value = frequency
        .value
        .ok_or_else(|| invalid("RefreshSchedule.Frequency.Value is required".to_string()))?;
    let allowed: &[i32] = match unit {
        RefreshScheduleFrequencyUnit::Days => &[1],
        _ => &[1, 6, 12, 24],
    };
    if !allowed.contains(&value) {
        return Err(invalid(format!(
            "RefreshSchedule.Frequency.Value {value} is not valid for {}: give {allowed:?}",
            unit.as_str_name()
        )));
    }
    validate::enum_value::<RefreshScheduleStatus>("RefreshSchedule.Status", schedule.status)?;
    let time_of_day = schedule.time_of_day.clone().unwrap_or_else(|| "00:00".to_string());
    if !TIME_OF_DAY_PATTERN.is_full_match(&time_of_day) || NaiveTime::parse_from_str(&time_of_day, "%H:%M").is_err() {
        return Err(invalid(format!(
            "RefreshSchedule.TimeOfDay '{time_of_day}' is not a time of day HH:MM (UTC)"
        )));
    }
    Ok(RefreshSchedule {
        frequency: Some(*frequency),
        status: schedule.status.or(Some(RefreshScheduleStatus::Enabled as i32)),
        time_of_day: Some(time_of_day),
    })
}

/// Returns the latest time at or before `now` that a schedule is due, if it is enabled: its
/// `TimeOfDay` each day, then every `Value` hours from it.
pub fn latest_due(schedule: &RefreshSchedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if schedule.status != Some(RefreshScheduleStatus::Enabled as i32) {
        return None;
    }
    let frequency = schedule.frequency.as_ref()?;
    let hours = match RefreshScheduleFrequencyUnit::try_from(frequency.unit?).ok()? {
        RefreshScheduleFrequencyUnit::Days => 24,
        _ => i64::from(frequency.value?),
    };
    let time = NaiveTime::parse_from_str(schedule.time_of_day.as_deref().unwrap_or("00:00"), "%H:%M").ok()?;
    let base = now.date_naive().and_time(time).and_utc();
    let period = Duration::hours(hours.max(1));
    let steps = (now - base).num_seconds().div_euclid(period.num_seconds());
    Some(base + period * i32::try_from(steps).ok()?)
}

/// The parameter that names the store a managed dashboard's widgets read.
pub const EVENT_DATA_STORE_ID: &str = "$EventDataStoreId$";

/// Checks StartDashboardRefresh's parameter values (`$EventDataStoreId$` too for a managed
/// dashboard); returns them with the defaults of those not given: the last 24 hours before `now`
/// and a `$Period$` of an hour.
pub fn check_refresh_values(
    values: &HashMap<String, String>,
    managed: bool,
    now: DateTime<Utc>,
) -> Result<HashMap<String, String>> {
    for (key, value) in values {
        PARAMETER_KEY.check("QueryParameterValues key", key)?;
        PARAMETER_VALUE.check(&format!("QueryParameterValues[{key}]"), value)?;
        let known = PARAMETERS.contains(&key.as_str()) || (managed && key == EVENT_DATA_STORE_ID);
        if !known {
            let valid = if managed {
                format!("{}, {EVENT_DATA_STORE_ID}", PARAMETERS.join(", "))
            } else {
                PARAMETERS.join(", ")
            };
            return Err(invalid(format!(
                "QueryParameterValues key '{key}' is not one of {valid}"
            )));
        }
    }
    let time = |time: DateTime<Utc>| time.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut filled = values.clone();
    filled.entry("$EndTime$".to_string()).or_insert_with(|| time(now));
    filled
        .entry("$StartTime$".to_string())
        .or_insert_with(|| time(now - Duration::hours(24)));
    filled
        .entry("$Period$".to_string())
        .or_insert_with(|| "hour".to_string());
    Ok(filled)
}

/// The widgets of the managed Highlights dashboard: the last 24 hours (by default) of one store's
/// events, `$EventDataStoreId$` standing for the store in each statement.
pub fn highlights_widgets() -> Vec<Widget> {
    let window = "eventTime >= '?' AND eventTime <= '?'";
    // Title, statement, view and axis columns of each widget.
    type HighlightsWidget = (
        &'static str,
        String,
        &'static str,
        &'static [(&'static str, &'static str)],
    );
    let widgets: [HighlightsWidget; 8] = [
        (
            "Top API calls",
            format!(
                "SELECT eventName, count(*) AS calls FROM $EventDataStoreId$ WHERE {window} GROUP BY eventName ORDER BY calls DESC LIMIT 10"
            ),
            "BarChart",
            &[("XAxisColumn", "eventName"), ("YAxisColumn", "calls")],
        ),
        (
            "API calls over time",
            format!(
                "SELECT date_trunc('hour', eventTime) AS hour, count(*) AS calls FROM $EventDataStoreId$ WHERE {window} GROUP BY date_trunc('hour', eventTime) ORDER BY hour"
            ),
            "LineChart",
            &[("XAxisColumn", "hour"), ("YAxisColumn", "calls")],
        ),
        (
            "Top users",
            format!(
                "SELECT userIdentity.arn AS user_arn, count(*) AS calls FROM $EventDataStoreId$ WHERE {window} GROUP BY userIdentity.arn ORDER BY calls DESC LIMIT 10"
            ),
            "BarChart",
            &[("XAxisColumn", "user_arn"), ("YAxisColumn", "calls")],
        ),
        (
            "Failed API calls",
            format!(
                "SELECT eventName, errorCode, count(*) AS failures FROM $EventDataStoreId$ WHERE {window} AND errorCode IS NOT NULL GROUP BY eventName, errorCode ORDER BY failures DESC LIMIT 10"
            ),
            "Table",
            &[],
        ),
        (
            "Access denied by user",
            format!(
                "SELECT userIdentity.arn AS user_arn, count(*) AS denied FROM $EventDataStoreId$ WHERE {window} AND errorCode IN ('AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation') GROUP BY userIdentity.arn ORDER BY denied DESC LIMIT 10"
            ),
            "Table",
            &[],
        ),
        (
            "Console sign-ins",
            format!(
                "SELECT coalesce(element_at(responseElements, 'ConsoleLogin'), 'Unknown') AS outcome, count(*) AS sign_ins FROM $EventDataStoreId$ WHERE {window} AND eventName = 'ConsoleLogin' GROUP BY coalesce(element_at(responseElements, 'ConsoleLogin'), 'Unknown')"
            ),
            "PieChart",
            &[],
        ),
        (
            "Top source IP addresses",
            format!(
                "SELECT sourceIPAddress, count(*) AS calls FROM $EventDataStoreId$ WHERE {window} GROUP BY sourceIPAddress ORDER BY calls DESC LIMIT 10"
            ),
            "Table",
            &[],
        ),
        (
            "Calls by Region",
            format!(
                "SELECT awsRegion, count(*) AS calls FROM $EventDataStoreId$ WHERE {window} GROUP BY awsRegion ORDER BY calls DESC"
            ),
            "PieChart",
            &[],
        ),
    ];
    widgets
        .into_iter()
        .enumerate()
        .map(|(i, (title, statement, view, axes))| {
            let mut view_properties: HashMap<String, String> = [
                ("View".to_string(), view.to_string()),
                ("Title".to_string(), title.to_string()),
            ]
            .into_iter()
            .collect();
            view_properties.extend(axes.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            Widget {
                query_alias: Some(format!("{HIGHLIGHTS}.widget{}", i + 1)),
                query_statement: Some(statement),
                query_parameters: vec!["$StartTime$".to_string(), "$EndTime$".to_string()],
                view_properties,
            }
        })
        .collect()
}

/// Checks what CreateDashboard gives the Highlights dashboard: no widgets (traillake keeps
/// them) and a refresh schedule every 6 hours, enabled, as AWS requires.
pub fn check_highlights(widgets: &[RequestWidget], schedule: Option<&RefreshSchedule>) -> Result<()> {
    if !widgets.is_empty() {
        return Err(invalid(format!(
            "{HIGHLIGHTS} is a managed dashboard: its widgets are traillake's; give no Widgets"
        )));
    }
    let every_six_hours = schedule.is_some_and(|schedule| {
        schedule.status == Some(RefreshScheduleStatus::Enabled as i32)
            && schedule.frequency.is_some_and(|frequency| {
                frequency.unit == Some(RefreshScheduleFrequencyUnit::Hours as i32) && frequency.value == Some(6)
            })
    });
    if !every_six_hours {
        return Err(invalid(format!(
            "{HIGHLIGHTS} needs a RefreshSchedule every 6 HOURS, ENABLED"
        )));
    }
    Ok(())
}

/// Checks StartQuery's QueryAlias and QueryParameters: an alias and up to 10 values, each 1..1024
/// characters.
pub fn check_query_parameters(parameters: &[String]) -> Result<()> {
    validate::list_length(
        ErrorCode::InvalidParameterException,
        "QueryParameters",
        parameters.len(),
        1,
        10,
    )?;
    for (i, value) in parameters.iter().enumerate() {
        let length = value.chars().count();
        if length == 0 || length > 1024 {
            return Err(ApiError::validation(
                ErrorCode::InvalidParameterException,
                &format!("QueryParameters[{i}]"),
                value,
                "Member must have length between 1 and 1024",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shapes::RefreshScheduleFrequency;

    fn ctx() -> RequestContext {
        RequestContext::for_tests()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn widget(statement: &str, parameters: &[&str], view: &str) -> RequestWidget {
        RequestWidget {
            query_statement: Some(statement.into()),
            query_parameters: parameters.iter().map(|p| p.to_string()).collect(),
            view_properties: [("View".to_string(), view.to_string())].into_iter().collect(),
        }
    }

    fn count(statement: &str) -> std::result::Result<usize, String> {
        Ok(statement.matches('?').count())
    }

    #[test]
    fn names_and_arns_resolve_to_names() {
        assert_eq!(dashboard_name(&ctx(), Some("ops-1")).unwrap(), "ops-1");
        let arn = dashboard_arn(&ctx(), "ops-1");
        assert_eq!(arn, "arn:aws:cloudtrail:us-east-1:123456789012:dashboard/ops-1");
        assert_eq!(dashboard_name(&ctx(), Some(&arn)).unwrap(), "ops-1");
        let foreign = arn.replace("123456789012", "210987654321");
        assert_eq!(
            dashboard_name(&ctx(), Some(&foreign)).unwrap_err().code,
            ErrorCode::ResourceNotFoundException
        );
        for bad in ["ab", "bad name", "arn:aws:cloudtrail:us-east-1:123456789012:trail/x"] {
            assert_eq!(
                dashboard_name(&ctx(), Some(bad)).unwrap_err().code,
                ErrorCode::ValidationException,
                "{bad}"
            );
        }
    }

    #[test]
    fn widgets_get_aliases_and_their_placeholders_must_match_their_parameters() {
        let widgets = check_widgets(
            "1ops",
            &[
                widget("SELECT 1 FROM eds WHERE eventTime > '?'", &["$StartTime$"], "Table"),
                widget("SELECT 2 FROM eds", &[], "PieChart"),
            ],
            count,
        )
        .unwrap();
        assert_eq!(widgets[0].query_alias.as_deref(), Some("d-1ops.widget1"));
        assert_eq!(widgets[1].query_alias.as_deref(), Some("d-1ops.widget2"));
        let refused = |widgets: &[RequestWidget]| check_widgets("ops", widgets, count).unwrap_err();
        assert_eq!(
            refused(&[widget("SELECT ? FROM eds", &[], "Table")]).code,
            ErrorCode::InvalidQueryStatementException
        );
        assert_eq!(
            refused(&[widget("SELECT ? FROM eds", &["$Other$"], "Table")]).code,
            ErrorCode::InvalidQueryStatementException
        );
        assert_eq!(
            refused(&[widget("SELECT 1 FROM eds", &[], "Radar")]).code,
            ErrorCode::ValidationException
        );
        assert_eq!(
            refused(&vec![widget("SELECT 1 FROM eds", &[], "Table"); 11]).code,
            ErrorCode::ValidationException
        );
    }

    #[test]
    fn schedules_are_due_at_their_time_of_day_and_every_period_after() {
        let schedule = |unit: RefreshScheduleFrequencyUnit, value: i32, time: &str| RefreshSchedule {
            frequency: Some(RefreshScheduleFrequency {
                unit: Some(unit as i32),
                value: Some(value),
            }),
            status: Some(RefreshScheduleStatus::Enabled as i32),
            time_of_day: Some(time.into()),
        };
        let six = schedule(RefreshScheduleFrequencyUnit::Hours, 6, "01:30");
        assert_eq!(check_refresh_schedule(&six).unwrap(), six);
        let now = at("2026-12-07T14:00:00Z");
        assert_eq!(latest_due(&six, now), Some(at("2026-12-07T13:30:00Z")));
        assert_eq!(
            latest_due(&six, at("2026-12-07T01:00:00Z")),
            Some(at("2026-12-06T19:30:00Z"))
        );
        let daily = schedule(RefreshScheduleFrequencyUnit::Days, 1, "23:00");
        assert_eq!(latest_due(&daily, now), Some(at("2026-12-06T23:00:00Z")));
        let off = RefreshSchedule {
            status: Some(RefreshScheduleStatus::Disabled as i32),
            ..six
        };
        assert_eq!(latest_due(&off, now), None);
        for bad in [
            schedule(RefreshScheduleFrequencyUnit::Hours, 5, "00:00"),
            schedule(RefreshScheduleFrequencyUnit::Days, 2, "00:00"),
            schedule(RefreshScheduleFrequencyUnit::Hours, 6, "24:00"),
            schedule(RefreshScheduleFrequencyUnit::Hours, 6, "1:00"),
        ] {
            assert_eq!(
                check_refresh_schedule(&bad).unwrap_err().code,
                ErrorCode::ValidationException
            );
        }
    }

    #[test]
    fn refresh_values_are_checked_and_defaulted() {
        let now = at("2026-12-07T14:00:00Z");
        let given: HashMap<String, String> = [("$Period$".to_string(), "day".to_string())].into_iter().collect();
        let filled = check_refresh_values(&given, false, now).unwrap();
        assert_eq!(filled["$Period$"], "day");
        assert_eq!(filled["$StartTime$"], "2026-12-06T14:00:00Z");
        assert_eq!(filled["$EndTime$"], "2026-12-07T14:00:00Z");
        let bad: HashMap<String, String> = [("$Other$".to_string(), "x".to_string())].into_iter().collect();
        assert!(check_refresh_values(&bad, false, now).is_err());
        let store: HashMap<String, String> = [(EVENT_DATA_STORE_ID.to_string(), "x".to_string())]
            .into_iter()
            .collect();
        assert!(check_refresh_values(&store, false, now).is_err());
        assert!(check_refresh_values(&store, true, now).is_ok());
        let spaced: HashMap<String, String> = [("$Period$".to_string(), "a b".to_string())].into_iter().collect();
        assert!(check_refresh_values(&spaced, false, now).is_err());
    }
}
