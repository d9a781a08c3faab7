//! The dashboard as `serve` and `demo` start it: site information, the first admin, and the
//! listener (plain HTTP, or HTTPS with `[web] tls_cert`/`tls_key`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::config::WebConfig;

/// What the dashboard shows besides the store.
pub fn site_info(
    accounts: &[aws::AccountSpec],
    rules: &detect::RuleSet,
    rule_errors: &[detect::LoadError],
    extra_names: HashMap<String, String>,
    web: &WebConfig,
) -> web::SiteInfo {
    let mut account_names = extra_names;
    for a in accounts {
        account_names.insert(a.account_id.clone(), a.name.clone());
    }
    let (rules, rule_errors) = crate::detection_setup::rule_infos(rules, rule_errors);
    web::SiteInfo {
        accounts: accounts.iter().map(account_info).collect(),
        account_names,
        rules,
        rule_errors,
        secure_cookies: web.secure_cookies,
        trusted_proxies: web.trusted_proxies.clone(),
        retention: None,
        forwarders: Vec::new(),
    }
}

fn account_info(a: &aws::AccountSpec) -> web::AccountInfo {
    web::AccountInfo {
        name: a.name.clone(),
        account_id: a.account_id.clone(),
        role_arn: a.role_arn.clone(),
        regions: a.regions.clone(),
        bucket: a.bucket.clone(),
        queue_url: a.queue_url.clone(),
    }
}

/// The running consumer's status board, for the accounts page and the overview.
pub struct LiveBoard(pub Arc<aws::StatusBoard>);

impl web::LiveStatus for LiveBoard {
    fn snapshot(&self) -> Vec<store::IntegrationStatus> {
        self.0.snapshot()
    }
}

/// `doctor` over the configured accounts, for the accounts page's button.
pub struct AwsDoctor {
    pub settings: aws::AwsSettings,
    pub accounts: Vec<aws::AccountSpec>,
}

impl web::Doctor for AwsDoctor {
    fn run(&self) -> web::BoxFuture<'_, Vec<(String, Vec<web::DoctorCheck>)>> {
        Box::pin(async move {
            let now = model::timefmt::now_millis();
            aws::doctor::doctor_all(&self.settings, &self.accounts, now)
                .await
                .into_iter()
                .map(|(spec, checks)| {
                    let checks = checks
                        .into_iter()
                        .map(|c| web::DoctorCheck {
                            name: c.name.into(),
                            state: c.state.label().into(),
                            detail: c.detail,
                            fix: c.fix,
                        })
                        .collect();
                    (spec.name, checks)
                })
                .collect()
        })
    }
}

/// Registers the counters of what every process behind a dashboard runs (rule evaluation on
/// ingest, retention) for `/metrics`; `serve` adds its consumer's and filters'.
pub fn register_metrics(registry: &telemetry::Registry) {
    ingest::inline_detection::register_metrics(registry);
    store::retention::register_metrics(registry);
}

/// With no user in the store yet, creates `admin` and prints its password (once).
pub fn ensure_admin(store: &store::Store, password: Option<&str>) -> anyhow::Result<()> {
    if let Some(pw) = web::ensure_first_admin(store, password).context("creating the first dashboard user")? {
        if password.is_some() {
            eprintln!("trailwatch: created dashboard user admin with the given password");
        } else {
            eprintln!("trailwatch: created dashboard user admin; password (shown once): {pw}");
        }
    }
    Ok(())
}

/// Binds the dashboard's address (before anything slow starts, so a taken port fails fast).
pub async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen} (web.listen)"))
}

/// Serves the dashboard until `shutdown` resolves, with `max_connections` (lowered to fit
/// the process's file limit, which is raised to its hard limit first).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: web::WebState,
    extra_routes: axum::Router,
    tls: Option<&(PathBuf, PathBuf)>,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = match tls {
        Some((cert, key)) => Some(web::tls::acceptor(cert, key).context("web.tls_cert / web.tls_key")?),
        None => None,
    };
    let limits = web::Limits::with_max_connections(connection_cap(max_connections));
    web::server::serve(listener, state, extra_routes, acceptor, limits, shutdown).await?;
    Ok(())
}

/// The connections the server may hold: the configured number, or fewer when the file limit
/// would not leave room for the store, the AWS clients and the log files. The soft limit is
/// raised to the hard one first (systemd's default soft limit is 1024, its hard one 512 Ki).
fn connection_cap(configured: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    let Some(files) = limit.current else { return configured };
    let files = usize::try_from(files).unwrap_or(usize::MAX);
    // Everything but connections: SQLite's files and connections, AWS and ClickHouse pools,
    // forwarder files, logs. A quarter of the limit, at least 64.
    let reserve = 64 + files / 4;
    let cap = files.saturating_sub(reserve).max(files / 4).max(1);
    if cap < configured {
        tracing::warn!(
            configured,
            cap,
            file_limit = files,
            "web.max_connections lowered to fit the open-file limit (raise it: LimitNOFILE= / ulimit -n)"
        );
    }
    configured.min(cap)
}

/// The URL people open.
pub fn url(listen: &str, tls: bool) -> String {
    format!("{}://{listen}", if tls { "https" } else { "http" })
}
