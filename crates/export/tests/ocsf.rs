//! Every record, however odd, maps to an OCSF API Activity event that has every attribute
//! the schema requires. The check below is written from the OCSF 1.1 schema files
//! (`events/base_event.json`, `events/application/api_activity.json`, and the objects they
//! use: `metadata`, `product`, `actor`, `api`, `network_endpoint`, `cloud`, `user`), not
//! from our mapping: a required attribute we forget fails it.

use std::net::IpAddr;

use proptest::prelude::*;
use serde_json::{json, Value};

/// What the schema requires of a 6003 event; an empty list means it validates.
fn api_activity_problems(e: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let mut need = |cond: bool, what: &str| {
        if !cond {
            p.push(what.to_string());
        }
    };
    let int = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64);
    let string = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).is_some();
    let object = |v: &Value, k: &str| v.get(k).and_then(Value::as_object).is_some();
    // Base event: classification and occurrence.
    need(int(e, "class_uid") == Some(6003), "class_uid = 6003");
    need(int(e, "category_uid") == Some(6), "category_uid = 6 (Application Activity)");
    let activity = int(e, "activity_id");
    need(matches!(activity, Some(0..=4) | Some(99)), "activity_id in the class enum (0-4, 99)");
    need(int(e, "type_uid") == activity.map(|a| 6003 * 100 + a), "type_uid = class_uid * 100 + activity_id");
    need(matches!(int(e, "severity_id"), Some(0..=6) | Some(99)), "severity_id in its enum");
    need(int(e, "time").is_some(), "time (timestamp, ms)");
    if let Some(s) = e.get("status_id") {
        need(matches!(s.as_i64(), Some(0..=2) | Some(99)), "status_id in its enum");
    }
    // metadata: version and product are required; product needs its vendor.
    need(object(e, "metadata"), "metadata");
    let m = &e["metadata"];
    need(
        m.get("version").and_then(Value::as_str).is_some_and(|v| v.split('.').count() == 3),
        "metadata.version (SemVer)",
    );
    need(object(m, "product"), "metadata.product");
    need(string(&m["product"], "vendor_name"), "metadata.product.vendor_name");
    // API Activity: actor, api, src_endpoint (and cloud, required in 1.1's API Activity).
    need(object(e, "actor"), "actor");
    let a = &e["actor"];
    need(
        ["process", "user", "invoked_by", "session", "app_name", "app_uid"]
            .iter()
            .any(|k| a.get(*k).is_some_and(|v| !v.is_null())),
        "actor: at least one of process, user, invoked_by, session, app_name, app_uid",
    );
    if let Some(u) = a.get("user") {
        need(
            ["account", "name", "uid", "email_addr", "full_name", "credential_uid"].iter().any(|k| u.get(*k).is_some()),
            "actor.user: at least one identifying attribute",
        );
    }
    need(object(e, "api"), "api");
    need(string(&e["api"], "operation"), "api.operation");
    need(object(e, "src_endpoint"), "src_endpoint");
    let s = &e["src_endpoint"];
    need(
        ["ip", "uid", "name", "hostname", "svc_name", "instance_uid", "interface_uid", "interface_name"]
            .iter()
            .any(|k| s.get(*k).is_some()),
        "src_endpoint: at least one of ip, uid, name, hostname, svc_name, …",
    );
    if let Some(ip) = s.get("ip") {
        need(ip.as_str().is_some_and(|i| i.parse::<IpAddr>().is_ok()), "src_endpoint.ip is an IP address");
    }
    need(object(e, "cloud"), "cloud");
    need(string(&e["cloud"], "provider"), "cloud.provider");
    p
}

fn all_shared_records() -> Vec<String> {
    let dir = test_support::shared_data("cloudtrail");
    let mut out = Vec::new();
    for f in std::fs::read_dir(&dir).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            out.extend(
                std::fs::read_to_string(&path).unwrap().lines().filter(|l| !l.trim().is_empty()).map(String::from),
            );
        }
    }
    out
}

#[test]
fn every_published_record_maps_to_a_valid_api_activity() {
    let records = all_shared_records();
    assert!(records.len() > 100, "{} records", records.len());
    for raw in &records {
        let e = export::ocsf::api_activity(raw);
        let problems = api_activity_problems(&e);
        assert!(problems.is_empty(), "{problems:?}\nrecord: {raw}\nocsf: {e}");
        // What the record says is where OCSF puts it.
        let r: Value = serde_json::from_str(raw).unwrap();
        if let Some(name) = r["eventName"].as_str() {
            assert_eq!(e["api"]["operation"], name);
        }
        if let Some(id) = r["eventID"].as_str() {
            assert_eq!(e["metadata"]["uid"], id);
        }
        assert_eq!(e["status_id"], if r.get("errorCode").is_some_and(|c| !c.is_null()) { 2 } else { 1 });
        assert_eq!(e["unmapped"]["cloudtrail"], r, "the whole record travels along");
    }
}

#[test]
fn odd_and_hostile_records_still_map_to_valid_events() {
    for raw in [
        "{}",
        "not json at all",
        "[1,2,3]",
        r#"{"eventName":null,"userIdentity":null,"sourceIPAddress":"AWS Internal"}"#,
        r#"{"eventName":7,"sourceIPAddress":"cloudtrail.amazonaws.com","eventTime":"2024-01-01T00:00:00Z"}"#,
        r#"{"eventName":"DeleteTrail","sourceIPAddress":"2001:db8::1","userIdentity":{"type":"Root","accountId":"1"}}"#,
        r#"{"eventName":"<script>alert(1)</script>","sourceIPAddress":"\"><img src=x onerror=alert(1)>","userAgent":"\u202eevil"}"#,
    ] {
        let e = export::ocsf::api_activity(raw);
        let problems = api_activity_problems(&e);
        assert!(problems.is_empty(), "{problems:?} for {raw}: {e}");
    }
    let e = export::ocsf::api_activity(r#"{"eventName":"DeleteTrail","sourceIPAddress":"2001:db8::1"}"#);
    assert_eq!((e["activity_id"].clone(), e["src_endpoint"]["ip"].clone()), (json!(4), json!("2001:db8::1")));
}

#[test]
fn the_user_is_named_as_trailwatch_names_principals() {
    let user = |identity: &str| {
        export::ocsf::api_activity(&format!(r#"{{"eventName":"X","userIdentity":{identity}}}"#))["actor"]["user"]
            .clone()
    };
    // A role session by its session name, an IAM user by the last part of its ARN's path.
    let session =
        user(r#"{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/Admin/alice@example.com","accountId":"1"}"#);
    assert_eq!(session["name"], json!("alice@example.com"));
    assert_eq!(user(r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/ops/bob","accountId":"1"}"#)["name"], json!("bob"));
    // Root has no name (its ARN has no path to take one from); a service is named by itself.
    let root = user(r#"{"type":"Root","principalId":"1","arn":"arn:aws:iam::1:root","accountId":"1"}"#);
    assert_eq!(root.get("name"), None, "{root}");
    assert_eq!(user(r#"{"type":"AWSService","invokedBy":"ec2.amazonaws.com"}"#)["name"], json!("ec2.amazonaws.com"));
}

#[test]
fn the_check_catches_what_a_mapping_could_forget() {
    // The validator itself can fail: remove each required attribute from a good event.
    let good = export::ocsf::api_activity(
        r#"{"eventName":"GetObject","sourceIPAddress":"203.0.113.7","eventTime":"2024-01-01T00:00:00Z"}"#,
    );
    assert!(api_activity_problems(&good).is_empty());
    for path in [
        &["class_uid"][..],
        &["activity_id"],
        &["type_uid"],
        &["severity_id"],
        &["time"],
        &["metadata"],
        &["metadata", "version"],
        &["metadata", "product"],
        &["actor"],
        &["api", "operation"],
        &["src_endpoint"],
        &["cloud", "provider"],
    ] {
        let mut bad = good.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut at = &mut bad;
        for k in parents {
            at = at.get_mut(*k).unwrap();
        }
        at.as_object_mut().unwrap().remove(*last);
        assert!(!api_activity_problems(&bad).is_empty(), "{path:?} removed and still valid");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_record_shape_maps_validly(
        name in proptest::option::of("[A-Za-z]{0,20}"),
        ip in proptest::option::of(prop_oneof!["[0-9]{1,3}(\\.[0-9]{1,3}){3}", "\\PC{0,30}"]),
        error in proptest::option::of("\\PC{0,10}"),
        read_only in proptest::option::of(any::<bool>()),
        identity in proptest::option::of(("[A-Za-z]{0,10}", proptest::option::of("[0-9]{12}"))),
    ) {
        let mut r = serde_json::Map::new();
        if let Some(n) = name { r.insert("eventName".into(), json!(n)); }
        if let Some(i) = ip { r.insert("sourceIPAddress".into(), json!(i)); }
        if let Some(e) = error { r.insert("errorCode".into(), json!(e)); }
        if let Some(ro) = read_only { r.insert("readOnly".into(), json!(ro)); }
        if let Some((t, acct)) = identity { r.insert("userIdentity".into(), json!({"type": t, "accountId": acct})); }
        let e = export::ocsf::api_activity(&Value::Object(r).to_string());
        let problems = api_activity_problems(&e);
        prop_assert!(problems.is_empty(), "{:?}: {}", problems, e);
    }
}
