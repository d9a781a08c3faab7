//! SQLite schema and its migrations. `PRAGMA user_version` holds the applied version.
//!
//! Layout, and why. The writer's cost per event limits ingest, and every per-event B-tree
//! entry is paid for on every one of billions of events, so there is exactly one:
//! * `event_ids` maps each (hour of eventTime, `eventID`) (a canonical UUID as its 16 bytes,
//!   anything else as text) to its block and row: the dedupe key (a record delivered again
//!   is found here) and the lookup by id. Keyed by hour first (schema 11) so that inserts
//!   stay in the current hours' part of the index (`sqlite::event_hour`, `idfilter.rs`).
//! * `blocks` hold events a thousand or so at a time, in arrival order: their columns
//!   (`columns.rs`: times, dictionary ids, principal ids, flags, …) and their verbatim JSON
//!   (zstd frames of at most 64 records, listed in `frames`, made with the store's
//!   dictionary in `raw_dictionaries` once it has one), each compressed. `rows` is how many rows are valid (an undone object cuts
//!   a block back); `min_time`/`max_time` bound the rows' event times.
//! * `postings` say which blocks contain which value of each filter column: one entry per
//!   distinct value per block. A search intersects them to find the blocks that can match and
//!   then tests those blocks' rows exactly, so postings may over-approximate (entries of
//!   undone blocks stay) but never miss. Resources (`kind::RESOURCE`) are posted from the
//!   records' identifiers; they are no column, so rows are confirmed on their records.
//! * `rollups` and `rollup_hours` count events per hour and value (`rollups.rs`): one
//!   upsert per (hour, value) a transaction adds to, in the current hours of each column.
//!   `principal_values` counts the values of each busy principal, for its page.
//! * `dict` and `principals` give text values small integer ids. User agents and source
//!   addresses are not in `dict` (schema 9): there are too many, and a global value → id
//!   index costs a random B-tree insert per new value; blocks carry their texts
//!   (`columns.rs`), named by a stable hash that `postings` also uses.
//! * `objects` is the ingest ledger: one row per object (bucket, key) committed or
//!   quarantined, written in the same transaction as the object's events.
//!
//! Later features add their tables (alerts, outbox, integrity state, accounts) as new
//! migrations appended to [`MIGRATIONS`]; existing entries are never edited.

use rusqlite::{Connection, OptionalExtension};

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
    /// Postings dimension of the resources a record names (`text_id` of each of
    /// `model::resources::index_keys`); not a column: rows are confirmed on their record.
    pub const RESOURCE: u8 = 11;
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

    CREATE TABLE event_ids (
        id    BLOB NOT NULL PRIMARY KEY,
        block INTEGER NOT NULL,
        row   INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE blocks (
        id       INTEGER PRIMARY KEY,
        rows     INTEGER NOT NULL,
        min_time INTEGER NOT NULL,
        max_time INTEGER NOT NULL,
        columns  BLOB NOT NULL,
        raw      BLOB NOT NULL
    );
    CREATE INDEX blocks_max_time ON blocks (max_time);

    CREATE TABLE postings (
        dim   INTEGER NOT NULL,
        value INTEGER NOT NULL,
        block INTEGER NOT NULL,
        PRIMARY KEY (dim, value, block)
    ) WITHOUT ROWID;
    "#,
    // 2: what the AWS sources report: unhandled messages, unreadable objects, digests seen,
    // integration status per account and region.
    r#"
    CREATE TABLE message_problems (
        queue         TEXT NOT NULL,
        message_id    TEXT NOT NULL,
        reason        TEXT NOT NULL,
        detail        TEXT NOT NULL,
        body          TEXT NOT NULL,
        receive_count INTEGER NOT NULL,
        first_seen    INTEGER NOT NULL,
        last_seen     INTEGER NOT NULL,
        PRIMARY KEY (queue, message_id)
    );

    CREATE TABLE ingest_findings (
        kind        TEXT NOT NULL,
        account     TEXT NOT NULL,
        bucket      TEXT NOT NULL,
        key         TEXT NOT NULL,
        detail      TEXT NOT NULL,
        first_seen  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL,
        occurrences INTEGER NOT NULL,
        PRIMARY KEY (kind, bucket, key)
    );

    CREATE TABLE digests_seen (
        account TEXT NOT NULL,
        bucket  TEXT NOT NULL,
        key     TEXT NOT NULL,
        size    INTEGER,
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (bucket, key)
    );

    CREATE TABLE integration_status (
        account           TEXT NOT NULL,
        region            TEXT NOT NULL,
        last_notification INTEGER,
        last_validation   INTEGER,
        last_object       INTEGER,
        newest_event      INTEGER,
        notifications     INTEGER NOT NULL,
        objects           INTEGER NOT NULL,
        events            INTEGER NOT NULL,
        last_error        TEXT,
        last_error_at     INTEGER,
        updated_at        INTEGER NOT NULL,
        PRIMARY KEY (account, region)
    );
    "#,
    // 3: detection: alerts, the events attached to them, the delivery outbox, and the
    // correlation windows that must survive a restart.
    r#"
    CREATE TABLE alerts (
        id           INTEGER PRIMARY KEY,
        rule_id      TEXT NOT NULL,
        title        TEXT NOT NULL,
        level        TEXT NOT NULL,
        group_key    TEXT NOT NULL,
        state        TEXT NOT NULL,
        first_seen   INTEGER NOT NULL,
        last_seen    INTEGER NOT NULL,
        count        INTEGER NOT NULL,
        principal    TEXT NOT NULL,
        account      TEXT,
        region       TEXT,
        source_ip    TEXT,
        event_source TEXT,
        event_name   TEXT,
        error_code   TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        comment      TEXT
    );
    -- The suppression lookup: the newest non-resolved alert of a rule and key.
    CREATE INDEX alerts_by_group ON alerts (rule_id, group_key, last_seen);
    CREATE INDEX alerts_by_time ON alerts (last_seen);

    -- Rule ids as small integers for alert_events' key.
    CREATE TABLE alert_rules (
        id      INTEGER PRIMARY KEY,
        rule_id TEXT NOT NULL UNIQUE
    );

    -- An event counts once per rule: re-delivery and re-scans add nothing. `event` is the
    -- eventID as in event_ids (16 bytes for a canonical UUID, else text). An alert's events
    -- are found within its rule's range, so no second index is kept.
    CREATE TABLE alert_events (
        rule  INTEGER NOT NULL,
        event BLOB NOT NULL,
        alert INTEGER NOT NULL,
        PRIMARY KEY (rule, event)
    ) WITHOUT ROWID;

    CREATE TABLE outbox (
        id           INTEGER PRIMARY KEY,
        alert_id     INTEGER NOT NULL,
        sink         TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_error   TEXT,
        delivered_at INTEGER,
        created_at   INTEGER NOT NULL,
        UNIQUE (alert_id, sink)
    );
    CREATE INDEX outbox_due ON outbox (next_attempt) WHERE delivered_at IS NULL;

    -- Where each account has been active, for "activity in a region never used before".
    CREATE TABLE known_regions (
        account    TEXT NOT NULL,
        region     TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        PRIMARY KEY (account, region)
    ) WITHOUT ROWID;

    CREATE TABLE correlation_windows (
        correlation TEXT NOT NULL,
        group_key   TEXT NOT NULL,
        entries     TEXT NOT NULL,
        PRIMARY KEY (correlation, group_key)
    );
    "#,
    // 4: integrity: per trail and region the newest digest verified and log seen, the
    // findings of validation (once per account, kind and key), and silent regions.
    r#"
    CREATE TABLE integrity_chains (
        account     TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        region      TEXT NOT NULL,
        trail       TEXT NOT NULL,
        newest_key  TEXT,
        newest_end  INTEGER,
        newest_log  INTEGER,
        verified_at INTEGER NOT NULL,
        PRIMARY KEY (account, account_id, region, trail)
    );

    CREATE TABLE integrity_findings (
        account    TEXT NOT NULL,
        kind       TEXT NOT NULL,
        key        TEXT NOT NULL,
        detail     TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        PRIMARY KEY (account, kind, key)
    );

    -- Continuous validation polls for digests announced since its last look.
    CREATE INDEX digests_seen_by_time ON digests_seen (seen_at);

    CREATE TABLE integrity_silences (
        account    TEXT NOT NULL,
        account_id TEXT NOT NULL,
        region     TEXT NOT NULL,
        what       TEXT NOT NULL,
        since      INTEGER NOT NULL,
        alert_id   INTEGER,
        PRIMARY KEY (account, account_id, region, what)
    );
    "#,
    // 5: dashboard users, their sessions and API tokens. Session and API tokens are random
    // 256-bit values; only their SHA-256 is stored, so a copy of the database logs nobody in.
    r#"
    CREATE TABLE users (
        name          TEXT NOT NULL PRIMARY KEY,
        role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    );

    CREATE TABLE sessions (
        token_hash BLOB NOT NULL PRIMARY KEY,
        user       TEXT NOT NULL,
        csrf       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions (user);

    CREATE TABLE api_tokens (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL,
        user       TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        last_used  INTEGER
    );
    "#,
    // 6: the principal filter matches the principal, the role or user that issued a session,
    // the user/session name and the person behind it. Without these, each search by
    // principal scanned every principal (a quarter of a million in a big organization's
    // week: 150 ms); with them it is a union of four index lookups.
    r#"
    CREATE INDEX principals_by_issuer ON principals (issuer) WHERE issuer IS NOT NULL;
    CREATE INDEX principals_by_name ON principals (name) WHERE name IS NOT NULL;
    CREATE INDEX principals_by_human ON principals (human) WHERE human IS NOT NULL;
    "#,
    // 7: event forwarding: how far each forwarder has delivered (an arrival position).
    r#"
    CREATE TABLE forward_cursors (
        name       TEXT PRIMARY KEY,
        position   INTEGER NOT NULL,
        delivered  INTEGER NOT NULL,
        last_error TEXT,
        updated_at INTEGER NOT NULL
    );
    "#,
    // 8: API tokens may expire.
    r#"
    ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
    "#,
    // 9: user agents and source addresses leave `dict` for the blocks (columns version 2);
    // the work is `inline_texts` (`RUST_STEPS`), run after this (empty) step.
    r#"
    "#,
    // 10: postings of addresses and principals are segmented by block
    // (`columns::posting_value`: segment = block >> 10, in the bits above the low 40).
    r#"
    CREATE TEMP TABLE segmented AS
        SELECT dim, ((block >> 10) << 40) | (value & 1099511627775) AS value, block
        FROM postings WHERE dim IN (9, 10);
    DELETE FROM postings WHERE dim IN (9, 10);
    INSERT OR IGNORE INTO postings (dim, value, block) SELECT dim, value, block FROM segmented;
    DROP TABLE segmented;
    "#,
    // 11: `event_ids` keyed by (hour of eventTime, eventID) (`sqlite::event_hour`), filled
    // from the old table by `event_ids_by_hour` (`RUST_STEPS`) after this step; `event_id_generation`
    // counts the transactions that added ids (the writers' id filters follow it).
    r#"
    CREATE TABLE event_ids_by_hour (
        hour  INTEGER NOT NULL,
        id    BLOB NOT NULL,
        block INTEGER NOT NULL,
        row   INTEGER NOT NULL,
        PRIMARY KEY (hour, id)
    ) WITHOUT ROWID;
    CREATE TABLE event_id_generation (
        only       INTEGER PRIMARY KEY CHECK (only = 1),
        generation INTEGER NOT NULL
    );
    INSERT INTO event_id_generation (only, generation) VALUES (1, 0);
    "#,
    // 12: a random number naming this store, so a saved id filter (`idfilter.rs`) is only
    // ever read back into the store it was made for.
    r#"
    ALTER TABLE event_id_generation ADD COLUMN nonce INTEGER NOT NULL DEFAULT 0;
    UPDATE event_id_generation SET nonce = random();
    "#,
    // 13: hourly rollups for summaries of long ranges (`rollups.rs`), filled from the
    // blocks by `rollups::rebuild` (`RUST_STEPS`). The literal 32 is `rollups::HEAVY`.
    r#"
    CREATE TABLE rollup_hours (
        hour   INTEGER PRIMARY KEY,
        events INTEGER NOT NULL,
        first  INTEGER,
        last   INTEGER
    );
    CREATE TABLE rollups (
        dim    INTEGER NOT NULL,
        hour   INTEGER NOT NULL,
        value  INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (dim, hour, value)
    ) WITHOUT ROWID;
    CREATE INDEX rollups_heavy ON rollups (dim, hour, value, events) WHERE events >= 32;
    "#,
    // 14: postings of the resources each record names (`kind::RESOURCE`), read from the
    // stored records by `index_resources` (`RUST_STEPS`).
    r#"
    "#,
    // 15: where each zstd frame of a block's raw records starts, and its first slot (pairs
    // of u32, little-endian), so that one record is read without the others. NULL: read
    // the block's raw records whole (older blocks, blocks rewritten by retention).
    r#"
    ALTER TABLE blocks ADD COLUMN frames BLOB;
    "#,
    // 16: zstd dictionaries of raw records (`batch::RawDictionary`), by zstd's id, which
    // each frame made with one names in its header. Trained by the writer on the store's
    // own records once it holds some (`writer::train_dictionary`); never deleted while a
    // frame may name them.
    r#"
    CREATE TABLE raw_dictionaries (
        id         INTEGER PRIMARY KEY,
        dict       BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    "#,
    // 17: alert_events by event, for retention: it asks of each expired event whether an
    // alert refers to it (reading every referenced id instead cost a second per slice of
    // 16 blocks with millions of alerted events).
    r#"
    CREATE INDEX alert_events_by_event ON alert_events (event);
    "#,
    // 18: rollups per principal (`rollups.rs`), so that a busy principal's page counts its
    // values instead of every event (at 100 M events the busiest principal's page decoded
    // nearly every block: 66 s). `principal_counts.events` counts each principal's events
    // until it is busy (`rollups::BUSY`; a table of its own: updating `principals` rows
    // dirtied a page per principal per commit); its events in blocks from `rolled_from` on
    // are counted in `principal_values`, its others are read from the blocks. Filled from
    // the blocks by `rollups::rebuild_principals` (`RUST_STEPS`). `block` is the newest
    // block a text value (address, user agent) was counted from: where its label is read.
    // `principal_counts_busy`: a writer asks at each transaction whether more principals
    // have become busy. `blocks_by_min_time`: the first event of a principal, or of an hour
    // retention thinned, is found by walking blocks in time order (`read::edge_time`).
    r#"
    CREATE TABLE principal_counts (
        principal   INTEGER PRIMARY KEY,
        events      INTEGER NOT NULL,
        rolled_from INTEGER
    );
    CREATE INDEX principal_counts_busy ON principal_counts (rolled_from) WHERE rolled_from IS NOT NULL;
    CREATE INDEX blocks_by_min_time ON blocks (min_time, max_time);
    CREATE TABLE principal_values (
        principal INTEGER NOT NULL,
        dim       INTEGER NOT NULL,
        value     INTEGER NOT NULL,
        events    INTEGER NOT NULL,
        block     INTEGER NOT NULL,
        PRIMARY KEY (principal, dim, value)
    ) WITHOUT ROWID;
    "#,
];

type RustStep = fn(&Connection) -> Result<(), StoreError>;

/// Migrations whose work is Rust, not SQL: (schema version, what runs right after that
/// version's SQL, in the same transaction).
const RUST_STEPS: &[(usize, RustStep)] = &[
    (9, inline_texts),
    (11, event_ids_by_hour),
    (13, super::rollups::rebuild),
    (14, index_resources),
    (18, super::rollups::rebuild_principals),
];

/// Posts the resources every stored record names (a parse of every record, once).
fn index_resources(conn: &Connection) -> Result<(), StoreError> {
    use super::columns::{resource_postings, BlockColumns};
    let mut stmt = conn.prepare("SELECT id, rows, columns, raw FROM blocks ORDER BY id").context("read blocks")?;
    let mut rows = stmt.query([]).context("read blocks")?;
    let mut post = conn
        .prepare("INSERT OR IGNORE INTO postings (dim, value, block) VALUES (?1, ?2, ?3)")
        .context("prepare postings insert")?;
    while let Some(r) = rows.next().context("read blocks")? {
        let block: i64 = r.get(0).context("read block")?;
        let n: i64 = r.get(1).context("read block")?;
        let corrupt = |detail: String| StoreError::Corrupt { block, detail };
        let c =
            BlockColumns::decode(&r.get::<_, Vec<u8>>(2).context("read block")?).map_err(|e| corrupt(e.to_string()))?;
        let records = super::unpack_raw(conn, &r.get::<_, Vec<u8>>(3).context("read block")?)
            .map_err(|e| corrupt(e.to_string()))?;
        let mut postings = std::collections::BTreeSet::new();
        for i in 0..(n as usize).min(c.len()) {
            let Some(raw) = records.get(c.raw_slot[i] as usize) else { continue };
            if let Ok(record) = model::Record::from_json(raw) {
                postings.extend(resource_postings(&model::resources::record_identifiers(&record), block));
            }
        }
        for (dim, value) in postings {
            post.execute(rusqlite::params![dim, value, block]).context("insert posting")?;
        }
    }
    Ok(())
}

/// Files every `event_ids` entry under its event's hour (read from its block's columns),
/// then replaces the old table.
fn event_ids_by_hour(conn: &Connection) -> Result<(), StoreError> {
    use super::columns::BlockColumns;
    {
        let mut read = conn.prepare("SELECT id, block, row FROM event_ids ORDER BY block").context("read event ids")?;
        let mut rows = read.query([]).context("read event ids")?;
        let mut insert = conn
            .prepare("INSERT OR IGNORE INTO event_ids_by_hour (hour, id, block, row) VALUES (?1, ?2, ?3, ?4)")
            .context("prepare event id insert")?;
        let mut current: Option<(i64, BlockColumns)> = None;
        while let Some(r) = rows.next().context("read event ids")? {
            let (id, block, row): (rusqlite::types::Value, i64, i64) = (
                r.get(0).context("read event id")?,
                r.get(1).context("read event id")?,
                r.get(2).context("read event id")?,
            );
            if current.as_ref().is_none_or(|(b, _)| *b != block) {
                let bytes: Option<Vec<u8>> = conn
                    .query_row("SELECT columns FROM blocks WHERE id = ?1", [block], |r| r.get(0))
                    .optional()
                    .context("read block columns")?;
                // An id whose block is gone names nothing.
                let Some(bytes) = bytes else { continue };
                let c =
                    BlockColumns::decode(&bytes).map_err(|e| StoreError::Corrupt { block, detail: e.to_string() })?;
                current = Some((block, c));
            }
            let (_, c) = current.as_ref().expect("read above");
            let Some(&time) = c.event_time.get(row as usize) else { continue };
            insert
                .execute(rusqlite::params![super::event_hour(time), id, block, row])
                .context("file an event id by hour")?;
        }
    }
    conn.execute_batch("DROP TABLE event_ids; ALTER TABLE event_ids_by_hour RENAME TO event_ids;")
        .context("replace event_ids")
}

/// Rewrites every version-1 block so its user agents and source addresses are texts in the
/// block named by `text_id` (not dictionary ids), re-posts addresses under their text ids,
/// and drops the two kinds from `dict`. Proportional to the store's size, once.
fn inline_texts(conn: &Connection) -> Result<(), StoreError> {
    use super::columns::BlockColumns;
    let mut names: rustc_hash::FxHashMap<i64, String> = rustc_hash::FxHashMap::default();
    {
        let mut stmt =
            conn.prepare("SELECT id, value FROM dict WHERE kind IN (?1, ?2)").context("read texts to move")?;
        let rows = stmt
            .query_map([kind::USER_AGENT, kind::SOURCE_IP], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .context("read texts to move")?;
        for row in rows {
            let (id, value) = row.context("read texts to move")?;
            names.insert(id, value);
        }
    }
    conn.execute("DELETE FROM postings WHERE dim = ?1", [kind::SOURCE_IP]).context("drop address postings")?;
    let blocks: Vec<i64> = conn
        .prepare("SELECT id FROM blocks ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .context("list blocks")?;
    let corrupt =
        |block: i64| move |e: super::columns::ColumnsError| StoreError::Corrupt { block, detail: e.to_string() };
    for block in blocks {
        let bytes: Vec<u8> = conn
            .query_row("SELECT columns FROM blocks WHERE id = ?1", [block], |r| r.get(0))
            .context("read block columns")?;
        if !BlockColumns::is_version_1(&bytes).map_err(corrupt(block))? {
            continue;
        }
        let mut c = BlockColumns::decode(&bytes).map_err(corrupt(block))?;
        let mut seen = rustc_hash::FxHashSet::default();
        for i in 0..c.len() {
            let ip = names.get(&c.source_ip[i]).cloned();
            c.source_ip[i] = c.push_text(&mut seen, ip.as_deref());
            let agent = names.get(&c.user_agent[i]).cloned();
            c.user_agent[i] = c.push_text(&mut seen, agent.as_deref());
        }
        conn.execute("UPDATE blocks SET columns = ?1 WHERE id = ?2", rusqlite::params![c.encode(), block])
            .context("rewrite block columns")?;
        let addresses: std::collections::BTreeSet<i64> = c.source_ip.iter().copied().filter(|&v| v != 0).collect();
        let mut post = conn
            .prepare_cached("INSERT OR IGNORE INTO postings (dim, value, block) VALUES (?1, ?2, ?3)")
            .context("prepare postings insert")?;
        for value in addresses {
            post.execute(rusqlite::params![kind::SOURCE_IP, value, block]).context("insert posting")?;
        }
    }
    conn.execute("DELETE FROM dict WHERE kind IN (?1, ?2)", [kind::USER_AGENT, kind::SOURCE_IP])
        .context("drop moved texts from dict")?;
    Ok(())
}

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    // Up to date (every open but the first after an upgrade): nothing to lock. Readers (a
    // `search` while `serve` ingests) must not queue for the writer's lock.
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).context("read schema version")?;
    if current == supported {
        return Ok(());
    }
    // BEGIN IMMEDIATE: two processes opening a fresh file at once must not both migrate.
    let tx =
        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).context("start schema migration")?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).context("read schema version")?;
    if current > supported {
        return Err(StoreError::SchemaTooNew { found: current, supported });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).context("apply schema migration")?;
        for (_, step) in RUST_STEPS.iter().filter(|(version, _)| *version == i + 1) {
            step(&tx)?;
        }
        tx.pragma_update(None, "user_version", i as i64 + 1).context("record schema version")?;
    }
    tx.commit().context("commit schema migration")
}
