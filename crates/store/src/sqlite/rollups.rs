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
//!
//! A principal's page (all of its history, by day) must not read every block that holds
//! the principal: the busiest one of a hundred million events is in nearly all of them.
//! `principal_counts` counts each principal's events; once a principal has [`BUSY`], the
//! writer counts its values (and events per day) in `principal_values` from the next
//! commit's blocks on (`rolled_from`). Its page reads those counts, and its earlier events
//! (about [`BUSY`], at most one commit more) from their blocks. Counting every principal's
//! values would cost more than the events themselves: real trails are mostly short
//! sessions of a few calls (191k principals in a week of a million events, 3.3 counts per
//! event: ingest 30% slower); busy principals' counts are a fraction of an upsert per event.

use rusqlite::{params, Connection};
use rustc_hash::{FxHashMap, FxHashSet};

use super::columns::BlockColumns;
use super::schema::kind;
use crate::{Context, StoreError};

pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The columns `principal_values` counts: what a principal's page shows of it.
pub(crate) const PRINCIPAL_DIMS: [u8; 6] =
    [kind::SOURCE_IP, kind::USER_AGENT, kind::REGION, kind::EVENT_NAME, kind::ERROR_CODE, kind::ACCOUNT];

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
    principals: PrincipalDelta,
}

impl RollupDelta {
    /// Counts row `i` of `c`, stored in block `block` (+1), or uncounts it (`sign` -1).
    /// `busy`: its principal is busy (its values are counted).
    pub(crate) fn add_row(&mut self, c: &BlockColumns, i: usize, sign: i64, block: i64, busy: bool) {
        self.add_hour_row(c, i, sign);
        self.principals.add_row(c, i, sign, block, busy);
    }

    fn add_hour_row(&mut self, c: &BlockColumns, i: usize, sign: i64) {
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
        if self.hours.is_empty() && self.values.is_empty() && self.principals.is_empty() {
            *self = other;
            return;
        }
        self.principals.merge(other.principals);
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
    /// `busy`: the writer's busy principals, which this change may add to.
    pub(crate) fn apply(self, conn: &Connection, busy: Option<&mut BusyPrincipals>) -> Result<(), StoreError> {
        self.principals.apply(conn, busy)?;
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
        in_chunks(
            conn,
            &values,
            upsert_sql,
            |&((dim, hour, value), n)| [i64::from(dim), hour, value, n],
            |s, params| s.execute(rusqlite::params_from_iter(params)).map(drop).context("count values"),
        )?;
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

/// Runs `statement(n)`, a statement of `n` rows of `W` parameters (`params` of each row),
/// over `rows` in chunks of [`UPSERT_ROWS`]: `run` gets each prepared statement and its
/// chunk's parameters. Many rows per statement: per row, a statement's step costs as much
/// as the insert.
fn in_chunks<T, const W: usize>(
    conn: &Connection,
    rows: &[T],
    statement: impl Fn(usize) -> String,
    params: impl Fn(&T) -> [i64; W],
    mut run: impl FnMut(&mut rusqlite::Statement<'_>, Vec<i64>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let full = statement(UPSERT_ROWS);
    for chunk in rows.chunks(UPSERT_ROWS) {
        let values: Vec<i64> = chunk.iter().flat_map(&params).collect();
        // Only the last chunk is shorter: its statement is not worth a cache slot.
        if chunk.len() == UPSERT_ROWS {
            run(&mut *conn.prepare_cached(&full).context("prepare a statement of many rows")?, values)?;
        } else {
            run(&mut conn.prepare(&statement(chunk.len())).context("prepare a statement of many rows")?, values)?;
        }
    }
    Ok(())
}

/// Calls `f` with every stored row: its block's columns, its index, the block's id; blocks
/// in id order (the migrations that fill rollups from what is stored).
fn for_each_stored_row(
    conn: &Connection,
    f: &mut dyn FnMut(&BlockColumns, usize, i64) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT id, rows, columns FROM blocks ORDER BY id").context("read blocks")?;
    let mut rows = stmt.query([]).context("read blocks")?;
    while let Some(r) = rows.next().context("read blocks")? {
        let (block, n, bytes): (i64, i64, Vec<u8>) =
            (r.get(0).context("read block")?, r.get(1).context("read block")?, r.get(2).context("read block")?);
        let c = BlockColumns::decode(&bytes).map_err(|e| StoreError::Corrupt { block, detail: e.to_string() })?;
        for i in 0..(n as usize).min(c.len()) {
            f(&c, i, block)?;
        }
    }
    Ok(())
}

/// The rollups of every stored event (the migration that adds them).
pub(crate) fn rebuild(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("DELETE FROM rollups; DELETE FROM rollup_hours;").context("clear rollups")?;
    let mut delta = RollupDelta::default();
    for_each_stored_row(conn, &mut |c, i, _| {
        delta.add_hour_row(c, i, 1);
        // Bounded memory: a delta is written every so many distinct counts.
        if delta.values.len() > 1_000_000 {
            std::mem::take(&mut delta).apply(conn, None)?;
        }
        Ok(())
    })?;
    delta.apply(conn, None)
}

/// The principal rollups of every stored event (the migration that adds them): each
/// principal's events counted, and the busy ones' values from their first block on.
pub(crate) fn rebuild_principals(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch("DELETE FROM principal_values; DELETE FROM principal_counts;")
        .context("clear principal rollups")?;
    // Two passes: which principals are busy, then their values (all of every principal's
    // would not fit in memory at a hundred million events).
    let mut events: FxHashMap<i64, i64> = FxHashMap::default();
    for_each_stored_row(conn, &mut |c, i, _| {
        *events.entry(c.principal[i]).or_default() += 1;
        Ok(())
    })?;
    {
        let mut set = conn
            .prepare(
                "INSERT INTO principal_counts (principal, events, rolled_from)
                 VALUES (?1, ?2, CASE WHEN ?2 >= ?3 THEN 0 END)",
            )
            .context("prepare principal count")?;
        let mut events: Vec<_> = events.iter().filter(|e| *e.0 != 0).collect();
        events.sort_unstable();
        for (&principal, &n) in events {
            set.execute(params![principal, n, BUSY]).context("count a principal's events")?;
        }
    }
    let mut delta = PrincipalDelta::default();
    for_each_stored_row(conn, &mut |c, i, block| {
        if events.get(&c.principal[i]).is_some_and(|n| *n >= BUSY) {
            delta.add_values(c, i, 1, block);
        }
        if delta.values.len() > 1_000_000 {
            std::mem::take(&mut delta).write_values(conn)?;
        }
        Ok(())
    })?;
    delta.write_values(conn)
}

/// A principal with at least this many events stored is *busy*: from then on its values
/// are counted in `principal_values`. A principal's page reads fewer than this many of its
/// events from the blocks, the rest from its counts.
pub(crate) const BUSY: i64 = 128;

/// `principal_values` dimension of a principal's events per day (value: the day).
pub(crate) const DAY_DIM: u8 = 0;

/// Changes to the principal rollups (`principal_counts`, `principal_values`).
#[derive(Debug, Default)]
struct PrincipalDelta {
    /// Principal → events added (of principals not busy).
    events: FxHashMap<i64, i64>,
    /// (principal, dim, value) → (events added, newest block).
    values: FxHashMap<(i64, u8, i64), (i64, i64)>,
    /// (principal, dim, value, block) → events removed (retention): they are uncounted
    /// only if the principal's counts hold that block.
    removed: FxHashMap<(i64, u8, i64, i64), i64>,
}

impl PrincipalDelta {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.values.is_empty() && self.removed.is_empty()
    }

    fn add_row(&mut self, c: &BlockColumns, i: usize, sign: i64, block: i64, busy: bool) {
        if c.principal[i] == 0 {
            return;
        }
        if busy {
            self.add_values(c, i, sign, block);
        } else if sign > 0 {
            *self.events.entry(c.principal[i]).or_default() += sign;
        }
    }

    fn add_values(&mut self, c: &BlockColumns, i: usize, sign: i64, block: i64) {
        let principal = c.principal[i];
        let day = c.event_time[i].div_euclid(DAY_MS);
        let columns = [&c.source_ip, &c.user_agent, &c.region, &c.event_name, &c.error_code, &c.account];
        let values = PRINCIPAL_DIMS.into_iter().zip(columns).map(|(dim, column)| (dim, column[i]));
        for (dim, value) in std::iter::once((DAY_DIM, day)).chain(values).filter(|v| v.1 != 0 || v.0 == DAY_DIM) {
            if sign > 0 {
                let v = self.values.entry((principal, dim, value)).or_insert((0, block));
                v.0 += sign;
                v.1 = v.1.max(block);
            } else {
                *self.removed.entry((principal, dim, value, block)).or_default() += sign;
            }
        }
    }

    fn merge(&mut self, other: PrincipalDelta) {
        if self.is_empty() {
            *self = other;
            return;
        }
        for (key, n) in other.events {
            *self.events.entry(key).or_default() += n;
        }
        for (key, (n, block)) in other.values {
            let v = self.values.entry(key).or_insert((0, block));
            v.0 += n;
            v.1 = v.1.max(block);
        }
        for (key, n) in other.removed {
            *self.removed.entry(key).or_default() += n;
        }
    }

    /// Writes the change: counts each principal's new events, and the values of the busy
    /// ones. A principal that becomes busy now is counted from the next block on (blocks
    /// are numbered in commit order); its events so far are read from their blocks.
    fn apply(mut self, conn: &Connection, busy: Option<&mut BusyPrincipals>) -> Result<(), StoreError> {
        // The hourly rollups' migration (13) writes through here before these tables exist.
        if self.is_empty() {
            return Ok(());
        }
        let mut events: Vec<(i64, i64)> = std::mem::take(&mut self.events).into_iter().collect();
        events.sort_unstable();
        let mut now_busy = Vec::new();
        let count_sql = |rows: usize| {
            format!(
                "INSERT INTO principal_counts (principal, events) VALUES {}
                 ON CONFLICT (principal) DO UPDATE SET events = events + excluded.events
                 RETURNING principal, events, rolled_from",
                vec!["(?, ?)"; rows].join(", ")
            )
        };
        in_chunks(
            conn,
            &events,
            count_sql,
            |&(p, n)| [p, n],
            |stmt, params| {
                let mut rows = stmt.query(rusqlite::params_from_iter(params)).context("count principals' events")?;
                while let Some(r) = rows.next().context("count principals' events")? {
                    let (principal, n, from): (i64, i64, Option<i64>) =
                        (r.get(0).context("read")?, r.get(1).context("read")?, r.get(2).context("read")?);
                    if n >= BUSY && from.is_none() {
                        now_busy.push(principal);
                    }
                }
                Ok(())
            },
        )?;
        if !now_busy.is_empty() {
            let max: Option<i64> = conn
                .prepare_cached("SELECT max(id) FROM blocks")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .context("read the largest block id")?;
            let mut set = conn
                .prepare_cached("UPDATE principal_counts SET rolled_from = ?2 WHERE principal = ?1")
                .context("prepare busy principal")?;
            for &principal in &now_busy {
                set.execute(params![principal, max.unwrap_or(0) + 1]).context("mark a busy principal")?;
            }
            if let Some(busy) = busy {
                busy.ids.extend(&now_busy);
                busy.count += now_busy.len() as i64;
            }
        }
        // Removals count only where the principal's counts hold the block.
        let mut removed: Vec<_> = std::mem::take(&mut self.removed).into_iter().collect();
        removed.sort_unstable();
        if !removed.is_empty() {
            let mut rolled_from = conn
                .prepare_cached("SELECT rolled_from FROM principal_counts WHERE principal = ?1")
                .context("prepare principal lookup")?;
            let mut from: FxHashMap<i64, Option<i64>> = FxHashMap::default();
            for ((principal, dim, value, block), n) in removed {
                let f = match from.get(&principal) {
                    Some(f) => *f,
                    None => {
                        let f: Option<i64> = {
                            use rusqlite::OptionalExtension;
                            rolled_from
                                .query_row([principal], |r| r.get(0))
                                .optional()
                                .context("read a principal's counted blocks")?
                                .flatten()
                        };
                        from.insert(principal, f);
                        f
                    }
                };
                if f.is_some_and(|f| block >= f) {
                    self.values.entry((principal, dim, value)).or_insert((0, 0)).0 += n;
                }
            }
        }
        self.write_values(conn)
    }

    /// Adds `values` to `principal_values` (dropping counts that reach zero).
    fn write_values(self, conn: &Connection) -> Result<(), StoreError> {
        let mut values: Vec<_> = self.values.into_iter().filter(|(_, v)| v.0 != 0).collect();
        // In key order: each upsert lands next to the previous one.
        values.sort_unstable_by_key(|v| v.0);
        let upsert_sql = |rows: usize| {
            format!(
                "INSERT INTO principal_values (principal, dim, value, events, block) VALUES {}
                 ON CONFLICT (principal, dim, value) DO UPDATE
                 SET events = events + excluded.events, block = max(block, excluded.block)",
                vec!["(?, ?, ?, ?, ?)"; rows].join(", ")
            )
        };
        in_chunks(
            conn,
            &values,
            upsert_sql,
            |&((principal, dim, value), (n, block))| [principal, i64::from(dim), value, n, block],
            |s, params| s.execute(rusqlite::params_from_iter(params)).map(drop).context("count a principal's values"),
        )?;
        let mut drop_value = conn
            .prepare_cached(
                "DELETE FROM principal_values WHERE principal = ?1 AND dim = ?2 AND value = ?3 AND events <= 0",
            )
            .context("prepare principal value delete")?;
        for ((principal, dim, value), _) in values.iter().filter(|v| v.1 .0 < 0) {
            drop_value.execute(params![principal, dim, value]).context("drop a principal's zero count")?;
        }
        Ok(())
    }
}

/// The busy principals (`principal_counts.rolled_from` set), as a writer knows them.
#[derive(Debug, Default)]
pub(crate) struct BusyPrincipals {
    count: i64,
    ids: FxHashSet<i64>,
}

impl BusyPrincipals {
    /// Reads them again if others have become busy (principals never stop being busy, so
    /// the same count is the same set); in a write transaction, so exact until it ends.
    pub(crate) fn refresh(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let count: i64 = conn
            .prepare_cached("SELECT count(*) FROM principal_counts WHERE rolled_from IS NOT NULL")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .context("count busy principals")?;
        if count != self.count {
            let ids = conn
                .prepare_cached("SELECT principal FROM principal_counts WHERE rolled_from IS NOT NULL")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .context("read busy principals")?;
            *self = BusyPrincipals { count, ids };
        }
        Ok(())
    }

    pub(crate) fn contains(&self, principal: i64) -> bool {
        self.ids.contains(&principal)
    }
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
