//! `TRAILWATCH_*` overrides, derived from the configuration's schema so that every key has
//! one: `TRAILWATCH_<SECTION>_<KEY>` for the keys of a section (`TRAILWATCH_WEB_LISTEN`,
//! `TRAILWATCH_INTEGRITY_POLL`), `TRAILWATCH_<SECTION>_<NAME>_<KEY>` for the keys of a named
//! entry (`TRAILWATCH_SINKS_OPS_HOOK_SECRET` for `[[sinks]] name = "ops-hook"`: the name
//! upper-cased, other characters as `_`). Lists are comma-separated; a table of numbers
//! (`retention.categories`) is `Key=N,Key=N`. Arrays of tables (`ingest.filters`) are not
//! overridable. A variable naming a section but no key of it is an error, like an unknown
//! key in the file; other `TRAILWATCH_*` variables trailwatch does not read are reported.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::Value;

use super::RawConfig;
use crate::config_doc::{self, referenced};

/// Variables trailwatch reads that are not configuration keys.
pub const NOT_KEYS: &[&str] = &[
    "TRAILWATCH_CONFIG",
    "TRAILWATCH_LOG",
    "TRAILWATCH_LOG_FORMAT",
    "TRAILWATCH_CLICKHOUSE_USER",
    "TRAILWATCH_CLICKHOUSE_PASSWORD",
    "TRAILWATCH_DEMO_ADMIN_PASSWORD",
    "TRAILWATCH_REPORT_PEAK_RSS",
    "TRAILWATCH_BENCH_EVENTS",
];

/// Variables of the test suites (`TRAILWATCH_TEST_*`, the binary and data they use).
const TEST_VARIABLES: &[&str] = &["TRAILWATCH_TEST_", "TRAILWATCH_BIN", "TRAILWATCH_SHARED_DIR"];

/// A section of the file, as the environment addresses it.
struct Section {
    /// `web`, `sinks`, …
    name: String,
    /// Keys as variables spell them (`TLS_CERT`), with the key and how its value is read.
    keys: BTreeMap<String, (String, Kind)>,
    /// `[[section]]` entries addressed by their `name`.
    named: bool,
}

/// Every section of the schema and the keys the environment can set.
fn sections() -> Vec<Section> {
    let schema = config_doc::schema();
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let props = schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (name, prop) in props {
        let (def, named) = match (referenced(&prop, &defs), prop.get("items").and_then(|i| referenced(i, &defs))) {
            (Some(def), _) => (def, false),
            (None, Some(def)) => (def, true),
            _ => continue,
        };
        let keys = properties(def, &defs)
            .into_iter()
            .filter_map(|(key, p)| Some((upper(&key), (key, kind(&p, &defs)?))))
            .collect();
        out.push(Section { name, keys, named });
    }
    out
}

/// The properties of a struct's schema, or the union of an enum's variants' (the sinks).
fn properties(def: &Value, defs: &Value) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> =
        def.get("properties").and_then(Value::as_object).map(|m| m.clone().into_iter().collect()).unwrap_or_default();
    for combinator in ["oneOf", "anyOf", "allOf"] {
        for variant in def.get(combinator).and_then(Value::as_array).into_iter().flatten() {
            let variant = referenced(variant, defs).unwrap_or(variant);
            out.extend(properties(variant, defs));
        }
    }
    out
}

/// How an environment value becomes a TOML value, by the key's schema type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Integer,
    List,
    /// A table of integers, `Key=N,Key=N`.
    Counts,
}

fn kind(p: &Value, defs: &Value) -> Option<Kind> {
    if let Some(def) = referenced(p, defs) {
        return kind(def, defs);
    }
    let types: Vec<&str> = match p.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        // `kind`'s tag (a constant), or an untagged string-or-list.
        _ if p.get("const").is_some() => vec!["string"],
        _ => Vec::new(),
    };
    match types.first().copied()? {
        "string" => Some(Kind::Text),
        "boolean" => Some(Kind::Bool),
        "integer" => Some(Kind::Integer),
        "array" if p.get("items").and_then(|i| kind(i, defs)) == Some(Kind::Text) => Some(Kind::List),
        "object" if p.get("additionalProperties").and_then(|a| kind(a, defs)) == Some(Kind::Integer) => {
            Some(Kind::Counts)
        }
        _ => None,
    }
}

fn value(variable: &str, text: &str, kind: Kind) -> anyhow::Result<toml::Value> {
    let list = || text.split(',').map(str::trim).filter(|v| !v.is_empty());
    Ok(match kind {
        Kind::Text => toml::Value::String(text.to_owned()),
        Kind::Bool => toml::Value::Boolean(match text.trim() {
            "true" => true,
            "false" => false,
            _ => bail!("{variable} = {text:?} is not true or false"),
        }),
        Kind::Integer => toml::Value::Integer(
            text.trim().parse().map_err(|_| anyhow::anyhow!("{variable} = {text:?} is not a number"))?,
        ),
        Kind::List => toml::Value::Array(list().map(|v| toml::Value::String(v.to_owned())).collect()),
        Kind::Counts => toml::Value::Table(
            list()
                .map(|pair| {
                    let (k, n) =
                        pair.split_once('=').ok_or_else(|| anyhow::anyhow!("{variable}: {pair:?} is not Key=N"))?;
                    let n: i64 = n.trim().parse().map_err(|_| anyhow::anyhow!("{variable}: {n:?} is not a number"))?;
                    Ok((k.trim().to_owned(), toml::Value::Integer(n)))
                })
                .collect::<anyhow::Result<_>>()?,
        ),
    })
}

/// `name` as it appears in a variable: upper case, anything but letters and digits as `_`.
fn upper(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// Applies the `TRAILWATCH_*` variables of `env` to the file's `table` and reads the result.
pub(super) fn apply(mut table: toml::Table, env: &BTreeMap<String, String>) -> anyhow::Result<RawConfig> {
    let sections = sections();
    for (variable, text) in env.iter().filter(|(k, _)| k.starts_with("TRAILWATCH_")) {
        if NOT_KEYS.contains(&variable.as_str()) || TEST_VARIABLES.iter().any(|p| variable.starts_with(p)) {
            continue;
        }
        let rest = &variable["TRAILWATCH_".len()..];
        let Some(section) =
            sections.iter().find(|s| rest.strip_prefix(&upper(&s.name)).is_some_and(|r| r.starts_with('_')))
        else {
            let names: Vec<String> = sections.iter().map(|s| upper(&s.name)).collect();
            tracing::warn!(
                variable = %variable,
                "not a trailwatch setting (TRAILWATCH_<SECTION>_<KEY>, SECTION one of {}): ignored",
                names.join(", ")
            );
            continue;
        };
        let rest = &rest[section.name.len() + 1..];
        let keys = || section.keys.values().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ");
        if !section.named {
            let Some((key, kind)) = section.keys.get(rest) else {
                bail!("{variable}: [{}] has no key {} (keys: {})", section.name, rest.to_ascii_lowercase(), keys());
            };
            let v = value(variable, text, *kind)?;
            let entry = table.entry(section.name.clone()).or_insert_with(|| toml::Value::Table(Default::default()));
            let Some(t) = entry.as_table_mut() else {
                bail!("{variable}: {} is not a table in the file", section.name)
            };
            t.insert(key.clone(), v);
            continue;
        }
        // A named entry: its name, then one of its keys.
        let entries = table.get_mut(&section.name).and_then(toml::Value::as_array_mut);
        let mut found = None;
        for entry in entries.into_iter().flatten().filter_map(toml::Value::as_table_mut) {
            let Some(name) = entry.get("name").and_then(toml::Value::as_str).map(upper) else { continue };
            if let Some(key) =
                rest.strip_prefix(&name).and_then(|r| r.strip_prefix('_')).and_then(|k| section.keys.get(k))
            {
                found = Some((entry, key));
                break;
            }
        }
        let Some((entry, (key, kind))) = found else {
            bail!("{variable}: no [[{}]] entry of that name has such a key (keys: {})", section.name, keys());
        };
        entry.insert(key.clone(), value(variable, text, *kind)?);
    }
    RawConfig::deserialize(toml::Value::Table(table)).context("applying the TRAILWATCH_* environment variables")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of every section (but arrays of tables) has its variable.
    #[test]
    fn every_key_has_a_variable() {
        let schema = config_doc::schema();
        let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
        let mut missing = Vec::new();
        for s in sections() {
            let prop = &schema["properties"][&s.name];
            let def = referenced(prop, &defs).or_else(|| prop.get("items").and_then(|i| referenced(i, &defs))).unwrap();
            for (key, p) in properties(def, &defs) {
                let nested_tables =
                    p.get("items").and_then(|i| referenced(i, &defs)).is_some_and(|d| d.get("properties").is_some());
                if kind(&p, &defs).is_none() && !nested_tables {
                    missing.push(format!("{}.{key}", s.name));
                }
            }
        }
        assert!(missing.is_empty(), "keys without an environment variable: {missing:?}");
        // The keys the hand-written list of old lacked.
        let all: Vec<String> =
            sections().iter().flat_map(|s| s.keys.values().map(move |(k, _)| format!("{}.{k}", s.name))).collect();
        for k in [
            "integrity.poll",
            "detection.new_region",
            "detection.new_region_learning",
            "integrity.lookback",
            "retention.categories",
        ] {
            assert!(all.iter().any(|a| a == k), "{k} missing from {all:?}");
        }
    }

    fn apply_text(text: &str, env: &[(&str, &str)]) -> anyhow::Result<RawConfig> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        apply(toml::from_str(text).unwrap(), &env)
    }

    #[test]
    fn variables_set_keys_of_every_shape() {
        let raw = apply_text(
            "[[forward]]\nname = \"siem-1\"\nkind = \"webhook\"\n",
            &[
                ("TRAILWATCH_INTEGRITY_POLL", "10s"),
                ("TRAILWATCH_DETECTION_NEW_REGION", "false"),
                ("TRAILWATCH_WEB_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2"),
                ("TRAILWATCH_RETENTION_CATEGORIES", "Data=30,Insight=90"),
                ("TRAILWATCH_STATE_URL", "postgres://x/y"),
                ("TRAILWATCH_FORWARD_SIEM_1_BATCH", "7"),
                ("TRAILWATCH_LOG", "debug"),
                ("TRAILWATCH_TEST_SCALEOUT", "require"),
            ],
        )
        .unwrap();
        assert_eq!(raw.integrity.poll.as_deref(), Some("10s"));
        assert_eq!(raw.detection.new_region, Some(false));
        assert_eq!(raw.web.trusted_proxies, Some(vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()]));
        assert_eq!(raw.retention.categories.get("Insight"), Some(&90));
        assert_eq!(raw.state.and_then(|s| s.url).as_deref(), Some("postgres://x/y"));
        assert_eq!(raw.forward[0].batch, Some(7));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_name_the_variable() {
        for (var, value, says) in [
            ("TRAILWATCH_WEB_LISTN", "x", "keys:"),
            ("TRAILWATCH_INGEST_WORKERS", "many", "not a number"),
            ("TRAILWATCH_SNS_ACCEPT_SHA1", "yes please", "true or false"),
            ("TRAILWATCH_SINKS_NOPE_URL", "x", "no [[sinks]] entry"),
            ("TRAILWATCH_INGEST_FILTERS", "x", "keys:"),
        ] {
            let err = format!("{:#}", apply_text("", &[(var, value)]).unwrap_err());
            assert!(err.contains(var) && err.contains(says), "{var}: {err}");
        }
        // Not a section: reported, not fatal.
        assert!(apply_text("", &[("TRAILWATCH_SOMETHING_ELSE", "x")]).is_ok());
    }
}
