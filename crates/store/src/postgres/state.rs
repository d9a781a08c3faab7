//! [`StateStore`] in PostgreSQL: the statements of `ops.rs` and `alerts.rs`, each run
//! through [`PgState::with`] (which takes a pooled connection where the synchronous client
//! may block).

use postgres::NoTls;

use super::alerts::*;
use super::ops::*;
use super::{all, ledger_row, off_runtime, pg, PgState, LEDGER_COLUMNS, LOCK_SPACE};
use crate::alerts::{
    level_rank, Alert, AlertFilter, AlertState, Backlog, CorrelationWindow, Delivery, KnownRegion, LEVELS,
};
use crate::auth::{ApiToken, Session, User};
use crate::integrity::{IntegrityChain, IntegrityFinding, Silence};
use crate::ops::{DigestSeen, IngestFinding, IntegrationStatus, MessageProblem};
use crate::{Duty, LedgerEntry, ObjectCounts, StateStore, StoreError};

impl StateStore for PgState {
    /// Whether this process leads `duty` (a session advisory lock on a connection of its
    /// own, kept until the process ends or the connection drops, when another worker takes
    /// over at its next try).
    fn lead(&self, duty: Duty) -> Result<bool, StoreError> {
        let duty = duty as i32;
        off_runtime(|| {
            let mut leader = self.leader.lock().unwrap_or_else(|e| e.into_inner());
            if leader.as_ref().is_some_and(|c| c.is_closed()) {
                *leader = None;
            }
            if leader.is_none() {
                let client =
                    self.config.connect(NoTls).map_err(|e| StoreError::postgres("connect for leadership", e))?;
                *leader = Some(client);
            }
            let client = leader.as_mut().expect("connected above");
            // Re-asking for a lock this session holds stacks it; ask once per duty.
            let held: bool = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                       AND classid = $1::int::oid AND objid = $2::int::oid AND granted)",
                    &[&LOCK_SPACE, &duty],
                )
                .and_then(|r| r.try_get(0))
                .map_err(|e| StoreError::postgres("check leadership", e))?;
            if held {
                return Ok(true);
            }
            client
                .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LOCK_SPACE, &duty])
                .and_then(|r| r.try_get(0))
                .map_err(|e| StoreError::postgres("try to lead", e))
        })
    }

    fn ledger_entry(&self, bucket: &str, key: &str) -> Result<Option<LedgerEntry>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {LEDGER_COLUMNS} FROM objects WHERE bucket = $1 AND key = $2");
            Ok(all(c, &sql, &[&bucket, &key], "read the ledger", ledger_row)?.pop())
        })
    }

    fn ledger_entries(&self, bucket: &str, prefix: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        self.with(|c| {
            // starts_with, not LIKE: the prefix is data and may hold % or _.
            let sql =
                format!("SELECT {LEDGER_COLUMNS} FROM objects WHERE bucket = $1 AND starts_with(key, $2) ORDER BY key");
            all(c, &sql, &[&bucket, &prefix], "read the ledger", ledger_row)
        })
    }

    fn quarantined(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {LEDGER_COLUMNS} FROM objects WHERE status = 'quarantined' ORDER BY id");
            all(c, &sql, &[], "list quarantined objects", ledger_row)
        })
    }

    /// Committed and quarantined objects.
    fn object_counts(&self) -> Result<ObjectCounts, StoreError> {
        self.with(|c| {
            let r = c
                .query_one(
                    "SELECT count(*) FILTER (WHERE status = 'committed'), count(*) FILTER (WHERE status = 'quarantined')
                     FROM objects",
                    &[],
                )
                .map_err(pg("count objects"))?;
            Ok(ObjectCounts { committed: r.get::<_, i64>(0) as u64, quarantined: r.get::<_, i64>(1) as u64 })
        })
    }

    fn record_message_problem(&self, p: &MessageProblem) -> Result<(), StoreError> {
        self.with(|c| {
            c
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
        })
    }

    fn message_problems(&self) -> Result<Vec<MessageProblem>, StoreError> {
        self.with(|c| {
            let sql = "SELECT queue, message_id, reason, detail, body, receive_count, first_seen, last_seen
                       FROM message_problems ORDER BY last_seen DESC, message_id";
            all(c, sql, &[], "list message problems", |r| {
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
        })
    }

    fn clear_message_problem(&self, queue: &str, message_id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM message_problems WHERE queue = $1 AND message_id = $2", &[&queue, &message_id])
                .map_err(pg("clear message problem"))?;
            Ok(())
        })
    }

    fn record_finding(&self, f: &IngestFinding) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO ingest_findings (kind, account, bucket, key, detail, first_seen, last_seen, occurrences)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 1)
                     ON CONFLICT (kind, bucket, key) DO UPDATE SET detail = $5, last_seen = $7,
                         occurrences = ingest_findings.occurrences + 1",
                &[&f.kind, &f.account, &f.bucket, &f.key, &f.detail, &f.first_seen, &f.last_seen],
            )
            .map_err(pg("record ingest finding"))?;
            Ok(())
        })
    }

    fn findings(&self) -> Result<Vec<IngestFinding>, StoreError> {
        self.with(|c| {
            let sql = "SELECT kind, account, bucket, key, detail, first_seen, last_seen, occurrences
                       FROM ingest_findings ORDER BY first_seen, key";
            all(c, sql, &[], "list findings", |r| {
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
        })
    }

    fn record_digest(&self, d: &DigestSeen) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO digests_seen (account, bucket, key, size, seen_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (bucket, key) DO NOTHING",
                &[&d.account, &d.bucket, &d.key, &d.size.map(|s| s as i64), &d.seen_at],
            )
            .map_err(pg("record digest"))?;
            Ok(())
        })
    }

    fn digests_seen(&self) -> Result<Vec<DigestSeen>, StoreError> {
        self.with(|c| {
            let sql = "SELECT account, bucket, key, size, seen_at FROM digests_seen ORDER BY bucket, key";
            all(c, sql, &[], "list digests", digest_row)
        })
    }

    fn digests_seen_after(&self, seen_at: i64) -> Result<Vec<DigestSeen>, StoreError> {
        self.with(|c| {
            let sql =
                "SELECT account, bucket, key, size, seen_at FROM digests_seen WHERE seen_at > $1 ORDER BY seen_at";
            all(c, sql, &[&seen_at], "list new digests", digest_row)
        })
    }

    fn put_integration_status(&self, s: &IntegrationStatus) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
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
        })
    }

    fn integration_status(&self) -> Result<Vec<IntegrationStatus>, StoreError> {
        self.with(|c| {
            let sql = "SELECT account, region, last_notification, last_validation, last_object, newest_event,
                         notifications, objects, events, last_error, last_error_at, updated_at
                       FROM integration_status ORDER BY account, region";
            all(c, sql, &[], "list integration status", |r| {
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
        })
    }

    fn record_integrity_chains(&self, chains: &[IntegrityChain]) -> Result<(), StoreError> {
        self.with(|c| {
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
        })
    }

    fn integrity_chains(&self) -> Result<Vec<IntegrityChain>, StoreError> {
        self.with(|c| {
            let sql = "SELECT account, account_id, region, trail, newest_key, newest_end, newest_log, verified_at
                       FROM integrity_chains ORDER BY account, region, trail";
            all(c, sql, &[], "list integrity chains", |r| {
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
        })
    }

    fn record_integrity_findings(&self, findings: &[IntegrityFinding]) -> Result<Vec<IntegrityFinding>, StoreError> {
        self.with(|c| {
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
        })
    }

    fn integrity_findings(&self) -> Result<Vec<IntegrityFinding>, StoreError> {
        self.with(|c| {
            let sql = "SELECT account, kind, key, detail, first_seen, last_seen FROM integrity_findings
                       ORDER BY last_seen DESC, account, key, kind";
            all(c, sql, &[], "list integrity findings", |r| {
                Ok(IntegrityFinding {
                    account: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    key: r.try_get(2)?,
                    detail: r.try_get(3)?,
                    first_seen: r.try_get(4)?,
                    last_seen: r.try_get(5)?,
                })
            })
        })
    }

    fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        self.with(|c| {
            let sql = "SELECT account, account_id, region, what, since, alert_id FROM integrity_silences
                       ORDER BY account, account_id, region, what";
            all(c, sql, &[], "list silences", silence_row)
        })
    }

    fn set_silence(&self, s: &Silence) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO integrity_silences (account, account_id, region, what, since, alert_id)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (account, account_id, region, what) DO UPDATE SET since = excluded.since,
                         alert_id = excluded.alert_id",
                &[&s.account, &s.account_id, &s.region, &s.what, &s.since, &s.alert_id],
            )
            .map_err(pg("record silence"))?;
            Ok(())
        })
    }

    fn clear_silence(&self, s: &Silence) -> Result<Option<Silence>, StoreError> {
        self.with(|c| {
            Ok(all(
                c,
                "DELETE FROM integrity_silences WHERE account = $1 AND account_id = $2 AND region = $3 AND what = $4
                 RETURNING account, account_id, region, what, since, alert_id",
                &[&s.account, &s.account_id, &s.region, &s.what],
                "clear silence",
                silence_row,
            )?
            .pop())
        })
    }

    fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.with(|c| {
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
        })
    }

    fn create_first_user(&self, user: &User) -> Result<bool, StoreError> {
        self.with(|c| {
            // Two workers starting on an empty database: the lock makes one of them the creator.
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
        })
    }

    fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
            Ok(all(c, &sql, &[&name], "read user", |r| user_row(r, 0))?.pop())
        })
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
            all(c, &sql, &[], "list users", |r| user_row(r, 0))
        })
    }

    fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&s.created_at])
                .map_err(pg("drop expired sessions"))?;
            c.execute(
                "INSERT INTO sessions (token_hash, \"user\", csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[&s.token_hash, &s.user, &s.csrf, &s.created_at, &s.expires_at],
            )
            .map_err(pg("create session"))?;
            Ok(())
        })
    }

    fn session(&self, token_hash: &[u8], now: i64) -> Result<Option<(Session, User)>, StoreError> {
        self.with(|c| {
            Ok(all(
                c,
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
        })
    }

    fn delete_session(&self, token_hash: &[u8], now: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM sessions WHERE token_hash = $1 OR expires_at <= $2", &[&token_hash, &now])
                .map_err(pg("delete session"))?;
            Ok(())
        })
    }

    fn create_api_token(&self, t: &ApiToken) -> Result<i64, StoreError> {
        self.with(|c| {
            let r = c
                .query_one(
                    "INSERT INTO api_tokens (name, \"user\", token_hash, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    &[&t.name, &t.user, &t.token_hash, &t.created_at, &t.expires_at],
                )
                .map_err(pg("create API token"))?;
            Ok(r.get(0))
        })
    }

    fn use_api_token(&self, token_hash: &[u8], now: i64) -> Result<Option<(ApiToken, User)>, StoreError> {
        self.with(|c| {
            let token = all(
                c,
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
        })
    }

    fn api_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>, StoreError> {
        self.with(|c| {
            all(
                c,
                &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE $1::text IS NULL OR \"user\" = $1 ORDER BY id"),
                &[&user],
                "list API tokens",
                token_row,
            )
        })
    }

    fn delete_api_token(&self, id: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute("DELETE FROM api_tokens WHERE id = $1", &[&id]).map_err(pg("delete API token"))?;
            Ok(n == 1)
        })
    }

    fn revoke_api_tokens(&self, user: &str) -> Result<usize, StoreError> {
        self.with(|c| {
            let n = c
                .execute("DELETE FROM api_tokens WHERE \"user\" = $1", &[&user])
                .map_err(pg("revoke a user's API tokens"))?;
            Ok(n as usize)
        })
    }

    fn alerts(&self, f: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
        self.with(|c| {
            let min = f.min_level.as_deref().map_or(0, level_rank);
            let levels: Vec<String> = LEVELS[min..].iter().map(|l| l.to_string()).collect();
            let all_levels = f.min_level.is_none();
            let limit = if f.limit == 0 { i64::MAX } else { f.limit as i64 };
            let sql = format!(
                "SELECT {ALERT_COLUMNS} FROM alerts
                 WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR rule_id = $2)
                   AND ($3 OR lower(level) = ANY($4))
                   AND ($6::bigint IS NULL OR (last_seen, id) < ($6, $7))
                 ORDER BY last_seen DESC, id DESC LIMIT $5"
            );
            let (before_seen, before_id) = (f.before.map(|b| b.0), f.before.map(|b| b.1));
            all(
                c,
                &sql,
                &[&f.state.map(AlertState::as_str), &f.rule_id, &all_levels, &levels, &limit, &before_seen, &before_id],
                "list alerts",
                alert_row,
            )
        })
    }

    fn alert(&self, id: i64) -> Result<Option<Alert>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
            Ok(all(c, &sql, &[&id], "read alert", alert_row)?.pop())
        })
    }

    fn alert_event_ids(&self, id: i64) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            all(
                c,
                "SELECT event_id FROM alert_events WHERE alert = $1 ORDER BY event_id",
                &[&id],
                "alert events",
                |r| r.try_get(0),
            )
        })
    }

    fn set_alert_state(&self, id: i64, state: AlertState, comment: Option<&str>) -> Result<bool, StoreError> {
        let now = model::timefmt::now_millis();
        self.with(|c| {
            let n = c
                .execute(
                    "UPDATE alerts SET state = $2, comment = coalesce($3, comment), updated_at = $4 WHERE id = $1",
                    &[&id, &state.as_str(), &comment, &now],
                )
                .map_err(pg("change alert state"))?;
            Ok(n == 1)
        })
    }

    fn rule_hits(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.with(|c| {
            all(
                c,
                "SELECT rule_id, count(*) FROM alert_events GROUP BY rule_id ORDER BY rule_id",
                &[],
                "rule hits",
                |r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)? as u64)),
            )
        })
    }

    fn correlation_windows(&self) -> Result<Vec<CorrelationWindow>, StoreError> {
        self.with(|c| {
            all(
                c,
                "SELECT correlation, group_key, entries FROM correlation_windows ORDER BY correlation, group_key",
                &[],
                "list correlation windows",
                |r| Ok(CorrelationWindow { correlation: r.try_get(0)?, group: r.try_get(1)?, entries: r.try_get(2)? }),
            )
        })
    }

    /// Claims up to `limit` due deliveries for this worker: each is leased (its next attempt
    /// moved [`DELIVERY_LEASE_MS`] ahead) so no other worker takes it meanwhile; rows another
    /// worker is claiming right now are skipped, not waited for.
    fn due_deliveries(&self, now: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.with(|c| {
            let sql = "WITH due AS (
                    SELECT id FROM outbox WHERE delivered_at IS NULL AND next_attempt <= $1
                    ORDER BY next_attempt, id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE outbox o SET next_attempt = $3 FROM due WHERE o.id = due.id
                 RETURNING o.id, o.alert_id, o.sink, o.attempts, $1::bigint, o.last_error, o.delivered_at, o.created_at";
            let mut rows = all(
                c,
                sql,
                &[&now, &(limit as i64), &(now + DELIVERY_LEASE_MS)],
                "claim due deliveries",
                delivery_row,
            )?;
            rows.sort_by_key(|d| d.id);
            Ok(rows)
        })
    }

    fn deliveries(&self, alert_id: i64) -> Result<Vec<Delivery>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {DELIVERY_COLUMNS} FROM outbox WHERE alert_id = $1 ORDER BY sink");
            all(c, &sql, &[&alert_id], "alert deliveries", delivery_row)
        })
    }

    fn delivery_succeeded(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET delivered_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1",
                &[&id, &now],
            )
            .map_err(pg("mark delivery done"))?;
            Ok(())
        })
    }

    fn delivery_failed(&self, id: i64, error: &str, next_attempt: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt = $3 WHERE id = $1",
                &[&id, &error, &next_attempt],
            )
            .map_err(pg("record failed delivery"))?;
            Ok(())
        })
    }

    fn outbox_backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        self.with(|c| {
            all(
                c,
                "SELECT sink, count(*), count(*) FILTER (WHERE attempts > 0), min(created_at) FROM outbox
                 WHERE delivered_at IS NULL GROUP BY sink ORDER BY sink",
                &[],
                "outbox backlog",
                |r| {
                    Ok(Backlog {
                        sink: r.try_get(0)?,
                        pending: r.try_get::<_, i64>(1)? as u64,
                        failing: r.try_get::<_, i64>(2)? as u64,
                        oldest: r.try_get(3)?,
                    })
                },
            )
        })
    }

    fn known_regions(&self) -> Result<Vec<KnownRegion>, StoreError> {
        self.with(|c| {
            all(
                c,
                "SELECT account, region, first_seen FROM known_regions ORDER BY account, region",
                &[],
                "known regions",
                |r| Ok(KnownRegion { account: r.try_get(0)?, region: r.try_get(1)?, first_seen: r.try_get(2)? }),
            )
        })
    }
}
