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

use aws::consumer::{Consumer, PushError};
use aws::sns::{SnsError, SnsVerifier};
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
    pub accounts: Vec<aws::AccountSpec>,
    pub aws: aws::AwsSettings,
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
    pub consumer: Option<Arc<Consumer>>,
    /// The ingest filters `serve` runs with (their counters for `/metrics`).
    pub filter: Option<Arc<ingest::filter::EventFilter>>,
    pub sns: Option<Arc<SnsVerifier>>,
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
            consumer: None,
            filter: None,
            sns: None,
            info: Arc::new(arc_swap::ArcSwap::from_pointee(info)),
            limiter: Arc::new(auth::LoginLimiter::default()),
            doctor: Arc::new(tokio::sync::Mutex::new(None)),
            ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }
}

/// Runs `doctor` for every configured account.
pub async fn run_doctor(state: &WebState, by: &str) -> DoctorReport {
    let now = model::timefmt::now_millis();
    let results = aws::doctor::doctor_all(&state.info.load().aws, &state.info.load().accounts, now).await;
    pages::status::doctor_report(results, by, now)
}

/// How long a push request waits for its objects to be committed (SNS waits 15 s).
const PUSH_WAIT: Duration = Duration::from_secs(12);

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
    router_with(state, RouterOptions::default())
}

pub fn router_with(state: WebState, options: RouterOptions) -> Router {
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
        .route("/sns", post(sns_push))
        .merge(protected)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(options.body_timeout))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn_with_state(options.hsts, hsts_header))
        .with_state(state)
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

async fn sns_push(State(state): State<WebState>, body: String) -> (StatusCode, String) {
    let (Some(consumer), Some(verifier)) = (state.consumer, state.sns) else {
        return (StatusCode::NOT_FOUND, "SNS push is not enabled\n".into());
    };
    let now = model::timefmt::now_millis();
    let message = match verifier.verify(&body, |topic| consumer.account_for_topic(topic).is_some(), now).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(reason = e.reason_code(), error = %e, "SNS push rejected");
            let status = match e {
                SnsError::NotSns(_) => StatusCode::BAD_REQUEST,
                // Could be SNS's side: answer so that SNS retries.
                SnsError::CertFetch { .. } => StatusCode::SERVICE_UNAVAILABLE,
                // An unknown topic (never confirmed, never fetched for), a replay, a bad signature.
                _ => StatusCode::FORBIDDEN,
            };
            return (status, format!("rejected: {e}\n"));
        }
    };
    let field = |k: &str| message.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    let topic = field("TopicArn");
    match field("Type").as_str() {
        "SubscriptionConfirmation" => match verifier.confirm_subscription(&message).await {
            Ok(()) => {
                tracing::info!(topic = %topic, "SNS subscription confirmed");
                (StatusCode::OK, "subscription confirmed\n".into())
            }
            Err(e) => {
                tracing::warn!(topic = %topic, error = %e, "could not confirm the SNS subscription");
                (StatusCode::BAD_GATEWAY, format!("{e}\n"))
            }
        },
        "UnsubscribeConfirmation" => {
            tracing::warn!(topic = %topic, "SNS says this endpoint was unsubscribed from the topic");
            (StatusCode::OK, "noted\n".into())
        }
        _ => {
            let parsed = match model::Message::parse(&body) {
                Ok(m) => m,
                Err(e) => return (StatusCode::BAD_REQUEST, format!("{}: {e}\n", e.reason_code())),
            };
            match consumer.push(&topic, parsed, PUSH_WAIT).await {
                Ok(()) => (StatusCode::OK, "ingested\n".into()),
                Err(e @ PushError::UnknownTopic(_)) => (StatusCode::FORBIDDEN, format!("{e}\n")),
                Err(e) => {
                    tracing::warn!(topic = %topic, error = %e, "SNS push not handled; SNS will retry");
                    (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
                }
            }
        }
    }
}
