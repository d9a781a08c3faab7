//! Event forwarding against a real HTTP receiver and a real file: every stored event
//! arrives, in arrival order, signed; a receiver that fails holds the position; a restarted
//! forwarder goes on where it stopped; retention leaves what is not forwarded yet.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use forward::{ForwardSink, ForwardSpec, Forwarder, Step};
use store::{ObjectMeta, ObjectTotals, SqliteStore, Store};

fn write(store: &Store, object: usize, n: usize) -> Vec<String> {
    let mut w = store.writer().unwrap();
    w.begin_object(&ObjectMeta::local(format!("o{object}.json.gz"), 1)).unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("o{object}-e{i}")).collect();
    let events: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            model::ParsedEvent::from_json(&format!(
                r#"{{"eventID":"{id}","eventTime":"2024-01-0{}T00:00:{:02}Z","eventName":"GetObject","eventSource":"s3.amazonaws.com","sourceIPAddress":"203.0.113.7"}}"#,
                1 + object % 9,
                i % 60
            ))
            .unwrap()
        })
        .collect();
    w.insert(&mut events.into()).unwrap();
    w.finish_object(&ObjectTotals { records: n as u64, ..Default::default() }).unwrap();
    w.commit().unwrap();
    ids
}

type Bodies = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// Answers 503 to the first `fail` requests, then records (signature, body) and answers 200.
async fn receiver(fail: usize) -> (u16, Bodies) {
    let got: Bodies = Arc::default();
    let seen = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let g = got.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
        let (got, seen) = (g.clone(), seen.clone());
        async move {
            if seen.fetch_add(1, Ordering::SeqCst) < fail {
                return (StatusCode::SERVICE_UNAVAILABLE, "down");
            }
            let sig = headers.get("x-trailwatch-signature").map(|v| v.to_str().unwrap().to_owned());
            got.lock().unwrap().push((sig, body));
            (StatusCode::OK, "ok")
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, got)
}

fn spec(name: &str, sink: ForwardSink, batch: usize) -> ForwardSpec {
    ForwardSpec { name: name.into(), sink, format: export::ExportFormat::Jsonl, batch, start_at_end: false }
}

#[tokio::test]
async fn every_event_reaches_the_webhook_in_order_once_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::from(SqliteStore::open(dir.path().join("s.db")).unwrap());
    let mut all: Vec<String> = (0..5).flat_map(|o| write(&store, o, 130)).collect();
    let (port, got) = receiver(2).await;
    let sink = ForwardSink::Webhook { url: format!("http://127.0.0.1:{port}/events"), secret: Some("k".into()) };
    let mut f = Forwarder::new(store.clone(), spec("siem", sink.clone(), 200));
    // Two refusals: the position does not move and the error is recorded.
    for _ in 0..2 {
        assert!(matches!(f.step().await.unwrap(), Step::Failed(_)));
        let c = store.events().forward_cursor("siem").unwrap().unwrap();
        assert_eq!((c.position, c.delivered), (0, 0));
        assert!(c.last_error.unwrap().contains("503"));
    }
    assert_eq!(f.step().await.unwrap(), Step::Delivered(200));
    assert_eq!(f.step().await.unwrap(), Step::Delivered(200));
    // A restart: a new forwarder continues from the stored position; new events follow.
    drop(f);
    all.extend(write(&store, 5, 50));
    let mut f = Forwarder::new(store.clone(), spec("siem", sink, 200));
    while let Step::Delivered(n) = f.step().await.unwrap() {
        if n == 0 {
            break;
        }
    }
    let got = got.lock().unwrap().clone();
    let mut ids = Vec::new();
    for (sig, body) in &got {
        assert_eq!(sig.as_deref(), Some(alert::signature("k", body.as_bytes()).as_str()));
        for line in body.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            ids.push(v["eventID"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(ids, all, "every event once, in arrival order");
    let c = store.events().forward_cursor("siem").unwrap().unwrap();
    assert_eq!((c.delivered as usize, c.last_error), (all.len(), None));
}

#[tokio::test]
async fn the_file_sink_appends_and_a_new_forwarder_can_start_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::from(SqliteStore::open(dir.path().join("s.db")).unwrap());
    let first = write(&store, 0, 40);
    let path = dir.path().join("events.ocsf.jsonl");
    let mut s = spec("archive", ForwardSink::File { path: path.clone() }, 1000);
    s.format = export::ExportFormat::Ocsf;
    let mut f = Forwarder::new(store.clone(), s);
    assert_eq!(f.step().await.unwrap(), Step::Delivered(40));
    let second = write(&store, 1, 10);
    assert_eq!(f.step().await.unwrap(), Step::Delivered(10));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ids: Vec<&str> = lines.iter().map(|l| l["metadata"]["uid"].as_str().unwrap()).collect();
    let want: Vec<&str> = first.iter().chain(&second).map(String::as_str).collect();
    assert_eq!(ids, want);
    assert!(lines.iter().all(|l| l["class_uid"] == 6003));
    // A forwarder added later, told to start at the end, sends only what comes after.
    let tail = dir.path().join("tail.jsonl");
    let mut t = spec("tail", ForwardSink::File { path: tail.clone() }, 1000);
    t.start_at_end = true;
    let mut f = Forwarder::new(store.clone(), t);
    assert_eq!(f.step().await.unwrap(), Step::Delivered(0));
    let third = write(&store, 2, 3);
    assert_eq!(f.step().await.unwrap(), Step::Delivered(3));
    let tail_ids: Vec<String> = std::fs::read_to_string(&tail)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["eventID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tail_ids, third);
}

#[tokio::test]
async fn retention_waits_for_a_forwarder_that_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::from(SqliteStore::open(dir.path().join("s.db")).unwrap());
    for o in 0..3 {
        write(&store, o, 1100);
    }
    let (port, _got) = receiver(usize::MAX).await;
    let sink = ForwardSink::Webhook { url: format!("http://127.0.0.1:{port}/"), secret: None };
    let mut f = Forwarder::new(store.clone(), spec("down", sink, 100));
    assert!(matches!(f.step().await.unwrap(), Step::Failed(_)));
    // Everything is years old; nothing has been forwarded: retention keeps it all.
    let policy = store::RetentionPolicy { days: Some(1), ..Default::default() };
    let now = model::timefmt::now_millis();
    let r = store::retention::run_pass(store.events(), &policy, now, 64, std::time::Duration::ZERO, &|| false).unwrap();
    assert_eq!(r.events_deleted, 0);
    assert_eq!(store.stats().unwrap().events, 3300);
    // Once the forwarder has passed them, they go.
    let (port, _got) = receiver(0).await;
    let sink = ForwardSink::Webhook { url: format!("http://127.0.0.1:{port}/"), secret: None };
    let mut f = Forwarder::new(store.clone(), spec("down", sink, 5000));
    assert_eq!(f.step().await.unwrap(), Step::Delivered(3300));
    let r = store::retention::run_pass(store.events(), &policy, now, 64, std::time::Duration::ZERO, &|| false).unwrap();
    // The last block holds the forwarder's position: it is the one retention still waits for.
    assert!(r.events_deleted >= 2000, "{r:?}");
}
