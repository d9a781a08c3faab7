//! `trailwatch backfill --config FILE --account NAME --since T [--until T] [--region R]...`

use anyhow::Context;
use serde_json::json;

use super::{load_config, now_millis, open_target, pipeline_config, thousands, Open};
use crate::cli::{parse_time, BackfillArgs};
use crate::output::{terminal_safe, Format};

pub fn run(args: BackfillArgs) -> anyhow::Result<()> {
    let config = load_config(&args.config)?;
    let spec = config.account(&args.account)?.clone();
    let now = now_millis();
    let since = parse_time(&args.since, now, false).context("--since")?;
    let until = match &args.until {
        Some(u) => parse_time(u, now, true).context("--until")?,
        None => now,
    };
    if until < since {
        anyhow::bail!("--until is before --since");
    }
    if let Some(r) = args.regions.iter().find(|r| !model::key::is_region(r)) {
        anyhow::bail!("--region {r:?} is not a region name");
    }
    let store = open_target(&config.store, Open::Create)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let request = aws::backfill::BackfillRequest {
        regions: args.regions.clone(),
        since,
        until,
        fetch_concurrency: config.consumer.fetch_concurrency,
    };
    let detection =
        crate::detection_setup::for_config(&store, &config, crate::detection_setup::load_rules(&config.detection))?;
    let started = std::time::Instant::now();
    let report = runtime.block_on(async {
        let base = aws::account::base_config(&config.aws).await;
        let clients = aws::account::connect(&base, &config.aws, &spec).await?;
        anyhow::Ok(
            aws::backfill::backfill(
                &clients,
                store,
                ingest::PipelineSpec {
                    config: pipeline_config(config.workers, config.filter.clone(), config.read_limits),
                    detection: Some(detection),
                },
                &request,
            )
            .await?,
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();
    match args.format {
        Format::Json | Format::Jsonl => println!(
            "{}",
            json!({
                "regions": report.regions, "prefixes": report.prefixes, "in_range": report.in_range,
                "already_ingested": report.already_ingested, "files": report.committed, "records": report.records,
                "new": report.counts.new, "duplicates": report.counts.duplicates,
                "quarantined": report.quarantined.len(), "failed": report.failed.len(),
            })
        ),
        _ => {
            println!(
                "backfill of {} ({}) in {seconds:.1}s: {} files in range, {} already ingested, {} ingested: {} records, {} new, {} duplicates",
                terminal_safe(&spec.name),
                report.regions.join(", "),
                thousands(report.in_range),
                thousands(report.already_ingested),
                thousands(report.committed),
                thousands(report.records),
                thousands(report.counts.new),
                thousands(report.counts.duplicates),
            );
            for (key, why) in &report.quarantined {
                println!("quarantined {}: {}", terminal_safe(key), terminal_safe(why));
            }
        }
    }
    for (key, why) in &report.failed {
        eprintln!("trailwatch: could not read {}: {}", terminal_safe(key), terminal_safe(why));
    }
    if !report.failed.is_empty() {
        anyhow::bail!("{} objects could not be read; run the backfill again to retry them", report.failed.len());
    }
    Ok(())
}
