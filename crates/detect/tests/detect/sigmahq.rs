//! The SigmaHQ CloudTrail rules in `../shared/data/sigma/` load unmodified.

use detect::RuleSet;
use test_support::shared_data;

#[test]
fn every_sigmahq_cloudtrail_rule_loads() {
    // The folder as published, with its licence and README beside the rules.
    let (set, errors) = RuleSet::load(&shared_data("sigma"));
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(set.rules.len(), 57);
    let ids: std::collections::HashSet<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 57, "every rule has its own id");
}

#[test]
fn sigmahq_rules_fire_on_their_intent_and_not_on_near_misses() {
    let (set, _) = RuleSet::load(&shared_data("sigma/rules"));
    let by_title = |t: &str| set.rules.iter().find(|r| r.title == t).unwrap_or_else(|| panic!("no rule {t:?}"));
    let ev = |s: &str| -> serde_json::Value { serde_json::from_str(s).unwrap() };
    let stop = by_title("AWS CloudTrail Important Change");
    assert!(stop.matches(&ev(r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging"}"#)));
    assert!(!stop.matches(&ev(r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"StartLogging"}"#)));
    let no_mfa = by_title("AWS Successful Console Login Without MFA");
    let login = r#"{"eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","userIdentity":{"type":"IAMUser"},
        "additionalEventData":{"MFAUsed":"No"},"responseElements":{"ConsoleLogin":"Success"}}"#;
    assert!(no_mfa.matches(&ev(login)));
    assert!(!no_mfa.matches(&ev(&login.replace("\"MFAUsed\":\"No\"", "\"MFAUsed\":\"Yes\""))));
}

#[test]
fn the_rule_index_the_projection_and_scanning_text_never_change_a_result() {
    let (set, _) = RuleSet::load(&shared_data("sigma"));
    let mut records: Vec<serde_json::Value> = Vec::new();
    for f in
        ["panther.jsonl", "stratus.jsonl", "panther-nonconforming.jsonl", "otel-contrib.jsonl", "cloud-custodian.jsonl"]
    {
        let text = std::fs::read_to_string(shared_data("cloudtrail").join(f)).unwrap();
        records.extend(text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()));
    }
    // Case and type variations of the indexed fields.
    let mut variants = Vec::new();
    for r in &records {
        let mut lower = r.clone();
        if let Some(n) = r["eventName"].as_str() {
            lower["eventName"] = serde_json::Value::String(n.to_lowercase());
            let mut listed = r.clone();
            listed["eventName"] = serde_json::json!([n]);
            variants.push(listed);
        }
        if let Some(n) = r["eventSource"].as_str() {
            lower["eventSource"] = serde_json::Value::String(n.to_uppercase());
        }
        variants.push(lower);
    }
    records.extend(variants);
    let mut hits = 0;
    for r in &records {
        let indexed: Vec<&str> = set.matching(r).map(|x| x.id.as_str()).collect();
        let brute: Vec<&str> = set.rules.iter().filter(|x| x.matches(r)).map(|x| x.id.as_str()).collect();
        assert_eq!(indexed, brute, "{r}");
        // Parsing only the fields the rules read changes nothing either.
        let projected = set.parse_record(r.to_string().as_bytes()).unwrap();
        let from_projection: Vec<&str> = set.matching(&projected).map(|x| x.id.as_str()).collect();
        assert_eq!(from_projection, brute, "{r}\n{projected}");
        // Nor does scanning the text with the columns ingest already has.
        let text = r.to_string();
        let scan = set.scan(&text, r["eventName"].as_str(), r["eventSource"].as_str());
        let scanned: Vec<&str> = scan.rules.iter().map(|i| set.rules[*i].id.as_str()).collect();
        assert_eq!(scanned, brute, "{r}");
        hits += brute.len();
    }
    assert!(hits > 100, "the records exercise the rules ({hits} matches)");
}

/// The text prefilter is sound: a record whose JSON spells keys with `\u` escapes, or whose
/// values differ only in ASCII case, is judged exactly like the parsed record, for the
/// SigmaHQ pack and the built-in packs together.
#[test]
fn the_text_prefilter_never_changes_a_result() {
    // Rules that only a field's key can prefilter (no usable literal in their values).
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(
        extra.path().join("keys.yml"),
        "title: any error\nid: any-error\ndetection:\n  s:\n    errorCode|exists: true\n  condition: s\n---\n\
         title: root by regex\nid: root-re\ndetection:\n  s:\n    userIdentity.type|re: '^[Rr]oot$'\n  condition: s\n",
    )
    .unwrap();
    let (set, errors) = detect::RuleSet::load_sources(&[
        detect::RuleSource::Builtin,
        detect::RuleSource::Path(shared_data("sigma")),
        detect::RuleSource::Path(extra.path().to_path_buf()),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    let mut texts: Vec<String> = Vec::new();
    for f in ["panther.jsonl", "stratus.jsonl", "cloud-custodian.jsonl"] {
        let text = std::fs::read_to_string(shared_data("cloudtrail").join(f)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            texts.push(line.to_owned());
            // Values in another case (keys keep theirs: field names are exact).
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            texts.push(recase(&v).to_string());
            // A key spelled with an escape: `"errorCode"` as `"\u0065rrorCode"`.
            for key in ["errorCode", "type", "eventType", "userIdentity"] {
                let quoted = format!("\"{key}\"");
                if line.contains(&quoted) {
                    let escaped = format!("\"\\u{:04x}{}\"", key.as_bytes()[0], &key[1..]);
                    texts.push(line.replacen(&quoted, &escaped, 1));
                }
            }
        }
    }
    let mut hits = 0;
    for text in &texts {
        let record: serde_json::Value = serde_json::from_str(text).unwrap();
        let brute: Vec<usize> = (0..set.rules.len()).filter(|i| set.rules[*i].matches(&record)).collect();
        let scan = set.scan(text, record["eventName"].as_str(), record["eventSource"].as_str());
        assert_eq!(scan.rules.to_vec(), brute, "{text}");
        hits += brute.len();
    }
    assert!(hits > 100, "{hits}");
}

/// Every string value upper-cased where it was lower-case and vice versa.
fn recase(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(
            s.chars()
                .map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(recase).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), recase(x))).collect()),
        other => other.clone(),
    }
}
