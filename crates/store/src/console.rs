//! The console's people and their login sessions. A user's password is kept as its argon2id
//! hash, a session's random id as its SHA-256 (both hashed by the caller): the store never sees
//! a secret. Roles are the API's roles.

use jiff::Timestamp;

use crate::Role;

/// A person to create: name, role and the PHC string of their password's hash.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub password_hash: String,
}

/// A console user, with the hash their password is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: Timestamp,
}

/// A session to open for a user: the SHA-256 (hex) of its random id and its CSRF token. A
/// `link` session is a one-time login link: it lets no one in until redeemed.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub hash: String,
    pub user_id: i64,
    pub csrf: String,
    pub link: bool,
}

/// A session, with its user's name and role (the caller judges its age).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: i64,
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub link: bool,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}
