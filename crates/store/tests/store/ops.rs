//! The operational tables: problems are counted again, not duplicated; status is replaced.

use store::{DigestSeen, IngestFinding, IntegrationStatus, MessageProblem, SqliteStore, Store};

#[test]
fn message_problems_are_upserted_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db")).unwrap();
    let mut p = MessageProblem {
        queue: "q".into(),
        message_id: "m1".into(),
        reason: "not_json".into(),
        detail: "expected value".into(),
        body: "é".repeat(40_000), // 80 KB: cut below 64 KiB at a char boundary
        receive_count: 1,
        first_seen: 10,
        last_seen: 10,
    };
    store.record_message_problem(&p).unwrap();
    p.receive_count = 3;
    p.last_seen = 20;
    p.first_seen = 20;
    store.record_message_problem(&p).unwrap();
    let got = store.message_problems().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].receive_count, got[0].first_seen, got[0].last_seen), (3, 10, 20));
    assert!(got[0].body.len() <= 64 << 10 && got[0].body.chars().all(|c| c == 'é'));
    store.clear_message_problem("q", "m1").unwrap();
    assert!(store.message_problems().unwrap().is_empty());
}

#[test]
fn findings_count_occurrences_and_digests_are_kept_once() {
    let store = SqliteStore::open_in_memory().unwrap();
    let f = IngestFinding {
        kind: "object_missing".into(),
        account: "prod".into(),
        bucket: "b".into(),
        key: "k".into(),
        detail: "NoSuchKey".into(),
        first_seen: 5,
        last_seen: 5,
        occurrences: 1,
    };
    store.record_finding(&f).unwrap();
    store.record_finding(&IngestFinding { last_seen: 9, ..f.clone() }).unwrap();
    let got = store.findings().unwrap();
    assert_eq!((got.len(), got[0].occurrences, got[0].first_seen, got[0].last_seen), (1, 2, 5, 9));

    let d = DigestSeen { account: "prod".into(), bucket: "b".into(), key: "d1".into(), size: Some(7), seen_at: 1 };
    store.record_digest(&d).unwrap();
    store.record_digest(&DigestSeen { seen_at: 2, ..d.clone() }).unwrap();
    assert_eq!(store.digests_seen().unwrap(), vec![d]);
}

#[test]
fn integration_status_is_replaced_per_account_and_region() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = IntegrationStatus { account: "prod".into(), region: "us-east-1".into(), objects: 1, ..Default::default() };
    store.put_integration_status(&a).unwrap();
    store.put_integration_status(&IntegrationStatus { objects: 2, ..a.clone() }).unwrap();
    store.put_integration_status(&IntegrationStatus { region: String::new(), ..a.clone() }).unwrap();
    let got = store.integration_status().unwrap();
    assert_eq!(got.iter().map(|s| (s.region.as_str(), s.objects)).collect::<Vec<_>>(), vec![("", 1), ("us-east-1", 2)]);
}
