//! What an account's integration status means: the verdict the status command, the accounts
//! page and `/metrics` show for each [`IntegrationStatus`] row.

use model::EpochMillis;

use crate::IntegrationStatus;

/// What a status row means for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Notifications arrive and objects are readable.
    Active,
    /// The wiring answered (validation message, test event) but no log file came yet.
    Wired,
    /// Nothing received yet.
    Waiting(String),
    /// Notifications stopped.
    Stale(String),
    Error(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Active => "active",
            Verdict::Wired => "wired",
            Verdict::Waiting(_) => "waiting",
            Verdict::Stale(_) => "stale",
            Verdict::Error(_) => "error",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Verdict::Active => "notifications arrive and objects are readable",
            Verdict::Wired => "CloudTrail's validation message (or S3's test event) arrived; no log file yet",
            Verdict::Waiting(r) | Verdict::Stale(r) | Verdict::Error(r) => r,
        }
    }
}

/// CloudTrail delivers every ~5 minutes while there is activity; an hour without any
/// notification in a region that had them means delivery stopped (or the wiring broke).
pub const STALE_AFTER_MS: EpochMillis = 60 * 60 * 1000;

/// Adds an empty row (a `waiting` verdict) for each configured account that never reported,
/// so that it shows instead of being absent, and sorts the rows by account and region.
pub fn with_unreported<'a>(rows: &mut Vec<IntegrationStatus>, accounts: impl IntoIterator<Item = &'a str>) {
    for name in accounts {
        if !rows.iter().any(|r| r.account == name) {
            rows.push(IntegrationStatus { account: name.to_owned(), ..Default::default() });
        }
    }
    rows.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
}

/// The verdict for `row` among `rows` (its account's `""` row, if any, carries the role and
/// queue errors that apply to every region).
/// A row never written by any process (a configured account `status` adds) is `waiting`.
pub fn verdict_among(rows: &[IntegrationStatus], row: &IntegrationStatus, now: EpochMillis) -> Verdict {
    if row.updated_at == 0 {
        return Verdict::Waiting("never connected: is `trailwatch serve` running with this account?".into());
    }
    let account_row = rows.iter().find(|a| a.account == row.account && a.region.is_empty() && !row.region.is_empty());
    verdict(row, account_row, now)
}

/// The verdict for one row. `account_row` is the account's `""` row (role, queue errors
/// apply to every region).
pub fn verdict(row: &IntegrationStatus, account_row: Option<&IntegrationStatus>, now: EpochMillis) -> Verdict {
    if let Some(a) = account_row.filter(|a| a.last_error.is_some()) {
        return Verdict::Error(a.last_error.clone().unwrap_or_default());
    }
    if let (Some(err), Some(at)) = (&row.last_error, row.last_error_at) {
        if row.last_object.is_none_or(|o| o <= at) {
            return Verdict::Error(err.clone());
        }
    }
    match (row.last_notification, row.last_object) {
        (None, _) if row.region.is_empty() => {
            Verdict::Waiting("no notification received yet: is the queue subscribed to the trail's SNS topic?".into())
        }
        (None, _) => Verdict::Waiting("no notification for this region yet".into()),
        (Some(n), _) if now - n > STALE_AFTER_MS => {
            Verdict::Stale(format!("no notification for {} minutes", (now - n) / 60_000))
        }
        (Some(_), None) if row.last_validation.is_some() => Verdict::Wired,
        (Some(_), None) if row.region.is_empty() => Verdict::Active,
        (Some(_), None) => Verdict::Waiting("notifications arrive but no object was read yet".into()),
        (Some(_), Some(_)) => Verdict::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(region: &str) -> IntegrationStatus {
        IntegrationStatus { account: "prod".into(), region: region.into(), ..Default::default() }
    }

    #[test]
    fn verdicts() {
        let now = 10 * STALE_AFTER_MS;
        assert!(matches!(verdict(&row(""), None, now), Verdict::Waiting(_)));
        let mut r = row("us-east-1");
        r.last_notification = Some(now - 1000);
        r.last_object = Some(now - 1000);
        assert_eq!(verdict(&r, None, now), Verdict::Active);
        // An object error after the last good object wins…
        let mut bad = r.clone();
        bad.last_error = Some("s3://b/k: access denied".into());
        bad.last_error_at = Some(now - 10);
        assert_eq!(verdict(&bad, None, now), Verdict::Error("s3://b/k: access denied".into()));
        // …until an object is read again.
        bad.last_object = Some(now);
        assert_eq!(verdict(&bad, None, now), Verdict::Active);
        // An account error (role) applies to every region.
        let mut acct = row("");
        acct.last_error = Some("assuming role failed".into());
        assert!(matches!(verdict(&r, Some(&acct), now), Verdict::Error(e) if e.contains("assuming")));
        // Silence.
        r.last_notification = Some(now - 2 * STALE_AFTER_MS);
        assert!(matches!(verdict(&r, None, now), Verdict::Stale(m) if m.contains("120 minutes")));
        // Only the validation message so far.
        let mut wired = row("");
        wired.last_validation = Some(now);
        wired.last_notification = Some(now);
        assert_eq!(verdict(&wired, None, now), Verdict::Wired);
    }
}
