//! Typed event queries and result rows.

use model::EpochMillis;

/// A search over stored events. Every set filter must match (AND).
///
/// Text filters match exactly (case-sensitive, as CloudTrail spells values), unless the value
/// contains `*` or `?`, which then work as shell wildcards (`Delete*`, `10.0.?.1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub event_name: Option<String>,
    pub event_source: Option<String>,
    /// Matches the normalised principal (ARN), the role or user that issued the session,
    /// the user/session name, or the federated human behind the session.
    pub principal: Option<String>,
    pub source_ip: Option<String>,
    /// `recipientAccountId`.
    pub account: Option<String>,
    pub region: Option<String>,
    /// Inclusive bounds on `eventTime`.
    pub since: Option<EpochMillis>,
    pub until: Option<EpochMillis>,
    /// Only failed calls (an `errorCode` is present).
    pub errors: bool,
    /// Only calls that failed with this `errorCode` (wildcards allowed).
    pub error_code: Option<String>,
    /// Maximum rows; `None` means all.
    pub limit: Option<usize>,
    /// Continue after this row (keyset paging, stays fast deep into results).
    pub after: Option<Page>,
}

/// Position of a row in the newest-first order, for keyset paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub event_time: EpochMillis,
    pub row: i64,
}

/// A stored event: the indexed columns and the original record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Arrival order within this store.
    pub row: i64,
    pub event_id: String,
    pub event_time: EpochMillis,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub principal: String,
    pub source_ip: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub error_code: Option<String>,
    /// The record exactly as CloudTrail delivered it.
    pub raw: String,
}

impl EventRow {
    pub fn page(&self) -> Page {
        Page { event_time: self.event_time, row: self.row }
    }
}

/// Columns that can be counted with [`EventStore::top`](crate::EventStore::top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    EventName,
    EventSource,
    Principal,
    SourceIp,
    Account,
    Region,
    ErrorCode,
    UserAgent,
}

impl Dimension {
    /// The name used in URLs and the API (`event_name`, `principal`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::EventName => "event_name",
            Dimension::EventSource => "event_source",
            Dimension::Principal => "principal",
            Dimension::SourceIp => "source_ip",
            Dimension::Account => "account",
            Dimension::Region => "region",
            Dimension::ErrorCode => "error_code",
            Dimension::UserAgent => "user_agent",
        }
    }
}

/// What [`EventStore::summarize`](crate::EventStore::summarize) computes besides the counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummarySpec {
    /// Histogram bucket width; 0 for no histogram.
    pub bucket_ms: EpochMillis,
    /// Splits each bucket by this column (stacked charts); `None` for one series.
    pub series: Option<Dimension>,
    /// Columns whose most frequent values are wanted, `top_n` each.
    pub tops: Vec<Dimension>,
    pub top_n: usize,
}

impl SummarySpec {
    /// What a principal's page (and its API) counts: activity per `bucket_ms`, and the top
    /// `top_n` source IPs, user agents, regions, calls, error codes, accounts and
    /// principals (a role's sessions, a person's roles). The SQLite store answers it from
    /// its per-principal counts for a principal's whole history.
    pub fn principal_page(bucket_ms: EpochMillis, top_n: usize) -> SummarySpec {
        SummarySpec {
            bucket_ms,
            series: None,
            tops: vec![
                Dimension::SourceIp,
                Dimension::UserAgent,
                Dimension::Region,
                Dimension::EventName,
                Dimension::ErrorCode,
                Dimension::Account,
                Dimension::Principal,
            ],
            top_n,
        }
    }
}

/// Counts over the events a query matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    /// Events with an `errorCode`.
    pub errors: u64,
    /// Of those, refusals ([`is_access_denied`]).
    pub denied: u64,
    pub first: Option<EpochMillis>,
    pub last: Option<EpochMillis>,
    /// Sorted by bucket start, then series; buckets without events are absent.
    pub histogram: Vec<HistogramPoint>,
    /// In the order of [`SummarySpec::tops`]: values with their counts, most frequent first.
    pub tops: Vec<(Dimension, Vec<(String, u64)>)>,
}

impl Summary {
    pub fn top(&self, dimension: Dimension) -> &[(String, u64)] {
        self.tops.iter().find(|(d, _)| *d == dimension).map_or(&[], |(_, t)| t.as_slice())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramPoint {
    pub start: EpochMillis,
    /// The series' value (empty without a series, or for events without one).
    pub series: String,
    pub events: u64,
}

/// Whether an `errorCode` says the caller was not allowed: `AccessDenied` and the spellings
/// services use for it (`AccessDeniedException`, `Client.UnauthorizedOperation`,
/// `UnauthorizedOperation`, `UnauthorizedAccess`, …).
pub fn is_access_denied(code: &str) -> bool {
    code.contains("AccessDenied") || code.contains("Unauthorized") || code.contains("Forbidden")
}

pub(crate) fn is_wildcard(value: &str) -> bool {
    value.contains(['*', '?'])
}

/// Whether `text` matches the shell wildcard `pattern` as SQLite's GLOB matches
/// [`glob_pattern`]`(pattern)`: `*` any run of characters, `?` one, the rest literally.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // The classic greedy matcher with one backtrack point (the last `*`): linear-ish.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Shell wildcard → SQLite GLOB pattern (`[` is escaped; GLOB has no other specials).
pub(crate) fn glob_pattern(value: &str) -> String {
    value.replace('[', "[[]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// SQLite's GLOB is the reference: searches over dictionary values use it.
        #[test]
        fn glob_matches_as_sqlite_does(pattern in "[ab*?\\[.]{0,8}", text in "[ab\\[.]{0,10}") {
            let conn = rusqlite::Connection::open_in_memory().unwrap();
            let sqlite: bool = conn
                .query_row("SELECT ?2 GLOB ?1", [glob_pattern(&pattern), text.clone()], |r| r.get(0))
                .unwrap();
            prop_assert_eq!(glob_matches(&pattern, &text), sqlite, "{:?} {:?}", pattern, text);
        }
    }

    #[test]
    fn globs() {
        assert!(glob_matches("203.0.113.*", "203.0.113.7"));
        assert!(!glob_matches("203.0.113.*", "203.0.114.7"));
        assert!(glob_matches("*:*", "2001:db8::1"));
        assert!(glob_matches("1?.0.0.1", "10.0.0.1"));
        assert!(!glob_matches("", "x"));
    }
}
