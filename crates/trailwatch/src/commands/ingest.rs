//! `trailwatch ingest --local DIR`.

use std::time::Instant;

use anyhow::bail;
use serde_json::json;

use super::{open_store, pipeline_config, thousands, Open};
use crate::cli::IngestArgs;
use crate::output::{terminal_safe, Format};

pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    if !args.local.is_dir() {
        bail!("{} is not a directory", args.local.display());
    }
    let store = open_store(&args.store, Open::Create)?;
    let started = Instant::now();
    let detection = crate::detection_setup::for_store_args(&args.store, &store, args.no_detection)?;
    let config = super::selected_config(&args.store)?;
    let limits = config.as_ref().map(|c| c.read_limits).unwrap_or_default();
    let filter = config.and_then(|c| c.filter);
    let filtering = filter.is_some();
    let report = ingest::sources::local::ingest_dir(
        &args.local,
        &store,
        pipeline_config(args.workers, filter, limits),
        detection,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let mut counts = json!({
        "files": report.files,
        "records": report.records,
        "new": report.counts.new,
        "duplicates": report.counts.duplicates,
        "quarantined": report.quarantined.len(),
    });
    // Only with filters configured: the contract's five keys stay as they are otherwise.
    if filtering {
        counts["filtered"] = json!(report.filtered);
    }
    match args.format {
        Format::Json | Format::Jsonl => println!("{counts}"),
        Format::Tsv => println!(
            "{}\t{}\t{}\t{}\t{}",
            report.files,
            report.records,
            report.counts.new,
            report.counts.duplicates,
            report.quarantined.len()
        ),
        Format::Table => {
            println!(
                "ingested {} files in {seconds:.1}s: {} records, {} new, {} duplicates, {} quarantined",
                thousands(report.files),
                thousands(report.records),
                thousands(report.counts.new),
                thousands(report.counts.duplicates),
                report.quarantined.len()
            );
            if filtering {
                println!("filters dropped {} records before storage", thousands(report.filtered));
            }
            if report.hits > 0 {
                println!(
                    "detection: {} rule matches, {} new alerts (trailwatch alerts list)",
                    thousands(report.hits),
                    thousands(report.alerts_opened)
                );
            }
            if report.already_ingested > 0 {
                println!("skipped {} files already in the ledger", thousands(report.already_ingested));
            }
            for (key, reason, detail) in &report.quarantined {
                println!("quarantined {}: {reason}: {}", terminal_safe(key), terminal_safe(detail));
            }
        }
    }
    if !report.failed.is_empty() {
        for (key, detail) in &report.failed {
            eprintln!("trailwatch: could not read {}: {}", terminal_safe(key), terminal_safe(detail));
        }
        bail!(
            "{} files could not be read; they were not recorded and will be retried on the next run",
            report.failed.len()
        );
    }
    Ok(())
}
