//! `trailwatch backup` and `trailwatch restore`: the embedded store to a file and back.

use anyhow::{bail, Context};

use super::{open_store_at, store_target, Open};
use crate::cli::{BackupArgs, RestoreArgs};
use crate::config::StoreConfig;
use crate::output::Format;

const SCALE_OUT: &str = "the scale-out store is backed up with its servers' tools: ClickHouse with \
    clickhouse-backup or ALTER TABLE … FREEZE, PostgreSQL with pg_dump (see the README, \"Backup and restore\")";

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let StoreConfig::Sqlite { path } = store_target(&args.store)? else { bail!(SCALE_OUT) };
    if args.to.exists() {
        bail!("{} exists; backups never overwrite (choose a new name)", args.to.display());
    }
    let store = open_store_at(&path, Open::Existing)?;
    let started = std::time::Instant::now();
    // Written beside the target and renamed when complete: a file at the name is a whole backup.
    let partial = args.to.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let bytes =
        store.backup_to(&partial).with_context(|| format!("backing up {} to {}", path.display(), partial.display()));
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &args.to)
        .with_context(|| format!("renaming {} to {}", partial.display(), args.to.display()))?;
    let copy = store::SqliteStore::open(&args.to).with_context(|| format!("reading back {}", args.to.display()))?;
    let stats = copy.stats()?;
    let seconds = started.elapsed().as_secs_f64();
    match args.format {
        Format::Json | Format::Jsonl => println!(
            "{}",
            serde_json::json!({"file": args.to, "bytes": bytes, "events": stats.events, "objects": stats.objects_committed, "seconds": seconds})
        ),
        _ => eprintln!(
            "trailwatch backup: {} events, {} objects → {} ({}) in {seconds:.1} s",
            super::thousands(stats.events),
            super::thousands(stats.objects_committed),
            args.to.display(),
            web::html::bytes(bytes)
        ),
    }
    Ok(())
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let StoreConfig::Sqlite { path } = store_target(&args.store)? else { bail!(SCALE_OUT) };
    if !args.from.is_file() {
        bail!("no backup at {}", args.from.display());
    }
    let store = open_store_at(&path, Open::Create)?;
    let existing = store.stats()?;
    if existing.events + existing.objects_committed > 0 && !args.force {
        bail!(
            "{} already holds {} events; pass --force to replace them with the backup",
            path.display(),
            existing.events
        );
    }
    store
        .restore_from(&args.from)
        .with_context(|| format!("restoring {} into {}", args.from.display(), path.display()))?;
    let stats = store.stats()?;
    eprintln!(
        "trailwatch restore: {} now holds the backup: {} events, {} objects",
        path.display(),
        super::thousands(stats.events),
        super::thousands(stats.objects_committed)
    );
    Ok(())
}
