//! From the file as written to the typed [`Config`]: defaults filled in, values checked,
//! paths resolved against the configuration file's directory.

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::*;

pub(super) fn validate(mut raw: RawConfig, base: &Path) -> anyhow::Result<Config> {
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
                bail!("store.url is required for kind = \"clickhouse\" (e.g. \"http://127.0.0.1:8123/trailwatch\")");
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
        bail!(
            "[state] is for the scale-out store (store.kind = \"clickhouse\"); SQLite keeps everything in its one file"
        );
    }
    let web_listen = raw.web.listen.unwrap_or_else(|| WebConfig::DEFAULT_LISTEN.into());
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
        anyhow::ensure!(limits.max_ratio >= 10, "ingest.max_inflate_ratio must be at least 10 (gzip'd JSON is 5–30)");
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
        receivers_per_queue: positive("receivers_per_queue", ingest.receivers_per_queue, defaults.receivers_per_queue)?,
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
    let defaults = DetectionConfig::default();
    let detection = DetectionConfig {
        builtin: raw.detection.builtin.unwrap_or(defaults.builtin),
        rules: raw.detection.rules.iter().map(|p| resolve(base, p)).collect(),
        suppression_ms: match raw.detection.suppression.as_deref() {
            None => defaults.suppression_ms,
            Some(s) => {
                detect::correlation::parse_timespan(s).map_err(|e| anyhow::anyhow!("detection.suppression: {e}"))?
            }
        },
        public_url: raw.detection.public_url.map(|u| u.trim_end_matches('/').to_string()),
        new_region_learning_ms: match (raw.detection.new_region.unwrap_or(true), raw.detection.new_region_learning) {
            (false, _) => None,
            (true, None) => defaults.new_region_learning_ms,
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
    let sinks = validate_sinks(raw.sinks, &accounts, base)?;
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

fn forward_specs(raw: Vec<RawForward>, base: &Path) -> anyhow::Result<Vec<forward::ForwardSpec>> {
    use forward::{ForwardSink, ForwardSpec};
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

fn validate_sinks(sinks: Vec<RawSink>, accounts: &[aws::AccountSpec], base: &Path) -> anyhow::Result<Vec<SinkConfig>> {
    let mut out: Vec<SinkConfig> = Vec::new();
    for (i, k) in sinks.into_iter().enumerate() {
        let at = format!("sinks[{i}]");
        let (name, min_level, rate_per_minute) = match &k {
            RawSink::Webhook(s) => (&s.name, &s.min_level, s.rate_per_minute),
            RawSink::Slack(s) => (&s.name, &s.min_level, s.rate_per_minute),
            RawSink::Email(s) => (&s.name, &s.min_level, s.rate_per_minute),
            RawSink::Sns(s) => (&s.name, &s.min_level, s.rate_per_minute),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("{at}.name = {name:?} must be letters, digits, '-' or '_'");
        }
        if out.iter().any(|o| o.name == *name) {
            bail!("{at}.name = {name:?} is used by another sink");
        }
        let min_level = min_level.clone().unwrap_or_else(|| SinkConfig::DEFAULT_MIN_LEVEL.into());
        if !store::alerts::LEVELS.contains(&min_level.as_str()) {
            bail!("{at}.min_level = {min_level:?} is not one of {}", store::alerts::LEVELS.join(", "));
        }
        let rate_per_minute = rate_per_minute.unwrap_or(SinkConfig::DEFAULT_RATE_PER_MINUTE);
        if rate_per_minute == 0 {
            bail!("{at}.rate_per_minute must be at least 1");
        }
        let name = name.clone();
        let need = |key: &str, kind: &str, v: Option<String>| -> anyhow::Result<String> {
            match v {
                Some(s) if !s.is_empty() => Ok(s),
                _ => bail!("{at}.{key} is required for kind = {kind:?}"),
            }
        };
        let http_url = |kind: &str, url: Option<String>| -> anyhow::Result<String> {
            let url = need("url", kind, url)?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                bail!("{at}.url = {url:?} is not an http(s) URL");
            }
            Ok(url)
        };
        let target = match k {
            RawSink::Webhook(s) => SinkTarget::Webhook { url: http_url("webhook", s.url)?, secret: s.secret },
            RawSink::Slack(s) => SinkTarget::Slack { url: http_url("slack", s.url)? },
            RawSink::Email(s) => {
                let smtp_host = need("smtp_host", "email", s.smtp_host)?;
                let from = need("from", "email", s.from)?;
                if s.to.is_empty() {
                    bail!("{at}.to must list at least one address");
                }
                let smtp_security = s.smtp_security.unwrap_or_else(|| "starttls".into());
                if !["starttls", "tls", "none"].contains(&smtp_security.as_str()) {
                    bail!("{at}.smtp_security = {smtp_security:?} is not one of starttls, tls, none");
                }
                SinkTarget::Email(EmailTarget {
                    smtp_host,
                    smtp_port: s.smtp_port,
                    smtp_security,
                    smtp_ca_file: s.smtp_ca_file.as_deref().map(|p| resolve(base, p)),
                    username: s.username,
                    password: s.password,
                    from,
                    to: s.to,
                })
            }
            RawSink::Sns(s) => {
                let topic_arn = need("topic_arn", "sns", s.topic_arn)?;
                if let Some(a) = s.account.as_deref().filter(|a| !accounts.iter().any(|x| x.name == *a)) {
                    bail!("{at}.account = {a:?} is not a configured account");
                }
                SinkTarget::Sns { topic_arn, account: s.account }
            }
        };
        out.push(SinkConfig { name, min_level, rate_per_minute, target });
    }
    Ok(out)
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
