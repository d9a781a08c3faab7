//! CloudTrail records as OCSF API Activity (class 6003) and alerts as OCSF Detection Finding
//! (class 2004), schema version 1.1.0.
//!
//! The mapping follows the schema's attribute dictionary (what each attribute means), not
//! one product's output. Every record maps, however odd: a missing value leaves its
//! attribute out, never the event, and a value of the wrong type is carried as text. The
//! original record is kept whole in `unmapped.cloudtrail` so nothing CloudTrail said is lost.

use serde_json::{json, Map, Value};

pub const VERSION: &str = "1.1.0";
pub const API_ACTIVITY: u32 = 6003;
pub const DETECTION_FINDING: u32 = 2004;

/// API Activity `activity_id`: 1 Create, 2 Read, 3 Update, 4 Delete, 0 Unknown, 99 Other.
pub fn activity_of(event_name: Option<&str>, read_only: Option<bool>) -> (u32, &'static str) {
    let Some(name) = event_name else { return (0, "Unknown") };
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    if starts(&[
        "Delete",
        "Remove",
        "Terminate",
        "Deregister",
        "Revoke",
        "Purge",
        "Destroy",
        "Disassociate",
        "Detach",
        "Release",
    ]) {
        (4, "Delete")
    } else if starts(&[
        "Create", "Run", "Allocate", "Import", "Register", "Issue", "Generate", "Request", "Add", "Copy", "Launch",
    ]) {
        (1, "Create")
    } else if read_only == Some(true)
        || starts(&["Get", "Describe", "List", "Lookup", "Head", "Search", "Scan", "Query", "Select", "BatchGet"])
    {
        (2, "Read")
    } else if read_only == Some(false)
        || starts(&[
            "Update",
            "Modify",
            "Put",
            "Set",
            "Attach",
            "Associate",
            "Enable",
            "Disable",
            "Start",
            "Stop",
            "Change",
            "Reset",
            "Tag",
            "Untag",
            "Reboot",
            "Restore",
            "Replace",
        ])
    {
        (3, "Update")
    } else {
        (99, "Other")
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn insert(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v.into());
    }
}

/// `sourceIPAddress` as an OCSF endpoint: an IP address, or the AWS service (or "AWS
/// Internal") that made the call on someone's behalf.
fn endpoint(source: Option<String>) -> Value {
    let Some(source) = source else { return json!({"name": "unknown"}) };
    if source.parse::<std::net::IpAddr>().is_ok() {
        json!({"ip": source})
    } else if source.contains('.') && !source.contains(' ') {
        json!({"hostname": source, "svc_name": source})
    } else {
        json!({"name": source})
    }
}

/// One CloudTrail record (its JSON text) as an OCSF API Activity event. Text that is not a
/// JSON object still maps (to an event that says so), so an export never stops halfway.
pub fn api_activity(raw: &str) -> Value {
    // The mapping reads the record's tree; who acted comes from the typed, borrowing read
    // the rest of trailwatch names principals with (cheap beside building the tree).
    let record: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
    let actor = model::Record::from_json(raw).ok().map(|r| model::Actor::from_record(&r));
    let event_name = text(&record, "eventName").filter(|n| !n.is_empty());
    let read_only = record.get("readOnly").and_then(Value::as_bool);
    let (activity_id, activity) = activity_of(event_name.as_deref(), read_only);
    let time = text(&record, "eventTime").and_then(|t| model::timefmt::parse_rfc3339_millis(&t)).unwrap_or(0);
    let error_code = text(&record, "errorCode");
    let null = Value::Null;
    let ui = record.get("userIdentity").unwrap_or(&null);

    let mut user = Map::new();
    insert(&mut user, "type", text(ui, "type"));
    insert(&mut user, "uid", text(ui, "principalId").or_else(|| text(ui, "arn")));
    insert(&mut user, "uid_alt", text(ui, "arn"));
    let name = text(ui, "userName").filter(|n| !n.is_empty()).or_else(|| actor.as_ref().and_then(|a| a.name.clone()));
    insert(&mut user, "name", name);
    insert(&mut user, "credential_uid", text(ui, "accessKeyId"));
    if let Some(account) = text(ui, "accountId") {
        user.insert("account".into(), json!({"uid": account, "type": "AWS Account", "type_id": 10}));
    }
    if !["uid", "name", "account", "credential_uid"].iter().any(|k| user.contains_key(*k)) {
        // `actor` needs one of its attributes: who did it, as far as trailwatch could tell.
        user.insert("name".into(), json!(actor.map_or_else(|| "unknown".to_string(), |a| a.principal)));
    }
    let mut actor = Map::new();
    actor.insert("user".into(), Value::Object(user));
    let session_context = ui.get("sessionContext");
    if let Some(sc) = session_context {
        let attrs = sc.get("attributes").cloned().unwrap_or(Value::Null);
        let mut session = Map::new();
        insert(&mut session, "issuer", sc.get("sessionIssuer").and_then(|i| text(i, "arn")));
        insert(&mut session, "created_time_dt", text(&attrs, "creationDate"));
        let mfa = text(&attrs, "mfaAuthenticated").map(|m| m == "true");
        insert(&mut session, "is_mfa", mfa);
        insert(&mut session, "credential_uid", text(ui, "accessKeyId"));
        if !session.is_empty() {
            actor.insert("session".into(), Value::Object(session));
        }
    }
    insert(&mut actor, "app_name", text(ui, "invokedBy"));

    let mut api = Map::new();
    api.insert("operation".into(), json!(event_name.clone().unwrap_or_else(|| "unknown".into())));
    insert(&mut api, "version", text(&record, "apiVersion"));
    if let Some(service) = text(&record, "eventSource") {
        api.insert("service".into(), json!({"name": service}));
    }
    if let Some(request_id) = text(&record, "requestID") {
        api.insert("request".into(), json!({"uid": request_id}));
    }
    let mut response = Map::new();
    insert(&mut response, "error", error_code.clone());
    insert(&mut response, "error_message", text(&record, "errorMessage"));
    if !response.is_empty() {
        api.insert("response".into(), Value::Object(response));
    }

    let mut cloud = Map::new();
    cloud.insert("provider".into(), json!("AWS"));
    insert(&mut cloud, "region", text(&record, "awsRegion"));
    if let Some(account) = text(&record, "recipientAccountId") {
        cloud.insert("account".into(), json!({"uid": account, "type": "AWS Account", "type_id": 10}));
    }

    let resources: Vec<Value> = record
        .get("resources")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    let mut m = Map::new();
                    insert(&mut m, "uid", text(r, "ARN"));
                    insert(&mut m, "type", text(r, "type"));
                    insert(&mut m, "owner", text(r, "accountId").map(|a| json!({"account": {"uid": a}})));
                    (!m.is_empty()).then_some(Value::Object(m))
                })
                .collect()
        })
        .unwrap_or_default();

    let (status_id, status) = if error_code.is_some() { (2, "Failure") } else { (1, "Success") };
    let mut metadata = Map::new();
    metadata.insert("version".into(), json!(VERSION));
    metadata.insert(
        "product".into(),
        json!({"name": "CloudTrail", "vendor_name": "AWS", "feature": {"name": "trailwatch"}}),
    );
    insert(&mut metadata, "uid", text(&record, "eventID"));
    insert(&mut metadata, "original_time", text(&record, "eventTime"));
    insert(&mut metadata, "event_code", text(&record, "eventType"));
    insert(&mut metadata, "log_version", text(&record, "eventVersion"));
    metadata.insert("profiles".into(), json!(["cloud"]));
    if let Some(p) = metadata.get_mut("product") {
        insert(p.as_object_mut().expect("an object"), "version", text(&record, "eventVersion"));
    }

    let mut out = Map::new();
    out.insert("class_uid".into(), json!(API_ACTIVITY));
    out.insert("class_name".into(), json!("API Activity"));
    out.insert("category_uid".into(), json!(6));
    out.insert("category_name".into(), json!("Application Activity"));
    out.insert("activity_id".into(), json!(activity_id));
    out.insert("activity_name".into(), json!(activity));
    out.insert("type_uid".into(), json!(API_ACTIVITY * 100 + activity_id));
    out.insert("type_name".into(), json!(format!("API Activity: {activity}")));
    out.insert("severity_id".into(), json!(1));
    out.insert("severity".into(), json!("Informational"));
    out.insert("time".into(), json!(time));
    out.insert("status_id".into(), json!(status_id));
    out.insert("status".into(), json!(status));
    insert(&mut out, "status_code", error_code);
    insert(&mut out, "status_detail", text(&record, "errorMessage"));
    out.insert(
        "message".into(),
        json!(format!(
            "{} {}",
            event_name.as_deref().unwrap_or("unknown call"),
            text(&record, "eventSource").map(|s| format!("on {s}")).unwrap_or_default()
        )
        .trim_end()),
    );
    out.insert("metadata".into(), Value::Object(metadata));
    out.insert("actor".into(), Value::Object(actor));
    out.insert("api".into(), Value::Object(api));
    out.insert("src_endpoint".into(), endpoint(text(&record, "sourceIPAddress")));
    if let Some(ua) = text(&record, "userAgent") {
        out.insert("http_request".into(), json!({"user_agent": ua}));
    }
    out.insert("cloud".into(), Value::Object(cloud));
    if !resources.is_empty() {
        out.insert("resources".into(), json!(resources));
    }
    // Moved, not copied (`json!` would serialize the whole tree again).
    let mut unmapped = Map::new();
    unmapped.insert("cloudtrail".into(), record);
    out.insert("unmapped".into(), Value::Object(unmapped));
    Value::Object(out)
}

/// Alert levels as OCSF `severity_id`: 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical.
fn severity(level: &str) -> (u32, &'static str) {
    match level.to_ascii_lowercase().as_str() {
        "informational" => (1, "Informational"),
        "low" => (2, "Low"),
        "medium" => (3, "Medium"),
        "high" => (4, "High"),
        "critical" => (5, "Critical"),
        _ => (0, "Unknown"),
    }
}

/// An alert as an OCSF Detection Finding.
pub fn detection_finding(alert: &store::Alert, event_ids: &[String]) -> Value {
    let (severity_id, severity) = severity(&alert.level);
    // Create for an open alert; Update once someone acknowledged it; Close when resolved.
    let (activity_id, activity) = match alert.state {
        store::AlertState::Open => (1, "Create"),
        store::AlertState::Acknowledged => (2, "Update"),
        store::AlertState::Resolved => (3, "Close"),
    };
    let (status_id, status) = match alert.state {
        store::AlertState::Open => (1, "New"),
        store::AlertState::Acknowledged => (2, "In Progress"),
        store::AlertState::Resolved => (4, "Resolved"),
    };
    let s = &alert.subject;
    let time_dt = model::timefmt::format_millis;
    json!({
        "class_uid": DETECTION_FINDING,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": DETECTION_FINDING * 100 + activity_id,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "time": alert.last_seen,
        "count": alert.count,
        "message": alert.title,
        "comment": alert.comment,
        "metadata": {
            "version": VERSION,
            "product": {"name": "trailwatch", "vendor_name": "trailwatch"},
            "uid": format!("trailwatch-alert-{}", alert.id),
            "profiles": ["cloud"],
        },
        "finding_info": {
            "uid": format!("trailwatch-alert-{}", alert.id),
            "title": alert.title,
            "analytic": {"uid": alert.rule_id, "name": alert.title, "type_id": 1, "type": "Rule"},
            "first_seen_time": alert.first_seen,
            "last_seen_time": alert.last_seen,
            "first_seen_time_dt": time_dt(alert.first_seen),
            "last_seen_time_dt": time_dt(alert.last_seen),
            "related_events": event_ids.iter().map(|id| json!({"uid": id, "product_uid": "CloudTrail"})).collect::<Vec<_>>(),
        },
        "cloud": {"provider": "AWS", "region": s.region, "account": s.account.as_ref().map(|a| json!({"uid": a}))},
        "actor": {"user": {"uid": s.principal}},
        "src_endpoint": endpoint(s.source_ip.clone()),
        "unmapped": {"group": alert.group_key, "event_source": s.event_source, "event_name": s.event_name, "error_code": s.error_code},
    })
}
