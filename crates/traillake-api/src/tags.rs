//! Validation of tags and of the tag operations' requests.

use std::collections::HashSet;

use crate::Result;
use crate::error::{ApiError, ErrorCode};
use crate::shapes::{ListTagsRequest, Tag};
use crate::validate::{self, Pattern, StringRule};

static TAG_PATTERN: Pattern = Pattern::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$");
static KEY: StringRule = StringRule {
    min: 1,
    max: 128,
    pattern: Some(&TAG_PATTERN),
    code: ErrorCode::InvalidTagParameterException,
};
static VALUE: StringRule = StringRule {
    min: 1,
    max: 256,
    pattern: Some(&TAG_PATTERN),
    code: ErrorCode::InvalidTagParameterException,
};

/// The most resources one ListTags request names.
pub const MAX_LIST_TAGS_RESOURCES: usize = 20;

/// Checks a list of tags: at most 200 in a request, keys and values within their bounds, no key
/// starting with `aws:`, no key twice.
pub fn check_tags(field: &str, tags: &[Tag], code: ErrorCode) -> Result<()> {
    validate::list_length(code, field, tags.len(), 0, 200)?;
    let mut keys = HashSet::new();
    for (i, tag) in tags.iter().enumerate() {
        let key = KEY.check_required(&format!("{field}[{i}].Key"), tag.key.as_deref())?;
        VALUE.check_optional(&format!("{field}[{i}].Value"), tag.value.as_deref())?;
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::new(
                ErrorCode::InvalidTagParameterException,
                format!("{field}[{i}].Key '{key}' starts with the reserved prefix aws:"),
            ));
        }
        if !keys.insert(key) {
            return Err(ApiError::new(
                ErrorCode::InvalidTagParameterException,
                format!("{field} has the key '{key}' more than once"),
            ));
        }
    }
    Ok(())
}

/// Checks a ListTags request: 1..20 resources.
pub fn check_list_tags(request: &ListTagsRequest) -> Result<()> {
    if request.resource_id_list.is_empty() {
        return Err(ApiError::new(
            ErrorCode::CloudTrailARNInvalidException,
            "ResourceIdList must name at least one resource ARN",
        ));
    }
    // ListTags models no error for too many resources: the AWS JSON services' common
    // ValidationException ("the input fails to satisfy the constraints") it is.
    validate::list_length(
        ErrorCode::ValidationException,
        "ResourceIdList",
        request.resource_id_list.len(),
        1,
        MAX_LIST_TAGS_RESOURCES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str, value: Option<&str>) -> Tag {
        Tag {
            key: Some(key.into()),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn checks_keys_and_values() {
        let code = ErrorCode::InvalidTagParameterException;
        assert!(check_tags("TagsList", &[tag("team", Some("sec")), tag("empty", None)], code).is_ok());
        for bad in [
            vec![tag("aws:owner", Some("x"))],
            vec![tag("k", Some("x")), tag("k", Some("y"))],
            vec![tag(&"k".repeat(129), None)],
            vec![tag("k", Some(&"v".repeat(257)))],
            vec![tag("bad#key", None)],
            vec![Tag {
                key: None,
                value: Some("v".into()),
            }],
        ] {
            assert!(check_tags("TagsList", &bad, code).is_err(), "{bad:?}");
        }
    }
}
