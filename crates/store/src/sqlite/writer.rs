//! The SQLite [`EventWriter`]: group commit of objects, one savepoint per object.
//!
//! A transaction (`BEGIN IMMEDIATE`) is opened by the first `begin_object` and spans every
//! object until `commit`. Each object lives in `SAVEPOINT object`: `finish_object` releases
//! it into the transaction, `quarantine_object` rolls it back and records the reason. So a
//! commit makes a group of whole objects durable at once, and a crash (or a `Drop` without
//! commit) loses whole objects only — never part of one.
//!
//! Dictionary and principal ids are cached in memory. A rollback can remove rows those
//! caches point at, so every rollback clears the caches.

use std::collections::HashMap;

use model::ParsedEvent;
use rusqlite::{params, Connection};

use super::now_millis;
use super::schema::kind;
use crate::{Context, EventWriter, InsertCounts, ObjectMeta, ObjectTotals, StoreError};

/// Bound on each in-memory id cache; past it the cache starts over (ids stay in the DB).
const CACHE_LIMIT: usize = 100_000;

pub(crate) struct SqliteWriter {
    conn: Connection,
    in_tx: bool,
    object: Option<OpenObject>,
    dict: Vec<HashMap<Box<str>, i64>>,
    principals: HashMap<Box<str>, i64>,
    pending_events: u64,
}

struct OpenObject {
    ledger_id: i64,
    counts: InsertCounts,
}

impl SqliteWriter {
    pub(crate) fn new(conn: Connection) -> SqliteWriter {
        SqliteWriter {
            conn,
            in_tx: false,
            object: None,
            dict: vec![HashMap::new(); kind::COUNT],
            principals: HashMap::new(),
            pending_events: 0,
        }
    }

    fn ensure_transaction(&mut self) -> Result<(), StoreError> {
        if !self.in_tx {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .context("begin write transaction")?;
            self.in_tx = true;
        }
        Ok(())
    }

    fn forget_caches(&mut self) {
        self.dict.iter_mut().for_each(HashMap::clear);
        self.principals.clear();
    }

    fn insert_one(&mut self, e: &ParsedEvent, object_id: i64) -> Result<bool, StoreError> {
        let conn = &self.conn;
        let mut d =
            |k: u8, v: &Option<String>| dict_id(conn, &mut self.dict[k as usize], k, v.as_deref());
        let event_source = d(kind::EVENT_SOURCE, &e.event_source)?;
        let event_name = d(kind::EVENT_NAME, &e.event_name)?;
        let account = d(kind::ACCOUNT, &e.recipient_account_id)?;
        let region = d(kind::REGION, &e.aws_region)?;
        let error_code = d(kind::ERROR_CODE, &e.error_code)?;
        let event_type = d(kind::EVENT_TYPE, &e.event_type)?;
        let category = d(kind::CATEGORY, &e.event_category)?;
        let user_agent = d(kind::USER_AGENT, &e.user_agent)?;
        let principal = principal_id(conn, &mut self.principals, e)?;
        let a = &e.actor;
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO events (event_id, event_time, event_source, event_name, account, region,
                    principal, source_ip, error_code, event_type, category, read_only, management,
                    user_agent, access_key_id, mfa, console, object_id, raw)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .context("prepare event insert")?;
        let changed = stmt
            .execute(params![
                e.event_id,
                e.event_time,
                event_source,
                event_name,
                account,
                region,
                principal,
                e.source_ip,
                error_code,
                event_type,
                category,
                e.read_only,
                e.management_event,
                user_agent,
                a.access_key_id,
                a.mfa,
                a.console,
                object_id,
                e.raw,
            ])
            .context("insert event")?;
        Ok(changed == 1)
    }
}

impl EventWriter for SqliteWriter {
    fn begin_object(&mut self, object: &ObjectMeta) -> Result<(), StoreError> {
        if self.object.is_some() {
            return Err(StoreError::ObjectInProgress(object.key.clone()));
        }
        self.ensure_transaction()?;
        self.conn
            .execute_batch("SAVEPOINT object")
            .context("open object savepoint")?;
        let ledger_id: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO objects (source, bucket, key, size, status, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5)
                 ON CONFLICT (bucket, key) DO UPDATE SET source = excluded.source, size = excluded.size,
                    status = 'pending', reason = NULL, detail = NULL
                 RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![object.source, object.bucket, object.key, object.size as i64, now_millis()],
                    |r| r.get(0),
                )
            })
            .context("write pending ledger row")?;
        self.object = Some(OpenObject {
            ledger_id,
            counts: InsertCounts::default(),
        });
        Ok(())
    }

    fn insert(&mut self, events: &[ParsedEvent]) -> Result<InsertCounts, StoreError> {
        let ledger_id = self
            .object
            .as_ref()
            .ok_or(StoreError::NoObject("insert"))?
            .ledger_id;
        let mut counts = InsertCounts::default();
        for e in events {
            if self.insert_one(e, ledger_id)? {
                counts.new += 1;
            } else {
                counts.duplicates += 1;
            }
        }
        self.pending_events += events.len() as u64;
        if let Some(o) = self.object.as_mut() {
            o.counts += counts;
        }
        Ok(counts)
    }

    fn finish_object(&mut self, totals: &ObjectTotals) -> Result<InsertCounts, StoreError> {
        let object = self
            .object
            .take()
            .ok_or(StoreError::NoObject("finish_object"))?;
        self.conn
            .prepare_cached(
                "UPDATE objects SET status = 'committed', records = ?1, new_events = ?2, duplicate_events = ?3,
                    object_sha256 = ?4, content_sha256 = ?5, content_bytes = ?6, recorded_at = ?7
                 WHERE id = ?8",
            )
            .and_then(|mut s| {
                s.execute(params![
                    totals.records as i64,
                    object.counts.new as i64,
                    object.counts.duplicates as i64,
                    totals.object_sha256,
                    totals.content_sha256,
                    totals.content_bytes.map(|b| b as i64),
                    now_millis(),
                    object.ledger_id,
                ])
            })
            .context("write committed ledger row")?;
        self.conn
            .execute_batch("RELEASE object")
            .context("release object savepoint")?;
        Ok(object.counts)
    }

    fn quarantine_object(
        &mut self,
        object: &ObjectMeta,
        reason: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.abort_object()?;
        self.ensure_transaction()?;
        self.conn
            .prepare_cached(
                "INSERT INTO objects (source, bucket, key, size, status, reason, detail, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, 'quarantined', ?5, ?6, ?7)
                 ON CONFLICT (bucket, key) DO UPDATE SET source = excluded.source, size = excluded.size,
                    status = 'quarantined', reason = excluded.reason, detail = excluded.detail,
                    records = 0, new_events = 0, duplicate_events = 0, recorded_at = excluded.recorded_at",
            )
            .and_then(|mut s| {
                s.execute(params![object.source, object.bucket, object.key, object.size as i64, reason, detail, now_millis()])
            })
            .context("write quarantine ledger row")?;
        Ok(())
    }

    fn abort_object(&mut self) -> Result<(), StoreError> {
        if let Some(open) = self.object.take() {
            self.pending_events -= open.counts.new + open.counts.duplicates;
            self.conn
                .execute_batch("ROLLBACK TO object; RELEASE object")
                .context("roll back object")?;
            self.forget_caches();
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if self.object.is_some() {
            return Err(StoreError::ObjectInProgress("commit".into()));
        }
        if self.in_tx {
            if let Err(e) = self.conn.execute_batch("COMMIT") {
                self.in_tx = !self.conn.is_autocommit();
                if self.in_tx {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.in_tx = false;
                }
                self.forget_caches();
                self.pending_events = 0;
                return Err(StoreError::Sqlite {
                    context: "commit",
                    source: e,
                });
            }
            self.in_tx = false;
        }
        self.pending_events = 0;
        Ok(())
    }

    fn pending_events(&self) -> u64 {
        self.pending_events
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        // Uncommitted work is abandoned on purpose: nothing was acknowledged for it.
        if self.in_tx {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

fn dict_id(
    conn: &Connection,
    cache: &mut HashMap<Box<str>, i64>,
    kind: u8,
    value: Option<&str>,
) -> Result<Option<i64>, StoreError> {
    let Some(value) = value else { return Ok(None) };
    if let Some(&id) = cache.get(value) {
        return Ok(Some(id));
    }
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO dict (kind, value) VALUES (?1, ?2)
             ON CONFLICT (kind, value) DO UPDATE SET kind = excluded.kind RETURNING id",
        )
        .and_then(|mut s| s.query_row(params![kind, value], |r| r.get(0)))
        .context("intern dictionary value")?;
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(value.into(), id);
    Ok(Some(id))
}

fn principal_id(
    conn: &Connection,
    cache: &mut HashMap<Box<str>, i64>,
    e: &ParsedEvent,
) -> Result<i64, StoreError> {
    let a = &e.actor;
    if let Some(&id) = cache.get(a.principal.as_str()) {
        return Ok(id);
    }
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO principals (principal, kind, account_id, name, issuer, human, federation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (principal) DO UPDATE SET
                account_id = coalesce(principals.account_id, excluded.account_id),
                name = coalesce(principals.name, excluded.name),
                issuer = coalesce(principals.issuer, excluded.issuer),
                human = coalesce(principals.human, excluded.human),
                federation = coalesce(principals.federation, excluded.federation)
             RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    a.principal,
                    a.kind.as_str(),
                    a.account_id,
                    a.name,
                    a.issuer,
                    a.human,
                    a.federation.map(|f| f.as_str()),
                ],
                |r| r.get(0),
            )
        })
        .context("intern principal")?;
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(a.principal.as_str().into(), id);
    Ok(id)
}
