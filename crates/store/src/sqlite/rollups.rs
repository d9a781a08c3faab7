//! Hourly rollups, kept by the writer in the transaction that stores the events, so that a
//! summary of a long range (the overview: 30 days of a busy organisation is a billion
//! events) reads hours, not events.
//!
//! * `rollup_hours` has one row per hour of eventTime that holds events: how many, and the
//!   first and last event time (NULL once retention removed some of the hour's events: the
//!   reader then finds them in the blocks).
//! * `rollups` counts each value of each posted column ([`BlockColumns::posted`]: event
//!   source and name, account, region, error code, address, principal) per hour. Keyed by
//!   (dim, hour, value): the writer's upserts stay in the current hours of each dimension.
//!
//! A range's most frequent values of a column with millions of distinct values (addresses)
//! must not read every (hour, value) count. The partial index `rollups_heavy` holds only the
//! counts of at least [`HEAVY`]; any value absent from it in an hour counted fewer there.
//! [`top_values`] sums the heavy counts, bounds every other value from above, and looks up
//! exact totals only for the values that may still be among the top; when the bounds do not
//! separate the top from the rest (a flat distribution, a short range), it reads every count.
//! Either way the result is exact.

use rusqlite::{params, Connection};
use rustc_hash::{FxHashMap, FxHashSet};

use super::columns::BlockColumns;
use crate::{Context, StoreError};

pub(crate) const HOUR_MS: i64 = 3_600_000;

/// Counts of at least this many in an hour are in `rollups_heavy` (the literal is in the
/// index's definition and in [`top_values`]' query: SQLite uses a partial index only for a
/// query whose WHERE implies the index's).
pub(crate) const HEAVY: i64 = 32;

/// Rows per upsert statement (4 parameters each, within SQLite's 32 766).
const UPSERT_ROWS: usize = 128;

/// Exact lookups [`top_values`] makes before it reads every count instead.
const MAX_LOOKUPS: usize = 50_000;

/// One hour's change: events, and the first and last event time added.
#[derive(Debug, Clone, Copy)]
struct HourDelta {
    events: i64,
    first: i64,
    last: i64,
}

/// Changes to the rollups: rows added by a writer (an object's, then a transaction's), or
/// rows removed by retention.
#[derive(Debug, Default)]
pub(crate) struct RollupDelta {
    hours: FxHashMap<i64, HourDelta>,
    values: FxHashMap<(u8, i64, i64), i64>,
}

impl RollupDelta {
    /// Counts row `i` of `c` (+1), or uncounts it (`sign` -1).
    pub(crate) fn add_row(&mut self, c: &BlockColumns, i: usize, sign: i64) {
        let t = c.event_time[i];
        let hour = super::event_hour(t);
        let h = self.hours.entry(hour).or_insert(HourDelta { events: 0, first: t, last: t });
        h.events += sign;
        h.first = h.first.min(t);
        h.last = h.last.max(t);
        for (dim, value) in c.values(i) {
            *self.values.entry((dim, hour, value)).or_default() += sign;
        }
    }

    pub(crate) fn merge(&mut self, other: RollupDelta) {
        if self.hours.is_empty() && self.values.is_empty() {
            *self = other;
            return;
        }
        for (hour, d) in other.hours {
            let h = self.hours.entry(hour).or_insert(HourDelta { events: 0, first: d.first, last: d.last });
            h.events += d.events;
            h.first = h.first.min(d.first);
            h.last = h.last.max(d.last);
        }
        for (key, n) in other.values {
            *self.values.entry(key).or_default() += n;
        }
    }

    /// Writes the change. Added rows widen an hour's first/last; removed rows make them
    /// unknown (NULL), since what is left is not known here.
    pub(crate) fn apply(self, conn: &Connection) -> Result<(), StoreError> {
        let mut hours: Vec<_> = self.hours.into_iter().collect();
        hours.sort_unstable_by_key(|h| h.0);
        let mut values: Vec<_> = self.values.into_iter().filter(|(_, n)| *n != 0).collect();
        // In key order: each upsert lands next to the previous one.
        values.sort_unstable_by_key(|v| v.0);
        let mut add_hour = conn
            .prepare_cached(
                "INSERT INTO rollup_hours (hour, events, first, last) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (hour) DO UPDATE SET events = events + excluded.events,
                    first = min(first, excluded.first), last = max(last, excluded.last)",
            )
            .context("prepare rollup hour upsert")?;
        let mut remove_hour = conn
            .prepare_cached("UPDATE rollup_hours SET events = events + ?2, first = NULL, last = NULL WHERE hour = ?1")
            .context("prepare rollup hour update")?;
        let mut drop_hour = conn
            .prepare_cached("DELETE FROM rollup_hours WHERE hour = ?1 AND events <= 0")
            .context("prepare rollup hour delete")?;
        for (hour, d) in hours {
            if d.events >= 0 {
                add_hour.execute(params![hour, d.events, d.first, d.last]).context("count an hour")?;
            } else {
                remove_hour.execute(params![hour, d.events]).context("uncount an hour")?;
                drop_hour.execute([hour]).context("drop an empty hour")?;
            }
        }
        // Many rows per statement: per row, a statement's step costs as much as the insert.
        let upsert_sql = |rows: usize| {
            format!(
                "INSERT INTO rollups (dim, hour, value, events) VALUES {}
                 ON CONFLICT (dim, hour, value) DO UPDATE SET events = events + excluded.events",
                vec!["(?, ?, ?, ?)"; rows].join(", ")
            )
        };
        let full = upsert_sql(UPSERT_ROWS);
        for chunk in values.chunks(UPSERT_ROWS) {
            let params = chunk.iter().flat_map(|&((dim, hour, value), n)| [i64::from(dim), hour, value, n]);
            // Only the last chunk is shorter: its statement is not worth a cache slot.
            let counted = if chunk.len() == UPSERT_ROWS {
                conn.prepare_cached(&full).and_then(|mut s| s.execute(rusqlite::params_from_iter(params)))
            } else {
                conn.prepare(&upsert_sql(chunk.len())).and_then(|mut s| s.execute(rusqlite::params_from_iter(params)))
            };
            counted.context("count values")?;
        }
        // Counts that retention took to zero go, by key (not by a scan of the table).
        let mut drop_value = conn
            .prepare_cached("DELETE FROM rollups WHERE dim = ?1 AND hour = ?2 AND value = ?3 AND events <= 0")
            .context("prepare rollup delete")?;
        for ((dim, hour, value), _) in values.iter().filter(|v| v.1 < 0) {
            drop_value.execute(params![dim, hour, value]).context("drop a zero count")?;
        }
        Ok(())
    }
}

/// The rollups of every stored event (the migration that adds them).
pub(crate) fn rebuild(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("DELETE FROM rollups; DELETE FROM rollup_hours;").context("clear rollups")?;
    let mut stmt = conn.prepare("SELECT id, rows, columns FROM blocks ORDER BY id").context("read blocks")?;
    let mut rows = stmt.query([]).context("read blocks")?;
    let mut delta = RollupDelta::default();
    while let Some(r) = rows.next().context("read blocks")? {
        let (block, n, bytes): (i64, i64, Vec<u8>) =
            (r.get(0).context("read block")?, r.get(1).context("read block")?, r.get(2).context("read block")?);
        let c = BlockColumns::decode(&bytes).map_err(|e| StoreError::Corrupt { block, detail: e.to_string() })?;
        for i in 0..(n as usize).min(c.len()) {
            delta.add_row(&c, i, 1);
        }
        // Bounded memory: a delta is written every so many distinct counts.
        if delta.values.len() > 1_000_000 {
            std::mem::take(&mut delta).apply(conn)?;
        }
    }
    delta.apply(conn)
}

/// A `rollup_hours` row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hour {
    pub hour: i64,
    pub events: i64,
    /// `None` when retention removed some of the hour's events.
    pub first: Option<i64>,
    pub last: Option<i64>,
}

/// The hours `[lo, hi]` that hold events, in order, with their counts.
pub(crate) fn hours(conn: &Connection, lo: i64, hi: i64) -> Result<Vec<Hour>, StoreError> {
    let mut s = conn
        .prepare_cached("SELECT hour, events, first, last FROM rollup_hours WHERE hour BETWEEN ?1 AND ?2 ORDER BY hour")
        .context("read rollup hours")?;
    let rows = s
        .query_map([lo, hi], |r| Ok(Hour { hour: r.get(0)?, events: r.get(1)?, first: r.get(2)?, last: r.get(3)? }))
        .context("read rollup hours")?;
    rows.collect::<Result<_, _>>().context("read rollup hours")
}

/// Every count of `dim` in hours `[lo, hi]`: (hour, value, events).
pub(crate) fn all_counts(conn: &Connection, dim: u8, lo: i64, hi: i64) -> Result<Vec<(i64, i64, u64)>, StoreError> {
    let mut s = conn
        .prepare_cached("SELECT hour, value, events FROM rollups WHERE dim = ?1 AND hour BETWEEN ?2 AND ?3")
        .context("read rollups")?;
    let rows = s
        .query_map(params![dim, lo, hi], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)))
        .context("read rollups")?;
    rows.collect::<Result<_, _>>().context("read rollups")
}

/// Totals of `dim`'s values over hours `[lo, hi]` (whose non-empty hours are `hours`)
/// plus `extra` (exact counts from outside those hours), for a set of values that holds
/// every value whose total is at least the `k`-th largest total: the caller's top `k`,
/// ties included, are exact.
pub(crate) fn top_values(
    conn: &Connection,
    dim: u8,
    hours: &[i64],
    extra: &FxHashMap<i64, u64>,
    k: usize,
) -> Result<FxHashMap<i64, u64>, StoreError> {
    let (Some(&lo), Some(&hi)) = (hours.first(), hours.last()) else { return Ok(extra.clone()) };
    if k == 0 {
        return Ok(FxHashMap::default());
    }
    // Heavy counts: partial sums, and in how many hours each value was heavy.
    let mut partial: FxHashMap<i64, (u64, usize)> = FxHashMap::default();
    let mut heavy_in: FxHashSet<(i64, i64)> = FxHashSet::default();
    {
        let mut s = conn
            .prepare_cached(
                "SELECT hour, value, events FROM rollups
                 WHERE dim = ?1 AND hour BETWEEN ?2 AND ?3 AND events >= 32",
            )
            .context("read heavy rollups")?;
        let mut rows = s.query(params![dim, lo, hi]).context("read heavy rollups")?;
        while let Some(r) = rows.next().context("read heavy rollups")? {
            let (hour, value, events): (i64, i64, i64) =
                (r.get(0).context("read")?, r.get(1).context("read")?, r.get(2).context("read")?);
            let events = events as u64;
            let p = partial.entry(value).or_default();
            p.0 += events;
            p.1 += 1;
            heavy_in.insert((hour, value));
        }
    }
    for (&value, &n) in extra {
        partial.entry(value).or_default().0 += n;
    }
    let light = (HEAVY - 1) as u64;
    // Any value never heavy and not in `extra` counted at most `light` in each hour.
    let unseen_bound = light * hours.len() as u64;
    // A value's total is at most its heavy counts plus `light` in every hour it was not heavy.
    let mut candidates: Vec<(i64, u64, usize)> =
        partial.iter().map(|(&v, p)| (v, p.0 + light * (hours.len() - p.1) as u64, p.1)).collect();
    candidates.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut exact: FxHashMap<i64, u64> = FxHashMap::default();
    let mut best: std::collections::BinaryHeap<std::cmp::Reverse<u64>> = std::collections::BinaryHeap::new();
    let mut lookups = 0usize;
    let mut lookup = conn
        .prepare_cached("SELECT events FROM rollups WHERE dim = ?1 AND hour = ?2 AND value = ?3")
        .context("prepare rollup lookup")?;
    for (i, &(value, _, heavy_hours)) in candidates.iter().enumerate() {
        // Stop once the k-th best exact total beats every value not yet looked at.
        if best.len() == k {
            let kth = best.peek().expect("k > 0").0;
            if kth > candidates[i].1 && kth > unseen_bound {
                return Ok(exact);
            }
        }
        let mut total = partial[&value].0;
        if heavy_hours < hours.len() {
            for &hour in hours {
                if heavy_in.contains(&(hour, value)) {
                    continue;
                }
                lookups += 1;
                let n: Option<i64> = {
                    use rusqlite::OptionalExtension;
                    lookup.query_row(params![dim, hour, value], |r| r.get(0)).optional().context("read a rollup")?
                };
                total += n.unwrap_or(0) as u64;
            }
        }
        exact.insert(value, total);
        best.push(std::cmp::Reverse(total));
        if best.len() > k {
            best.pop();
        }
        if lookups > MAX_LOOKUPS {
            break;
        }
    }
    if best.len() == k && lookups <= MAX_LOOKUPS {
        let kth = best.peek().expect("k > 0").0;
        // Every candidate is exact; only values never seen remain.
        if exact.len() == candidates.len() && kth > unseen_bound {
            return Ok(exact);
        }
    }
    // The bounds did not settle it: every count.
    let mut totals = extra.clone();
    for (_, value, events) in all_counts(conn, dim, lo, hi)? {
        *totals.entry(value).or_default() += events;
    }
    Ok(totals)
}
