//! Ingest filters: drop (or explicitly keep) records before they are stored or scanned.
//!
//! A filter is a list of rules tried in order; the first rule whose every condition holds
//! decides (`keep` or `drop`), and a record no rule matches is kept. Conditions: event
//! source, event name, category, principal, account, region (each a list of values with `*`
//! and `?` wildcards, case-sensitive, as CloudTrail writes them; any value may match) and
//! `read_only`. Typical: skip the flood of KMS `Decrypt` data events of one application
//! role, but keep them for everyone else.
//!
//! A dropped record is gone for good — not stored, not scanned by rules — so every rule
//! counts what it decided, for `/metrics` and the ingest report.

use telemetry::Counter;

use detect::pattern::{parse, Pattern};
use model::ParsedEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAction {
    Keep,
    Drop,
}

impl FilterAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterAction::Keep => "keep",
            FilterAction::Drop => "drop",
        }
    }
}

/// One rule as configured (values with wildcards).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    pub name: String,
    /// `None`: drop.
    pub action: Option<FilterAction>,
    pub event_source: Vec<String>,
    pub event_name: Vec<String>,
    pub category: Vec<String>,
    pub principal: Vec<String>,
    pub account: Vec<String>,
    pub region: Vec<String>,
    pub read_only: Option<bool>,
}

#[derive(Debug)]
struct Rule {
    name: String,
    action: FilterAction,
    event_source: Vec<Pattern>,
    event_name: Vec<Pattern>,
    category: Vec<Pattern>,
    principal: Vec<Pattern>,
    account: Vec<Pattern>,
    region: Vec<Pattern>,
    read_only: Option<bool>,
    matched: Counter,
}

/// Compiled filter rules with their counters.
#[derive(Debug)]
pub struct EventFilter {
    rules: Vec<Rule>,
    specs: Vec<FilterSpec>,
}

fn patterns(values: &[String]) -> Vec<Pattern> {
    values.iter().map(|v| Pattern::new(parse(v), true)).collect()
}

/// Any pattern matches the value; no patterns: no condition. A missing value matches no
/// pattern.
fn any(patterns: &[Pattern], value: Option<&str>) -> bool {
    patterns.is_empty() || value.is_some_and(|v| patterns.iter().any(|p| p.matches(v)))
}

impl EventFilter {
    /// Compiles `specs`; a rule without any condition is refused (it would drop everything
    /// by mistake), naming the rule.
    pub fn new(specs: &[FilterSpec]) -> Result<EventFilter, String> {
        let mut rules = Vec::new();
        for s in specs {
            let empty = s.event_source.is_empty()
                && s.event_name.is_empty()
                && s.category.is_empty()
                && s.principal.is_empty()
                && s.account.is_empty()
                && s.region.is_empty()
                && s.read_only.is_none();
            if empty {
                return Err(format!("filter {:?} has no condition: it would match every record", s.name));
            }
            rules.push(Rule {
                name: s.name.clone(),
                action: s.action.unwrap_or(FilterAction::Drop),
                event_source: patterns(&s.event_source),
                event_name: patterns(&s.event_name),
                category: patterns(&s.category),
                principal: patterns(&s.principal),
                account: patterns(&s.account),
                region: patterns(&s.region),
                read_only: s.read_only,
                matched: Counter::default(),
            });
        }
        Ok(EventFilter { rules, specs: specs.to_vec() })
    }

    /// Whether `e` is stored (and counts the rule that decided).
    pub fn keeps(&self, e: &ParsedEvent) -> bool {
        for r in &self.rules {
            let hit = any(&r.event_source, e.event_source.as_deref())
                && any(&r.event_name, e.event_name.as_deref())
                // Records without a category are management events (the field is newer).
                && any(&r.category, Some(e.event_category.as_deref().unwrap_or("Management")))
                && any(&r.principal, Some(e.actor.principal.as_str()))
                && any(&r.account, e.recipient_account_id.as_deref())
                && any(&r.region, e.aws_region.as_deref())
                && r.read_only.is_none_or(|want| e.read_only == Some(want));
            if hit {
                r.matched.inc();
                return r.action == FilterAction::Keep;
            }
        }
        true
    }

    /// (rule name, action, records it decided) since the filter was built.
    pub fn counts(&self) -> Vec<(String, FilterAction, u64)> {
        self.rules.iter().map(|r| (r.name.clone(), r.action, r.matched.get())).collect()
    }

    /// Registers each rule's count (by filter name and action), replacing the counts of
    /// the filters this one replaces.
    pub fn register_metrics(&self, registry: &telemetry::Registry) {
        for r in &self.rules {
            registry.counter(
                "trailwatch_ingest_filter_records_total",
                "Records each ingest filter rule decided.",
                &[("filter", &r.name), ("action", r.action.as_str())],
                &r.matched,
            );
        }
    }

    /// The rules as configured.
    pub fn specs(&self) -> &[FilterSpec] {
        &self.specs
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, name: &str, category: Option<&str>, read_only: bool, user: &str) -> ParsedEvent {
        let category = category.map(|c| format!(r#","eventCategory":"{c}""#)).unwrap_or_default();
        ParsedEvent::from_json(&format!(
            r#"{{"eventID":"x","eventTime":"2024-01-01T00:00:00Z","eventSource":"{source}","eventName":"{name}",
            "readOnly":{read_only},"awsRegion":"us-east-1","recipientAccountId":"111122223333"{category},
            "userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{user}","userName":"{user}"}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn first_matching_rule_decides_and_counts() {
        let f = EventFilter::new(&[
            FilterSpec {
                name: "keep-alice-kms".into(),
                action: Some(FilterAction::Keep),
                event_source: vec!["kms.amazonaws.com".into()],
                principal: vec!["*:user/alice".into()],
                ..Default::default()
            },
            FilterSpec {
                name: "noisy-kms".into(),
                event_source: vec!["kms.amazonaws.com".into()],
                event_name: vec!["Decrypt".into(), "GenerateDataKey*".into()],
                category: vec!["Data".into()],
                read_only: Some(true),
                ..Default::default()
            },
        ])
        .unwrap();
        assert!(f.keeps(&event("kms.amazonaws.com", "Decrypt", Some("Data"), true, "alice")));
        assert!(!f.keeps(&event("kms.amazonaws.com", "Decrypt", Some("Data"), true, "app")));
        assert!(!f.keeps(&event("kms.amazonaws.com", "GenerateDataKeyWithoutPlaintext", Some("Data"), true, "app")));
        // Every condition must hold: another category, a write, another name, another source.
        assert!(f.keeps(&event("kms.amazonaws.com", "Decrypt", None, true, "app")));
        assert!(f.keeps(&event("kms.amazonaws.com", "Decrypt", Some("Data"), false, "app")));
        assert!(f.keeps(&event("kms.amazonaws.com", "ScheduleKeyDeletion", Some("Data"), true, "app")));
        assert!(f.keeps(&event("s3.amazonaws.com", "Decrypt", Some("Data"), true, "app")));
        // Case matters, as in the records.
        assert!(f.keeps(&event("kms.amazonaws.com", "decrypt", Some("Data"), true, "app")));
        let counts = f.counts();
        assert_eq!(counts[0], ("keep-alice-kms".into(), FilterAction::Keep, 1));
        assert_eq!(counts[1], ("noisy-kms".into(), FilterAction::Drop, 2));
    }

    #[test]
    fn a_rule_without_conditions_is_refused() {
        let err = EventFilter::new(&[FilterSpec { name: "all".into(), ..Default::default() }]).unwrap_err();
        assert!(err.contains("\"all\""), "{err}");
    }
}
