//! Alerts, the outbox, correlation windows and known regions in PostgreSQL. The logic of
//! joining and opening alerts is the SQLite backend's; what differs is what makes it safe
//! with many writers (see the module documentation of `postgres`).

use postgres::types::Type;
use postgres::GenericClient;

use super::{pg, LOCK_ALERT_GROUP, LOCK_WINDOW};
use crate::alerts::{
    Alert, AlertHit, AlertPolicy, AlertRows, AlertSpan, AlertState, AlertSubject, CorrelationWindow, Delivery,
    KnownRegion,
};
use crate::StoreError;

/// How long a claimed delivery stays with the worker that claimed it before another may
/// try it (the sink's own timeouts are well below this).
pub(crate) const DELIVERY_LEASE_MS: i64 = 120_000;

/// Records `hits` in the open transaction `c` (the rule is [`crate::alerts::record_hits`]'s);
/// returns the ids of alerts opened.
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
    let keys: Vec<i32> = groups.iter().map(|(rule, group)| fnv(rule, group)).collect();
    lock_in_order(c, LOCK_ALERT_GROUP, keys).map_err(pg("lock alert groups"))?;
    crate::alerts::record_hits(&mut PgAlertRows(c), hits, policy, now)
}

/// Alert rows in a writer's open transaction. With many writers, uniqueness constraints
/// make an event count once per rule whichever worker saw it.
struct PgAlertRows<'c, C>(&'c mut C);

impl<C: GenericClient> AlertRows for PgAlertRows<'_, C> {
    fn newest_unresolved(&mut self, rule_id: &str, group_key: &str) -> Result<Option<AlertSpan>, StoreError> {
        Ok(self
            .0
            .query_typed_opt(
                "SELECT id, first_seen, last_seen FROM alerts
                 WHERE rule_id = $1 AND group_key = $2 AND state != 'resolved'
                 ORDER BY last_seen DESC LIMIT 1",
                &[(&rule_id, Type::TEXT), (&group_key, Type::TEXT)],
            )
            .map_err(pg("find alert to join"))?
            .map(|r| AlertSpan { id: r.get(0), first_seen: r.get(1), last_seen: r.get(2) }))
    }

    fn open_alert(&mut self, hit: &AlertHit, now: i64) -> Result<i64, StoreError> {
        let s = &hit.subject;
        let r = self
            .0
            .query_typed_one(
                "INSERT INTO alerts (rule_id, title, level, group_key, state, first_seen, last_seen, count,
                    principal, account, region, source_ip, event_source, event_name, error_code, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'open', $5, $6, 0, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING id",
                &[
                    (&hit.rule_id, Type::TEXT),
                    (&hit.title, Type::TEXT),
                    (&hit.level, Type::TEXT),
                    (&hit.group_key, Type::TEXT),
                    (&hit.first_time, Type::INT8),
                    (&hit.last_time, Type::INT8),
                    (&s.principal, Type::TEXT),
                    (&s.account, Type::TEXT),
                    (&s.region, Type::TEXT),
                    (&s.source_ip, Type::TEXT),
                    (&s.event_source, Type::TEXT),
                    (&s.event_name, Type::TEXT),
                    (&s.error_code, Type::TEXT),
                    (&now, Type::INT8),
                ],
            )
            .map_err(pg("open alert"))?;
        Ok(r.get(0))
    }

    fn attach_events(&mut self, hit: &AlertHit, alert: i64) -> Result<i64, StoreError> {
        let n = self
            .0
            .execute_typed(
                "INSERT INTO alert_events (rule_id, event_id, alert) SELECT $1, e, $3 FROM unnest($2::text[]) AS e
                 ON CONFLICT DO NOTHING",
                &[(&hit.rule_id, Type::TEXT), (&hit.event_ids, Type::TEXT_ARRAY), (&alert, Type::INT8)],
            )
            .map_err(pg("attach events"))?;
        Ok(n as i64)
    }

    fn delete_alert(&mut self, alert: i64) -> Result<(), StoreError> {
        self.0
            .execute_typed("DELETE FROM alerts WHERE id = $1", &[(&alert, Type::INT8)])
            .map_err(pg("drop empty alert"))?;
        Ok(())
    }

    fn count_events(&mut self, alert: i64, n: i64, first: i64, last: i64, now: i64) -> Result<(), StoreError> {
        self.0
            .execute_typed(
                "UPDATE alerts SET count = count + $2, first_seen = least(first_seen, $3),
                    last_seen = greatest(last_seen, $4), updated_at = $5 WHERE id = $1",
                &[
                    (&alert, Type::INT8),
                    (&n, Type::INT8),
                    (&first, Type::INT8),
                    (&last, Type::INT8),
                    (&now, Type::INT8),
                ],
            )
            .map_err(pg("count alert events"))?;
        Ok(())
    }

    fn queue_delivery(&mut self, alert: i64, sink: &str, now: i64) -> Result<(), StoreError> {
        self.0
            .execute_typed(
                "INSERT INTO outbox (alert_id, sink, next_attempt, created_at) VALUES ($1, $2, $3, $3)
                 ON CONFLICT DO NOTHING",
                &[(&alert, Type::INT8), (&sink, Type::TEXT), (&now, Type::INT8)],
            )
            .map_err(pg("queue alert delivery"))?;
        Ok(())
    }
}

/// Locks the windows of `keys` for the rest of the transaction, in one order for every
/// worker.
pub(crate) fn lock_windows(c: &mut impl GenericClient, keys: &[(String, String)]) -> Result<(), StoreError> {
    let locks: Vec<i32> = keys.iter().map(|(c, g)| fnv(c, g)).collect();
    lock_in_order(c, LOCK_WINDOW, locks).map_err(pg("lock correlation windows"))
}

/// Takes the transaction advisory locks `(class, key)` of every key, in ascending key order
/// (the one order every worker takes them in, so two never deadlock), in one statement:
/// `unnest` yields a sorted array's elements in order, and the locks are taken as rows are.
pub(crate) fn lock_in_order(c: &mut impl GenericClient, class: i32, mut keys: Vec<i32>) -> Result<(), postgres::Error> {
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    c.execute_typed(
        "SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) WITH ORDINALITY AS u(k, n) ORDER BY n",
        &[(&class, Type::INT4), (&keys, Type::INT4_ARRAY)],
    )
    .map(drop)
}

/// The stored windows of `keys`.
pub(crate) fn windows_of(
    c: &mut impl GenericClient,
    keys: &[(String, String)],
) -> Result<Vec<CorrelationWindow>, StoreError> {
    let (ids, groups): (Vec<String>, Vec<String>) = keys.iter().cloned().unzip();
    let rows = c
        .query_typed(
            "SELECT w.correlation, w.group_key, w.entries FROM correlation_windows w
             JOIN unnest($1::text[], $2::text[]) AS k(correlation, group_key)
               ON w.correlation = k.correlation AND w.group_key = k.group_key",
            &[(&ids, Type::TEXT_ARRAY), (&groups, Type::TEXT_ARRAY)],
        )
        .map_err(pg("read correlation windows"))?;
    Ok(rows.iter().map(|r| CorrelationWindow { correlation: r.get(0), group: r.get(1), entries: r.get(2) }).collect())
}

/// FNV-1a of two strings, as an advisory lock key.
pub(super) fn fnv(a: &str, b: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for byte in a.bytes().chain([0]).chain(b.bytes()) {
        h = (h ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    h as i32
}

pub(crate) fn save_windows(c: &mut impl GenericClient, windows: &[CorrelationWindow]) -> Result<(), StoreError> {
    for w in windows {
        if w.entries == "[]" {
            c.execute_typed(
                "DELETE FROM correlation_windows WHERE correlation = $1 AND group_key = $2",
                &[(&w.correlation, Type::TEXT), (&w.group, Type::TEXT)],
            )
            .map_err(pg("drop correlation window"))?;
        } else {
            c.execute_typed(
                "INSERT INTO correlation_windows (correlation, group_key, entries) VALUES ($1, $2, $3)
                 ON CONFLICT (correlation, group_key) DO UPDATE SET entries = excluded.entries",
                &[(&w.correlation, Type::TEXT), (&w.group, Type::TEXT), (&w.entries, Type::TEXT)],
            )
            .map_err(pg("save correlation window"))?;
        }
    }
    Ok(())
}

pub(crate) fn remember_regions(c: &mut impl GenericClient, rows: &[KnownRegion]) -> Result<(), StoreError> {
    for r in rows {
        c.execute_typed(
            "INSERT INTO known_regions (account, region, first_seen) VALUES ($1, $2, $3)
             ON CONFLICT (account, region) DO UPDATE SET
                first_seen = least(known_regions.first_seen, excluded.first_seen)",
            &[(&r.account, Type::TEXT), (&r.region, Type::TEXT), (&r.first_seen, Type::INT8)],
        )
        .map_err(pg("remember region"))?;
    }
    Ok(())
}

pub(super) const ALERT_COLUMNS: &str =
    "id, rule_id, title, level, group_key, state, first_seen, last_seen, count, principal,
    account, region, source_ip, event_source, event_name, error_code, created_at, updated_at, comment";

pub(super) fn alert_row(r: &postgres::Row) -> Result<Alert, postgres::Error> {
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

pub(super) const DELIVERY_COLUMNS: &str =
    "id, alert_id, sink, attempts, next_attempt, last_error, delivered_at, created_at";

pub(super) fn delivery_row(r: &postgres::Row) -> Result<Delivery, postgres::Error> {
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
