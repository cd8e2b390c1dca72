//! The checks of the botocore model's constraints (length, pattern, range, list size, enum),
//! each answering with the modelled error code and a message naming the member and the rule.

use std::sync::OnceLock;

use regex::Regex;

use crate::Result;
use crate::error::{ApiError, ErrorCode};
use crate::wire::WireEnum;

/// A model pattern, compiled on first use and matched against the whole value.
pub struct Pattern {
    text: &'static str,
    compiled: OnceLock<Regex>,
}

impl Pattern {
    /// Returns the pattern of the model's text (an ECMA-262 expression).
    pub const fn new(text: &'static str) -> Self {
        Self {
            text,
            compiled: OnceLock::new(),
        }
    }

    /// Returns true if the whole of `value` matches.
    pub fn is_full_match(&self, value: &str) -> bool {
        let regex = self.compiled.get_or_init(|| {
            let inner = self.text.trim_start_matches('^').trim_end_matches('$');
            Regex::new(&format!("^(?:{inner})$")).expect("model patterns compile")
        });
        regex.is_match(value)
    }
}

/// The constraints of a string shape of the model.
pub struct StringRule {
    /// The least number of characters.
    pub min: usize,
    /// The most number of characters.
    pub max: usize,
    /// The pattern the whole value must match.
    pub pattern: Option<&'static Pattern>,
    /// The error code of a violation.
    pub code: ErrorCode,
}

impl StringRule {
    /// Checks `value` of the member `field`.
    pub fn check(&self, field: &str, value: &str) -> Result<()> {
        let length = value.chars().count();
        if length < self.min {
            return Err(ApiError::validation(
                self.code,
                field,
                value,
                &format!("Member must have length greater than or equal to {}", self.min),
            ));
        }
        if length > self.max {
            return Err(ApiError::validation(
                self.code,
                field,
                value,
                &format!("Member must have length less than or equal to {}", self.max),
            ));
        }
        if let Some(pattern) = self.pattern
            && !pattern.is_full_match(value)
        {
            return Err(ApiError::validation(
                self.code,
                field,
                value,
                &format!("Member must satisfy regular expression pattern: {}", pattern.text),
            ));
        }
        Ok(())
    }

    /// Checks an optional member, if present.
    pub fn check_optional(&self, field: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(value) => self.check(field, value),
            None => Ok(()),
        }
    }

    /// Checks a required member and returns it.
    pub fn check_required<'a>(&self, field: &str, value: Option<&'a str>) -> Result<&'a str> {
        let value = value.ok_or_else(|| ApiError::missing(self.code, field))?;
        self.check(field, value)?;
        Ok(value)
    }
}

/// Checks that an integer member lies in `min..=max`.
pub fn range(code: ErrorCode, field: &str, value: i64, min: i64, max: i64) -> Result<()> {
    bounds(code, field, &value.to_string(), value, min, max, "value")
}

/// Checks that a list member has `min..=max` items.
pub fn list_length(code: ErrorCode, field: &str, length: usize, min: usize, max: usize) -> Result<()> {
    let clamp = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let text = format!("list of {length} items");
    bounds(code, field, &text, clamp(length), clamp(min), clamp(max), "length")
}

/// Checks that `measure` (a value or a length, as `what` says) lies in `min..=max`.
fn bounds(code: ErrorCode, field: &str, text: &str, measure: i64, min: i64, max: i64, what: &str) -> Result<()> {
    let constraint = if measure < min {
        format!("Member must have {what} greater than or equal to {min}")
    } else if measure > max {
        format!("Member must have {what} less than or equal to {max}")
    } else {
        return Ok(());
    };
    Err(ApiError::validation(code, field, text, &constraint))
}

/// Returns the enum value of an optional member, checking that a raw number names a value; the
/// JSON wire has already checked names, gRPC sends numbers.
pub fn enum_value<E: WireEnum>(field: &str, value: Option<i32>) -> Result<Option<E>> {
    let Some(raw) = value else { return Ok(None) };
    if raw == 0 {
        return Ok(None);
    }
    match E::try_from(raw) {
        Ok(value) => Ok(Some(value)),
        Err(_) => Err(ApiError::validation(
            ErrorCode::InvalidParameterException,
            field,
            &raw.to_string(),
            &format!("Member must satisfy enum value set: [{}]", E::WIRE_NAMES.join(", ")),
        )),
    }
}

/// `PaginationToken`: 4..1000 characters.
pub static PAGINATION_TOKEN: StringRule = StringRule {
    min: 4,
    max: 1000,
    pattern: None,
    code: ErrorCode::InvalidNextTokenException,
};

#[cfg(test)]
mod tests {
    use super::*;

    static NAME: Pattern = Pattern::new(r"^[a-zA-Z0-9._\-]+$");
    static RULE: StringRule = StringRule {
        min: 3,
        max: 5,
        pattern: Some(&NAME),
        code: ErrorCode::InvalidParameterException,
    };

    #[test]
    fn checks_length_and_pattern_with_the_field_named() {
        assert!(RULE.check("Name", "abc").is_ok());
        let short = RULE.check("Name", "ab").unwrap_err();
        assert_eq!(short.code, ErrorCode::InvalidParameterException);
        assert!(short.message.contains("at 'Name'"), "{}", short.message);
        assert!(short.message.contains("greater than or equal to 3"));
        assert!(
            RULE.check("Name", "abcdef")
                .unwrap_err()
                .message
                .contains("less than or equal to 5")
        );
        assert!(
            RULE.check("Name", "a b")
                .unwrap_err()
                .message
                .contains("regular expression")
        );
    }

    #[test]
    fn patterns_match_the_whole_value() {
        static FIELD: Pattern = Pattern::new(r"[\w|\d|\.|_]+");
        assert!(FIELD.is_full_match("resources.ARN"));
        assert!(!FIELD.is_full_match("bad field"));
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert!(RULE.check("Name", "ééé").is_err(), "pattern rejects é");
        static ANY: StringRule = StringRule {
            min: 1,
            max: 3,
            pattern: None,
            code: ErrorCode::InvalidParameterException,
        };
        assert!(ANY.check("Value", "ééé").is_ok());
    }

    #[test]
    fn ranges_name_the_bound() {
        let err = range(ErrorCode::InvalidParameterException, "RetentionPeriod", 6, 7, 3653).unwrap_err();
        assert!(
            err.message.contains("Value '6' at 'RetentionPeriod'"),
            "{}",
            err.message
        );
        assert!(range(ErrorCode::InvalidParameterException, "RetentionPeriod", 3653, 7, 3653).is_ok());
    }
}
