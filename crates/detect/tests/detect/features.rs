//! One rule per Sigma feature, each with events that must match and events that must not.

use detect::RuleSet;
use serde_json::{json, Value};

/// A rule set of one rule with this `detection` block.
fn rule(detection: &str) -> RuleSet {
    let text = format!("title: t\nid: r\nlogsource: {{product: aws}}\ndetection:\n{detection}\n");
    RuleSet::from_yaml_text(&text, "t.yml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn load_error(detection: &str) -> String {
    let text = format!("title: t\nid: r\ndetection:\n{detection}\n");
    RuleSet::from_yaml_text(&text, "t.yml").expect_err(&text).to_string()
}

/// Checks each event three ways: the rule alone, through the rule index, and on the record
/// parsed with the set's projection (only the fields its rules read).
fn check(set: &RuleSet, yes: &[Value], no: &[Value]) {
    let r = &set.rules[0];
    for (events, want) in [(yes, true), (no, false)] {
        for e in events {
            assert_eq!(r.matches(e), want, "{e}");
            assert_eq!(set.matching(e).count() == 1, want, "indexed: {e}");
            let projected = set.parse_record(e.to_string().as_bytes()).unwrap();
            assert_eq!(set.matching(&projected).count() == 1, want, "projected: {e} as {projected}");
        }
    }
}

#[test]
fn map_is_and_list_of_maps_is_or_value_list_is_or() {
    let and = rule("  sel:\n    a: 1\n    b: x\n  condition: sel");
    check(&and, &[json!({"a": 1, "b": "x"})], &[json!({"a": 1}), json!({"a": 1, "b": "y"})]);
    let or = rule("  sel:\n    - a: 1\n    - b: x\n  condition: sel");
    check(&or, &[json!({"a": 1}), json!({"b": "x"})], &[json!({"a": 2, "b": "y"})]);
    let values = rule("  sel:\n    e: [StopLogging, DeleteTrail]\n  condition: sel");
    check(&values, &[json!({"e": "DeleteTrail"}), json!({"e": "stoplogging"})], &[json!({"e": "StartLogging"})]);
}

#[test]
fn a_string_test_on_an_object_sees_every_value_inside_it() {
    // CloudTrail's requestParameters is an object; rules written for text-indexed stores test
    // it whole. Any scalar inside it (at any depth) may match; keys do not.
    let set = rule("  sel:\n    requestParameters|contains: Suspended\n  condition: sel");
    check(
        &set,
        &[json!({"requestParameters": {"bucketName": "b", "VersioningConfiguration": {"Status": "Suspended"}}})],
        &[
            json!({"requestParameters": {"bucketName": "b", "VersioningConfiguration": {"Status": "Enabled"}}}),
            json!({"requestParameters": {"Suspended": "no"}}),
            json!({"responseElements": {"Status": "Suspended"}}),
        ],
    );
    let re = rule("  sel:\n    requestParameters|re: '^sus'\n  condition: sel");
    check(&re, &[json!({"requestParameters": {"a": [{"b": "suspect"}]}})], &[json!({"requestParameters": {}})]);
    // null and exists still look at the field itself.
    let null = rule("  sel:\n    requestParameters: null\n  condition: sel");
    check(&null, &[json!({"requestParameters": null}), json!({})], &[json!({"requestParameters": {"a": null}})]);
}

#[test]
fn dotted_fields_nested_objects_and_arrays() {
    let r = rule("  sel:\n    userIdentity.sessionContext.sessionIssuer.type: Role\n  condition: sel");
    check(
        &r,
        &[json!({"userIdentity": {"sessionContext": {"sessionIssuer": {"type": "Role"}}}})],
        &[json!({"userIdentity": {"type": "Role"}}), json!({})],
    );
    // Through arrays: any element.
    let r = rule("  sel:\n    resources.ARN|endswith: ':trail/main'\n  condition: sel");
    check(
        &r,
        &[json!({"resources": [{"ARN": "arn:aws:s3:::b"}, {"ARN": "arn:aws:cloudtrail:us-east-1:1:trail/main"}]})],
        &[json!({"resources": [{"ARN": "arn:aws:s3:::b"}]})],
    );
    let r = rule("  sel:\n    tags: prod\n  condition: sel");
    check(&r, &[json!({"tags": ["dev", "prod"]})], &[json!({"tags": ["dev"]})]);
    // A literal key with dots.
    let r = rule("  sel:\n    a.b: 1\n  condition: sel");
    check(&r, &[json!({"a.b": 1}), json!({"a": {"b": 1}})], &[json!({"a": {"c": 1}})]);
}

#[test]
fn numbers_booleans_null_and_empty() {
    let n = rule("  sel:\n    port: 22\n  condition: sel");
    check(&n, &[json!({"port": 22}), json!({"port": "22"})], &[json!({"port": 220}), json!({"port": "x22"})]);
    let b = rule("  sel:\n    readOnly: false\n  condition: sel");
    check(&b, &[json!({"readOnly": false}), json!({"readOnly": "false"})], &[json!({"readOnly": true})]);
    let null = rule("  sel:\n    errorCode: null\n  condition: sel");
    check(&null, &[json!({}), json!({"errorCode": null})], &[json!({"errorCode": "AccessDenied"})]);
    let empty = rule("  sel:\n    x: ''\n  condition: sel");
    check(&empty, &[json!({"x": ""})], &[json!({}), json!({"x": "a"})]);
}

#[test]
fn wildcards_escapes_and_case() {
    let r = rule("  sel:\n    e: 'Delete*Policy?'\n  condition: sel");
    check(
        &r,
        &[json!({"e": "DeleteBucketPolicyX"}), json!({"e": "deletepolicyy"})],
        &[json!({"e": "DeleteBucketPolicy"})],
    );
    let lit = rule("  sel:\n    e: 'a\\*b'\n  condition: sel");
    check(&lit, &[json!({"e": "a*b"})], &[json!({"e": "axb"})]);
    let cased = rule("  sel:\n    e|cased: StopLogging\n  condition: sel");
    check(&cased, &[json!({"e": "StopLogging"})], &[json!({"e": "stoplogging"})]);
}

#[test]
fn string_modifiers_and_all() {
    let c = rule("  sel:\n    ua|contains: [boto3, terraform]\n  condition: sel");
    check(&c, &[json!({"ua": "Boto3/1.2"}), json!({"ua": "x Terraform y"})], &[json!({"ua": "aws-cli"})]);
    let all = rule("  sel:\n    cmd|contains|all: [curl, '169.254.169.254']\n  condition: sel");
    check(&all, &[json!({"cmd": "curl http://169.254.169.254/"})], &[json!({"cmd": "curl http://example.com"})]);
    let s = rule("  sel:\n    e|startswith: Put\n  condition: sel");
    check(&s, &[json!({"e": "PutBucketPolicy"})], &[json!({"e": "GetPut"})]);
    let e = rule("  sel:\n    e|endswith: Policy\n  condition: sel");
    check(&e, &[json!({"e": "PutBucketPolicy"})], &[json!({"e": "PolicyX"})]);
}

#[test]
fn regular_expressions_and_flags() {
    let r = rule("  sel:\n    e|re: '^Delete(Trail|Bucket)$'\n  condition: sel");
    check(&r, &[json!({"e": "DeleteTrail"})], &[json!({"e": "deletetrail"}), json!({"e": "DeleteTrails"})]);
    let i = rule("  sel:\n    e|re|i: '^deletetrail$'\n  condition: sel");
    check(&i, &[json!({"e": "DeleteTrail"})], &[json!({"e": "Delete"})]);
    let m = rule("  sel:\n    e|re|m: '^second$'\n  condition: sel");
    check(&m, &[json!({"e": "first\nsecond"})], &[json!({"e": "first second"})]);
    let s = rule("  sel:\n    e|re|s: 'a.b'\n  condition: sel");
    check(&s, &[json!({"e": "a\nb"})], &[json!({"e": "ab"})]);
    assert!(load_error("  sel:\n    e|re: '('\n  condition: sel").contains("regular expression"));
}

#[test]
fn cidr_exists_fieldref_and_comparisons() {
    let c = rule("  sel:\n    sourceIPAddress|cidr: ['10.0.0.0/8', '2001:db8::/32']\n  condition: sel");
    check(
        &c,
        &[json!({"sourceIPAddress": "10.9.8.7"}), json!({"sourceIPAddress": "2001:db8::5"})],
        &[json!({"sourceIPAddress": "203.0.113.7"}), json!({"sourceIPAddress": "ec2.amazonaws.com"})],
    );
    let ex = rule("  sel:\n    errorCode|exists: true\n  condition: sel");
    check(&ex, &[json!({"errorCode": "AccessDenied"})], &[json!({}), json!({"errorCode": null})]);
    let nex = rule("  sel:\n    errorCode|exists: false\n  condition: sel");
    check(&nex, &[json!({})], &[json!({"errorCode": "x"})]);
    let fr = rule("  sel:\n    userIdentity.accountId|fieldref: recipientAccountId\n  condition: sel");
    check(
        &fr,
        &[json!({"userIdentity": {"accountId": "1"}, "recipientAccountId": "1"})],
        &[json!({"userIdentity": {"accountId": "1"}, "recipientAccountId": "2"})],
    );
    let gt = rule("  sel:\n    n|gt: 10\n  condition: sel");
    check(&gt, &[json!({"n": 11}), json!({"n": "12.5"})], &[json!({"n": 10}), json!({"n": "x"})]);
    let lte = rule("  sel:\n    n|lte: 10\n  condition: sel");
    check(&lte, &[json!({"n": 10})], &[json!({"n": 11})]);
    let gte = rule("  sel:\n    n|gte: 10\n  condition: sel");
    check(&gte, &[json!({"n": 10})], &[json!({"n": 9})]);
    let lt = rule("  sel:\n    n|lt: 10\n  condition: sel");
    check(&lt, &[json!({"n": 9})], &[json!({"n": 10})]);
}

#[test]
fn encodings() {
    let b = rule("  sel:\n    data|base64: 'hello'\n  condition: sel");
    check(&b, &[json!({"data": "aGVsbG8="})], &[json!({"data": "hello"})]);
    let off = rule("  sel:\n    data|base64offset|contains: '/bin/bash'\n  condition: sel");
    check(
        &off,
        &[json!({"data": "ZWNobyAvYmluL2Jhc2g="}), json!({"data": "xxL2Jpbi9iYXNoyy"})],
        &[json!({"data": "L2Jpbi9zaA=="})],
    );
    let wide = rule("  sel:\n    data|wide|base64: 'ping'\n  condition: sel");
    check(&wide, &[json!({"data": "cABpAG4AZwA="})], &[json!({"data": "cGluZw=="})]);
    let u16 = rule("  sel:\n    data|utf16le|base64offset|contains: 'ping'\n  condition: sel");
    check(&u16, &[json!({"data": "QUFBcABpAG4AZwBC"})], &[json!({"data": "cGluZw=="})]);
    let wd = rule("  sel:\n    cmd|windash|contains: ' -enc '\n  condition: sel");
    check(
        &wd,
        &[json!({"cmd": "powershell /enc abc"}), json!({"cmd": "powershell -enc abc"})],
        &[json!({"cmd": "powershell enc"})],
    );
}

#[test]
fn keywords_search_every_value() {
    let k = rule("  keywords:\n    - 'AssumeRoot'\n    - '*evil.example*'\n  condition: keywords");
    check(
        &k,
        &[json!({"eventName": "AssumeRoot"}), json!({"requestParameters": {"url": "https://evil.example/x"}})],
        &[json!({"eventName": "AssumeRole"})],
    );
    // Keywords are substrings, case-insensitive.
    let k = rule("  keywords: mimikatz\n  condition: keywords");
    check(&k, &[json!({"userAgent": "Mimikatz/2.0"})], &[json!({"userAgent": "aws-cli"})]);
}

#[test]
fn conditions() {
    let r = rule(
        "  selection_a:\n    a: 1\n  selection_b:\n    b: 1\n  filter_x:\n    x: 1\n  condition: 1 of selection_* and not filter_x",
    );
    check(&r, &[json!({"a": 1}), json!({"b": 1})], &[json!({"a": 1, "x": 1}), json!({})]);
    let all = rule("  sel_a:\n    a: 1\n  sel_b:\n    b: 1\n  condition: all of sel_*");
    check(&all, &[json!({"a": 1, "b": 1})], &[json!({"a": 1})]);
    let them = rule("  s1:\n    a: 1\n  s2:\n    b: 1\n  condition: 1 of them");
    check(&them, &[json!({"b": 1})], &[json!({"c": 1})]);
    let list = rule("  s1:\n    a: 1\n  s2:\n    b: 1\n  condition:\n    - s1\n    - s2");
    check(&list, &[json!({"a": 1}), json!({"b": 1})], &[json!({})]);
    let parens = rule("  a:\n    a: 1\n  b:\n    b: 1\n  c:\n    c: 1\n  condition: a and (b or not c)");
    check(&parens, &[json!({"a": 1, "b": 1, "c": 1}), json!({"a": 1})], &[json!({"a": 1, "c": 1}), json!({"b": 1})]);
}

#[test]
fn bad_rules_say_where_and_why_and_do_not_stop_the_others() {
    assert!(load_error("  sel:\n    a|nosuchmod: 1\n  condition: sel").contains("unknown modifier"));
    assert!(load_error("  sel:\n    a: 1\n  condition: other").contains("not a search"));
    assert!(load_error("  sel:\n    a: 1").contains("condition"));
    assert!(load_error("  sel:\n    a|contains|startswith: x\n  condition: sel").contains("conflicts"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yml"), "title: g\nid: good\ndetection:\n  s:\n    a: 1\n  condition: s\n")
        .unwrap();
    std::fs::write(dir.path().join("bad.yml"), "title: b\nid: bad\ndetection:\n  s: [\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("sub/also.yaml"),
        "title: a\nid: also\ndetection:\n  s:\n    b: 1\n  condition: s\n",
    )
    .unwrap();
    let (set, errors) = RuleSet::load(dir.path());
    assert_eq!(set.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["good", "also"]);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].file.ends_with("bad.yml") && errors[0].line.is_some(), "{}", errors[0]);
}

#[test]
fn filters_narrow_the_rules_they_name_across_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rule.yml"),
        "title: console login\nid: 11111111-0000-4000-8000-000000000001\nname: console_login\n\
         detection:\n  sel:\n    eventName: ConsoleLogin\n  condition: sel\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("other.yml"),
        "title: other\nid: other\ndetection:\n  sel:\n    eventName: ConsoleLogin\n  condition: sel\n",
    )
    .unwrap();
    // By name; excludes the break-glass user (and by id, a second filter on a source IP).
    std::fs::write(
        dir.path().join("zz-filter.yml"),
        "title: not break-glass\nid: f1\nlogsource: {product: aws}\nfilter:\n  rules:\n    - console_login\n  \
         selection:\n    userIdentity.userName: break-glass\n  condition: not selection\n---\n\
         title: not the office\nid: f2\nfilter:\n  rules: 11111111-0000-4000-8000-000000000001\n  \
         office:\n    sourceIPAddress|cidr: 10.0.0.0/8\n  condition: not office\n",
    )
    .unwrap();
    let (set, errors) = RuleSet::load(dir.path());
    assert!(errors.is_empty(), "{errors:?}");
    let ids = |e: &Value| set.matching(e).map(|r| r.id.clone()).collect::<Vec<_>>();
    let login = |user: &str, ip: &str| json!({"eventName": "ConsoleLogin", "userIdentity": {"userName": user}, "sourceIPAddress": ip});
    // Load order: files sorted by name (other.yml, rule.yml, …).
    assert_eq!(ids(&login("alice", "203.0.113.7")), vec!["other", "11111111-0000-4000-8000-000000000001"]);
    assert_eq!(ids(&login("break-glass", "203.0.113.7")), vec!["other"]);
    assert_eq!(ids(&login("alice", "10.1.2.3")), vec!["other"]);
    let rule = set.rules.iter().find(|r| r.id.starts_with("1111")).unwrap();
    assert_eq!(rule.filters, vec!["f1", "f2"]);
    // The projection keeps the filters' fields.
    let projected = set.parse_record(login("break-glass", "1.2.3.4").to_string().as_bytes()).unwrap();
    assert_eq!(set.matching(&projected).count(), 1);

    // A filter naming a rule that is not loaded is reported; the rules still load.
    std::fs::write(
        dir.path().join("zzz-orphan.yml"),
        "title: orphan\nid: f3\nfilter:\n  rules: [no-such-rule]\n  s:\n    a: 1\n  condition: not s\n",
    )
    .unwrap();
    let (set, errors) = RuleSet::load(dir.path());
    assert_eq!(set.rules.len(), 2);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].reason.contains("no-such-rule") && errors[0].file.ends_with("zzz-orphan.yml"), "{}", errors[0]);
}

mod correlations {
    use detect::correlation::State;
    use detect::RuleSet;
    use serde_json::{json, Value};

    const FAILED_LOGIN: &str = "title: failed console login\nid: base-failed\nname: failed_console_login\n\
        detection:\n  sel:\n    eventName: ConsoleLogin\n    responseElements.ConsoleLogin: Failure\n  condition: sel\n";

    fn set(correlation: &str) -> RuleSet {
        RuleSet::from_yaml_text(&format!("{FAILED_LOGIN}---\n{correlation}"), "c.yml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn failed(user: &str, second: u32) -> Value {
        json!({"eventName": "ConsoleLogin", "eventID": format!("{user}-{second}"),
               "eventTime": format!("2024-01-15T10:{:02}:{:02}Z", second / 60, second % 60),
               "userIdentity": {"userName": user}, "sourceIPAddress": format!("203.0.113.{}", second % 250),
               "responseElements": {"ConsoleLogin": "Failure"}})
    }

    /// The ids that fire on each event, in order.
    fn run(set: &RuleSet, events: &[Value]) -> Vec<(String, String)> {
        let mut state = State::default();
        let mut out = Vec::new();
        for e in events {
            for h in set.hits(&mut state, e) {
                out.push((h.id.to_owned(), e["eventID"].as_str().unwrap().to_owned()));
            }
        }
        out
    }

    const BURST: &str =
        "title: brute force\nid: brute\ncorrelation:\n  type: event_count\n  rules:\n    - failed_console_login\n  \
        group-by:\n    - userIdentity.userName\n  timespan: 5m\n  condition:\n    gte: 20\nlevel: high\n";

    #[test]
    fn event_count_fires_once_per_burst_and_never_below_the_threshold() {
        let s = set(BURST);
        // 20 in 5 minutes: one alert, on the 20th; the 21st inside the window: nothing more.
        let burst: Vec<Value> = (0..21).map(|i| failed("alice", i * 10)).collect();
        assert_eq!(run(&s, &burst), vec![("brute".to_owned(), "alice-190".to_owned())]);
        // 19: nothing. Nor 20 spread over more than 5 minutes.
        assert!(run(&s, &(0..19).map(|i| failed("bob", i)).collect::<Vec<_>>()).is_empty());
        assert!(run(&s, &(0..20).map(|i| failed("carol", i * 20)).collect::<Vec<_>>()).is_empty());
        // Groups are counted apart: 10 + 10 for two users is nothing.
        let mixed: Vec<Value> = (0..20).map(|i| failed(if i % 2 == 0 { "dave" } else { "erin" }, i)).collect();
        assert!(run(&s, &mixed).is_empty());
        // The base rule is quiet (no `generate`)…
        assert!(run(&s, &[failed("frank", 1)]).is_empty());
        // …unless the correlation says generate: true.
        let loud = set(&BURST.replace("  timespan: 5m\n", "  timespan: 5m\n  generate: true\n"));
        assert_eq!(run(&loud, &[failed("frank", 1)]), vec![("base-failed".to_owned(), "frank-1".to_owned())]);
    }

    #[test]
    fn correlation_windows_survive_a_restart_and_ignore_redelivered_events() {
        let s = set(BURST);
        let burst: Vec<Value> = (0..20).map(|i| failed("alice", i * 10)).collect();
        let mut state = State::default();
        for e in &burst[..12] {
            assert!(s.hits(&mut state, e).is_empty());
        }
        // The same event delivered again does not count twice.
        for e in &burst[..12] {
            assert!(s.hits(&mut state, e).is_empty());
        }
        // "Restart": only what was persisted carries over.
        let saved = state.take_dirty(&s.correlations);
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].correlation, "brute");
        assert!(state.take_dirty(&s.correlations).is_empty(), "nothing changed since");
        let mut restored = State::restore(&s.correlations, saved.clone());
        let fired: Vec<String> =
            burst[12..].iter().flat_map(|e| s.hits(&mut restored, e)).map(|h| h.id.to_owned()).collect();
        assert_eq!(fired, vec!["brute".to_owned()], "fires on the 20th across the restart");
        // Windows of correlations that are no longer loaded are dropped.
        let other = set(&BURST.replace("id: brute", "id: other"));
        let mut fresh = State::restore(&other.correlations, saved);
        assert!(burst[12..].iter().all(|e| other.hits(&mut fresh, e).is_empty()));
    }

    #[test]
    fn value_count_counts_distinct_values() {
        let s = set("title: spray\nid: spray\ncorrelation:\n  type: value_count\n  rules: failed_console_login\n  \
            group-by: [sourceIPAddress]\n  timespan: 1h\n  condition:\n    field: userIdentity.userName\n    gte: 3\n");
        let ev = |user: &str, t: u32| {
            let mut e = failed(user, t);
            e["sourceIPAddress"] = json!("198.51.100.9");
            e
        };
        // The same user three times is one value; three users from one IP fire.
        assert!(run(&s, &[ev("a", 1), ev("a", 2), ev("a", 3)]).is_empty());
        assert_eq!(run(&s, &[ev("a", 1), ev("b", 2), ev("c", 3)]), vec![("spray".to_owned(), "c-3".to_owned())]);
    }

    #[test]
    fn temporal_and_temporal_ordered() {
        let rules = format!(
            "{FAILED_LOGIN}---\ntitle: success\nid: base-ok\nname: console_success\ndetection:\n  sel:\n    eventName: ConsoleLogin\n    \
             responseElements.ConsoleLogin: Success\n  condition: sel\n"
        );
        let ok = |user: &str, t: u32| {
            let mut e = failed(user, t);
            e["responseElements"]["ConsoleLogin"] = json!("Success");
            e["eventID"] = json!(format!("{user}-ok-{t}"));
            e
        };
        let corr = |kind: &str| {
            RuleSet::from_yaml_text(
                &format!(
                    "{rules}---\ntitle: t\nid: {kind}\ncorrelation:\n  type: {kind}\n  rules: [failed_console_login, console_success]\n  \
                     group-by: [userIdentity.userName]\n  timespan: 10m\n"
                ),
                "t.yml",
            )
            .unwrap()
        };
        let unordered = corr("temporal");
        let ordered = corr("temporal_ordered");
        // Failure then success: both fire.
        let seq = [failed("g", 1), ok("g", 2)];
        assert_eq!(run(&unordered, &seq), vec![("temporal".to_owned(), "g-ok-2".to_owned())]);
        assert_eq!(run(&ordered, &seq), vec![("temporal_ordered".to_owned(), "g-ok-2".to_owned())]);
        // Success then failure: only the unordered one.
        let rev = [ok("h", 1), failed("h", 2)];
        assert_eq!(run(&unordered, &rev).len(), 1);
        assert!(run(&ordered, &rev).is_empty());
        // Too far apart, or different users: neither.
        assert!(run(&unordered, &[failed("i", 1), ok("i", 700)]).is_empty());
        assert!(run(&unordered, &[failed("j", 1), ok("k", 2)]).is_empty());
    }

    #[test]
    fn bad_correlations_are_reported() {
        let err = |c: &str| RuleSet::from_yaml_text(&format!("{FAILED_LOGIN}---\n{c}"), "c.yml").unwrap_err().reason;
        assert!(err("title: x\nid: x\ncorrelation:\n  type: event_count\n  rules: [nope]\n  timespan: 5m\n  condition: {gte: 1}\n")
            .contains("\"nope\""));
        assert!(err("title: x\nid: x\ncorrelation:\n  type: event_count\n  rules: [failed_console_login]\n  timespan: 5 minutes\n  condition: {gte: 1}\n")
            .contains("timespan"));
        assert!(err(
            "title: x\nid: x\ncorrelation:\n  type: event_count\n  rules: [failed_console_login]\n  timespan: 5m\n"
        )
        .contains("condition"));
        assert!(err(
            "title: x\nid: x\ncorrelation:\n  type: median\n  rules: [failed_console_login]\n  timespan: 5m\n"
        )
        .contains("median"));
    }
}
