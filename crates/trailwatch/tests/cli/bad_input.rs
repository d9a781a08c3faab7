//! A corpus with every way a log file can be bad, mixed with good files: each bad file is
//! quarantined with its precise reason, every good file is stored, nothing else is affected.

use std::collections::BTreeMap;

use test_support::{gzip, log_document, put, record};

use crate::util::{run, run_json, s, tsv_ids};

fn key(n: &str) -> String {
    format!("AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/15/111122223333_CloudTrail_us-east-1_20240115T1200Z_{n}.json.gz")
}

/// A gzip'd log document with `n` spaces between its two records, compressed as it streams.
fn whitespace_bomb(n: usize) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(format!(r#"{{"Records":[{},"#, record("b-1", "2024-01-15T11:50:00Z", "A")).as_bytes()).unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..n / spaces.len() {
        e.write_all(&spaces).unwrap();
    }
    e.write_all(format!("{}]}}", record("b-2", "2024-01-15T11:50:00Z", "A")).as_bytes()).unwrap();
    e.finish().unwrap()
}

#[test]
fn every_failure_mode_is_quarantined_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let good_a = log_document(&[
        record("g-1", "2024-01-15T11:50:00Z", "DescribeInstances"),
        record("g-2", "2024-01-15T11:51:00Z", "StopLogging"),
    ]);
    let good_b = log_document(&[record("g-3", "2024-01-15T11:52:00Z", "GetObject")]);
    put(&tree, &key("GoodFileAAAAAAAA"), &gzip(good_a.as_bytes()));
    put(&tree, &key("GoodFileBBBBBBBB"), &gzip(good_b.as_bytes()));

    let valid = gzip(log_document(&[record("x-1", "2024-01-15T11:50:00Z", "A")]).as_bytes());
    let mut trailing = valid.clone();
    trailing.extend_from_slice(b"trailing garbage");
    let bad: BTreeMap<&str, (Vec<u8>, &str)> = BTreeMap::from([
        ("TrailingGarbage1", (trailing, "gzip_trailing_data")),
        ("TruncatedGzip123", (valid[..valid.len() / 2].to_vec(), "gzip_truncated")),
        ("NotJsonAtAll1234", (gzip(b"this is not json"), "json_not_object")),
        ("BrokenJson123456", (gzip(br#"{"Records":[{"eventID":"x-2","eventTime":]}"#), "record_invalid")),
        ("TruncatedJson123", (gzip(br#"{"Records":[{"eventID":"x-3""#), "json_truncated")),
        ("NoRecordsMember1", (gzip(br#"{"records":[]}"#), "records_missing")),
        ("RecordsNotArray1", (gzip(br#"{"Records":{"eventID":"x-4"}}"#), "records_not_array")),
        (
            "RecordNoEventId1",
            (gzip(br#"{"Records":[{"eventTime":"2024-01-15T11:50:00Z","eventName":"A"}]}"#), "record_missing_event_id"),
        ),
        ("RecordNoEventTim", (gzip(br#"{"Records":[{"eventID":"x-5"}]}"#), "record_missing_event_time")),
        (
            "RecordBadTime123",
            (gzip(br#"{"Records":[{"eventID":"x-6","eventTime":"2019-01-00T00:00:00Z"}]}"#), "record_bad_event_time"),
        ),
        ("RecordNotObject1", (gzip(br#"{"Records":["x-7"]}"#), "record_not_object")),
        ("InvalidUtf8Bytes", (gzip(b"{\"Records\":[{\"eventID\":\"\xff\"}]}"), "invalid_utf8")),
        ("JsonTrailingData", (gzip(br#"{"Records":[]} {"Records":[]}"#), "json_trailing_data")),
        ("EmptyObject12345", (Vec::new(), "empty_object")),
        // 1 GiB of whitespace inside Records, ~1 MB gzip'd: stopped by the ratio early.
        ("InflateBomb12345", (whitespace_bomb(1 << 30), "inflate_ratio")),
        // One record of 5 MB (CloudTrail's are a few KiB).
        (
            "HugeRecord123456",
            (
                gzip(
                    log_document(&[record("x-8", "2024-01-15T11:50:00Z", "A").replacen(
                        r#""userAgent":"aws-cli/2.15.30""#,
                        &format!(r#""userAgent":"{}""#, "u".repeat(5 << 20)),
                        1,
                    )])
                    .as_bytes(),
                ),
                "record_too_large",
            ),
        ),
    ]);
    // A good record inside a bad file must not be stored: a file is all or nothing.
    let half_good = log_document(&[
        record("h-1", "2024-01-15T11:50:00Z", "A"),
        r#"{"eventTime":"2024-01-15T11:50:00Z"}"#.to_string(),
    ]);
    put(&tree, &key("HalfGoodFile1234"), &gzip(half_good.as_bytes()));
    for (name, (bytes, _)) in &bad {
        put(&tree, &key(name), bytes);
    }

    let db = dir.path().join("t.db");
    let report = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
    assert_eq!(report["quarantined"], bad.len() + 1, "{report}");
    assert_eq!(report["files"], bad.len() + 3);
    assert_eq!(report["records"], 3);
    assert_eq!(report["new"], 3);

    let listed = run_json(&["quarantine", "--db", s(&db), "--format", "json"]);
    let reasons: BTreeMap<String, String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["key"].as_str().unwrap().to_string(), q["reason"].as_str().unwrap().to_string()))
        .collect();
    for (name, (_, reason)) in &bad {
        assert_eq!(reasons.get(&key(name)).map(String::as_str), Some(*reason), "{name}");
    }
    assert_eq!(reasons.get(&key("HalfGoodFile1234")).map(String::as_str), Some("record_missing_event_id"));
    let detail_of = |name: &str| {
        listed.as_array().unwrap().iter().find(|q| q["key"] == key(name)).unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(detail_of("InflateBomb12345").contains("ingest.max_inflate_ratio"), "the detail names the setting");
    assert!(detail_of("HugeRecord123456").contains("ingest.max_record_bytes"), "the detail names the setting");
    for q in listed.as_array().unwrap() {
        assert!(!q["detail"].as_str().unwrap().is_empty(), "{q}");
    }

    let ids = tsv_ids(&run(&["search", "--db", s(&db), "--limit", "0", "--format", "tsv"]));
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| id.starts_with("g-")), "{ids:?}");

    // Re-running changes nothing; a repaired file (new size) is ingested.
    let again = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
    assert_eq!(again["files"], 0);
    put(&tree, &key("TruncatedGzip123"), &valid);
    let repaired = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
    assert_eq!(
        (repaired["files"].as_u64(), repaired["new"].as_u64(), repaired["quarantined"].as_u64()),
        (Some(1), Some(1), Some(0))
    );
    let listed = run_json(&["quarantine", "--db", s(&db), "--format", "json"]);
    assert_eq!(listed.as_array().unwrap().len(), bad.len());
}

/// An attacker nests a parameter deeper than the JSON parser goes (serde_json stops at 128)
/// to hide StopLogging from detection. The record is stored, the built-in rule still fires on
/// what can be read, and a separate alert says the record could not be read whole.
#[test]
fn a_record_nested_too_deep_still_alerts_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let deep = format!("{}\"x\"{}", "[".repeat(130), "]".repeat(130));
    let stop = record("deep-1", "2024-01-15T11:50:00Z", "StopLogging")
        .replacen(r#""eventSource":"ec2.amazonaws.com""#, r#""eventSource":"cloudtrail.amazonaws.com""#, 1)
        .replacen(r#""requestParameters":null"#, &format!(r#""requestParameters":{deep}"#), 1);
    assert!(stop.contains("[[[[") && stop.contains("cloudtrail.amazonaws.com"));
    put(&tree, &key("DeepNestingAAAAA"), &gzip(log_document(&[stop]).as_bytes()));
    let db = dir.path().join("t.db");
    let report = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
    assert_eq!(report["new"], 1, "{report}");
    let alerts = run_json(&["alerts", "list", "--db", s(&db), "--format", "json"]);
    let rules: Vec<String> =
        alerts.as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap_or_default().to_owned()).collect();
    assert!(rules.iter().any(|t| t.contains("too deeply nested")), "the unreadable part is reported: {rules:?}");
    assert!(rules.len() >= 2, "the trail-tampering rule fired on the readable fields: {rules:?}");
}
