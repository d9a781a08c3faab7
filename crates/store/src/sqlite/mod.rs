//! The embedded SQLite backend.

mod alerts;
mod auth;
mod columns;
mod idfilter;
mod integrity;
mod ops;
mod read;
mod retention;
mod rollups;
mod schema;
mod writer;

pub use read::PlanChoice;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use model::EpochMillis;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use crate::{
    Context, EventQuery, EventRow, EventStore, EventWriter, LedgerEntry, LedgerStatus, StateStore, StoreError,
};

/// Events in one SQLite file (WAL mode; readers never wait for the writer).
pub struct SqliteStore {
    target: Target,
    read: Mutex<Reader>,
    plan: PlanChoice,
}

/// The connection searches use, and the labels of ids it has read.
struct Reader {
    conn: Connection,
    labels: read::Labels,
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
        Self::at(Target::File(path.as_ref().to_path_buf()))
    }

    /// A private in-memory database that lives as long as this value.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let n = MEMORY_DBS.fetch_add(1, Ordering::Relaxed);
        Self::at(Target::Memory(format!("file:trailwatch-mem-{}-{n}?mode=memory&cache=shared", std::process::id())))
    }

    fn at(target: Target) -> Result<SqliteStore, StoreError> {
        if let Target::File(path) = &target {
            owner_only(path)?;
            // Refuse a newer schema before anything writes to the file (switching to WAL
            // alone rewrites its header): an older binary leaves a newer store untouched.
            if path.exists() {
                let peek =
                    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).context("open database")?;
                let found: i64 =
                    peek.query_row("PRAGMA user_version", [], |r| r.get(0)).context("read schema version")?;
                let supported = schema::MIGRATIONS.len() as i64;
                if found > supported {
                    return Err(StoreError::SchemaTooNew { found, supported });
                }
            }
        }
        let mut conn = target.connect()?;
        schema::migrate(&mut conn)?;
        let reader = Reader { conn, labels: read::Labels::default() };
        Ok(SqliteStore { target, read: Mutex::new(reader), plan: PlanChoice::Auto })
    }

    /// Forces a search plan (tests use this to check that both plans agree).
    /// Events and objects, counted (see [`crate::Store::stats`]).
    pub fn stats(&self) -> Result<crate::StoreStats, StoreError> {
        crate::stats(self, self)
    }

    pub fn with_plan(mut self, plan: PlanChoice) -> Self {
        self.plan = plan;
        self
    }

    /// The database file (`None` for in-memory stores).
    pub fn path(&self) -> Option<&Path> {
        match &self.target {
            Target::File(p) => Some(p),
            Target::Memory(_) => None,
        }
    }

    /// Copies the database, as it is at one instant, to a new file at `dest` with SQLite's
    /// online backup API: in one step, so the copy is one consistent snapshot (a multi-step
    /// backup restarts whenever ingest commits). In WAL mode the reader it holds does not
    /// stop the writer. Returns the copy's size in bytes.
    pub fn backup_to(&self, dest: &Path) -> Result<u64, StoreError> {
        let source = self.target.connect()?;
        owner_only(dest)?;
        let mut copy = Connection::open(dest).context("create the backup file")?;
        copy_whole(&source, &mut copy)?;
        // A file that stands alone: no WAL beside it.
        copy.pragma_update(None, "journal_mode", "DELETE").context("finish the backup file")?;
        verify(&copy)?;
        drop(copy);
        std::fs::metadata(dest)
            .map(|m| m.len())
            .map_err(|e| StoreError::Io { context: "read the backup's size", source: e })
    }

    /// Replaces this store's contents with the backup at `source` (checked first: it must be
    /// an intact trailwatch database of a schema this binary knows), through the backup API,
    /// so other connections see the old database or the new one, never a mix. The restored
    /// schema is brought up to date.
    pub fn restore_from(&self, source: &Path) -> Result<(), StoreError> {
        let from = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY).context("open the backup")?;
        verify(&from)?;
        let version: i64 =
            from.query_row("PRAGMA user_version", [], |r| r.get(0)).context("read backup schema version")?;
        let supported = schema::MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::SchemaTooNew { found: version, supported });
        }
        let mut into = self.target.connect()?;
        copy_whole(&from, &mut into)?;
        schema::migrate(&mut into)?;
        // The reader's cached labels describe the old contents.
        self.read.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).labels = read::Labels::default();
        Ok(())
    }

    fn with_read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let reader = self.read.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&reader.conn)
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection, &mut read::Labels) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut reader = self.read.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Reader { conn, labels } = &mut *reader;
        f(conn, labels)
    }
}

/// How long a backup or restore waits for a lock before giving up.
const BACKUP_PATIENCE: Duration = Duration::from_secs(300);

/// Copies database `from` over `into` with the online backup API, in one step (one
/// consistent instant), waiting while another connection holds a lock it needs.
fn copy_whole(from: &Connection, into: &mut Connection) -> Result<(), StoreError> {
    let backup = rusqlite::backup::Backup::new(from, into).context("start the copy")?;
    let started = std::time::Instant::now();
    loop {
        match backup.step(-1).context("copy the database")? {
            rusqlite::backup::StepResult::Done => return Ok(()),
            // Busy or locked: another connection holds a lock SQLite needs; wait.
            _ if started.elapsed() < BACKUP_PATIENCE => std::thread::sleep(Duration::from_millis(50)),
            _ => return Err(StoreError::Locked("the database stayed locked for 5 minutes; nothing was copied")),
        }
    }
}

/// An intact database that is a trailwatch store.
fn verify(conn: &Connection) -> Result<(), StoreError> {
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).context("check the database")?;
    if check != "ok" {
        return Err(StoreError::NotAStore(format!("integrity check failed: {check}")));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('blocks', 'event_ids', 'objects')",
            [],
            |r| r.get(0),
        )
        .context("read the schema")?;
    if tables != 3 {
        return Err(StoreError::NotAStore("it has no trailwatch event tables".into()));
    }
    Ok(())
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
                let big = std::fs::metadata(&wal).map(|m| m.len() >= CHECKPOINT_WAL_BYTES).unwrap_or(false);
                if big {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, "background WAL checkpoint failed");
                    }
                }
            })
            .expect("spawn checkpoint thread");
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
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

/// The store holds password hashes and every event: its file is created readable and
/// writable by its owner only (0600, whatever the umask), and SQLite creates the `-wal` and
/// `-shm` files beside it with the same mode. A file found open to others (made by an older
/// version under a 022 umask) is tightened, with a warning; where that is not allowed (not
/// its owner), only the warning.
pub fn owner_only(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StoreError::Io { context: "create the database file", source: e }),
    }
    for file in [path.to_path_buf(), suffixed(path, "-wal"), suffixed(path, "-shm")] {
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o077 != 0 {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700)) {
                Ok(()) => tracing::warn!(
                    file = %file.display(),
                    was = format!("{mode:04o}"),
                    "the store was readable by other users; now owner-only (0600)"
                ),
                Err(e) => tracing::warn!(
                    file = %file.display(),
                    mode = format!("{mode:04o}"),
                    error = %e,
                    "the store is readable by other users and cannot be changed: chmod 600 it"
                ),
            }
        }
    }
    Ok(())
}

/// The writer connection's page cache (readers keep SQLite's 64 MiB).
const WRITER_CACHE_KIB: i64 = 256 * 1024;

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
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
        conn.busy_timeout(Duration::from_secs(30)).context("set busy timeout")?;
        if let Target::File(_) = self {
            // Larger pages: fewer B-tree levels, splits and WAL frames for ~1 KB records. Only
            // takes effect when the database is created.
            conn.pragma_update(None, "page_size", 16384).context("set page size")?;
            // Retention frees pages; with INCREMENTAL they can be handed back to the file
            // system (`retention.rs`). Like page_size, it only takes effect on a new database,
            // and it is set only there: on an existing one it would queue for the write lock.
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).context("read page count")?;
            if pages == 0 {
                conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").context("set auto_vacuum")?;
            }
            conn.pragma_update(None, "journal_mode", "WAL").context("enable WAL")?;
            // FULL: a commit is on disk when it returns, so a source may acknowledge it.
            conn.pragma_update(None, "synchronous", "FULL").context("set synchronous")?;
            // Checkpoint in larger steps: fewer, bigger copies from the WAL while ingesting.
            conn.pragma_update(None, "wal_autocheckpoint", 8192).context("set wal_autocheckpoint")?;
        }
        conn.pragma_update(None, "cache_size", -65536).context("set cache size")?;
        conn.pragma_update(None, "temp_store", "MEMORY").context("set temp_store")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
}

pub(crate) use model::timefmt::now_millis;

/// Page cache of retention's short-lived connection (KiB).
const RETENTION_CACHE_KIB: i64 = 2048;

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
        status: if status == "quarantined" { LedgerStatus::Quarantined } else { LedgerStatus::Committed },
        reason: r.get(10)?,
        detail: r.get(11)?,
        recorded_at: r.get(12)?,
    })
}

const LEDGER_COLUMNS: &str = "source, bucket, key, size, object_sha256, content_sha256, records, new_events,
    duplicate_events, status, reason, detail, recorded_at";

impl EventStore for SqliteStore {
    fn writer(&self) -> Result<Box<dyn EventWriter>, StoreError> {
        let conn = self.target.connect()?;
        let checkpointer = match &self.target {
            Target::File(path) => {
                conn.pragma_update(None, "wal_autocheckpoint", 0).context("hand checkpoints to the checkpointer")?;
                Some(Checkpointer::start(path.clone())?)
            }
            Target::Memory(_) => None,
        };
        // The writer's pages (the indexes new events land in) are re-read and re-dirtied by
        // every group; a larger cache than the readers' keeps them (measured on 1 M events
        // into a 10 M store: 64 MiB read 6.3 GB back, 256 MiB 2.8 GB).
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB).context("set the writer's cache size")?;
        let filter_file = self.path().map(|p| suffixed(p, "-idfilter"));
        Ok(Box::new(writer::SqliteWriter::new(conn, checkpointer, filter_file)))
    }

    fn for_each_event(&self, q: &EventQuery, f: &mut dyn FnMut(EventRow) -> bool) -> Result<(), StoreError> {
        self.with_reader(|c, labels| read::for_each_event(c, labels, q, self.plan, f))
    }

    fn event(&self, event_id: &str) -> Result<Option<EventRow>, StoreError> {
        self.with_reader(|c, labels| read::event(c, labels, event_id))
    }

    fn resource_events(&self, resource: &str, since: i64, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        self.with_reader(|c, labels| read::resource_events(c, labels, resource, since, limit))
    }

    fn summarize(&self, query: &EventQuery, spec: &crate::SummarySpec) -> Result<crate::Summary, StoreError> {
        self.with_reader(|c, labels| read::summarize(c, labels, query, spec))
    }

    fn principals_related(&self, principal: &str, limit: usize) -> Result<Vec<crate::PrincipalInfo>, StoreError> {
        self.with_read(|c| {
            ops::all_with(
                c,
                "SELECT principal, kind, account_id, name, issuer, human, federation FROM principals
                 WHERE principal = ?1 OR issuer = ?1 OR human = ?1
                    OR human IN (SELECT human FROM principals WHERE principal = ?1 AND human IS NOT NULL)
                 ORDER BY principal = ?1 DESC, principal LIMIT ?2",
                params![principal, limit as i64],
                "read principals",
                |r| {
                    Ok(crate::PrincipalInfo {
                        principal: r.get(0)?,
                        kind: r.get(1)?,
                        account_id: r.get(2)?,
                        name: r.get(3)?,
                        issuer: r.get(4)?,
                        human: r.get(5)?,
                        federation: r.get(6)?,
                    })
                },
            )
        })
    }

    fn apply_retention(
        &self,
        policy: &crate::RetentionPolicy,
        now: EpochMillis,
        resume_after: Option<i64>,
        max_units: usize,
    ) -> Result<crate::RetentionReport, StoreError> {
        // Its own connection: the write lock is taken for one slice, never while reading.
        let mut conn = self.target.connect()?;
        // A pass opens one connection per slice and reads most pages once: the default 64 MB
        // cache would fill and be freed every slice, moving serve's memory by as much. The
        // small cache costs 1.2x on a whole pass (1 M events: 8.0 s vs 6.6 s, same run).
        conn.pragma_update(None, "cache_size", -RETENTION_CACHE_KIB).context("set retention cache size")?;
        retention::apply(&mut conn, policy, now, resume_after, max_units)
    }

    fn events_after(&self, position: i64, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        self.with_reader(|c, labels| read::events_after(c, labels, position, limit))
    }

    fn last_position(&self) -> Result<i64, StoreError> {
        self.with_read(|c| {
            let last: Option<(i64, i64)> = c
                .query_row("SELECT id, rows FROM blocks ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .context("read the last position")?;
            Ok(last.map_or(0, |(id, rows)| id << 24 | (rows - 1).max(0)))
        })
    }

    fn forward_cursor(&self, name: &str) -> Result<Option<crate::ForwardCursor>, StoreError> {
        self.with_read(|c| {
            c.query_row(
                "SELECT name, position, delivered, last_error, updated_at FROM forward_cursors WHERE name = ?1",
                [name],
                |r| {
                    Ok(crate::ForwardCursor {
                        name: r.get(0)?,
                        position: r.get(1)?,
                        delivered: r.get::<_, i64>(2)? as u64,
                        last_error: r.get(3)?,
                        updated_at: r.get(4)?,
                    })
                },
            )
            .optional()
            .context("read a forward cursor")
        })
    }

    fn save_forward_cursor(&self, cursor: &crate::ForwardCursor) -> Result<(), StoreError> {
        self.with_read(|c| {
            c.execute(
                "INSERT INTO forward_cursors (name, position, delivered, last_error, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, delivered = excluded.delivered,
                 last_error = excluded.last_error, updated_at = excluded.updated_at",
                rusqlite::params![cursor.name, cursor.position, cursor.delivered as i64, cursor.last_error, cursor.updated_at],
            )
            .map(|_| ())
            .context("save a forward cursor")
        })
    }

    fn storage(&self) -> Result<crate::StorageStats, StoreError> {
        self.with_read(|c| retention::storage(c, self.path()))
    }

    fn event_stats(&self) -> Result<crate::EventStats, StoreError> {
        self.with_read(|c| {
            let (events, oldest, newest): (i64, Option<i64>, Option<i64>) = c
                .query_row("SELECT coalesce(sum(rows), 0), min(min_time), max(max_time) FROM blocks", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .context("count events")?;
            let principals: i64 =
                c.query_row("SELECT count(*) FROM principals", [], |r| r.get(0)).context("count principals")?;
            Ok(crate::EventStats {
                events: events as u64,
                oldest_event: oldest,
                newest_event: newest,
                principals: principals as u64,
            })
        })
    }
}

impl StateStore for SqliteStore {
    fn ledger_entry(&self, bucket: &str, key: &str) -> Result<Option<LedgerEntry>, StoreError> {
        let sql = format!("SELECT {LEDGER_COLUMNS} FROM objects WHERE bucket = ? AND key = ?");
        self.with_read(|c| c.query_row(&sql, params![bucket, key], ledger_row).optional().context("read ledger"))
    }

    fn ledger_entries(&self, bucket: &str, prefix: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let sql = format!(
            "SELECT {LEDGER_COLUMNS} FROM objects WHERE bucket = ?1
             AND substr(key, 1, length(?2)) = ?2 ORDER BY key"
        );
        self.with_read(|c| {
            let mut stmt = c.prepare(&sql).context("prepare ledger listing")?;
            let rows = stmt.query_map(params![bucket, prefix], ledger_row).context("list ledger")?;
            rows.collect::<Result<Vec<_>, _>>().context("read ledger listing")
        })
    }

    fn quarantined(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        let sql = format!("SELECT {LEDGER_COLUMNS} FROM objects WHERE status = 'quarantined' ORDER BY id");
        self.with_read(|c| {
            let mut stmt = c.prepare(&sql).context("prepare quarantine listing")?;
            let rows = stmt.query_map([], ledger_row).context("list quarantine")?;
            rows.collect::<Result<Vec<_>, _>>().context("read quarantine listing")
        })
    }

    fn record_message_problem(&self, problem: &crate::MessageProblem) -> Result<(), StoreError> {
        self.with_read(|c| ops::record_message_problem(c, problem))
    }

    fn message_problems(&self) -> Result<Vec<crate::MessageProblem>, StoreError> {
        self.with_read(ops::message_problems)
    }

    fn clear_message_problem(&self, queue: &str, message_id: &str) -> Result<(), StoreError> {
        self.with_read(|c| ops::clear_message_problem(c, queue, message_id))
    }

    fn record_finding(&self, finding: &crate::IngestFinding) -> Result<(), StoreError> {
        self.with_read(|c| ops::record_finding(c, finding))
    }

    fn findings(&self) -> Result<Vec<crate::IngestFinding>, StoreError> {
        self.with_read(ops::findings)
    }

    fn record_digest(&self, digest: &crate::DigestSeen) -> Result<(), StoreError> {
        self.with_read(|c| ops::record_digest(c, digest))
    }

    fn digests_seen(&self) -> Result<Vec<crate::DigestSeen>, StoreError> {
        self.with_read(ops::digests_seen)
    }

    fn digests_seen_after(&self, seen_at: i64) -> Result<Vec<crate::DigestSeen>, StoreError> {
        self.with_read(|c| ops::digests_seen_after(c, seen_at))
    }

    fn put_integration_status(&self, status: &crate::IntegrationStatus) -> Result<(), StoreError> {
        self.with_read(|c| ops::put_integration_status(c, status))
    }

    fn integration_status(&self) -> Result<Vec<crate::IntegrationStatus>, StoreError> {
        self.with_read(ops::integration_status)
    }

    fn alerts(&self, filter: &crate::AlertFilter) -> Result<Vec<crate::Alert>, StoreError> {
        self.with_read(|c| alerts::alerts(c, filter))
    }

    fn alert(&self, id: i64) -> Result<Option<crate::Alert>, StoreError> {
        self.with_read(|c| alerts::alert(c, id))
    }

    fn alert_event_ids(&self, id: i64) -> Result<Vec<String>, StoreError> {
        self.with_read(|c| alerts::alert_event_ids(c, id))
    }

    fn set_alert_state(&self, id: i64, state: crate::AlertState, comment: Option<&str>) -> Result<bool, StoreError> {
        self.with_read(|c| alerts::set_state(c, id, state, comment, now_millis()))
    }

    fn rule_hits(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.with_read(alerts::rule_hits)
    }

    fn correlation_windows(&self) -> Result<Vec<crate::CorrelationWindow>, StoreError> {
        self.with_read(alerts::windows)
    }

    fn due_deliveries(&self, now: EpochMillis, limit: usize) -> Result<Vec<crate::Delivery>, StoreError> {
        self.with_read(|c| alerts::due(c, now, limit))
    }

    fn deliveries(&self, alert_id: i64) -> Result<Vec<crate::Delivery>, StoreError> {
        self.with_read(|c| alerts::deliveries(c, alert_id))
    }

    fn delivery_succeeded(&self, id: i64, at: EpochMillis) -> Result<(), StoreError> {
        self.with_read(|c| alerts::delivered(c, id, at))
    }

    fn delivery_failed(&self, id: i64, error: &str, next_attempt: EpochMillis) -> Result<(), StoreError> {
        self.with_read(|c| alerts::failed(c, id, error, next_attempt))
    }

    fn outbox_backlog(&self) -> Result<Vec<crate::Backlog>, StoreError> {
        self.with_read(alerts::backlog)
    }

    fn known_regions(&self) -> Result<Vec<crate::KnownRegion>, StoreError> {
        self.with_read(alerts::known_regions)
    }

    fn record_integrity_chains(&self, chains: &[crate::IntegrityChain]) -> Result<(), StoreError> {
        self.with_read(|c| integrity::record_chains(c, chains))
    }

    fn integrity_chains(&self) -> Result<Vec<crate::IntegrityChain>, StoreError> {
        self.with_read(integrity::chains)
    }

    fn record_integrity_findings(
        &self,
        findings: &[crate::IntegrityFinding],
    ) -> Result<Vec<crate::IntegrityFinding>, StoreError> {
        self.with_read(|c| integrity::record_findings(c, findings))
    }

    fn integrity_findings(&self) -> Result<Vec<crate::IntegrityFinding>, StoreError> {
        self.with_read(integrity::findings)
    }

    fn silences(&self) -> Result<Vec<crate::Silence>, StoreError> {
        self.with_read(integrity::silences)
    }

    fn set_silence(&self, silence: &crate::Silence) -> Result<(), StoreError> {
        self.with_read(|c| integrity::set_silence(c, silence))
    }

    fn clear_silence(&self, silence: &crate::Silence) -> Result<Option<crate::Silence>, StoreError> {
        self.with_read(|c| integrity::clear_silence(c, silence))
    }

    fn put_user(&self, user: &crate::User) -> Result<(), StoreError> {
        self.with_read(|c| auth::put_user(c, user))
    }

    fn create_first_user(&self, user: &crate::User) -> Result<bool, StoreError> {
        self.with_read(|c| auth::create_first_user(c, user))
    }

    fn user(&self, name: &str) -> Result<Option<crate::User>, StoreError> {
        self.with_read(|c| auth::user(c, name))
    }

    fn users(&self) -> Result<Vec<crate::User>, StoreError> {
        self.with_read(auth::users)
    }

    fn create_session(&self, session: &crate::Session) -> Result<(), StoreError> {
        self.with_read(|c| auth::create_session(c, session))
    }

    fn session(
        &self,
        token_hash: &[u8],
        now: EpochMillis,
    ) -> Result<Option<(crate::Session, crate::User)>, StoreError> {
        self.with_read(|c| auth::session(c, token_hash, now))
    }

    fn delete_session(&self, token_hash: &[u8], now: EpochMillis) -> Result<(), StoreError> {
        self.with_read(|c| auth::delete_session(c, token_hash, now))
    }

    fn create_api_token(&self, token: &crate::ApiToken) -> Result<i64, StoreError> {
        self.with_read(|c| auth::create_api_token(c, token))
    }

    fn use_api_token(
        &self,
        token_hash: &[u8],
        now: EpochMillis,
    ) -> Result<Option<(crate::ApiToken, crate::User)>, StoreError> {
        self.with_read(|c| auth::use_api_token(c, token_hash, now))
    }

    fn api_tokens(&self, user: Option<&str>) -> Result<Vec<crate::ApiToken>, StoreError> {
        self.with_read(|c| auth::api_tokens(c, user))
    }

    fn delete_api_token(&self, id: i64) -> Result<bool, StoreError> {
        self.with_read(|c| auth::delete_api_token(c, id))
    }

    fn revoke_api_tokens(&self, user: &str) -> Result<usize, StoreError> {
        self.with_read(|c| auth::revoke_api_tokens(c, user))
    }

    fn object_counts(&self) -> Result<crate::ObjectCounts, StoreError> {
        self.with_read(|c| {
            let (committed, quarantined): (i64, i64) = c
                .query_row(
                    "SELECT count(*) FILTER (WHERE status = 'committed'), count(*) FILTER (WHERE status = 'quarantined') FROM objects",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .context("count objects")?;
            Ok(crate::ObjectCounts { committed: committed as u64, quarantined: quarantined as u64 })
        })
    }
}

/// `eventID` as stored: a canonical lowercase UUID (what CloudTrail writes) as its 16 bytes,
/// anything else as text. Halves the key and makes its comparisons `memcmp`s; both forms
/// read back to the exact original string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum EventIdKey<'a> {
    Uuid([u8; 16]),
    Text(std::borrow::Cow<'a, str>),
}

impl EventIdKey<'_> {
    pub fn into_owned(self) -> EventIdKey<'static> {
        match self {
            EventIdKey::Uuid(b) => EventIdKey::Uuid(b),
            EventIdKey::Text(t) => EventIdKey::Text(std::borrow::Cow::Owned(t.into_owned())),
        }
    }
}

/// The records of a block's (or a frame's) raw bytes, with the store's dictionaries
/// (`raw_dictionaries`, read once per process).
pub(crate) fn unpack_raw(conn: &Connection, bytes: &[u8]) -> Result<Vec<String>, crate::UnpackError> {
    crate::batch::unpack_with(bytes, &mut |id| {
        if let Some(d) = crate::batch::known_dictionary(id) {
            return Ok(d);
        }
        let stored: Option<Vec<u8>> = conn
            .query_row("SELECT dict FROM raw_dictionaries WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .ok()
            .flatten();
        stored.and_then(crate::batch::register_dictionary).ok_or(crate::UnpackError::UnknownDictionary(id))
    })
}

/// The hour (since the epoch) an event's `event_ids` entry is filed under.
///
/// `event_ids` is keyed by (hour of eventTime, eventID): a trail's new events fall in the
/// current hours, so inserts touch a small, cached part of the index instead of random
/// pages of an index of every event ever stored — what made ingest slow down as the store
/// grew (300 k events: 3.5 s into an empty store, 10 s into one of 2 M). Dedupe stays by
/// eventID alone (`idfilter.rs` says when an id must be looked for in other hours); a
/// lookup by id alone asks each hour in the store.
pub(crate) fn event_hour(event_time: i64) -> i64 {
    event_time.div_euclid(3_600_000)
}

/// (block, row) of an event by its id alone: its hour is not known, so each hour in the
/// store is asked (a loose scan of the index: two seeks per hour).
pub(crate) fn find_event_id(conn: &Connection, key: &EventIdKey<'_>) -> Result<Option<(i64, i64)>, StoreError> {
    conn.prepare_cached(
        "WITH RECURSIVE hours(h) AS (
             SELECT (SELECT min(hour) FROM event_ids)
             UNION ALL
             SELECT (SELECT min(hour) FROM event_ids WHERE hour > hours.h) FROM hours WHERE hours.h IS NOT NULL)
         SELECT e.block, e.row FROM hours JOIN event_ids e ON e.hour = hours.h AND e.id = ?1 LIMIT 1",
    )
    .and_then(|mut s| s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
    .context("look up an event id")
}

pub(crate) fn event_id_key(id: &str) -> EventIdKey<'_> {
    let text = || EventIdKey::Text(std::borrow::Cow::Borrowed(id));
    let b = id.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return text();
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut hex = b.iter().filter(|&&c| c != b'-');
    while let (Some(&hi), Some(&lo)) = (hex.next(), hex.next()) {
        match (lower_hex(hi), lower_hex(lo), out.get_mut(n)) {
            (Some(h), Some(l), Some(slot)) => *slot = h << 4 | l,
            _ => return text(),
        }
        n += 1;
    }
    if n == 16 {
        EventIdKey::Uuid(out)
    } else {
        text()
    }
}

impl rusqlite::ToSql for EventIdKey<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            EventIdKey::Uuid(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            EventIdKey::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
        })
    }
}

impl rusqlite::types::FromSql for EventIdKey<'static> {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        use rusqlite::types::{FromSqlError, ValueRef};
        match v {
            ValueRef::Blob(b) => b
                .try_into()
                .map(EventIdKey::Uuid)
                .map_err(|_| FromSqlError::InvalidBlobSize { expected_size: 16, blob_size: b.len() }),
            ValueRef::Text(t) => Ok(EventIdKey::Text(std::borrow::Cow::Owned(String::from_utf8_lossy(t).into_owned()))),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// Reads back an eventID stored as an [`EventIdKey`].
pub(crate) fn event_id_text(v: rusqlite::types::ValueRef<'_>) -> rusqlite::Result<String> {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Blob(b) if b.len() == 16 => {
            let mut out = String::with_capacity(36);
            for (i, byte) in b.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    out.push('-');
                }
                out.push_str(&format!("{byte:02x}"));
            }
            Ok(out)
        }
        ValueRef::Text(t) => Ok(String::from_utf8_lossy(t).into_owned()),
        other => Err(rusqlite::Error::FromSqlConversionFailure(0, other.data_type(), "not an eventID".into())),
    }
}

fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Different ids never share a key (UUIDs are stored as bytes, others as text).
        #[test]
        fn event_id_keys_are_injective(a in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9A-Fa-f-]{36}|\\PC{0,40}",
                                         b in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\\PC{0,40}") {
            prop_assert_eq!(event_id_key(&a) == event_id_key(&b), a == b);
        }
    }

    #[test]
    fn event_id_keys_read_back() {
        for id in ["0b3bd0c9-2a55-4a0f-9d4b-4a7e0c4d5e6f", "not-a-uuid", "0B3BD0C9-2A55-4A0F-9D4B-4A7E0C4D5E6F"] {
            let key = event_id_key(id);
            let back = match &key {
                EventIdKey::Uuid(b) => event_id_text(rusqlite::types::ValueRef::Blob(b)),
                EventIdKey::Text(t) => event_id_text(rusqlite::types::ValueRef::Text(t.as_bytes())),
            };
            assert_eq!(back.unwrap(), id);
        }
    }

    #[test]
    fn canonical_uuids_are_compact() {
        assert!(matches!(event_id_key("c7d8bb11-2e50-4bf0-aaa8-dec2031c53fa"), EventIdKey::Uuid(_)));
        assert!(matches!(event_id_key("C7D8BB11-2E50-4BF0-AAA8-DEC2031C53FA"), EventIdKey::Text(_)));
        assert!(matches!(event_id_key("1111"), EventIdKey::Text(_)));
    }
}
