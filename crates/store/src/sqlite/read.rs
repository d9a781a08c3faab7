//! Event search over the block layout (see `schema.rs`).
//!
//! 1. Each filter value is resolved to the set of ids it matches (`dict`, `principals`).
//! 2. Candidate blocks: those whose postings contain a matching value of *every* column
//!    filter (the postings plan), or every block in the time range (the time plan, and the
//!    only plan when there are no column filters); newest `max_time` first.
//! 3. Each candidate's columns are decoded and its rows tested exactly; matches go into a
//!    max-heap ordered by (event time, row key). The top row is emitted once no unread block
//!    could hold a newer row (the next candidate's `max_time` is older), so a page of results
//!    reads only the blocks it needs, and memory holds only blocks with unemitted matches.
//!
//! The whole search runs in one read transaction: one consistent snapshot. Both plans give
//! the same rows (the tests run both); postings only decide which blocks are read.

use std::cell::OnceCell;
use std::collections::BinaryHeap;
use std::rc::Rc;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};
use rustc_hash::{FxHashMap, FxHashSet};

use super::columns::{text_id, BlockColumns, SEGMENT_SHIFT, SEGMENT_VALUE_BITS, SEGMENT_VALUE_MASK};
use super::rollups::{self, HOUR_MS};
use super::schema::kind;
use crate::query::{glob_matches, glob_pattern, is_wildcard};
use crate::{Context, Dimension, EventQuery, EventRow, HistogramPoint, StoreError, Summary, SummarySpec};

/// Which plan to use. `Auto` uses postings when a column filter is selective: when its
/// postings name at most a quarter of the blocks. A frequent value (an account, a region)
/// is in nearly every block, and walking blocks newest first finds a page of it sooner than
/// looking up and sorting all its blocks. Tests force the others (results never differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanChoice {
    Auto,
    Time,
    Postings,
}

/// Every postings segment in use (`columns::posting_value`), as a CTE named `segments(x)`.
fn segments_cte() -> String {
    format!(
        "WITH RECURSIVE segments(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM segments \
         WHERE x < (SELECT coalesce(max(id), 0) >> {SEGMENT_SHIFT} FROM blocks))"
    )
}

/// Row keys: a block id and a row within it. Blocks hold far fewer rows than 2^24.
const ROW_BITS: u32 = 24;

/// Text labels of ids, read once per connection (an id's value never changes).
#[derive(Default)]
pub(crate) struct Labels {
    dict: FxHashMap<i64, Box<str>>,
    principals: FxHashMap<i64, Box<str>>,
}

/// A query resolved to id sets. `None` means "no filter on this column".
struct Filters {
    event_name: Option<FxHashSet<i64>>,
    event_source: Option<FxHashSet<i64>>,
    account: Option<FxHashSet<i64>>,
    region: Option<FxHashSet<i64>>,
    /// Text ids (`columns::text_id`) of the address searched for.
    source_ip: Option<FxHashSet<i64>>,
    /// An address wildcard: tested against each row's text (addresses are not in `dict`).
    source_ip_glob: Option<String>,
    principal: Option<FxHashSet<i64>>,
    error_code: Option<FxHashSet<i64>>,
    errors: bool,
    since: Option<i64>,
    until: Option<i64>,
    after: Option<(i64, i64)>,
    /// `SELECT block FROM postings …` per column filter, with its parameters.
    postings: Vec<(String, Vec<Value>)>,
}

impl Filters {
    fn resolve(conn: &Connection, q: &EventQuery) -> Result<Filters, StoreError> {
        let mut postings = Vec::new();
        let segments = segments_cte();
        let mut dict = |value: &Option<String>, k: u8| -> Result<Option<FxHashSet<i64>>, StoreError> {
            let Some(value) = value else { return Ok(None) };
            let (op, v) = if is_wildcard(value) { ("GLOB", glob_pattern(value)) } else { ("=", value.clone()) };
            let ids_sql = format!("SELECT id FROM dict WHERE kind = {k} AND value {op} ?");
            let ids = ids(conn, &ids_sql, vec![Value::Text(v.clone())])?;
            postings.push((
                format!("SELECT block FROM postings WHERE dim = {k} AND value IN ({ids_sql})"),
                vec![Value::Text(v)],
            ));
            Ok(Some(ids))
        };
        let event_name = dict(&q.event_name, kind::EVENT_NAME)?;
        let event_source = dict(&q.event_source, kind::EVENT_SOURCE)?;
        let account = dict(&q.account, kind::ACCOUNT)?;
        let region = dict(&q.region, kind::REGION)?;
        let error_code = dict(&q.error_code, kind::ERROR_CODE)?;
        let (source_ip, source_ip_glob) = match &q.source_ip {
            None => (None, None),
            Some(pattern) if is_wildcard(pattern) => (None, Some(pattern.clone())),
            Some(ip) => {
                let id = text_id(ip);
                postings.push((
                    format!(
                        "SELECT block FROM postings WHERE dim = {} AND value IN \
                         ({segments} SELECT (x << {SEGMENT_VALUE_BITS}) | ? FROM segments)",
                        kind::SOURCE_IP
                    ),
                    vec![Value::Integer(id & SEGMENT_VALUE_MASK)],
                ));
                (Some(FxHashSet::from_iter([id])), None)
            }
        };
        let principal = match &q.principal {
            None => None,
            Some(who) => {
                let (ids_sql, four) = principal_ids_sql(who);
                let set = ids(conn, &ids_sql, four.clone())?;
                postings.push((
                    format!(
                        "SELECT block FROM postings WHERE dim = {} AND value IN \
                         ({segments} SELECT (x << {SEGMENT_VALUE_BITS}) | p.id FROM segments, ({ids_sql}) p)",
                        kind::PRINCIPAL
                    ),
                    four,
                ));
                Some(set)
            }
        };
        if q.errors {
            postings.push((format!("SELECT block FROM postings WHERE dim = {}", kind::ERROR_CODE), Vec::new()));
        }
        Ok(Filters {
            event_name,
            event_source,
            account,
            region,
            source_ip,
            source_ip_glob,
            principal,
            error_code,
            errors: q.errors,
            since: q.since,
            until: q.until,
            after: q.after.map(|p| (p.event_time, p.row)),
            postings,
        })
    }

    /// Whether the most selective column filter's postings name at most a quarter of all
    /// blocks (counting postings entries reads an index range, no block).
    fn selective(&self, conn: &Connection) -> Result<bool, StoreError> {
        let blocks: Option<i64> = conn
            .prepare_cached("SELECT max(id) FROM blocks")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .context("count blocks")?;
        let blocks = blocks.unwrap_or(0);
        let mut fewest = i64::MAX;
        for (sql, params) in &self.postings {
            let n: i64 = conn
                .prepare_cached(&format!("SELECT count(*) FROM ({sql})"))
                .and_then(|mut s| s.query_row(params_from_iter(params.iter().cloned()), |r| r.get(0)))
                .context("count postings")?;
            fewest = fewest.min(n);
        }
        Ok(fewest.saturating_mul(4) <= blocks)
    }

    /// A filter that no id can satisfy: nothing matches.
    fn impossible(&self) -> bool {
        [
            &self.event_name,
            &self.event_source,
            &self.account,
            &self.region,
            &self.source_ip,
            &self.principal,
            &self.error_code,
        ]
        .iter()
        .any(|f| f.as_ref().is_some_and(FxHashSet::is_empty))
    }

    fn matches(&self, c: &BlockColumns, i: usize, key: i64) -> bool {
        let t = c.event_time[i];
        let within = |set: &Option<FxHashSet<i64>>, v: i64| set.as_ref().is_none_or(|s| s.contains(&v));
        self.since.is_none_or(|s| t >= s)
            && self.until.is_none_or(|u| t <= u)
            && self.after.is_none_or(|a| (t, key) < a)
            && (!self.errors || c.error_code[i] != 0)
            && within(&self.event_name, c.event_name[i])
            && within(&self.event_source, c.event_source[i])
            && within(&self.account, c.account[i])
            && within(&self.region, c.region[i])
            && within(&self.source_ip, c.source_ip[i])
            && within(&self.principal, c.principal[i])
            && within(&self.error_code, c.error_code[i])
            && self.source_ip_glob.as_deref().is_none_or(|g| c.text(c.source_ip[i]).is_some_and(|t| glob_matches(g, t)))
    }

    /// Candidate blocks, newest `max_time` first: (id, max_time, rows, columns).
    fn candidates_sql(&self, use_postings: bool) -> (String, Vec<Value>) {
        let mut clauses = Vec::new();
        let mut params = Vec::new();
        if use_postings {
            let parts: Vec<&str> = self.postings.iter().map(|(sql, _)| sql.as_str()).collect();
            clauses.push(format!("b.id IN ({})", parts.join(" INTERSECT ")));
            params.extend(self.postings.iter().flat_map(|(_, p)| p.iter().cloned()));
        }
        if let Some(since) = self.since {
            clauses.push("b.max_time >= ?".into());
            params.push(Value::Integer(since));
        }
        if let Some(until) = self.until {
            clauses.push("b.min_time <= ?".into());
            params.push(Value::Integer(until));
        }
        if let Some((time, _)) = self.after {
            clauses.push("b.min_time <= ?".into());
            params.push(Value::Integer(time));
        }
        let filter = if clauses.is_empty() { "1".to_string() } else { clauses.join(" AND ") };
        // Candidates from postings are sorted by time after the lookup: the sorter must not
        // carry every block's columns (megabytes for a frequent value), so they are read one
        // block at a time as the search gets to it. The time plan walks `blocks_max_time` in
        // order and reads each block's columns as it steps.
        let columns = if use_postings { "NULL" } else { "b.columns" };
        (
            format!(
                "SELECT b.id, b.max_time, b.rows, {columns} FROM blocks b WHERE {filter} ORDER BY b.max_time DESC, b.id DESC"
            ),
            params,
        )
    }
}

/// The ids of the principals a principal filter matches (its ARN, the role or user that
/// issued it, its name, the person behind it), as a query and its parameters.
fn principal_ids_sql(who: &str) -> (String, Vec<Value>) {
    let (op, v) = if is_wildcard(who) { ("GLOB", glob_pattern(who)) } else { ("=", who.to_string()) };
    (
        format!("SELECT id FROM principals WHERE principal {op} ? OR issuer {op} ? OR name {op} ? OR human {op} ?"),
        vec![Value::Text(v); 4],
    )
}

fn ids(conn: &Connection, sql: &str, params: Vec<Value>) -> Result<FxHashSet<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).context("prepare id lookup")?;
    let rows = stmt.query_map(params_from_iter(params), |r| r.get::<_, i64>(0)).context("look up ids")?;
    rows.collect::<Result<FxHashSet<_>, _>>().context("read ids")
}

/// A block being read: its columns, and its raw records once a row is emitted.
struct Block {
    id: i64,
    columns: BlockColumns,
    /// Every raw record, once something wanted them all.
    raw: OnceCell<Vec<String>>,
    /// The stored raw bytes and their frame index (`blocks.frames`), read once.
    stored: OnceCell<StoredRaw>,
    /// Frames decompressed so far, by their number.
    frames: std::cell::RefCell<FxHashMap<usize, Rc<Vec<String>>>>,
}

/// A block's raw bytes and, when stored, its frame index (first slot, start) per frame.
type StoredRaw = (Vec<u8>, Option<Vec<(u32, u32)>>);

impl Block {
    fn new(id: i64, columns: BlockColumns) -> Block {
        Block { id, columns, raw: OnceCell::new(), stored: OnceCell::new(), frames: Default::default() }
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { block: self.id, detail: detail.to_string() }
    }

    /// The block's raw bytes and frame index, read once.
    fn stored(&self, conn: &Connection) -> Result<&StoredRaw, StoreError> {
        if let Some(stored) = self.stored.get() {
            return Ok(stored);
        }
        let (bytes, frames): (Vec<u8>, Option<Vec<u8>>) = conn
            .prepare_cached("SELECT raw, frames FROM blocks WHERE id = ?1")
            .and_then(|mut s| s.query_row([self.id], |r| Ok((r.get(0)?, r.get(1)?))))
            .context("read raw records")?;
        Ok(self.stored.get_or_init(|| (bytes, frames.map(|f| crate::batch::decode_frame_index(&f)))))
    }

    /// Every raw record of the block, unpacked once.
    fn records(&self, conn: &Connection) -> Result<&Vec<String>, StoreError> {
        if let Some(all) = self.raw.get() {
            return Ok(all);
        }
        let all = super::unpack_raw(conn, &self.stored(conn)?.0).map_err(|e| self.corrupt(e))?;
        Ok(self.raw.get_or_init(|| all))
    }

    /// The raw record in `slot`: from its frame alone when the block lists its frames.
    fn record(&self, conn: &Connection, slot: usize) -> Result<String, StoreError> {
        let missing = || self.corrupt(format!("no raw record {slot}"));
        let index = match self.raw.get() {
            Some(_) => None,
            None => self.stored(conn)?.1.as_ref(),
        };
        let Some(index) = index else {
            return self.records(conn)?.get(slot).cloned().ok_or_else(missing);
        };
        let bytes = &self.stored(conn)?.0;
        let k = index.partition_point(|&(first, _)| first as usize <= slot);
        let Some(k) = k.checked_sub(1) else { return Err(self.corrupt(format!("no frame holds record {slot}"))) };
        let (first, start) = index[k];
        let end = index.get(k + 1).map_or(bytes.len(), |next| next.1 as usize);
        let cached = self.frames.borrow().get(&k).cloned();
        let frame = match cached {
            Some(f) => f,
            None => {
                let part =
                    bytes.get(start as usize..end).ok_or_else(|| self.corrupt("frame index past the raw bytes"))?;
                let records = Rc::new(super::unpack_raw(conn, part).map_err(|e| self.corrupt(e))?);
                self.frames.borrow_mut().insert(k, records.clone());
                records
            }
        };
        frame.get(slot - first as usize).cloned().ok_or_else(missing)
    }
}

/// A matching row waiting in the heap.
struct Pending {
    time: i64,
    key: i64,
    row: usize,
    block: Rc<Block>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.key) == (other.time, other.key)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.key).cmp(&(other.time, other.key))
    }
}

/// Runs a search in one read transaction (one snapshot).
pub(crate) fn for_each_event(
    conn: &Connection,
    labels: &mut Labels,
    q: &EventQuery,
    plan: PlanChoice,
    f: &mut dyn FnMut(EventRow) -> bool,
) -> Result<(), StoreError> {
    in_snapshot(conn, |conn| search(conn, labels, q, plan, f))
}

fn in_snapshot<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
    conn.execute_batch("BEGIN").context("begin read")?;
    let result = f(conn);
    // A read transaction changes nothing; ending it cannot lose anything.
    let _ = conn.execute_batch("COMMIT");
    result
}

fn search(
    conn: &Connection,
    labels: &mut Labels,
    q: &EventQuery,
    plan: PlanChoice,
    f: &mut dyn FnMut(EventRow) -> bool,
) -> Result<(), StoreError> {
    let filters = Filters::resolve(conn, q)?;
    if filters.impossible() || q.limit == Some(0) {
        return Ok(());
    }
    let use_postings = match plan {
        _ if filters.postings.is_empty() => false,
        PlanChoice::Time => false,
        PlanChoice::Postings => true,
        PlanChoice::Auto => filters.selective(conn)?,
    };
    let (sql, params) = filters.candidates_sql(use_postings);
    let mut stmt = conn.prepare(&sql).context("prepare block search")?;
    let mut candidates = stmt.query(params_from_iter(params)).context("search blocks")?;
    let mut next = next_candidate(&mut candidates)?;
    let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
    let mut emitted = 0usize;
    loop {
        // Read blocks until none left could hold a row newer than the best one waiting.
        while let Some((id, max_time, rows, bytes)) = next.take() {
            if heap.peek().is_some_and(|top| top.time > max_time) {
                next = Some((id, max_time, rows, bytes));
                break;
            }
            let columns = decode_block(conn, id, &bytes)?;
            let block = Rc::new(Block::new(id, columns));
            let valid = (rows as usize).min(block.columns.len());
            for row in 0..valid {
                let key = id << ROW_BITS | row as i64;
                if filters.matches(&block.columns, row, key) {
                    heap.push(Pending { time: block.columns.event_time[row], key, row, block: block.clone() });
                }
            }
            next = next_candidate(&mut candidates)?;
        }
        let Some(top) = heap.pop() else { break };
        let row = event_row(conn, labels, &top.block, top.row)?;
        emitted += 1;
        if !f(row) || q.limit.is_some_and(|l| emitted >= l) {
            break;
        }
    }
    Ok(())
}

/// Events whose records name `resource` ([`model::resources::touches`]) at or after `since`,
/// newest first, at most `limit`: the blocks the resource postings name, newest `max_time`
/// first, each row confirmed on its record (postings are per block, and keys are hashes).
pub(crate) fn resource_events(
    conn: &Connection,
    labels: &mut Labels,
    resource: &str,
    since: i64,
    limit: usize,
) -> Result<Vec<EventRow>, StoreError> {
    in_snapshot(conn, |conn| {
        if limit == 0 || resource.is_empty() {
            return Ok(Vec::new());
        }
        let key = text_id(model::resources::lookup_key(resource));
        let sql = format!(
            "SELECT b.id, b.max_time, b.rows FROM blocks b WHERE b.max_time >= ?1 AND b.id IN \
             (SELECT block FROM postings WHERE dim = {} AND value IN \
              ({} SELECT (x << {SEGMENT_VALUE_BITS}) | ?2 FROM segments)) \
             ORDER BY b.max_time DESC, b.id DESC",
            kind::RESOURCE,
            segments_cte(),
        );
        let mut stmt = conn.prepare_cached(&sql).context("prepare resource search")?;
        let mut candidates =
            stmt.query(rusqlite::params![since, key & SEGMENT_VALUE_MASK]).context("search resource postings")?;
        let mut found: Vec<EventRow> = Vec::new();
        // The oldest (time, row) of the newest `limit` found so far.
        let mut newest: BinaryHeap<std::cmp::Reverse<(i64, i64)>> = BinaryHeap::new();
        while let Some(r) = candidates.next().context("read resource candidates")? {
            let (id, max_time, rows): (i64, i64, i64) =
                (r.get(0).context("read block")?, r.get(1).context("read block")?, r.get(2).context("read block")?);
            if newest.len() == limit && newest.peek().is_some_and(|o| o.0 .0 > max_time) {
                break;
            }
            let columns = decode_block(conn, id, &None)?;
            let block = Block::new(id, columns);
            let records = block.records(conn)?;
            let c = &block.columns;
            for row in 0..(rows as usize).min(c.len()) {
                let matched = c.event_time[row] >= since
                    && records
                        .get(c.raw_slot[row] as usize)
                        .is_some_and(|raw| model::resources::touches(raw, resource));
                if matched {
                    let e = event_row(conn, labels, &block, row)?;
                    newest.push(std::cmp::Reverse((e.event_time, e.row)));
                    if newest.len() > limit {
                        newest.pop();
                    }
                    found.push(e);
                }
            }
        }
        found.sort_by_key(|e| std::cmp::Reverse((e.event_time, e.row)));
        found.truncate(limit);
        Ok(found)
    })
}

/// (id, max_time, rows, columns): columns are `None` when the query left them to be read
/// on demand ([`Filters::candidates_sql`]).
type Candidate = (i64, i64, i64, Option<Vec<u8>>);

fn decode_block(conn: &Connection, id: i64, bytes: &Option<Vec<u8>>) -> Result<BlockColumns, StoreError> {
    let read;
    let bytes = match bytes {
        Some(b) => b,
        None => {
            read = conn
                .prepare_cached("SELECT columns FROM blocks WHERE id = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get::<_, Vec<u8>>(0)))
                .context("read block columns")?;
            &read
        }
    };
    BlockColumns::decode(bytes).map_err(|e| StoreError::Corrupt { block: id, detail: e.to_string() })
}

fn next_candidate(rows: &mut rusqlite::Rows<'_>) -> Result<Option<Candidate>, StoreError> {
    match rows.next().context("read block")? {
        None => Ok(None),
        Some(r) => Ok(Some((
            r.get(0).context("read block")?,
            r.get(1).context("read block")?,
            r.get(2).context("read block")?,
            r.get(3).context("read block")?,
        ))),
    }
}

fn event_row(conn: &Connection, labels: &mut Labels, block: &Block, row: usize) -> Result<EventRow, StoreError> {
    let c = &block.columns;
    let slot = c.raw_slot[row] as usize;
    let raw = block.record(conn, slot)?;
    Ok(EventRow {
        row: block.id << ROW_BITS | row as i64,
        // Not a column: random ids do not compress, and the record carries it.
        event_id: event_id_of(&raw)
            .ok_or_else(|| StoreError::Corrupt { block: block.id, detail: format!("record {slot} has no eventID") })?,
        event_time: c.event_time[row],
        event_source: labels.dict(conn, c.event_source[row])?,
        event_name: labels.dict(conn, c.event_name[row])?,
        principal: labels.principal(conn, c.principal[row])?,
        source_ip: c.text(c.source_ip[row]).map(String::from),
        account: labels.dict(conn, c.account[row])?,
        region: labels.dict(conn, c.region[row])?,
        error_code: labels.dict(conn, c.error_code[row])?,
        raw,
    })
}

/// The `eventID` of a stored record's text.
pub(crate) fn event_id_of(raw: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(rename = "eventID", borrow)]
        event_id: std::borrow::Cow<'a, str>,
    }
    serde_json::from_str::<Id<'_>>(raw).ok().map(|id| id.event_id.into_owned())
}

impl Labels {
    fn dict(&mut self, conn: &Connection, id: i64) -> Result<Option<String>, StoreError> {
        if id == 0 {
            return Ok(None);
        }
        if let Some(v) = self.dict.get(&id) {
            return Ok(Some(v.to_string()));
        }
        let v: String = conn
            .prepare_cached("SELECT value FROM dict WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)))
            .context("read dictionary value")?;
        self.dict.insert(id, v.as_str().into());
        Ok(Some(v))
    }

    fn principal(&mut self, conn: &Connection, id: i64) -> Result<String, StoreError> {
        if let Some(v) = self.principals.get(&id) {
            return Ok(v.to_string());
        }
        let v: String = conn
            .prepare_cached("SELECT principal FROM principals WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)))
            .context("read principal")?;
        self.principals.insert(id, v.as_str().into());
        Ok(v)
    }
}

pub(crate) fn event(conn: &Connection, labels: &mut Labels, event_id: &str) -> Result<Option<EventRow>, StoreError> {
    in_snapshot(conn, |conn| {
        let key = super::event_id_key(event_id);
        let found = super::find_event_id(conn, &key)?;
        let Some((id, row)) = found else { return Ok(None) };
        let (rows, bytes): (i64, Option<Vec<u8>>) = conn
            .prepare_cached("SELECT rows, columns FROM blocks WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))))
            .context("read block")?;
        let columns = decode_block(conn, id, &bytes)?;
        if row >= rows || row as usize >= columns.len() {
            return Err(StoreError::Corrupt { block: id, detail: format!("event row {row} of {rows}") });
        }
        let block = Block::new(id, columns);
        event_row(conn, labels, &block, row as usize).map(Some)
    })
}

/// Up to `limit` events with an arrival position after `position`, oldest arrival first
/// (what a forwarder reads next). Blocks are written whole, in id order, by the one writer
/// holding the lock, so arrival order is commit order: a reader never sees a later position
/// before an earlier one.
pub(crate) fn events_after(
    conn: &Connection,
    labels: &mut Labels,
    position: i64,
    limit: usize,
) -> Result<Vec<EventRow>, StoreError> {
    in_snapshot(conn, |conn| {
        let mut out = Vec::new();
        let mut stmt = conn
            .prepare_cached("SELECT id, rows, columns FROM blocks WHERE id >= ?1 ORDER BY id")
            .context("prepare forward read")?;
        let mut rows = stmt.query([position.max(0) >> ROW_BITS]).context("read blocks after a position")?;
        while out.len() < limit {
            let Some(r) = rows.next().context("read block")? else { break };
            let (id, valid, bytes): (i64, i64, Vec<u8>) =
                (r.get(0).context("read block")?, r.get(1).context("read block")?, r.get(2).context("read block")?);
            let columns = decode_block(conn, id, &Some(bytes))?;
            let block = Block::new(id, columns);
            for row in 0..(valid as usize).min(block.columns.len()) {
                if id << ROW_BITS | row as i64 > position {
                    out.push(event_row(conn, labels, &block, row)?);
                    if out.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok(out)
    })
}

fn column(c: &BlockColumns, dimension: Dimension) -> &[i64] {
    match dimension {
        Dimension::EventName => &c.event_name,
        Dimension::EventSource => &c.event_source,
        Dimension::Principal => &c.principal,
        Dimension::SourceIp => &c.source_ip,
        Dimension::Account => &c.account,
        Dimension::Region => &c.region,
        Dimension::ErrorCode => &c.error_code,
        Dimension::UserAgent => &c.user_agent,
    }
}

/// Whether a dimension's column holds text ids (its labels are in the blocks, not `dict`).
fn is_text(dimension: Dimension) -> bool {
    matches!(dimension, Dimension::SourceIp | Dimension::UserAgent)
}

/// The label of value `id` of `dimension`; a text id's label is read from `block`, a block
/// the value was seen in.
fn label(
    conn: &Connection,
    labels: &mut Labels,
    dimension: Dimension,
    id: i64,
    block: Option<i64>,
) -> Result<String, StoreError> {
    match dimension {
        Dimension::Principal => labels.principal(conn, id),
        d if is_text(d) => {
            let Some(block) = block else { return Ok(String::new()) };
            let c = decode_block(conn, block, &None)?;
            Ok(c.text(id).unwrap_or_default().to_string())
        }
        _ => Ok(labels.dict(conn, id)?.unwrap_or_default()),
    }
}

/// Counts, a histogram and top values of the events `q` matches. A query on time alone
/// (the overview) reads the hourly rollups for its whole hours and the blocks only for the
/// parts of hours at its ends; anything else reads the candidate blocks' columns (never the
/// raw records). Both give the same summary (tested).
pub(crate) fn summarize(
    conn: &Connection,
    labels: &mut Labels,
    q: &EventQuery,
    spec: &SummarySpec,
) -> Result<Summary, StoreError> {
    in_snapshot(conn, |conn| {
        let mut tally = Tally::new(conn, spec)?;
        if let Some((lo, hi)) = whole_hours(q, spec) {
            tally.add_rollups(conn, q, spec, lo, hi)?;
        } else if by_principal_rollups(q, spec) {
            tally.add_principal_rollups(conn, q, spec)?;
        } else {
            tally.scan(conn, q, spec)?;
        }
        tally.finish(conn, labels, spec)
    })
}

/// The rollups' dimension (`schema::kind`) of a summary dimension, if rollups count it.
fn rollup_kind(d: Dimension) -> Option<u8> {
    match d {
        Dimension::EventName => Some(kind::EVENT_NAME),
        Dimension::EventSource => Some(kind::EVENT_SOURCE),
        Dimension::Principal => Some(kind::PRINCIPAL),
        Dimension::SourceIp => Some(kind::SOURCE_IP),
        Dimension::Account => Some(kind::ACCOUNT),
        Dimension::Region => Some(kind::REGION),
        Dimension::ErrorCode => Some(kind::ERROR_CODE),
        Dimension::UserAgent => None,
    }
}

/// The whole hours `[lo, hi]` a summary can read from the rollups: when it filters on time
/// alone, counts only what rollups count, its buckets are whole hours, and its range covers
/// at least one whole hour.
fn whole_hours(q: &EventQuery, spec: &SummarySpec) -> Option<(i64, i64)> {
    let only_time = EventQuery { since: q.since, until: q.until, limit: q.limit, ..Default::default() };
    if *q != only_time
        || spec.tops.iter().any(|d| rollup_kind(*d).is_none())
        || spec.series.is_some_and(|d| rollup_kind(d).is_none())
        || (spec.bucket_ms != 0 && spec.bucket_ms % HOUR_MS != 0)
    {
        return None;
    }
    let lo = q.since.map_or(i64::MIN / HOUR_MS, |s| s.div_euclid(HOUR_MS) + i64::from(s.rem_euclid(HOUR_MS) != 0));
    let hi = q.until.map_or(i64::MAX / HOUR_MS - 1, |u| (u + 1).div_euclid(HOUR_MS) - 1);
    (lo <= hi).then_some((lo, hi))
}

/// The `principal_values` dimension of a summary dimension, if it counts it.
fn principal_kind(d: Dimension) -> Option<u8> {
    let k = rollup_kind(d).or((d == Dimension::UserAgent).then_some(kind::USER_AGENT))?;
    rollups::PRINCIPAL_DIMS.contains(&k).then_some(k)
}

/// Whether a summary can read the principal rollups: one of a principal's whole history
/// (its page), counting only what they count (and the principals themselves), by days.
fn by_principal_rollups(q: &EventQuery, spec: &SummarySpec) -> bool {
    let only = EventQuery { principal: q.principal.clone(), limit: q.limit, ..Default::default() };
    q.principal.is_some()
        && *q == only
        && spec.series.is_none()
        && spec.tops.iter().all(|d| *d == Dimension::Principal || principal_kind(*d).is_some())
        && spec.bucket_ms % rollups::DAY_MS == 0
}

/// A summary being counted: exact counts by id, labelled at the end.
struct Tally {
    summary: Summary,
    first: i64,
    last: i64,
    denied: FxHashSet<i64>,
    /// Per `spec.tops`: value → events.
    tops: Vec<FxHashMap<i64, u64>>,
    /// (bucket start, series value) → events.
    histogram: FxHashMap<(i64, i64), u64>,
    /// A block each text value was seen in, to read its label from at the end.
    seen_in: FxHashMap<i64, i64>,
    /// Where text values counted from the principal rollups were last seen: a hint, since
    /// retention may have rewritten that block without them; and the query (resolved)
    /// whose blocks hold them all.
    text_hints: FxHashMap<i64, i64>,
    text_filters: Option<Filters>,
}

impl Tally {
    fn new(conn: &Connection, spec: &SummarySpec) -> Result<Tally, StoreError> {
        Ok(Tally {
            summary: Summary::default(),
            first: i64::MAX,
            last: i64::MIN,
            denied: denied_codes(conn)?,
            tops: spec.tops.iter().map(|_| FxHashMap::default()).collect(),
            histogram: FxHashMap::default(),
            seen_in: FxHashMap::default(),
            text_hints: FxHashMap::default(),
            text_filters: None,
        })
    }

    /// Counts the events `q` matches from the candidate blocks' columns.
    fn scan(&mut self, conn: &Connection, q: &EventQuery, spec: &SummarySpec) -> Result<(), StoreError> {
        let filters = Filters::resolve(conn, q)?;
        if filters.impossible() {
            return Ok(());
        }
        let (sql, params) = filters.candidates_sql(!filters.postings.is_empty());
        let mut stmt = conn.prepare(&sql).context("prepare block search")?;
        let mut candidates = stmt.query(params_from_iter(params)).context("search blocks")?;
        while let Some((id, _, rows, bytes)) = next_candidate(&mut candidates)? {
            let c = decode_block(conn, id, &bytes)?;
            self.count_rows(&c, id, rows, spec, |row| filters.matches(&c, row, id << ROW_BITS | row as i64));
        }
        Ok(())
    }

    /// Counts the rows of block `id` (its columns `c`, `rows` valid) that `matches`.
    fn count_rows(
        &mut self,
        c: &BlockColumns,
        id: i64,
        rows: i64,
        spec: &SummarySpec,
        matches: impl Fn(usize) -> bool,
    ) {
        let text_tops: Vec<bool> = spec.tops.iter().map(|d| is_text(*d)).collect();
        let text_series = spec.series.is_some_and(is_text);
        let bucket = spec.bucket_ms.max(1);
        let series = spec.series.map(|d| column(c, d));
        let top_columns: Vec<&[i64]> = spec.tops.iter().map(|d| column(c, *d)).collect();
        for row in 0..(rows as usize).min(c.len()) {
            if !matches(row) {
                continue;
            }
            let t = c.event_time[row];
            self.summary.events += 1;
            self.first = self.first.min(t);
            self.last = self.last.max(t);
            let code = c.error_code[row];
            if code != 0 {
                self.summary.errors += 1;
                if self.denied.contains(&code) {
                    self.summary.denied += 1;
                }
            }
            if spec.bucket_ms > 0 {
                let start = t.div_euclid(bucket) * bucket;
                let value = series.map_or(0, |s| s[row]);
                if text_series && value != 0 {
                    self.seen_in.entry(value).or_insert(id);
                }
                *self.histogram.entry((start, value)).or_default() += 1;
            }
            for ((counts, column), &text) in self.tops.iter_mut().zip(&top_columns).zip(&text_tops) {
                let value = column[row];
                if value != 0 {
                    *counts.entry(value).or_default() += 1;
                    if text {
                        self.seen_in.entry(value).or_insert(id);
                    }
                }
            }
        }
    }

    /// Counts hours `[lo, hi]` from the rollups and the rest of `q`'s range from the blocks.
    fn add_rollups(
        &mut self,
        conn: &Connection,
        q: &EventQuery,
        spec: &SummarySpec,
        lo: i64,
        hi: i64,
    ) -> Result<(), StoreError> {
        let (start, end) = (lo * HOUR_MS, (hi + 1) * HOUR_MS);
        if q.since.is_some_and(|s| s < start) {
            self.scan(conn, &EventQuery { until: Some(start - 1), ..q.clone() }, spec)?;
        }
        if q.until.is_some_and(|u| u >= end) {
            self.scan(conn, &EventQuery { since: Some(end), ..q.clone() }, spec)?;
        }
        let hours = rollups::hours(conn, lo, hi)?;
        for h in &hours {
            self.summary.events += h.events as u64;
        }
        // The first event is in the first hour, the last in the last. Retention took some
        // of an hour's events when its times are unknown: its blocks say what is left.
        let hour_only = |hour: i64| EventQuery {
            since: Some(hour * HOUR_MS),
            until: Some((hour + 1) * HOUR_MS - 1),
            ..Default::default()
        };
        if let Some(h) = hours.first() {
            let first = match h.first {
                Some(t) => Some(t),
                None => edge_time(conn, &Filters::resolve(conn, &hour_only(h.hour))?, Edge::First)?,
            };
            self.first = self.first.min(first.unwrap_or(i64::MAX));
        }
        if let Some(h) = hours.last() {
            let last = match h.last {
                Some(t) => Some(t),
                None => edge_time(conn, &Filters::resolve(conn, &hour_only(h.hour))?, Edge::Last)?,
            };
            self.last = self.last.max(last.unwrap_or(i64::MIN));
        }
        let (Some(first_hour), Some(last_hour)) = (hours.first().map(|h| h.hour), hours.last().map(|h| h.hour)) else {
            return Ok(());
        };
        for (_, code, n) in rollups::all_counts(conn, kind::ERROR_CODE, first_hour, last_hour)? {
            self.summary.errors += n;
            if self.denied.contains(&code) {
                self.summary.denied += n;
            }
        }
        if spec.bucket_ms > 0 {
            let bucket = |hour: i64| (hour * HOUR_MS).div_euclid(spec.bucket_ms) * spec.bucket_ms;
            // Events of each hour not counted under a series value have none.
            let mut unlabelled: FxHashMap<i64, i64> = hours.iter().map(|h| (h.hour, h.events)).collect();
            if let Some(d) = spec.series.and_then(rollup_kind) {
                for (hour, value, n) in rollups::all_counts(conn, d, first_hour, last_hour)? {
                    *self.histogram.entry((bucket(hour), value)).or_default() += n;
                    *unlabelled.entry(hour).or_default() -= n as i64;
                }
            }
            for (hour, n) in unlabelled.into_iter().filter(|h| h.1 > 0) {
                *self.histogram.entry((bucket(hour), 0)).or_default() += n as u64;
            }
        }
        let hour_list: Vec<i64> = hours.iter().map(|h| h.hour).collect();
        for (counts, d) in self.tops.iter_mut().zip(&spec.tops) {
            let dim = rollup_kind(*d).expect("whole_hours checked");
            *counts = rollups::top_values(conn, dim, &hour_list, counts, spec.top_n)?;
        }
        Ok(())
    }

    /// Counts the events of the principals `q` names: a busy principal's from its counts
    /// (`principal_values`) and the blocks before them, any other's from its blocks.
    fn add_principal_rollups(
        &mut self,
        conn: &Connection,
        q: &EventQuery,
        spec: &SummarySpec,
    ) -> Result<(), StoreError> {
        use rollups::{DAY_DIM, DAY_MS};
        let filters = Filters::resolve(conn, q)?;
        let who = q.principal.as_deref().expect("by_principal_rollups checked");
        let (ids_sql, ids_params) = principal_ids_sql(who);
        // Each principal's first counted block (None: not busy).
        let mut counted_from: FxHashMap<i64, Option<i64>> = FxHashMap::default();
        {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT p.id, c.rolled_from FROM principals p LEFT JOIN principal_counts c ON c.principal = p.id
                     WHERE p.id IN ({ids_sql})"
                ))
                .context("read principals")?;
            let rows = stmt
                .query_map(params_from_iter(ids_params.iter().cloned()), |r| Ok((r.get(0)?, r.get(1)?)))
                .context("read principals")?;
            for row in rows {
                let (id, from) = row.context("read principals")?;
                counted_from.insert(id, from);
            }
        }
        let principal_top = spec.tops.iter().position(|d| *d == Dimension::Principal);
        let mut tops_of: FxHashMap<u8, usize> = FxHashMap::default();
        for (i, d) in spec.tops.iter().enumerate() {
            if let Some(k) = principal_kind(*d) {
                tops_of.insert(k, i);
            }
        }
        let bucket = spec.bucket_ms.max(1);
        let mut busy: Vec<i64> = counted_from.iter().filter(|(_, f)| f.is_some()).map(|(id, _)| *id).collect();
        busy.sort_unstable();
        let mut values = conn
            .prepare_cached("SELECT dim, value, events, block FROM principal_values WHERE principal = ?1")
            .context("read principal values")?;
        for id in busy {
            let mut rows = values.query([id]).context("read principal values")?;
            while let Some(r) = rows.next().context("read principal values")? {
                let (dim, value, events, block): (u8, i64, i64, i64) = (
                    r.get(0).context("read")?,
                    r.get(1).context("read")?,
                    r.get(2).context("read")?,
                    r.get(3).context("read")?,
                );
                let events = events as u64;
                if dim == DAY_DIM {
                    self.summary.events += events;
                    if let Some(p) = principal_top {
                        *self.tops[p].entry(id).or_default() += events;
                    }
                    if spec.bucket_ms > 0 {
                        *self.histogram.entry(((value * DAY_MS).div_euclid(bucket) * bucket, 0)).or_default() += events;
                    }
                    continue;
                }
                if dim == kind::ERROR_CODE {
                    self.summary.errors += events;
                    if self.denied.contains(&value) {
                        self.summary.denied += events;
                    }
                }
                if let Some(&i) = tops_of.get(&dim) {
                    *self.tops[i].entry(value).or_default() += events;
                    if dim == kind::SOURCE_IP || dim == kind::USER_AGENT {
                        let hint = self.text_hints.entry(value).or_insert(block);
                        *hint = (*hint).max(block);
                    }
                }
            }
        }
        // The events not counted: every event of a principal that is not busy, a busy one's
        // before its counts begin. Their blocks, from the postings.
        let sql = format!(
            "{segments}, s(id, from_block) AS (SELECT p.id, c.rolled_from FROM principals p
                LEFT JOIN principal_counts c ON c.principal = p.id WHERE p.id IN ({ids_sql}))
             SELECT DISTINCT po.block FROM segments, s, postings po
             WHERE po.dim = {dim} AND po.value = (segments.x << {SEGMENT_VALUE_BITS}) | s.id
               AND (s.from_block IS NULL OR po.block < s.from_block)
             ORDER BY po.block",
            segments = segments_cte(),
            dim = kind::PRINCIPAL,
        );
        let blocks: Vec<i64> = {
            let mut stmt = conn.prepare_cached(&sql).context("find uncounted blocks")?;
            let rows = stmt.query_map(params_from_iter(ids_params), |r| r.get(0)).context("find uncounted blocks")?;
            rows.collect::<Result<_, _>>().context("find uncounted blocks")?
        };
        let mut read = conn.prepare_cached("SELECT rows, columns FROM blocks WHERE id = ?1").context("read block")?;
        for block in blocks {
            use rusqlite::OptionalExtension;
            // Postings outlive blocks retention dropped.
            let Some((rows, bytes)) = read
                .query_row([block], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .optional()
                .context("read block")?
            else {
                continue;
            };
            let c = decode_block(conn, block, &Some(bytes))?;
            let uncounted =
                |row: usize| counted_from.get(&c.principal[row]).is_some_and(|f| f.is_none_or(|f| block < f));
            self.count_rows(&c, block, rows, spec, |row| {
                uncounted(row) && filters.matches(&c, row, block << ROW_BITS | row as i64)
            });
        }
        // First and last: a few blocks at each end.
        if self.summary.events > 0 {
            if let Some(t) = edge_time(conn, &filters, Edge::First)? {
                self.first = self.first.min(t);
            }
            if let Some(t) = edge_time(conn, &filters, Edge::Last)? {
                self.last = self.last.max(t);
            }
        }
        self.text_filters = Some(filters);
        Ok(())
    }

    fn finish(mut self, conn: &Connection, labels: &mut Labels, spec: &SummarySpec) -> Result<Summary, StoreError> {
        let mut summary = std::mem::take(&mut self.summary);
        if summary.events > 0 {
            summary.first = Some(self.first);
            summary.last = Some(self.last);
        }
        for (&dimension, counts) in spec.tops.iter().zip(std::mem::take(&mut self.tops)) {
            let mut counts: Vec<(i64, u64)> = counts.into_iter().collect();
            // Labels are read only for the values shown; ties broken by label below.
            counts.sort_unstable_by_key(|c| std::cmp::Reverse(c.1));
            let cut = counts.get(spec.top_n.saturating_sub(1)).map_or(0, |c| c.1);
            let mut named = Vec::new();
            for (id, n) in counts.into_iter().take_while(|c| c.1 >= cut) {
                named.push((self.label(conn, labels, dimension, id)?, n));
            }
            named.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            named.truncate(spec.top_n);
            summary.tops.push((dimension, named));
        }
        let mut points = Vec::with_capacity(self.histogram.len());
        for ((start, series), n) in std::mem::take(&mut self.histogram) {
            let name = match spec.series {
                Some(d) if series != 0 => self.label(conn, labels, d, series)?,
                _ => String::new(),
            };
            points.push(HistogramPoint { start, series: name, events: n });
        }
        points.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.series.cmp(&b.series)));
        summary.histogram = points;
        Ok(summary)
    }

    fn label(&mut self, conn: &Connection, labels: &mut Labels, d: Dimension, id: i64) -> Result<String, StoreError> {
        if is_text(d) && !self.seen_in.contains_key(&id) {
            if let Some(block) = self.text_block_of_rollups(conn, id)? {
                self.seen_in.insert(id, block);
            }
        }
        if is_text(d) && !self.seen_in.contains_key(&id) {
            if let Some(block) = text_block(conn, d, id)? {
                self.seen_in.insert(id, block);
            }
        }
        label(conn, labels, d, id, self.seen_in.get(&id).copied())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Edge {
    First,
    Last,
}

/// The time of the first (or last) event `filters` match. Blocks are walked in order of their
/// earliest (latest) time through an index of the times alone (`blocks_by_min_time`,
/// `blocks_max_time`: reading a block's row for its times costs a page read each, seconds
/// for a principal in 70 k blocks), and only those the filters' postings name are read,
/// until none left can hold an earlier (later) event: a few blocks. Streamed from the
/// index, unsorted by anything else (ties need no order).
fn edge_time(conn: &Connection, filters: &Filters, edge: Edge) -> Result<Option<i64>, StoreError> {
    if filters.impossible() {
        return Ok(None);
    }
    let members: Option<FxHashSet<i64>> = if filters.postings.is_empty() {
        None
    } else {
        let parts: Vec<&str> = filters.postings.iter().map(|(sql, _)| sql.as_str()).collect();
        let params = filters.postings.iter().flat_map(|(_, p)| p.iter().cloned()).collect();
        Some(ids(conn, &format!("SELECT block FROM ({})", parts.join(" INTERSECT ")), params)?)
    };
    let (lo, hi) = (filters.since.unwrap_or(i64::MIN), filters.until.unwrap_or(i64::MAX));
    let sql = match edge {
        Edge::First => {
            "SELECT id, min_time, max_time FROM blocks INDEXED BY blocks_by_min_time
             WHERE min_time <= ?1 ORDER BY min_time ASC"
        }
        Edge::Last => {
            "SELECT id, max_time, max_time FROM blocks INDEXED BY blocks_max_time
             WHERE max_time >= ?1 ORDER BY max_time DESC, id DESC"
        }
    };
    let mut walk = conn.prepare_cached(sql).context("prepare block walk")?;
    let bound = match edge {
        Edge::First => hi,
        Edge::Last => lo,
    };
    let mut blocks = walk.query([bound]).context("walk blocks")?;
    let mut read =
        conn.prepare_cached("SELECT rows, min_time, columns FROM blocks WHERE id = ?1").context("read block")?;
    let mut best: Option<i64> = None;
    while let Some(r) = blocks.next().context("walk blocks")? {
        let (id, time, max_time): (i64, i64, i64) =
            (r.get(0).context("read")?, r.get(1).context("read")?, r.get(2).context("read")?);
        match (edge, best) {
            (Edge::First, Some(b)) if b <= time => break,
            (Edge::Last, Some(b)) if b >= time => break,
            _ => {}
        }
        if members.as_ref().is_some_and(|m| !m.contains(&id)) || (edge == Edge::First && max_time < lo) {
            continue;
        }
        let (rows, min_time, bytes): (i64, i64, Vec<u8>) =
            read.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).context("read block")?;
        if min_time > hi {
            continue;
        }
        let c = decode_block(conn, id, &Some(bytes))?;
        for row in 0..(rows as usize).min(c.len()) {
            if filters.matches(&c, row, id << ROW_BITS | row as i64) {
                let t = c.event_time[row];
                best = Some(match (edge, best) {
                    (_, None) => t,
                    (Edge::First, Some(b)) => b.min(t),
                    (Edge::Last, Some(b)) => b.max(t),
                });
            }
        }
    }
    Ok(best)
}

impl Tally {
    /// A block holding text id `id` counted from the principal rollups: the block they
    /// name if it still holds it, else the newest of the query's blocks that does.
    fn text_block_of_rollups(&self, conn: &Connection, id: i64) -> Result<Option<i64>, StoreError> {
        let Some(filters) = &self.text_filters else { return Ok(None) };
        if let Some(&block) = self.text_hints.get(&id) {
            if holds_text(conn, block, id)? {
                return Ok(Some(block));
            }
        }
        let (sql, params) = filters.candidates_sql(!filters.postings.is_empty());
        let mut stmt = conn.prepare(&sql).context("prepare block search")?;
        let mut candidates = stmt.query(params_from_iter(params)).context("search blocks")?;
        while let Some((block, _, _, bytes)) = next_candidate(&mut candidates)? {
            if decode_block(conn, block, &bytes)?.text(id).is_some() {
                return Ok(Some(block));
            }
        }
        Ok(None)
    }
}

/// A block whose texts hold text id `id` of `d` (found through the postings; user agents
/// have none).
fn text_block(conn: &Connection, d: Dimension, id: i64) -> Result<Option<i64>, StoreError> {
    if d != Dimension::SourceIp {
        return Ok(None);
    }
    let sql = format!(
        "{} SELECT block FROM postings WHERE dim = {} AND value IN \
         (SELECT (x << {SEGMENT_VALUE_BITS}) | ?1 FROM segments) ORDER BY block DESC",
        segments_cte(),
        kind::SOURCE_IP
    );
    let mut stmt = conn.prepare_cached(&sql).context("find a block of a text")?;
    let mut rows = stmt.query([id & SEGMENT_VALUE_MASK]).context("find a block of a text")?;
    // The low bits of another text may match: the block must really hold this one.
    while let Some(r) = rows.next().context("find a block of a text")? {
        let block: i64 = r.get(0).context("find a block of a text")?;
        if holds_text(conn, block, id)? {
            return Ok(Some(block));
        }
    }
    Ok(None)
}

/// Whether block `block` still exists and its texts hold text id `id` (postings and
/// rollups outlive what retention removes).
fn holds_text(conn: &Connection, block: i64, id: i64) -> Result<bool, StoreError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM blocks WHERE id = ?1")
        .and_then(|mut s| s.exists([block]))
        .context("find a block of a text")?;
    Ok(exists && decode_block(conn, block, &None)?.text(id).is_some())
}

/// Dictionary ids of the error codes that mean "not allowed" (AccessDenied,
/// UnauthorizedOperation and their service spellings).
fn denied_codes(conn: &Connection) -> Result<FxHashSet<i64>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, value FROM dict WHERE kind = ?1").context("read error codes")?;
    let rows = stmt
        .query_map([kind::ERROR_CODE], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .context("read error codes")?;
    let mut ids = FxHashSet::default();
    for r in rows {
        let (id, code) = r.context("read error codes")?;
        if crate::query::is_access_denied(&code) {
            ids.insert(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::columns::posting_value;

    /// Postings of an address in blocks of several segments are all found, by index seeks.
    #[test]
    fn segmented_postings_are_found_in_every_segment() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE blocks (id INTEGER PRIMARY KEY);
             CREATE TABLE postings (dim INTEGER NOT NULL, value INTEGER NOT NULL, block INTEGER NOT NULL,
                                    PRIMARY KEY (dim, value, block)) WITHOUT ROWID;",
        )
        .unwrap();
        let ip = text_id("203.0.113.7");
        let other = text_id("203.0.113.8");
        let last_block = (5 << SEGMENT_SHIFT) + 3;
        conn.execute("INSERT INTO blocks (id) VALUES (?1)", [last_block]).unwrap();
        let with_ip = [1, (1 << SEGMENT_SHIFT) + 7, (3 << SEGMENT_SHIFT), last_block];
        for block in with_ip {
            conn.execute(
                "INSERT INTO postings VALUES (?1, ?2, ?3)",
                [i64::from(kind::SOURCE_IP), posting_value(kind::SOURCE_IP, ip, block), block],
            )
            .unwrap();
        }
        for block in [2, (2 << SEGMENT_SHIFT) + 1] {
            conn.execute(
                "INSERT INTO postings VALUES (?1, ?2, ?3)",
                [i64::from(kind::SOURCE_IP), posting_value(kind::SOURCE_IP, other, block), block],
            )
            .unwrap();
        }
        let q = EventQuery { source_ip: Some("203.0.113.7".into()), ..Default::default() };
        let filters = Filters::resolve(&conn, &q).unwrap();
        let (sql, params) = &filters.postings[0];
        let found: Vec<i64> = conn
            .prepare(&format!("{sql} ORDER BY block"))
            .unwrap()
            .query_map(params_from_iter(params.iter().cloned()), |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(found, with_ip.to_vec());
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params_from_iter(params.iter().cloned()), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("SEARCH postings USING PRIMARY KEY (dim=? AND value=?)")),
            "each segment is a seek, not a scan: {plan:?}"
        );
    }
}
