//! The quarantine table: held bodies, their exceptions, their replays.

use handoff_model::Pattern;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::rows::{micros, ts};
use super::writes::{audit, record_event};
use crate::quarantine::resolves;
use crate::search::{Page, QuarantineFilter, page_size, quarantine_key};
use crate::{NewEvent, NewQuarantined, QuarantineState, Quarantined, Recorded, Released, Result};

const COLUMNS: &str = "id, system, source, order_ref, headers, body, field, reason, source_version, flow, \
     received_at, state, exception_id, event_row, replayed_at";

fn row(r: &Row) -> rusqlite::Result<Quarantined> {
    let text =
        |idx: usize, e: String| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into());
    let headers: String = r.get(4)?;
    Ok(Quarantined {
        id: r.get(0)?,
        system: r.get(1)?,
        source: r.get::<_, String>(2)?.parse().map_err(|e| text(2, e))?,
        order_ref: r.get(3)?,
        headers: serde_json::from_str(&headers).map_err(|e| text(4, e.to_string()))?,
        body: r.get(5)?,
        field: r.get(6)?,
        reason: r.get(7)?,
        source_version: r.get(8)?,
        flow: r.get(9)?,
        received_at: ts(r.get(10)?)?,
        state: r.get::<_, String>(11)?.parse().map_err(|e| text(11, e))?,
        exception_id: r.get(12)?,
        event_row: r.get(13)?,
        replayed_at: r.get::<_, Option<i64>>(14)?.map(ts).transpose()?,
    })
}

pub(super) fn hold(conn: &Connection, h: &NewQuarantined, now: Timestamp) -> Result<Recorded> {
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM quarantine WHERE system = ?1 AND fingerprint = ?2")?
        .query_row(params![h.system, h.fingerprint], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok(Recorded::Duplicate(id));
    }
    let headers = serde_json::to_string(&h.headers).expect("a string map serialises");
    conn.prepare_cached(
        "INSERT INTO quarantine (system, source, fingerprint, order_ref, headers, body, field, reason, source_version,
                                 flow, received_at, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'held')",
    )?
    .execute(params![
        h.system,
        h.source.as_str(),
        h.fingerprint,
        h.order_ref,
        headers,
        h.body,
        h.field,
        h.reason,
        h.source_version,
        h.flow,
        micros(h.received_at),
    ])?;
    let id = conn.last_insert_rowid();
    let order_ref = h.order_ref.as_deref().unwrap_or_default();
    let detail = h.detail(id);
    conn.prepare_cached(
        "INSERT INTO exceptions (pattern, order_ref, flow, field, detail, state, opened_at, updated_at, channel, evidence,
                                 fingerprint)
         VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        Pattern::TransformMismatch.as_str(),
        order_ref,
        h.flow,
        h.field,
        detail,
        micros(now),
        h.system,
        h.evidence(id),
        super::writes::fingerprint(&detail),
    ])?;
    let exception = conn.last_insert_rowid();
    conn.prepare_cached("UPDATE quarantine SET exception_id = ?1 WHERE id = ?2")?.execute([exception, id])?;
    audit(conn, now, "engine", "quarantined", order_ref, &format!("exception {exception}: {detail}"))?;
    Ok(Recorded::New(id))
}

pub(super) fn list(conn: &Connection, state: Option<QuarantineState>, limit: usize) -> Result<Vec<Quarantined>> {
    // Two statements, not `?1 IS NULL OR state = ?1`, which no index can lead.
    let rows = match state {
        Some(state) => {
            let sql = format!("SELECT {COLUMNS} FROM quarantine WHERE state = ?1 ORDER BY id DESC LIMIT ?2 + 0");
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(params![state.as_str(), limit as i64], row)?.collect::<rusqlite::Result<_>>()
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM quarantine ORDER BY id DESC LIMIT ?1 + 0");
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(params![limit as i64], row)?.collect::<rusqlite::Result<_>>()
        }
    };
    Ok(rows?)
}

/// One keyset page of held bodies, newest first: by `quarantine_state` for a state, else by id.
pub(super) fn page(conn: &Connection, f: &QuarantineFilter) -> Result<Page<Quarantined>> {
    let after = f.after()?.unwrap_or(i64::MAX);
    let limit = page_size(f.limit);
    let rows = match f.state {
        Some(state) => {
            let sql =
                format!("SELECT {COLUMNS} FROM quarantine WHERE state = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3 + 0");
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(params![state.as_str(), after, limit as i64 + 1], row)?.collect::<rusqlite::Result<_>>()
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM quarantine WHERE id < ?1 ORDER BY id DESC LIMIT ?2 + 0");
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(params![after, limit as i64 + 1], row)?.collect::<rusqlite::Result<_>>()
        }
    };
    Ok(Page::of(rows?, limit, quarantine_key))
}

pub(super) fn one(conn: &Connection, id: i64) -> Result<Option<Quarantined>> {
    let sql = format!("SELECT {COLUMNS} FROM quarantine WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], row).optional()?)
}

pub(super) fn of_order(conn: &Connection, order_ref: &str) -> Result<Vec<Quarantined>> {
    let sql = format!("SELECT {COLUMNS} FROM quarantine WHERE order_ref = ?1 ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([order_ref], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn depth(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT system, count(*) FROM quarantine WHERE state = 'held' GROUP BY system ORDER BY system",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn release(conn: &Connection, id: i64, event: &NewEvent, actor: &str, now: Timestamp) -> Result<Released> {
    let found: Option<(String, Option<i64>, Option<i64>)> = conn
        .prepare_cached("SELECT state, event_row, exception_id FROM quarantine WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((state, event_row, exception)) = found else { return Ok(Released::NotFound) };
    if state == QuarantineState::Replayed.as_str() {
        return Ok(Released::AlreadyReplayed { event_row });
    }
    let recorded = record_event(conn, event)?;
    let (Recorded::New(row) | Recorded::Duplicate(row)) = recorded;
    conn.prepare_cached(
        "UPDATE quarantine SET state = 'replayed', event_row = ?1, replayed_at = ?2,
                order_ref = coalesce(order_ref, ?3)
         WHERE id = ?4",
    )?
    .execute(params![row, micros(now), event.order_ref, id])?;
    if let Some(exception) = exception {
        let state: String =
            conn.prepare_cached("SELECT state FROM exceptions WHERE id = ?1")?.query_row([exception], |r| r.get(0))?;
        // An exception raised before its order was known now names it.
        conn.prepare_cached(
            "UPDATE exceptions SET order_ref = CASE WHEN order_ref = '' THEN ?1 ELSE order_ref END,
                    state = CASE WHEN ?2 THEN 'resolved' ELSE state END, updated_at = ?3
             WHERE id = ?4",
        )?
        .execute(params![event.order_ref, resolves(&state), micros(now), exception])?;
    }
    let how = match recorded {
        Recorded::New(_) => "",
        Recorded::Duplicate(_) => ", which was already in the inbox",
    };
    audit(
        conn,
        now,
        actor,
        "quarantine replayed",
        &event.order_ref,
        &format!("quarantine {id} replayed as event {row}{how}"),
    )?;
    Ok(Released::Replayed(recorded))
}
