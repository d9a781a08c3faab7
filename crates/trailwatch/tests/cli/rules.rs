//! `trailwatch rules test`: the contract of design.md over the shared data and rules.

use std::collections::BTreeSet;

use test_support::shared_data;

use crate::util::{output, run, s};

#[test]
fn the_sigmahq_pack_runs_over_every_shared_record_without_load_errors() {
    let rules = shared_data("sigma");
    let mut files: Vec<_> = std::fs::read_dir(shared_data("cloudtrail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut matched = BTreeSet::new();
    for f in &files {
        let out = output(&["rules", "test", "--rules", s(&rules), "--events", s(f), "--format", "tsv"]);
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("rule not loaded"), "{stderr}");
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let (rule, event) = line.split_once('\t').expect("<rule id>\\t<eventID>");
            assert_eq!(rule.len(), 36, "{line}");
            matched.insert((rule.to_owned(), event.to_owned()));
        }
    }
    // Stratus Red Team's "CloudTrail trail stopped" record fires SigmaHQ's important-change rule.
    let stop = "4db60cc0-36fb-42b7-9b58-a5b53019fb74";
    assert!(matched.iter().any(|(r, _)| r == stop), "{matched:?}");
}

#[test]
fn log_files_gzipped_or_not_and_bad_rules_reported() {
    let dir = tempfile::tempdir().unwrap();
    let records = r#"{"Records":[{"eventID":"e1","eventTime":"2024-01-15T10:45:23Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging"},
        {"eventID":"e2","eventTime":"2024-01-15T10:45:24Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StartLogging"}]}"#;
    let plain = dir.path().join("log.json");
    std::fs::write(&plain, records).unwrap();
    let gz = dir.path().join("log.json.gz");
    std::fs::write(&gz, test_support::gzip(records.as_bytes())).unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("stop.yml"),
        "title: stop\nid: stop-rule\ndetection:\n  s:\n    eventName|startswith: stop\n  condition: s\n",
    )
    .unwrap();
    std::fs::write(rules.join("broken.yml"), "title: x\nid: x\ndetection:\n  s:\n    a|bogus: 1\n  condition: s\n")
        .unwrap();
    for f in [&plain, &gz] {
        let out = output(&["rules", "test", "--rules", s(&rules), "--events", s(f), "--format", "tsv"]);
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "stop-rule\te1\n");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("broken.yml") && stderr.contains("unknown modifier"), "{stderr}");
    }
    let table = run(&["rules", "test", "--rules", s(&rules), "--events", s(&plain)]);
    assert!(table.contains("2 events, 1 rules (1 not loaded), 1 matches"), "{table}");
}

/// JSON Lines with lines longer than the reader's 1 MiB chunks: every line is one record.
#[test]
fn json_lines_longer_than_a_chunk_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("stop.yml");
    std::fs::write(
        &rules,
        "title: stop\nid: stop-rule\ndetection:\n  s:\n    eventName: StopLogging\n  condition: s\n",
    )
    .unwrap();
    let events = dir.path().join("big.jsonl");
    let mut text = String::new();
    for (i, size) in [(1, 1_500_000), (2, 2_600_000), (3, 10)] {
        let record = serde_json::json!({"eventID": format!("e{i}"), "eventTime": "2024-01-15T10:45:23Z",
            "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "userAgent": "u".repeat(size)});
        text.push_str(&record.to_string());
        text.push('\n');
    }
    std::fs::write(&events, text).unwrap();
    let out = output(&["rules", "test", "--rules", s(&rules), "--events", s(&events), "--format", "tsv"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "stop-rule\te1\nstop-rule\te2\nstop-rule\te3\n");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("not JSON objects"), "{stderr}");
    let table = run(&["rules", "test", "--rules", s(&rules), "--events", s(&events)]);
    assert!(table.contains("3 events, 1 rules (0 not loaded), 3 matches"), "{table}");
}

#[test]
fn list_and_lint() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("mine");
    std::fs::create_dir(&pack).unwrap();
    let good = "title: good\nid: 11111111-2222-4333-8444-555555555555\nstatus: test\ndescription: d\nauthor: a\n\
        logsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    a: 1\n  condition: s\nlevel: high\n";
    std::fs::write(pack.join("a.yml"), good).unwrap();
    let listed = crate::util::run_json(&["rules", "list", "--rules", s(dir.path()), "--format", "json"]);
    assert_eq!(listed[0]["pack"], "mine");
    assert_eq!(listed[0]["level"], "high");
    let ok = output(&["rules", "lint", "--rules", s(dir.path())]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stdout));
    // The same id twice, and a rule with thin metadata: one error (exit 1), warnings.
    std::fs::write(pack.join("b.yml"), good.replace("title: good", "title: copy")).unwrap();
    std::fs::write(
        pack.join("c.yml"),
        "title: thin\nid: thin\ndetection:\n  s:\n    a: 1\n  condition: s\nlevel: severe\n",
    )
    .unwrap();
    let bad = output(&["rules", "lint", "--rules", s(dir.path()), "--format", "json"]);
    assert_eq!(bad.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let errors: Vec<_> = findings.iter().filter(|f| f["severity"] == "error").collect();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["message"].as_str().unwrap().contains("also used by"));
    let thin: Vec<&str> =
        findings.iter().filter(|f| f["rule"] == "thin").map(|f| f["message"].as_str().unwrap()).collect();
    assert!(thin.iter().any(|m| m.contains("not a UUID")) && thin.iter().any(|m| m.contains("level \"severe\"")));
    assert!(thin.iter().any(|m| m.contains("no description")) && thin.iter().any(|m| m.contains("logsource")));
}

#[test]
fn correlations_fire_through_rules_test() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("failed.yml"),
        "title: failed console login\nid: base-failed\nname: failed_console_login\ndetection:\n  sel:\n    \
         eventName: ConsoleLogin\n    responseElements.ConsoleLogin: Failure\n  condition: sel\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("brute.yml"),
        "title: brute force\nid: brute\ncorrelation:\n  type: event_count\n  rules: [failed_console_login]\n  \
         group-by: [userIdentity.userName]\n  timespan: 5m\n  condition:\n    gte: 20\n",
    )
    .unwrap();
    let lines: Vec<String> = (0..21)
        .map(|i| {
            serde_json::json!({"eventID": format!("e{i}"), "eventTime": format!("2024-01-15T10:00:{i:02}Z"),
                "eventName": "ConsoleLogin", "userIdentity": {"userName": "alice"},
                "responseElements": {"ConsoleLogin": "Failure"}})
            .to_string()
        })
        .collect();
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    assert_eq!(
        run(&["rules", "test", "--rules", s(&rules), "--events", s(&events), "--format", "tsv"]),
        "brute\te19\n"
    );
    let only19 = dir.path().join("19.jsonl");
    std::fs::write(&only19, lines[..19].join("\n")).unwrap();
    assert_eq!(run(&["rules", "test", "--rules", s(&rules), "--events", s(&only19), "--format", "tsv"]), "");
}

#[test]
fn ingest_raises_alerts_that_the_alerts_commands_show_and_change() {
    let dir = tempfile::tempdir().unwrap();
    let tree = crate::util::simulate(dir.path(), "tree", &["--hours", "2", "--events", "800", "--scenario", "all"]);
    let db = dir.path().join("t.db");
    run(&["ingest", "--local", s(&tree), "--db", s(&db)]);
    let alerts = crate::util::run_json(&["alerts", "list", "--db", s(&db), "--limit", "0", "--format", "json"]);
    let alerts = alerts.as_array().unwrap();
    let titles: BTreeSet<&str> = alerts.iter().map(|a| a["title"].as_str().unwrap()).collect();
    // The simulator's tamper and attack scenarios, caught by the built-in packs.
    for t in [
        "CloudTrail logging stopped",
        "CloudTrail trail deleted",
        "Root access key created",
        "Bulk EC2 instance termination",
    ] {
        assert!(titles.contains(t), "{t} not in {titles:?}");
    }
    let stopped = alerts.iter().find(|a| a["title"] == "CloudTrail logging stopped").unwrap();
    assert_eq!(stopped["level"], "critical");
    let id = stopped["id"].to_string();
    let shown = crate::util::run_json(&["alerts", "show", &id, "--db", s(&db), "--format", "json"]);
    assert_eq!(shown["events"].as_array().unwrap().len() as u64, shown["count"].as_u64().unwrap());
    // Hits per rule in `rules list`, from the store.
    let listed = crate::util::run_json(&["rules", "list", "--db", s(&db), "--format", "json"]);
    let hit = listed.as_array().unwrap().iter().find(|r| r["id"] == stopped["rule"]).unwrap();
    assert!(hit["hits"].as_u64().unwrap() >= 1, "{hit}");
    assert!(listed.as_array().unwrap().iter().any(|r| r["status"] == "detector"), "the new-region detector is listed");
    // Ingesting again, or running the rules over history, adds nothing.
    run(&["ingest", "--local", s(&tree), "--db", s(&db)]);
    let rerun = crate::util::run_json(&["rules", "run", "--db", s(&db), "--since", "3650d", "--format", "json"]);
    assert_eq!(rerun["alerts_opened"], 0, "{rerun}");
    assert!(rerun["hits"].as_u64().unwrap() > 0);
    let again = crate::util::run_json(&["alerts", "list", "--db", s(&db), "--limit", "0", "--format", "json"]);
    assert_eq!(again.as_array().unwrap().len(), alerts.len());
    // A new rule over history: its alerts appear.
    let rule = dir.path().join("new.yml");
    std::fs::write(
        &rule,
        "title: any stop\nid: new-rule\nlevel: low\ndetection:\n  s:\n    eventName: StopInstances\n  condition: s\n",
    )
    .unwrap();
    let new = crate::util::run_json(&[
        "rules",
        "run",
        "--db",
        s(&db),
        "--rules",
        s(&rule),
        "--since",
        "3650d",
        "--format",
        "json",
    ]);
    assert!(new["alerts_opened"].as_u64().unwrap() >= 1, "{new}");
    // Acknowledge, resolve.
    run(&["alerts", "ack", &id, "--comment", "looking", "--db", s(&db)]);
    run(&["alerts", "resolve", &id, "--db", s(&db)]);
    let resolved =
        crate::util::run_json(&["alerts", "list", "--db", s(&db), "--state", "resolved", "--format", "json"]);
    assert_eq!(resolved[0]["id"].to_string(), id);
    assert_eq!(resolved[0]["comment"], "looking");
    assert!(!output(&["alerts", "ack", "999999", "--db", s(&db)]).status.success());
    assert!(!output(&["alerts", "list", "--db", s(&db), "--state", "bogus"]).status.success());
    // --no-detection stores events only.
    let plain = dir.path().join("plain.db");
    run(&["ingest", "--local", s(&tree), "--db", s(&plain), "--no-detection"]);
    let none = crate::util::run_json(&["alerts", "list", "--db", s(&plain), "--format", "json"]);
    assert!(none.as_array().unwrap().is_empty());
}
