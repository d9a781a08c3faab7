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
#[derive(Debug, Default, Deserialize)]
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
    pub accounts: Vec<RawAccount>,
}

/// Where events live.
#[derive(Debug, Default, Deserialize)]
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    pub kind: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    /// Address the dashboard listens on (default `127.0.0.1:8080`).
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    /// Any AWS-compatible endpoint (also `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    pub force_path_style: Option<bool>,
}

/// One monitored AWS account. Parsed and checked by every command so that one file serves
/// them all; the AWS sources (`serve`) are what use the connection details.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub name: String,
    pub account_id: String,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    pub bucket: Option<String>,
    pub queue_url: Option<String>,
    pub organization_id: Option<String>,
}

/// Validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub store: StoreConfig,
    pub web_listen: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Sqlite { path: PathBuf },
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
            "clickhouse" => bail!("store.kind = \"clickhouse\" is not available in this version; use \"sqlite\""),
            other => bail!("store.kind = {other:?} is not one of \"sqlite\", \"clickhouse\""),
        };
        if let Some(state) = &raw.state {
            bail!(
                "state.kind = {:?}: a separate state store is not available in this version",
                state.kind.as_deref().unwrap_or("")
            );
        }
        let web_listen = raw.web.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        web_listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| anyhow::anyhow!("web.listen = {web_listen:?} is not an address:port ({e})"))?;
        for (i, a) in raw.accounts.iter().enumerate() {
            if !model::key::is_account_id(&a.account_id) {
                bail!("accounts[{i}].account_id = {:?} is not a 12-digit account id", a.account_id);
            }
            if let Some(r) = a.regions.iter().find(|r| !model::key::is_region(r)) {
                bail!("accounts[{i}].regions: {r:?} is not a region name");
            }
        }
        Ok(Config { store, web_listen })
    }
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
            "TRAILWATCH_AWS_ENDPOINT_URL" => raw.aws.endpoint_url = Some(value),
            "TRAILWATCH_AWS_FORCE_PATH_STYLE" => {
                raw.aws.force_path_style =
                    Some(value.parse().map_err(|_| anyhow::anyhow!("{name} = {value:?} is not true or false"))?)
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
            let StoreConfig::Sqlite { path: p } = &c.store;
            c.store =
                StoreConfig::Sqlite { path: p.strip_prefix(dir.path()).map(Path::to_path_buf).unwrap_or(p.clone()) };
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
}
