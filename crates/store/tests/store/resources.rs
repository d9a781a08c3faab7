//! Resource history through the resource postings returns exactly what reading every event
//! of the range and asking `touches` returns.

use model::{timefmt::format_millis, ParsedEvent};
use proptest::prelude::*;
use store::{EventQuery, EventRow, EventStore, ObjectMeta, ObjectTotals, RetentionPolicy, SqliteStore};

const BASE: i64 = 1_700_006_400_000;
const DAY: i64 = 86_400_000;

const INSTANCES: &[&str] = &["i-0abc", "i-0def", "i-9"];
const BUCKETS: &[&str] = &["logs", "data-lake", "i-0abc"];

/// A record naming some of the resources, in the places CloudTrail puts them.
fn record(i: usize, time: i64, shape: u8, a: usize, b: usize) -> ParsedEvent {
    let instance = INSTANCES[a % INSTANCES.len()];
    let bucket = BUCKETS[b % BUCKETS.len()];
    let body = match shape % 5 {
        0 => format!(
            r#""eventName":"StopInstances","requestParameters":{{"instancesSet":{{"items":[{{"instanceId":"{instance}"}}]}}}},
            "responseElements":{{"instancesSet":{{"items":[{{"instanceId":"{instance}","currentState":{{"name":"stopping"}}}}]}}}}"#
        ),
        1 => format!(
            r#""eventName":"GetObject","requestParameters":{{"bucketName":"{bucket}","key":"a/{instance}.txt"}},
            "resources":[{{"ARN":"arn:aws:s3:::{bucket}/a/{instance}.txt","type":"AWS::S3::Object"}},{{"ARN":"arn:aws:s3:::{bucket}"}}]"#
        ),
        2 => format!(
            r#""eventName":"DescribeInstances","resources":[{{"ARN":"arn:aws:ec2:us-east-1:111122223333:instance/{instance}"}}]"#
        ),
        // Named only in free text, or under a key that does not name resources: not a hit.
        3 => format!(
            r#""eventName":"PutMetricData","requestParameters":{{"description":"about {instance}","state":"{bucket}"}}"#
        ),
        _ => r#""eventName":"GetCallerIdentity""#.to_string(),
    };
    ParsedEvent::from_json(&format!(
        r#"{{"eventID":"ev-{i}","eventTime":"{}","eventSource":"ec2.amazonaws.com","awsRegion":"us-east-1",
        "recipientAccountId":"111122223333","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u","userName":"u"}},{body}}}"#,
        format_millis(time)
    ))
    .unwrap()
}

/// The reference: every event of the range, newest first, tested with `touches`.
fn oracle(store: &SqliteStore, resource: &str, since: i64, limit: usize) -> Vec<EventRow> {
    let q = EventQuery { since: Some(since), ..Default::default() };
    let mut rows = store.search(&q).unwrap();
    rows.retain(|r| model::resources::touches(&r.raw, resource));
    rows.truncate(limit);
    rows
}

fn probes() -> Vec<String> {
    let mut p: Vec<String> = INSTANCES.iter().chain(BUCKETS).map(|s| s.to_string()).collect();
    p.push("arn:aws:ec2:us-east-1:111122223333:instance/i-0abc".into());
    p.push("arn:aws:ec2:eu-west-1:444455556666:instance/i-9".into());
    p.push("arn:aws:s3:::logs".into());
    p.push("arn:aws:s3:::logs/a/i-9.txt".into());
    p.push("a/i-0def.txt".into());
    p.push("instance/i-0abc".into());
    p.push("stopping".into());
    p.push("i-0a".into());
    p
}

fn fill(store: &dyn EventStore, events: &[ParsedEvent], undo_every: usize) {
    let mut w = store.writer().unwrap();
    for (n, chunk) in events.chunks(9).enumerate() {
        let meta = ObjectMeta::local(format!("f{n}.json.gz"), 1);
        w.begin_object(&meta).unwrap();
        w.insert(&mut chunk.to_vec().into()).unwrap();
        if undo_every > 0 && n % undo_every == undo_every - 1 {
            w.quarantine_object(&meta, "test", "undone").unwrap();
        } else {
            w.finish_object(&ObjectTotals { records: chunk.len() as u64, ..Default::default() }).unwrap();
        }
    }
    w.commit().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn resource_history_is_what_a_scan_finds(
        specs in prop::collection::vec((0i64..3 * DAY, any::<u8>(), 0usize..3, 0usize..3), 1..400),
        undo_every in 0usize..5,
        retention in any::<bool>(),
        since in 0i64..3 * DAY,
        limit in 1usize..40,
    ) {
        let events: Vec<ParsedEvent> =
            specs.iter().enumerate().map(|(i, &(t, shape, a, b))| record(i, BASE + t, shape, a, b)).collect();
        let store = SqliteStore::open_in_memory().unwrap();
        fill(&store, &events, undo_every);
        if retention {
            let policy = RetentionPolicy { days: Some(1), ..Default::default() };
            crate::retain_all(&store, &policy, BASE + 2 * DAY, 2);
        }
        for probe in probes() {
            let got = store.resource_events(&probe, BASE + since, limit).unwrap();
            let want = oracle(&store, &probe, BASE + since, limit);
            let ids = |rows: &[EventRow]| rows.iter().map(|r| r.event_id.clone()).collect::<Vec<_>>();
            prop_assert_eq!(ids(&got), ids(&want), "{}", probe);
        }
    }
}

/// Retention takes the expired records' resource postings with them.
#[test]
fn retention_removes_resource_postings() {
    let store = SqliteStore::open_in_memory().unwrap();
    let events: Vec<ParsedEvent> = (0..300).map(|i| record(i, BASE + i as i64 * 1000, 0, 0, 0)).collect();
    fill(&store, &events, 0);
    let dir = tempfile::tempdir().unwrap();
    let count = |store: &SqliteStore| -> i64 {
        let path = dir.path().join(format!("copy{}.db", rand_suffix()));
        store.backup_to(&path).unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM postings WHERE dim = 11", [], |r| r.get(0))
            .unwrap()
    };
    assert!(count(&store) > 0);
    let policy = RetentionPolicy { days: Some(1), ..Default::default() };
    store.apply_retention(&policy, BASE + 3 * DAY, None, 1000).unwrap();
    assert_eq!(store.search(&EventQuery::default()).unwrap().len(), 0);
    assert_eq!(count(&store), 0);
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A store from before the resource postings gets them from its records when opened.
#[test]
fn an_older_store_gets_resource_postings_on_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let events: Vec<ParsedEvent> =
        (0..500).map(|i| record(i, BASE + i as i64 * 60_000, (i % 5) as u8, i % 3, i % 7)).collect();
    {
        let store = SqliteStore::open(&path).unwrap();
        fill(&store, &events, 0);
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DELETE FROM postings WHERE dim = 11; ALTER TABLE blocks DROP COLUMN frames; DROP TABLE raw_dictionaries;
             DROP INDEX alert_events_by_event; DROP TABLE principal_values;
             DROP TABLE principal_counts; DROP INDEX blocks_by_min_time;
             PRAGMA user_version = 13;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    for probe in probes() {
        let got = store.resource_events(&probe, BASE, 1000).unwrap();
        let want = oracle(&store, &probe, BASE, 1000);
        assert_eq!(got, want, "{probe}");
    }
    assert!(!store.resource_events("i-0abc", BASE, 1000).unwrap().is_empty());
}

/// Copies of `events` stored by two writers that both passed the duplicate check before
/// either committed: the scale-out store holds each twice until its parts merge.
fn fill_twice(store: &dyn EventStore, events: &[ParsedEvent]) {
    let mut a = store.writer().unwrap();
    let mut b = store.writer().unwrap();
    for (n, w) in [&mut a, &mut b].into_iter().enumerate() {
        let meta = ObjectMeta::local(format!("copy{n}.json.gz"), 1);
        w.begin_object(&meta).unwrap();
        w.insert(&mut events.to_vec().into()).unwrap();
        w.finish_object(&ObjectTotals { records: events.len() as u64, ..Default::default() }).unwrap();
    }
    a.commit().unwrap();
    b.commit().unwrap();
}

/// The scale-out store's reference: the events of the range, newest first, read back by a
/// search (checked against SQLite elsewhere) once per start, then tested with `touches`.
struct Scan(Vec<EventRow>);

impl Scan {
    fn new(store: &dyn EventStore, since: i64) -> Scan {
        Scan(store.search(&EventQuery { since: Some(since), ..Default::default() }).unwrap())
    }

    fn find(&self, resource: &str, limit: usize) -> Vec<String> {
        let hits = self.0.iter().filter(|r| model::resources::touches(&r.raw, resource));
        hits.take(limit).map(|r| r.event_id.clone()).collect()
    }
}

/// Varied records: every shape, resource and time, from a fixed seed.
fn varied(n: usize, first_id: usize) -> Vec<ParsedEvent> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ n as u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let t = (next() % (3 * DAY as u64)) as i64 / 1000 * 1000;
            record(first_id + i, BASE + t, next() as u8, next() as usize % 3, next() as usize % 3)
        })
        .collect()
}

/// On the scale-out store, resource history through the `resource` search keys finds what a
/// scan finds: every probe (exact ids, ARNs, tails, near misses, free text), several limits
/// and starts (the candidates are read in batches of twice the limit, most of a batch
/// failing confirmation for some probes), with copies not merged yet counted once.
#[test]
fn scaleout_resource_history_is_what_a_scan_finds() {
    let Some(store) = store::testing::scaleout() else { return };
    let events = varied(600, 0);
    fill(store.events(), &events[..400], 3);
    fill_twice(store.events(), &events[400..]);
    let events = store.events();
    let mut hits = 0;
    for since in [BASE, BASE + DAY + 7_000, BASE + 5 * DAY / 2] {
        let scan = Scan::new(events, since);
        for probe in probes() {
            for limit in [1, 3, 25, 1000] {
                let got: Vec<String> =
                    events.resource_events(&probe, since, limit).unwrap().into_iter().map(|r| r.event_id).collect();
                let want = scan.find(&probe, limit);
                assert_eq!(got, want, "{probe} since {since} limit {limit}");
                hits += got.len();
            }
        }
    }
    assert!(hits > 1000, "the probes find events ({hits})");
}

/// A scale-out store from before resource keys (schema 4) gets them from its stored records
/// when this version opens it.
#[test]
fn an_older_scaleout_store_gets_resource_keys_on_upgrade() {
    let Some(urls) = store::testing::scaleout_urls() else { return };
    let (ch_url, pg_url) = store::testing::create_databases(&urls, &store::testing::fresh_name());
    let events = varied(300, 0);
    {
        let old = store::ScaleOutStore::open(&ch_url, &pg_url).unwrap();
        fill(old.events(), &events, 0);
        let ch = old.clickhouse();
        let db = ch.database().to_string();
        // As schema version 4 left the store: no resource keys. On a cluster the mutations
        // go to the replicas' tables.
        let (on_cluster, suffix) = match ch.cluster() {
            Some(c) => (format!(" ON CLUSTER {c}"), "_local"),
            None => (String::new(), ""),
        };
        for (table, condition) in [("event_keys", "dimension = 'resource'"), ("schema_versions", "version >= 5")] {
            let sql = format!("ALTER TABLE {db}.{table}{suffix}{on_cluster} DELETE WHERE {condition}");
            ch.execute(&sql, "forget").unwrap();
        }
        #[derive(serde::Deserialize)]
        struct N {
            n: String,
        }
        let left = || -> String {
            let sql = format!(
                "SELECT toString((SELECT max(version) FROM {db}.schema_versions) * 1000000
                    + (SELECT count() FROM {db}.event_keys WHERE dimension = 'resource')) AS n FORMAT JSONEachRow"
            );
            ch.query_rows::<N>(&sql, "left").unwrap()[0].n.clone()
        };
        let started = std::time::Instant::now();
        while left() != "4000000" {
            assert!(started.elapsed().as_secs() < 60, "the mutations finish");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(old.events().resource_events("i-0abc", BASE, 1000).unwrap().is_empty(), "the keys are gone");
    }
    let upgraded = store::ScaleOutStore::open(&ch_url, &pg_url).unwrap();
    let events = upgraded.events();
    let scan = Scan::new(events, BASE);
    for probe in probes() {
        let got: Vec<String> =
            events.resource_events(&probe, BASE, 1000).unwrap().into_iter().map(|r| r.event_id).collect();
        assert_eq!(got, scan.find(&probe, 1000), "{probe}");
    }
    assert!(!events.resource_events("i-0abc", BASE, 1000).unwrap().is_empty());
}
