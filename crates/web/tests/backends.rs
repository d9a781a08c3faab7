//! The dashboard's JSON API answers the same on every backend for the same data: a
//! simulated deployment (attack scenarios included) is ingested into SQLite and into the
//! scale-out store (when the test script started its servers), each scenario raises an
//! alert, and every read-only API answer is compared.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use store::{AlertHit, AlertPolicy, AlertSubject, Role, Store};
use tower::ServiceExt;

struct Deployment {
    manifest: sim::Manifest,
    dir: tempfile::TempDir,
}

fn simulate() -> Deployment {
    let dir = tempfile::tempdir().unwrap();
    let config =
        sim::SimConfig { events: 3000, hours: 12, scenarios: sim::Scenario::ALL.to_vec(), ..Default::default() };
    let manifest = sim::simulate(&config, dir.path()).unwrap();
    Deployment { manifest, dir }
}

fn load(store: &Store, dir: &std::path::Path, manifest: &sim::Manifest) {
    // One parse thread: objects reach the writer in one order, so arrival order (which breaks
    // ties between events of the same second) is the same in every store.
    let config = ingest::PipelineConfig { workers: 1, ..Default::default() };
    let report = ingest::sources::local::ingest_dir(dir, store, config, None).expect("the simulated files ingest");
    assert!(report.quarantined.is_empty() && report.failed.is_empty(), "nothing quarantined: {report:?}");
    let hits: Vec<AlertHit> = manifest
        .scenarios
        .iter()
        .map(|s| AlertHit {
            rule_id: format!("scenario-{}", s.name),
            title: s.description.to_string(),
            level: "high".into(),
            group_key: s.account.clone(),
            event_ids: s.event_ids.clone(),
            first_time: 1,
            last_time: 2,
            subject: AlertSubject {
                principal: s.account.clone(),
                account: Some(s.account.clone()),
                ..Default::default()
            },
        })
        .collect();
    let mut w = store.writer().unwrap();
    w.record_alerts(&hits, &AlertPolicy::default()).unwrap();
    w.commit().unwrap();
    store.state().put_user(&web::auth::new_user("admin", Role::Admin, "admin-password-1", 1).unwrap()).unwrap();
}

async fn get_json(app: &axum::Router, token: &str, path: &str) -> serde_json::Value {
    let req = Request::get(path).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 26).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {}", String::from_utf8_lossy(&bytes));
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    normalise(&mut v);
    v
}

/// Removes what legitimately differs between stores: the paging cursor carries the store's
/// own arrival number, and token ids/uses are per store.
fn normalise(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for key in ["next", "row", "last_used", "generated_at", "now"] {
                map.remove(key);
            }
            map.values_mut().for_each(normalise);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_the_same_on_every_backend() {
    let backends = store::testing::backends();
    if backends.len() < 2 {
        eprintln!("only SQLite is configured here; the comparison needs the scale-out servers (scripts/services.sh)");
        return;
    }
    let d = simulate();
    let first = d.manifest.scenarios.first().expect("scenarios were simulated");
    let event_id = first.event_ids[0].clone();
    let account = d.manifest.accounts[0].id.clone();
    let mut paths = vec![
        "/api/v1/alerts".to_string(),
        "/api/v1/alerts/1".to_string(),
        "/api/v1/alerts?level=high&limit=3".to_string(),
        "/api/v1/rules".to_string(),
        "/api/v1/integrity".to_string(),
        format!("/api/v1/events/{event_id}"),
        format!("/api/v1/events?since={}&until={}&limit=200", d.manifest.start, d.manifest.end),
        format!("/api/v1/events?since={}&account={account}&limit=50", d.manifest.start),
        format!("/api/v1/events?since={}&errors=true&limit=100", d.manifest.start),
        format!("/api/v1/events?since={}&event_name=Describe*&limit=100", d.manifest.start),
        format!("/api/v1/events?since={}&error_code=AccessDenied&limit=100", d.manifest.start),
        format!("/api/v1/events?since={}&region=eu-west-1&source_ip=203.*&limit=100", d.manifest.start),
    ];
    for s in &d.manifest.scenarios {
        paths.push(format!("/api/v1/events?since={}&event_name={}&limit=20", d.manifest.start, s.event_names[0]));
    }
    let mut answers: Vec<(&str, Vec<serde_json::Value>)> = Vec::new();
    for (name, store) in backends {
        let store: Store = store;
        let s = store.clone();
        let dir = d.dir.path().to_path_buf();
        let manifest = d.manifest.clone();
        tokio::task::spawn_blocking(move || load(&s, &dir, &manifest)).await.unwrap();
        let (token, _) = web::create_api_token(&store, "admin", "compare").unwrap();
        let app = web::router(web::WebState::new(store.clone(), web::SiteInfo::default()));
        // The principal of the first scenario event, as the event answer names it.
        let event = get_json(&app, &token, &format!("/api/v1/events/{event_id}")).await;
        let principal = event["principal"].as_str().expect("an event names its principal").to_string();
        let mut got = Vec::new();
        for path in paths.iter().cloned().chain([
            format!("/api/v1/principals/{}", web::html::url_component(&principal)),
            format!(
                "/api/v1/events?since={}&principal={}&limit=100",
                d.manifest.start,
                web::html::url_component(&principal)
            ),
        ]) {
            got.push(get_json(&app, &token, &path).await);
        }
        answers.push((name, got));
    }
    let (base_name, base) = &answers[0];
    for (name, got) in &answers[1..] {
        for (i, (a, b)) in base.iter().zip(got).enumerate() {
            assert_eq!(a, b, "answer {i} differs between {base_name} and {name}");
        }
    }
    // The comparison compared something: every scenario's alert, a full page of events,
    // failed calls, and a principal with activity.
    assert_eq!(base[0]["alerts"].as_array().unwrap().len(), d.manifest.scenarios.len());
    assert_eq!(base[6]["events"].as_array().unwrap().len(), 200);
    assert!(!base[8]["events"].as_array().unwrap().is_empty());
    assert!(base[base.len() - 2]["events"].as_u64().unwrap() > 0);
}
