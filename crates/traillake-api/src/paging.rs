//! Opaque page tokens: each names the operation it belongs to, the request parameters it was
//! returned for (the filters of a list) and the key after which the next page starts, so that a
//! token of another operation, one used with other parameters, or garbage, is refused with
//! `InvalidNextTokenException` ("a token that was previously used in a request with different
//! parameters").

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::Result;
use crate::error::{ApiError, ErrorCode};
use crate::validate::PAGINATION_TOKEN;

const VERSION: &str = "v2";

/// A page of a list: where it starts and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The key after which the page starts, from the NextToken.
    pub after: Option<String>,
    /// The most items on the page.
    pub max_results: usize,
}

/// Checks the `MaxResults` (1..1000, default 1000; `max_results_code` when out of range) and
/// `NextToken` of a list request of `operation`, and returns the page they ask for.
pub fn check_page(
    operation: &str,
    max_results: Option<i32>,
    next_token: Option<&str>,
    max_results_code: ErrorCode,
) -> Result<PageRequest> {
    let max_results = max_results.unwrap_or(1000);
    crate::validate::range(max_results_code, "MaxResults", max_results.into(), 1, 1000)?;
    let after = match next_token {
        Some(token) => Some(decode_token(operation, token)?),
        None => None,
    };
    Ok(PageRequest {
        after,
        max_results: max_results as usize,
    })
}

/// Returns the token of the page of `operation` that starts after `after`.
pub fn encode_token(operation: &str, after: &str) -> String {
    encode_bound_token(operation, "", after)
}

/// Returns the key a token of `operation` starts after, or `InvalidNextTokenException`.
pub fn decode_token(operation: &str, token: &str) -> Result<String> {
    decode_bound_token(operation, "", token)
}

/// Returns the token of the page of `operation` with the request `parameters` (a canonical text
/// of the list's filters) that starts after `after`.
pub fn encode_bound_token(operation: &str, parameters: &str, after: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{VERSION}\n{operation}\n{}\n{after}",
        parameters.replace('\n', " ")
    ))
}

/// Returns the key a token of `operation` starts after, or `InvalidNextTokenException` when it
/// is not such a token or was returned for other `parameters`.
pub fn decode_bound_token(operation: &str, parameters: &str, token: &str) -> Result<String> {
    PAGINATION_TOKEN.check("NextToken", token)?;
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidNextTokenException,
            format!("the NextToken is not a token of {operation}"),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(4, '\n');
    let (version, op, bound, after) = (parts.next(), parts.next(), parts.next(), parts.next());
    let (Some(VERSION), Some(op), Some(bound), Some(after)) = (version, op, bound, after) else {
        return Err(invalid());
    };
    if op != operation {
        return Err(invalid());
    }
    if bound != parameters.replace('\n', " ") {
        return Err(ApiError::new(
            ErrorCode::InvalidNextTokenException,
            format!(
                "the NextToken was returned by {operation} with other parameters; pass it with the same parameters \
                 as the call that returned it"
            ),
        ));
    }
    Ok(after.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_foreign_tokens() {
        let token = encode_token("ListEventDataStores", "abc");
        assert_eq!(decode_token("ListEventDataStores", &token).unwrap(), "abc");
        assert_eq!(
            decode_token("ListChannels", &token).unwrap_err().code,
            ErrorCode::InvalidNextTokenException
        );
        assert_eq!(
            decode_token("ListChannels", "garbage!").unwrap_err().code,
            ErrorCode::InvalidNextTokenException
        );
        assert_eq!(
            decode_token("ListChannels", "abc").unwrap_err().code,
            ErrorCode::InvalidNextTokenException
        );
        let bound = encode_bound_token("ListQueries", "store=a status=FINISHED", "k");
        assert_eq!(
            decode_bound_token("ListQueries", "store=a status=FINISHED", &bound).unwrap(),
            "k"
        );
        let other = decode_bound_token("ListQueries", "store=b status=FINISHED", &bound).unwrap_err();
        assert_eq!(other.code, ErrorCode::InvalidNextTokenException);
        assert!(other.message.contains("other parameters"), "{}", other.message);
    }
}
