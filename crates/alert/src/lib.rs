//! Alert delivery: the outbox worker and its sinks.
//!
//! Detection writes one outbox row per (alert, sink) in the same transaction as the alert
//! (see `store::alerts`). [`Outbox::drain`] sends the rows that are due: a row is marked
//! delivered only after its sink accepted it, and a failure schedules the next attempt with
//! exponential backoff (5 s doubling, at most an hour). Nothing is given up, so every alert
//! arrives at least once, across restarts, once the receiver is back. Each sink has a rate
//! limit (a token bucket per minute); rows over the limit wait for the next round without
//! counting as attempts.
//!
//! Every message says who did what, where, from which IP ([`headline`]); all of it is
//! attacker-chosen text, so it is sent as data (JSON strings, Slack text with its control
//! characters escaped, a plain-text mail body), never as markup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use model::timefmt::format_millis;
use serde_json::{json, Value};
use store::{Alert, Delivery, Store};

/// How a sink sends.
#[derive(Debug, Clone)]
pub enum SinkKind {
    /// POST of the alert as JSON; with a secret, `X-Trailwatch-Signature: sha256=<hex HMAC>`
    /// of the exact body.
    Webhook {
        url: String,
        secret: Option<String>,
    },
    /// A Slack incoming webhook.
    Slack {
        url: String,
    },
    Email(EmailSettings),
    Sns {
        client: aws_sdk_sns::Client,
        topic_arn: String,
    },
}

#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub host: String,
    pub port: Option<u16>,
    /// `starttls` (required), `tls` (implicit), `none` (local relays only).
    pub security: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// PEM CA certificate(s) to trust besides the system's (a relay with a private CA).
    pub ca_pem: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Sink {
    pub name: String,
    pub kind: SinkKind,
    pub rate_per_minute: u32,
}

/// An alert as sinks see it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub alert: Alert,
    pub event_ids: Vec<String>,
    /// Link to the alert on the dashboard, when `public_url` is configured.
    pub link: Option<String>,
}

/// The line a person reads: "StopLogging (cloudtrail.amazonaws.com) by <who> in account
/// <id>, us-east-1, from 203.0.113.7".
pub fn headline(a: &Alert) -> String {
    let s = &a.subject;
    let what = match (&s.event_name, &s.event_source) {
        (Some(n), Some(src)) => format!("{n} ({src})"),
        (Some(n), None) => n.clone(),
        _ => "activity".into(),
    };
    let mut line = format!("{what} by {}", s.principal);
    if let Some(acct) = &s.account {
        line.push_str(&format!(" in account {acct}"));
    }
    if let Some(r) = &s.region {
        line.push_str(&format!(", {r}"));
    }
    if let Some(ip) = &s.source_ip {
        line.push_str(&format!(", from {ip}"));
    }
    if let Some(e) = &s.error_code {
        line.push_str(&format!(" (failed: {e})"));
    }
    line
}

/// The webhook / SNS payload: the alert (as everywhere), its headline, events and link.
pub fn payload(n: &Notification) -> Value {
    let mut v = n.alert.to_json();
    v["summary"] = json!(headline(&n.alert));
    v["event_ids"] = json!(n.event_ids);
    v["link"] = json!(n.link);
    v
}

/// Slack's `mrkdwn` treats `&`, `<` and `>` as markup: escape them so attacker-chosen text
/// (a role session name, a user agent) cannot forge links or mentions.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn slack_body(n: &Notification) -> Value {
    let a = &n.alert;
    let mut text = format!(
        "*[{}] {}*\n{}\n{} event{} between {} and {}",
        a.level.to_uppercase(),
        slack_escape(&a.title),
        slack_escape(&headline(a)),
        a.count,
        if a.count == 1 { "" } else { "s" },
        format_millis(a.first_seen),
        format_millis(a.last_seen)
    );
    if let Some(link) = &n.link {
        text.push_str(&format!("\n<{}|Open alert #{}>", slack_escape(link), a.id));
    }
    json!({"text": text})
}

pub fn email_subject(a: &Alert) -> String {
    // Header text: no line breaks from attacker-chosen fields.
    format!("[trailwatch {}] {}", a.level, a.title).replace(['\r', '\n'], " ")
}

pub fn email_body(n: &Notification) -> String {
    let a = &n.alert;
    let s = &a.subject;
    let mut body = format!(
        "{}\n\nRule:      {} ({})\nWho:       {}\nWhat:      {} {}\nWhere:     account {}, region {}\nFrom IP:   {}\nSeen:      {} times between {} and {}\nEvents:    {}\n",
        headline(a),
        a.title,
        a.rule_id,
        s.principal,
        s.event_source.as_deref().unwrap_or("-"),
        s.event_name.as_deref().unwrap_or("-"),
        s.account.as_deref().unwrap_or("-"),
        s.region.as_deref().unwrap_or("-"),
        s.source_ip.as_deref().unwrap_or("-"),
        a.count,
        format_millis(a.first_seen),
        format_millis(a.last_seen),
        n.event_ids.join(", ")
    );
    if let Some(link) = &n.link {
        body.push_str(&format!("\n{link}\n"));
    }
    body
}

/// SNS subjects must be printable ASCII without line breaks, under 100 characters: anything
/// else in a rule's title would make every attempt fail.
pub fn sns_subject(a: &Alert) -> String {
    email_subject(a).chars().map(|c| if c.is_ascii_graphic() { c } else { ' ' }).take(99).collect()
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delay before attempt `attempts + 1`: 5 s doubling, capped at an hour.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs((5u64 << attempts.min(10)).min(3600))
}

/// A token bucket per sink: `rate` deliveries per minute, refilled continuously.
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

pub struct Outbox {
    store: Store,
    /// Replaced whole on reload (SIGHUP); a drain works with the set it started with.
    sinks: arc_swap::ArcSwap<HashMap<String, Sink>>,
    http: reqwest::Client,
    public_url: Option<String>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// What one drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub delivered: u64,
    pub failed: u64,
    /// Due but held back by a rate limit or an unknown sink.
    pub deferred: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{0}")]
    Send(String),
    #[error("the receiver answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
}

impl Outbox {
    pub fn new(store: Store, sinks: Vec<Sink>, public_url: Option<String>) -> Outbox {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("trailwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP client");
        Outbox {
            store,
            sinks: arc_swap::ArcSwap::from_pointee(sinks.into_iter().map(|s| (s.name.clone(), s)).collect()),
            http,
            public_url,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the sinks (a configuration reload). Rows for a sink that is gone wait in
    /// the outbox until it returns.
    pub fn set_sinks(&self, sinks: Vec<Sink>) {
        self.sinks.store(Arc::new(sinks.into_iter().map(|s| (s.name.clone(), s)).collect()));
    }

    /// Names of the sinks in use.
    pub fn sink_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sinks.load().keys().cloned().collect();
        names.sort();
        names
    }

    fn take_token(&self, sink: &Sink) -> bool {
        let mut buckets = self.buckets.lock().expect("bucket lock");
        let rate = f64::from(sink.rate_per_minute.max(1));
        let b = buckets.entry(sink.name.clone()).or_insert(Bucket { tokens: rate, at: std::time::Instant::now() });
        let now = std::time::Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate / 60.0).min(rate);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn notification(&self, d: &Delivery) -> Result<Option<Notification>, store::StoreError> {
        let Some(alert) = self.store.state().alert(d.alert_id)? else { return Ok(None) };
        let event_ids = self.store.state().alert_event_ids(alert.id)?;
        let link = self.public_url.as_ref().map(|u| format!("{u}/alerts/{}", alert.id));
        Ok(Some(Notification { alert, event_ids, link }))
    }

    /// Sends what is due now (up to `limit` rows).
    pub async fn drain(&self, limit: usize) -> Result<Drained, store::StoreError> {
        self.drain_due_at(model::timefmt::now_millis(), limit).await
    }

    /// Sends the rows due at `now` (tests pass a later time instead of waiting out a backoff).
    pub async fn drain_due_at(&self, now: i64, limit: usize) -> Result<Drained, store::StoreError> {
        let mut out = Drained::default();
        let sinks = self.sinks.load_full();
        for d in self.store.state().due_deliveries(now, limit)? {
            let Some(sink) = sinks.get(&d.sink) else {
                // A sink removed from the configuration: keep the row for when it returns.
                out.deferred += 1;
                continue;
            };
            if !self.take_token(sink) {
                out.deferred += 1;
                continue;
            }
            let Some(n) = self.notification(&d)? else {
                self.store.state().delivery_failed(d.id, "the alert no longer exists", i64::MAX)?;
                continue;
            };
            match self.send(sink, &n).await {
                Ok(()) => {
                    self.store.state().delivery_succeeded(d.id, model::timefmt::now_millis())?;
                    tracing::info!(alert = n.alert.id, sink = %sink.name, "alert delivered");
                    out.delivered += 1;
                }
                Err(e) => {
                    let next = model::timefmt::now_millis() + backoff(d.attempts).as_millis() as i64;
                    // Webhook and Slack URLs carry their secret: stored and logged errors
                    // (viewers see `lastError`) keep only the host.
                    let error = store::redact_urls(&e.to_string());
                    self.store.state().delivery_failed(d.id, &error, next)?;
                    tracing::warn!(alert = n.alert.id, sink = %sink.name, attempts = d.attempts + 1, error = %error, "alert delivery failed; will retry");
                    out.failed += 1;
                }
            }
        }
        Ok(out)
    }

    /// Drains every `interval` until `stop` resolves.
    pub async fn run(self: Arc<Self>, interval: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.drain(100).await {
                tracing::error!(error = %e, "reading the outbox failed");
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn send(&self, sink: &Sink, n: &Notification) -> Result<(), DeliveryError> {
        match &sink.kind {
            SinkKind::Webhook { url, secret } => {
                let body = serde_json::to_vec(&payload(n)).expect("JSON serializes");
                let mut req = self.http.post(url).header("content-type", "application/json");
                if let Some(secret) = secret {
                    req = req.header("x-trailwatch-signature", signature(secret, &body));
                }
                check_response(req.body(body).send().await).await
            }
            SinkKind::Slack { url } => {
                let body = serde_json::to_vec(&slack_body(n)).expect("JSON serializes");
                check_response(self.http.post(url).header("content-type", "application/json").body(body).send().await)
                    .await
            }
            SinkKind::Sns { client, topic_arn } => client
                .publish()
                .topic_arn(topic_arn)
                .subject(sns_subject(&n.alert))
                .message(payload(n).to_string())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    DeliveryError::Send(format!("SNS publish: {}", aws_sdk_sns::error::DisplayErrorContext(e)))
                }),
            SinkKind::Email(settings) => send_email(settings, n).await,
        }
    }
}

/// A delivery's HTTP answer: success, or the error to record (the status and the start of
/// the body). Event forwarding judges its webhook answers the same way.
pub async fn check_response(response: Result<reqwest::Response, reqwest::Error>) -> Result<(), DeliveryError> {
    let response = response.map_err(|e| DeliveryError::Send(format!("{:#}", e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body: String = response.text().await.unwrap_or_default().chars().take(200).collect();
    Err(DeliveryError::Status { status: status.as_u16(), body })
}

async fn send_email(s: &EmailSettings, n: &Notification) -> Result<(), DeliveryError> {
    use lettre::message::Mailbox;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let err = |what: &str, e: &dyn std::fmt::Display| DeliveryError::Send(format!("{what}: {e}"));
    let from: Mailbox = s.from.parse().map_err(|e| err("from address", &e))?;
    let mut msg = Message::builder().from(from).subject(email_subject(&n.alert));
    for to in &s.to {
        msg = msg.to(to.parse::<Mailbox>().map_err(|e| err("to address", &e))?);
    }
    let msg = msg.body(email_body(n)).map_err(|e| err("building the message", &e))?;
    let tls = || -> Result<TlsParameters, DeliveryError> {
        let mut params = TlsParameters::builder(s.host.clone());
        if let Some(pem) = &s.ca_pem {
            params = params.add_root_certificate(Certificate::from_pem(pem).map_err(|e| err("smtp_ca_file", &e))?);
        }
        params.build_rustls().map_err(|e| err("TLS settings", &e))
    };
    // STARTTLS is required, not opportunistic: a relay that does not offer it is an error.
    let (security, default_port) = match s.security.as_str() {
        "tls" => (Tls::Wrapper(tls()?), 465),
        "none" => (Tls::None, 25),
        _ => (Tls::Required(tls()?), 587),
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
        .port(s.port.unwrap_or(default_port))
        .tls(security);
    if let (Some(u), Some(p)) = (&s.username, &s.password) {
        transport = transport.credentials(Credentials::new(u.clone(), p.clone()));
    }
    transport.timeout(Some(Duration::from_secs(20))).build().send(msg).await.map(|_| ()).map_err(|e| err("SMTP", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_secs(5));
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(30), Duration::from_secs(3600));
    }

    #[test]
    fn sns_subjects_are_printable_ascii() {
        let a = Alert {
            id: 1,
            rule_id: "r".into(),
            title: format!("Rôle changé\n{}", "x".repeat(200)),
            level: "high".into(),
            group_key: String::new(),
            state: store::AlertState::Open,
            first_seen: 0,
            last_seen: 0,
            count: 1,
            subject: Default::default(),
            created_at: 0,
            updated_at: 0,
            comment: None,
        };
        let s = sns_subject(&a);
        assert!(s.len() < 100 && s.bytes().all(|b| (0x20..0x7f).contains(&b)), "{s}");
        assert!(s.starts_with("[trailwatch high] R le chang "), "{s}");
    }

    #[test]
    fn slack_text_cannot_carry_markup() {
        assert_eq!(slack_escape("<!channel> & <http://x|y>"), "&lt;!channel&gt; &amp; &lt;http://x|y&gt;");
    }
}
