//! API tokens: who may read or act through the API, and as whom. A token is random and shown
//! once; the store keeps only its hash, so a copy of the database lets no one in.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Serialize;

/// What a token's holder may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, personal data masked.
    Viewer,
    /// Also acts on exceptions and replays dead letters, and sees personal data.
    Operator,
    /// Also manages tokens and the contract.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("no role {s:?}: viewer, operator or admin"))
    }
}

/// A token to keep: its holder's name, role, the SHA-256 of the token (hex) and when it ends.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub hash: String,
    pub expires_at: Option<Timestamp>,
}

/// A kept token, without its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// Why a token lets no one in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    Revoked,
    Expired,
}

impl TokenRow {
    /// Whether the token lets its holder in at `now`.
    pub fn check(&self, now: Timestamp) -> Result<(), TokenRefusal> {
        if self.revoked_at.is_some_and(|at| at <= now) {
            return Err(TokenRefusal::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(TokenRefusal::Expired);
        }
        Ok(())
    }
}
