//! The SQLite [`EventWriter`]: objects grouped into one transaction, each object undoable.
//!
//! A transaction (`BEGIN IMMEDIATE`, so this connection holds the database's write lock) is
//! opened by the first `begin_object` and spans every object until `commit`. A commit makes
//! a group of whole objects durable at once; a crash, or a `Drop` without commit, loses the
//! whole uncommitted group and nothing else.
//!
//! Undoing one object inside the group (quarantine, I/O failure) does not use a SAVEPOINT:
//! with a savepoint open, SQLite copies every page it touches into a sub-journal, which cost
//! more than everything else the writer does. Instead, because this writer holds the write
//! lock and rowids grow, the object's new events are exactly the rows with a rowid above the
//! largest one when the object began (the *floor*): one range `DELETE` removes them and the
//! raw blocks that start above the floor, and a block that started below it is cut back to
//! the floor. The object's ledger row is only written when the object ends (its id is reserved
//! in memory), so there is nothing to undo there. Dictionary and principal rows an undone
//! object created stay (they are valid values, and the in-memory id caches stay right).
//!
//! Raw blocks: consecutive batches (of one or several objects) are gathered into one *open
//! block* until it holds [`BLOCK_EVENTS`] rows or [`BLOCK_BYTES`] of compressed raw records,
//! and written (raw bytes plus the block's postings) when full and before every commit. The
//! block's raw value is the batches' zstd frames back to back, which decode as one stream.

use model::ParsedEvent;
use rusqlite::{params, Connection};
use rustc_hash::FxHashMap;

use super::now_millis;
use super::schema::kind;
use crate::{Context, EventBatch, EventWriter, InsertCounts, ObjectMeta, ObjectTotals, StoreError};

/// Bound on each in-memory id cache; past it the cache starts over (ids stay in the DB).
const CACHE_LIMIT: usize = 100_000;
/// A block is written once it holds this many rows…
const BLOCK_EVENTS: i64 = 1024;
/// …or this many bytes of compressed raw records.
const BLOCK_BYTES: usize = 1 << 20;

pub(crate) struct SqliteWriter {
    conn: Connection,
    /// Dropped after `conn` (field order): stops the background checkpoints.
    _checkpointer: Option<super::Checkpointer>,
    in_tx: bool,
    /// Largest event rowid; valid while `in_tx` (this connection holds the write lock).
    last_row: i64,
    /// Next free ledger id; valid while `in_tx`.
    next_object_id: i64,
    object: Option<OpenObject>,
    block: Option<OpenBlock>,
    dict: Vec<DictCache>,
    principals: PrincipalCache,
    pending_events: u64,
}

#[derive(Default)]
struct PrincipalCache {
    last: Option<(Box<str>, i64)>,
    ids: FxHashMap<Box<str>, i64>,
}

/// Ids of one dictionary kind. Consecutive events mostly repeat a value (a file has one
/// account and region), so the last value is checked before hashing.
#[derive(Default)]
struct DictCache {
    last: Option<(Box<str>, i64)>,
    ids: FxHashMap<Box<str>, i64>,
}

struct OpenObject {
    meta: ObjectMeta,
    /// Reserved ledger id (the writer holds the write lock, so ids above the maximum are free);
    /// the row itself is written once, when the object ends.
    ledger_id: i64,
    /// `last_row` when the object began: its new events are the rows above it.
    floor: i64,
    /// The open block's (frames, slots) when the object began, to cut it back on undo.
    block_mark: Option<(usize, usize)>,
    counts: InsertCounts,
}

/// New rows not yet written as a block: rowids `first..=last`, raw records in `frames`.
struct OpenBlock {
    first: i64,
    last: i64,
    min_time: i64,
    max_time: i64,
    frames: Vec<Vec<u8>>,
    /// Records in `frames` (a row's `slot` indexes them).
    slots: usize,
    raw_bytes: usize,
    /// (dimension, value) of every row; sorted and deduplicated when written.
    postings: Vec<(u8, i64)>,
}

const INSERT_EVENT: &str = "INSERT INTO events (event_id, event_time, event_source, event_name, account, region,
        principal, source_ip, error_code, event_type, category, flags, user_agent, access_key_id,
        object_id, slot)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
     ON CONFLICT (event_id) DO NOTHING";

impl SqliteWriter {
    pub(crate) fn new(conn: Connection, checkpointer: Option<super::Checkpointer>) -> SqliteWriter {
        SqliteWriter {
            conn,
            _checkpointer: checkpointer,
            in_tx: false,
            last_row: 0,
            next_object_id: 1,
            object: None,
            block: None,
            dict: (0..kind::COUNT).map(|_| DictCache::default()).collect(),
            principals: PrincipalCache::default(),
            pending_events: 0,
        }
    }

    fn ensure_transaction(&mut self) -> Result<(), StoreError> {
        if !self.in_tx {
            self.conn.execute_batch("BEGIN IMMEDIATE").context("begin write transaction")?;
            self.in_tx = true;
            // Exactly `max(id)`: SQLite answers that from the end of the table's B-tree, while
            // any expression around it (coalesce) turns it into a full scan.
            let max: Option<i64> = self
                .conn
                .prepare_cached("SELECT max(id) FROM events")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .context("read event rowid")?;
            self.last_row = max.unwrap_or(0);
            let max: Option<i64> = self
                .conn
                .prepare_cached("SELECT max(id) FROM objects")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .context("read ledger id")?;
            self.next_object_id = max.unwrap_or(0) + 1;
        }
        Ok(())
    }

    /// After a rollback the caches may name rows that no longer exist.
    fn forget_caches(&mut self) {
        self.dict.iter_mut().for_each(|d| *d = DictCache::default());
        self.principals = PrincipalCache::default();
    }

    /// Writes the open block (raw records and postings), if any.
    fn flush_block(&mut self) -> Result<(), StoreError> {
        let Some(block) = self.block.take() else { return Ok(()) };
        let raw = block.frames.concat();
        self.conn
            .prepare_cached("INSERT INTO blocks (id, last_row, min_time, max_time, raw) VALUES (?1, ?2, ?3, ?4, ?5)")
            .and_then(|mut s| s.execute(params![block.first, block.last, block.min_time, block.max_time, raw]))
            .context("store raw block")?;
        let mut postings = block.postings;
        postings.sort_unstable();
        postings.dedup();
        let mut post = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO postings (dim, value, block) VALUES (?1, ?2, ?3)")
            .context("prepare postings insert")?;
        for (dim, value) in postings {
            post.execute(params![dim, value, block.first]).context("insert posting")?;
        }
        Ok(())
    }
}

impl EventWriter for SqliteWriter {
    fn begin_object(&mut self, object: &ObjectMeta) -> Result<(), StoreError> {
        if self.object.is_some() {
            return Err(StoreError::ObjectInProgress(object.key.clone()));
        }
        self.ensure_transaction()?;
        let ledger_id = self.next_object_id;
        self.next_object_id += 1;
        self.object = Some(OpenObject {
            meta: object.clone(),
            ledger_id,
            floor: self.last_row,
            block_mark: self.block.as_ref().map(|b| (b.frames.len(), b.slots)),
            counts: InsertCounts::default(),
        });
        Ok(())
    }

    fn insert(&mut self, batch: &mut EventBatch) -> Result<InsertCounts, StoreError> {
        let ledger_id = self.object.as_ref().ok_or(StoreError::NoObject("insert"))?.ledger_id;
        let conn = &self.conn;
        let mut counts = InsertCounts::default();
        // Slots continue the open block's records; this batch's frame is appended below.
        let base_slot = self.block.as_ref().map_or(0, |b| b.slots);
        let mut new_rows: Option<(i64, i64, i64, i64)> = None; // (first, last, min_time, max_time)
        let mut postings: Vec<(u8, i64)> = Vec::with_capacity(batch.len() * 7);
        {
            // One statement handle for the whole batch: looking it up per row hashes its SQL.
            let mut insert = conn.prepare_cached(INSERT_EVENT).context("prepare event insert")?;
            for (i, e) in batch.events.iter().enumerate() {
                let mut d = |k: u8, v: &Option<String>| dict_id(conn, &mut self.dict[k as usize], k, v.as_deref());
                let event_source = d(kind::EVENT_SOURCE, &e.event_source)?;
                let event_name = d(kind::EVENT_NAME, &e.event_name)?;
                let account = d(kind::ACCOUNT, &e.recipient_account_id)?;
                let region = d(kind::REGION, &e.aws_region)?;
                let error_code = d(kind::ERROR_CODE, &e.error_code)?;
                let event_type = d(kind::EVENT_TYPE, &e.event_type)?;
                let category = d(kind::CATEGORY, &e.event_category)?;
                let user_agent = d(kind::USER_AGENT, &e.user_agent)?;
                let source_ip = d(kind::SOURCE_IP, &e.source_ip)?;
                let principal = principal_id(conn, &mut self.principals, e)?;
                let a = &e.actor;
                let changed = insert
                    .execute(params![
                        super::event_id_key(&e.event_id),
                        e.event_time,
                        event_source,
                        event_name,
                        account,
                        region,
                        principal,
                        source_ip,
                        error_code,
                        event_type,
                        category,
                        flags(e),
                        user_agent,
                        a.access_key_id,
                        ledger_id,
                        (base_slot + i) as i64,
                    ])
                    .context("insert event")?;
                if changed == 0 {
                    counts.duplicates += 1;
                    continue;
                }
                counts.new += 1;
                let row = conn.last_insert_rowid();
                new_rows = Some(match new_rows {
                    None => (row, row, e.event_time, e.event_time),
                    Some((first, _, lo, hi)) => (first, row, lo.min(e.event_time), hi.max(e.event_time)),
                });
                postings.push((kind::PRINCIPAL, principal));
                for (k, v) in [
                    (kind::EVENT_SOURCE, event_source),
                    (kind::EVENT_NAME, event_name),
                    (kind::ACCOUNT, account),
                    (kind::REGION, region),
                    (kind::ERROR_CODE, error_code),
                    (kind::SOURCE_IP, source_ip),
                ] {
                    if let Some(v) = v {
                        postings.push((k, v));
                    }
                }
            }
        }
        // A batch whose events were all stored before adds nothing, not even its raw bytes.
        if let Some((first, last, min_time, max_time)) = new_rows {
            self.last_row = last;
            let frame = batch.take_packed();
            let block = self.block.get_or_insert_with(|| OpenBlock {
                first,
                last,
                min_time,
                max_time,
                frames: Vec::new(),
                slots: 0,
                raw_bytes: 0,
                postings: Vec::new(),
            });
            block.last = last;
            block.min_time = block.min_time.min(min_time);
            block.max_time = block.max_time.max(max_time);
            block.raw_bytes += frame.len();
            block.frames.push(frame);
            block.slots += batch.len();
            postings.sort_unstable();
            postings.dedup();
            block.postings.append(&mut postings);
            if block.last - block.first + 1 >= BLOCK_EVENTS || block.raw_bytes >= BLOCK_BYTES {
                self.flush_block()?;
            }
        }
        // (An all-duplicate batch adds no frame and no slots, so slots stay aligned.)
        self.pending_events += batch.len() as u64;
        if let Some(o) = self.object.as_mut() {
            o.counts += counts;
        }
        Ok(counts)
    }

    fn wants_packed_raw(&self) -> bool {
        true
    }

    fn finish_object(&mut self, totals: &ObjectTotals) -> Result<InsertCounts, StoreError> {
        let object = self.object.take().ok_or(StoreError::NoObject("finish_object"))?;
        let m = &object.meta;
        let id: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO objects (id, source, bucket, key, size, status, records, new_events, duplicate_events,
                    object_sha256, content_sha256, content_bytes, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'committed', ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (bucket, key) DO UPDATE SET source = excluded.source, size = excluded.size,
                    status = 'committed', records = excluded.records, new_events = excluded.new_events,
                    duplicate_events = excluded.duplicate_events, object_sha256 = excluded.object_sha256,
                    content_sha256 = excluded.content_sha256, content_bytes = excluded.content_bytes,
                    reason = NULL, detail = NULL, recorded_at = excluded.recorded_at
                 RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        object.ledger_id,
                        m.source,
                        m.bucket,
                        m.key,
                        m.size as i64,
                        totals.records as i64,
                        object.counts.new as i64,
                        object.counts.duplicates as i64,
                        totals.object_sha256,
                        totals.content_sha256,
                        totals.content_bytes.map(|b| b as i64),
                        now_millis(),
                    ],
                    |r| r.get(0),
                )
            })
            .context("write committed ledger row")?;
        if id != object.ledger_id {
            // The object was recorded before (quarantined, or since changed): its row keeps its
            // id, so point this attempt's events at it.
            self.conn
                .execute("UPDATE events SET object_id = ?1 WHERE id > ?2", params![id, object.floor])
                .context("link events to the existing ledger row")?;
        }
        Ok(object.counts)
    }

    fn quarantine_object(&mut self, object: &ObjectMeta, reason: &str, detail: &str) -> Result<(), StoreError> {
        self.abort_object()?;
        self.ensure_transaction()?;
        self.conn
            .prepare_cached(
                "INSERT INTO objects (source, bucket, key, size, status, reason, detail, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, 'quarantined', ?5, ?6, ?7)
                 ON CONFLICT (bucket, key) DO UPDATE SET source = excluded.source, size = excluded.size,
                    status = 'quarantined', reason = excluded.reason, detail = excluded.detail,
                    records = 0, new_events = 0, duplicate_events = 0, recorded_at = excluded.recorded_at",
            )
            .and_then(|mut s| {
                s.execute(params![
                    object.source,
                    object.bucket,
                    object.key,
                    object.size as i64,
                    reason,
                    detail,
                    now_millis()
                ])
            })
            .context("write quarantine ledger row")?;
        Ok(())
    }

    fn abort_object(&mut self) -> Result<(), StoreError> {
        let Some(open) = self.object.take() else { return Ok(()) };
        let floor = open.floor;
        self.pending_events -= open.counts.new + open.counts.duplicates;
        // Rows and written blocks above the floor go; a written block that started below the
        // floor but ran past it (it filled up during this object) is cut back to the floor.
        for sql in [
            "DELETE FROM events WHERE id > ?1",
            "DELETE FROM blocks WHERE id > ?1",
            "UPDATE blocks SET last_row = ?1
             WHERE id = (SELECT max(id) FROM blocks WHERE id <= ?1) AND last_row > ?1",
        ] {
            self.conn.execute(sql, [floor]).context("remove the events of an undone object")?;
        }
        self.last_row = floor;
        // The open block: keep what earlier objects put in it, drop the rest.
        match (open.block_mark, self.block.as_mut()) {
            (Some((frames, slots)), Some(block)) if block.first <= floor => {
                block.frames.truncate(frames);
                block.slots = slots;
                block.last = floor;
                block.raw_bytes = block.frames.iter().map(Vec::len).sum();
            }
            _ => self.block = None,
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if self.object.is_some() {
            return Err(StoreError::ObjectInProgress("commit".into()));
        }
        if self.in_tx {
            let result = self.flush_block().and_then(|()| self.conn.execute_batch("COMMIT").context("commit"));
            if let Err(e) = result {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                self.in_tx = false;
                self.block = None;
                self.forget_caches();
                self.pending_events = 0;
                return Err(e);
            }
            self.in_tx = false;
        }
        self.pending_events = 0;
        Ok(())
    }

    fn pending_events(&self) -> u64 {
        self.pending_events
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        // Uncommitted work is abandoned on purpose: nothing was acknowledged for it.
        if self.in_tx {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

fn dict_id(conn: &Connection, cache: &mut DictCache, kind: u8, value: Option<&str>) -> Result<Option<i64>, StoreError> {
    let Some(value) = value else { return Ok(None) };
    if let Some((last, id)) = &cache.last {
        if **last == *value {
            return Ok(Some(*id));
        }
    }
    if let Some(&id) = cache.ids.get(value) {
        cache.last = Some((value.into(), id));
        return Ok(Some(id));
    }
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO dict (kind, value) VALUES (?1, ?2)
             ON CONFLICT (kind, value) DO UPDATE SET kind = excluded.kind RETURNING id",
        )
        .and_then(|mut s| s.query_row(params![kind, value], |r| r.get(0)))
        .context("intern dictionary value")?;
    if cache.ids.len() >= CACHE_LIMIT {
        cache.ids.clear();
    }
    cache.ids.insert(value.into(), id);
    cache.last = Some((value.into(), id));
    Ok(Some(id))
}

fn principal_id(conn: &Connection, cache: &mut PrincipalCache, e: &ParsedEvent) -> Result<i64, StoreError> {
    let a = &e.actor;
    if let Some((last, id)) = &cache.last {
        if **last == *a.principal {
            return Ok(*id);
        }
    }
    if let Some(&id) = cache.ids.get(a.principal.as_str()) {
        cache.last = Some((a.principal.as_str().into(), id));
        return Ok(id);
    }
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO principals (principal, kind, account_id, name, issuer, human, federation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (principal) DO UPDATE SET
                account_id = coalesce(principals.account_id, excluded.account_id),
                name = coalesce(principals.name, excluded.name),
                issuer = coalesce(principals.issuer, excluded.issuer),
                human = coalesce(principals.human, excluded.human),
                federation = coalesce(principals.federation, excluded.federation)
             RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    a.principal,
                    a.kind.as_str(),
                    a.account_id,
                    a.name,
                    a.issuer,
                    a.human,
                    a.federation.map(|f| f.as_str()),
                ],
                |r| r.get(0),
            )
        })
        .context("intern principal")?;
    if cache.ids.len() >= CACHE_LIMIT {
        cache.ids.clear();
    }
    cache.ids.insert(a.principal.as_str().into(), id);
    cache.last = Some((a.principal.as_str().into(), id));
    Ok(id)
}

/// `events.flags`: readOnly (bits 0–1), managementEvent (2–3), MFA (4–5) as 0 = unknown,
/// 1 = false, 2 = true; console (bit 6). One column instead of four keeps rows and binds few.
fn flags(e: &ParsedEvent) -> i64 {
    let tri = |v: Option<bool>| match v {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    tri(e.read_only) | tri(e.management_event) << 2 | tri(e.actor.mfa) << 4 | i64::from(e.actor.console) << 6
}
