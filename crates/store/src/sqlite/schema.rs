//! SQLite schema and its migrations. `PRAGMA user_version` holds the applied version.
//!
//! Layout, and why (the writer's cost per event is what limits ingest, so every per-event
//! index entry is paid for on every one of billions of rows):
//! * `events` keeps one narrow row per `eventID` (unique index) with the columns search needs.
//!   Low-cardinality text (event source and name, account, region, error code, event type,
//!   category, user agent, source IP) is an integer id into `dict`; the principal an id into
//!   `principals`. Besides `eventID`, the only per-event index is `event_time`.
//! * `blocks` holds the records' verbatim JSON, compressed a batch at a time (see
//!   `EventBatch`), about a thousand rows per block (consecutive batches, possibly of several
//!   objects, are gathered). A block's id is the rowid of its first event row and `last_row`
//!   its last, so a block is a contiguous rowid range of `events`; `events.slot` is the
//!   record's place in the block.
//! * `postings` says which blocks contain which value of each filter column: one entry per
//!   distinct value per block instead of one index entry per event per column. A search for
//!   a rare value (an IP, a principal, `StopLogging`) reads the few blocks that can contain it
//!   and filters their rows exactly. Postings may over-approximate (entries of rolled-back
//!   blocks stay), never under-approximate: results are always filtered on the row columns.
//! * `objects` is the ingest ledger: one row per object (bucket, key) committed or
//!   quarantined, written in the same transaction as the object's events.
//!
//! The `events_v` view joins the ids back for people using the `sqlite3` shell (the raw JSON
//! is compressed; `trailwatch search --format jsonl` prints it).
//!
//! Later features add their tables (alerts, outbox, integrity state, accounts) as new
//! migrations appended to [`MIGRATIONS`]; existing entries are never edited.

use rusqlite::Connection;

use crate::{Context, StoreError};

/// Dictionary kinds (`dict.kind`).
pub(crate) mod kind {
    pub const EVENT_SOURCE: u8 = 1;
    pub const EVENT_NAME: u8 = 2;
    pub const ACCOUNT: u8 = 3;
    pub const REGION: u8 = 4;
    pub const ERROR_CODE: u8 = 5;
    pub const EVENT_TYPE: u8 = 6;
    pub const CATEGORY: u8 = 7;
    pub const USER_AGENT: u8 = 8;
    pub const SOURCE_IP: u8 = 9;
    pub const COUNT: usize = 10;
    /// Postings dimension of `events.principal` (an id into `principals`, not `dict`).
    pub const PRINCIPAL: u8 = 10;
}

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: events, dictionaries, principals, ingest ledger.
    r#"
    CREATE TABLE dict (
        id    INTEGER PRIMARY KEY,
        kind  INTEGER NOT NULL,
        value TEXT NOT NULL,
        UNIQUE (kind, value)
    );

    CREATE TABLE principals (
        id         INTEGER PRIMARY KEY,
        principal  TEXT NOT NULL UNIQUE,
        kind       TEXT NOT NULL,
        account_id TEXT,
        name       TEXT,
        issuer     TEXT,
        human      TEXT,
        federation TEXT
    );
    CREATE INDEX principals_issuer ON principals (issuer);
    CREATE INDEX principals_name ON principals (name);
    CREATE INDEX principals_human ON principals (human);

    CREATE TABLE objects (
        id               INTEGER PRIMARY KEY,
        source           TEXT NOT NULL,
        bucket           TEXT NOT NULL,
        key              TEXT NOT NULL,
        size             INTEGER NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('committed', 'quarantined')),
        records          INTEGER NOT NULL DEFAULT 0,
        new_events       INTEGER NOT NULL DEFAULT 0,
        duplicate_events INTEGER NOT NULL DEFAULT 0,
        object_sha256    TEXT,
        content_sha256   TEXT,
        content_bytes    INTEGER,
        reason           TEXT,
        detail           TEXT,
        recorded_at      INTEGER NOT NULL,
        UNIQUE (bucket, key)
    );
    CREATE INDEX objects_quarantined ON objects (id) WHERE status = 'quarantined';

    CREATE TABLE events (
        id            INTEGER PRIMARY KEY,
        event_id      TEXT NOT NULL,
        event_time    INTEGER NOT NULL,
        event_source  INTEGER,
        event_name    INTEGER,
        account       INTEGER,
        region        INTEGER,
        principal     INTEGER NOT NULL,
        source_ip     INTEGER,
        error_code    INTEGER,
        event_type    INTEGER,
        category      INTEGER,
        -- readOnly, managementEvent, MFA (2 bits each: 0 unknown, 1 false, 2 true), console (bit 6)
        flags         INTEGER NOT NULL,
        user_agent    INTEGER,
        access_key_id TEXT,
        object_id     INTEGER NOT NULL,
        slot          INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX events_event_id ON events (event_id);
    CREATE INDEX events_time ON events (event_time);

    CREATE TABLE blocks (
        id        INTEGER PRIMARY KEY,
        last_row  INTEGER NOT NULL,
        min_time  INTEGER NOT NULL,
        max_time  INTEGER NOT NULL,
        raw       BLOB NOT NULL
    );

    CREATE TABLE postings (
        dim   INTEGER NOT NULL,
        value INTEGER NOT NULL,
        block INTEGER NOT NULL,
        PRIMARY KEY (dim, value, block)
    ) WITHOUT ROWID;

    CREATE VIEW events_v AS
    SELECT e.id, e.event_id,
           strftime('%Y-%m-%dT%H:%M:%SZ', e.event_time / 1000, 'unixepoch') AS event_time,
           src.value AS event_source, name.value AS event_name, acct.value AS account,
           reg.value AS region, p.principal, ip.value AS source_ip, err.value AS error_code,
           e.access_key_id,
           CASE e.flags & 3 WHEN 1 THEN 0 WHEN 2 THEN 1 END AS read_only,
           CASE (e.flags >> 2) & 3 WHEN 1 THEN 0 WHEN 2 THEN 1 END AS management_event,
           CASE (e.flags >> 4) & 3 WHEN 1 THEN 0 WHEN 2 THEN 1 END AS mfa,
           (e.flags >> 6) & 1 AS console, e.object_id
    FROM events e
    JOIN principals p ON p.id = e.principal
    LEFT JOIN dict src ON src.id = e.event_source
    LEFT JOIN dict name ON name.id = e.event_name
    LEFT JOIN dict acct ON acct.id = e.account
    LEFT JOIN dict reg ON reg.id = e.region
    LEFT JOIN dict ip ON ip.id = e.source_ip
    LEFT JOIN dict err ON err.id = e.error_code;
    "#,
];

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    // BEGIN IMMEDIATE: two processes opening a fresh file at once must not both migrate.
    let tx =
        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).context("start schema migration")?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).context("read schema version")?;
    if current > supported {
        return Err(StoreError::SchemaTooNew { found: current, supported });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).context("apply schema migration")?;
        tx.pragma_update(None, "user_version", i as i64 + 1).context("record schema version")?;
    }
    tx.commit().context("commit schema migration")
}
