//! The purge (`[retention]`): personal data and raw bodies first, then the history. Each step
//! walks its table in id order from where the last purge stopped, up to the step's cutoff,
//! at most `limit` rows per call, so a purge never holds the writer for long; the caller
//! repeats while [`Purged::more`]. On the writer a call also stops once it has worked for
//! [`BATCH_TIME`] (every step still moves on by a row), since every webhook waits behind it.
//! A dry run is the same code run on a private copy of the store (`dry_run`), unbounded.

use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::rows::micros;
use crate::personal::{hash, hash_personal, scrub};
use crate::{PurgeBefore, Purged, Result};

/// The command states that will never be sent again.
const FINISHED: &str = "('acknowledged', 'superseded', 'abandoned')";

/// The work one call of the purge does on the writer before it lets the webhooks queued
/// behind it commit: about one batch of this is what a webhook waits while a purge runs.
pub(super) const BATCH_TIME: Duration = Duration::from_millis(25);

/// How much one call may do: rows per step and, on the writer, time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    rows: i64,
    until: Option<Instant>,
}

impl Budget {
    /// At most `limit` rows per step, for as long as it takes (a private copy's).
    pub(super) fn rows(limit: usize) -> Self {
        Budget { rows: limit.min(i64::MAX as usize) as i64, until: None }
    }

    /// At most `limit` rows per step and [`BATCH_TIME`] from now (the writer's).
    fn batch(limit: usize) -> Self {
        Budget { until: Some(Instant::now() + BATCH_TIME), ..Self::rows(limit) }
    }

    /// Whether a step that read `read` rows stops here for time: never before its first row,
    /// so every call moves every step on, whatever the ones before it took.
    fn out_of_time(&self, read: i64) -> bool {
        read > 0 && self.until.is_some_and(|until| Instant::now() >= until)
    }
}

/// One call of the purge on the writer (inside its job's savepoint: an error undoes it).
pub(super) fn purge(conn: &Connection, before: &PurgeBefore, limit: usize) -> Result<Purged> {
    run(conn, before, Budget::batch(limit))
}

/// Every step once, within `budget`.
pub(super) fn run(conn: &Connection, before: &PurgeBefore, budget: Budget) -> Result<Purged> {
    let mut p = Purged::default();
    let mut more = false;
    let personal = micros(before.personal_data);
    let history = micros(before.history);
    more |= inbox_personal(conn, personal, budget, &mut p)?;
    more |= quarantine_personal(conn, personal, budget, &mut p)?;
    more |= outbox_personal(conn, personal, budget, &mut p)?;
    more |= facts_history(conn, history, budget, &mut p)?;
    more |= audit_history(conn, history, budget, &mut p)?;
    // Deleting inbox rows needs both horizons passed: the dedup key's and the history's.
    let rows_before = micros(before.history.min(before.dedup));
    more |= outbox_history(conn, history, rows_before, budget, &mut p)?;
    more |= inbox_unreferenced(conn, rows_before, budget, &mut p)?;
    p.more = more;
    Ok(p)
}

fn cursor(conn: &Connection, step: &str) -> Result<i64> {
    let mut stmt = conn.prepare_cached("SELECT last_id FROM retention_cursor WHERE step = ?1")?;
    Ok(stmt.query_row([step], |r| r.get(0)).optional()?.unwrap_or(0))
}

fn set_cursor(conn: &Connection, step: &str, last_id: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO retention_cursor (step, last_id) VALUES (?1, ?2)
         ON CONFLICT (step) DO UPDATE SET last_id = excluded.last_id",
    )?
    .execute(params![step, last_id])?;
    Ok(())
}

/// Rows of a table after the step's cursor, in id order, up to the first one at or after
/// `cutoff` (ids follow arrival, so the rest are newer). `true` when the budget ran out first.
fn walk(
    conn: &Connection,
    step: &str,
    sql: &str,
    cutoff: i64,
    budget: Budget,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
) -> Result<bool> {
    let from = cursor(conn, step)?;
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params![from, budget.rows])?;
    let (mut last, mut read, mut out_of_time) = (from, 0, false);
    while let Some(row) = rows.next()? {
        if budget.out_of_time(read) {
            out_of_time = true;
            break;
        }
        let (id, at): (i64, i64) = (row.get(0)?, row.get(1)?);
        if at >= cutoff {
            break;
        }
        each(row)?;
        (last, read) = (id, read + 1);
    }
    drop(rows);
    if last != from {
        set_cursor(conn, step, last)?;
    }
    Ok(out_of_time || read == budget.rows)
}

/// Adds hashes to the evidence of an order's exceptions (under `purged`, by what they refer
/// to) and replaces the personal values it holds with their hashes.
fn keep_hashes(conn: &Connection, order_ref: &str, refers_to: &str, digest: &str, p: &mut Purged) -> Result<()> {
    let mut stmt = conn.prepare_cached("SELECT id, evidence FROM exceptions WHERE order_ref = ?1")?;
    let found: Vec<(i64, Option<String>)> =
        stmt.query_map([order_ref], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    for (id, evidence) in found {
        set_evidence_hash(conn, id, evidence.as_deref(), refers_to, digest)?;
        p.evidence_hashed += 1;
    }
    Ok(())
}

fn set_evidence_hash(conn: &Connection, id: i64, evidence: Option<&str>, refers_to: &str, digest: &str) -> Result<()> {
    let text = evidence.map(|e| hash_personal(e).unwrap_or_else(|| e.to_owned()));
    let mut value: Value = text.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
    if !value.is_object() {
        value = json!({});
    }
    let purged = value.as_object_mut().expect("an object").entry("purged").or_insert_with(|| json!({}));
    if let Some(map) = purged.as_object_mut() {
        map.insert(refers_to.to_owned(), Value::String(digest.to_owned()));
    }
    conn.prepare_cached("UPDATE exceptions SET evidence = ?1 WHERE id = ?2")?
        .execute(params![value.to_string(), id])?;
    Ok(())
}

/// Raw vendor bodies and the personal fields of canonical events.
fn inbox_personal(conn: &Connection, cutoff: i64, budget: Budget, p: &mut Purged) -> Result<bool> {
    walk(
        conn,
        "inbox_personal",
        "SELECT id, received_at, order_ref, payload, raw FROM inbox WHERE id > ?1 ORDER BY id LIMIT ?2 + 0",
        cutoff,
        budget,
        |row| {
            let (id, order_ref, payload, raw): (i64, String, String, Option<String>) =
                (row.get(0)?, row.get(2)?, row.get(3)?, row.get(4)?);
            let scrubbed = scrub(&payload);
            if raw.is_none() && scrubbed.is_none() {
                return Ok(());
            }
            let digest = hash(raw.as_deref().unwrap_or(&payload).as_bytes());
            conn.prepare_cached("UPDATE inbox SET raw = NULL, payload = ?1 WHERE id = ?2")?
                .execute(params![scrubbed.as_deref().unwrap_or(&payload), id])?;
            p.inbox_scrubbed += 1;
            keep_hashes(conn, &order_ref, &format!("inbox/{id}"), &digest, p)
        },
    )
}

/// Held bodies: the bytes and headers go, their hash stays on the row and in the evidence of
/// the exception raised for them.
fn quarantine_personal(conn: &Connection, cutoff: i64, budget: Budget, p: &mut Purged) -> Result<bool> {
    walk(
        conn,
        "quarantine_personal",
        "SELECT id, received_at, body, exception_id FROM quarantine WHERE id > ?1 ORDER BY id LIMIT ?2 + 0",
        cutoff,
        budget,
        |row| {
            let (id, body, exception): (i64, Vec<u8>, Option<i64>) = (row.get(0)?, row.get(2)?, row.get(3)?);
            if body.is_empty() {
                return Ok(());
            }
            let digest = hash(&body);
            conn.prepare_cached("UPDATE quarantine SET body = X'', headers = '{}', body_sha256 = ?1 WHERE id = ?2")?
                .execute(params![digest, id])?;
            p.quarantine_scrubbed += 1;
            if let Some(x) = exception {
                let evidence: Option<String> =
                    conn.query_row("SELECT evidence FROM exceptions WHERE id = ?1", [x], |r| r.get(0))?;
                set_evidence_hash(conn, x, evidence.as_deref(), &format!("quarantine/{id}"), &digest)?;
                p.evidence_hashed += 1;
            }
            Ok(())
        },
    )
}

fn finished(conn: &Connection, id: i64) -> Result<Option<bool>> {
    let sql = format!("SELECT state IN {FINISHED} FROM outbox WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], |r| r.get(0)).optional()?)
}

fn defer(conn: &Connection, step: &str, id: i64) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO retention_deferred (step, row_id) VALUES (?1, ?2)")?
        .execute(params![step, id])?;
    Ok(())
}

/// Commands passed before while unfinished (or still named by the journal): those finished
/// (or gone) since are forgotten and handed to `each`. Walked in id order from a cursor of
/// their own (`STEP:deferred`) within `budget`, so a purge's batch never takes them all at once
/// (thousands of commands finishing together held a webhook for 3 s); at the end of the list
/// the cursor starts over. `true` when the budget ran out first. Not a [`walk`]: handling an id
/// deletes it from the list and may insert it again, so the ids are read before any is handled.
fn deferred(conn: &Connection, step: &str, budget: Budget, mut each: impl FnMut(i64) -> Result<()>) -> Result<bool> {
    let at = format!("{step}:deferred");
    let from = cursor(conn, &at)?;
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT row_id FROM retention_deferred WHERE step = ?1 AND row_id > ?2 ORDER BY row_id LIMIT ?3 + 0",
        )?
        .query_map(params![step, from, budget.rows], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let (mut last, mut read) = (from, 0);
    for &id in &ids {
        if budget.out_of_time(read) {
            set_cursor(conn, &at, last)?;
            return Ok(true);
        }
        (last, read) = (id, read + 1);
        let done = match finished(conn, id)? {
            Some(false) => continue,
            Some(true) => true,
            None => false,
        };
        // Forgotten before it is handled, which may defer it again.
        conn.prepare_cached("DELETE FROM retention_deferred WHERE step = ?1 AND row_id = ?2")?
            .execute(params![step, id])?;
        if done {
            each(id)?;
        }
    }
    let more = read == budget.rows;
    set_cursor(conn, &at, if more { last } else { 0 })?;
    Ok(more)
}

/// The personal fields of finished commands' payloads; an unfinished command keeps what it
/// still has to send until it finishes.
fn outbox_personal(conn: &Connection, cutoff: i64, budget: Budget, p: &mut Purged) -> Result<bool> {
    let step = "outbox_personal";
    let mut scrub_one = |id: i64| -> Result<()> {
        let payload: String = conn
            .prepare_cached("SELECT payload FROM outbox_payloads WHERE command_id = ?1")?
            .query_row([id], |r| r.get(0))?;
        if let Some(clean) = scrub(&payload) {
            conn.prepare_cached("UPDATE outbox_payloads SET payload = ?1 WHERE command_id = ?2")?
                .execute(params![clean, id])?;
            p.outbox_scrubbed += 1;
        }
        Ok(())
    };
    let more = deferred(conn, step, budget, &mut scrub_one)?;
    let sql = format!("SELECT id, created_at, state IN {FINISHED} FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2 + 0");
    let walked = walk(conn, step, &sql, cutoff, budget, |row| {
        let (id, done): (i64, bool) = (row.get(0)?, row.get(2)?);
        if done { scrub_one(id) } else { defer(conn, step, id) }
    })?;
    Ok(more || walked)
}

/// The rules' journal: entries the rules checkpointed past, of orders they no longer follow
/// and with no open exception. An order quiet for the whole history is forgotten by the
/// rules; one they still follow keeps its journal.
fn facts_history(conn: &Connection, cutoff: i64, budget: Budget, p: &mut Purged) -> Result<bool> {
    let Some(position) =
        conn.query_row("SELECT position FROM rules_checkpoint WHERE id = 1", [], |r| r.get::<_, i64>(0)).optional()?
    else {
        return Ok(false);
    };
    // Entries after the checkpoint are still to be read by the rules: never past it.
    let cutoff_sql = format!(
        "SELECT id, CASE WHEN id > {position} THEN {i} ELSE at END, order_ref FROM facts WHERE id > ?1 ORDER BY id LIMIT ?2 + 0",
        i = i64::MAX
    );
    walk(conn, "facts_history", &cutoff_sql, cutoff, budget, |row| {
        let (id, order_ref): (i64, String) = (row.get(0)?, row.get(2)?);
        let kept: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM rules_board WHERE order_ref = ?1)
                     OR EXISTS (SELECT 1 FROM exceptions WHERE order_ref = ?1 AND state IN ('open', 'acknowledged'))",
            )?
            .query_row([&order_ref], |r| r.get(0))?;
        if !kept {
            conn.prepare_cached("DELETE FROM facts WHERE id = ?1")?.execute([id])?;
            p.facts_removed += 1;
        }
        Ok(())
    })
}

fn audit_history(conn: &Connection, cutoff: i64, budget: Budget, p: &mut Purged) -> Result<bool> {
    walk(
        conn,
        "audit_history",
        "SELECT id, at FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2 + 0",
        cutoff,
        budget,
        |row| {
            conn.prepare_cached("DELETE FROM audit WHERE id = ?1")?.execute([row.get::<_, i64>(0)?])?;
            p.audit_removed += 1;
            Ok(())
        },
    )
}

/// Finished commands: removed with their attempts unless an exception or a journal entry
/// still names them (those keep their last attempt only); the inbox row they were planned
/// from goes with the last of them once its dedup horizon passed.
fn outbox_history(conn: &Connection, cutoff: i64, rows_before: i64, budget: Budget, p: &mut Purged) -> Result<bool> {
    let step = "outbox_history";
    let mut compact = |id: i64| -> Result<()> {
        let (order_ref, event_row): (String, i64) =
            conn.query_row("SELECT order_ref, event_row FROM outbox WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let (by_exception, by_journal): (bool, bool) = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM exceptions WHERE command_id = ?1),
                        EXISTS (SELECT 1 FROM facts WHERE order_ref = ?2 AND command_id = ?1)",
            )?
            .query_row(params![id, order_ref], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if by_exception || by_journal {
            p.attempts_removed += conn
                .prepare_cached(
                    "DELETE FROM attempts WHERE command_id = ?1
                     AND attempt < (SELECT max(attempt) FROM attempts WHERE command_id = ?1)",
                )?
                .execute([id])? as u64;
            // An exception is kept for good; a journal entry goes in a later batch or purge,
            // and the command with it then, so it is looked at again.
            if !by_exception {
                defer(conn, step, id)?;
            }
            return Ok(());
        }
        p.attempts_removed += conn.prepare_cached("DELETE FROM attempts WHERE command_id = ?1")?.execute([id])? as u64;
        conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?.execute([id])?;
        p.outbox_removed += 1;
        remove_inbox_row(conn, event_row, &order_ref, rows_before, p)
    };
    let more = deferred(conn, step, budget, &mut compact)?;
    let sql = format!("SELECT id, created_at, state IN {FINISHED} FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2 + 0");
    let walked = walk(conn, step, &sql, cutoff, budget, |row| {
        let (id, done): (i64, bool) = (row.get(0)?, row.get(2)?);
        if done { compact(id) } else { defer(conn, step, id) }
    })?;
    Ok(more || walked)
}

/// Removes inbox row `id` if its dedup horizon passed, intake planned it, it is not the
/// newest row (ids must never be handed out twice: the intake cursor trusts them) and nothing
/// refers to it any more.
fn remove_inbox_row(conn: &Connection, id: i64, order_ref: &str, rows_before: i64, p: &mut Purged) -> Result<()> {
    let removable: bool = conn
        .prepare_cached(
            "SELECT i.received_at < ?3
                AND i.id <= (SELECT last_row FROM intake_cursor WHERE id = 1)
                AND i.id < (SELECT max(id) FROM inbox)
                AND NOT EXISTS (SELECT 1 FROM outbox WHERE order_ref = ?2 AND event_row = ?1)
                AND NOT EXISTS (SELECT 1 FROM facts WHERE order_ref = ?2 AND event_row = ?1)
                AND NOT EXISTS (SELECT 1 FROM quarantine WHERE event_row = ?1)
             FROM inbox i WHERE i.id = ?1",
        )?
        .query_row(params![id, order_ref, rows_before], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    if removable {
        conn.prepare_cached("DELETE FROM inbox WHERE id = ?1")?.execute([id])?;
        p.inbox_removed += 1;
    }
    Ok(())
}

/// Inbox rows that planned no command (stale versions, events no flow carries): removed once
/// past both horizons. Rows that planned commands go with the last of them.
fn inbox_unreferenced(conn: &Connection, rows_before: i64, budget: Budget, p: &mut Purged) -> Result<bool> {
    walk(
        conn,
        "inbox_history",
        "SELECT id, received_at, order_ref FROM inbox WHERE id > ?1 ORDER BY id LIMIT ?2 + 0",
        rows_before,
        budget,
        |row| remove_inbox_row(conn, row.get(0)?, &row.get::<_, String>(2)?, rows_before, p),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use handoff_model::EventKind;
    use jiff::{SignedDuration, Timestamp};

    use super::{Budget, cursor, deferred, run};
    use crate::sqlite::{SqliteOptions, SqliteStore, connect};
    use crate::{NewEvent, PurgeBefore, Store};

    /// A call whose time is out from the start still moves every step on by a row, so a purge
    /// ends however slow the machine, and its batches add up to what the purge removes.
    #[tokio::test]
    async fn out_of_time_a_call_still_moves_each_step_on_by_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let path = {
            let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
            for i in 0..5 {
                let event = NewEvent {
                    system: "shop".into(),
                    event_id: format!("e-{i}"),
                    kind: EventKind::OrderCreated,
                    order_ref: format!("#{i}"),
                    received_at: t0,
                    payload: "{}".into(),
                    raw: Some(format!(r#"{{"id": {i}}}"#)),
                };
                store.record_event(event).await.unwrap();
            }
            store.path().to_owned()
        };
        let conn = connect(&path).unwrap();
        let before = PurgeBefore { personal_data: t0 + SignedDuration::from_hours(24), history: t0, dedup: t0 };
        let mut scrubbed = Vec::new();
        loop {
            let out_of_time = Budget { until: Some(Instant::now()), ..Budget::rows(usize::MAX) };
            let p = run(&conn, &before, out_of_time).unwrap();
            scrubbed.push(p.inbox_scrubbed);
            if !p.more {
                break;
            }
        }
        assert_eq!(scrubbed, [1, 1, 1, 1, 1]);
    }

    /// Commands deferred by earlier batches are walked within the batch's time too, from a
    /// cursor that starts over at the end of the list: never all of them in one batch.
    #[test]
    fn deferred_commands_are_walked_within_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap().path().to_owned();
        let conn = connect(&path).unwrap();
        // Five commands deferred and gone since: each is forgotten when its turn comes.
        for id in 1..=5 {
            conn.execute("INSERT INTO retention_deferred (step, row_id) VALUES ('outbox_history', ?1)", [id]).unwrap();
        }
        let left = || conn.query_row("SELECT count(*) FROM retention_deferred", [], |r| r.get::<_, i64>(0)).unwrap();
        let mut walked = Vec::new();
        loop {
            let out_of_time = Budget { until: Some(Instant::now()), ..Budget::rows(usize::MAX) };
            let more = deferred(&conn, "outbox_history", out_of_time, |_| unreachable!("gone, not finished")).unwrap();
            walked.push((left(), more));
            if !more {
                break;
            }
        }
        assert_eq!(walked, [(4, true), (3, true), (2, true), (1, true), (0, false)]);
        assert_eq!(cursor(&conn, "outbox_history:deferred").unwrap(), 0, "the next purge starts at the list's head");
    }
}
