//! Login, sessions, API tokens, CSRF and login rate limiting.
//!
//! * Passwords: argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), PHC strings.
//! * A session is a random 256-bit token in an `HttpOnly; SameSite=Strict` cookie (plus
//!   `Secure` when served over TLS or told it is behind a TLS proxy); the store keeps only
//!   its SHA-256, so a copy of the database logs nobody in.
//! * Every form carries the session's CSRF token, compared in constant time on each POST.
//!   The login form, before there is a session, uses a double-submit cookie.
//! * API tokens (`Authorization: Bearer tw_…`) act as their user; stored hashed too. They
//!   are not cookies, so requests carrying them need no CSRF token.
//! * Failed logins are limited per client address and per user name.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use store::{Role, Session, User};
use subtle::ConstantTimeEq;

use crate::WebState;

pub const SESSION_COOKIE: &str = "trailwatch_session";
pub const LOGIN_CSRF_COOKIE: &str = "trailwatch_login";
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Prefix of API tokens, so that a leaked one is recognisable (secret scanners, logs).
pub const API_TOKEN_PREFIX: &str = "tw_";

/// Who is making a request, once authenticated.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub name: String,
    pub role: Role,
    /// The session's CSRF token; `None` for API-token requests (no cookie, no CSRF risk).
    pub csrf: Option<String>,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| HashError(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the user does not exist, so that a wrong user name takes
/// as long as a wrong password (no user enumeration by timing).
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("not a password anyone has").unwrap_or_default())
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

/// A password for a generated account: 20 characters from an alphabet without look-alikes
/// (~115 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::getrandom(&mut bytes).expect("the OS random source is available");
    // 256 % 57 leaves a bias of under 1 %, irrelevant at this length.
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Equal strings, compared in constant time.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A new user record with a freshly hashed password.
pub fn new_user(name: &str, role: Role, password: &str, now: i64) -> Result<User, HashError> {
    Ok(User { name: name.into(), role, password_hash: hash_password(password)?, created_at: now, updated_at: now })
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a cookie this server sets (`max_age` 0 deletes it).
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    ))
    .expect("cookie values are hex")
}

/// Starts a session for `user`; returns the cookie's value (the token).
pub fn start_session(state: &WebState, user: &str) -> Result<String, store::StoreError> {
    let token = random_token();
    let now = model::timefmt::now_millis();
    state.store.create_session(&Session {
        token_hash: token_hash(&token),
        user: user.into(),
        csrf: random_token(),
        created_at: now,
        expires_at: now + SESSION_TTL.as_millis() as i64,
    })?;
    Ok(token)
}

/// The user behind the request's session cookie or bearer token, if any.
pub fn authenticate(state: &WebState, headers: &HeaderMap) -> Result<Option<CurrentUser>, store::StoreError> {
    let now = model::timefmt::now_millis();
    if let Some(bearer) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    {
        let found = state.store.use_api_token(&token_hash(bearer.trim()), now)?;
        return Ok(found.map(|(_, user)| CurrentUser { name: user.name, role: user.role, csrf: None }));
    }
    let Some(token) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let found = state.store.session(&token_hash(token), now)?;
    Ok(found.map(|(session, user)| CurrentUser { name: user.name, role: user.role, csrf: Some(session.csrf) }))
}

/// Middleware for everything but the login page, `/healthz`, the SNS endpoint and static
/// files: a request without a valid session or token goes to the login page (a browser) or
/// gets 401 (the API and `/metrics`).
pub async fn require_login(State(state): State<WebState>, mut request: Request, next: Next) -> Response {
    let headers = request.headers().clone();
    let st = state.clone();
    let user = match tokio::task::spawn_blocking(move || authenticate(&st, &headers)).await {
        Ok(Ok(user)) => user,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading the session failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "session store unavailable\n").into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "session check panicked");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    match user {
        Some(user) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        None => {
            let path = request.uri().path();
            if path.starts_with("/api/") || path == "/metrics" {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(serde_json::json!({"error": "unauthenticated", "detail": "log in or send Authorization: Bearer <API token>"})),
                )
                    .into_response();
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            } else {
                let next = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
                Redirect::to(&format!("/login?next={}", crate::html::url_component(next))).into_response()
            }
        }
    }
}

/// Rejects a form post whose CSRF token is not the session's. API-token requests carry no
/// cookie and need none.
pub fn check_csrf(user: &CurrentUser, submitted: Option<&str>) -> Result<(), Box<Response>> {
    match &user.csrf {
        None => Ok(()),
        Some(expected) if submitted.is_some_and(|s| same(s, expected)) => Ok(()),
        Some(_) => Err(Box::new(
            (StatusCode::FORBIDDEN, "missing or wrong CSRF token: reload the page and try again\n").into_response(),
        )),
    }
}

/// Failed login attempts per client address and per user name, in a sliding window.
pub struct LoginLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(10, Duration::from_secs(15 * 60))
    }
}

impl LoginLimiter {
    pub fn new(max_failures: usize, window: Duration) -> LoginLimiter {
        LoginLimiter { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(ip: Option<IpAddr>, user: &str) -> [String; 2] {
        [format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default()), format!("user:{user}")]
    }

    /// How long until another attempt is allowed, if it is not now.
    pub fn blocked(&self, ip: Option<IpAddr>, user: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for key in Self::keys(ip, user) {
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| now.duration_since(*t) < self.window);
                if times.len() >= self.max_failures {
                    let until = times[times.len() - self.max_failures] + self.window;
                    wait = wait.max(Some(until.saturating_duration_since(now)));
                }
            }
        }
        wait
    }

    pub fn failed(&self, ip: Option<IpAddr>, user: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bound memory under a spray of user names: forget the oldest keys.
        if failures.len() > 10_000 {
            failures.retain(|_, t| t.last().is_some_and(|l| now.duration_since(*l) < self.window));
        }
        for key in Self::keys(ip, user) {
            failures.entry(key).or_default().push(now);
        }
    }

    pub fn succeeded(&self, user: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&format!("user:{user}"));
    }
}

/// Checks a login; `Ok(None)` for a wrong name or password (indistinguishable).
pub fn check_login(state: &WebState, name: &str, password: &str) -> Result<Option<User>, store::StoreError> {
    match state.store.user(name)? {
        Some(user) if verify_password(&user.password_hash, password) => Ok(Some(user)),
        Some(_) => Ok(None),
        None => {
            let _ = verify_password(decoy_hash(), password);
            Ok(None)
        }
    }
}

/// Creates an API token for `user`; returns the token (shown once) and its id.
pub fn create_api_token(store: &dyn store::Store, user: &str, name: &str) -> Result<(String, i64), store::StoreError> {
    let token = format!("{API_TOKEN_PREFIX}{}", random_token());
    let id = store.create_api_token(&store::ApiToken {
        id: 0,
        name: name.into(),
        user: user.into(),
        token_hash: token_hash(&token),
        created_at: model::timefmt::now_millis(),
        last_used: None,
    })?;
    Ok((token, id))
}

/// On a store without users: creates `admin` with `password` (or a generated one) and
/// returns the password to show once. `None` when a user exists already.
pub fn ensure_first_admin(store: &dyn store::Store, password: Option<&str>) -> Result<Option<String>, FirstAdminError> {
    if !store.users()?.is_empty() {
        return Ok(None);
    }
    let password = password.map(str::to_owned).unwrap_or_else(generate_password);
    let user = new_user("admin", Role::Admin, &password, model::timefmt::now_millis())?;
    Ok(store.create_first_user(&user)?.then_some(password))
}

#[derive(Debug, thiserror::Error)]
pub enum FirstAdminError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct hors"));
        assert!(!verify_password("not a hash", "x"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn limiter_blocks_after_the_failures_and_per_user() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let ip = Some("192.0.2.1".parse().unwrap());
        for _ in 0..3 {
            assert!(l.blocked(ip, "admin").is_none());
            l.failed(ip, "admin");
        }
        assert!(l.blocked(ip, "admin").is_some());
        // Same address, another name: the address is blocked too.
        assert!(l.blocked(ip, "other").is_some());
        // Another address, same name: the name is blocked.
        assert!(l.blocked(Some("192.0.2.9".parse().unwrap()), "admin").is_some());
        assert!(l.blocked(Some("192.0.2.9".parse().unwrap()), "other").is_none());
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; trailwatch_session=abc; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        let set = set_cookie(SESSION_COOKIE, "x", SESSION_TTL, true);
        let s = set.to_str().unwrap();
        assert!(s.contains("HttpOnly") && s.contains("SameSite=Strict") && s.contains("Secure"), "{s}");
    }

    #[test]
    fn generated_passwords_differ() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
