//! Every search filter returns exactly what a direct scan of the records returns.

use model::{timefmt::format_millis, ParsedEvent};
use proptest::prelude::*;
use store::EventStore;
use store::{Dimension, EventQuery, ObjectMeta, ObjectTotals, PlanChoice, SqliteStore, Store, SummarySpec};

const NAMES: &[&str] = &["StopLogging", "DescribeInstances", "DeleteTrail", "ConsoleLogin"];
const SOURCES: &[&str] = &["ec2.amazonaws.com", "cloudtrail.amazonaws.com", "signin.amazonaws.com"];
const IPS: &[&str] = &["203.0.113.7", "198.51.100.1", "ec2.amazonaws.com", "AWS Internal"];
const ACCOUNTS: &[&str] = &["111122223333", "444455556666"];
const REGIONS: &[&str] = &["us-east-1", "eu-west-1"];
const ERRORS: &[Option<&str>] = &[None, None, Some("AccessDenied"), Some("Client.UnauthorizedOperation")];

#[derive(Debug, Clone)]
struct Spec {
    name: usize,
    source: usize,
    ip: usize,
    account: usize,
    region: usize,
    error: usize,
    who: usize,
    time: i64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..NAMES.len(),
        0..SOURCES.len(),
        0..IPS.len(),
        0..ACCOUNTS.len(),
        0..REGIONS.len(),
        0..ERRORS.len(),
        0..5usize,
        0..50i64,
    )
        .prop_map(|(name, source, ip, account, region, error, who, time)| Spec {
            name,
            source,
            ip,
            account,
            region,
            error,
            who,
            time,
        })
}

fn identity(who: usize, account: &str) -> String {
    match who {
        0 => format!(
            r#"{{"type":"IAMUser","arn":"arn:aws:iam::{account}:user/alice","userName":"alice","accountId":"{account}"}}"#
        ),
        1 => format!(
            r#"{{"type":"AssumedRole","arn":"arn:aws:sts::{account}:assumed-role/Admin/bob@example.com","accountId":"{account}",
            "sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::{account}:role/Admin","userName":"Admin"}}}}}}"#
        ),
        2 => r#"{"type":"AWSService","invokedBy":"config.amazonaws.com"}"#.to_string(),
        // The human is named by neither the principal nor the session.
        3 => format!(
            r#"{{"type":"AssumedRole","arn":"arn:aws:sts::{account}:assumed-role/Deploy/ci-run-7","accountId":"{account}",
            "sessionContext":{{"sourceIdentity":"carol","sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::{account}:role/Deploy","userName":"Deploy"}}}}}}"#
        ),
        _ => format!(r#"{{"type":"Root","arn":"arn:aws:iam::{account}:root","accountId":"{account}"}}"#),
    }
}

fn build(i: usize, s: &Spec) -> ParsedEvent {
    let account = ACCOUNTS[s.account];
    let error = ERRORS[s.error].map(|e| format!(r#","errorCode":"{e}""#)).unwrap_or_default();
    ParsedEvent::from_json(&format!(
        r#"{{"eventID":"ev-{i}","eventTime":"{}","eventName":"{}","eventSource":"{}","sourceIPAddress":"{}",
        "recipientAccountId":"{account}","awsRegion":"{}","userIdentity":{}{error}}}"#,
        format_millis(1_700_000_000_000 + s.time * 60_000),
        NAMES[s.name],
        SOURCES[s.source],
        IPS[s.ip],
        REGIONS[s.region],
        identity(s.who, account),
    ))
    .unwrap()
}

/// The reference: filter the records in memory.
fn scan(events: &[ParsedEvent], q: &EventQuery) -> Vec<String> {
    let eq = |want: &Option<String>, have: Option<&str>| want.as_ref().is_none_or(|w| Some(w.as_str()) == have);
    let mut hits: Vec<(i64, usize, String)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            eq(&q.event_name, e.event_name.as_deref())
                && eq(&q.event_source, e.event_source.as_deref())
                && eq(&q.source_ip, e.source_ip.as_deref())
                && eq(&q.account, e.recipient_account_id.as_deref())
                && eq(&q.region, e.aws_region.as_deref())
                && q.principal.as_ref().is_none_or(|p| {
                    let a = &e.actor;
                    [Some(&a.principal), a.issuer.as_ref(), a.name.as_ref(), a.human.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|v| v == p)
                })
                && q.since.is_none_or(|t| e.event_time >= t)
                && q.until.is_none_or(|t| e.event_time <= t)
                && (!q.errors || e.error_code.is_some())
                && eq(&q.error_code, e.error_code.as_deref())
        })
        .map(|(i, e)| (e.event_time, i, e.event_id.clone()))
        .collect();
    hits.sort_by_key(|h| std::cmp::Reverse((h.0, h.1)));
    hits.into_iter().map(|h| h.2).collect()
}

fn query() -> impl Strategy<Value = EventQuery> {
    let pick = |values: &'static [&'static str]| {
        proptest::option::weighted(0.3, proptest::sample::select(values).prop_map(str::to_string))
    };
    let principals: &'static [&'static str] = &[
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::444455556666:role/Admin",
        "bob@example.com",
        "config.amazonaws.com",
        "alice",
        "arn:aws:iam::111122223333:root",
        "carol",
    ];
    (
        pick(NAMES),
        pick(SOURCES),
        pick(IPS),
        pick(ACCOUNTS),
        pick(REGIONS),
        pick(principals),
        proptest::option::weighted(0.3, 0..50i64),
        proptest::option::weighted(0.3, 0..50i64),
        (proptest::bool::weighted(0.2), pick(&["AccessDenied", "Client.UnauthorizedOperation"])),
    )
        .prop_map(
            |(event_name, event_source, source_ip, account, region, principal, since, until, (errors, error_code))| {
                EventQuery {
                    event_name,
                    event_source,
                    source_ip,
                    account,
                    region,
                    principal,
                    since: since.map(|m| 1_700_000_000_000 + m * 60_000),
                    until: until.map(|m| 1_700_000_000_000 + m * 60_000),
                    errors,
                    error_code,
                    ..Default::default()
                }
            },
        )
}

fn store_with(events: &[ParsedEvent]) -> SqliteStore {
    let store = SqliteStore::open_in_memory().unwrap();
    fill(&store, events);
    store
}

fn fill(store: &dyn EventStore, events: &[ParsedEvent]) {
    let mut w = store.writer().unwrap();
    // Several objects, as files would arrive.
    for (i, chunk) in events.chunks(7).enumerate() {
        w.begin_object(&ObjectMeta::local(format!("f{i}.json.gz"), 1)).unwrap();
        w.insert(&mut chunk.to_vec().into()).unwrap();
        w.finish_object(&ObjectTotals { records: chunk.len() as u64, ..Default::default() }).unwrap();
    }
    w.commit().unwrap();
}

/// The same checks against every backend but SQLite's plans (which the tests above cover).
fn other_backends(events: &[ParsedEvent]) -> Vec<(&'static str, Store)> {
    let mut all = store::testing::backends();
    all.retain(|(name, _)| *name != "sqlite");
    for (_, store) in &all {
        fill(store.events(), events);
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn filters_agree_with_a_direct_scan(specs in prop::collection::vec(spec(), 1..80), queries in prop::collection::vec(query(), 1..12)) {
        let events: Vec<ParsedEvent> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        for plan in [PlanChoice::Auto, PlanChoice::Time, PlanChoice::Postings] {
            let store = store_with(&events).with_plan(plan);
            for q in &queries {
                let rows = store.search(q).unwrap();
                let got: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
                prop_assert_eq!(&got, &scan(&events, q), "{:?} plan, query {:?}", plan, q);
                for r in &rows {
                    let i: usize = r.event_id[3..].parse().unwrap();
                    prop_assert_eq!(&r.raw, &events[i].raw, "raw JSON comes back verbatim");
                }
            }
        }
    }
}

proptest! {
    // Each case creates databases on the servers: fewer cases, the same properties.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn other_backends_filter_like_a_direct_scan(specs in prop::collection::vec(spec(), 1..80), queries in prop::collection::vec(query(), 1..12)) {
        let events: Vec<ParsedEvent> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        for (backend, store) in other_backends(&events) {
            for q in &queries {
                let rows = store.events().search(q).unwrap();
                let got: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
                prop_assert_eq!(&got, &scan(&events, q), "{} backend, query {:?}", backend, q);
                for r in &rows {
                    let i: usize = r.event_id[3..].parse().unwrap();
                    prop_assert_eq!(&r.raw, &events[i].raw, "raw JSON comes back verbatim");
                }
                // Pages of a few rows: each found in time windows, newest first.
                let page = 1 + got.len() % 5;
                prop_assert_eq!(walk(store.events(), q, page, events.len()), got, "{} backend, pages of {}, query {:?}", backend, page, q);
            }
        }
    }

    #[test]
    fn other_backends_summarize_like_a_direct_scan(specs in prop::collection::vec(spec(), 1..80), q in query(), bucket in 1i64..20) {
        let events: Vec<ParsedEvent> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        for (_, store) in other_backends(&events) {
            check_summary(store.events(), &events, &q, bucket)?;
        }
    }

    #[test]
    fn other_backends_page_like_a_direct_scan(specs in prop::collection::vec(spec(), 1..60), page in 1usize..9, errors in any::<bool>()) {
        let events: Vec<ParsedEvent> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        for (_, store) in other_backends(&events) {
            check_paging(store.events(), &events, page, errors)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `summarize` counts exactly what a scan of the matching records counts.
    #[test]
    fn summaries_agree_with_a_direct_scan(specs in prop::collection::vec(spec(), 1..80), q in query(), bucket in 1i64..20) {
        let events: Vec<ParsedEvent> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        check_summary(&store_with(&events), &events, &q, bucket)?;
    }

    /// Paging with `after` visits every hit once, in order, whatever the page size.
    #[test]
    fn keyset_paging_walks_all_results(specs in prop::collection::vec(spec(), 1..60), page in 1usize..9, errors in any::<bool>()) {
        let events: Vec<ParsedEvent> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        check_paging(&store_with(&events), &events, page, errors)?;
    }
}

fn check_summary(
    store: &dyn EventStore,
    events: &[ParsedEvent],
    q: &EventQuery,
    bucket: i64,
) -> Result<(), TestCaseError> {
    {
        let spec = SummarySpec {
            bucket_ms: bucket * 1000,
            series: Some(Dimension::Account),
            tops: vec![Dimension::EventName, Dimension::Principal, Dimension::ErrorCode],
            top_n: 100,
        };
        let summary = store.summarize(q, &spec).unwrap();
        let ids: std::collections::HashSet<String> = scan(events, q).into_iter().collect();
        let hits: Vec<&ParsedEvent> = events.iter().filter(|e| ids.contains(&e.event_id)).collect();
        prop_assert_eq!(summary.events, hits.len() as u64);
        prop_assert_eq!(summary.errors, hits.iter().filter(|e| e.error_code.is_some()).count() as u64);
        prop_assert_eq!(
            summary.denied,
            hits.iter().filter(|e| e.error_code.as_deref().is_some_and(store::is_access_denied)).count() as u64
        );
        prop_assert_eq!(summary.first, hits.iter().map(|e| e.event_time).min());
        prop_assert_eq!(summary.last, hits.iter().map(|e| e.event_time).max());
        let mut histogram = std::collections::BTreeMap::new();
        let mut names = std::collections::HashMap::new();
        for e in &hits {
            let start = e.event_time.div_euclid(bucket * 1000) * bucket * 1000;
            *histogram.entry((start, e.recipient_account_id.clone().unwrap_or_default())).or_insert(0u64) += 1;
            *names.entry(e.event_name.clone().unwrap()).or_insert(0u64) += 1;
        }
        let got: std::collections::BTreeMap<(i64, String), u64> =
            summary.histogram.iter().map(|p| ((p.start, p.series.clone()), p.events)).collect();
        prop_assert_eq!(got, histogram);
        let got_names: std::collections::HashMap<String, u64> =
            summary.top(Dimension::EventName).iter().cloned().collect();
        prop_assert_eq!(got_names, names);
    }
    Ok(())
}

/// Every hit of `q`, read in pages of `page` rows with keyset paging.
fn walk(store: &dyn EventStore, q: &EventQuery, page: usize, events: usize) -> Vec<String> {
    let mut q = EventQuery { limit: Some(page), ..q.clone() };
    let mut seen = Vec::new();
    for _ in 0..=events {
        let rows = store.search(&q).unwrap();
        assert!(rows.len() <= page, "a page holds at most its limit");
        let Some(last) = rows.last() else { break };
        q.after = Some(last.page());
        seen.extend(rows.into_iter().map(|r| r.event_id));
    }
    assert!(store.search(&q).unwrap().is_empty(), "paging ends after at most one page per event");
    seen
}

fn check_paging(
    store: &dyn EventStore,
    events: &[ParsedEvent],
    page: usize,
    errors: bool,
) -> Result<(), TestCaseError> {
    {
        let mut q = EventQuery { limit: Some(page), errors, ..Default::default() };
        let mut seen = Vec::new();
        loop {
            let rows = store.search(&q).unwrap();
            let Some(last) = rows.last() else { break };
            q.after = Some(last.page());
            seen.extend(rows.into_iter().map(|r| r.event_id));
        }
        prop_assert_eq!(seen, scan(events, &EventQuery { errors, ..Default::default() }));
    }
    Ok(())
}

/// `n` events of `spec(i)`, event `i` at minute `i`.
fn minute_by_minute(n: usize, spec: impl Fn(usize) -> Spec) -> Vec<ParsedEvent> {
    (0..n).map(|i| build(i, &Spec { time: i as i64, ..spec(i) })).collect()
}

/// A page larger than the newest window holds is gathered from several windows: each row
/// once, in order, whatever the filter (search keys or the events table).
#[test]
fn pages_gather_rows_across_time_windows() {
    // One event a minute for two hours, the names alternating.
    let events = minute_by_minute(120, |i| Spec {
        name: i % 2,
        source: 0,
        ip: i % 3,
        account: 0,
        region: 0,
        error: i % 4,
        who: i % 4,
        time: 0,
    });
    let queries = [
        EventQuery::default(),
        EventQuery { event_name: Some(NAMES[0].into()), ..Default::default() },
        EventQuery { event_name: Some(NAMES[1].into()), source_ip: Some(IPS[0].into()), ..Default::default() },
        EventQuery { errors: true, until: Some(1_700_000_000_000 + 100 * 60_000), ..Default::default() },
        EventQuery {
            principal: Some("alice".into()),
            since: Some(1_700_000_000_000 + 7 * 60_000),
            ..Default::default()
        },
        EventQuery {
            since: Some(1_700_000_000_000 + 3 * 60_000),
            until: Some(1_700_000_000_000 + 90 * 60_000),
            ..Default::default()
        },
    ];
    for (backend, store) in other_backends(&events) {
        for q in &queries {
            let want = scan(&events, q);
            for page in [7, 13, 50, 200] {
                assert_eq!(walk(store.events(), q, page, events.len()), want, "{backend}, pages of {page}, {q:?}");
                let first = store.events().search(&EventQuery { limit: Some(page), ..q.clone() }).unwrap();
                let first: Vec<String> = first.into_iter().map(|r| r.event_id).collect();
                assert_eq!(first, want[..page.min(want.len())], "{backend}, first page of {page}, {q:?}");
            }
        }
    }
}

/// A scale-out store from before search keys, hour counts and principals' names (schema 2)
/// gets them for the events it holds when this version opens it: searches find the old
/// events and the new ones alike, and a summary from hour counts says what one reading the
/// events says.
#[test]
fn an_older_scaleout_store_gets_search_keys_on_upgrade() {
    let Some(urls) = store::testing::scaleout_urls() else { return };
    let (ch_url, pg_url) = store::testing::create_databases(&urls, &store::testing::fresh_name());
    let events = minute_by_minute(80, |i| Spec {
        name: i % 3,
        source: i % 2,
        ip: i % 4,
        account: i % 2,
        region: 0,
        error: i % 4,
        who: i % 4,
        time: 0,
    });
    {
        let old = store::ScaleOutStore::open(&ch_url, &pg_url).unwrap();
        fill(old.events(), &events[..40]);
        // As schema version 2 left the store: no search keys, no hour counts, no
        // principals' names.
        let ch = old.clickhouse();
        let db = ch.database().to_string();
        // On a cluster: the Distributed tables, then the replicas' tables they read.
        let (on_cluster, tables): (String, &[&str]) = match ch.cluster() {
            Some(c) => (format!(" ON CLUSTER {c}"), &["", "_local"]),
            None => (String::new(), &[""]),
        };
        for suffix in tables {
            for table in ["event_keys", "hour_counts", "principal_names"] {
                ch.execute(&format!("DROP TABLE {db}.{table}{suffix}{on_cluster}"), "drop").unwrap();
            }
        }
        let versions = format!("{db}.schema_versions{}{on_cluster}", tables.last().unwrap());
        ch.execute(&format!("ALTER TABLE {versions} DELETE WHERE version >= 3"), "forget").unwrap();
        // Nor had a writer marked hours to count.
        let mut pg = postgres::Client::connect(&pg_url, postgres::NoTls).unwrap();
        pg.execute("DELETE FROM hour_marks", &[]).unwrap();
        #[derive(serde::Deserialize)]
        struct V {
            v: u32,
        }
        let version = || -> u32 {
            let sql = format!("SELECT max(version) AS v FROM {db}.schema_versions FORMAT JSONEachRow");
            ch.query_rows::<V>(&sql, "version").unwrap()[0].v
        };
        let started = std::time::Instant::now();
        while version() != 2 {
            assert!(started.elapsed().as_secs() < 60, "the mutation finishes");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let upgraded = store::ScaleOutStore::open(&ch_url, &pg_url).unwrap();
    let q = EventQuery {
        since: Some(1_700_000_000_000 - 3_600_000),
        until: Some(1_700_000_000_000 + 3 * 3_600_000),
        ..Default::default()
    };
    let spec = SummarySpec {
        bucket_ms: 3_600_000,
        series: Some(Dimension::Account),
        tops: vec![Dimension::EventName, Dimension::SourceIp],
        top_n: 3,
    };
    let summaries = || {
        let counted = upgraded.events().summarize(&q, &spec).unwrap();
        let read = upgraded.events().summarize(&EventQuery { event_name: Some("*".into()), ..q.clone() }, &spec);
        (counted, read.unwrap())
    };
    // The old events, counted by the migration (no writer has marked their hours).
    let (counted, read) = summaries();
    assert_eq!(counted.events, 40);
    assert_eq!(counted, read);
    // The old principals' names, before a writer sees any of them again.
    let carol = EventQuery { principal: Some("carol".into()), ..Default::default() };
    let want = scan(&events[..40], &carol);
    assert!(!want.is_empty());
    assert_eq!(walk(upgraded.events(), &carol, 6, 40), want);
    fill(upgraded.events(), &events[40..]);
    for q in [
        EventQuery { event_name: Some(NAMES[1].into()), ..Default::default() },
        EventQuery { errors: true, account: Some(ACCOUNTS[0].into()), ..Default::default() },
        EventQuery { principal: Some("bob@example.com".into()), ..Default::default() },
        EventQuery { principal: Some("carol".into()), ..Default::default() },
    ] {
        let want = scan(&events, &q);
        assert!(want.iter().any(|id| id["ev-".len()..].parse::<usize>().unwrap() < 40), "old events match {q:?}");
        assert_eq!(walk(upgraded.events(), &q, 6, events.len()), want, "{q:?}");
    }
    let (counted, read) = summaries();
    assert_eq!(counted.events, 80);
    assert_eq!(counted, read);
}

/// Reading every match streams in time windows of a few events (see `testing`): each
/// event once, newest first, with events on every window boundary (one a millisecond).
#[test]
fn every_match_streams_once_across_windows() {
    let events: Vec<ParsedEvent> = (0..300)
        .map(|i| {
            let second = format_millis(1_700_000_000_000).replace('Z', "");
            crate::event(&format!("s-{i}"), &format!("{second}.{i:03}Z"), NAMES[i as usize % 2])
        })
        .collect();
    assert_eq!(events[299].event_time - events[0].event_time, 299, "a millisecond apart");
    for (backend, store) in other_backends(&events) {
        for q in [EventQuery::default(), EventQuery { event_name: Some(NAMES[1].into()), ..Default::default() }] {
            let got: Vec<String> = store.events().search(&q).unwrap().into_iter().map(|r| r.event_id).collect();
            let want: Vec<String> = events
                .iter()
                .rev()
                .filter(|e| q.event_name.as_ref().is_none_or(|n| e.event_name.as_ref() == Some(n)))
                .map(|e| e.event_id.clone())
                .collect();
            assert_eq!(got, want, "{backend}: {q:?}");
        }
    }
}

#[test]
fn wildcards_and_top_values() {
    let events: Vec<ParsedEvent> = (0..12)
        .map(|i| {
            build(
                i,
                &Spec {
                    name: i % 4,
                    source: i % 3,
                    ip: i % 2,
                    account: 0,
                    region: 0,
                    error: 0,
                    who: i % 4,
                    time: i as i64,
                },
            )
        })
        .collect();
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        fill(store.events(), &events);
        let deletes =
            store.events().search(&EventQuery { event_name: Some("Delete*".into()), ..Default::default() }).unwrap();
        assert_eq!(deletes.len(), 3);
        assert!(deletes.iter().all(|r| r.event_name.as_deref() == Some("DeleteTrail")));
        let ips =
            store.events().search(&EventQuery { source_ip: Some("203.0.113.?".into()), ..Default::default() }).unwrap();
        assert_eq!(ips.len(), 6);
        let roles = store
            .events()
            .search(&EventQuery { principal: Some("arn:aws:sts::*:assumed-role/Admin/*".into()), ..Default::default() })
            .unwrap();
        assert_eq!(roles.len(), 3);
        let top = store.events().top(Dimension::EventName, &EventQuery::default(), 2).unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].1, 3);
        let found = store.events().event("ev-3").unwrap().unwrap();
        assert_eq!(found.event_name.as_deref(), Some("ConsoleLogin"));
        assert_eq!(found.raw, events[3].raw);
        assert!(store.events().event("nope").unwrap().is_none());
    }
}

/// Records come back verbatim from blocks whose batches span several frames, after an
/// undone object cut a block back and retention rewrote blocks.
#[test]
fn raw_records_come_back_from_their_frames() {
    let store = SqliteStore::open_in_memory().unwrap();
    let base = 1_700_000_000_000i64;
    let record = |i: usize| {
        ParsedEvent::from_json(&format!(
            r#"{{"eventID":"ev-{i}","eventTime":"{}","eventName":"Call{}","note":"{}"}}"#,
            format_millis(base + (i as i64 % 500) * 3_600_000),
            i % 7,
            "x".repeat(i % 97)
        ))
        .unwrap()
    };
    let mut kept = Vec::new();
    let mut w = store.writer().unwrap();
    let (mut next, mut object) = (0usize, 0usize);
    for size in [1usize, 300, 64, 65, 7, 129, 500, 3, 1000, 200].iter().cycle().take(30) {
        let events: Vec<ParsedEvent> = (next..next + size).map(record).collect();
        next += size;
        let meta = ObjectMeta::local(format!("f{object}.json.gz"), 1);
        object += 1;
        w.begin_object(&meta).unwrap();
        w.insert(&mut events.clone().into()).unwrap();
        if object % 7 == 0 {
            w.quarantine_object(&meta, "test", "undone").unwrap();
        } else {
            w.finish_object(&ObjectTotals { records: events.len() as u64, ..Default::default() }).unwrap();
            kept.extend(events);
        }
    }
    w.commit().unwrap();
    drop(w);
    let check = |kept: &[ParsedEvent]| {
        for e in kept.iter().step_by(37) {
            assert_eq!(store.event(&e.event_id).unwrap().unwrap().raw, e.raw);
        }
        let rows = store.search(&EventQuery { event_name: Some("Call3".into()), ..Default::default() }).unwrap();
        let want: std::collections::HashMap<&str, &str> =
            kept.iter().map(|e| (e.event_id.as_str(), e.raw.as_str())).collect();
        assert_eq!(rows.len(), kept.iter().filter(|e| e.event_name.as_deref() == Some("Call3")).count());
        for r in rows {
            assert_eq!(want[r.event_id.as_str()], r.raw);
        }
    };
    check(&kept);
    let policy = store::RetentionPolicy { days: Some(10), ..Default::default() };
    let now = base + 20 * 86_400_000;
    crate::retain_all(&store, &policy, now, 3);
    kept.retain(|e| e.event_time >= now - 10 * 86_400_000);
    assert!(!kept.is_empty());
    check(&kept);
}
