//! `search` filters return exactly the events a direct scan of the records returns, and the
//! output formats keep their contracts (also with hostile field values).

use std::collections::{BTreeMap, BTreeSet};

use model::timefmt::{format_millis, parse_rfc3339_millis};
use model::ParsedEvent;

use crate::util::{output, records_in, run, s, simulate, tsv_ids};

/// What `--principal X` means: the principal, its issuer, its name, or its human.
fn principal_matches(e: &ParsedEvent, x: &str) -> bool {
    let a = &e.actor;
    a.principal == x || a.issuer.as_deref() == Some(x) || a.name.as_deref() == Some(x) || a.human.as_deref() == Some(x)
}

#[test]
fn filters_agree_with_a_direct_scan() {
    let dir = tempfile::tempdir().unwrap();
    let tree =
        simulate(dir.path(), "tree", &["--accounts", "3", "--hours", "6", "--events", "6000", "--scenario", "all"]);
    let db = dir.path().join("t.db");
    run(&["ingest", "--local", s(&tree), "--db", s(&db)]);
    let records: BTreeMap<String, ParsedEvent> = records_in(&tree);
    let any = records.values().find(|e| e.error_code.is_some()).unwrap();
    let account = any.recipient_account_id.clone().unwrap();
    let times: Vec<i64> = records.values().map(|e| e.event_time).collect();
    let (lo, hi) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    let (since, until) = (format_millis(lo + (hi - lo) / 3), format_millis(lo + 2 * (hi - lo) / 3));

    type Check = Box<dyn Fn(&ParsedEvent) -> bool>;
    let t = |v: &str| parse_rfc3339_millis(v).unwrap();
    let (since_ms, until_ms) = (t(&since), t(&until));
    let acct = account.clone();
    let cases: Vec<(Vec<String>, Check)> = vec![
        (
            vec!["--event-name".into(), "StopLogging".into()],
            Box::new(|e| e.event_name.as_deref() == Some("StopLogging")),
        ),
        (
            vec!["--event-source".into(), "kms.amazonaws.com".into()],
            Box::new(|e| e.event_source.as_deref() == Some("kms.amazonaws.com")),
        ),
        (vec!["--source-ip".into(), "203.0.113.7".into()], Box::new(|e| e.source_ip.as_deref() == Some("203.0.113.7"))),
        (
            vec!["--source-ip".into(), "ec2.amazonaws.com".into()],
            Box::new(|e| e.source_ip.as_deref() == Some("ec2.amazonaws.com")),
        ),
        (vec!["--principal".into(), "dana@example.com".into()], Box::new(|e| principal_matches(e, "dana@example.com"))),
        (vec!["--principal".into(), "alice".into()], Box::new(|e| principal_matches(e, "alice"))),
        (
            vec!["--account".into(), account.clone()],
            Box::new(move |e| e.recipient_account_id.as_deref() == Some(acct.as_str())),
        ),
        (vec!["--region".into(), "eu-west-1".into()], Box::new(|e| e.aws_region.as_deref() == Some("eu-west-1"))),
        (vec!["--errors".into()], Box::new(|e| e.error_code.is_some())),
        (
            vec!["--since".into(), since.clone(), "--until".into(), until.clone()],
            Box::new(move |e| e.event_time >= since_ms && e.event_time <= until_ms),
        ),
        (
            vec![
                "--errors".into(),
                "--region".into(),
                "us-east-1".into(),
                "--event-source".into(),
                "ec2.amazonaws.com".into(),
            ],
            Box::new(|e| {
                e.error_code.is_some()
                    && e.aws_region.as_deref() == Some("us-east-1")
                    && e.event_source.as_deref() == Some("ec2.amazonaws.com")
            }),
        ),
        (vec!["--event-name".into(), "NoSuchCall".into()], Box::new(|_| false)),
    ];
    for (args, check) in cases {
        let mut cmd = vec!["search", "--db", s(&db), "--limit", "0", "--format", "tsv"];
        cmd.extend(args.iter().map(String::as_str));
        let tsv = run(&cmd);
        let got = tsv_ids(&tsv);
        let want: BTreeSet<String> = records.values().filter(|e| check(e)).map(|e| e.event_id.clone()).collect();
        assert_eq!(got.len(), want.len(), "{args:?}");
        assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want, "{args:?}");
        // Newest first, and every column says what the record says.
        let mut previous = i64::MAX;
        for line in tsv.lines() {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 9, "{line}");
            let e = &records[cols[1]];
            let time = parse_rfc3339_millis(cols[0]).unwrap();
            assert!(time <= previous, "not newest first: {line}");
            previous = time;
            assert_eq!(time, e.event_time);
            assert_eq!(cols[2], e.event_source.as_deref().unwrap_or(""));
            assert_eq!(cols[3], e.event_name.as_deref().unwrap_or(""));
            assert_eq!(cols[4], e.actor.principal);
            assert_eq!(cols[5], e.source_ip.as_deref().unwrap_or(""));
            assert_eq!(cols[6], e.recipient_account_id.as_deref().unwrap_or(""));
            assert_eq!(cols[7], e.aws_region.as_deref().unwrap_or(""));
            assert_eq!(cols[8], e.error_code.as_deref().unwrap_or(""));
        }
    }

    // --limit keeps the newest; jsonl and json print the original records.
    let limited = tsv_ids(&run(&["search", "--db", s(&db), "--limit", "7", "--format", "tsv"]));
    let all = tsv_ids(&run(&["search", "--db", s(&db), "--limit", "0", "--format", "tsv"]));
    assert_eq!(limited, all[..7]);
    let jsonl = run(&["search", "--db", s(&db), "--event-name", "StopLogging", "--format", "jsonl"]);
    for line in jsonl.lines() {
        let id = serde_json::from_str::<serde_json::Value>(line).unwrap()["eventID"].as_str().unwrap().to_string();
        assert_eq!(line, records[&id].raw);
    }
    let json: serde_json::Value =
        serde_json::from_str(&run(&["search", "--db", s(&db), "--event-name", "StopLogging", "--format", "json"]))
            .unwrap();
    assert_eq!(json.as_array().unwrap().len(), jsonl.lines().count());
    let table = run(&["search", "--db", s(&db), "--event-name", "StopLogging"]);
    assert!(table.starts_with("TIME") && table.contains("StopLogging"), "{table}");

    let bad = output(&["search", "--db", s(&db), "--since", "last tuesday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a time"));
    let missing = output(&["search", "--db", s(&dir.path().join("none.db"))]);
    assert_eq!(missing.status.code(), Some(2));
}

/// Attacker-chosen values cannot add TSV columns or rows, or reach the terminal raw.
#[test]
fn hostile_values_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let evil = r#"{"eventVersion":"1.10","eventTime":"2024-01-15T11:50:00Z","eventSource":"ec2.amazonaws.com","eventName":"Run\tInstances\nFAKE\tROW","awsRegion":"us-east-1","sourceIPAddress":"\u001b[2J\u001b[31m1.2.3.4","eventID":"evil-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/\u202eevil","userName":"x"}}"#;
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/15/111122223333_CloudTrail_us-east-1_20240115T1200Z_EvilFieldsAAAAAA.json.gz";
    test_support::put(&tree, key, &test_support::gzip(test_support::log_document(&[evil]).as_bytes()));
    let db = dir.path().join("t.db");
    run(&["ingest", "--local", s(&tree), "--db", s(&db)]);
    let tsv = run(&["search", "--db", s(&db), "--format", "tsv"]);
    assert_eq!(tsv.lines().count(), 1, "{tsv:?}");
    assert_eq!(tsv.trim_end_matches('\n').split('\t').count(), 9, "{tsv:?}");
    assert!(tsv.contains("Run\\tInstances\\nFAKE\\tROW"), "{tsv:?}");
    for out in [tsv, run(&["search", "--db", s(&db)])] {
        assert!(!out.contains('\u{1b}') && !out.contains('\u{202e}'), "{out:?}");
    }
    // The raw record is still exactly what was delivered.
    assert_eq!(run(&["search", "--db", s(&db), "--format", "jsonl"]).trim_end(), evil);
}
