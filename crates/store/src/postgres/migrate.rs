//! The schema, one migration per file, applied in order on open. `schema_version` lists the
//! ones applied; a transaction-scoped advisory lock lets one process migrate at a time while
//! the others wait and then find nothing left to do.

use crate::{Result, StoreError};

const MIGRATIONS: [&str; 2] = [
    include_str!("../../migrations/postgres/0001_write_path.sql"),
    include_str!("../../migrations/postgres/0002_claim_leases.sql"),
];

/// The schema version this build writes.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// Any number that no other advisory lock of the hub uses: "handoff" in ASCII.
const MIGRATION_LOCK: i64 = 0x68616e646f6666;

/// Applies the migrations not yet applied; returns the version the database was at.
pub(super) async fn to_latest(client: &mut tokio_postgres::Client) -> Result<i32> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    // No notice for a table that is there already: that is every open but the first.
    tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let at: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[]).await?.get(0);
    if at > VERSION {
        return Err(StoreError::Schema(format!(
            "the database is at schema version {at}, this build knows version {VERSION}: use the build that wrote it"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(at as usize) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(i as i32 + 1)]).await?;
    }
    tx.commit().await?;
    if at < VERSION {
        tracing::info!(message = "store migrated", from = at, to = VERSION);
    }
    Ok(at)
}
