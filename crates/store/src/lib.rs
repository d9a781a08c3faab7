//! Where events and the ingest ledger live.
//!
//! * [`EventStore`] and [`StateStore`] — the two seams: events (written through an
//!   [`EventWriter`], searched, summarised, kept) and everything beside them (the ledger,
//!   alerts and their outbox, integrity state, users). [`Store`], one of each, is what every
//!   other crate holds. Callers pass typed queries ([`EventQuery`]); no SQL crosses this API.
//! * [`EventWriter`] — the one place events are written. An object's events and its ledger
//!   row are one unit: [`begin_object`](EventWriter::begin_object), any number of
//!   [`insert`](EventWriter::insert) calls, then [`finish_object`](EventWriter::finish_object)
//!   or [`quarantine_object`](EventWriter::quarantine_object). Objects are grouped into
//!   transactions and become durable together at [`commit`](EventWriter::commit); a crash
//!   before that leaves none of them, a crash after leaves all of them. Events are keyed by
//!   `eventID`: a record delivered again (org trail and member trail, EventBridge and S3, a
//!   retried message) is counted as a duplicate and not stored twice.
//! * [`SqliteStore`] — the embedded backend (WAL, one file).
//!
//! ```
//! use store::{EventQuery, EventStore, ObjectMeta};
//! let store = store::SqliteStore::open_in_memory().unwrap();
//! let mut writer = store.writer().unwrap();
//! let event = model::ParsedEvent::from_json(
//!     r#"{"eventID":"e1","eventTime":"2024-01-15T10:45:23Z","eventName":"StopLogging"}"#).unwrap();
//! writer.begin_object(&ObjectMeta::local("trail/a.json.gz", 10)).unwrap();
//! writer.insert(&mut store::EventBatch::new(vec![event])).unwrap();
//! writer.finish_object(&store::ObjectTotals { records: 1, ..Default::default() }).unwrap();
//! writer.commit().unwrap();
//! let found = store.search(&EventQuery { event_name: Some("StopLogging".into()), ..Default::default() }).unwrap();
//! assert_eq!(found[0].event_id, "e1");
//! ```

pub mod alerts;
pub mod auth;
mod batch;
mod clickhouse;
pub mod integration;
pub mod integrity;
pub mod migrate;
mod ops;
mod postgres;
mod query;
pub mod redact;
pub mod retention;
mod scaleout;
mod sqlite;
#[doc(hidden)]
pub mod testing;

pub use alerts::{
    Alert, AlertFilter, AlertHit, AlertPolicy, AlertState, AlertSubject, Backlog, CorrelationWindow, Delivery,
    KnownRegion, SinkRoute,
};
pub use auth::{ApiToken, Role, Session, User};
pub use batch::{forget_raw_dictionaries, EventBatch, PackedRaw, RawFramer, UnpackError};
pub use clickhouse::{ClickHouse, ClickHouseConfig};
pub use integration::Verdict;
pub use integrity::{FindingKind, IntegrityChain, IntegrityFinding, Silence};
pub use ops::{DigestSeen, IngestFinding, IntegrationStatus, MessageProblem};
pub use query::{is_access_denied, Dimension, EventQuery, EventRow, HistogramPoint, Page, Summary, SummarySpec};
pub use redact::redact_urls;
pub use retention::{RetentionPolicy, RetentionReport, StorageStats};
pub use scaleout::{ClickHouseEvents, ScaleOutStore};
pub use sqlite::{PlanChoice, SqliteStore};

use std::sync::Arc;

use model::EpochMillis;

/// Where events live: the object write protocol ([`EventWriter`]), search, summaries,
/// retention and the event forwarders' cursors. SQLite keeps them beside the state in one
/// file; the scale-out backend keeps them in ClickHouse (its writer also writes the ledger
/// rows and detection state of the objects it commits, in the state store: see `scaleout`).
pub trait EventStore: Send + Sync {
    /// A writer with its own connection. Writers serialise with each other (one transaction
    /// at a time per database); readers are never blocked.
    fn writer(&self) -> Result<Box<dyn EventWriter>, StoreError>;

    /// Events matching `query`, newest first (ties broken by arrival order, newest first).
    fn search(&self, query: &EventQuery) -> Result<Vec<EventRow>, StoreError> {
        let mut rows = Vec::new();
        self.for_each_event(query, &mut |row| {
            rows.push(row);
            true
        })?;
        Ok(rows)
    }

    /// Like [`search`](Self::search), handing rows to `f` one at a time (for output of any
    /// size); `f` returns `false` to stop.
    fn for_each_event(&self, query: &EventQuery, f: &mut dyn FnMut(EventRow) -> bool) -> Result<(), StoreError>;

    /// The stored event with this `eventID`.
    fn event(&self, event_id: &str) -> Result<Option<EventRow>, StoreError>;

    /// Events whose records name `resource` (an ARN, id or name, as
    /// [`model::resources::touches`] matches it) at or after `since`, newest first, at most
    /// `limit`. This default reads every event of the range; a store with a resource index
    /// reads only the events that may name it.
    fn resource_events(&self, resource: &str, since: EpochMillis, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        let q = EventQuery { since: Some(since), ..Default::default() };
        self.for_each_event(&q, &mut |r| {
            if model::resources::touches(&r.raw, resource) {
                found.push(r);
            }
            found.len() < limit
        })?;
        Ok(found)
    }

    /// Most frequent values of `dimension` among the events matching `query` (a
    /// [`summarize`](Self::summarize) of that one column).
    fn top(&self, dimension: Dimension, query: &EventQuery, limit: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let spec = SummarySpec { tops: vec![dimension], top_n: limit, ..Default::default() };
        Ok(self.summarize(query, &spec)?.tops.pop().map(|(_, t)| t).unwrap_or_default())
    }

    /// Counts, histogram and top values of the events `query` matches, in one pass.
    fn summarize(&self, query: &EventQuery, spec: &SummarySpec) -> Result<Summary, StoreError>;

    /// What the store knows of a principal (exact normalised principal) and of the sessions
    /// and identities linked to it: sessions it issued, the human behind it, same name.
    fn principals_related(&self, principal: &str, limit: usize) -> Result<Vec<PrincipalInfo>, StoreError>;

    /// How many events, from when to when, and how many principals.
    fn event_stats(&self) -> Result<EventStats, StoreError>;

    /// Brings counts kept beside the events up to date ahead of the summaries that would
    /// otherwise do it (the scale-out store's hour counts); returns the hours counted. The
    /// SQLite store's writer keeps its rollups current itself: nothing to do.
    fn refresh_counts(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Deletes what `policy` says has expired, a bounded slice at a time (at most
    /// `max_units` blocks or partitions), in short transactions beside ingest. Pass
    /// `resume_after` back from the previous report until it is `None`. Events an alert
    /// refers to are kept.
    fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now: EpochMillis,
        resume_after: Option<i64>,
        max_units: usize,
    ) -> Result<RetentionReport, StoreError>;

    /// The space the store takes.
    fn storage(&self) -> Result<StorageStats, StoreError>;

    /// Up to `limit` events that arrived after arrival position `position` (an
    /// [`EventRow::row`]), oldest arrival first — what an event forwarder sends next. Only a
    /// store whose arrival order is its commit order can answer (a position once passed
    /// never gains an earlier event); the others say [`StoreError::Unsupported`].
    fn events_after(&self, position: i64, limit: usize) -> Result<Vec<EventRow>, StoreError>;

    /// The newest arrival position (0 for an empty store).
    fn last_position(&self) -> Result<i64, StoreError>;

    /// How far the forwarder `name` has delivered.
    fn forward_cursor(&self, name: &str) -> Result<Option<ForwardCursor>, StoreError>;

    /// Records how far a forwarder has delivered (after its sink accepted the events).
    fn save_forward_cursor(&self, cursor: &ForwardCursor) -> Result<(), StoreError>;
}

/// Everything beside the events: the ingest ledger, operational tables (message problems,
/// findings, digests seen, integration status), alerts and their outbox, correlation
/// windows, integrity state, users, sessions and API tokens. SQLite keeps it in the events'
/// file; the scale-out backend in PostgreSQL.
pub trait StateStore: Send + Sync {
    /// The ledger row of one object, if it was ever committed or quarantined.
    fn ledger_entry(&self, bucket: &str, key: &str) -> Result<Option<LedgerEntry>, StoreError>;

    /// All ledger rows of a bucket whose key starts with `prefix` (one query, for listing
    /// a whole tree or bucket prefix against the ledger).
    fn ledger_entries(&self, bucket: &str, prefix: &str) -> Result<Vec<LedgerEntry>, StoreError>;

    /// Quarantined objects, oldest first.
    fn quarantined(&self) -> Result<Vec<LedgerEntry>, StoreError>;

    /// Objects committed and quarantined.
    fn object_counts(&self) -> Result<ObjectCounts, StoreError>;

    /// Records (or counts again) a message that could not be handled.
    fn record_message_problem(&self, problem: &MessageProblem) -> Result<(), StoreError>;

    /// Messages that could not be handled, most recently seen first.
    fn message_problems(&self) -> Result<Vec<MessageProblem>, StoreError>;

    /// Forgets a message problem (the message was handled after all).
    fn clear_message_problem(&self, queue: &str, message_id: &str) -> Result<(), StoreError>;

    /// Records (or counts again) an object that could not be read.
    fn record_finding(&self, finding: &IngestFinding) -> Result<(), StoreError>;

    fn findings(&self) -> Result<Vec<IngestFinding>, StoreError>;

    /// Records a digest file a notification announced (once per key).
    fn record_digest(&self, digest: &DigestSeen) -> Result<(), StoreError>;

    fn digests_seen(&self) -> Result<Vec<DigestSeen>, StoreError>;

    /// Digests first seen after `seen_at` (what continuous validation polls for).
    fn digests_seen_after(&self, seen_at: EpochMillis) -> Result<Vec<DigestSeen>, StoreError>;

    /// Replaces the stored status of `(status.account, status.region)`.
    fn put_integration_status(&self, status: &IntegrationStatus) -> Result<(), StoreError>;

    /// Every stored integration status, by account then region.
    fn integration_status(&self) -> Result<Vec<IntegrationStatus>, StoreError>;

    /// Alerts matching `filter`, most recently seen first.
    fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError>;

    fn alert(&self, id: i64) -> Result<Option<Alert>, StoreError>;

    /// The `eventID`s attached to an alert.
    fn alert_event_ids(&self, id: i64) -> Result<Vec<String>, StoreError>;

    /// Moves an alert to `state` (with an optional comment); `false` if there is no such alert.
    fn set_alert_state(&self, id: i64, state: AlertState, comment: Option<&str>) -> Result<bool, StoreError>;

    /// Events attached to alerts, per rule id.
    fn rule_hits(&self) -> Result<Vec<(String, u64)>, StoreError>;

    /// Persisted correlation windows (to restore detection state at start).
    fn correlation_windows(&self) -> Result<Vec<CorrelationWindow>, StoreError>;

    /// Undelivered outbox rows whose next attempt is due at `now`, oldest first.
    fn due_deliveries(&self, now: EpochMillis, limit: usize) -> Result<Vec<Delivery>, StoreError>;

    /// Every outbox row of an alert.
    fn deliveries(&self, alert_id: i64) -> Result<Vec<Delivery>, StoreError>;

    fn delivery_succeeded(&self, id: i64, at: EpochMillis) -> Result<(), StoreError>;

    /// Records a failed attempt and when to try again.
    fn delivery_failed(&self, id: i64, error: &str, next_attempt: EpochMillis) -> Result<(), StoreError>;

    /// Undelivered rows per sink.
    fn outbox_backlog(&self) -> Result<Vec<Backlog>, StoreError>;

    /// Every (account, region) seen, with its first event.
    fn known_regions(&self) -> Result<Vec<KnownRegion>, StoreError>;

    /// Records what a validation run verified (newest digest and log only move forward).
    fn record_integrity_chains(&self, chains: &[IntegrityChain]) -> Result<(), StoreError>;

    fn integrity_chains(&self) -> Result<Vec<IntegrityChain>, StoreError>;

    /// Records validation findings; returns the ones not recorded before.
    fn record_integrity_findings(&self, findings: &[IntegrityFinding]) -> Result<Vec<IntegrityFinding>, StoreError>;

    /// Every finding, most recently seen first.
    fn integrity_findings(&self) -> Result<Vec<IntegrityFinding>, StoreError>;

    fn silences(&self) -> Result<Vec<Silence>, StoreError>;

    /// Records (or replaces) a silent account/region.
    fn set_silence(&self, silence: &Silence) -> Result<(), StoreError>;

    /// Ends the silence of `silence`'s account, region and kind; returns it if there was one.
    fn clear_silence(&self, silence: &Silence) -> Result<Option<Silence>, StoreError>;

    /// Creates the user, or resets its role and password (ending its sessions).
    fn put_user(&self, user: &User) -> Result<(), StoreError>;

    /// Creates `user` only if there is no user at all; true when it did.
    fn create_first_user(&self, user: &User) -> Result<bool, StoreError>;

    fn user(&self, name: &str) -> Result<Option<User>, StoreError>;

    fn users(&self) -> Result<Vec<User>, StoreError>;

    fn create_session(&self, session: &Session) -> Result<(), StoreError>;

    /// The unexpired session whose token hashes to `token_hash`, with its user.
    fn session(&self, token_hash: &[u8], now: EpochMillis) -> Result<Option<(Session, User)>, StoreError>;

    /// Ends a session (and drops expired ones).
    fn delete_session(&self, token_hash: &[u8], now: EpochMillis) -> Result<(), StoreError>;

    /// Stores a new API token; returns its id.
    fn create_api_token(&self, token: &ApiToken) -> Result<i64, StoreError>;

    /// The unexpired API token whose value hashes to `token_hash`, with its user; records
    /// the use.
    fn use_api_token(&self, token_hash: &[u8], now: EpochMillis) -> Result<Option<(ApiToken, User)>, StoreError>;

    /// API tokens, of one user or of all.
    fn api_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>, StoreError>;

    fn delete_api_token(&self, id: i64) -> Result<bool, StoreError>;

    /// Deletes every API token of `user` (after a password reset); returns how many.
    fn revoke_api_tokens(&self, user: &str) -> Result<usize, StoreError>;

    /// Whether this process should perform `duty` now. With one process per store (SQLite)
    /// it always does; workers sharing a scale-out store elect one leader per duty, and
    /// another takes over when the leader goes away.
    fn lead(&self, duty: Duty) -> Result<bool, StoreError> {
        let _ = duty;
        Ok(true)
    }
}

/// The stores of one deployment: events and state, each behind its trait. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    events: Arc<dyn EventStore>,
    state: Arc<dyn StateStore>,
}

impl Store {
    pub fn new(events: Arc<dyn EventStore>, state: Arc<dyn StateStore>) -> Store {
        Store { events, state }
    }

    pub fn events(&self) -> &dyn EventStore {
        &*self.events
    }

    pub fn state(&self) -> &dyn StateStore {
        &*self.state
    }

    /// A writer (see [`EventStore::writer`]).
    pub fn writer(&self) -> Result<Box<dyn EventWriter>, StoreError> {
        self.events.writer()
    }

    /// Events and objects, counted.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        stats(&*self.events, &*self.state)
    }
}

/// Events and objects, counted: [`Store::stats`], and [`SqliteStore::stats`] for a file
/// checked before it becomes a `Store`.
pub(crate) fn stats(events: &dyn EventStore, state: &dyn StateStore) -> Result<StoreStats, StoreError> {
    let events = events.event_stats()?;
    let objects = state.object_counts()?;
    Ok(StoreStats {
        events: events.events,
        objects_committed: objects.committed,
        objects_quarantined: objects.quarantined,
        oldest_event: events.oldest_event,
        newest_event: events.newest_event,
        principals: events.principals,
    })
}

impl From<SqliteStore> for Store {
    /// One file holds both.
    fn from(sqlite: SqliteStore) -> Store {
        let sqlite = Arc::new(sqlite);
        Store { events: sqlite.clone(), state: sqlite }
    }
}

/// See [`EventStore::event_stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventStats {
    pub events: u64,
    pub oldest_event: Option<EpochMillis>,
    pub newest_event: Option<EpochMillis>,
    pub principals: u64,
}

/// See [`StateStore::object_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectCounts {
    pub committed: u64,
    pub quarantined: u64,
}

/// How far an event forwarder has delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardCursor {
    pub name: String,
    /// The arrival position of the last event its sink accepted.
    pub position: i64,
    /// Events delivered so far.
    pub delivered: u64,
    /// The last failure, until a delivery succeeds again.
    pub last_error: Option<String>,
    pub updated_at: EpochMillis,
}

/// Work that one worker among many does (see [`StateStore::lead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Duty {
    /// Continuous digest validation and the silence watch.
    IntegritySweep = 10,
    /// Applying the retention policy.
    Retention = 11,
}

/// A principal as the store normalised it (see `model::Actor`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalInfo {
    pub principal: String,
    /// `IAMUser`, `AssumedRole`, `Root`, `AWSService`, …
    pub kind: String,
    pub account_id: Option<String>,
    /// User name or session name.
    pub name: Option<String>,
    /// The role or user that issued the session.
    pub issuer: Option<String>,
    /// The person behind a federated or SSO session, where the records tell it.
    pub human: Option<String>,
    pub federation: Option<String>,
}

/// Writes objects' events and ledger rows. See the crate documentation for the protocol.
pub trait EventWriter: StateWriter + Send {
    /// Starts `object`; its events go in with [`insert`](Self::insert). Opens a transaction
    /// when none is open.
    fn begin_object(&mut self, object: &ObjectMeta) -> Result<(), StoreError>;

    /// Stores a batch of the current object's events; returns how many were new and how many
    /// were already stored (by `eventID`).
    fn insert(&mut self, batch: &mut EventBatch) -> Result<InsertCounts, StoreError>;

    /// Whether this writer stores packed raw records, so callers should [`EventBatch::pack`]
    /// on their own threads before handing batches over.
    fn wants_packed_raw(&self) -> bool {
        false
    }

    /// How many events ahead this writer would like to be told of with
    /// [`expect_events`](Self::expect_events); 0 (the default) when that helps it nothing.
    fn lookahead_events(&self) -> usize {
        0
    }

    /// Events of objects that will be inserted soon, in order, before their objects begin.
    /// A writer whose duplicate check is a round trip to a server (the scale-out store) checks
    /// them all in one now and answers their `insert` from what it learned, instead of one
    /// round trip per object. A hint: events never inserted afterwards are forgotten.
    fn expect_events(&mut self, event_ids: &[&str]) -> Result<(), StoreError> {
        let _ = event_ids;
        Ok(())
    }

    /// Ends the current object: writes its ledger row as committed (within the open
    /// transaction) and returns its counts.
    fn finish_object(&mut self, totals: &ObjectTotals) -> Result<InsertCounts, StoreError>;

    /// Undoes everything of the current object (if one is open) and records `object` as
    /// quarantined with its reason; nothing else in the transaction is affected.
    fn quarantine_object(&mut self, object: &ObjectMeta, reason: &str, detail: &str) -> Result<(), StoreError>;

    /// Undoes everything of the current object without recording it: it was not read to
    /// the end for a reason that says nothing about its content (an I/O error), so it must
    /// be tried again later.
    fn abort_object(&mut self) -> Result<(), StoreError>;

    /// Makes every finished or quarantined object durable. Only after this returns may a
    /// source acknowledge them (delete the SQS message, advance a cursor).
    fn commit(&mut self) -> Result<(), StoreError>;

    /// Events inserted since the last commit (callers commit in groups of this size).
    fn pending_events(&self) -> u64;
}

/// What detection records in a writer's open transaction, beside the objects' events: hits
/// and the alerts they open, correlation windows, regions seen. Recorded between objects,
/// it becomes durable with the events it is about (see the scale-out module for how that
/// holds across two databases).
pub trait StateWriter {
    /// Records detection hits in the open transaction (opening one if needed), with the
    /// outbox rows of the alerts they open; returns those alerts' ids. Call between objects,
    /// after the hits' events were inserted: hits and events become durable together.
    fn record_alerts(&mut self, hits: &[AlertHit], policy: &AlertPolicy) -> Result<Vec<i64>, StoreError>;

    /// Saves changed correlation windows in the open transaction (`"[]"` deletes one).
    fn save_correlation_windows(&mut self, windows: &[CorrelationWindow]) -> Result<(), StoreError>;

    /// Records (account, region) pairs seen for the first time, in the open transaction.
    fn remember_regions(&mut self, regions: &[KnownRegion]) -> Result<(), StoreError>;

    /// The stored correlation windows of `keys` (correlation id, group), locked until the
    /// open transaction ends, when other processes write them too; `None` when this writer
    /// is the store's only one, so the windows in memory are the truth. Call before feeding
    /// an object's correlation matches, and save the changed windows in the same transaction.
    fn shared_correlation_windows(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<Option<Vec<CorrelationWindow>>, StoreError> {
        let _ = keys;
        Ok(None)
    }
}

/// Identifies an object and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// `local`, `s3`, `sqs`, … (which source delivered it).
    pub source: String,
    /// The S3 bucket; `local` for files read from a directory.
    pub bucket: String,
    /// The S3 key, or the path relative to the ingested directory.
    pub key: String,
    /// Size of the object as stored, in bytes.
    pub size: u64,
}

impl ObjectMeta {
    pub const LOCAL_BUCKET: &'static str = "local";

    pub fn local(key: impl Into<String>, size: u64) -> ObjectMeta {
        ObjectMeta { source: "local".into(), bucket: Self::LOCAL_BUCKET.into(), key: key.into(), size }
    }
}

/// What was read of an object, recorded in its ledger row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectTotals {
    pub records: u64,
    pub object_sha256: Option<String>,
    pub content_sha256: Option<String>,
    pub content_bytes: Option<u64>,
}

impl From<&model::FileSummary> for ObjectTotals {
    fn from(s: &model::FileSummary) -> Self {
        ObjectTotals {
            records: s.records,
            object_sha256: Some(s.object_sha256.clone()),
            content_sha256: Some(s.content_sha256.clone()),
            content_bytes: Some(s.content_bytes),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertCounts {
    pub new: u64,
    pub duplicates: u64,
}

impl std::ops::AddAssign for InsertCounts {
    fn add_assign(&mut self, o: InsertCounts) {
        self.new += o.new;
        self.duplicates += o.duplicates;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerStatus {
    Committed,
    Quarantined,
}

impl LedgerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerStatus::Committed => "committed",
            LedgerStatus::Quarantined => "quarantined",
        }
    }
}

/// One row of the ingest ledger: an object that was committed or quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub source: String,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub object_sha256: Option<String>,
    pub content_sha256: Option<String>,
    pub records: u64,
    pub new_events: u64,
    pub duplicate_events: u64,
    pub status: LedgerStatus,
    /// Quarantine reason code (`gzip_truncated`, `record_missing_event_id`, …).
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub recorded_at: EpochMillis,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub events: u64,
    pub objects_committed: u64,
    pub objects_quarantined: u64,
    pub oldest_event: Option<EpochMillis>,
    pub newest_event: Option<EpochMillis>,
    pub principals: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database schema version {found} is newer than this trailwatch understands ({supported}); upgrade trailwatch"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("{0} called without an object in progress")]
    NoObject(&'static str),
    #[error("begin_object called while object {0:?} is still in progress")]
    ObjectInProgress(String),
    #[error("stored block {block} is unreadable: {detail}")]
    Corrupt { block: i64, detail: String },
    #[error("{context}: {detail}")]
    ClickHouse { context: &'static str, detail: String },
    #[error("{context}")]
    Postgres {
        context: &'static str,
        #[source]
        source: ::postgres::Error,
    },
    #[error("{context}: {detail}")]
    Pool { context: &'static str, detail: String },
    #[error("not a usable trailwatch database: {0}")]
    NotAStore(String),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    Locked(&'static str),
    #[error("{context}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub fn reason_code(&self) -> &'static str {
        match self {
            StoreError::Sqlite { .. } => "sqlite",
            StoreError::SchemaTooNew { .. } => "schema_too_new",
            StoreError::NoObject(_) | StoreError::ObjectInProgress(_) => "protocol",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::ClickHouse { .. } => "clickhouse",
            StoreError::Postgres { .. } | StoreError::Pool { .. } => "postgres",
            StoreError::NotAStore(_) => "not_a_store",
            StoreError::Unsupported(_) => "unsupported",
            StoreError::Locked(_) => "locked",
            StoreError::Io { .. } => "io",
        }
    }

    pub(crate) fn clickhouse(context: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::ClickHouse { context, detail: detail.into() }
    }

    pub(crate) fn postgres(context: &'static str, source: ::postgres::Error) -> StoreError {
        StoreError::Postgres { context, source }
    }

    pub(crate) fn pool(context: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::Pool { context, detail: detail.into() }
    }
}

pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, rusqlite::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { context, source })
    }
}
