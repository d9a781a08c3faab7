//! `trailwatch demo`: simulate a realistic trail with attack scenarios, ingest it, and show
//! what trailwatch makes of it.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use model::timefmt::format_millis;
use sim::{Scenario, SimConfig, Tamper};
use store::{Dimension, EventQuery, SqliteStore, Store};

use super::{now_millis, pipeline_config, thousands};
use crate::cli::DemoArgs;
use crate::output::terminal_safe;

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    // Before anything slow: the demo serves a real login on a real port.
    if let Some(pw) = &args.admin_password {
        web::auth::check_new_password(pw).map_err(|e| anyhow::anyhow!("--admin-password: {e}"))?;
    }
    let dir = &args.data_dir;
    super::private_dir(dir)?;
    let bucket = dir.join("bucket");
    let db = dir.join("trailwatch.db");

    let manifest_path = bucket.join("manifest.json");
    if manifest_path.exists() {
        println!("reusing the simulated bucket in {}", bucket.display());
    } else {
        // 24 hours ending two hours ago: the data looks current, and the last hour's digests
        // (which CloudTrail delivers up to an hour later) are in the bucket.
        let now = now_millis();
        let start = (now - 26 * 3_600_000).div_euclid(3_600_000) * 3_600_000;
        let config = SimConfig {
            events: args.events,
            seed: args.seed,
            start,
            scenarios: Scenario::ALL.to_vec(),
            // Signed digest chains, and someone covering their tracks in the first account.
            digests: true,
            tampers: DEMO_TAMPERS.to_vec(),
            ..Default::default()
        };
        let started = Instant::now();
        let m = sim::simulate(&config, &bucket).context("simulating the demo trail")?;
        println!(
            "simulated {} accounts × {} regions, 24 h of CloudTrail: {} files, {} records, {} scenarios ({:.1}s)",
            m.accounts.len(),
            m.regions.len(),
            thousands(m.files.len() as u64),
            thousands(m.records),
            m.scenarios.len(),
            started.elapsed().as_secs_f64()
        );
    }

    let store = Store::from(SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?);
    let started = Instant::now();
    let settings = crate::config::DetectionConfig::default();
    let rules = crate::detection_setup::load_rules(&settings);
    let detection = crate::detection_setup::for_pipeline(&store, &settings, rules, store::AlertPolicy::default())?;
    let report = ingest::sources::local::ingest_dir(
        &bucket,
        &store,
        pipeline_config(None, None, Default::default()),
        Some(detection),
    )?;
    println!(
        "ingested {} new files ({} events, {} duplicates, {} quarantined) in {:.1}s; {} already in the ledger",
        thousands(report.files),
        thousands(report.counts.new),
        thousands(report.counts.duplicates),
        report.quarantined.len(),
        started.elapsed().as_secs_f64(),
        thousands(report.already_ingested)
    );
    integrity(&store, &bucket)?;
    let names = account_names(&manifest_path)?;
    record_integrations(&store, &names)?;
    summarise(&store, &manifest_path, &names, &db)?;
    if args.no_serve {
        return Ok(());
    }
    serve_dashboard(store, &args, names)
}

/// The simulated accounts' names by id, from the simulator's manifest.
fn account_names(manifest_path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest_path)?)?;
    Ok(manifest["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["id"].as_str()?.to_owned(), a["name"].as_str()?.to_owned())))
        .collect())
}

/// The demo's delivery, as `serve` would have recorded it for each simulated account and
/// region: the bucket was read just now and holds events up to the newest one.
fn record_integrations(store: &Store, names: &HashMap<String, String>) -> anyhow::Result<()> {
    let now = now_millis();
    for (id, name) in names {
        let q = EventQuery { account: Some(id.clone()), ..Default::default() };
        let spec = store::SummarySpec { tops: vec![Dimension::Region], top_n: 100, ..Default::default() };
        for (region, events) in store.events().summarize(&q, &spec)?.top(Dimension::Region) {
            let rq = EventQuery {
                account: Some(id.clone()),
                region: Some(region.clone()),
                limit: Some(1),
                ..Default::default()
            };
            let newest = store.events().search(&rq)?.first().map(|r| r.event_time);
            store.state().put_integration_status(&store::IntegrationStatus {
                account: name.clone(),
                region: region.clone(),
                last_notification: Some(now),
                last_object: Some(now),
                newest_event: newest,
                notifications: 1,
                objects: 1,
                events: *events,
                updated_at: now,
                ..Default::default()
            })?;
        }
    }
    Ok(())
}

/// Serves the dashboard over the demo's store until Ctrl-C.
fn serve_dashboard(store: Store, args: &DemoArgs, names: HashMap<String, String>) -> anyhow::Result<()> {
    // The demo prints a working login every time: admin's password is (re)set on each run.
    let password = args.admin_password.clone().unwrap_or_else(web::auth::generate_password);
    let admin = web::auth::new_user("admin", store::Role::Admin, &password, now_millis())?;
    store.state().put_user(&admin)?;
    let (rules, errors) = crate::detection_setup::load_rules_reporting(&crate::config::DetectionConfig::default());
    let site = crate::dashboard::site_info(&[], &rules, &errors, names, &Default::default());
    crate::dashboard::register_metrics(telemetry::global());
    let listen = format!("{}:{}", args.bind, args.port);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = crate::dashboard::bind(&listen).await?;
        println!("\ndashboard: {}", crate::dashboard::url(&listen, false));
        println!("login:     admin / {password}");
        println!("(Ctrl-C stops the server)");
        let state = web::WebState::new(store, site);
        crate::dashboard::serve(listener, state, axum::Router::new(), None, web::DEFAULT_MAX_CONNECTIONS, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
}

/// What `simulate` does to the demo's digested record (each is found by validation).
const DEMO_TAMPERS: [Tamper; 4] =
    [Tamper::LogModified, Tamper::LogDeleted, Tamper::DigestDeleted, Tamper::ValidationPaused];

/// Validates the simulated bucket against its digests and records the findings (and their
/// alerts) as continuous validation would.
fn integrity(store: &Store, bucket: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let keys = integrity::PublicKeys::read(&bucket.join(sim::digests::KEYS_FILE)).map_err(anyhow::Error::msg)?;
    let report = integrity::validate_local(bucket, &keys, &integrity::Options::default())?;
    let recorded = integrity::record::record(store, "demo", &report, &store::AlertPolicy::default(), now_millis())?;
    println!(
        "validated {} digests and {} log files against their signatures in {:.1}s: {}, {} findings ({} new)",
        thousands(report.digests as u64),
        thousands(report.logs as u64),
        started.elapsed().as_secs_f64(),
        if report.valid() { "VALID" } else { "INVALID" },
        report.findings.len(),
        recorded.new_findings.len()
    );
    Ok(())
}

fn summarise(store: &Store, manifest_path: &Path, names: &HashMap<String, String>, db: &Path) -> anyhow::Result<()> {
    let stats = store.stats()?;
    let all = EventQuery::default();
    println!();
    println!(
        "{} events from {} principals, {} to {}",
        thousands(stats.events),
        thousands(stats.principals),
        stats.oldest_event.map(format_millis).unwrap_or_default(),
        stats.newest_event.map(format_millis).unwrap_or_default()
    );
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest_path)?)?;
    section("accounts", store.events().top(Dimension::Account, &all, 10)?, |v| {
        format!("{v} ({})", names.get(v).map_or("?", String::as_str))
    });
    section("regions", store.events().top(Dimension::Region, &all, 10)?, str::to_string);
    section("busiest calls", store.events().top(Dimension::EventName, &all, 8)?, str::to_string);
    section("most active principals", store.events().top(Dimension::Principal, &all, 6)?, str::to_string);
    let errors = EventQuery { errors: true, ..Default::default() };
    section("failed calls", store.events().top(Dimension::ErrorCode, &errors, 5)?, str::to_string);

    println!("\nwhat the attack and tamper scenarios left in the record:");
    for s in manifest["scenarios"].as_array().into_iter().flatten() {
        let ids: Vec<&str> = s["eventIds"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
        let mut found = Vec::new();
        for id in &ids {
            if let Some(row) = store.events().event(id)? {
                found.push(row);
            }
        }
        println!(
            "\n  {} — {} ({} of {} events stored)",
            s["name"].as_str().unwrap_or(""),
            s["description"].as_str().unwrap_or(""),
            found.len(),
            ids.len()
        );
        for row in found.iter().take(4) {
            println!(
                "    {}  {:<30} by {} from {}",
                format_millis(row.event_time),
                terminal_safe(row.event_name.as_deref().unwrap_or("-")),
                terminal_safe(&row.principal),
                terminal_safe(row.source_ip.as_deref().unwrap_or("-"))
            );
        }
        if found.len() > 4 {
            println!("    … and {} more", found.len() - 4);
        }
    }
    let all_alerts = store.state().alerts(&store::AlertFilter::default())?.len();
    let alerts = store.state().alerts(&store::AlertFilter {
        limit: 15,
        min_level: Some("medium".into()),
        ..Default::default()
    })?;
    println!(
        "\n{all_alerts} alerts raised by detection and integrity validation; medium and above, newest first ({} shown):",
        alerts.len()
    );
    for a in &alerts {
        println!(
            "  #{:<4} {:<9} {:<52} {} × {} from {}",
            a.id,
            a.level,
            terminal_safe(&a.title),
            a.count,
            terminal_safe(&a.subject.principal),
            terminal_safe(a.subject.source_ip.as_deref().unwrap_or("-"))
        );
    }
    let findings = store.state().integrity_findings()?;
    if !findings.is_empty() {
        println!(
            "\nintegrity findings (trailwatch validate --local {}/bucket --public-keys …):",
            db.parent().map(|p| p.display().to_string()).unwrap_or_default()
        );
        let mut shown = std::collections::BTreeSet::new();
        for f in findings.iter().filter(|f| shown.insert(f.kind.clone())) {
            let n = findings.iter().filter(|x| x.kind == f.kind).count();
            println!("  {:<24} {:>4}  e.g. {}", f.kind, n, terminal_safe(&f.key));
            println!("  {:<24}       {}", "", terminal_safe(&f.detail));
        }
    }
    let db = db.display();
    println!("\ntry:");
    println!("  trailwatch alerts list --db {db}");
    println!("  trailwatch search --db {db} --event-name StopLogging");
    println!("  trailwatch search --db {db} --source-ip 203.0.113.7");
    println!("  trailwatch search --db {db} --principal dana@example.com --format jsonl");
    println!("  trailwatch search --db {db} --errors --since 2h --format tsv");
    Ok(())
}

fn section(title: &str, values: Vec<(String, u64)>, label: impl Fn(&str) -> String) {
    println!("\n{title}:");
    for (value, n) in values {
        println!("  {:>9}  {}", thousands(n), terminal_safe(&label(&value)));
    }
}
