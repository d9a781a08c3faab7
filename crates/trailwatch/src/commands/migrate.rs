//! `trailwatch migrate --from sqlite:PATH --to clickhouse:URL --state postgres://…`: copies an
//! embedded installation into the scale-out stores, then checks that the event counts agree.

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::json;

use super::{redact, thousands};
use crate::cli::MigrateArgs;
use crate::output::Format;

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    if let (Some(clickhouse), Some(path)) = (args.from.strip_prefix("clickhouse:"), args.to.strip_prefix("sqlite:")) {
        return back_to_sqlite(&args, clickhouse, PathBuf::from(path));
    }
    let Some(path) = args.from.strip_prefix("sqlite:") else {
        bail!("--from {:?}: expected sqlite:PATH (the store to copy)", args.from);
    };
    let Some(clickhouse) = args.to.strip_prefix("clickhouse:") else {
        bail!("--to {:?}: expected clickhouse:URL (e.g. clickhouse:http://127.0.0.1:8123/trailwatch)", args.to);
    };
    let state = state_url(&args.state)?;
    let path = PathBuf::from(path);
    if !path.exists() {
        bail!("--from: no SQLite store at {}", path.display());
    }
    let source = store::SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let before = source.stats()?;
    drop(source);
    let target = store::ScaleOutStore::open(clickhouse, &state).with_context(|| {
        format!("opening the scale-out store (ClickHouse {}, PostgreSQL {})", redact(clickhouse), redact(&state))
    })?;
    let started = std::time::Instant::now();
    let interactive = args.format == Format::Table;
    let report = store::migrate::sqlite_to_scaleout(&path, &target, &mut |n| {
        if interactive && n > 0 {
            eprintln!("  {} of {} events copied", thousands(n), thousands(before.events));
        }
    })
    .context("migrating")?;
    let after = target.store().stats()?;
    if after.events != before.events {
        bail!(
            "after the copy the scale-out store holds {} events, the source {}: run migrate again; if it persists, \
             the target held other events before",
            after.events,
            before.events
        );
    }
    match args.format {
        Format::Table => {
            println!(
                "migrated {} events and {} ledger rows in {:.1}s from {} to ClickHouse {} + PostgreSQL {}",
                thousands(report.events),
                thousands(report.tables.first().map_or(0, |t| t.1)),
                started.elapsed().as_secs_f64(),
                path.display(),
                redact(clickhouse),
                redact(&state)
            );
            for (table, n) in &report.tables {
                if *n > 0 && *table != "objects" {
                    println!("  {table}: {}", thousands(*n));
                }
            }
        }
        _ => println!(
            "{}",
            json!({"events": report.events, "tables": report.tables.iter().map(|(t, n)| json!({"table": t, "rows": n})).collect::<Vec<_>>(),
                   "seconds": started.elapsed().as_secs_f64()})
        ),
    }
    Ok(())
}

fn state_url(arg: &str) -> anyhow::Result<String> {
    let state = arg
        .strip_prefix("postgres:")
        .filter(|s| s.starts_with("//"))
        .map_or(arg.to_string(), |s| format!("postgres:{s}"));
    if !(state.starts_with("postgres://") || state.starts_with("postgresql://")) {
        bail!("--state {:?}: expected a postgres:// URL", redact(&state));
    }
    Ok(state)
}

/// `--from clickhouse:URL --state postgres://… --to sqlite:PATH`: the scale-out store copied
/// into a new SQLite file.
fn back_to_sqlite(args: &MigrateArgs, clickhouse: &str, path: PathBuf) -> anyhow::Result<()> {
    let state = state_url(&args.state)?;
    if path.exists() && store::SqliteStore::open(&path)?.stats()?.events > 0 {
        bail!("--to: {} already holds events; migrate into a new file", path.display());
    }
    let source = store::ScaleOutStore::open(clickhouse, &state).with_context(|| {
        format!("opening the scale-out store (ClickHouse {}, PostgreSQL {})", redact(clickhouse), redact(&state))
    })?;
    let before = source.store().stats()?;
    let started = std::time::Instant::now();
    let interactive = args.format == Format::Table;
    let report = store::migrate::scaleout_to_sqlite(&source, &path, &mut |n| {
        if interactive && n > 0 {
            eprintln!("  {} of {} events copied", thousands(n), thousands(before.events));
        }
    })
    .context("migrating")?;
    let after = store::SqliteStore::open(&path)?.stats()?;
    if after.events != before.events {
        bail!("after the copy {} holds {} events, the scale-out store {}", path.display(), after.events, before.events);
    }
    let seconds = started.elapsed().as_secs_f64();
    match args.format {
        Format::Table => println!(
            "migrated {} events and the state tables in {seconds:.1}s from ClickHouse {} + PostgreSQL {} to {}",
            thousands(report.events),
            redact(clickhouse),
            redact(&state),
            path.display()
        ),
        _ => println!(
            "{}",
            json!({"events": report.events, "tables": report.tables.iter().map(|(t, n)| json!({"table": t, "rows": n})).collect::<Vec<_>>(), "seconds": seconds})
        ),
    }
    Ok(())
}
