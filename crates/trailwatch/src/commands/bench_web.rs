//! `trailwatch bench web --db PATH`: the dashboard's server time over a real store.
//!
//! Requests go through the router in process (no sockets), authenticated with an API token,
//! and the answer body is read to its end: what is measured is the server's work (store
//! queries and rendering). Each search runs twice, on the store as it is and on the same
//! store told not to use postings (the time plan: blocks newest first), the baseline that
//! shows what the index buys; the overview's baseline is counting the same range with
//! `search` (rows materialised) instead of `summarize`.

use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::json;
use store::StateStore;
use store::{Dimension, EventQuery, PlanChoice, SqliteStore, Store, SummarySpec};
use tower::ServiceExt;

use crate::cli::BenchWebArgs;
use crate::output::Format;

struct Measured {
    name: String,
    times: Vec<Duration>,
}

impl Measured {
    fn pct(&self, p: f64) -> f64 {
        super::bench_store::percentile(&self.times, p)
    }
}

async fn time_get(app: &axum::Router, path: &str, token: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let req = Request::get(path).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty())?;
    let r = app.clone().oneshot(req).await?;
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), usize::MAX).await?;
    let took = started.elapsed();
    if status != StatusCode::OK {
        anyhow::bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(took)
}

pub fn run(args: BenchWebArgs) -> anyhow::Result<()> {
    let store = Store::from(SqliteStore::open(&args.db).with_context(|| format!("opening {}", args.db.display()))?);
    let stats = store.stats()?;
    if stats.events == 0 {
        anyhow::bail!("{} holds no events: ingest some first", args.db.display());
    }
    if store.state().user("bench")?.is_none() {
        store.state().put_user(&web::auth::new_user(
            "bench",
            store::Role::Viewer,
            &web::auth::generate_password(),
            0,
        )?)?;
    }
    let (token, token_id) = web::create_api_token(&store, "bench", "bench web")?;
    // Values to search for: the most and least frequent of each indexed column.
    let spec = SummarySpec {
        tops: vec![
            Dimension::EventName,
            Dimension::Principal,
            Dimension::SourceIp,
            Dimension::Account,
            Dimension::Region,
            Dimension::ErrorCode,
        ],
        top_n: 1000,
        ..Default::default()
    };
    let all = store.events().summarize(&EventQuery::default(), &spec)?;
    let mut searches: Vec<(String, String)> = Vec::new();
    for (dim, values) in &all.tops {
        let name = dim.as_str();
        let picks = [values.first(), values.get(values.len() / 2), values.last()];
        for (v, _) in picks.into_iter().flatten() {
            let path = format!("/api/v1/events?{name}={}", web::html::url_component(v));
            if !searches.iter().any(|s| s.1 == path) {
                searches.push((name.to_owned(), path));
            }
        }
    }
    searches.push(("errors".into(), "/api/v1/events?errors=true".into()));
    searches.push(("since 24h".into(), "/api/v1/events?since=24h".into()));
    let runs = args.runs.max(1);
    let db = args.db.clone();
    // The baseline: the same store without postings, or another store with the same events.
    let (baseline, base_token): (Store, String) = match &args.against {
        None => (SqliteStore::open(&db)?.with_plan(PlanChoice::Time).into(), token.clone()),
        Some(config) => {
            let config = super::load_config(config)?;
            let other = super::open_target(&config.store, super::Open::Existing)?;
            let theirs = other.stats()?.events;
            if theirs != stats.events {
                anyhow::bail!(
                    "--against holds {theirs} events, {} holds {}: compare stores of the same events",
                    args.db.display(),
                    stats.events
                );
            }
            if other.state().user("bench")?.is_none() {
                other.state().put_user(&web::auth::new_user(
                    "bench",
                    store::Role::Viewer,
                    &web::auth::generate_password(),
                    0,
                )?)?;
            }
            let (t, _) = web::create_api_token(&other, "bench", "bench web")?;
            (other, t)
        }
    };
    let baseline_name = if args.against.is_some() { "against" } else { "time plan" };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = runtime.block_on(async move {
        let indexed: Store = store;
        let app = web::router(web::WebState::new(indexed.clone(), Default::default()));
        let base = web::router(web::WebState::new(baseline, Default::default()));
        let mut out: Vec<(Measured, Option<Measured>)> = Vec::new();
        // Warm the page cache and the statement caches once.
        time_get(&app, "/?range=30d", &token).await?;
        for range in ["24h", "7d", "30d"] {
            let mut page = Measured { name: format!("overview page {range}"), times: Vec::new() };
            for _ in 0..runs {
                page.times.push(time_get(&app, &format!("/?range={range}"), &token).await?);
            }
            // Baseline: the same range counted by materialising rows.
            let o = crate::commands::now_millis();
            let r = web::pages::overview::Range::parse(Some(range), o).map_err(|e| anyhow::anyhow!(e.message))?;
            let mut count = Measured { name: format!("count {range} via search"), times: Vec::new() };
            let q = EventQuery { since: Some(r.start), until: Some(r.end - 1), ..Default::default() };
            for _ in 0..runs.min(2) {
                let s = indexed.clone();
                let q = q.clone();
                let started = Instant::now();
                tokio::task::spawn_blocking(move || s.events().for_each_event(&q, &mut |_| true)).await??;
                count.times.push(started.elapsed());
            }
            out.push((page, Some(count)));
        }
        let mut indexed_all = Measured { name: "search, indexed filter (all)".into(), times: Vec::new() };
        let mut time_all = Measured { name: format!("search, {baseline_name} (baseline)"), times: Vec::new() };
        for (name, path) in &searches {
            let mut m = Measured { name: format!("search {name}"), times: Vec::new() };
            let mut b = Measured { name: String::new(), times: Vec::new() };
            for _ in 0..runs {
                m.times.push(time_get(&app, path, &token).await?);
                b.times.push(time_get(&base, path, &base_token).await?);
            }
            indexed_all.times.extend(&m.times);
            time_all.times.extend(&b.times);
            out.push((m, Some(b)));
        }
        // Deep paging: page 200 of the unfiltered newest-first list, by its cursor.
        let mut cursor = String::new();
        for _ in 0..200 {
            let req = Request::get(format!("/api/v1/events?limit=50{cursor}"))
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())?;
            let body = axum::body::to_bytes(app.clone().oneshot(req).await?.into_body(), usize::MAX).await?;
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            match v["next"].as_str() {
                Some(n) => cursor = format!("&after={n}"),
                None => break,
            }
        }
        let mut deep = Measured { name: "search page 201 (deep paging)".into(), times: Vec::new() };
        for _ in 0..runs {
            deep.times.push(time_get(&app, &format!("/api/v1/events?limit=50{cursor}"), &token).await?);
        }
        out.push((deep, None));
        // Resource history (the page's API), for a resource of a recent event.
        if let Some(resource) = recent_resource(&indexed)? {
            let mut m = Measured { name: "resource history 7d".into(), times: Vec::new() };
            let path = format!("/api/v1/resources/{}?since=7d", web::html::url_component(&resource));
            for _ in 0..runs.min(3) {
                m.times.push(time_get(&app, &path, &token).await?);
            }
            out.push((m, None));
        }
        let mut page = Measured { name: "events page (HTML), no filter".into(), times: Vec::new() };
        for _ in 0..runs {
            page.times.push(time_get(&app, "/events", &token).await?);
        }
        out.push((page, None));
        out.push((indexed_all, Some(time_all)));
        anyhow::Ok(out)
    });
    store_cleanup(&args.db, token_id);
    let out = result?;
    match args.format {
        Format::Json | Format::Jsonl => {
            let rows: Vec<_> = out
                .iter()
                .map(|(m, b)| {
                    json!({"name": m.name, "p50_ms": m.pct(0.5), "p95_ms": m.pct(0.95), "max_ms": m.pct(1.0), "n": m.times.len(),
                           "baseline_p50_ms": b.as_ref().map(|b| b.pct(0.5)), "baseline_p95_ms": b.as_ref().map(|b| b.pct(0.95))})
                })
                .collect();
            println!("{}", json!({"events": stats.events, "results": rows}));
        }
        _ => {
            println!(
                "{} events in {}; {runs} runs per query; server time in ms (in process)",
                super::thousands(stats.events),
                args.db.display()
            );
            println!("{:<46} {:>8} {:>8} {:>8}   {:>12} {:>7}", "", "p50", "p95", "max", "baseline p95", "ratio");
            if let Some(a) = &args.against {
                println!("(baseline: the store of {}, same events)", a.display());
            }
            for (m, b) in &out {
                let (bp, ratio) = match b {
                    Some(b) => (format!("{:.1}", b.pct(0.95)), format!("{:.1}×", b.pct(0.95) / m.pct(0.95))),
                    None => (String::new(), String::new()),
                };
                println!(
                    "{:<46} {:>8.1} {:>8.1} {:>8.1}   {:>12} {:>7}",
                    m.name,
                    m.pct(0.5),
                    m.pct(0.95),
                    m.pct(1.0),
                    bp,
                    ratio
                );
            }
        }
    }
    Ok(())
}

/// A resource named by one of the newest events (an instance, a bucket, a role).
fn recent_resource(store: &Store) -> anyhow::Result<Option<String>> {
    let recent = store.events().search(&EventQuery { limit: Some(500), ..Default::default() })?;
    Ok(recent.iter().find_map(|r| {
        let v: serde_json::Value = serde_json::from_str(&r.raw).ok()?;
        model::resources::identifiers(&v).into_iter().next()
    }))
}

/// Revokes the benchmark's token (its user stays, with no way in).
fn store_cleanup(db: &std::path::Path, token_id: i64) {
    if let Ok(s) = SqliteStore::open(db) {
        let _ = s.delete_api_token(token_id);
    }
}
