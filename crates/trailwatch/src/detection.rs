//! Detection as the commands use it: which rules, which policy, restored correlation state.

use std::collections::BTreeMap;
use std::sync::Arc;

use detect::{RuleSet, RuleSource};
use store::{AlertPolicy, SinkRoute, Store};

use crate::cli::StoreArgs;
use crate::config::{Config, DetectionConfig, RawSink};

/// The detection settings and sinks for commands that take `--config` or `--db`: the
/// file's when one is given, the defaults (built-in packs, no sinks) otherwise.
pub fn settings(args: &StoreArgs) -> anyhow::Result<(DetectionConfig, Vec<RawSink>)> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let config = match (&args.config, &args.db) {
        (Some(path), _) => Config::load(path, &env)?,
        (None, Some(_)) => return Ok((DetectionConfig::default(), Vec::new())),
        (None, None) => Config::from_env(&env)?,
    };
    Ok((config.detection, config.sinks))
}

pub fn sources(d: &DetectionConfig) -> Vec<RuleSource> {
    let mut s = Vec::new();
    if d.builtin {
        s.push(RuleSource::Builtin);
    }
    s.extend(d.rules.iter().cloned().map(RuleSource::Path));
    s
}

/// Loads the rules; those that cannot be loaded are reported on stderr and skipped.
pub fn load_rules(d: &DetectionConfig) -> Arc<RuleSet> {
    let (set, errors) = RuleSet::load_sources(&sources(d));
    for e in &errors {
        eprintln!("trailwatch: rule not loaded: {e}");
        tracing::warn!(error = %e, "rule not loaded");
    }
    Arc::new(set)
}

pub fn policy(d: &DetectionConfig, sinks: &[RawSink]) -> AlertPolicy {
    AlertPolicy {
        suppression_ms: d.suppression_ms,
        routes: sinks
            .iter()
            .map(|k| SinkRoute { sink: k.name.clone(), min_level: k.min_level.clone().unwrap_or_else(|| "low".into()) })
            .collect(),
    }
}

/// What the ingest pipeline detects with: correlation windows and known regions restored
/// from `store`.
pub fn for_pipeline(
    store: &dyn Store,
    settings: &DetectionConfig,
    rules: Arc<RuleSet>,
    policy: AlertPolicy,
) -> anyhow::Result<ingest::Detection> {
    let detection = ingest::Detection::new(rules, policy, store.correlation_windows()?);
    Ok(match settings.new_region_learning_ms {
        Some(learning) => {
            detection.with_regions(ingest::detection::RegionMemory::new(store.known_regions()?, learning))
        }
        None => detection,
    })
}

/// Detection for a configuration's store: its rules and policy, windows restored.
pub fn for_config(store: &dyn Store, config: &Config) -> anyhow::Result<ingest::Detection> {
    let rules = load_rules(&config.detection);
    tracing::info!(rules = rules.rules.len(), correlations = rules.correlations.len(), "detection rules loaded");
    for_pipeline(store, &config.detection, rules, policy(&config.detection, &config.sinks))
}
