//! Conversions between SQLite rows and the store's types.

use jiff::Timestamp;
use rusqlite::Row;

use crate::{Command, ExceptionRow, StoredEvent};

pub(super) fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub(super) fn ts(us: i64) -> rusqlite::Result<Timestamp> {
    Timestamp::from_microsecond(us)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(e)))
}

fn parsed<T: std::str::FromStr<Err = String>>(idx: usize, s: String) -> rusqlite::Result<T> {
    s.parse().map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into()))
}

pub(super) const EVENT_COLUMNS: &str = "id, system, event_id, kind, order_ref, received_at, payload, raw";

/// [`EVENT_COLUMNS`] without the raw vendor body (read as `None`).
pub(super) const EVENT_COLUMNS_UNRAW: &str = "id, system, event_id, kind, order_ref, received_at, payload, NULL";

pub(super) fn event(r: &Row) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        row: r.get(0)?,
        system: r.get(1)?,
        event_id: r.get(2)?,
        kind: parsed(3, r.get(3)?)?,
        order_ref: r.get(4)?,
        received_at: ts(r.get(5)?)?,
        payload: r.get(6)?,
        raw: r.get(7)?,
        source_version: None,
        inbound_mapping: None,
    })
}

/// A command's payload, read from its own table (migration 0016) by the command's id: the
/// statement reads or changes `outbox` under its own name. The dump reads it so too.
macro_rules! command_payload {
    () => {
        "(SELECT p.payload FROM outbox_payloads p WHERE p.command_id = outbox.id)"
    };
}
pub(crate) const COMMAND_PAYLOAD: &str = command_payload!();

pub(super) const COMMAND_COLUMNS: &str = concat!(
    "id, flow, target, order_ref, kind, idempotency_key, external_ref, version, ",
    command_payload!(),
    ", state, attempts, budget_attempts, budget_start, ambiguous, next_attempt_at, created_at, updated_at, \
     record_id, last_error"
);

pub(super) fn command(r: &Row) -> rusqlite::Result<Command> {
    Ok(Command {
        id: r.get(0)?,
        flow: r.get(1)?,
        target: r.get(2)?,
        order_ref: r.get(3)?,
        kind: parsed(4, r.get(4)?)?,
        idempotency_key: r.get(5)?,
        external_ref: r.get(6)?,
        version: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        payload: r.get(8)?,
        state: parsed(9, r.get(9)?)?,
        attempts: r.get(10)?,
        budget_attempts: r.get(11)?,
        budget_start: ts(r.get(12)?)?,
        ambiguous: r.get(13)?,
        next_attempt_at: ts(r.get(14)?)?,
        created_at: ts(r.get(15)?)?,
        updated_at: ts(r.get(16)?)?,
        record_id: r.get(17)?,
        last_error: r.get(18)?,
    })
}

pub(super) const EXCEPTION_COLUMNS: &str = "id, pattern, order_ref, flow, command_id, field, detail, state, \
     opened_at, updated_at, subject, channel, mapping, amount, currency, action, evidence";

pub(super) fn exception(r: &Row) -> rusqlite::Result<ExceptionRow> {
    Ok(ExceptionRow {
        id: r.get(0)?,
        pattern: r.get(1)?,
        order_ref: r.get(2)?,
        flow: r.get(3)?,
        command_id: r.get(4)?,
        field: r.get(5)?,
        detail: r.get(6)?,
        state: r.get(7)?,
        opened_at: ts(r.get(8)?)?,
        updated_at: ts(r.get(9)?)?,
        subject: r.get(10)?,
        channel: r.get(11)?,
        mapping: r.get(12)?,
        amount: r.get(13)?,
        currency: r.get(14)?,
        action: r.get(15)?,
        evidence: r.get(16)?,
    })
}
