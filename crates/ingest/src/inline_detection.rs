//! Detection inside the pipeline: rules run where records are parsed, alerts are written
//! with the events that caused them.
//!
//! * Parse threads [`scan`](detect::RuleSet::scan) each record with the columns already
//!   extracted: a record the rule index rules out (most) costs two hash lookups. Matches and
//!   correlation keys travel with the batch.
//! * The writer drops matches of events that were already stored (duplicates alert
//!   nothing), keeps the object's matches until its ledger row is written, then feeds
//!   correlations in event-time order and records the hits and the changed correlation
//!   windows in the same transaction. A quarantined or failed object leaves nothing behind.

use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;

use detect::correlation::{Keyed, State};
use detect::{RuleSet, Scan};
use model::ParsedEvent;
use store::{AlertHit, AlertPolicy, AlertSubject, CorrelationWindow, EventBatch, EventWriter, StoreError};
use telemetry::Counter;

/// What the pipeline detects with.
pub struct Detection {
    /// The rules the writer is recording with (those of the object at hand).
    pub rules: Arc<RuleSet>,
    pub policy: AlertPolicy,
    /// What a reload (SIGHUP) replaces: parse workers take the rules from here for each new
    /// object, and the writer follows object by object (see [`Detection::follow`]).
    pub live: Arc<Live>,
    /// Correlation windows as persisted (`Store::correlation_windows`).
    pub state: State,
    /// Regions each account has used, for [`NEW_REGION_RULE_ID`]; `None` turns it off.
    pub regions: Option<RegionMemory>,
}

/// The built-in "activity in a region never used before" detector. It is not a Sigma rule
/// (Sigma has no "first seen" construct): it keeps, per account, the regions it has been
/// active in, and raises an alert for the first event in a new one once the account has a
/// history (the learning period) — a fresh install learns instead of alerting on everything.
pub const NEW_REGION_RULE_ID: &str = "3d0f6c67-5a4e-5b0f-8a7e-2f1c9e4b7a10";
pub const NEW_REGION_TITLE: &str = "Activity in a region never used before";

/// The alert for records the rules could not read whole (values nested deeper than the JSON
/// parser goes): they were evaluated on what could be read, and an analyst should look at
/// them — an attacker may nest a parameter to hide a call from detection.
pub const INCOMPLETE_SCAN_RULE_ID: &str = "8e5b1f0a-3c2d-5e7f-9a1b-4c6d8e0f2a3b";
pub const INCOMPLETE_SCAN_TITLE: &str = "Record too deeply nested for detection to read whole";

/// Records whose scan was incomplete, process-wide (see [`register_metrics`]).
pub static INCOMPLETE_SCANS: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Per account: when it was first seen, and its regions with their first event.
#[derive(Debug, Clone, Default)]
pub struct RegionMemory {
    accounts: rustc_hash::FxHashMap<String, (i64, rustc_hash::FxHashMap<String, i64>)>,
    /// An account must have been seen this long before a new region alerts.
    pub learning_ms: i64,
}

impl RegionMemory {
    pub fn new(known: Vec<store::KnownRegion>, learning_ms: i64) -> RegionMemory {
        let mut m = RegionMemory { learning_ms, ..Default::default() };
        for k in known {
            let entry = m.accounts.entry(k.account).or_insert((k.first_seen, Default::default()));
            entry.0 = entry.0.min(k.first_seen);
            entry.1.insert(k.region, k.first_seen);
        }
        m
    }

    /// `Some(alert-worthy)` when (account, region) is new; learns nothing (see [`learn`]).
    ///
    /// [`learn`]: RegionMemory::learn
    fn is_new(&self, account: &str, region: &str, time: i64) -> Option<bool> {
        match self.accounts.get(account) {
            Some((_, regions)) if regions.contains_key(region) => None,
            Some((first, _)) => Some(time - first >= self.learning_ms),
            None => Some(false),
        }
    }

    /// Remembers a pair once the object that showed it is recorded (an object that is
    /// quarantined or retried must not teach anything, or its retry would stay silent).
    fn learn(&mut self, k: &store::KnownRegion) {
        let entry = self.accounts.entry(k.account.clone()).or_insert((k.first_seen, Default::default()));
        entry.0 = entry.0.min(k.first_seen);
        entry.1.entry(k.region.clone()).or_insert(k.first_seen);
    }
}

impl Detection {
    /// Detection with `rules`, restoring correlation windows from `saved`.
    pub fn new(rules: Arc<RuleSet>, policy: AlertPolicy, saved: Vec<CorrelationWindow>) -> Detection {
        let state = State::restore(
            &rules.correlations,
            saved.into_iter().map(|w| detect::correlation::SavedWindow {
                correlation: w.correlation,
                group: w.group,
                entries: w.entries,
            }),
        );
        let live = Arc::new(Live { rules: ArcSwap::new(rules.clone()), policy: ArcSwap::from_pointee(policy.clone()) });
        Detection { rules, policy, live, state, regions: None }
    }

    /// Switches to the rules an object was scanned with (a scan's rule numbers mean
    /// something only in its own rule set), carrying every correlation window over by
    /// correlation id, and picks up a reloaded alert policy. Objects parsed just before a
    /// reload may still come with the old rules: the writer follows them back and forth.
    pub fn follow(&mut self, rules: &Arc<RuleSet>) {
        if !Arc::ptr_eq(rules, &self.rules) {
            let windows = self.state.export_all(&self.rules.correlations);
            self.state = State::restore(&rules.correlations, windows);
            self.rules = rules.clone();
        }
        let policy = self.live.policy.load();
        if **policy != self.policy {
            self.policy = (**policy).clone();
        }
    }
}

/// The parts of detection a running `serve` can replace.
#[derive(Debug)]
pub struct Live {
    pub rules: ArcSwap<RuleSet>,
    pub policy: ArcSwap<AlertPolicy>,
}

impl Detection {
    /// Turns on the new-region detector with what the store knows.
    pub fn with_regions(mut self, regions: RegionMemory) -> Detection {
        self.regions = Some(regions);
        self
    }
}

/// Matches of one batch: (position in the batch, what matched).
pub(crate) type BatchScans = Vec<(u32, Scan)>;

/// The subject line of an alert, from the event's columns.
pub fn subject_of(e: &ParsedEvent) -> AlertSubject {
    AlertSubject {
        principal: e.actor.principal.clone(),
        account: e.recipient_account_id.clone(),
        region: e.aws_region.clone(),
        source_ip: e.source_ip.clone(),
        event_source: e.event_source.clone(),
        event_name: e.event_name.clone(),
        error_code: e.error_code.clone(),
    }
}

/// A match of a correlation's rule, waiting to be fed in time order.
#[derive(Debug)]
pub struct PendingCorrelation {
    pub keyed: Keyed,
    pub time: i64,
    pub event_id: String,
    pub subject: AlertSubject,
}

/// Hits of one principal in one account are one alert: `<principal> @ <account>`.
fn group_of(e: &ParsedEvent) -> String {
    format!("{} @ {}", e.actor.principal, e.recipient_account_id.as_deref().unwrap_or("-"))
}

/// The hits of one object, gathered across its batches. Matches of one rule in one group
/// (principal and account) within the suppression window extend one hit, so a rule that
/// matches thousands of events costs one alert lookup, not thousands.
#[derive(Debug, Default)]
pub struct ObjectHits {
    pub hits: Vec<AlertHit>,
    pub keyed: Vec<PendingCorrelation>,
    /// (account, region) pairs seen for the first time.
    pub regions: Vec<store::KnownRegion>,
    /// rule index → group key → position in `hits` of the group's latest hit.
    merged: std::collections::HashMap<usize, std::collections::HashMap<String, usize>>,
}

impl ObjectHits {
    pub fn is_empty(&self) -> bool {
        self.hits.is_empty() && self.keyed.is_empty() && self.regions.is_empty()
    }

    /// Runs the new-region detector over the new events of `batch` (after it was inserted).
    pub(crate) fn observe_regions(&mut self, memory: &RegionMemory, batch: &EventBatch) {
        let duplicates = batch.duplicate_rows();
        for (i, e) in batch.events.iter().enumerate() {
            let (Some(account), Some(region)) = (e.recipient_account_id.as_deref(), e.aws_region.as_deref()) else {
                continue;
            };
            // A duplicate was observed when it was first stored.
            if duplicates.binary_search(&(i as u32)).is_ok() {
                continue;
            }
            let Some(alert) = memory.is_new(account, region, e.event_time) else { continue };
            if self.regions.iter().any(|k| k.account == account && k.region == region) {
                continue; // already new in this object
            }
            self.regions.push(store::KnownRegion {
                account: account.to_string(),
                region: region.to_string(),
                first_seen: e.event_time,
            });
            if alert {
                let subject = subject_of(e);
                self.hits.push(AlertHit {
                    rule_id: NEW_REGION_RULE_ID.into(),
                    title: NEW_REGION_TITLE.into(),
                    level: "medium".into(),
                    group_key: format!("{account} @ {region}"),
                    event_ids: vec![e.event_id.clone()],
                    first_time: e.event_time,
                    last_time: e.event_time,
                    subject,
                });
            }
        }
    }

    /// Adds the scans of `batch` (after it was inserted) except those of duplicates.
    pub(crate) fn add(&mut self, detection: &Detection, batch: &EventBatch, scans: BatchScans) {
        let duplicates = batch.duplicate_rows();
        for (row, scan) in scans {
            if duplicates.binary_search(&row).is_ok() {
                continue;
            }
            let Some(e) = batch.events.get(row as usize) else { continue };
            self.add_event(detection, e, scan);
        }
    }

    /// Adds one new event's scan.
    pub fn add_event(&mut self, detection: &Detection, e: &ParsedEvent, scan: Scan) {
        let (rules, window) = (&detection.rules, detection.policy.suppression_ms);
        if scan.incomplete {
            INCOMPLETE_SCANS.inc();
            tracing::warn!(
                event_id = %e.event_id,
                event_name = ?e.event_name,
                account = ?e.recipient_account_id,
                "a record nests values too deep for detection to read whole; evaluated on the rest and reported"
            );
            let group = group_of(e);
            self.join_or_open(
                usize::MAX,
                &group,
                e,
                window,
                (INCOMPLETE_SCAN_RULE_ID, INCOMPLETE_SCAN_TITLE, "medium"),
            );
        }
        let mut reporting = scan.rules.iter().copied().filter(|r| rules.reports(*r)).peekable();
        if reporting.peek().is_some() {
            let group = group_of(e);
            for r in reporting {
                let rule = &rules.rules[r];
                self.join_or_open(r, &group, e, window, (&rule.id, &rule.title, &rule.level));
            }
        }
        if !scan.keyed.is_empty() {
            let subject = subject_of(e);
            for keyed in scan.keyed {
                self.keyed.push(PendingCorrelation {
                    keyed,
                    time: e.event_time,
                    event_id: e.event_id.clone(),
                    subject: subject.clone(),
                });
            }
        }
    }

    /// Adds `e` to the hit `slot` (a rule's index; `usize::MAX`: the incomplete-scan
    /// detector) has open for `group` if `e` falls within its suppression window, or opens a
    /// hit with `rule`'s (id, title, level).
    fn join_or_open(&mut self, slot: usize, group: &str, e: &ParsedEvent, window: i64, rule: (&str, &str, &str)) {
        let groups = self.merged.entry(slot).or_default();
        // The same test the store applies when a hit joins an alert.
        let joinable = |h: &AlertHit| e.event_time <= h.last_time + window && e.event_time >= h.first_time - window;
        if let Some(&at) = groups.get(group).filter(|&&at| joinable(&self.hits[at])) {
            let hit = &mut self.hits[at];
            hit.event_ids.push(e.event_id.clone());
            hit.first_time = hit.first_time.min(e.event_time);
            hit.last_time = hit.last_time.max(e.event_time);
            return;
        }
        groups.insert(group.to_owned(), self.hits.len());
        let (rule_id, title, level) = rule;
        self.hits.push(AlertHit {
            rule_id: rule_id.into(),
            title: title.into(),
            level: level.into(),
            group_key: group.to_owned(),
            event_ids: vec![e.event_id.clone()],
            first_time: e.event_time,
            last_time: e.event_time,
            subject: subject_of(e),
        });
    }

    /// Feeds the correlation matches in time order, then writes every hit and the changed
    /// windows with `writer` (inside its open transaction).
    pub fn record(
        mut self,
        writer: &mut dyn EventWriter,
        detection: &mut Detection,
    ) -> Result<RecordedAlerts, StoreError> {
        self.keyed.sort_by_key(|k| k.time);
        let rules = &detection.rules;
        // Workers sharing a store share windows: take this object's from the store (locked
        // until the transaction ends) before feeding it.
        let mut keys: Vec<(String, String)> = self
            .keyed
            .iter()
            .map(|k| (rules.correlations[k.keyed.correlation].id.clone(), k.keyed.group.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        if !keys.is_empty() {
            if let Some(saved) = writer.shared_correlation_windows(&keys)? {
                let saved = saved
                    .into_iter()
                    .map(|w| detect::correlation::SavedWindow {
                        correlation: w.correlation,
                        group: w.group,
                        entries: w.entries,
                    })
                    .collect();
                detection.state.refresh(&rules.correlations, &keys, saved);
            }
        }
        for k in &self.keyed {
            let c = &rules.correlations[k.keyed.correlation];
            if let Some(events) = c.feed(&mut detection.state, &k.keyed, k.time, &k.event_id) {
                let first = events.iter().map(|(_, t)| *t).min().unwrap_or(k.time);
                self.hits.push(AlertHit {
                    rule_id: c.id.clone(),
                    title: c.title.clone(),
                    level: c.level.clone(),
                    group_key: k.keyed.group.replace('\u{1f}', " | "),
                    event_ids: events.into_iter().map(|(id, _)| id).filter(|id| !id.is_empty()).collect(),
                    first_time: first,
                    last_time: k.time,
                    subject: k.subject.clone(),
                });
            }
        }
        let windows: Vec<CorrelationWindow> = detection
            .state
            .take_dirty(&rules.correlations)
            .into_iter()
            .map(|w| CorrelationWindow { correlation: w.correlation, group: w.group, entries: w.entries })
            .collect();
        writer.save_correlation_windows(&windows)?;
        writer.remember_regions(&self.regions)?;
        if let Some(memory) = detection.regions.as_mut() {
            self.regions.iter().for_each(|k| memory.learn(k));
        }
        let opened = writer.record_alerts(&self.hits, &detection.policy)?;
        let hits = self.hits.iter().map(|h| h.event_ids.len() as u64).sum();
        Ok(RecordedAlerts { hits, opened: opened.len() as u64 })
    }
}

/// What recording an object's hits did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordedAlerts {
    pub hits: u64,
    pub opened: u64,
}

/// Rule evaluation on the parse threads, process-wide (see [`register_metrics`]): records
/// scanned and the time `RuleSet::scan` took, in nanoseconds.
pub static SCANNED_RECORDS: LazyLock<Counter> = LazyLock::new(Counter::default);
pub static SCAN_NANOS: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Registers detection's counters.
pub fn register_metrics(registry: &telemetry::Registry) {
    registry.counter(
        "trailwatch_rule_evaluated_records_total",
        "Records scanned by the detection rules.",
        &[],
        &SCANNED_RECORDS,
    );
    registry.scaled_counter(
        "trailwatch_rule_evaluation_seconds_total",
        "Time spent evaluating rules on records.",
        1e-9,
        &SCAN_NANOS,
    );
    registry.counter(
        "trailwatch_rule_incomplete_records_total",
        "Records the rules could not read whole (values nested too deep); each raises an alert.",
        &[],
        &INCOMPLETE_SCANS,
    );
}

/// Sums one object's scan times and adds them to the process-wide counters once, when the
/// object is done (however it ends), so parse threads do not contend per record.
#[derive(Default)]
pub(crate) struct ScanTimer {
    records: u64,
    nanos: u64,
}

impl ScanTimer {
    pub(crate) fn add(&mut self, took: std::time::Duration) {
        self.records += 1;
        self.nanos += took.as_nanos() as u64;
    }
}

impl Drop for ScanTimer {
    fn drop(&mut self) {
        if self.records > 0 {
            SCANNED_RECORDS.add(self.records);
            SCAN_NANOS.add(self.nanos);
        }
    }
}
