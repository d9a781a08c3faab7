//! The SQS consumer: notifications in, objects fetched and committed, messages deleted.
//!
//! ```text
//!  per account: connect (assume role, retried with backoff)
//!     └─ N receive loops ── long poll, 10 at a time ──► handle message (task per message)
//!                                                          parse shape, triage keys
//!                                                          ├─ digests → store (integrity)
//!                                                          ├─ other keys → counted, skipped
//!                                                          └─ log/Insights → fetch (bounded) ─► pipeline.submit
//!  pipeline.settled ──► settle: status board, message's pending count − 1
//!                        └─ message done: no problem → deleter (batched DeleteMessageBatch)
//!                                         problem    → message_problems row, visibility backoff
//!  extender: ChangeMessageVisibilityBatch for every message still in flight
//! ```
//!
//! **Invariant:** a message is deleted only when every object it names is durable (committed,
//! or quarantined in the ledger because its content is bad), or needs nothing (digests are
//! recorded first, other keys are only counted). Anything else leaves the message on the queue
//! with its reason recorded; SQS delivers it again and, after maxReceiveCount, its redrive
//! policy moves it to the DLQ. A crash at any point loses nothing: uncommitted objects'
//! messages reappear, committed objects are found in the ledger and skipped, and their
//! records are deduplicated by eventID in any case.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
};
use ingest::{ObjectJob, Outcome, Pipeline, Settled, Submitter};
use model::timefmt::now_millis;
use model::{Message, Notification, ObjectKind, TrailKey};
use store::{DigestSeen, IngestFinding, MessageProblem, ObjectMeta, Store};
use telemetry::Counter;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::account::{self, AccountClients, AccountSpec, AwsSettings};
use crate::fetch;
use crate::inflight::{Finished, InFlight, Problem};
use crate::status::StatusBoard;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Concurrent long polls per queue.
    pub receivers_per_queue: usize,
    /// Long-poll wait (seconds, at most 20).
    pub wait_time_secs: i32,
    /// Visibility timeout asked for on receive, and renewed while a message is in flight.
    pub visibility_timeout_secs: i32,
    /// Messages being handled at once, over all queues (bounds memory).
    pub max_inflight_messages: usize,
    /// Concurrent S3 GETs.
    pub fetch_concurrency: usize,
    /// How long shutdown waits for in-flight messages before releasing them.
    pub shutdown_grace: Duration,
    /// How often the status board is written to the store.
    pub status_flush: Duration,
    /// A message that could not be handled is retried after this many seconds per delivery
    /// so far (capped at 15 minutes), rather than at once.
    pub retry_backoff_secs: i32,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            receivers_per_queue: 2,
            wait_time_secs: 20,
            visibility_timeout_secs: 300,
            max_inflight_messages: 64,
            fetch_concurrency: 16,
            shutdown_grace: Duration::from_secs(30),
            status_flush: Duration::from_secs(2),
            retry_backoff_secs: 30,
        }
    }
}

/// What the pipeline hands back with an object: whose it is, and which message named it.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The in-flight message, `None` for objects from a listing (backfill).
    pub message: Option<u64>,
    pub account: String,
    pub region: String,
}

/// Counters of one run (also what tests and benchmarks read); `serve` registers them into
/// the metrics registry with [`Counters::register`].
#[derive(Debug, Default)]
pub struct Counters {
    pub messages: Counter,
    pub deleted: Counter,
    pub problems: Counter,
    pub validations: Counter,
    pub objects_committed: Counter,
    pub objects_quarantined: Counter,
    pub objects_known: Counter,
    pub other_keys: Counter,
    pub digests: Counter,
    pub eventbridge: Counter,
    pub events_new: Counter,
    pub events_duplicate: Counter,
    /// Records the ingest filters dropped.
    pub events_filtered: Counter,
    /// Where time goes (summed over concurrent tasks): long polls, S3 GETs, and waiting for
    /// the pipeline to take an object (backpressure: parse or store is the slower stage).
    pub receive_calls: Counter,
    pub receive_micros: Counter,
    pub fetch_micros: Counter,
    pub fetch_bytes: Counter,
    pub submit_wait_micros: Counter,
}

impl Counters {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "messages": self.messages.get(), "deleted": self.deleted.get(), "problems": self.problems.get(),
            "validations": self.validations.get(), "objects": self.objects_committed.get(),
            "quarantined": self.objects_quarantined.get(), "already_ingested": self.objects_known.get(),
            "other_keys": self.other_keys.get(), "digests": self.digests.get(), "eventbridge": self.eventbridge.get(),
            "new": self.events_new.get(), "duplicates": self.events_duplicate.get(),
            "filtered": self.events_filtered.get(),
            "receive_calls": self.receive_calls.get(), "receive_seconds": self.receive_micros.get() as f64 / 1e6,
            "fetch_seconds": self.fetch_micros.get() as f64 / 1e6, "fetch_bytes": self.fetch_bytes.get(),
            "submit_wait_seconds": self.submit_wait_micros.get() as f64 / 1e6,
        })
    }

    /// Registers the counters `/metrics` shows.
    pub fn register(&self, registry: &telemetry::Registry) {
        let counters: [(&'static str, &'static str, &Counter); 14] = [
            (
                "trailwatch_messages_received_total",
                "Notifications received (SQS messages and SNS pushes).",
                &self.messages,
            ),
            (
                "trailwatch_messages_deleted_total",
                "SQS messages deleted after their objects were committed.",
                &self.deleted,
            ),
            (
                "trailwatch_message_problems_total",
                "Messages left on their queue (or refused to SNS) with a reason.",
                &self.problems,
            ),
            (
                "trailwatch_validation_messages_total",
                "CloudTrail validation messages and S3 test events.",
                &self.validations,
            ),
            ("trailwatch_objects_committed_total", "Log objects committed.", &self.objects_committed),
            (
                "trailwatch_objects_quarantined_total",
                "Log objects quarantined for bad content.",
                &self.objects_quarantined,
            ),
            (
                "trailwatch_objects_already_ingested_total",
                "Objects named again that the ledger already had.",
                &self.objects_known,
            ),
            (
                "trailwatch_other_keys_total",
                "Announced keys that are not CloudTrail log files (skipped).",
                &self.other_keys,
            ),
            ("trailwatch_digests_seen_total", "Digest files announced.", &self.digests),
            ("trailwatch_events_new_total", "Events stored.", &self.events_new),
            (
                "trailwatch_events_duplicate_total",
                "Events delivered again (same eventID), not stored twice.",
                &self.events_duplicate,
            ),
            (
                "trailwatch_events_filtered_total",
                "Records dropped by the ingest filters before storage.",
                &self.events_filtered,
            ),
            ("trailwatch_queue_receives_total", "SQS ReceiveMessage calls.", &self.receive_calls),
            ("trailwatch_s3_fetched_bytes_total", "Bytes of log objects fetched from S3.", &self.fetch_bytes),
        ];
        for (name, help, counter) in counters {
            registry.counter(name, help, &[], counter);
        }
    }
}

/// An SQS message: acknowledged by deleting it.
struct SqsMessage {
    sqs: aws_sdk_sqs::Client,
    queue: String,
    receipt_handle: String,
    message_id: String,
    body: String,
    receive_count: u32,
}

/// Where a message came from, and so how it is acknowledged.
enum Origin {
    Sqs(SqsMessage),
    /// An SNS HTTPS push: the HTTP request waits for the outcome (SNS retries on an error).
    Push(oneshot::Sender<Result<(), String>>),
}

/// A message being handled.
/// A message being handled: where it came from, and its share of the in-flight limit.
struct Held {
    origin: Origin,
    _permit: Option<OwnedSemaphorePermit>,
}

struct Ack {
    sqs: aws_sdk_sqs::Client,
    queue: String,
    receipt_handle: String,
    message_id: String,
    was_problem: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("topic {0} is not configured for any account")]
    UnknownTopic(String),
    #[error("account {0} is not connected yet (its role could not be assumed)")]
    AccountUnavailable(String),
    #[error("{0}")]
    Failed(String),
    #[error("the objects were not committed in time; SNS will retry")]
    Timeout,
}

/// What the consumer has done so far (it changes whenever a message arrives or an object
/// settles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub messages: u64,
    /// Objects committed or quarantined.
    pub objects: u64,
    pub deleted: u64,
    pub problems: u64,
}

/// Shared state of the running consumer.
pub struct Consumer {
    accounts: Vec<AccountSpec>,
    /// Connected accounts' clients, by account name.
    clients: Mutex<HashMap<String, AccountClients>>,
    store: Store,
    /// Where fetched objects go; refuses them once the pipeline has finished.
    submitter: Submitter<Ticket>,
    /// Taken (and finished) at shutdown.
    pipeline: Mutex<Option<Pipeline<Ticket>>>,
    board: Arc<StatusBoard>,
    inflight: Mutex<InFlight<Held>>,
    next_seq: AtomicU64,
    acks: mpsc::UnboundedSender<Ack>,
    /// Acknowledgements sent to the deleter and not yet deleted (shutdown waits for them).
    acks_queued: AtomicU64,
    fetch_permits: Arc<Semaphore>,
    message_permits: Arc<Semaphore>,
    config: ConsumerConfig,
    pub counters: Counters,
}

/// A running consumer: its tasks, and the steps that stop it in order (see [`start`]).
pub struct Handle {
    consumer: Arc<Consumer>,
    /// Cancelled to stop receiving: the receive loops, the visibility extender and the
    /// status flusher end on it.
    stop: CancellationToken,
    receivers: Vec<JoinHandle<()>>,
    extender: JoinHandle<()>,
    flusher: JoinHandle<()>,
    /// Takes settled objects from the pipeline (through a thread) into [`Consumer::settle`].
    settler: JoinHandle<()>,
    /// Deletes acknowledged messages in batches.
    deleter: JoinHandle<()>,
}

/// Starts consuming the queues of `accounts`: one receive loop per queue (times
/// `receivers_per_queue`), the pipeline that parses and commits their objects, and the tasks
/// around it. Stop it with the [`Handle`]'s steps, in their order.
pub async fn start(
    accounts: Vec<AccountSpec>,
    settings: AwsSettings,
    store: Store,
    pipeline: ingest::PipelineSpec,
    config: ConsumerConfig,
    board: Arc<StatusBoard>,
) -> Result<Handle, store::StoreError> {
    let pipeline = Pipeline::<Ticket>::from_spec(store.writer()?, pipeline);
    let settled_source = pipeline.settled().clone();
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let consumer = Arc::new(Consumer {
        accounts: accounts.clone(),
        clients: Mutex::new(HashMap::new()),
        store: store.clone(),
        submitter: pipeline.submitter(),
        pipeline: Mutex::new(Some(pipeline)),
        board: board.clone(),
        inflight: Mutex::new(InFlight::default()),
        next_seq: AtomicU64::new(1),
        acks: ack_tx,
        acks_queued: AtomicU64::new(0),
        fetch_permits: Arc::new(Semaphore::new(config.fetch_concurrency.max(1))),
        message_permits: Arc::new(Semaphore::new(config.max_inflight_messages.max(10))),
        config: config.clone(),
        counters: Counters::default(),
    });

    // Settled objects: a blocking thread forwards them into the runtime.
    let (settled_tx, mut settled_rx) = mpsc::unbounded_channel::<Settled<Ticket>>();
    std::thread::Builder::new()
        .name("settled-forward".into())
        .spawn(move || {
            for s in settled_source {
                if settled_tx.send(s).is_err() {
                    return;
                }
            }
        })
        .expect("spawn settled forwarder");
    let settler = {
        let c = consumer.clone();
        tokio::spawn(async move {
            while let Some(s) = settled_rx.recv().await {
                c.settle(s);
            }
        })
    };
    let deleter = tokio::spawn(delete_acks(ack_rx, consumer.clone()));
    let stop = CancellationToken::new();
    let extender = tokio::spawn(extend_visibility(consumer.clone(), stop.clone()));
    let flusher = {
        let (c, stop) = (consumer.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(c.config.status_flush) => {}
                    _ = stop.cancelled() => return,
                }
                let (board, store) = (c.board.clone(), c.store.clone());
                let flushed = tokio::task::spawn_blocking(move || board.flush(store.state())).await;
                if let Ok(Err(e)) = flushed {
                    tracing::warn!(error = %e, "could not store integration status");
                }
            }
        })
    };

    let base = account::base_config(&settings).await;
    let receivers = accounts
        .into_iter()
        .map(|spec| {
            let (c, base, settings, stop) = (consumer.clone(), base.clone(), settings.clone(), stop.clone());
            tokio::spawn(async move { c.run_account(spec, base, settings, stop).await })
        })
        .collect();
    Ok(Handle { consumer, stop, receivers, extender, flusher, settler, deleter })
}

impl Handle {
    pub fn consumer(&self) -> &Arc<Consumer> {
        &self.consumer
    }

    /// Shutdown, step 1: no new long polls. A poll under way is let finish (SQS would hand
    /// an abandoned poll's messages to nobody until their visibility timed out) and what it
    /// returns is released at once.
    pub async fn stop_receiving(&mut self) {
        self.stop.cancel();
        for r in self.receivers.drain(..) {
            let _ = r.await;
        }
    }

    /// Step 2: waits up to `grace` for the messages in flight to be handled.
    pub async fn drain(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        while self.consumer.in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Step 3: messages still in flight go back to their queue at once (pushes are answered
    /// with an error, so SNS retries them).
    pub async fn release_in_flight(&mut self) {
        self.consumer.release_inflight().await;
        let _ = (&mut self.extender).await;
    }

    /// Step 4: commits what the pipeline holds and settles it, writes the status board, and
    /// waits (briefly) for acknowledged messages to be deleted. Returns the consumer, whose
    /// counters tell what this run did.
    pub async fn flush(self) -> Result<Arc<Consumer>, store::StoreError> {
        let Handle { consumer, settler, flusher, deleter, .. } = self;
        // What the pipeline holds is committed: its messages were released above or are
        // already settled, so nothing is acknowledged that was not handled.
        let pipeline = consumer.pipeline.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(p) = pipeline {
            match tokio::task::spawn_blocking(move || p.finish()).await {
                // Outcomes the forwarder did not take: counted like the others (their
                // messages, if any, were released and will find the objects in the ledger).
                Ok(Ok(rest)) => rest.into_iter().for_each(|s| consumer.settle(s)),
                Ok(Err(e)) => tracing::error!(error = %e, "ingest pipeline failed"),
                Err(e) => tracing::error!(error = %e, "ingest pipeline panicked"),
            }
        }
        // The forwarder ends with the pipeline's writer.
        let _ = tokio::time::timeout(Duration::from_secs(5), settler).await;
        let _ = flusher.await;
        consumer.board.flush(consumer.store.state())?;
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while consumer.acks_pending() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        deleter.abort();
        Ok(consumer)
    }
}

impl Consumer {
    /// Changes whenever a message arrives or an object settles (idle detection).
    pub fn activity(&self) -> Activity {
        let c = &self.counters;
        Activity {
            messages: c.messages.get(),
            objects: c.objects_committed.get() + c.objects_quarantined.get(),
            deleted: c.deleted.get(),
            problems: c.problems.get(),
        }
    }

    /// Messages being handled now.
    pub fn in_flight(&self) -> usize {
        self.in_flight_messages().len()
    }

    fn acks_pending(&self) -> bool {
        self.acks_queued.load(Ordering::Relaxed) > 0
    }

    async fn run_account(
        self: Arc<Self>,
        spec: AccountSpec,
        base: aws_config::SdkConfig,
        settings: AwsSettings,
        stop: CancellationToken,
    ) {
        let mut delay = Duration::from_secs(1);
        let clients = loop {
            match account::connect(&base, &settings, &spec).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(account = %spec.name, reason = e.reason_code(), error = %e, retry_in = ?delay, "account unavailable");
                    self.board.error(&spec.name, "", &e.to_string(), now_millis());
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.cancelled() => return,
                    }
                    delay = (delay * 2).min(Duration::from_secs(300));
                }
            }
        };
        tracing::info!(account = %spec.name, "account connected");
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).insert(spec.name.clone(), clients.clone());
        self.board.connected(&spec.name, now_millis());
        let Some(queue) = spec.queue_url.clone() else {
            tracing::info!(account = %spec.name, "no queue_url: nothing to consume (backfill only)");
            return;
        };
        let receivers: Vec<_> = (0..self.config.receivers_per_queue.max(1))
            .map(|_| {
                let (c, clients, queue, stop) = (self.clone(), clients.clone(), queue.clone(), stop.clone());
                tokio::spawn(async move { c.receive_loop(clients, queue, stop).await })
            })
            .collect();
        for r in receivers {
            let _ = r.await;
        }
    }

    async fn receive_loop(self: Arc<Self>, clients: AccountClients, queue: String, stop: CancellationToken) {
        let name = clients.spec.name.clone();
        let mut delay = Duration::from_millis(500);
        let mut failing = false;
        while !stop.is_cancelled() {
            let permits = tokio::select! {
                p = self.message_permits.clone().acquire_many_owned(10) => p.expect("semaphore never closed"),
                _ = stop.cancelled() => return,
            };
            let receive = clients
                .sqs
                .receive_message()
                .queue_url(&queue)
                .max_number_of_messages(10)
                .wait_time_seconds(self.config.wait_time_secs)
                .visibility_timeout(self.config.visibility_timeout_secs)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send();
            // Not abandoned at shutdown: SQS would still hand the messages of an abandoned long
            // poll to it, and they would stay invisible for the whole visibility timeout.
            let started = Instant::now();
            let out = receive.await;
            self.counters.receive_calls.add(1);
            self.counters.receive_micros.add(started.elapsed().as_micros() as u64);
            if stop.is_cancelled() {
                if let Ok(out) = out {
                    for m in out.messages.unwrap_or_default() {
                        if let Some(h) = m.receipt_handle {
                            release(&clients.sqs, &queue, &h).await;
                        }
                    }
                }
                return;
            }
            match out {
                Err(e) => {
                    let detail = format!("receiving from {queue} failed: {}", DisplayErrorContext(&e));
                    tracing::warn!(account = %name, error = %detail, retry_in = ?delay, "queue unavailable");
                    self.board.error(&name, "", &detail, now_millis());
                    failing = true;
                    drop(permits);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.cancelled() => return,
                    }
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
                Ok(out) => {
                    if failing {
                        self.board.connected(&name, now_millis());
                        failing = false;
                    }
                    delay = Duration::from_millis(500);
                    let mut permits = permits;
                    for m in out.messages.unwrap_or_default() {
                        let permit = permits.split(1).expect("one permit per message of ten");
                        let c = self.clone();
                        let (clients, queue) = (clients.clone(), queue.clone());
                        tokio::spawn(async move { c.handle(clients, queue, m, permit).await });
                    }
                }
            }
        }
    }

    async fn handle(
        self: Arc<Self>,
        clients: AccountClients,
        queue: String,
        m: aws_sdk_sqs::types::Message,
        permit: OwnedSemaphorePermit,
    ) {
        self.counters.messages.add(1);
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let body = m.body.unwrap_or_default();
        let receive_count = m
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let Some(receipt_handle) = m.receipt_handle else {
            tracing::warn!(queue, "message without a receipt handle");
            return;
        };
        let parsed = Message::parse(&body);
        let origin = Origin::Sqs(SqsMessage {
            sqs: clients.sqs.clone(),
            queue,
            receipt_handle,
            message_id: m.message_id.unwrap_or_default(),
            body,
            receive_count,
        });
        self.track(seq, origin, Some(permit));
        let problem = match parsed {
            Err(e) => Some(Problem::new(e.reason_code(), e.to_string())),
            Ok(message) => self.dispatch(seq, &clients, message).await,
        };
        self.complete(seq, problem);
    }

    /// Acts on a parsed message; a message-level problem is returned (objects' problems
    /// arrive through `complete`).
    async fn dispatch(self: &Arc<Self>, seq: u64, clients: &AccountClients, message: Message) -> Option<Problem> {
        let spec = &clients.spec;
        let now = now_millis();
        match message.notification {
            Notification::Validation | Notification::S3Test { .. } => {
                tracing::info!(account = %spec.name, "validation message received: the trail's notifications reach this queue");
                self.counters.validations.add(1);
                self.board.validation(&spec.name, now);
                None
            }
            Notification::Subscription { topic_arn, .. } => {
                // SQS subscriptions are confirmed by SNS itself; nothing to do.
                tracing::info!(account = %spec.name, topic = %topic_arn, "SNS subscription message on the queue; acknowledged");
                None
            }
            Notification::EventBridge { id, account, region, record } => {
                if let Some(acct) =
                    account.as_deref().filter(|a| *a != spec.account_id && spec.organization_id.is_none())
                {
                    return Some(Problem::new(
                        "foreign_account",
                        format!("EventBridge event of account {acct}, not {}", spec.account_id),
                    ));
                }
                let region = region.unwrap_or_default();
                self.board.notification(&spec.name, &region, now);
                self.counters.eventbridge.add(1);
                let file = format!("{{\"Records\":[{record}]}}").into_bytes();
                let meta = ObjectMeta {
                    source: "eventbridge".into(),
                    bucket: "eventbridge".into(),
                    key: format!("{}/{}/{}", account.unwrap_or_default(), region, id),
                    size: file.len() as u64,
                };
                self.expect_object(seq);
                if let Err(problem) = self.submit(seq, spec, region, meta, file).await {
                    self.complete(seq, Some(problem));
                }
                None
            }
            Notification::Objects { objects, skipped, .. } => {
                self.counters.other_keys.add(skipped as u64);
                let mut logs = Vec::new();
                let mut digests = Vec::new();
                for o in objects {
                    if let Some(b) = spec.bucket.as_deref().filter(|b| *b != o.bucket) {
                        return Some(Problem::new(
                            "foreign_bucket",
                            format!("object s3://{}/{} is not in {b}", o.bucket, o.key),
                        ));
                    }
                    match TrailKey::parse(&o.key) {
                        Err(_) => self.counters.other_keys.add(1),
                        Ok(k) if !spec.owns(&k) => {
                            return Some(Problem::new(
                                "foreign_account",
                                format!("key {} belongs to account {}, not {}", o.key, k.account_id, spec.account_id),
                            ))
                        }
                        Ok(k) if k.kind == ObjectKind::Digest => digests.push((o, k)),
                        Ok(k) => logs.push((o, k)),
                    }
                }
                for (o, k) in digests {
                    self.board.notification(&spec.name, &k.region, now);
                    let d = DigestSeen {
                        account: spec.name.clone(),
                        bucket: o.bucket,
                        key: o.key,
                        size: o.size,
                        seen_at: now,
                    };
                    if let Err(e) = on_store(&self.store, move |s| s.state().record_digest(&d)).await {
                        return Some(Problem::new("store_failed", e.to_string()));
                    }
                    self.counters.digests.add(1);
                }
                for (o, k) in logs {
                    self.board.notification(&spec.name, &k.region, now);
                    let (bucket, key) = (o.bucket.clone(), o.key.clone());
                    match on_store(&self.store, move |s| s.state().ledger_entry(&bucket, &key)).await {
                        Ok(Some(_)) => {
                            self.counters.objects_known.add(1);
                            continue;
                        }
                        Ok(None) => {}
                        Err(e) => return Some(Problem::new("store_failed", e.to_string())),
                    }
                    self.expect_object(seq);
                    let (c, clients) = (self.clone(), clients.clone());
                    tokio::spawn(async move {
                        if let Err(problem) = c.fetch_and_submit(seq, &clients, o, k.region).await {
                            c.complete(seq, Some(problem));
                        }
                    });
                }
                None
            }
        }
    }

    /// Fetches an object and hands it to the pipeline, which settles it; `Err` when it did
    /// not get there (then the caller completes the object with the problem).
    async fn fetch_and_submit(
        &self,
        seq: u64,
        clients: &AccountClients,
        o: model::ObjectRef,
        region: String,
    ) -> Result<(), Problem> {
        let spec = &clients.spec;
        let permit = self.fetch_permits.clone().acquire_owned().await.expect("semaphore never closed");
        let started = Instant::now();
        let fetched = fetch::get_object(&clients.s3, &o.bucket, &o.key).await;
        self.counters.fetch_micros.add(started.elapsed().as_micros() as u64);
        match fetched {
            Ok(bytes) => {
                self.counters.fetch_bytes.add(bytes.len() as u64);
                let meta = ObjectMeta { source: "sqs".into(), bucket: o.bucket, key: o.key, size: bytes.len() as u64 };
                let result = self.submit(seq, spec, region, meta, bytes).await;
                drop(permit);
                result
            }
            Err(e) => {
                let now = now_millis();
                tracing::warn!(account = %spec.name, region = %region, bucket = %o.bucket, key = %o.key,
                    reason = e.reason_code(), error = %e, "object not readable");
                if e.is_finding() {
                    let finding = IngestFinding {
                        kind: e.reason_code().into(),
                        account: spec.name.clone(),
                        bucket: o.bucket.clone(),
                        key: o.key.clone(),
                        detail: e.to_string(),
                        first_seen: now,
                        last_seen: now,
                        occurrences: 1,
                    };
                    if let Err(se) = on_store(&self.store, move |s| s.state().record_finding(&finding)).await {
                        tracing::error!(error = %se, "could not record finding");
                    }
                }
                self.board.error(&spec.name, &region, &e.to_string(), now);
                Err(Problem::new(e.reason_code(), e.to_string()))
            }
        }
    }

    /// Hands an object's bytes to the pipeline; `Err` when it could not.
    async fn submit(
        &self,
        seq: u64,
        spec: &AccountSpec,
        region: String,
        meta: ObjectMeta,
        bytes: Vec<u8>,
    ) -> Result<(), Problem> {
        let job = ObjectJob::in_memory(meta, bytes, Ticket { message: Some(seq), account: spec.name.clone(), region });
        let started = Instant::now();
        let submitted = submit_blocking(self.submitter.clone(), job).await;
        self.counters.submit_wait_micros.add(started.elapsed().as_micros() as u64);
        submitted.map_err(|detail| Problem::new("pipeline_stopped", detail))
    }

    fn track(&self, seq: u64, origin: Origin, permit: Option<OwnedSemaphorePermit>) {
        self.in_flight_messages().track(seq, Held { origin, _permit: permit }, Instant::now());
    }

    /// The account whose configured `topic_arn` this is.
    pub fn account_for_topic(&self, topic_arn: &str) -> Option<&AccountSpec> {
        self.accounts.iter().find(|a| a.topic_arn.as_deref() == Some(topic_arn))
    }

    /// Handles a message that SNS pushed (its signature already verified): the same as an
    /// SQS message of the topic's account, and returns once every object it names is
    /// committed, so the HTTP answer tells SNS whether to retry.
    pub async fn push(self: &Arc<Self>, topic_arn: &str, message: Message, wait: Duration) -> Result<(), PushError> {
        let spec = self.account_for_topic(topic_arn).ok_or_else(|| PushError::UnknownTopic(topic_arn.to_owned()))?;
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner()).get(&spec.name).cloned();
        let clients = clients.ok_or_else(|| PushError::AccountUnavailable(spec.name.clone()))?;
        self.counters.messages.add(1);
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (reply, outcome) = oneshot::channel();
        self.track(seq, Origin::Push(reply), None);
        let problem = self.dispatch(seq, &clients, message).await;
        self.complete(seq, problem);
        match tokio::time::timeout(wait, outcome).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(detail))) => Err(PushError::Failed(detail)),
            Ok(Err(_)) => Err(PushError::Failed("the consumer stopped".into())),
            Err(_) => Err(PushError::Timeout),
        }
    }

    fn in_flight_messages(&self) -> std::sync::MutexGuard<'_, InFlight<Held>> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expect_object(&self, seq: u64) {
        self.in_flight_messages().expect_object(seq);
    }

    /// An object (or the handler) of message `seq` is done; the message is finished when
    /// nothing of it is pending.
    fn complete(&self, seq: u64, problem: Option<Problem>) {
        let finished = self.in_flight_messages().complete(seq, problem);
        let (held, problems) = match finished {
            None => return, // more is pending, or it was released at shutdown
            Some(Finished::Acknowledge(held)) => (held, Vec::new()),
            Some(Finished::Retry(held, problems)) => (held, problems),
        };
        let detail = problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("; ");
        let done = match held.origin {
            Origin::Push(reply) => {
                if !problems.is_empty() {
                    self.counters.problems.add(1);
                }
                let _ = reply.send(if problems.is_empty() { Ok(()) } else { Err(detail) });
                return;
            }
            Origin::Sqs(m) => m,
        };
        if problems.is_empty() {
            self.acks_queued.fetch_add(1, Ordering::Relaxed);
            let _ = self.acks.send(Ack {
                sqs: done.sqs,
                queue: done.queue,
                receipt_handle: done.receipt_handle,
                message_id: done.message_id,
                was_problem: done.receive_count > 1,
            });
            return;
        }
        self.counters.problems.add(1);
        let reason = problems[0].reason.clone();
        tracing::warn!(queue = %done.queue, message_id = %done.message_id, reason = %reason, detail = %detail,
            receive_count = done.receive_count, "message not handled; left on the queue");
        let now = now_millis();
        let problem = MessageProblem {
            queue: done.queue.clone(),
            message_id: done.message_id.clone(),
            reason,
            detail,
            body: done.body,
            receive_count: done.receive_count,
            first_seen: now,
            last_seen: now,
        };
        // Try again later rather than at once: longer after each delivery, at most 15 min.
        let backoff = self.config.retry_backoff_secs.saturating_mul(done.receive_count as i32).clamp(0, 900);
        let (sqs, queue, handle) = (done.sqs, done.queue, done.receipt_handle);
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = on_store(&store, move |s| s.state().record_message_problem(&problem)).await {
                tracing::error!(error = %e, "could not record message problem");
            }
            let r = sqs
                .change_message_visibility()
                .queue_url(&queue)
                .receipt_handle(handle)
                .visibility_timeout(backoff)
                .send()
                .await;
            if let Err(e) = r {
                tracing::debug!(error = %DisplayErrorContext(&e), "could not set the retry delay");
            }
        });
    }

    fn settle(&self, s: Settled<Ticket>) {
        let now = now_millis();
        let t = &s.receipt;
        let problem = match s.outcome {
            Outcome::Committed { counts, newest_event, filtered, .. } => {
                self.counters.objects_committed.add(1);
                self.counters.events_filtered.add(filtered);
                self.counters.events_new.add(counts.new);
                self.counters.events_duplicate.add(counts.duplicates);
                self.board.object(&t.account, &t.region, counts.new, newest_event, now);
                tracing::debug!(account = %t.account, region = %t.region, bucket = %s.meta.bucket, key = %s.meta.key,
                    new = counts.new, duplicates = counts.duplicates, filtered, "object committed");
                None
            }
            Outcome::Quarantined { reason, detail } => {
                // Bad content is recorded in the ledger: the message has done its job.
                self.counters.objects_quarantined.add(1);
                tracing::warn!(account = %t.account, region = %t.region, bucket = %s.meta.bucket, key = %s.meta.key,
                    reason, detail = %detail, "object quarantined");
                let what = format!("s3://{}/{} quarantined: {reason}: {detail}", s.meta.bucket, s.meta.key);
                self.board.error(&t.account, &t.region, &what, now);
                None
            }
            Outcome::Failed { detail } => Some(Problem::new("object_read_failed", detail)),
        };
        if let Some(seq) = t.message {
            self.complete(seq, problem);
        }
    }

    /// Shutdown: whatever is still in flight goes back to the queue at once.
    async fn release_inflight(&self) {
        let rest = self.in_flight_messages().release_all();
        if !rest.is_empty() {
            tracing::info!(messages = rest.len(), "releasing unfinished messages to the queue");
        }
        for m in rest {
            match m.origin {
                Origin::Sqs(m) => release(&m.sqs, &m.queue, &m.receipt_handle).await,
                Origin::Push(reply) => {
                    let _ = reply.send(Err("trailwatch is shutting down".into()));
                }
            }
        }
    }
}

/// Makes a message visible again at once (it was received but will not be handled here).
async fn release(sqs: &aws_sdk_sqs::Client, queue: &str, receipt_handle: &str) {
    let r = sqs
        .change_message_visibility()
        .queue_url(queue)
        .receipt_handle(receipt_handle)
        .visibility_timeout(0)
        .send()
        .await;
    if let Err(e) = r {
        tracing::debug!(error = %DisplayErrorContext(&e), "could not release a message; it returns when its visibility times out");
    }
}

/// Hands a job to the pipeline from async code: `submit` blocks while the pipeline is full
/// (backpressure), so it runs on a blocking thread.
pub(crate) async fn submit_blocking(pipeline: Submitter<Ticket>, job: ObjectJob<Ticket>) -> Result<(), String> {
    match tokio::task::spawn_blocking(move || pipeline.submit(job)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("submitting to the pipeline failed: {e}")),
    }
}

/// Runs a store call on a blocking thread. The store's small writes wait for the ingest
/// writer's open transaction (up to a commit interval), which must not stall the runtime's
/// few worker threads.
async fn on_store<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, store::StoreError> + Send + 'static,
) -> Result<T, store::StoreError> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Deletes acknowledged messages in batches of up to ten per queue.
async fn delete_acks(mut rx: mpsc::UnboundedReceiver<Ack>, consumer: Arc<Consumer>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
        while batch.len() < 10 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(a)) => batch.push(a),
                _ => break,
            }
        }
        let mut by_queue: HashMap<String, Vec<Ack>> = HashMap::new();
        for a in batch {
            by_queue.entry(a.queue.clone()).or_default().push(a);
        }
        for (queue, acks) in by_queue {
            delete_batch(&consumer, &queue, acks).await;
        }
    }
}

async fn delete_batch(consumer: &Consumer, queue: &str, acks: Vec<Ack>) {
    let n = acks.len() as u64;
    let entries = acks
        .iter()
        .enumerate()
        .map(|(i, a)| {
            DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(&a.receipt_handle).build()
        })
        .collect::<Result<Vec<_>, _>>()
        .expect("id and receipt handle are set");
    let result = acks[0].sqs.delete_message_batch().queue_url(queue).set_entries(Some(entries)).send().await;
    let failed: Vec<usize> = match result {
        Ok(out) => out
            .failed
            .iter()
            .map(|f| {
                tracing::warn!(queue, code = %f.code, message = ?f.message, "delete failed; the message will come back and be skipped");
                f.id.parse::<usize>().unwrap_or(usize::MAX)
            })
            .collect(),
        Err(e) => {
            tracing::warn!(queue, error = %DisplayErrorContext(&e), "batch delete failed; the messages will come back and be skipped");
            (0..acks.len()).collect()
        }
    };
    for (i, a) in acks.iter().enumerate() {
        if failed.contains(&i) {
            continue;
        }
        consumer.counters.deleted.add(1);
        if a.was_problem {
            let (queue, id) = (queue.to_owned(), a.message_id.clone());
            if let Err(e) = on_store(&consumer.store, move |s| s.state().clear_message_problem(&queue, &id)).await {
                tracing::warn!(error = %e, "could not clear a message problem");
            }
        }
    }
    consumer.acks_queued.fetch_sub(n, Ordering::Relaxed);
}

/// Renews the visibility of messages still in flight a third of the way into their timeout.
async fn extend_visibility(consumer: Arc<Consumer>, stop: CancellationToken) {
    let timeout = consumer.config.visibility_timeout_secs.max(3);
    let every = Duration::from_secs(timeout as u64 / 3);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        let due: Vec<(aws_sdk_sqs::Client, String, String)> = consumer
            .in_flight_messages()
            .older_than(every, Instant::now())
            .filter_map(|m| match &m.origin {
                Origin::Sqs(m) => Some((m.sqs.clone(), m.queue.clone(), m.receipt_handle.clone())),
                Origin::Push(_) => None,
            })
            .collect();
        let mut by_queue: HashMap<String, (aws_sdk_sqs::Client, Vec<String>)> = HashMap::new();
        for (sqs, queue, handle) in due {
            by_queue.entry(queue).or_insert_with(|| (sqs, Vec::new())).1.push(handle);
        }
        for (queue, (sqs, handles)) in by_queue {
            for chunk in handles.chunks(10) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        ChangeMessageVisibilityBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(h)
                            .visibility_timeout(timeout)
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .expect("id and receipt handle are set");
                let r = sqs.change_message_visibility_batch().queue_url(&queue).set_entries(Some(entries)).send().await;
                match r {
                    Ok(out) if out.failed.is_empty() => {
                        tracing::debug!(queue, messages = chunk.len(), "visibility extended")
                    }
                    Ok(out) => {
                        tracing::warn!(queue, failed = out.failed.len(), "could not extend some messages' visibility")
                    }
                    Err(e) => tracing::warn!(queue, error = %DisplayErrorContext(&e), "could not extend visibility"),
                }
            }
        }
    }
}
