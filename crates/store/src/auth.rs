//! Dashboard users, sessions and API tokens (migration 5).
//!
//! The store keeps what the web layer decides: password hashes arrive already hashed
//! (argon2id, in `web::auth`), and session and API tokens are stored as the SHA-256 of the
//! random token the client holds, never the token itself.

use model::EpochMillis;

/// What a user may do: viewers read; admins also change alert states and manage tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// A PHC string (`$argon2id$v=19$…`).
    pub password_hash: String,
    pub created_at: EpochMillis,
    pub updated_at: EpochMillis,
}

/// A logged-in browser. `token_hash` is the SHA-256 of the cookie's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: Vec<u8>,
    pub user: String,
    /// The token every form of this session carries (compared on each POST).
    pub csrf: String,
    pub created_at: EpochMillis,
    pub expires_at: EpochMillis,
}

/// A token for the JSON API (`Authorization: Bearer …`), acting as its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub user: String,
    pub token_hash: Vec<u8>,
    pub created_at: EpochMillis,
    pub last_used: Option<EpochMillis>,
    /// When the token stops working; `None`: until revoked.
    pub expires_at: Option<EpochMillis>,
}
