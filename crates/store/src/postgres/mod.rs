//! The scale-out state store: ingest ledger, alerts, outbox, correlation windows,
//! integration status, integrity state, users and sessions in PostgreSQL.
//!
//! Many workers share it, so every rule that SQLite got from having one writer is a
//! constraint or a lock here:
//! * the ledger is unique by (bucket, key): two workers finishing the same object write one
//!   row (the second waits on the first's uncommitted row and then updates it);
//! * an event counts once per rule (`alert_events` primary key), and the alert a hit joins or
//!   opens is decided under a transaction advisory lock on (rule, group key), so concurrent
//!   hits of one group make one alert;
//! * an outbox row is claimed with `FOR UPDATE SKIP LOCKED` and a lease, so one worker
//!   delivers it (another takes it over only when the lease runs out);
//! * migrations run under a session advisory lock (workers starting together apply each
//!   once), and long-running duties (the integrity sweep) are led by whoever holds
//!   [`PgState::lead`]'s lock.

mod alerts;
mod ops;
mod state;

use std::sync::Mutex;
use std::time::Duration;

use postgres::types::Type;
use postgres::{GenericClient, NoTls};
use r2d2_postgres::PostgresConnectionManager;

use crate::{LedgerEntry, LedgerStatus, StoreError};

pub(crate) use alerts::{lock_windows, record_hits, remember_regions, save_windows, windows_of};

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
pub(crate) type Conn = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// Advisory lock ids (first key of the two-key form): trailwatch's namespace.
pub(crate) const LOCK_SPACE: i32 = 0x7477; // "tw"
pub(crate) const LOCK_MIGRATE: i32 = 1;
pub(crate) const LOCK_ALERT_GROUP: i32 = 0x7478;
pub(crate) const LOCK_WINDOW: i32 = 0x7479;
pub(crate) const LOCK_HOUR_COUNT: i32 = 0x747a;

/// PostgreSQL schema migrations; existing entries are never edited.
const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite store keeps besides events (its migrations 1–5).
    r#"
    CREATE TABLE objects (
        id               BIGSERIAL PRIMARY KEY,
        source           TEXT NOT NULL,
        bucket           TEXT NOT NULL,
        key              TEXT NOT NULL,
        size             BIGINT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('committed', 'quarantined')),
        records          BIGINT NOT NULL DEFAULT 0,
        new_events       BIGINT NOT NULL DEFAULT 0,
        duplicate_events BIGINT NOT NULL DEFAULT 0,
        object_sha256    TEXT,
        content_sha256   TEXT,
        content_bytes    BIGINT,
        reason           TEXT,
        detail           TEXT,
        recorded_at      BIGINT NOT NULL,
        UNIQUE (bucket, key)
    );
    CREATE INDEX objects_quarantined ON objects (id) WHERE status = 'quarantined';

    -- Arrival numbers for events, handed out to writers in blocks.
    CREATE SEQUENCE event_arrival INCREMENT BY 4096;

    CREATE TABLE message_problems (
        queue         TEXT NOT NULL,
        message_id    TEXT NOT NULL,
        reason        TEXT NOT NULL,
        detail        TEXT NOT NULL,
        body          TEXT NOT NULL,
        receive_count BIGINT NOT NULL,
        first_seen    BIGINT NOT NULL,
        last_seen     BIGINT NOT NULL,
        PRIMARY KEY (queue, message_id)
    );
    CREATE TABLE ingest_findings (
        kind        TEXT NOT NULL,
        account     TEXT NOT NULL,
        bucket      TEXT NOT NULL,
        key         TEXT NOT NULL,
        detail      TEXT NOT NULL,
        first_seen  BIGINT NOT NULL,
        last_seen   BIGINT NOT NULL,
        occurrences BIGINT NOT NULL,
        PRIMARY KEY (kind, bucket, key)
    );
    CREATE TABLE digests_seen (
        account TEXT NOT NULL,
        bucket  TEXT NOT NULL,
        key     TEXT NOT NULL,
        size    BIGINT,
        seen_at BIGINT NOT NULL,
        PRIMARY KEY (bucket, key)
    );
    CREATE INDEX digests_seen_by_time ON digests_seen (seen_at);
    CREATE TABLE integration_status (
        account           TEXT NOT NULL,
        region            TEXT NOT NULL,
        last_notification BIGINT,
        last_validation   BIGINT,
        last_object       BIGINT,
        newest_event      BIGINT,
        notifications     BIGINT NOT NULL,
        objects           BIGINT NOT NULL,
        events            BIGINT NOT NULL,
        last_error        TEXT,
        last_error_at     BIGINT,
        updated_at        BIGINT NOT NULL,
        PRIMARY KEY (account, region)
    );

    CREATE TABLE alerts (
        id           BIGSERIAL PRIMARY KEY,
        rule_id      TEXT NOT NULL,
        title        TEXT NOT NULL,
        level        TEXT NOT NULL,
        group_key    TEXT NOT NULL,
        state        TEXT NOT NULL,
        first_seen   BIGINT NOT NULL,
        last_seen    BIGINT NOT NULL,
        count        BIGINT NOT NULL,
        principal    TEXT NOT NULL,
        account      TEXT,
        region       TEXT,
        source_ip    TEXT,
        event_source TEXT,
        event_name   TEXT,
        error_code   TEXT,
        created_at   BIGINT NOT NULL,
        updated_at   BIGINT NOT NULL,
        comment      TEXT
    );
    CREATE INDEX alerts_by_group ON alerts (rule_id, group_key, last_seen);
    CREATE INDEX alerts_by_time ON alerts (last_seen);
    CREATE TABLE alert_events (
        rule_id  TEXT NOT NULL,
        event_id TEXT NOT NULL,
        alert    BIGINT NOT NULL,
        PRIMARY KEY (rule_id, event_id)
    );
    CREATE INDEX alert_events_by_alert ON alert_events (alert);
    CREATE TABLE outbox (
        id           BIGSERIAL PRIMARY KEY,
        alert_id     BIGINT NOT NULL,
        sink         TEXT NOT NULL,
        attempts     BIGINT NOT NULL DEFAULT 0,
        next_attempt BIGINT NOT NULL,
        last_error   TEXT,
        delivered_at BIGINT,
        created_at   BIGINT NOT NULL,
        UNIQUE (alert_id, sink)
    );
    CREATE INDEX outbox_due ON outbox (next_attempt) WHERE delivered_at IS NULL;
    CREATE TABLE known_regions (
        account    TEXT NOT NULL,
        region     TEXT NOT NULL,
        first_seen BIGINT NOT NULL,
        PRIMARY KEY (account, region)
    );
    CREATE TABLE correlation_windows (
        correlation TEXT NOT NULL,
        group_key   TEXT NOT NULL,
        entries     TEXT NOT NULL,
        PRIMARY KEY (correlation, group_key)
    );

    CREATE TABLE integrity_chains (
        account     TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        region      TEXT NOT NULL,
        trail       TEXT NOT NULL,
        newest_key  TEXT,
        newest_end  BIGINT,
        newest_log  BIGINT,
        verified_at BIGINT NOT NULL,
        PRIMARY KEY (account, account_id, region, trail)
    );
    CREATE TABLE integrity_findings (
        account    TEXT NOT NULL,
        kind       TEXT NOT NULL,
        key        TEXT NOT NULL,
        detail     TEXT NOT NULL,
        first_seen BIGINT NOT NULL,
        last_seen  BIGINT NOT NULL,
        PRIMARY KEY (account, kind, key)
    );
    CREATE TABLE integrity_silences (
        account    TEXT NOT NULL,
        account_id TEXT NOT NULL,
        region     TEXT NOT NULL,
        what       TEXT NOT NULL,
        since      BIGINT NOT NULL,
        alert_id   BIGINT,
        PRIMARY KEY (account, account_id, region, what)
    );

    CREATE TABLE users (
        name          TEXT NOT NULL PRIMARY KEY,
        role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
        password_hash TEXT NOT NULL,
        created_at    BIGINT NOT NULL,
        updated_at    BIGINT NOT NULL
    );
    CREATE TABLE sessions (
        token_hash BYTEA NOT NULL PRIMARY KEY,
        "user"     TEXT NOT NULL,
        csrf       TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions ("user");
    CREATE TABLE api_tokens (
        id         BIGSERIAL PRIMARY KEY,
        name       TEXT NOT NULL,
        "user"     TEXT NOT NULL,
        token_hash BYTEA NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        last_used  BIGINT
    );
    "#,
    // 2: API tokens may expire (SQLite's migration 8).
    r#"
    ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
    "#,
    // 3: hours of events whose ClickHouse hour counts are out of date (see
    // `clickhouse::rollup`): written with the ledger rows, cleared when recounted.
    r#"
    CREATE TABLE hour_marks (
        seq  BIGSERIAL PRIMARY KEY,
        hour BIGINT NOT NULL
    );
    CREATE INDEX hour_marks_by_hour ON hour_marks (hour, seq);
    CREATE SEQUENCE hour_count_versions;
    "#,
];

/// A pool of connections to the state database.
pub struct PgState {
    /// Always `Some` but while dropping (see the `Drop` impl).
    pool: Option<Pool>,
    /// The connection that holds session advisory locks this process leads with.
    leader: Mutex<Option<postgres::Client>>,
    /// How to connect (the password from `PGPASSWORD` included), for the leader connection.
    config: postgres::Config,
}

impl PgState {
    /// Connects (`postgres://user[:password]@host:port/db`; the password may also come from
    /// `PGPASSWORD`) and brings the schema up to date; `also` runs under the same migration
    /// lock (the ClickHouse schema).
    pub fn connect(url: &str, also: impl FnOnce() -> Result<(), StoreError>) -> Result<PgState, StoreError> {
        let mut config: postgres::Config =
            url.parse().map_err(|e| StoreError::postgres("parse the PostgreSQL URL", e))?;
        if config.get_password().is_none() {
            if let Ok(p) = std::env::var("PGPASSWORD") {
                config.password(p);
            }
        }
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("trailwatch");
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(30))
            .build(manager)
            .map_err(|e| StoreError::pool("connect to PostgreSQL", e.to_string()))?;
        let state = PgState { pool: Some(pool), leader: Mutex::new(None), config };
        state.migrate(also)?;
        Ok(state)
    }

    pub(crate) fn conn(&self) -> Result<Conn, StoreError> {
        self.pool
            .as_ref()
            .expect("a pool until dropped")
            .get()
            .map_err(|e| StoreError::pool("take a PostgreSQL connection", e.to_string()))
    }

    /// Runs `f` on a pooled connection, where the synchronous client may block (see
    /// [`off_runtime`]): every [`StateStore`](crate::StateStore) method goes through here,
    /// so callers may use the store from async code as they do the SQLite store.
    pub(crate) fn with<T: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        off_runtime(|| f(&mut *self.conn()?))
    }

    fn migrate(&self, also: impl FnOnce() -> Result<(), StoreError>) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        c.execute("SELECT pg_advisory_lock($1, $2)", &[&LOCK_SPACE, &LOCK_MIGRATE])
            .map_err(|e| StoreError::postgres("take the migration lock", e))?;
        let result = (|| {
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_versions (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .map_err(|e| StoreError::postgres("create the schema version table", e))?;
            let current: i32 = c
                .query_one("SELECT coalesce(max(version), 0) FROM schema_versions", &[])
                .and_then(|r| r.try_get(0))
                .map_err(|e| StoreError::postgres("read the schema version", e))?;
            if current as usize > MIGRATIONS.len() {
                return Err(StoreError::SchemaTooNew { found: current.into(), supported: MIGRATIONS.len() as i64 });
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
                let mut tx = c.transaction().map_err(|e| StoreError::postgres("start a schema migration", e))?;
                tx.batch_execute(sql).map_err(|e| StoreError::postgres("apply a schema migration", e))?;
                tx.execute(
                    "INSERT INTO schema_versions (version, applied_at) VALUES ($1, $2)",
                    &[&(i as i32 + 1), &model::timefmt::now_millis()],
                )
                .map_err(|e| StoreError::postgres("record the schema version", e))?;
                tx.commit().map_err(|e| StoreError::postgres("commit a schema migration", e))?;
            }
            also()
        })();
        let unlock = c.execute("SELECT pg_advisory_unlock($1, $2)", &[&LOCK_SPACE, &LOCK_MIGRATE]);
        result?;
        unlock.map_err(|e| StoreError::postgres("release the migration lock", e))?;
        Ok(())
    }

    /// Takes `n` arrival numbers (a block of the `event_arrival` sequence's increment).
    pub(crate) fn arrival_block(&self, c: &mut impl GenericClient) -> Result<(i64, i64), StoreError> {
        let start: i64 = c
            .query_one("SELECT nextval('event_arrival')", &[])
            .and_then(|r| r.try_get(0))
            .map_err(|e| StoreError::postgres("take arrival numbers", e))?;
        Ok((start, start + 4096))
    }
}

/// Runs `f` where the synchronous PostgreSQL client may block: the `postgres` crate drives
/// each call with a runtime of its own, which tokio forbids inside another runtime's
/// context, so from there the call goes to a short-lived thread of its own. Callers may use
/// the store from anywhere, as they do the SQLite store.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| s.spawn(f).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
}

impl Drop for PgState {
    /// Connections own runtimes, which must not be dropped inside an async context.
    fn drop(&mut self) {
        let (pool, leader) = (self.pool.take(), self.leader.lock().unwrap_or_else(|e| e.into_inner()).take());
        off_runtime(move || drop((pool, leader)));
    }
}

pub(crate) fn pg(context: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
    move |e| StoreError::postgres(context, e)
}

pub(super) const LEDGER_COLUMNS: &str = "source, bucket, key, size, object_sha256, content_sha256, records, new_events,
    duplicate_events, status, reason, detail, recorded_at";

pub(super) fn ledger_row(r: &postgres::Row) -> Result<LedgerEntry, postgres::Error> {
    let status: String = r.try_get(9)?;
    Ok(LedgerEntry {
        source: r.try_get(0)?,
        bucket: r.try_get(1)?,
        key: r.try_get(2)?,
        size: r.try_get::<_, i64>(3)? as u64,
        object_sha256: r.try_get(4)?,
        content_sha256: r.try_get(5)?,
        records: r.try_get::<_, i64>(6)? as u64,
        new_events: r.try_get::<_, i64>(7)? as u64,
        duplicate_events: r.try_get::<_, i64>(8)? as u64,
        status: if status == "quarantined" { LedgerStatus::Quarantined } else { LedgerStatus::Committed },
        reason: r.try_get(10)?,
        detail: r.try_get(11)?,
        recorded_at: r.try_get(12)?,
    })
}

/// Every row of `sql`, mapped.
pub(crate) fn all<T>(
    c: &mut postgres::Client,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    context: &'static str,
    row: impl Fn(&postgres::Row) -> Result<T, postgres::Error>,
) -> Result<Vec<T>, StoreError> {
    let rows = c.query(sql, params).map_err(pg(context))?;
    rows.iter().map(|r| row(r).map_err(pg(context))).collect()
}

/// Writes the ledger row of a finished object (see the SQLite writer for the same statement).
pub(crate) fn ledger_committed(
    c: &mut impl GenericClient,
    m: &crate::ObjectMeta,
    totals: &crate::ObjectTotals,
    counts: crate::InsertCounts,
    now: i64,
) -> Result<(), StoreError> {
    // Typed: one round trip per ledger row (an untyped statement is prepared first).
    c.execute_typed(
        "INSERT INTO objects (source, bucket, key, size, status, records, new_events, duplicate_events,
            object_sha256, content_sha256, content_bytes, recorded_at)
         VALUES ($1, $2, $3, $4, 'committed', $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (bucket, key) DO UPDATE SET source = excluded.source, size = excluded.size,
            status = 'committed', records = excluded.records, new_events = excluded.new_events,
            duplicate_events = excluded.duplicate_events, object_sha256 = excluded.object_sha256,
            content_sha256 = excluded.content_sha256, content_bytes = excluded.content_bytes,
            reason = NULL, detail = NULL, recorded_at = excluded.recorded_at",
        &[
            (&m.source, Type::TEXT),
            (&m.bucket, Type::TEXT),
            (&m.key, Type::TEXT),
            (&(m.size as i64), Type::INT8),
            (&(totals.records as i64), Type::INT8),
            (&(counts.new as i64), Type::INT8),
            (&(counts.duplicates as i64), Type::INT8),
            (&totals.object_sha256, Type::TEXT),
            (&totals.content_sha256, Type::TEXT),
            (&totals.content_bytes.map(|b| b as i64), Type::INT8),
            (&now, Type::INT8),
        ],
    )
    .map_err(pg("write the ledger row"))?;
    Ok(())
}

/// Marks `hours` (UTC hour starts, sorted) as holding events committed now: their counts
/// in ClickHouse must be taken again. Insert-only, so workers never wait for each other here.
pub(crate) fn mark_hours(c: &mut impl GenericClient, hours: &[i64]) -> Result<(), StoreError> {
    if hours.is_empty() {
        return Ok(());
    }
    c.execute_typed("INSERT INTO hour_marks (hour) SELECT unnest($1::BIGINT[])", &[(&hours, Type::INT8_ARRAY)])
        .map_err(pg("mark hours to recount"))?;
    Ok(())
}

pub(crate) fn ledger_quarantined(
    c: &mut impl GenericClient,
    m: &crate::ObjectMeta,
    reason: &str,
    detail: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO objects (source, bucket, key, size, status, reason, detail, recorded_at)
         VALUES ($1, $2, $3, $4, 'quarantined', $5, $6, $7)
         ON CONFLICT (bucket, key) DO UPDATE SET source = excluded.source, size = excluded.size,
            status = 'quarantined', reason = excluded.reason, detail = excluded.detail,
            records = 0, new_events = 0, duplicate_events = 0, recorded_at = excluded.recorded_at",
        &[&m.source, &m.bucket, &m.key, &(m.size as i64), &reason, &detail, &now],
    )
    .map_err(pg("quarantine an object"))?;
    Ok(())
}
