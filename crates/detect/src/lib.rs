//! Sigma rules over CloudTrail records.
//!
//! * [`RuleSet::load`] reads a rule file or a directory (recursively, `*.yml`/`*.yaml`),
//!   compiles each rule once, and reports every rule that cannot be loaded with its file,
//!   line (for YAML errors) and reason, without stopping the others.
//! * [`RuleSet::matching`] evaluates every rule against one record (its JSON).
//!
//! Detection semantics follow the Sigma specification (see `selection.rs` for values and
//! modifiers, `condition.rs` for conditions, `pattern.rs` for wildcards).
//!
//! ```
//! let rule = r#"
//! title: Trail stopped
//! id: 00000000-0000-4000-8000-000000000001
//! logsource: {product: aws, service: cloudtrail}
//! detection:
//!   selection:
//!     eventSource: cloudtrail.amazonaws.com
//!     eventName|startswith: Stop
//!   condition: selection
//! level: high
//! "#;
//! let rules = detect::RuleSet::from_yaml_text(rule, "inline.yml").unwrap();
//! let record: serde_json::Value = serde_json::from_str(
//!     r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging"}"#).unwrap();
//! assert_eq!(rules.matching(&record).next().unwrap().id, "00000000-0000-4000-8000-000000000001");
//! ```

pub mod condition;
pub mod correlation;
pub mod pattern;
pub mod prefilter;
pub mod projection;
pub mod selection;

use std::path::{Path, PathBuf};

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

use crate::condition::Cond;
use crate::selection::Search;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin.rs"));
}

/// Where rules are loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    /// trailwatch's own packs (`rules/` in the source tree, embedded in the binary); their
    /// files are named `builtin/<pack>/<file>`.
    Builtin,
    /// A rule file, or a directory searched recursively for `*.yml` / `*.yaml`.
    Path(PathBuf),
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's `id:` (its file name when it has none).
    pub id: String,
    pub title: String,
    pub level: String,
    pub status: String,
    pub tags: Vec<String>,
    pub file: PathBuf,
    /// The rule's `name:` (how filters and correlations may refer to it).
    pub name: Option<String>,
    /// Ids of the Sigma filters applied to this rule.
    pub filters: Vec<String>,
    /// `logsource.product` / `logsource.service`.
    pub product: Option<String>,
    pub service: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    searches: Vec<Search>,
    /// Several conditions (a list) mean any of them.
    conditions: Vec<Cond>,
}

impl Rule {
    /// A necessary condition of this rule from its searches' (`per_search`: alternatives, one
    /// of which must hold; `None`: unknown), through its conditions (any one of them holds).
    fn necessary(&self, per_search: impl Fn(&Search) -> Option<Vec<String>>) -> Option<Vec<String>> {
        let search = |i: usize| per_search(&self.searches[i]);
        let mut all = Vec::new();
        for c in &self.conditions {
            all.extend(c.required(&search)?);
        }
        Some(all)
    }

    /// The values top-level `field` must have for this rule to match (lower case), if the
    /// rule constrains it to a list of exact values.
    fn required_values(&self, field: &str) -> Option<Vec<String>> {
        self.necessary(|s| s.required_values(field))
    }

    /// Text the record's JSON must contain for this rule to match (see `prefilter`).
    fn needles(&self) -> Option<Vec<String>> {
        self.necessary(Search::needles)
    }

    pub fn matches(&self, record: &Value) -> bool {
        // Each search is evaluated at most once per record.
        let mut memo: smallvec::SmallVec<[Option<bool>; 16]> = smallvec::smallvec![None; self.searches.len()];
        let mut search = |i: usize| *memo[i].get_or_insert_with(|| self.searches[i].test(record));
        self.conditions.iter().any(|c| c.eval(&mut search))
    }
}

/// Why a rule could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {reason}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LoadError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub reason: String,
}

#[derive(Debug, Default, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub correlations: Vec<correlation::Correlation>,
    /// Rules whose own matches are not reported (named by a correlation without `generate`).
    quiet: Vec<bool>,
    index: Index,
}

/// A rule or correlation that fired on a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub level: &'a str,
    pub correlation: bool,
}

/// Which rules can match a record, from its `eventName` or `eventSource`: most CloudTrail
/// rules name the API calls they are about, so a record is tested against a few rules
/// instead of all of them. Rules that constrain neither are always tested.
#[derive(Debug, Default, Clone)]
struct Index {
    projection: projection::Projection,
    prefilter: prefilter::Prefilter,
    by_name: std::collections::HashMap<String, Vec<usize>>,
    by_source: std::collections::HashMap<String, Vec<usize>>,
    always: Vec<usize>,
}

/// The rules indexed under `v` (compared in lower case).
fn lookup<'m>(v: &str, map: &'m std::collections::HashMap<String, Vec<usize>>) -> &'m [usize] {
    let hit = if !v.bytes().any(|b| b.is_ascii_uppercase()) && v.is_ascii() {
        map.get(v)
    } else if v.is_ascii() && v.len() <= 64 {
        // API names are short ASCII: fold them on the stack (this runs for every record).
        let mut buf = [0u8; 64];
        let folded = &mut buf[..v.len()];
        folded.copy_from_slice(v.as_bytes());
        folded.make_ascii_lowercase();
        std::str::from_utf8(folded).ok().and_then(|k| map.get(k))
    } else {
        map.get(&v.to_lowercase())
    };
    hit.map(Vec::as_slice).unwrap_or(&[])
}

impl Index {
    fn build(rules: &[Rule], correlations: &[correlation::Correlation]) -> Index {
        let mut index = Index::default();
        for f in ["eventID", "eventName", "eventSource", "eventTime"] {
            index.projection.add(f);
        }
        for c in correlations {
            c.project(&mut index.projection);
        }
        for s in rules.iter().flat_map(|r| &r.searches) {
            s.project(&mut index.projection);
        }
        // Only rules the index does not narrow are worth a text check.
        let mut needles: Vec<Option<Vec<String>>> = vec![None; rules.len()];
        for (i, r) in rules.iter().enumerate() {
            if let Some(names) = r.required_values("eventName") {
                for n in names {
                    index.by_name.entry(n).or_default().push(i);
                }
            } else if let Some(sources) = r.required_values("eventSource") {
                for s in sources {
                    index.by_source.entry(s).or_default().push(i);
                }
            } else {
                index.always.push(i);
                needles[i] = r.needles();
            }
        }
        index.prefilter = prefilter::Prefilter::build(&needles);
        for list in index.by_name.values_mut().chain(index.by_source.values_mut()) {
            list.sort_unstable();
            list.dedup();
        }
        index
    }

    /// Candidate rules, in load order, for a record whose `eventName` and `eventSource` are
    /// these strings (`None`: absent).
    fn candidates_named(&self, name: Option<&str>, source: Option<&str>) -> smallvec::SmallVec<[usize; 16]> {
        let mut out: smallvec::SmallVec<[usize; 16]> = smallvec::SmallVec::new();
        out.extend_from_slice(name.map_or(&[], |n| lookup(n, &self.by_name)));
        out.extend_from_slice(source.map_or(&[], |s| lookup(s, &self.by_source)));
        out.extend_from_slice(&self.always);
        out.sort_unstable();
        out
    }

    /// Candidate rules for `record`, in load order.
    fn candidates(&self, record: &Value, all: usize) -> smallvec::SmallVec<[usize; 16]> {
        // A key that is not a string (a number, an array) is compared the long way.
        if ["eventName", "eventSource"].iter().any(|f| record.get(*f).is_some_and(|v| !v.is_string())) {
            return (0..all).collect();
        }
        let field = |f: &str| record.get(f).and_then(Value::as_str);
        self.candidates_named(field("eventName"), field("eventSource"))
    }
}

impl RuleSet {
    /// Loads a file or every `*.yml`/`*.yaml` under a directory (sorted, recursive). Rules
    /// that fail are returned as errors; the rest load.
    pub fn load(path: &Path) -> (RuleSet, Vec<LoadError>) {
        Self::load_sources(&[RuleSource::Path(path.to_path_buf())])
    }

    /// Loads rules from several sources into one set (correlations may name rules of any
    /// of them). Rules that fail are returned as errors; the rest load.
    pub fn load_sources(sources: &[RuleSource]) -> (RuleSet, Vec<LoadError>) {
        let mut texts: Vec<(PathBuf, Result<String, String>)> = Vec::new();
        let mut errors = Vec::new();
        for source in sources {
            match source {
                RuleSource::Builtin => texts.extend(
                    builtin::BUILTIN.iter().map(|(rel, text)| (Path::new("builtin").join(rel), Ok(text.to_string()))),
                ),
                RuleSource::Path(path) => {
                    let mut files = Vec::new();
                    if path.is_dir() {
                        collect_files(path, &mut files);
                    } else {
                        // A file named explicitly is a rule file whatever its extension.
                        files.push(path.to_path_buf());
                    }
                    files.sort();
                    if files.is_empty() {
                        errors.push(LoadError {
                            file: path.to_path_buf(),
                            line: None,
                            reason: "no rule files (*.yml, *.yaml)".into(),
                        });
                    }
                    for file in files {
                        let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read: {e}"));
                        texts.push((file, text));
                    }
                }
            }
        }
        let mut set = RuleSet::default();
        let mut filters = Vec::new();
        let mut correlations = Vec::new();
        for (file, text) in texts {
            let name = file.to_string_lossy().into_owned();
            let text = match text {
                Ok(t) => t,
                Err(reason) => {
                    errors.push(LoadError { file, line: None, reason });
                    continue;
                }
            };
            let parsed = YamlLoader::load_from_str(&text)
                .map_err(|e| (Some(e.marker().line()), format!("YAML: {}", e.info())))
                .and_then(|docs| parse_docs(&docs, &name).map_err(|r| (None, r)));
            match parsed {
                Ok(p) if p.rules.is_empty() && p.filters.is_empty() && p.correlations.is_empty() => {
                    errors.push(LoadError { file, line: None, reason: "no rule in the file".into() })
                }
                Ok(p) => {
                    set.rules.extend(p.rules);
                    filters.extend(p.filters);
                    correlations.extend(p.correlations);
                }
                Err((line, reason)) => errors.push(LoadError { file, line, reason }),
            }
        }
        errors.extend(apply_filters(&mut set.rules, filters));
        let (set, more) = set.finish(correlations);
        errors.extend(more);
        (set, errors)
    }

    /// The rules of one YAML text (one or more documents).
    pub fn from_yaml_text(text: &str, name: &str) -> Result<RuleSet, LoadError> {
        let err = |line: Option<usize>, reason: String| LoadError { file: PathBuf::from(name), line, reason };
        let docs =
            YamlLoader::load_from_str(text).map_err(|e| err(Some(e.marker().line()), format!("YAML: {}", e.info())))?;
        let Parsed { mut rules, filters, correlations } =
            parse_docs(&docs, name).map_err(|reason| err(None, reason))?;
        if let Some(e) = apply_filters(&mut rules, filters).into_iter().next() {
            return Err(e);
        }
        if rules.is_empty() {
            return Err(err(None, "no rule in the file".into()));
        }
        let (set, errors) = RuleSet { rules, ..Default::default() }.finish(correlations);
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(set),
        }
    }

    /// Parses a record's JSON keeping only the fields these rules read (and `eventID`,
    /// `eventName`, `eventSource`): the same matches as a full parse, for a fraction of the
    /// work.
    pub fn parse_record(&self, json: &[u8]) -> serde_json::Result<Value> {
        self.index.projection.parse(json)
    }

    /// The rules that match `record`, in load order.
    pub fn matching<'a>(&'a self, record: &'a Value) -> impl Iterator<Item = &'a Rule> + 'a {
        self.matched(record).into_iter().map(|i| &self.rules[i])
    }

    /// Indices of the rules that match `record` (candidates from the index, tested exactly).
    fn matched(&self, record: &Value) -> smallvec::SmallVec<[usize; 16]> {
        let mut candidates = self.index.candidates(record, self.rules.len());
        candidates.retain(|i| self.rules[*i].matches(record));
        candidates
    }
}

/// A finding of [`RuleSet::lint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    pub rule: String,
    pub file: PathBuf,
    /// `error`: the set cannot be used as is; `warning`: the rule works but is incomplete.
    pub severity: &'static str,
    pub message: String,
}

const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];
const STATUSES: [&str; 5] = ["stable", "test", "experimental", "deprecated", "unsupported"];

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl RuleSet {
    /// What a rule author should fix: duplicate ids (errors), and missing or unusual
    /// metadata, rules for other log sources (warnings).
    pub fn lint(&self) -> Vec<Lint> {
        let mut out = Vec::new();
        let mut seen: std::collections::HashMap<&str, &Path> = std::collections::HashMap::new();
        for r in &self.rules {
            let mut add = |severity, message: String| {
                out.push(Lint { rule: r.id.clone(), file: r.file.clone(), severity, message })
            };
            if let Some(first) = seen.insert(&r.id, &r.file) {
                add("error", format!("id {} is also used by {}", r.id, first.display()));
            }
            if !is_uuid(&r.id) {
                add("warning", format!("id {:?} is not a UUID", r.id));
            }
            if !LEVELS.contains(&r.level.as_str()) {
                add("warning", format!("level {:?} is not one of {}", r.level, LEVELS.join(", ")));
            }
            if !r.status.is_empty() && !STATUSES.contains(&r.status.as_str()) {
                add("warning", format!("status {:?} is not one of {}", r.status, STATUSES.join(", ")));
            }
            if r.product.as_deref() != Some("aws") || r.service.as_deref().is_some_and(|s| s != "cloudtrail") {
                add(
                    "warning",
                    format!(
                        "logsource product/service {}/{} is not aws/cloudtrail: the rule will see CloudTrail records anyway",
                        r.product.as_deref().unwrap_or("-"),
                        r.service.as_deref().unwrap_or("-")
                    ),
                );
            }
            if r.description.is_none() {
                add("warning", "no description".into());
            }
            if r.author.is_none() {
                add("warning", "no author".into());
            }
        }
        out
    }
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                collect_files(&e.path(), out);
            }
        }
    } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
        out.push(path.to_path_buf());
    }
}

/// What a file's YAML documents hold.
#[derive(Default)]
struct Parsed {
    rules: Vec<Rule>,
    filters: Vec<Filter>,
    correlations: Vec<(PathBuf, correlation::Correlation)>,
}

fn parse_docs(docs: &[Yaml], name: &str) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    for doc in docs.iter().filter(|d| !matches!(d, Yaml::Null | Yaml::BadValue)) {
        match compile_doc(doc, name)? {
            Doc::Rule(r) => out.rules.push(*r),
            Doc::Filter(f) => out.filters.push(f),
            Doc::Correlation(c) => out.correlations.push((PathBuf::from(name), *c)),
        }
    }
    Ok(out)
}

impl RuleSet {
    /// Resolves correlations' rule references (by id or name) and builds the index; the
    /// correlations that name a rule not loaded are returned as errors.
    fn finish(mut self, correlations: Vec<(PathBuf, correlation::Correlation)>) -> (RuleSet, Vec<LoadError>) {
        let mut errors = Vec::new();
        self.quiet = vec![false; self.rules.len()];
        for (file, mut c) in correlations {
            let mut missing = None;
            for r in &c.rule_refs {
                match self.rules.iter().position(|x| x.id == *r || x.name.as_deref() == Some(r)) {
                    Some(i) => c.rules.push(i),
                    None => missing = Some(r.clone()),
                }
            }
            if let Some(r) = missing {
                errors.push(LoadError {
                    file,
                    line: None,
                    reason: format!("correlation {} refers to rule {r:?}, which is not loaded", c.id),
                });
                continue;
            }
            if !c.generate {
                c.rules.iter().for_each(|i| self.quiet[*i] = true);
            }
            self.correlations.push(c);
        }
        self.index = Index::build(&self.rules, &self.correlations);
        (self, errors)
    }

    pub fn has_correlations(&self) -> bool {
        !self.correlations.is_empty()
    }

    /// What fires on `record`: the rules that match and report, in load order, then the
    /// correlations that complete with it (their windows live in `state`).
    pub fn hits<'a>(&'a self, state: &mut correlation::State, record: &Value) -> Vec<Hit<'a>> {
        let matched = self.matched(record);
        let mut out: Vec<Hit<'a>> = matched
            .iter()
            .filter(|i| self.reports(**i))
            .map(|i| {
                let r = &self.rules[*i];
                Hit { id: &r.id, title: &r.title, level: &r.level, correlation: false }
            })
            .collect();
        let time = record.get("eventTime").and_then(Value::as_str).and_then(model::timefmt::parse_rfc3339_millis);
        if let Some(time) = time {
            let event_id = record.get("eventID").and_then(Value::as_str).unwrap_or("");
            for k in self.keyed(record, &matched) {
                let c = &self.correlations[k.correlation];
                if c.feed(state, &k, time, event_id).is_some() {
                    out.push(Hit { id: &c.id, title: &c.title, level: &c.level, correlation: true });
                }
            }
        }
        out
    }

    /// Whether rule `i`'s own matches are reported (not only fed to a correlation).
    pub fn reports(&self, i: usize) -> bool {
        !self.quiet.get(i).copied().unwrap_or(false)
    }

    /// The correlation keys of a record that matched `matched`.
    fn keyed(&self, record: &Value, matched: &[usize]) -> Vec<correlation::Keyed> {
        if matched.is_empty() {
            return Vec::new();
        }
        self.correlations.iter().enumerate().filter_map(|(n, c)| c.key(n, record, matched)).collect()
    }

    /// Runs the rules over one record's JSON text whose `eventName` and `eventSource` are
    /// already known (`None` when absent or not strings). A record the index rules out, as
    /// most are, costs two hash lookups and is not parsed again. Correlations are only
    /// keyed here; they are fed in order by the caller ([`correlation::Correlation::feed`]).
    ///
    /// Detection never fails open: a record serde_json refuses (values nested deeper than
    /// its recursion limit, as an attacker may send to hide a call) is read again with the
    /// deep values skipped ([`projection::Projection::parse_bounded`]) and evaluated; should
    /// even that fail, the rules see the record's `eventName` and `eventSource`. Either way
    /// the scan says so ([`Scan::incomplete`]), for the caller to count, log and report.
    pub fn scan(&self, text: &str, event_name: Option<&str>, event_source: Option<&str>) -> Scan {
        let (Some(name), Some(source)) = (event_name, event_source) else {
            let (record, incomplete) = self.read(text, event_name, event_source);
            let mut scan = self.scan_value(&record);
            scan.incomplete = incomplete;
            return scan;
        };
        let mut candidates = self.index.candidates_named(Some(name), Some(source));
        if candidates.iter().any(|i| self.index.prefilter.is_filtered(*i)) {
            let found = self.index.prefilter.scan(text);
            candidates.retain(|i| self.index.prefilter.passes(&found, *i));
        }
        if candidates.is_empty() {
            return Scan::default();
        }
        let (record, incomplete) = self.read(text, event_name, event_source);
        candidates.retain(|i| self.rules[*i].matches(&record));
        let keyed = self.keyed(&record, &candidates);
        Scan { rules: candidates, keyed, incomplete }
    }

    /// The record as the rules see it, and whether part of it could not be read.
    fn read(&self, text: &str, event_name: Option<&str>, event_source: Option<&str>) -> (Value, bool) {
        if let Ok(record) = self.parse_record(text.as_bytes()) {
            return (record, false);
        }
        match self.index.projection.parse_bounded(text.as_bytes()) {
            // Incomplete exactly when values were skipped (the reason the first parse failed).
            Ok((record, skipped)) => (record, skipped),
            Err(_) => {
                let mut record = serde_json::Map::new();
                if let Some(n) = event_name {
                    record.insert("eventName".into(), Value::String(n.into()));
                }
                if let Some(s) = event_source {
                    record.insert("eventSource".into(), Value::String(s.into()));
                }
                (Value::Object(record), true)
            }
        }
    }

    /// [`scan`](Self::scan) of a parsed record.
    pub fn scan_value(&self, record: &Value) -> Scan {
        let rules = self.matched(record);
        let keyed = self.keyed(record, &rules);
        Scan { rules, keyed, incomplete: false }
    }
}

/// What the rules found in one record: the rules that matched (indices into
/// [`RuleSet::rules`], in load order) and its keys for the correlations that use them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub rules: smallvec::SmallVec<[usize; 16]>,
    pub keyed: Vec<correlation::Keyed>,
    /// Part of the record could not be read (values nested too deep for the JSON parser):
    /// the rules saw the rest. Detection must not stay silent about it.
    pub incomplete: bool,
}

impl Scan {
    /// Nothing to report: no rule matched and the whole record was read.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && !self.incomplete
    }
}

fn text_of(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        _ => None,
    }
}

/// A Sigma filter: a detection ANDed to the conditions of the rules it names.
#[derive(Debug, Clone)]
struct Filter {
    id: String,
    file: PathBuf,
    targets: Vec<String>,
    searches: Vec<Search>,
    conditions: Vec<Cond>,
}

enum Doc {
    Rule(Box<Rule>),
    Filter(Filter),
    Correlation(Box<correlation::Correlation>),
}

/// The searches and conditions of a `detection` (or `filter`) block.
fn compile_detection(block: &Yaml, what: &str) -> Result<(Vec<Search>, Vec<Cond>), String> {
    let Yaml::Hash(detection) = block else { return Err(format!("missing {what}")) };
    let mut names = Vec::new();
    let mut searches = Vec::new();
    let mut condition = None;
    for (k, v) in detection {
        let key = text_of(k).ok_or_else(|| format!("{what} keys must be names"))?;
        match key.as_str() {
            "condition" => condition = Some(v.clone()),
            "rules" if what == "filter" => {}
            "timeframe" => return Err("`timeframe` belongs to correlation rules".into()),
            _ => {
                searches.push(selection::compile_search(v).map_err(|e| format!("{what}.{key}: {e}"))?);
                names.push(key);
            }
        }
    }
    let conditions = match condition {
        Some(Yaml::String(c)) => vec![c],
        Some(Yaml::Array(cs)) => {
            cs.iter().map(|c| text_of(c).ok_or("conditions must be strings")).collect::<Result<_, _>>()?
        }
        _ => return Err(format!("missing {what}.condition")),
    };
    let conditions = conditions
        .iter()
        .map(|c| condition::parse(c, &names).map_err(|e| format!("condition {c:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((searches, conditions))
}

fn compile_doc(doc: &Yaml, name: &str) -> Result<Doc, String> {
    let Yaml::Hash(_) = doc else { return Err("a rule must be a YAML mapping".into()) };
    if !doc["action"].is_badvalue() {
        return Err("rule collections (`action:`) are not supported; write one rule per document".into());
    }
    let title = text_of(&doc["title"]).ok_or("missing title")?;
    let id = text_of(&doc["id"]).unwrap_or_else(|| {
        Path::new(name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| name.to_owned())
    });
    if !doc["correlation"].is_badvalue() {
        let level = text_of(&doc["level"]).unwrap_or_else(|| "medium".into());
        return Ok(Doc::Correlation(Box::new(correlation::compile(doc, id, title, level)?)));
    }
    if !doc["filter"].is_badvalue() {
        let targets: Vec<String> = match &doc["filter"]["rules"] {
            Yaml::Array(a) => a.iter().filter_map(text_of).collect(),
            other => text_of(other).into_iter().collect(),
        };
        if targets.is_empty() {
            return Err("filter.rules must name the rules (ids or names) the filter applies to".into());
        }
        let (searches, conditions) = compile_detection(&doc["filter"], "filter")?;
        return Ok(Doc::Filter(Filter { id, file: PathBuf::from(name), targets, searches, conditions }));
    }
    let (searches, conditions) = compile_detection(&doc["detection"], "detection")?;
    let tags = match &doc["tags"] {
        Yaml::Array(a) => a.iter().filter_map(text_of).collect(),
        _ => Vec::new(),
    };
    Ok(Doc::Rule(Box::new(Rule {
        id,
        title,
        name: text_of(&doc["name"]),
        filters: Vec::new(),
        level: text_of(&doc["level"]).unwrap_or_else(|| "medium".into()),
        status: text_of(&doc["status"]).unwrap_or_default(),
        tags,
        file: PathBuf::from(name),
        product: text_of(&doc["logsource"]["product"]),
        service: text_of(&doc["logsource"]["service"]),
        description: text_of(&doc["description"]),
        author: text_of(&doc["author"]),
        searches,
        conditions,
    })))
}

/// Applies each filter to the rules it names (by id or name); a filter naming no loaded rule
/// is an error.
fn apply_filters(rules: &mut [Rule], filters: Vec<Filter>) -> Vec<LoadError> {
    let mut errors = Vec::new();
    for f in filters {
        for target in &f.targets {
            let mut found = false;
            for rule in rules.iter_mut().filter(|r| r.id == *target || r.name.as_deref() == Some(target)) {
                found = true;
                let offset = rule.searches.len();
                rule.searches.extend(f.searches.iter().cloned());
                let shifted: Vec<Cond> = f.conditions.iter().map(|c| c.shifted(offset)).collect();
                let filter_cond = if shifted.len() == 1 { shifted[0].clone() } else { Cond::Or(shifted) };
                for c in &mut rule.conditions {
                    *c = Cond::And(vec![c.clone(), filter_cond.clone()]);
                }
                rule.filters.push(f.id.clone());
            }
            if !found {
                errors.push(LoadError {
                    file: f.file.clone(),
                    line: None,
                    reason: format!("filter {} refers to rule {target:?}, which is not loaded", f.id),
                });
            }
        }
    }
    errors
}
