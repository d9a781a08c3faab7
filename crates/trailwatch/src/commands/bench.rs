//! `trailwatch bench ingest`: full ingest vs. gunzip+parse alone, and full ingest with every
//! rule on vs. off, same files, same run.

use std::time::Instant;

use anyhow::{bail, Context};
use ingest::sources::local::{discover, ingest_files, LocalFile, LocalReport};
use ingest::DiscardWriter;
use serde_json::json;
use store::{SqliteStore, Store};

use super::{pipeline_config, thousands};
use crate::cli::BenchIngestArgs;
use crate::output::Format;

struct Stage {
    seconds: f64,
    report: LocalReport,
}

impl Stage {
    fn events_per_sec(&self) -> f64 {
        self.report.records as f64 / self.seconds
    }
    fn mb_per_sec(&self, bytes: u64) -> f64 {
        bytes as f64 / 1e6 / self.seconds
    }
}

pub fn run(args: BenchIngestArgs) -> anyhow::Result<()> {
    let files = discover(&args.local)?.logs;
    if files.is_empty() {
        bail!("no log files under {}", args.local.display());
    }
    // Read everything once so both stages start from a warm page cache.
    for f in &files {
        std::fs::read(&f.path).with_context(|| format!("reading {}", f.path.display()))?;
    }
    let runs = args.runs.max(1);
    let settings = crate::config::DetectionConfig {
        rules: args.rules.clone(),
        builtin: !args.no_builtin,
        new_region_learning_ms: if args.no_builtin { None } else { Some(7 * 86_400_000) },
        ..Default::default()
    };
    let rules = crate::detection_setup::load_rules(&settings);
    let mut parse = Vec::new();
    let mut full = Vec::new();
    let mut detecting = Vec::new();
    for _ in 0..runs {
        parse.push(parse_only(&files, args.workers)?);
        full.push(full_ingest(&files, args.workers, None)?);
        detecting.push(full_ingest(&files, args.workers, Some((rules.clone(), settings.clone())))?);
    }
    let (parse, full, detecting) = (median(parse), median(full), median(detecting));
    let rules_ratio = detecting.events_per_sec() / full.events_per_sec();
    if parse.report.records != full.report.records || !full.report.quarantined.is_empty() {
        bail!(
            "the stages disagree ({} vs {} records, {} quarantined): benchmark a clean tree",
            parse.report.records,
            full.report.records,
            full.report.quarantined.len()
        );
    }
    let ratio = full.events_per_sec() / parse.events_per_sec();
    let rss = peak_rss_mb();
    let (gz, json_bytes) = (parse.report.object_bytes, parse.report.content_bytes);
    match args.format {
        Format::Json | Format::Jsonl => {
            let stage = |s: &Stage| {
                json!({"seconds": s.seconds, "events_per_sec": s.events_per_sec(),
                       "mb_per_sec_compressed": s.mb_per_sec(gz), "mb_per_sec_json": s.mb_per_sec(json_bytes)})
            };
            println!(
                "{}",
                json!({"files": files.len(), "events": parse.report.records, "compressed_bytes": gz, "json_bytes": json_bytes,
                       "runs": runs, "parse": stage(&parse), "ingest": stage(&full), "ratio": ratio,
                       "ingest_with_rules": stage(&detecting), "rules": rules.rules.len() + rules.correlations.len(),
                       "hits": detecting.report.hits, "rules_ratio": rules_ratio, "peak_rss_mb": rss})
            );
        }
        _ => {
            println!(
                "{} files, {} events, {:.1} MB gzip, {:.1} MB JSON; median of {runs} runs",
                files.len(),
                thousands(parse.report.records),
                gz as f64 / 1e6,
                json_bytes as f64 / 1e6
            );
            println!("{:<22}{:>14}{:>14}{:>14}{:>10}", "stage", "events/s", "MB/s gzip", "MB/s JSON", "seconds");
            let with_rules = format!("+ {} rules", rules.rules.len() + rules.correlations.len());
            for (name, s) in
                [("gunzip+parse", &parse), ("ingest into SQLite", &full), (with_rules.as_str(), &detecting)]
            {
                println!(
                    "{name:<22}{:>14}{:>14.1}{:>14.1}{:>10.2}",
                    thousands(s.events_per_sec() as u64),
                    s.mb_per_sec(gz),
                    s.mb_per_sec(json_bytes),
                    s.seconds
                );
            }
            println!("ingest / parse ratio: {ratio:.2}");
            println!("ingest with rules / without: {rules_ratio:.2} ({} matches)", thousands(detecting.report.hits));
            if let Some(rss) = rss {
                println!("peak RSS: {rss:.0} MB");
            }
        }
    }
    Ok(())
}

fn parse_only(files: &[LocalFile], workers: Option<usize>) -> anyhow::Result<Stage> {
    let started = Instant::now();
    let report = ingest_files(
        files.to_vec(),
        Box::new(DiscardWriter::default()),
        pipeline_config(workers, None, Default::default()),
        None,
    )?;
    Ok(Stage { seconds: started.elapsed().as_secs_f64(), report })
}

fn full_ingest(
    files: &[LocalFile],
    workers: Option<usize>,
    rules: Option<(std::sync::Arc<detect::RuleSet>, crate::config::DetectionConfig)>,
) -> anyhow::Result<Stage> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let store = Store::from(SqliteStore::open(dir.path().join("bench.db"))?);
    let detection = match rules {
        Some((r, settings)) => {
            Some(crate::detection_setup::for_pipeline(&store, &settings, r, store::AlertPolicy::default())?)
        }
        None => None,
    };
    let started = Instant::now();
    let report =
        ingest_files(files.to_vec(), store.writer()?, pipeline_config(workers, None, Default::default()), detection)?;
    Ok(Stage { seconds: started.elapsed().as_secs_f64(), report })
}

fn median(mut stages: Vec<Stage>) -> Stage {
    stages.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let mid = stages.len() / 2;
    stages.swap_remove(mid)
}

/// Peak resident set size of this process (Linux `VmHWM`), in MB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
