//! Alerts and their delivery: what detection leaves in the store.
//!
//! * [`AlertHit`] — one rule match (or one correlation firing) on its way in. The ingest
//!   writer records hits in the same transaction as the events that caused them, so an alert
//!   exists exactly when its events do: a crash loses both, and re-ingesting the object
//!   brings both back.
//! * [`Alert`] — hits of one rule for one grouping key (the principal and account, or a
//!   correlation's group) within the suppression window are one alert: its count grows,
//!   nobody is notified twice. An event is attached to a rule's alerts once, however often it
//!   is delivered or re-scanned. States: open → acknowledged → resolved; a match after
//!   resolution opens a new alert.
//! * [`Delivery`] — the outbox: one row per (alert, sink), written with the alert, drained by
//!   the delivery worker with exponential backoff. A row is done only when the sink accepted
//!   it, so delivery is at least once across restarts.

use crate::StoreError;
use model::EpochMillis;

/// Sigma levels, lowest first.
pub const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

/// The rank of a Sigma level (unknown levels rank as `medium`).
pub fn level_rank(level: &str) -> usize {
    LEVELS.iter().position(|l| l.eq_ignore_ascii_case(level)).unwrap_or(2)
}

/// Who did what, where, from which IP: the line a person reads, taken from the event that
/// opened the alert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSubject {
    pub principal: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub source_ip: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub error_code: Option<String>,
}

/// A rule match to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertHit {
    pub rule_id: String,
    pub title: String,
    pub level: String,
    /// Alerts of one rule with the same key are grouped.
    pub group_key: String,
    /// The matching event; for a correlation, every event of the window that fired.
    pub event_ids: Vec<String>,
    pub first_time: EpochMillis,
    pub last_time: EpochMillis,
    pub subject: AlertSubject,
}

/// Where new alerts are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRoute {
    pub sink: String,
    /// Alerts below this level are not sent to this sink.
    pub min_level: String,
}

/// How hits become alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPolicy {
    /// A hit within this long of a non-resolved alert of the same rule and key joins it.
    pub suppression_ms: i64,
    pub routes: Vec<SinkRoute>,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy { suppression_ms: 3_600_000, routes: Vec::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<AlertState> {
        match s {
            "open" => Some(AlertState::Open),
            "acknowledged" | "ack" => Some(AlertState::Acknowledged),
            "resolved" => Some(AlertState::Resolved),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: i64,
    pub rule_id: String,
    pub title: String,
    pub level: String,
    pub group_key: String,
    pub state: AlertState,
    pub first_seen: EpochMillis,
    pub last_seen: EpochMillis,
    /// Events attached to the alert.
    pub count: u64,
    pub subject: AlertSubject,
    pub created_at: EpochMillis,
    pub updated_at: EpochMillis,
    /// The last state change's comment.
    pub comment: Option<String>,
}

impl Alert {
    /// The alert as JSON, the one shape the CLI and the sinks print (times in RFC 3339).
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.subject;
        let time = model::timefmt::format_millis;
        serde_json::json!({
            "id": self.id, "rule": self.rule_id, "title": self.title, "level": self.level,
            "state": self.state.as_str(), "group": self.group_key, "count": self.count,
            "first_seen": time(self.first_seen), "last_seen": time(self.last_seen),
            "principal": s.principal, "account": s.account, "region": s.region, "source_ip": s.source_ip,
            "event_source": s.event_source, "event_name": s.event_name, "error_code": s.error_code,
            "comment": self.comment,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    /// This level or higher.
    pub min_level: Option<String>,
    pub rule_id: Option<String>,
    /// 0: no limit.
    pub limit: usize,
    /// Keyset paging: only alerts after this one in the list's order (last seen, then id,
    /// newest first), i.e. `(last_seen, id)` below this pair.
    pub before: Option<(EpochMillis, i64)>,
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub alert_id: i64,
    pub sink: String,
    pub attempts: u32,
    pub next_attempt: EpochMillis,
    pub last_error: Option<String>,
    pub delivered_at: Option<EpochMillis>,
    pub created_at: EpochMillis,
}

/// A correlation window as persisted (see `detect::correlation::State`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationWindow {
    pub correlation: String,
    pub group: String,
    pub entries: String,
}

/// Undelivered outbox rows of one sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    pub sink: String,
    pub pending: u64,
    /// Of those, how many have failed at least once.
    pub failing: u64,
    pub oldest: Option<EpochMillis>,
}

/// The first event of an account in a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownRegion {
    pub account: String,
    pub region: String,
    pub first_seen: EpochMillis,
}

/// The rows an alert is made of, as one backend writes them inside its open transaction
/// (see [`record_hits`]).
pub(crate) trait AlertRows {
    /// The newest unresolved alert of `rule_id` and `group_key`.
    fn newest_unresolved(&mut self, rule_id: &str, group_key: &str) -> Result<Option<AlertSpan>, StoreError>;
    /// Inserts an open alert with no events yet; returns its id.
    fn open_alert(&mut self, hit: &AlertHit, now: EpochMillis) -> Result<i64, StoreError>;
    /// Attaches the hit's events its rule has not seen before (in any alert) to `alert`;
    /// returns how many that was.
    fn attach_events(&mut self, hit: &AlertHit, alert: i64) -> Result<i64, StoreError>;
    fn delete_alert(&mut self, alert: i64) -> Result<(), StoreError>;
    /// Adds `n` events seen between `first` and `last` to `alert`.
    fn count_events(&mut self, alert: i64, n: i64, first: i64, last: i64, now: EpochMillis) -> Result<(), StoreError>;
    /// Queues the alert's delivery to `sink` (once).
    fn queue_delivery(&mut self, alert: i64, sink: &str, now: EpochMillis) -> Result<(), StoreError>;
}

/// An alert's id and the time its events span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AlertSpan {
    pub id: i64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Records `hits`, in order, the same way in every backend: each joins the newest
/// unresolved alert of its rule and group key when its events fall within the suppression
/// window of that alert's, or opens one. Only events the rule has not seen before count; an
/// alert opened with nothing new in it (a re-scan) is taken back. Returns the ids of the
/// alerts opened, whose deliveries are queued to every route their level reaches.
pub(crate) fn record_hits(
    rows: &mut impl AlertRows,
    hits: &[AlertHit],
    policy: &AlertPolicy,
    now: EpochMillis,
) -> Result<Vec<i64>, StoreError> {
    let mut opened = Vec::new();
    for hit in hits {
        let (first, last) = (hit.first_time, hit.last_time);
        let joins = rows
            .newest_unresolved(&hit.rule_id, &hit.group_key)?
            .filter(|a| first <= a.last_seen + policy.suppression_ms && last >= a.first_seen - policy.suppression_ms)
            .map(|a| a.id);
        let alert = match joins {
            Some(id) => id,
            None => rows.open_alert(hit, now)?,
        };
        let fresh = rows.attach_events(hit, alert)?;
        match (joins, fresh) {
            (None, 0) => rows.delete_alert(alert)?,
            (Some(_), 0) => {}
            (joined, n) => {
                rows.count_events(alert, n, first, last, now)?;
                if joined.is_none() {
                    for route in policy.routes.iter().filter(|r| level_rank(&hit.level) >= level_rank(&r.min_level)) {
                        rows.queue_delivery(alert, &route.sink, now)?;
                    }
                    opened.push(alert);
                }
            }
        }
    }
    Ok(opened)
}
