//! One module per subcommand; each exposes `run(args) -> anyhow::Result<()>`.

pub mod alerts;
pub mod backfill;
pub mod backup;
pub mod bench;
pub mod bench_store;
pub mod bench_web;
pub mod demo;
pub mod docs;
pub mod doctor;
pub mod export;
pub mod import;
pub mod ingest;
pub mod migrate;
pub mod quarantine;
pub mod retention;
pub mod rules;
pub mod search;
pub mod serve;
pub mod setup;
pub mod simulate;
pub mod status;
pub mod user;
pub mod validate;

use std::collections::BTreeMap;

use anyhow::Context;
use std::sync::Arc;

use store::{SqliteStore, Store};

use crate::cli::StoreArgs;
use crate::config::{Config, StoreConfig};

/// Returned by a checking command (`doctor`, `validate`) whose check found problems: exit
/// code 1, the findings already printed.
#[derive(Debug, thiserror::Error)]
#[error("{0} problems found")]
pub struct Findings(pub usize);

/// Whether a command may create the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Ingesting: create the file when it is missing.
    Create,
    /// Reading: a missing file is an error (it would only ever be empty).
    Existing,
}

/// The store the arguments select: `--db`, else `--config`'s store, else the
/// `TRAILWATCH_STORE_*` environment, else `./trailwatch.db`.
pub fn store_target(args: &StoreArgs) -> anyhow::Result<StoreConfig> {
    match (&args.db, selected_config(args)?) {
        (Some(db), _) => Ok(StoreConfig::Sqlite { path: db.clone() }),
        (None, config) => Ok(config.expect("selected whenever --db is not").store),
    }
}

/// The configuration the arguments select: `--config`'s file, else the `TRAILWATCH_*`
/// environment alone; `None` with `--db` (a bare database has no configuration).
pub fn selected_config(args: &StoreArgs) -> anyhow::Result<Option<Config>> {
    Ok(match (&args.db, &args.config) {
        (Some(_), _) => None,
        (None, Some(path)) => Some(load_config(path)?),
        (None, None) => Some(Config::from_env(&std::env::vars().collect())?),
    })
}

pub fn open_store(args: &StoreArgs, mode: Open) -> anyhow::Result<Store> {
    open_target(&store_target(args)?, mode)
}

/// Loads a configuration file with the process's `TRAILWATCH_*` overrides.
pub fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    Config::load(path, &env)
}

/// Opens the configured store: the SQLite file, or the scale-out servers (bringing their
/// schemas up to date).
pub fn open_target(target: &StoreConfig, mode: Open) -> anyhow::Result<Store> {
    match target {
        StoreConfig::Sqlite { path } => Ok(open_store_at(path, mode)?.into()),
        StoreConfig::ScaleOut { clickhouse_url, postgres_url } => {
            let store = store::ScaleOutStore::open(clickhouse_url, postgres_url).with_context(|| {
                format!(
                    "opening the scale-out store (ClickHouse {}, PostgreSQL {})",
                    redact(clickhouse_url),
                    redact(postgres_url)
                )
            })?;
            Ok(store.into())
        }
    }
}

/// A URL as it may be printed: without the password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Creates `dir` and its missing parents for trailwatch's own data: owner-only (0700), as the
/// store files in it are (an existing directory is left as it is).
pub fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

pub fn open_store_at(path: &std::path::Path, mode: Open) -> anyhow::Result<SqliteStore> {
    let path = path.to_path_buf();
    if mode == Open::Existing && !path.exists() {
        anyhow::bail!("no database at {} (ingest something first, or pass --db / --config)", path.display());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        private_dir(parent)?;
    }
    SqliteStore::open(&path).with_context(|| format!("opening database {}", path.display()))
}

pub fn pipeline_config(
    workers: Option<usize>,
    filter: Option<Arc<::ingest::filter::EventFilter>>,
    read_limits: model::ReadLimits,
) -> ::ingest::PipelineConfig {
    let mut config = ::ingest::PipelineConfig { filter, read_limits, ..Default::default() };
    if let Some(w) = workers.filter(|w| *w > 0) {
        config.workers = w;
        config.inflight_objects = w * 8;
    }
    config
}

pub use model::timefmt::now_millis;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
