//! The quarantine table: held bodies, their exceptions, their replays.

use deadpool_postgres::{GenericClient, Transaction};
use handoff_model::Pattern;
use jiff::Timestamp;
use tokio_postgres::Row;

use super::rows::{count, execute, limit, parsed, query, query_one, query_opt};
use super::writes::{audit, record_event};
use crate::quarantine::resolves;
use crate::{NewEvent, NewQuarantined, QuarantineState, Quarantined, Recorded, Released, Result, StoreError};

const COLUMNS: &str = "id, system, source, order_ref, headers, body, field, reason, source_version, flow, \
     received_at, state, exception_id, event_row, replayed_at";

fn row(r: &Row) -> Result<Quarantined> {
    let headers: String = r.try_get(4)?;
    Ok(Quarantined {
        id: r.try_get(0)?,
        system: r.try_get(1)?,
        source: parsed("quarantine.source", r.try_get(2)?)?,
        order_ref: r.try_get(3)?,
        headers: serde_json::from_str(&headers).map_err(|e| StoreError::Corrupt(format!("quarantine.headers: {e}")))?,
        body: r.try_get(5)?,
        field: r.try_get(6)?,
        reason: r.try_get(7)?,
        source_version: r.try_get(8)?,
        flow: r.try_get(9)?,
        received_at: r.try_get(10)?,
        state: parsed("quarantine.state", r.try_get(11)?)?,
        exception_id: r.try_get(12)?,
        event_row: r.try_get(13)?,
        replayed_at: r.try_get(14)?,
    })
}

pub(super) async fn hold(tx: &Transaction<'_>, h: &NewQuarantined, now: Timestamp) -> Result<Recorded> {
    let headers = serde_json::to_string(&h.headers).expect("a string map serialises");
    let inserted = query_opt(
        tx,
        "INSERT INTO quarantine (system, source, fingerprint, order_ref, headers, body, field, reason, source_version,
                                 flow, received_at, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'held')
         ON CONFLICT (system, fingerprint) DO NOTHING RETURNING id",
        &[
            &h.system,
            &h.source.as_str(),
            &h.fingerprint,
            &h.order_ref,
            &headers,
            &h.body,
            &h.field,
            &h.reason,
            &h.source_version,
            &h.flow,
            &h.received_at,
        ],
    )
    .await?;
    let Some(inserted) = inserted else {
        let found = query_one(
            tx,
            "SELECT id FROM quarantine WHERE system = $1 AND fingerprint = $2",
            &[&h.system, &h.fingerprint],
        )
        .await?;
        return Ok(Recorded::Duplicate(found.try_get(0)?));
    };
    let id: i64 = inserted.try_get(0)?;
    let order_ref = h.order_ref.as_deref().unwrap_or_default();
    let detail = h.detail(id);
    let exception: i64 = query_one(
        tx,
        "INSERT INTO exceptions (pattern, order_ref, flow, field, detail, state, opened_at, updated_at, channel, evidence,
                                 fingerprint)
         VALUES ($1, $2, $3, $4, $5, 'open', $6, $6, $7, $8, $9) RETURNING id",
        &[
            &Pattern::TransformMismatch.as_str(),
            &order_ref,
            &h.flow,
            &h.field,
            &detail,
            &now,
            &h.system,
            &h.evidence(id),
            &super::writes::fingerprint(&detail),
        ],
    )
    .await?
    .try_get(0)?;
    execute(tx, "UPDATE quarantine SET exception_id = $1 WHERE id = $2", &[&exception, &id]).await?;
    audit(tx, now, "engine", "quarantined", Some(order_ref), &format!("exception {exception}: {detail}")).await?;
    Ok(Recorded::New(id))
}

pub(super) async fn list(c: &impl GenericClient, state: Option<QuarantineState>, n: usize) -> Result<Vec<Quarantined>> {
    let found = match state {
        Some(state) => {
            let sql = format!("SELECT {COLUMNS} FROM quarantine WHERE state = $1 ORDER BY id DESC LIMIT $2");
            query(c, &sql, &[&state.as_str(), &limit(n)]).await?
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM quarantine ORDER BY id DESC LIMIT $1");
            query(c, &sql, &[&limit(n)]).await?
        }
    };
    found.iter().map(row).collect()
}

/// One keyset page of held bodies, newest first (by `quarantine_state` for a state).
pub(super) async fn page(c: &impl GenericClient, f: &crate::QuarantineFilter) -> Result<crate::Page<Quarantined>> {
    let after = f.after()?.unwrap_or(i64::MAX);
    let n = crate::search::page_size(f.limit);
    let found = match f.state {
        Some(state) => {
            let sql =
                format!("SELECT {COLUMNS} FROM quarantine WHERE state = $1 AND id < $2 ORDER BY id DESC LIMIT $3");
            query(c, &sql, &[&state.as_str(), &after, &limit(n + 1)]).await?
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM quarantine WHERE id < $1 ORDER BY id DESC LIMIT $2");
            query(c, &sql, &[&after, &limit(n + 1)]).await?
        }
    };
    let rows = found.iter().map(row).collect::<Result<Vec<_>>>()?;
    Ok(crate::Page::of(rows, n, crate::search::quarantine_key))
}

pub(super) async fn one(c: &impl GenericClient, id: i64) -> Result<Option<Quarantined>> {
    let sql = format!("SELECT {COLUMNS} FROM quarantine WHERE id = $1");
    query_opt(c, &sql, &[&id]).await?.as_ref().map(row).transpose()
}

pub(super) async fn of_order(c: &impl GenericClient, order_ref: &str) -> Result<Vec<Quarantined>> {
    let sql = format!("SELECT {COLUMNS} FROM quarantine WHERE order_ref = $1 ORDER BY id");
    query(c, &sql, &[&order_ref]).await?.iter().map(row).collect()
}

pub(super) async fn depth(c: &impl GenericClient) -> Result<Vec<(String, u64)>> {
    let found =
        query(c, "SELECT system, count(*) FROM quarantine WHERE state = 'held' GROUP BY system ORDER BY system", &[])
            .await?;
    found.iter().map(|r| Ok((r.try_get(0)?, count(r.try_get(1)?)))).collect()
}

pub(super) async fn release(
    tx: &Transaction<'_>,
    id: i64,
    event: &NewEvent,
    actor: &str,
    now: Timestamp,
) -> Result<Released> {
    let found =
        query_opt(tx, "SELECT state, event_row, exception_id FROM quarantine WHERE id = $1 FOR UPDATE", &[&id]).await?;
    let Some(found) = found else { return Ok(Released::NotFound) };
    let (state, event_row, exception): (String, Option<i64>, Option<i64>) =
        (found.try_get(0)?, found.try_get(1)?, found.try_get(2)?);
    if state == QuarantineState::Replayed.as_str() {
        return Ok(Released::AlreadyReplayed { event_row });
    }
    let recorded = record_event(tx, event).await?;
    let (Recorded::New(row) | Recorded::Duplicate(row)) = recorded;
    execute(
        tx,
        "UPDATE quarantine SET state = 'replayed', event_row = $1, replayed_at = $2,
                order_ref = coalesce(order_ref, $3)
         WHERE id = $4",
        &[&row, &now, &event.order_ref, &id],
    )
    .await?;
    if let Some(exception) = exception {
        let state: String =
            query_one(tx, "SELECT state FROM exceptions WHERE id = $1", &[&exception]).await?.try_get(0)?;
        // An exception raised before its order was known now names it.
        execute(
            tx,
            "UPDATE exceptions SET order_ref = CASE WHEN order_ref = '' THEN $1 ELSE order_ref END,
                    state = CASE WHEN $2 THEN 'resolved' ELSE state END, updated_at = $3
             WHERE id = $4",
            &[&event.order_ref, &resolves(&state), &now, &exception],
        )
        .await?;
    }
    let how = match recorded {
        Recorded::New(_) => "",
        Recorded::Duplicate(_) => ", which was already in the inbox",
    };
    let detail = format!("quarantine {id} replayed as event {row}{how}");
    audit(tx, now, actor, "quarantine replayed", Some(&event.order_ref), &detail).await?;
    Ok(Released::Replayed(recorded))
}
