//! Alerts, the outbox and correlation windows (migration 3). Hits are recorded on the
//! writer's connection inside the ingest transaction; reads and state changes use the
//! reading connection.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::ops::{all, all_with};
use crate::alerts::{
    level_rank, Alert, AlertFilter, AlertHit, AlertRows, AlertSpan, AlertState, AlertSubject, Backlog,
    CorrelationWindow, Delivery, LEVELS,
};
use crate::{Context, StoreError};

/// The integer id of `rule_id` in `alert_rules` (created on first use).
fn rule_number(c: &Connection, rule_id: &str) -> Result<i64, StoreError> {
    c.prepare_cached("INSERT INTO alert_rules (rule_id) VALUES (?1) ON CONFLICT DO NOTHING")
        .and_then(|mut s| s.execute([rule_id]))
        .context("register alert rule")?;
    c.prepare_cached("SELECT id FROM alert_rules WHERE rule_id = ?1")
        .and_then(|mut s| s.query_row([rule_id], |r| r.get(0)))
        .context("look up alert rule")
}

/// Alert rows on the writer's connection, inside the ingest transaction (the rule that
/// decides which alert a hit joins is [`crate::alerts::record_hits`]). Per event the cost is
/// one insert into `alert_events`.
pub(super) struct SqliteAlertRows<'c>(pub &'c Connection);

impl AlertRows for SqliteAlertRows<'_> {
    fn newest_unresolved(&mut self, rule_id: &str, group_key: &str) -> Result<Option<AlertSpan>, StoreError> {
        self.0
            .prepare_cached(
                "SELECT id, first_seen, last_seen FROM alerts
                 WHERE rule_id = ?1 AND group_key = ?2 AND state != 'resolved'
                 ORDER BY last_seen DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![rule_id, group_key], |r| {
                    Ok(AlertSpan { id: r.get(0)?, first_seen: r.get(1)?, last_seen: r.get(2)? })
                })
                .optional()
            })
            .context("find alert to join")
    }

    fn open_alert(&mut self, hit: &AlertHit, now: i64) -> Result<i64, StoreError> {
        let s = &hit.subject;
        self.0
            .prepare_cached(
                "INSERT INTO alerts (rule_id, title, level, group_key, state, first_seen, last_seen, count,
                    principal, account, region, source_ip, event_source, event_name, error_code, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, 0, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    hit.rule_id,
                    hit.title,
                    hit.level,
                    hit.group_key,
                    hit.first_time,
                    hit.last_time,
                    s.principal,
                    s.account,
                    s.region,
                    s.source_ip,
                    s.event_source,
                    s.event_name,
                    s.error_code,
                    now
                ])
            })
            .context("open alert")?;
        Ok(self.0.last_insert_rowid())
    }

    fn attach_events(&mut self, hit: &AlertHit, alert: i64) -> Result<i64, StoreError> {
        let rule = rule_number(self.0, &hit.rule_id)?;
        let mut attach = self
            .0
            .prepare_cached("INSERT INTO alert_events (rule, event, alert) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
            .context("prepare alert event insert")?;
        let mut fresh = 0i64;
        for id in &hit.event_ids {
            fresh += attach.execute(params![rule, super::event_id_key(id), alert]).context("attach event")? as i64;
        }
        Ok(fresh)
    }

    fn delete_alert(&mut self, alert: i64) -> Result<(), StoreError> {
        self.0.execute("DELETE FROM alerts WHERE id = ?1", [alert]).context("drop empty alert")?;
        Ok(())
    }

    fn count_events(&mut self, alert: i64, n: i64, first: i64, last: i64, now: i64) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "UPDATE alerts SET count = count + ?2, first_seen = min(first_seen, ?3),
                    last_seen = max(last_seen, ?4), updated_at = ?5 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![alert, n, first, last, now]))
            .context("count alert events")?;
        Ok(())
    }

    fn queue_delivery(&mut self, alert: i64, sink: &str, now: i64) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO outbox (alert_id, sink, next_attempt, created_at) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT DO NOTHING",
            )
            .and_then(|mut st| st.execute(params![alert, sink, now]))
            .context("queue alert delivery")?;
        Ok(())
    }
}

pub(super) fn save_windows(c: &Connection, windows: &[CorrelationWindow]) -> Result<(), StoreError> {
    for w in windows {
        if w.entries == "[]" {
            c.prepare_cached("DELETE FROM correlation_windows WHERE correlation = ?1 AND group_key = ?2")
                .and_then(|mut s| s.execute(params![w.correlation, w.group]))
                .context("drop correlation window")?;
        } else {
            c.prepare_cached(
                "INSERT INTO correlation_windows (correlation, group_key, entries) VALUES (?1, ?2, ?3)
                 ON CONFLICT (correlation, group_key) DO UPDATE SET entries = excluded.entries",
            )
            .and_then(|mut s| s.execute(params![w.correlation, w.group, w.entries]))
            .context("save correlation window")?;
        }
    }
    Ok(())
}

pub(super) fn windows(c: &Connection) -> Result<Vec<CorrelationWindow>, StoreError> {
    let sql = "SELECT correlation, group_key, entries FROM correlation_windows ORDER BY correlation, group_key";
    all(c, sql, "list correlation windows", |r| {
        Ok(CorrelationWindow { correlation: r.get(0)?, group: r.get(1)?, entries: r.get(2)? })
    })
}

const ALERT_COLUMNS: &str = "id, rule_id, title, level, group_key, state, first_seen, last_seen, count, principal,
    account, region, source_ip, event_source, event_name, error_code, created_at, updated_at, comment";

fn alert_row(r: &Row<'_>) -> rusqlite::Result<Alert> {
    let state: String = r.get(5)?;
    Ok(Alert {
        id: r.get(0)?,
        rule_id: r.get(1)?,
        title: r.get(2)?,
        level: r.get(3)?,
        group_key: r.get(4)?,
        state: AlertState::parse(&state).unwrap_or(AlertState::Open),
        first_seen: r.get(6)?,
        last_seen: r.get(7)?,
        count: r.get::<_, i64>(8)? as u64,
        subject: AlertSubject {
            principal: r.get(9)?,
            account: r.get(10)?,
            region: r.get(11)?,
            source_ip: r.get(12)?,
            event_source: r.get(13)?,
            event_name: r.get(14)?,
            error_code: r.get(15)?,
        },
        created_at: r.get(16)?,
        updated_at: r.get(17)?,
        comment: r.get(18)?,
    })
}

pub(super) fn alerts(c: &Connection, f: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
    // Levels at or above the minimum, as a fixed list of bound parameters.
    let min = f.min_level.as_deref().map_or(0, level_rank);
    let levels: Vec<&str> = LEVELS[min..].to_vec();
    let all_levels = f.min_level.is_none();
    let sql = format!(
        "SELECT {ALERT_COLUMNS} FROM alerts
         WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR rule_id = ?2)
           AND (?3 OR lower(level) IN (SELECT value FROM json_each(?4)))
           AND (?6 IS NULL OR (last_seen, id) < (?6, ?7))
         ORDER BY last_seen DESC, id DESC LIMIT ?5"
    );
    let limit = if f.limit == 0 { -1 } else { f.limit as i64 };
    let levels_json = serde_json::to_string(&levels).expect("strings serialize");
    let (before_seen, before_id) = (f.before.map(|b| b.0), f.before.map(|b| b.1));
    let args =
        params![f.state.map(AlertState::as_str), f.rule_id, all_levels, levels_json, limit, before_seen, before_id];
    all_with(c, &sql, args, "list alerts", alert_row)
}

pub(super) fn alert(c: &Connection, id: i64) -> Result<Option<Alert>, StoreError> {
    c.prepare_cached(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], alert_row).optional())
        .context("read alert")
}

pub(super) fn alert_event_ids(c: &Connection, id: i64) -> Result<Vec<String>, StoreError> {
    let sql = "SELECT e.event FROM alert_events e
               WHERE e.rule = (SELECT r.id FROM alerts a JOIN alert_rules r ON r.rule_id = a.rule_id WHERE a.id = ?1)
                 AND e.alert = ?1";
    let mut ids = all_with(c, sql, [id], "alert events", |r| super::event_id_text(r.get_ref(0)?))?;
    ids.sort();
    Ok(ids)
}

pub(super) fn set_state(
    c: &Connection,
    id: i64,
    state: AlertState,
    comment: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            "UPDATE alerts SET state = ?2, comment = coalesce(?3, comment), updated_at = ?4 WHERE id = ?1",
            params![id, state.as_str(), comment, now],
        )
        .context("change alert state")?;
    Ok(n == 1)
}

pub(super) fn rule_hits(c: &Connection) -> Result<Vec<(String, u64)>, StoreError> {
    let sql = "SELECT r.rule_id, count(*) FROM alert_events e JOIN alert_rules r ON r.id = e.rule
               GROUP BY e.rule ORDER BY r.rule_id";
    all(c, sql, "rule hits", |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
}

const DELIVERY_COLUMNS: &str = "id, alert_id, sink, attempts, next_attempt, last_error, delivered_at, created_at";

fn delivery_row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        alert_id: r.get(1)?,
        sink: r.get(2)?,
        attempts: r.get::<_, i64>(3)? as u32,
        next_attempt: r.get(4)?,
        last_error: r.get(5)?,
        delivered_at: r.get(6)?,
        created_at: r.get(7)?,
    })
}

pub(super) fn due(c: &Connection, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM outbox WHERE delivered_at IS NULL AND next_attempt <= ?1
         ORDER BY next_attempt, id LIMIT ?2"
    );
    all_with(c, &sql, params![now, limit as i64], "due deliveries", delivery_row)
}

pub(super) fn deliveries(c: &Connection, alert_id: i64) -> Result<Vec<Delivery>, StoreError> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM outbox WHERE alert_id = ?1 ORDER BY sink");
    all_with(c, &sql, [alert_id], "alert deliveries", delivery_row)
}

pub(super) fn delivered(c: &Connection, id: i64, now: i64) -> Result<(), StoreError> {
    c.execute(
        "UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
        params![id, now],
    )
    .context("mark delivery done")?;
    Ok(())
}

pub(super) fn failed(c: &Connection, id: i64, error: &str, next_attempt: i64) -> Result<(), StoreError> {
    c.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt = ?3 WHERE id = ?1",
        params![id, error, next_attempt],
    )
    .context("record failed delivery")?;
    Ok(())
}

pub(super) fn backlog(c: &Connection) -> Result<Vec<Backlog>, StoreError> {
    let sql = "SELECT sink, count(*), sum(attempts > 0), min(created_at) FROM outbox WHERE delivered_at IS NULL
               GROUP BY sink ORDER BY sink";
    all(c, sql, "outbox backlog", |r| {
        Ok(Backlog {
            sink: r.get(0)?,
            pending: r.get::<_, i64>(1)? as u64,
            failing: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
            oldest: r.get(3)?,
        })
    })
}

pub(super) fn remember_regions(c: &Connection, rows: &[crate::KnownRegion]) -> Result<(), StoreError> {
    let mut st = c
        .prepare_cached(
            "INSERT INTO known_regions (account, region, first_seen) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, region) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen)",
        )
        .context("prepare known region")?;
    for r in rows {
        st.execute(params![r.account, r.region, r.first_seen]).context("remember region")?;
    }
    Ok(())
}

pub(super) fn known_regions(c: &Connection) -> Result<Vec<crate::KnownRegion>, StoreError> {
    let sql = "SELECT account, region, first_seen FROM known_regions ORDER BY account, region";
    all(c, sql, "known regions", |r| {
        Ok(crate::KnownRegion { account: r.get(0)?, region: r.get(1)?, first_seen: r.get(2)? })
    })
}
