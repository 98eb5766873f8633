//! The purge (`[retention]`), as the SQLite store does it: personal data and raw bodies
//! first, then the history. Each step walks its table in id order from where the last purge
//! stopped, up to the step's cutoff, at most `limit` rows per call; the caller repeats while
//! [`Purged::more`]. The whole purge is one transaction (a dry run rolls it back).

use deadpool_postgres::Transaction;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio_postgres::Row;

use super::rows::{execute, query, query_one, query_opt};
use crate::personal::{hash, hash_personal, scrub};
use crate::{PurgeBefore, Purged, Result};

/// The command states that will never be sent again.
const FINISHED: &str = "('acknowledged', 'superseded', 'abandoned')";

pub(super) async fn purge(tx: &Transaction<'_>, before: &PurgeBefore, limit: usize) -> Result<Purged> {
    let limit = limit.min(i64::MAX as usize) as i64;
    let mut p = Purged::default();
    let mut more = false;
    more |= inbox_personal(tx, before.personal_data, limit, &mut p).await?;
    more |= quarantine_personal(tx, before.personal_data, limit, &mut p).await?;
    more |= outbox_personal(tx, before.personal_data, limit, &mut p).await?;
    more |= facts_history(tx, before.history, limit, &mut p).await?;
    more |= audit_history(tx, before.history, limit, &mut p).await?;
    // Deleting inbox rows needs both horizons passed: the dedup key's and the history's.
    let rows_before = before.history.min(before.dedup);
    more |= outbox_history(tx, before.history, rows_before, limit, &mut p).await?;
    more |= inbox_unreferenced(tx, rows_before, limit, &mut p).await?;
    p.more = more;
    Ok(p)
}

async fn cursor(tx: &Transaction<'_>, step: &str) -> Result<i64> {
    let row = query_opt(tx, "SELECT last_id FROM retention_cursor WHERE step = $1", &[&step]).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
}

/// The rows of one step after its cursor (`$1`, at most `$2` of them, id first and time
/// second, a NULL time: not yet), up to the first one at or after `cutoff` (ids follow
/// arrival, so the rest are newer). Moves the cursor past them; `true` when `limit` were read.
async fn walk(tx: &Transaction<'_>, step: &str, sql: &str, cutoff: Timestamp, limit: i64) -> Result<(Vec<Row>, bool)> {
    let from = cursor(tx, step).await?;
    let mut rows = query(tx, sql, &[&from, &limit]).await?;
    let mut keep = 0;
    for row in &rows {
        let at: Option<Timestamp> = row.try_get(1)?;
        if at.is_none_or(|at| at >= cutoff) {
            break;
        }
        keep += 1;
    }
    rows.truncate(keep);
    if let Some(last) = rows.last() {
        set_cursor(tx, step, last.try_get(0)?).await?;
    }
    let more = rows.len() as i64 == limit;
    Ok((rows, more))
}

async fn set_cursor(tx: &Transaction<'_>, step: &str, last: i64) -> Result<()> {
    execute(
        tx,
        "INSERT INTO retention_cursor (step, last_id) VALUES ($1, $2)
         ON CONFLICT (step) DO UPDATE SET last_id = excluded.last_id",
        &[&step, &last],
    )
    .await?;
    Ok(())
}

/// Adds hashes to the evidence of an order's exceptions (under `purged`, by what they refer
/// to) and replaces the personal values it holds with their hashes.
async fn keep_hashes(
    tx: &Transaction<'_>,
    order_ref: &str,
    refers_to: &str,
    digest: &str,
    p: &mut Purged,
) -> Result<()> {
    for row in query(tx, "SELECT id, evidence FROM exceptions WHERE order_ref = $1", &[&order_ref]).await? {
        let (id, evidence): (i64, Option<String>) = (row.try_get(0)?, row.try_get(1)?);
        set_evidence_hash(tx, id, evidence.as_deref(), refers_to, digest).await?;
        p.evidence_hashed += 1;
    }
    Ok(())
}

async fn set_evidence_hash(
    tx: &Transaction<'_>,
    id: i64,
    evidence: Option<&str>,
    refers_to: &str,
    digest: &str,
) -> Result<()> {
    let text = evidence.map(|e| hash_personal(e).unwrap_or_else(|| e.to_owned()));
    let mut value: Value = text.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
    if !value.is_object() {
        value = json!({});
    }
    let purged = value.as_object_mut().expect("an object").entry("purged").or_insert_with(|| json!({}));
    if let Some(map) = purged.as_object_mut() {
        map.insert(refers_to.to_owned(), Value::String(digest.to_owned()));
    }
    execute(tx, "UPDATE exceptions SET evidence = $1 WHERE id = $2", &[&value.to_string(), &id]).await?;
    Ok(())
}

/// Raw vendor bodies and the personal fields of canonical events.
async fn inbox_personal(tx: &Transaction<'_>, cutoff: Timestamp, limit: i64, p: &mut Purged) -> Result<bool> {
    let sql = "SELECT id, received_at, order_ref, payload, raw FROM inbox WHERE id > $1 ORDER BY id LIMIT $2";
    let (rows, more) = walk(tx, "inbox_personal", sql, cutoff, limit).await?;
    for row in rows {
        let (id, order_ref, payload, raw): (i64, String, String, Option<String>) =
            (row.try_get(0)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
        let scrubbed = scrub(&payload);
        if raw.is_none() && scrubbed.is_none() {
            continue;
        }
        let digest = hash(raw.as_deref().unwrap_or(&payload).as_bytes());
        execute(
            tx,
            "UPDATE inbox SET raw = NULL, payload = $1 WHERE id = $2",
            &[&scrubbed.as_deref().unwrap_or(&payload), &id],
        )
        .await?;
        p.inbox_scrubbed += 1;
        keep_hashes(tx, &order_ref, &format!("inbox/{id}"), &digest, p).await?;
    }
    Ok(more)
}

/// Held bodies: the bytes and headers go, their hash stays on the row and in the evidence of
/// the exception raised for them.
async fn quarantine_personal(tx: &Transaction<'_>, cutoff: Timestamp, limit: i64, p: &mut Purged) -> Result<bool> {
    let sql = "SELECT id, received_at, body, exception_id FROM quarantine WHERE id > $1 ORDER BY id LIMIT $2";
    let (rows, more) = walk(tx, "quarantine_personal", sql, cutoff, limit).await?;
    for row in rows {
        let (id, body, exception): (i64, Vec<u8>, Option<i64>) = (row.try_get(0)?, row.try_get(2)?, row.try_get(3)?);
        if body.is_empty() {
            continue;
        }
        let digest = hash(&body);
        execute(
            tx,
            "UPDATE quarantine SET body = ''::bytea, headers = '{}', body_sha256 = $1 WHERE id = $2",
            &[&digest, &id],
        )
        .await?;
        p.quarantine_scrubbed += 1;
        if let Some(x) = exception {
            let evidence: Option<String> =
                query_one(tx, "SELECT evidence FROM exceptions WHERE id = $1", &[&x]).await?.try_get(0)?;
            set_evidence_hash(tx, x, evidence.as_deref(), &format!("quarantine/{id}"), &digest).await?;
            p.evidence_hashed += 1;
        }
    }
    Ok(more)
}

/// `Some(true)` for a finished command, `Some(false)` for one still to send, `None` if gone.
async fn finished(tx: &Transaction<'_>, id: i64) -> Result<Option<bool>> {
    let sql = format!("SELECT state IN {FINISHED} FROM outbox WHERE id = $1");
    Ok(query_opt(tx, &sql, &[&id]).await?.map(|r| r.try_get(0)).transpose()?)
}

async fn defer(tx: &Transaction<'_>, step: &str, id: i64) -> Result<()> {
    execute(tx, "INSERT INTO retention_deferred (step, row_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&step, &id])
        .await?;
    Ok(())
}

/// Commands passed before while unfinished (or still named by the journal): those finished
/// (or gone) since are forgotten; the finished ones are returned, to be handled now. At most
/// `limit` of the list a call, in id order from a cursor of their own (`STEP:deferred`) that
/// starts over at the end of the list, as SQLite walks them: thousands of commands deferred
/// are never all looked at in one batch. `true` when `limit` were read.
async fn deferred(tx: &Transaction<'_>, step: &str, limit: i64) -> Result<(Vec<i64>, bool)> {
    let at = format!("{step}:deferred");
    let from = cursor(tx, &at).await?;
    let ids = query(
        tx,
        "SELECT row_id FROM retention_deferred WHERE step = $1 AND row_id > $2 ORDER BY row_id LIMIT $3",
        &[&step, &from, &limit],
    )
    .await?;
    let more = ids.len() as i64 == limit;
    let (mut done, mut last) = (Vec::new(), from);
    for row in ids {
        let id: i64 = row.try_get(0)?;
        last = id;
        match finished(tx, id).await? {
            Some(false) => continue,
            Some(true) => done.push(id),
            None => {}
        }
        execute(tx, "DELETE FROM retention_deferred WHERE step = $1 AND row_id = $2", &[&step, &id]).await?;
    }
    set_cursor(tx, &at, if more { last } else { 0 }).await?;
    Ok((done, more))
}

/// The commands of a step's walk, finished ones first handed back, unfinished ones deferred.
async fn finished_commands(
    tx: &Transaction<'_>,
    step: &str,
    cutoff: Timestamp,
    limit: i64,
) -> Result<(Vec<i64>, bool)> {
    let (mut ids, more_deferred) = deferred(tx, step, limit).await?;
    let sql = format!("SELECT id, created_at, state IN {FINISHED} FROM outbox WHERE id > $1 ORDER BY id LIMIT $2");
    let (rows, more) = walk(tx, step, &sql, cutoff, limit).await?;
    for row in rows {
        let (id, done): (i64, bool) = (row.try_get(0)?, row.try_get(2)?);
        if done {
            ids.push(id);
        } else {
            defer(tx, step, id).await?;
        }
    }
    Ok((ids, more || more_deferred))
}

/// The personal fields of finished commands' payloads; an unfinished command keeps what it
/// still has to send until it finishes.
async fn outbox_personal(tx: &Transaction<'_>, cutoff: Timestamp, limit: i64, p: &mut Purged) -> Result<bool> {
    let (ids, more) = finished_commands(tx, "outbox_personal", cutoff, limit).await?;
    for id in ids {
        let payload: String = query_one(tx, "SELECT payload FROM outbox WHERE id = $1", &[&id]).await?.try_get(0)?;
        if let Some(clean) = scrub(&payload) {
            execute(tx, "UPDATE outbox SET payload = $1 WHERE id = $2", &[&clean, &id]).await?;
            p.outbox_scrubbed += 1;
        }
    }
    Ok(more)
}

/// The rules' journal: entries the rules checkpointed past, of orders they no longer follow
/// and with no open exception.
async fn facts_history(tx: &Transaction<'_>, cutoff: Timestamp, limit: i64, p: &mut Purged) -> Result<bool> {
    let Some(position) = query_opt(tx, "SELECT position FROM rules_checkpoint WHERE id = 1", &[]).await? else {
        return Ok(false);
    };
    let position: i64 = position.try_get(0)?;
    // Entries after the checkpoint are still to be read by the rules: never past it (a NULL
    // time stops the walk).
    let from = cursor(tx, "facts_history").await?;
    let rows = query(
        tx,
        "SELECT id, CASE WHEN id > $3 THEN NULL ELSE at END, order_ref FROM facts WHERE id > $1 ORDER BY id LIMIT $2",
        &[&from, &limit, &position],
    )
    .await?;
    let mut last = None;
    let mut read = 0;
    for row in rows {
        let at: Option<Timestamp> = row.try_get(1)?;
        if at.is_none_or(|at| at >= cutoff) {
            break;
        }
        let (id, order_ref): (i64, String) = (row.try_get(0)?, row.try_get(2)?);
        let kept: bool = query_one(
            tx,
            "SELECT EXISTS (SELECT 1 FROM rules_board WHERE order_ref = $1)
                 OR EXISTS (SELECT 1 FROM exceptions WHERE order_ref = $1 AND state IN ('open', 'acknowledged'))",
            &[&order_ref],
        )
        .await?
        .try_get(0)?;
        if !kept {
            execute(tx, "DELETE FROM facts WHERE id = $1", &[&id]).await?;
            p.facts_removed += 1;
        }
        (last, read) = (Some(id), read + 1);
    }
    if let Some(last) = last {
        execute(
            tx,
            "INSERT INTO retention_cursor (step, last_id) VALUES ('facts_history', $1)
             ON CONFLICT (step) DO UPDATE SET last_id = excluded.last_id",
            &[&last],
        )
        .await?;
    }
    Ok(read == limit)
}

async fn audit_history(tx: &Transaction<'_>, cutoff: Timestamp, limit: i64, p: &mut Purged) -> Result<bool> {
    let sql = "SELECT id, at FROM audit WHERE id > $1 ORDER BY id LIMIT $2";
    let (rows, more) = walk(tx, "audit_history", sql, cutoff, limit).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    p.audit_removed += execute(tx, "DELETE FROM audit WHERE id = ANY($1)", &[&ids]).await?;
    Ok(more)
}

/// Finished commands: removed with their attempts unless an exception or a journal entry
/// still names them (those keep their last attempt only); the inbox row they were planned
/// from goes with the last of them once its dedup horizon passed.
async fn outbox_history(
    tx: &Transaction<'_>,
    cutoff: Timestamp,
    rows_before: Timestamp,
    limit: i64,
    p: &mut Purged,
) -> Result<bool> {
    let (ids, more) = finished_commands(tx, "outbox_history", cutoff, limit).await?;
    for id in ids {
        let row = query_one(tx, "SELECT order_ref, event_row FROM outbox WHERE id = $1", &[&id]).await?;
        let (order_ref, event_row): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        let named = query_one(
            tx,
            "SELECT EXISTS (SELECT 1 FROM exceptions WHERE command_id = $1),
                    EXISTS (SELECT 1 FROM facts WHERE order_ref = $2 AND command_id = $1)",
            &[&id, &order_ref],
        )
        .await?;
        let (by_exception, by_journal): (bool, bool) = (named.try_get(0)?, named.try_get(1)?);
        if by_exception || by_journal {
            p.attempts_removed += execute(
                tx,
                "DELETE FROM attempts WHERE command_id = $1
                 AND attempt < (SELECT max(attempt) FROM attempts WHERE command_id = $1)",
                &[&id],
            )
            .await?;
            // An exception is kept for good; a journal entry goes in a later batch or purge,
            // and the command with it then, so it is looked at again.
            if !by_exception {
                defer(tx, "outbox_history", id).await?;
            }
            continue;
        }
        p.attempts_removed += execute(tx, "DELETE FROM attempts WHERE command_id = $1", &[&id]).await?;
        execute(tx, "DELETE FROM outbox WHERE id = $1", &[&id]).await?;
        p.outbox_removed += 1;
        remove_inbox_row(tx, event_row, &order_ref, rows_before, p).await?;
    }
    Ok(more)
}

/// Removes inbox row `id` if its dedup horizon passed, intake planned it and nothing refers
/// to it any more. (A sequence never hands an id out twice, so unlike SQLite the newest row
/// may go too.)
async fn remove_inbox_row(
    tx: &Transaction<'_>,
    id: i64,
    order_ref: &str,
    rows_before: Timestamp,
    p: &mut Purged,
) -> Result<()> {
    let removed = execute(
        tx,
        "DELETE FROM inbox i
         WHERE i.id = $1 AND i.received_at < $3 AND i.planned
           AND NOT EXISTS (SELECT 1 FROM outbox WHERE order_ref = $2 AND event_row = $1)
           AND NOT EXISTS (SELECT 1 FROM facts WHERE order_ref = $2 AND event_row = $1)
           AND NOT EXISTS (SELECT 1 FROM quarantine WHERE event_row = $1)",
        &[&id, &order_ref, &rows_before],
    )
    .await?;
    p.inbox_removed += removed;
    Ok(())
}

/// Inbox rows that planned no command (stale versions, events no flow carries): removed once
/// past both horizons. Rows that planned commands go with the last of them.
async fn inbox_unreferenced(tx: &Transaction<'_>, rows_before: Timestamp, limit: i64, p: &mut Purged) -> Result<bool> {
    let sql = "SELECT id, received_at, order_ref FROM inbox WHERE id > $1 ORDER BY id LIMIT $2";
    let (rows, more) = walk(tx, "inbox_history", sql, rows_before, limit).await?;
    for row in rows {
        remove_inbox_row(tx, row.try_get(0)?, &row.try_get::<_, String>(2)?, rows_before, p).await?;
    }
    Ok(more)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::testing::with_store;

    /// Commands deferred by earlier batches are walked `limit` at a time, from a cursor that
    /// starts over at the end of the list: never all of them in one batch.
    #[tokio::test]
    async fn deferred_commands_are_walked_a_batch_at_a_time() {
        with_store(|store| async move {
            let mut client = store.client().await.unwrap();
            let tx = client.transaction().await.unwrap();
            // Five commands deferred and gone since: each is forgotten when its turn comes.
            for id in 1..=5i64 {
                defer(&tx, "outbox_history", id).await.unwrap();
            }
            let mut walked = Vec::new();
            loop {
                let (done, more) = deferred(&tx, "outbox_history", 2).await.unwrap();
                assert!(done.is_empty(), "gone, not finished: {done:?}");
                let left: i64 = query_one(&tx, "SELECT count(*) FROM retention_deferred", &[]).await.unwrap().get(0);
                walked.push((left, more));
                if !more {
                    break;
                }
            }
            assert_eq!(walked, [(3, true), (1, true), (0, false)]);
            let next = cursor(&tx, "outbox_history:deferred").await.unwrap();
            assert_eq!(next, 0, "the next purge starts at the list's head");
        })
        .await;
    }
}
