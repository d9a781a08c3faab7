//! The SQLite [`EventWriter`]: objects grouped into one transaction, each object undoable.
//!
//! A transaction (`BEGIN IMMEDIATE`, so this connection holds the database's write lock) is
//! opened by the first `begin_object` and spans every object until `commit`. A commit makes
//! a group of whole objects durable at once; a crash, or a `Drop` without commit, loses the
//! whole uncommitted group and nothing else.
//!
//! Per event, the database sees one insert: its `event_ids` entry, which is also the dedupe
//! check. Everything else about the event goes into the *open block* in memory (its columns,
//! its batch's packed raw records, its postings), which is written as one row when it holds
//! [`BLOCK_EVENTS`] rows or [`BLOCK_BYTES`] of raw records, and before every commit. Block ids
//! are allocated here (the writer holds the write lock, so ids above the maximum are free).
//! The hourly rollups (`rollups.rs`) are counted in memory per object and written once per
//! commit, one upsert per (column, hour, value) the group touched.
//!
//! Undoing one object inside the group (quarantine, I/O failure) does not use a SAVEPOINT
//! (with one open, SQLite copies every page it touches into a sub-journal). Instead the
//! writer remembers the `event_ids` it inserted for the object and deletes them, deletes the
//! blocks written since the object began, cuts back the block that was open when it began
//! (in memory, or with `rows` if it has been written since), and never wrote the object's
//! ledger row, whose id is reserved in memory and written when the object ends; its rollup
//! counts are dropped with it.

use model::ParsedEvent;
use rusqlite::{params, Connection, OptionalExtension};
use rustc_hash::{FxHashMap, FxHashSet};

use super::columns::BlockColumns;
use super::idfilter::IdFilter;
use super::now_millis;
use super::rollups::RollupDelta;
use super::schema::kind;
use crate::{Context, EventBatch, EventWriter, InsertCounts, ObjectMeta, ObjectTotals, StoreError};

/// Bound on each in-memory id cache; past it the cache starts over (ids stay in the DB).
const CACHE_LIMIT: usize = 100_000;
/// A block is written once it holds this many rows…
const BLOCK_EVENTS: usize = 1024;
/// …or this many bytes of compressed raw records.
const BLOCK_BYTES: usize = 1 << 20;

pub(crate) struct SqliteWriter {
    conn: Connection,
    /// Dropped after `conn` (field order): stops the background checkpoints.
    _checkpointer: Option<super::Checkpointer>,
    in_tx: bool,
    /// Next free block and ledger ids; valid while `in_tx` (this connection holds the lock).
    next_block: i64,
    next_object: i64,
    object: Option<OpenObject>,
    block: Option<OpenBlock>,
    dict: Vec<DictCache>,
    principals: PrincipalCache,
    pending_events: u64,
    /// Every stored eventID, approximately (loaded with the first transaction).
    ids: Option<IdFilter>,
    /// This transaction added event ids (so it bumps `event_id_generation`).
    added_ids: bool,
    /// Where the filter is saved when the writer closes (a file store's `<path>-idfilter`),
    /// and the store's nonce.
    filter_file: Option<std::path::PathBuf>,
    nonce: i64,
    /// The rollups of the transaction's finished objects, written before it commits.
    rollup: RollupDelta,
    /// The busy principals, whose values the rollups count (`rollups::BUSY`); read when a
    /// transaction begins if more have become busy since.
    busy: super::rollups::BusyPrincipals,
    /// Ids of the raw-record dictionaries in `raw_dictionaries` (read with the first
    /// transaction), and whether this writer has tried to train one.
    dictionaries: Option<FxHashSet<u32>>,
    training_tried: bool,
}

/// A store gets a dictionary for its raw records once it holds this many blocks (~16 k
/// events): trained on up to [`TRAINING_RECORDS`] records of its newest blocks.
const TRAINING_BLOCKS: i64 = 16;
const TRAINING_RECORDS: usize = 1024;
/// zstd's default dictionary size.
const DICTIONARY_BYTES: usize = 112_640;

/// How far an open block had been filled at some point (what undoing an object cuts it
/// back to).
#[derive(Debug, Clone, Copy)]
struct BlockMark {
    id: i64,
    rows: usize,
    /// Bytes of raw record frames, entries of their index, and slots.
    raw_bytes: usize,
    frames: usize,
    slots: usize,
}

struct OpenObject {
    meta: ObjectMeta,
    ledger_id: i64,
    /// Blocks with a larger id were started by this object.
    block_floor: i64,
    /// The block open when the object began, as it was then.
    block_mark: Option<BlockMark>,
    /// `event_ids` (hour, id) this object inserted, to delete on undo.
    inserted: Vec<(i64, super::EventIdKey<'static>)>,
    /// The object's rows in the hourly rollups, added to the transaction's when it ends.
    rollup: RollupDelta,
    counts: InsertCounts,
}

/// Rows not yet written: their columns, their batches' raw frames, their postings.
struct OpenBlock {
    id: i64,
    columns: BlockColumns,
    min_time: i64,
    max_time: i64,
    /// The batches' zstd frames of raw records, one after another.
    raw: Vec<u8>,
    /// Per frame: its first slot and where it starts in `raw` (`blocks.frames`); `None`
    /// once a batch came without its frames listed (the block is then read whole).
    frames: Option<Vec<(u32, u32)>>,
    /// Raw records in `raw` (a row's `raw_slot` indexes them).
    slots: usize,
    /// (dimension, value) of the rows; sorted and deduplicated when written.
    postings: Vec<(u8, i64)>,
    /// The last value pushed per dimension: consecutive rows mostly repeat values (a file
    /// has one account and region), and a repeat need not be pushed again.
    last_posting: [i64; kind::RESOURCE as usize + 1],
    /// Text ids whose text `columns.texts` holds.
    texts: FxHashSet<i64>,
}

impl OpenBlock {
    fn post(&mut self, dim: u8, value: i64) {
        let last = &mut self.last_posting[dim as usize];
        if *last != value {
            *last = value;
            self.postings.push((dim, value));
        }
    }
}

/// Ids of one dictionary kind. Consecutive events mostly repeat a value (a file has one
/// account and region), so the last value is checked before hashing.
#[derive(Default)]
struct DictCache {
    last: Option<(Box<str>, i64)>,
    ids: FxHashMap<Box<str>, i64>,
}

#[derive(Default)]
struct PrincipalCache {
    last: Option<(Box<str>, i64)>,
    ids: FxHashMap<Box<str>, i64>,
}

impl SqliteWriter {
    pub(crate) fn new(
        conn: Connection,
        checkpointer: Option<super::Checkpointer>,
        filter_file: Option<std::path::PathBuf>,
    ) -> SqliteWriter {
        SqliteWriter {
            conn,
            _checkpointer: checkpointer,
            in_tx: false,
            next_block: 1,
            next_object: 1,
            object: None,
            block: None,
            dict: (0..kind::COUNT).map(|_| DictCache::default()).collect(),
            principals: PrincipalCache::default(),
            busy: Default::default(),
            pending_events: 0,
            ids: None,
            added_ids: false,
            filter_file,
            nonce: 0,
            rollup: RollupDelta::default(),
            dictionaries: None,
            training_tried: false,
        }
    }

    fn ensure_transaction(&mut self) -> Result<(), StoreError> {
        if !self.in_tx {
            self.conn.execute_batch("BEGIN IMMEDIATE").context("begin write transaction")?;
            self.in_tx = true;
            // Exactly `max(id)`: SQLite answers that from the end of the B-tree, while any
            // expression around it (coalesce) turns it into a full scan.
            let max = |sql: &str| -> Result<i64, StoreError> {
                let v: Option<i64> = self
                    .conn
                    .prepare_cached(sql)
                    .and_then(|mut s| s.query_row([], |r| r.get(0)))
                    .context("read the largest id")?;
                Ok(v.unwrap_or(0))
            };
            self.next_block = max("SELECT max(id) FROM blocks")? + 1;
            self.next_object = max("SELECT max(id) FROM objects")? + 1;
            // Another connection may have stored ids since the filter was read.
            let (generation, nonce): (i64, i64) = self
                .conn
                .prepare_cached("SELECT generation, nonce FROM event_id_generation")
                .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
                .context("read the event id generation")?;
            self.nonce = nonce;
            self.busy.refresh(&self.conn)?;
            if self.dictionaries.is_none() {
                self.load_dictionaries()?;
            }
            if self.ids.as_ref().is_none_or(|f| f.generation != generation || f.is_full()) {
                let saved = self.filter_file.as_deref().and_then(|p| IdFilter::load(p, nonce, generation));
                self.ids = match saved.filter(|f| !f.is_full()) {
                    Some(f) => Some(f),
                    None => Some(load_id_filter(&self.conn, generation)?),
                };
            }
        }
        Ok(())
    }

    /// After a rollback the caches may name rows that no longer exist.
    fn forget_caches(&mut self) {
        self.dict.iter_mut().for_each(|d| *d = DictCache::default());
        self.principals = PrincipalCache::default();
    }

    /// Reads which raw-record dictionaries the store has, and makes its newest the one new
    /// frames are made with (or none).
    fn load_dictionaries(&mut self) -> Result<(), StoreError> {
        let stored: Vec<(u32, Vec<u8>)> = self
            .conn
            .prepare("SELECT id, dict FROM raw_dictionaries ORDER BY created_at, id")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .context("read raw dictionaries")?;
        let mut newest = None;
        for (_, bytes) in &stored {
            newest = crate::batch::register_dictionary(bytes.clone());
        }
        crate::batch::use_dictionary(newest);
        self.dictionaries = Some(stored.into_iter().map(|(id, _)| id).collect());
        Ok(())
    }

    /// Once the store holds enough records and has no dictionary, trains one on its newest
    /// records; new frames use it from then on. A failure is logged: frames without one are
    /// only bigger.
    fn train_dictionary(&mut self) -> Result<(), StoreError> {
        if self.training_tried
            || self.next_block <= TRAINING_BLOCKS
            || self.dictionaries.as_ref().is_some_and(|d| !d.is_empty())
        {
            return Ok(());
        }
        self.training_tried = true;
        let raws: Vec<Vec<u8>> = self
            .conn
            .prepare("SELECT raw FROM blocks ORDER BY id DESC LIMIT 16")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .context("read records to train a dictionary on")?;
        let mut samples: Vec<String> = Vec::new();
        for raw in &raws {
            samples.extend(
                super::unpack_raw(&self.conn, raw)
                    .map_err(|e| StoreError::Corrupt { block: 0, detail: e.to_string() })?,
            );
        }
        // Spread over the blocks read, not the first ones only.
        let step = samples.len().div_ceil(TRAINING_RECORDS).max(1);
        let samples: Vec<&[u8]> = samples.iter().step_by(step).map(|s| s.as_bytes()).collect();
        let trained = zstd::dict::from_samples(&samples, DICTIONARY_BYTES);
        let Some(d) = trained.ok().and_then(crate::batch::register_dictionary) else {
            tracing::warn!(samples = samples.len(), "could not train a dictionary for raw records; they stay without");
            return Ok(());
        };
        store_dictionary(&self.conn, &d)?;
        self.dictionaries.get_or_insert_default().insert(d.id);
        crate::batch::use_dictionary(Some(d));
        Ok(())
    }

    /// Writes the open block (columns, raw records and postings), if any.
    fn flush_block(&mut self) -> Result<(), StoreError> {
        let Some(block) = self.block.take() else { return Ok(()) };
        let raw = block.raw;
        let frames = block.frames.as_deref().map(crate::batch::encode_frame_index);
        self.conn
            .prepare_cached(
                "INSERT INTO blocks (id, rows, min_time, max_time, columns, raw, frames)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    block.id,
                    block.columns.len() as i64,
                    block.min_time,
                    block.max_time,
                    block.columns.encode(),
                    raw,
                    frames
                ])
            })
            .context("store a block")?;
        let mut postings = block.postings;
        postings.sort_unstable();
        postings.dedup();
        let mut post = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO postings (dim, value, block) VALUES (?1, ?2, ?3)")
            .context("prepare postings insert")?;
        for (dim, value) in postings {
            post.execute(params![dim, value, block.id]).context("insert posting")?;
        }
        drop(post);
        // As soon as there is enough to learn from: the rest of a long ingest benefits.
        self.train_dictionary()
    }
}

impl EventWriter for SqliteWriter {
    fn begin_object(&mut self, object: &ObjectMeta) -> Result<(), StoreError> {
        if self.object.is_some() {
            return Err(StoreError::ObjectInProgress(object.key.clone()));
        }
        self.ensure_transaction()?;
        // An object recorded before (quarantined, or changed since) keeps its ledger id;
        // a new one gets the next free id, and its row is written when it ends.
        let existing: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM objects WHERE bucket = ?1 AND key = ?2")
            .and_then(|mut s| s.query_row(params![object.bucket, object.key], |r| r.get(0)).optional())
            .context("read ledger row")?;
        let ledger_id = existing.unwrap_or_else(|| {
            self.next_object += 1;
            self.next_object - 1
        });
        self.object = Some(OpenObject {
            meta: object.clone(),
            ledger_id,
            block_floor: self.next_block - 1,
            block_mark: self.block.as_ref().map(|b| BlockMark {
                id: b.id,
                rows: b.columns.len(),
                raw_bytes: b.raw.len(),
                frames: b.frames.as_ref().map_or(0, Vec::len),
                slots: b.slots,
            }),
            inserted: Vec::new(),
            rollup: RollupDelta::default(),
            counts: InsertCounts::default(),
        });
        Ok(())
    }

    fn insert(&mut self, batch: &mut EventBatch) -> Result<InsertCounts, StoreError> {
        let object = self.object.as_mut().ok_or(StoreError::NoObject("insert"))?;
        let ledger_id = object.ledger_id;
        if self.block.is_none() {
            self.block = Some(OpenBlock {
                id: self.next_block,
                columns: BlockColumns::with_capacity(BLOCK_EVENTS),
                min_time: i64::MAX,
                max_time: i64::MIN,
                raw: Vec::new(),
                frames: Some(Vec::new()),
                slots: 0,
                postings: Vec::new(),
                last_posting: [0; kind::RESOURCE as usize + 1],
                texts: FxHashSet::default(),
            });
            self.next_block += 1;
        }
        let block = self.block.as_mut().expect("opened above");
        let conn = &self.conn;
        let mut counts = InsertCounts::default();
        let mut duplicates = Vec::new();
        {
            // One statement handle for the whole batch: looking it up per row hashes its SQL.
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO event_ids (hour, id, block, row) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .context("prepare event insert")?;
            let ids = self.ids.as_mut().expect("loaded when the transaction began");
            // The batch is ours to consume: strings move into the block instead of being copied.
            for (i, e) in batch.events.iter_mut().enumerate() {
                let key = super::event_id_key(&e.event_id).into_owned();
                let hour = super::event_hour(e.event_time);
                let row = block.columns.len() as i64;
                // Stored before (possibly under another hour)? Only asked when the filter may
                // have seen the id; the insert itself catches the same hour.
                let stored_before = ids.may_contain(&key) && id_stored(conn, hour, &key)?;
                if stored_before || insert.execute(params![hour, &key, block.id, row]).context("insert event id")? == 0
                {
                    counts.duplicates += 1;
                    duplicates.push(i as u32);
                    continue;
                }
                counts.new += 1;
                ids.insert(&key);
                self.added_ids = true;
                object.inserted.push((hour, key));
                let mut d = |k: u8, v: &Option<String>| dict_id(conn, &mut self.dict[k as usize], k, v.as_deref());
                let ids = [
                    (kind::EVENT_SOURCE, d(kind::EVENT_SOURCE, &e.event_source)?),
                    (kind::EVENT_NAME, d(kind::EVENT_NAME, &e.event_name)?),
                    (kind::ACCOUNT, d(kind::ACCOUNT, &e.recipient_account_id)?),
                    (kind::REGION, d(kind::REGION, &e.aws_region)?),
                    (kind::ERROR_CODE, d(kind::ERROR_CODE, &e.error_code)?),
                ];
                let principal = principal_id(conn, &mut self.principals, e)?;
                let c = &mut block.columns;
                c.event_source.push(ids[0].1.unwrap_or(0));
                c.event_name.push(ids[1].1.unwrap_or(0));
                c.account.push(ids[2].1.unwrap_or(0));
                c.region.push(ids[3].1.unwrap_or(0));
                c.error_code.push(ids[4].1.unwrap_or(0));
                // Addresses and user agents are texts of the block, not dictionary values.
                let ip = c.push_text(&mut block.texts, e.source_ip.as_deref());
                c.source_ip.push(ip);
                c.event_type.push(d(kind::EVENT_TYPE, &e.event_type)?.unwrap_or(0));
                c.category.push(d(kind::CATEGORY, &e.event_category)?.unwrap_or(0));
                let agent = c.push_text(&mut block.texts, e.user_agent.as_deref());
                c.user_agent.push(agent);
                c.principal.push(principal);
                c.event_time.push(e.event_time);
                c.flags.push(flags(e));
                c.access_key_id.push(e.actor.access_key_id.take().unwrap_or_default());
                c.object_id.push(ledger_id);
                c.raw_slot.push((block.slots + i) as i64);
                for (dim, value) in block.columns.posted(row as usize, block.id) {
                    block.post(dim, value);
                }
                object.rollup.add_row(&block.columns, row as usize, 1, block.id, self.busy.contains(principal));
                block.postings.extend(super::columns::resource_postings(&e.resources, block.id));
                block.min_time = block.min_time.min(e.event_time);
                block.max_time = block.max_time.max(e.event_time);
            }
        }
        batch.duplicates = duplicates;
        // A batch whose events were all stored before adds nothing, not even its raw bytes.
        if counts.new > 0 {
            let frame = batch.take_packed();
            // A frame names its dictionary; the store must hold it (a frame may have been
            // made with another store's, in a process that wrote to both).
            if let Some(id) = crate::batch::frame_dictionary(frame.as_bytes()) {
                let known = self.dictionaries.get_or_insert_default();
                if !known.contains(&id) {
                    let d = crate::batch::known_dictionary(id).ok_or_else(|| StoreError::Corrupt {
                        block: block.id,
                        detail: format!("a batch names dictionary {id}, unknown to this process"),
                    })?;
                    store_dictionary(conn, &d)?;
                    known.insert(id);
                }
            }
            match (&mut block.frames, crate::batch::frame_index(&frame, block.slots as u32, block.raw.len() as u32)) {
                (Some(index), Some(more)) => index.extend(more),
                (index, _) => *index = None,
            }
            block.raw.extend_from_slice(frame.as_bytes());
            block.slots += batch.len();
        }
        let (rows, full) = (block.columns.len(), block.columns.len() >= BLOCK_EVENTS || block.raw.len() >= BLOCK_BYTES);
        object.counts += counts;
        self.pending_events += batch.len() as u64;
        if rows == 0 {
            // Nothing new in a block opened for this batch: give the id back.
            self.block = None;
            self.next_block -= 1;
        } else if full {
            self.flush_block()?;
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
        debug_assert_eq!(id, object.ledger_id, "the ledger id was looked up under the write lock");
        self.rollup.merge(object.rollup);
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
        self.pending_events -= open.counts.new + open.counts.duplicates;
        {
            let mut delete = self
                .conn
                .prepare_cached("DELETE FROM event_ids WHERE hour = ?1 AND id = ?2")
                .context("prepare event id delete")?;
            for (hour, key) in &open.inserted {
                delete.execute(params![hour, key]).context("remove the events of an undone object")?;
            }
        }
        self.conn
            .execute("DELETE FROM blocks WHERE id > ?1", [open.block_floor])
            .context("remove the blocks of an undone object")?;
        match open.block_mark {
            // The block open when the object began is still open: cut it back in memory.
            Some(mark) if self.block.as_ref().is_some_and(|b| b.id == mark.id) => {
                let b = self.block.as_mut().expect("checked");
                b.columns.truncate(mark.rows);
                b.raw.truncate(mark.raw_bytes);
                if let Some(f) = b.frames.as_mut() {
                    f.truncate(mark.frames);
                }
                b.slots = mark.slots;
            }
            // It was written during the object: keep only its first rows.
            Some(mark) => {
                self.conn
                    .execute("UPDATE blocks SET rows = ?1 WHERE id = ?2", params![mark.rows as i64, mark.id])
                    .context("cut back a block")?;
                self.block = None;
            }
            None => self.block = None,
        }
        self.next_block = self.block.as_ref().map_or(open.block_floor, |b| b.id) + 1;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if self.object.is_some() {
            return Err(StoreError::ObjectInProgress("commit".into()));
        }
        if self.in_tx {
            let added_ids = std::mem::take(&mut self.added_ids);
            let bump = |conn: &Connection| -> Result<(), StoreError> {
                if added_ids {
                    conn.execute("UPDATE event_id_generation SET generation = generation + 1", [])
                        .context("count the ids added")?;
                }
                Ok(())
            };
            let rollup = std::mem::take(&mut self.rollup);
            let result = self
                .flush_block()
                .and_then(|()| rollup.apply(&self.conn, Some(&mut self.busy)))
                .and_then(|()| bump(&self.conn))
                .and_then(|()| self.conn.execute_batch("COMMIT").context("commit"));
            if let Err(e) = result {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                self.in_tx = false;
                self.block = None;
                self.forget_caches();
                // A dictionary stored in the rolled-back transaction is gone: read again.
                self.dictionaries = None;
                // So are principals it made busy; and another writer may make as many busy
                // before this one's next transaction (the same count, another set).
                self.busy = Default::default();
                self.pending_events = 0;
                return Err(e);
            }
            self.in_tx = false;
            if let Some(ids) = self.ids.as_mut().filter(|_| added_ids) {
                ids.generation += 1;
            }
        }
        self.pending_events = 0;
        Ok(())
    }

    fn pending_events(&self) -> u64 {
        self.pending_events
    }
}

impl crate::StateWriter for SqliteWriter {
    fn record_alerts(&mut self, hits: &[crate::AlertHit], policy: &crate::AlertPolicy) -> Result<Vec<i64>, StoreError> {
        if self.object.is_some() {
            return Err(StoreError::ObjectInProgress("record_alerts".into()));
        }
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_transaction()?;
        crate::alerts::record_hits(&mut super::alerts::SqliteAlertRows(&self.conn), hits, policy, now_millis())
    }

    fn remember_regions(&mut self, regions: &[crate::KnownRegion]) -> Result<(), StoreError> {
        if regions.is_empty() {
            return Ok(());
        }
        self.ensure_transaction()?;
        super::alerts::remember_regions(&self.conn, regions)
    }

    fn save_correlation_windows(&mut self, windows: &[crate::CorrelationWindow]) -> Result<(), StoreError> {
        if windows.is_empty() {
            return Ok(());
        }
        self.ensure_transaction()?;
        super::alerts::save_windows(&self.conn, windows)
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        // Uncommitted work is abandoned on purpose: nothing was acknowledged for it.
        if self.in_tx {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        // The next writer reads the filter back instead of every stored id. Its bits of
        // ids rolled back just now stay (a false positive costs a lookup, nothing more).
        if let (Some(ids), Some(path)) = (&self.ids, &self.filter_file) {
            if let Err(e) = ids.save(path, self.nonce) {
                tracing::warn!(path = %path.display(), error = %e, "could not save the event id filter; the next writer rebuilds it");
            }
        }
    }
}

fn store_dictionary(conn: &Connection, d: &crate::batch::RawDictionary) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO raw_dictionaries (id, dict, created_at) VALUES (?1, ?2, ?3)",
        params![d.id, d.bytes, now_millis()],
    )
    .context("store a raw dictionary")?;
    Ok(())
}

/// Whether an eventID is stored: in `hour` (where a re-delivered record is), else in any.
fn id_stored(conn: &Connection, hour: i64, key: &super::EventIdKey<'_>) -> Result<bool, StoreError> {
    let here = conn
        .prepare_cached("SELECT 1 FROM event_ids WHERE hour = ?1 AND id = ?2")
        .and_then(|mut s| s.exists(params![hour, key]))
        .context("look up an event id")?;
    Ok(here || super::find_event_id(conn, key)?.is_some())
}

/// The filter of every stored eventID: sized for the ids there are, then filled with them.
fn load_id_filter(conn: &Connection, generation: i64) -> Result<IdFilter, StoreError> {
    let count: i64 = conn.query_row("SELECT count(*) FROM event_ids", [], |r| r.get(0)).context("count event ids")?;
    // Room to grow before it must be read again.
    let mut filter = IdFilter::with_capacity(count as usize * 2 + (1 << 20), generation);
    let mut stmt = conn.prepare("SELECT id FROM event_ids").context("read event ids")?;
    for key in stmt.query_map([], |r| r.get::<_, super::EventIdKey<'static>>(0)).context("read event ids")? {
        filter.insert(&key.context("read event id")?);
    }
    Ok(filter)
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
    // Plain insert-if-missing (an upsert would need a statement journal), then look it up.
    let inserted: Option<i64> = conn
        .prepare_cached("INSERT INTO dict (kind, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING RETURNING id")
        .and_then(|mut s| s.query_row(params![kind, value], |r| r.get(0)).optional())
        .context("intern dictionary value")?;
    let id = match inserted {
        Some(id) => id,
        None => conn
            .prepare_cached("SELECT id FROM dict WHERE kind = ?1 AND value = ?2")
            .and_then(|mut s| s.query_row(params![kind, value], |r| r.get(0)))
            .context("read dictionary id")?,
    };
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
    let inserted: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO principals (principal, kind, account_id, name, issuer, human, federation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING RETURNING id",
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
            .optional()
        })
        .context("intern principal")?;
    let id = match inserted {
        Some(id) => id,
        None => conn
            .prepare_cached("SELECT id FROM principals WHERE principal = ?1")
            .and_then(|mut s| s.query_row([&a.principal], |r| r.get(0)))
            .context("read principal id")?,
    };
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
