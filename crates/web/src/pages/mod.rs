//! The dashboard's pages: server-rendered HTML (maud), one module per section.

pub mod alerts;
pub mod events;
pub mod overview;
pub mod status;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::Markup;

use crate::WebState;

/// A page that could not be produced: what the user sees instead.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> PageError {
        PageError { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    pub fn forbidden(message: impl Into<String>) -> PageError {
        PageError { status: StatusCode::FORBIDDEN, message: message.into() }
    }
}

impl From<store::StoreError> for PageError {
    fn from(e: store::StoreError) -> Self {
        tracing::error!(error = %e, reason = e.reason_code(), "store error while serving a page");
        PageError { status: StatusCode::INTERNAL_SERVER_ERROR, message: format!("the store failed: {e}") }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = maud::html! {
            (maud::DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { "trailwatch" } link rel="stylesheet" href="/static/style.css"; }
                body { main { h1 { (self.status.as_u16()) " " (self.status.canonical_reason().unwrap_or("")) }
                    p.wrap { (self.message) } p { a href="/" { "Back to the overview" } } } }
            }
        };
        (self.status, Html(body.into_string())).into_response()
    }
}

pub type PageResult = Result<Markup, PageError>;

/// Runs store work off the async threads (SQLite calls block).
pub async fn blocking<T: Send + 'static>(
    state: &WebState,
    f: impl FnOnce(&WebState) -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state)).await.unwrap_or_else(|e| {
        Err(PageError { status: StatusCode::INTERNAL_SERVER_ERROR, message: format!("request failed: {e}") })
    })
}

/// `Some(value)` unless empty or whitespace.
pub fn given(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}
