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
