//! ListPublicKeys: the public keys that check the sign files of result deliveries.

use chrono::Utc;
use traillake_api::shapes::{ListPublicKeysRequest, ListPublicKeysResponse, PublicKey};
use traillake_api::wire::{timestamp, utc};
use traillake_api::{ApiError, ErrorCode, RequestContext};

use super::Service;
use super::errors::IntoApi as _;

impl Service {
    /// ListPublicKeys: the keys valid at some time between StartTime and EndTime (both now when
    /// absent, which lists the current key), oldest first, in one page.
    pub async fn list_public_keys(
        &self,
        _ctx: &RequestContext,
        request: ListPublicKeysRequest,
    ) -> Result<ListPublicKeysResponse, ApiError> {
        if request.next_token.is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidTokenException,
                "ListPublicKeys answers every key in one page and issues no NextToken",
            ));
        }
        let now = Utc::now();
        let time = |value: Option<&prost_types::Timestamp>, field: &str| match value {
            None => Ok(now),
            Some(value) => utc(value)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidTimeRangeException, format!("{field} is out of range"))),
        };
        let start = time(request.start_time.as_ref(), "StartTime")?;
        let end = time(request.end_time.as_ref(), "EndTime")?;
        if start > end {
            return Err(ApiError::new(
                ErrorCode::InvalidTimeRangeException,
                "StartTime must not be after EndTime",
            ));
        }
        let keys = self.queries.signing_keys().valid_between(start, end, now).await.api()?;
        Ok(ListPublicKeysResponse {
            public_key_list: keys
                .iter()
                .map(|key| PublicKey {
                    value: Some(key.public_key_der.clone()),
                    validity_start_time: Some(timestamp(key.valid_from)),
                    validity_end_time: Some(timestamp(key.valid_until)),
                    fingerprint: Some(key.fingerprint.clone()),
                })
                .collect(),
            next_token: None,
        })
    }
}
