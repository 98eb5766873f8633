//! API tokens in PostgreSQL; each change audited with who made it.

use deadpool_postgres::{GenericClient, Transaction};
use jiff::Timestamp;
use tokio_postgres::Row;

use super::rows::{execute, parsed, query, query_one, query_opt};
use super::writes::audit;
use crate::{NewToken, Result, TokenRow};

const COLUMNS: &str = "id, name, role, created_at, expires_at, revoked_at";

fn row(r: &Row) -> Result<TokenRow> {
    Ok(TokenRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        role: parsed("api_tokens.role", r.try_get(2)?)?,
        created_at: r.try_get(3)?,
        expires_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
    })
}

pub(super) async fn create(tx: &Transaction<'_>, t: &NewToken, actor: &str, now: Timestamp) -> Result<i64> {
    let id: i64 = query_one(
        tx,
        "INSERT INTO api_tokens (name, role, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[&t.name, &t.role.as_str(), &t.hash, &now, &t.expires_at],
    )
    .await?
    .try_get(0)?;
    audit(tx, now, actor, "token.create", None, &format!("token {id} {:?} as {}", t.name, t.role)).await?;
    Ok(id)
}

pub(super) async fn list(c: &impl GenericClient) -> Result<Vec<TokenRow>> {
    query(c, &format!("SELECT {COLUMNS} FROM api_tokens ORDER BY id"), &[]).await?.iter().map(row).collect()
}

pub(super) async fn by_hash(c: &impl GenericClient, hash: &str) -> Result<Option<TokenRow>> {
    query_opt(c, &format!("SELECT {COLUMNS} FROM api_tokens WHERE hash = $1"), &[&hash])
        .await?
        .as_ref()
        .map(row)
        .transpose()
}

pub(super) async fn revoke(tx: &Transaction<'_>, id: i64, actor: &str, now: Timestamp) -> Result<bool> {
    let changed =
        execute(tx, "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", &[&id, &now]).await?;
    if changed == 1 {
        audit(tx, now, actor, "token.revoke", None, &format!("token {id}")).await?;
    }
    Ok(changed == 1)
}
