//! The scale-out store: events in ClickHouse, everything else in PostgreSQL, shared by any
//! number of workers.
//!
//! # Commit protocol (no transaction spans both stores)
//! A writer buffers a group's events and the ledger rows of its finished objects. What
//! detection records between objects (alerts, outbox rows, correlation windows, regions) goes
//! into a short PostgreSQL transaction of that object's, committed when the next object
//! begins. At [`commit`](EventWriter::commit):
//! 1. the buffered events are inserted into ClickHouse (idempotent: the tables collapse rows
//!    with the same key, and every read is `FINAL`);
//! 2. then the group's ledger rows are written, in key order, in one short transaction;
//! 3. only then does the caller acknowledge (delete the SQS message).
//!
//! A crash before 2 leaves no ledger row: the message comes back, the objects are read again,
//! events already inserted collapse onto their first copies, and detection adds nothing twice
//! (an event counts once per rule, and a correlation window holds an event once). A crash
//! between 2 and 3 redelivers a message whose objects the ledger already holds: skipped.
//! Nothing is acknowledged before it is durable in both stores, and nothing is visible twice;
//! an alert may be visible a moment (one commit interval) before its events are searchable.
//!
//! Short transactions in one lock order (correlation windows, then alert groups, each sorted;
//! ledger rows sorted) keep workers from deadlocking each other; should PostgreSQL abort a
//! transaction anyway, the writer does it again from the operations it kept.

use std::sync::Arc;

use model::ParsedEvent;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::clickhouse::{self, ClickHouse, ClickHouseConfig, PendingMark, PendingRows};
use crate::postgres::{self, Conn, PgState};
use crate::{
    EventBatch, EventQuery, EventRow, EventStore, EventWriter, InsertCounts, ObjectMeta, ObjectTotals, StateStore,
    Store, StoreError,
};

/// Flush buffered events to ClickHouse at the end of an object once this many are waiting
/// (ClickHouse wants inserts of thousands of rows, not one per object).
const FLUSH_EVENTS: u64 = 50_000;

/// Events whose duplicate check a writer does in one round trip, ahead of their objects
/// (a lookup per object is a round trip per object: ~8,650 of them per million events).
const LOOKAHEAD_EVENTS: usize = 20_000;

/// A scale-out deployment: [`ClickHouseEvents`] for the events, `PgState` (PostgreSQL) for
/// the state.
pub struct ScaleOutStore {
    events: Arc<ClickHouseEvents>,
    state: Arc<PgState>,
}

impl ScaleOutStore {
    /// Connects to both stores and brings both schemas up to date (under one PostgreSQL
    /// advisory lock, so workers starting together migrate once).
    pub fn open(clickhouse_url: &str, postgres_url: &str) -> Result<ScaleOutStore, StoreError> {
        let config = ClickHouseConfig::from_url(clickhouse_url)
            .map_err(|detail| StoreError::clickhouse("read the ClickHouse URL", detail))?;
        Self::open_with(config, postgres_url)
    }

    pub fn open_with(mut config: ClickHouseConfig, postgres_url: &str) -> Result<ScaleOutStore, StoreError> {
        if config.user.is_none() {
            config.user = std::env::var("TRAILWATCH_CLICKHOUSE_USER").ok();
        }
        if config.password.is_none() {
            config.password = std::env::var("TRAILWATCH_CLICKHOUSE_PASSWORD").ok();
        }
        let ch = ClickHouse::new(config);
        let state = Arc::new(postgres::off_runtime(|| PgState::connect(postgres_url, || clickhouse::migrate(&ch)))?);
        Ok(ScaleOutStore { events: Arc::new(ClickHouseEvents { ch, state: state.clone() }), state })
    }

    pub fn clickhouse(&self) -> &ClickHouse {
        &self.events.ch
    }

    pub fn events(&self) -> &ClickHouseEvents {
        &self.events
    }

    pub fn state(&self) -> &dyn StateStore {
        &*self.state
    }

    pub(crate) fn pg(&self) -> &PgState {
        &self.state
    }

    /// Both, as the [`Store`] the rest of trailwatch uses.
    pub fn store(&self) -> Store {
        Store::new(self.events.clone(), self.state.clone())
    }
}

impl From<ScaleOutStore> for Store {
    fn from(s: ScaleOutStore) -> Store {
        s.store()
    }
}

/// Events in ClickHouse. It knows the state store for what meets there: a writer commits
/// its objects' ledger rows and detection state in PostgreSQL (see the module
/// documentation), retention keeps the events alerts refer to and prunes the ledger, and
/// the space taken counts both.
pub struct ClickHouseEvents {
    ch: ClickHouse,
    state: Arc<PgState>,
}

/// Workers take arrival numbers in blocks and commit in any order, so "everything after
/// position N" is not a stable question here.
const FORWARDING: StoreError = StoreError::Unsupported(
    "event forwarding needs the embedded store: with several writers, arrival order is not commit order \
     (read ClickHouse directly, e.g. with a materialized view or clickhouse-client, instead)",
);

impl EventStore for ClickHouseEvents {
    fn writer(&self) -> Result<Box<dyn EventWriter>, StoreError> {
        Ok(Box::new(ScaleOutWriter {
            ch: self.ch.clone(),
            state: self.state.clone(),
            conn: None,
            pending: PendingRows::default(),
            pending_ids: FxHashSet::default(),
            looked_up: FxHashMap::default(),
            object: None,
            principals: FxHashSet::default(),
            arrivals: (0, 0),
            pending_events: 0,
            ops: Vec::new(),
            ledger: Vec::new(),
            hours: Default::default(),
        }))
    }

    fn for_each_event(&self, q: &EventQuery, f: &mut dyn FnMut(EventRow) -> bool) -> Result<(), StoreError> {
        clickhouse::for_each_event(&self.ch, q, f)
    }

    fn event(&self, event_id: &str) -> Result<Option<EventRow>, StoreError> {
        clickhouse::event_by_id(&self.ch, event_id)
    }

    fn resource_events(&self, resource: &str, since: i64, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        clickhouse::resource_events(&self.ch, resource, since, limit)
    }

    fn summarize(&self, query: &EventQuery, spec: &crate::SummarySpec) -> Result<crate::Summary, StoreError> {
        if let Some(summary) = clickhouse::rollup::summarize(&self.ch, &self.state, query, spec)? {
            return Ok(summary);
        }
        clickhouse::summarize(&self.ch, query, spec)
    }

    fn principals_related(&self, principal: &str, limit: usize) -> Result<Vec<crate::PrincipalInfo>, StoreError> {
        clickhouse::principals_related(&self.ch, principal, limit)
    }

    fn apply_retention(
        &self,
        policy: &crate::RetentionPolicy,
        now: model::EpochMillis,
        _resume_after: Option<i64>,
        _max_units: usize,
    ) -> Result<crate::RetentionReport, StoreError> {
        // One pass per call: partition drops are instant and mutations are ClickHouse's own
        // background work, so there is no slice to bound.
        if policy.is_empty() {
            return Ok(crate::RetentionReport::default());
        }
        let kept = self.state.kept_event_ids()?;
        clickhouse::retention::keep_ids(&self.ch, &kept)?;
        let (mut report, hours) = clickhouse::retention::apply(&self.ch, policy, now)?;
        // Count the hours events went from again now, rather than at the next summary.
        self.state.mark_hours(&hours)?;
        clickhouse::rollup::recount(&self.ch, &self.state, &hours)?;
        if let Some(cut) = policy.bookkeeping_cutoff(now) {
            report.ledger_rows_deleted = self.state.prune_bookkeeping(cut)?;
        }
        Ok(report)
    }

    fn events_after(&self, _position: i64, _limit: usize) -> Result<Vec<EventRow>, StoreError> {
        Err(FORWARDING)
    }

    fn last_position(&self) -> Result<i64, StoreError> {
        Err(FORWARDING)
    }

    fn forward_cursor(&self, _name: &str) -> Result<Option<crate::ForwardCursor>, StoreError> {
        Err(FORWARDING)
    }

    fn save_forward_cursor(&self, _cursor: &crate::ForwardCursor) -> Result<(), StoreError> {
        Err(FORWARDING)
    }

    fn storage(&self) -> Result<crate::StorageStats, StoreError> {
        let mut parts = clickhouse::retention::table_bytes(&self.ch)?;
        parts.push(("PostgreSQL".to_string(), self.state.database_bytes()?));
        parts.sort_by_key(|p| std::cmp::Reverse(p.1));
        Ok(crate::StorageStats { bytes: parts.iter().map(|p| p.1).sum(), wal_bytes: 0, free_bytes: 0, parts })
    }

    fn event_stats(&self) -> Result<crate::EventStats, StoreError> {
        // The events and their time range from the hour counts when they are current (a
        // count of `events FINAL` reads every row's key); the principals from their table.
        let all = crate::SummarySpec::default();
        match clickhouse::rollup::summarize(&self.ch, &self.state, &EventQuery::default(), &all)? {
            Some(s) => Ok(crate::EventStats {
                events: s.events,
                oldest_event: s.first,
                newest_event: s.last,
                principals: clickhouse::principal_count(&self.ch)?,
            }),
            None => clickhouse::stats(&self.ch),
        }
    }

    fn refresh_counts(&self) -> Result<u64, StoreError> {
        let marked: Vec<i64> = self.state.marked_hours(i64::MIN, i64::MAX)?.into_iter().map(|m| m.0).collect();
        clickhouse::rollup::recount(&self.ch, &self.state, &marked)?;
        Ok(marked.len() as u64)
    }
}

/// The object being written: where its rows begin, its ids and counts.
struct OpenObject {
    meta: ObjectMeta,
    mark: PendingMark,
    ids: Vec<String>,
    counts: InsertCounts,
    /// The UTC hours of its events, duplicates included: a duplicate may be an event a
    /// crashed attempt inserted but never counted.
    hours: FxHashSet<i64>,
}

pub struct ScaleOutWriter {
    ch: ClickHouse,
    state: Arc<PgState>,
    /// A pooled connection with a transaction open (`BEGIN` issued), or none.
    conn: Option<Conn>,
    pending: PendingRows,
    /// Ids of the events in `pending` (a record twice in one group is stored once).
    pending_ids: FxHashSet<String>,
    object: Option<OpenObject>,
    /// What the last [`expect_events`](EventWriter::expect_events) learned: whether each
    /// id was stored then. `insert` takes its answers from here (and forgets them).
    looked_up: FxHashMap<String, bool>,
    /// Principals this writer has inserted (their rows collapse anyway; this saves sending).
    principals: FxHashSet<String>,
    /// The next arrival number and the end of the block taken from PostgreSQL.
    arrivals: (i64, i64),
    pending_events: u64,
    /// What the open transaction did, to do it again if PostgreSQL aborts it (a deadlock
    /// with another worker's transaction, which it resolves by aborting one of them).
    ops: Vec<StateOp>,
    /// Ledger rows of the group's finished and quarantined objects, written at `commit`
    /// after the events are in ClickHouse.
    ledger: Vec<StateOp>,
    /// Hours of the group's finished objects' events, marked with the ledger rows.
    hours: std::collections::BTreeSet<i64>,
}

/// One change to the state store within a writer's transaction.
enum StateOp {
    Committed {
        meta: ObjectMeta,
        totals: ObjectTotals,
        counts: InsertCounts,
        now: i64,
    },
    Quarantined {
        meta: ObjectMeta,
        reason: String,
        detail: String,
        now: i64,
    },
    Hits {
        hits: Vec<crate::AlertHit>,
        policy: crate::AlertPolicy,
        now: i64,
    },
    Windows(Vec<crate::CorrelationWindow>),
    Regions(Vec<crate::KnownRegion>),
    /// Hours whose counts the group's events change (sorted).
    MarkHours(Vec<i64>),
    /// Locks correlation windows; a replay takes the locks again.
    LockWindows(Vec<(String, String)>),
}

impl StateOp {
    fn apply(&self, c: &mut Conn) -> Result<Vec<i64>, StoreError> {
        match self {
            StateOp::Committed { meta, totals, counts, now } => {
                postgres::ledger_committed(&mut **c, meta, totals, *counts, *now).map(|()| Vec::new())
            }
            StateOp::Quarantined { meta, reason, detail, now } => {
                postgres::ledger_quarantined(&mut **c, meta, reason, detail, *now).map(|()| Vec::new())
            }
            StateOp::Hits { hits, policy, now } => postgres::record_hits(&mut **c, hits, policy, *now),
            StateOp::Windows(w) => postgres::save_windows(&mut **c, w).map(|()| Vec::new()),
            StateOp::Regions(r) => postgres::remember_regions(&mut **c, r).map(|()| Vec::new()),
            StateOp::MarkHours(h) => postgres::mark_hours(&mut **c, h).map(|()| Vec::new()),
            StateOp::LockWindows(keys) => postgres::lock_windows(&mut **c, keys).map(|()| Vec::new()),
        }
    }
}

/// Whether PostgreSQL aborted the transaction for a reason that doing it again resolves.
fn retryable(e: &StoreError) -> bool {
    use ::postgres::error::SqlState;
    match e {
        StoreError::Postgres { source, .. } => source.code().is_some_and(|c| {
            *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::LOCK_NOT_AVAILABLE
        }),
        _ => false,
    }
}

/// Attempts at a transaction PostgreSQL keeps aborting before the error is returned.
const REPLAYS: u32 = 8;

impl ScaleOutWriter {
    fn tx(&mut self) -> Result<&mut Conn, StoreError> {
        if self.conn.is_none() {
            let mut c = self.state.conn()?;
            c.batch_execute("BEGIN").map_err(postgres::pg("begin a state transaction"))?;
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("opened above"))
    }

    fn next_arrival(&mut self) -> Result<i64, StoreError> {
        if self.arrivals.0 >= self.arrivals.1 {
            // Outside the open transaction: a sequence hands out numbers once either way.
            let mut c = self.state.conn()?;
            self.arrivals = self.state.arrival_block(&mut *c)?;
        }
        let n = self.arrivals.0;
        self.arrivals.0 += 1;
        Ok(n)
    }

    /// Ends the open transaction (releasing its locks at once) without forgetting what it
    /// did.
    fn abandon_tx(&mut self) {
        if let Some(mut c) = self.conn.take() {
            // A connection whose ROLLBACK fails is broken; the pool drops closed ones.
            let _ = c.batch_execute("ROLLBACK");
        }
    }

    /// Runs `op` in the open transaction and remembers it; if PostgreSQL aborts the
    /// transaction for a deadlock, does the whole transaction again.
    fn run(&mut self, op: StateOp) -> Result<Vec<i64>, StoreError> {
        let result = op.apply(self.tx()?);
        self.ops.push(op);
        match result {
            Ok(v) => Ok(v),
            Err(e) if retryable(&e) => Ok(self.replay(e)?.pop().unwrap_or_default()),
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Does every remembered operation again in a new transaction, after a short random
    /// pause (so two workers that deadlocked do not meet again at once).
    fn replay(&mut self, first: StoreError) -> Result<Vec<Vec<i64>>, StoreError> {
        let mut last = first;
        for attempt in 0..REPLAYS {
            self.abandon_tx();
            let jitter = (model::timefmt::now_millis() as u64 ^ (attempt as u64 * 7919)) % 50;
            std::thread::sleep(std::time::Duration::from_millis(20 * u64::from(attempt + 1) + jitter));
            tracing::debug!(attempt, error = %last, "state transaction aborted by PostgreSQL; doing it again");
            let ops = std::mem::take(&mut self.ops);
            let mut results = Vec::with_capacity(ops.len());
            let mut failed = None;
            match self.tx() {
                Ok(c) => {
                    for op in &ops {
                        match op.apply(c) {
                            Ok(v) => results.push(v),
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                }
                Err(e) => failed = Some(e),
            }
            self.ops = ops;
            match failed {
                None => return Ok(results),
                Some(e) if retryable(&e) => last = e,
                Some(e) => {
                    self.rollback();
                    return Err(e);
                }
            }
        }
        self.rollback();
        Err(last)
    }

    fn rollback(&mut self) {
        self.abandon_tx();
        self.ops.clear();
        self.ledger.clear();
        self.hours.clear();
        self.pending.clear();
        self.pending_ids.clear();
        self.looked_up.clear();
        self.principals.clear();
        self.object = None;
        self.pending_events = 0;
    }
}

impl Drop for ScaleOutWriter {
    fn drop(&mut self) {
        postgres::off_runtime(|| self.rollback());
    }
}

/// The writer's work; the trait methods run it where the PostgreSQL client may block.
impl ScaleOutWriter {
    fn do_begin_object(&mut self, object: &ObjectMeta) -> Result<(), StoreError> {
        if self.object.is_some() {
            return Err(StoreError::ObjectInProgress(object.key.clone()));
        }
        self.end_state_tx()?;
        self.object = Some(OpenObject {
            meta: object.clone(),
            mark: self.pending.mark(),
            ids: Vec::new(),
            counts: InsertCounts::default(),
            hours: FxHashSet::default(),
        });
        Ok(())
    }

    fn do_insert(&mut self, batch: &mut EventBatch) -> Result<InsertCounts, StoreError> {
        if self.object.is_none() {
            return Err(StoreError::NoObject("insert"));
        }
        let raws: Option<Vec<String>> = match batch.packed.take() {
            Some(p) => Some(p.unpack().map_err(|e| StoreError::Corrupt { block: 0, detail: e.to_string() })?),
            None => None,
        };
        let ids: Vec<&str> = batch
            .events
            .iter()
            .map(|e| e.event_id.as_str())
            .filter(|id| !self.pending_ids.contains(*id) && !self.looked_up.contains_key(*id))
            .collect();
        let stored = clickhouse::stored_ids(&self.ch, &ids)?;
        let mut counts = InsertCounts::default();
        batch.duplicates.clear();
        let hours = &mut self.object.as_mut().expect("checked above").hours;
        hours.extend(batch.events.iter().map(|e| clickhouse::rollup::hour_of(e.event_time)));
        for (i, event) in batch.events.iter().enumerate() {
            let was_stored =
                self.looked_up.remove(&event.event_id).unwrap_or(false) || stored.contains(&event.event_id);
            if was_stored || self.pending_ids.contains(&event.event_id) {
                counts.duplicates += 1;
                batch.duplicates.push(i as u32);
                continue;
            }
            let arrival = self.next_arrival()?;
            let raw = raws.as_ref().and_then(|r| r.get(i)).map_or(event.raw.as_str(), String::as_str);
            self.push(event, raw, arrival);
            counts.new += 1;
        }
        let object = self.object.as_mut().expect("checked above");
        object.counts += counts;
        self.pending_events += counts.new + counts.duplicates;
        Ok(counts)
    }

    fn do_expect_events(&mut self, ids: &[&str]) -> Result<(), StoreError> {
        // Answers not taken by now belong to objects that were never inserted.
        self.looked_up.clear();
        let unknown: Vec<&str> = ids.iter().copied().filter(|id| !self.pending_ids.contains(*id)).collect();
        let stored = clickhouse::stored_ids(&self.ch, &unknown)?;
        for id in unknown {
            self.looked_up.insert(id.to_string(), stored.contains(id));
        }
        Ok(())
    }

    fn do_finish_object(&mut self, totals: &ObjectTotals) -> Result<InsertCounts, StoreError> {
        let object = self.object.take().ok_or(StoreError::NoObject("finish_object"))?;
        let now = model::timefmt::now_millis();
        self.hours.extend(object.hours);
        self.ledger.push(StateOp::Committed { meta: object.meta, totals: totals.clone(), counts: object.counts, now });
        if self.pending.count >= FLUSH_EVENTS {
            self.pending.flush(&self.ch)?;
        }
        Ok(object.counts)
    }

    fn do_quarantine_object(&mut self, object: &ObjectMeta, reason: &str, detail: &str) -> Result<(), StoreError> {
        self.abort_object()?;
        let now = model::timefmt::now_millis();
        self.ledger.push(StateOp::Quarantined {
            meta: object.clone(),
            reason: reason.into(),
            detail: detail.into(),
            now,
        });
        Ok(())
    }

    fn do_abort_object(&mut self) -> Result<(), StoreError> {
        let Some(open) = self.object.take() else { return Ok(()) };
        self.pending.truncate_to(&open.mark);
        for id in &open.ids {
            self.pending_ids.remove(id);
        }
        // Principal rows of the object went with it; send any of them again when seen.
        self.principals.clear();
        self.pending_events -= open.counts.new + open.counts.duplicates;
        Ok(())
    }

    fn do_commit(&mut self) -> Result<(), StoreError> {
        if self.object.is_some() {
            return Err(StoreError::ObjectInProgress("commit".into()));
        }
        // Events first (idempotent), then the ledger: see the module documentation.
        if !self.pending.is_empty() {
            if let Err(e) = self.pending.flush(&self.ch) {
                self.rollback();
                return Err(e);
            }
        }
        if let Err(e) = self.end_state_tx().and_then(|()| self.write_ledger()) {
            self.rollback();
            return Err(e);
        }
        self.ops.clear();
        self.pending_ids.clear();
        self.pending_events = 0;
        Ok(())
    }

    /// After an error, the transaction must not keep holding locks other workers wait for:
    /// whatever the caller does next (it may never drop this writer), nothing of the group
    /// becomes durable and the locks go now. Protocol errors (a call out of order) change
    /// nothing.
    fn release_on(&mut self, e: &StoreError) {
        if !matches!(e, StoreError::NoObject(_) | StoreError::ObjectInProgress(_)) {
            self.rollback();
        }
    }

    fn do_shared_correlation_windows(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<Option<Vec<crate::CorrelationWindow>>, StoreError> {
        if keys.is_empty() {
            return Ok(Some(Vec::new()));
        }
        // Lock (remembered, so a replay locks again), then read under the locks.
        self.run(StateOp::LockWindows(keys.to_vec()))?;
        let c = self.tx()?;
        postgres::windows_of(&mut **c, keys).map(Some)
    }

    /// Commits the transaction of the last object's alerts and windows (if one is open),
    /// doing it again if PostgreSQL aborted it for a deadlock.
    fn end_state_tx(&mut self) -> Result<(), StoreError> {
        if self.conn.is_none() {
            return Ok(());
        }
        let mut result = self.commit_tx();
        if let Err(e) = &result {
            if retryable(e) {
                let e = result.expect_err("checked");
                result = self.replay(e).and_then(|_| self.commit_tx());
            }
        }
        if result.is_ok() {
            self.ops.clear();
        }
        result
    }

    /// Writes the group's ledger rows in one short transaction, in key order (so two
    /// workers writing rows of the same objects wait for each other but never deadlock).
    fn write_ledger(&mut self) -> Result<(), StoreError> {
        if self.ledger.is_empty() {
            return Ok(());
        }
        let key = |op: &StateOp| match op {
            StateOp::Committed { meta, .. } | StateOp::Quarantined { meta, .. } => {
                (meta.bucket.clone(), meta.key.clone())
            }
            _ => Default::default(),
        };
        self.ledger.sort_by_key(key);
        // After the ledger rows; insert-only, so in no lock order.
        self.ledger.push(StateOp::MarkHours(std::mem::take(&mut self.hours).into_iter().collect()));
        self.ops = std::mem::take(&mut self.ledger);
        let mut failed = None;
        {
            let ops = std::mem::take(&mut self.ops);
            let c = self.tx()?;
            for op in &ops {
                if let Err(e) = op.apply(c) {
                    failed = Some(e);
                    break;
                }
            }
            self.ops = ops;
        }
        let mut result = match failed {
            None => self.commit_tx(),
            Some(e) => Err(e),
        };
        if let Err(e) = &result {
            if retryable(e) {
                let e = result.expect_err("checked");
                result = self.replay(e).and_then(|_| self.commit_tx());
            }
        }
        self.ops.clear();
        result
    }

    fn commit_tx(&mut self) -> Result<(), StoreError> {
        let c = self.conn.as_mut().expect("a transaction is open");
        c.batch_execute("COMMIT").map_err(postgres::pg("commit the state transaction"))?;
        self.conn = None;
        Ok(())
    }

    fn do_pending_events(&self) -> u64 {
        self.pending_events
    }

    fn do_record_alerts(
        &mut self,
        hits: &[crate::AlertHit],
        policy: &crate::AlertPolicy,
    ) -> Result<Vec<i64>, StoreError> {
        if self.object.is_some() {
            return Err(StoreError::ObjectInProgress("record_alerts".into()));
        }
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        let now = model::timefmt::now_millis();
        self.run(StateOp::Hits { hits: hits.to_vec(), policy: policy.clone(), now })
    }

    fn do_save_correlation_windows(&mut self, windows: &[crate::CorrelationWindow]) -> Result<(), StoreError> {
        if windows.is_empty() {
            return Ok(());
        }
        self.run(StateOp::Windows(windows.to_vec())).map(drop)
    }

    fn do_remember_regions(&mut self, regions: &[crate::KnownRegion]) -> Result<(), StoreError> {
        if regions.is_empty() {
            return Ok(());
        }
        self.run(StateOp::Regions(regions.to_vec())).map(drop)
    }
}

impl EventWriter for ScaleOutWriter {
    fn begin_object(&mut self, object: &ObjectMeta) -> Result<(), StoreError> {
        postgres::off_runtime(|| self.do_begin_object(object).inspect_err(|e| self.release_on(e)))
    }

    fn insert(&mut self, batch: &mut EventBatch) -> Result<InsertCounts, StoreError> {
        postgres::off_runtime(|| self.do_insert(batch).inspect_err(|e| self.release_on(e)))
    }

    fn lookahead_events(&self) -> usize {
        LOOKAHEAD_EVENTS
    }

    fn expect_events(&mut self, event_ids: &[&str]) -> Result<(), StoreError> {
        postgres::off_runtime(|| self.do_expect_events(event_ids).inspect_err(|e| self.release_on(e)))
    }

    fn finish_object(&mut self, totals: &ObjectTotals) -> Result<InsertCounts, StoreError> {
        postgres::off_runtime(|| self.do_finish_object(totals).inspect_err(|e| self.release_on(e)))
    }

    fn quarantine_object(&mut self, object: &ObjectMeta, reason: &str, detail: &str) -> Result<(), StoreError> {
        postgres::off_runtime(|| self.do_quarantine_object(object, reason, detail).inspect_err(|e| self.release_on(e)))
    }

    fn abort_object(&mut self) -> Result<(), StoreError> {
        postgres::off_runtime(|| self.do_abort_object().inspect_err(|e| self.release_on(e)))
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        postgres::off_runtime(|| self.do_commit().inspect_err(|e| self.release_on(e)))
    }

    fn pending_events(&self) -> u64 {
        self.do_pending_events()
    }
}

impl crate::StateWriter for ScaleOutWriter {
    fn shared_correlation_windows(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<Option<Vec<crate::CorrelationWindow>>, StoreError> {
        postgres::off_runtime(|| self.do_shared_correlation_windows(keys).inspect_err(|e| self.release_on(e)))
    }

    fn record_alerts(&mut self, hits: &[crate::AlertHit], policy: &crate::AlertPolicy) -> Result<Vec<i64>, StoreError> {
        postgres::off_runtime(|| self.do_record_alerts(hits, policy).inspect_err(|e| self.release_on(e)))
    }

    fn save_correlation_windows(&mut self, windows: &[crate::CorrelationWindow]) -> Result<(), StoreError> {
        postgres::off_runtime(|| self.do_save_correlation_windows(windows).inspect_err(|e| self.release_on(e)))
    }

    fn remember_regions(&mut self, regions: &[crate::KnownRegion]) -> Result<(), StoreError> {
        postgres::off_runtime(|| self.do_remember_regions(regions).inspect_err(|e| self.release_on(e)))
    }
}

impl ScaleOutWriter {
    fn push(&mut self, event: &ParsedEvent, raw: &str, arrival: i64) {
        if !self.principals.contains(event.actor.principal.as_str()) {
            if self.principals.len() > 200_000 {
                self.principals.clear();
            }
            self.principals.insert(event.actor.principal.clone());
            self.pending.push_principal(event, arrival);
        }
        self.pending.push(event, raw, arrival);
        self.pending_ids.insert(event.event_id.clone());
        if let Some(o) = self.object.as_mut() {
            o.ids.push(event.event_id.clone());
        }
    }
}
