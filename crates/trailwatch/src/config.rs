//! `trailwatch.toml`: raw (as written) → validated (typed, paths resolved).
//!
//! Any scalar key of a section can be overridden by `TRAILWATCH_<SECTION>_<KEY>`
//! (`TRAILWATCH_STORE_PATH`, `TRAILWATCH_WEB_LISTEN`, …), which is also how secrets stay out
//! of the file. Unknown keys are errors that name the key, so typos do not pass silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub store: RawStore,
    pub state: Option<RawState>,
    #[serde(default)]
    pub web: RawWeb,
    #[serde(default)]
    pub aws: RawAws,
    #[serde(default)]
    pub ingest: RawIngest,
    #[serde(default)]
    pub sns: RawSns,
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    #[serde(default)]
    pub detection: RawDetection,
    #[serde(default)]
    pub sinks: Vec<RawSink>,
    #[serde(default)]
    pub integrity: RawIntegrity,
    #[serde(default)]
    pub retention: RawRetention,
    #[serde(default)]
    pub forward: Vec<RawForward>,
}

/// Forward every stored event to another tool (`[[forward]]`). Secrets can come from
/// `TRAILWATCH_FORWARD_<NAME>_<KEY>` (URL, SECRET).
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawForward {
    /// Names the forwarder (its position in the store, metrics, env overrides).
    pub name: String,
    /// `webhook` (POST batches of JSON Lines) or `file` (append JSON Lines).
    pub kind: String,
    /// webhook: where to POST.
    pub url: Option<String>,
    /// webhook: HMAC-SHA256 key for the `X-Trailwatch-Signature` header.
    pub secret: Option<String>,
    /// file: the file to append to (relative to the configuration file).
    pub path: Option<String>,
    /// `jsonl` (the records as CloudTrail wrote them, default) or `ocsf` (API Activity).
    pub format: Option<String>,
    /// Events per delivery (default 500).
    pub batch: Option<usize>,
    /// Where a new forwarder starts: "end" (events from now on, default) or "beginning"
    /// (everything the store holds).
    pub start: Option<String>,
}

fn forward_specs(raw: Vec<RawForward>, base: &Path) -> anyhow::Result<Vec<alert::forward::ForwardSpec>> {
    use alert::forward::{ForwardSink, ForwardSpec};
    let mut out: Vec<ForwardSpec> = Vec::new();
    for (i, f) in raw.into_iter().enumerate() {
        let key = format!("forward[{i}]");
        if f.name.is_empty() || f.name.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
            bail!("{key}.name = {:?}: letters, digits, '-' and '_' only", f.name);
        }
        if out.iter().any(|o| o.name == f.name) {
            bail!("{key}.name = {:?} is used by another forwarder", f.name);
        }
        let sink = match f.kind.as_str() {
            "webhook" => {
                let Some(url) = f.url.filter(|u| u.starts_with("https://") || u.starts_with("http://")) else {
                    bail!("{key}.url: a webhook forwarder needs an http(s) URL");
                };
                ForwardSink::Webhook { url, secret: f.secret }
            }
            "file" => {
                let Some(path) = f.path else { bail!("{key}.path: a file forwarder needs a path") };
                ForwardSink::File { path: resolve(base, &path) }
            }
            other => bail!("{key}.kind = {other:?}: \"webhook\" or \"file\""),
        };
        let format = match f.format.as_deref().unwrap_or("jsonl") {
            "jsonl" => export::ExportFormat::Jsonl,
            "ocsf" => export::ExportFormat::Ocsf,
            other => bail!("{key}.format = {other:?}: \"jsonl\" or \"ocsf\""),
        };
        let start_at_end = match f.start.as_deref().unwrap_or("end") {
            "end" => true,
            "beginning" => false,
            other => bail!("{key}.start = {other:?}: \"end\" or \"beginning\""),
        };
        let batch = f.batch.unwrap_or(500);
        anyhow::ensure!((1..=50_000).contains(&batch), "{key}.batch must be 1 to 50000");
        out.push(ForwardSpec { name: f.name, sink, format, batch, start_at_end });
    }
    Ok(out)
}

/// How long events are kept. Without `days` or `categories`, forever.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// Keep events this many days, by `eventTime` (e.g. 400). Events an alert refers to stay.
    pub days: Option<u32>,
    /// Per `eventCategory`, overriding `days`: `Management`, `Data`, `Insight`,
    /// `NetworkActivity` (e.g. `{ Data = 30 }`).
    #[serde(default)]
    pub categories: BTreeMap<String, u32>,
    /// How often `serve` applies the policy (default "1h").
    pub interval: Option<String>,
}

/// Continuous log file integrity validation in `serve` (accounts with a `bucket`).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIntegrity {
    /// Validate continuously (default true).
    pub enabled: Option<bool>,
    /// How often each account's bucket is listed and validated (default "1h"); an announced
    /// digest triggers a run at once.
    pub interval: Option<String>,
    /// How often to look for announced digests (default "30s").
    pub poll: Option<String>,
    /// The first run's window (default "24h").
    pub lookback: Option<String>,
    /// How often the last `reverify_window` is validated again (default "6h")…
    pub reverify_interval: Option<String>,
    /// … (default "7d").
    pub reverify_window: Option<String>,
    /// A log may wait this long for the digest that lists it (default "90m").
    pub pending: Option<String>,
    /// An account/region without a new log for this long is silent (default "6h").
    pub log_grace: Option<String>,
    /// … without a new digest (default "2h"; digests come hourly).
    pub digest_grace: Option<String>,
    /// `aws cloudtrail list-public-keys` output to use instead of calling ListPublicKeys.
    pub public_keys: Option<String>,
}

/// Which rules run on the way in, and how matches become alerts.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDetection {
    /// Run the built-in packs (CIS, trail tampering, human error). Default true.
    pub builtin: Option<bool>,
    /// More Sigma rule files or directories (relative to the configuration file).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Matches of one rule for one principal within this long are one alert (default "1h").
    pub suppression: Option<String>,
    /// The dashboard's address as people reach it, for links in notifications.
    pub public_url: Option<String>,
    /// Alert on activity in a region an account never used before (default true)…
    pub new_region: Option<bool>,
    /// …once the account has been seen this long (default "7d"; before that, regions are learnt).
    pub new_region_learning: Option<String>,
}

/// Where alerts are delivered. Secrets can come from `TRAILWATCH_SINKS_<NAME>_<KEY>`.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    /// Names the sink (outbox rows, metrics, env overrides).
    pub name: String,
    /// `webhook`, `slack`, `email` or `sns`.
    pub kind: String,
    /// Alerts below this level are not sent here (default "low").
    pub min_level: Option<String>,
    /// At most this many deliveries per minute (default 60).
    pub rate_per_minute: Option<u32>,
    /// webhook, slack: where to POST.
    pub url: Option<String>,
    /// webhook: HMAC-SHA256 key for the `X-Trailwatch-Signature` header.
    pub secret: Option<String>,
    /// email: the SMTP relay's host name.
    pub smtp_host: Option<String>,
    /// email: the relay's port (default 587 for starttls, 465 for tls, 25 for none).
    pub smtp_port: Option<u16>,
    /// email: "starttls" (default, required), "tls" (implicit TLS) or "none" (local relays only).
    pub smtp_security: Option<String>,
    /// email: a PEM CA certificate to trust for the relay (relative to the configuration file).
    pub smtp_ca_file: Option<String>,
    /// email: SMTP user name (with `password`).
    pub username: Option<String>,
    /// email: SMTP password (better from `TRAILWATCH_SINKS_<NAME>_PASSWORD`).
    pub password: Option<String>,
    /// email: the sender address.
    pub from: Option<String>,
    /// email: recipient addresses.
    #[serde(default)]
    pub to: Vec<String>,
    /// sns: the topic to publish to.
    pub topic_arn: Option<String>,
    /// sns: publish with this configured account's credentials (its assumed role).
    pub account: Option<String>,
}

/// SNS HTTPS push (`POST /sns` on the web listener). Accounts' `topic_arn`s say which
/// topics are accepted.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSns {
    /// Accept pushed messages signed with SignatureVersion 1 (SHA1withRSA, a topic's default
    /// until its SignatureVersion attribute is set to 2). Default false: set the attribute
    /// (`setup` does) or allow SHA1 here.
    pub accept_sha1: Option<bool>,
    /// FOR TESTS ONLY: hosts accepted in SigningCertURL/SubscribeURL besides
    /// `sns.<region>.amazonaws.com` (a local HTTPS server standing in for SNS).
    #[serde(default)]
    pub test_cert_hosts: Vec<String>,
    /// FOR TESTS ONLY: a PEM CA certificate trusted for those hosts.
    pub test_ca_file: Option<String>,
}

/// How `serve` consumes queues. Every key is optional.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIngest {
    /// Concurrent long polls per queue (default 2).
    pub receivers_per_queue: Option<usize>,
    /// Long-poll wait in seconds, 1–20 (default 20).
    pub wait_time_secs: Option<i32>,
    /// Visibility timeout in seconds asked on receive and renewed while in flight (default 300).
    pub visibility_timeout_secs: Option<i32>,
    /// Messages handled at once over all queues (default 64).
    pub max_inflight_messages: Option<usize>,
    /// Concurrent S3 GETs (default 16).
    pub fetch_concurrency: Option<usize>,
    /// Seconds shutdown waits for in-flight messages before releasing them (default 30).
    pub shutdown_grace_secs: Option<u64>,
    /// Seconds per delivery before an unhandled message is retried (default 30, max 900).
    pub retry_backoff_secs: Option<i32>,
    /// Parse threads (default: number of CPUs).
    pub workers: Option<usize>,
    /// The largest record accepted, in bytes (default 4 MiB; CloudTrail's are a few KiB).
    /// A file with a larger one is quarantined (`record_too_large`).
    pub max_record_bytes: Option<usize>,
    /// The most bytes one log file may inflate to (default 2 GiB); past it the file is
    /// quarantined (`inflated_too_large`).
    pub max_inflated_bytes: Option<u64>,
    /// The most decompressed bytes per compressed byte (default 200; CloudTrail's files are
    /// 5–30), checked past the first 16 MiB; past it the file is quarantined (`inflate_ratio`).
    pub max_inflate_ratio: Option<u64>,
    /// Records to drop before they are stored or scanned, tried in order; the first that
    /// matches decides. See [`RawFilter`].
    #[serde(default)]
    pub filters: Vec<RawFilter>,
}

/// One ingest filter rule (`[[ingest.filters]]`). Every condition given must hold; values
/// are exact with `*`/`?` wildcards, case-sensitive, and a list matches any of its values.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFilter {
    /// Shown in metrics and logs (default: filter-N).
    pub name: Option<String>,
    /// "drop" (default) or "keep" (an exception before a broader drop).
    pub action: Option<String>,
    /// e.g. "kms.amazonaws.com".
    #[serde(default)]
    pub event_source: OneOrMany,
    /// e.g. ["Decrypt", "GenerateDataKey*"].
    #[serde(default)]
    pub event_name: OneOrMany,
    /// Management, Data, Insight, NetworkActivity.
    #[serde(default)]
    pub category: OneOrMany,
    /// The normalised principal (an ARN; `*` wildcards), e.g. "arn:aws:sts::*:assumed-role/app/*".
    #[serde(default)]
    pub principal: OneOrMany,
    /// recipientAccountId.
    #[serde(default)]
    pub account: OneOrMany,
    /// awsRegion.
    #[serde(default)]
    pub region: OneOrMany,
    /// Only read-only (true) or only mutating (false) calls.
    pub read_only: Option<bool>,
}

/// A string or a list of strings.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

fn ingest_filter(raw: Vec<RawFilter>) -> anyhow::Result<Option<std::sync::Arc<ingest::filter::EventFilter>>> {
    use ingest::filter::{FilterAction, FilterSpec};
    if raw.is_empty() {
        return Ok(None);
    }
    let mut specs = Vec::new();
    for (i, f) in raw.into_iter().enumerate() {
        let key = format!("ingest.filters[{i}]");
        let action = match f.action.as_deref() {
            None | Some("drop") => FilterAction::Drop,
            Some("keep") => FilterAction::Keep,
            Some(other) => bail!("{key}.action: {other:?} is neither \"drop\" nor \"keep\""),
        };
        let category = f.category.into_vec();
        if let Some(c) = category.iter().find(|c| !c.contains(['*', '?']) && !EVENT_CATEGORIES.contains(&c.as_str())) {
            bail!("{key}.category: {c:?} is not one of {}", EVENT_CATEGORIES.join(", "));
        }
        specs.push(FilterSpec {
            name: f.name.unwrap_or_else(|| format!("filter-{}", i + 1)),
            action: Some(action),
            event_source: f.event_source.into_vec(),
            event_name: f.event_name.into_vec(),
            category,
            principal: f.principal.into_vec(),
            account: f.account.into_vec(),
            region: f.region.into_vec(),
            read_only: f.read_only,
        });
    }
    let filter = ingest::filter::EventFilter::new(&specs).map_err(|e| anyhow::anyhow!("ingest.filters: {e}"))?;
    Ok(Some(std::sync::Arc::new(filter)))
}

/// Where events live.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `sqlite` (default) or `clickhouse`.
    pub kind: Option<String>,
    /// SQLite file; relative paths are relative to the configuration file.
    pub path: Option<String>,
    /// ClickHouse HTTP URL.
    pub url: Option<String>,
}

/// Scale-out state store (ledger, alerts, users) in PostgreSQL.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// `postgres` (the only kind).
    pub kind: Option<String>,
    /// `postgres://user@host:5432/database` (the password from `PGPASSWORD`).
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    /// Address the dashboard listens on (default `127.0.0.1:8080`).
    pub listen: Option<String>,
    /// Serve HTTPS directly: PEM certificate chain and private key (both or neither).
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Behind a TLS-terminating proxy: mark cookies `Secure` (automatic with tls_cert).
    pub secure_cookies: Option<bool>,
    /// Deprecated: `true` trusts `X-Forwarded-For` from loopback proxies only; list your
    /// proxies in `trusted_proxies` instead.
    pub trust_proxy: Option<bool>,
    /// Proxies (addresses or networks, `10.0.0.0/8`) whose `X-Forwarded-For` names the
    /// client, for login rate limiting; from any other peer the header is ignored.
    pub trusted_proxies: Option<Vec<String>>,
    /// Connections served at once (default 512; lowered to fit the process's file limit).
    /// Further clients wait in the listen queue.
    pub max_connections: Option<usize>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    /// Any AWS-compatible endpoint (also `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Address S3 buckets by path (`endpoint/bucket/key`), as most S3-compatible servers need.
    pub force_path_style: Option<bool>,
}

/// One monitored AWS account. Parsed and checked by every command so that one file serves
/// them all; the AWS sources (`serve`, `backfill`, `doctor`) are what use the connection details.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    /// A short name for the account, shown everywhere (unique; no '/').
    pub name: String,
    /// The 12-digit AWS account id.
    pub account_id: String,
    /// The read-only role trailwatch assumes in this account (`setup` prints it); omit to use
    /// trailwatch's own credentials.
    pub role_arn: Option<String>,
    /// The external ID the role's trust policy requires.
    pub external_id: Option<String>,
    /// Regions the trail covers (for status, integrity and backfill; default: those seen).
    #[serde(default)]
    pub regions: Vec<String>,
    /// The trail's S3 bucket (backfill, integrity validation, `doctor`).
    pub bucket: Option<String>,
    /// The SQS queue subscribed to the trail's SNS topic (or to S3/EventBridge notifications).
    pub queue_url: Option<String>,
    /// For an organization trail: the organization id (`o-…`) in its keys
    /// (`AWSLogs/o-…/<member account>/…`); member accounts' files all come through this entry.
    pub organization_id: Option<String>,
    /// The trail's S3 key prefix, if it has one.
    pub prefix: Option<String>,
    /// The trail's SNS topic (for SNS HTTPS push, `setup` and `doctor`).
    pub topic_arn: Option<String>,
    /// When `serve` first sees this account, pull its Event history (management events of
    /// this many days, at most 90) through LookupEvents, as `trailwatch import
    /// --event-history` does. The role then needs cloudtrail:LookupEvents.
    pub import_history_days: Option<u32>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub web_listen: String,
    pub web: WebConfig,
    pub aws: aws::AwsSettings,
    pub accounts: Vec<aws::AccountSpec>,
    pub consumer: aws::consumer::ConsumerConfig,
    pub workers: Option<usize>,
    /// What reading one object may cost (`[ingest] max_*`).
    pub read_limits: model::ReadLimits,
    pub sns_test_cert_hosts: Vec<String>,
    pub sns_test_ca_file: Option<PathBuf>,
    /// `[sns] accept_sha1`.
    pub sns_accept_sha1: bool,
    pub detection: DetectionConfig,
    pub sinks: Vec<RawSink>,
    /// `None` when `[integrity] enabled = false`.
    pub integrity: Option<aws::integrity::WatchSettings>,
    /// `None` when no policy is set.
    pub retention: Option<RetentionSettings>,
    /// `[[forward]]`.
    pub forward: Vec<alert::forward::ForwardSpec>,
    /// (account name, days) of `[[accounts]] import_history_days`.
    pub history_imports: Vec<(String, u32)>,
    /// `[[ingest.filters]]`, compiled; `None` without filters.
    pub filter: Option<std::sync::Arc<ingest::filter::EventFilter>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    pub policy: store::RetentionPolicy,
    pub interval: std::time::Duration,
}

/// The `eventCategory` values CloudTrail writes.
pub const EVENT_CATEGORIES: [&str; 4] = ["Management", "Data", "Insight", "NetworkActivity"];

fn retention_settings(raw: RawRetention) -> anyhow::Result<Option<RetentionSettings>> {
    for (name, days) in &raw.categories {
        if !EVENT_CATEGORIES.contains(&name.as_str()) {
            bail!("retention.categories.{name}: not an event category (one of {})", EVENT_CATEGORIES.join(", "));
        }
        anyhow::ensure!(*days > 0, "retention.categories.{name} must be at least 1 day");
    }
    anyhow::ensure!(raw.days != Some(0), "retention.days must be at least 1");
    let policy = store::RetentionPolicy { days: raw.days, categories: raw.categories };
    if policy.is_empty() {
        anyhow::ensure!(raw.interval.is_none(), "retention.interval is set but no retention.days or categories");
        return Ok(None);
    }
    let interval = match raw.interval {
        None => 3_600_000,
        Some(v) => {
            let ms = detect::correlation::parse_timespan(&v).map_err(|e| anyhow::anyhow!("retention.interval: {e}"))?;
            anyhow::ensure!(ms >= 1000, "retention.interval must be at least 1s");
            ms
        }
    };
    Ok(Some(RetentionSettings { policy, interval: std::time::Duration::from_millis(interval as u64) }))
}

/// Validated `[web]` (besides `listen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// (certificate chain, private key), PEM.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub secure_cookies: bool,
    pub trusted_proxies: Vec<web::IpNet>,
    pub max_connections: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            tls: None,
            secure_cookies: false,
            trusted_proxies: Vec::new(),
            max_connections: web::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Validated `[detection]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionConfig {
    pub builtin: bool,
    pub rules: Vec<PathBuf>,
    pub suppression_ms: i64,
    pub public_url: Option<String>,
    /// The new-region detector's learning period; `None` when it is off.
    pub new_region_learning_ms: Option<i64>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            builtin: true,
            rules: Vec::new(),
            suppression_ms: 3_600_000,
            public_url: None,
            new_region_learning_ms: Some(7 * 86_400_000),
        }
    }
}

impl Config {
    pub fn account(&self, name: &str) -> anyhow::Result<&aws::AccountSpec> {
        self.accounts.iter().find(|a| a.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
            anyhow::anyhow!("no account named {name:?} in the configuration (accounts: {})", names.join(", "))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Sqlite {
        path: PathBuf,
    },
    /// Events in ClickHouse, everything else in PostgreSQL (credentials may come from
    /// `TRAILWATCH_CLICKHOUSE_USER` / `TRAILWATCH_CLICKHOUSE_PASSWORD` and `PGPASSWORD`).
    ScaleOut {
        clickhouse_url: String,
        postgres_url: String,
    },
}

impl Config {
    /// Reads `path`, applies `TRAILWATCH_*` overrides from `env`, validates.
    pub fn load(path: &Path, env: &BTreeMap<String, String>) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading configuration {}", path.display()))?;
        let raw: RawConfig = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))
            .with_context(|| format!("invalid configuration {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::validate(raw, base, env).with_context(|| format!("invalid configuration {}", path.display()))
    }

    /// The configuration used when no file is given: overrides only.
    pub fn from_env(env: &BTreeMap<String, String>) -> anyhow::Result<Config> {
        Self::validate(RawConfig::default(), Path::new("."), env)
    }

    fn validate(mut raw: RawConfig, base: &Path, env: &BTreeMap<String, String>) -> anyhow::Result<Config> {
        apply_env(&mut raw, env)?;
        let kind = raw.store.kind.as_deref().unwrap_or("sqlite");
        let store = match kind {
            "sqlite" => {
                if raw.store.url.is_some() {
                    bail!("store.url is for kind = \"clickhouse\"; an SQLite store takes store.path");
                }
                let path = PathBuf::from(raw.store.path.as_deref().unwrap_or("trailwatch.db"));
                StoreConfig::Sqlite { path: if path.is_absolute() { path } else { base.join(path) } }
            }
            "clickhouse" => {
                if raw.store.path.is_some() {
                    bail!("store.path is for kind = \"sqlite\"; a ClickHouse store takes store.url");
                }
                let Some(url) = raw.store.url.clone() else {
                    bail!(
                        "store.url is required for kind = \"clickhouse\" (e.g. \"http://127.0.0.1:8123/trailwatch\")"
                    );
                };
                store::ClickHouseConfig::from_url(&url).map_err(|e| anyhow::anyhow!("store.url: {e}"))?;
                let state = raw.state.as_ref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "store.kind = \"clickhouse\" keeps ledger, alerts and users in PostgreSQL: add [state] kind = \"postgres\" with its url"
                    )
                })?;
                match state.kind.as_deref().unwrap_or("postgres") {
                    "postgres" => {}
                    other => bail!("state.kind = {other:?} is not \"postgres\""),
                }
                let Some(state_url) = state.url.clone() else {
                    bail!("state.url is required (e.g. \"postgres://trailwatch@127.0.0.1:5432/trailwatch\")");
                };
                if !(state_url.starts_with("postgres://") || state_url.starts_with("postgresql://")) {
                    bail!("state.url = {state_url:?} must start with postgres://");
                }
                StoreConfig::ScaleOut { clickhouse_url: url, postgres_url: state_url }
            }
            other => bail!("store.kind = {other:?} is not one of \"sqlite\", \"clickhouse\""),
        };
        if let (Some(_), StoreConfig::Sqlite { .. }) = (&raw.state, &store) {
            bail!("[state] is for the scale-out store (store.kind = \"clickhouse\"); SQLite keeps everything in its one file");
        }
        let web_listen = raw.web.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        web_listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| anyhow::anyhow!("web.listen = {web_listen:?} is not an address:port ({e})"))?;
        let tls = match (raw.web.tls_cert, raw.web.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("web.tls_cert and web.tls_key go together: set both to serve HTTPS, or neither"),
        };
        let trusted_proxies = match (raw.web.trusted_proxies, raw.web.trust_proxy) {
            (Some(list), _) => list
                .iter()
                .map(|p| {
                    web::parse_trusted_proxy(p).ok_or_else(|| {
                        anyhow::anyhow!("web.trusted_proxies: {p:?} is not an IP address or network (10.0.0.0/8)")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            (None, Some(true)) => {
                tracing::warn!(
                    "web.trust_proxy = true trusts X-Forwarded-For from loopback proxies only; \
                     list your proxies in web.trusted_proxies"
                );
                ["127.0.0.0/8", "::1/128"].iter().filter_map(|p| web::parse_trusted_proxy(p)).collect()
            }
            (None, _) => Vec::new(),
        };
        let max_connections = raw.web.max_connections.unwrap_or(web::DEFAULT_MAX_CONNECTIONS);
        anyhow::ensure!(max_connections >= 1, "web.max_connections must be at least 1");
        let web = WebConfig {
            secure_cookies: raw.web.secure_cookies.unwrap_or(tls.is_some()),
            trusted_proxies,
            max_connections,
            tls,
        };
        let mut accounts = Vec::new();
        let mut history_imports = Vec::new();
        for (i, a) in raw.accounts.into_iter().enumerate() {
            if let Some(days) = a.import_history_days {
                anyhow::ensure!(
                    (1..=90).contains(&days),
                    "accounts[{i}].import_history_days must be 1 to 90 (Event history keeps 90 days)"
                );
                history_imports.push((a.name.clone(), days));
            }
            accounts.push(validate_account(i, a, &accounts)?);
        }
        let mut ingest = raw.ingest;
        let filter = ingest_filter(std::mem::take(&mut ingest.filters))?;
        let read_limits = {
            let d = model::ReadLimits::default();
            let limits = model::ReadLimits {
                max_record_bytes: ingest.max_record_bytes.unwrap_or(d.max_record_bytes),
                max_inflated_bytes: ingest.max_inflated_bytes.unwrap_or(d.max_inflated_bytes),
                max_ratio: ingest.max_inflate_ratio.unwrap_or(d.max_ratio),
            };
            anyhow::ensure!(
                limits.max_record_bytes >= 64 << 10,
                "ingest.max_record_bytes = {} is below 64 KiB: real CloudTrail records would be refused",
                limits.max_record_bytes
            );
            anyhow::ensure!(
                limits.max_inflated_bytes >= limits.max_record_bytes as u64,
                "ingest.max_inflated_bytes must be at least ingest.max_record_bytes"
            );
            anyhow::ensure!(
                limits.max_ratio >= 10,
                "ingest.max_inflate_ratio must be at least 10 (gzip'd JSON is 5–30)"
            );
            limits
        };
        let defaults = aws::consumer::ConsumerConfig::default();
        let wait_time_secs = ingest.wait_time_secs.unwrap_or(defaults.wait_time_secs);
        if !(0..=20).contains(&wait_time_secs) {
            bail!("ingest.wait_time_secs = {wait_time_secs} must be between 0 and 20 (SQS's long-poll limit)");
        }
        let visibility_timeout_secs = ingest.visibility_timeout_secs.unwrap_or(defaults.visibility_timeout_secs);
        if !(3..=43_200).contains(&visibility_timeout_secs) {
            bail!("ingest.visibility_timeout_secs = {visibility_timeout_secs} must be between 3 and 43200");
        }
        let positive = |name: &str, v: Option<usize>, d: usize| -> anyhow::Result<usize> {
            match v {
                Some(0) => bail!("ingest.{name} must be at least 1"),
                Some(v) => Ok(v),
                None => Ok(d),
            }
        };
        let consumer = aws::consumer::ConsumerConfig {
            receivers_per_queue: positive(
                "receivers_per_queue",
                ingest.receivers_per_queue,
                defaults.receivers_per_queue,
            )?,
            wait_time_secs,
            visibility_timeout_secs,
            max_inflight_messages: positive(
                "max_inflight_messages",
                ingest.max_inflight_messages,
                defaults.max_inflight_messages,
            )?,
            fetch_concurrency: positive("fetch_concurrency", ingest.fetch_concurrency, defaults.fetch_concurrency)?,
            retry_backoff_secs: ingest.retry_backoff_secs.unwrap_or(defaults.retry_backoff_secs).clamp(0, 900),
            shutdown_grace: ingest
                .shutdown_grace_secs
                .map(std::time::Duration::from_secs)
                .unwrap_or(defaults.shutdown_grace),
            ..defaults
        };
        let aws = aws::AwsSettings {
            endpoint_url: raw.aws.endpoint_url.filter(|u| !u.is_empty()),
            force_path_style: raw.aws.force_path_style.unwrap_or(false),
        };
        if !raw.sns.test_cert_hosts.is_empty() {
            tracing::warn!(hosts = ?raw.sns.test_cert_hosts, "sns.test_cert_hosts is set: SNS messages signed by certificates from these hosts are accepted (tests only)");
        }
        let sns_test_ca_file = raw.sns.test_ca_file.map(|p| resolve(base, &p));
        let detection = DetectionConfig {
            builtin: raw.detection.builtin.unwrap_or(true),
            rules: raw.detection.rules.iter().map(|p| resolve(base, p)).collect(),
            suppression_ms: match raw.detection.suppression.as_deref() {
                None => 3_600_000,
                Some(s) => {
                    detect::correlation::parse_timespan(s).map_err(|e| anyhow::anyhow!("detection.suppression: {e}"))?
                }
            },
            public_url: raw.detection.public_url.map(|u| u.trim_end_matches('/').to_string()),
            new_region_learning_ms: match (raw.detection.new_region.unwrap_or(true), raw.detection.new_region_learning)
            {
                (false, _) => None,
                (true, None) => Some(7 * 86_400_000),
                (true, Some(s)) => Some(
                    detect::correlation::parse_timespan(&s)
                        .map_err(|e| anyhow::anyhow!("detection.new_region_learning: {e}"))?,
                ),
            },
        };
        let integrity = integrity_settings(raw.integrity, base)?;
        let retention = retention_settings(raw.retention)?;
        let forward = forward_specs(std::mem::take(&mut raw.forward), base)?;
        if !forward.is_empty() && !matches!(store, StoreConfig::Sqlite { .. }) {
            bail!("forward: event forwarding needs the embedded store (kind = \"sqlite\"); with the scale-out store, read ClickHouse directly");
        }
        let mut sinks = validate_sinks(raw.sinks, &accounts)?;
        for k in &mut sinks {
            k.smtp_ca_file = k.smtp_ca_file.as_deref().map(|p| resolve(base, p).to_string_lossy().into_owned());
        }
        Ok(Config {
            detection,
            integrity,
            retention,
            forward,
            history_imports,
            filter,
            sinks,
            store,
            web_listen,
            web,
            aws,
            accounts,
            consumer,
            workers: ingest.workers,
            read_limits,
            sns_test_cert_hosts: raw.sns.test_cert_hosts,
            sns_test_ca_file,
            sns_accept_sha1: raw.sns.accept_sha1.unwrap_or(false),
        })
    }
}

fn integrity_settings(raw: RawIntegrity, base: &Path) -> anyhow::Result<Option<aws::integrity::WatchSettings>> {
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let d = aws::integrity::WatchSettings::default();
    let span = |key: &str, value: Option<String>, default: i64| -> anyhow::Result<i64> {
        match value {
            None => Ok(default),
            Some(v) => {
                let ms =
                    detect::correlation::parse_timespan(&v).map_err(|e| anyhow::anyhow!("integrity.{key}: {e}"))?;
                anyhow::ensure!(ms > 0, "integrity.{key} must be longer than zero");
                Ok(ms)
            }
        }
    };
    let duration = |ms: i64| std::time::Duration::from_millis(ms as u64);
    let public_keys = match raw.public_keys {
        None => None,
        Some(p) => Some(
            integrity::PublicKeys::read(&resolve(base, &p))
                .map_err(|e| anyhow::anyhow!("integrity.public_keys: {e}"))?,
        ),
    };
    Ok(Some(aws::integrity::WatchSettings {
        interval: duration(span("interval", raw.interval, d.interval.as_millis() as i64)?),
        poll: duration(span("poll", raw.poll, d.poll.as_millis() as i64)?),
        lookback_ms: span("lookback", raw.lookback, d.lookback_ms)?,
        reverify_interval: duration(span(
            "reverify_interval",
            raw.reverify_interval,
            d.reverify_interval.as_millis() as i64,
        )?),
        reverify_window_ms: span("reverify_window", raw.reverify_window, d.reverify_window_ms)?,
        pending_ms: span("pending", raw.pending, d.pending_ms)?,
        grace: integrity::record::Grace {
            logs: span("log_grace", raw.log_grace, d.grace.logs)?,
            digests: span("digest_grace", raw.digest_grace, d.grace.digests)?,
        },
        public_keys,
    }))
}

/// A path from the configuration: relative to the file's directory.
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

fn validate_sinks(sinks: Vec<RawSink>, accounts: &[aws::AccountSpec]) -> anyhow::Result<Vec<RawSink>> {
    for (i, k) in sinks.iter().enumerate() {
        let at = format!("sinks[{i}]");
        if k.name.is_empty() || !k.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("{at}.name = {:?} must be letters, digits, '-' or '_'", k.name);
        }
        if sinks[..i].iter().any(|o| o.name == k.name) {
            bail!("{at}.name = {:?} is used by another sink", k.name);
        }
        if let Some(l) = k.min_level.as_deref().filter(|l| !store::alerts::LEVELS.contains(l)) {
            bail!("{at}.min_level = {l:?} is not one of {}", store::alerts::LEVELS.join(", "));
        }
        if k.rate_per_minute == Some(0) {
            bail!("{at}.rate_per_minute must be at least 1");
        }
        let need = |key: &str, v: &Option<String>| -> anyhow::Result<()> {
            match v {
                Some(s) if !s.is_empty() => Ok(()),
                _ => bail!("{at}.{key} is required for kind = {:?}", k.kind),
            }
        };
        match k.kind.as_str() {
            "webhook" | "slack" => {
                need("url", &k.url)?;
                let url = k.url.as_deref().unwrap_or_default();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    bail!("{at}.url = {url:?} is not an http(s) URL");
                }
            }
            "email" => {
                need("smtp_host", &k.smtp_host)?;
                need("from", &k.from)?;
                if k.to.is_empty() {
                    bail!("{at}.to must list at least one address");
                }
                if let Some(s) = k.smtp_security.as_deref().filter(|s| !["starttls", "tls", "none"].contains(s)) {
                    bail!("{at}.smtp_security = {s:?} is not one of starttls, tls, none");
                }
            }
            "sns" => {
                need("topic_arn", &k.topic_arn)?;
                if let Some(a) = k.account.as_deref().filter(|a| !accounts.iter().any(|x| x.name == *a)) {
                    bail!("{at}.account = {a:?} is not a configured account");
                }
            }
            other => bail!("{at}.kind = {other:?} is not one of webhook, slack, email, sns"),
        }
    }
    Ok(sinks)
}

fn validate_account(i: usize, a: RawAccount, before: &[aws::AccountSpec]) -> anyhow::Result<aws::AccountSpec> {
    if a.name.is_empty() || a.name.chars().any(|c| c.is_control() || c == '/') {
        bail!("accounts[{i}].name = {:?} must be a non-empty name without '/' or control characters", a.name);
    }
    if before.iter().any(|b| b.name == a.name) {
        bail!("accounts[{i}].name = {:?} is used by another account", a.name);
    }
    if !model::key::is_account_id(&a.account_id) {
        bail!("accounts[{i}].account_id = {:?} is not a 12-digit account id", a.account_id);
    }
    if let Some(r) = a.regions.iter().find(|r| !model::key::is_region(r)) {
        bail!("accounts[{i}].regions: {r:?} is not a region name");
    }
    if let Some(role) = &a.role_arn {
        let parts: Vec<&str> = role.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" || !parts[5].starts_with("role/") {
            bail!("accounts[{i}].role_arn = {role:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)");
        }
    }
    if let Some(q) = &a.queue_url {
        if !(q.starts_with("https://") || q.starts_with("http://")) {
            bail!("accounts[{i}].queue_url = {q:?} is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)");
        }
    }
    if let Some(t) = a.topic_arn.as_deref().filter(|t| !t.starts_with("arn:") || t.split(':').nth(2) != Some("sns")) {
        bail!("accounts[{i}].topic_arn = {t:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)");
    }
    if let Some(org) = a.organization_id.as_deref().filter(|o| !model::key::is_org_id(o)) {
        bail!("accounts[{i}].organization_id = {org:?} is not an organization id (o-…)");
    }
    Ok(aws::AccountSpec {
        name: a.name,
        account_id: a.account_id,
        role_arn: a.role_arn,
        external_id: a.external_id,
        regions: a.regions,
        bucket: a.bucket,
        queue_url: a.queue_url,
        organization_id: a.organization_id,
        prefix: a.prefix,
        topic_arn: a.topic_arn,
    })
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T> {
    value.trim().parse().map_err(|_| anyhow::anyhow!("{name} = {value:?} is not a number"))
}

/// `TRAILWATCH_<SECTION>_<KEY>` overrides for the scalar keys of each section.
fn apply_env(raw: &mut RawConfig, env: &BTreeMap<String, String>) -> anyhow::Result<()> {
    for (name, value) in env.iter().filter(|(k, _)| k.starts_with("TRAILWATCH_")) {
        let value = value.clone();
        match name.as_str() {
            "TRAILWATCH_STORE_KIND" => raw.store.kind = Some(value),
            "TRAILWATCH_STORE_PATH" => raw.store.path = Some(value),
            "TRAILWATCH_STORE_URL" => raw.store.url = Some(value),
            "TRAILWATCH_STATE_KIND" => raw.state.get_or_insert_with(Default::default).kind = Some(value),
            "TRAILWATCH_STATE_URL" => raw.state.get_or_insert_with(Default::default).url = Some(value),
            "TRAILWATCH_WEB_LISTEN" => raw.web.listen = Some(value),
            "TRAILWATCH_WEB_TLS_CERT" => raw.web.tls_cert = Some(value.into()),
            "TRAILWATCH_WEB_TLS_KEY" => raw.web.tls_key = Some(value.into()),
            "TRAILWATCH_WEB_SECURE_COOKIES" => {
                raw.web.secure_cookies =
                    Some(value.parse().map_err(|_| anyhow::anyhow!("{name} = {value:?} is not true or false"))?)
            }
            "TRAILWATCH_WEB_TRUST_PROXY" => {
                raw.web.trust_proxy =
                    Some(value.parse().map_err(|_| anyhow::anyhow!("{name} = {value:?} is not true or false"))?)
            }
            "TRAILWATCH_WEB_TRUSTED_PROXIES" => {
                raw.web.trusted_proxies =
                    Some(value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect())
            }
            "TRAILWATCH_WEB_MAX_CONNECTIONS" => raw.web.max_connections = Some(number(name, &value)?),
            "TRAILWATCH_AWS_ENDPOINT_URL" => raw.aws.endpoint_url = Some(value),
            "TRAILWATCH_SNS_ACCEPT_SHA1" => {
                raw.sns.accept_sha1 =
                    Some(value.parse().map_err(|_| anyhow::anyhow!("{name} = {value:?} is not true or false"))?)
            }
            "TRAILWATCH_AWS_FORCE_PATH_STYLE" => {
                raw.aws.force_path_style =
                    Some(value.parse().map_err(|_| anyhow::anyhow!("{name} = {value:?} is not true or false"))?)
            }
            "TRAILWATCH_INGEST_RECEIVERS_PER_QUEUE" => raw.ingest.receivers_per_queue = Some(number(name, &value)?),
            "TRAILWATCH_INGEST_WAIT_TIME_SECS" => raw.ingest.wait_time_secs = Some(number(name, &value)?),
            "TRAILWATCH_INGEST_VISIBILITY_TIMEOUT_SECS" => {
                raw.ingest.visibility_timeout_secs = Some(number(name, &value)?)
            }
            "TRAILWATCH_INGEST_MAX_INFLIGHT_MESSAGES" => raw.ingest.max_inflight_messages = Some(number(name, &value)?),
            "TRAILWATCH_INGEST_FETCH_CONCURRENCY" => raw.ingest.fetch_concurrency = Some(number(name, &value)?),
            "TRAILWATCH_INGEST_SHUTDOWN_GRACE_SECS" => raw.ingest.shutdown_grace_secs = Some(number(name, &value)?),
            "TRAILWATCH_INGEST_RETRY_BACKOFF_SECS" => raw.ingest.retry_backoff_secs = Some(number(name, &value)?),
            "TRAILWATCH_INGEST_WORKERS" => raw.ingest.workers = Some(number(name, &value)?),
            "TRAILWATCH_INGEST_MAX_RECORD_BYTES" => raw.ingest.max_record_bytes = Some(number(name, &value)?),
            "TRAILWATCH_INGEST_MAX_INFLATED_BYTES" => raw.ingest.max_inflated_bytes = Some(number(name, &value)?),
            "TRAILWATCH_INGEST_MAX_INFLATE_RATIO" => raw.ingest.max_inflate_ratio = Some(number(name, &value)?),
            "TRAILWATCH_DETECTION_BUILTIN" => {
                raw.detection.builtin =
                    Some(value.parse().map_err(|_| anyhow::anyhow!("{name} = {value:?} is not true or false"))?)
            }
            "TRAILWATCH_DETECTION_SUPPRESSION" => raw.detection.suppression = Some(value),
            "TRAILWATCH_DETECTION_PUBLIC_URL" => raw.detection.public_url = Some(value),
            "TRAILWATCH_INTEGRITY_ENABLED" => {
                raw.integrity.enabled =
                    Some(value.parse().map_err(|_| anyhow::anyhow!("{name} = {value:?} is not true or false"))?)
            }
            "TRAILWATCH_INTEGRITY_INTERVAL" => raw.integrity.interval = Some(value),
            "TRAILWATCH_RETENTION_DAYS" => raw.retention.days = Some(number(name, &value)?),
            "TRAILWATCH_RETENTION_INTERVAL" => raw.retention.interval = Some(value),
            "TRAILWATCH_INTEGRITY_LOG_GRACE" => raw.integrity.log_grace = Some(value),
            "TRAILWATCH_INTEGRITY_DIGEST_GRACE" => raw.integrity.digest_grace = Some(value),
            "TRAILWATCH_INTEGRITY_PUBLIC_KEYS" => raw.integrity.public_keys = Some(value),
            n if n.starts_with("TRAILWATCH_SINKS_") => {
                // TRAILWATCH_SINKS_<NAME>_<KEY>: NAME is the sink's name in upper case with
                // '-' as '_'; KEY one of its secret-bearing keys.
                let rest = &n["TRAILWATCH_SINKS_".len()..];
                let sink = raw.sinks.iter_mut().find(|k| {
                    let upper = k.name.to_ascii_uppercase().replace('-', "_");
                    rest.strip_prefix(&upper).is_some_and(|r| r.starts_with('_'))
                });
                let Some(sink) = sink else { bail!("{name}: no sink of that name in the configuration") };
                let key = &rest[sink.name.len() + 1..];
                match key {
                    "URL" => sink.url = Some(value),
                    "SECRET" => sink.secret = Some(value),
                    "USERNAME" => sink.username = Some(value),
                    "PASSWORD" => sink.password = Some(value),
                    "SMTP_HOST" => sink.smtp_host = Some(value),
                    "SMTP_PORT" => sink.smtp_port = Some(number(name, &value)?),
                    "TOPIC_ARN" => sink.topic_arn = Some(value),
                    _ => bail!("{name}: {key} is not a sink key that can be set from the environment"),
                }
            }
            n if n.starts_with("TRAILWATCH_FORWARD_") => {
                let rest = &n["TRAILWATCH_FORWARD_".len()..];
                let fwd = raw.forward.iter_mut().find(|f| {
                    let upper = f.name.to_ascii_uppercase().replace('-', "_");
                    rest.strip_prefix(&upper).is_some_and(|r| r.starts_with('_'))
                });
                let Some(fwd) = fwd else { bail!("{name}: no forwarder of that name in the configuration") };
                match &rest[fwd.name.len() + 1..] {
                    "URL" => fwd.url = Some(value),
                    "SECRET" => fwd.secret = Some(value),
                    key => bail!("{name}: {key} is not a forwarder key that can be set from the environment"),
                }
            }
            // Not configuration keys (e.g. TRAILWATCH_SHARED_DIR for tests, TRAILWATCH_LOG).
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trailwatch.toml");
        std::fs::write(&path, text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load(&path, &env).map(|mut c| {
            // Make the tempdir part of the path comparable.
            if let StoreConfig::Sqlite { path: p } = &c.store {
                c.store = StoreConfig::Sqlite {
                    path: p.strip_prefix(dir.path()).map(Path::to_path_buf).unwrap_or(p.clone()),
                };
            }
            c
        })
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = load("[store]\npath = \"data/tw.db\"\n", &[]).unwrap();
        assert_eq!(c.store, StoreConfig::Sqlite { path: PathBuf::from("data/tw.db") });
        assert_eq!(c.web_listen, "127.0.0.1:8080");
    }

    #[test]
    fn env_overrides_the_file() {
        let c = load(
            "[web]\nlisten = \"127.0.0.1:1\"\n",
            &[("TRAILWATCH_WEB_LISTEN", "0.0.0.0:9000"), ("TRAILWATCH_STORE_PATH", "/abs/x.db")],
        )
        .unwrap();
        assert_eq!(c.web_listen, "0.0.0.0:9000");
        assert_eq!(c.store, StoreConfig::Sqlite { path: PathBuf::from("/abs/x.db") });
    }

    #[test]
    fn the_scale_out_store_needs_both_urls() {
        let both = "[store]\nkind = \"clickhouse\"\nurl = \"http://ch:8123/tw\"\n\n[state]\nkind = \"postgres\"\nurl = \"postgres://tw@pg/tw\"\n";
        let c = load(both, &[]).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::ScaleOut {
                clickhouse_url: "http://ch:8123/tw".into(),
                postgres_url: "postgres://tw@pg/tw".into()
            }
        );
        let err = format!("{:#}", load("[store]\nkind = \"clickhouse\"\nurl = \"http://ch:8123\"\n", &[]).unwrap_err());
        assert!(err.contains("[state]"), "{err}");
        let err = format!("{:#}", load("[store]\nkind = \"clickhouse\"\n", &[]).unwrap_err());
        assert!(err.contains("store.url"), "{err}");
        let err = format!("{:#}", load("[state]\nkind = \"postgres\"\nurl = \"postgres://x/y\"\n", &[]).unwrap_err());
        assert!(err.contains("scale-out"), "{err}");
        let err = format!("{:#}", load(both, &[("TRAILWATCH_STATE_URL", "mysql://x")]).unwrap_err());
        assert!(err.contains("state.url"), "{err}");
        let c = load(both, &[("TRAILWATCH_STORE_URL", "http://other:8123/db2")]).unwrap();
        assert!(
            matches!(c.store, StoreConfig::ScaleOut { ref clickhouse_url, .. } if clickhouse_url == "http://other:8123/db2")
        );
    }

    #[test]
    fn errors_name_the_key() {
        let err = format!("{:#}", load("[store]\npth = \"x\"\n", &[]).unwrap_err());
        assert!(err.contains("pth"), "{err}");
        let err = format!("{:#}", load("[web]\nlisten = \"nowhere\"\n", &[]).unwrap_err());
        assert!(err.contains("web.listen"), "{err}");
        let err = format!("{:#}", load("[store]\nkind = \"mongo\"\n", &[]).unwrap_err());
        assert!(err.contains("store.kind"), "{err}");
        let err = format!("{:#}", load("[[accounts]]\nname = \"p\"\naccount_id = \"12\"\n", &[]).unwrap_err());
        assert!(err.contains("accounts[0].account_id"), "{err}");
    }

    #[test]
    fn ingest_settings_from_file_and_env() {
        let c = load(
            "[ingest]\nwait_time_secs = 5\nfetch_concurrency = 4\n",
            &[("TRAILWATCH_INGEST_FETCH_CONCURRENCY", "9")],
        )
        .unwrap();
        assert_eq!((c.consumer.wait_time_secs, c.consumer.fetch_concurrency), (5, 9));
        let err = format!("{:#}", load("[ingest]\nwait_time_secs = 21\n", &[]).unwrap_err());
        assert!(err.contains("ingest.wait_time_secs"), "{err}");
        let err = format!("{:#}", load("", &[("TRAILWATCH_INGEST_WORKERS", "many")]).unwrap_err());
        assert!(err.contains("TRAILWATCH_INGEST_WORKERS"), "{err}");
        let err = format!(
            "{:#}",
            load("[[accounts]]\nname = \"p\"\naccount_id = \"111122223333\"\nrole_arn = \"arn:aws:s3:::b\"\n", &[])
                .unwrap_err()
        );
        assert!(err.contains("accounts[0].role_arn"), "{err}");
    }

    #[test]
    fn detection_and_sinks() {
        let c = load(
            "[detection]\nrules = [\"sigma\"]\nsuppression = \"30m\"\n\n[[sinks]]\nname = \"ops-hook\"\nkind = \"webhook\"\nurl = \"https://h.example/x\"\n",
            &[("TRAILWATCH_SINKS_OPS_HOOK_SECRET", "s3cret")],
        )
        .unwrap();
        assert!(c.detection.builtin);
        assert_eq!(c.detection.suppression_ms, 1_800_000);
        assert!(c.detection.rules[0].ends_with("sigma"));
        assert_eq!(c.sinks[0].secret.as_deref(), Some("s3cret"));
        let err = format!("{:#}", load("[[sinks]]\nname = \"a\"\nkind = \"pager\"\n", &[]).unwrap_err());
        assert!(err.contains("sinks[0].kind"), "{err}");
        let err =
            format!("{:#}", load("[[sinks]]\nname = \"a\"\nkind = \"email\"\nsmtp_host = \"h\"\n", &[]).unwrap_err());
        assert!(err.contains("sinks[0].from"), "{err}");
        let off = load("[detection]\nnew_region = false\n", &[]).unwrap();
        assert_eq!(off.detection.new_region_learning_ms, None);
        let short = load("[detection]\nnew_region_learning = \"2d\"\n", &[]).unwrap();
        assert_eq!(short.detection.new_region_learning_ms, Some(172_800_000));
        let err = format!("{:#}", load("[detection]\nsuppression = \"soon\"\n", &[]).unwrap_err());
        assert!(err.contains("detection.suppression"), "{err}");
        let err = format!("{:#}", load("", &[("TRAILWATCH_SINKS_NOPE_URL", "x")]).unwrap_err());
        assert!(err.contains("TRAILWATCH_SINKS_NOPE_URL"), "{err}");
    }

    #[test]
    fn ingest_filters() {
        assert!(load("", &[]).unwrap().filter.is_none());
        let c = load(
            "[[ingest.filters]]\nevent_source = \"kms.amazonaws.com\"\nevent_name = [\"Decrypt\", \"Encrypt\"]\ncategory = \"Data\"\n",
            &[],
        )
        .unwrap();
        let counts = c.filter.unwrap().counts();
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].0, "filter-1");
        for (text, key) in [
            ("[[ingest.filters]]\naction = \"skip\"\nevent_name = \"X\"\n", "ingest.filters[0].action"),
            ("[[ingest.filters]]\ncategory = \"Logs\"\n", "ingest.filters[0].category"),
            ("[[ingest.filters]]\nname = \"everything\"\n", "\"everything\" has no condition"),
            ("[[ingest.filters]]\nevent_nam = \"X\"\n", "event_nam"),
        ] {
            let err = format!("{:#}", load(text, &[]).unwrap_err());
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn forwarders() {
        let c = load(
            "[[forward]]\nname = \"siem\"\nkind = \"webhook\"\nurl = \"https://siem.example/in\"\nformat = \"ocsf\"\n\n[[forward]]\nname = \"archive\"\nkind = \"file\"\npath = \"events.jsonl\"\nstart = \"beginning\"\n",
            &[("TRAILWATCH_FORWARD_SIEM_SECRET", "k")],
        )
        .unwrap();
        assert_eq!(c.forward.len(), 2);
        assert!(matches!(&c.forward[0].sink, alert::forward::ForwardSink::Webhook { secret: Some(s), .. } if s == "k"));
        assert_eq!(c.forward[0].format, export::ExportFormat::Ocsf);
        assert!(c.forward[0].start_at_end && !c.forward[1].start_at_end);
        assert!(matches!(&c.forward[1].sink, alert::forward::ForwardSink::File { path } if path.is_absolute()));
        for (text, key) in [
            ("[[forward]]\nname = \"a\"\nkind = \"kafka\"\n", "forward[0].kind"),
            ("[[forward]]\nname = \"a\"\nkind = \"webhook\"\n", "forward[0].url"),
            ("[[forward]]\nname = \"a b\"\nkind = \"file\"\npath = \"x\"\n", "forward[0].name"),
            ("[[forward]]\nname = \"a\"\nkind = \"file\"\npath = \"x\"\nformat = \"xml\"\n", "forward[0].format"),
            (
                "[store]\nkind = \"clickhouse\"\nurl = \"http://h:8123/db\"\n[state]\nurl = \"postgres://u@h/db\"\n[[forward]]\nname = \"a\"\nkind = \"file\"\npath = \"x\"\n",
                "embedded store",
            ),
        ] {
            let err = format!("{:#}", load(text, &[]).unwrap_err());
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn retention_settings() {
        assert_eq!(load("", &[]).unwrap().retention, None);
        let c = load("[retention]\ndays = 400\ncategories = { Data = 30 }\ninterval = \"10m\"\n", &[]).unwrap();
        let r = c.retention.unwrap();
        assert_eq!(r.policy.days, Some(400));
        assert_eq!(r.policy.categories.get("Data"), Some(&30));
        assert_eq!(r.interval, std::time::Duration::from_secs(600));
        let env = load("", &[("TRAILWATCH_RETENTION_DAYS", "90")]).unwrap();
        assert_eq!(env.retention.unwrap().policy.days, Some(90));
        for (text, key) in [
            ("[retention]\ncategories = { Datum = 3 }\n", "retention.categories.Datum"),
            ("[retention]\ndays = 0\n", "retention.days"),
            ("[retention]\ndays = 3\ninterval = \"sometimes\"\n", "retention.interval"),
            ("[retention]\ninterval = \"1h\"\n", "retention.interval"),
        ] {
            let err = format!("{:#}", load(text, &[]).unwrap_err());
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn integrity_settings() {
        let d = load("", &[]).unwrap().integrity.expect("on by default");
        assert_eq!(d.interval, std::time::Duration::from_secs(3600));
        assert_eq!((d.grace.digests, d.grace.logs), (7_200_000, 21_600_000));
        let c = load(
            "[integrity]\ninterval = \"10m\"\ndigest_grace = \"3h\"\n",
            &[("TRAILWATCH_INTEGRITY_LOG_GRACE", "1d")],
        )
        .unwrap()
        .integrity
        .unwrap();
        assert_eq!(c.interval, std::time::Duration::from_secs(600));
        assert_eq!((c.grace.digests, c.grace.logs), (10_800_000, 86_400_000));
        assert!(load("[integrity]\nenabled = false\n", &[]).unwrap().integrity.is_none());
        for (text, key) in [
            ("[integrity]\ninterval = \"often\"\n", "integrity.interval"),
            ("[integrity]\npending = \"0s\"\n", "integrity.pending"),
            ("[integrity]\npublic_keys = \"/nonexistent/keys.json\"\n", "integrity.public_keys"),
            ("[integrity]\nintervals = \"1h\"\n", "intervals"),
        ] {
            let err = format!("{:#}", load(text, &[]).unwrap_err());
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn the_shipped_example_parses() {
        let c = load(include_str!("../../../trailwatch.example.toml"), &[]).unwrap();
        assert_eq!(c.accounts.len(), 1);
        assert_eq!(c.accounts[0].external_id.as_deref(), Some("replace-with-the-one-setup-prints"));
        assert_eq!(c.sinks.len(), 1);
        assert_eq!(c.detection, DetectionConfig::default());
    }

    #[test]
    fn the_design_example_parses() {
        let text = r#"
[store]
kind = "sqlite"
path = "trailwatch.db"
[web]
listen = "127.0.0.1:8080"
[aws]
[[accounts]]
name = "prod"
account_id = "111122223333"
role_arn = "arn:aws:iam::111122223333:role/trailwatch-read"
external_id = "from-setup"
regions = ["us-east-1"]
bucket = "example-trail-bucket"
queue_url = "https://sqs.us-east-1.amazonaws.com/444455556666/trailwatch"
"#;
        load(text, &[]).unwrap();
    }
    #[test]
    fn read_limits_come_from_ingest_and_the_environment() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.read_limits, model::ReadLimits::default());
        let c = load("[ingest]\nmax_record_bytes = 8388608\nmax_inflate_ratio = 50\n", &[]).unwrap();
        assert_eq!((c.read_limits.max_record_bytes, c.read_limits.max_ratio), (8 << 20, 50));
        let c = load("", &[("TRAILWATCH_INGEST_MAX_INFLATED_BYTES", "1073741824")]).unwrap();
        assert_eq!(c.read_limits.max_inflated_bytes, 1 << 30);
        let err = format!("{:#}", load("[ingest]\nmax_record_bytes = 100\n", &[]).unwrap_err());
        assert!(err.contains("ingest.max_record_bytes"), "{err}");
        let err = format!("{:#}", load("[ingest]\nmax_inflate_ratio = 2\n", &[]).unwrap_err());
        assert!(err.contains("ingest.max_inflate_ratio"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let c = load("[web]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"::1\"]\n", &[]).unwrap();
        assert_eq!(c.web.trusted_proxies.len(), 3);
        assert!(c.web.trusted_proxies[1].contains(&"192.0.2.7".parse::<std::net::IpAddr>().unwrap()));
        let err = format!("{:#}", load("[web]\ntrusted_proxies = [\"proxy.example\"]\n", &[]).unwrap_err());
        assert!(err.contains("web.trusted_proxies"), "{err}");
        // The old switch alone trusts loopback proxies only, never any client.
        let c = load("[web]\ntrust_proxy = true\n", &[]).unwrap();
        assert!(c.web.trusted_proxies.iter().all(|n| n.addr().is_loopback()), "{:?}", c.web.trusted_proxies);
        let c = load("", &[("TRAILWATCH_WEB_TRUSTED_PROXIES", "10.1.0.0/16, 10.2.0.1")]).unwrap();
        assert_eq!(c.web.trusted_proxies.len(), 2);
        assert_eq!(load("", &[]).unwrap().web.max_connections, web::DEFAULT_MAX_CONNECTIONS);
    }
}

/// The configuration parser against arbitrary input: any text, and documents made of the
/// real sections and keys (from the generated schema) with arbitrary values, must load or be
/// refused with an error — never panic. (The fuzz targets under `fuzz/` cover the other
/// parsers of outside data; the configuration's types live in this binary crate beside the
/// AWS SDK, so it is explored here, on every `cargo test`.)
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    fn keys() -> Vec<(String, bool, Vec<String>)> {
        // (section, is an array of tables, its keys)
        let schema = crate::config_doc::schema();
        let defs = schema["$defs"].clone();
        let mut out = Vec::new();
        for (name, prop) in schema["properties"].as_object().unwrap() {
            let (array, r) = match prop.get("items") {
                Some(items) => (true, items.get("$ref").and_then(|r| r.as_str())),
                None => (
                    false,
                    prop.get("$ref").and_then(|r| r.as_str()).or_else(|| {
                        prop.get("anyOf")?.as_array()?.iter().find_map(|v| v.get("$ref").and_then(|r| r.as_str()))
                    }),
                ),
            };
            let Some(def) = r.and_then(|r| defs.get(r.rsplit('/').next().unwrap())) else { continue };
            let keys = def["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
            out.push((name.clone(), array, keys));
        }
        out
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            "\\PC{0,24}".prop_map(|s| format!("{s:?}").replace("\\u{", "\\u").replace('}', "")),
            prop::sample::select(vec![
                "\"1h\"",
                "\"0s\"",
                "\"-5m\"",
                "\"postgres://u@h/db\"",
                "\"http://127.0.0.1:8123/db\"",
                "\"clickhouse\"",
                "\"sqlite\"",
                "\"webhook\"",
                "\"file\"",
                "\"ocsf\"",
                "\"x\"",
                "[]",
                "[\"a\", \"b\"]",
                "{ Data = 3 }",
                "\"arn:aws:iam::111122223333:role/r\"",
                "\"111122223333\"",
                "\"us-east-1\"",
                "0",
                "4294967296",
            ])
            .prop_map(String::from),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn any_text_loads_or_is_refused(text in "\\PC{0,300}") {
            let _ = super::tests_support::load_text(&text);
        }

        #[test]
        fn documents_of_real_keys_load_or_are_refused(
            picks in prop::collection::vec((any::<prop::sample::Index>(), prop::collection::vec((any::<prop::sample::Index>(), value()), 0..6)), 0..6)
        ) {
            let keys = keys();
            let mut text = String::new();
            for (section, entries) in picks {
                let (name, array, names) = &keys[section.index(keys.len())];
                text.push_str(&if *array { format!("[[{name}]]\n") } else { format!("[{name}]\n") });
                let mut seen = std::collections::HashSet::new();
                for (k, v) in entries {
                    if names.is_empty() { break; }
                    let key = &names[k.index(names.len())];
                    if seen.insert(key.clone()) {
                        text.push_str(&format!("{key} = {v}\n"));
                    }
                }
            }
            // Duplicate plain sections are a TOML error, which is fine: refused, not a panic.
            let _ = super::tests_support::load_text(&text);
        }
    }
}

#[cfg(test)]
mod tests_support {
    /// Loads `text` as a configuration file (with no environment overrides).
    pub fn load_text(text: &str) -> anyhow::Result<super::Config> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("trailwatch.toml");
        std::fs::write(&path, text)?;
        super::Config::load(&path, &Default::default())
    }
}
