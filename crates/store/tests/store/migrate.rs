//! `migrate`: an embedded store copied into the scale-out stores reads back the same through
//! every `Store` method, twice copied is once copied, and the copy goes on where it left.

use store::EventStore;
use store::{
    AlertFilter, AlertHit, AlertPolicy, AlertState, AlertSubject, ApiToken, CorrelationWindow, DigestSeen, EventQuery,
    IngestFinding, IntegrationStatus, IntegrityChain, IntegrityFinding, KnownRegion, MessageProblem, ObjectMeta,
    ObjectTotals, Role, Silence, SinkRoute, SqliteStore, Store, User,
};

use crate::event;

fn fill(store: &Store) {
    let mut w = store.writer().unwrap();
    for f in 0..5 {
        w.begin_object(&ObjectMeta::local(format!("f{f}.json.gz"), 10 + f)).unwrap();
        let events: Vec<_> = (0..40)
            .map(|i| {
                let n = f * 40 + i;
                // Ties in time (arrival order decides) and ids of both shapes.
                let id = if n % 3 == 0 { format!("{:08x}-0000-4000-8000-{:012x}", n, n) } else { format!("ev-{n}") };
                event(
                    &id,
                    &format!("2024-01-01T00:{:02}:{:02}Z", n / 60 % 60, n % 7),
                    ["A", "B", "StopLogging"][n as usize % 3],
                )
            })
            .collect();
        w.insert(&mut events.into()).unwrap();
        w.finish_object(&ObjectTotals { records: 40, ..Default::default() }).unwrap();
    }
    let bad = ObjectMeta::local("bad.json.gz", 3);
    w.begin_object(&bad).unwrap();
    w.quarantine_object(&bad, "gzip_truncated", "cut").unwrap();
    let hit = |rule: &str, ids: &[&str]| AlertHit {
        rule_id: rule.into(),
        title: format!("{rule} title"),
        level: "high".into(),
        group_key: "alice".into(),
        event_ids: ids.iter().map(|s| s.to_string()).collect(),
        first_time: 1,
        last_time: 2,
        subject: AlertSubject { principal: "arn:aws:iam::111122223333:user/alice".into(), ..Default::default() },
    };
    let policy = AlertPolicy {
        suppression_ms: 3_600_000,
        routes: vec![SinkRoute { sink: "hook".into(), min_level: "low".into() }],
    };
    w.record_alerts(&[hit("r1", &["ev-1", "00000000-0000-4000-8000-000000000000"]), hit("r2", &["ev-2"])], &policy)
        .unwrap();
    w.save_correlation_windows(&[CorrelationWindow {
        correlation: "c".into(),
        group: "g".into(),
        entries: "[1]".into(),
    }])
    .unwrap();
    w.remember_regions(&[KnownRegion { account: "1".into(), region: "us-east-1".into(), first_seen: 5 }]).unwrap();
    w.commit().unwrap();
    store.state().set_alert_state(2, AlertState::Acknowledged, Some("seen")).unwrap();
    let d = store.state().due_deliveries(i64::MAX, 10).unwrap();
    store.state().delivery_succeeded(d[0].id, 7).unwrap();
    store
        .state()
        .put_user(&User {
            name: "ann".into(),
            role: Role::Admin,
            password_hash: "h".into(),
            created_at: 1,
            updated_at: 2,
        })
        .unwrap();
    store
        .state()
        .create_api_token(&ApiToken {
            id: 0,
            name: "t".into(),
            user: "ann".into(),
            token_hash: vec![1, 2],
            created_at: 3,
            last_used: None,
            expires_at: None,
        })
        .unwrap();
    store
        .state()
        .record_message_problem(&MessageProblem {
            queue: "q".into(),
            message_id: "m".into(),
            reason: "not_json".into(),
            detail: "d".into(),
            body: "{".into(),
            receive_count: 2,
            first_seen: 1,
            last_seen: 2,
        })
        .unwrap();
    store
        .state()
        .record_finding(&IngestFinding {
            kind: "object_missing".into(),
            account: "prod".into(),
            bucket: "b".into(),
            key: "k".into(),
            detail: "x".into(),
            first_seen: 1,
            last_seen: 1,
            occurrences: 1,
        })
        .unwrap();
    store
        .state()
        .record_digest(&DigestSeen {
            account: "prod".into(),
            bucket: "b".into(),
            key: "d".into(),
            size: Some(9),
            seen_at: 4,
        })
        .unwrap();
    store
        .state()
        .put_integration_status(&IntegrationStatus {
            account: "prod".into(),
            region: "us-east-1".into(),
            notifications: 3,
            updated_at: 9,
            ..Default::default()
        })
        .unwrap();
    store
        .state()
        .record_integrity_chains(&[IntegrityChain {
            account: "prod".into(),
            account_id: "1".into(),
            region: "us-east-1".into(),
            trail: "t".into(),
            newest_key: Some("k".into()),
            newest_end: Some(5),
            newest_log: None,
            verified_at: 6,
        }])
        .unwrap();
    store
        .state()
        .record_integrity_findings(&[IntegrityFinding {
            account: "prod".into(),
            kind: "log_modified".into(),
            key: "k".into(),
            detail: "d".into(),
            first_seen: 1,
            last_seen: 2,
        }])
        .unwrap();
    store
        .state()
        .set_silence(&Silence {
            account: "prod".into(),
            account_id: "1".into(),
            region: "us-east-1".into(),
            what: "logs".into(),
            since: 3,
            alert_id: Some(1),
        })
        .unwrap();
}

/// Everything a store answers, as text.
fn everything(s: &Store) -> Vec<String> {
    let all = AlertFilter::default();
    let alerts = s.state().alerts(&all).unwrap();
    vec![
        format!("{:?}", s.events().search(&EventQuery::default()).unwrap()),
        format!(
            "{:?}",
            s.events()
                .search(&EventQuery { event_name: Some("StopLogging".into()), limit: Some(7), ..Default::default() })
                .unwrap()
        ),
        format!("{:?}", s.stats().unwrap()),
        format!("{:?}", s.state().ledger_entries("local", "").unwrap()),
        format!("{:?}", s.state().quarantined().unwrap()),
        format!("{alerts:?}"),
        format!("{:?}", alerts.iter().map(|a| s.state().alert_event_ids(a.id).unwrap()).collect::<Vec<_>>()),
        format!("{:?}", alerts.iter().map(|a| s.state().deliveries(a.id).unwrap()).collect::<Vec<_>>()),
        format!("{:?}", s.state().rule_hits().unwrap()),
        format!("{:?}", s.state().correlation_windows().unwrap()),
        format!("{:?}", s.state().known_regions().unwrap()),
        format!("{:?}", s.state().users().unwrap()),
        format!("{:?}", s.state().api_tokens(None).unwrap()),
        format!("{:?}", s.state().message_problems().unwrap()),
        format!("{:?}", s.state().findings().unwrap()),
        format!("{:?}", s.state().digests_seen().unwrap()),
        format!("{:?}", s.state().integration_status().unwrap()),
        format!("{:?}", s.state().integrity_chains().unwrap()),
        format!("{:?}", s.state().integrity_findings().unwrap()),
        format!("{:?}", s.state().silences().unwrap()),
        format!("{:?}", s.events().principals_related("arn:aws:iam::111122223333:user/alice", 10).unwrap()),
        format!("{:?}", s.events().event("ev-7").unwrap()),
    ]
}

#[test]
fn a_migrated_store_answers_like_the_original() {
    let Some(target) = store::testing::scaleout() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let source = Store::from(SqliteStore::open(&path).unwrap());
    fill(&source);
    let want = everything(&source);
    let report = store::migrate::sqlite_to_scaleout(&path, &target, &mut |_| {}).unwrap();
    assert_eq!(report.events, 200);
    assert_eq!(everything(&target.store()), want);
    // Again: nothing doubles.
    store::migrate::sqlite_to_scaleout(&path, &target, &mut |_| {}).unwrap();
    assert_eq!(everything(&target.store()), want);
    // New work continues after the copied ids and arrivals.
    let mut w = target.store().writer().unwrap();
    w.begin_object(&ObjectMeta::local("later.json.gz", 1)).unwrap();
    w.insert(&mut vec![event("later-1", "2024-01-01T00:00:00Z", "A")].into()).unwrap();
    w.finish_object(&ObjectTotals { records: 1, ..Default::default() }).unwrap();
    let hit = AlertHit {
        rule_id: "r3".into(),
        title: "t".into(),
        level: "low".into(),
        group_key: "g".into(),
        event_ids: vec!["later-1".into()],
        first_time: 1,
        last_time: 1,
        subject: AlertSubject::default(),
    };
    let opened = w.record_alerts(&[hit], &AlertPolicy::default()).unwrap();
    w.commit().unwrap();
    assert_eq!(opened, vec![3]);
    let rows = target.events().search(&EventQuery { since: Some(0), ..Default::default() }).unwrap();
    let later = rows.iter().find(|r| r.event_id == "later-1").unwrap();
    assert!(rows.iter().all(|r| r.event_id == "later-1" || r.row < later.row), "arrival numbers continue");
    let (_, id) = (
        0,
        target
            .state()
            .create_api_token(&ApiToken {
                id: 0,
                name: "n".into(),
                user: "ann".into(),
                token_hash: vec![9],
                created_at: 1,
                last_used: None,
                expires_at: None,
            })
            .unwrap(),
    );
    assert_eq!(id, 2);
}

/// Arrival positions are each store's own: compare events without them.
fn without_positions(answers: Vec<String>) -> Vec<String> {
    let row = regex_lite_row();
    answers.into_iter().map(|a| row(&a)).collect()
}

/// Replaces every `row: <number>` (an EventRow's arrival position) with `row: _`.
fn regex_lite_row() -> impl Fn(&str) -> String {
    |text: &str| {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("row: ") {
            out.push_str(&rest[..at + 5]);
            rest = &rest[at + 5..];
            let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '-').unwrap_or(rest.len());
            out.push('_');
            rest = &rest[digits..];
        }
        out.push_str(rest);
        out
    }
}

#[test]
fn sqlite_to_scaleout_and_back_round_trips() {
    let Some(middle) = store::testing::scaleout() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let source = Store::from(SqliteStore::open(&path).unwrap());
    fill(&source);
    let want = without_positions(everything(&source));
    store::migrate::sqlite_to_scaleout(&path, &middle, &mut |_| {}).unwrap();
    let back = dir.path().join("b.db");
    let report = store::migrate::scaleout_to_sqlite(&middle, &back, &mut |_| {}).unwrap();
    assert_eq!(report.events, 200);
    let copy = Store::from(SqliteStore::open(&back).unwrap());
    let got = without_positions(everything(&copy));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "answer {i} differs after the round trip");
    }
    // Arrival order survived: newest first with ties broken the same way.
    let ids = |s: &Store| {
        s.events().search(&EventQuery::default()).unwrap().into_iter().map(|r| r.event_id).collect::<Vec<_>>()
    };
    assert_eq!(ids(&copy), ids(&source));
    // New ids continue after the copied ones, and the target refuses a second copy.
    let mut w = copy.writer().unwrap();
    w.begin_object(&ObjectMeta::local("later.json.gz", 1)).unwrap();
    w.insert(&mut vec![event("later-1", "2024-02-01T00:00:00Z", "StopLogging")].into()).unwrap();
    w.finish_object(&ObjectTotals { records: 1, ..Default::default() }).unwrap();
    w.commit().unwrap();
    assert!(copy.state().ledger_entry("local", "later.json.gz").unwrap().is_some());
    assert!(store::migrate::scaleout_to_sqlite(&middle, &back, &mut |_| {}).is_err());
}
