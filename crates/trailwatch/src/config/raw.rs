//! `trailwatch.toml` as written: every key optional where it has a default, unknown keys
//! refused. Doc comments here are the configuration reference (`config_doc`).

use std::collections::BTreeMap;
use std::path::PathBuf;

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

/// Where alerts are delivered (`[[sinks]]`), by `kind`: `webhook`, `slack`, `email` or
/// `sns`. Every sink has a `name` (outbox rows, metrics, env overrides), `min_level` (alerts
/// below it are not sent there; default "low") and `rate_per_minute` (default 60). Secrets
/// can come from `TRAILWATCH_SINKS_<NAME>_<KEY>`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RawSink {
    /// POST each alert as JSON, signed with `secret`.
    Webhook(RawWebhookSink),
    /// Post to a Slack incoming webhook.
    Slack(RawSlackSink),
    /// Send mail through an SMTP relay.
    Email(RawEmailSink),
    /// Publish to an SNS topic.
    Sns(RawSnsSink),
}

/// `kind = "webhook"`.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebhookSink {
    /// Names the sink (outbox rows, metrics, env overrides).
    pub name: String,
    /// Alerts below this level are not sent here (default "low").
    pub min_level: Option<String>,
    /// At most this many deliveries per minute (default 60).
    pub rate_per_minute: Option<u32>,
    /// Where to POST.
    pub url: Option<String>,
    /// HMAC-SHA256 key for the `X-Trailwatch-Signature` header.
    pub secret: Option<String>,
}

/// `kind = "slack"`.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlackSink {
    /// Names the sink (outbox rows, metrics, env overrides).
    pub name: String,
    /// Alerts below this level are not sent here (default "low").
    pub min_level: Option<String>,
    /// At most this many deliveries per minute (default 60).
    pub rate_per_minute: Option<u32>,
    /// The incoming webhook's URL.
    pub url: Option<String>,
}

/// `kind = "email"`.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEmailSink {
    /// Names the sink (outbox rows, metrics, env overrides).
    pub name: String,
    /// Alerts below this level are not sent here (default "low").
    pub min_level: Option<String>,
    /// At most this many deliveries per minute (default 60).
    pub rate_per_minute: Option<u32>,
    /// The SMTP relay's host name.
    pub smtp_host: Option<String>,
    /// The relay's port (default 587 for starttls, 465 for tls, 25 for none).
    pub smtp_port: Option<u16>,
    /// "starttls" (default, required), "tls" (implicit TLS) or "none" (local relays only).
    pub smtp_security: Option<String>,
    /// A PEM CA certificate to trust for the relay (relative to the configuration file).
    pub smtp_ca_file: Option<String>,
    /// SMTP user name (with `password`).
    pub username: Option<String>,
    /// SMTP password (better from `TRAILWATCH_SINKS_<NAME>_PASSWORD`).
    pub password: Option<String>,
    /// The sender address.
    pub from: Option<String>,
    /// Recipient addresses.
    #[serde(default)]
    pub to: Vec<String>,
}

/// `kind = "sns"`.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSnsSink {
    /// Names the sink (outbox rows, metrics, env overrides).
    pub name: String,
    /// Alerts below this level are not sent here (default "low").
    pub min_level: Option<String>,
    /// At most this many deliveries per minute (default 60).
    pub rate_per_minute: Option<u32>,
    /// The topic to publish to.
    pub topic_arn: Option<String>,
    /// Publish with this configured account's credentials (its assumed role).
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
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Where events live.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `sqlite` (default) or `clickhouse`.
    pub kind: Option<String>,
    /// SQLite file; relative paths are relative to the configuration file.
    pub path: Option<String>,
    /// ClickHouse HTTP URL, `http://[user[:password]@]host:8123[/database][?cluster=NAME]`
    /// (database `trailwatch` by default). With `cluster`, the tables are created on every
    /// server of that cluster of the servers' `remote_servers`, replicated within each shard
    /// and read and written through `Distributed` tables (README, *A replicated cluster*).
    pub url: Option<String>,
}

/// Scale-out state store (ledger, alerts, users) in PostgreSQL.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// `postgres` (the only kind).
    pub kind: Option<String>,
    /// `postgres://user@host:5432/database` (the password from `PGPASSWORD`). A primary and
    /// its standby: `postgres://user@pg1:5432,pg2:5432/database?target_session_attrs=read-write`
    /// (connections go to whichever is writable).
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
