//! Sigma detection items: compiled from YAML once, evaluated against a record's JSON.
//!
//! * A search that is a map is an AND of its fields; a list of maps is an OR of those ANDs;
//!   a list of plain values (or a single value) is a keyword search over the whole record.
//! * A field's list of values is an OR (an AND with `|all`).
//! * Field names with dots address nested objects; arrays on the way (or at the end) match
//!   when any element does. A literal key containing dots is tried too.
//! * Values: strings with wildcards; numbers and booleans compare with the field's text
//!   (so `4` matches `4` and `"4"`); `null` matches a missing or null field; `''` an empty
//!   string.
//! * Modifiers: transformations (`base64`, `base64offset`, `utf16le`, `utf16be`, `utf16`,
//!   `wide`, `windash`) then one of `contains`, `startswith`, `endswith`, `re` (with `i`, `m`,
//!   `s`), `cidr`, `gt`/`gte`/`lt`/`lte`, `exists`, `fieldref`; and `all`, `cased`.

use base64::Engine as _;
use serde_json::Value;
use yaml_rust2::Yaml;

use crate::pattern::{self, Pattern};

/// A path into the record: `userIdentity.sessionContext.sessionIssuer.userName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    full: String,
    parts: Vec<String>,
}

impl FieldPath {
    /// The path as written.
    pub fn full(&self) -> &str {
        &self.full
    }

    pub fn new(name: &str) -> FieldPath {
        FieldPath { full: name.to_owned(), parts: name.split('.').map(str::to_owned).collect() }
    }

    /// Every leaf value at this path (arrays flattened: any element may match).
    pub fn leaves<'v>(&self, record: &'v Value, out: &mut Leaves<'v>) {
        if let Some(v) = record.get(&self.full).filter(|_| self.parts.len() > 1) {
            push_flat(v, out);
        }
        walk(record, &self.parts, out);
    }
}

/// The values found at a path; most paths find one, so they stay on the stack.
pub type Leaves<'v> = smallvec::SmallVec<[&'v Value; 4]>;

fn push_flat<'v>(v: &'v Value, out: &mut Leaves<'v>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| push_flat(i, out)),
        other => out.push(other),
    }
}

fn walk<'v>(v: &'v Value, parts: &[String], out: &mut Leaves<'v>) {
    let Some((first, rest)) = parts.split_first() else {
        push_flat(v, out);
        return;
    };
    match v {
        Value::Object(m) => {
            if let Some(next) = m.get(first) {
                walk(next, rest, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, parts, out)),
        _ => {}
    }
}

/// A leaf as Sigma compares it: strings as they are, numbers and booleans as their text.
fn leaf_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// The texts a string or regex test sees. A leaf that is an object contributes every scalar
/// inside it, the way an array contributes its elements: CloudTrail's `requestParameters`
/// and `responseElements` are objects, and rules written for stores that index them as text
/// test them whole (`requestParameters|contains: 'Suspended'`).
fn texts<'a, 'v>(leaves: &'a [&'v Value]) -> impl Iterator<Item = std::borrow::Cow<'v, str>> + 'a {
    leaves
        .iter()
        .flat_map(|l| {
            let mut inner = Leaves::new();
            if l.is_object() {
                all_leaves(l, &mut inner);
            } else {
                inner.push(l);
            }
            inner
        })
        .filter_map(leaf_text)
}

fn leaf_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// One value of a field, compiled.
#[derive(Debug, Clone)]
pub enum ValueTest {
    /// Any of these patterns (variants from transformations).
    Str(Vec<Pattern>),
    Regex(regex::Regex),
    Cidr(Cidr),
    Num(Cmp, f64),
    Null,
    Exists(bool),
    FieldRef(FieldPath, bool),
}

impl ValueTest {
    fn test(&self, leaves: &[&Value], record: &Value) -> bool {
        match self {
            ValueTest::Str(patterns) => texts(leaves).any(|t| patterns.iter().any(|p| p.matches(&t))),
            ValueTest::Regex(re) => texts(leaves).any(|t| re.is_match(&t)),
            ValueTest::Cidr(net) => leaves.iter().filter_map(|l| l.as_str()).any(|t| net.contains(t)),
            ValueTest::Num(op, n) => leaves.iter().filter_map(|l| leaf_number(l)).any(|v| match op {
                Cmp::Gt => v > *n,
                Cmp::Gte => v >= *n,
                Cmp::Lt => v < *n,
                Cmp::Lte => v <= *n,
            }),
            ValueTest::Null => leaves.iter().all(|l| l.is_null()),
            ValueTest::Exists(want) => leaves.iter().any(|l| !l.is_null()) == *want,
            ValueTest::FieldRef(other, cased) => {
                let mut theirs = Leaves::new();
                other.leaves(record, &mut theirs);
                leaves.iter().filter_map(|l| leaf_text(l)).any(|mine| {
                    theirs.iter().filter_map(|t| leaf_text(t)).any(|t| {
                        if *cased {
                            t == mine
                        } else {
                            t.to_lowercase() == mine.to_lowercase()
                        }
                    })
                })
            }
        }
    }
}

/// An IPv4 or IPv6 network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (a, p) = text.split_once('/').unwrap_or((text, ""));
        let addr: std::net::IpAddr = a.trim().parse().map_err(|_| format!("{text:?} is not a CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix =
            if p.is_empty() { max } else { p.trim().parse().map_err(|_| format!("{text:?}: bad prefix length"))? };
        if prefix > max {
            return Err(format!("{text:?}: prefix longer than {max}"));
        }
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: &str) -> bool {
        let Ok(ip) = ip.trim().parse::<std::net::IpAddr>() else { return false };
        let bits = |a: std::net::IpAddr| -> (u128, u32) {
            match a {
                std::net::IpAddr::V4(v) => (u32::from(v) as u128, 32),
                std::net::IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((net, w1), (host, w2)) = (bits(self.addr), bits(ip));
        if w1 != w2 {
            return false;
        }
        if self.prefix == 0 {
            return true;
        }
        let shift = w1 - self.prefix as u32;
        (net >> shift) == (host >> shift)
    }
}

/// One `field|modifiers: values` line.
#[derive(Debug, Clone)]
pub struct FieldTest {
    /// `None`: a keyword search over every value of the record.
    pub path: Option<FieldPath>,
    pub values: Vec<ValueTest>,
    pub all: bool,
}

impl FieldTest {
    /// Adds the paths this test reads to `p` (a keyword search reads everything).
    pub fn project(&self, p: &mut crate::projection::Projection) {
        match &self.path {
            Some(path) => p.add(&path.full),
            None => *p = crate::projection::Projection::everything(),
        }
        for v in &self.values {
            if let ValueTest::FieldRef(other, _) = v {
                p.add(&other.full);
            }
        }
    }

    /// When this test can only hold if top-level `field` equals one of a few values (folded
    /// to lower case), those values.
    pub fn required_values(&self, field: &str) -> Option<Vec<String>> {
        if self.path.as_ref().map(|p| p.full.as_str()) != Some(field) || (self.all && self.values.len() > 1) {
            return None;
        }
        let mut out = Vec::new();
        for v in &self.values {
            match v {
                ValueTest::Str(patterns) => {
                    for p in patterns {
                        out.push(p.exact_folded()?.to_owned());
                    }
                }
                _ => return None,
            }
        }
        Some(out)
    }

    /// Text that a record's JSON must contain (ASCII case aside) for this test to hold: any
    /// one of the returned needles (`None`: no such text is known). A value's longest literal
    /// when JSON would write it verbatim, else the field's key.
    pub fn needles(&self) -> Option<Vec<String>> {
        // The key as JSON writes it, closing quote included (`errorCode"`).
        let key = self
            .path
            .as_ref()
            .map(|p| p.parts.last().map(String::as_str).unwrap_or(&p.full))
            .filter(|k| crate::prefilter::verbatim(k))
            .map(|k| format!("{k}\""));
        let value_needles = |v: &ValueTest| -> Option<Vec<String>> {
            match v {
                ValueTest::Str(patterns) => {
                    let mut out = Vec::new();
                    for p in patterns {
                        let lit = p.longest_literal();
                        if lit.len() >= 3 && crate::prefilter::verbatim(&lit) {
                            out.push(lit.to_ascii_lowercase());
                        } else {
                            out.push(key.clone()?);
                        }
                    }
                    Some(out)
                }
                ValueTest::Regex(_) | ValueTest::Cidr(_) | ValueTest::Num(..) | ValueTest::FieldRef(..) => {
                    Some(vec![key.clone()?])
                }
                ValueTest::Exists(true) => Some(vec![key.clone()?]),
                ValueTest::Null | ValueTest::Exists(false) => None,
            }
        };
        if self.all {
            // Every value must hold: any one value's needles are necessary.
            self.values.iter().filter_map(value_needles).min_by_key(Vec::len)
        } else {
            let mut all = Vec::new();
            for v in &self.values {
                all.extend(value_needles(v)?);
            }
            (!all.is_empty()).then_some(all)
        }
    }

    pub fn test(&self, record: &Value) -> bool {
        let mut leaves = Leaves::new();
        match &self.path {
            Some(p) => p.leaves(record, &mut leaves),
            None => all_leaves(record, &mut leaves),
        }
        if self.all {
            self.values.iter().all(|v| v.test(&leaves, record))
        } else {
            self.values.iter().any(|v| v.test(&leaves, record))
        }
    }
}

fn all_leaves<'v>(v: &'v Value, out: &mut Leaves<'v>) {
    match v {
        Value::Object(m) => m.values().for_each(|x| all_leaves(x, out)),
        Value::Array(a) => a.iter().for_each(|x| all_leaves(x, out)),
        other => out.push(other),
    }
}

/// A named search of a rule's `detection`.
#[derive(Debug, Clone)]
pub enum Search {
    /// A map: every field test holds.
    All(Vec<FieldTest>),
    /// A list of maps: any of them holds.
    Any(Vec<Vec<FieldTest>>),
}

impl Search {
    pub fn project(&self, p: &mut crate::projection::Projection) {
        match self {
            Search::All(tests) => tests.iter().for_each(|t| t.project(p)),
            Search::Any(alternatives) => alternatives.iter().flatten().for_each(|t| t.project(p)),
        }
    }

    /// A necessary condition of this search built from its field tests' (`per_test`: a list
    /// of alternatives, one of which must hold; `None`: unknown): any one test of a map (the
    /// narrowest), every map of a list.
    fn necessary(&self, per_test: impl Fn(&FieldTest) -> Option<Vec<String>>) -> Option<Vec<String>> {
        let of_and = |tests: &[FieldTest]| tests.iter().filter_map(&per_test).min_by_key(Vec::len);
        match self {
            Search::All(tests) => of_and(tests),
            Search::Any(alternatives) => {
                let mut all = Vec::new();
                for tests in alternatives {
                    all.extend(of_and(tests)?);
                }
                Some(all)
            }
        }
    }

    /// The values top-level `field` must have for this search to hold (`None`: any).
    pub fn required_values(&self, field: &str) -> Option<Vec<String>> {
        self.necessary(|t| t.required_values(field))
    }

    /// Text the record's JSON must contain for this search to hold (see [`FieldTest::needles`]).
    pub fn needles(&self) -> Option<Vec<String>> {
        self.necessary(FieldTest::needles)
    }

    pub fn test(&self, record: &Value) -> bool {
        match self {
            Search::All(tests) => tests.iter().all(|t| t.test(record)),
            Search::Any(alternatives) => alternatives.iter().any(|tests| tests.iter().all(|t| t.test(record))),
        }
    }
}

/// Compiles one search's YAML.
pub fn compile_search(y: &Yaml) -> Result<Search, String> {
    match y {
        Yaml::Hash(h) => Ok(Search::All(compile_map(h)?)),
        Yaml::Array(items) if items.iter().all(|i| matches!(i, Yaml::Hash(_))) && !items.is_empty() => {
            let alts = items
                .iter()
                .map(|i| match i {
                    Yaml::Hash(h) => compile_map(h),
                    _ => unreachable!("checked above"),
                })
                .collect::<Result<_, _>>()?;
            Ok(Search::Any(alts))
        }
        Yaml::Array(items) if items.iter().any(|i| matches!(i, Yaml::Hash(_))) => {
            Err("a search list mixes maps and plain values".into())
        }
        // Keywords: a list of plain values, or one value.
        Yaml::Array(items) => Ok(Search::All(vec![compile_field(None, &[], items)?])),
        Yaml::String(_) | Yaml::Integer(_) | Yaml::Real(_) | Yaml::Boolean(_) => {
            Ok(Search::All(vec![compile_field(None, &[], std::slice::from_ref(y))?]))
        }
        Yaml::Null => Err("empty search".into()),
        other => Err(format!("a search must be a map, a list of maps or keywords, not {other:?}")),
    }
}

fn compile_map(h: &yaml_rust2::yaml::Hash) -> Result<Vec<FieldTest>, String> {
    let mut out = Vec::new();
    for (k, v) in h {
        let key = match k {
            Yaml::String(s) => s.clone(),
            Yaml::Integer(i) => i.to_string(),
            other => return Err(format!("field name {other:?} is not a string")),
        };
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or_default();
        let modifiers: Vec<&str> = parts.collect();
        let path = if field.is_empty() { None } else { Some(FieldPath::new(field)) };
        let values: Vec<Yaml> = match v {
            Yaml::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        out.push(compile_field(path, &modifiers, &values).map_err(|e| format!("{key}: {e}"))?);
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16Bom,
    Windash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Re,
    Cidr,
    Num(Cmp),
    Exists,
    FieldRef,
}

fn compile_field(path: Option<FieldPath>, modifiers: &[&str], values: &[Yaml]) -> Result<FieldTest, String> {
    let mut transforms = Vec::new();
    let mut how = Match::Equals;
    let mut all = false;
    let mut cased = false;
    let mut re_flags = String::new();
    let keyword = path.is_none();
    for m in modifiers {
        let set = |how: &mut Match, to: Match| -> Result<(), String> {
            if *how != Match::Equals {
                return Err(format!("modifier {m:?} conflicts with an earlier one"));
            }
            *how = to;
            Ok(())
        };
        match *m {
            "contains" => set(&mut how, Match::Contains)?,
            "startswith" => set(&mut how, Match::StartsWith)?,
            "endswith" => set(&mut how, Match::EndsWith)?,
            "re" => set(&mut how, Match::Re)?,
            "i" | "ignorecase" if how == Match::Re => re_flags.push('i'),
            "m" | "multiline" if how == Match::Re => re_flags.push('m'),
            "s" | "dotall" if how == Match::Re => re_flags.push('s'),
            "cidr" => set(&mut how, Match::Cidr)?,
            "gt" => set(&mut how, Match::Num(Cmp::Gt))?,
            "gte" => set(&mut how, Match::Num(Cmp::Gte))?,
            "lt" => set(&mut how, Match::Num(Cmp::Lt))?,
            "lte" => set(&mut how, Match::Num(Cmp::Lte))?,
            "exists" => set(&mut how, Match::Exists)?,
            "fieldref" => set(&mut how, Match::FieldRef)?,
            "all" => all = true,
            "cased" => cased = true,
            "base64" => transforms.push(Transform::Base64),
            "base64offset" => transforms.push(Transform::Base64Offset),
            "utf16le" | "wide" => transforms.push(Transform::Utf16Le),
            "utf16be" => transforms.push(Transform::Utf16Be),
            "utf16" => transforms.push(Transform::Utf16Bom),
            "windash" => transforms.push(Transform::Windash),
            "expand" => {
                return Err("the `expand` modifier needs placeholder values, which trailwatch does not define".into())
            }
            other => return Err(format!("unknown modifier {other:?}")),
        }
    }
    if values.is_empty() {
        return Err("no values".into());
    }
    let mut tests = Vec::new();
    for v in values {
        tests.push(compile_value(v, how, &transforms, cased, &re_flags, keyword)?);
    }
    Ok(FieldTest { path, values: tests, all })
}

fn scalar_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compile_value(
    v: &Yaml,
    how: Match,
    transforms: &[Transform],
    cased: bool,
    re_flags: &str,
    keyword: bool,
) -> Result<ValueTest, String> {
    match how {
        Match::Exists => {
            return match v {
                Yaml::Boolean(b) => Ok(ValueTest::Exists(*b)),
                Yaml::String(s) if s == "true" || s == "false" => Ok(ValueTest::Exists(s == "true")),
                _ => Err("`exists` takes true or false".into()),
            }
        }
        Match::Num(op) => {
            let n = match v {
                Yaml::Integer(i) => *i as f64,
                Yaml::Real(r) => r.parse().map_err(|_| format!("{r:?} is not a number"))?,
                Yaml::String(s) => s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?,
                _ => return Err("comparison modifiers take a number".into()),
            };
            return Ok(ValueTest::Num(op, n));
        }
        _ => {}
    }
    if matches!(v, Yaml::Null) {
        if how != Match::Equals || !transforms.is_empty() {
            return Err("null cannot take modifiers".into());
        }
        return Ok(ValueTest::Null);
    }
    let text = scalar_text(v).ok_or_else(|| format!("value {v:?} is not a scalar"))?;
    match how {
        Match::Re => {
            let flags = if re_flags.is_empty() { String::new() } else { format!("(?{re_flags})") };
            let re =
                regex::Regex::new(&format!("{flags}{text}")).map_err(|e| format!("bad regular expression: {e}"))?;
            return Ok(ValueTest::Regex(re));
        }
        Match::Cidr => return Ok(ValueTest::Cidr(Cidr::parse(&text)?)),
        Match::FieldRef => return Ok(ValueTest::FieldRef(FieldPath::new(&text), cased)),
        _ => {}
    }
    // Plain values of numbers and booleans are literal text; strings keep their wildcards.
    let literal = !matches!(v, Yaml::String(_));
    let variants = transform(&text, transforms)?;
    // After an encoding, the value is literal bytes: its `*` are not wildcards any more.
    let encoded = transforms.iter().any(|t| *t != Transform::Windash);
    let patterns = variants
        .into_iter()
        .map(|s| {
            let pieces = if literal || encoded { pattern::parse(&pattern::escape(&s)) } else { pattern::parse(&s) };
            let (before, after) = match how {
                Match::Contains => (true, true),
                Match::StartsWith => (false, true),
                Match::EndsWith => (true, false),
                _ if keyword => (true, true),
                _ => (false, false),
            };
            Pattern::wrapped(pieces, before, after, cased)
        })
        .collect();
    Ok(ValueTest::Str(patterns))
}

/// Applies the transformation modifiers in order; each may turn one value into several.
fn transform(text: &str, transforms: &[Transform]) -> Result<Vec<String>, String> {
    let mut variants: Vec<Vec<u8>> = vec![text.as_bytes().to_vec()];
    let b64 = base64::engine::general_purpose::STANDARD;
    for t in transforms {
        variants = match t {
            Transform::Utf16Le | Transform::Utf16Be | Transform::Utf16Bom => variants
                .into_iter()
                .map(|v| {
                    let s = String::from_utf8_lossy(&v).into_owned();
                    let mut out = Vec::new();
                    if *t == Transform::Utf16Bom {
                        out.extend_from_slice(&[0xFF, 0xFE]);
                    }
                    for u in s.encode_utf16() {
                        let b = if *t == Transform::Utf16Be { u.to_be_bytes() } else { u.to_le_bytes() };
                        out.extend_from_slice(&b);
                    }
                    out
                })
                .collect(),
            Transform::Base64 => variants.into_iter().map(|v| b64.encode(v).into_bytes()).collect(),
            Transform::Base64Offset => variants
                .into_iter()
                .flat_map(|v| {
                    // pySigma's algorithm: encode with 0, 1 and 2 leading bytes, then cut off the
                    // characters those bytes and the unaligned end influence.
                    const START: [usize; 3] = [0, 2, 3];
                    const END: [usize; 3] = [0, 3, 2];
                    (0..3)
                        .map(|i| {
                            let mut buf = vec![b' '; i];
                            buf.extend_from_slice(&v);
                            let enc = b64.encode(&buf).into_bytes();
                            let cut = END[(v.len() + i) % 3];
                            let end = enc.len().saturating_sub(cut);
                            enc.get(START[i]..end.max(START[i])).unwrap_or_default().to_vec()
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
            Transform::Windash => variants
                .into_iter()
                .flat_map(|v| {
                    let s = String::from_utf8_lossy(&v).into_owned();
                    ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"]
                        .iter()
                        .map(|dash| windash(&s, dash).into_bytes())
                        .collect::<Vec<_>>()
                })
                .collect(),
        };
    }
    let mut out: Vec<String> = variants
        .into_iter()
        .map(|v| match String::from_utf8(v) {
            Ok(s) => s,
            Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
        })
        .collect();
    out.dedup();
    Ok(out)
}

/// `-` at the start of a word (command-line flag) replaced by `dash`.
fn windash(s: &str, dash: &str) -> String {
    let mut out = String::new();
    let mut prev_space = true;
    for c in s.chars() {
        if c == '-' && prev_space {
            out.push_str(dash);
        } else {
            out.push(c);
        }
        prev_space = c.is_whitespace();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64offset_matches_pysigma() {
        // Values from the Sigma specification's example for `base64offset|contains`.
        let v = transform("/bin/bash", &[Transform::Base64Offset]).unwrap();
        assert_eq!(v, vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]);
        let v = transform("/bin/sh", &[Transform::Base64Offset]).unwrap();
        assert_eq!(v, vec!["L2Jpbi9za", "9iaW4vc2", "vYmluL3No"]);
    }

    #[test]
    fn utf16_then_base64() {
        let v = transform("ping", &[Transform::Utf16Le, Transform::Base64]).unwrap();
        assert_eq!(v, vec!["cABpAG4AZwA="]);
        let v = transform("A", &[Transform::Utf16Bom, Transform::Base64]).unwrap();
        assert_eq!(v, vec!["//5BAA=="]);
        let v = transform("A", &[Transform::Utf16Be, Transform::Base64]).unwrap();
        assert_eq!(v, vec!["AEE="]);
    }

    #[test]
    fn windash_variants() {
        let v = transform("net -user", &[Transform::Windash]).unwrap();
        assert!(v.contains(&"net /user".to_string()) && v.contains(&"net \u{2013}user".to_string()));
        assert!(v.contains(&"net -user".to_string()) && v.len() == 5);
    }

    #[test]
    fn cidr() {
        let n = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3") && !n.contains("11.0.0.1") && !n.contains("not-an-ip"));
        let n6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(n6.contains("2001:db8::1") && !n6.contains("2001:db9::1") && !n6.contains("10.0.0.1"));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("203.0.113.7"));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
    }
}
