//! `trailwatch retention`: apply the retention policy once, now.

use anyhow::{bail, Context};

use super::{open_store, selected_config, Open};
use crate::cli::RetentionArgs;
use crate::config::EVENT_CATEGORIES;
use crate::output::Format;

pub fn run(args: RetentionArgs) -> anyhow::Result<()> {
    let mut policy = store::RetentionPolicy::default();
    if args.days.is_none() && args.category.is_empty() {
        let config = selected_config(&args.store)?;
        match config.and_then(|c| c.retention) {
            Some(settings) => policy = settings.policy,
            None => {
                bail!("no retention policy: pass --days / --category, or set [retention] days in the configuration")
            }
        }
    } else {
        anyhow::ensure!(args.days != Some(0), "--days must be at least 1");
        policy.days = args.days;
        for c in &args.category {
            let (name, days) =
                c.split_once('=').with_context(|| format!("--category {c:?}: expected CATEGORY=DAYS"))?;
            if !EVENT_CATEGORIES.contains(&name) {
                bail!("--category {c:?}: {name} is not one of {}", EVENT_CATEGORIES.join(", "));
            }
            let days: u32 = days
                .parse()
                .ok()
                .filter(|d| *d > 0)
                .with_context(|| format!("--category {c:?}: days must be a whole number ≥ 1"))?;
            policy.categories.insert(name.to_string(), days);
        }
    }
    let store = open_store(&args.store, Open::Existing)?;
    let before = store.events().storage()?;
    let started = std::time::Instant::now();
    let report = store::retention::run_pass(
        store.events(),
        &policy,
        model::timefmt::now_millis(),
        crate::retention::SLICE_BLOCKS,
        crate::retention::SLICE_PAUSE,
        &|| false,
    )?;
    let after = store.events().storage()?;
    let json = serde_json::json!({
        "policy": crate::retention::describe(&policy),
        "events_deleted": report.events_deleted,
        "events_kept_for_alerts": report.events_kept_for_alerts,
        "units_dropped": report.units_dropped,
        "units_rewritten": report.units_rewritten,
        "ledger_rows_deleted": report.ledger_rows_deleted,
        "bytes_before": before.bytes,
        "bytes_after": after.bytes,
        "free_bytes": after.free_bytes,
        "seconds": started.elapsed().as_secs_f64(),
    });
    match args.format {
        Format::Json | Format::Jsonl => println!("{json}"),
        Format::Tsv => println!(
            "{}\t{}\t{}\t{}",
            report.events_deleted, report.events_kept_for_alerts, report.ledger_rows_deleted, after.bytes
        ),
        Format::Table => println!(
            "retention ({}): deleted {} events, kept {} expired events that alerts refer to, dropped {} ledger rows; store {} → {} ({} free for reuse)",
            crate::retention::describe(&policy),
            super::thousands(report.events_deleted),
            super::thousands(report.events_kept_for_alerts),
            super::thousands(report.ledger_rows_deleted),
            web::html::bytes(before.bytes),
            web::html::bytes(after.bytes),
            web::html::bytes(after.free_bytes),
        ),
    }
    Ok(())
}
