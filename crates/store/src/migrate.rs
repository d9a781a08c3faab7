//! Moving an embedded installation to the scale-out stores: every event into ClickHouse
//! (keeping its arrival number), every state table into PostgreSQL (keeping ids, so alert
//! links and API token ids stay valid).
//!
//! Re-running is safe: events collapse onto their first copy, state rows are inserted with
//! `ON CONFLICT DO NOTHING`. The source is only read.

use std::path::Path;

use postgres::types::ToSql;
use rusqlite::types::ValueRef;
use rusqlite::OpenFlags;
use rustc_hash::FxHashSet;

use crate::clickhouse::PendingRows;
use crate::postgres::{off_runtime, pg};
use crate::{Context, EventQuery, EventStore, ScaleOutStore, SqliteStore, StoreError};

/// What was moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    pub events: u64,
    /// Rows per state table, in the order copied.
    pub tables: Vec<(&'static str, u64)>,
}

#[derive(Clone, Copy)]
enum Col {
    Int,
    Text,
    Bytes,
    /// An eventID as SQLite keys it (16 bytes for a canonical UUID, else text) → text.
    EventId,
}

use Col::{Bytes, EventId, Int, Text};

/// A table's columns as PostgreSQL names them, with how to carry each value over.
type Columns = &'static [(&'static str, Col)];

/// The state tables and their columns, in an order that respects references. `alert_events`
/// is read through a join: SQLite keeps rule ids as small integers.
const TABLES: &[(&str, &str, Columns)] = &[
    ("objects", "SELECT id, source, bucket, key, size, status, records, new_events, duplicate_events, object_sha256, content_sha256, content_bytes, reason, detail, recorded_at FROM objects",
     &[("id", Int), ("source", Text), ("bucket", Text), ("key", Text), ("size", Int), ("status", Text), ("records", Int), ("new_events", Int), ("duplicate_events", Int), ("object_sha256", Text), ("content_sha256", Text), ("content_bytes", Int), ("reason", Text), ("detail", Text), ("recorded_at", Int)]),
    ("message_problems", "SELECT queue, message_id, reason, detail, body, receive_count, first_seen, last_seen FROM message_problems",
     &[("queue", Text), ("message_id", Text), ("reason", Text), ("detail", Text), ("body", Text), ("receive_count", Int), ("first_seen", Int), ("last_seen", Int)]),
    ("ingest_findings", "SELECT kind, account, bucket, key, detail, first_seen, last_seen, occurrences FROM ingest_findings",
     &[("kind", Text), ("account", Text), ("bucket", Text), ("key", Text), ("detail", Text), ("first_seen", Int), ("last_seen", Int), ("occurrences", Int)]),
    ("digests_seen", "SELECT account, bucket, key, size, seen_at FROM digests_seen",
     &[("account", Text), ("bucket", Text), ("key", Text), ("size", Int), ("seen_at", Int)]),
    ("integration_status", "SELECT account, region, last_notification, last_validation, last_object, newest_event, notifications, objects, events, last_error, last_error_at, updated_at FROM integration_status",
     &[("account", Text), ("region", Text), ("last_notification", Int), ("last_validation", Int), ("last_object", Int), ("newest_event", Int), ("notifications", Int), ("objects", Int), ("events", Int), ("last_error", Text), ("last_error_at", Int), ("updated_at", Int)]),
    ("alerts", "SELECT id, rule_id, title, level, group_key, state, first_seen, last_seen, count, principal, account, region, source_ip, event_source, event_name, error_code, created_at, updated_at, comment FROM alerts",
     &[("id", Int), ("rule_id", Text), ("title", Text), ("level", Text), ("group_key", Text), ("state", Text), ("first_seen", Int), ("last_seen", Int), ("count", Int), ("principal", Text), ("account", Text), ("region", Text), ("source_ip", Text), ("event_source", Text), ("event_name", Text), ("error_code", Text), ("created_at", Int), ("updated_at", Int), ("comment", Text)]),
    ("alert_events", "SELECT r.rule_id, e.event, e.alert FROM alert_events e JOIN alert_rules r ON r.id = e.rule",
     &[("rule_id", Text), ("event_id", EventId), ("alert", Int)]),
    ("outbox", "SELECT id, alert_id, sink, attempts, next_attempt, last_error, delivered_at, created_at FROM outbox",
     &[("id", Int), ("alert_id", Int), ("sink", Text), ("attempts", Int), ("next_attempt", Int), ("last_error", Text), ("delivered_at", Int), ("created_at", Int)]),
    ("known_regions", "SELECT account, region, first_seen FROM known_regions",
     &[("account", Text), ("region", Text), ("first_seen", Int)]),
    ("correlation_windows", "SELECT correlation, group_key, entries FROM correlation_windows",
     &[("correlation", Text), ("group_key", Text), ("entries", Text)]),
    ("integrity_chains", "SELECT account, account_id, region, trail, newest_key, newest_end, newest_log, verified_at FROM integrity_chains",
     &[("account", Text), ("account_id", Text), ("region", Text), ("trail", Text), ("newest_key", Text), ("newest_end", Int), ("newest_log", Int), ("verified_at", Int)]),
    ("integrity_findings", "SELECT account, kind, key, detail, first_seen, last_seen FROM integrity_findings",
     &[("account", Text), ("kind", Text), ("key", Text), ("detail", Text), ("first_seen", Int), ("last_seen", Int)]),
    ("integrity_silences", "SELECT account, account_id, region, what, since, alert_id FROM integrity_silences",
     &[("account", Text), ("account_id", Text), ("region", Text), ("what", Text), ("since", Int), ("alert_id", Int)]),
    ("users", "SELECT name, role, password_hash, created_at, updated_at FROM users",
     &[("name", Text), ("role", Text), ("password_hash", Text), ("created_at", Int), ("updated_at", Int)]),
    ("sessions", "SELECT token_hash, user, csrf, created_at, expires_at FROM sessions",
     &[("token_hash", Bytes), ("\"user\"", Text), ("csrf", Text), ("created_at", Int), ("expires_at", Int)]),
    ("api_tokens", "SELECT id, name, user, token_hash, created_at, last_used, expires_at FROM api_tokens",
     &[("id", Int), ("name", Text), ("\"user\"", Text), ("token_hash", Bytes), ("created_at", Int), ("last_used", Int), ("expires_at", Int)]),
];

fn unreadable(table: &str, e: rusqlite::types::FromSqlError) -> StoreError {
    StoreError::Corrupt { block: 0, detail: format!("a value of table {table} to migrate: {e}") }
}

/// Tables whose ids come from a sequence that must continue after the copied ids.
const SERIALS: &[&str] = &["objects", "alerts", "outbox", "api_tokens"];

/// Copies the SQLite store at `source` into `target`; `progress` hears the events copied so
/// far now and then.
pub fn sqlite_to_scaleout(
    source: &Path,
    target: &ScaleOutStore,
    progress: &mut dyn FnMut(u64),
) -> Result<MigrateReport, StoreError> {
    if !source.exists() {
        return Err(StoreError::Pool {
            context: "open the SQLite store to migrate",
            detail: format!("no file at {}", source.display()),
        });
    }
    let sqlite = SqliteStore::open(source)?;
    let mut report = MigrateReport::default();

    // Events, in batches, keeping each one's arrival number.
    let ch = target.clickhouse().clone();
    let mut pending = PendingRows::default();
    let mut principals: FxHashSet<String> = FxHashSet::default();
    let mut max_row = 0i64;
    // The hours the events fall in: their counts are taken once the events are in.
    let mut hours = std::collections::BTreeSet::new();
    let mut failure: Option<StoreError> = None;
    sqlite.for_each_event(&EventQuery::default(), &mut |row| {
        let event = match model::ParsedEvent::from_json(&row.raw) {
            Ok(e) => e,
            Err(e) => {
                failure = Some(StoreError::Corrupt { block: 0, detail: format!("event {}: {e}", row.event_id) });
                return false;
            }
        };
        if principals.insert(event.actor.principal.clone()) {
            pending.push_principal(&event, row.row);
        }
        pending.push(&event, &row.raw, row.row);
        hours.insert(crate::clickhouse::rollup::hour_of(event.event_time));
        max_row = max_row.max(row.row);
        report.events += 1;
        if pending.count >= 50_000 {
            if let Err(e) = pending.flush(&ch) {
                failure = Some(e);
                return false;
            }
            progress(report.events);
        }
        true
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    pending.flush(&ch)?;
    progress(report.events);
    target.pg().mark_hours(&hours.into_iter().collect::<Vec<_>>())?;

    // State, in one PostgreSQL transaction.
    let state = target.pg();
    let tables = &mut report.tables;
    off_runtime(|| -> Result<(), StoreError> {
        let conn = rusqlite::Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .context("open the SQLite store to migrate")?;
        let mut c = state.conn()?;
        let mut tx = c.transaction().map_err(pg("start the state migration"))?;
        for (table, select, cols) in TABLES {
            let mut stmt = conn.prepare(select).context("read a table to migrate")?;
            let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
            let params: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
            let insert = format!(
                "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
                names.join(", "),
                params.join(", ")
            );
            let insert = tx.prepare(&insert).map_err(pg("prepare a migrated row insert"))?;
            let mut rows = stmt.query([]).context("read a table to migrate")?;
            let mut n = 0u64;
            while let Some(row) = rows.next().context("read a row to migrate")? {
                let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(cols.len());
                for (i, (_, col)) in cols.iter().enumerate() {
                    let v = row.get_ref(i).context("read a value to migrate")?;
                    values.push(match (col, v) {
                        (Int, ValueRef::Null) => Box::new(None::<i64>),
                        (Int, v) => Box::new(v.as_i64().map_err(|e| unreadable(table, e))?),
                        (Text, ValueRef::Null) => Box::new(None::<String>),
                        (Text, v) => Box::new(v.as_str().map_err(|e| unreadable(table, e))?.to_string()),
                        (Bytes, ValueRef::Null) => Box::new(None::<Vec<u8>>),
                        (Bytes, v) => Box::new(v.as_blob().map_err(|e| unreadable(table, e))?.to_vec()),
                        (EventId, v) => {
                            Box::new(crate::sqlite::event_id_text(v).context("read an event id to migrate")?)
                        }
                    });
                }
                let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
                tx.execute(&insert, &refs).map_err(pg("insert a migrated row"))?;
                n += 1;
            }
            tables.push((table, n));
        }
        for table in SERIALS {
            tx.execute(
                &format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), greatest((SELECT max(id) FROM {table}), 1))"),
                &[],
            )
            .map_err(pg("continue an id sequence after migrated ids"))?;
        }
        // New arrivals come after the migrated ones.
        tx.execute(
            "SELECT setval('event_arrival', greatest($1, (SELECT last_value FROM event_arrival)))",
            &[&(max_row + 1)],
        )
        .map_err(pg("continue arrival numbers after migrated events"))?;
        tx.commit().map_err(pg("commit the state migration"))
    })?;
    Ok(report)
}

/// Synthetic ledger rows the reverse migration writes events under (removed at the end).
const MIGRATED_BUCKET: &str = "migrate:scale-out";
/// Events per synthetic object (one SQLite transaction each).
const EVENTS_PER_OBJECT: usize = 20_000;

/// Copies a scale-out store back into a new SQLite store at `target` — for a backup that is
/// one plain file, for leaving the scale-out setup, and to prove `migrate` loses nothing
/// (SQLite → scale-out → SQLite answers as the original did). State rows keep their ids;
/// events keep their arrival order (their arrival numbers are SQLite's own). The target
/// must not hold events yet.
pub fn scaleout_to_sqlite(
    source: &ScaleOutStore,
    target: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<MigrateReport, StoreError> {
    let sqlite = SqliteStore::open(target)?;
    if sqlite.event_stats()?.events > 0 {
        return Err(StoreError::Unsupported("the target SQLite store already holds events: migrate into a new file"));
    }
    let mut report = MigrateReport::default();

    // State first, keeping ids: the ledger rows written below for the events come after.
    let state = source.pg();
    let tables = &mut report.tables;
    off_runtime(|| -> Result<(), StoreError> {
        let mut conn = rusqlite::Connection::open(target).context("open the target SQLite store")?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).context("set busy timeout")?;
        let tx = conn.transaction().context("start the state copy")?;
        let mut pg_conn = state.conn()?;
        for (table, select, cols) in TABLES {
            let pg_names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
            let rows = pg_conn
                .query(&format!("SELECT {} FROM {table}", pg_names.join(", ")), &[])
                .map_err(pg("read a table to migrate back"))?;
            let mut n = 0u64;
            if *table == "alert_events" {
                for r in &rows {
                    let (rule, event, alert): (String, String, i64) = (
                        r.try_get(0).map_err(pg("read"))?,
                        r.try_get(1).map_err(pg("read"))?,
                        r.try_get(2).map_err(pg("read"))?,
                    );
                    tx.execute("INSERT OR IGNORE INTO alert_rules (rule_id) VALUES (?1)", [&rule])
                        .context("insert a rule id")?;
                    tx.execute(
                        "INSERT OR IGNORE INTO alert_events (rule, event, alert)
                         SELECT id, ?2, ?3 FROM alert_rules WHERE rule_id = ?1",
                        rusqlite::params![rule, crate::sqlite::event_id_key(&event), alert],
                    )
                    .context("insert an alert's event")?;
                    n += 1;
                }
                tables.push((table, n));
                continue;
            }
            // The SQLite column names are those the forward copy selects.
            let sqlite_names =
                select.trim_start_matches("SELECT ").split(" FROM ").next().expect("a SELECT list").to_string();
            let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
            let insert = format!("INSERT OR IGNORE INTO {table} ({sqlite_names}) VALUES ({})", marks.join(", "));
            let mut stmt = tx.prepare(&insert).context("prepare a row insert")?;
            for r in &rows {
                let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(cols.len());
                for (i, (_, col)) in cols.iter().enumerate() {
                    use rusqlite::types::Value as V;
                    values.push(match col {
                        Int => r.try_get::<_, Option<i64>>(i).map_err(pg("read"))?.map_or(V::Null, V::Integer),
                        Text | EventId => {
                            r.try_get::<_, Option<String>>(i).map_err(pg("read"))?.map_or(V::Null, V::Text)
                        }
                        Bytes => r.try_get::<_, Option<Vec<u8>>>(i).map_err(pg("read"))?.map_or(V::Null, V::Blob),
                    });
                }
                stmt.execute(rusqlite::params_from_iter(values)).context("insert a migrated row")?;
                n += 1;
            }
            tables.push((table, n));
        }
        tx.commit().context("commit the state copy")
    })?;

    // Events in arrival order, a synthetic object at a time.
    let ch = source.clickhouse().clone();
    let mut writer = sqlite.writer()?;
    let mut batch: Vec<model::ParsedEvent> = Vec::with_capacity(1024);
    let mut in_object = 0usize;
    let mut objects = 0usize;
    let mut failure: Option<StoreError> = None;
    let flush = |writer: &mut dyn crate::EventWriter,
                 batch: &mut Vec<model::ParsedEvent>,
                 in_object: &mut usize,
                 objects: &mut usize,
                 end: bool|
     -> Result<(), StoreError> {
        if !batch.is_empty() {
            if *in_object == 0 {
                *objects += 1;
                writer.begin_object(&crate::ObjectMeta {
                    source: "migrate".into(),
                    bucket: MIGRATED_BUCKET.into(),
                    key: format!("events#{objects}"),
                    size: 0,
                })?;
            }
            *in_object += batch.len();
            writer.insert(&mut std::mem::take(batch).into())?;
        }
        if *in_object > 0 && (end || *in_object >= EVENTS_PER_OBJECT) {
            writer.finish_object(&crate::ObjectTotals { records: *in_object as u64, ..Default::default() })?;
            writer.commit()?;
            *in_object = 0;
        }
        Ok(())
    };
    let db = ch.database().to_string();
    ch.query_lines(
        &format!(
            // FINAL in a subquery: on a cluster, 18.16 orders a Distributed table's FINAL
            // rows only with its sort key and version among the columns.
            "SELECT raw FROM (SELECT raw, arrival FROM {db}.events FINAL) ORDER BY arrival \
             SETTINGS max_bytes_before_external_sort = 1000000000 FORMAT JSONEachRow"
        ),
        "read events to migrate back",
        &mut |line| {
            #[derive(serde::Deserialize)]
            struct Raw {
                raw: String,
            }
            let raw: Raw =
                serde_json::from_str(line).map_err(|e| StoreError::clickhouse("read an event", e.to_string()))?;
            match model::ParsedEvent::from_json(&raw.raw) {
                Ok(e) => batch.push(e),
                Err(e) => {
                    failure = Some(StoreError::Corrupt { block: 0, detail: format!("a stored event: {e}") });
                    return Ok(false);
                }
            }
            report.events += 1;
            if batch.len() == 1024 {
                flush(&mut *writer, &mut batch, &mut in_object, &mut objects, false)?;
                if report.events % 100_000 == 0 {
                    progress(report.events);
                }
            }
            Ok(true)
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    flush(&mut *writer, &mut batch, &mut in_object, &mut objects, true)?;
    drop(writer);
    progress(report.events);
    // The synthetic ledger rows held the events' transactions; the real ledger was copied.
    let conn = rusqlite::Connection::open(target).context("open the target SQLite store")?;
    conn.execute("DELETE FROM objects WHERE bucket = ?1", [MIGRATED_BUCKET])
        .context("drop the synthetic ledger rows")?;
    Ok(report)
}
