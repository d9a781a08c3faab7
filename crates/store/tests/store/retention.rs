//! Retention: expired events leave (per category), newer ones and those alerts refer to
//! stay, every read path agrees, a second pass does nothing, and an SQLite file under a
//! steady feed stops growing.

use std::collections::BTreeSet;

use model::{timefmt, ParsedEvent};
use store::EventStore;
use store::{AlertHit, AlertPolicy, AlertSubject, EventQuery, ObjectMeta, ObjectTotals, RetentionPolicy};

const DAY: i64 = 86_400_000;

fn record(id: &str, time: i64, category: &str, user: &str) -> ParsedEvent {
    ParsedEvent::from_json(&format!(
        r#"{{"eventVersion":"1.09","eventID":"{id}","eventTime":"{}","eventName":"GetObject","eventSource":"s3.amazonaws.com",
        "eventCategory":"{category}","awsRegion":"us-east-1","recipientAccountId":"111122223333","sourceIPAddress":"203.0.113.7",
        "userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{user}","userName":"{user}"}}}}"#,
        timefmt::format_millis(time)
    ))
    .unwrap()
}

struct Written {
    id: String,
    time: i64,
    category: &'static str,
}

/// Writes `events` as one object; the `n`th event overall (`first` + index) is by `user{n % 7}`.
fn write(store: &dyn EventStore, key: &str, first: usize, events: &[Written]) {
    let mut w = store.writer().unwrap();
    w.begin_object(&ObjectMeta::local(key, 1)).unwrap();
    let mut batch: Vec<ParsedEvent> = events
        .iter()
        .enumerate()
        .map(|(i, e)| record(&e.id, e.time, e.category, &format!("user{}", (first + i) % 7)))
        .collect();
    for chunk in batch.chunks_mut(300) {
        w.insert(&mut chunk.to_vec().into()).unwrap();
    }
    batch.clear();
    w.finish_object(&ObjectTotals { records: events.len() as u64, ..Default::default() }).unwrap();
    w.commit().unwrap();
}

fn all_ids(store: &dyn EventStore, q: EventQuery) -> BTreeSet<String> {
    store.search(&EventQuery { limit: None, ..q }).unwrap().into_iter().map(|r| r.event_id).collect()
}

#[test]
fn expired_events_go_and_alerted_ones_stay() {
    for (backend, store) in store::testing::backends() {
        let now = timefmt::from_civil(2026, 6, 15, 12, 0, 0).unwrap();
        // Ages from 0 to ~120 days, both categories, interleaved so blocks and months mix
        // expired and kept rows.
        let events: Vec<Written> = (0..2400)
            .map(|i| Written {
                id: if i % 2 == 0 { format!("{:08x}-0000-4000-8000-{:012x}", i, i) } else { format!("ev-{i}") },
                time: now - (i as i64 % 120) * DAY - (i as i64) * 1000,
                category: if i % 3 == 0 { "Data" } else { "Management" },
            })
            .collect();
        write(store.events(), "a.json.gz", 0, &events[..1200]);
        write(store.events(), "b.json.gz", 1200, &events[1200..]);
        let policy = RetentionPolicy { days: Some(30), categories: [("Data".to_string(), 7)].into() };
        let expired = |e: &Written| e.time < now - if e.category == "Data" { 7 } else { 30 } * DAY;
        // An alert on two expired events (one of each category) and one that stays.
        let referenced: Vec<&Written> = vec![
            events.iter().find(|e| expired(e) && e.category == "Data").unwrap(),
            events.iter().find(|e| expired(e) && e.category == "Management").unwrap(),
            events.iter().find(|e| !expired(e)).unwrap(),
        ];
        let mut w = store.writer().unwrap();
        w.begin_object(&ObjectMeta::local("alerts.json.gz", 1)).unwrap();
        w.finish_object(&ObjectTotals::default()).unwrap();
        w.record_alerts(
            &[AlertHit {
                rule_id: "r1".into(),
                title: "t".into(),
                level: "high".into(),
                group_key: "g".into(),
                event_ids: referenced.iter().map(|e| e.id.clone()).collect(),
                first_time: 1,
                last_time: 2,
                subject: AlertSubject::default(),
            }],
            &AlertPolicy::default(),
        )
        .unwrap();
        w.commit().unwrap();
        let expected: BTreeSet<String> = events
            .iter()
            .filter(|e| !expired(e) || referenced.iter().any(|r| r.id == e.id))
            .map(|e| e.id.clone())
            .collect();
        assert!(expected.len() < events.len() / 2 && expected.len() > 100, "{backend}: the data mixes both");

        let mut resume = None;
        let mut total = store::RetentionReport::default();
        for _ in 0..1000 {
            let r = store.events().apply_retention(&policy, now, resume, 1).unwrap();
            resume = r.resume_after;
            total += r;
            if resume.is_none() {
                break;
            }
        }
        assert_eq!(total.events_deleted as usize, events.len() - expected.len(), "{backend}: {total:?}");
        assert_eq!(total.events_kept_for_alerts, 2, "{backend}: {total:?}");

        assert_eq!(all_ids(store.events(), EventQuery::default()), expected, "{backend}: search after retention");
        // Indexed paths agree with the scan: by principal, and by time range.
        let alice = "arn:aws:iam::111122223333:user/user3";
        let by_principal: BTreeSet<String> = events
            .iter()
            .enumerate()
            .filter(|(i, e)| i % 7 == 3 && expected.contains(&e.id))
            .map(|(_, e)| e.id.clone())
            .collect();
        assert_eq!(
            all_ids(store.events(), EventQuery { principal: Some(alice.into()), ..Default::default() }),
            by_principal,
            "{backend}: by principal"
        );
        // Pages of a search: full until the last, so no search key of a deleted event is
        // left to take a row's place.
        let mut q = EventQuery { principal: Some(alice.into()), limit: Some(5), ..Default::default() };
        let mut paged = BTreeSet::new();
        loop {
            let rows = store.events().search(&q).unwrap();
            if rows.len() < 5 {
                paged.extend(rows.into_iter().map(|r| r.event_id));
                break;
            }
            q.after = Some(rows[4].page());
            paged.extend(rows.into_iter().map(|r| r.event_id));
        }
        assert_eq!(paged, by_principal, "{backend}: by principal, in pages");
        for e in &events {
            assert_eq!(
                store.events().event(&e.id).unwrap().is_some(),
                expected.contains(&e.id),
                "{backend}: event({})",
                e.id
            );
        }
        let alert = store.state().alerts(&Default::default()).unwrap().remove(0);
        let mut alerted = store.state().alert_event_ids(alert.id).unwrap();
        alerted.sort();
        let mut want: Vec<String> = referenced.iter().map(|e| e.id.clone()).collect();
        want.sort();
        assert_eq!(alerted, want);
        for id in &want {
            assert!(store.events().event(id).unwrap().is_some(), "{backend}: alerted event {id} kept");
        }
        assert_eq!(store.stats().unwrap().events as usize, expected.len(), "{backend}: stats");

        // A second pass finds nothing more.
        let again = store.events().apply_retention(&policy, now, None, 1000).unwrap();
        assert_eq!(again.events_deleted, 0, "{backend}: {again:?}");
        assert!(store.events().storage().unwrap().bytes > 0);

        // The ledger keeps objects recorded within the policy.
        assert!(store.state().ledger_entry(ObjectMeta::LOCAL_BUCKET, "a.json.gz").unwrap().is_some());
    }
}

#[test]
fn sqlite_file_stops_growing_under_a_steady_feed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::SqliteStore::open(dir.path().join("t.db")).unwrap();
    let policy = RetentionPolicy { days: Some(5), ..Default::default() };
    let start = timefmt::from_civil(2026, 1, 1, 0, 0, 0).unwrap();
    let mut sizes = Vec::new();
    for day in 0..30i64 {
        let now = start + day * DAY;
        let events: Vec<Written> = (0..3000)
            .map(|i| Written { id: format!("d{day}-{i}"), time: now - i * 20_000, category: "Management" })
            .collect();
        write(&store, &format!("day{day}.json.gz"), 0, &events);
        crate::retain_all(&store, &policy, now, 8);
        // The database's size in pages (what a checkpoint leaves in the file), not the WAL.
        let s = store.storage().unwrap();
        sizes.push(s.bytes - s.wal_bytes);
    }
    let stats = store.stats().unwrap();
    assert!(stats.events <= 6 * 3000, "about five days kept: {}", stats.events);
    // A database created by this version gives freed pages back (incremental vacuum): keep
    // one day of the five, and the file shrinks instead of keeping the pages for later.
    let before = store.storage().unwrap();
    let now = start + 29 * DAY;
    let r = store::retention::run_pass(
        &store,
        &RetentionPolicy { days: Some(1), ..Default::default() },
        now,
        8,
        std::time::Duration::ZERO,
        &|| false,
    )
    .unwrap();
    assert!(r.events_deleted >= 3 * 3000, "{r:?}");
    let after = store.storage().unwrap();
    assert!(after.free_bytes <= 4 * 16384, "{} bytes of free pages left in the file", after.free_bytes);
    assert!(after.bytes - after.wal_bytes < before.bytes - before.wal_bytes, "the file shrank: {before:?} → {after:?}");
    let file_at = |day: usize| sizes[day];
    // After the first week the file holds a steady five days: it may wobble, not grow.
    let (warm, end) = (file_at(10), file_at(29));
    assert!(end as f64 <= warm as f64 * 1.10, "file grew from {warm} to {end} bytes: {sizes:?}");
    assert!(file_at(29) < file_at(4) * 3, "sizes {sizes:?}");
}
