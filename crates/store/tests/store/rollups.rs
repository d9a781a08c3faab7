//! Summaries of time ranges read the hourly rollups; they must say exactly what reading the
//! events says, after undone objects, duplicates, out-of-order times and retention.

use model::{timefmt::format_millis, ParsedEvent};
use proptest::prelude::*;
use store::{Dimension, EventQuery, EventStore, ObjectMeta, ObjectTotals, RetentionPolicy, SqliteStore, SummarySpec};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
const BASE: i64 = 1_700_006_400_000; // an hour boundary

/// A small deterministic generator: the proptest case picks its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Rank in `0..n`, heavy-tailed: rank 0 is drawn about half the time.
    fn zipf(&mut self, n: u64) -> u64 {
        let mut r = 0;
        while r + 1 < n && self.below(100) < 55 {
            r += 1 + self.below(2) * r;
        }
        r.min(n - 1)
    }
}

fn record(i: usize, rng: &mut Rng, hours: i64) -> ParsedEvent {
    let time = BASE + rng.below((hours * HOUR) as u64) as i64;
    let account = ["111122223333", "444455556666", "777788889999"][rng.below(3) as usize];
    let error = match rng.below(10) {
        0 => r#","errorCode":"AccessDenied""#.to_string(),
        1 => format!(r#","errorCode":"Throttling{}""#, rng.zipf(5)),
        _ => String::new(),
    };
    ParsedEvent::from_json(&format!(
        r#"{{"eventID":"ev-{i}","eventTime":"{}","eventName":"Call{}","eventSource":"svc{}.amazonaws.com",
        "sourceIPAddress":"198.51.{}.{}","recipientAccountId":"{account}","awsRegion":"{}",
        "userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::{account}:user/u{}","userName":"u{}"}}{error}}}"#,
        format_millis(time),
        rng.zipf(25),
        rng.zipf(4),
        rng.zipf(3),
        rng.zipf(300),
        ["us-east-1", "eu-west-1"][rng.below(2) as usize],
        rng.zipf(60),
        rng.zipf(60),
    ))
    .unwrap()
}

/// Writes `events` as objects of random sizes; some are quarantined midway (undone), some
/// repeat earlier records. Returns the events stored.
fn fill(store: &dyn EventStore, events: &[ParsedEvent], rng: &mut Rng) -> Vec<ParsedEvent> {
    let mut stored: Vec<ParsedEvent> = Vec::new();
    let mut w = store.writer().unwrap();
    let mut at = 0;
    let mut object = 0;
    while at < events.len() {
        let n = (1 + rng.below(120) as usize).min(events.len() - at);
        let mut chunk = events[at..at + n].to_vec();
        if !stored.is_empty() && rng.below(4) == 0 {
            chunk.push(stored[rng.below(stored.len() as u64) as usize].clone());
        }
        let meta = ObjectMeta::local(format!("f{object}.json.gz"), 1);
        w.begin_object(&meta).unwrap();
        w.insert(&mut chunk.clone().into()).unwrap();
        if rng.below(6) == 0 {
            w.quarantine_object(&meta, "test", "undone").unwrap();
        } else {
            w.finish_object(&ObjectTotals { records: chunk.len() as u64, ..Default::default() }).unwrap();
            for e in &events[at..at + n] {
                stored.push(e.clone());
            }
        }
        if rng.below(5) == 0 {
            w.commit().unwrap();
        }
        at += n;
        object += 1;
    }
    w.commit().unwrap();
    stored
}

fn spec(bucket_hours: i64, series: Dimension, top_n: usize) -> SummarySpec {
    SummarySpec {
        bucket_ms: bucket_hours * HOUR,
        series: Some(series),
        tops: vec![
            Dimension::EventName,
            Dimension::Principal,
            Dimension::ErrorCode,
            Dimension::SourceIp,
            Dimension::EventSource,
        ],
        top_n,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A summary on time alone (rollups) equals the same summary through a filter that
    /// matches every event (blocks), and counts the events stored.
    #[test]
    fn rollups_summarize_as_the_events_do(
        seed in any::<u64>(),
        n in 50usize..1500,
        hours in 1i64..8,
        retention in any::<bool>(),
        queries in prop::collection::vec(
            (proptest::option::of(0i64..9 * 60), proptest::option::of(0i64..9 * 60), 1i64..4, any::<bool>(), 1usize..12),
            1..6,
        ),
    ) {
        let mut rng = Rng(seed);
        let events: Vec<ParsedEvent> = (0..n).map(|i| record(i, &mut rng, hours)).collect();
        let store = SqliteStore::open_in_memory().unwrap();
        let mut stored = fill(&store, &events, &mut rng);
        if retention {
            // The cutoff falls inside an hour: that hour's first and last become unknown.
            let cutoff = BASE + (hours * HOUR) / 3 + 1234;
            let policy = RetentionPolicy { days: Some(1), ..Default::default() };
            crate::retain_all(&store, &policy, cutoff + DAY, 3);
            stored.retain(|e| e.event_time >= cutoff);
        }
        for (since, until, bucket, by_region, top_n) in queries {
            let q = EventQuery {
                since: since.map(|m| BASE + m * 60_000 + 17),
                until: until.map(|m| BASE + m * 60_000 + 29_999),
                ..Default::default()
            };
            let series = if by_region { Dimension::Region } else { Dimension::Account };
            let spec = spec(bucket, series, top_n);
            let rolled = store.summarize(&q, &spec).unwrap();
            let scanned = store.summarize(&EventQuery { event_name: Some("*".into()), ..q.clone() }, &spec).unwrap();
            prop_assert_eq!(&rolled, &scanned, "query {:?}", q);
            let expected = stored
                .iter()
                .filter(|e| q.since.is_none_or(|s| e.event_time >= s) && q.until.is_none_or(|u| e.event_time <= u))
                .count();
            prop_assert_eq!(rolled.events, expected as u64);
        }
    }
}

/// Values far above the heavy threshold in every hour: the top is found from the heavy
/// counts and a few lookups, and still equals a count of the events.
#[test]
fn busy_hours_give_exact_tops() {
    let mut rng = Rng(7);
    let events: Vec<ParsedEvent> = (0..20_000).map(|i| record(i, &mut rng, 5)).collect();
    let store = SqliteStore::open_in_memory().unwrap();
    let stored = fill(&store, &events, &mut rng);
    let q = EventQuery { since: Some(BASE), until: Some(BASE + 5 * HOUR - 1), ..Default::default() };
    let summary = store.summarize(&q, &spec(1, Dimension::Account, 3)).unwrap();
    let mut ips: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for e in &stored {
        *ips.entry(e.source_ip.as_deref().unwrap()).or_default() += 1;
    }
    let mut want: Vec<(String, u64)> = ips.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    want.truncate(3);
    assert_eq!(summary.top(Dimension::SourceIp), want.as_slice());
    assert_eq!(summary.events, stored.len() as u64);
}

/// A store from before rollups (schema 12) gets them from its blocks when it is opened.
#[test]
fn an_older_store_gets_its_rollups_on_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut rng = Rng(11);
    let events: Vec<ParsedEvent> = (0..3000).map(|i| record(i, &mut rng, 4)).collect();
    let q = EventQuery { since: Some(BASE + 1000), until: Some(BASE + 3 * HOUR + 5000), ..Default::default() };
    let spec = spec(1, Dimension::Region, 5);
    let before = {
        let store = SqliteStore::open(&path).unwrap();
        fill(&store, &events, &mut rng);
        store.summarize(&q, &spec).unwrap()
    };
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE rollups; DROP TABLE rollup_hours; ALTER TABLE blocks DROP COLUMN frames;
             DROP TABLE raw_dictionaries; DROP INDEX alert_events_by_event; PRAGMA user_version = 12;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let after = store.summarize(&q, &spec).unwrap();
    assert!(before.events > 1000, "{before:?}");
    assert_eq!(after, before);
    let scanned = store.summarize(&EventQuery { event_name: Some("*".into()), ..q }, &spec).unwrap();
    assert_eq!(after, scanned);
}
