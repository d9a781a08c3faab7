//! How long events are kept, and what applying that policy did.
//!
//! A policy is a default age plus optional ages per `eventCategory` (keep data events 30
//! days, management events 400). Applying it is incremental: each call handles a bounded
//! slice of the store in one short write transaction and says whether more remains, so the
//! caller (`serve`'s retention task, `trailwatch retention`) can pace it beside ingest.
//! Events that an alert points at are kept whatever their age: an alert must keep showing
//! what raised it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use model::EpochMillis;
use telemetry::Counter;

const DAY_MILLIS: i64 = 86_400_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Keep events this many days (by `eventTime`); `None`: forever, unless a category says
    /// otherwise.
    pub days: Option<u32>,
    /// Per `eventCategory` (`Management`, `Data`, `Insight`, `NetworkActivity`), overriding
    /// `days`. Records without a category are `Management` (older records predate the field).
    pub categories: BTreeMap<String, u32>,
}

impl RetentionPolicy {
    pub fn is_empty(&self) -> bool {
        self.days.is_none() && self.categories.is_empty()
    }

    /// Events of `category` older than this are expired (`None`: kept forever).
    pub fn cutoff(&self, category: Option<&str>, now: EpochMillis) -> Option<EpochMillis> {
        let category = category.unwrap_or("Management");
        let days = self.categories.get(category).copied().or(self.days)?;
        Some(now - i64::from(days) * DAY_MILLIS)
    }

    /// The cutoff of categories without their own age.
    pub fn default_cutoff(&self, now: EpochMillis) -> Option<EpochMillis> {
        self.days.map(|d| now - i64::from(d) * DAY_MILLIS)
    }

    /// The latest cutoff of any category: no event at or after it is expired.
    pub fn latest_cutoff(&self, now: EpochMillis) -> Option<EpochMillis> {
        self.days.iter().chain(self.categories.values()).min().map(|&d| now - i64::from(d) * DAY_MILLIS)
    }

    /// The earliest cutoff: every event before it is expired, whatever its category (`None`
    /// when some category is kept forever).
    pub fn earliest_cutoff(&self, now: EpochMillis) -> Option<EpochMillis> {
        let forever = self.days.is_none();
        if forever {
            return None;
        }
        self.days.iter().chain(self.categories.values()).max().map(|&d| now - i64::from(d) * DAY_MILLIS)
    }

    /// Ledger rows and other bookkeeping older than the longest kept age are dropped.
    pub fn bookkeeping_cutoff(&self, now: EpochMillis) -> Option<EpochMillis> {
        self.earliest_cutoff(now)
    }
}

/// What one call of [`EventStore::apply_retention`](crate::EventStore::apply_retention) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    pub events_deleted: u64,
    /// Expired events kept because an alert refers to them.
    pub events_kept_for_alerts: u64,
    /// Storage units touched: SQLite blocks, ClickHouse partitions and mutations.
    pub units_rewritten: u64,
    pub units_dropped: u64,
    pub ledger_rows_deleted: u64,
    /// Where the next call continues (pass it back); `None` when this pass is complete.
    pub resume_after: Option<i64>,
}

impl std::ops::AddAssign for RetentionReport {
    fn add_assign(&mut self, o: RetentionReport) {
        self.events_deleted += o.events_deleted;
        self.events_kept_for_alerts += o.events_kept_for_alerts;
        self.units_rewritten += o.units_rewritten;
        self.units_dropped += o.units_dropped;
        self.ledger_rows_deleted += o.ledger_rows_deleted;
        self.resume_after = o.resume_after;
    }
}

/// The space a store takes, for the overview page and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StorageStats {
    /// Bytes the store occupies (SQLite: the database file and its WAL; scale-out: the
    /// ClickHouse parts plus the PostgreSQL database).
    pub bytes: u64,
    /// Of those, the SQLite write-ahead log (checkpoints copy it into the file and reuse it).
    pub wal_bytes: u64,
    /// Of those, bytes free for reuse inside the file (SQLite's free pages).
    pub free_bytes: u64,
    /// Where the bytes are, largest first (SQLite: tables; ClickHouse: tables; PostgreSQL).
    pub parts: Vec<(String, u64)>,
}

/// Events deleted by retention since the process started (see [`register_metrics`]).
pub static EVENTS_DELETED: LazyLock<Counter> = LazyLock::new(Counter::default);
/// Completed retention passes since the process started.
pub static PASSES: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Registers retention's counters.
pub fn register_metrics(registry: &telemetry::Registry) {
    registry.counter(
        "trailwatch_retention_deleted_events_total",
        "Events deleted by the retention policy.",
        &[],
        &EVENTS_DELETED,
    );
    registry.counter("trailwatch_retention_passes_total", "Completed retention passes.", &[], &PASSES);
}

/// Applies `policy` fully: slice after slice of `slice` units, pausing `pause` between
/// slices so ingest gets the write lock in between, until the pass is complete or `stop`
/// says so.
pub fn run_pass(
    store: &dyn crate::EventStore,
    policy: &RetentionPolicy,
    now: EpochMillis,
    slice: usize,
    pause: std::time::Duration,
    stop: &dyn Fn() -> bool,
) -> Result<RetentionReport, crate::StoreError> {
    let mut total = RetentionReport::default();
    let mut resume = None;
    loop {
        let r = store.apply_retention(policy, now, resume, slice)?;
        EVENTS_DELETED.add(r.events_deleted);
        resume = r.resume_after;
        total += r;
        if resume.is_none() {
            PASSES.inc();
            return Ok(total);
        }
        if stop() {
            return Ok(total);
        }
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_overrides_default() {
        let p = RetentionPolicy { days: Some(10), categories: [("Data".to_string(), 2)].into() };
        let now = 100 * DAY_MILLIS;
        assert_eq!(p.cutoff(Some("Data"), now), Some(98 * DAY_MILLIS));
        assert_eq!(p.cutoff(Some("Management"), now), Some(90 * DAY_MILLIS));
        assert_eq!(p.cutoff(None, now), Some(90 * DAY_MILLIS));
        assert_eq!(p.latest_cutoff(now), Some(98 * DAY_MILLIS));
        assert_eq!(p.earliest_cutoff(now), Some(90 * DAY_MILLIS));
        let data_only = RetentionPolicy { days: None, categories: [("Data".to_string(), 2)].into() };
        assert_eq!(data_only.cutoff(Some("Management"), now), None);
        assert_eq!(data_only.earliest_cutoff(now), None);
        assert_eq!(data_only.latest_cutoff(now), Some(98 * DAY_MILLIS));
        assert!(RetentionPolicy::default().is_empty());
    }
}
