//! `trailwatch.toml`: the file as written ([`raw`]), the `TRAILWATCH_*` overrides from the
//! environment ([`env`], derived from the same schema, so every key has one), and the
//! validated, typed [`Config`] the commands use ([`validate`]). Unknown keys, in the file or
//! the environment, are errors that name them, so typos do not pass silently; each default
//! lives in one place, the validated type's `Default` or the function that fills it in.

mod env;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub use raw::*;

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
    pub sinks: Vec<SinkConfig>,
    /// `None` when `[integrity] enabled = false`.
    pub integrity: Option<aws::integrity::WatchSettings>,
    /// `None` when no policy is set.
    pub retention: Option<RetentionSettings>,
    /// `[[forward]]`.
    pub forward: Vec<forward::ForwardSpec>,
    /// (account name, days) of `[[accounts]] import_history_days`.
    pub history_imports: Vec<(String, u32)>,
    /// `[[ingest.filters]]`, compiled; `None` without filters.
    pub filter: Option<std::sync::Arc<ingest::filter::EventFilter>>,
}

/// A validated `[[sinks]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    pub name: String,
    /// Alerts below this level are not sent here.
    pub min_level: String,
    pub rate_per_minute: u32,
    pub target: SinkTarget,
}

impl SinkConfig {
    pub const DEFAULT_MIN_LEVEL: &'static str = "low";
    pub const DEFAULT_RATE_PER_MINUTE: u32 = 60;
}

/// Where a sink sends, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTarget {
    Webhook {
        url: String,
        secret: Option<String>,
    },
    Slack {
        url: String,
    },
    Email(EmailTarget),
    /// Published with `account`'s credentials, or trailwatch's own.
    Sns {
        topic_arn: String,
        account: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTarget {
    pub smtp_host: String,
    pub smtp_port: Option<u16>,
    /// `starttls`, `tls` or `none`.
    pub smtp_security: String,
    /// Resolved against the configuration file's directory.
    pub smtp_ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    pub policy: store::RetentionPolicy,
    pub interval: std::time::Duration,
}

/// The `eventCategory` values CloudTrail writes.
pub const EVENT_CATEGORIES: [&str; 4] = ["Management", "Data", "Insight", "NetworkActivity"];

/// Validated `[web]` (besides `listen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// (certificate chain, private key), PEM.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub secure_cookies: bool,
    pub trusted_proxies: Vec<web::IpNet>,
    pub max_connections: usize,
}

impl WebConfig {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:8080";
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
        // Parsed once as written, for errors that point into the file…
        toml::from_str::<RawConfig>(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))
            .with_context(|| format!("invalid configuration {}", path.display()))?;
        // …then again with the environment's overrides.
        let table: toml::Table = toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let raw = env::apply(table, env).with_context(|| format!("invalid configuration {}", path.display()))?;
        validate::validate(raw, base).with_context(|| format!("invalid configuration {}", path.display()))
    }

    /// The configuration used when no file is given: overrides only.
    pub fn from_env(env: &BTreeMap<String, String>) -> anyhow::Result<Config> {
        validate::validate(env::apply(toml::Table::new(), env)?, Path::new("."))
    }
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
        assert_eq!(
            c.sinks[0].target,
            SinkTarget::Webhook { url: "https://h.example/x".into(), secret: Some("s3cret".into()) }
        );
        assert_eq!((c.sinks[0].min_level.as_str(), c.sinks[0].rate_per_minute), ("low", 60));
        let err = format!("{:#}", load("[[sinks]]\nname = \"a\"\nkind = \"pager\"\n", &[]).unwrap_err());
        assert!(err.contains("pager") && err.contains("webhook"), "{err}");
        // A key of another kind is refused, naming it.
        let err = format!(
            "{:#}",
            load("[[sinks]]\nname = \"a\"\nkind = \"slack\"\nurl = \"https://x\"\nsecret = \"k\"\n", &[]).unwrap_err()
        );
        assert!(err.contains("secret"), "{err}");
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
        assert!(matches!(&c.forward[0].sink, forward::ForwardSink::Webhook { secret: Some(s), .. } if s == "k"));
        assert_eq!(c.forward[0].format, export::ExportFormat::Ocsf);
        assert!(c.forward[0].start_at_end && !c.forward[1].start_at_end);
        assert!(matches!(&c.forward[1].sink, forward::ForwardSink::File { path } if path.is_absolute()));
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
        let c = load(include_str!("../../../../trailwatch.example.toml"), &[]).unwrap();
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
