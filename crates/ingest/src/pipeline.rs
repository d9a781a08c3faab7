//! The ingest pipeline: object jobs in, committed (or quarantined) objects out.
//!
//! ```text
//!  submit(job) ──► job queue ──► parse workers (N threads: open, inflate, parse, chunk)
//!        │                                   │ per-object bounded chunk channel
//!        └──────► order queue ──► writer (1 thread, objects in submission order)
//!                                             │ begin_object / insert / finish|quarantine|abort
//!                                             │ commit every `commit_events` or `commit_interval`
//!                                             ▼
//!                                   settled: (receipt, outcome) — only after the commit
//! ```
//!
//! **Invariant:** a [`Settled`] value (and with it the source's receipt: an SQS receipt
//! handle, a file name) is released only after the transaction holding that object's events
//! and ledger row has committed. Sources acknowledge from `settled` and nowhere else.
//!
//! The writer takes objects in the order they were submitted while workers parse ahead; each
//! object's chunk channel is bounded, and so is the number of objects in flight, so memory
//! stays bounded however large a file is. Workers take jobs in FIFO order, so the object the
//! writer waits for is always being parsed: the pipeline cannot deadlock.

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use model::{EventReader, FileSummary, LogFileError, ParsedEvent};
use store::{EventBatch, EventWriter, InsertCounts, ObjectMeta, ObjectTotals, StoreError};

/// Opens an object's bytes (a file, an S3 GET body). Runs on a parse worker.
pub type Opener = Box<dyn FnOnce() -> std::io::Result<Box<dyn Read + Send>> + Send>;

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Parse threads (gunzip + JSON). Defaults to the number of CPUs.
    pub workers: usize,
    /// Events per chunk handed from a worker to the writer.
    pub chunk_events: usize,
    /// Raw JSON bytes per chunk, whichever limit is hit first.
    pub chunk_bytes: usize,
    /// Commit once this many events are pending…
    pub commit_events: u64,
    /// …or this long after the previous commit, whichever comes first.
    pub commit_interval: Duration,
    /// Objects submitted but not yet written (bounds memory and parse-ahead).
    pub inflight_objects: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        PipelineConfig {
            workers,
            chunk_events: 1024,
            chunk_bytes: 2 << 20,
            commit_events: 50_000,
            commit_interval: Duration::from_millis(500),
            inflight_objects: workers * 2 + 2,
        }
    }
}

/// One object to ingest.
pub struct ObjectJob<R> {
    pub meta: ObjectMeta,
    pub open: Opener,
    /// Handed back in [`Settled`] once the outcome is durable.
    pub receipt: R,
}

/// What happened to an object. Reported only after it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Committed {
        counts: InsertCounts,
        summary: FileSummary,
    },
    /// The content is bad; the reason is in the ledger (and the quarantine listing).
    Quarantined {
        reason: &'static str,
        detail: String,
    },
    /// Not read to the end for a reason unrelated to its content (I/O); nothing was
    /// recorded, so the object will be tried again.
    Failed {
        detail: String,
    },
}

/// An object whose outcome is durable, with the receipt its source gave.
#[derive(Debug)]
pub struct Settled<R> {
    pub receipt: R,
    pub meta: ObjectMeta,
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("store failed, ingest stopped: {0}")]
    Store(#[from] StoreError),
    #[error("the ingest pipeline has stopped")]
    Stopped,
}

enum Chunk {
    Events(EventBatch),
    Done(FileSummary),
    Failed(LogFileError),
    Panicked(String),
}

struct WorkItem {
    open: Opener,
    chunks: Sender<Chunk>,
}

struct Ordered<R> {
    meta: ObjectMeta,
    chunks: Receiver<Chunk>,
    receipt: R,
}

/// Chunks buffered per object between its worker and the writer.
const CHUNKS_PER_OBJECT: usize = 4;

pub struct Pipeline<R> {
    job_tx: Option<Sender<WorkItem>>,
    order_tx: Option<Sender<Ordered<R>>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<Result<(), PipelineError>>>,
    settled_rx: Receiver<Settled<R>>,
}

impl<R: Send + 'static> Pipeline<R> {
    /// Starts the workers and the writer. `writer` receives every object, in submission order.
    pub fn start(writer: Box<dyn EventWriter>, config: PipelineConfig) -> Pipeline<R> {
        let (job_tx, job_rx) = unbounded::<WorkItem>();
        let (order_tx, order_rx) = bounded::<Ordered<R>>(config.inflight_objects.max(1));
        let (settled_tx, settled_rx) = unbounded();
        // Compressing raw records is the store's work, but it needs no database: do it here.
        let pack = writer.wants_packed_raw();
        let workers = (0..config.workers.max(1))
            .map(|i| {
                let job_rx = job_rx.clone();
                let config = config.clone();
                std::thread::Builder::new()
                    .name(format!("parse-{i}"))
                    .spawn(move || {
                        for item in job_rx {
                            parse_object(item, &config, pack);
                        }
                    })
                    .expect("spawn parse worker")
            })
            .collect();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_objects(writer, order_rx, settled_tx, &config))
            .expect("spawn store writer");
        Pipeline { job_tx: Some(job_tx), order_tx: Some(order_tx), workers, writer: Some(writer), settled_rx }
    }

    /// Queues an object. Blocks while too many objects are in flight (backpressure).
    pub fn submit(&self, job: ObjectJob<R>) -> Result<(), PipelineError> {
        let (chunks_tx, chunks_rx) = bounded(CHUNKS_PER_OBJECT);
        let ordered = Ordered { meta: job.meta, chunks: chunks_rx, receipt: job.receipt };
        self.order_tx.as_ref().expect("open until finish").send(ordered).map_err(|_| PipelineError::Stopped)?;
        self.job_tx
            .as_ref()
            .expect("open until finish")
            .send(WorkItem { open: job.open, chunks: chunks_tx })
            .map_err(|_| PipelineError::Stopped)
    }

    /// Durable outcomes as they are committed.
    pub fn settled(&self) -> &Receiver<Settled<R>> {
        &self.settled_rx
    }

    /// Waits until every submitted object is written and committed; returns the outcomes
    /// not yet taken from [`settled`](Self::settled).
    pub fn finish(mut self) -> Result<Vec<Settled<R>>, PipelineError> {
        self.order_tx.take();
        self.job_tx.take();
        let result = self.writer.take().expect("joined once").join().unwrap_or(Err(PipelineError::Stopped));
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        result?;
        Ok(self.settled_rx.try_iter().collect())
    }
}

impl<R> Drop for Pipeline<R> {
    fn drop(&mut self) {
        // Dropping without `finish`: stop taking work; the writer rolls back what it has not
        // committed, which is safe because nothing uncommitted was ever settled.
        self.order_tx.take();
        self.job_tx.take();
    }
}

fn parse_object(item: WorkItem, config: &PipelineConfig, pack: bool) {
    let chunks = item.chunks.clone();
    let result = catch_unwind(AssertUnwindSafe(|| parse_into(item, config, pack)));
    if let Err(panic) = result {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let _ = chunks.send(Chunk::Panicked(what));
    }
}

fn parse_into(item: WorkItem, config: &PipelineConfig, pack: bool) {
    let send = |c: Chunk| item.chunks.send(c).is_ok();
    let batch = |events: Vec<ParsedEvent>| {
        let mut batch = EventBatch::new(events);
        if pack {
            batch.pack();
        }
        Chunk::Events(batch)
    };
    let reader = match (item.open)() {
        Ok(r) => r,
        Err(e) => {
            send(Chunk::Failed(LogFileError::Io(e)));
            return;
        }
    };
    let mut events = match EventReader::new(reader) {
        Ok(r) => r,
        Err(e) => {
            send(Chunk::Failed(e));
            return;
        }
    };
    let mut chunk = Vec::with_capacity(config.chunk_events);
    let mut bytes = 0;
    loop {
        match events.next_event() {
            Ok(Some(event)) => {
                bytes += event.raw.len();
                chunk.push(event);
                if chunk.len() >= config.chunk_events || bytes >= config.chunk_bytes {
                    bytes = 0;
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(config.chunk_events));
                    if !send(batch(full)) {
                        return; // the writer stopped
                    }
                }
            }
            Ok(None) => {
                if !chunk.is_empty() && !send(batch(chunk)) {
                    return;
                }
                send(Chunk::Done(events.summary()));
                return;
            }
            Err(e) => {
                send(Chunk::Failed(e));
                return;
            }
        }
    }
}

fn write_objects<R>(
    mut writer: Box<dyn EventWriter>,
    order_rx: Receiver<Ordered<R>>,
    settled_tx: Sender<Settled<R>>,
    config: &PipelineConfig,
) -> Result<(), PipelineError> {
    let mut pending: Vec<Settled<R>> = Vec::new();
    let mut last_commit = Instant::now();
    loop {
        let next = if pending.is_empty() {
            order_rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            order_rx.recv_timeout(config.commit_interval.saturating_sub(last_commit.elapsed()))
        };
        let Ordered { meta, chunks, receipt } = match next {
            Ok(o) => o,
            Err(RecvTimeoutError::Timeout) => {
                commit_and_settle(&mut *writer, &mut pending, &settled_tx)?;
                last_commit = Instant::now();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let outcome = write_object(&mut *writer, &meta, &chunks)?;
        pending.push(Settled { receipt, meta, outcome });
        if writer.pending_events() >= config.commit_events || last_commit.elapsed() >= config.commit_interval {
            commit_and_settle(&mut *writer, &mut pending, &settled_tx)?;
            last_commit = Instant::now();
        }
    }
    commit_and_settle(&mut *writer, &mut pending, &settled_tx)
}

fn write_object(
    writer: &mut dyn EventWriter,
    meta: &ObjectMeta,
    chunks: &Receiver<Chunk>,
) -> Result<Outcome, StoreError> {
    writer.begin_object(meta)?;
    loop {
        match chunks.recv() {
            Ok(Chunk::Events(mut batch)) => {
                writer.insert(&mut batch)?;
            }
            Ok(Chunk::Done(summary)) => {
                let counts = writer.finish_object(&ObjectTotals::from(&summary))?;
                tracing::debug!(bucket = %meta.bucket, key = %meta.key, records = summary.records, new = counts.new, "object written");
                return Ok(Outcome::Committed { counts, summary });
            }
            Ok(Chunk::Failed(e)) if e.is_content_error() => {
                let (reason, detail) = (e.reason_code(), e.to_string());
                writer.quarantine_object(meta, reason, &detail)?;
                tracing::warn!(bucket = %meta.bucket, key = %meta.key, reason, detail = %detail, "object quarantined");
                return Ok(Outcome::Quarantined { reason, detail });
            }
            Ok(Chunk::Failed(e)) => {
                writer.abort_object()?;
                tracing::warn!(bucket = %meta.bucket, key = %meta.key, error = %e, "object not read; will retry");
                return Ok(Outcome::Failed { detail: e.to_string() });
            }
            Ok(Chunk::Panicked(what)) => {
                writer.abort_object()?;
                tracing::error!(bucket = %meta.bucket, key = %meta.key, panic = %what, "parser panicked; will retry");
                return Ok(Outcome::Failed { detail: format!("internal error while parsing: {what}") });
            }
            Err(_) => {
                writer.abort_object()?;
                return Ok(Outcome::Failed { detail: "parse worker stopped".into() });
            }
        }
    }
}

/// An [`EventWriter`] that keeps nothing: runs the pipeline with parsing as the only cost,
/// as the baseline of `trailwatch bench ingest`.
#[derive(Debug, Default)]
pub struct DiscardWriter {
    object: InsertCounts,
}

impl EventWriter for DiscardWriter {
    fn begin_object(&mut self, _: &ObjectMeta) -> Result<(), StoreError> {
        self.object = InsertCounts::default();
        Ok(())
    }
    fn insert(&mut self, batch: &mut EventBatch) -> Result<InsertCounts, StoreError> {
        let counts = InsertCounts { new: batch.len() as u64, duplicates: 0 };
        self.object += counts;
        Ok(counts)
    }
    fn finish_object(&mut self, _: &ObjectTotals) -> Result<InsertCounts, StoreError> {
        Ok(std::mem::take(&mut self.object))
    }
    fn quarantine_object(&mut self, _: &ObjectMeta, _: &str, _: &str) -> Result<(), StoreError> {
        self.object = InsertCounts::default();
        Ok(())
    }
    fn abort_object(&mut self) -> Result<(), StoreError> {
        self.object = InsertCounts::default();
        Ok(())
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    fn pending_events(&self) -> u64 {
        0
    }
}

/// The one place outcomes are released: after the commit that made them durable.
fn commit_and_settle<R>(
    writer: &mut dyn EventWriter,
    pending: &mut Vec<Settled<R>>,
    settled_tx: &Sender<Settled<R>>,
) -> Result<(), PipelineError> {
    writer.commit()?;
    for s in pending.drain(..) {
        // A caller that stopped listening has nothing to acknowledge.
        let _ = settled_tx.send(s);
    }
    Ok(())
}
