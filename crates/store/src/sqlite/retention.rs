//! Retention on the embedded store: expired rows leave their blocks, a block at a time.
//!
//! A block (about a thousand events in arrival order) whose oldest event is past the
//! policy's latest cutoff is read, its rows tested one by one (the row's category decides
//! its cutoff; a row an alert refers to stays), and then either deleted with its postings
//! and `event_ids`, or rewritten with the rows that stay (their raw records re-packed, so
//! the space is really given back). Each call handles a bounded number of blocks in one
//! `BEGIN IMMEDIATE` transaction: ingest waits for at most one such slice. Freed pages go
//! back to the file's free list, which new blocks reuse, and databases created with
//! `auto_vacuum = INCREMENTAL` also hand them back to the file system.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection};

use super::columns::BlockColumns;
use super::schema::kind;
use crate::retention::{RetentionPolicy, RetentionReport, StorageStats};
use crate::{Context, RawFramer, StoreError};

/// A forwarder whose position has not been saved for this long does not hold retention back.
const STALE_FORWARDER_MS: i64 = 7 * 86_400_000;

/// Free pages returned to the file system per call (16 KiB each: 16 MiB).
const VACUUM_PAGES: i64 = 1024;

pub(crate) fn apply(
    conn: &mut Connection,
    policy: &RetentionPolicy,
    now: i64,
    resume_after: Option<i64>,
    max_blocks: usize,
) -> Result<RetentionReport, StoreError> {
    let mut report = RetentionReport::default();
    let Some(latest) = policy.latest_cutoff(now) else { return Ok(report) };
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).context("begin retention")?;
    let categories = categories(&tx)?;
    // Blocks a forwarder has not passed yet stay as they are: rewriting renumbers rows, and
    // an expired event should still reach a slow forwarder's sink before it goes.
    // A forwarder silent for a week (removed from the configuration, or down for good) no
    // longer holds retention back.
    let unforwarded: Option<i64> = tx
        .query_row("SELECT min(position) FROM forward_cursors WHERE updated_at > ?1", [now - STALE_FORWARDER_MS], |r| {
            r.get(0)
        })
        .context("read forward cursors")?;
    let block_limit = unforwarded.map_or(i64::MAX, |p| p >> 24);
    let candidates: Vec<(i64, i64, Vec<u8>, Vec<u8>)> = {
        let mut s = tx
            .prepare_cached(
                "SELECT id, rows, columns, raw FROM blocks WHERE id > ?1 AND id < ?4 AND min_time < ?2 ORDER BY id LIMIT ?3",
            )
            .context("prepare retention scan")?;
        let rows = s
            .query_map(params![resume_after.unwrap_or(0), latest, max_blocks as i64, block_limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .context("scan blocks for retention")?;
        rows.collect::<Result<_, _>>().context("scan blocks for retention")?
    };
    if let Some(&(last, ..)) = candidates.last() {
        report.resume_after = (candidates.len() == max_blocks).then_some(last);
    }
    // The removed rows leave the hourly rollups in the same transaction.
    let mut removed = super::rollups::RollupDelta::default();
    for (id, rows, columns, raw) in candidates {
        let mut c =
            BlockColumns::decode(&columns).map_err(|e| StoreError::Corrupt { block: id, detail: e.to_string() })?;
        c.truncate(rows as usize);
        let expired: Vec<bool> = (0..c.len())
            .map(|i| {
                let category = categories.get(&c.category[i]).map(String::as_str);
                policy.cutoff(category, now).is_some_and(|cut| c.event_time[i] < cut)
            })
            .collect();
        if !expired.contains(&true) {
            continue;
        }
        let records =
            super::unpack_raw(&tx, &raw).map_err(|e| StoreError::Corrupt { block: id, detail: e.to_string() })?;
        let record = |i: usize| -> Result<&String, StoreError> {
            records
                .get(c.raw_slot[i] as usize)
                .ok_or_else(|| StoreError::Corrupt { block: id, detail: format!("no raw record {}", c.raw_slot[i]) })
        };
        // The ids of the expired rows (read once: to keep the ones an alert refers to, and
        // to forget the others).
        let mut expired_ids = Vec::new();
        for i in (0..c.len()).filter(|&i| expired[i]) {
            let event_id = super::read::event_id_of(record(i)?)
                .ok_or_else(|| StoreError::Corrupt { block: id, detail: format!("row {i} has no eventID") })?;
            expired_ids.push((i, super::event_id_key(&event_id).into_owned()));
        }
        let mut keep = vec![true; c.len()];
        let mut alerted = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM alert_events WHERE event = ?1)")
            .context("prepare alerted event lookup")?;
        for (i, key) in &expired_ids {
            // An event an alert refers to stays.
            let referenced: bool = alerted.query_row([key], |r| r.get(0)).context("look up alerted event")?;
            report.events_kept_for_alerts += u64::from(referenced);
            keep[*i] = referenced;
        }
        let kept = keep.iter().filter(|k| **k).count();
        if kept == c.len() {
            continue;
        }
        {
            let mut forget =
                tx.prepare_cached("DELETE FROM event_ids WHERE hour = ?1 AND id = ?2").context("prepare id delete")?;
            for (i, key) in expired_ids.iter().filter(|(i, _)| !keep[*i]) {
                forget.execute(params![super::event_hour(c.event_time[*i]), key]).context("delete expired event id")?;
            }
        }
        report.events_deleted += (c.len() - kept) as u64;
        let mut old_postings = postings(&c, id);
        for i in (0..c.len()).filter(|&i| !keep[i]) {
            removed.add_row(&c, i, -1, id, true);
            // Resources are not columns: the removed rows' records say which they named.
            old_postings.extend(resource_postings(record(i)?, id));
        }
        if kept == 0 {
            tx.execute("DELETE FROM blocks WHERE id = ?1", [id]).context("delete expired block")?;
            delete_postings(&tx, id, &old_postings)?;
            report.units_dropped += 1;
            continue;
        }
        // Rewrite with the rows that stay, in their order; their arrival rows change, which
        // only moves them within their block.
        let mut next = BlockColumns::with_capacity(kept);
        let mut framer = RawFramer::default();
        let mut renumber = tx
            .prepare_cached("UPDATE event_ids SET row = ?3 WHERE hour = ?1 AND id = ?2")
            .context("prepare renumber")?;
        for i in (0..c.len()).filter(|&i| keep[i]) {
            let new_row = next.len() as i64;
            next.push_row_from(&c, i, new_row);
            let raw = record(i)?;
            framer.push(raw);
            if new_row != i as i64 {
                let event_id = super::read::event_id_of(raw)
                    .ok_or_else(|| StoreError::Corrupt { block: id, detail: format!("row {i} has no eventID") })?;
                renumber
                    .execute(params![super::event_hour(c.event_time[i]), super::event_id_key(&event_id), new_row])
                    .context("renumber kept event")?;
            }
        }
        let (min_time, max_time) =
            next.event_time.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        let packed = framer.finish();
        let frames = crate::batch::frame_index(&packed, 0, 0).map(|f| crate::batch::encode_frame_index(&f));
        tx.execute(
            "UPDATE blocks SET rows = ?2, min_time = ?3, max_time = ?4, columns = ?5, raw = ?6, frames = ?7 WHERE id = ?1",
            params![id, next.len() as i64, min_time, max_time, next.encode(), packed.as_bytes(), frames],
        )
        .context("rewrite block")?;
        let mut new_postings = postings(&next, id);
        for i in (0..c.len()).filter(|&i| keep[i]) {
            new_postings.extend(resource_postings(record(i)?, id));
        }
        let gone: Vec<_> = old_postings.difference(&new_postings).copied().collect();
        delete_postings(&tx, id, &gone.into_iter().collect())?;
        report.units_rewritten += 1;
    }
    removed.apply(&tx, None)?;
    if let Some(cut) = policy.bookkeeping_cutoff(now) {
        // The ledger says which objects were read; an object older than anything kept would
        // only be read again by a backfill over expired time, whose events expire again.
        report.ledger_rows_deleted = tx
            .execute("DELETE FROM objects WHERE status = 'committed' AND recorded_at < ?1", [cut])
            .context("prune ledger")? as u64;
        tx.execute("DELETE FROM digests_seen WHERE seen_at < ?1", [cut]).context("prune digests seen")?;
    }
    tx.commit().context("commit retention")?;
    let auto_vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).context("read auto_vacuum")?;
    if auto_vacuum == 2 {
        // Each step of this statement frees one page (and yields a row): run it to the end.
        let mut vacuum =
            conn.prepare(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})")).context("incremental vacuum")?;
        let mut steps = vacuum.query([]).context("incremental vacuum")?;
        while steps.next().context("incremental vacuum")?.is_some() {}
    }
    Ok(report)
}

/// `dict` ids of event categories → their names.
fn categories(conn: &Connection) -> Result<HashMap<i64, String>, StoreError> {
    let mut s = conn.prepare_cached("SELECT id, value FROM dict WHERE kind = ?1").context("read categories")?;
    let rows = s.query_map([kind::CATEGORY], |r| Ok((r.get(0)?, r.get(1)?))).context("read categories")?;
    rows.collect::<Result<_, _>>().context("read categories")
}

/// The postings a block's rows make.
fn postings(c: &BlockColumns, block: i64) -> HashSet<(u8, i64)> {
    (0..c.len()).flat_map(|i| c.posted(i, block)).collect()
}

/// The postings of the resources a stored record names.
fn resource_postings(raw: &str, block: i64) -> HashSet<(u8, i64)> {
    match model::Record::from_json(raw) {
        Ok(record) => {
            let ids = model::resources::record_identifiers(&record);
            super::columns::resource_postings(&ids, block).collect()
        }
        // A stored record parsed when it was written; one that no longer would names nothing.
        Err(_) => HashSet::new(),
    }
}

fn delete_postings(conn: &Connection, block: i64, postings: &HashSet<(u8, i64)>) -> Result<(), StoreError> {
    let mut s = conn
        .prepare_cached("DELETE FROM postings WHERE dim = ?1 AND value = ?2 AND block = ?3")
        .context("prepare postings delete")?;
    for &(dim, value) in postings {
        s.execute(params![dim, value, block]).context("delete posting")?;
    }
    Ok(())
}

pub(crate) fn storage(conn: &Connection, path: Option<&std::path::Path>) -> Result<StorageStats, StoreError> {
    let pragma = |name: &str| -> Result<i64, StoreError> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0)).context("read page counts")
    };
    let page = pragma("page_size")?;
    let (pages, free) = (pragma("page_count")?, pragma("freelist_count")?);
    let wal_bytes = path.map_or(0, |path| {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    });
    // From the header's page counts only: reading dbstat would visit every page, and this
    // answers every overview and every /metrics scrape.
    let parts = vec![("database".to_string(), (pages * page) as u64), ("wal".to_string(), wal_bytes)];
    Ok(StorageStats { bytes: (pages * page) as u64 + wal_bytes, wal_bytes, free_bytes: (free * page) as u64, parts })
}
