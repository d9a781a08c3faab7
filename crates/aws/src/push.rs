//! `POST /sns`: SNS HTTPS push, as routes the binary merges into the web server's router.
//! A notification is verified (signature, topic, freshness), then handed to the consumer
//! like a queue message; the answer waits for its objects to be committed, so SNS retries
//! what was not.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

use crate::consumer::{Consumer, PushError};
use crate::sns::{SnsError, SnsVerifier};

/// How long a push request waits for its objects to be committed (SNS waits 15 s).
const PUSH_WAIT: Duration = Duration::from_secs(12);

#[derive(Clone)]
struct Push {
    consumer: Arc<Consumer>,
    verifier: Arc<SnsVerifier>,
}

/// `POST /sns`, handing verified notifications to `consumer`.
pub fn routes(consumer: Arc<Consumer>, verifier: Arc<SnsVerifier>) -> Router {
    Router::new().route("/sns", post(sns_push)).with_state(Push { consumer, verifier })
}

async fn sns_push(State(Push { consumer, verifier }): State<Push>, body: String) -> (StatusCode, String) {
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
