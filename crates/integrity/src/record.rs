//! What a validation run leaves in the store: the chains it verified, its findings (each once),
//! an alert for every new finding through the normal alert path, and the silence of regions
//! whose logs or digests stopped arriving.
//!
//! Alerts carry no CloudTrail event; each finding is attached as a pseudo-event
//! `integrity:<KIND>:<key>`, so a finding seen again on a later sweep is not counted again
//! (an event counts once per rule) while distinct findings of one kind and region group into
//! one alert within the suppression window.

use model::timefmt::format_millis;
use model::{EpochMillis, TrailKey};
use store::integrity::{SILENT_DIGESTS, SILENT_LOGS};
use store::{
    AlertHit, AlertPolicy, AlertState, AlertSubject, IntegrityChain, IntegrityFinding, Silence, Store, StoreError,
};

use crate::{FindingKind, Report};

/// The rule id integrity alerts of `kind` carry.
pub fn rule_id(kind: FindingKind) -> String {
    format!("trailwatch-integrity-{}", kind.as_str().to_ascii_lowercase().replace('_', "-"))
}

pub const SILENCE_RULE_ID: &str = "trailwatch-delivery-silence";

pub fn title(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::LogModified => "CloudTrail log file modified after delivery",
        FindingKind::LogMissing => "CloudTrail log file deleted",
        FindingKind::DigestInvalidSignature => "CloudTrail digest signature invalid",
        FindingKind::DigestMissing => "CloudTrail digest file deleted",
        FindingKind::DigestUnreadable => "CloudTrail digest file unreadable",
        FindingKind::UnknownKey => "CloudTrail digest signed by an unknown key",
        FindingKind::DigestMoved => "CloudTrail digest file moved",
        FindingKind::ChainBroken => "CloudTrail digest chain broken",
        FindingKind::ChainRestart => "CloudTrail digest chain restarted (logging or validation was off)",
        FindingKind::UnlistedLog => "CloudTrail log file no digest lists",
        FindingKind::DeliveryGap => "CloudTrail digest delivery gap",
    }
}

/// Tampering is high; the warnings are medium.
pub fn level(kind: FindingKind) -> &'static str {
    if kind.is_warning() {
        "medium"
    } else {
        "high"
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Findings not seen before.
    pub new_findings: Vec<IntegrityFinding>,
    /// Alerts opened for them.
    pub alerts_opened: Vec<i64>,
}

/// Records a run's chains and findings for the configured account `account`, and alerts on
/// the findings not recorded before.
pub fn record(
    store: &Store,
    account: &str,
    report: &Report,
    policy: &AlertPolicy,
    now: EpochMillis,
) -> Result<Recorded, StoreError> {
    let chains: Vec<IntegrityChain> = report
        .chains
        .iter()
        .map(|c| IntegrityChain {
            account: account.to_string(),
            account_id: c.account.clone(),
            region: c.region.clone(),
            trail: c.trail.clone(),
            newest_key: c.newest_key.clone(),
            newest_end: c.newest_end,
            newest_log: c.newest_log,
            verified_at: now,
        })
        .collect();
    store.state().record_integrity_chains(&chains)?;
    let findings: Vec<IntegrityFinding> = report
        .findings
        .iter()
        .map(|f| IntegrityFinding {
            account: account.to_string(),
            kind: f.kind.as_str().to_string(),
            key: f.key.clone(),
            detail: f.detail.clone(),
            first_seen: now,
            last_seen: now,
        })
        .collect();
    let new_findings = store.state().record_integrity_findings(&findings)?;
    let hits: Vec<AlertHit> = new_findings.iter().filter_map(|f| hit(f, now)).collect();
    let alerts_opened = alert(store, &hits, policy)?;
    Ok(Recorded { new_findings, alerts_opened })
}

fn hit(f: &IntegrityFinding, now: EpochMillis) -> Option<AlertHit> {
    let kind = FindingKind::parse(&f.kind)?;
    let parsed = TrailKey::parse(&f.key).ok();
    let account_id = parsed.as_ref().map(|k| k.account_id.clone());
    let region = parsed.as_ref().map(|k| k.region.clone());
    Some(AlertHit {
        rule_id: rule_id(kind),
        title: title(kind).to_string(),
        level: level(kind).to_string(),
        group_key: format!("{}/{}", account_id.as_deref().unwrap_or(&f.account), region.as_deref().unwrap_or("")),
        event_ids: vec![format!("integrity:{}:{}", f.kind, f.key)],
        first_time: now,
        last_time: now,
        subject: AlertSubject {
            principal: format!("{}: {}", f.kind, f.key),
            account: account_id,
            region,
            event_source: Some("cloudtrail.amazonaws.com".into()),
            event_name: Some(f.kind.clone()),
            ..Default::default()
        },
    })
}

fn alert(store: &Store, hits: &[AlertHit], policy: &AlertPolicy) -> Result<Vec<i64>, StoreError> {
    if hits.is_empty() {
        return Ok(Vec::new());
    }
    let mut writer = store.writer()?;
    let opened = writer.record_alerts(hits, policy)?;
    writer.commit()?;
    Ok(opened)
}

/// How long logs and digests may stay away before a region counts as silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace {
    pub logs: i64,
    pub digests: i64,
}

impl Default for Grace {
    fn default() -> Self {
        // Digests come hourly, even for an idle region; logs only while there is activity.
        Grace { logs: 6 * 3_600_000, digests: 2 * 3_600_000 }
    }
}

/// A region that went silent or spoke again in this check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceChange {
    pub silence: Silence,
    pub started: bool,
}

/// Raises an alert for each account/region whose newest log or digest is older than the grace,
/// and resolves it once delivery resumes.
pub fn check_silence(
    store: &Store,
    now: EpochMillis,
    grace: Grace,
    policy: &AlertPolicy,
) -> Result<Vec<SilenceChange>, StoreError> {
    use std::collections::BTreeMap;
    // Newest delivery per (account, account id, region, what), over the region's trails.
    let mut newest: BTreeMap<(String, String, String, &'static str), EpochMillis> = BTreeMap::new();
    for c in store.state().integrity_chains()? {
        for (what, t) in [(SILENT_DIGESTS, c.newest_end), (SILENT_LOGS, c.newest_log)] {
            if let Some(t) = t {
                let e = newest.entry((c.account.clone(), c.account_id.clone(), c.region.clone(), what)).or_insert(t);
                *e = (*e).max(t);
            }
        }
    }
    let silent: Vec<Silence> = store.state().silences()?;
    let mut changes = Vec::new();
    for ((account, account_id, region, what), last) in newest {
        let limit = if what == SILENT_LOGS { grace.logs } else { grace.digests };
        let key = Silence {
            account: account.clone(),
            account_id: account_id.clone(),
            region: region.clone(),
            what: what.to_string(),
            since: last,
            alert_id: None,
        };
        let known = silent.iter().find(|s| {
            s.account == key.account && s.account_id == key.account_id && s.region == key.region && s.what == key.what
        });
        if now - last > limit {
            if known.is_some_and(|s| s.since == last) {
                continue;
            }
            let hit = AlertHit {
                rule_id: SILENCE_RULE_ID.into(),
                title: format!("CloudTrail {what} stopped arriving"),
                level: "high".into(),
                group_key: format!("{account_id}/{region}/{what}"),
                event_ids: vec![format!("silence:{account_id}/{region}/{what}/{last}")],
                first_time: last,
                last_time: now,
                subject: AlertSubject {
                    principal: format!("no {what} since {} in {account_id}/{region}", format_millis(last)),
                    account: Some(account_id.clone()),
                    region: Some(region.clone()),
                    event_source: Some("cloudtrail.amazonaws.com".into()),
                    ..Default::default()
                },
            };
            let opened = alert(store, &[hit], policy)?;
            let silence = Silence { alert_id: opened.first().copied(), ..key };
            store.state().set_silence(&silence)?;
            changes.push(SilenceChange { silence, started: true });
        } else if known.is_some() {
            if let Some(silence) = store.state().clear_silence(&key)? {
                if let Some(id) = silence.alert_id {
                    let comment = format!("{what} arriving again (newest {})", format_millis(last));
                    store.state().set_alert_state(id, AlertState::Resolved, Some(&comment))?;
                }
                changes.push(SilenceChange { silence, started: false });
            }
        }
    }
    Ok(changes)
}
