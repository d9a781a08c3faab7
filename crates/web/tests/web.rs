//! The router end to end, in process: access control, login and CSRF, API tokens, roles,
//! security headers, and that every documented API route exists.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use store::{AlertHit, AlertPolicy, AlertSubject, ObjectMeta, ObjectTotals, Role, SqliteStore, Store};
use tower::ServiceExt;

const EVENT: &str = r#"{"eventVersion":"1.08","eventID":"e-1","eventTime":"2026-01-15T10:45:23Z","eventName":"StopLogging",
 "eventSource":"cloudtrail.amazonaws.com","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","recipientAccountId":"111122223333",
 "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","userName":"alice","accountId":"111122223333"},
 "requestParameters":{"name":"main-trail"}}"#;

fn store() -> Store {
    let store = Store::from(SqliteStore::open_in_memory().unwrap());
    let mut w = store.writer().unwrap();
    w.begin_object(&ObjectMeta::local("a.json.gz", 1)).unwrap();
    w.insert(&mut store::EventBatch::new(vec![model::ParsedEvent::from_json(EVENT).unwrap()])).unwrap();
    w.finish_object(&ObjectTotals { records: 1, ..Default::default() }).unwrap();
    w.commit().unwrap();
    let hit = AlertHit {
        rule_id: "r1".into(),
        title: "Trail stopped".into(),
        level: "high".into(),
        group_key: "alice".into(),
        event_ids: vec!["e-1".into()],
        first_time: 1,
        last_time: 1,
        subject: AlertSubject { principal: "arn:aws:iam::111122223333:user/alice".into(), ..Default::default() },
    };
    w.record_alerts(&[hit], &AlertPolicy::default()).unwrap();
    w.commit().unwrap();
    for (name, role) in [("admin", Role::Admin), ("viewer", Role::Viewer)] {
        store.state().put_user(&web::auth::new_user(name, role, &format!("{name}-password-1"), 1).unwrap()).unwrap();
    }
    store
}

fn app(store: Store) -> Router {
    web::router(web::WebState::new(store, web::SiteInfo::default()))
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let r = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = r.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 24).await.unwrap();
    (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

fn form(path: &str, cookie: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn set_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// The login form: its CSRF cookie and the token in the form.
async fn login_form(app: &Router) -> (String, String) {
    let (_, headers, body) = send(app, get("/login", None)).await;
    let cookie = set_cookie(&headers, "trailwatch_login").unwrap();
    (cookie, csrf_of(&body))
}

fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

/// Logs in through the form; returns the session cookie and the page's CSRF token.
async fn login(app: &Router, user: &str) -> (String, String) {
    let (login_cookie, csrf) = login_form(app).await;
    let (status, headers, _) = send(
        app,
        form(
            "/login",
            &login_cookie,
            &format!("username={user}&password={user}-password-1&csrf={csrf}&next=%2Falerts"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/alerts");
    let session = set_cookie(&headers, "trailwatch_session").unwrap();
    let (_, _, page) = send(app, get("/alerts/1", Some(&session))).await;
    (session, csrf_of(&page))
}

#[tokio::test]
async fn only_login_healthz_and_static_answer_without_a_session() {
    let app = app(store());
    for path in [
        "/",
        "/events",
        "/events/e-1",
        "/alerts",
        "/alerts/1",
        "/integrity",
        "/accounts",
        "/rules",
        "/principals/alice",
        "/resources/main-trail",
        "/logout",
    ] {
        let (status, headers, _) = send(&app, get(path, None)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert!(headers[header::LOCATION].to_str().unwrap().starts_with("/login?next="), "{path}");
    }
    for path in ["/api/v1/events", "/api/v1/overview", "/metrics", "/api/v1/openapi.json"] {
        assert_eq!(send(&app, get(path, None)).await.0, StatusCode::UNAUTHORIZED, "{path}");
    }
    for path in ["/login", "/healthz", "/static/style.css", "/static/app.js"] {
        let (status, headers, _) = send(&app, get(path, None)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    }
    // A forged session cookie is no session.
    assert_eq!(send(&app, get("/", Some("trailwatch_session=00ff"))).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_needs_the_form_token_and_sets_a_strict_cookie() {
    let app = app(store());
    let (login_cookie, csrf) = login_form(&app).await;
    // Without the cookie's token: refused, even with the right password.
    let (status, headers, _) =
        send(&app, form("/login", "x=1", &format!("username=admin&password=admin-password-1&csrf={csrf}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(set_cookie(&headers, "trailwatch_session").is_none());
    // Wrong password: 401, no session.
    let (status, headers, body) =
        send(&app, form("/login", &login_cookie, &format!("username=admin&password=nope&csrf={csrf}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("Wrong user name or password"));
    assert!(set_cookie(&headers, "trailwatch_session").is_none());
    // Right: a session cookie, HttpOnly and SameSite=Strict; an open redirect is not followed.
    let (status, headers, _) = send(
        &app,
        form(
            "/login",
            &login_cookie,
            &format!("username=admin&password=admin-password-1&csrf={csrf}&next=%2F%2Fevil.example"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/");
    let raw = headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    let session = raw.iter().find(|c| c.starts_with("trailwatch_session=")).unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"), "{session}");
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let app = app(store());
    let (cookie, csrf) = login_form(&app).await;
    let attempt = |password: &str| form("/login", &cookie, &format!("username=admin&password={password}&csrf={csrf}"));
    for _ in 0..10 {
        assert_eq!(send(&app, attempt("wrong")).await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, _) = send(&app, attempt("wrong")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
    // Even the right password waits now.
    assert_eq!(send(&app, attempt("admin-password-1")).await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn alert_changes_need_csrf_and_the_admin_role() {
    let store = store();
    let app = app(store.clone());
    let (viewer, viewer_csrf) = login(&app, "viewer").await;
    assert_eq!(
        send(&app, form("/alerts/1", &viewer, &format!("csrf={viewer_csrf}&state=resolved"))).await.0,
        StatusCode::FORBIDDEN
    );
    let (admin, csrf) = login(&app, "admin").await;
    assert_eq!(send(&app, form("/alerts/1", &admin, "state=resolved")).await.0, StatusCode::FORBIDDEN, "no token");
    assert_eq!(
        send(&app, form("/alerts/1", &admin, &format!("csrf={viewer_csrf}&state=resolved"))).await.0,
        StatusCode::FORBIDDEN,
        "another session's token"
    );
    assert_eq!(store.state().alert(1).unwrap().unwrap().state, store::AlertState::Open);
    let (status, _, _) =
        send(&app, form("/alerts/1", &admin, &format!("csrf={csrf}&state=acknowledged&comment=on+it"))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let alert = store.state().alert(1).unwrap().unwrap();
    assert_eq!(alert.state, store::AlertState::Acknowledged);
    assert_eq!(alert.comment.as_deref(), Some("on it — admin"));
    // Logging out ends the session on the server, not only in the browser.
    assert_eq!(send(&app, form("/logout", &admin, &format!("csrf={csrf}"))).await.0, StatusCode::SEE_OTHER);
    assert_eq!(send(&app, get("/", Some(&admin))).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn api_tokens_authenticate_and_can_be_revoked() {
    let store = store();
    let app = app(store.clone());
    let (token, id) = web::create_api_token(&store, "viewer", "ci").unwrap();
    assert!(token.starts_with("tw_"));
    let bearer = |path: &str, t: &str| {
        Request::get(path).header(header::AUTHORIZATION, format!("Bearer {t}")).body(Body::empty()).unwrap()
    };
    let (status, _, body) = send(&app, bearer("/api/v1/events?event_name=StopLogging", &token)).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["events"][0]["eventId"], "e-1");
    let (status, _, metrics) = send(&app, bearer("/metrics", &token)).await;
    assert_eq!(status, StatusCode::OK);
    let bytes_line = metrics.lines().find(|l| l.starts_with("trailwatch_store_bytes ")).expect("store size metric");
    let bytes: u64 = bytes_line.split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(bytes, store.events().storage().unwrap().bytes);
    assert!(bytes > 0);
    // The overview's storage figures are the store's.
    let (_, _, body) = send(&app, bearer("/api/v1/overview", &token)).await;
    let o: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(o["storage"]["events"], 1);
    assert_eq!(o["storage"]["bytes"], bytes);
    assert_eq!(o["storage"]["oldest_event"], "2026-01-15T10:45:23Z");
    // A viewer's token cannot change an alert; a bad token is nobody.
    let change = |t: &str| {
        Request::post("/api/v1/alerts/1")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"state":"resolved"}"#))
            .unwrap()
    };
    assert_eq!(send(&app, change(&token)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(send(&app, bearer("/api/v1/events", "tw_nope")).await.0, StatusCode::UNAUTHORIZED);
    let (admin_token, _) = web::create_api_token(&store, "admin", "ops").unwrap();
    let (status, _, body) = send(&app, change(&admin_token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(store.state().alert(1).unwrap().unwrap().state, store::AlertState::Resolved);
    assert!(store.state().delete_api_token(id).unwrap());
    assert_eq!(send(&app, bearer("/api/v1/events", &token)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_documented_api_route_is_served() {
    let store = store();
    let app = app(store.clone());
    // Token #1 is the one the DELETE entry revokes; the test's own is #2.
    let (_, victim) = web::create_api_token(&store, "admin", "to revoke").unwrap();
    assert_eq!(victim, 1);
    let (token, _) = web::create_api_token(&store, "admin", "doc").unwrap();
    for e in web::openapi::ENDPOINTS {
        let id = if e.path.starts_with("/api/v1/events/") { "e-1" } else { "1" };
        let path = e.path.replace("{id}", id).replace("{principal}", "alice").replace("{resource}", "main-trail");
        let method = Method::from_bytes(e.method.to_uppercase().as_bytes()).unwrap();
        let mut b =
            Request::builder().method(method).uri(&path).header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match e.body {
            Some(example) => {
                b = b.header(header::CONTENT_TYPE, "application/json");
                Body::from(example.replace("acknowledged|resolved|open", "acknowledged"))
            }
            None => Body::empty(),
        };
        let (status, _, text) = send(&app, b.body(body).unwrap()).await;
        assert!(status.is_success(), "{} {path}: {status} {text}", e.method);
    }
    let (_, _, doc) = send(
        &app,
        Request::get("/api/v1/openapi.json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]["/api/v1/events"]["get"]["parameters"].as_array().unwrap().len() >= 10);
}

#[tokio::test]
async fn pages_render_and_escape_record_text() {
    let store = store();
    let app = app(store.clone());
    let (session, _) = login(&app, "viewer").await;
    for path in [
        "/",
        "/events",
        "/events/e-1",
        "/alerts",
        "/alerts/1",
        "/integrity",
        "/accounts",
        "/rules",
        "/principals/arn%3Aaws%3Aiam%3A%3A111122223333%3Auser%2Falice",
        "/resources/main-trail",
        "/events?fragment=rows",
    ] {
        let (status, _, body) = send(&app, get(path, Some(&session))).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, _, body) = send(&app, get("/resources/main-trail?since=3650d", Some(&session))).await;
    assert!(body.contains("/events/e-1"), "the resource history lists the event");
    let (status, _, _) = send(&app, get("/events?since=yesterday-ish", Some(&session))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a bad time is a clear 400");
    assert_eq!(send(&app, get("/events/nope", Some(&session))).await.0, StatusCode::NOT_FOUND);
}

fn from(mut req: Request<Body>, peer: &str) -> Request<Body> {
    let addr: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
    req
}

#[tokio::test]
async fn next_after_login_never_leaves_the_site() {
    let app = app(store());
    let (session, _) = login(&app, "viewer").await;
    for next in
        ["/%09/evil.example/x", "/%0a/evil.example", "/%0d%0a/evil.example", "//evil.example", "/%5Cevil.example"]
    {
        let (status, headers, _) = send(&app, get(&format!("/login?next={next}"), Some(&session))).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(headers[header::LOCATION], "/", "{next}");
    }
    let (_, headers, _) = send(&app, get("/login?next=%2Fevents%3Fprincipal%3Dalice", Some(&session))).await;
    assert_eq!(headers[header::LOCATION], "/events?principal=alice");
}

/// 60 wrong passwords at once: each is counted before its hash is checked, so no more than
/// the limit get to try (the rest: 429), and no more hashes run at once than the limiter
/// allows (each argon2id check holds 19 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_cannot_race_the_limiter() {
    let mut state = web::WebState::new(store(), web::SiteInfo::default());
    state.limiter = Arc::new(web::auth::LoginLimiter::new(10, 100, std::time::Duration::from_secs(900), 2));
    let limiter = state.limiter.clone();
    let app = web::router(state);
    let (cookie, csrf) = login_form(&app).await;
    let attempts = (0..60).map(|_| {
        let app = app.clone();
        let req = from(form("/login", &cookie, &format!("username=admin&password=wrong&csrf={csrf}")), "192.0.2.1");
        tokio::spawn(async move { app.oneshot(req).await.unwrap().status() })
    });
    let mut statuses = Vec::new();
    for a in attempts {
        statuses.push(a.await.unwrap());
    }
    let unauthorized = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(unauthorized, 10, "{statuses:?}");
    assert_eq!(limited, 50, "{statuses:?}");
    assert!(limiter.peak_checks() <= 2, "at most 2 hashes at once, saw {}", limiter.peak_checks());
    assert!(limiter.peak_checks() >= 1);
}

/// Wrong passwords sent from other addresses do not lock the user out of a fresh one.
#[tokio::test]
async fn failures_elsewhere_do_not_lock_out_the_right_password() {
    let app = app(store());
    let (cookie, csrf) = login_form(&app).await;
    let attempt = |password: &str, peer: &str| {
        from(form("/login", &cookie, &format!("username=admin&password={password}&csrf={csrf}")), peer)
    };
    for i in 0..10 {
        assert_eq!(send(&app, attempt("wrong", &format!("198.51.100.{i}"))).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(send(&app, attempt("wrong", "203.0.113.66")).await.0, StatusCode::UNAUTHORIZED);
    }
    // The guessing address is stopped...
    assert_eq!(send(&app, attempt("admin-password-1", "203.0.113.66")).await.0, StatusCode::TOO_MANY_REQUESTS);
    // ...the owner at their own address is not.
    assert_eq!(send(&app, attempt("admin-password-1", "192.0.2.200")).await.0, StatusCode::SEE_OTHER);
}

/// X-Forwarded-For counts only from a configured proxy: a client cannot pick a fresh
/// address for each guess by writing one.
#[tokio::test]
async fn forwarded_for_from_anyone_else_is_ignored() {
    let info =
        web::SiteInfo { trusted_proxies: vec![web::parse_trusted_proxy("10.0.0.1").unwrap()], ..Default::default() };
    let app = web::router(web::WebState::new(store(), info));
    let (cookie, csrf) = login_form(&app).await;
    let attempt = |peer: &str, forwarded: &str| {
        let mut r = from(form("/login", &cookie, &format!("username=admin&password=wrong&csrf={csrf}")), peer);
        r.headers_mut().insert("x-forwarded-for", forwarded.parse().unwrap());
        r
    };
    for i in 0..10 {
        assert_eq!(send(&app, attempt("192.0.2.7", &format!("198.51.100.{i}"))).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(send(&app, attempt("192.0.2.7", "198.51.100.99")).await.0, StatusCode::TOO_MANY_REQUESTS);
    // Through the proxy, each client is its own.
    for i in 0..3 {
        assert_eq!(send(&app, attempt("10.0.0.1", &format!("203.0.113.{i}"))).await.0, StatusCode::UNAUTHORIZED);
    }
}

/// A 1.9 MB user name is refused before it costs anything: no hash, no limiter entry.
#[tokio::test]
async fn huge_user_names_are_refused_before_anything_else() {
    let state = web::WebState::new(store(), web::SiteInfo::default());
    let limiter = state.limiter.clone();
    let app = web::router(state);
    let (cookie, csrf) = login_form(&app).await;
    let huge = "a".repeat(1_900_000);
    let (status, _, _) = send(&app, form("/login", &cookie, &format!("username={huge}&password=x&csrf={csrf}"))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let long = "b".repeat(web::auth::MAX_NAME_BYTES + 1);
    let (status, _, _) = send(&app, form("/login", &cookie, &format!("username={long}&password=x&csrf={csrf}"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(limiter.entries(), 0, "nothing recorded for refused names");
    assert_eq!(limiter.peak_checks(), 0, "no password was hashed");
}

#[tokio::test]
async fn api_tokens_expire() {
    let store = store();
    let app = app(store.clone());
    let now = model::timefmt::now_millis();
    let (expired, _) = web::auth::create_api_token_until(&store, "viewer", "old", Some(now - 1)).unwrap();
    let (valid, _) = web::auth::create_api_token_until(&store, "viewer", "new", Some(now + 3_600_000)).unwrap();
    let bearer = |t: &str| {
        Request::get("/api/v1/alerts").header(header::AUTHORIZATION, format!("Bearer {t}")).body(Body::empty()).unwrap()
    };
    assert_eq!(send(&app, bearer(&expired)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&app, bearer(&valid)).await.0, StatusCode::OK);
    // The token list says when each expires and when it was last used.
    let (_, _, body) = send(
        &app,
        Request::get("/api/v1/tokens")
            .header(header::AUTHORIZATION, format!("Bearer {valid}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let new = v["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "new").unwrap();
    assert!(new["expiresAt"].is_string() && new["lastUsed"].is_string(), "{new}");
    // A reset password revokes the user's tokens (the CLI's `user add` does this).
    assert_eq!(store.state().revoke_api_tokens("viewer").unwrap(), 2);
    assert_eq!(send(&app, bearer(&valid)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn alert_lists_are_capped_and_paged() {
    let store = store();
    let mut w = store.writer().unwrap();
    let hits: Vec<AlertHit> = (0..1_205)
        .map(|i| AlertHit {
            rule_id: format!("r-{i}"),
            title: format!("Rule {i}"),
            level: "low".into(),
            group_key: "g".into(),
            event_ids: vec!["e-1".into()],
            first_time: 1_000 + i,
            last_time: 1_000 + i,
            subject: AlertSubject { principal: "p".into(), ..Default::default() },
        })
        .collect();
    w.record_alerts(&hits, &AlertPolicy::default()).unwrap();
    w.commit().unwrap();
    let app = app(store.clone());
    let (token, _) = web::create_api_token(&store, "viewer", "t").unwrap();
    let get_json = |path: String| {
        let app = app.clone();
        let token = token.clone();
        async move {
            let req = Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let (status, _, body) = send(&app, req).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            serde_json::from_str::<serde_json::Value>(&body).unwrap()
        }
    };
    let first = get_json("/api/v1/alerts?limit=0".into()).await;
    assert_eq!(first["alerts"].as_array().unwrap().len(), 1000, "limit=0 is capped");
    let mut ids: Vec<i64> = first["alerts"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
    let mut next = first["next"].as_str().map(str::to_owned);
    while let Some(cursor) = next {
        let page = get_json(format!("/api/v1/alerts?limit=400&before={cursor}")).await;
        ids.extend(page["alerts"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()));
        next = page["next"].as_str().map(str::to_owned);
    }
    let total = store.state().alerts(&store::AlertFilter::default()).unwrap().len();
    assert_eq!(total, 1_206);
    assert_eq!(ids.len(), total, "every alert once, across pages");
    let unique: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), total);
}

#[tokio::test]
async fn hsts_only_when_serving_tls() {
    let store = store();
    let plain = web::router(web::WebState::new(store.clone(), web::SiteInfo::default()));
    let (_, headers, _) = send(&plain, get("/healthz", None)).await;
    assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    let tls = web::router_with(
        web::WebState::new(store, web::SiteInfo::default()),
        web::RouterOptions { hsts: true, ..Default::default() },
        Router::new(),
    );
    for path in ["/healthz", "/login", "/static/style.css"] {
        let (_, headers, _) = send(&tls, get(path, None)).await;
        let v = headers[header::STRICT_TRANSPORT_SECURITY].to_str().unwrap();
        assert!(v.starts_with("max-age=") && v["max-age=".len()..].parse::<u64>().unwrap() >= 31_536_000, "{v}");
    }
}

/// A delivery error recorded by an older version, with the sink's secret URL in it, is shown
/// to viewers with the URL cut to its host.
#[tokio::test]
async fn delivery_errors_never_show_a_sink_url_to_viewers() {
    let store = store();
    let mut w = store.writer().unwrap();
    let policy = AlertPolicy {
        routes: vec![store::SinkRoute { sink: "slack".into(), min_level: "low".into() }],
        ..Default::default()
    };
    let hit = AlertHit {
        rule_id: "r2".into(),
        title: "Another".into(),
        level: "high".into(),
        group_key: "g2".into(),
        event_ids: vec!["e-1".into()],
        first_time: 1,
        last_time: 1,
        subject: AlertSubject { principal: "p".into(), ..Default::default() },
    };
    let id = w.record_alerts(&[hit], &policy).unwrap()[0];
    w.commit().unwrap();
    let due = store.state().due_deliveries(i64::MAX, 10).unwrap();
    let d = due.iter().find(|d| d.alert_id == id).unwrap();
    store
        .state()
        .delivery_failed(
            d.id,
            "error sending request for url (https://hooks.slack.com/services/T0/B0/TopSecret9): timed out",
            i64::MAX,
        )
        .unwrap();
    let app = app(store.clone());
    let (session, _) = login(&app, "viewer").await;
    let (_, _, page) = send(&app, get(&format!("/alerts/{id}"), Some(&session))).await;
    assert!(page.contains("hooks.slack.com") && !page.contains("TopSecret9"), "the page shows the host only");
    let (token, _) = web::create_api_token(&store, "viewer", "t").unwrap();
    let req = Request::get(format!("/api/v1/alerts/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = send(&app, req).await;
    assert!(body.contains("hooks.slack.com") && !body.contains("TopSecret9"), "{body}");
}

/// A 3 MB record (stored by a version without the record limit, or from a file the operator
/// allowed) is not materialised on its page or in the API: large values are left out, and the
/// whole record is a download.
#[tokio::test]
async fn a_huge_record_is_shown_cut_with_a_download() {
    let store = store();
    let huge = EVENT.replace("\"e-1\"", "\"e-huge\"").replace(
        r#""requestParameters":{"name":"main-trail"}"#,
        &format!(r#""requestParameters":{{"policy":"{}"}}"#, "p".repeat(3 << 20)),
    );
    assert!(huge.len() > 3 << 20);
    let mut w = store.writer().unwrap();
    w.begin_object(&ObjectMeta::local("huge.json.gz", 1)).unwrap();
    w.insert(&mut store::EventBatch::new(vec![model::ParsedEvent::from_json(&huge).unwrap()])).unwrap();
    w.finish_object(&ObjectTotals { records: 1, ..Default::default() }).unwrap();
    w.commit().unwrap();
    let app = app(store.clone());
    let (session, _) = login(&app, "viewer").await;
    let (status, _, page) = send(&app, get("/events/e-huge", Some(&session))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.len() < 200_000, "the page is {} bytes", page.len());
    assert!(page.contains("/events/e-huge/raw") && page.contains("left out"), "a download link and a note");
    assert!(page.contains("StopLogging"), "the small fields are shown");
    let (status, headers, raw) = send(&app, get("/events/e-huge/raw", Some(&session))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(raw, huge, "the download is the record as stored");
    assert!(headers[header::CONTENT_DISPOSITION].to_str().unwrap().starts_with("attachment"));
    let (token, _) = web::create_api_token(&store, "viewer", "t").unwrap();
    let req = Request::get("/api/v1/events/e-huge")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = send(&app, req).await;
    assert!(body.len() < 100_000, "the API answer is {} bytes", body.len());
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["recordTruncated"], true);
    assert_eq!(v["recordBytes"], huge.len());
    assert_eq!(v["record"]["eventName"], "StopLogging");
    assert_eq!(v["rawUrl"], "/api/v1/events/e-huge/raw");
    // A normal record is whole, as before.
    let req = Request::get("/api/v1/events/e-1")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = send(&app, req).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v.get("recordTruncated").is_none());
    assert_eq!(v["record"]["requestParameters"]["name"], "main-trail");
}

/// Two users of the same name in two accounts are two rows of the top principals: each
/// shows its account, or they would look like one person.
#[tokio::test]
async fn top_principals_of_the_same_name_show_their_accounts() {
    let store = store();
    let when = model::timefmt::format_millis(model::timefmt::now_millis() - 3_600_000);
    let mut w = store.writer().unwrap();
    w.begin_object(&ObjectMeta::local("two.json.gz", 1)).unwrap();
    let events = [("a-1", "111122223333"), ("a-2", "111122223333"), ("b-1", "444455556666")]
        .iter()
        .map(|(id, account)| {
            let json = EVENT
                .replace("\"e-1\"", &format!("\"{id}\""))
                .replace("2026-01-15T10:45:23Z", &when)
                .replace("111122223333", account);
            model::ParsedEvent::from_json(&json).unwrap()
        })
        .collect();
    w.insert(&mut store::EventBatch::new(events)).unwrap();
    w.finish_object(&ObjectTotals { records: 3, ..Default::default() }).unwrap();
    w.commit().unwrap();
    let app = app(store);
    let (session, _) = login(&app, "viewer").await;
    let (status, _, page) = send(&app, get("/?range=24h", Some(&session))).await;
    assert_eq!(status, StatusCode::OK);
    let top = page.split("Top principals").nth(1).expect("a top principals card").split("</section>").next().unwrap();
    // Visible text, not only the links' titles (which hold the whole ARN).
    assert!(top.contains(">111122223333<") && top.contains(">444455556666<"), "both accounts shown: {top}");
    assert_eq!(top.matches(">alice<").count(), 2, "two alice rows: {top}");
}
