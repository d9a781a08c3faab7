//! One module per subcommand; each exposes `run(args) -> anyhow::Result<()>`.

pub mod alerts;
pub mod backfill;
pub mod bench;
pub mod bench_web;
pub mod demo;
pub mod doctor;
pub mod ingest;
pub mod quarantine;
pub mod rules;
pub mod search;
pub mod serve;
pub mod setup;
pub mod simulate;
pub mod status;
pub mod user;
pub mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use store::SqliteStore;

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

/// The SQLite file the arguments select: `--db`, else `--config`'s store, else
/// `TRAILWATCH_STORE_PATH`, else `./trailwatch.db`.
pub fn store_path(args: &StoreArgs) -> anyhow::Result<PathBuf> {
    match (&args.db, selected_config(args)?) {
        (Some(db), _) => Ok(db.clone()),
        (None, config) => {
            let StoreConfig::Sqlite { path } = config.expect("selected whenever --db is not").store;
            Ok(path)
        }
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

pub fn open_store(args: &StoreArgs, mode: Open) -> anyhow::Result<SqliteStore> {
    open_store_at(&store_path(args)?, mode)
}

/// Loads a configuration file with the process's `TRAILWATCH_*` overrides.
pub fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    Config::load(path, &env)
}

pub fn open_store_at(path: &std::path::Path, mode: Open) -> anyhow::Result<SqliteStore> {
    let path = path.to_path_buf();
    if mode == Open::Existing && !path.exists() {
        anyhow::bail!("no database at {} (ingest something first, or pass --db / --config)", path.display());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    SqliteStore::open(&path).with_context(|| format!("opening database {}", path.display()))
}

pub fn pipeline_config(workers: Option<usize>) -> ::ingest::PipelineConfig {
    let mut config = ::ingest::PipelineConfig::default();
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
