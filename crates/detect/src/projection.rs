//! Parsing only what the rules read.
//!
//! Most of a CloudTrail record's JSON is never looked at by any rule, yet building it as a
//! `serde_json::Value` is most of the cost of evaluating Sigma rules over raw records. A
//! [`Projection`] is the tree of field paths the loaded rules use (plus `eventID`,
//! `eventName` and `eventSource`); [`Projection::parse`] builds a `Value` holding exactly
//! those fields, skipping the rest while still validating the whole document. When any rule
//! needs every value (keyword searches), the projection is the whole record.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::{Map, Value};

#[derive(Debug, Default, Clone)]
struct Node {
    children: HashMap<String, Node>,
    /// Everything below is needed.
    whole: bool,
}

/// The fields the rules read.
#[derive(Debug, Default, Clone)]
pub struct Projection {
    root: Node,
}

impl Projection {
    /// Everything: no projection.
    pub fn everything() -> Projection {
        Projection { root: Node { children: HashMap::new(), whole: true } }
    }

    /// Adds a dotted path (`userIdentity.sessionContext.sessionIssuer.type`): the nested
    /// path, and the literal dotted key at the top level.
    pub fn add(&mut self, path: &str) {
        if self.root.whole {
            return;
        }
        let mut node = &mut self.root;
        for part in path.split('.') {
            node = node.children.entry(part.to_owned()).or_default();
        }
        node.whole = true;
        if path.contains('.') {
            self.root.children.entry(path.to_owned()).or_default().whole = true;
        }
    }

    /// Parses `json` into a `Value` with only the projected fields.
    pub fn parse(&self, json: &[u8]) -> serde_json::Result<Value> {
        let truncated = Cell::new(false);
        let mut de = serde_json::Deserializer::from_slice(json);
        let v = Seed(Some(&self.root), Depth { at: 0, cap: None, truncated: &truncated }).deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }

    /// Like [`parse`](Self::parse), for a record [`parse`](Self::parse) refused because
    /// values nest deeper than serde_json's recursion limit (128): arrays and objects
    /// deeper than [`MAX_DEPTH`] are skipped (validated, not built) and read as `null`.
    /// Returns the value and whether anything was skipped. No Sigma rule reads that deep;
    /// the record's other fields are evaluated as usual.
    pub fn parse_bounded(&self, json: &[u8]) -> serde_json::Result<(Value, bool)> {
        let truncated = Cell::new(false);
        let mut de = serde_json::Deserializer::from_slice(json);
        let v = Seed(Some(&self.root), Depth { at: 0, cap: Some(MAX_DEPTH), truncated: &truncated })
            .deserialize(&mut de)?;
        de.end()?;
        Ok((v, truncated.get()))
    }
}

/// How deep [`Projection::parse_bounded`] builds values (serde_json refuses 128).
pub const MAX_DEPTH: usize = 64;

/// Where a value sits, and the bound (if any) past which values are skipped.
#[derive(Clone, Copy)]
struct Depth<'t> {
    at: usize,
    cap: Option<usize>,
    truncated: &'t Cell<bool>,
}

impl Depth<'_> {
    fn deeper(self) -> Self {
        Depth { at: self.at + 1, ..self }
    }
}

/// A value at `node` of the projection; `None`: the whole value is needed.
struct Seed<'n, 't>(Option<&'n Node>, Depth<'t>);

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let Seed(node, depth) = self;
        if depth.cap.is_some_and(|cap| depth.at >= cap) {
            // serde_json skips a value without recursing: no depth limit there.
            d.deserialize_ignored_any(IgnoredAny)?;
            depth.truncated.set(true);
            return Ok(Value::Null);
        }
        match node {
            // The fast path: serde_json builds the whole value itself.
            Some(n) if n.whole && depth.cap.is_none() => serde::Deserialize::deserialize(d),
            Some(n) if n.whole => d.deserialize_any(Build(None, depth)),
            node => d.deserialize_any(Build(node, depth)),
        }
    }
}

struct Build<'n, 't>(Option<&'n Node>, Depth<'t>);

/// A key looked up in the node's children without allocating for the keys that are not;
/// with no node (a whole value), every key.
struct KeySeed<'n>(Option<&'n Node>);

impl<'de, 'n> DeserializeSeed<'de> for KeySeed<'n> {
    type Value = Option<(String, Option<&'n Node>)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'n> Visitor<'de> for KeySeed<'n> {
    type Value = Option<(String, Option<&'n Node>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Self::Value, E> {
        Ok(match self.0 {
            None => Some((k.to_owned(), None)),
            Some(node) => node.children.get_key_value(k).map(|(k, n)| (k.clone(), Some(n))),
        })
    }
}

impl<'de> Visitor<'de> for Build<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Build(node, depth) = self;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed(node))? {
            match key {
                Some((k, child)) => {
                    let v = map.next_value_seed(Seed(child, depth.deeper()))?;
                    out.insert(k, v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Build(node, depth) = self;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed(node, depth.deeper()))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_exactly_the_projected_paths() {
        let mut p = Projection::default();
        p.add("eventName");
        p.add("userIdentity.sessionContext.sessionIssuer.type");
        p.add("resources.ARN");
        let json = br#"{"eventName":"X","eventTime":"t","userIdentity":{"type":"AssumedRole","sessionContext":
            {"sessionIssuer":{"type":"Role","arn":"a"},"attributes":{}}},"resources":[{"ARN":"r1","type":"t"},{"ARN":"r2"}],
            "a.b":1,"requestParameters":{"x":[1,2,{"y":null}]}}"#;
        let v = p.parse(json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"eventName":"X","userIdentity":{"sessionContext":{"sessionIssuer":{"type":"Role"}}},
                "resources":[{"ARN":"r1"},{"ARN":"r2"}]})
        );
        // Literal dotted keys, and whole subtrees.
        p.add("a.b");
        p.add("requestParameters");
        let v = p.parse(json).unwrap();
        assert_eq!(v["a.b"], 1);
        assert_eq!(v["requestParameters"]["x"][2]["y"], Value::Null);
        // Invalid JSON is still an error, even in skipped parts.
        assert!(p.parse(br#"{"eventName":"X","skipped":[1,}"#).is_err());
        assert!(p.parse(br#"{"eventName":"X"} trailing"#).is_err());
        assert_eq!(Projection::everything().parse(json).unwrap(), serde_json::from_slice::<Value>(json).unwrap());
    }

    #[test]
    fn a_value_too_deep_for_serde_json_is_skipped_and_the_rest_read() {
        let deep = format!("{}1{}", "[".repeat(130), "]".repeat(130));
        let json = format!(r#"{{"eventName":"StopLogging","requestParameters":{{"name":"t","x":{deep}}},"z":{deep}}}"#);
        for p in [Projection::everything(), {
            let mut p = Projection::default();
            p.add("eventName");
            p.add("requestParameters");
            p
        }] {
            assert!(p.parse(json.as_bytes()).is_err(), "serde_json's recursion limit");
            let (v, truncated) = p.parse_bounded(json.as_bytes()).unwrap();
            assert!(truncated);
            assert_eq!(v["eventName"], "StopLogging");
            assert_eq!(v["requestParameters"]["name"], "t");
        }
        // Within the bound nothing is skipped and the value is the full parse.
        let shallow = br#"{"a":[[[{"b":1}]]],"eventName":"X"}"#;
        let (v, truncated) = Projection::everything().parse_bounded(shallow).unwrap();
        assert!(!truncated);
        assert_eq!(v, serde_json::from_slice::<Value>(shallow).unwrap());
        // Still invalid JSON is an error.
        assert!(Projection::everything().parse_bounded(br#"{"a":[1,}"#).is_err());
    }
}
