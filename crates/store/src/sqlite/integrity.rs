//! The integrity tables of migration 4 (see `crate::integrity`).

use rusqlite::{params, Connection, OptionalExtension};

use super::ops::all;
use crate::integrity::{IntegrityChain, IntegrityFinding, Silence};
use crate::{Context, StoreError};

/// Upserts chains: the newest digest and log only move forward (a validation window that
/// starts later does not forget what an earlier one verified).
pub(super) fn record_chains(c: &Connection, chains: &[IntegrityChain]) -> Result<(), StoreError> {
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO integrity_chains (account, account_id, region, trail, newest_key, newest_end, newest_log, verified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (account, account_id, region, trail) DO UPDATE SET
                newest_key = CASE WHEN coalesce(excluded.newest_end, 0) >= coalesce(newest_end, 0)
                             THEN coalesce(excluded.newest_key, newest_key) ELSE newest_key END,
                newest_end = max(coalesce(newest_end, excluded.newest_end), coalesce(excluded.newest_end, newest_end)),
                newest_log = max(coalesce(newest_log, excluded.newest_log), coalesce(excluded.newest_log, newest_log)),
                verified_at = excluded.verified_at",
        )
        .context("prepare chain upsert")?;
    for ch in chains {
        stmt.execute(params![
            ch.account,
            ch.account_id,
            ch.region,
            ch.trail,
            ch.newest_key,
            ch.newest_end,
            ch.newest_log,
            ch.verified_at
        ])
        .context("record chain")?;
    }
    Ok(())
}

pub(super) fn chains(c: &Connection) -> Result<Vec<IntegrityChain>, StoreError> {
    let sql = "SELECT account, account_id, region, trail, newest_key, newest_end, newest_log, verified_at
               FROM integrity_chains ORDER BY account, region, trail";
    all(c, sql, "list integrity chains", |r| {
        Ok(IntegrityChain {
            account: r.get(0)?,
            account_id: r.get(1)?,
            region: r.get(2)?,
            trail: r.get(3)?,
            newest_key: r.get(4)?,
            newest_end: r.get(5)?,
            newest_log: r.get(6)?,
            verified_at: r.get(7)?,
        })
    })
}

/// Records findings; returns those not recorded before (the ones to alert on).
pub(super) fn record_findings(
    c: &Connection,
    findings: &[IntegrityFinding],
) -> Result<Vec<IntegrityFinding>, StoreError> {
    let mut fresh = Vec::new();
    let mut insert = c
        .prepare_cached(
            "INSERT INTO integrity_findings (account, kind, key, detail, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )
        .context("prepare finding insert")?;
    let mut touch = c
        .prepare_cached(
            "UPDATE integrity_findings SET last_seen = max(last_seen, ?4), detail = ?5
             WHERE account = ?1 AND kind = ?2 AND key = ?3",
        )
        .context("prepare finding update")?;
    for f in findings {
        if insert
            .execute(params![f.account, f.kind, f.key, f.detail, f.first_seen, f.last_seen])
            .context("record finding")?
            == 1
        {
            fresh.push(f.clone());
        } else {
            touch.execute(params![f.account, f.kind, f.key, f.last_seen, f.detail]).context("update finding")?;
        }
    }
    Ok(fresh)
}

pub(super) fn findings(c: &Connection) -> Result<Vec<IntegrityFinding>, StoreError> {
    let sql = "SELECT account, kind, key, detail, first_seen, last_seen FROM integrity_findings
               ORDER BY last_seen DESC, account, key, kind";
    all(c, sql, "list integrity findings", |r| {
        Ok(IntegrityFinding {
            account: r.get(0)?,
            kind: r.get(1)?,
            key: r.get(2)?,
            detail: r.get(3)?,
            first_seen: r.get(4)?,
            last_seen: r.get(5)?,
        })
    })
}

pub(super) fn silences(c: &Connection) -> Result<Vec<Silence>, StoreError> {
    let sql = "SELECT account, account_id, region, what, since, alert_id FROM integrity_silences
               ORDER BY account, account_id, region, what";
    all(c, sql, "list silences", silence_row)
}

pub(super) fn set_silence(c: &Connection, s: &Silence) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO integrity_silences (account, account_id, region, what, since, alert_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![s.account, s.account_id, s.region, s.what, s.since, s.alert_id],
    )
    .context("record silence")?;
    Ok(())
}

/// Removes a silence; returns it if there was one.
pub(super) fn clear_silence(c: &Connection, s: &Silence) -> Result<Option<Silence>, StoreError> {
    c.prepare_cached(
        "DELETE FROM integrity_silences WHERE account = ?1 AND account_id = ?2 AND region = ?3 AND what = ?4
         RETURNING account, account_id, region, what, since, alert_id",
    )
    .and_then(|mut st| st.query_row(params![s.account, s.account_id, s.region, s.what], silence_row).optional())
    .context("clear silence")
}

fn silence_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Silence> {
    Ok(Silence {
        account: r.get(0)?,
        account_id: r.get(1)?,
        region: r.get(2)?,
        what: r.get(3)?,
        since: r.get(4)?,
        alert_id: r.get(5)?,
    })
}
