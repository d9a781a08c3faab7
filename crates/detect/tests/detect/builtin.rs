//! The built-in packs in `rules/`: every rule loads, lints clean, and has events that must
//! fire it and near misses that must not (`rules/tests/cases.json`, sequences fed in order so
//! correlations are tested the same way).

use std::collections::BTreeSet;
use std::path::PathBuf;

use detect::correlation::State;
use detect::RuleSet;
use serde_json::Value;

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

/// Every rule id that matched or fired on some event of `events`, fed in order.
fn fired(set: &RuleSet, events: &[Value]) -> BTreeSet<String> {
    let mut state = State::default();
    let mut out = BTreeSet::new();
    for e in events {
        // Rules that only feed a correlation do not report, but they still match.
        out.extend(set.matching(e).map(|r| r.id.clone()));
        out.extend(set.hits(&mut state, e).into_iter().map(|h| h.id.to_owned()));
    }
    out
}

#[test]
fn built_in_rules_load_and_lint_clean() {
    let (set, errors) = RuleSet::load(&rules_dir());
    assert!(errors.is_empty(), "{errors:?}");
    assert!(set.rules.len() >= 25, "{} rules", set.rules.len());
    assert!(set.correlations.len() >= 2);
    let lint = set.lint();
    assert!(lint.is_empty(), "{lint:?}");
}

#[test]
fn every_built_in_rule_fires_on_its_cases_and_not_on_near_misses() {
    let (set, errors) = RuleSet::load(&rules_dir());
    assert!(errors.is_empty(), "{errors:?}");
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(rules_dir().join("tests/cases.json")).unwrap()).unwrap();
    let mut covered = BTreeSet::new();
    for case in &cases {
        let id = case["rule"].as_str().unwrap();
        let fires = case["fires"].as_array().unwrap();
        let quiet = case["quiet"].as_array().unwrap();
        assert!(!fires.is_empty() && !quiet.is_empty(), "{id}: needs both kinds of cases");
        for (n, s) in fires.iter().enumerate() {
            let got = fired(&set, s.as_array().unwrap());
            assert!(got.contains(id), "{} ({id}): firing case {n} did not fire; got {got:?}", case["title"]);
        }
        for (n, s) in quiet.iter().enumerate() {
            let got = fired(&set, s.as_array().unwrap());
            assert!(!got.contains(id), "{} ({id}): near miss {n} fired", case["title"]);
        }
        covered.insert(id.to_owned());
    }
    let all: BTreeSet<String> =
        set.rules.iter().map(|r| r.id.clone()).chain(set.correlations.iter().map(|c| c.id.clone())).collect();
    let missing: Vec<&String> = all.difference(&covered).collect();
    assert!(missing.is_empty(), "rules without cases: {missing:?}");
}
