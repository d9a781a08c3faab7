//! Operational state, integrity state, users and sessions: the same statements as the
//! SQLite backend's, in PostgreSQL's dialect.

use super::{all, pg, PgState};
use crate::auth::{ApiToken, Role, User};
use crate::integrity::Silence;
use crate::ops::DigestSeen;
use crate::StoreError;

pub(super) fn digest_row(r: &postgres::Row) -> Result<DigestSeen, postgres::Error> {
    Ok(DigestSeen {
        account: r.try_get(0)?,
        bucket: r.try_get(1)?,
        key: r.try_get(2)?,
        size: r.try_get::<_, Option<i64>>(3)?.map(|s| s as u64),
        seen_at: r.try_get(4)?,
    })
}

pub(super) fn user_row(r: &postgres::Row, at: usize) -> Result<User, postgres::Error> {
    let role: String = r.try_get(at + 1)?;
    Ok(User {
        name: r.try_get(at)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        password_hash: r.try_get(at + 2)?,
        created_at: r.try_get(at + 3)?,
        updated_at: r.try_get(at + 4)?,
    })
}

pub(super) fn token_row(r: &postgres::Row) -> Result<ApiToken, postgres::Error> {
    Ok(ApiToken {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        user: r.try_get(2)?,
        token_hash: r.try_get(3)?,
        created_at: r.try_get(4)?,
        last_used: r.try_get(5)?,
        expires_at: r.try_get(6)?,
    })
}

pub(super) const TOKEN_COLUMNS: &str = "id, name, \"user\", token_hash, created_at, last_used, expires_at";

pub(super) fn silence_row(r: &postgres::Row) -> Result<Silence, postgres::Error> {
    Ok(Silence {
        account: r.try_get(0)?,
        account_id: r.try_get(1)?,
        region: r.try_get(2)?,
        what: r.try_get(3)?,
        since: r.try_get(4)?,
        alert_id: r.try_get(5)?,
    })
}

pub(super) const USER_COLUMNS: &str = "name, role, password_hash, created_at, updated_at";

impl PgState {
    /// Every event id an alert refers to (retention keeps these events).
    /// Hours in `[from, to]` marked since they were last counted, each with its newest
    /// mark, oldest hour first.
    pub(crate) fn marked_hours(&self, from: i64, to: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        self.with(|c| marked_hours(c, from, to))
    }

    /// Marks `hours` to be counted again (retention deleted events from them).
    pub(crate) fn mark_hours(&self, hours: &[i64]) -> Result<(), StoreError> {
        self.with(|c| super::mark_hours(c, hours))
    }

    /// Counts `hours` again with `count(hours, version)`, one recount of an hour at a time
    /// whichever process asks: under an advisory lock per hour, the hours' marks are read
    /// again (an hour another process counted meanwhile is left out), `count` runs with a
    /// version no recount had, and the marks it covered are cleared when it has returned.
    /// A mark added meanwhile stays, and its hour is counted again.
    pub(crate) fn recount_hours(
        &self,
        hours: &[i64],
        count: impl FnOnce(&[i64], i64) -> Result<(), StoreError> + Send,
    ) -> Result<(), StoreError> {
        let (Some(&first), Some(&last)) = (hours.first(), hours.last()) else { return Ok(()) };
        self.with(|c| {
            let mut tx = c.transaction().map_err(pg("begin a recount"))?;
            // Hour numbers fit an int4 lock key until the year 245,000.
            let keys: Vec<i32> = hours.iter().map(|h| (h / 3_600_000) as i32).collect();
            super::alerts::lock_in_order(&mut tx, super::LOCK_HOUR_COUNT, keys).map_err(pg("lock hours to count"))?;
            let marked: Vec<(i64, i64)> =
                marked_hours(&mut tx, first, last)?.into_iter().filter(|(h, _)| hours.contains(h)).collect();
            if marked.is_empty() {
                return Ok(());
            }
            let version: i64 =
                tx.query_one("SELECT nextval('hour_count_versions')", &[]).map_err(pg("take a count version"))?.get(0);
            let todo: Vec<i64> = marked.iter().map(|m| m.0).collect();
            count(&todo, version)?;
            let (h, seq): (Vec<i64>, Vec<i64>) = marked.into_iter().unzip();
            tx.execute(
                "DELETE FROM hour_marks m USING unnest($1::bigint[], $2::bigint[]) AS d(hour, seq)
                 WHERE m.hour = d.hour AND m.seq <= d.seq",
                &[&h, &seq],
            )
            .map_err(pg("clear hours counted"))?;
            tx.commit().map_err(pg("commit a recount"))
        })
    }

    pub fn kept_event_ids(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| all(c, "SELECT DISTINCT event_id FROM alert_events", &[], "read alert events", |r| r.try_get(0)))
    }

    /// Drops ledger rows of committed objects and digests seen before `cutoff`; returns the
    /// ledger rows dropped.
    pub fn prune_bookkeeping(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.with(|c| {
            let n = c
                .execute("DELETE FROM objects WHERE status = 'committed' AND recorded_at < $1", &[&cutoff])
                .map_err(pg("prune ledger"))?;
            c.execute("DELETE FROM digests_seen WHERE seen_at < $1", &[&cutoff]).map_err(pg("prune digests seen"))?;
            Ok(n)
        })
    }

    pub fn database_bytes(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            let r =
                c.query_one("SELECT pg_database_size(current_database())", &[]).map_err(pg("read database size"))?;
            Ok(r.try_get::<_, i64>(0).map_err(pg("read database size"))? as u64)
        })
    }
}

fn marked_hours(c: &mut impl postgres::GenericClient, from: i64, to: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    let rows = c
        .query(
            "SELECT hour, max(seq) FROM hour_marks WHERE hour >= $1 AND hour <= $2 GROUP BY hour ORDER BY hour",
            &[&from, &to],
        )
        .map_err(pg("read hours to count"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
