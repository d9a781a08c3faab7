//! The operational tables of migration 2 (see `crate::ops`). Small writes on the reading
//! connection: they wait for the ingest writer's transaction like any other writer.

use rusqlite::{params, Connection, Row};

use crate::ops::{DigestSeen, IngestFinding, IntegrationStatus, MessageProblem};
use crate::{Context, StoreError};

/// Every row `sql` returns, mapped by `row`.
pub(super) fn all<T>(
    c: &Connection,
    sql: &str,
    what: &'static str,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    all_with(c, sql, [], what, row)
}

/// Every row `sql` returns for `params`, mapped by `row` (the statement is cached).
pub(super) fn all_with<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &'static str,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = c.prepare_cached(sql).context(what)?;
    let rows = stmt.query_map(params, row).context(what)?;
    rows.collect::<Result<_, _>>().context(what)
}

pub(super) fn record_message_problem(c: &Connection, p: &MessageProblem) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO message_problems (queue, message_id, reason, detail, body, receive_count, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (queue, message_id) DO UPDATE SET reason = ?3, detail = ?4,
             receive_count = max(receive_count, ?6), last_seen = ?8",
        params![p.queue, p.message_id, p.reason, p.detail, p.stored_body(), p.receive_count, p.first_seen, p.last_seen],
    )
    .context("record message problem")?;
    Ok(())
}

pub(super) fn message_problems(c: &Connection) -> Result<Vec<MessageProblem>, StoreError> {
    let sql = "SELECT queue, message_id, reason, detail, body, receive_count, first_seen, last_seen
             FROM message_problems ORDER BY last_seen DESC, message_id";
    all(c, sql, "list message problems", |r| {
        Ok(MessageProblem {
            queue: r.get(0)?,
            message_id: r.get(1)?,
            reason: r.get(2)?,
            detail: r.get(3)?,
            body: r.get(4)?,
            receive_count: r.get(5)?,
            first_seen: r.get(6)?,
            last_seen: r.get(7)?,
        })
    })
}

pub(super) fn clear_message_problem(c: &Connection, queue: &str, message_id: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM message_problems WHERE queue = ? AND message_id = ?", params![queue, message_id])
        .context("clear message problem")?;
    Ok(())
}

pub(super) fn record_finding(c: &Connection, f: &IngestFinding) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO ingest_findings (kind, account, bucket, key, detail, first_seen, last_seen, occurrences)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)
         ON CONFLICT (kind, bucket, key) DO UPDATE SET detail = ?5, last_seen = ?7, occurrences = occurrences + 1",
        params![f.kind, f.account, f.bucket, f.key, f.detail, f.first_seen, f.last_seen],
    )
    .context("record ingest finding")?;
    Ok(())
}

pub(super) fn findings(c: &Connection) -> Result<Vec<IngestFinding>, StoreError> {
    let sql = "SELECT kind, account, bucket, key, detail, first_seen, last_seen, occurrences
             FROM ingest_findings ORDER BY first_seen, key";
    all(c, sql, "list findings", |r| {
        Ok(IngestFinding {
            kind: r.get(0)?,
            account: r.get(1)?,
            bucket: r.get(2)?,
            key: r.get(3)?,
            detail: r.get(4)?,
            first_seen: r.get(5)?,
            last_seen: r.get(6)?,
            occurrences: r.get::<_, i64>(7)? as u64,
        })
    })
}

pub(super) fn record_digest(c: &Connection, d: &DigestSeen) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO digests_seen (account, bucket, key, size, seen_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (bucket, key) DO NOTHING",
        params![d.account, d.bucket, d.key, d.size.map(|s| s as i64), d.seen_at],
    )
    .context("record digest")?;
    Ok(())
}

pub(super) fn digests_seen(c: &Connection) -> Result<Vec<DigestSeen>, StoreError> {
    let sql = "SELECT account, bucket, key, size, seen_at FROM digests_seen ORDER BY bucket, key";
    all(c, sql, "list digests", digest_row)
}

pub(super) fn digests_seen_after(c: &Connection, seen_at: i64) -> Result<Vec<DigestSeen>, StoreError> {
    let sql = "SELECT account, bucket, key, size, seen_at FROM digests_seen WHERE seen_at > ?1 ORDER BY seen_at";
    all_with(c, sql, [seen_at], "list new digests", digest_row)
}

fn digest_row(r: &Row<'_>) -> rusqlite::Result<DigestSeen> {
    Ok(DigestSeen {
        account: r.get(0)?,
        bucket: r.get(1)?,
        key: r.get(2)?,
        size: r.get::<_, Option<i64>>(3)?.map(|s| s as u64),
        seen_at: r.get(4)?,
    })
}

pub(super) fn put_integration_status(c: &Connection, s: &IntegrationStatus) -> Result<(), StoreError> {
    c.execute(
        "INSERT OR REPLACE INTO integration_status (account, region, last_notification, last_validation,
             last_object, newest_event, notifications, objects, events, last_error, last_error_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            s.account,
            s.region,
            s.last_notification,
            s.last_validation,
            s.last_object,
            s.newest_event,
            s.notifications as i64,
            s.objects as i64,
            s.events as i64,
            s.last_error,
            s.last_error_at,
            s.updated_at
        ],
    )
    .context("store integration status")?;
    Ok(())
}

fn status_row(r: &Row<'_>) -> rusqlite::Result<IntegrationStatus> {
    Ok(IntegrationStatus {
        account: r.get(0)?,
        region: r.get(1)?,
        last_notification: r.get(2)?,
        last_validation: r.get(3)?,
        last_object: r.get(4)?,
        newest_event: r.get(5)?,
        notifications: r.get::<_, i64>(6)? as u64,
        objects: r.get::<_, i64>(7)? as u64,
        events: r.get::<_, i64>(8)? as u64,
        last_error: r.get(9)?,
        last_error_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

pub(super) fn integration_status(c: &Connection) -> Result<Vec<IntegrationStatus>, StoreError> {
    let sql = "SELECT account, region, last_notification, last_validation, last_object, newest_event,
                 notifications, objects, events, last_error, last_error_at, updated_at
             FROM integration_status ORDER BY account, region";
    all(c, sql, "list integration status", status_row)
}
