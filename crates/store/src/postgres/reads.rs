//! Queries that change nothing.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use handoff_model::ExceptionState;
use jiff::Timestamp;

use super::rows::{
    self, COMMAND_COLUMNS, EVENT_COLUMNS, EVENT_COLUMNS_UNRAW, EXCEPTION_COLUMNS, count, limit, query, query_one,
    query_opt,
};
use crate::{AttemptRow, AuditRow, Command, ExceptionRow, LedgerRow, OrderState, Result, StoredEvent, Timeline};

pub(super) async fn unprocessed_events(c: &impl GenericClient, n: usize) -> Result<Vec<StoredEvent>> {
    let sql = format!("SELECT {EVENT_COLUMNS_UNRAW} FROM inbox WHERE NOT planned ORDER BY id LIMIT $1");
    query(c, &sql, &[&limit(n)]).await?.iter().map(rows::event).collect()
}

pub(super) async fn count_unplanned(c: &impl GenericClient, at_most: usize) -> Result<u64> {
    let sql = "SELECT count(*) FROM (SELECT 1 FROM inbox WHERE NOT planned LIMIT $1) AS unplanned";
    Ok(count(query_one(c, sql, &[&limit(at_most)]).await?.try_get(0)?))
}

pub(super) async fn poll_cursor(c: &impl GenericClient, system: &str) -> Result<Option<String>> {
    let row = query_opt(c, "SELECT cursor FROM poll_cursor WHERE system = $1", &[&system]).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

pub(super) async fn order_states(c: &impl GenericClient, order_refs: &[String]) -> Result<HashMap<String, OrderState>> {
    let found = query(
        c,
        "SELECT order_ref, source, created, cancelled, last_version, last_fingerprint FROM orders
         WHERE order_ref = ANY($1)",
        &[&order_refs],
    )
    .await?;
    let mut states = HashMap::with_capacity(found.len());
    for r in found {
        let state = OrderState {
            source: r.try_get(1)?,
            created: r.try_get(2)?,
            cancelled: r.try_get(3)?,
            last_version: r.try_get::<_, Option<i64>>(4)?.map(|v| v as u64),
            last_fingerprint: r.try_get(5)?,
        };
        states.insert(r.try_get(0)?, state);
    }
    Ok(states)
}

/// When the next command falls due: a held one waits for the command before it, not a time.
pub(super) async fn next_due_at(c: &impl GenericClient) -> Result<Option<Timestamp>> {
    let row = query_one(c, "SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending' AND NOT held", &[]).await?;
    Ok(row.try_get(0)?)
}

pub(super) async fn dead_letters(c: &impl GenericClient, n: usize) -> Result<Vec<Command>> {
    let sql = format!("SELECT {COMMAND_COLUMNS} FROM outbox WHERE state = 'dead_lettered' ORDER BY id LIMIT $1");
    rows::commands(query(c, &sql, &[&limit(n)]).await?)
}

pub(super) async fn exceptions(
    c: &impl GenericClient,
    state: Option<ExceptionState>,
    n: usize,
) -> Result<Vec<ExceptionRow>> {
    let found = match state {
        Some(state) => {
            let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE state = $1 ORDER BY id DESC LIMIT $2");
            query(c, &sql, &[&state.as_str(), &limit(n)]).await?
        }
        None => {
            let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions ORDER BY id DESC LIMIT $1");
            query(c, &sql, &[&limit(n)]).await?
        }
    };
    rows::exceptions(found)
}

pub(super) async fn open_exceptions_by_pattern(c: &impl GenericClient) -> Result<Vec<(String, u64)>> {
    let found = query(
        c,
        "SELECT pattern, count(*) FROM exceptions WHERE state = 'open' GROUP BY pattern ORDER BY pattern",
        &[],
    )
    .await?;
    found.iter().map(|r| Ok((r.try_get(0)?, count(r.try_get(1)?)))).collect()
}

/// Counts per state in one statement, so one snapshot (counted one by one, a command moving
/// from pending to in flight between two counts would be in neither).
pub(super) async fn command_counts(c: &impl GenericClient) -> Result<Vec<(String, u64)>> {
    const STATES: [&str; 5] = ["dead_lettered", "in_flight", "pending", "superseded", "abandoned"];
    let row = query_one(
        c,
        "SELECT (SELECT count(*) FROM outbox),
                (SELECT count(*) FROM outbox WHERE state = 'dead_lettered'),
                (SELECT count(*) FROM outbox WHERE state = 'in_flight'),
                (SELECT count(*) FROM outbox WHERE state = 'pending'),
                (SELECT count(*) FROM outbox WHERE state = 'superseded'),
                (SELECT count(*) FROM outbox WHERE state = 'abandoned')",
        &[],
    )
    .await?;
    let numbers: Vec<u64> = (0..=STATES.len()).map(|i| Ok(count(row.try_get(i)?))).collect::<Result<_>>()?;
    let mut counts: Vec<(&str, u64)> = STATES.into_iter().zip(numbers[1..].iter().copied()).collect();
    let unfinished: u64 = counts.iter().map(|(_, n)| n).sum();
    counts.insert(0, ("acknowledged", numbers[0].saturating_sub(unfinished)));
    Ok(counts.into_iter().filter(|(_, n)| *n > 0).map(|(s, n)| (s.to_owned(), n)).collect())
}

pub(super) async fn order_timeline(c: &impl GenericClient, order_ref: &str) -> Result<Timeline> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM inbox WHERE order_ref = $1 ORDER BY id");
    let events = query(c, &sql, &[&order_ref]).await?.iter().map(rows::event).collect::<Result<Vec<_>>>()?;
    let events = events.into_iter().map(StoredEvent::stamped).collect();
    let sql = format!("SELECT {COMMAND_COLUMNS} FROM outbox WHERE order_ref = $1 ORDER BY id");
    let commands = rows::commands(query(c, &sql, &[&order_ref]).await?)?;
    let attempts = query(
        c,
        "SELECT a.command_id, a.attempt, a.started_at, a.finished_at, a.outcome, a.detail, a.mapping
         FROM attempts a JOIN outbox c ON c.id = a.command_id
         WHERE c.order_ref = $1 ORDER BY a.started_at, a.command_id, a.attempt",
        &[&order_ref],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(AttemptRow {
            command_id: r.try_get(0)?,
            attempt: r.try_get::<_, i32>(1)?.max(0) as u32,
            started_at: r.try_get(2)?,
            finished_at: r.try_get(3)?,
            outcome: r.try_get(4)?,
            detail: r.try_get(5)?,
            mapping: r.try_get(6)?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let ledger = query(
        c,
        "SELECT system, state, record_id, updated_at FROM ledger WHERE order_ref = $1 ORDER BY updated_at, system",
        &[&order_ref],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(LedgerRow {
            system: r.try_get(0)?,
            state: r.try_get(1)?,
            record_id: r.try_get(2)?,
            updated_at: r.try_get(3)?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE order_ref = $1 ORDER BY id");
    let exceptions = rows::exceptions(query(c, &sql, &[&order_ref]).await?)?;
    let audit = query(c, "SELECT at, actor, action, detail FROM audit WHERE order_ref = $1 ORDER BY id", &[&order_ref])
        .await?
        .iter()
        .map(|r| Ok(AuditRow { at: r.try_get(0)?, actor: r.try_get(1)?, action: r.try_get(2)?, detail: r.try_get(3)? }))
        .collect::<Result<Vec<_>>>()?;
    let quarantined = super::quarantine::of_order(c, order_ref).await?;
    Ok(Timeline { order_ref: order_ref.to_owned(), events, commands, attempts, ledger, exceptions, audit, quarantined })
}

pub(super) async fn exception(c: &impl GenericClient, id: i64) -> Result<Option<ExceptionRow>> {
    let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE id = $1");
    query_opt(c, &sql, &[&id]).await?.as_ref().map(rows::exception).transpose()
}

const FACT_COLUMNS: &str = "f.id, f.order_ref, f.system, f.kind, f.record_id, f.command_id, \
     coalesce(i.payload, o.payload), f.at, f.event_row \
     FROM facts f LEFT JOIN inbox i ON i.id = f.event_row LEFT JOIN outbox o ON o.id = f.command_id";

pub(super) async fn facts_after(c: &impl GenericClient, after: i64, n: usize) -> Result<Vec<crate::FactRow>> {
    let sql = "SELECT f.id, f.order_ref, f.system, f.kind, f.record_id, f.command_id, o.payload, f.at, f.event_row
               FROM facts f LEFT JOIN outbox o ON o.id = f.command_id
               WHERE f.id > $1 ORDER BY f.id LIMIT $2";
    query(c, sql, &[&after, &limit(n)]).await?.iter().map(fact_row).collect()
}

pub(super) async fn event_payloads(c: &impl GenericClient, rows: &[i64]) -> Result<Vec<(i64, String)>> {
    let found = query(c, "SELECT id, payload FROM inbox WHERE id = ANY($1)", &[&rows]).await?;
    found.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

pub(super) async fn facts_of(c: &impl GenericClient, order_refs: &[String], up_to: i64) -> Result<Vec<crate::FactRow>> {
    let sql = format!("SELECT {FACT_COLUMNS} WHERE f.order_ref = ANY($1) AND f.id <= $2 ORDER BY f.id");
    query(c, &sql, &[&order_refs, &up_to]).await?.iter().map(fact_row).collect()
}

fn fact_row(r: &tokio_postgres::Row) -> Result<crate::FactRow> {
    Ok(crate::FactRow {
        id: r.try_get(0)?,
        order_ref: r.try_get(1)?,
        system: r.try_get(2)?,
        kind: r.try_get(3)?,
        record_id: r.try_get(4)?,
        command_id: r.try_get(5)?,
        payload: r.try_get(6)?,
        at: r.try_get(7)?,
        event_row: r.try_get(8)?,
    })
}

pub(super) async fn raised_findings(
    c: &impl GenericClient,
    order_refs: &[String],
) -> Result<Vec<crate::RaisedFinding>> {
    let found = query(
        c,
        "SELECT order_ref, pattern, subject FROM exceptions
         WHERE order_ref = ANY($1) AND subject IS NOT NULL AND state IN ('open', 'acknowledged', 'ignored')",
        &[&order_refs],
    )
    .await?;
    found
        .iter()
        .map(|r| Ok(crate::RaisedFinding { order_ref: r.try_get(0)?, pattern: r.try_get(1)?, subject: r.try_get(2)? }))
        .collect()
}

pub(super) async fn rules_checkpoint(c: &impl GenericClient) -> Result<Option<crate::RulesCheckpoint>> {
    let Some(row) = query_opt(c, "SELECT position FROM rules_checkpoint WHERE id = 1", &[]).await? else {
        return Ok(None);
    };
    let position: i64 = row.try_get(0)?;
    let orders = query(c, "SELECT order_ref FROM rules_board ORDER BY order_ref", &[])
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect::<Result<Vec<String>>>()?;
    Ok(Some(crate::RulesCheckpoint { position, orders }))
}

pub(super) async fn flow_stats(c: &impl GenericClient, since: Timestamp) -> Result<Vec<crate::FlowStats>> {
    // One pass: the window's commands by their creation index, each one's attempts by their
    // key, aggregated together.
    let found = query(
        c,
        "SELECT c.flow, c.target, c.kind, c.state,
                count(a.attempt),
                count(CASE WHEN a.outcome IN ('retry', 'ambiguous') THEN 1 END),
                count(CASE WHEN a.outcome = 'dead_lettered' THEN 1 END),
                min(CASE WHEN a.outcome = 'acknowledged' THEN a.finished_at END),
                min(i.received_at)
         FROM outbox c LEFT JOIN attempts a ON a.command_id = c.id LEFT JOIN inbox i ON i.id = c.event_row
         WHERE c.created_at >= $1
         GROUP BY c.id",
        &[&since],
    )
    .await?;
    let samples = found
        .iter()
        .map(|r| {
            let acked: Option<Timestamp> = r.try_get(7)?;
            let received: Option<Timestamp> = r.try_get(8)?;
            Ok(crate::CommandSample {
                flow: r.try_get(0)?,
                target: r.try_get(1)?,
                kind: r.try_get(2)?,
                state: rows::parsed("outbox.state", r.try_get(3)?)?,
                attempts: count(r.try_get(4)?),
                retries: count(r.try_get(5)?),
                dead_lettered: r.try_get::<_, i64>(6)? > 0,
                latency_ms: acked.zip(received).map(|(a, e)| (a.as_microsecond() - e.as_microsecond()).max(0) / 1000),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(crate::flow_stats_of(samples))
}
