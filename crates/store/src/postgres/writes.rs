//! Writes; each runs inside the transaction its caller commits.

use std::collections::HashMap;
use std::sync::LazyLock;

use deadpool_postgres::{GenericClient, Transaction};
use handoff_model::CommandKind;
use jiff::Timestamp;
use tokio_postgres::types::ToSql;

use super::rows::{self, COMMAND_COLUMNS, execute, query, query_one, query_opt};
use crate::{
    AttemptRecord, Command, NewCommand, NewEvent, NewFinding, Outcome, Plan, Raised, Recorded, Replay, Result,
    acknowledged_state,
};

/// The rules read the journal by position, so its ids must be handed out in commit order:
/// a transaction takes this lock (held to its commit) just before it appends, as late as it
/// can. Another number than the migration's lock.
const JOURNAL_LOCK: i64 = 0x68616e646f6667;

async fn lock_journal(tx: &Transaction<'_>) -> Result<()> {
    execute(tx, "SELECT pg_advisory_xact_lock($1)", &[&JOURNAL_LOCK]).await?;
    Ok(())
}

/// The class of the orders' locks (two-number advisory locks: this, and a hash of the order
/// reference); another class than the instances' and the leads'.
const ORDER_LOCKS: i32 = 0x6f726472;

/// The commands of an order to a target run one after the other, and only the first unfinished
/// one is due: those behind it are written held, and released when it finishes. A transaction
/// that writes an order's commands, or finishes one, first takes the order's lock (held to its
/// commit), so the one that writes a command behind another either sees that one finished or
/// is seen by its finisher, which releases it: no command is left held behind a finished one.
/// All the locks a transaction needs are taken in one statement, in one order (of their keys),
/// before any row of those orders is written, so two of them never wait for each other.
async fn lock_orders<'a>(tx: &Transaction<'_>, orders: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let orders: Vec<&str> = orders.into_iter().collect();
    // Sorted in a subquery: a locking function beside an ORDER BY would run before the sort.
    execute(
        tx,
        "SELECT pg_advisory_xact_lock($1, k)
         FROM (SELECT DISTINCT hashtext(o) AS k FROM unnest($2::text[]) AS o ORDER BY 1) AS keys",
        &[&ORDER_LOCKS, &orders],
    )
    .await?;
    Ok(())
}

/// The id of the first unfinished command (pending, in flight or dead-lettered) of the order
/// and target the SQL expressions `order` and `target` name: the head of that sequence, the one
/// command of it that may be due (one probe of `outbox_unfinished`).
fn head_of(order: &str, target: &str) -> String {
    format!(
        "(SELECT p.id FROM outbox p
          WHERE p.order_ref = {order} AND p.target = {target}
            AND p.state IN ('pending', 'in_flight', 'dead_lettered')
          ORDER BY p.id LIMIT 1)"
    )
}

/// Releases the head of each (order, target) in `sequences` if it is held: called under the
/// orders' locks by whatever finished a command of theirs.
async fn release_heads(tx: &Transaction<'_>, sequences: &[(&str, &str)]) -> Result<()> {
    static RELEASE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE outbox SET held = false
             WHERE held AND id IN (SELECT {} FROM unnest($1::text[], $2::text[]) AS s (order_ref, target))",
            head_of("s.order_ref", "s.target")
        )
    });
    let (orders, targets): (Vec<&str>, Vec<&str>) = sequences.iter().copied().unzip();
    execute(tx, &RELEASE, &[&orders, &targets]).await?;
    Ok(())
}

/// Holds every pending command that is not the head of its order and target, as an import
/// writes them (migration 0006 does the same for the commands there before it).
pub(super) async fn hold_waiting(tx: &Transaction<'_>) -> Result<u64> {
    let sql = format!(
        "UPDATE outbox c SET held = true WHERE c.state = 'pending' AND NOT c.held AND c.id <> {}",
        head_of("c.order_ref", "c.target")
    );
    execute(tx, &sql, &[]).await
}

/// Tells every process listening that events or commands may have changed (sent at commit).
pub(super) async fn notify(tx: &Transaction<'_>, channel: &str) -> Result<()> {
    execute(tx, "SELECT pg_notify($1, '')", &[&channel]).await?;
    Ok(())
}

/// A led part's write goes on only while its hub still leads the part: the part's epoch is
/// still the one the hub took. The row is held (`FOR SHARE`) to the commit, so a new leader's
/// bump of the epoch waits for this transaction; and a hub paused inside it is cut off by the
/// server after a while, so it cannot hold a new leader back for long.
pub(super) async fn check_lead(tx: &Transaction<'_>, part: &str, epoch: i64) -> Result<()> {
    tx.batch_execute("SET LOCAL idle_in_transaction_session_timeout = '30s'").await?;
    let now = query_opt(tx, "SELECT epoch FROM leads WHERE part = $1 FOR SHARE", &[&part]).await?;
    match now.map(|r| r.try_get::<_, i64>(0)).transpose()? {
        Some(now) if now == epoch => Ok(()),
        _ => Err(crate::StoreError::LeadLost { part: part.to_owned() }),
    }
}

pub(super) async fn record_event(c: &impl GenericClient, e: &NewEvent) -> Result<Recorded> {
    let inserted = query_opt(
        c,
        "INSERT INTO inbox (system, event_id, kind, order_ref, received_at, payload, raw)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (system, event_id) DO NOTHING RETURNING id",
        &[&e.system, &e.event_id, &e.kind.as_str(), &e.order_ref, &e.received_at, &e.payload, &e.raw],
    )
    .await?;
    if let Some(row) = inserted {
        return Ok(Recorded::New(row.try_get(0)?));
    }
    let found =
        query_one(c, "SELECT id FROM inbox WHERE system = $1 AND event_id = $2", &[&e.system, &e.event_id]).await?;
    Ok(Recorded::Duplicate(found.try_get(0)?))
}

pub(super) async fn record_polled(
    tx: &Transaction<'_>,
    system: &str,
    events: &[NewEvent],
    held: &[crate::NewQuarantined],
    cursor: &str,
    now: Timestamp,
) -> Result<Vec<Recorded>> {
    let mut recorded = Vec::with_capacity(events.len());
    for e in events {
        recorded.push(record_event(tx, e).await?);
    }
    for h in held {
        super::quarantine::hold(tx, h, now).await?;
    }
    execute(
        tx,
        "INSERT INTO poll_cursor (system, cursor, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (system) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        &[&system, &cursor, &now],
    )
    .await?;
    Ok(recorded)
}

const INSERT_AUDIT: &str = "INSERT INTO audit (at, actor, action, order_ref, detail) VALUES ($1, $2, $3, $4, $5)";

pub(super) async fn audit(
    c: &impl GenericClient,
    at: Timestamp,
    actor: &str,
    action: &str,
    order_ref: Option<&str>,
    detail: &str,
) -> Result<()> {
    execute(c, INSERT_AUDIT, &refs(&audit_params(at, actor, action, order_ref, detail))).await?;
    Ok(())
}

/// `INSERT_AUDIT`'s parameters, in its order (written alone or pipelined with a plan).
fn audit_params(at: Timestamp, actor: &str, action: &str, order_ref: Option<&str>, detail: &str) -> Vec<Param> {
    vec![
        Box::new(at),
        Box::new(actor.to_owned()),
        Box::new(action.to_owned()),
        Box::new(order_ref.map(str::to_owned)),
        Box::new(detail.to_owned()),
    ]
}

const UPSERT_LEDGER: &str =
    "INSERT INTO ledger (order_ref, system, state, record_id, updated_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (order_ref, system) DO UPDATE SET state = excluded.state,
         record_id = coalesce(excluded.record_id, ledger.record_id), updated_at = excluded.updated_at";

async fn set_ledger(
    tx: &Transaction<'_>,
    order_ref: &str,
    system: &str,
    state: &str,
    record_id: Option<&str>,
    at: Timestamp,
) -> Result<()> {
    execute(tx, UPSERT_LEDGER, &refs(&ledger_params(order_ref, system, state, record_id, at))).await?;
    Ok(())
}

/// `UPSERT_LEDGER`'s parameters, in its order (written alone or pipelined with a plan).
fn ledger_params(order_ref: &str, system: &str, state: &str, record_id: Option<&str>, at: Timestamp) -> Vec<Param> {
    vec![
        Box::new(order_ref.to_owned()),
        Box::new(system.to_owned()),
        Box::new(state.to_owned()),
        Box::new(record_id.map(str::to_owned)),
        Box::new(at),
    ]
}

const UPSERT_ORDER: &str = "INSERT INTO orders (order_ref, source, created, cancelled, last_version, last_fingerprint,
         first_seen, updated_at, channel, email_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, coalesce($8, $2), $9)
     ON CONFLICT (order_ref) DO UPDATE SET source = excluded.source, created = excluded.created,
         cancelled = excluded.cancelled, last_version = excluded.last_version,
         last_fingerprint = excluded.last_fingerprint, updated_at = excluded.updated_at,
         channel = coalesce($8, orders.channel, excluded.source),
         email_key = coalesce($9, orders.email_key)";

/// A statement's parameter, owned: a pipelined statement outlives the loop that made it.
type Param = Box<dyn ToSql + Sync + Send>;

/// Owned parameters lent to a statement run at once.
fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// Statements sent one after another without waiting for each answer. Each is prepared when
/// pushed (from the connection's cache: no round trip once seen) and sent when `flush` first
/// polls it, in push order, so the database runs them in exactly that order.
struct Pipeline<'a> {
    tx: &'a Transaction<'a>,
    sends: Vec<futures_util::future::BoxFuture<'a, std::result::Result<u64, tokio_postgres::Error>>>,
}

impl<'a> Pipeline<'a> {
    fn new(tx: &'a Transaction<'a>) -> Self {
        Pipeline { tx, sends: Vec::new() }
    }

    async fn push(&mut self, sql: &'static str, params: Vec<Param>) -> Result<()> {
        let statement = self.tx.prepare_cached(sql).await?;
        let tx = self.tx;
        self.sends.push(Box::pin(async move { tx.execute_raw(&statement, params).await }));
        Ok(())
    }

    /// Sends what was pushed and waits for every answer.
    async fn flush(&mut self) -> Result<()> {
        futures_util::future::try_join_all(self.sends.drain(..)).await?;
        Ok(())
    }
}

pub(super) async fn apply_plans(tx: &Transaction<'_>, plans: &[Plan], now: Timestamp) -> Result<()> {
    lock_orders(tx, plans.iter().map(|p| p.order_ref.as_str())).await?;
    let rows: Vec<i64> = plans.iter().map(|p| p.event_row).collect();
    execute(tx, "UPDATE inbox SET planned = true WHERE id = ANY($1)", &[&rows]).await?;
    // Each plan's statements are sent without waiting for the answer of the one before
    // (pipelined), in the plans' order, so ids are handed out as a loop of awaits would.
    let mut pipe = Pipeline::new(tx);
    for plan in plans {
        let s = &plan.state;
        // The order and its search columns in one statement: the event's channel, else the one
        // the order had, else its source; the event's email key, else the one it had.
        let order: Vec<Param> = vec![
            Box::new(plan.order_ref.clone()),
            Box::new(s.source.clone()),
            Box::new(s.created),
            Box::new(s.cancelled),
            Box::new(s.last_version.map(|v| v as i64)),
            Box::new(s.last_fingerprint.clone()),
            Box::new(now),
            Box::new(plan.search.channel.clone()),
            Box::new(plan.search.email_key.clone()),
        ];
        pipe.push(UPSERT_ORDER, order).await?;
        if let Some((system, state)) = &plan.ledger {
            pipe.push(UPSERT_LEDGER, ledger_params(&plan.order_ref, system, state, None, now)).await?;
        }
        for command in &plan.commands {
            if command.supersede_unsent {
                // What it writes depends on what it supersedes: sent once all before it ran.
                pipe.flush().await?;
                enqueue(tx, plan.event_row, command, now).await?;
            } else {
                pipe.push(INSERT_COMMAND.as_str(), command_params(plan.event_row, command, "pending", now)).await?;
            }
        }
        for detail in &plan.audit {
            pipe.push(INSERT_AUDIT, audit_params(now, "engine", "event", Some(&plan.order_ref), detail)).await?;
        }
    }
    pipe.flush().await?;
    if !rows.is_empty() {
        // Journaled last, in the plans' order: the journal's lock is held for the commit only.
        lock_journal(tx).await?;
        execute(
            tx,
            "INSERT INTO facts (order_ref, system, kind, event_row, at)
             SELECT i.order_ref, i.system, i.kind, i.id, $2
             FROM unnest($1::bigint[]) WITH ORDINALITY AS p (row, n) JOIN inbox i ON i.id = p.row
             ORDER BY p.n",
            &[&rows, &now],
        )
        .await?;
    }
    Ok(())
}

/// An exception's fingerprint, kept with it so clusters are grouped in SQL by the one Rust
/// definition (`handoff_model::cluster`).
pub(super) fn fingerprint(detail: &str) -> String {
    handoff_model::cluster::fingerprint(detail)
}

/// What the event at `payload` says of its order's searchable fields, for the migration that
/// fills them for orders stored before: the sales channel it names and its customer's email key
/// (as SQLite's `json_extract`: text values only).
pub(super) fn search_fields(payload: &str) -> (Option<String>, Option<String>) {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(payload) else { return (None, None) };
    let text = |pointer: &str| json.pointer(pointer).and_then(|v| v.as_str()).map(str::to_owned);
    (text("/order/channel"), text("/order/customer/email").as_deref().map(crate::search::email_key))
}

/// Held when its order and target already have a head (an unfinished command); written under
/// the order's lock (`lock_orders`).
static INSERT_COMMAND: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO outbox (flow, target, order_ref, kind, event_row, idempotency_key, external_ref,
             version, payload, state, next_attempt_at, budget_start, created_at, updated_at, held)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11, $11, {} IS NOT NULL)
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        head_of("$3", "$2")
    )
});

fn command_params(event_row: i64, c: &NewCommand, state: &'static str, now: Timestamp) -> Vec<Param> {
    vec![
        Box::new(c.flow.clone()),
        Box::new(c.target.clone()),
        Box::new(c.order_ref.clone()),
        Box::new(c.kind.as_str()),
        Box::new(event_row),
        Box::new(c.idempotency_key.clone()),
        Box::new(c.external_ref.clone()),
        Box::new(c.version.map(|v| v as i64)),
        Box::new(c.payload.clone()),
        Box::new(state),
        Box::new(now),
    ]
}

/// Writes a command to the outbox, under its order's lock; `None` when its idempotency key was
/// already used.
async fn enqueue(tx: &Transaction<'_>, event_row: i64, c: &NewCommand, now: Timestamp) -> Result<Option<i64>> {
    let mut moot = false;
    let mut superseded_any = false;
    if c.supersede_unsent {
        let superseded = query(
            tx,
            "UPDATE outbox SET state = 'superseded', updated_at = $1
             WHERE order_ref = $2 AND target = $3 AND state = 'pending' AND attempts = 0
               AND kind IN ('create_order', 'update_order')
             RETURNING id, kind",
            &[&now, &c.order_ref, &c.target],
        )
        .await?;
        let mut superseded: Vec<(i64, String)> =
            superseded.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_>>()?;
        superseded.sort();
        superseded_any = !superseded.is_empty();
        for (id, kind) in &superseded {
            moot |= kind == CommandKind::CreateOrder.as_str();
            let detail =
                format!("command {id} ({kind}) to {} superseded by {} before it was ever sent", c.target, c.kind);
            audit(tx, now, "engine", "superseded", Some(&c.order_ref), &detail).await?;
        }
    }
    let state = if moot { "superseded" } else { "pending" };
    let inserted = query_opt(tx, &INSERT_COMMAND, &refs(&command_params(event_row, c, state, now))).await?;
    if superseded_any {
        // The commands superseded may have been first: whatever waited behind them is next.
        release_heads(tx, &[(&c.order_ref, &c.target)]).await?;
    }
    let Some(row) = inserted else { return Ok(None) };
    let id: i64 = row.try_get(0)?;
    if moot {
        let detail = format!("{} to {} not sent: the create it would follow was never sent", c.kind, c.target);
        audit(tx, now, "engine", "superseded", Some(&c.order_ref), &detail).await?;
    }
    Ok(Some(id))
}

/// Who claims, and until when the claim is theirs alone.
pub(super) struct Lease {
    pub instance: i32,
    pub until: Timestamp,
}

/// The claim's statements, built once: to any target but `$5` (an array) or to the one `$5`
/// names; in each, the commands whose lease ran out long ago are taken over first, then the
/// heads due, oldest first.
static CLAIMS: LazyLock<[[String; 2]; 2]> =
    LazyLock::new(|| [claim_sql("NOT (c.target = ANY($5))"), claim_sql("c.target = $5")]);

fn claim_sql(to: &str) -> [String; 2] {
    let columns = COMMAND_COLUMNS.split(", ").map(|c| format!("outbox.{c}")).collect::<Vec<_>>().join(", ");
    let head = head_of("c.order_ref", "c.target");
    [
        ("c.state = 'in_flight' AND c.lease_until <= $1", "c.lease_until, c.id"),
        ("c.state = 'pending' AND NOT c.held AND c.next_attempt_at <= $1", "c.next_attempt_at, c.id"),
    ]
    .map(|(due, order)| {
        format!(
            "WITH due AS (
                 SELECT c.id FROM outbox c
                 WHERE {due} AND {to} AND c.id = {head}
                 ORDER BY {order}
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             UPDATE outbox SET state = 'in_flight', attempts = attempts + 1, budget_attempts = budget_attempts + 1,
                    ambiguous = outbox.ambiguous OR outbox.state = 'in_flight',
                    last_error = CASE WHEN outbox.state = 'in_flight'
                                      THEN 'its claim ran out while the command was in flight' ELSE outbox.last_error END,
                    claimed_by = $3, lease_until = $4, updated_at = $1
             FROM due WHERE outbox.id = due.id
             RETURNING {columns}"
        )
    })
}

/// Claims due commands that head their (order, target) sequence: no earlier command of the
/// same order to the same target is still pending, in flight or dead-lettered. The commands
/// behind a head are held (see `lock_orders`), so a claim reads heads only, in its index's
/// order, however many wait; each is checked to be first by one index probe all the same.
/// Rows another process is claiming are skipped, not waited for (`SKIP LOCKED`). A command in
/// flight whose lease ran out is claimed again, marked ambiguous (read back before any resend).
/// `only`: the commands to one target; `except`: to any target but these.
pub(super) async fn claim_due(
    tx: &Transaction<'_>,
    only: Option<&str>,
    except: &[String],
    now: Timestamp,
    limit: usize,
    lease: &Lease,
) -> Result<Vec<Command>> {
    let except: Vec<&str> = except.iter().map(String::as_str).collect();
    let target: &(dyn ToSql + Sync) = match &only {
        Some(only) => only,
        None => &except,
    };
    let mut claimed = Vec::new();
    for sql in &CLAIMS[usize::from(only.is_some())] {
        let left = limit - claimed.len();
        if left == 0 {
            break;
        }
        let params: rows::Params = &[&now, &rows::limit(left), &lease.instance, &lease.until, target];
        claimed.extend(rows::commands(query(tx, sql, params).await?)?);
    }
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Records the outcomes of `attempts`, each under its own fencing check: one answer per
/// attempt, in order, a stale claim refused in its answer without failing the others (its
/// command's live claim, in the same batch or not, is recorded). The attempts are inserted in
/// one statement, each command's own rows written beside the others', and the journal appended
/// last, in one statement under its lock.
pub(super) async fn record_attempts(tx: &Transaction<'_>, attempts: &[&AttemptRecord]) -> Result<Vec<Result<()>>> {
    // The fencing: each claim counts one more attempt, so a claim taken over since (and
    // claimed again) no longer matches, and its outcome is refused. Rows locked in id order.
    let ids: Vec<i64> = attempts.iter().map(|a| a.command.id).collect();
    let counts: Vec<i32> = attempts.iter().map(|a| a.command.attempts as i32).collect();
    let held = query(
        tx,
        "WITH held AS (
             SELECT o.id FROM outbox o JOIN unnest($1::bigint[], $2::int[]) AS k (id, attempts)
               ON o.id = k.id AND o.attempts = k.attempts
             WHERE o.state = 'in_flight' ORDER BY o.id FOR UPDATE OF o)
         UPDATE outbox SET claimed_by = NULL, lease_until = NULL WHERE id IN (SELECT id FROM held)
         RETURNING id, attempts",
        &[&ids, &counts],
    )
    .await?;
    let mut held: std::collections::HashSet<(i64, i32)> =
        held.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_>>()?;
    // A claim's outcome reported twice in one batch is recorded once, as one after the other.
    let answers: Vec<Result<()>> = attempts
        .iter()
        .map(|a| match held.remove(&(a.command.id, a.command.attempts as i32)) {
            true => Ok(()),
            false => Err(crate::StoreError::StaleClaim { command: a.command.id, attempt: a.command.attempts }),
        })
        .collect();
    let recorded: Vec<&AttemptRecord> =
        attempts.iter().zip(&answers).filter(|(_, answer)| answer.is_ok()).map(|(a, _)| *a).collect();
    if recorded.is_empty() {
        return Ok(answers);
    }
    // The orders' locks before any of their rows (ledger, next command), as intake takes them.
    lock_orders(tx, recorded.iter().map(|a| a.command.order_ref.as_str())).await?;
    let times = |f: fn(&AttemptRecord) -> Timestamp| recorded.iter().map(|a| f(a)).collect::<Vec<Timestamp>>();
    let outcomes: Vec<&str> = recorded.iter().map(|a| a.outcome.name()).collect();
    let details: Vec<String> = recorded.iter().map(|a| attempt_detail(a)).collect();
    let mappings: Vec<Option<&str>> = recorded.iter().map(|a| a.mapping.as_deref()).collect();
    execute(
        tx,
        "INSERT INTO attempts (command_id, attempt, started_at, finished_at, outcome, detail, mapping)
         SELECT * FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::timestamptz[], $5::text[],
                              $6::text[], $7::text[])
         ON CONFLICT (command_id, attempt) DO NOTHING",
        &[
            &recorded.iter().map(|a| a.command.id).collect::<Vec<i64>>(),
            &recorded.iter().map(|a| a.command.attempts as i32).collect::<Vec<i32>>(),
            &times(|a| a.started_at),
            &times(|a| a.finished_at),
            &outcomes,
            &details,
            &mappings,
        ],
    )
    .await?;
    // Each command's rows are its own (one command in flight per order and target): their
    // statements are sent together, pipelined on the connection, rather than one round trip each.
    let facts = futures_util::future::try_join_all(recorded.iter().map(|a| record_outcome(tx, a))).await?;
    let facts: Vec<OutcomeFact<'_>> = facts.into_iter().flatten().collect();
    // An acknowledged command lets the next of its order and target go.
    let finished: Vec<(&str, &str)> = facts
        .iter()
        .filter(|(_, outcome, ..)| *outcome == "acknowledged")
        .map(|(c, ..)| (c.order_ref.as_str(), c.target.as_str()))
        .collect();
    if !finished.is_empty() {
        release_heads(tx, &finished).await?;
    }
    journal_outcomes(tx, &facts).await?;
    Ok(answers)
}

/// What an attempt's row says of it.
fn attempt_detail(a: &AttemptRecord) -> String {
    match (&a.outcome, &a.note) {
        (Outcome::Acknowledged { record_id }, note) => join(note, &format!("record {record_id}")),
        (Outcome::Retry { error, at, .. }, note) => join(note, &format!("{error}; next attempt at {at}")),
        (Outcome::Throttled { error, at, .. }, note) => {
            join(note, &format!("{error}; asked to wait: next attempt at {at}, no attempt spent"))
        }
        (Outcome::DeadLettered { error, .. }, note) => join(note, error),
    }
}

/// An outcome the rules' journal learns: the command, what became of it, the record.
type OutcomeFact<'a> = (&'a Command, &'static str, Option<&'a str>, Timestamp);

/// Writes what a recorded outcome changes of its command, its order and its exceptions;
/// returns the fact to journal, if any.
async fn record_outcome<'a>(tx: &Transaction<'_>, a: &'a AttemptRecord) -> Result<Option<OutcomeFact<'a>>> {
    let c = &a.command;
    let now = a.finished_at;
    match &a.outcome {
        Outcome::Acknowledged { record_id } => {
            execute(
                tx,
                "UPDATE outbox SET state = 'acknowledged', record_id = $1, ambiguous = false, last_error = NULL,
                        updated_at = $2 WHERE id = $3",
                &[record_id, &now, &c.id],
            )
            .await?;
            match c.address() {
                // A duplicate closed: the order's own record in that system stays as it was,
                // and is the one kept.
                Some(address) => {
                    execute(
                        tx,
                        "UPDATE ledger SET record_id = coalesce($1, record_id), updated_at = $2
                         WHERE order_ref = $3 AND system = $4",
                        &[&address.keep, &now, &c.order_ref, &c.target],
                    )
                    .await?;
                }
                None => {
                    set_ledger(tx, &c.order_ref, &c.target, acknowledged_state(c.kind), Some(record_id), now).await?
                }
            }
            let resolved = execute(
                tx,
                "UPDATE exceptions SET state = 'auto_resolved', updated_at = $1
                 WHERE command_id = $2 AND state IN ('open', 'acknowledged')",
                &[&now, &c.id],
            )
            .await?;
            if resolved > 0 {
                let detail = format!("command {} delivered", c.id);
                audit(tx, now, "engine", "exception auto-resolved", Some(&c.order_ref), &detail).await?;
            }
            Ok(Some((c, "acknowledged", Some(record_id.as_str()), now)))
        }
        Outcome::Retry { at, ambiguous, error } => {
            execute(
                tx,
                "UPDATE outbox SET state = 'pending', next_attempt_at = $1, ambiguous = $2, last_error = $3,
                        updated_at = $4 WHERE id = $5",
                &[at, ambiguous, error, &now, &c.id],
            )
            .await?;
            Ok(None)
        }
        Outcome::Throttled { at, ambiguous, error } => {
            execute(
                tx,
                "UPDATE outbox SET state = 'pending', next_attempt_at = $1, ambiguous = $2, last_error = $3,
                        budget_attempts = greatest(budget_attempts - 1, 0), updated_at = $4 WHERE id = $5",
                &[at, ambiguous, error, &now, &c.id],
            )
            .await?;
            Ok(None)
        }
        Outcome::DeadLettered { ambiguous, error, field, pattern } => {
            execute(
                tx,
                "UPDATE outbox SET state = 'dead_lettered', ambiguous = $1, last_error = $2, updated_at = $3
                 WHERE id = $4",
                &[ambiguous, error, &now, &c.id],
            )
            .await?;
            let detail =
                format!("{} to {} dead-lettered after {} attempts: {error}", c.kind, c.target, c.budget_attempts);
            execute(
                tx,
                "INSERT INTO exceptions (pattern, order_ref, flow, command_id, field, detail, state, opened_at,
                                         updated_at, mapping, fingerprint)
                 VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $7, $8, $9)",
                &[
                    &pattern.as_str(),
                    &c.order_ref,
                    &c.flow,
                    &c.id,
                    field,
                    &detail,
                    &now,
                    &a.mapping,
                    &fingerprint(&detail),
                ],
            )
            .await?;
            audit(tx, now, "engine", "dead-lettered", Some(&c.order_ref), &format!("command {}: {error}", c.id))
                .await?;
            Ok(Some((c, "dead_lettered", None, now)))
        }
    }
}

/// Journals the outcomes `facts` for the rules, in one statement under the journal's lock;
/// the caller writes nothing after it.
async fn journal_outcomes(tx: &Transaction<'_>, facts: &[OutcomeFact<'_>]) -> Result<()> {
    if facts.is_empty() {
        return Ok(());
    }
    let orders: Vec<&str> = facts.iter().map(|(c, ..)| c.order_ref.as_str()).collect();
    let systems: Vec<&str> = facts.iter().map(|(c, ..)| c.target.as_str()).collect();
    let kinds: Vec<String> = facts.iter().map(|(c, outcome, _, _)| format!("{outcome}:{}", c.kind)).collect();
    let ids: Vec<i64> = facts.iter().map(|(c, ..)| c.id).collect();
    let records: Vec<Option<&str>> = facts.iter().map(|(_, _, record_id, _)| *record_id).collect();
    let at: Vec<Timestamp> = facts.iter().map(|(.., at)| *at).collect();
    lock_journal(tx).await?;
    execute(
        tx,
        "INSERT INTO facts (order_ref, system, kind, command_id, record_id, at)
         SELECT order_ref, system, kind, command_id, record_id, at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[])
             WITH ORDINALITY AS f (order_ref, system, kind, command_id, record_id, at, n)
         ORDER BY n",
        &[&orders, &systems, &kinds, &ids, &records, &at],
    )
    .await?;
    Ok(())
}

/// Journals a command's outcome for the rules; the caller writes nothing after it.
async fn fact(
    tx: &Transaction<'_>,
    c: &Command,
    outcome: &'static str,
    record_id: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    journal_outcomes(tx, &[(c, outcome, record_id, now)]).await
}

pub(super) async fn raise_finding(tx: &Transaction<'_>, f: &NewFinding, now: Timestamp) -> Result<Raised> {
    let existing = query_opt(
        tx,
        "SELECT id, state FROM exceptions WHERE pattern = $1 AND order_ref = $2 AND subject = $3 FOR UPDATE",
        &[&f.pattern.as_str(), &f.order_ref, &f.subject],
    )
    .await?;
    let existing: Option<(i64, String)> =
        existing.map(|r| Ok::<_, crate::StoreError>((r.try_get(0)?, r.try_get(1)?))).transpose()?;
    let actor = format!("rule:{}", f.pattern);
    match existing {
        Some((id, state)) if state == "open" || state == "acknowledged" => Ok(Raised::AlreadyOpen(id)),
        // Ignored with a reason by a person: the rules respect it.
        Some((id, state)) if state == "ignored" => Ok(Raised::AlreadyOpen(id)),
        Some((id, _)) => {
            execute(
                tx,
                "UPDATE exceptions SET state = 'open', detail = $1, evidence = $2, action = $3, updated_at = $4,
                        rechecked = true, fingerprint = $6 WHERE id = $5",
                &[&f.detail, &f.evidence, &f.action, &now, &id, &fingerprint(&f.detail)],
            )
            .await?;
            let detail = format!("exception {id}: the cause persists: {}", f.detail);
            audit(tx, now, &actor, "exception reopened", Some(&f.order_ref), &detail).await?;
            Ok(Raised::Reopened(id))
        }
        None => {
            let row = query_one(
                tx,
                "INSERT INTO exceptions (pattern, order_ref, flow, field, detail, state, opened_at, updated_at, subject,
                                         channel, amount, currency, action, evidence, fingerprint)
                 VALUES ($1, $2, $3, $4, $5, 'open', $6, $6, $7, $8, $9::text::numeric, $10, $11, $12, $13)
                 RETURNING id",
                &[
                    &f.pattern.as_str(),
                    &f.order_ref,
                    &f.flow,
                    &f.field,
                    &f.detail,
                    &now,
                    &f.subject,
                    &f.channel,
                    &f.amount,
                    &f.currency,
                    &f.action,
                    &f.evidence,
                    &fingerprint(&f.detail),
                ],
            )
            .await?;
            let id: i64 = row.try_get(0)?;
            let detail = format!("exception {id}: {}", f.detail);
            audit(tx, now, &actor, "exception raised", Some(&f.order_ref), &detail).await?;
            Ok(Raised::Opened(id))
        }
    }
}

pub(super) async fn clear_finding(
    tx: &Transaction<'_>,
    pattern: handoff_model::Pattern,
    order_ref: &str,
    subject: &str,
    now: Timestamp,
) -> Result<bool> {
    let cleared = query_opt(
        tx,
        "UPDATE exceptions SET state = 'auto_resolved', updated_at = $1
         WHERE pattern = $2 AND order_ref = $3 AND subject = $4 AND state IN ('open', 'acknowledged')
         RETURNING id",
        &[&now, &pattern.as_str(), &order_ref, &subject],
    )
    .await?;
    let Some(row) = cleared else { return Ok(false) };
    let id: i64 = row.try_get(0)?;
    let detail = format!("exception {id}: the cause is gone");
    audit(tx, now, &format!("rule:{pattern}"), "exception auto-resolved", Some(order_ref), &detail).await?;
    Ok(true)
}

pub(super) async fn take_rechecks(tx: &Transaction<'_>, limit: usize) -> Result<Vec<crate::ExceptionRow>> {
    let sql = format!(
        "UPDATE exceptions SET rechecked = true
         WHERE id IN (SELECT id FROM exceptions WHERE NOT rechecked ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING {}",
        rows::EXCEPTION_COLUMNS
    );
    let mut taken = rows::exceptions(query(tx, &sql, &[&rows::limit(limit)]).await?)?;
    taken.sort_by_key(|e| e.id);
    Ok(taken)
}

pub(super) async fn enqueue_action(
    tx: &Transaction<'_>,
    exception_id: i64,
    event_row: i64,
    command: &NewCommand,
    actor: &str,
    now: Timestamp,
) -> Result<Option<i64>> {
    lock_orders(tx, [command.order_ref.as_str()]).await?;
    let id = enqueue(tx, event_row, command, now).await?;
    if let Some(id) = id {
        let detail = format!("exception {exception_id}: {} to {} queued as command {id}", command.kind, command.target);
        audit(tx, now, actor, "action", Some(&command.order_ref), &detail).await?;
    }
    Ok(id)
}

fn join(note: &Option<String>, s: &str) -> String {
    match note {
        Some(n) => format!("{n}; {s}"),
        None => s.to_owned(),
    }
}

/// Commands in flight whose claim no live hub holds any more go back to pending: claimed by
/// this process before it restarted (`instance` is new), by a process whose session ended
/// (its instance lock is free), or whose lease ran out. Another live process's claims stay.
pub(super) async fn recover_in_flight(
    tx: &Transaction<'_>,
    now: Timestamp,
    read_back_at: &HashMap<String, Timestamp>,
    instance: i32,
) -> Result<u64> {
    let (targets, ats): (Vec<&str>, Vec<Timestamp>) = read_back_at.iter().map(|(t, at)| (t.as_str(), *at)).unzip();
    let n = execute(
        tx,
        // Locked in id order first, as every writer of several commands locks them (the
        // outcomes' fencing does): locked in an index's order, this met another hub's outcomes
        // the other way round and one of the two was killed as a deadlock.
        "WITH stale AS (
             SELECT o.id FROM outbox o
             WHERE o.state = 'in_flight'
               AND (o.claimed_by IS NULL OR o.claimed_by = $4 OR o.lease_until <= $1
                    OR NOT EXISTS (
                        SELECT 1 FROM pg_locks l
                        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                          AND l.classid = $5::int4::oid AND l.objid = o.claimed_by::oid))
             ORDER BY o.id
             FOR UPDATE OF o)
         UPDATE outbox SET state = 'pending', ambiguous = true,
                next_attempt_at = coalesce(
                    (SELECT r.at FROM unnest($2::text[], $3::timestamptz[]) AS r (target, at)
                     WHERE r.target = outbox.target),
                    $1),
                last_error = 'hub stopped while the command was in flight', updated_at = $1,
                claimed_by = NULL, lease_until = NULL
         FROM stale WHERE outbox.id = stale.id AND outbox.state = 'in_flight'",
        &[&now, &targets, &ats, &instance, &super::listener::INSTANCE_LOCKS],
    )
    .await?;
    if n > 0 {
        tracing::warn!(
            message = "commands in flight at the last stop will be read back before any resend",
            commands = n
        );
    }
    Ok(n)
}

pub(super) async fn move_exception(
    tx: &Transaction<'_>,
    id: i64,
    to: handoff_model::ExceptionState,
    actor: &str,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<crate::Moved> {
    let select = format!("SELECT {} FROM exceptions WHERE id = $1 FOR UPDATE", rows::EXCEPTION_COLUMNS);
    let Some(row) = query_opt(tx, &select, &[&id]).await? else {
        return Ok(crate::Moved::NotFound);
    };
    let row = rows::exception(&row)?;
    let from = handoff_model::ExceptionState::parse(&row.state);
    if !from.is_some_and(|from| from.person_may_move(to)) {
        return Ok(crate::Moved::Refused { from: row.state });
    }
    // A rules exception resolved by a person is checked again by the rules.
    execute(
        tx,
        "UPDATE exceptions SET state = $1, updated_at = $2,
                rechecked = CASE WHEN $1 = 'resolved' AND subject IS NOT NULL THEN false ELSE rechecked END
         WHERE id = $3",
        &[&to.as_str(), &now, &id],
    )
    .await?;
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    let detail = format!("exception {id} ({}){why}", row.pattern);
    audit(tx, now, actor, to.as_str(), Some(&row.order_ref), &detail).await?;
    if let Some(command) = row.command_id
        && matches!(to, handoff_model::ExceptionState::Resolved | handoff_model::ExceptionState::Ignored)
    {
        let because = format!("its exception {id} was {} by {actor}{why}", to.as_str());
        abandon(tx, command, actor, Some(&because), now).await?;
    }
    Ok(crate::Moved::Done(crate::ExceptionRow { state: to.as_str().into(), updated_at: now, ..row }))
}

pub(super) async fn set_dead_letter_payload(
    tx: &Transaction<'_>,
    id: i64,
    payload: &str,
    actor: &str,
    now: Timestamp,
) -> Result<bool> {
    let changed = query_opt(
        tx,
        "UPDATE outbox SET payload = $1, updated_at = $2 WHERE id = $3 AND state = 'dead_lettered' RETURNING order_ref",
        &[&payload, &now, &id],
    )
    .await?;
    let Some(row) = changed else { return Ok(false) };
    let order_ref: String = row.try_get(0)?;
    let detail = format!("dead letter {id}: payload rewritten before replay");
    audit(tx, now, actor, "payload-set", Some(&order_ref), &detail).await?;
    Ok(true)
}

pub(super) async fn replay(tx: &Transaction<'_>, which: Replay, actor: &str, now: Timestamp) -> Result<u64> {
    let found = match which {
        Replay::One(id) => {
            query(tx, "SELECT id, order_ref FROM outbox WHERE id = $1 AND state = 'dead_lettered' FOR UPDATE", &[&id])
                .await?
        }
        Replay::All => {
            query(tx, "SELECT id, order_ref FROM outbox WHERE state = 'dead_lettered' ORDER BY id FOR UPDATE", &[])
                .await?
        }
    };
    for row in &found {
        let (id, order_ref): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        execute(
            tx,
            "UPDATE outbox SET state = 'pending', next_attempt_at = $1, budget_attempts = 0, budget_start = $1,
                    updated_at = $1 WHERE id = $2",
            &[&now, &id],
        )
        .await?;
        execute(
            tx,
            "UPDATE exceptions SET state = 'acknowledged', updated_at = $1 WHERE command_id = $2 AND state = 'open'",
            &[&now, &id],
        )
        .await?;
        audit(tx, now, actor, "replayed", Some(&order_ref), &format!("dead letter {id} replayed")).await?;
    }
    Ok(found.len() as u64)
}

/// One transaction: PostgreSQL's other writers are not held behind it.
pub(super) async fn move_rules_checkpoint(tx: &Transaction<'_>, change: &crate::CheckpointMove) -> Result<()> {
    execute(
        tx,
        "INSERT INTO rules_board (order_ref) SELECT DISTINCT unnest($1::text[]) ON CONFLICT DO NOTHING",
        &[&change.joined],
    )
    .await?;
    execute(
        tx,
        "INSERT INTO rules_checkpoint (id, position) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET position = excluded.position",
        &[&change.position],
    )
    .await?;
    execute(tx, "DELETE FROM rules_board WHERE order_ref = ANY($1)", &[&change.left]).await?;
    Ok(())
}

pub(super) async fn abandon(
    tx: &Transaction<'_>,
    id: i64,
    actor: &str,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<bool> {
    let sql = format!(
        "UPDATE outbox SET state = 'abandoned', updated_at = $1 WHERE id = $2 AND state = 'dead_lettered'
         RETURNING {COMMAND_COLUMNS}"
    );
    let Some(row) = query_opt(tx, &sql, &[&now, &id]).await? else {
        return Ok(false);
    };
    let c = rows::command(&row)?;
    // An abandoned command no longer holds its order's next one back.
    lock_orders(tx, [c.order_ref.as_str()]).await?;
    release_heads(tx, &[(&c.order_ref, &c.target)]).await?;
    execute(
        tx,
        "UPDATE exceptions SET state = 'resolved', updated_at = $1
         WHERE command_id = $2 AND state IN ('open', 'acknowledged')",
        &[&now, &id],
    )
    .await?;
    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
    let detail = format!("dead letter {id} ({} to {}) abandoned, never to be sent{why}", c.kind, c.target);
    audit(tx, now, actor, "abandoned", Some(&c.order_ref), &detail).await?;
    fact(tx, &c, "abandoned", None, now).await?;
    Ok(true)
}
