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
        queries in time_queries(),
    ) {
        let mut rng = Rng(seed);
        let events: Vec<ParsedEvent> = (0..n).map(|i| record(i, &mut rng, hours)).collect();
        let store = SqliteStore::open_in_memory().unwrap();
        let mut stored = fill(&store, &events, &mut rng);
        if retention {
            retain_a_third(&store, &mut stored, hours);
        }
        check_time_summaries(&store, &stored, &queries)?;
    }
}

proptest! {
    // Each case creates databases on the servers: fewer cases, the same property.
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// The scale-out store's hour counts say what reading its events says: after undone
    /// objects, duplicates, events arriving after an hour was counted, and retention.
    #[test]
    fn scaleout_hour_counts_summarize_as_the_events_do(
        seed in any::<u64>(),
        n in 50usize..1500,
        hours in 1i64..8,
        retention in any::<bool>(),
        queries in time_queries(),
    ) {
        let Some(scaleout) = store::testing::scaleout() else { return Ok(()) };
        let store = scaleout.events();
        let mut rng = Rng(seed);
        let events: Vec<ParsedEvent> = (0..n).map(|i| record(i, &mut rng, hours)).collect();
        let whole = EventQuery { since: Some(BASE), until: Some(BASE + 9 * HOUR - 1), ..Default::default() };
        // Half, counted; then the rest arrives in hours already counted.
        let mut stored = fill(store, &events[..n / 2], &mut rng);
        let counted = store.summarize(&whole, &spec(1, Dimension::Account, 3)).unwrap();
        prop_assert_eq!(counted.events, stored.len() as u64);
        let first_half = stored.len();
        stored.extend(fill(store, &events[n / 2..], &mut rng));
        if seed % 2 == 0 {
            // As serve's task does: every marked hour counted ahead of the summaries. (The
            // second half stores nothing when its only object is undone.)
            let marked = store.refresh_counts().unwrap();
            prop_assert_eq!(marked > 0, stored.len() > first_half, "the new events' hours were marked");
            prop_assert_eq!(store.refresh_counts().unwrap(), 0, "and are counted");
        }
        let counted = store.summarize(&whole, &spec(1, Dimension::Region, 3)).unwrap();
        prop_assert_eq!(counted.events, stored.len() as u64);
        if retention {
            retain_a_third(store, &mut stored, hours);
        }
        check_time_summaries(store, &stored, &queries)?;
    }
}

/// (since, until) in minutes after `BASE`, the bucket in hours, by region or account (no
/// series when `top_n` is a multiple of 3), `top_n`.
type TimeQuery = (Option<i64>, Option<i64>, i64, bool, usize);

fn time_queries() -> impl Strategy<Value = Vec<TimeQuery>> {
    prop::collection::vec(
        (proptest::option::of(0i64..9 * 60), proptest::option::of(0i64..9 * 60), 1i64..4, any::<bool>(), 1usize..12),
        1..6,
    )
}

/// Applies retention with a cutoff a third into `hours` (inside an hour: that hour's first
/// and last become unknown) and forgets the events it deletes from `stored`.
fn retain_a_third(store: &dyn EventStore, stored: &mut Vec<ParsedEvent>, hours: i64) {
    let cutoff = BASE + (hours * HOUR) / 3 + 1234;
    let policy = RetentionPolicy { days: Some(1), ..Default::default() };
    crate::retain_all(store, &policy, cutoff + DAY, 3);
    stored.retain(|e| e.event_time >= cutoff);
}

/// Summaries on time alone (`store`'s counts kept beside the events) equal the same
/// summaries through a filter every event matches (read from the events), and count the
/// events stored.
fn check_time_summaries(
    store: &dyn EventStore,
    stored: &[ParsedEvent],
    queries: &[TimeQuery],
) -> Result<(), TestCaseError> {
    for &(since, until, bucket, by_region, top_n) in queries {
        let q = EventQuery {
            since: since.map(|m| BASE + m * 60_000 + 17),
            until: until.map(|m| BASE + m * 60_000 + 29_999),
            ..Default::default()
        };
        let series = if by_region { Dimension::Region } else { Dimension::Account };
        let mut spec = spec(bucket, series, top_n);
        if top_n % 3 == 0 {
            spec.series = None;
        }
        let rolled = store.summarize(&q, &spec).unwrap();
        let scanned = store.summarize(&EventQuery { event_name: Some("*".into()), ..q.clone() }, &spec).unwrap();
        prop_assert_eq!(&rolled, &scanned, "query {:?}", q);
        let expected = stored
            .iter()
            .filter(|e| q.since.is_none_or(|s| e.event_time >= s) && q.until.is_none_or(|u| e.event_time <= u))
            .count();
        prop_assert_eq!(rolled.events, expected as u64);
    }
    Ok(())
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

/// A store from before rollups (schema 12) gets them, and the principal rollups (18), from
/// its blocks when it is opened.
#[test]
fn an_older_store_gets_its_rollups_on_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut rng = Rng(11);
    let events: Vec<ParsedEvent> = (0..3000).map(|i| record(i, &mut rng, 4)).collect();
    let q = EventQuery { since: Some(BASE + 1000), until: Some(BASE + 3 * HOUR + 5000), ..Default::default() };
    let spec = spec(1, Dimension::Region, 5);
    let user = EventQuery { principal: Some("arn:aws:iam::111122223333:user/u0".into()), ..Default::default() };
    let (before, user_before) = {
        let store = SqliteStore::open(&path).unwrap();
        fill(&store, &events, &mut rng);
        (store.summarize(&q, &spec).unwrap(), store.summarize(&user, &SummarySpec::principal_page(DAY, 5)).unwrap())
    };
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE rollups; DROP TABLE rollup_hours; ALTER TABLE blocks DROP COLUMN frames;
             DROP TABLE raw_dictionaries; DROP INDEX alert_events_by_event;
             DROP TABLE principal_values;
             DROP TABLE principal_counts; DROP INDEX blocks_by_min_time; PRAGMA user_version = 12;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let after = store.summarize(&q, &spec).unwrap();
    assert!(before.events > 1000, "{before:?}");
    assert_eq!(after, before);
    let scanned = store.summarize(&EventQuery { event_name: Some("*".into()), ..q }, &spec).unwrap();
    assert_eq!(after, scanned);
    // The principal rollups too (schema 18).
    assert!(user_before.events > 100, "{user_before:?}");
    assert_eq!(store.summarize(&user, &SummarySpec::principal_page(DAY, 5)).unwrap(), user_before);
}

/// A record by an IAM user or a role session (some with a `sourceIdentity`: a person behind
/// sessions of several roles), with varied addresses and user agents, over `hours`.
fn session_record(i: usize, rng: &mut Rng, hours: i64) -> ParsedEvent {
    let time = BASE + rng.below((hours * HOUR) as u64) as i64;
    let account = ["111122223333", "444455556666"][rng.below(2) as usize];
    let identity = if rng.below(4) == 0 {
        format!(r#"{{"type":"IAMUser","arn":"arn:aws:iam::{account}:user/u{0}","userName":"u{0}"}}"#, rng.zipf(6))
    } else {
        let role = rng.zipf(5);
        let source = match rng.below(3) {
            0 => format!(r#""sourceIdentity":"person{}","#, rng.zipf(3)),
            _ => String::new(),
        };
        format!(
            r#"{{"type":"AssumedRole","arn":"arn:aws:sts::{account}:assumed-role/Role{role}/s{}",
            "sessionContext":{{{source}"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::{account}:role/Role{role}","userName":"Role{role}"}}}}}}"#,
            rng.zipf(40)
        )
    };
    let error = match rng.below(8) {
        0 => r#","errorCode":"AccessDenied""#.to_string(),
        1 => format!(r#","errorCode":"Throttling{}""#, rng.zipf(3)),
        _ => String::new(),
    };
    ParsedEvent::from_json(&format!(
        r#"{{"eventID":"se-{i}","eventTime":"{}","eventName":"Call{}","eventSource":"svc.amazonaws.com",
        "sourceIPAddress":"203.0.{}.{}","userAgent":"agent/{}.{}","recipientAccountId":"{account}",
        "awsRegion":"{}","userIdentity":{identity}{error}}}"#,
        format_millis(time),
        rng.zipf(20),
        rng.zipf(3),
        rng.zipf(200),
        rng.zipf(4),
        rng.zipf(50),
        ["us-east-1", "eu-west-1", "ap-south-1"][rng.zipf(3) as usize],
    ))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A principal's page from the principal rollups (a role and its sessions, a session,
    /// a user, a person, a pattern: busy principals counted from some commit on, the others
    /// read from their blocks) equals the same summary read from the blocks, also after
    /// retention rewrote and dropped blocks, and counts the events stored.
    #[test]
    fn principal_rollups_summarize_as_the_events_do(
        seed in any::<u64>(),
        n in 50usize..3000,
        days in 1i64..4,
        retention in any::<bool>(),
        queries in prop::collection::vec((0usize..7, 0i64..3, 1usize..12), 1..8),
    ) {
        let mut rng = Rng(seed);
        let events: Vec<ParsedEvent> = (0..n).map(|i| session_record(i, &mut rng, days * 24)).collect();
        let store = SqliteStore::open_in_memory().unwrap();
        let mut stored = fill(&store, &events, &mut rng);
        if retention {
            let cutoff = BASE + (days * DAY) / 3 + 1234;
            let policy = RetentionPolicy { days: Some(1), ..Default::default() };
            crate::retain_all(&store, &policy, cutoff + DAY, 3);
            stored.retain(|e| e.event_time >= cutoff);
        }
        let who = [
            "arn:aws:iam::111122223333:role/Role0",
            "arn:aws:iam::444455556666:role/Role1",
            "arn:aws:sts::111122223333:assumed-role/Role0/s0",
            "arn:aws:iam::444455556666:user/u0",
            "person0",
            "arn:aws:sts::*",
            "nobody",
        ];
        for (w, bucket_days, top_n) in queries {
            let q = EventQuery { principal: Some(who[w].to_string()), ..Default::default() };
            let spec = SummarySpec::principal_page(bucket_days * DAY, top_n);
            let rolled = store.summarize(&q, &spec).unwrap();
            let scanned = store.summarize(&EventQuery { event_name: Some("*".into()), ..q.clone() }, &spec).unwrap();
            prop_assert_eq!(&rolled, &scanned, "query {:?}", q);
            if w < 4 {
                let expected = stored
                    .iter()
                    .filter(|e| e.actor.principal == who[w] || e.actor.issuer.as_deref() == Some(who[w]))
                    .count();
                prop_assert_eq!(rolled.events, expected as u64, "query {:?}", q);
            }
        }
    }
}

const USER: &str = "arn:aws:iam::111122223333:user/u0";

/// An event by [`USER`].
fn user_event(id: &str, time: i64, agent: &str) -> ParsedEvent {
    ParsedEvent::from_json(&format!(
        r#"{{"eventID":"{id}","eventTime":"{}","eventName":"Call","eventSource":"svc.amazonaws.com",
        "sourceIPAddress":"203.0.113.9","userAgent":"{agent}","recipientAccountId":"111122223333",
        "awsRegion":"us-east-1","userIdentity":{{"type":"IAMUser","arn":"{USER}","userName":"u0"}}}}"#,
        format_millis(time)
    ))
    .unwrap()
}

fn commit(store: &SqliteStore, name: &str, events: Vec<ParsedEvent>) {
    let mut w = store.writer().unwrap();
    let meta = ObjectMeta::local(name.to_string(), 1);
    w.begin_object(&meta).unwrap();
    w.insert(&mut events.clone().into()).unwrap();
    w.finish_object(&ObjectTotals { records: events.len() as u64, ..Default::default() }).unwrap();
    w.commit().unwrap();
}

/// Two processes write one store: the one that did not see a principal become busy counts
/// its values from its next transaction on all the same.
#[test]
fn a_second_writer_learns_which_principals_became_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.db");
    let (a, b) = (SqliteStore::open(&path).unwrap(), SqliteStore::open(&path).unwrap());
    let mut wb = b.writer().unwrap();
    let one = |w: &mut Box<dyn store::EventWriter + '_>, name: &str, events: Vec<ParsedEvent>| {
        let meta = ObjectMeta::local(name.to_string(), 1);
        w.begin_object(&meta).unwrap();
        w.insert(&mut events.clone().into()).unwrap();
        w.finish_object(&ObjectTotals { records: events.len() as u64, ..Default::default() }).unwrap();
        w.commit().unwrap();
    };
    // b's writer has read the busy principals (none) before a makes the user busy.
    one(&mut wb, "b0.json.gz", vec![user_event("b0", BASE, "early-agent")]);
    commit(&a, "a0.json.gz", (0..200).map(|i| user_event(&format!("a{i}"), BASE + HOUR, "a-agent")).collect());
    one(&mut wb, "b1.json.gz", (1..40).map(|i| user_event(&format!("b{i}"), BASE + 2 * HOUR, "b-agent")).collect());
    drop(wb);
    let q = EventQuery { principal: Some(USER.into()), ..Default::default() };
    let spec = SummarySpec::principal_page(DAY, 5);
    let rolled = a.summarize(&q, &spec).unwrap();
    assert_eq!(rolled.events, 240);
    assert_eq!(rolled, a.summarize(&EventQuery { event_name: Some("*".into()), ..q }, &spec).unwrap());
}

/// The principal rollups name the newest block a user agent was counted from; once
/// retention rewrote that block without it, the label is read from an older block.
#[test]
fn a_principal_page_labels_values_whose_newest_block_retention_rewrote() {
    let event = user_event;
    let store = SqliteStore::open_in_memory().unwrap();
    // One commit (one block) each, all on one day. The first makes the user busy (counted
    // from then on); "kept-agent" in the second; in the third, an earlier event with it
    // (retention takes that one) beside a later event with another agent. BASE is a day
    // boundary.
    let busy: Vec<ParsedEvent> = (0..200).map(|i| event(&format!("f{i}"), BASE + 22 * HOUR, "filler")).collect();
    let objects = [
        busy,
        vec![event("a", BASE + 20 * HOUR, "kept-agent")],
        vec![event("b", BASE + HOUR, "kept-agent"), event("c", BASE + 21 * HOUR, "other-agent")],
    ];
    for (i, events) in objects.into_iter().enumerate() {
        commit(&store, &format!("f{i}.json.gz"), events);
    }
    let policy = RetentionPolicy { days: Some(1), ..Default::default() };
    crate::retain_all(&store, &policy, BASE + DAY + 10 * HOUR, 16);
    let q = EventQuery { principal: Some(USER.into()), ..Default::default() };
    let summary = store.summarize(&q, &SummarySpec::principal_page(DAY, 5)).unwrap();
    assert_eq!(summary.events, 202);
    assert_eq!(
        summary.top(Dimension::UserAgent),
        [("filler".to_string(), 200), ("kept-agent".to_string(), 1), ("other-agent".to_string(), 1)]
    );
}

/// Hour counts stay exact when several processes bring them up to date at once (each serve
/// worker's task, a summary), and a recount cut short before its marker row (a crash, a
/// failed insert) is never read.
#[test]
fn scaleout_recounts_take_turns_and_half_ones_are_not_read() {
    let Some(scaleout) = store::testing::scaleout() else { return };
    let ch = scaleout.clickhouse().clone();
    let store: store::Store = scaleout.into();
    let mut rng = Rng(5);
    let events: Vec<ParsedEvent> = (0..3000).map(|i| record(i, &mut rng, 6)).collect();
    let stored = fill(store.events(), &events, &mut rng);
    let counted: Vec<u64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3).map(|_| s.spawn(|| store.events().refresh_counts().unwrap())).collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(counted.iter().sum::<u64>() >= 6, "every hour counted: {counted:?}");
    let q = EventQuery { since: Some(BASE - HOUR), until: Some(BASE + 8 * HOUR), ..Default::default() };
    let spec = spec(1, Dimension::Account, 5);
    let read = store.events().summarize(&EventQuery { event_name: Some("*".into()), ..q.clone() }, &spec).unwrap();
    assert_eq!(read.events, stored.len() as u64);
    assert_eq!(store.events().summarize(&q, &spec).unwrap(), read);
    // A newer version of every hour's counts, all wrong, without its marker.
    let db = ch.database();
    ch.execute(
        &format!(
            "INSERT INTO {db}.hour_counts SELECT dimension, hour, value, events * 7, errors, denied, first, last,
                 version + 1000000 FROM {db}.hour_counts WHERE value != '#'"
        ),
        "a recount cut short",
    )
    .unwrap();
    assert_eq!(store.events().summarize(&q, &spec).unwrap(), read, "the half recount is not read");
}

/// The scale-out store's top values from heavy counts and bounds, where the bounds decide:
/// `A` is heavy in both whole hours (80 events); `Z` never is (31 an hour) and is not among
/// the partial hour's listed values (the test store lists three: `E1`–`E3`, 50 events each),
/// yet with its 45 there it is the most frequent (107). Every value not looked up must be
/// bounded by the partial hour's last listed count, or `A` would be taken for the top.
#[test]
fn scaleout_tops_bound_the_values_the_partial_hours_do_not_list() {
    let Some(scaleout) = store::testing::scaleout() else { return };
    let sqlite = SqliteStore::open_in_memory().unwrap();
    let mut events = Vec::new();
    let mut add = |ip: &str, n: usize, start: i64| {
        for j in 0..n {
            let i = events.len();
            let time = start + j as i64 * 1000;
            events.push(
                ParsedEvent::from_json(&format!(
                    r#"{{"eventID":"ev-{i}","eventTime":"{}","eventName":"Call","eventSource":"svc.amazonaws.com",
                    "sourceIPAddress":"{ip}","recipientAccountId":"111122223333","awsRegion":"us-east-1",
                    "userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u","userName":"u"}}}}"#,
                    format_millis(time)
                ))
                .unwrap(),
            );
        }
    };
    let edge = BASE - 20 * 60_000;
    for ip in ["E1", "E2", "E3"] {
        add(ip, 50, edge);
    }
    add("Z", 45, edge + 100_000);
    for hour in 0..2 {
        add("A", 40, BASE + hour * HOUR);
        add("Z", 31, BASE + hour * HOUR + 100_000);
    }
    let q = EventQuery { since: Some(BASE - 30 * 60_000), until: Some(BASE + 2 * HOUR - 1), ..Default::default() };
    let spec = SummarySpec { tops: vec![Dimension::SourceIp], top_n: 1, ..Default::default() };
    for store in [scaleout.events() as &dyn EventStore, &sqlite] {
        let mut w = store.writer().unwrap();
        let meta = ObjectMeta::local("f.json.gz".to_string(), 1);
        w.begin_object(&meta).unwrap();
        w.insert(&mut events.clone().into()).unwrap();
        w.finish_object(&ObjectTotals { records: events.len() as u64, ..Default::default() }).unwrap();
        w.commit().unwrap();
        let top = store.summarize(&q, &spec).unwrap().tops.pop().unwrap().1;
        assert_eq!(top, vec![("Z".to_string(), 107)]);
    }
}
