//! Writes; each runs inside a savepoint of the writer's group commit.

use std::sync::LazyLock;

use handoff_model::CommandKind;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{self, COMMAND_COLUMNS, micros};
use crate::{
    AttemptRecord, Command, NewCommand, NewEvent, NewFinding, Outcome, Plan, Raised, Recorded, Replay, Result,
    acknowledged_state,
};

pub(super) fn record_event(conn: &Connection, e: &NewEvent) -> Result<Recorded> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO inbox (system, event_id, kind, order_ref, received_at, payload, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (system, event_id) DO NOTHING",
    )?;
    let inserted = insert.execute(params![
        e.system,
        e.event_id,
        e.kind.as_str(),
        e.order_ref,
        micros(e.received_at),
        e.payload,
        e.raw
    ])?;
    if inserted == 1 {
        return Ok(Recorded::New(conn.last_insert_rowid()));
    }
    let mut find = conn.prepare_cached("SELECT id FROM inbox WHERE system = ?1 AND event_id = ?2")?;
    Ok(Recorded::Duplicate(find.query_row(params![e.system, e.event_id], |r| r.get(0))?))
}

pub(super) fn record_polled(
    conn: &Connection,
    system: &str,
    events: &[NewEvent],
    held: &[crate::NewQuarantined],
    cursor: &str,
    now: Timestamp,
) -> Result<Vec<Recorded>> {
    let recorded = events.iter().map(|e| record_event(conn, e)).collect::<Result<Vec<_>>>()?;
    for h in held {
        super::quarantine::hold(conn, h, now)?;
    }
    conn.prepare_cached(
        "INSERT INTO poll_cursor (system, cursor, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (system) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
    )?
    .execute(params![system, cursor, micros(now)])?;
    Ok(recorded)
}

pub(super) fn audit(
    conn: &Connection,
    at: Timestamp,
    actor: &str,
    action: &str,
    order_ref: &str,
    detail: &str,
) -> Result<()> {
    let mut stmt =
        conn.prepare_cached("INSERT INTO audit (at, actor, action, order_ref, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    stmt.execute(params![micros(at), actor, action, order_ref, detail])?;
    Ok(())
}

fn set_ledger(
    conn: &Connection,
    order_ref: &str,
    system: &str,
    state: &str,
    record_id: Option<&str>,
    at: Timestamp,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO ledger (order_ref, system, state, record_id, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (order_ref, system) DO UPDATE SET state = excluded.state,
             record_id = coalesce(excluded.record_id, ledger.record_id), updated_at = excluded.updated_at",
    )?;
    stmt.execute(params![order_ref, system, state, record_id, micros(at)])?;
    Ok(())
}

pub(super) fn apply_plans(conn: &Connection, plans: &[Plan], now: Timestamp) -> Result<()> {
    let at = micros(now);
    if let Some(last) = plans.iter().map(|p| p.event_row).max() {
        conn.prepare_cached("UPDATE intake_cursor SET last_row = max(last_row, ?1)")?.execute([last])?;
    }
    let mut emails = EmailKeys::default();
    for plan in plans {
        if let Some(key) = &plan.search.email_key {
            let before: Option<String> = conn
                .prepare_cached("SELECT email_key FROM orders WHERE order_ref = ?1")?
                .query_row([&plan.order_ref], |r| r.get(0))
                .optional()?
                .flatten();
            emails.change(&plan.order_ref, before, key);
        }
        let s = &plan.state;
        // The order and its search columns in one statement: the event's channel, else the one
        // the order had, else its source; the event's email key, else the one it had.
        conn.prepare_cached(
            "INSERT INTO orders (order_ref, source, created, cancelled, last_version, last_fingerprint, first_seen,
                 updated_at, channel, email_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, coalesce(?8, ?2), ?9)
             ON CONFLICT (order_ref) DO UPDATE SET source = excluded.source, created = excluded.created,
                 cancelled = excluded.cancelled, last_version = excluded.last_version,
                 last_fingerprint = excluded.last_fingerprint, updated_at = excluded.updated_at,
                 channel = coalesce(?8, orders.channel, excluded.source),
                 email_key = coalesce(?9, orders.email_key)",
        )?
        .execute(params![
            plan.order_ref,
            s.source,
            s.created,
            s.cancelled,
            s.last_version.map(|v| v as i64),
            s.last_fingerprint,
            at,
            plan.search.channel,
            plan.search.email_key,
        ])?;
        if let Some((system, state)) = &plan.ledger {
            set_ledger(conn, &plan.order_ref, system, state, None, now)?;
        }
        for command in &plan.commands {
            enqueue(conn, plan.event_row, command, now)?;
        }
        conn.prepare_cached(
            "INSERT INTO facts (order_ref, system, kind, event_row, at)
             SELECT order_ref, system, kind, id, ?2 FROM inbox WHERE id = ?1",
        )?
        .execute(params![plan.event_row, at])?;
        for detail in &plan.audit {
            audit(conn, now, "engine", "event", &plan.order_ref, detail)?;
        }
    }
    emails.write(conn)
}

/// Adds every order's email key to the index of email keys (migration 0019): the migration's
/// hook and an import, for the orders already kept.
pub(super) const FILL_EMAIL_INDEX: &str = "INSERT INTO orders_email (email_key, order_ref) SELECT email_key, order_ref FROM orders WHERE email_key IS NOT NULL";

/// The email keys a batch of plans gives its orders, written to the index of email keys
/// (migration 0019) in one statement once the batch's orders are: FTS5 writes a segment of what
/// it was given at every savepoint, and each upsert of an order opens one.
#[derive(Default)]
struct EmailKeys {
    /// The key each order gets, the last one the batch gives it.
    added: std::collections::BTreeMap<String, String>,
    /// Keys the index holds for orders that no longer have them: (key, order).
    removed: Vec<(String, String)>,
}

impl EmailKeys {
    /// The order had the key `before` (as the batch left it so far) and gets `key`.
    fn change(&mut self, order_ref: &str, before: Option<String>, key: &str) {
        if before.as_deref() == Some(key) {
            return;
        }
        match self.added.get_mut(order_ref) {
            // The key the batch gave it before never reached the index.
            Some(added) => key.clone_into(added),
            None => {
                self.removed.extend(before.map(|b| (b, order_ref.to_owned())));
                self.added.insert(order_ref.to_owned(), key.to_owned());
            }
        }
    }

    fn write(self, conn: &Connection) -> Result<()> {
        for (key, order_ref) in &self.removed {
            conn.prepare_cached(
                "DELETE FROM orders_email WHERE rowid IN
                     (SELECT rowid FROM orders_email WHERE orders_email MATCH ?1 AND order_ref = ?2)",
            )?
            .execute(params![super::search::email_phrase(key), order_ref])?;
        }
        if !self.added.is_empty() {
            // One statement for the whole batch: its keys in one segment.
            let added = serde_json::to_string(&self.added).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
            conn.prepare_cached(
                "INSERT INTO orders_email (email_key, order_ref) SELECT value, key FROM json_each(?1)",
            )?
            .execute([added])?;
        }
        Ok(())
    }
}

/// Keeps an order's searchable fields (`crate::search::OrderFilter`) from a stored event, for
/// migration 0012's hook: the channel it names (else its source) and its customer's email key,
/// when the event says.
fn order_search(conn: &Connection, order_ref: &str, event_row: i64) -> rusqlite::Result<()> {
    let (channel, email): (Option<String>, Option<String>) = conn
        .prepare_cached(
            "SELECT json_extract(payload, '$.order.channel'), json_extract(payload, '$.order.customer.email')
             FROM inbox WHERE id = ?1 AND json_valid(payload)",
        )?
        .query_row([event_row], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or_default();
    conn.prepare_cached(
        "UPDATE orders SET channel = coalesce(?2, channel, source), email_key = coalesce(?3, email_key)
         WHERE order_ref = ?1",
    )?
    .execute(params![order_ref, channel, email.as_deref().map(crate::search::email_key)])?;
    Ok(())
}

/// Migration 0012's hook: fills the search fields of the orders stored before it, from each
/// one's events in order.
pub(super) fn fill_order_search(tx: &rusqlite::Transaction) -> rusqlite_migration::HookResult {
    let events: Vec<(String, i64)> = tx
        .prepare("SELECT i.order_ref, i.id FROM inbox i JOIN orders o ON o.order_ref = i.order_ref ORDER BY i.id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (order_ref, row) in events {
        order_search(tx, &order_ref, row)?;
    }
    Ok(())
}

/// The fingerprint an exception is kept with: the part of its cluster's key computed in Rust.
pub(super) fn fingerprint(detail: &str) -> String {
    handoff_model::cluster::fingerprint(detail)
}

/// Migration 0014's hook: the fingerprint of every exception from before it.
pub(super) fn fill_fingerprints(tx: &rusqlite::Transaction) -> rusqlite_migration::HookResult {
    let details: Vec<(i64, String)> = tx
        .prepare("SELECT id, detail FROM exceptions WHERE fingerprint IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = tx.prepare("UPDATE exceptions SET fingerprint = ?1 WHERE id = ?2")?;
    for (id, detail) in details {
        update.execute(params![fingerprint(&detail), id])?;
    }
    Ok(())
}

/// Writes a command to the outbox; `None` when its idempotency key was already used.
fn enqueue(conn: &Connection, event_row: i64, c: &NewCommand, now: Timestamp) -> Result<Option<i64>> {
    let mut moot = false;
    if c.supersede_unsent {
        let mut stmt = conn.prepare_cached(
            "UPDATE outbox SET state = 'superseded', updated_at = ?1
             WHERE order_ref = ?2 AND target = ?3 AND state = 'pending' AND attempts = 0
               AND kind IN ('create_order', 'update_order')
             RETURNING id, kind",
        )?;
        let superseded = stmt
            .query_map(params![micros(now), c.order_ref, c.target], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (id, kind) in &superseded {
            moot |= kind == CommandKind::CreateOrder.as_str();
            let detail =
                format!("command {id} ({kind}) to {} superseded by {} before it was ever sent", c.target, c.kind);
            audit(conn, now, "engine", "superseded", &c.order_ref, &detail)?;
        }
    }
    let state = if moot { "superseded" } else { "pending" };
    let mut insert = conn.prepare_cached(
        "INSERT INTO outbox (flow, target, order_ref, kind, event_row, idempotency_key, external_ref, version,
                             state, next_attempt_at, budget_start, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?10, ?10)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )?;
    let inserted = insert.execute(params![
        c.flow,
        c.target,
        c.order_ref,
        c.kind.as_str(),
        event_row,
        c.idempotency_key,
        c.external_ref,
        c.version.map(|v| v as i64),
        state,
        micros(now),
    ])?;
    if inserted == 0 {
        return Ok(None);
    }
    let id = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO outbox_payloads (command_id, payload) VALUES (?1, ?2)")?
        .execute(params![id, c.payload])?;
    if moot {
        let detail = format!("{} to {} not sent: the create it would follow was never sent", c.kind, c.target);
        audit(conn, now, "engine", "superseded", &c.order_ref, &detail)?;
    }
    Ok(Some(id))
}

/// Claims due pending commands that head their (order, target) sequence: no earlier command
/// of the same order to the same target is still pending, in flight or dead-lettered. This is
/// what keeps a cancel behind its create, and it blocks only that one order.
pub(super) fn claim_due(conn: &Connection, now: Timestamp, limit: usize) -> Result<Vec<Command>> {
    claim_due_to(conn, None, &[], now, limit)
}

/// A command `c` no earlier unfinished command of its order and target holds back: the head of
/// its sequence.
pub(super) const HEADS_ITS_SEQUENCE: &str = "NOT EXISTS (
    SELECT 1 FROM outbox p
    WHERE p.order_ref = c.order_ref AND p.target = c.target AND p.id < c.id
      AND p.state IN ('pending', 'in_flight', 'dead_lettered'))";

/// The claim's statements, built once: to any target but those of the JSON array `?3`, or to
/// the one `?3` names. The due commands are read in their index's order, named: left to
/// choose, SQLite took the index of the states (the console's) and sorted every pending command
/// at each claim.
pub(super) static CLAIMS: LazyLock<[String; 2]> = LazyLock::new(|| {
    [("outbox_due", "c.target NOT IN (SELECT value FROM json_each(?3))"), ("outbox_due_by_target", "c.target = ?3")]
        .map(|(index, to)| {
            format!(
                "UPDATE outbox SET state = 'in_flight', attempts = attempts + 1, budget_attempts = budget_attempts + 1,
                    updated_at = ?1
             WHERE id IN (
                 SELECT c.id FROM outbox c INDEXED BY {index}
                 WHERE c.state = 'pending' AND {to} AND c.next_attempt_at <= ?1 AND {HEADS_ITS_SEQUENCE}
                 ORDER BY c.next_attempt_at, c.id
                 LIMIT ?2 + 0)
             RETURNING {COMMAND_COLUMNS}"
            )
        })
});

/// As [`claim_due`], for the commands to one target only (`only`), or to any target but those
/// in `except`.
pub(super) fn claim_due_to(
    conn: &Connection,
    only: Option<&str>,
    except: &[String],
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Command>> {
    let target = match only {
        Some(only) => only.to_owned(),
        None => serde_json::to_string(except).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?,
    };
    let mut stmt = conn.prepare_cached(&CLAIMS[usize::from(only.is_some())])?;
    let mut claimed = stmt
        .query_map(params![micros(now), limit as i64, target], rows::command)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

pub(super) fn record_attempt(conn: &Connection, a: &AttemptRecord) -> Result<()> {
    let c = &a.command;
    let now = a.finished_at;
    let detail = match (&a.outcome, &a.note) {
        (Outcome::Acknowledged { record_id }, note) => join(note, &format!("record {record_id}")),
        (Outcome::Retry { error, at, .. }, note) => join(note, &format!("{error}; next attempt at {at}")),
        (Outcome::Throttled { error, at, .. }, note) => {
            join(note, &format!("{error}; asked to wait: next attempt at {at}, no attempt spent"))
        }
        (Outcome::DeadLettered { error, .. }, note) => join(note, error),
    };
    conn.prepare_cached(
        "INSERT INTO attempts (command_id, attempt, started_at, finished_at, outcome, detail, mapping)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (command_id, attempt) DO NOTHING",
    )?
    .execute(params![c.id, c.attempts, micros(a.started_at), micros(now), a.outcome.name(), detail, a.mapping])?;
    match &a.outcome {
        Outcome::Acknowledged { record_id } => {
            conn.prepare_cached(
                "UPDATE outbox SET state = 'acknowledged', record_id = ?1, ambiguous = 0, last_error = NULL,
                        updated_at = ?2 WHERE id = ?3",
            )?
            .execute(params![record_id, micros(now), c.id])?;
            match c.address() {
                // A duplicate closed: the order's own record in that system stays as it was,
                // and is the one kept.
                Some(address) => {
                    conn.prepare_cached(
                        "UPDATE ledger SET record_id = coalesce(?1, record_id), updated_at = ?2
                         WHERE order_ref = ?3 AND system = ?4",
                    )?
                    .execute(params![address.keep, micros(now), c.order_ref, c.target])?;
                }
                None => set_ledger(conn, &c.order_ref, &c.target, acknowledged_state(c.kind), Some(record_id), now)?,
            }
            fact(conn, c, "acknowledged", Some(record_id), now)?;
            let resolved = conn
                .prepare_cached(
                    "UPDATE exceptions SET state = 'auto_resolved', updated_at = ?1
                     WHERE command_id = ?2 AND state IN ('open', 'acknowledged')",
                )?
                .execute(params![micros(now), c.id])?;
            if resolved > 0 {
                audit(
                    conn,
                    now,
                    "engine",
                    "exception auto-resolved",
                    &c.order_ref,
                    &format!("command {} delivered", c.id),
                )?;
            }
        }
        Outcome::Retry { at, ambiguous, error } => {
            conn.prepare_cached(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?1, ambiguous = ?2, last_error = ?3,
                        updated_at = ?4 WHERE id = ?5",
            )?
            .execute(params![micros(*at), ambiguous, error, micros(now), c.id])?;
        }
        Outcome::Throttled { at, ambiguous, error } => {
            conn.prepare_cached(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?1, ambiguous = ?2, last_error = ?3,
                        budget_attempts = max(budget_attempts - 1, 0), updated_at = ?4 WHERE id = ?5",
            )?
            .execute(params![micros(*at), ambiguous, error, micros(now), c.id])?;
        }
        Outcome::DeadLettered { ambiguous, error, field, pattern } => {
            fact(conn, c, "dead_lettered", None, now)?;
            conn.prepare_cached(
                "UPDATE outbox SET state = 'dead_lettered', ambiguous = ?1, last_error = ?2, updated_at = ?3
                 WHERE id = ?4",
            )?
            .execute(params![ambiguous, error, micros(now), c.id])?;
            let detail =
                format!("{} to {} dead-lettered after {} attempts: {error}", c.kind, c.target, c.budget_attempts);
            conn.prepare_cached(
                "INSERT INTO exceptions (pattern, order_ref, flow, command_id, field, detail, state, opened_at, updated_at,
                                         mapping, fingerprint)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?7, ?8, ?9)",
            )?
            .execute(params![
                pattern.as_str(),
                c.order_ref,
                c.flow,
                c.id,
                field,
                detail,
                micros(now),
                a.mapping,
                fingerprint(&detail),
            ])?;
            audit(conn, now, "engine", "dead-lettered", &c.order_ref, &format!("command {}: {error}", c.id))?;
        }
    }
    Ok(())
}

/// Journals a command's outcome for the rules.
fn fact(conn: &Connection, c: &Command, outcome: &str, record_id: Option<&str>, now: Timestamp) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO facts (order_ref, system, kind, command_id, record_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![c.order_ref, c.target, format!("{outcome}:{}", c.kind), c.id, record_id, micros(now)])?;
    Ok(())
}

pub(super) fn raise_finding(conn: &Connection, f: &NewFinding, now: Timestamp) -> Result<Raised> {
    let existing: Option<(i64, String)> = conn
        .prepare_cached("SELECT id, state FROM exceptions WHERE pattern = ?1 AND order_ref = ?2 AND subject = ?3")?
        .query_row(params![f.pattern.as_str(), f.order_ref, f.subject], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let actor = format!("rule:{}", f.pattern);
    match existing {
        Some((id, state)) if state == "open" || state == "acknowledged" => Ok(Raised::AlreadyOpen(id)),
        // Ignored with a reason by a person: the rules respect it.
        Some((id, state)) if state == "ignored" => Ok(Raised::AlreadyOpen(id)),
        Some((id, _)) => {
            conn.prepare_cached(
                "UPDATE exceptions SET state = 'open', detail = ?1, evidence = ?2, action = ?3, updated_at = ?4,
                        rechecked = 1, fingerprint = ?6 WHERE id = ?5",
            )?
            .execute(params![f.detail, f.evidence, f.action, micros(now), id, fingerprint(&f.detail)])?;
            audit(
                conn,
                now,
                &actor,
                "exception reopened",
                &f.order_ref,
                &format!("exception {id}: the cause persists: {}", f.detail),
            )?;
            Ok(Raised::Reopened(id))
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO exceptions (pattern, order_ref, flow, field, detail, state, opened_at, updated_at, subject,
                                         channel, amount, currency, action, evidence, fingerprint)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                f.pattern.as_str(),
                f.order_ref,
                f.flow,
                f.field,
                f.detail,
                micros(now),
                f.subject,
                f.channel,
                f.amount,
                f.currency,
                f.action,
                f.evidence,
                fingerprint(&f.detail),
            ])?;
            let id = conn.last_insert_rowid();
            audit(conn, now, &actor, "exception raised", &f.order_ref, &format!("exception {id}: {}", f.detail))?;
            Ok(Raised::Opened(id))
        }
    }
}

pub(super) fn clear_finding(
    conn: &Connection,
    pattern: handoff_model::Pattern,
    order_ref: &str,
    subject: &str,
    now: Timestamp,
) -> Result<bool> {
    let id: Option<i64> = conn
        .prepare_cached(
            "UPDATE exceptions SET state = 'auto_resolved', updated_at = ?1
             WHERE pattern = ?2 AND order_ref = ?3 AND subject = ?4 AND state IN ('open', 'acknowledged')
             RETURNING id",
        )?
        .query_row(params![micros(now), pattern.as_str(), order_ref, subject], |r| r.get(0))
        .optional()?;
    if let Some(id) = id {
        audit(
            conn,
            now,
            &format!("rule:{pattern}"),
            "exception auto-resolved",
            order_ref,
            &format!("exception {id}: the cause is gone"),
        )?;
    }
    Ok(id.is_some())
}

pub(super) fn take_rechecks(conn: &Connection, limit: usize) -> Result<Vec<crate::ExceptionRow>> {
    let sql = format!(
        "UPDATE exceptions SET rechecked = 1 WHERE id IN (SELECT id FROM exceptions WHERE rechecked = 0 LIMIT ?1 + 0)
         RETURNING {}",
        super::rows::EXCEPTION_COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([limit as i64], super::rows::exception)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(super) fn enqueue_action(
    conn: &Connection,
    exception_id: i64,
    event_row: i64,
    command: &NewCommand,
    actor: &str,
    now: Timestamp,
) -> Result<Option<i64>> {
    let id = enqueue(conn, event_row, command, now)?;
    if let Some(id) = id {
        let detail = format!("exception {exception_id}: {} to {} queued as command {id}", command.kind, command.target);
        audit(conn, now, actor, "action", &command.order_ref, &detail)?;
    }
    Ok(id)
}

fn join(note: &Option<String>, s: &str) -> String {
    match note {
        Some(n) => format!("{n}; {s}"),
        None => s.to_owned(),
    }
}

pub(super) fn recover_in_flight(
    conn: &Connection,
    now: Timestamp,
    read_back_at: &std::collections::HashMap<String, Timestamp>,
) -> Result<u64> {
    let at: serde_json::Map<String, serde_json::Value> =
        read_back_at.iter().map(|(target, at)| (target.clone(), micros(*at).into())).collect();
    let at = serde_json::Value::Object(at).to_string();
    let n = conn
        .prepare_cached(
            "UPDATE outbox SET state = 'pending', ambiguous = 1,
                    next_attempt_at = coalesce((SELECT value FROM json_each(?2) WHERE key = outbox.target), ?1),
                    last_error = 'hub stopped while the command was in flight', updated_at = ?1
             WHERE state = 'in_flight'",
        )?
        .execute(params![micros(now), at])?;
    if n > 0 {
        tracing::warn!(
            message = "commands in flight at the last stop will be read back before any resend",
            commands = n
        );
    }
    Ok(n as u64)
}

pub(super) fn move_exception(
    conn: &Connection,
    id: i64,
    to: handoff_model::ExceptionState,
    actor: &str,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<crate::Moved> {
    let select = format!("SELECT {} FROM exceptions WHERE id = ?1", super::rows::EXCEPTION_COLUMNS);
    let Some(row) = conn.prepare_cached(&select)?.query_row([id], super::rows::exception).optional()? else {
        return Ok(crate::Moved::NotFound);
    };
    let from = handoff_model::ExceptionState::parse(&row.state);
    if !from.is_some_and(|from| from.person_may_move(to)) {
        return Ok(crate::Moved::Refused { from: row.state });
    }
    // A rules exception resolved by a person is checked again by the rules.
    conn.prepare_cached(
        "UPDATE exceptions SET state = ?1, updated_at = ?2,
                rechecked = CASE WHEN ?1 = 'resolved' AND subject IS NOT NULL THEN 0 ELSE rechecked END
         WHERE id = ?3",
    )?
    .execute(params![to.as_str(), micros(now), id])?;
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    audit(conn, now, actor, to.as_str(), &row.order_ref, &format!("exception {id} ({}){why}", row.pattern))?;
    if let Some(command) = row.command_id
        && matches!(to, handoff_model::ExceptionState::Resolved | handoff_model::ExceptionState::Ignored)
    {
        let because = format!("its exception {id} was {} by {actor}{why}", to.as_str());
        abandon(conn, command, actor, Some(&because), now)?;
    }
    Ok(crate::Moved::Done(crate::ExceptionRow { state: to.as_str().into(), updated_at: now, ..row }))
}

pub(super) fn set_dead_letter_payload(
    conn: &Connection,
    id: i64,
    payload: &str,
    actor: &str,
    now: Timestamp,
) -> Result<bool> {
    let order_ref: Option<String> = conn
        .prepare_cached("SELECT order_ref FROM outbox WHERE id = ?1 AND state = 'dead_lettered'")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(order_ref) = order_ref else { return Ok(false) };
    conn.prepare_cached("UPDATE outbox_payloads SET payload = ?1 WHERE command_id = ?2")?
        .execute(params![payload, id])?;
    conn.prepare_cached("UPDATE outbox SET updated_at = ?1 WHERE id = ?2")?.execute(params![micros(now), id])?;
    audit(conn, now, actor, "payload-set", &order_ref, &format!("dead letter {id}: payload rewritten before replay"))?;
    Ok(true)
}

pub(super) fn replay(conn: &Connection, which: Replay, actor: &str, now: Timestamp) -> Result<u64> {
    let ids: Vec<(i64, String)> = match which {
        Replay::One(id) => conn
            .prepare_cached("SELECT id, order_ref FROM outbox WHERE id = ?1 AND state = 'dead_lettered'")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .into_iter()
            .collect(),
        Replay::All => conn
            .prepare_cached("SELECT id, order_ref FROM outbox WHERE state = 'dead_lettered' ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?,
    };
    for (id, order_ref) in &ids {
        conn.prepare_cached(
            "UPDATE outbox SET state = 'pending', next_attempt_at = ?1, budget_attempts = 0, budget_start = ?1,
                    updated_at = ?1 WHERE id = ?2",
        )?
        .execute(params![micros(now), id])?;
        conn.prepare_cached(
            "UPDATE exceptions SET state = 'acknowledged', updated_at = ?1 WHERE command_id = ?2 AND state = 'open'",
        )?
        .execute(params![micros(now), id])?;
        audit(conn, now, actor, "replayed", order_ref, &format!("dead letter {id} replayed"))?;
    }
    Ok(ids.len() as u64)
}

/// Adds orders to those the rules' checkpoint keeps.
pub(super) fn keep_on_board(conn: &Connection, order_refs: &[String]) -> Result<()> {
    let mut insert = conn.prepare_cached("INSERT OR IGNORE INTO rules_board (order_ref) VALUES (?1)")?;
    for order_ref in order_refs {
        insert.execute([order_ref])?;
    }
    Ok(())
}

/// Takes orders away from those the rules' checkpoint keeps.
pub(super) fn take_off_board(conn: &Connection, order_refs: &[String]) -> Result<()> {
    let mut delete = conn.prepare_cached("DELETE FROM rules_board WHERE order_ref = ?1")?;
    for order_ref in order_refs {
        delete.execute([order_ref])?;
    }
    Ok(())
}

pub(super) fn set_checkpoint_position(conn: &Connection, position: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO rules_checkpoint (id, position) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET position = excluded.position",
    )?
    .execute([position])?;
    Ok(())
}

pub(super) fn abandon(conn: &Connection, id: i64, actor: &str, reason: Option<&str>, now: Timestamp) -> Result<bool> {
    let sql = format!(
        "UPDATE outbox SET state = 'abandoned', updated_at = ?1 WHERE id = ?2 AND state = 'dead_lettered'
         RETURNING {COMMAND_COLUMNS}"
    );
    let Some(c) = conn.prepare_cached(&sql)?.query_row(params![micros(now), id], rows::command).optional()? else {
        return Ok(false);
    };
    conn.prepare_cached(
        "UPDATE exceptions SET state = 'resolved', updated_at = ?1
         WHERE command_id = ?2 AND state IN ('open', 'acknowledged')",
    )?
    .execute(params![micros(now), id])?;
    fact(conn, &c, "abandoned", None, now)?;
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    let detail = format!("dead letter {id} ({} to {}) abandoned, never to be sent{why}", c.kind, c.target);
    audit(conn, now, actor, "abandoned", &c.order_ref, &detail)?;
    Ok(true)
}
