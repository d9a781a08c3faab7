//! The resources a record touched, as identifiers a person searches for: ARNs from
//! `resources[]`, and the ids and names in `requestParameters`/`responseElements`
//! (`instanceId`, `bucketName`, `roleName`, `groupId`, `keyId`, …).
//!
//! Which parameters name resources differs per service; the rule here is by key: a string
//! value under a key that ends in `Id`, `Ids`, `Name`, `Arn`/`ARN`, or is `bucketName`/`key`,
//! anywhere in those two objects (including lists such as `instancesSet.items[].instanceId`).
//! Values that are obviously not identifiers (empty, very long, or free text with spaces) are
//! left out.

use serde_json::Value;

/// Longest value taken as an identifier (S3 keys can be 1 024 bytes).
const MAX_LEN: usize = 1024;

fn names_resource(key: &str) -> bool {
    key.ends_with("Id")
        || key.ends_with("Ids")
        || key.ends_with("Name")
        || key.ends_with("Arn")
        || key.ends_with("ARN")
        || key.ends_with("Arns")
        || matches!(key, "key" | "bucketName" | "Bucket" | "Key" | "arn")
}

fn plausible(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_LEN && !v.contains(char::is_whitespace) && !v.contains('\0')
}

fn collect(value: &Value, under_resource_key: bool, out: &mut Vec<String>, depth: usize) {
    if depth > 16 {
        return;
    }
    match value {
        Value::String(s) if under_resource_key && plausible(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect(v, under_resource_key, out, depth + 1)),
        Value::Object(map) => {
            for (k, v) in map {
                // `name` names the resource only at the top (StopLogging's trail, CreateTrail);
                // deeper it is a state or tag name (`currentState.name` = "stopping").
                collect(v, names_resource(k) || (depth == 0 && k == "name"), out, depth + 1);
            }
        }
        _ => {}
    }
}

/// The resource identifiers of a record, deduplicated, in the order found.
pub fn identifiers(record: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for r in record.get("resources").and_then(Value::as_array).into_iter().flatten() {
        if let Some(arn) = r.get("ARN").or_else(|| r.get("arn")).and_then(Value::as_str) {
            if plausible(arn) {
                out.push(arn.to_owned());
            }
        }
    }
    for field in ["requestParameters", "responseElements"] {
        if let Some(v) = record.get(field) {
            collect(v, false, &mut out, 0);
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|v| seen.insert(v.clone()));
    out
}

/// Whether the record (its JSON text) touched `resource`: a cheap substring test first, then
/// an exact comparison with its identifiers. An ARN also matches its last part when the
/// record names only that (`i-0abc` for `arn:aws:ec2:…:instance/i-0abc`).
pub fn touches(raw: &str, resource: &str) -> bool {
    let short = resource.rsplit(['/', ':']).next().filter(|s| !s.is_empty()).unwrap_or(resource);
    if !raw.contains(short) {
        return false;
    }
    let Ok(record) = serde_json::from_str::<Value>(raw) else { return false };
    identifiers(&record)
        .iter()
        .any(|id| id == resource || (resource.starts_with("arn:") && id == short) || arn_ends_with(id, resource))
}

/// `arn:…:instance/i-0abc` and `i-0abc` name the same thing.
fn arn_ends_with(arn: &str, id: &str) -> bool {
    arn.starts_with("arn:")
        && !id.starts_with("arn:")
        && (arn.ends_with(&format!("/{id}")) || arn.ends_with(&format!(":{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOP: &str = r#"{"eventName":"StopInstances","requestParameters":{"instancesSet":{"items":[{"instanceId":"i-0abc"}]},"force":false},
        "responseElements":{"instancesSet":{"items":[{"instanceId":"i-0abc","currentState":{"code":64,"name":"stopping"}}]}},
        "resources":[{"ARN":"arn:aws:ec2:us-east-1:111122223333:instance/i-0abc","type":"AWS::EC2::Instance"}]}"#;

    #[test]
    fn ids_arns_and_names_are_found() {
        let v: Value = serde_json::from_str(STOP).unwrap();
        let ids = identifiers(&v);
        assert_eq!(ids, vec!["arn:aws:ec2:us-east-1:111122223333:instance/i-0abc", "i-0abc"], "not the state name");
        assert!(touches(STOP, "i-0abc"));
        assert!(touches(STOP, "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc"));
        assert!(!touches(STOP, "i-0ab"), "exact, not a substring");
        let s3 = r#"{"requestParameters":{"bucketName":"logs","key":"a/b.txt","Host":"logs.s3.amazonaws.com"}}"#;
        assert!(touches(s3, "logs") && touches(s3, "a/b.txt"));
        assert!(!touches(s3, "logs.s3.amazonaws.com"), "Host is not a resource key");
        let stop = r#"{"requestParameters":{"name":"arn:aws:cloudtrail:us-east-1:1:trail/main"}}"#;
        assert!(touches(stop, "arn:aws:cloudtrail:us-east-1:1:trail/main"), "a top-level name is the resource");
    }

    #[test]
    fn an_arn_matches_a_record_naming_only_its_id() {
        let r = r#"{"requestParameters":{"instanceId":"i-9"}}"#;
        assert!(touches(r, "arn:aws:ec2:us-east-1:1:instance/i-9"));
        let arn_only = r#"{"resources":[{"ARN":"arn:aws:ec2:us-east-1:1:instance/i-9"}]}"#;
        assert!(touches(arn_only, "i-9"));
    }
}
