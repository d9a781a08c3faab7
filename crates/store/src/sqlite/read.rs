//! Event search over the SQLite layout (see `schema.rs`): plan, fetch rows, attach raw JSON.
//!
//! Two plans give the same rows; they differ in what they read:
//! * **time**: walk `events_time` newest first and test each row. Best when matches are
//!   common (or there are no column filters): the first page is found after a few rows.
//! * **postings**: intersect the postings of every column filter to get the blocks that can
//!   hold a match, and test only those blocks' rows. Best for rare values.
//!
//! The planner estimates how many rows the candidate blocks hold and takes the postings plan
//! unless that is much more than a page needs. Either way the row columns are filtered
//! exactly, so the choice never changes the answer (the tests run both plans).

use std::collections::VecDeque;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};

use super::schema::kind;
use crate::batch::PackedRaw;
use crate::query::{glob_pattern, is_wildcard};
use crate::{Context, Dimension, EventQuery, EventRow, StoreError};

/// Which plan to use; `Auto` lets the estimate decide (tests force the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanChoice {
    Auto,
    Time,
    Postings,
}

/// Candidate rows above which a limited query walks the time index instead.
const POSTINGS_MAX_ROWS_PER_LIMIT: i64 = 200;
const POSTINGS_MIN_ROWS: i64 = 20_000;

const ROW_COLUMNS: &str = "e.id, e.event_id, e.event_time, src.value, name.value, p.principal, ip.value,
    acct.value, reg.value, err.value, e.slot";

const ROW_JOINS: &str = "JOIN principals p ON p.id = e.principal
    LEFT JOIN dict src ON src.id = e.event_source
    LEFT JOIN dict name ON name.id = e.event_name
    LEFT JOIN dict acct ON acct.id = e.account
    LEFT JOIN dict reg ON reg.id = e.region
    LEFT JOIN dict ip ON ip.id = e.source_ip
    LEFT JOIN dict err ON err.id = e.error_code";

/// A query broken into SQL fragments (fixed text, `?` placeholders) and parameters.
struct Parts {
    /// Conditions on `events e`.
    row: Vec<String>,
    row_params: Vec<Value>,
    /// One `SELECT block FROM postings …` per column filter; a match lies in all of them.
    postings: Vec<String>,
    postings_params: Vec<Value>,
    /// Conditions on `blocks b` (time overlap).
    block: Vec<String>,
    block_params: Vec<Value>,
}

fn parts(q: &EventQuery) -> Parts {
    let mut p = Parts {
        row: Vec::new(),
        row_params: Vec::new(),
        postings: Vec::new(),
        postings_params: Vec::new(),
        block: Vec::new(),
        block_params: Vec::new(),
    };
    let dict_filters = [
        (&q.event_name, "e.event_name", kind::EVENT_NAME),
        (&q.event_source, "e.event_source", kind::EVENT_SOURCE),
        (&q.account, "e.account", kind::ACCOUNT),
        (&q.region, "e.region", kind::REGION),
        (&q.source_ip, "e.source_ip", kind::SOURCE_IP),
    ];
    for (value, column, k) in dict_filters {
        let Some(value) = value else { continue };
        let (op, v) = if is_wildcard(value) { ("GLOB", glob_pattern(value)) } else { ("=", value.clone()) };
        let ids = format!("SELECT id FROM dict WHERE kind = {k} AND value {op} ?");
        p.row.push(format!("{column} IN ({ids})"));
        p.row_params.push(Value::Text(v.clone()));
        p.postings.push(format!("SELECT block FROM postings WHERE dim = {k} AND value IN ({ids})"));
        p.postings_params.push(Value::Text(v));
    }
    if let Some(who) = &q.principal {
        let (op, v) = if is_wildcard(who) { ("GLOB", glob_pattern(who)) } else { ("=", who.clone()) };
        let ids =
            format!("SELECT id FROM principals WHERE principal {op} ? OR issuer {op} ? OR name {op} ? OR human {op} ?");
        p.row.push(format!("e.principal IN ({ids})"));
        p.row_params.extend(std::iter::repeat_n(Value::Text(v.clone()), 4));
        p.postings.push(format!("SELECT block FROM postings WHERE dim = {} AND value IN ({ids})", kind::PRINCIPAL));
        p.postings_params.extend(std::iter::repeat_n(Value::Text(v), 4));
    }
    if q.errors {
        p.row.push("e.error_code IS NOT NULL".into());
        p.postings.push(format!("SELECT block FROM postings WHERE dim = {}", kind::ERROR_CODE));
    }
    if let Some(since) = q.since {
        p.row.push("e.event_time >= ?".into());
        p.row_params.push(Value::Integer(since));
        p.block.push("b.max_time >= ?".into());
        p.block_params.push(Value::Integer(since));
    }
    if let Some(until) = q.until {
        p.row.push("e.event_time <= ?".into());
        p.row_params.push(Value::Integer(until));
        p.block.push("b.min_time <= ?".into());
        p.block_params.push(Value::Integer(until));
    }
    if let Some(after) = q.after {
        p.row.push("(e.event_time, e.id) < (?, ?)".into());
        p.row_params.push(Value::Integer(after.event_time));
        p.row_params.push(Value::Integer(after.row));
    }
    p
}

fn and(clauses: &[String]) -> String {
    if clauses.is_empty() {
        "1".into()
    } else {
        clauses.join(" AND ")
    }
}

impl Parts {
    fn candidates_cte(&self) -> String {
        // INTERSECT yields distinct blocks; a single filter needs DISTINCT (several values can
        // share a block).
        format!("WITH cand(block) AS (SELECT DISTINCT block FROM ({}))", self.postings.join(" INTERSECT "))
    }

    /// Rows in the blocks the postings allow.
    fn candidate_rows(&self, conn: &Connection) -> Result<i64, StoreError> {
        let sql = format!(
            "{} SELECT coalesce(sum(b.last_row - b.id + 1), 0) FROM cand CROSS JOIN blocks b ON b.id = cand.block WHERE {}",
            self.candidates_cte(),
            and(&self.block)
        );
        let params = self.postings_params.iter().chain(&self.block_params).cloned();
        conn.query_row(&sql, params_from_iter(params), |r| r.get(0)).context("estimate candidate rows")
    }
}

pub(crate) fn for_each_event(
    conn: &Connection,
    q: &EventQuery,
    plan: PlanChoice,
    f: &mut dyn FnMut(EventRow) -> bool,
) -> Result<(), StoreError> {
    let parts = parts(q);
    let use_postings = !parts.postings.is_empty()
        && match plan {
            PlanChoice::Time => false,
            PlanChoice::Postings => true,
            PlanChoice::Auto => match q.limit {
                None => true,
                Some(limit) => {
                    let budget = POSTINGS_MIN_ROWS.max(limit as i64 * POSTINGS_MAX_ROWS_PER_LIMIT);
                    parts.candidate_rows(conn)? <= budget
                }
            },
        };
    let (sql, params): (String, Vec<Value>) = if use_postings {
        // CROSS JOIN fixes the nesting: candidate blocks → their rowid range of events.
        let sql = format!(
            "{} SELECT {ROW_COLUMNS} FROM cand CROSS JOIN blocks b ON b.id = cand.block
             CROSS JOIN events e ON e.id BETWEEN b.id AND b.last_row {ROW_JOINS}
             WHERE {} AND {} ORDER BY e.event_time DESC, e.id DESC",
            parts.candidates_cte(),
            and(&parts.block),
            and(&parts.row)
        );
        let params =
            parts.postings_params.iter().chain(&parts.block_params).chain(&parts.row_params).cloned().collect();
        (sql, params)
    } else {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM events e {ROW_JOINS} WHERE {} ORDER BY e.event_time DESC, e.id DESC",
            and(&parts.row)
        );
        (sql, parts.row_params)
    };
    let (sql, params) = match q.limit {
        Some(limit) => {
            let mut params = params;
            params.push(Value::Integer(limit as i64));
            (format!("{sql} LIMIT ?"), params)
        }
        None => (sql, params),
    };
    let mut stmt = conn.prepare(&sql).context("prepare search")?;
    let mut rows = stmt.query(params_from_iter(params)).context("search events")?;
    let mut raw = RawFetcher::new(conn);
    while let Some(r) = rows.next().context("read search results")? {
        let row = partial_row(r).context("read search results")?;
        if !f(raw.complete(row)?) {
            break;
        }
    }
    Ok(())
}

pub(crate) fn event(conn: &Connection, event_id: &str) -> Result<Option<EventRow>, StoreError> {
    let sql = format!("SELECT {ROW_COLUMNS} FROM events e {ROW_JOINS} WHERE e.event_id = ?");
    let key = super::event_id_key(event_id);
    let Some(row) = conn.query_row(&sql, [key], partial_row).optional().context("read event")? else {
        return Ok(None);
    };
    RawFetcher::new(conn).complete(row).map(Some)
}

pub(crate) fn top(
    conn: &Connection,
    dimension: Dimension,
    q: &EventQuery,
    limit: usize,
) -> Result<Vec<(String, u64)>, StoreError> {
    let parts = parts(q);
    let (label, group) = match dimension {
        Dimension::EventName => ("name.value", "e.event_name"),
        Dimension::EventSource => ("src.value", "e.event_source"),
        Dimension::Principal => ("p.principal", "e.principal"),
        Dimension::SourceIp => ("ip.value", "e.source_ip"),
        Dimension::Account => ("acct.value", "e.account"),
        Dimension::Region => ("reg.value", "e.region"),
        Dimension::ErrorCode => ("err.value", "e.error_code"),
    };
    let sql = format!(
        "SELECT {label}, count(*) AS n FROM events e {ROW_JOINS}
         WHERE {} AND {group} IS NOT NULL GROUP BY {group} ORDER BY n DESC, {label} LIMIT ?",
        and(&parts.row)
    );
    let mut params = parts.row_params;
    params.push(Value::Integer(limit as i64));
    let mut stmt = conn.prepare(&sql).context("prepare top values")?;
    let rows = stmt
        .query_map(params_from_iter(params), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
        .context("count top values")?;
    rows.collect::<Result<Vec<_>, _>>().context("read top values")
}

/// A row without its raw JSON yet, and where to find it.
struct PartialRow {
    row: EventRow,
    slot: usize,
}

fn partial_row(r: &Row<'_>) -> rusqlite::Result<PartialRow> {
    Ok(PartialRow {
        row: EventRow {
            row: r.get(0)?,
            event_id: super::event_id_string(r.get_ref(1)?)?,
            event_time: r.get(2)?,
            event_source: r.get(3)?,
            event_name: r.get(4)?,
            principal: r.get(5)?,
            source_ip: r.get(6)?,
            account: r.get(7)?,
            region: r.get(8)?,
            error_code: r.get(9)?,
            raw: String::new(),
        },
        slot: r.get::<_, i64>(10)? as usize,
    })
}

/// Reads raw records from blocks, keeping the last few blocks unpacked (rows of one block
/// tend to come together in time order).
struct RawFetcher<'c> {
    conn: &'c Connection,
    cache: VecDeque<(i64, i64, Vec<String>)>,
}

const BLOCK_CACHE: usize = 16;

impl<'c> RawFetcher<'c> {
    fn new(conn: &'c Connection) -> Self {
        RawFetcher { conn, cache: VecDeque::new() }
    }

    fn complete(&mut self, partial: PartialRow) -> Result<EventRow, StoreError> {
        let PartialRow { mut row, slot } = partial;
        let at = row.row;
        let index = match self.cache.iter().position(|(first, last, _)| (*first..=*last).contains(&at)) {
            Some(i) => i,
            None => {
                let (first, last, bytes): (i64, i64, Vec<u8>) = self
                    .conn
                    .prepare_cached("SELECT id, last_row, raw FROM blocks WHERE id <= ?1 ORDER BY id DESC LIMIT 1")
                    .and_then(|mut s| s.query_row([at], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
                    .context("read raw block")?;
                if !(first..=last).contains(&at) {
                    return Err(StoreError::Raw { row: at, source: crate::UnpackError::Truncated(0) });
                }
                let records =
                    PackedRaw::from_bytes(bytes).unpack().map_err(|source| StoreError::Raw { row: at, source })?;
                if self.cache.len() == BLOCK_CACHE {
                    self.cache.pop_back();
                }
                self.cache.push_front((first, last, records));
                0
            }
        };
        let records = &self.cache[index].2;
        row.raw = records
            .get(slot)
            .cloned()
            .ok_or(StoreError::Raw { row: at, source: crate::UnpackError::Truncated(slot) })?;
        Ok(row)
    }
}
