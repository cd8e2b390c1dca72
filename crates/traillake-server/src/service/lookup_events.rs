//! LookupEvents: the account's Event history, newest first, at most 2 calls per second per account
//! (`ThrottlingException` beyond, as AWS answers).
//!
//! The limit is a token bucket per account (2 tokens, refilled at 2 per second): twenty lines, so
//! no rate-limiting crate is taken on for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chrono::Utc;
use traillake_api::lookup_events::{Lookup, check_lookup, event_of};
use traillake_api::shapes::{LookupEventsRequest, LookupEventsResponse};
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_query::history::FoundEvent;

use super::Service;
use super::errors::IntoApi as _;

/// LookupEvents calls per second per account, and the burst allowed.
pub const LOOKUPS_PER_SECOND: f64 = 2.0;

/// The tokens left in each account's bucket, and when they were counted.
#[derive(Debug, Default)]
pub(crate) struct LookupThrottle {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl LookupThrottle {
    /// Takes a token of the account's bucket, or says the call is throttled.
    fn take(&self, account_id: &str, now: Instant) -> Result<(), ApiError> {
        let mut buckets = self.buckets.lock().expect("the throttle's lock is never poisoned");
        let (tokens, counted) = buckets
            .entry(account_id.to_string())
            .or_insert((LOOKUPS_PER_SECOND, now));
        *tokens = (*tokens + now.duration_since(*counted).as_secs_f64() * LOOKUPS_PER_SECOND).min(LOOKUPS_PER_SECOND);
        *counted = now;
        if *tokens < 1.0 {
            return Err(ApiError::new(
                ErrorCode::ThrottlingException,
                "Rate exceeded: LookupEvents takes 2 calls per second per account",
            ));
        }
        *tokens -= 1.0;
        Ok(())
    }
}

impl Service {
    /// LookupEvents: the management events (or, with EventCategory `insight`, the Insights events)
    /// of the caller's Event history in the time range that have the lookup attribute, newest first.
    pub async fn lookup_events(
        &self,
        ctx: &RequestContext,
        request: LookupEventsRequest,
    ) -> Result<LookupEventsResponse, ApiError> {
        self.lookup_throttle.take(&ctx.account_id, Instant::now())?;
        let lookup = check_lookup(&request, Utc::now())?;
        let (found, next_token) = self.lookup_page(ctx, &lookup).await?;
        Ok(LookupEventsResponse {
            events: found.iter().map(|event| event_of(&event.json)).collect(),
            next_token,
        })
    }

    /// Returns a page of the caller's Event history, and the token of the next page if there is one.
    pub(crate) async fn lookup_page(
        &self,
        ctx: &RequestContext,
        lookup: &Lookup,
    ) -> Result<(Vec<FoundEvent>, Option<String>), ApiError> {
        let mut found = self.queries.lookup_events(&ctx.account_id, lookup).await.api()?;
        let next_token = if found.len() > lookup.max_results {
            found.truncate(lookup.max_results);
            found.last().map(|last| lookup.next_token(&last.cursor))
        } else {
            None
        };
        Ok((found, next_token))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn allows_two_calls_a_second_per_account() {
        let throttle = LookupThrottle::default();
        let start = Instant::now();
        assert!(throttle.take("111111111111", start).is_ok());
        assert!(throttle.take("111111111111", start).is_ok());
        let refused = throttle.take("111111111111", start).unwrap_err();
        assert_eq!((refused.code, refused.status), (ErrorCode::ThrottlingException, 429));
        assert!(
            throttle.take("222222222222", start).is_ok(),
            "each account has its own bucket"
        );
        assert!(
            throttle
                .take("111111111111", start + Duration::from_millis(500))
                .is_ok()
        );
        assert!(
            throttle
                .take("111111111111", start + Duration::from_millis(500))
                .is_err()
        );
    }
}
