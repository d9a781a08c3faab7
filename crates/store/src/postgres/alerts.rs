//! Alerts, the outbox, correlation windows and known regions in PostgreSQL. The logic of
//! joining and opening alerts is the SQLite backend's; what differs is what makes it safe
//! with many writers (see the module documentation of `postgres`).

use postgres::GenericClient;

use super::{all, pg, PgState, LOCK_ALERT_GROUP, LOCK_WINDOW};
use crate::alerts::{
    level_rank, Alert, AlertFilter, AlertHit, AlertPolicy, AlertState, AlertSubject, Backlog, CorrelationWindow,
    Delivery, KnownRegion, LEVELS,
};
use crate::StoreError;

/// How long a claimed delivery stays with the worker that claimed it before another may
/// try it (the sink's own timeouts are well below this).
pub(crate) const DELIVERY_LEASE_MS: i64 = 120_000;

/// Records `hits` in the open transaction `c`, in order; returns the ids of alerts opened.
pub(crate) fn record_hits(
    c: &mut impl GenericClient,
    hits: &[AlertHit],
    policy: &AlertPolicy,
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    // Lock every (rule, group) this call touches, in one order for all workers (no
    // deadlock between two writers whose hits overlap); held until the transaction ends.
    let mut groups: Vec<(&str, &str)> = hits.iter().map(|h| (h.rule_id.as_str(), h.group_key.as_str())).collect();
    groups.sort_unstable();
    groups.dedup();
    let mut keys: Vec<i32> = groups.iter().map(|(rule, group)| fnv(rule, group)).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        c.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_ALERT_GROUP, &key])
            .map_err(pg("lock an alert group"))?;
    }
    let mut opened = Vec::new();
    for hit in hits {
        let (first, last) = (hit.first_time, hit.last_time);
        let current = c
            .query_opt(
                "SELECT id, first_seen, last_seen FROM alerts
                 WHERE rule_id = $1 AND group_key = $2 AND state != 'resolved'
                 ORDER BY last_seen DESC LIMIT 1",
                &[&hit.rule_id, &hit.group_key],
            )
            .map_err(pg("find alert to join"))?
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2)));
        let joins = current
            .filter(|(_, f, l)| first <= l + policy.suppression_ms && last >= f - policy.suppression_ms)
            .map(|(id, _, _)| id);
        let alert_id = match joins {
            Some(id) => id,
            None => open_alert(c, hit, now)?,
        };
        // Only events this rule has not seen before count (whichever worker saw them).
        let fresh = c
            .execute(
                "INSERT INTO alert_events (rule_id, event_id, alert) SELECT $1, e, $3 FROM unnest($2::text[]) AS e
                 ON CONFLICT DO NOTHING",
                &[&hit.rule_id, &hit.event_ids, &alert_id],
            )
            .map_err(pg("attach events"))? as i64;
        match (joins, fresh) {
            (None, 0) => {
                c.execute("DELETE FROM alerts WHERE id = $1", &[&alert_id]).map_err(pg("drop empty alert"))?;
            }
            (Some(_), 0) => {}
            (joined, n) => {
                c.execute(
                    "UPDATE alerts SET count = count + $2, first_seen = least(first_seen, $3),
                        last_seen = greatest(last_seen, $4), updated_at = $5 WHERE id = $1",
                    &[&alert_id, &n, &first, &last, &now],
                )
                .map_err(pg("count alert events"))?;
                if joined.is_none() {
                    for route in policy.routes.iter().filter(|r| level_rank(&hit.level) >= level_rank(&r.min_level)) {
                        c.execute(
                            "INSERT INTO outbox (alert_id, sink, next_attempt, created_at) VALUES ($1, $2, $3, $3)
                             ON CONFLICT DO NOTHING",
                            &[&alert_id, &route.sink, &now],
                        )
                        .map_err(pg("queue alert delivery"))?;
                    }
                    opened.push(alert_id);
                }
            }
        }
    }
    Ok(opened)
}

fn open_alert(c: &mut impl GenericClient, hit: &AlertHit, now: i64) -> Result<i64, StoreError> {
    let s = &hit.subject;
    let r = c
        .query_one(
            "INSERT INTO alerts (rule_id, title, level, group_key, state, first_seen, last_seen, count,
                principal, account, region, source_ip, event_source, event_name, error_code, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'open', $5, $6, 0, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING id",
            &[
                &hit.rule_id,
                &hit.title,
                &hit.level,
                &hit.group_key,
                &hit.first_time,
                &hit.last_time,
                &s.principal,
                &s.account,
                &s.region,
                &s.source_ip,
                &s.event_source,
                &s.event_name,
                &s.error_code,
                &now,
            ],
        )
        .map_err(pg("open alert"))?;
    Ok(r.get(0))
}

/// Locks the windows of `keys` for the rest of the transaction, in one order for every
/// worker.
pub(crate) fn lock_windows(c: &mut impl GenericClient, keys: &[(String, String)]) -> Result<(), StoreError> {
    let mut locks: Vec<i32> = keys.iter().map(|(c, g)| fnv(c, g)).collect();
    locks.sort_unstable();
    locks.dedup();
    for key in locks {
        c.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_WINDOW, &key])
            .map_err(pg("lock a correlation window"))?;
    }
    Ok(())
}

/// The stored windows of `keys`.
pub(crate) fn windows_of(
    c: &mut impl GenericClient,
    keys: &[(String, String)],
) -> Result<Vec<CorrelationWindow>, StoreError> {
    let (ids, groups): (Vec<String>, Vec<String>) = keys.iter().cloned().unzip();
    let rows = c
        .query(
            "SELECT w.correlation, w.group_key, w.entries FROM correlation_windows w
             JOIN unnest($1::text[], $2::text[]) AS k(correlation, group_key)
               ON w.correlation = k.correlation AND w.group_key = k.group_key",
            &[&ids, &groups],
        )
        .map_err(pg("read correlation windows"))?;
    Ok(rows.iter().map(|r| CorrelationWindow { correlation: r.get(0), group: r.get(1), entries: r.get(2) }).collect())
}

/// FNV-1a of two strings, as an advisory lock key.
fn fnv(a: &str, b: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for byte in a.bytes().chain([0]).chain(b.bytes()) {
        h = (h ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    h as i32
}

pub(crate) fn save_windows(c: &mut impl GenericClient, windows: &[CorrelationWindow]) -> Result<(), StoreError> {
    for w in windows {
        if w.entries == "[]" {
            c.execute(
                "DELETE FROM correlation_windows WHERE correlation = $1 AND group_key = $2",
                &[&w.correlation, &w.group],
            )
            .map_err(pg("drop correlation window"))?;
        } else {
            c.execute(
                "INSERT INTO correlation_windows (correlation, group_key, entries) VALUES ($1, $2, $3)
                 ON CONFLICT (correlation, group_key) DO UPDATE SET entries = excluded.entries",
                &[&w.correlation, &w.group, &w.entries],
            )
            .map_err(pg("save correlation window"))?;
        }
    }
    Ok(())
}

pub(crate) fn remember_regions(c: &mut impl GenericClient, rows: &[KnownRegion]) -> Result<(), StoreError> {
    for r in rows {
        c.execute(
            "INSERT INTO known_regions (account, region, first_seen) VALUES ($1, $2, $3)
             ON CONFLICT (account, region) DO UPDATE SET
                first_seen = least(known_regions.first_seen, excluded.first_seen)",
            &[&r.account, &r.region, &r.first_seen],
        )
        .map_err(pg("remember region"))?;
    }
    Ok(())
}

const ALERT_COLUMNS: &str = "id, rule_id, title, level, group_key, state, first_seen, last_seen, count, principal,
    account, region, source_ip, event_source, event_name, error_code, created_at, updated_at, comment";

fn alert_row(r: &postgres::Row) -> Result<Alert, postgres::Error> {
    let state: String = r.try_get(5)?;
    Ok(Alert {
        id: r.try_get(0)?,
        rule_id: r.try_get(1)?,
        title: r.try_get(2)?,
        level: r.try_get(3)?,
        group_key: r.try_get(4)?,
        state: AlertState::parse(&state).unwrap_or(AlertState::Open),
        first_seen: r.try_get(6)?,
        last_seen: r.try_get(7)?,
        count: r.try_get::<_, i64>(8)? as u64,
        subject: AlertSubject {
            principal: r.try_get(9)?,
            account: r.try_get(10)?,
            region: r.try_get(11)?,
            source_ip: r.try_get(12)?,
            event_source: r.try_get(13)?,
            event_name: r.try_get(14)?,
            error_code: r.try_get(15)?,
        },
        created_at: r.try_get(16)?,
        updated_at: r.try_get(17)?,
        comment: r.try_get(18)?,
    })
}

const DELIVERY_COLUMNS: &str = "id, alert_id, sink, attempts, next_attempt, last_error, delivered_at, created_at";

fn delivery_row(r: &postgres::Row) -> Result<Delivery, postgres::Error> {
    Ok(Delivery {
        id: r.try_get(0)?,
        alert_id: r.try_get(1)?,
        sink: r.try_get(2)?,
        attempts: r.try_get::<_, i64>(3)? as u32,
        next_attempt: r.try_get(4)?,
        last_error: r.try_get(5)?,
        delivered_at: r.try_get(6)?,
        created_at: r.try_get(7)?,
    })
}

impl PgState {
    pub fn alerts(&self, f: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
        let min = f.min_level.as_deref().map_or(0, level_rank);
        let levels: Vec<String> = LEVELS[min..].iter().map(|l| l.to_string()).collect();
        let all_levels = f.min_level.is_none();
        let limit = if f.limit == 0 { i64::MAX } else { f.limit as i64 };
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts
             WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR rule_id = $2)
               AND ($3 OR lower(level) = ANY($4))
               AND ($6::bigint IS NULL OR (last_seen, id) < ($6, $7))
             ORDER BY last_seen DESC, id DESC LIMIT $5"
        );
        let (before_seen, before_id) = (f.before.map(|b| b.0), f.before.map(|b| b.1));
        all(
            &mut *self.conn()?,
            &sql,
            &[&f.state.map(AlertState::as_str), &f.rule_id, &all_levels, &levels, &limit, &before_seen, &before_id],
            "list alerts",
            alert_row,
        )
    }

    pub fn alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
        Ok(all(&mut *self.conn()?, &sql, &[&id], "read alert", alert_row)?.pop())
    }

    pub fn alert_event_ids(&self, id: i64) -> Result<Vec<String>, StoreError> {
        all(
            &mut *self.conn()?,
            "SELECT event_id FROM alert_events WHERE alert = $1 ORDER BY event_id",
            &[&id],
            "alert events",
            |r| r.try_get(0),
        )
    }

    pub fn set_alert_state(
        &self,
        id: i64,
        state: AlertState,
        comment: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn()?
            .execute(
                "UPDATE alerts SET state = $2, comment = coalesce($3, comment), updated_at = $4 WHERE id = $1",
                &[&id, &state.as_str(), &comment, &now],
            )
            .map_err(pg("change alert state"))?;
        Ok(n == 1)
    }

    pub fn rule_hits(&self) -> Result<Vec<(String, u64)>, StoreError> {
        all(
            &mut *self.conn()?,
            "SELECT rule_id, count(*) FROM alert_events GROUP BY rule_id ORDER BY rule_id",
            &[],
            "rule hits",
            |r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)),
        )
    }

    pub fn correlation_windows(&self) -> Result<Vec<CorrelationWindow>, StoreError> {
        all(
            &mut *self.conn()?,
            "SELECT correlation, group_key, entries FROM correlation_windows ORDER BY correlation, group_key",
            &[],
            "list correlation windows",
            |r| Ok(CorrelationWindow { correlation: r.try_get(0)?, group: r.try_get(1)?, entries: r.try_get(2)? }),
        )
    }

    /// Claims up to `limit` due deliveries for this worker: each is leased (its next attempt
    /// moved [`DELIVERY_LEASE_MS`] ahead) so no other worker takes it meanwhile; rows another
    /// worker is claiming right now are skipped, not waited for.
    pub fn due_deliveries(&self, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let sql = "WITH due AS (
                SELECT id FROM outbox WHERE delivered_at IS NULL AND next_attempt <= $1
                ORDER BY next_attempt, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             UPDATE outbox o SET next_attempt = $3 FROM due WHERE o.id = due.id
             RETURNING o.id, o.alert_id, o.sink, o.attempts, $1::bigint, o.last_error, o.delivered_at, o.created_at";
        let mut rows = all(
            &mut *self.conn()?,
            sql,
            &[&now, &(limit as i64), &(now + DELIVERY_LEASE_MS)],
            "claim due deliveries",
            delivery_row,
        )?;
        rows.sort_by_key(|d| d.id);
        Ok(rows)
    }

    pub fn deliveries(&self, alert_id: i64) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM outbox WHERE alert_id = $1 ORDER BY sink");
        all(&mut *self.conn()?, &sql, &[&alert_id], "alert deliveries", delivery_row)
    }

    pub fn delivery_succeeded(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "UPDATE outbox SET delivered_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1",
                &[&id, &now],
            )
            .map_err(pg("mark delivery done"))?;
        Ok(())
    }

    pub fn delivery_failed(&self, id: i64, error: &str, next_attempt: i64) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt = $3 WHERE id = $1",
                &[&id, &error, &next_attempt],
            )
            .map_err(pg("record failed delivery"))?;
        Ok(())
    }

    pub fn outbox_backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        all(
            &mut *self.conn()?,
            "SELECT sink, count(*), count(*) FILTER (WHERE attempts > 0), min(created_at) FROM outbox
             WHERE delivered_at IS NULL GROUP BY sink ORDER BY sink",
            &[],
            "outbox backlog",
            |r| {
                Ok(Backlog {
                    sink: r.try_get(0)?,
                    pending: r.try_get::<_, i64>(1)? as u64,
                    failing: r.try_get::<_, i64>(2)? as u64,
                    oldest: r.try_get(3)?,
                })
            },
        )
    }

    pub fn known_regions(&self) -> Result<Vec<KnownRegion>, StoreError> {
        all(
            &mut *self.conn()?,
            "SELECT account, region, first_seen FROM known_regions ORDER BY account, region",
            &[],
            "known regions",
            |r| Ok(KnownRegion { account: r.try_get(0)?, region: r.try_get(1)?, first_seen: r.try_get(2)? }),
        )
    }
}
