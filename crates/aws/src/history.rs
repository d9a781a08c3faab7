//! An account's recent history from CloudTrail's Event history (`LookupEvents`): the last
//! 90 days of management events, region by region, for an account that is new to trailwatch
//! (its trail's bucket may not reach back that far, or may not be readable yet).
//!
//! `LookupEvents` answers 50 events a page and allows 2 calls a second per account and
//! region: pages are fetched one after another, half a second apart, and the SDK retries a
//! throttled call. Each page's `CloudTrailEvent` texts are the records themselves.

use std::time::Duration;

use aws_sdk_cloudtrail::primitives::DateTime;

use crate::account::AccountClients;

/// Between calls in one region (LookupEvents allows 2 per second).
const CALL_SPACING: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
#[error("cloudtrail:LookupEvents in {region} failed: {detail}")]
pub struct HistoryError {
    pub region: String,
    pub detail: String,
}

/// Every event CloudTrail's Event history holds for `region` between `start` and `end`
/// (epoch milliseconds), handed to `page` one page of record texts at a time.
pub async fn lookup_events(
    clients: &AccountClients,
    region: &str,
    start: i64,
    end: i64,
    mut page: impl FnMut(Vec<String>),
) -> Result<u64, HistoryError> {
    let cloudtrail = crate::integrity::cloudtrail_in(clients, region);
    let mut token: Option<String> = None;
    let mut total = 0u64;
    loop {
        let resp = cloudtrail
            .lookup_events()
            .start_time(DateTime::from_millis(start))
            .end_time(DateTime::from_millis(end))
            .max_results(50)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| HistoryError {
                region: region.to_string(),
                detail: aws_sdk_cloudtrail::error::DisplayErrorContext(e).to_string(),
            })?;
        let records: Vec<String> =
            resp.events().iter().filter_map(|e| e.cloud_trail_event().map(str::to_owned)).collect();
        total += records.len() as u64;
        if !records.is_empty() {
            page(records);
        }
        token = resp.next_token().map(str::to_owned).filter(|t| !t.is_empty());
        if token.is_none() {
            return Ok(total);
        }
        tokio::time::sleep(CALL_SPACING).await;
    }
}
