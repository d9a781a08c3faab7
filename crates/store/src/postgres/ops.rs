//! Operational state, integrity state, users and sessions: the same statements as the
//! SQLite backend's, in PostgreSQL's dialect.

use super::{all, pg, PgState};
use crate::auth::{ApiToken, Role, Session, User};
use crate::integrity::{IntegrityChain, IntegrityFinding, Silence};
use crate::ops::{DigestSeen, IngestFinding, IntegrationStatus, MessageProblem};
use crate::StoreError;

fn digest_row(r: &postgres::Row) -> Result<DigestSeen, postgres::Error> {
    Ok(DigestSeen {
        account: r.try_get(0)?,
        bucket: r.try_get(1)?,
        key: r.try_get(2)?,
        size: r.try_get::<_, Option<i64>>(3)?.map(|s| s as u64),
        seen_at: r.try_get(4)?,
    })
}

fn user_row(r: &postgres::Row, at: usize) -> Result<User, postgres::Error> {
    let role: String = r.try_get(at + 1)?;
    Ok(User {
        name: r.try_get(at)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        password_hash: r.try_get(at + 2)?,
        created_at: r.try_get(at + 3)?,
        updated_at: r.try_get(at + 4)?,
    })
}

fn token_row(r: &postgres::Row) -> Result<ApiToken, postgres::Error> {
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

const TOKEN_COLUMNS: &str = "id, name, \"user\", token_hash, created_at, last_used, expires_at";

fn silence_row(r: &postgres::Row) -> Result<Silence, postgres::Error> {
    Ok(Silence {
        account: r.try_get(0)?,
        account_id: r.try_get(1)?,
        region: r.try_get(2)?,
        what: r.try_get(3)?,
        since: r.try_get(4)?,
        alert_id: r.try_get(5)?,
    })
}

const USER_COLUMNS: &str = "name, role, password_hash, created_at, updated_at";

impl PgState {
    /// Every event id an alert refers to (retention keeps these events).
    pub fn kept_event_ids(&self) -> Result<Vec<String>, StoreError> {
        all(&mut *self.conn()?, "SELECT DISTINCT event_id FROM alert_events", &[], "read alert events", |r| {
            r.try_get(0)
        })
    }

    /// Drops ledger rows of committed objects and digests seen before `cutoff`; returns the
    /// ledger rows dropped.
    pub fn prune_bookkeeping(&self, cutoff: i64) -> Result<u64, StoreError> {
        let mut c = self.conn()?;
        let n = c
            .execute("DELETE FROM objects WHERE status = 'committed' AND recorded_at < $1", &[&cutoff])
            .map_err(pg("prune ledger"))?;
        c.execute("DELETE FROM digests_seen WHERE seen_at < $1", &[&cutoff]).map_err(pg("prune digests seen"))?;
        Ok(n)
    }

    pub fn database_bytes(&self) -> Result<u64, StoreError> {
        let r = self
            .conn()?
            .query_one("SELECT pg_database_size(current_database())", &[])
            .map_err(pg("read database size"))?;
        Ok(r.try_get::<_, i64>(0).map_err(pg("read database size"))? as u64)
    }

    pub fn record_message_problem(&self, p: &MessageProblem) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO message_problems (queue, message_id, reason, detail, body, receive_count, first_seen, last_seen)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (queue, message_id) DO UPDATE SET reason = $3, detail = $4,
                     receive_count = greatest(message_problems.receive_count, $6), last_seen = $8",
                &[
                    &p.queue,
                    &p.message_id,
                    &p.reason,
                    &p.detail,
                    &p.stored_body(),
                    &i64::from(p.receive_count),
                    &p.first_seen,
                    &p.last_seen,
                ],
            )
            .map_err(pg("record message problem"))?;
        Ok(())
    }

    pub fn message_problems(&self) -> Result<Vec<MessageProblem>, StoreError> {
        let sql = "SELECT queue, message_id, reason, detail, body, receive_count, first_seen, last_seen
                   FROM message_problems ORDER BY last_seen DESC, message_id";
        all(&mut *self.conn()?, sql, &[], "list message problems", |r| {
            Ok(MessageProblem {
                queue: r.try_get(0)?,
                message_id: r.try_get(1)?,
                reason: r.try_get(2)?,
                detail: r.try_get(3)?,
                body: r.try_get(4)?,
                receive_count: r.try_get::<_, i64>(5)? as u32,
                first_seen: r.try_get(6)?,
                last_seen: r.try_get(7)?,
            })
        })
    }

    pub fn clear_message_problem(&self, queue: &str, message_id: &str) -> Result<(), StoreError> {
        self.conn()?
            .execute("DELETE FROM message_problems WHERE queue = $1 AND message_id = $2", &[&queue, &message_id])
            .map_err(pg("clear message problem"))?;
        Ok(())
    }

    pub fn record_finding(&self, f: &IngestFinding) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO ingest_findings (kind, account, bucket, key, detail, first_seen, last_seen, occurrences)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1)
                 ON CONFLICT (kind, bucket, key) DO UPDATE SET detail = $5, last_seen = $7,
                     occurrences = ingest_findings.occurrences + 1",
                &[&f.kind, &f.account, &f.bucket, &f.key, &f.detail, &f.first_seen, &f.last_seen],
            )
            .map_err(pg("record ingest finding"))?;
        Ok(())
    }

    pub fn findings(&self) -> Result<Vec<IngestFinding>, StoreError> {
        let sql = "SELECT kind, account, bucket, key, detail, first_seen, last_seen, occurrences
                   FROM ingest_findings ORDER BY first_seen, key";
        all(&mut *self.conn()?, sql, &[], "list findings", |r| {
            Ok(IngestFinding {
                kind: r.try_get(0)?,
                account: r.try_get(1)?,
                bucket: r.try_get(2)?,
                key: r.try_get(3)?,
                detail: r.try_get(4)?,
                first_seen: r.try_get(5)?,
                last_seen: r.try_get(6)?,
                occurrences: r.try_get::<_, i64>(7)? as u64,
            })
        })
    }

    pub fn record_digest(&self, d: &DigestSeen) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO digests_seen (account, bucket, key, size, seen_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (bucket, key) DO NOTHING",
                &[&d.account, &d.bucket, &d.key, &d.size.map(|s| s as i64), &d.seen_at],
            )
            .map_err(pg("record digest"))?;
        Ok(())
    }

    pub fn digests_seen(&self) -> Result<Vec<DigestSeen>, StoreError> {
        let sql = "SELECT account, bucket, key, size, seen_at FROM digests_seen ORDER BY bucket, key";
        all(&mut *self.conn()?, sql, &[], "list digests", digest_row)
    }

    pub fn digests_seen_after(&self, seen_at: i64) -> Result<Vec<DigestSeen>, StoreError> {
        let sql = "SELECT account, bucket, key, size, seen_at FROM digests_seen WHERE seen_at > $1 ORDER BY seen_at";
        all(&mut *self.conn()?, sql, &[&seen_at], "list new digests", digest_row)
    }

    pub fn put_integration_status(&self, s: &IntegrationStatus) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO integration_status (account, region, last_notification, last_validation, last_object,
                     newest_event, notifications, objects, events, last_error, last_error_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (account, region) DO UPDATE SET last_notification = excluded.last_notification,
                     last_validation = excluded.last_validation, last_object = excluded.last_object,
                     newest_event = excluded.newest_event, notifications = excluded.notifications,
                     objects = excluded.objects, events = excluded.events, last_error = excluded.last_error,
                     last_error_at = excluded.last_error_at, updated_at = excluded.updated_at",
                &[
                    &s.account,
                    &s.region,
                    &s.last_notification,
                    &s.last_validation,
                    &s.last_object,
                    &s.newest_event,
                    &(s.notifications as i64),
                    &(s.objects as i64),
                    &(s.events as i64),
                    &s.last_error,
                    &s.last_error_at,
                    &s.updated_at,
                ],
            )
            .map_err(pg("store integration status"))?;
        Ok(())
    }

    pub fn integration_status(&self) -> Result<Vec<IntegrationStatus>, StoreError> {
        let sql = "SELECT account, region, last_notification, last_validation, last_object, newest_event,
                     notifications, objects, events, last_error, last_error_at, updated_at
                   FROM integration_status ORDER BY account, region";
        all(&mut *self.conn()?, sql, &[], "list integration status", |r| {
            Ok(IntegrationStatus {
                account: r.try_get(0)?,
                region: r.try_get(1)?,
                last_notification: r.try_get(2)?,
                last_validation: r.try_get(3)?,
                last_object: r.try_get(4)?,
                newest_event: r.try_get(5)?,
                notifications: r.try_get::<_, i64>(6)? as u64,
                objects: r.try_get::<_, i64>(7)? as u64,
                events: r.try_get::<_, i64>(8)? as u64,
                last_error: r.try_get(9)?,
                last_error_at: r.try_get(10)?,
                updated_at: r.try_get(11)?,
            })
        })
    }

    pub fn record_integrity_chains(&self, chains: &[IntegrityChain]) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(pg("start recording chains"))?;
        for ch in chains {
            tx.execute(
                "INSERT INTO integrity_chains (account, account_id, region, trail, newest_key, newest_end, newest_log, verified_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (account, account_id, region, trail) DO UPDATE SET
                    newest_key = CASE WHEN coalesce(excluded.newest_end, 0) >= coalesce(integrity_chains.newest_end, 0)
                                 THEN coalesce(excluded.newest_key, integrity_chains.newest_key)
                                 ELSE integrity_chains.newest_key END,
                    newest_end = greatest(integrity_chains.newest_end, excluded.newest_end),
                    newest_log = greatest(integrity_chains.newest_log, excluded.newest_log),
                    verified_at = excluded.verified_at",
                &[
                    &ch.account,
                    &ch.account_id,
                    &ch.region,
                    &ch.trail,
                    &ch.newest_key,
                    &ch.newest_end,
                    &ch.newest_log,
                    &ch.verified_at,
                ],
            )
            .map_err(pg("record chain"))?;
        }
        tx.commit().map_err(pg("commit chains"))
    }

    pub fn integrity_chains(&self) -> Result<Vec<IntegrityChain>, StoreError> {
        let sql = "SELECT account, account_id, region, trail, newest_key, newest_end, newest_log, verified_at
                   FROM integrity_chains ORDER BY account, region, trail";
        all(&mut *self.conn()?, sql, &[], "list integrity chains", |r| {
            Ok(IntegrityChain {
                account: r.try_get(0)?,
                account_id: r.try_get(1)?,
                region: r.try_get(2)?,
                trail: r.try_get(3)?,
                newest_key: r.try_get(4)?,
                newest_end: r.try_get(5)?,
                newest_log: r.try_get(6)?,
                verified_at: r.try_get(7)?,
            })
        })
    }

    pub fn record_integrity_findings(
        &self,
        findings: &[IntegrityFinding],
    ) -> Result<Vec<IntegrityFinding>, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(pg("start recording findings"))?;
        let mut fresh = Vec::new();
        for f in findings {
            let inserted = tx
                .execute(
                    "INSERT INTO integrity_findings (account, kind, key, detail, first_seen, last_seen)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&f.account, &f.kind, &f.key, &f.detail, &f.first_seen, &f.last_seen],
                )
                .map_err(pg("record finding"))?;
            if inserted == 1 {
                fresh.push(f.clone());
            } else {
                tx.execute(
                    "UPDATE integrity_findings SET last_seen = greatest(last_seen, $4), detail = $5
                     WHERE account = $1 AND kind = $2 AND key = $3",
                    &[&f.account, &f.kind, &f.key, &f.last_seen, &f.detail],
                )
                .map_err(pg("update finding"))?;
            }
        }
        tx.commit().map_err(pg("commit findings"))?;
        Ok(fresh)
    }

    pub fn integrity_findings(&self) -> Result<Vec<IntegrityFinding>, StoreError> {
        let sql = "SELECT account, kind, key, detail, first_seen, last_seen FROM integrity_findings
                   ORDER BY last_seen DESC, account, key, kind";
        all(&mut *self.conn()?, sql, &[], "list integrity findings", |r| {
            Ok(IntegrityFinding {
                account: r.try_get(0)?,
                kind: r.try_get(1)?,
                key: r.try_get(2)?,
                detail: r.try_get(3)?,
                first_seen: r.try_get(4)?,
                last_seen: r.try_get(5)?,
            })
        })
    }

    pub fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        let sql = "SELECT account, account_id, region, what, since, alert_id FROM integrity_silences
                   ORDER BY account, account_id, region, what";
        all(&mut *self.conn()?, sql, &[], "list silences", silence_row)
    }

    pub fn set_silence(&self, s: &Silence) -> Result<(), StoreError> {
        self.conn()?
            .execute(
                "INSERT INTO integrity_silences (account, account_id, region, what, since, alert_id)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (account, account_id, region, what) DO UPDATE SET since = excluded.since,
                     alert_id = excluded.alert_id",
                &[&s.account, &s.account_id, &s.region, &s.what, &s.since, &s.alert_id],
            )
            .map_err(pg("record silence"))?;
        Ok(())
    }

    pub fn clear_silence(&self, s: &Silence) -> Result<Option<Silence>, StoreError> {
        Ok(all(
            &mut *self.conn()?,
            "DELETE FROM integrity_silences WHERE account = $1 AND account_id = $2 AND region = $3 AND what = $4
             RETURNING account, account_id, region, what, since, alert_id",
            &[&s.account, &s.account_id, &s.region, &s.what],
            "clear silence",
            silence_row,
        )?
        .pop())
    }

    pub fn put_user(&self, user: &User) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(pg("start writing a user"))?;
        tx.execute(
            "INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash,
                updated_at = excluded.updated_at",
            &[&user.name, &user.role.as_str(), &user.password_hash, &user.created_at, &user.updated_at],
        )
        .map_err(pg("write user"))?;
        tx.execute("DELETE FROM sessions WHERE \"user\" = $1", &[&user.name])
            .map_err(pg("end the sessions of a reset user"))?;
        tx.commit().map_err(pg("commit user"))
    }

    pub fn create_first_user(&self, user: &User) -> Result<bool, StoreError> {
        // Two workers starting on an empty database: the lock makes one of them the creator.
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(pg("start creating the first user"))?;
        tx.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE", &[]).map_err(pg("lock users"))?;
        let n = tx
            .execute(
                "INSERT INTO users (name, role, password_hash, created_at, updated_at)
                 SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM users)",
                &[&user.name, &user.role.as_str(), &user.password_hash, &user.created_at, &user.updated_at],
            )
            .map_err(pg("create the first user"))?;
        tx.commit().map_err(pg("commit the first user"))?;
        Ok(n == 1)
    }

    pub fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        Ok(all(&mut *self.conn()?, &sql, &[&name], "read user", |r| user_row(r, 0))?.pop())
    }

    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        all(&mut *self.conn()?, &sql, &[], "list users", |r| user_row(r, 0))
    }

    pub fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        let mut c = self.conn()?;
        c.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&s.created_at])
            .map_err(pg("drop expired sessions"))?;
        c.execute(
            "INSERT INTO sessions (token_hash, \"user\", csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[&s.token_hash, &s.user, &s.csrf, &s.created_at, &s.expires_at],
        )
        .map_err(pg("create session"))?;
        Ok(())
    }

    pub fn session(&self, token_hash: &[u8], now: i64) -> Result<Option<(Session, User)>, StoreError> {
        Ok(all(
            &mut *self.conn()?,
            "SELECT s.token_hash, s.\"user\", s.csrf, s.created_at, s.expires_at,
                    u.name, u.role, u.password_hash, u.created_at, u.updated_at
             FROM sessions s JOIN users u ON u.name = s.\"user\"
             WHERE s.token_hash = $1 AND s.expires_at > $2",
            &[&token_hash, &now],
            "read session",
            |r| {
                let session = Session {
                    token_hash: r.try_get(0)?,
                    user: r.try_get(1)?,
                    csrf: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                    expires_at: r.try_get(4)?,
                };
                Ok((session, user_row(r, 5)?))
            },
        )?
        .pop())
    }

    pub fn delete_session(&self, token_hash: &[u8], now: i64) -> Result<(), StoreError> {
        self.conn()?
            .execute("DELETE FROM sessions WHERE token_hash = $1 OR expires_at <= $2", &[&token_hash, &now])
            .map_err(pg("delete session"))?;
        Ok(())
    }

    pub fn create_api_token(&self, t: &ApiToken) -> Result<i64, StoreError> {
        let r = self
            .conn()?
            .query_one(
                "INSERT INTO api_tokens (name, \"user\", token_hash, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&t.name, &t.user, &t.token_hash, &t.created_at, &t.expires_at],
            )
            .map_err(pg("create API token"))?;
        Ok(r.get(0))
    }

    pub fn use_api_token(&self, token_hash: &[u8], now: i64) -> Result<Option<(ApiToken, User)>, StoreError> {
        let token = all(
            &mut *self.conn()?,
            &format!(
                "UPDATE api_tokens SET last_used = $2
                 WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2)
                 RETURNING {TOKEN_COLUMNS}"
            ),
            &[&token_hash, &now],
            "read API token",
            token_row,
        )?
        .pop();
        let Some(token) = token else { return Ok(None) };
        Ok(self.user(&token.user)?.map(|u| (token, u)))
    }

    pub fn api_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>, StoreError> {
        all(
            &mut *self.conn()?,
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE $1::text IS NULL OR \"user\" = $1 ORDER BY id"),
            &[&user],
            "list API tokens",
            token_row,
        )
    }

    pub fn delete_api_token(&self, id: i64) -> Result<bool, StoreError> {
        let n = self.conn()?.execute("DELETE FROM api_tokens WHERE id = $1", &[&id]).map_err(pg("delete API token"))?;
        Ok(n == 1)
    }

    pub fn revoke_api_tokens(&self, user: &str) -> Result<usize, StoreError> {
        let n = self
            .conn()?
            .execute("DELETE FROM api_tokens WHERE \"user\" = $1", &[&user])
            .map_err(pg("revoke a user's API tokens"))?;
        Ok(n as usize)
    }
}
