//! `ingest --local` counts, re-ingest, and the published sample tree.

use std::collections::BTreeSet;

use serde_json::json;

use crate::util::{records_in, run, run_json, s, simulate, tsv_ids};

#[test]
fn ingesting_a_tree_twice_stores_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let tree =
        simulate(dir.path(), "tree", &["--accounts", "2", "--hours", "3", "--events", "4000", "--scenario", "all"]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap().len() as u64;
    let records = manifest["records"].as_u64().unwrap();
    let db = dir.path().join("t.db");

    let first = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
    assert_eq!(first, json!({"files": files, "records": records, "new": records, "duplicates": 0, "quarantined": 0}));
    let again = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
    assert_eq!(again, json!({"files": 0, "records": 0, "new": 0, "duplicates": 0, "quarantined": 0}));

    // A copy of the same files under other keys (as an organization trail and a member
    // trail deliver the same events): every record is a duplicate.
    let copy = dir.path().join("copy");
    for path in test_support::files_under(&tree) {
        let rel = path.strip_prefix(&tree).unwrap().to_string_lossy().replace("AWSLogs/", "copy/AWSLogs/");
        test_support::put(&copy, &rel, &std::fs::read(&path).unwrap());
    }
    let copied = run_json(&["ingest", "--local", s(&copy), "--db", s(&db), "--format", "json"]);
    assert_eq!(copied, json!({"files": files, "records": records, "new": 0, "duplicates": records, "quarantined": 0}));

    let stored = tsv_ids(&run(&["search", "--db", s(&db), "--limit", "0", "--format", "tsv"]));
    let expected: BTreeSet<String> = records_in(&tree).into_keys().collect();
    assert_eq!(stored.len() as u64, records);
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), expected);
}

/// The published tree (panther records, regrouped into five log files): every record is
/// read, and records that share an eventID are one event.
#[test]
fn the_published_sample_tree() {
    let tree = test_support::shared_data("cloudtrail/s3");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    // These fixtures reuse eventIDs for different records; whichever arrives first is kept.
    let mut by_id: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for path in test_support::files_under(&tree).iter().filter(|p| p.to_string_lossy().ends_with(".json.gz")) {
        let (events, _) = model::read_all_events(std::fs::File::open(path).unwrap()).unwrap();
        for e in events {
            by_id.entry(e.event_id.clone()).or_default().push(e.raw);
        }
    }
    let records = records_in(&tree);
    let report = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
    assert_eq!(report["files"], 5);
    assert_eq!(report["records"], 166);
    assert_eq!(report["new"], records.len());
    assert_eq!(report["duplicates"], 166 - records.len());
    assert_eq!(report["quarantined"], 0);
    let jsonl = run(&["search", "--db", s(&db), "--limit", "0", "--format", "jsonl"]);
    for line in jsonl.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = value["eventID"].as_str().unwrap();
        // The stored text is a record as delivered, byte for byte.
        assert!(by_id[id].iter().any(|raw| raw == line), "{id}");
    }
    assert_eq!(jsonl.lines().count(), records.len());
}

#[test]
fn simulate_is_deterministic_and_demo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = simulate(dir.path(), "a", &["--hours", "2", "--events", "500", "--seed", "9"]);
    let b = simulate(dir.path(), "b", &["--hours", "2", "--events", "500", "--seed", "9"]);
    let read = |root: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        test_support::files_under(root)
            .into_iter()
            .map(|p| (p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap()))
            .collect()
    };
    assert_eq!(read(&a), read(&b));

    let demo = dir.path().join("demo");
    let out = run(&["demo", "--data-dir", s(&demo), "--events", "1500", "--no-serve"]);
    for scenario in ["trail-tampering", "root-usage", "instance-stop-start-unusual-ip"] {
        assert!(out.contains(scenario), "{out}");
    }
    assert!(out.contains("StopLogging") && out.contains("203.0.113.7"), "{out}");
    // The demo's digests are validated and its tampering found.
    assert!(out.contains("INVALID"), "{out}");
    for kind in ["LOG_MODIFIED", "LOG_MISSING", "DIGEST_MISSING", "CHAIN_RESTART"] {
        assert!(out.contains(kind), "{kind}: {out}");
    }
    // A second run reuses the bucket and ingests nothing new.
    let again = run(&["demo", "--data-dir", s(&demo), "--events", "1500", "--no-serve"]);
    assert!(again.contains("reusing") && again.contains("ingested 0 new files"), "{again}");
    assert!(again.contains("(0 new)"), "findings are recorded once: {again}");
}

/// Two processes ingesting into one database at the same time (a running service and a
/// manual backfill, say) take turns: both finish, and every event is there once.
#[test]
fn concurrent_ingests_into_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let a = simulate(dir.path(), "a", &["--hours", "2", "--events", "3000", "--seed", "1"]);
    let b = simulate(dir.path(), "b", &["--hours", "2", "--events", "3000", "--seed", "2"]);
    let db = dir.path().join("t.db");
    run(&["ingest", "--local", s(&a), "--db", s(&db)]); // create the schema first
    let c = simulate(dir.path(), "c", &["--hours", "2", "--events", "3000", "--seed", "3"]);
    let spawn = |tree: &std::path::Path| {
        crate::util::bin().args(["ingest", "--local", s(tree), "--db", s(&db), "--format", "json"]).output().unwrap()
    };
    let (out_b, out_c) = std::thread::scope(|scope| {
        let hb = scope.spawn(|| spawn(&b));
        let hc = scope.spawn(|| spawn(&c));
        (hb.join().unwrap(), hc.join().unwrap())
    });
    for out in [&out_b, &out_c] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut expected: BTreeSet<String> = records_in(&a).into_keys().collect();
    expected.extend(records_in(&b).into_keys());
    expected.extend(records_in(&c).into_keys());
    let stored = tsv_ids(&run(&["search", "--db", s(&db), "--limit", "0", "--format", "tsv"]));
    assert_eq!(stored.len(), expected.len());
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), expected);
}
