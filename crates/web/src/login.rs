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

/// Where to go after logging in: only a path on this site (no `//host`, no scheme).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.starts_with("/login") => {
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

/// The client's address for rate limiting: the connection's, or behind a trusted proxy the
/// last address in `X-Forwarded-For`.
fn client_ip(state: &WebState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    if state.info.load().trust_proxy {
        let forwarded = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.ip())
}

pub async fn login(
    State(state): State<WebState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let cookie_csrf = auth::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie_csrf.is_empty() || !form.csrf.as_deref().is_some_and(|c| auth::same(c, cookie_csrf)) {
        return form_response(
            StatusCode::FORBIDDEN,
            &state,
            &next,
            Some("The form expired or was not sent from this page. Try again."),
        );
    }
    let ip = client_ip(&state, &headers, peer.map(|Extension(ConnectInfo(a))| a));
    let name = form.username.trim().to_owned();
    if let Some(wait) = state.limiter.blocked(ip, &name) {
        let mut r = form_response(
            StatusCode::TOO_MANY_REQUESTS,
            &state,
            &next,
            Some(&format!("Too many failed logins. Try again in {} minutes.", wait.as_secs() / 60 + 1)),
        );
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return r;
    }
    let st = state.clone();
    let (n, password) = (name.clone(), form.password);
    let result = tokio::task::spawn_blocking(move || -> Result<Option<String>, store::StoreError> {
        match auth::check_login(&st, &n, &password)? {
            Some(user) => Ok(Some(auth::start_session(&st, &user.name)?)),
            None => Ok(None),
        }
    })
    .await;
    match result {
        Ok(Ok(Some(token))) => {
            state.limiter.succeeded(&name);
            tracing::info!(user = %name, "logged in");
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
            state.limiter.failed(ip, &name);
            tracing::warn!(user = %name, ip = ?ip, "failed login");
            form_response(StatusCode::UNAUTHORIZED, &state, &next, Some("Wrong user name or password."))
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "login failed on the store");
            form_response(StatusCode::INTERNAL_SERVER_ERROR, &state, &next, Some("The store is unavailable."))
        }
        Err(e) => {
            tracing::error!(error = %e, "login check panicked");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
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
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || st.store.delete_session(&hash, now)).await {
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
    #[test]
    fn next_stays_on_this_site() {
        use super::safe_next;
        assert_eq!(safe_next(Some("/events?x=1")), "/events?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("javascript:alert(1)")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
