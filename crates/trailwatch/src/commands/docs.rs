//! `trailwatch completions`, `trailwatch man`, `trailwatch config check`: what an operator
//! installs beside the binary, generated from the CLI definition itself.

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ConfigCheckArgs, ManArgs};

pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "trailwatch", &mut std::io::stdout());
    Ok(())
}

pub fn man(args: ManArgs) -> anyhow::Result<()> {
    let cmd = Cli::command();
    let Some(dir) = args.out else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // trailwatch.1, then trailwatch-<command>.1 (and trailwatch-<command>-<sub>.1) for every
    // command, so `man trailwatch-serve` works.
    clap_mangen::generate_to(cmd, &dir).with_context(|| format!("writing man pages to {}", dir.display()))?;
    let pages = std::fs::read_dir(&dir)?
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "1")))
        .count();
    eprintln!("trailwatch man: {pages} pages in {}", dir.display());
    Ok(())
}

pub fn config_check(args: ConfigCheckArgs) -> anyhow::Result<()> {
    let config = super::load_config(&args.config)?;
    let store = match &config.store {
        crate::config::StoreConfig::Sqlite { path } => format!("SQLite {}", path.display()),
        crate::config::StoreConfig::ScaleOut { clickhouse_url, postgres_url } => {
            format!("ClickHouse {} + PostgreSQL {}", super::redact(clickhouse_url), super::redact(postgres_url))
        }
    };
    println!(
        "{}: valid — store {store}; {} accounts; {} sinks; {} forwarders; {} ingest filter rules; retention {}; web {}",
        args.config.display(),
        config.accounts.len(),
        config.sinks.len(),
        config.forward.len(),
        config.filter.as_ref().map_or(0, |f| f.specs().len()),
        config.retention.as_ref().map_or_else(|| "forever".to_string(), |r| crate::retention::describe(&r.policy)),
        config.web_listen,
    );
    Ok(())
}
