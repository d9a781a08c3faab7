//! `trailwatch import`: history from export files or from an account's Event history.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{bail, Context};
use ingest::sources::import::{documents, export_records};
use ingest::sources::local::LocalReport;
use ingest::ObjectJob;
use serde_json::json;
use store::ObjectMeta;

use super::{now_millis, open_store, pipeline_config, selected_config, thousands, Open};
use crate::cli::ImportArgs;
use crate::output::Format;

/// Ledger "bucket" of imported export files and Event history pages.
const IMPORT_BUCKET: &str = "import";

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    if args.lake_export.is_empty() && !args.event_history {
        bail!("nothing to import: pass --lake-export PATH or --event-history --account NAME");
    }
    let config = selected_config(&args.store)?;
    let store = open_store(&args.store, Open::Create)?;
    let detection = crate::detection_setup::for_store_args(&args.store, &store, args.no_detection)?;
    let pipeline = pipeline_config(
        config.as_ref().and_then(|c| c.workers),
        config.as_ref().and_then(|c| c.filter.clone()),
        config.as_ref().map(|c| c.read_limits).unwrap_or_default(),
    );
    let started = std::time::Instant::now();
    let (report, fetched, skipped, already) = if args.event_history {
        let Some(config) = config else { bail!("--event-history needs --config (the account's role and regions)") };
        let name = args.account.as_deref().expect("clap requires --account");
        event_history(&config, name, args.days, &args.regions, &store, pipeline, detection)?
    } else {
        lake_exports(&args.lake_export, &store, pipeline, detection)?
    };
    let seconds = started.elapsed().as_secs_f64();
    let out = json!({
        "documents": report.files, "records": fetched, "skipped": skipped, "already_imported": already,
        "new": report.counts.new, "duplicates": report.counts.duplicates, "quarantined": report.quarantined.len(),
        "failed": report.failed.len(), "alerts_opened": report.alerts_opened,
    });
    match args.format {
        Format::Json | Format::Jsonl => println!("{out}"),
        _ => {
            println!(
                "imported {} records in {seconds:.1}s: {} new, {} already stored, {} not records (skipped), {} files imported before",
                thousands(fetched),
                thousands(report.counts.new),
                thousands(report.counts.duplicates),
                thousands(skipped),
                already
            );
            if report.alerts_opened > 0 {
                println!("detection: {} new alerts (trailwatch alerts list)", thousands(report.alerts_opened));
            }
            for (key, reason, detail) in &report.quarantined {
                println!("quarantined {key}: {reason}: {detail}");
            }
        }
    }
    if !report.failed.is_empty() {
        bail!("{} documents could not be written: {}", report.failed.len(), report.failed[0].1);
    }
    Ok(())
}

/// Export files under `paths` (files, or directories searched for *.json, *.jsonl, *.gz).
fn export_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = files_under(p);
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("{}: no such file or directory", p.display());
        }
    }
    Ok(out)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if p.is_dir() {
                stack.push(p);
            } else if [".json", ".jsonl", ".json.gz", ".jsonl.gz"].iter().any(|s| name.ends_with(s)) {
                out.push(p);
            }
        }
    }
    out
}

type Imported = (LocalReport, u64, u64, u64);

fn lake_exports(
    paths: &[PathBuf],
    store: &store::Store,
    config: ingest::PipelineConfig,
    detection: Option<ingest::Detection>,
) -> anyhow::Result<Imported> {
    let files = export_files(paths)?;
    let (mut fetched, mut skipped, mut already) = (0u64, 0u64, 0u64);
    let mut jobs = Vec::new();
    for file in files {
        let abs = std::fs::canonicalize(&file).unwrap_or(file.clone());
        let key = format!("file://{}", abs.display());
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        // Imported before (same path and size): nothing to do.
        let first = format!("{key}#1");
        if store.state().ledger_entry(IMPORT_BUCKET, &first)?.is_some_and(|e| e.size == bytes.len() as u64) {
            already += 1;
            continue;
        }
        let records = export_records(&bytes).with_context(|| format!("{}", file.display()))?;
        tracing::info!(file = %file.display(), shape = records.shape, records = records.records.len(), "export file read");
        fetched += records.records.len() as u64;
        skipped += records.skipped;
        for (i, doc) in documents(&records.records).into_iter().enumerate() {
            // The first document carries the file's size: what "imported before" compares.
            let size = if i == 0 { bytes.len() as u64 } else { doc.len() as u64 };
            let meta = ObjectMeta {
                source: "import".into(),
                bucket: IMPORT_BUCKET.into(),
                key: format!("{key}#{}", i + 1),
                size,
            };
            jobs.push(ObjectJob::in_memory(meta.clone(), doc, meta.key));
        }
    }
    let report = ingest::sources::local::ingest_jobs(jobs.into_iter(), store.writer()?, config, detection)?;
    Ok((report, fetched, skipped, already))
}

/// The ledger row that says an account's Event history was imported to the end (an empty
/// document committed after all its pages): an import cut short is done again.
fn history_marker(account: &str) -> String {
    format!("lookup-events/{account}/complete")
}

/// Whether the Event history of `account` was imported to the end before.
pub fn history_imported(store: &store::Store, account: &str) -> anyhow::Result<bool> {
    Ok(store.state().ledger_entry(IMPORT_BUCKET, &history_marker(account))?.is_some())
}

/// `serve` with `import_history_days`: each such account's history, once, beside ingest.
pub fn import_new_accounts(config: &crate::config::Config, store: store::Store) {
    for (name, days) in config.history_imports.clone() {
        match history_imported(&store, &name) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(account = %name, error = %e, "cannot tell whether the Event history was imported");
                continue;
            }
        }
        let (config, store) = (config.clone(), store.clone());
        std::thread::Builder::new()
            .name(format!("history-{name}"))
            .spawn(move || {
                let detection = crate::detection_setup::for_config(
                    &store,
                    &config,
                    crate::detection_setup::load_rules(&config.detection),
                );
                let result = detection.and_then(|d| {
                    let pipeline = pipeline_config(config.workers, config.filter.clone(), config.read_limits);
                    event_history(&config, &name, days, &[], &store, pipeline, Some(d))
                });
                match result {
                    Ok((report, fetched, ..)) => tracing::info!(account = %name, days, records = fetched,
                        new = report.counts.new, duplicates = report.counts.duplicates, "Event history imported"),
                    Err(e) => tracing::error!(account = %name, error = format!("{e:#}"),
                        "importing the Event history failed; it is tried again at the next start"),
                }
            })
            .expect("spawn the history import");
    }
}

fn event_history(
    config: &crate::config::Config,
    account: &str,
    days: u32,
    regions: &[String],
    store: &store::Store,
    pipeline: ingest::PipelineConfig,
    detection: Option<ingest::Detection>,
) -> anyhow::Result<Imported> {
    let spec = config.account(account)?.clone();
    let spec_name = spec.name.clone();
    if let Some(r) = regions.iter().find(|r| !model::key::is_region(r)) {
        bail!("--region {r:?} is not a region name");
    }
    let regions: Vec<String> = if !regions.is_empty() {
        regions.to_vec()
    } else if !spec.regions.is_empty() {
        spec.regions.clone()
    } else {
        vec![spec.home_region().to_string()]
    };
    let end = now_millis();
    let start = end - i64::from(days) * 86_400_000;
    // LookupEvents is async; the pipeline is threads: pages cross over a channel, and the
    // pipeline takes documents as they fill, so memory holds one document at a time.
    let (tx, rx) = mpsc::sync_channel::<ObjectJob<String>>(2);
    let aws_settings = config.aws.clone();
    let fetcher = std::thread::spawn(move || -> anyhow::Result<u64> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let base = aws::account::base_config(&aws_settings).await;
            let clients = aws::account::connect(&base, &aws_settings, &spec).await?;
            let mut total = 0u64;
            for region in &regions {
                let mut buffer: Vec<String> = Vec::new();
                let mut n = 0usize;
                let send = |records: &mut Vec<String>, n: &mut usize| {
                    for doc in documents(records) {
                        *n += 1;
                        let key = format!("lookup-events/{}/{region}/{start}-{end}#{n}", spec.name);
                        let meta = ObjectMeta {
                            source: "lookup-events".into(),
                            bucket: IMPORT_BUCKET.into(),
                            key: key.clone(),
                            size: doc.len() as u64,
                        };
                        if tx.send(ObjectJob::in_memory(meta, doc, key)).is_err() {
                            return;
                        }
                    }
                    records.clear();
                };
                total += aws::history::lookup_events(&clients, region, start, end, |page| {
                    buffer.extend(page);
                    if buffer.len() >= ingest::sources::import::RECORDS_PER_DOCUMENT {
                        send(&mut buffer, &mut n);
                    }
                })
                .await?;
                send(&mut buffer, &mut n);
                tracing::info!(account = %spec.name, region = %region, "event history read");
            }
            anyhow::Ok(total)
        })
    });
    let name = spec_name.clone();
    let report = ingest::sources::local::ingest_jobs(rx.into_iter(), store.writer()?, pipeline.clone(), detection)?;
    let fetched = fetcher.join().map_err(|_| anyhow::anyhow!("the LookupEvents reader panicked"))??;
    if report.failed.is_empty() {
        let marker = history_marker(&name);
        let meta =
            ObjectMeta { source: "lookup-events".into(), bucket: IMPORT_BUCKET.into(), key: marker.clone(), size: 0 };
        let job = ObjectJob::in_memory(meta, br#"{"Records":[]}"#.to_vec(), marker);
        ingest::sources::local::ingest_jobs(std::iter::once(job), store.writer()?, pipeline, None)?;
    }
    Ok((report, fetched, 0, 0))
}
