//! `/login` and `/logout`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;

use crate::auth::{self, CurrentUser, LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_TTL};
use crate::html;
use crate::WebState;

/// How long the login form's CSRF cookie lives.
const LOGIN_FORM_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug, Default, Deserialize)]
pub struct NextParam {
    pub next: Option<String>,
}

/// Where to go after logging in: only a plain path on this site. Browsers drop tabs and
/// newlines from a `Location` and read `\\` as `/`, so `/\t/evil.example` would leave the
/// site: only visible ASCII is accepted (paths the server itself puts in `next` are
/// percent-encoded), and the path may not start with `//` or `/\\` (scheme-relative).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && n.bytes().all(|b| b.is_ascii_graphic())
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.starts_with("/login") =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn form_response(status: StatusCode, state: &WebState, next: &str, error: Option<&str>) -> Response {
    let csrf = auth::random_token();
    let page = html::login_page(&csrf, next, error);
    let mut r = (status, Html(page.into_string())).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        auth::set_cookie(LOGIN_CSRF_COOKIE, &csrf, LOGIN_FORM_TTL, state.info.load().secure_cookies),
    );
    r
}

pub async fn login_page(State(state): State<WebState>, headers: HeaderMap, Query(p): Query<NextParam>) -> Response {
    let next = safe_next(p.next.as_deref());
    let st = state.clone();
    if let Ok(Ok(Some(_))) = tokio::task::spawn_blocking(move || auth::authenticate(&st, &headers)).await {
        return Redirect::to(&next).into_response();
    }
    form_response(StatusCode::OK, &state, &next, None)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    pub csrf: Option<String>,
    pub next: Option<String>,
}

/// The client's address for rate limiting: the connection's; or, when the connection comes
/// from a configured proxy (`[web] trusted_proxies`), the rightmost `X-Forwarded-For`
/// address that is not itself a trusted proxy. Anyone else's `X-Forwarded-For` is ignored:
/// a client could write any address there.
pub(crate) fn client_ip(trusted: &[ipnet::IpNet], headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    let peer = peer.map(|p| canonical(p.ip()));
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    match peer {
        Some(ip) if is_trusted(ip) => {
            let mut hops = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect::<Vec<_>>();
            hops.reverse();
            for hop in hops {
                match hop.parse::<IpAddr>() {
                    Ok(addr) if is_trusted(canonical(addr)) => continue,
                    Ok(addr) => return Some(canonical(addr)),
                    // Garbage where an address should be: stop at the last proxy we know.
                    Err(_) => break,
                }
            }
            Some(ip)
        }
        other => other,
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack listener's view of IPv4 clients) as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

pub async fn login(
    State(state): State<WebState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    // Before anything else (no hashing, no limiter entry, no log line): user names are short.
    if form.username.len() > auth::MAX_NAME_BYTES || form.password.len() > auth::MAX_PASSWORD_BYTES {
        return form_response(StatusCode::BAD_REQUEST, &state, &next, Some("Wrong user name or password."));
    }
    let cookie_csrf = auth::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie_csrf.is_empty() || !form.csrf.as_deref().is_some_and(|c| auth::same(c, cookie_csrf)) {
        return form_response(
            StatusCode::FORBIDDEN,
            &state,
            &next,
            Some("The form expired or was not sent from this page. Try again."),
        );
    }
    let ip = client_ip(&state.info.load().trusted_proxies, &headers, peer.map(|Extension(ConnectInfo(a))| a));
    let name = form.username.trim().to_owned();
    let attempt = match state.limiter.begin(ip, &name) {
        Ok(attempt) => attempt,
        Err(refusal) => return refused(&state, &next, refusal),
    };
    let Some(turn) = state.limiter.turn().await else {
        state.limiter.forgive(attempt);
        return refused(&state, &next, auth::Refusal::Busy);
    };
    let st = state.clone();
    let (n, password) = (name.clone(), form.password);
    let result = tokio::task::spawn_blocking(move || -> Result<Option<String>, store::StoreError> {
        let checked = auth::check_login(&st, &n, &password);
        drop(turn);
        match checked? {
            Some(user) => Ok(Some(auth::start_session(&st, &user.name)?)),
            None => Ok(None),
        }
    })
    .await;
    match result {
        Ok(Ok(Some(token))) => {
            state.limiter.succeeded(attempt);
            // `?`: the attacker-chosen name is logged quoted and escaped (Debug), never raw.
            tracing::info!(user = ?name, ip = ?ip, "logged in");
            let mut r = Redirect::to(&next).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                auth::set_cookie(SESSION_COOKIE, &token, SESSION_TTL, state.info.load().secure_cookies),
            );
            r.headers_mut().append(
                header::SET_COOKIE,
                auth::set_cookie(LOGIN_CSRF_COOKIE, "", std::time::Duration::ZERO, state.info.load().secure_cookies),
            );
            r
        }
        Ok(Ok(None)) => {
            tracing::warn!(user = ?name, ip = ?ip, "failed login");
            form_response(StatusCode::UNAUTHORIZED, &state, &next, Some("Wrong user name or password."))
        }
        Ok(Err(e)) => {
            state.limiter.forgive(attempt);
            tracing::error!(error = %e, "login failed on the store");
            form_response(StatusCode::INTERNAL_SERVER_ERROR, &state, &next, Some("The store is unavailable."))
        }
        Err(e) => {
            tracing::error!(error = %e, "login check panicked");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// 429 (too many failures: wait) or 503 (every password check busy: retry soon).
fn refused(state: &WebState, next: &str, refusal: auth::Refusal) -> Response {
    let (status, wait, text) = match refusal {
        auth::Refusal::TooMany(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            wait,
            format!("Too many failed logins. Try again in {} minutes.", wait.as_secs() / 60 + 1),
        ),
        auth::Refusal::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            std::time::Duration::from_secs(2),
            "Too many logins at once. Try again in a moment.".to_owned(),
        ),
    };
    let mut r = form_response(status, state, next, Some(&text));
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
    r
}

/// `GET /logout`: a button (a GET must not change state).
pub async fn logout_page(Extension(user): Extension<CurrentUser>) -> Html<String> {
    let body = maud::html! {
        h1 { "Log out" }
        form method="post" action="/logout" {
            input type="hidden" name="csrf" value=(user.csrf.clone().unwrap_or_default());
            button type="submit" { "Log out " (user.name) }
        }
    };
    Html(html::page("Log out", "", &user, body).into_string())
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    pub csrf: Option<String>,
}

pub async fn logout(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Err(r) = auth::check_csrf(&user, form.csrf.as_deref()) {
        return *r;
    }
    if let Some(token) = auth::cookie(&headers, SESSION_COOKIE) {
        let hash = auth::token_hash(token);
        let st = state.clone();
        let now = model::timefmt::now_millis();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || st.store.state().delete_session(&hash, now)).await {
            tracing::error!(error = %e, "could not end the session");
        }
    }
    tracing::info!(user = %user.name, "logged out");
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        auth::set_cookie(SESSION_COOKIE, "", std::time::Duration::ZERO, state.info.load().secure_cookies),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1, 203.0.113.9, 10.1.2.3"));
        let from = |ip: &str| Some(SocketAddr::new(ip.parse().unwrap(), 40000));
        // From the proxy: the rightmost address that is not a proxy.
        assert_eq!(client_ip(&trusted, &h, from("127.0.0.1")), Some("203.0.113.9".parse().unwrap()));
        // From anyone else: their own address, whatever they wrote.
        assert_eq!(client_ip(&trusted, &h, from("192.0.2.5")), Some("192.0.2.5".parse().unwrap()));
        // No proxies configured: never.
        assert_eq!(client_ip(&[], &h, from("127.0.0.1")), Some("127.0.0.1".parse().unwrap()));
        // A mapped IPv4 proxy address is the IPv4 one.
        assert_eq!(client_ip(&trusted, &h, from("::ffff:127.0.0.1")), Some("203.0.113.9".parse().unwrap()));
        // Garbage in the header: the proxy's own address.
        h.insert("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
        assert_eq!(client_ip(&trusted, &h, from("10.9.9.9")), Some("10.9.9.9".parse().unwrap()));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/events?x=1")), "/events?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("javascript:alert(1)")), "/");
        assert_eq!(safe_next(None), "/");
        // Browsers strip tabs and newlines from Location: these leave the site there.
        assert_eq!(safe_next(Some("/\t/evil.example/x")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example/x")), "/");
        assert_eq!(safe_next(Some("/\r\n/evil.example")), "/");
        assert_eq!(safe_next(Some("/ /evil.example")), "/");
        assert_eq!(safe_next(Some("/\u{a0}/evil.example")), "/");
        assert_eq!(safe_next(Some("/\u{7f}/evil.example")), "/");
        assert_eq!(safe_next(Some("/events?principal=a%09b")), "/events?principal=a%09b");
    }
}
