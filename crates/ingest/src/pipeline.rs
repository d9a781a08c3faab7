//! The ingest pipeline: object jobs in, committed (or quarantined) objects out.
//!
//! ```text
//!  submit(job) ──► job queue ──► parse workers (N threads: open, inflate, parse, batch, pack)
//!                                   │  a whole object, once parsed (most objects)
//!                                   │  or, past `stream_batches`, a stream of its batches
//!                                   ▼
//!                              ready queue ──► writer (1 thread, one object at a time)
//!                                                 begin_object / insert / finish|quarantine|abort
//!                                                 commit every `commit_events`, or after
//!                                                 `commit_interval` (idle) / `_busy` (backlog)
//!                                                 ▼
//!                               settled: (receipt, outcome) — only after the commit
//! ```
//!
//! **Invariant:** a [`Settled`] value (and with it the source's receipt: an SQS receipt
//! handle, a file name) is released only after the transaction holding that object's events
//! and ledger row has committed. Sources acknowledge from `settled` and nowhere else.
//!
//! Objects reach the writer in the order their parsing finishes, so the single writer never
//! waits on one slow object while others are ready. An object larger than `stream_batches`
//! batches is streamed instead, so memory stays bounded however large a file is: its worker
//! hands the writer a bounded channel and keeps filling it. Every queue is bounded. The
//! writer only ever waits on the object it is writing, whose worker never waits on the
//! writer's queue again, so the pipeline cannot deadlock.

use std::collections::VecDeque;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use detect::RuleSet;
use model::{EventReader, FileSummary, LogFileError, ParsedEvent};
use store::{EventBatch, EventWriter, InsertCounts, ObjectMeta, ObjectTotals, RawFramer, StoreError};

use crate::inline_detection::{BatchScans, Detection, ObjectHits, RecordedAlerts};

/// Opens an object's bytes (a file, an S3 GET body). Runs on a parse worker.
pub type Opener = Box<dyn FnOnce() -> std::io::Result<Box<dyn Read + Send>> + Send>;

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Parse threads (gunzip + JSON). Defaults to the number of CPUs.
    pub workers: usize,
    /// Events per batch handed from a worker to the writer.
    pub chunk_events: usize,
    /// Raw JSON bytes per batch, whichever limit is hit first.
    pub chunk_bytes: usize,
    /// An object of more batches than this is streamed to the writer instead of handed over
    /// whole (bounds the memory one object can take).
    pub stream_batches: usize,
    /// Commit once this many events are pending…
    pub commit_events: u64,
    /// …or this long after the previous commit when no parsed object is waiting (a live
    /// trickle is committed, and acknowledged, within this)…
    pub commit_interval: Duration,
    /// …or this long after it while objects keep coming (a backlog). A commit writes every
    /// page the group dirtied; pages of the indexes new events land in at many places
    /// (event ids of the day, postings of the segment) are dirtied by nearly every group,
    /// so fewer, larger groups write far less: on 1 M events into a 10 M store, 500 ms
    /// groups wrote 6.1 GB and took 30 s, 5 s groups 2.0 GB and 20 s.
    pub commit_interval_busy: Duration,
    /// Objects queued for the workers, and parsed objects queued for the writer.
    pub inflight_objects: usize,
    /// How much lower than the writer the parse threads run (nice increment, Linux). The
    /// writer is the one serial stage: when both want a core, parsing should wait. On two
    /// cores this took ingest from 0.44–0.47 to 0.49–0.53 of parse-only throughput.
    pub parse_nice: i32,
    /// Records to drop before they are stored or scanned (`[[ingest.filters]]`).
    pub filter: Option<std::sync::Arc<crate::filter::EventFilter>>,
    /// What one object may cost to read (inflated size, ratio, record size); an object
    /// past them is quarantined with the reason.
    pub read_limits: model::ReadLimits,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        PipelineConfig {
            workers,
            chunk_events: 1024,
            chunk_bytes: 2 << 20,
            stream_batches: 4,
            commit_events: 500_000,
            commit_interval: Duration::from_millis(500),
            commit_interval_busy: Duration::from_secs(5),
            inflight_objects: workers * 8,
            parse_nice: 5,
            filter: None,
            read_limits: model::ReadLimits::default(),
        }
    }
}

/// What a pipeline is started with: its tuning and, optionally, detection.
pub struct PipelineSpec {
    pub config: PipelineConfig,
    pub detection: Option<Detection>,
}

/// One object to ingest.
pub struct ObjectJob<R> {
    pub meta: ObjectMeta,
    pub open: Opener,
    /// Handed back in [`Settled`] once the outcome is durable.
    pub receipt: R,
}

impl<R> ObjectJob<R> {
    /// An object whose bytes are already in memory (an S3 GET body, an EventBridge record).
    pub fn in_memory(meta: ObjectMeta, bytes: Vec<u8>, receipt: R) -> ObjectJob<R> {
        ObjectJob {
            meta,
            open: Box::new(move || Ok(Box::new(std::io::Cursor::new(bytes)) as Box<dyn Read + Send>)),
            receipt,
        }
    }
}

/// What happened to an object. Reported only after it is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Committed {
        counts: InsertCounts,
        summary: FileSummary,
        /// The latest `eventTime` among the object's records (for "newest event" status).
        newest_event: Option<model::EpochMillis>,
        /// Detection hits recorded with the object, and alerts they opened.
        alerts: RecordedAlerts,
        /// Records the ingest filter dropped (counted in `summary.records`, never stored).
        filtered: u64,
    },
    /// The content is bad; the reason is in the ledger (and the quarantine listing).
    Quarantined { reason: &'static str, detail: String },
    /// Not read to the end for a reason unrelated to its content (I/O); nothing was
    /// recorded, so the object will be tried again.
    Failed { detail: String },
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
    #[error("store failed, ingest stopped")]
    Store(#[from] StoreError),
    #[error("the ingest pipeline has stopped")]
    Stopped,
}

/// How reading an object ended.
enum End {
    /// The file's summary, its newest event time, and how many records the filter dropped.
    Done(FileSummary, Option<model::EpochMillis>, u64),
    Failed(LogFileError),
    Panicked(String),
}

enum Chunk {
    /// A batch and what the rules matched in it.
    Batch(EventBatch, BatchScans),
    End(End),
}

/// A parsed (or parsing) object on its way to the writer, with the rules its batches were
/// scanned with.
enum Ready<R> {
    Whole {
        meta: ObjectMeta,
        receipt: R,
        rules: Option<Arc<RuleSet>>,
        batches: Vec<(EventBatch, BatchScans)>,
        end: End,
    },
    Streaming {
        meta: ObjectMeta,
        receipt: R,
        rules: Option<Arc<RuleSet>>,
        chunks: Receiver<Chunk>,
    },
}

/// Batches buffered between a streaming object's worker and the writer.
const STREAM_BUFFER: usize = 4;

pub struct Pipeline<R> {
    jobs: Submitter<R>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<Result<(), PipelineError>>>,
    settled_rx: Receiver<Settled<R>>,
}

impl<R: Send + 'static> Pipeline<R> {
    /// Starts the workers and the writer.
    pub fn start(writer: Box<dyn EventWriter>, config: PipelineConfig) -> Pipeline<R> {
        Self::start_with(writer, config, None)
    }

    /// Starts the pipeline with detection: parse threads run the rules, the writer records
    /// alerts with the events that caused them.
    pub fn start_with_detection(
        writer: Box<dyn EventWriter>,
        config: PipelineConfig,
        detection: Detection,
    ) -> Pipeline<R> {
        Self::start_with(writer, config, Some(detection))
    }

    /// Starts the pipeline `spec` describes.
    pub fn from_spec(writer: Box<dyn EventWriter>, spec: PipelineSpec) -> Pipeline<R> {
        Self::start_with(writer, spec.config, spec.detection)
    }

    fn start_with(writer: Box<dyn EventWriter>, config: PipelineConfig, detection: Option<Detection>) -> Pipeline<R> {
        let inflight = config.inflight_objects.max(1);
        let (job_tx, job_rx) = bounded::<ObjectJob<R>>(inflight);
        let (ready_tx, ready_rx) = bounded::<Ready<R>>(inflight);
        let (settled_tx, settled_rx) = crossbeam_channel::unbounded();
        // Compressing raw records is the store's work, but it needs no database: do it here.
        let pack = writer.wants_packed_raw();
        let live = detection.as_ref().map(|d| d.live.clone());
        let workers = (0..config.workers.max(1))
            .map(|i| {
                let (job_rx, ready_tx, config) = (job_rx.clone(), ready_tx.clone(), config.clone());
                let live = live.clone();
                std::thread::Builder::new()
                    .name(format!("parse-{i}"))
                    .spawn(move || {
                        lower_priority(config.parse_nice);
                        for job in job_rx {
                            // The rules of the moment, for the whole object (a reload takes
                            // effect at the next object).
                            let rules = live.as_ref().map(|l| l.rules.load_full());
                            if !parse_object(job, &ready_tx, &config, pack, rules) {
                                return; // the writer stopped
                            }
                        }
                    })
                    .expect("spawn parse worker")
            })
            .collect();
        // Only workers hold the ready queue: it closes when the last of them is done.
        drop(ready_tx);
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_objects(writer, ready_rx, settled_tx, &config, detection))
            .expect("spawn store writer");
        Pipeline {
            jobs: Submitter { jobs: Arc::new(Mutex::new(Some(job_tx))) },
            workers,
            writer: Some(writer),
            settled_rx,
        }
    }

    /// Queues an object. Blocks while too many objects are waiting (backpressure).
    pub fn submit(&self, job: ObjectJob<R>) -> Result<(), PipelineError> {
        self.jobs.submit(job)
    }

    /// A handle that submits to this pipeline from other threads or tasks, without owning
    /// it: [`finish`](Self::finish) needs the pipeline itself.
    pub fn submitter(&self) -> Submitter<R> {
        self.jobs.clone()
    }

    /// Durable outcomes as they are committed.
    pub fn settled(&self) -> &Receiver<Settled<R>> {
        &self.settled_rx
    }

    /// Waits until every submitted object is written and committed; returns the outcomes
    /// not yet taken from [`settled`](Self::settled).
    pub fn finish(mut self) -> Result<Vec<Settled<R>>, PipelineError> {
        self.jobs.close();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let result = self.writer.take().expect("joined once").join().unwrap_or(Err(PipelineError::Stopped));
        result?;
        Ok(self.settled_rx.try_iter().collect())
    }
}

impl<R> Drop for Pipeline<R> {
    fn drop(&mut self) {
        // Dropping without `finish`: stop taking work; the writer rolls back what it has not
        // committed, which is safe because nothing uncommitted was ever settled.
        self.jobs.close();
    }
}

/// Submits objects to a [`Pipeline`] (clones share it). Once the pipeline finishes, it
/// refuses them with [`PipelineError::Stopped`].
pub struct Submitter<R> {
    /// Taken when the pipeline finishes: the workers stop once the submits in progress
    /// (each holds a clone of the sender while it waits for room) have been taken.
    jobs: Arc<Mutex<Option<Sender<ObjectJob<R>>>>>,
}

impl<R> Clone for Submitter<R> {
    fn clone(&self) -> Self {
        Submitter { jobs: self.jobs.clone() }
    }
}

impl<R> Submitter<R> {
    /// Queues an object. Blocks while too many objects are waiting (backpressure).
    pub fn submit(&self, job: ObjectJob<R>) -> Result<(), PipelineError> {
        let sender = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        sender.ok_or(PipelineError::Stopped)?.send(job).map_err(|_| PipelineError::Stopped)
    }

    fn close(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Lowers the calling thread's scheduling priority by `by` nice steps (Linux: the nice
/// value is per thread). Failure only costs throughput, so it is logged, not fatal.
fn lower_priority(by: i32) {
    #[cfg(target_os = "linux")]
    if by > 0 {
        let tid = Some(rustix::thread::gettid());
        let result = rustix::process::getpriority_process(tid)
            .and_then(|now| rustix::process::setpriority_process(tid, (now + by).min(19)));
        if let Err(e) = result {
            tracing::debug!(error = %e, "could not lower the parse thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

/// Where a worker puts an object's batches: kept until the object is parsed, or streamed
/// once there are too many to keep.
struct Handover<'q, R> {
    ready: &'q Sender<Ready<R>>,
    rules: Option<Arc<RuleSet>>,
    meta: Option<ObjectMeta>,
    receipt: Option<R>,
    batches: Vec<(EventBatch, BatchScans)>,
    stream: Option<Sender<Chunk>>,
    limit: usize,
}

impl<R> Handover<'_, R> {
    /// `false` when the writer is gone.
    fn batch(&mut self, batch: EventBatch, scans: BatchScans) -> bool {
        if let Some(stream) = &self.stream {
            return stream.send(Chunk::Batch(batch, scans)).is_ok();
        }
        self.batches.push((batch, scans));
        if self.batches.len() <= self.limit {
            return true;
        }
        let (tx, rx) = bounded(STREAM_BUFFER);
        let (meta, receipt) = (self.meta.take().expect("once"), self.receipt.take().expect("once"));
        if self.ready.send(Ready::Streaming { meta, receipt, rules: self.rules.clone(), chunks: rx }).is_err() {
            return false;
        }
        for (b, scans) in self.batches.drain(..) {
            if tx.send(Chunk::Batch(b, scans)).is_err() {
                return false;
            }
        }
        self.stream = Some(tx);
        true
    }

    fn end(mut self, end: End) -> bool {
        match self.stream.take() {
            Some(stream) => stream.send(Chunk::End(end)).is_ok(),
            None => {
                let (meta, receipt) = (self.meta.take().expect("once"), self.receipt.take().expect("once"));
                let rules = self.rules.clone();
                self.ready
                    .send(Ready::Whole { meta, receipt, rules, batches: std::mem::take(&mut self.batches), end })
                    .is_ok()
            }
        }
    }
}

/// Parses one object and hands it to the writer. `false` when the writer is gone.
fn parse_object<R>(
    job: ObjectJob<R>,
    ready: &Sender<Ready<R>>,
    config: &PipelineConfig,
    pack: bool,
    rules: Option<Arc<RuleSet>>,
) -> bool {
    let mut handover = Handover {
        ready,
        rules: rules.clone(),
        meta: Some(job.meta),
        receipt: Some(job.receipt),
        batches: Vec::new(),
        stream: None,
        limit: config.stream_batches,
    };
    let open = job.open;
    let result = catch_unwind(AssertUnwindSafe(|| parse_into(open, &mut handover, config, pack, rules.as_deref())));
    let end = match result {
        Ok(Some(end)) => end,
        Ok(None) => return false,
        Err(panic) => End::Panicked(
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into()),
        ),
    };
    handover.end(end)
}

/// Reads the object into `handover`; `None` when the writer is gone.
fn parse_into<R>(
    open: Opener,
    handover: &mut Handover<'_, R>,
    config: &PipelineConfig,
    pack: bool,
    rules: Option<&detect::RuleSet>,
) -> Option<End> {
    let reader = match open() {
        Ok(r) => r,
        Err(e) => return Some(End::Failed(LogFileError::Io(e))),
    };
    let mut events = match EventReader::with_limits(reader, config.read_limits) {
        Ok(r) => r,
        Err(e) => return Some(End::Failed(e)),
    };
    // For a writer that stores packed records, each record's text is framed for its block as
    // it is read and never becomes a string of its own; otherwise events keep their text.
    let mut framer = pack.then(RawFramer::default);
    let mut chunk: Vec<ParsedEvent> = Vec::with_capacity(config.chunk_events);
    let mut scans: BatchScans = Vec::new();
    let mut timer = crate::inline_detection::ScanTimer::default();
    let mut bytes = 0;
    let mut newest_event = None;
    let filter = config.filter.as_deref().filter(|f| !f.is_empty());
    let mut filtered = 0u64;
    loop {
        // Rules see the record's text while it is at hand, with the columns just parsed.
        let row = chunk.len() as u32;
        let mut scan = |text: &str, e: &ParsedEvent| {
            if let Some(rules) = rules {
                let started = std::time::Instant::now();
                let s = rules.scan(text, e.event_name.as_deref(), e.event_source.as_deref());
                timer.add(started.elapsed());
                if !s.is_empty() {
                    scans.push((row, s));
                }
            }
        };
        // The filter decides first: a dropped record is neither framed nor scanned.
        let mut kept = true;
        let next = match framer.as_mut() {
            Some(f) => events.next_event_with(|text, e| {
                kept = filter.is_none_or(|flt| flt.keeps(e));
                if kept {
                    f.push(text);
                    scan(text, e);
                }
            }),
            None => events.next_event().inspect(|e| {
                if let Some(e) = e {
                    kept = filter.is_none_or(|flt| flt.keeps(e));
                    if kept {
                        scan(&e.raw, e);
                    }
                }
            }),
        };
        let done = match next {
            Ok(Some(_)) if !kept => {
                filtered += 1;
                false
            }
            Ok(Some(event)) => {
                bytes += event.raw.len();
                newest_event = newest_event.max(Some(event.event_time));
                chunk.push(event);
                false
            }
            Ok(None) => true,
            Err(e) => return Some(End::Failed(e)),
        };
        let raw_bytes = framer.as_ref().map_or(bytes, RawFramer::bytes);
        let full = chunk.len() >= config.chunk_events || raw_bytes >= config.chunk_bytes;
        if (full || done) && !chunk.is_empty() {
            let events = std::mem::replace(&mut chunk, Vec::with_capacity(config.chunk_events));
            bytes = 0;
            let batch = match framer.as_mut() {
                Some(f) => EventBatch::with_packed(events, f.finish()),
                None => EventBatch::new(events),
            };
            if !handover.batch(batch, std::mem::take(&mut scans)) {
                return None;
            }
        }
        if done {
            return Some(End::Done(events.summary(), newest_event, filtered));
        }
    }
}

fn write_objects<R>(
    mut writer: Box<dyn EventWriter>,
    ready: Receiver<Ready<R>>,
    settled_tx: Sender<Settled<R>>,
    config: &PipelineConfig,
    mut detection: Option<Detection>,
) -> Result<(), PipelineError> {
    let mut pending: Vec<Settled<R>> = Vec::new();
    let mut last_commit = Instant::now();
    // Objects taken from the ready queue ahead of their turn, for a writer that wants to
    // know their events early (see `EventWriter::expect_events`); written in queue order.
    let mut ahead: VecDeque<Ready<R>> = VecDeque::new();
    let lookahead = writer.lookahead_events();
    loop {
        let next = if let Some(r) = ahead.pop_front() {
            Ok(r)
        } else {
            let next = if pending.is_empty() {
                ready.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                ready.recv_timeout(config.commit_interval.saturating_sub(last_commit.elapsed()))
            };
            match next {
                Ok(r) if lookahead > 0 => Ok(look_ahead(&mut *writer, r, &ready, &mut ahead, lookahead)?),
                other => other,
            }
        };
        let settled = match next {
            Ok(Ready::Whole { meta, receipt, rules, batches, end }) => {
                follow(&mut detection, rules.as_ref());
                writer.begin_object(&meta)?;
                let mut batches =
                    batches.into_iter().map(|(b, s)| Chunk::Batch(b, s)).chain(std::iter::once(Chunk::End(end)));
                let outcome = write_object(&mut *writer, &meta, detection.as_mut(), || batches.next())?;
                Settled { receipt, meta, outcome }
            }
            Ok(Ready::Streaming { meta, receipt, rules, chunks }) => {
                follow(&mut detection, rules.as_ref());
                writer.begin_object(&meta)?;
                let outcome = write_object(&mut *writer, &meta, detection.as_mut(), || chunks.recv().ok())?;
                Settled { receipt, meta, outcome }
            }
            Err(RecvTimeoutError::Timeout) => {
                commit_and_settle(&mut *writer, &mut pending, &settled_tx)?;
                last_commit = Instant::now();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        pending.push(settled);
        let since = last_commit.elapsed();
        if writer.pending_events() >= config.commit_events
            || (since >= config.commit_interval && ahead.is_empty() && ready.is_empty())
            || since >= config.commit_interval_busy
        {
            commit_and_settle(&mut *writer, &mut pending, &settled_tx)?;
            last_commit = Instant::now();
        }
    }
    commit_and_settle(&mut *writer, &mut pending, &settled_tx)
}

/// Takes the whole objects already waiting behind `first` (up to about `events` events in
/// all) into `ahead` and tells the writer every event of them, `first`'s included, in one
/// call. Stops at an object that streams: its events are not in memory yet.
fn look_ahead<R>(
    writer: &mut dyn EventWriter,
    first: Ready<R>,
    ready: &Receiver<Ready<R>>,
    ahead: &mut VecDeque<Ready<R>>,
    events: usize,
) -> Result<Ready<R>, StoreError> {
    fn ids<'a, R>(r: &'a Ready<R>, out: &mut Vec<&'a str>) {
        if let Ready::Whole { batches, .. } = r {
            out.extend(batches.iter().flat_map(|(b, _)| b.events.iter().map(|e| e.event_id.as_str())));
        }
    }
    let mut seen = 0;
    let count = |r: &Ready<R>| match r {
        Ready::Whole { batches, .. } => batches.iter().map(|(b, _)| b.events.len()).sum(),
        Ready::Streaming { .. } => 0,
    };
    if matches!(first, Ready::Whole { .. }) {
        seen += count(&first);
        while seen < events {
            let Ok(r) = ready.try_recv() else { break };
            let whole = matches!(r, Ready::Whole { .. });
            seen += count(&r);
            ahead.push_back(r);
            if !whole {
                break;
            }
        }
    }
    let mut all = Vec::with_capacity(seen);
    ids(&first, &mut all);
    for r in ahead.iter() {
        ids(r, &mut all);
    }
    if !all.is_empty() {
        writer.expect_events(&all)?;
    }
    Ok(first)
}

/// Detection takes the rules the object was scanned with (see [`Detection::follow`]).
fn follow(detection: &mut Option<Detection>, rules: Option<&Arc<RuleSet>>) {
    if let (Some(d), Some(rules)) = (detection.as_mut(), rules) {
        d.follow(rules);
    }
}

/// Writes the batches `next` yields until the object's end; the object is already begun.
/// With detection, the object's new events' hits are recorded right after its ledger row.
fn write_object(
    writer: &mut dyn EventWriter,
    meta: &ObjectMeta,
    mut detection: Option<&mut Detection>,
    mut next: impl FnMut() -> Option<Chunk>,
) -> Result<Outcome, StoreError> {
    let mut hits = ObjectHits::default();
    loop {
        match next() {
            Some(Chunk::Batch(mut batch, scans)) => {
                writer.insert(&mut batch)?;
                if let Some(d) = detection.as_deref() {
                    if !scans.is_empty() {
                        hits.add(d, &batch, scans);
                    }
                    if let Some(regions) = d.regions.as_ref() {
                        hits.observe_regions(regions, &batch);
                    }
                }
            }
            Some(Chunk::End(End::Done(summary, newest_event, filtered))) => {
                let counts = writer.finish_object(&ObjectTotals::from(&summary))?;
                let alerts = match detection.as_deref_mut() {
                    Some(d) if !hits.is_empty() => hits.record(writer, d)?,
                    _ => RecordedAlerts::default(),
                };
                tracing::debug!(bucket = %meta.bucket, key = %meta.key, records = summary.records, new = counts.new, hits = alerts.hits, "object written");
                return Ok(Outcome::Committed { counts, summary, newest_event, alerts, filtered });
            }
            Some(Chunk::End(End::Failed(e))) if e.is_content_error() => {
                let (reason, detail) = (e.reason_code(), e.to_string());
                writer.quarantine_object(meta, reason, &detail)?;
                tracing::warn!(bucket = %meta.bucket, key = %meta.key, reason, detail = %detail, "object quarantined");
                return Ok(Outcome::Quarantined { reason, detail });
            }
            Some(Chunk::End(End::Failed(e))) => {
                writer.abort_object()?;
                tracing::warn!(bucket = %meta.bucket, key = %meta.key, error = %e, "object not read; will retry");
                return Ok(Outcome::Failed { detail: e.to_string() });
            }
            Some(Chunk::End(End::Panicked(what))) => {
                writer.abort_object()?;
                tracing::error!(bucket = %meta.bucket, key = %meta.key, panic = %what, "parser panicked; will retry");
                return Ok(Outcome::Failed { detail: format!("internal error while parsing: {what}") });
            }
            None => {
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

impl store::StateWriter for DiscardWriter {
    fn record_alerts(&mut self, hits: &[store::AlertHit], _: &store::AlertPolicy) -> Result<Vec<i64>, StoreError> {
        Ok((0..hits.len() as i64).collect())
    }
    fn save_correlation_windows(&mut self, _: &[store::CorrelationWindow]) -> Result<(), StoreError> {
        Ok(())
    }
    fn remember_regions(&mut self, _: &[store::KnownRegion]) -> Result<(), StoreError> {
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts everything, then fails to commit (a full disk, a lost lock).
    struct CommitFails(DiscardWriter);

    impl EventWriter for CommitFails {
        fn begin_object(&mut self, o: &ObjectMeta) -> Result<(), StoreError> {
            self.0.begin_object(o)
        }
        fn insert(&mut self, b: &mut EventBatch) -> Result<InsertCounts, StoreError> {
            self.0.insert(b)
        }
        fn finish_object(&mut self, t: &ObjectTotals) -> Result<InsertCounts, StoreError> {
            self.0.finish_object(t)
        }
        fn quarantine_object(&mut self, o: &ObjectMeta, r: &str, d: &str) -> Result<(), StoreError> {
            self.0.quarantine_object(o, r, d)
        }
        fn abort_object(&mut self) -> Result<(), StoreError> {
            self.0.abort_object()
        }
        fn commit(&mut self) -> Result<(), StoreError> {
            Err(StoreError::NoObject("commit (injected failure)"))
        }
        fn pending_events(&self) -> u64 {
            0
        }
    }

    impl store::StateWriter for CommitFails {
        fn record_alerts(&mut self, h: &[store::AlertHit], p: &store::AlertPolicy) -> Result<Vec<i64>, StoreError> {
            self.0.record_alerts(h, p)
        }
        fn save_correlation_windows(&mut self, w: &[store::CorrelationWindow]) -> Result<(), StoreError> {
            self.0.save_correlation_windows(w)
        }
        fn remember_regions(&mut self, r: &[store::KnownRegion]) -> Result<(), StoreError> {
            self.0.remember_regions(r)
        }
    }

    #[test]
    fn nothing_settles_unless_the_commit_succeeds() {
        let pipeline: Pipeline<u32> =
            Pipeline::start(Box::new(CommitFails(DiscardWriter::default())), PipelineConfig::default());
        for i in 0..5 {
            let doc = br#"{"Records":[{"eventID":"e","eventTime":"2024-01-01T00:00:00Z"}]}"#;
            let open: Opener = Box::new(move || Ok(Box::new(&doc[..]) as Box<dyn Read + Send>));
            // Submitting may fail once the writer has stopped; either way nothing may settle.
            let _ = pipeline.submit(ObjectJob { meta: ObjectMeta::local(format!("k{i}"), 1), open, receipt: i });
        }
        let settled_rx = pipeline.settled().clone();
        assert!(matches!(pipeline.finish(), Err(PipelineError::Store(_))));
        assert_eq!(settled_rx.try_iter().count(), 0);
    }

    /// A writer that wants to know events ahead, and records what it was told and when.
    #[derive(Default)]
    struct LooksAhead {
        log: Arc<Mutex<Vec<String>>>,
        expected: rustc_hash::FxHashSet<String>,
    }

    impl EventWriter for LooksAhead {
        fn lookahead_events(&self) -> usize {
            // Asked once, as the writer starts: the objects are parsed meanwhile and wait in
            // the ready queue.
            std::thread::sleep(Duration::from_millis(300));
            1000
        }
        fn expect_events(&mut self, ids: &[&str]) -> Result<(), StoreError> {
            // "expect N k3 k1 …": how many events, and the objects they are of (ids are
            // "e{object}-{record}"), in the order given.
            let mut objects: Vec<String> = Vec::new();
            for id in ids {
                let object = format!("k{}", id.trim_start_matches('e').split('-').next().unwrap());
                if objects.last() != Some(&object) {
                    objects.push(object);
                }
            }
            self.log.lock().unwrap().push(format!("expect {} {}", ids.len(), objects.join(" ")));
            self.expected.extend(ids.iter().map(|s| s.to_string()));
            Ok(())
        }
        fn begin_object(&mut self, o: &ObjectMeta) -> Result<(), StoreError> {
            self.log.lock().unwrap().push(format!("begin {}", o.key));
            Ok(())
        }
        fn insert(&mut self, b: &mut EventBatch) -> Result<InsertCounts, StoreError> {
            for e in &b.events {
                assert!(self.expected.contains(&e.event_id), "{} inserted before it was announced", e.event_id);
            }
            Ok(InsertCounts { new: b.len() as u64, duplicates: 0 })
        }
        fn finish_object(&mut self, _: &ObjectTotals) -> Result<InsertCounts, StoreError> {
            Ok(InsertCounts::default())
        }
        fn quarantine_object(&mut self, _: &ObjectMeta, _: &str, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
        fn abort_object(&mut self) -> Result<(), StoreError> {
            Ok(())
        }
        fn commit(&mut self) -> Result<(), StoreError> {
            Ok(())
        }
        fn pending_events(&self) -> u64 {
            0
        }
    }

    impl store::StateWriter for LooksAhead {
        fn record_alerts(&mut self, _: &[store::AlertHit], _: &store::AlertPolicy) -> Result<Vec<i64>, StoreError> {
            Ok(Vec::new())
        }
        fn save_correlation_windows(&mut self, _: &[store::CorrelationWindow]) -> Result<(), StoreError> {
            Ok(())
        }
        fn remember_regions(&mut self, _: &[store::KnownRegion]) -> Result<(), StoreError> {
            Ok(())
        }
    }

    /// Objects waiting in the ready queue are announced to the writer together, before the
    /// first of them begins, up to the writer's lookahead; they are still written one at a
    /// time, in the order they were announced (the ready queue's: parse workers finish in
    /// any order).
    #[test]
    fn waiting_objects_are_announced_together_and_written_in_order() {
        let writer = LooksAhead::default();
        let log = writer.log.clone();
        let pipeline: Pipeline<u32> = Pipeline::start(Box::new(writer), PipelineConfig::default());
        // Ten objects of 150 events each.
        for i in 0..10u32 {
            let records: Vec<String> =
                (0..150).map(|j| format!(r#"{{"eventID":"e{i}-{j}","eventTime":"2024-01-01T00:00:00Z"}}"#)).collect();
            let doc = format!(r#"{{"Records":[{}]}}"#, records.join(",")).into_bytes();
            let open: Opener = Box::new(move || Ok(Box::new(std::io::Cursor::new(doc)) as Box<dyn Read + Send>));
            pipeline.submit(ObjectJob { meta: ObjectMeta::local(format!("k{i}"), 1), open, receipt: i }).unwrap();
        }
        let settled = pipeline.finish().unwrap();
        assert_eq!(settled.len(), 10);
        let log = log.lock().unwrap().clone();
        let begins: Vec<&str> = log.iter().filter_map(|l| l.strip_prefix("begin ")).collect();
        let mut all = begins.clone();
        all.sort_by_key(|k| k[1..].parse::<u32>().unwrap());
        assert_eq!(all, (0..10).map(|i| format!("k{i}")).collect::<Vec<_>>(), "each object written once");
        let expects: Vec<(usize, Vec<&str>)> = log
            .iter()
            .filter_map(|l| l.strip_prefix("expect "))
            .map(|l| {
                let mut words = l.split(' ');
                (words.next().unwrap().parse().unwrap(), words.collect())
            })
            .collect();
        // The first object and the six behind it (the lookahead is reached), then the rest;
        // the first announcement comes before any object begins.
        assert_eq!(expects.iter().map(|e| e.0).collect::<Vec<_>>(), [1050, 450], "{log:?}");
        assert!(log[0].starts_with("expect 1050"), "{log:?}");
        let announced: Vec<&str> = expects.iter().flat_map(|e| e.1.iter().copied()).collect();
        assert_eq!(begins, announced, "written in the order announced: {log:?}");
    }
}
