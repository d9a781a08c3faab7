//! The SQLite backup is one instant of the store, taken while a writer keeps committing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use store::{EventQuery, ObjectMeta, ObjectTotals, SqliteStore};
use store::{EventStore, StateStore};

use crate::event;

const PER_OBJECT: usize = 200;

#[test]
fn a_backup_while_objects_commit_is_one_instant() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("live.db")).unwrap());
    let (stop, committed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let writer = {
        let (store, stop, committed) = (store.clone(), stop.clone(), committed.clone());
        std::thread::spawn(move || {
            let mut w = store.writer().unwrap();
            let mut object = 0;
            while !stop.load(Ordering::Relaxed) {
                w.begin_object(&ObjectMeta::local(format!("o{object}.json.gz"), 1)).unwrap();
                let events: Vec<_> = (0..PER_OBJECT)
                    .map(|i| {
                        event(
                            &format!("o{object}-e{i}"),
                            &format!("2024-01-01T00:{:02}:{:02}Z", object % 60, i % 60),
                            "RunInstances",
                        )
                    })
                    .collect();
                w.insert(&mut events.into()).unwrap();
                w.finish_object(&ObjectTotals { records: PER_OBJECT as u64, ..Default::default() }).unwrap();
                w.commit().unwrap();
                object += 1;
                committed.store(object, Ordering::Relaxed);
            }
            object
        })
    };
    while committed.load(Ordering::Relaxed) < 20 {
        std::thread::yield_now();
    }
    let copy = dir.path().join("copy.db");
    store.backup_to(&copy).unwrap();
    let after_backup = committed.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let total = writer.join().unwrap();
    assert!(after_backup < total || total > 20, "the writer went on after the backup");

    let restored = SqliteStore::open(&copy).unwrap();
    let all = |s: &dyn EventStore| -> Vec<String> {
        s.search(&EventQuery::default()).unwrap().into_iter().map(|r| r.event_id).collect()
    };
    let (in_copy, in_live) = (all(&restored), all(&*store));
    assert_eq!(in_live.len(), total * PER_OBJECT);
    assert!(in_copy.len() < in_live.len(), "taken mid-ingest: {} of {}", in_copy.len(), in_live.len());
    // Whole objects only, and exactly the first n of them.
    assert_eq!(in_copy.len() % PER_OBJECT, 0);
    let n = in_copy.len() / PER_OBJECT;
    assert!(n >= 20);
    let expected: BTreeSet<String> = (0..n).flat_map(|o| (0..PER_OBJECT).map(move |i| format!("o{o}-e{i}"))).collect();
    assert_eq!(in_copy.iter().cloned().collect::<BTreeSet<_>>(), expected);
    // The live store at that instant, restricted to what had arrived, answers the same.
    let live_then: Vec<String> = in_live.into_iter().filter(|id| expected.contains(id)).collect();
    assert_eq!(in_copy, live_then);
    assert_eq!(restored.stats().unwrap().objects_committed as usize, n);
    for o in 0..n {
        assert!(restored.ledger_entry(ObjectMeta::LOCAL_BUCKET, &format!("o{o}.json.gz")).unwrap().is_some());
    }
}
