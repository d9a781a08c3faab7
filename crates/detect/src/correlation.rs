//! Sigma correlation rules: `event_count`, `value_count`, `temporal`, `temporal_ordered`,
//! over the matches of the rules they name, per `group-by` key, within a `timespan`.
//!
//! Time is the record's `eventTime`. A window slides with the events of its group: entries
//! older than `timespan` before the newest event are dropped. When the condition holds the
//! correlation fires once and the group starts over, so a burst of 20 failed logins fires one
//! alert for "≥ 20 in 5 minutes", the 21st does not fire again, and 19 never fire.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;
use yaml_rust2::Yaml;

use crate::selection::FieldPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    op: Op,
    n: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

impl Threshold {
    fn holds(&self, v: f64) -> bool {
        match self.op {
            Op::Gt => v > self.n,
            Op::Gte => v >= self.n,
            Op::Lt => v < self.n,
            Op::Lte => v <= self.n,
            Op::Eq => v == self.n,
        }
    }
}

/// A compiled correlation rule.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub id: String,
    pub title: String,
    pub level: String,
    pub kind: Kind,
    /// The names or ids of the rules it correlates, as written.
    pub rule_refs: Vec<String>,
    /// Their indices in the rule set, in the order written (resolved at load time).
    pub rules: Vec<usize>,
    /// Whether the named rules still report their own matches.
    pub generate: bool,
    group_by: Vec<FieldPath>,
    timespan_ms: i64,
    threshold: Option<Threshold>,
    value_field: Option<FieldPath>,
}

/// `5m`, `30s`, `1h`, `2d`, `1w` in milliseconds.
pub fn parse_timespan(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("timespan {s:?} is not <number><s|m|h|d|w>"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("timespan {s:?}: unit must be s, m, h, d or w")),
    };
    Ok(n * unit_ms)
}

fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn list(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a.iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    }
}

/// Compiles a document with a `correlation:` block (rule references are resolved later).
pub fn compile(doc: &Yaml, id: String, title: String, level: String) -> Result<Correlation, String> {
    let c = &doc["correlation"];
    let kind = match text(&c["type"]).as_deref() {
        Some("event_count") => Kind::EventCount,
        Some("value_count") => Kind::ValueCount,
        Some("temporal") => Kind::Temporal,
        Some("temporal_ordered") => Kind::TemporalOrdered,
        Some(other) => {
            return Err(format!(
                "correlation.type {other:?} is not event_count, value_count, temporal or temporal_ordered"
            ))
        }
        None => return Err("missing correlation.type".into()),
    };
    let rule_refs = list(&c["rules"]);
    if rule_refs.is_empty() {
        return Err("correlation.rules must name at least one rule".into());
    }
    let timespan = text(&c["timespan"]).ok_or("missing correlation.timespan")?;
    let timespan_ms = parse_timespan(&timespan)?;
    let group_by = list(&c["group-by"]).iter().map(|g| FieldPath::new(g)).collect();
    let mut threshold = None;
    let mut value_field = None;
    if let Yaml::Hash(h) = &c["condition"] {
        for (k, v) in h {
            let key = text(k).unwrap_or_default();
            let op = match key.as_str() {
                "gt" => Op::Gt,
                "gte" => Op::Gte,
                "lt" => Op::Lt,
                "lte" => Op::Lte,
                "eq" => Op::Eq,
                "field" => {
                    value_field = Some(FieldPath::new(&text(v).ok_or("correlation.condition.field must be a name")?));
                    continue;
                }
                other => return Err(format!("correlation.condition.{other} is not gt, gte, lt, lte, eq or field")),
            };
            let n = match v {
                Yaml::Integer(i) => *i as f64,
                Yaml::Real(r) => r.parse().map_err(|_| "condition value must be a number")?,
                _ => return Err("condition value must be a number".into()),
            };
            threshold = Some(Threshold { op, n });
        }
    }
    match kind {
        Kind::EventCount | Kind::ValueCount if threshold.is_none() => {
            return Err("event_count and value_count need a condition (e.g. gte: 20)".into())
        }
        Kind::ValueCount if value_field.is_none() => return Err("value_count needs condition.field".into()),
        _ => {}
    }
    let generate = matches!(c["generate"], Yaml::Boolean(true));
    Ok(Correlation {
        id,
        title,
        level,
        kind,
        rule_refs,
        rules: Vec::new(),
        generate,
        group_by,
        timespan_ms,
        threshold,
        value_field,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    #[serde(rename = "t")]
    time: i64,
    /// Position of the matched rule in the correlation's `rules` list (stable across loads
    /// of the same correlation, unlike rule-set indices).
    #[serde(rename = "r")]
    rule: usize,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(rename = "e")]
    event_id: String,
}

/// Correlation windows per (correlation, group). Windows changed since the last
/// [`take_dirty`](State::take_dirty) are remembered so a store can persist only those.
#[derive(Debug, Default, Clone)]
pub struct State {
    groups: HashMap<(usize, String), VecDeque<Entry>>,
    dirty: std::collections::HashSet<(usize, String)>,
}

/// One correlation window in its persisted form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedWindow {
    pub correlation: String,
    pub group: String,
    /// JSON; an empty window is `[]` (and may be deleted).
    pub entries: String,
}

impl State {
    /// The windows changed since the last call, keyed by correlation id.
    pub fn take_dirty(&mut self, correlations: &[Correlation]) -> Vec<SavedWindow> {
        let mut out: Vec<SavedWindow> = self
            .dirty
            .drain()
            .filter_map(|(c, group)| {
                let window = self.groups.get(&(c, group.clone()));
                let entries = match window {
                    Some(w) => serde_json::to_string(w).expect("entries serialize"),
                    None => "[]".into(),
                };
                Some(SavedWindow { correlation: correlations.get(c)?.id.clone(), group, entries })
            })
            .collect();
        out.sort_by(|a, b| (&a.correlation, &a.group).cmp(&(&b.correlation, &b.group)));
        out
    }

    /// Every window, keyed by correlation id (for moving the state to a reloaded rule set
    /// with [`State::restore`]).
    pub fn export_all(&self, correlations: &[Correlation]) -> Vec<SavedWindow> {
        self.groups
            .iter()
            .filter_map(|((c, group), window)| {
                Some(SavedWindow {
                    correlation: correlations.get(*c)?.id.clone(),
                    group: group.clone(),
                    entries: serde_json::to_string(window).expect("entries serialize"),
                })
            })
            .collect()
    }

    /// Replaces the windows of `keys` (correlation id, group) with what `saved` holds for
    /// them (a key absent from `saved` has an empty window): another process sharing the
    /// store may have moved them since this one last looked.
    pub fn refresh(&mut self, correlations: &[Correlation], keys: &[(String, String)], saved: Vec<SavedWindow>) {
        for (id, group) in keys {
            if let Some(c) = correlations.iter().position(|c| &c.id == id) {
                self.groups.remove(&(c, group.clone()));
            }
        }
        let fresh = State::restore(correlations, saved);
        for (key, entries) in fresh.groups {
            if keys.iter().any(|(id, group)| correlations[key.0].id == *id && *group == key.1) {
                self.groups.insert(key, entries);
            }
        }
    }

    /// Restores saved windows; those of correlations no longer loaded, or unreadable, are
    /// skipped (they only delay an alert by at most one timespan).
    pub fn restore(correlations: &[Correlation], saved: impl IntoIterator<Item = SavedWindow>) -> State {
        let mut state = State::default();
        for w in saved {
            let Some(c) = correlations.iter().position(|c| c.id == w.correlation) else { continue };
            let Ok(entries) = serde_json::from_str::<VecDeque<Entry>>(&w.entries) else { continue };
            let entries: VecDeque<Entry> =
                entries.into_iter().filter(|e| e.rule < correlations[c].rules.len()).collect();
            if !entries.is_empty() {
                state.groups.insert((c, w.group), entries);
            }
        }
        state
    }
}

fn first_text(path: &FieldPath, record: &Value) -> String {
    let mut leaves = crate::selection::Leaves::new();
    path.leaves(record, &mut leaves);
    leaves
        .iter()
        .find_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .unwrap_or_default()
}

/// What a correlation needs of one record that matched one of its rules: taken on a parse
/// thread, fed in order on the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    /// The correlation's index in the rule set.
    pub correlation: usize,
    /// Position of the matched rule in the correlation's `rules`.
    pub rule: usize,
    /// The group-by values joined by U+001F.
    pub group: String,
    pub value: Option<String>,
}

impl Correlation {
    /// Adds the fields this correlation reads (group-by, value field).
    pub fn project(&self, p: &mut crate::projection::Projection) {
        for g in self.group_by.iter().chain(&self.value_field) {
            p.add(g.full());
        }
    }

    /// The key of `record` for this correlation (number `me`), if one of its rules is in
    /// `matched` (rule-set indices).
    pub fn key(&self, me: usize, record: &Value, matched: &[usize]) -> Option<Keyed> {
        let rule = self.rules.iter().position(|r| matched.contains(r))?;
        let group = self.group_by.iter().map(|g| first_text(g, record)).collect::<Vec<_>>().join("\u{1f}");
        let value = self.value_field.as_ref().map(|f| first_text(f, record));
        Some(Keyed { correlation: me, rule, group, value })
    }

    /// Adds one keyed match at `time`. When the condition holds the window's events (id,
    /// time) are returned (the correlation fired) and the group starts over. An event already in the
    /// window (delivered twice) is not counted again.
    pub fn feed(&self, state: &mut State, keyed: &Keyed, time: i64, event_id: &str) -> Option<Vec<(String, i64)>> {
        let slot = (keyed.correlation, keyed.group.clone());
        let window = state.groups.entry(slot.clone()).or_default();
        if !event_id.is_empty() && window.iter().any(|e| e.event_id == event_id) {
            return None;
        }
        state.dirty.insert(slot.clone());
        window.push_back(Entry { time, rule: keyed.rule, value: keyed.value.clone(), event_id: event_id.to_string() });
        // Arrival order is nearly time order; keep the window sorted so expiry stays exact
        // for a late record.
        window.make_contiguous().sort_by_key(|e| e.time);
        let newest = window.back().map_or(time, |e| e.time);
        while window.front().is_some_and(|e| e.time < newest - self.timespan_ms) {
            window.pop_front();
        }
        let n_rules = self.rules.len();
        let fires = match self.kind {
            Kind::EventCount => self.threshold.is_some_and(|t| t.holds(window.len() as f64)),
            Kind::ValueCount => {
                let distinct: std::collections::HashSet<&str> =
                    window.iter().filter_map(|e| e.value.as_deref()).filter(|v| !v.is_empty()).collect();
                self.threshold.is_some_and(|t| t.holds(distinct.len() as f64))
            }
            Kind::Temporal => (0..n_rules).all(|r| window.iter().any(|e| e.rule == r)),
            Kind::TemporalOrdered => {
                let mut want = 0;
                for e in window.iter() {
                    if want < n_rules && e.rule == want {
                        want += 1;
                    }
                }
                want == n_rules
            }
        };
        if !fires {
            return None;
        }
        let events = window.drain(..).map(|e| (e.event_id, e.time)).collect();
        state.groups.remove(&slot);
        Some(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("5m"), Ok(300_000));
        assert_eq!(parse_timespan("1h"), Ok(3_600_000));
        assert_eq!(parse_timespan("30s"), Ok(30_000));
        assert_eq!(parse_timespan("2d"), Ok(172_800_000));
        assert!(parse_timespan("5 minutes").is_err());
        assert!(parse_timespan("m").is_err());
    }
}
