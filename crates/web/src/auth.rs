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
//! * Login attempts are limited per (user name, client address) and per client address,
//!   counted before the password is checked; password checks run one per core at most
//!   ([`LoginLimiter`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
use tokio::sync::Semaphore;

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
    state.store.state().create_session(&Session {
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
        let found = state.store.state().use_api_token(&token_hash(bearer.trim()), now)?;
        return Ok(found.map(|(_, user)| CurrentUser { name: user.name, role: user.role, csrf: None }));
    }
    let Some(token) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let found = state.store.state().session(&token_hash(token), now)?;
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

/// The shortest password trailwatch accepts from a person (generated ones have 20).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Refuses a password shorter than [`MIN_PASSWORD_CHARS`], with the reason.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("the password must have at least {MIN_PASSWORD_CHARS} characters"));
    }
    Ok(())
}

/// The longest user name a login form may carry (user names are checked against this
/// before anything else: no hashing, no limiter entry, no log line for longer ones).
pub const MAX_NAME_BYTES: usize = 128;
/// The longest password a login form may carry (argon2 reads all of it).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Who may try to log in now, and how many password checks run at once.
///
/// * An attempt is counted *before* its password is checked and forgiven when the password
///   was right, so a burst of concurrent wrong passwords cannot all pass the check before
///   the first failure is recorded.
/// * Limits are per (user name, client address), so wrong passwords sent from elsewhere
///   never lock the right user out of a fresh address; and per client address across all
///   names, against a spray. User names are kept as a 128-bit hash: memory per entry is
///   fixed whatever the name.
/// * argon2id takes ~19 MiB and tens of milliseconds per check: at most `hashers` run at
///   once (one per core); the others wait their turn up to `turn_wait`, then get a 503.
pub struct LoginLimiter {
    per_pair: usize,
    per_address: usize,
    window: Duration,
    attempts: Mutex<HashMap<LimitKey, VecDeque<Instant>>>,
    hashing: Arc<Semaphore>,
    hashers: usize,
    turn_wait: Duration,
    waiting: AtomicUsize,
    checking: Arc<AtomicUsize>,
    peak_checking: AtomicUsize,
}

/// A turn to check a password; the next waiter goes when it is dropped.
pub struct CheckTurn {
    _permit: tokio::sync::OwnedSemaphorePermit,
    checking: Arc<AtomicUsize>,
}

impl Drop for CheckTurn {
    fn drop(&mut self) {
        self.checking.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LimitKey {
    Pair([u8; 16], Option<IpAddr>),
    Address(Option<IpAddr>),
}

/// An attempt counted by [`LoginLimiter::begin`]; settled by `succeeded` or `forgive`, or
/// left counted (a wrong password).
#[derive(Debug)]
pub struct Attempt {
    pair: LimitKey,
    address: LimitKey,
    at: Instant,
}

/// Why an attempt may not proceed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures from this address (for this name, or for any): retry after this.
    TooMany(Duration),
    /// Every password check is busy and the queue is full or the wait ran out.
    Busy,
}

/// Entries kept at most (a spray of addresses and names cannot grow memory without bound).
const MAX_LIMIT_ENTRIES: usize = 50_000;

impl Default for LoginLimiter {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        LoginLimiter::new(10, 100, Duration::from_secs(15 * 60), cores)
    }
}

impl LoginLimiter {
    /// `per_pair` failures per name and address, `per_address` per address, in `window`;
    /// `hashers` password checks at once.
    pub fn new(per_pair: usize, per_address: usize, window: Duration, hashers: usize) -> LoginLimiter {
        let hashers = hashers.max(1);
        LoginLimiter {
            per_pair,
            per_address,
            window,
            attempts: Mutex::new(HashMap::new()),
            hashing: Arc::new(Semaphore::new(hashers)),
            hashers,
            turn_wait: Duration::from_secs(10),
            waiting: AtomicUsize::new(0),
            checking: Arc::new(AtomicUsize::new(0)),
            peak_checking: AtomicUsize::new(0),
        }
    }

    fn name_key(name: &str) -> [u8; 16] {
        let digest = Sha256::digest(name.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        key
    }

    /// Counts an attempt of `name` from `ip`, or says why it may not be made now.
    pub fn begin(&self, ip: Option<IpAddr>, name: &str) -> Result<Attempt, Refusal> {
        let now = Instant::now();
        let pair = LimitKey::Pair(Self::name_key(name), ip);
        let address = LimitKey::Address(ip);
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for (key, max) in [(pair, self.per_pair), (address, self.per_address)] {
            if let Some(times) = attempts.get_mut(&key) {
                while times.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                    times.pop_front();
                }
                if times.len() >= max {
                    let until = times[times.len() - max] + self.window;
                    wait = wait.max(Some(until.saturating_duration_since(now).max(Duration::from_secs(1))));
                }
            }
        }
        if let Some(wait) = wait {
            return Err(Refusal::TooMany(wait));
        }
        if attempts.len() >= MAX_LIMIT_ENTRIES {
            self.evict(&mut attempts, now);
        }
        for (key, max) in [(pair, self.per_pair), (address, self.per_address)] {
            let times = attempts.entry(key).or_default();
            times.push_back(now);
            // Only the newest `max` matter for the decision.
            while times.len() > max {
                times.pop_front();
            }
        }
        Ok(Attempt { pair, address, at: now })
    }

    /// Drops expired entries, then (still too many) the least recently used half.
    fn evict(&self, attempts: &mut HashMap<LimitKey, VecDeque<Instant>>, now: Instant) {
        attempts.retain(|_, t| t.back().is_some_and(|l| now.duration_since(*l) < self.window));
        if attempts.len() >= MAX_LIMIT_ENTRIES {
            let mut last: Vec<Instant> = attempts.values().filter_map(|t| t.back().copied()).collect();
            last.sort_unstable();
            let cut = last[last.len() / 2];
            attempts.retain(|_, t| t.back().is_some_and(|l| *l > cut));
        }
    }

    fn remove(&self, attempts: &mut HashMap<LimitKey, VecDeque<Instant>>, key: LimitKey, at: Instant) {
        if let Some(times) = attempts.get_mut(&key) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
            if times.is_empty() {
                attempts.remove(&key);
            }
        }
    }

    /// The password was right: this name's failures from this address are forgotten, and
    /// the attempt does not count against the address.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        attempts.remove(&attempt.pair);
        self.remove(&mut attempts, attempt.address, attempt.at);
    }

    /// The password was never checked (busy, store unavailable): the attempt does not count.
    pub fn forgive(&self, attempt: Attempt) {
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        self.remove(&mut attempts, attempt.pair, attempt.at);
        self.remove(&mut attempts, attempt.address, attempt.at);
    }

    /// Waits for a turn to check a password (at most `hashers` at once); `None` when the
    /// queue is full (more than 32 waiting per hasher) or the turn did not come in time.
    pub async fn turn(&self) -> Option<CheckTurn> {
        if self.waiting.load(Ordering::Relaxed) >= self.hashers * 32 {
            return None;
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = tokio::time::timeout(self.turn_wait, self.hashing.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let permit = permit.ok()?.ok()?;
        let now = self.checking.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_checking.fetch_max(now, Ordering::SeqCst);
        Some(CheckTurn { _permit: permit, checking: self.checking.clone() })
    }

    /// The most password checks that ran at once since the start.
    pub fn peak_checks(&self) -> usize {
        self.peak_checking.load(Ordering::SeqCst)
    }

    /// How many keys the limiter holds (for tests: memory stays bounded).
    pub fn entries(&self) -> usize {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
/// Checks a login; `Ok(None)` for a wrong name or password (indistinguishable).
pub fn check_login(state: &WebState, name: &str, password: &str) -> Result<Option<User>, store::StoreError> {
    match state.store.state().user(name)? {
        Some(user) if verify_password(&user.password_hash, password) => Ok(Some(user)),
        Some(_) => Ok(None),
        None => {
            let _ = verify_password(decoy_hash(), password);
            Ok(None)
        }
    }
}

/// Creates an API token for `user` that never expires; returns the token (shown once) and
/// its id.
pub fn create_api_token(store: &store::Store, user: &str, name: &str) -> Result<(String, i64), store::StoreError> {
    create_api_token_until(store, user, name, None)
}

/// When a token made at `now` with a lifetime of `expires_in` (`90d`, `12h`) expires: `None`
/// without one (valid until revoked).
pub fn token_expiry(expires_in: Option<&str>, now: model::EpochMillis) -> Result<Option<model::EpochMillis>, String> {
    expires_in.map(|span| model::timefmt::parse_duration(span).map(|ms| now.saturating_add(ms))).transpose()
}

/// Creates an API token for `user`, valid until `expires_at` (or until revoked).
pub fn create_api_token_until(
    store: &store::Store,
    user: &str,
    name: &str,
    expires_at: Option<model::EpochMillis>,
) -> Result<(String, i64), store::StoreError> {
    let token = format!("{API_TOKEN_PREFIX}{}", random_token());
    let id = store.state().create_api_token(&store::ApiToken {
        id: 0,
        name: name.into(),
        user: user.into(),
        token_hash: token_hash(&token),
        created_at: model::timefmt::now_millis(),
        last_used: None,
        expires_at,
    })?;
    Ok((token, id))
}

/// On a store without users: creates `admin` with `password` (or a generated one) and
/// returns the password to show once. `None` when a user exists already.
pub fn ensure_first_admin(store: &store::Store, password: Option<&str>) -> Result<Option<String>, FirstAdminError> {
    if !store.state().users()?.is_empty() {
        return Ok(None);
    }
    let password = password.map(str::to_owned).unwrap_or_else(generate_password);
    let user = new_user("admin", Role::Admin, &password, model::timefmt::now_millis())?;
    Ok(store.state().create_first_user(&user)?.then_some(password))
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
    fn limiter_blocks_a_name_from_one_address_not_from_others() {
        let l = LoginLimiter::new(3, 5, Duration::from_secs(60), 1);
        let (a, b, c) = (
            Some("192.0.2.1".parse().unwrap()),
            Some("192.0.2.9".parse().unwrap()),
            Some("192.0.2.77".parse().unwrap()),
        );
        for _ in 0..3 {
            l.begin(a, "admin").expect("allowed");
        }
        assert!(matches!(l.begin(a, "admin"), Err(Refusal::TooMany(_))));
        // The same name from a fresh address is not locked out by someone else's failures.
        l.succeeded(l.begin(b, "admin").expect("another address"));
        // The same address, other names: allowed until the address's own limit.
        l.begin(a, "other").expect("other name");
        l.begin(a, "third").expect("third name");
        assert!(matches!(l.begin(a, "fourth"), Err(Refusal::TooMany(_))), "address limit across names");
        // A right password forgets that pair's failures; forgiven attempts do not count.
        for _ in 0..10 {
            l.forgive(l.begin(c, "admin").unwrap());
        }
        l.begin(c, "admin").expect("forgiven attempts do not count");
    }

    #[test]
    fn limiter_memory_is_bounded_under_a_spray() {
        let l = LoginLimiter::new(10, 1_000_000, Duration::from_secs(600), 1);
        for i in 0..(MAX_LIMIT_ENTRIES as u32 + 5_000) {
            let ip = Some(IpAddr::from(i.to_be_bytes()));
            let _ = l.begin(ip, &format!("user{i}"));
        }
        assert!(l.entries() <= MAX_LIMIT_ENTRIES + 2, "{}", l.entries());
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
