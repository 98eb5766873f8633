//! API tokens in SQLite; each change audited with who made it.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::rows::{micros, ts};
use crate::{NewToken, Result, Role, TokenRow};

const COLUMNS: &str = "id, name, role, created_at, expires_at, revoked_at";

fn row(r: &Row) -> rusqlite::Result<TokenRow> {
    let role: String = r.get(2)?;
    Ok(TokenRow {
        id: r.get(0)?,
        name: r.get(1)?,
        role: role
            .parse::<Role>()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into()))?,
        created_at: ts(r.get(3)?)?,
        expires_at: r.get::<_, Option<i64>>(4)?.map(ts).transpose()?,
        revoked_at: r.get::<_, Option<i64>>(5)?.map(ts).transpose()?,
    })
}

fn audit(conn: &Connection, now: Timestamp, actor: &str, action: &str, detail: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO audit (at, actor, action, order_ref, detail) VALUES (?1, ?2, ?3, NULL, ?4)")?
        .execute(params![micros(now), actor, action, detail])?;
    Ok(())
}

pub(super) fn create(conn: &Connection, t: &NewToken, actor: &str, now: Timestamp) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO api_tokens (name, role, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![t.name, t.role.as_str(), t.hash, micros(now), t.expires_at.map(micros)])?;
    let id = conn.last_insert_rowid();
    audit(conn, now, actor, "token.create", &format!("token {id} {:?} as {}", t.name, t.role))?;
    Ok(id)
}

pub(super) fn list(conn: &Connection) -> Result<Vec<TokenRow>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY id"))?;
    Ok(stmt.query_map([], row)?.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn by_hash(conn: &Connection, hash: &str) -> Result<Option<TokenRow>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM api_tokens WHERE hash = ?1"))?;
    Ok(stmt.query_row([hash], row).optional()?)
}

pub(super) fn revoke(conn: &Connection, id: i64, actor: &str, now: Timestamp) -> Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")?
        .execute(params![id, micros(now)])?;
    if changed == 1 {
        audit(conn, now, actor, "token.revoke", &format!("token {id}"))?;
    }
    Ok(changed == 1)
}
