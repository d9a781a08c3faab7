//! Every published record in `../shared/data/cloudtrail/` against the model.

use std::fs;

use model::{read_all_events, LogFileReader, ParsedEvent, Record, TrailKey};
use serde_json::Value;
use test_support::shared_dir;

fn lines(file: &str) -> Vec<String> {
    let path = shared_dir().join("data/cloudtrail").join(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

const CONFORMING: &[(&str, usize)] =
    &[("panther.jsonl", 277), ("stratus.jsonl", 310), ("otel-contrib.jsonl", 7), ("cloud-custodian.jsonl", 2)];

/// `panther.jsonl` line 274 is a hand-made fixture dated `2019-01-00`, a day that does not
/// exist: it parses as a [`Record`] but cannot be indexed by time, and says so.
const IMPOSSIBLE_DATE: (&str, usize) = ("panther.jsonl", 274);

#[test]
fn every_published_record_parses_and_round_trips() {
    for (file, expected) in CONFORMING {
        let lines = lines(file);
        assert_eq!(lines.len(), *expected, "{file}: line count");
        let mut parsed = 0;
        for (i, line) in lines.iter().enumerate() {
            Record::from_json(line).unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1));
            parsed += 1;
            if (*file, i + 1) == IMPOSSIBLE_DATE {
                let err = ParsedEvent::from_json(line).unwrap_err();
                assert_eq!(err.reason_code(), "record_bad_event_time");
                assert!(err.to_string().contains("2019-01-00T00:00:00Z"), "{err}");
                continue;
            }
            let event = ParsedEvent::from_json(line).unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1));
            let original: Value = serde_json::from_str(line).unwrap();
            let stored: Value = serde_json::from_str(&event.raw).unwrap();
            assert_eq!(original, stored, "{file}:{}: raw JSON must round-trip", i + 1);
            assert_eq!(event.event_id, original["eventID"].as_str().unwrap());
        }
        assert_eq!(parsed, *expected, "{file}");
    }
}

/// Records that are not AWS-native (Panther enrichment, normalised times, missing core
/// fields) still parse as [`Record`]s; those that cannot be stored say exactly why.
#[test]
fn nonconforming_records_parse_or_fail_precisely() {
    let lines = lines("panther-nonconforming.jsonl");
    assert_eq!(lines.len(), 190);
    let mut stored = 0;
    let mut reasons = std::collections::BTreeMap::<&str, usize>::new();
    for (i, line) in lines.iter().enumerate() {
        Record::from_json(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let value: Value = serde_json::from_str(line).unwrap();
        match ParsedEvent::from_json(line) {
            Ok(_) => stored += 1,
            Err(e) => {
                let code = e.reason_code();
                match code {
                    "record_missing_event_id" => {
                        assert!(value.get("eventID").is_none(), "line {}", i + 1)
                    }
                    "record_missing_event_time" => {
                        assert!(value.get("eventTime").is_none(), "line {}", i + 1)
                    }
                    "record_bad_event_time" => {
                        assert!(value["eventTime"].is_string(), "line {}", i + 1)
                    }
                    other => panic!("line {}: unexpected reason {other}: {e}", i + 1),
                }
                *reasons.entry(code).or_default() += 1;
            }
        }
    }
    assert_eq!(stored + reasons.values().sum::<usize>(), 190);
    assert_eq!(reasons.get("record_missing_event_id"), Some(&50), "{reasons:?}");
    // Space-separated, zone-less UTC times are read; `redacted` and the like are not.
    assert!(stored > 100, "{stored} stored, {reasons:?}");
}

#[test]
fn derived_identity_of_published_records() {
    let mut kinds = std::collections::BTreeSet::new();
    for (file, _) in CONFORMING {
        for line in lines(file) {
            let Ok(event) = ParsedEvent::from_json(&line) else {
                continue;
            };
            let value: Value = serde_json::from_str(&line).unwrap();
            let ui = &value["userIdentity"];
            kinds.insert(event.actor.kind.as_str().to_string());
            assert!(!event.actor.principal.is_empty());
            if let Some(arn) = ui["arn"].as_str().filter(|a| !a.is_empty()) {
                assert_eq!(event.actor.principal, arn, "{line}");
            }
            if ui["type"] == "AssumedRole" {
                if let Some(issuer) = ui["sessionContext"]["sessionIssuer"]["arn"].as_str() {
                    assert_eq!(event.actor.issuer.as_deref(), Some(issuer));
                }
            }
            if let Some(mfa) = ui["sessionContext"]["attributes"]["mfaAuthenticated"].as_str() {
                if value["eventName"] != "ConsoleLogin" {
                    assert_eq!(event.actor.mfa, Some(mfa == "true"), "{line}");
                }
            }
        }
    }
    for kind in ["Root", "IAMUser", "AssumedRole", "IdentityCenterUser", "FederatedUser", ""] {
        assert!(kinds.contains(kind), "no {kind} among the samples: {kinds:?}");
    }
}

#[test]
fn published_log_files_match_their_manifest() {
    let root = shared_dir().join("data/cloudtrail/s3");
    let manifest: Value = serde_json::from_slice(&fs::read(root.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest.as_array().unwrap();
    assert_eq!(entries.len(), 5);
    for entry in entries {
        let key = entry["s3Object"].as_str().unwrap();
        let parsed = TrailKey::parse(key).unwrap();
        assert_eq!(parsed.org_id.is_some(), entry["organizationTrail"].as_bool().unwrap(), "{key}");
        let bytes = fs::read(root.join(key)).unwrap();
        let (events, summary) = read_all_events(bytes.as_slice()).unwrap();
        assert_eq!(events.len() as u64, entry["records"].as_u64().unwrap(), "{key}");
        assert_eq!(summary.records, events.len() as u64);
        assert_eq!(summary.object_sha256, entry["sha256Compressed"].as_str().unwrap(), "{key}");
        assert_eq!(summary.content_sha256, entry["sha256Uncompressed"].as_str().unwrap(), "{key}");
        for e in &events {
            assert_eq!(e.recipient_account_id.as_deref(), Some(parsed.account_id.as_str()), "{key}");
        }
        // Same records with tiny read blocks: block boundaries must not matter.
        let mut small = LogFileReader::with_block_size(bytes.as_slice(), 7).unwrap();
        let mut n = 0;
        while let Some(text) = small.next_record().unwrap() {
            assert_eq!(text, events[n].raw);
            n += 1;
        }
        assert_eq!(n, events.len());
    }
}
