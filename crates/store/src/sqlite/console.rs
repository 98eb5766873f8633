//! Console users and sessions in SQLite; logins, logouts and new users audited.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::rows::{micros, ts};
use crate::{NewSession, NewUser, Result, Role, SessionRow, UserRow};

fn role(r: &Row, idx: usize) -> rusqlite::Result<Role> {
    let role: String = r.get(idx)?;
    role.parse::<Role>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into()))
}

fn audit(conn: &Connection, now: Timestamp, actor: &str, action: &str, detail: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO audit (at, actor, action, order_ref, detail) VALUES (?1, ?2, ?3, NULL, ?4)")?
        .execute(params![micros(now), actor, action, detail])?;
    Ok(())
}

pub(super) fn create_user(conn: &Connection, u: &NewUser, actor: &str, now: Timestamp) -> Result<Option<i64>> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO console_users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![u.name, u.role.as_str(), u.password_hash, micros(now)])?;
    if inserted == 0 {
        return Ok(None);
    }
    let id = conn.last_insert_rowid();
    audit(conn, now, actor, "user.create", &format!("user {id} {:?} as {}", u.name, u.role))?;
    Ok(Some(id))
}

pub(super) fn user_by_name(conn: &Connection, name: &str) -> Result<Option<UserRow>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, name, role, password_hash, created_at FROM console_users WHERE name = ?1")?;
    let user = stmt
        .query_row([name], |r| {
            Ok(UserRow {
                id: r.get(0)?,
                name: r.get(1)?,
                role: role(r, 2)?,
                password_hash: r.get(3)?,
                created_at: ts(r.get(4)?)?,
            })
        })
        .optional()?;
    Ok(user)
}

const SESSION: &str = "SELECT s.id, u.name, u.role, s.csrf, s.link, s.created_at, s.last_seen_at, s.ended_at
     FROM console_sessions s JOIN console_users u ON u.id = s.user_id";

fn session(r: &Row) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        user: r.get(1)?,
        role: role(r, 2)?,
        csrf: r.get(3)?,
        link: r.get(4)?,
        created_at: ts(r.get(5)?)?,
        last_seen_at: ts(r.get(6)?)?,
        ended_at: r.get::<_, Option<i64>>(7)?.map(ts).transpose()?,
    })
}

fn session_by_id(conn: &Connection, id: i64) -> Result<SessionRow> {
    Ok(conn.prepare_cached(&format!("{SESSION} WHERE s.id = ?1"))?.query_row([id], session)?)
}

pub(super) fn open_session(conn: &Connection, s: &NewSession, now: Timestamp) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO console_sessions (hash, user_id, csrf, link, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![s.hash, s.user_id, s.csrf, s.link, micros(now)])?;
    let id = conn.last_insert_rowid();
    let opened = session_by_id(conn, id)?;
    let action = if s.link { "session.link" } else { "session.login" };
    audit(conn, now, &format!("user:{}", opened.user), action, &format!("session {id}"))?;
    Ok(id)
}

pub(super) fn session_by_hash(conn: &Connection, hash: &str) -> Result<Option<SessionRow>> {
    Ok(conn.prepare_cached(&format!("{SESSION} WHERE s.hash = ?1"))?.query_row([hash], session).optional()?)
}

pub(super) fn touch(conn: &Connection, id: i64, now: Timestamp) -> Result<()> {
    conn.prepare_cached("UPDATE console_sessions SET last_seen_at = max(last_seen_at, ?2) WHERE id = ?1")?
        .execute(params![id, micros(now)])?;
    Ok(())
}

pub(super) fn redeem(
    conn: &Connection,
    link_hash: &str,
    new_hash: &str,
    not_before: Timestamp,
    now: Timestamp,
) -> Result<Option<SessionRow>> {
    let id: Option<i64> = conn
        .prepare_cached(
            "UPDATE console_sessions SET hash = ?2, link = 0, created_at = ?4, last_seen_at = ?4
             WHERE hash = ?1 AND link = 1 AND ended_at IS NULL AND created_at >= ?3 RETURNING id",
        )?
        .query_row(params![link_hash, new_hash, micros(not_before), micros(now)], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Ok(None) };
    let redeemed = session_by_id(conn, id)?;
    audit(conn, now, &format!("user:{}", redeemed.user), "session.login", &format!("session {id} by link"))?;
    Ok(Some(redeemed))
}

pub(super) fn end(conn: &Connection, hash: &str, now: Timestamp) -> Result<bool> {
    let id: Option<i64> = conn
        .prepare_cached("UPDATE console_sessions SET ended_at = ?2 WHERE hash = ?1 AND ended_at IS NULL RETURNING id")?
        .query_row(params![hash, micros(now)], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Ok(false) };
    let ended = session_by_id(conn, id)?;
    audit(conn, now, &format!("user:{}", ended.user), "session.logout", &format!("session {id}"))?;
    Ok(true)
}
