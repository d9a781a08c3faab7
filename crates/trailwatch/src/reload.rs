//! SIGHUP in `serve`: read the configuration file again and replace what can change while
//! running — the detection rules and alert policy, the alert sinks, and the dashboard's view
//! of them — without stopping ingest. An object being parsed finishes with the rules it
//! started with; the next one uses the new rules. Nothing queued or in flight is dropped.
//! Everything else in the file (store, accounts, listen address, forwarders) needs a restart,
//! and a reload that finds such a change says so.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

/// What a reload replaces.
pub struct Reloadable {
    pub config_path: PathBuf,
    /// The configuration the process started with (to tell what a reload cannot apply).
    pub started_with: crate::config::Config,
    pub live: Arc<ingest::inline_detection::Live>,
    pub outbox: Arc<alert::Outbox>,
    pub site: Arc<arc_swap::ArcSwap<web::SiteInfo>>,
}

/// Counts of a successful reload, for the log.
#[derive(Debug)]
pub struct Reloaded {
    pub rules: usize,
    pub rule_errors: usize,
    pub sinks: usize,
    pub needs_restart: Vec<&'static str>,
}

impl Reloadable {
    pub async fn reload(&self) -> anyhow::Result<Reloaded> {
        let path = self.config_path.clone();
        let config = tokio::task::spawn_blocking(move || super::commands::load_config(&path))
            .await
            .context("reading the configuration")?
            .context("the new configuration is invalid; keeping the running one")?;
        let detection = config.detection.clone();
        let (rules, errors) =
            tokio::task::spawn_blocking(move || crate::detection_setup::load_rules_reporting(&detection))
                .await
                .context("loading rules")?;
        let sinks = crate::alerting::sinks(&config).await.context("the new sinks cannot be used")?;
        let policy = crate::detection_setup::policy(&config.detection, &config.sinks);
        let mut site = (**self.site.load()).clone();
        let (infos, error_lines) = crate::detection_setup::rule_infos(&rules, &errors);
        site.rules = infos;
        site.rule_errors = error_lines;
        let reloaded = Reloaded {
            rules: rules.rules.len() + rules.correlations.len(),
            rule_errors: errors.len(),
            sinks: sinks.len(),
            needs_restart: restart_only_changes(&self.started_with, &config),
        };
        // All checks passed: swap everything.
        self.live.rules.store(rules);
        self.live.policy.store(Arc::new(policy));
        self.outbox.set_sinks(sinks);
        self.site.store(Arc::new(site));
        Ok(reloaded)
    }
}

/// Sections that changed but take effect only after a restart.
fn restart_only_changes(old: &crate::config::Config, new: &crate::config::Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.store != new.store {
        out.push("store");
    }
    if old.web_listen != new.web_listen || old.web != new.web {
        out.push("web");
    }
    if old.accounts != new.accounts {
        out.push("accounts");
    }
    if old.forward != new.forward {
        out.push("forward");
    }
    if old.retention != new.retention {
        out.push("retention");
    }
    if old.filter.as_ref().map(|f| f.specs()) != new.filter.as_ref().map(|f| f.specs()) {
        out.push("ingest.filters");
    }
    out
}

/// Reloads on every SIGHUP until the runtime stops.
pub async fn on_sighup(reloadable: Reloadable) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: reloading is off");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match reloadable.reload().await {
            Ok(r) => {
                tracing::info!(rules = r.rules, rule_errors = r.rule_errors, sinks = r.sinks, "configuration reloaded");
                if !r.needs_restart.is_empty() {
                    tracing::warn!(sections = ?r.needs_restart, "these changes take effect after a restart");
                }
            }
            Err(e) => tracing::error!(error = format!("{e:#}"), "reload failed; the running configuration stays"),
        }
    }
}
