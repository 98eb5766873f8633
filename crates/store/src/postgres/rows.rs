//! Conversions between PostgreSQL rows and the store's types, and the statement helpers every
//! module uses (each statement prepared once per connection).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::{Command, ExceptionRow, Result, StoreError, StoredEvent};

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(super) async fn query(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query(&statement, params).await?)
}

pub(super) async fn query_opt(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&statement, params).await?)
}

pub(super) async fn query_one(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Row> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_one(&statement, params).await?)
}

pub(super) async fn execute(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.execute(&statement, params).await?)
}

/// A limit as SQL takes it.
pub(super) fn limit(n: usize) -> i64 {
    n.min(i64::MAX as usize) as i64
}

pub(super) fn parsed<T: std::str::FromStr<Err = String>>(column: &str, s: &str) -> Result<T> {
    s.parse().map_err(|e: String| StoreError::Corrupt(format!("{column}: {e}")))
}

/// A count or a non-negative integer column.
pub(super) fn count(n: i64) -> u64 {
    n.max(0) as u64
}

pub(super) const EVENT_COLUMNS: &str = "id, system, event_id, kind, order_ref, received_at, payload, raw";

/// [`EVENT_COLUMNS`] without the raw vendor body (read as `None`).
pub(super) const EVENT_COLUMNS_UNRAW: &str = "id, system, event_id, kind, order_ref, received_at, payload, NULL::text";

pub(super) fn event(r: &Row) -> Result<StoredEvent> {
    Ok(StoredEvent {
        row: r.try_get(0)?,
        system: r.try_get(1)?,
        event_id: r.try_get(2)?,
        kind: parsed("inbox.kind", r.try_get(3)?)?,
        order_ref: r.try_get(4)?,
        received_at: r.try_get(5)?,
        payload: r.try_get(6)?,
        raw: r.try_get(7)?,
        source_version: None,
        inbound_mapping: None,
    })
}

pub(super) const COMMAND_COLUMNS: &str = "id, flow, target, order_ref, kind, idempotency_key, external_ref, version, \
     payload, state, attempts, budget_attempts, budget_start, ambiguous, next_attempt_at, created_at, updated_at, \
     record_id, last_error";

pub(super) fn command(r: &Row) -> Result<Command> {
    Ok(Command {
        id: r.try_get(0)?,
        flow: r.try_get(1)?,
        target: r.try_get(2)?,
        order_ref: r.try_get(3)?,
        kind: parsed("outbox.kind", r.try_get(4)?)?,
        idempotency_key: r.try_get(5)?,
        external_ref: r.try_get(6)?,
        version: r.try_get::<_, Option<i64>>(7)?.map(|v| v as u64),
        payload: r.try_get(8)?,
        state: parsed("outbox.state", r.try_get(9)?)?,
        attempts: r.try_get::<_, i32>(10)?.max(0) as u32,
        budget_attempts: r.try_get::<_, i32>(11)?.max(0) as u32,
        budget_start: r.try_get(12)?,
        ambiguous: r.try_get(13)?,
        next_attempt_at: r.try_get(14)?,
        created_at: r.try_get(15)?,
        updated_at: r.try_get(16)?,
        record_id: r.try_get(17)?,
        last_error: r.try_get(18)?,
    })
}

pub(super) fn commands(rows: Vec<Row>) -> Result<Vec<Command>> {
    rows.iter().map(command).collect()
}

/// The amount is NUMERIC in the table and decimal text outside it, exactly as written.
pub(super) const EXCEPTION_COLUMNS: &str = "id, pattern, order_ref, flow, command_id, field, detail, state, \
     opened_at, updated_at, subject, channel, mapping, amount::text, currency, action, evidence";

pub(super) fn exception(r: &Row) -> Result<ExceptionRow> {
    Ok(ExceptionRow {
        id: r.try_get(0)?,
        pattern: r.try_get(1)?,
        order_ref: r.try_get(2)?,
        flow: r.try_get(3)?,
        command_id: r.try_get(4)?,
        field: r.try_get(5)?,
        detail: r.try_get(6)?,
        state: r.try_get(7)?,
        opened_at: r.try_get(8)?,
        updated_at: r.try_get(9)?,
        subject: r.try_get(10)?,
        channel: r.try_get(11)?,
        mapping: r.try_get(12)?,
        amount: r.try_get(13)?,
        currency: r.try_get(14)?,
        action: r.try_get(15)?,
        evidence: r.try_get(16)?,
    })
}

pub(super) fn exceptions(rows: Vec<Row>) -> Result<Vec<ExceptionRow>> {
    rows.iter().map(exception).collect()
}
