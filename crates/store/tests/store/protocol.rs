use store::{EventQuery, LedgerStatus, ObjectMeta, ObjectTotals, SqliteStore, StoreError};
use store::{EventStore, StateStore};

use crate::event;

fn totals(records: u64) -> ObjectTotals {
    ObjectTotals { records, ..Default::default() }
}

#[test]
fn an_event_delivered_twice_is_stored_once() {
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let mut w = store.writer().unwrap();
        w.begin_object(&ObjectMeta::local("member/a.json.gz", 1)).unwrap();
        let first = w
            .insert(
                &mut vec![event("e1", "2024-01-01T00:00:00Z", "A"), event("e2", "2024-01-01T00:00:01Z", "B")].into(),
            )
            .unwrap();
        assert_eq!((first.new, first.duplicates), (2, 0));
        w.finish_object(&totals(2)).unwrap();
        // The same event again, e.g. from the organization trail's copy of the file.
        w.begin_object(&ObjectMeta::local("org/a.json.gz", 1)).unwrap();
        let again = w
            .insert(
                &mut vec![event("e1", "2024-01-01T00:00:00Z", "A"), event("e1", "2024-01-01T00:00:00Z", "A")].into(),
            )
            .unwrap();
        assert_eq!((again.new, again.duplicates), (0, 2));
        let counts = w.finish_object(&totals(2)).unwrap();
        assert_eq!(counts.duplicates, 2);
        w.commit().unwrap();
        assert_eq!(store.stats().unwrap().events, 2);
        let org = store.state().ledger_entry("local", "org/a.json.gz").unwrap().unwrap();
        assert_eq!((org.records, org.new_events, org.duplicate_events), (2, 0, 2));
    }
}

#[test]
fn quarantine_undoes_only_that_object() {
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let mut w = store.writer().unwrap();
        w.begin_object(&ObjectMeta::local("good.json.gz", 1)).unwrap();
        w.insert(&mut vec![event("g1", "2024-01-01T00:00:00Z", "A")].into()).unwrap();
        w.finish_object(&totals(1)).unwrap();
        let bad = ObjectMeta::local("bad.json.gz", 7);
        w.begin_object(&bad).unwrap();
        w.insert(
            &mut vec![event("b1", "2024-01-01T00:00:00Z", "A"), event("b2", "2024-01-01T00:00:00Z", "Brand-new-name")]
                .into(),
        )
        .unwrap();
        w.quarantine_object(&bad, "gzip_truncated", "unexpected end").unwrap();
        // Dictionary ids created inside the rolled-back object must not be reused from a cache.
        w.begin_object(&ObjectMeta::local("later.json.gz", 1)).unwrap();
        w.insert(&mut vec![event("l1", "2024-01-01T00:00:00Z", "Brand-new-name")].into()).unwrap();
        w.finish_object(&totals(1)).unwrap();
        w.commit().unwrap();

        let ids: Vec<String> =
            store.events().search(&EventQuery::default()).unwrap().into_iter().map(|r| r.event_id).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&"g1".to_string()) && ids.contains(&"l1".to_string()));
        let found = store
            .events()
            .search(&EventQuery { event_name: Some("Brand-new-name".into()), ..Default::default() })
            .unwrap();
        assert_eq!(found.len(), 1);
        let q = store.state().quarantined().unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].key, "bad.json.gz");
        assert_eq!(q[0].status, LedgerStatus::Quarantined);
        assert_eq!(q[0].reason.as_deref(), Some("gzip_truncated"));
        assert_eq!(q[0].size, 7);
    }
}

#[test]
fn nothing_is_visible_before_commit_and_nothing_survives_a_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path).unwrap();
    {
        let mut w = store.writer().unwrap();
        w.begin_object(&ObjectMeta::local("a.json.gz", 1)).unwrap();
        w.insert(&mut vec![event("e1", "2024-01-01T00:00:00Z", "A")].into()).unwrap();
        w.finish_object(&totals(1)).unwrap();
        assert_eq!(store.stats().unwrap().events, 0, "uncommitted rows are invisible to readers");
        // Dropped without commit: as if the process died here.
    }
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.stats().unwrap().events, 0);
    assert!(reopened.ledger_entry("local", "a.json.gz").unwrap().is_none());
}

#[test]
fn an_aborted_object_leaves_no_trace() {
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let mut w = store.writer().unwrap();
        w.begin_object(&ObjectMeta::local("a.json.gz", 1)).unwrap();
        w.insert(&mut vec![event("e1", "2024-01-01T00:00:00Z", "A")].into()).unwrap();
        w.abort_object().unwrap();
        assert_eq!(w.pending_events(), 0);
        w.commit().unwrap();
        assert!(store.state().ledger_entry("local", "a.json.gz").unwrap().is_none());
        assert_eq!(store.stats().unwrap().events, 0);
    }
}

#[test]
fn commit_refuses_a_half_written_object() {
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let mut w = store.writer().unwrap();
        w.begin_object(&ObjectMeta::local("a.json.gz", 1)).unwrap();
        assert!(matches!(w.commit(), Err(StoreError::ObjectInProgress(_))));
        assert!(matches!(w.begin_object(&ObjectMeta::local("b", 1)), Err(StoreError::ObjectInProgress(_))));
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite_conn(&path);
    conn.execute_batch("PRAGMA user_version = 999").unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).err().expect("must refuse");
    assert_eq!(err.reason_code(), "schema_too_new", "{err}");
}

fn rusqlite_conn(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// Raw blocks gather rows of several objects and are written when full, possibly in the middle
/// of an object. Undoing that object must leave every other object's rows and raw records
/// exactly as they were, and the next object must not be confused with the undone one.
#[test]
fn undo_inside_a_shared_block() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db")).unwrap();
    let mut w = store.writer().unwrap();
    let make = |prefix: &str, n: usize| -> Vec<model::ParsedEvent> {
        (0..n).map(|i| event(&format!("{prefix}-{i}"), "2024-01-01T00:00:00Z", prefix)).collect()
    };
    w.begin_object(&ObjectMeta::local("a", 1)).unwrap();
    w.insert(&mut make("a", 300).into()).unwrap();
    w.finish_object(&totals(300)).unwrap();
    // b fills the open block past its limit (a block is written mid-object), then fails.
    let b = ObjectMeta::local("b", 1);
    w.begin_object(&b).unwrap();
    w.insert(&mut make("b", 900).into()).unwrap();
    w.insert(&mut make("bb", 900).into()).unwrap();
    w.quarantine_object(&b, "gzip_truncated", "cut").unwrap();
    w.begin_object(&ObjectMeta::local("c", 1)).unwrap();
    w.insert(&mut make("c", 50).into()).unwrap();
    w.finish_object(&totals(50)).unwrap();
    w.commit().unwrap();

    let rows = store.search(&EventQuery::default()).unwrap();
    assert_eq!(rows.len(), 350);
    for r in &rows {
        assert!(r.event_id.starts_with("a-") || r.event_id.starts_with("c-"), "{}", r.event_id);
        let original = event(&r.event_id, "2024-01-01T00:00:00Z", r.event_name.as_deref().unwrap());
        assert_eq!(r.raw, original.raw);
    }
    for name in ["a", "c"] {
        for plan in [store::PlanChoice::Time, store::PlanChoice::Postings] {
            let s = SqliteStore::open(dir.path().join("t.db")).unwrap().with_plan(plan);
            let found = s.search(&EventQuery { event_name: Some(name.into()), ..Default::default() }).unwrap();
            assert_eq!(found.len(), if name == "a" { 300 } else { 50 }, "{plan:?} {name}");
        }
    }
    assert!(store.search(&EventQuery { event_name: Some("b".into()), ..Default::default() }).unwrap().is_empty());
    assert_eq!(store.event("c-7").unwrap().unwrap().raw, event("c-7", "2024-01-01T00:00:00Z", "c").raw);
}

/// A quarantined object that is later read successfully (say, the file was completed) gets
/// its one ledger row updated to committed, and its events belong to that row.
#[test]
fn a_quarantined_object_can_later_be_committed() {
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let meta = ObjectMeta::local("late.json.gz", 5);
        {
            let mut w = store.writer().unwrap();
            w.begin_object(&meta).unwrap();
            w.quarantine_object(&meta, "gzip_truncated", "cut short").unwrap();
            w.commit().unwrap();
        }
        assert_eq!(store.state().quarantined().unwrap().len(), 1);
        let mut w = store.writer().unwrap();
        let fixed = ObjectMeta { size: 9, ..meta.clone() };
        w.begin_object(&fixed).unwrap();
        w.insert(&mut vec![event("l1", "2024-01-01T00:00:00Z", "A")].into()).unwrap();
        w.finish_object(&totals(1)).unwrap();
        w.commit().unwrap();
        assert!(store.state().quarantined().unwrap().is_empty());
        let entry = store.state().ledger_entry("local", "late.json.gz").unwrap().unwrap();
        assert_eq!((entry.status, entry.size, entry.new_events, entry.reason), (LedgerStatus::Committed, 9, 1, None));
        assert_eq!(store.state().ledger_entries("local", "").unwrap().len(), 1);
        assert_eq!(store.events().event("l1").unwrap().unwrap().event_name.as_deref(), Some("A"));
    }
}

/// Workers sharing a store read a correlation window under a lock held until their
/// transaction ends: a second writer waits for the first and then sees what it saved (no
/// update is lost). SQLite has one writer: its windows in memory are the truth.
#[test]
fn correlation_windows_are_shared_between_writers() {
    use store::CorrelationWindow;
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let key = vec![("corr-1".to_string(), "alice".to_string())];
        let mut a = store.writer().unwrap();
        let Some(seen) = a.shared_correlation_windows(&key).unwrap() else {
            assert_eq!(backend, "sqlite");
            continue;
        };
        assert!(seen.is_empty());

        let other = store.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let b = std::thread::spawn(move || {
            let mut b = other.writer().unwrap();
            let got = b.shared_correlation_windows(&[("corr-1".to_string(), "alice".to_string())]).unwrap().unwrap();
            tx.send(()).unwrap();
            b.commit().unwrap();
            got
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(rx.try_recv().is_err(), "the second writer waits for the first's transaction");
        let w =
            CorrelationWindow { correlation: "corr-1".into(), group: "alice".into(), entries: "[{\"x\":1}]".into() };
        a.save_correlation_windows(std::slice::from_ref(&w)).unwrap();
        a.commit().unwrap();
        assert_eq!(b.join().unwrap(), vec![w]);
    }
}

/// Dedupe is by eventID alone, whatever the record's time, and holds between two writers
/// of one store taking turns (each keeps a filter of the ids stored; a turn after the other
/// writer's must see its ids).
#[test]
fn dedupe_by_event_id_across_hours_and_between_writers() {
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let mut a = store.writer().unwrap();
        let mut b = store.clone().writer().unwrap();
        let put = |w: &mut Box<dyn store::EventWriter>, key: &str, events: Vec<model::ParsedEvent>| {
            w.begin_object(&ObjectMeta::local(key, 1)).unwrap();
            let n = events.len() as u64;
            let counts = w.insert(&mut events.into()).unwrap();
            w.finish_object(&totals(n)).unwrap();
            w.commit().unwrap();
            (counts.new, counts.duplicates)
        };
        assert_eq!(put(&mut a, "a1", vec![event("x1", "2024-01-01T00:00:00Z", "A")]), (1, 0));
        // The same id, a day later (fixtures do this): one event.
        assert_eq!(put(&mut b, "b1", vec![event("x1", "2024-01-02T05:00:00Z", "A")]), (0, 1));
        // b has its filter now; a stores a new id; b must see it on its next turn.
        assert_eq!(put(&mut a, "a2", vec![event("x2", "2024-01-03T00:00:00Z", "B")]), (1, 0));
        assert_eq!(put(&mut b, "b2", vec![event("x2", "2024-01-03T00:00:00Z", "B")]), (0, 1));
        assert_eq!(put(&mut b, "b3", vec![event("x2", "2023-06-03T00:00:00Z", "B")]), (0, 1));
        assert_eq!(store.stats().unwrap().events, 2);
        let found = store.events().event("x2").unwrap().expect("found by id alone");
        assert_eq!(found.event_time, model::timefmt::parse_rfc3339_millis("2024-01-03T00:00:00Z").unwrap());
    }
}

/// A writer saves its id filter beside the store when it closes and the next writer reads it
/// back; a file left behind by a writer that did not close (a crash) is of an older
/// generation and is not used.
#[test]
fn the_id_filter_is_saved_and_a_stale_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SqliteStore::open(&path).unwrap();
    // Re-deliveries in another hour: only the filter can say they are stored.
    let put = |id: &str, key: &str, time: &str| {
        let mut w = store.writer().unwrap();
        w.begin_object(&ObjectMeta::local(key, 1)).unwrap();
        let counts = w.insert(&mut vec![event(id, time, "A")].into()).unwrap();
        w.finish_object(&totals(1)).unwrap();
        w.commit().unwrap();
        (w, (counts.new, counts.duplicates))
    };
    let (w, counts) = put("x1", "k1", "2024-01-01T00:00:00Z");
    assert_eq!(counts, (1, 0));
    drop(w);
    let saved = dir.path().join("s.db-idfilter");
    assert!(saved.exists(), "the filter is saved when the writer closes");
    // A writer that stores an id and never closes: the saved filter lacks that id.
    let (w, counts) = put("x2", "k2", "2024-01-01T00:00:00Z");
    assert_eq!(counts, (1, 0));
    std::mem::forget(w);
    let (_, counts) = put("x2", "k3", "2024-01-01T05:00:00Z");
    assert_eq!(counts, (0, 1), "the stale filter was not used");
    let (_, counts) = put("x1", "k4", "2024-01-01T07:00:00Z");
    assert_eq!(counts, (0, 1));
    assert_eq!(store.stats().unwrap().events, 2);
}

/// The scale-out writer inserts a group's events into ClickHouse before their ids go into
/// the id index: an insert of the events that fails after the ids went in would otherwise
/// leave ids that say "stored" for events that are not, and the object, delivered again,
/// would be counted as all duplicates and its events lost.
#[test]
fn scaleout_events_that_failed_to_insert_are_stored_on_redelivery() {
    let Some(scaleout) = store::testing::scaleout() else { return };
    let ch = scaleout.clickhouse().clone();
    let db = ch.database().to_string();
    let store: store::Store = scaleout.into();
    let put = |key: &str| -> Result<(u64, u64), StoreError> {
        let mut w = store.writer()?;
        w.begin_object(&ObjectMeta::local(key, 1))?;
        let counts = w.insert(
            &mut vec![event("r1", "2024-01-01T00:00:00Z", "A"), event("r2", "2024-01-01T00:00:01Z", "B")].into(),
        )?;
        w.finish_object(&totals(2))?;
        w.commit()?;
        Ok((counts.new, counts.duplicates))
    };
    // The events table is gone for a moment (a server that fails this one insert).
    ch.execute(&format!("DETACH TABLE {db}.events"), "detach").unwrap();
    assert!(put("a.json.gz").is_err(), "the commit fails while events cannot be inserted");
    ch.execute(&format!("ATTACH TABLE {db}.events"), "attach").unwrap();
    assert!(store.state().ledger_entry("local", "a.json.gz").unwrap().is_none(), "nothing acknowledged");
    // Delivered again: the events are new, and stored.
    assert_eq!(put("a.json.gz").unwrap(), (2, 0));
    assert_eq!(store.stats().unwrap().events, 2);
    assert!(store.events().event("r2").unwrap().is_some());
}

/// Event ids are the record's: any text. The scale-out store sends sets of them beside its
/// queries as a table of their own (a multipart request); ids that look like the request's
/// own framing must still be stored once, found as duplicates and read back by search.
#[test]
fn ids_that_look_like_request_framing_are_only_ids() {
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let hostile = [
            "a\r\n--trailwatch-id-set-boundary--\r\n",
            "b\r\n--trailwatch-id-set-boundary\r\nContent-Disposition: form-data; name=\"ids\"\r\n\r\n{\"id\":\"x\"}",
            "c\"},{\"id\":\"d",
            "e\tf\\n\u{0}",
        ];
        let events: Vec<model::ParsedEvent> = hostile
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let record = serde_json::json!({"eventID": id, "eventTime": format!("2024-01-01T00:00:0{i}Z"),
                    "eventName": "A", "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"}});
                model::ParsedEvent::from_json(&record.to_string()).unwrap()
            })
            .collect();
        for (key, expect) in [("first.json.gz", (4, 0)), ("again.json.gz", (0, 4))] {
            let mut w = store.writer().unwrap();
            w.begin_object(&ObjectMeta::local(key, 1)).unwrap();
            let counts = w.insert(&mut events.clone().into()).unwrap();
            assert_eq!((counts.new, counts.duplicates), expect, "{key}");
            w.finish_object(&totals(4)).unwrap();
            w.commit().unwrap();
        }
        let mut found: Vec<String> = Vec::new();
        let q = EventQuery { limit: Some(10), ..Default::default() };
        store
            .events()
            .for_each_event(&q, &mut |row| {
                found.push(row.event_id);
                true
            })
            .unwrap();
        found.sort();
        let mut want: Vec<String> = hostile.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(found, want);
    }
}

/// Two scale-out writers that both pass the duplicate check before either commits (two
/// workers given the org trail's and the member trail's copy of a file at once) both insert
/// the records. The copies must still count once: `events` collapses them, and on a cluster
/// only if they land on one shard (the sharding key). With copies on two shards, each shard's
/// `FINAL` keeps one and every figure below counts about half of them twice.
#[test]
fn copies_stored_by_racing_writers_count_once() {
    let Some(store) = store::testing::scaleout() else { return };
    let store = store::Store::from(store);
    let records: Vec<_> = (0..40).map(|i| event(&format!("race-{i}"), "2024-01-01T00:00:00Z", "Race")).collect();
    let (mut a, mut b) = (store.writer().unwrap(), store.clone().writer().unwrap());
    for (w, key) in [(&mut a, "member/a.json.gz"), (&mut b, "org/a.json.gz")] {
        w.begin_object(&ObjectMeta::local(key, 1)).unwrap();
        let counts = w.insert(&mut records.clone().into()).unwrap();
        assert_eq!((counts.new, counts.duplicates), (40, 0), "neither has committed yet");
        w.finish_object(&totals(40)).unwrap();
    }
    a.commit().unwrap();
    b.commit().unwrap();
    let ids: Vec<String> =
        store.events().search(&EventQuery::default()).unwrap().into_iter().map(|r| r.event_id).collect();
    assert_eq!(ids.len(), 40, "{ids:?}");
    let named = EventQuery { event_name: Some("Race".into()), ..Default::default() };
    assert_eq!(store.events().search(&named).unwrap().len(), 40, "through the search keys");
    assert_eq!(store.stats().unwrap().events, 40);
    let spec = store::SummarySpec { tops: vec![store::Dimension::EventName], top_n: 3, ..Default::default() };
    // Unfiltered (merged at read time), and filtered (the matching rows grouped by event).
    let alice = EventQuery { principal: Some("alice".into()), ..Default::default() };
    for q in [EventQuery::default(), named, alice] {
        let summary = store.events().summarize(&q, &spec).unwrap();
        assert_eq!(summary.events, 40, "{q:?}");
        assert_eq!(summary.top(store::Dimension::EventName), [("Race".to_string(), 40)]);
    }
}
