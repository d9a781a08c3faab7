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

use std::sync::Arc;

use detect::correlation::{Keyed, State};
use detect::{RuleSet, Scan};
use model::ParsedEvent;
use store::{AlertHit, AlertPolicy, AlertSubject, CorrelationWindow, EventBatch, EventWriter, StoreError};

/// What the pipeline detects with.
pub struct Detection {
    pub rules: Arc<RuleSet>,
    pub policy: AlertPolicy,
    /// Correlation windows as persisted (`Store::correlation_windows`).
    pub state: State,
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
        Detection { rules, policy, state }
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

/// Alerts of a plain rule are grouped per principal and account.
pub fn rule_group_key(subject: &AlertSubject) -> String {
    format!("{} @ {}", subject.principal, subject.account.as_deref().unwrap_or("-"))
}

/// A match of a correlation's rule, waiting to be fed in time order.
#[derive(Debug)]
pub struct PendingCorrelation {
    pub keyed: Keyed,
    pub time: i64,
    pub event_id: String,
    pub subject: AlertSubject,
}

/// The hits of one object, gathered across its batches.
#[derive(Debug, Default)]
pub struct ObjectHits {
    pub hits: Vec<AlertHit>,
    pub keyed: Vec<PendingCorrelation>,
}

impl ObjectHits {
    pub fn is_empty(&self) -> bool {
        self.hits.is_empty() && self.keyed.is_empty()
    }

    /// Adds the scans of `batch` (after it was inserted) except those of duplicates.
    pub(crate) fn add(&mut self, rules: &RuleSet, batch: &EventBatch, scans: BatchScans) {
        let duplicates = batch.duplicate_rows();
        for (row, scan) in scans {
            if duplicates.binary_search(&row).is_ok() {
                continue;
            }
            let Some(e) = batch.events.get(row as usize) else { continue };
            self.add_event(rules, e, scan);
        }
    }

    /// Adds one new event's scan.
    pub fn add_event(&mut self, rules: &RuleSet, e: &ParsedEvent, scan: Scan) {
        let subject = subject_of(e);
        for &r in scan.rules.iter().filter(|r| rules.reports(**r)) {
            let rule = &rules.rules[r];
            self.hits.push(AlertHit {
                rule_id: rule.id.clone(),
                title: rule.title.clone(),
                level: rule.level.clone(),
                group_key: rule_group_key(&subject),
                event_ids: vec![e.event_id.clone()],
                first_time: e.event_time,
                last_time: e.event_time,
                subject: subject.clone(),
            });
        }
        for keyed in scan.keyed {
            self.keyed.push(PendingCorrelation {
                keyed,
                time: e.event_time,
                event_id: e.event_id.clone(),
                subject: subject.clone(),
            });
        }
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
        let opened = writer.record_alerts(&self.hits, &detection.policy)?;
        Ok(RecordedAlerts { hits: self.hits.len() as u64, opened: opened.len() as u64 })
    }
}

/// What recording an object's hits did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordedAlerts {
    pub hits: u64,
    pub opened: u64,
}
