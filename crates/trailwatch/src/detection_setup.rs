//! Detection as the commands use it: which rules, which policy, restored correlation state.

use std::sync::Arc;

use detect::{RuleSet, RuleSource};
use store::{AlertPolicy, SinkRoute, Store};

use crate::cli::StoreArgs;
use crate::config::{Config, DetectionConfig, SinkConfig};

/// The detection settings and sinks for commands that take `--config` or `--db`: the
/// file's when one is given, the defaults (built-in packs, no sinks) otherwise.
pub fn settings(args: &StoreArgs) -> anyhow::Result<(DetectionConfig, Vec<SinkConfig>)> {
    Ok(match crate::commands::selected_config(args)? {
        Some(config) => (config.detection, config.sinks),
        None => (DetectionConfig::default(), Vec::new()),
    })
}

pub fn sources(d: &DetectionConfig) -> Vec<RuleSource> {
    let mut s = Vec::new();
    if d.builtin {
        s.push(RuleSource::Builtin);
    }
    s.extend(d.rules.iter().cloned().map(RuleSource::Path));
    s
}

/// Loads the configured rules; those that cannot be loaded are reported and skipped.
pub fn load_rules(d: &DetectionConfig) -> Arc<RuleSet> {
    load(&sources(d))
}

/// Like [`load_rules`], also returning what could not be loaded (for the dashboard).
pub fn load_rules_reporting(d: &DetectionConfig) -> (Arc<RuleSet>, Vec<detect::LoadError>) {
    let (set, errors) = RuleSet::load_sources(&sources(d));
    report_load_errors(&errors);
    (Arc::new(set), errors)
}

/// The rules page's view of a rule set: every rule and correlation, and the load errors.
pub fn rule_infos(rules: &RuleSet, errors: &[detect::LoadError]) -> (Vec<web::RuleInfo>, Vec<String>) {
    let mut infos: Vec<web::RuleInfo> = rules
        .rules
        .iter()
        .map(|r| web::RuleInfo {
            id: r.id.clone(),
            title: r.title.clone(),
            level: r.level.clone(),
            status: r.status.clone(),
            description: r.description.clone(),
            file: r.file.display().to_string(),
        })
        .collect();
    infos.extend(rules.correlations.iter().map(|c| web::RuleInfo {
        id: c.id.clone(),
        title: c.title.clone(),
        level: c.level.clone(),
        status: "correlation".into(),
        description: Some(format!("correlation of {}", c.rule_refs.join(", "))),
        file: String::new(),
    }));
    (infos, errors.iter().map(ToString::to_string).collect())
}

/// Loads rules; those that cannot be loaded are reported and skipped.
pub fn load(sources: &[RuleSource]) -> Arc<RuleSet> {
    let (set, errors) = RuleSet::load_sources(sources);
    report_load_errors(&errors);
    Arc::new(set)
}

/// Rules that could not be loaded, on stderr (file paths and reasons made terminal-safe)
/// and in the log.
pub fn report_load_errors(errors: &[detect::LoadError]) {
    for e in errors {
        eprintln!("trailwatch: rule not loaded: {}", crate::output::terminal_safe(&e.to_string()));
        tracing::warn!(error = %e, "rule not loaded");
    }
}

pub fn policy(d: &DetectionConfig, sinks: &[SinkConfig]) -> AlertPolicy {
    AlertPolicy {
        suppression_ms: d.suppression_ms,
        routes: sinks.iter().map(|k| SinkRoute { sink: k.name.clone(), min_level: k.min_level.clone() }).collect(),
    }
}

/// What the ingest pipeline detects with: correlation windows and known regions restored
/// from `store`.
pub fn for_pipeline(
    store: &Store,
    settings: &DetectionConfig,
    rules: Arc<RuleSet>,
    policy: AlertPolicy,
) -> anyhow::Result<ingest::Detection> {
    let detection = ingest::Detection::new(rules, policy, store.state().correlation_windows()?);
    Ok(match settings.new_region_learning_ms {
        Some(learning) => detection
            .with_regions(ingest::inline_detection::RegionMemory::new(store.state().known_regions()?, learning)),
        None => detection,
    })
}

/// Detection for a command that writes a store selected by `--config`/`--db` (ingest,
/// import): the configured rules and policy, or none with `--no-detection`.
pub fn for_store_args(
    args: &crate::cli::StoreArgs,
    store: &Store,
    no_detection: bool,
) -> anyhow::Result<Option<ingest::Detection>> {
    if no_detection {
        return Ok(None);
    }
    let (settings, sinks) = settings(args)?;
    let rules = load_rules(&settings);
    let policy = policy(&settings, &sinks);
    Ok(Some(for_pipeline(store, &settings, rules, policy)?))
}

/// Detection for a configuration's store: its rules and policy, windows restored.
pub fn for_config(store: &Store, config: &Config, rules: Arc<RuleSet>) -> anyhow::Result<ingest::Detection> {
    tracing::info!(rules = rules.rules.len(), correlations = rules.correlations.len(), "detection rules loaded");
    for_pipeline(store, &config.detection, rules, policy(&config.detection, &config.sinks))
}
