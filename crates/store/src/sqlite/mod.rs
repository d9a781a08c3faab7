//! The embedded SQLite backend.

mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row};

use crate::query::{glob_pattern, is_wildcard};
use crate::{
    Context, Dimension, EventQuery, EventRow, EventWriter, LedgerEntry, LedgerStatus, Store,
    StoreError, StoreStats,
};
use schema::kind;

/// Events in one SQLite file (WAL mode; readers never wait for the writer).
pub struct SqliteStore {
    target: Target,
    read: Mutex<Connection>,
}

enum Target {
    File(PathBuf),
    /// A named shared-cache in-memory database (tests and examples).
    Memory(String),
}

static MEMORY_DBS: AtomicU64 = AtomicU64::new(0);

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let target = Target::File(path.as_ref().to_path_buf());
        let mut conn = target.connect()?;
        schema::migrate(&mut conn)?;
        Ok(SqliteStore {
            target,
            read: Mutex::new(conn),
        })
    }

    /// A private in-memory database that lives as long as this value.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let n = MEMORY_DBS.fetch_add(1, Ordering::Relaxed);
        let target = Target::Memory(format!(
            "file:trailwatch-mem-{}-{n}?mode=memory&cache=shared",
            std::process::id()
        ));
        let mut conn = target.connect()?;
        schema::migrate(&mut conn)?;
        Ok(SqliteStore {
            target,
            read: Mutex::new(conn),
        })
    }

    /// The database file (`None` for in-memory stores).
    pub fn path(&self) -> Option<&Path> {
        match &self.target {
            Target::File(p) => Some(p),
            Target::Memory(_) => None,
        }
    }

    fn with_read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self
            .read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&conn)
    }
}

/// Checkpoints the WAL from its own connection and thread, so the writer never stops to copy
/// pages back into the database (SQLite's automatic checkpoint runs inside the commit of the
/// connection that crosses the threshold — the writer). A PASSIVE checkpoint never blocks the
/// writer or readers.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// WAL size that triggers a background checkpoint.
const CHECKPOINT_WAL_BYTES: u64 = 16 << 20;

impl Checkpointer {
    fn start(path: PathBuf) -> Result<Checkpointer, StoreError> {
        let conn = Target::File(path.clone()).connect()?;
        let mut wal = path.into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || loop {
                match stopped.recv_timeout(Duration::from_millis(100)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let big = std::fs::metadata(&wal)
                    .map(|m| m.len() >= CHECKPOINT_WAL_BYTES)
                    .unwrap_or(false);
                if big {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "background WAL checkpoint failed");
                    }
                }
            })
            .expect("spawn checkpoint thread");
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Target {
    fn connect(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match self {
            Target::File(p) => Connection::open_with_flags(p, flags),
            Target::Memory(uri) => Connection::open_with_flags(uri, flags),
        }
        .context("open database")?;
        conn.busy_timeout(Duration::from_secs(30))
            .context("set busy timeout")?;
        if let Target::File(_) = self {
            // Larger pages: fewer B-tree levels, splits and WAL frames for ~1 KB records. Only
            // takes effect when the database is created.
            conn.pragma_update(None, "page_size", 16384)
                .context("set page size")?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .context("enable WAL")?;
            // FULL: a commit is on disk when it returns, so a source may acknowledge it.
            conn.pragma_update(None, "synchronous", "FULL")
                .context("set synchronous")?;
            // Checkpoint in larger steps: fewer, bigger copies from the WAL while ingesting.
            conn.pragma_update(None, "wal_autocheckpoint", 8192)
                .context("set wal_autocheckpoint")?;
        }
        conn.pragma_update(None, "cache_size", -65536)
            .context("set cache size")?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .context("set temp_store")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

const EVENT_COLUMNS: &str =
    "e.id, e.event_id, e.event_time, src.value, name.value, p.principal, e.source_ip,
    acct.value, reg.value, err.value, e.raw";

const EVENT_JOINS: &str = "JOIN principals p ON p.id = e.principal
    LEFT JOIN dict src ON src.id = e.event_source
    LEFT JOIN dict name ON name.id = e.event_name
    LEFT JOIN dict acct ON acct.id = e.account
    LEFT JOIN dict reg ON reg.id = e.region
    LEFT JOIN dict err ON err.id = e.error_code";

fn event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        row: r.get(0)?,
        event_id: r.get(1)?,
        event_time: r.get(2)?,
        event_source: r.get(3)?,
        event_name: r.get(4)?,
        principal: r.get(5)?,
        source_ip: r.get(6)?,
        account: r.get(7)?,
        region: r.get(8)?,
        error_code: r.get(9)?,
        raw: r.get(10)?,
    })
}

/// `WHERE` clause (fixed fragments, `?` placeholders) and its parameters for a query.
fn where_clause(q: &EventQuery) -> (String, Vec<Value>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let dict_filters = [
        (&q.event_name, "e.event_name", kind::EVENT_NAME),
        (&q.event_source, "e.event_source", kind::EVENT_SOURCE),
        (&q.account, "e.account", kind::ACCOUNT),
        (&q.region, "e.region", kind::REGION),
    ];
    for (value, column, kind) in dict_filters {
        let Some(value) = value else { continue };
        if is_wildcard(value) {
            clauses.push(format!(
                "{column} IN (SELECT id FROM dict WHERE kind = {kind} AND value GLOB ?)"
            ));
            params.push(Value::Text(glob_pattern(value)));
        } else {
            clauses.push(format!(
                "{column} = (SELECT id FROM dict WHERE kind = {kind} AND value = ?)"
            ));
            params.push(Value::Text(value.clone()));
        }
    }
    if let Some(p) = &q.principal {
        let (op, v) = if is_wildcard(p) {
            ("GLOB", glob_pattern(p))
        } else {
            ("=", p.clone())
        };
        clauses.push(format!(
            "e.principal IN (SELECT id FROM principals WHERE principal {op} ? OR issuer {op} ? OR name {op} ? OR human {op} ?)"
        ));
        params.extend(std::iter::repeat_n(Value::Text(v), 4));
    }
    if let Some(ip) = &q.source_ip {
        if is_wildcard(ip) {
            clauses.push("e.source_ip GLOB ?".into());
            params.push(Value::Text(glob_pattern(ip)));
        } else {
            clauses.push("e.source_ip = ?".into());
            params.push(Value::Text(ip.clone()));
        }
    }
    if let Some(since) = q.since {
        clauses.push("e.event_time >= ?".into());
        params.push(Value::Integer(since));
    }
    if let Some(until) = q.until {
        clauses.push("e.event_time <= ?".into());
        params.push(Value::Integer(until));
    }
    if q.errors {
        clauses.push("e.error_code IS NOT NULL".into());
    }
    if let Some(after) = q.after {
        clauses.push("(e.event_time, e.id) < (?, ?)".into());
        params.push(Value::Integer(after.event_time));
        params.push(Value::Integer(after.row));
    }
    if clauses.is_empty() {
        (String::new(), params)
    } else {
        (format!("WHERE {}", clauses.join(" AND ")), params)
    }
}

fn ledger_row(r: &Row<'_>) -> rusqlite::Result<LedgerEntry> {
    let status: String = r.get(9)?;
    Ok(LedgerEntry {
        source: r.get(0)?,
        bucket: r.get(1)?,
        key: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
        object_sha256: r.get(4)?,
        content_sha256: r.get(5)?,
        records: r.get::<_, i64>(6)? as u64,
        new_events: r.get::<_, i64>(7)? as u64,
        duplicate_events: r.get::<_, i64>(8)? as u64,
        status: if status == "quarantined" {
            LedgerStatus::Quarantined
        } else {
            LedgerStatus::Committed
        },
        reason: r.get(10)?,
        detail: r.get(11)?,
        recorded_at: r.get(12)?,
    })
}

const LEDGER_COLUMNS: &str =
    "source, bucket, key, size, object_sha256, content_sha256, records, new_events,
    duplicate_events, status, reason, detail, recorded_at";

impl Store for SqliteStore {
    fn writer(&self) -> Result<Box<dyn EventWriter>, StoreError> {
        let conn = self.target.connect()?;
        let checkpointer = match &self.target {
            Target::File(path) => {
                conn.pragma_update(None, "wal_autocheckpoint", 0)
                    .context("hand checkpoints to the checkpointer")?;
                Some(Checkpointer::start(path.clone())?)
            }
            Target::Memory(_) => None,
        };
        Ok(Box::new(writer::SqliteWriter::new(conn, checkpointer)))
    }

    fn search(&self, q: &EventQuery) -> Result<Vec<EventRow>, StoreError> {
        let (filter, mut params) = where_clause(q);
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events e {EVENT_JOINS} {filter} ORDER BY e.event_time DESC, e.id DESC");
        if let Some(limit) = q.limit {
            sql.push_str(" LIMIT ?");
            params.push(Value::Integer(limit as i64));
        }
        self.with_read(|c| {
            let mut stmt = c.prepare(&sql).context("prepare search")?;
            let rows = stmt
                .query_map(params_from_iter(params), event_row)
                .context("search events")?;
            rows.collect::<Result<Vec<_>, _>>()
                .context("read search results")
        })
    }

    fn event(&self, event_id: &str) -> Result<Option<EventRow>, StoreError> {
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM events e {EVENT_JOINS} WHERE e.event_id = ?");
        self.with_read(|c| {
            c.query_row(&sql, [event_id], event_row)
                .optional()
                .context("read event")
        })
    }

    fn top(
        &self,
        dimension: Dimension,
        q: &EventQuery,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let (filter, mut params) = where_clause(q);
        let (label, group) = match dimension {
            Dimension::EventName => ("name.value", "e.event_name"),
            Dimension::EventSource => ("src.value", "e.event_source"),
            Dimension::Principal => ("p.principal", "e.principal"),
            Dimension::SourceIp => ("e.source_ip", "e.source_ip"),
            Dimension::Account => ("acct.value", "e.account"),
            Dimension::Region => ("reg.value", "e.region"),
            Dimension::ErrorCode => ("err.value", "e.error_code"),
        };
        let sql = format!(
            "SELECT {label}, count(*) AS n FROM events e {EVENT_JOINS} {filter}
             {} {group} IS NOT NULL GROUP BY {group} ORDER BY n DESC, {label} LIMIT ?",
            if filter.is_empty() { "WHERE" } else { "AND" }
        );
        params.push(Value::Integer(limit as i64));
        self.with_read(|c| {
            let mut stmt = c.prepare(&sql).context("prepare top values")?;
            let rows = stmt
                .query_map(params_from_iter(params), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .context("count top values")?;
            rows.collect::<Result<Vec<_>, _>>()
                .context("read top values")
        })
    }

    fn ledger_entry(&self, bucket: &str, key: &str) -> Result<Option<LedgerEntry>, StoreError> {
        let sql = format!("SELECT {LEDGER_COLUMNS} FROM objects WHERE bucket = ? AND key = ? AND status != 'pending'");
        self.with_read(|c| {
            c.query_row(&sql, params![bucket, key], ledger_row)
                .optional()
                .context("read ledger")
        })
    }

    fn ledger_entries(&self, bucket: &str, prefix: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let sql = format!(
            "SELECT {LEDGER_COLUMNS} FROM objects WHERE bucket = ?1 AND status != 'pending'
             AND substr(key, 1, length(?2)) = ?2 ORDER BY key"
        );
        self.with_read(|c| {
            let mut stmt = c.prepare(&sql).context("prepare ledger listing")?;
            let rows = stmt
                .query_map(params![bucket, prefix], ledger_row)
                .context("list ledger")?;
            rows.collect::<Result<Vec<_>, _>>()
                .context("read ledger listing")
        })
    }

    fn quarantined(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        let sql = format!(
            "SELECT {LEDGER_COLUMNS} FROM objects WHERE status = 'quarantined' ORDER BY id"
        );
        self.with_read(|c| {
            let mut stmt = c.prepare(&sql).context("prepare quarantine listing")?;
            let rows = stmt.query_map([], ledger_row).context("list quarantine")?;
            rows.collect::<Result<Vec<_>, _>>()
                .context("read quarantine listing")
        })
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.with_read(|c| {
            let (events, oldest, newest): (i64, Option<i64>, Option<i64>) = c
                .query_row("SELECT count(*), min(event_time), max(event_time) FROM events", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .context("count events")?;
            let (committed, quarantined): (i64, i64) = c
                .query_row(
                    "SELECT count(*) FILTER (WHERE status = 'committed'), count(*) FILTER (WHERE status = 'quarantined') FROM objects",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .context("count objects")?;
            let principals: i64 =
                c.query_row("SELECT count(*) FROM principals", [], |r| r.get(0)).context("count principals")?;
            Ok(StoreStats {
                events: events as u64,
                objects_committed: committed as u64,
                objects_quarantined: quarantined as u64,
                oldest_event: oldest,
                newest_event: newest,
                principals: principals as u64,
            })
        })
    }
}
