//! `trailwatch bench store`: the scale table's figures come from the store they name.

use crate::util::{output, run_json, s, simulate};

#[test]
fn bench_store_measures_the_store_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let tree = simulate(
        dir.path(),
        "tree",
        &["--profile", "realistic", "--accounts", "2", "--hours", "30", "--events", "3000", "--seed", "5"],
    );
    let db = dir.path().join("bench.db");
    let ingested = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
    let stored = ingested["new"].as_u64().unwrap();
    assert!(stored > 2_000, "{ingested}");

    let copies = dir.path().join("copies");
    std::fs::create_dir(&copies).unwrap();
    let by_db =
        run_json(&["bench", "store", "--db", s(&db), "--runs", "2", "--copy-dir", s(&copies), "--format", "json"]);
    assert_eq!(by_db["store"]["events"].as_u64(), Some(stored), "{by_db}");
    let queries = by_db["queries"].as_array().unwrap();
    let rows = |name: &str| {
        queries.iter().find(|q| q["name"] == name).unwrap_or_else(|| panic!("no {name} in {by_db}"))["rows"].as_u64()
    };
    // Ranges end at the newest event: 30 hours of trail all lie within 7 days.
    assert_eq!(rows("overview 7d"), Some(stored));
    assert!(rows("overview 24h").unwrap() < stored);
    assert_eq!(rows("search event_name most"), Some(50));
    assert!(queries.iter().any(|q| q["name"].as_str().unwrap().starts_with("principal page")));
    // Retention of the oldest day ran on the copy, which is gone; the store is whole.
    assert!(by_db["copy"]["retention_events_deleted"].as_u64().unwrap() > 0, "{by_db}");
    assert_eq!(std::fs::read_dir(&copies).unwrap().count(), 0);

    // The same store through a configuration: the same events, the same answers.
    let config = dir.path().join("trailwatch.toml");
    std::fs::write(&config, format!("[store]\npath = {:?}\n", s(&db))).unwrap();
    let by_config = run_json(&["bench", "store", "--config", s(&config), "--runs", "1", "--format", "json"]);
    assert_eq!(by_config["store"]["events"].as_u64(), Some(stored));
    let names = |v: &serde_json::Value| -> Vec<(String, u64)> {
        v["queries"].as_array().unwrap().iter().map(|q| (q["name"].to_string(), q["rows"].as_u64().unwrap())).collect()
    };
    assert_eq!(names(&by_config), names(&by_db));

    // An empty store has nothing to measure: a clear error, not a table of zeros.
    let empty = dir.path().join("empty.db");
    run_json(&["ingest", "--local", s(&copies), "--db", s(&empty), "--format", "json"]);
    let out = output(&["bench", "store", "--db", s(&empty)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no events"), "{out:?}");
}
