//! `trailwatch bench store`: what a store of a given size answers, and how fast — the
//! figures of the scale table (README, Performance): events and bytes per event; the
//! overview for 24 h / 7 d / 30 d; a first page of search for the most, median and least
//! frequent value of each indexed column; resource history and the principal page for a
//! frequent, a median and a rare resource and principal; and, on a copy, backup and
//! retention. Ranges end at the store's newest event, not at the clock, so a simulated
//! week is measured as if it had just happened. Store calls, no HTTP: `bench web` measures
//! the pages' rendering.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use store::{Dimension, EventQuery, RetentionPolicy, SqliteStore, SummarySpec};

use crate::cli::BenchStoreArgs;
use crate::commands::{open_target, store_target, Open};
use crate::config::StoreConfig;
use crate::output::Format;

/// Milliseconds of each run of one measured query.
struct Measured {
    name: String,
    what: String,
    times: Vec<Duration>,
    rows: usize,
}

/// The `p`-quantile of `times` in milliseconds (nearest rank; `times` must not be empty).
pub(crate) fn percentile(times: &[Duration], p: f64) -> f64 {
    let mut t: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    t.sort_by(f64::total_cmp);
    let i = ((t.len() as f64 * p).ceil() as usize).clamp(1, t.len()) - 1;
    t[i]
}

fn measure(
    name: &str,
    what: &str,
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<usize>,
) -> anyhow::Result<Measured> {
    let mut times = Vec::with_capacity(runs);
    let mut rows = 0;
    for _ in 0..runs {
        let started = Instant::now();
        rows = f()?;
        times.push(started.elapsed());
    }
    Ok(Measured { name: name.into(), what: what.into(), times, rows })
}

/// The most, median and least frequent of `values` (most frequent first).
fn picks(values: &[(String, u64)]) -> Vec<(&'static str, &(String, u64))> {
    let mut out: Vec<(&'static str, &(String, u64))> = Vec::new();
    for (label, v) in [("most", values.first()), ("median", values.get(values.len() / 2)), ("least", values.last())] {
        if let Some(v) = v.filter(|v| !out.iter().any(|o| o.1 .0 == v.0)) {
            out.push((label, v));
        }
    }
    out
}

pub fn run(args: BenchStoreArgs) -> anyhow::Result<()> {
    let target = store_target(&args.store)?;
    let sqlite_path = match &target {
        StoreConfig::Sqlite { path } => Some(path.clone()),
        StoreConfig::ScaleOut { .. } => None,
    };
    if args.copy_dir.is_some() && sqlite_path.is_none() {
        anyhow::bail!(
            "--copy-dir times SQLite's backup and retention: a scale-out store is backed up with its servers' tools"
        );
    }
    let store = open_target(&target, Open::Existing)?;
    let stats = store.stats()?;
    let (Some(oldest), Some(newest)) = (stats.oldest_event, stats.newest_event) else {
        anyhow::bail!("the store holds no events: ingest some first");
    };
    let events = store.events();
    // What `serve` keeps current every few seconds (the scale-out store's hour counts),
    // brought up to date first and timed: after a bulk ingest no task has done it yet.
    let started = Instant::now();
    let hours_counted = events.refresh_counts()?;
    let counting = started.elapsed();
    let space = events.storage()?;
    let runs = args.runs.max(1);
    let mut measured: Vec<Measured> = Vec::new();

    // Overview, as the dashboard asks for it, had "now" been the newest event.
    for range in ["24h", "7d", "30d"] {
        let r = web::pages::overview::Range::parse(Some(range), newest).map_err(|e| anyhow::anyhow!(e.message))?;
        let (q, spec) = web::pages::overview::summary_query(&r, Dimension::Account);
        measured.push(measure(&format!("overview {range}"), "summary", runs, || {
            Ok(events.summarize(&q, &spec)?.events as usize)
        })?);
    }

    // Search: a first page (the dashboard's) for values of each indexed column.
    let spec = SummarySpec {
        tops: vec![Dimension::EventName, Dimension::Principal, Dimension::SourceIp, Dimension::ErrorCode],
        top_n: 1000,
        ..Default::default()
    };
    let all = events.summarize(&EventQuery::default(), &spec)?;
    let mut search_times = Vec::new();
    for (dim, values) in &all.tops {
        for (label, (value, n)) in picks(values) {
            let mut q = EventQuery { limit: Some(web::pages::events::PAGE_ROWS), ..Default::default() };
            match dim {
                Dimension::EventName => q.event_name = Some(value.clone()),
                Dimension::Principal => q.principal = Some(value.clone()),
                Dimension::SourceIp => q.source_ip = Some(value.clone()),
                Dimension::ErrorCode => q.error_code = Some(value.clone()),
                _ => continue,
            }
            let m = measure(&format!("search {} {label}", dim.as_str()), &format!("{n} events"), runs, || {
                Ok(events.search(&q)?.len())
            })?;
            search_times.extend(m.times.iter().copied());
            measured.push(m);
        }
    }

    // Principal page: the dashboard's summary of a principal and its newest events.
    for (label, (principal, n)) in picks(all.top(Dimension::Principal)) {
        let q = EventQuery { principal: Some(principal.clone()), ..Default::default() };
        let spec = SummarySpec::principal_page(86_400_000, 10);
        measured.push(measure(&format!("principal page {label}"), &format!("{n} events"), runs, || {
            let summary = events.summarize(&q, &spec)?;
            let recent = events.search(&EventQuery { limit: Some(25), ..q.clone() })?;
            Ok(summary.events as usize + recent.len())
        })?);
    }

    // Resource history: resources named by a sample of the newest events, by how often.
    let mut named: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    events.for_each_event(&EventQuery { limit: Some(args.resource_sample), ..Default::default() }, &mut |r| {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.raw) {
            for id in model::resources::identifiers(&v) {
                *named.entry(id).or_default() += 1;
            }
        }
        true
    })?;
    let mut resources: Vec<(String, u64)> = named.into_iter().collect();
    resources.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let since = newest - 30 * 86_400_000;
    let mut resource_times = Vec::new();
    for (label, (resource, _)) in picks(&resources) {
        let m = measure(&format!("resource history {label}"), resource, runs, || {
            Ok(events.resource_events(resource, since, 500)?.len())
        })?;
        resource_times.extend(m.times.iter().copied());
        measured.push(m);
    }

    // Backup, and retention of the oldest day, on the copy.
    let mut copy_figures = serde_json::Value::Null;
    if let (Some(dir), Some(db)) = (&args.copy_dir, &sqlite_path) {
        let copy = dir.join("bench-store-copy.db");
        let started = Instant::now();
        let sqlite = SqliteStore::open(db).with_context(|| format!("opening {}", db.display()))?;
        let bytes = sqlite.backup_to(&copy)?;
        let backup = started.elapsed();
        let copied = SqliteStore::open(&copy)?;
        let days = ((newest - oldest) / 86_400_000).max(1) as u32;
        let policy = RetentionPolicy { days: Some(days), ..Default::default() };
        let started = Instant::now();
        let (mut deleted, mut resume) = (0u64, None);
        loop {
            let r = store::EventStore::apply_retention(&copied, &policy, newest, resume, 256)?;
            deleted += r.events_deleted;
            resume = r.resume_after;
            if resume.is_none() {
                break;
            }
        }
        let retention = started.elapsed();
        drop(copied);
        for suffix in ["", "-wal", "-shm", "-idfilter"] {
            let mut p = copy.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        copy_figures = json!({
            "backup_seconds": backup.as_secs_f64(), "backup_bytes": bytes,
            "retention_seconds": retention.as_secs_f64(), "retention_events_deleted": deleted,
            "retention_events_per_sec": deleted as f64 / retention.as_secs_f64().max(1e-9),
        });
    }

    let bytes_per_event = space.bytes as f64 / stats.events.max(1) as f64;
    let summary = json!({
        "events": stats.events, "bytes": space.bytes, "bytes_per_event": bytes_per_event,
        "search_p50_ms": if search_times.is_empty() { 0.0 } else { percentile(&search_times, 0.5) },
        "search_p95_ms": if search_times.is_empty() { 0.0 } else { percentile(&search_times, 0.95) },
        "resource_p95_ms": if resource_times.is_empty() { 0.0 } else { percentile(&resource_times, 0.95) },
        "hours_counted_first": hours_counted, "counting_seconds": counting.as_secs_f64(),
    });
    match args.format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = measured
                .iter()
                .map(|m| {
                    json!({"name": m.name, "what": m.what, "rows": m.rows,
                           "p50_ms": percentile(&m.times, 0.5), "p95_ms": percentile(&m.times, 0.95)})
                })
                .collect();
            println!("{}", json!({"store": summary, "copy": copy_figures, "queries": rows}));
        }
        _ => {
            println!(
                "{} events, {:.1} MB, {:.0} bytes/event; ranges end at the newest event",
                stats.events,
                space.bytes as f64 / 1e6,
                bytes_per_event
            );
            if hours_counted > 0 {
                println!(
                    "first brought {hours_counted} hours of counts up to date (as serve does every 10 s): {:.1} s",
                    counting.as_secs_f64()
                );
            }
            println!("{:<28} {:>9} {:>9} {:>8}  what", "query", "p50 ms", "p95 ms", "rows");
            for m in &measured {
                println!(
                    "{:<28} {:>9.1} {:>9.1} {:>8}  {}",
                    m.name,
                    percentile(&m.times, 0.5),
                    percentile(&m.times, 0.95),
                    m.rows,
                    m.what.chars().take(60).collect::<String>()
                );
            }
            println!(
                "search (all of the above) p50 {:.1} ms, p95 {:.1} ms",
                summary["search_p50_ms"].as_f64().unwrap_or(0.0),
                summary["search_p95_ms"].as_f64().unwrap_or(0.0)
            );
            if !copy_figures.is_null() {
                println!(
                    "backup {:.1} s ({:.1} MB); retention of the oldest day on the copy: {:.1} s, {} events ({:.0}/s)",
                    copy_figures["backup_seconds"].as_f64().unwrap_or(0.0),
                    copy_figures["backup_bytes"].as_f64().unwrap_or(0.0) / 1e6,
                    copy_figures["retention_seconds"].as_f64().unwrap_or(0.0),
                    copy_figures["retention_events_deleted"],
                    copy_figures["retention_events_per_sec"].as_f64().unwrap_or(0.0)
                );
            }
        }
    }
    Ok(())
}
