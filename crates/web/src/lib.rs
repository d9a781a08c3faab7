//! The web server. For now: `/healthz`, `/metrics` (Prometheus) and the SNS HTTPS push
//! endpoint (`POST /sns`); the dashboard and JSON API join it later.
//!
//! SNS push, in the order the checks run:
//! 1. the body is an SNS message whose signature verifies against a certificate fetched from
//!    an SNS host over HTTPS ([`aws::sns::SnsVerifier`]): otherwise 403 (400 for non-JSON);
//! 2. its topic is one the configuration names for an account: otherwise 403, and a
//!    subscription to it is never confirmed;
//! 3. `SubscriptionConfirmation` → trailwatch visits `SubscribeURL` (same host rule);
//!    `Notification` → handled like an SQS message of that account; the answer is sent once
//!    the objects it names are committed, and an error answer makes SNS retry.

mod metrics;

use std::sync::Arc;
use std::time::Duration;

use aws::consumer::{Consumer, PushError};
use aws::sns::{SnsError, SnsVerifier};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

#[derive(Clone)]
pub struct WebState {
    pub consumer: Option<Arc<Consumer>>,
    pub sns: Option<Arc<SnsVerifier>>,
}

/// How long a push request waits for its objects to be committed (SNS waits 15 s).
const PUSH_WAIT: Duration = Duration::from_secs(12);

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_text))
        .route("/sns", post(sns_push))
        .with_state(state)
}

async fn metrics_text(State(state): State<WebState>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let now = model::timefmt::now_millis();
    let body = state.consumer.as_deref().map(|c| metrics::render(c, now)).unwrap_or_default();
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

async fn sns_push(State(state): State<WebState>, body: String) -> (StatusCode, String) {
    let (Some(consumer), Some(verifier)) = (state.consumer, state.sns) else {
        return (StatusCode::NOT_FOUND, "SNS push is not enabled\n".into());
    };
    let message = match verifier.verify(&body).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(reason = e.reason_code(), error = %e, "SNS push rejected");
            let status = match e {
                SnsError::NotSns(_) => StatusCode::BAD_REQUEST,
                // Could be SNS's side: answer so that SNS retries.
                SnsError::CertFetch { .. } => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::FORBIDDEN,
            };
            return (status, format!("rejected: {e}\n"));
        }
    };
    let field = |k: &str| message.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    let topic = field("TopicArn");
    if consumer.account_for_topic(&topic).is_none() {
        tracing::warn!(topic = %topic, "SNS push for a topic no account is configured with; ignored, not confirmed");
        return (StatusCode::FORBIDDEN, format!("rejected: {}\n", SnsError::UnknownTopic(topic)));
    }
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
