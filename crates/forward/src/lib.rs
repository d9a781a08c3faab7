//! Event forwarding: every stored event, in arrival order, to a webhook or a file, with the
//! outbox's promise — at least once, nothing lost across restarts.
//!
//! A forwarder keeps one number in the store: the arrival position of the last event its
//! sink accepted. Each step reads the next batch after it, hands it to the sink, and only
//! then moves the position. A crash between the two sends that batch again (receivers
//! dedupe by `eventID`, which every line carries); nothing is ever skipped. Failures back
//! off from 5 s to an hour, as alert deliveries do. Retention leaves unforwarded blocks
//! alone, so a slow sink still receives what it has not seen.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use store::{ForwardCursor, Store};

use alert::{backoff, check_response as check, signature, DeliveryError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardSink {
    /// POST batches as JSON Lines (`application/x-ndjson`), signed like alert webhooks.
    Webhook { url: String, secret: Option<String> },
    /// Append JSON Lines to a file, flushed to disk before the position moves.
    File { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSpec {
    pub name: String,
    pub sink: ForwardSink,
    pub format: export::ExportFormat,
    /// Events per delivery.
    pub batch: usize,
    /// A forwarder without a stored position starts at the newest event (true) or with
    /// everything the store holds (false).
    pub start_at_end: bool,
}

pub struct Forwarder {
    store: Store,
    spec: ForwardSpec,
    http: reqwest::Client,
    failures: u32,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// This many events were delivered (0: nothing new).
    Delivered(usize),
    /// The sink refused; retry after this long.
    Failed(Duration),
}

impl Forwarder {
    pub fn new(store: Store, spec: ForwardSpec) -> Forwarder {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("trailwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP client");
        Forwarder { store, spec, http, failures: 0 }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    fn cursor(&self) -> Result<ForwardCursor, store::StoreError> {
        if let Some(c) = self.store.events().forward_cursor(&self.spec.name)? {
            return Ok(c);
        }
        let position = if self.spec.start_at_end { self.store.events().last_position()? } else { 0 };
        let c = ForwardCursor {
            name: self.spec.name.clone(),
            position,
            delivered: 0,
            last_error: None,
            updated_at: model::timefmt::now_millis(),
        };
        self.store.events().save_forward_cursor(&c)?;
        Ok(c)
    }

    /// Delivers the next batch, if any.
    pub async fn step(&mut self) -> Result<Step, store::StoreError> {
        let mut cursor = self.cursor()?;
        let events = self.store.events().events_after(cursor.position, self.spec.batch.max(1))?;
        let Some(last) = events.last().map(|e| e.row) else { return Ok(Step::Delivered(0)) };
        let mut body = Vec::with_capacity(events.iter().map(|e| e.raw.len() + 1).sum());
        for e in &events {
            body.extend_from_slice(export::event_line(e, self.spec.format).as_bytes());
            body.push(b'\n');
        }
        cursor.updated_at = model::timefmt::now_millis();
        match self.deliver(body).await {
            Ok(()) => {
                cursor.position = last;
                cursor.delivered += events.len() as u64;
                cursor.last_error = None;
                self.store.events().save_forward_cursor(&cursor)?;
                self.failures = 0;
                Ok(Step::Delivered(events.len()))
            }
            Err(e) => {
                // The webhook's URL may carry a secret: the stored and logged text has its host.
                let error = store::redact_urls(&e.to_string());
                tracing::warn!(forwarder = %self.spec.name, events = events.len(), error = %error, "forwarding failed; will retry");
                cursor.last_error = Some(error);
                self.store.events().save_forward_cursor(&cursor)?;
                let wait = backoff(self.failures);
                self.failures += 1;
                Ok(Step::Failed(wait))
            }
        }
    }

    async fn deliver(&self, body: Vec<u8>) -> Result<(), DeliveryError> {
        match &self.spec.sink {
            ForwardSink::Webhook { url, secret } => {
                let mut req = self.http.post(url).header("content-type", "application/x-ndjson");
                if let Some(secret) = secret {
                    req = req.header("x-trailwatch-signature", signature(secret, &body));
                }
                check(req.body(body).send().await).await
            }
            ForwardSink::File { path } => {
                let (path, shown) = (path.clone(), path.display().to_string());
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    // Every event goes here: readable by its owner only, like the store.
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&path)?;
                    f.write_all(&body)?;
                    f.sync_data()
                })
                .await
                .map_err(|e| DeliveryError::Send(format!("file sink {shown}: {e}")))?
                .map_err(|e| DeliveryError::Send(format!("file sink {shown}: {e}")))
            }
        }
    }

    /// Forwards until `stop` resolves: batches back to back while there is a backlog, a
    /// poll every `interval` when caught up, the backoff after a failure.
    pub async fn run(mut self, interval: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let wait = match self.step().await {
                Ok(Step::Delivered(n)) if n == self.spec.batch.max(1) => Duration::ZERO,
                Ok(Step::Delivered(_)) => interval,
                Ok(Step::Failed(wait)) => wait,
                Err(e) => {
                    tracing::error!(forwarder = %self.spec.name, error = %e, "forwarding: reading the store failed");
                    interval
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
