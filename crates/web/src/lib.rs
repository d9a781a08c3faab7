//! The web server: the dashboard, the JSON API, login, `/metrics`, `/healthz`, and the SNS
//! HTTPS push endpoint.
//!
//! Access: only `/login`, `/healthz`, `/static/*` (the login page's stylesheet) and `/sns`
//! (authenticated by SNS's own message signature, below) answer without a session; every
//! other path needs a session cookie or an API token ([`auth`]). Every response carries a
//! strict Content-Security-Policy (no inline script or style) and the usual hardening
//! headers. Pages are rendered on the server ([`pages`]); the API ([`api`]) serves the same
//! data as JSON and is described by `/api/v1/openapi.json`, generated from its route table.
//!
//! SNS push, in the order the checks run:
//! 1. the body is an SNS message for a topic the configuration names for an account, at most
//!    an hour old, signed with SHA256withRSA (SHA1 where `[sns] accept_sha1` allows it):
//!    otherwise 403 (400 for non-JSON), before anything is fetched; a subscription to any
//!    other topic is never confirmed;
//! 2. its signature verifies against a certificate fetched from an SNS host of the topic's
//!    region over HTTPS ([`aws::sns::SnsVerifier`]): otherwise 403;
//! 3. `SubscriptionConfirmation` → trailwatch visits `SubscribeURL` (same host rule);
//!    `Notification` → handled like an SQS message of that account; the answer is sent once
//!    the objects it names are committed, and an error answer makes SNS retry.

pub mod api;
pub mod auth;
mod chart;
pub mod html;
mod login;
mod metrics;
pub mod openapi;
pub mod pages;
pub mod server;
pub mod tls;

pub use auth::{create_api_token, ensure_first_admin};
pub use ipnet::IpNet;
pub use server::{Limits, DEFAULT_MAX_CONNECTIONS};

/// A trusted proxy as configured: an address (`10.1.2.3`, `::1`) or a network (`10.0.0.0/8`).
pub fn parse_trusted_proxy(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>().ok().or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

/// What the server shows besides the store: configuration and loaded rules.
#[derive(Debug, Default, Clone)]
pub struct SiteInfo {
    pub accounts: Vec<AccountInfo>,
    /// Account id → the configured (or simulated) account's name, for labels.
    pub account_names: HashMap<String, String>,
    pub rules: Vec<RuleInfo>,
    /// Rules that could not be loaded: file and reason.
    pub rule_errors: Vec<String>,
    /// Mark cookies `Secure` (served over TLS, or behind a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` names the client (for login rate limiting); from
    /// any other peer the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The retention policy in words ("400 days; Data 30 days"), when one is set.
    pub retention: Option<String>,
    /// Names of the configured event forwarders (their positions are in the store).
    pub forwarders: Vec<String>,
}

/// A configured account, as the accounts page and the API list it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    pub name: String,
    pub account_id: String,
    pub role_arn: Option<String>,
    pub regions: Vec<String>,
    pub bucket: Option<String>,
    pub queue_url: Option<String>,
}

/// The integration status of the running consumer, fresher than the store's (which it
/// writes every few seconds). `serve` provides it; without it pages read the store.
pub trait LiveStatus: Send + Sync {
    fn snapshot(&self) -> Vec<store::IntegrationStatus>;
}

/// Checks every configured account's wiring (the accounts page's "check now"). `serve`
/// provides it (it knows the AWS side); each account's checks come back by account name.
pub trait Doctor: Send + Sync {
    fn run(&self) -> BoxFuture<'_, Vec<(String, Vec<DoctorCheck>)>>;
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A loaded detection rule, as the rules page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    pub level: String,
    pub status: String,
    pub description: Option<String>,
    pub file: String,
}

/// The last `doctor` run from the accounts page.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub at: i64,
    pub by: String,
    pub accounts: Vec<(String, Vec<DoctorCheck>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorCheck {
    pub name: String,
    pub state: String,
    pub detail: String,
    pub fix: Option<String>,
}

#[derive(Clone)]
pub struct WebState {
    pub store: store::Store,
    pub live_status: Option<Arc<dyn LiveStatus>>,
    pub doctor_runner: Option<Arc<dyn Doctor>>,
    /// Counters `/metrics` shows besides the store's gauges.
    pub metrics: &'static telemetry::Registry,
    /// Replaced whole when `serve` reloads its configuration (SIGHUP).
    pub info: Arc<arc_swap::ArcSwap<SiteInfo>>,
    pub limiter: Arc<auth::LoginLimiter>,
    pub doctor: Arc<tokio::sync::Mutex<Option<DoctorReport>>>,
    /// Set once the server may answer `/healthz` with 200.
    pub ready: Arc<std::sync::atomic::AtomicBool>,
}

impl WebState {
    pub fn new(store: store::Store, info: SiteInfo) -> WebState {
        WebState {
            store,
            live_status: None,
            doctor_runner: None,
            metrics: telemetry::global(),
            info: Arc::new(arc_swap::ArcSwap::from_pointee(info)),
            limiter: Arc::new(auth::LoginLimiter::default()),
            doctor: Arc::new(tokio::sync::Mutex::new(None)),
            ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }
}

/// Runs `doctor` for every configured account (none without a [`Doctor`]).
pub async fn run_doctor(state: &WebState, by: &str) -> DoctorReport {
    let at = model::timefmt::now_millis();
    let accounts = match &state.doctor_runner {
        Some(d) => d.run().await,
        None => Vec::new(),
    };
    DoctorReport { at, by: by.into(), accounts }
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How the router is set up beyond the routes.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// Send `Strict-Transport-Security` (the server itself speaks TLS).
    pub hsts: bool,
    /// The longest a request body may take to arrive.
    pub body_timeout: Duration,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions { hsts: false, body_timeout: Duration::from_secs(30) }
    }
}

/// The login form is a name, a password and two tokens: a few hundred bytes.
const LOGIN_BODY_LIMIT: usize = 16 * 1024;

pub fn router(state: WebState) -> Router {
    router_with(state, RouterOptions::default(), Router::new())
}

/// The router, with `extra` routes (the binary's: SNS push) behind the same layers.
pub fn router_with(state: WebState, options: RouterOptions, extra: Router) -> Router {
    let protected = Router::new()
        .route("/", get(pages::overview::page))
        .route("/events", get(pages::events::search))
        .route("/events/{id}", get(pages::events::detail))
        .route("/events/{id}/raw", get(pages::events::raw))
        .route("/principals/{principal}", get(pages::events::principal))
        .route("/resources/{resource}", get(pages::events::resource))
        .route("/alerts", get(pages::alerts::list))
        .route("/alerts/{id}", get(pages::alerts::detail).post(pages::alerts::change_state))
        .route("/integrity", get(pages::status::integrity))
        .route("/accounts", get(pages::status::accounts))
        .route("/accounts/doctor", post(pages::status::run_doctor))
        .route("/rules", get(pages::status::rules))
        .route("/logout", get(login::logout_page).post(login::logout))
        .route("/metrics", get(metrics_text))
        .merge(api::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_login));
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/login",
            get(login::login_page).post(login::login).layer(axum::extract::DefaultBodyLimit::max(LOGIN_BODY_LIMIT)),
        )
        .route("/static/style.css", get(|| asset("text/css; charset=utf-8", include_str!("../assets/style.css"))))
        .route("/static/app.js", get(|| asset("text/javascript; charset=utf-8", include_str!("../assets/app.js"))))
        .route("/static/favicon.svg", get(|| asset("image/svg+xml", include_str!("../assets/favicon.svg"))))
        .merge(protected)
        .with_state(state)
        .merge(extra)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(options.body_timeout))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn_with_state(options.hsts, hsts_header))
}

/// `Strict-Transport-Security` when the server itself speaks TLS: a browser that has seen it
/// never again sends the session cookie in clear to this host.
async fn hsts_header(State(hsts): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if hsts {
        response.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000"));
    }
    response
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

async fn healthz(State(state): State<WebState>) -> Response {
    if state.ready.load(std::sync::atomic::Ordering::Acquire) {
        "ok\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

/// Headers every response carries. Pages are never cached (they hold account data).
async fn security_headers(request: Request, next: Next) -> Response {
    let is_static = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn metrics_text(State(state): State<WebState>) -> Response {
    let now = model::timefmt::now_millis();
    let st = state.clone();
    let body = tokio::task::spawn_blocking(move || metrics::render(&st, now)).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}
