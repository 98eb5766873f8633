//! Console users and sessions in PostgreSQL (as `sqlite/console.rs`); logins, logouts and new
//! users audited.

use deadpool_postgres::{GenericClient, Transaction};
use jiff::Timestamp;
use tokio_postgres::Row;

use super::rows::{execute, parsed, query_one, query_opt};
use super::writes::audit;
use crate::{NewSession, NewUser, Result, SessionRow, UserRow};

pub(super) async fn create_user(tx: &Transaction<'_>, u: &NewUser, actor: &str, now: Timestamp) -> Result<Option<i64>> {
    let inserted = query_opt(
        tx,
        "INSERT INTO console_users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING RETURNING id",
        &[&u.name, &u.role.as_str(), &u.password_hash, &now],
    )
    .await?;
    let Some(inserted) = inserted else { return Ok(None) };
    let id: i64 = inserted.try_get(0)?;
    audit(tx, now, actor, "user.create", None, &format!("user {id} {:?} as {}", u.name, u.role)).await?;
    Ok(Some(id))
}

pub(super) async fn user_by_name(c: &impl GenericClient, name: &str) -> Result<Option<UserRow>> {
    let found =
        query_opt(c, "SELECT id, name, role, password_hash, created_at FROM console_users WHERE name = $1", &[&name])
            .await?;
    found
        .map(|r| {
            Ok(UserRow {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                role: parsed("console_users.role", r.try_get(2)?)?,
                password_hash: r.try_get(3)?,
                created_at: r.try_get(4)?,
            })
        })
        .transpose()
}

const SESSION: &str = "SELECT s.id, u.name, u.role, s.csrf, s.link, s.created_at, s.last_seen_at, s.ended_at
     FROM console_sessions s JOIN console_users u ON u.id = s.user_id";

fn session(r: &Row) -> Result<SessionRow> {
    Ok(SessionRow {
        id: r.try_get(0)?,
        user: r.try_get(1)?,
        role: parsed("console_users.role", r.try_get(2)?)?,
        csrf: r.try_get(3)?,
        link: r.try_get(4)?,
        created_at: r.try_get(5)?,
        last_seen_at: r.try_get(6)?,
        ended_at: r.try_get(7)?,
    })
}

async fn session_by_id(c: &impl GenericClient, id: i64) -> Result<SessionRow> {
    session(&query_one(c, &format!("{SESSION} WHERE s.id = $1"), &[&id]).await?)
}

pub(super) async fn open_session(tx: &Transaction<'_>, s: &NewSession, now: Timestamp) -> Result<i64> {
    let id: i64 = query_one(
        tx,
        "INSERT INTO console_sessions (hash, user_id, csrf, link, created_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        &[&s.hash, &s.user_id, &s.csrf, &s.link, &now],
    )
    .await?
    .try_get(0)?;
    let opened = session_by_id(tx, id).await?;
    let action = if s.link { "session.link" } else { "session.login" };
    audit(tx, now, &format!("user:{}", opened.user), action, None, &format!("session {id}")).await?;
    Ok(id)
}

pub(super) async fn session_by_hash(c: &impl GenericClient, hash: &str) -> Result<Option<SessionRow>> {
    query_opt(c, &format!("{SESSION} WHERE s.hash = $1"), &[&hash]).await?.as_ref().map(session).transpose()
}

pub(super) async fn touch(c: &impl GenericClient, id: i64, now: Timestamp) -> Result<()> {
    execute(c, "UPDATE console_sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE id = $1", &[&id, &now])
        .await?;
    Ok(())
}

pub(super) async fn redeem(
    tx: &Transaction<'_>,
    link_hash: &str,
    new_hash: &str,
    not_before: Timestamp,
    now: Timestamp,
) -> Result<Option<SessionRow>> {
    let id = query_opt(
        tx,
        "UPDATE console_sessions SET hash = $2, link = false, created_at = $4, last_seen_at = $4
         WHERE hash = $1 AND link AND ended_at IS NULL AND created_at >= $3 RETURNING id",
        &[&link_hash, &new_hash, &not_before, &now],
    )
    .await?;
    let Some(id) = id else { return Ok(None) };
    let id: i64 = id.try_get(0)?;
    let redeemed = session_by_id(tx, id).await?;
    audit(tx, now, &format!("user:{}", redeemed.user), "session.login", None, &format!("session {id} by link")).await?;
    Ok(Some(redeemed))
}

pub(super) async fn end(tx: &Transaction<'_>, hash: &str, now: Timestamp) -> Result<bool> {
    let id = query_opt(
        tx,
        "UPDATE console_sessions SET ended_at = $2 WHERE hash = $1 AND ended_at IS NULL RETURNING id",
        &[&hash, &now],
    )
    .await?;
    let Some(id) = id else { return Ok(false) };
    let id: i64 = id.try_get(0)?;
    let ended = session_by_id(tx, id).await?;
    audit(tx, now, &format!("user:{}", ended.user), "session.logout", None, &format!("session {id}")).await?;
    Ok(true)
}
