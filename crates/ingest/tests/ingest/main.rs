//! The pipeline's guarantees, with a real SQLite store and injected read failures.

use std::io::{self, Read};

use ingest::{ObjectJob, Outcome, Pipeline, PipelineConfig};
use store::{EventStore, ObjectMeta, SqliteStore, StateStore};
use test_support::{gzip, log_document, record};

/// Yields `good` bytes of `data`, then fails like a dropped connection.
struct FailAfter {
    data: Vec<u8>,
    at: usize,
    good: usize,
}

impl Read for FailAfter {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.good {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer"));
        }
        let n = out.len().min(self.good - self.at).min(64);
        out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn file(prefix: &str, n: usize) -> Vec<u8> {
    let records: Vec<String> = (0..n).map(|i| record(&format!("{prefix}-{i}"), "2024-01-15T11:50:00Z", "A")).collect();
    gzip(log_document(&records).as_bytes())
}

fn job(key: &str, open: ingest::pipeline::Opener) -> ObjectJob<String> {
    ObjectJob { meta: ObjectMeta::local(key, 1), open, receipt: key.to_string() }
}

#[test]
fn read_failures_record_nothing_and_settle_as_failed() {
    let store = SqliteStore::open_in_memory().unwrap();
    let pipeline: Pipeline<String> = Pipeline::start(store.writer().unwrap(), PipelineConfig::default());
    let good = file("good", 50);
    let midway = file("mid", 3000);
    let cut = midway.len() / 2;
    pipeline.submit(job("good", Box::new(move || Ok(Box::new(io::Cursor::new(good)) as _)))).unwrap();
    pipeline.submit(job("gone", Box::new(|| Err(io::Error::new(io::ErrorKind::NotFound, "no such object"))))).unwrap();
    pipeline
        .submit(job("midway", Box::new(move || Ok(Box::new(FailAfter { data: midway, at: 0, good: cut }) as _))))
        .unwrap();
    let settled = pipeline.finish().unwrap();
    assert_eq!(settled.len(), 3);
    for s in settled {
        match s.receipt.as_str() {
            "good" => assert!(matches!(s.outcome, Outcome::Committed { .. }), "{:?}", s.outcome),
            "gone" | "midway" => match &s.outcome {
                Outcome::Failed { detail } => assert!(detail.contains("read error"), "{detail}"),
                other => panic!("{}: {other:?}", s.receipt),
            },
            other => panic!("unexpected receipt {other}"),
        }
    }
    // Nothing of the failed objects is stored or recorded: they will be tried again.
    assert_eq!(store.event_stats().unwrap().events, 50);
    assert!(store.ledger_entry("local", "gone").unwrap().is_none());
    assert!(store.ledger_entry("local", "midway").unwrap().is_none());
    assert!(store.quarantined().unwrap().is_empty());
}

mod detection {
    use std::sync::Arc;

    use detect::RuleSet;
    use ingest::{Detection, ObjectJob, Outcome, Pipeline, PipelineConfig};
    use store::{AlertFilter, AlertPolicy, EventStore, SinkRoute, SqliteStore, StateStore};
    use test_support::{gzip, log_document};

    const RULES: &str = "title: trail stopped\nid: stop\nlevel: critical\ndetection:\n  sel:\n    eventName: StopLogging\n  condition: sel\n\
        ---\ntitle: failed login\nid: failed\nname: failed_login\ndetection:\n  sel:\n    eventName: ConsoleLogin\n    errorMessage: Failed authentication\n  condition: sel\n\
        ---\ntitle: brute force\nid: brute\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [failed_login]\n  group-by: [userIdentity.userName]\n  timespan: 5m\n  condition:\n    gte: 20\n";

    fn event(id: &str, name: &str, second: u32, failed: bool) -> String {
        let t = format!("2024-01-15T10:{:02}:{:02}Z", second / 60, second % 60);
        let mut r = test_support::record(id, &t, name);
        if failed {
            r = r.replacen('{', r#"{"errorMessage":"Failed authentication","#, 1);
        }
        r
    }

    fn run(store: &SqliteStore, objects: Vec<(&str, Vec<u8>)>) -> Vec<Outcome> {
        let rules = Arc::new(RuleSet::from_yaml_text(RULES, "t.yml").unwrap());
        let policy = AlertPolicy {
            suppression_ms: 3_600_000,
            routes: vec![SinkRoute { sink: "hook".into(), min_level: "high".into() }],
        };
        let detection = Detection::new(rules, policy, store.correlation_windows().unwrap());
        let pipeline: Pipeline<String> =
            Pipeline::start_with_detection(store.writer().unwrap(), PipelineConfig::default(), detection);
        for (key, bytes) in objects {
            pipeline
                .submit(ObjectJob::in_memory(store::ObjectMeta::local(key, bytes.len() as u64), bytes, key.to_string()))
                .unwrap();
        }
        pipeline.finish().unwrap().into_iter().map(|s| s.outcome).collect()
    }

    fn doc(events: &[String]) -> Vec<u8> {
        gzip(log_document(events).as_bytes())
    }

    #[test]
    fn alerts_are_written_once_with_their_events_and_queued_for_sinks() {
        let store = SqliteStore::open_in_memory().unwrap();
        let a = doc(&[event("s1", "StopLogging", 0, false), event("x1", "DescribeTrails", 1, false)]);
        run(&store, vec![("a", a.clone())]);
        let alerts = store.alerts(&AlertFilter::default()).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!((alerts[0].rule_id.as_str(), alerts[0].count), ("stop", 1));
        assert_eq!(alerts[0].subject.source_ip.as_deref(), Some("198.51.100.10"));
        assert_eq!(store.alert_event_ids(alerts[0].id).unwrap(), vec!["s1"]);
        assert_eq!(store.deliveries(alerts[0].id).unwrap().len(), 1, "critical ≥ high: queued for the sink");
        // The same object again (another key: a redelivery through another path): duplicates
        // alert nothing. A new StopLogging by the same principal within the window joins.
        let b = doc(&[event("s1", "StopLogging", 0, false), event("s2", "StopLogging", 30, false)]);
        run(&store, vec![("a-again", a), ("b", b)]);
        let alerts = store.alerts(&AlertFilter::default()).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].count, 2);
        assert_eq!(store.due_deliveries(i64::MAX, 10).unwrap().len(), 1, "one notification per alert");
        // Resolved: the next match opens a new alert.
        store.set_alert_state(alerts[0].id, store::AlertState::Resolved, Some("fixed")).unwrap();
        run(&store, vec![("c", doc(&[event("s3", "StopLogging", 60, false)]))]);
        assert_eq!(store.alerts(&AlertFilter::default()).unwrap().len(), 2);
    }

    #[test]
    fn matches_further_apart_than_the_suppression_window_are_separate_alerts() {
        let store = SqliteStore::open_in_memory().unwrap();
        let stop = |id: &str, time: &str| test_support::record(id, time, "StopLogging");
        // One object: two matches 30 minutes apart (one alert), a third 3 hours later (another).
        let events = [
            stop("s1", "2024-01-15T10:00:00Z"),
            stop("s2", "2024-01-15T10:30:00Z"),
            stop("s3", "2024-01-15T13:30:00Z"),
        ];
        run(&store, vec![("a", doc(&events))]);
        let mut counts: Vec<u64> = store.alerts(&AlertFilter::default()).unwrap().iter().map(|a| a.count).collect();
        counts.sort();
        assert_eq!(counts, vec![1, 2]);
    }

    #[test]
    fn a_quarantined_object_leaves_no_alert() {
        let store = SqliteStore::open_in_memory().unwrap();
        // A good record, then one without eventID: the object is quarantined as a whole.
        let bad = format!("{},{{\"eventTime\":\"2024-01-15T10:00:00Z\"}}", event("s1", "StopLogging", 0, false));
        let outcomes = run(&store, vec![("bad", gzip(format!("{{\"Records\":[{bad}]}}").as_bytes()))]);
        assert!(matches!(outcomes[0], Outcome::Quarantined { .. }), "{outcomes:?}");
        assert!(store.alerts(&AlertFilter::default()).unwrap().is_empty());
    }

    #[test]
    fn correlation_windows_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let failed: Vec<String> = (0..21).map(|i| event(&format!("f{i}"), "ConsoleLogin", i * 10, true)).collect();
        {
            let store = SqliteStore::open(&path).unwrap();
            run(&store, vec![("one", doc(&failed[..12]))]);
            assert!(store.alerts(&AlertFilter::default()).unwrap().is_empty(), "12 < 20");
        }
        // A new process: the 12 are remembered; the 20th fires, the 21st does not fire again.
        let store = SqliteStore::open(&path).unwrap();
        run(&store, vec![("two", doc(&failed[12..]))]);
        let alerts = store.alerts(&AlertFilter::default()).unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!((alerts[0].rule_id.as_str(), alerts[0].count), ("brute", 20));
        assert_eq!(alerts[0].group_key, "alice");
        // 19 for another user: nothing.
        let bob: Vec<String> = (0..19)
            .map(|i| {
                event(&format!("b{i}"), "ConsoleLogin", i, true)
                    .replace("\"userName\":\"alice\"", "\"userName\":\"bob\"")
            })
            .collect();
        run(&store, vec![("three", doc(&bob))]);
        assert_eq!(store.alerts(&AlertFilter::default()).unwrap().len(), 1);
    }

    fn at(id: &str, account: &str, region: &str, day: u32) -> String {
        test_support::record(id, &format!("2024-01-{:02}T10:00:00Z", day), "DescribeInstances")
            .replace("\"awsRegion\":\"us-east-1\"", &format!("\"awsRegion\":\"{region}\""))
            .replace("\"recipientAccountId\":\"111122223333\"", &format!("\"recipientAccountId\":\"{account}\""))
    }

    fn run_regions(store: &SqliteStore, key: &str, events: &[String]) {
        let rules = Arc::new(RuleSet::from_yaml_text(RULES, "t.yml").unwrap());
        let memory = ingest::inline_detection::RegionMemory::new(store.known_regions().unwrap(), 7 * 86_400_000);
        let detection = Detection::new(rules, AlertPolicy::default(), Vec::new()).with_regions(memory);
        let pipeline: Pipeline<String> =
            Pipeline::start_with_detection(store.writer().unwrap(), PipelineConfig::default(), detection);
        let bytes = doc(events);
        pipeline.submit(ObjectJob::in_memory(store::ObjectMeta::local(key, 1), bytes, key.to_string())).unwrap();
        pipeline.finish().unwrap();
    }

    fn region_alerts(store: &SqliteStore) -> Vec<String> {
        let mut v: Vec<String> = store
            .alerts(&AlertFilter {
                rule_id: Some(ingest::inline_detection::NEW_REGION_RULE_ID.into()),
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|a| a.group_key)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_region_never_used_before_alerts_once_the_account_has_a_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            // Learning: the first week of an account raises nothing.
            run_regions(
                &store,
                "a",
                &[at("a1", "111122223333", "us-east-1", 1), at("a2", "111122223333", "eu-west-1", 2)],
            );
            assert!(region_alerts(&store).is_empty());
            // Day 9: a new region alerts; known regions and a second event there do not.
            run_regions(
                &store,
                "b",
                &[
                    at("b1", "111122223333", "us-east-1", 9),
                    at("b2", "111122223333", "ap-south-1", 9),
                    at("b3", "111122223333", "ap-south-1", 9),
                ],
            );
            assert_eq!(region_alerts(&store), vec!["111122223333 @ ap-south-1"]);
        }
        // After a restart the regions are remembered; a new account learns first.
        let store = SqliteStore::open(&path).unwrap();
        run_regions(
            &store,
            "c",
            &[
                at("c1", "111122223333", "eu-west-1", 10),
                at("c2", "111122223333", "sa-east-1", 10),
                at("c3", "444455556666", "us-west-2", 10),
            ],
        );
        assert_eq!(region_alerts(&store), vec!["111122223333 @ ap-south-1", "111122223333 @ sa-east-1"]);
        let alert = &store.alerts(&AlertFilter::default()).unwrap()[0];
        assert_eq!(alert.level, "medium");
        assert_eq!(alert.subject.region.as_deref(), Some("sa-east-1"));
    }

    #[test]
    fn a_quarantined_object_teaches_no_region() {
        let store = SqliteStore::open_in_memory().unwrap();
        run_regions(&store, "a", &[at("a1", "111122223333", "us-east-1", 1)]);
        // One worker: objects are written in the order they are submitted.
        let rules = Arc::new(RuleSet::from_yaml_text(RULES, "t.yml").unwrap());
        let memory = ingest::inline_detection::RegionMemory::new(store.known_regions().unwrap(), 7 * 86_400_000);
        let detection = Detection::new(rules, AlertPolicy::default(), Vec::new()).with_regions(memory);
        let config = PipelineConfig { workers: 1, ..PipelineConfig::default() };
        let pipeline: Pipeline<String> = Pipeline::start_with_detection(store.writer().unwrap(), config, detection);
        let bad = format!("{{\"Records\":[{},{{\"eventTime\":\"x\"}}]}}", at("b1", "111122223333", "ap-south-1", 9));
        for (key, bytes) in [("bad", gzip(bad.as_bytes())), ("good", doc(&[at("b2", "111122223333", "ap-south-1", 9)]))]
        {
            pipeline.submit(ObjectJob::in_memory(store::ObjectMeta::local(key, 1), bytes, key.to_string())).unwrap();
        }
        let outcomes: Vec<Outcome> = pipeline.finish().unwrap().into_iter().map(|s| s.outcome).collect();
        assert!(outcomes.iter().any(|o| matches!(o, Outcome::Quarantined { .. })), "{outcomes:?}");
        // The retry-worthy region is still new when the good object shows it.
        assert_eq!(region_alerts(&store), vec!["111122223333 @ ap-south-1"]);
    }
}
