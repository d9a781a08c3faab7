//! The user, session and API-token tables of migration 5 (see `crate::auth`).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::ops::{all, all_with};
use crate::auth::{ApiToken, Role, Session, User};
use crate::{Context, StoreError};

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(1)?;
    Ok(User {
        name: r.get(0)?,
        // The CHECK constraint admits only the two names.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        password_hash: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
    })
}

const USER_COLUMNS: &str = "name, role, password_hash, created_at, updated_at";

/// Creates the user or replaces its role and password; a reset ends the user's sessions.
pub(super) fn put_user(c: &Connection, user: &User) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash,
            updated_at = excluded.updated_at",
    )
    .and_then(|mut s| {
        s.execute(params![user.name, user.role.as_str(), user.password_hash, user.created_at, user.updated_at])
    })
    .context("write user")?;
    c.prepare_cached("DELETE FROM sessions WHERE user = ?1")
        .and_then(|mut s| s.execute([&user.name]))
        .context("end the sessions of a reset user")?;
    Ok(())
}

/// Creates the user only if no user exists at all; true when it was created.
pub(super) fn create_first_user(c: &Connection, user: &User) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO users (name, role, password_hash, created_at, updated_at)
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM users)",
        )
        .and_then(|mut s| {
            s.execute(params![user.name, user.role.as_str(), user.password_hash, user.created_at, user.updated_at])
        })
        .context("create the first user")?;
    Ok(n == 1)
}

pub(super) fn user(c: &Connection, name: &str) -> Result<Option<User>, StoreError> {
    c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"))
        .and_then(|mut s| s.query_row([name], user_row).optional())
        .context("read user")
}

pub(super) fn users(c: &Connection) -> Result<Vec<User>, StoreError> {
    all(c, &format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"), "list users", user_row)
}

/// Stores a new session (and drops the expired ones: sessions end by expiry more often than
/// by logout).
pub(super) fn create_session(c: &Connection, s: &Session) -> Result<(), StoreError> {
    c.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")
        .and_then(|mut st| st.execute([s.created_at]))
        .context("drop expired sessions")?;
    c.prepare_cached(
        "INSERT INTO sessions (token_hash, user, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut st| st.execute(params![s.token_hash, s.user, s.csrf, s.created_at, s.expires_at]))
    .context("create session")?;
    Ok(())
}

/// The session with this token hash and its user, if it has not expired at `now`.
pub(super) fn session(c: &Connection, token_hash: &[u8], now: i64) -> Result<Option<(Session, User)>, StoreError> {
    c.prepare_cached(
        "SELECT s.token_hash, s.user, s.csrf, s.created_at, s.expires_at,
                u.name, u.role, u.password_hash, u.created_at, u.updated_at
         FROM sessions s JOIN users u ON u.name = s.user
         WHERE s.token_hash = ?1 AND s.expires_at > ?2",
    )
    .and_then(|mut st| {
        st.query_row(params![token_hash, now], |r| {
            let session = Session {
                token_hash: r.get(0)?,
                user: r.get(1)?,
                csrf: r.get(2)?,
                created_at: r.get(3)?,
                expires_at: r.get(4)?,
            };
            let role: String = r.get(6)?;
            let user = User {
                name: r.get(5)?,
                role: Role::parse(&role).unwrap_or(Role::Viewer),
                password_hash: r.get(7)?,
                created_at: r.get(8)?,
                updated_at: r.get(9)?,
            };
            Ok((session, user))
        })
        .optional()
    })
    .context("read session")
}

/// Ends one session, and every expired one on the way.
pub(super) fn delete_session(c: &Connection, token_hash: &[u8], now: i64) -> Result<(), StoreError> {
    c.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1 OR expires_at <= ?2")
        .and_then(|mut s| s.execute(params![token_hash, now]))
        .context("delete session")?;
    Ok(())
}

pub(super) fn create_api_token(c: &Connection, t: &ApiToken) -> Result<i64, StoreError> {
    c.prepare_cached(
        "INSERT INTO api_tokens (name, user, token_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
         RETURNING id",
    )
    .and_then(|mut s| s.query_row(params![t.name, t.user, t.token_hash, t.created_at, t.expires_at], |r| r.get(0)))
    .context("create API token")
}

fn token_row(r: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: r.get(0)?,
        name: r.get(1)?,
        user: r.get(2)?,
        token_hash: r.get(3)?,
        created_at: r.get(4)?,
        last_used: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

const TOKEN_COLUMNS: &str = "id, name, user, token_hash, created_at, last_used, expires_at";

/// The unexpired token with this hash and its user; notes the use.
pub(super) fn use_api_token(
    c: &Connection,
    token_hash: &[u8],
    now: i64,
) -> Result<Option<(ApiToken, User)>, StoreError> {
    let token = c
        .prepare_cached(&format!(
            "UPDATE api_tokens SET last_used = ?2
             WHERE token_hash = ?1 AND (expires_at IS NULL OR expires_at > ?2)
             RETURNING {TOKEN_COLUMNS}"
        ))
        .and_then(|mut s| s.query_row(params![token_hash, now], token_row).optional())
        .context("read API token")?;
    let Some(token) = token else { return Ok(None) };
    Ok(user(c, &token.user)?.map(|u| (token, u)))
}

pub(super) fn api_tokens(c: &Connection, user: Option<&str>) -> Result<Vec<ApiToken>, StoreError> {
    all_with(
        c,
        &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ?1 IS NULL OR user = ?1 ORDER BY id"),
        [user],
        "list API tokens",
        token_row,
    )
}

pub(super) fn delete_api_token(c: &Connection, id: i64) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached("DELETE FROM api_tokens WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .context("delete API token")?;
    Ok(n == 1)
}

pub(super) fn revoke_api_tokens(c: &Connection, user: &str) -> Result<usize, StoreError> {
    c.prepare_cached("DELETE FROM api_tokens WHERE user = ?1")
        .and_then(|mut s| s.execute([user]))
        .context("revoke a user's API tokens")
}
