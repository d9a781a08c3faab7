//! `trailwatch validate` and `simulate --digests` as the design contract states them: the
//! JSON shape, exit codes (0 valid or warnings only, 1 findings, 2 usage/runtime errors),
//! and the ingest of a digested tree ignoring digests and sidecars.

use crate::util::{output, run, run_json, s, simulate};

#[test]
fn validate_contract_exit_codes_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let clean = simulate(dir.path(), "clean", &["--hours", "4", "--events", "800", "--digests"]);
    let keys = clean.join("list-public-keys.json");
    let ok = run_json(&["validate", "--local", s(&clean), "--public-keys", s(&keys), "--format", "json"]);
    assert_eq!(ok, serde_json::json!({"valid": true, "findings": []}));
    let table = run(&["validate", "--local", s(&clean), "--public-keys", s(&keys)]);
    assert!(table.starts_with("VALID:") && table.contains("digests in"), "{table}");

    // A warning alone keeps the trail valid (exit 0) and is listed.
    let paused = simulate(
        dir.path(),
        "paused",
        &["--hours", "10", "--events", "800", "--digests", "--scenario", "validation-paused"],
    );
    let out = run_json(&[
        "validate",
        "--local",
        s(&paused),
        "--public-keys",
        s(&paused.join("list-public-keys.json")),
        "--format",
        "json",
    ]);
    assert_eq!(out["valid"], true);
    assert_eq!(out["findings"].as_array().unwrap().len(), 1);
    assert_eq!(out["findings"][0]["kind"], "CHAIN_RESTART");

    // Findings: exit 1, every finding with kind, key and detail; tsv one per line.
    let bad = simulate(
        dir.path(),
        "bad",
        &["--hours", "10", "--events", "800", "--digests", "--scenario", "log-deleted", "--scenario", "digest-forged"],
    );
    let bad_keys = bad.join("list-public-keys.json");
    let p = output(&["validate", "--local", s(&bad), "--public-keys", s(&bad_keys), "--format", "json"]);
    assert_eq!(p.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&p.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    let kinds: std::collections::BTreeSet<&str> =
        doc["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains("LOG_MISSING") && kinds.contains("DIGEST_INVALID_SIGNATURE"), "{doc}");
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["key"].as_str().is_some_and(|k| k.starts_with("AWSLogs/")) && f["detail"].is_string()));
    let p = output(&["validate", "--local", s(&bad), "--public-keys", s(&bad_keys), "--format", "tsv"]);
    assert_eq!(p.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&p.stdout).lines().count(), doc["findings"].as_array().unwrap().len());

    // A window before the tampering sees a valid trail.
    let p = output(&[
        "validate",
        "--local",
        s(&bad),
        "--public-keys",
        s(&bad_keys),
        "--format",
        "json",
        "--end-time",
        "2026-01-05T02:30:00Z",
    ]);
    assert_eq!(p.status.code(), Some(0), "{}", String::from_utf8_lossy(&p.stdout));

    // Usage and runtime errors: exit 2 with one line on stderr.
    for args in [
        vec!["validate", "--local", s(&clean)],
        vec!["validate", "--local", s(&clean), "--public-keys", s(&clean.join("manifest.json"))],
        vec!["validate", "--local", s(&dir.path().join("nope")), "--public-keys", s(&keys)],
        // A directory without digests (not the bucket's root, or validation off) validates nothing.
        vec!["validate", "--local", s(&clean.join("AWSLogs")), "--public-keys", s(&keys)],
        vec!["validate", "--trail-arn", "arn:aws:cloudtrail:us-east-1:111122223333:trail/x"],
        vec!["validate", "--trail-arn", "not-an-arn", "--start-time", "1d"],
    ] {
        let p = output(&args);
        assert_eq!(p.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&p.stderr));
        assert!(!p.stderr.is_empty());
    }
}

#[test]
fn tamper_scenarios_need_digests_and_enough_hours() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let p = output(&["simulate", "--out", s(&out), "--profile", "classic", "--scenario", "log-deleted"]);
    assert_eq!(p.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&p.stderr).contains("--digests"));
    let p = output(&[
        "simulate",
        "--out",
        s(&out),
        "--profile",
        "classic",
        "--digests",
        "--hours",
        "5",
        "--scenario",
        "all-tamper",
    ]);
    assert_eq!(p.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&p.stderr).contains("--hours 31"), "{}", String::from_utf8_lossy(&p.stderr));
}

#[test]
fn ingest_of_a_digested_tree_takes_only_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let tree = simulate(dir.path(), "tree", &["--hours", "3", "--events", "600", "--digests"]);
    let plain = simulate(dir.path(), "plain", &["--hours", "3", "--events", "600"]);
    let db = dir.path().join("a.db");
    let with = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
    let db2 = dir.path().join("b.db");
    let without = run_json(&["ingest", "--local", s(&plain), "--db", s(&db2), "--format", "json"]);
    assert_eq!(with, without, "digests and sidecars are not log files");
    assert_eq!(with["quarantined"], 0);
}
