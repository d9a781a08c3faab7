//! The resources a record touched, as identifiers a person searches for: ARNs from
//! `resources[]`, and the ids and names in `requestParameters`/`responseElements`
//! (`instanceId`, `bucketName`, `roleName`, `groupId`, `keyId`, …).
//!
//! Which parameters name resources differs per service; the rule here is by key: a string
//! value under a key that ends in `Id`, `Ids`, `Name`, `Arn`/`ARN`, or is `bucketName`/`key`,
//! anywhere in those two objects (including lists such as `instancesSet.items[].instanceId`).
//! Values that are obviously not identifiers (empty, very long, or free text with spaces) are
//! left out.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::record::Record;

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

/// The resource identifiers of a parsed record: exactly what [`identifiers`] finds in the
/// whole record, read from the typed view's `resources[]` and the raw JSON of its
/// parameters without building a `Value` (ingest computes this for every record).
pub fn record_identifiers(record: &Record<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for r in record.resources.iter().flatten() {
        if let Some(arn) = r.arn.as_deref().filter(|a| plausible(a)) {
            out.push(arn.to_owned());
        }
    }
    for raw in [record.request_parameters, record.response_elements].into_iter().flatten() {
        let mut d = serde_json::Deserializer::from_str(raw.get());
        // A value the record's own parse accepted; should it fail here, it names nothing more.
        let _ = Collect { out: &mut out, under: false, depth: 0 }.deserialize(&mut d);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|v| seen.insert(v.clone()));
    out
}

/// [`collect`] as a serde visitor over JSON text.
struct Collect<'o> {
    out: &'o mut Vec<String>,
    under: bool,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Collect<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.depth > 16 {
            return d.deserialize_ignored_any(IgnoredAny).map(|_| ());
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Collect<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        if self.under && plausible(v) {
            self.out.push(v.to_owned());
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Collect { out: self.out, under: self.under, depth: self.depth + 1 })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(names) = map.next_key_seed(KeyNames { top: self.depth == 0 })? {
            map.next_value_seed(Collect { out: self.out, under: names, depth: self.depth + 1 })?;
        }
        Ok(())
    }
}

/// Whether a map key names a resource (read without allocating the key).
struct KeyNames {
    top: bool,
}

impl<'de> DeserializeSeed<'de> for KeyNames {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyNames {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, k: &str) -> Result<bool, E> {
        Ok(names_resource(k) || (self.top && k == "name"))
    }
}

/// Whether the record (its JSON text) touched `resource`: a cheap substring test first, then
/// an exact comparison with its identifiers. An ARN also matches its last part when the
/// record names only that (`i-0abc` for `arn:aws:ec2:…:instance/i-0abc`), and a record's ARN
/// matches a search for its resource part or a tail of it (`instance/i-0abc`, `i-0abc`).
pub fn touches(raw: &str, resource: &str) -> bool {
    let short = last_part(resource);
    if resource.is_empty() || !raw.contains(short) {
        return false;
    }
    let Ok(record) = serde_json::from_str::<Value>(raw) else { return false };
    identifiers(&record)
        .iter()
        .any(|id| id == resource || (resource.starts_with("arn:") && id == short) || arn_ends_with(id, resource))
}

/// The last non-empty part of an identifier between `/` and `:` (`i-0abc` of
/// `arn:aws:ec2:r:1:instance/i-0abc`), or the whole of one that has none.
fn last_part(id: &str) -> &str {
    id.split(['/', ':']).rfind(|p| !p.is_empty()).unwrap_or(id)
}

/// The resource part of an ARN (`instance/i-0abc` of `arn:aws:ec2:r:1:instance/i-0abc`).
fn arn_resource(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:")?.splitn(5, ':').nth(4)
}

/// `arn:…:instance/i-0abc` and `i-0abc` (or `instance/i-0abc`) name the same thing.
fn arn_ends_with(arn: &str, id: &str) -> bool {
    id.contains(|c| c != '/' && c != ':')
        && !id.starts_with("arn:")
        && arn_resource(arn).is_some_and(|r| {
            r == id || r.strip_suffix(id).is_some_and(|head| head.ends_with('/') || head.ends_with(':'))
        })
}

/// The keys a record with these identifiers is indexed under: the last part of each
/// identifier. Every way [`touches`] matches a resource R keeps R's last part (an identifier
/// equal to R, to R's last part, or an ARN ending in R after a separator), so a record it
/// matches has the key [`lookup_key`]`(R)`. Keys over-approximate (`b.txt` of two buckets):
/// a store confirms each candidate with [`touches`].
pub fn index_keys(identifiers: &[String]) -> Vec<&str> {
    let mut keys: Vec<&str> = identifiers.iter().map(|id| last_part(id)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The index key to look `resource` up under (see [`index_keys`]).
pub fn lookup_key(resource: &str) -> &str {
    last_part(resource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn index_keys_cover_what_touches_matches() {
        let arn = "arn:aws:s3:::logs/a/b.txt".to_string();
        let ids = [arn, "a/b.txt".into(), "logs".into(), "arn:aws:s3:::logs".into(), "x/".into()];
        let keys = index_keys(&ids);
        assert_eq!(keys, vec!["b.txt", "logs", "x"]);
        assert!(
            !touches(r#"{"resources":[{"ARN":"arn:aws:s3:::logs/a/b.txt"}]}"#, "s3:::logs/a/b.txt"),
            "not a tail of the resource part"
        );
    }

    fn json() -> impl Strategy<Value = Value> {
        let key = proptest::sample::select(vec![
            "instanceId",
            "bucketName",
            "key",
            "name",
            "roleArn",
            "groupIds",
            "state",
            "ARN",
            "arn",
            "items",
            "x",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "(arn:aws:ec2:r:1:instance/)?[a-z0-9:/ -]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest! {
        /// The streaming reader finds what the `Value` walk finds, and the index keys of a
        /// record include a lookup key of every resource `touches` says it names.
        #[test]
        fn record_identifiers_and_keys_agree_with_touches(
            params in json(),
            response in json(),
            arns in prop::collection::vec("arn:aws:ec2:r:1:instance/[a-z0-9]{1,3}", 0..3),
            probes in prop::collection::vec("(arn:aws:ec2:r:1:)?(instance/)?[a-z0-9:/ -]{0,6}", 1..6),
        ) {
            let resources: Vec<Value> = arns.iter().map(|a| serde_json::json!({"ARN": a})).collect();
            let whole = serde_json::json!({"eventID": "e", "eventTime": "2024-01-01T00:00:00Z",
                "requestParameters": params, "responseElements": response, "resources": resources});
            let text = whole.to_string();
            let record = Record::from_json(&text).unwrap();
            let ids = record_identifiers(&record);
            prop_assert_eq!(&ids, &identifiers(&whole));
            let keys = index_keys(&ids);
            for probe in probes.iter().chain(&ids) {
                if touches(&text, probe) {
                    prop_assert!(keys.contains(&lookup_key(probe)), "{} in {:?}", probe, keys);
                }
            }
        }
    }
}
