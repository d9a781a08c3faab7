//! What validation leaves in the store: findings once each with one alert per new finding
//! kind and region, and silent regions alerting then resolving.

use integrity::record::{check_silence, record, Grace, SILENCE_RULE_ID};
use integrity::{validate_local, Options, PublicKeys};
use sim::{SimConfig, Tamper};
use store::{AlertFilter, AlertPolicy, AlertState, IntegrityChain, SqliteStore, Store};

const HOUR: i64 = 3_600_000;

#[test]
fn findings_are_recorded_and_alerted_once() {
    let dir = tempfile::tempdir().unwrap();
    let tampers = [Tamper::LogDeleted, Tamper::LogInjected];
    let config = SimConfig {
        accounts: 1,
        regions: vec!["us-east-1".into()],
        hours: sim::digests::hours_needed(&tampers),
        events: 3000,
        digests: true,
        tampers: tampers.to_vec(),
        ..SimConfig::default()
    };
    sim::simulate(&config, dir.path()).unwrap();
    let keys = PublicKeys::read(&dir.path().join("list-public-keys.json")).unwrap();
    let report = validate_local(dir.path(), &keys, &Options::default()).unwrap();
    assert_eq!(report.findings.len(), 2, "{:#?}", report.findings);

    let store = Store::from(SqliteStore::open_in_memory().unwrap());
    let first = record(&store, "prod", &report, &AlertPolicy::default(), 1_000).unwrap();
    assert_eq!(first.new_findings.len(), 2);
    assert_eq!(first.alerts_opened.len(), 2, "one alert per kind");
    let alerts = store.state().alerts(&AlertFilter::default()).unwrap();
    let rules: std::collections::BTreeSet<&str> = alerts.iter().map(|a| a.rule_id.as_str()).collect();
    assert_eq!(rules, ["trailwatch-integrity-log-missing", "trailwatch-integrity-unlisted-log"].into());
    assert!(alerts
        .iter()
        .all(|a| a.level == "high" && a.count == 1 && a.subject.region.as_deref() == Some("us-east-1")));
    assert_eq!(store.state().integrity_chains().unwrap().len(), 1);

    // The same findings on the next sweep: nothing new, no alert grows.
    let again = record(&store, "prod", &report, &AlertPolicy::default(), 2_000).unwrap();
    assert!(again.new_findings.is_empty() && again.alerts_opened.is_empty());
    assert!(store.state().alerts(&AlertFilter::default()).unwrap().iter().all(|a| a.count == 1));
    assert!(store.state().integrity_findings().unwrap().iter().all(|f| f.first_seen == 1_000 && f.last_seen == 2_000));
}

#[test]
fn a_silent_region_alerts_and_resolves_when_delivery_resumes() {
    let store = Store::from(SqliteStore::open_in_memory().unwrap());
    let chain = |newest_end: i64, newest_log: i64| IntegrityChain {
        account: "prod".into(),
        account_id: "111122223333".into(),
        region: "eu-west-1".into(),
        trail: "main".into(),
        newest_key: Some("k".into()),
        newest_end: Some(newest_end),
        newest_log: Some(newest_log),
        verified_at: 0,
    };
    let grace = Grace { logs: 6 * HOUR, digests: 2 * HOUR };
    let policy = AlertPolicy::default();
    let now = 100 * HOUR;
    store.state().record_integrity_chains(&[chain(now - HOUR, now - 5 * HOUR)]).unwrap();
    assert!(check_silence(&store, now, grace, &policy).unwrap().is_empty(), "within both graces");

    // Digests stop (3 h), logs too (7 h): two silences, two alerts.
    let later = now + 2 * HOUR;
    let started = check_silence(&store, later, grace, &policy).unwrap();
    assert_eq!(started.iter().filter(|c| c.started).count(), 2, "{started:?}");
    let open =
        store.state().alerts(&AlertFilter { rule_id: Some(SILENCE_RULE_ID.into()), ..Default::default() }).unwrap();
    assert_eq!(open.len(), 2);
    assert!(open.iter().all(|a| a.state == AlertState::Open && a.level == "high"));
    // Checking again changes nothing.
    assert!(check_silence(&store, later + 60_000, grace, &policy).unwrap().is_empty());

    // A digest arrives: the digest silence ends and its alert is resolved; logs stay silent.
    store.state().record_integrity_chains(&[chain(later - 10 * 60_000, now - 5 * HOUR)]).unwrap();
    let changes = check_silence(&store, later, grace, &policy).unwrap();
    assert_eq!(changes.len(), 1);
    assert!(!changes[0].started && changes[0].silence.what == "digests");
    let alerts =
        store.state().alerts(&AlertFilter { rule_id: Some(SILENCE_RULE_ID.into()), ..Default::default() }).unwrap();
    let digests = alerts.iter().find(|a| a.title.contains("digests")).unwrap();
    assert_eq!(digests.state, AlertState::Resolved);
    assert!(digests.comment.as_deref().unwrap_or("").contains("arriving again"));
    assert_eq!(alerts.iter().find(|a| a.title.contains("logs")).unwrap().state, AlertState::Open);
    assert_eq!(store.state().silences().unwrap().len(), 1);
}
