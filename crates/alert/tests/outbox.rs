//! The outbox against real HTTP receivers: alerts queue while the receiver is down, and after
//! a restart of trailwatch and the receiver's recovery every alert arrives, signed, none lost.

use std::sync::{Arc, Mutex};

use alert::{Outbox, Sink, SinkKind};
use axum::http::HeaderMap;
use store::EventStore;
use store::{AlertHit, AlertPolicy, AlertSubject, SinkRoute, SqliteStore, Store};

type Received = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

/// A receiver on `port` that records (path, signature header, body) and answers 200.
async fn receiver(listener: tokio::net::TcpListener, got: Received) {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
        let got = got.clone();
        async move {
            let sig = headers.get("x-trailwatch-signature").map(|v| v.to_str().unwrap().to_owned());
            got.lock().unwrap().push((uri.path().to_owned(), sig, body));
            "ok"
        }
    });
    axum::serve(listener, app).await.unwrap();
}

fn hit(n: usize) -> AlertHit {
    AlertHit {
        rule_id: format!("rule-{n}"),
        title: format!("Rule {n}"),
        level: "high".into(),
        group_key: "alice".into(),
        event_ids: vec![format!("event-{n}")],
        first_time: 1_705_315_523_000,
        last_time: 1_705_315_523_000,
        subject: AlertSubject {
            principal: "arn:aws:iam::111122223333:user/<b>alice</b>".into(),
            account: Some("111122223333".into()),
            region: Some("eu-west-1".into()),
            source_ip: Some("203.0.113.7".into()),
            event_source: Some("ec2.amazonaws.com".into()),
            event_name: Some("StopInstances".into()),
            error_code: None,
        },
    }
}

fn sinks(port: u16) -> Vec<Sink> {
    vec![
        Sink {
            name: "hook".into(),
            kind: SinkKind::Webhook { url: format!("http://127.0.0.1:{port}/hook"), secret: Some("s3cret".into()) },
            rate_per_minute: 600,
        },
        Sink {
            name: "slack".into(),
            kind: SinkKind::Slack { url: format!("http://127.0.0.1:{port}/slack") },
            rate_per_minute: 600,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_queue_while_the_receiver_is_down_and_all_arrive_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    // A port with nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let policy = AlertPolicy {
        suppression_ms: 3_600_000,
        routes: vec![
            SinkRoute { sink: "hook".into(), min_level: "low".into() },
            SinkRoute { sink: "slack".into(), min_level: "low".into() },
        ],
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut w = store.writer().unwrap();
        let opened = w.record_alerts(&(0..5).map(hit).collect::<Vec<_>>(), &policy).unwrap();
        w.commit().unwrap();
        assert_eq!(opened.len(), 5);
        let store: Store = store.into();
        let outbox = Outbox::new(store.clone(), sinks(port), Some("https://tw.example".into()));
        let d = outbox.drain(100).await.unwrap();
        assert_eq!((d.delivered, d.failed), (0, 10), "receiver down: every delivery fails");
        let backlog = store.state().outbox_backlog().unwrap();
        let pending: Vec<(u64, u64)> = backlog.iter().map(|b| (b.pending, b.failing)).collect();
        assert_eq!(pending, vec![(5, 5), (5, 5)]);
        let first = store.state().deliveries(opened[0]).unwrap();
        assert!(first.iter().all(|d| d.attempts == 1 && d.last_error.is_some()), "{first:?}");
        // Not due again before the backoff.
        assert_eq!(outbox.drain(100).await.unwrap(), alert::Drained::default());
    }
    // trailwatch restarts; the receiver comes back on the same port.
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(receiver(listener, got.clone()));
    let store: Store = SqliteStore::open(&path).unwrap().into();
    let outbox = Outbox::new(store.clone(), sinks(port), Some("https://tw.example".into()));
    let later = model::timefmt::now_millis() + 60_000;
    let d = outbox.drain_due_at(later, 100).await.unwrap();
    assert_eq!((d.delivered, d.failed), (10, 0));
    assert!(store.state().outbox_backlog().unwrap().is_empty());
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 10);
    let hooks: Vec<_> = got.iter().filter(|(p, _, _)| p == "/hook").collect();
    assert_eq!(hooks.len(), 5);
    let mut rules: Vec<String> = Vec::new();
    for (_, sig, body) in &hooks {
        assert_eq!(sig.as_deref(), Some(alert::signature("s3cret", body.as_bytes()).as_str()), "signed exactly");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["source_ip"], "203.0.113.7");
        assert!(v["summary"].as_str().unwrap().contains("StopInstances"), "{v}");
        assert!(v["link"].as_str().unwrap().starts_with("https://tw.example/alerts/"));
        rules.push(v["rule"].as_str().unwrap().to_owned());
    }
    rules.sort();
    assert_eq!(rules, (0..5).map(|n| format!("rule-{n}")).collect::<Vec<_>>(), "every alert, once");
    let slack: Vec<_> = got.iter().filter(|(p, _, _)| p == "/slack").collect();
    assert_eq!(slack.len(), 5);
    let text = serde_json::from_str::<serde_json::Value>(&slack[0].2).unwrap()["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("from 203.0.113.7") && text.contains("eu-west-1") && text.contains("StopInstances"),
        "{text}"
    );
    assert!(text.contains("&lt;b&gt;alice") && !text.contains("<b>"), "attacker text is escaped: {text}");
    // Delivered rows are not sent again.
    assert_eq!(outbox.drain_due_at(later + 3_600_000, 100).await.unwrap().delivered, 0);
}

#[tokio::test]
async fn a_sink_over_its_rate_limit_waits_without_using_attempts() {
    let store = SqliteStore::open_in_memory().unwrap();
    let policy =
        AlertPolicy { suppression_ms: 0, routes: vec![SinkRoute { sink: "hook".into(), min_level: "low".into() }] };
    let mut w = store.writer().unwrap();
    w.record_alerts(&(0..3).map(hit).collect::<Vec<_>>(), &policy).unwrap();
    w.commit().unwrap();
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(receiver(listener, got.clone()));
    let store: Store = store.into();
    let mut sink = sinks(port).remove(0);
    sink.rate_per_minute = 2;
    let outbox = Outbox::new(store.clone(), vec![sink], None);
    let d = outbox.drain(100).await.unwrap();
    assert_eq!((d.delivered, d.deferred), (2, 1));
    let pending = store.state().due_deliveries(i64::MAX, 10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_never_stores_or_logs_its_secret_url() {
    let store = SqliteStore::open_in_memory().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sinks = vec![
        Sink {
            name: "slack".into(),
            kind: SinkKind::Slack { url: format!("http://127.0.0.1:{port}/services/T000/B000/SlackPathSecret42") },
            rate_per_minute: 600,
        },
        Sink {
            name: "hook".into(),
            kind: SinkKind::Webhook {
                url: format!("http://hookuser:HookPassSecret@127.0.0.1:{port}/in?token=QuerySecret42"),
                secret: None,
            },
            rate_per_minute: 600,
        },
    ];
    let policy = AlertPolicy {
        suppression_ms: 0,
        routes: vec![
            SinkRoute { sink: "slack".into(), min_level: "low".into() },
            SinkRoute { sink: "hook".into(), min_level: "low".into() },
        ],
    };
    let mut w = store.writer().unwrap();
    let opened = w.record_alerts(&[hit(1)], &policy).unwrap();
    w.commit().unwrap();
    let store: Store = store.into();
    let d = Outbox::new(store.clone(), sinks, None).drain(10).await.unwrap();
    assert_eq!(d.failed, 2);
    let deliveries = store.state().deliveries(opened[0]).unwrap();
    assert_eq!(deliveries.len(), 2);
    for d in deliveries {
        let e = d.last_error.expect("the failure is recorded");
        for secret in ["SlackPathSecret42", "QuerySecret42", "HookPassSecret", "/services/", "token="] {
            assert!(!e.contains(secret), "{secret} in {e:?}");
        }
    }
}
