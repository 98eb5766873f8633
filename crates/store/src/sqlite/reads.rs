//! Queries that change nothing; they run on the read connections.

use std::collections::HashMap;
use std::sync::LazyLock;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{self, COMMAND_COLUMNS, EVENT_COLUMNS, EVENT_COLUMNS_UNRAW, EXCEPTION_COLUMNS, ts};
use handoff_model::ExceptionState;

use crate::{AttemptRow, AuditRow, Command, ExceptionRow, LedgerRow, OrderState, Result, StoredEvent, Timeline};

pub(super) fn unprocessed_events(conn: &Connection, limit: usize) -> Result<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS_UNRAW} FROM inbox WHERE id > (SELECT last_row FROM intake_cursor) ORDER BY id LIMIT ?1 + 0"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([limit as i64], rows::event)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn count_unplanned(conn: &Connection, at_most: usize) -> Result<u64> {
    let mut stmt = conn.prepare_cached(
        "SELECT count(*) FROM (SELECT 1 FROM inbox WHERE id > (SELECT last_row FROM intake_cursor) LIMIT ?1 + 0)",
    )?;
    Ok(stmt.query_row([at_most as i64], |r| r.get::<_, i64>(0))? as u64)
}

pub(super) fn poll_cursor(conn: &Connection, system: &str) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached("SELECT cursor FROM poll_cursor WHERE system = ?1")?;
    let mut rows = stmt.query([system])?;
    Ok(match rows.next()? {
        Some(r) => Some(r.get(0)?),
        None => None,
    })
}

pub(super) fn order_states(conn: &Connection, order_refs: &[String]) -> Result<HashMap<String, OrderState>> {
    let mut stmt = conn.prepare_cached(
        "SELECT source, created, cancelled, last_version, last_fingerprint FROM orders WHERE order_ref = ?1",
    )?;
    let mut states = HashMap::with_capacity(order_refs.len());
    for order_ref in order_refs {
        let mut rows = stmt.query([order_ref])?;
        if let Some(r) = rows.next()? {
            let state = OrderState {
                source: r.get(0)?,
                created: r.get(1)?,
                cancelled: r.get(2)?,
                last_version: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                last_fingerprint: r.get(4)?,
            };
            states.insert(order_ref.clone(), state);
        }
    }
    Ok(states)
}

/// When the next command falls due: one that heads its sequence (the ones behind it wait for
/// it, not for a time), read in the due index's order up to the first.
static NEXT_DUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT c.next_attempt_at FROM outbox c INDEXED BY outbox_due
         WHERE c.state = 'pending' AND {}
         ORDER BY c.next_attempt_at, c.id
         LIMIT 1",
        super::writes::HEADS_ITS_SEQUENCE
    )
});

pub(super) fn next_due_at(conn: &Connection) -> Result<Option<Timestamp>> {
    let due: Option<i64> = conn.prepare_cached(&NEXT_DUE)?.query_row([], |r| r.get(0)).optional()?;
    Ok(due.map(ts).transpose()?)
}

pub(super) fn dead_letters(conn: &Connection, limit: usize) -> Result<Vec<Command>> {
    let sql = format!("SELECT {COMMAND_COLUMNS} FROM outbox WHERE state = 'dead_lettered' ORDER BY id LIMIT ?1 + 0");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([limit as i64], rows::command)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn exceptions(conn: &Connection, state: Option<ExceptionState>, limit: usize) -> Result<Vec<ExceptionRow>> {
    // Two statements, not `?1 IS NULL OR state = ?1`, which no index can lead.
    let rows = match state {
        Some(state) => {
            let sql =
                format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE state = ?1 ORDER BY id DESC LIMIT ?2 + 0");
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(params![state.as_str(), limit as i64], rows::exception)?.collect::<rusqlite::Result<_>>()
        }
        None => {
            let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions ORDER BY id DESC LIMIT ?1 + 0");
            let mut stmt = conn.prepare_cached(&sql)?;
            stmt.query_map(params![limit as i64], rows::exception)?.collect::<rusqlite::Result<_>>()
        }
    };
    Ok(rows?)
}

/// Open exceptions per pattern, read through the state index.
pub(super) fn open_exceptions_by_pattern(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT pattern, count(*) FROM exceptions WHERE state = 'open' GROUP BY pattern ORDER BY pattern",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Counts per state without a sort: each unfinished state is a partial index of its own or a
/// range of the index of states, and the acknowledged are the rest.
pub(super) fn command_counts(conn: &Connection) -> Result<Vec<(String, u64)>> {
    // One statement, so one snapshot: counted one by one, a command moving from pending to in
    // flight between two counts was in neither, and the outbox looked drained.
    const STATES: [&str; 5] = ["dead_lettered", "in_flight", "pending", "superseded", "abandoned"];
    let mut stmt = conn.prepare_cached(
        "SELECT (SELECT count(*) FROM outbox),
                (SELECT count(*) FROM outbox WHERE state = 'dead_lettered'),
                (SELECT count(*) FROM outbox WHERE state = 'in_flight'),
                (SELECT count(*) FROM outbox WHERE state = 'pending'),
                (SELECT count(*) FROM outbox WHERE state = 'superseded'),
                (SELECT count(*) FROM outbox WHERE state = 'abandoned')",
    )?;
    let numbers: Vec<u64> =
        stmt.query_row([], |r| (0..=STATES.len()).map(|i| Ok(r.get::<_, i64>(i)? as u64)).collect())?;
    let mut counts: Vec<(&str, u64)> = STATES.into_iter().zip(numbers[1..].iter().copied()).collect();
    let unfinished: u64 = counts.iter().map(|(_, n)| n).sum();
    counts.insert(0, ("acknowledged", numbers[0].saturating_sub(unfinished)));
    Ok(counts.into_iter().filter(|(_, n)| *n > 0).map(|(s, n)| (s.to_owned(), n)).collect())
}

pub(super) fn order_timeline(conn: &Connection, order_ref: &str) -> Result<Timeline> {
    let events = {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM inbox WHERE order_ref = ?1 ORDER BY id");
        let mut stmt = conn.prepare_cached(&sql)?;
        let events = stmt.query_map([order_ref], rows::event)?.collect::<rusqlite::Result<Vec<_>>>()?;
        events.into_iter().map(StoredEvent::stamped).collect::<Vec<_>>()
    };
    let commands = {
        let sql = format!("SELECT {COMMAND_COLUMNS} FROM outbox WHERE order_ref = ?1 ORDER BY id");
        let mut stmt = conn.prepare_cached(&sql)?;
        stmt.query_map([order_ref], rows::command)?.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let attempts = {
        let mut stmt = conn.prepare_cached(
            "SELECT a.command_id, a.attempt, a.started_at, a.finished_at, a.outcome, a.detail, a.mapping
             FROM attempts a JOIN outbox c ON c.id = a.command_id
             WHERE c.order_ref = ?1 ORDER BY a.started_at, a.command_id, a.attempt",
        )?;
        stmt.query_map([order_ref], |r| {
            Ok(AttemptRow {
                command_id: r.get(0)?,
                attempt: r.get(1)?,
                started_at: ts(r.get(2)?)?,
                finished_at: ts(r.get(3)?)?,
                outcome: r.get(4)?,
                detail: r.get(5)?,
                mapping: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let ledger = {
        let mut stmt = conn.prepare_cached(
            "SELECT system, state, record_id, updated_at FROM ledger WHERE order_ref = ?1 ORDER BY updated_at",
        )?;
        stmt.query_map([order_ref], |r| {
            Ok(LedgerRow { system: r.get(0)?, state: r.get(1)?, record_id: r.get(2)?, updated_at: ts(r.get(3)?)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let exceptions = {
        let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE order_ref = ?1 ORDER BY id");
        let mut stmt = conn.prepare_cached(&sql)?;
        stmt.query_map([order_ref], rows::exception)?.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let audit = {
        let mut stmt =
            conn.prepare_cached("SELECT at, actor, action, detail FROM audit WHERE order_ref = ?1 ORDER BY id")?;
        stmt.query_map([order_ref], |r| {
            Ok(AuditRow { at: ts(r.get(0)?)?, actor: r.get(1)?, action: r.get(2)?, detail: r.get(3)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let quarantined = super::quarantine::of_order(conn, order_ref)?;
    Ok(Timeline { order_ref: order_ref.to_owned(), events, commands, attempts, ledger, exceptions, audit, quarantined })
}

pub(super) fn exception(conn: &Connection, id: i64) -> Result<Option<ExceptionRow>> {
    let sql = format!("SELECT {EXCEPTION_COLUMNS} FROM exceptions WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], rows::exception).optional()?)
}

pub(super) fn facts_after(conn: &Connection, after: i64, limit: usize) -> Result<Vec<crate::FactRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT f.id, f.order_ref, f.system, f.kind, f.record_id, f.command_id, o.payload, f.at, f.event_row
         FROM facts f LEFT JOIN outbox_payloads o ON o.command_id = f.command_id
         WHERE f.id > ?1 ORDER BY f.id LIMIT ?2 + 0",
    )?;
    let rows = stmt.query_map(params![after, limit as i64], fact_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn event_payloads(conn: &Connection, rows: &[i64]) -> Result<Vec<(i64, String)>> {
    let rows = serde_json::to_string(rows).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
    let mut stmt =
        conn.prepare_cached("SELECT id, payload FROM inbox WHERE id IN (SELECT value FROM json_each(?1))")?;
    let payloads = stmt.query_map([rows], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(payloads.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn facts_of(conn: &Connection, order_refs: &[String], up_to: i64) -> Result<Vec<crate::FactRow>> {
    let refs = serde_json::to_string(order_refs).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
    let mut stmt = conn.prepare_cached(
        "SELECT f.id, f.order_ref, f.system, f.kind, f.record_id, f.command_id,
                coalesce(i.payload, o.payload), f.at, f.event_row
         FROM facts f LEFT JOIN inbox i ON i.id = f.event_row LEFT JOIN outbox_payloads o ON o.command_id = f.command_id
         WHERE f.order_ref IN (SELECT value FROM json_each(?1)) AND f.id <= ?2 ORDER BY f.id",
    )?;
    let rows = stmt.query_map(params![refs, up_to], fact_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn fact_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::FactRow> {
    Ok(crate::FactRow {
        id: r.get(0)?,
        order_ref: r.get(1)?,
        system: r.get(2)?,
        kind: r.get(3)?,
        record_id: r.get(4)?,
        command_id: r.get(5)?,
        payload: r.get(6)?,
        at: ts(r.get(7)?)?,
        event_row: r.get(8)?,
    })
}

pub(super) fn raised_findings(conn: &Connection, order_refs: &[String]) -> Result<Vec<crate::RaisedFinding>> {
    let refs = serde_json::to_string(order_refs).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
    let mut stmt = conn.prepare_cached(
        "SELECT order_ref, pattern, subject FROM exceptions
         WHERE order_ref IN (SELECT value FROM json_each(?1)) AND subject IS NOT NULL
           AND state IN ('open', 'acknowledged', 'ignored')",
    )?;
    let rows = stmt.query_map([refs], |r| {
        Ok(crate::RaisedFinding { order_ref: r.get(0)?, pattern: r.get(1)?, subject: r.get(2)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn rules_checkpoint(conn: &Connection) -> Result<Option<crate::RulesCheckpoint>> {
    let position: Option<i64> = conn
        .prepare_cached("SELECT position FROM rules_checkpoint WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let Some(position) = position else { return Ok(None) };
    let orders = conn
        .prepare_cached("SELECT order_ref FROM rules_board ORDER BY order_ref")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(Some(crate::RulesCheckpoint { position, orders }))
}

pub(super) fn flow_stats(conn: &Connection, since: Timestamp) -> Result<Vec<crate::FlowStats>> {
    let mut stmt = conn.prepare_cached(
        // One pass: the window's commands by their creation index, each one's attempts by
        // their key, aggregated together.
        "SELECT c.flow, c.target, c.kind, c.state,
                count(a.attempt),
                count(CASE WHEN a.outcome IN ('retry', 'ambiguous') THEN 1 END),
                count(CASE WHEN a.outcome = 'dead_lettered' THEN 1 END),
                min(CASE WHEN a.outcome = 'acknowledged' THEN a.finished_at END),
                i.received_at
         FROM outbox c LEFT JOIN attempts a ON a.command_id = c.id LEFT JOIN inbox i ON i.id = c.event_row
         WHERE c.created_at >= ?1
         GROUP BY c.id",
    )?;
    let samples = stmt
        .query_map([super::rows::micros(since)], |r| {
            let state: String = r.get(3)?;
            let acked: Option<i64> = r.get(7)?;
            let received: Option<i64> = r.get(8)?;
            Ok(crate::CommandSample {
                flow: r.get(0)?,
                target: r.get(1)?,
                kind: r.get(2)?,
                state: state.parse().map_err(|e: String| {
                    rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
                })?,
                attempts: r.get::<_, i64>(4)? as u64,
                retries: r.get::<_, i64>(5)? as u64,
                dead_lettered: r.get::<_, i64>(6)? > 0,
                latency_ms: acked.zip(received).map(|(a, e)| (a - e).max(0) / 1000),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(crate::flow_stats_of(samples))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use rusqlite::Connection;
    use rusqlite::trace::{TraceEvent, TraceEventCodes};

    use super::*;

    /// The statements the traced connection ran, with their parameters bound.
    static RAN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn ran(event: TraceEvent<'_>) {
        if let TraceEvent::Stmt(statement, sql) = event {
            RAN.lock().unwrap().push(statement.expanded_sql().unwrap_or_else(|| sql.to_owned()));
        }
    }

    /// Tables that grow with traffic: no read may walk one whole.
    const LARGE: [&str; 10] = [
        "inbox",
        "outbox",
        "outbox_payloads",
        "attempts",
        "exceptions",
        "audit",
        "facts",
        "ledger",
        "quarantine",
        "orders",
    ];

    /// Every search with each filter alone, all together, and after a cursor.
    fn searches(conn: &Connection) {
        use super::super::search;
        use crate::search::*;
        let t = Some(Timestamp::UNIX_EPOCH);
        let text = |s: &str| Some(s.to_owned());
        let cursor = |s: &str| Some(s.to_owned());
        let orders = [
            OrderFilter::default(),
            OrderFilter { reference: text("10"), ..Default::default() },
            OrderFilter { reference: text("10"), cursor: cursor("0.1001"), ..Default::default() },
            OrderFilter { email: text("ada@example.com"), ..Default::default() },
            OrderFilter {
                email: text("ada@example.com"),
                channel: text("web"),
                cursor: cursor("5.1"),
                ..Default::default()
            },
            OrderFilter { channel: text("web"), ..Default::default() },
            OrderFilter { state: text("cancelled"), ..Default::default() },
            OrderFilter { from: t, to: t, ..Default::default() },
            OrderFilter { to: t, ..Default::default() },
            OrderFilter { cursor: cursor("5.1001"), ..Default::default() },
            OrderFilter {
                channel: text("web"),
                state: text("created"),
                from: t,
                cursor: cursor("5.1"),
                ..Default::default()
            },
        ];
        for f in &orders {
            search::orders(conn, f).unwrap();
        }
        let state = Some(ExceptionState::Open);
        let exceptions = [
            ExceptionFilter::default(),
            ExceptionFilter { pattern: text("dead_delivery"), ..Default::default() },
            ExceptionFilter { state, ..Default::default() },
            ExceptionFilter { flow: text("orders"), ..Default::default() },
            ExceptionFilter { channel: text("web"), ..Default::default() },
            ExceptionFilter { order_ref: text("1001"), ..Default::default() },
            ExceptionFilter { opened_from: t, opened_to: t, ..Default::default() },
            ExceptionFilter { opened_to: t, ..Default::default() },
            ExceptionFilter { cursor: cursor("5.7"), ..Default::default() },
            ExceptionFilter { pattern: text("p"), state, flow: text("f"), cursor: cursor("5.7"), ..Default::default() },
        ];
        for f in &exceptions {
            search::exceptions(conn, f).unwrap();
        }
        let cache = search::ClusterCache::default();
        search::clusters(conn, &ClusterFilter::default(), &cache).unwrap();
        let one = ClusterFilter { pattern: text("p"), flow: text("f"), ..Default::default() };
        search::clusters(conn, &one, &cache).unwrap();
        // Asked again with no change in between: the clusters kept are read, not summed.
        search::clusters(conn, &one, &cache).unwrap();
        let states = ClusterFilter { states: vec![ExceptionState::Resolved], ..Default::default() };
        search::clusters(conn, &states, &cache).unwrap();
        let commands = [
            CommandFilter::default(),
            CommandFilter { state: Some(handoff_model::CommandState::Pending), ..Default::default() },
            CommandFilter { target: text("erp"), ..Default::default() },
            CommandFilter { order_ref: text("1001"), ..Default::default() },
            CommandFilter { cursor: cursor("0.9"), ..Default::default() },
            CommandFilter { target: text("erp"), cursor: cursor("0.9"), ..Default::default() },
        ];
        for f in &commands {
            search::commands(conn, f).unwrap();
        }
        let audits = [
            AuditFilter::default(),
            AuditFilter { actor: text("ada"), ..Default::default() },
            AuditFilter { order_ref: text("1001"), ..Default::default() },
            AuditFilter { from: t, to: t, ..Default::default() },
            AuditFilter { cursor: cursor("5.3"), ..Default::default() },
            AuditFilter { actor: text("ada"), from: t, cursor: cursor("5.3"), ..Default::default() },
        ];
        for f in &audits {
            search::audit(conn, f).unwrap();
        }
        let window = HealthWindow {
            from: Timestamp::UNIX_EPOCH,
            to: Timestamp::from_second(3600).unwrap(),
            buckets: 12,
            flow: None,
        };
        search::flow_health(conn, &window).unwrap();
        search::flow_health(conn, &HealthWindow { flow: text("orders"), ..window }).unwrap();
    }

    /// The steps of a statement's plan, its parameters bound to NULL.
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; plan.parameter_count()];
        plan.query_map(rusqlite::params_from_iter(nulls), |r| r.get(3)).unwrap().map(|r| r.unwrap()).collect()
    }

    /// Whether a statement's plan sorts its rows (then a LIMIT does not stop the walk).
    fn plan_sorts(conn: &Connection, sql: &str) -> bool {
        plan(conn, sql).iter().any(|s| s.contains("TEMP B-TREE FOR ORDER BY"))
    }

    /// The queue of one pattern in one state (the console's filter) is read newest first from
    /// the index of both, so a pattern rare among the open exceptions stops at its page.
    #[test]
    fn the_queue_of_one_pattern_is_read_in_its_indexs_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        let sql = "SELECT detail FROM exceptions WHERE pattern = 'status_void' AND state = 'open' \
                   ORDER BY opened_at DESC, id DESC LIMIT 101";
        let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps: Vec<String> = plan.query_map([], |r| r.get(3)).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(steps, ["SEARCH exceptions USING INDEX exceptions_state_pattern (state=? AND pattern=?)"]);
    }

    /// The claims and the next due time walk the due commands in their index's order and stop
    /// at their limit: never every pending command, sorted, at each claim.
    #[test]
    fn the_claims_read_the_due_commands_in_their_indexs_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        let claims = super::super::writes::CLAIMS.iter().chain([&*super::NEXT_DUE]);
        for sql in claims {
            let steps = plan(&conn, sql);
            assert!(steps.iter().any(|s| s.contains("USING INDEX outbox_due")), "{steps:?}");
            assert!(!plan_sorts(&conn, sql), "{steps:?}");
        }
    }

    #[test]
    fn no_read_scans_a_table_that_grows() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        super::super::functions::register(&conn).unwrap();
        conn.trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(ran));
        let since = Timestamp::UNIX_EPOCH;
        unprocessed_events(&conn, 10).unwrap();
        count_unplanned(&conn, 1000).unwrap();
        poll_cursor(&conn, "shop").unwrap();
        order_states(&conn, &["1001".to_owned()]).unwrap();
        next_due_at(&conn).unwrap();
        dead_letters(&conn, 10).unwrap();
        exceptions(&conn, None, 10).unwrap();
        exceptions(&conn, Some(ExceptionState::Open), 10).unwrap();
        command_counts(&conn).unwrap();
        open_exceptions_by_pattern(&conn).unwrap();
        order_timeline(&conn, "1001").unwrap();
        exception(&conn, 1).unwrap();
        facts_after(&conn, 0, 10).unwrap();
        facts_of(&conn, &["1001".to_owned()], 10).unwrap();
        raised_findings(&conn, &["1001".to_owned()]).unwrap();
        rules_checkpoint(&conn).unwrap();
        flow_stats(&conn, since).unwrap();
        super::super::quarantine::list(&conn, None, 10).unwrap();
        super::super::quarantine::list(&conn, Some(crate::QuarantineState::Held), 10).unwrap();
        super::super::quarantine::one(&conn, 1).unwrap();
        super::super::quarantine::of_order(&conn, "1001").unwrap();
        super::super::quarantine::depth(&conn).unwrap();
        for filter in [
            crate::QuarantineFilter::default(),
            crate::QuarantineFilter { state: Some(crate::QuarantineState::Replayed), ..Default::default() },
            crate::QuarantineFilter { cursor: Some("0.9".into()), ..Default::default() },
            crate::QuarantineFilter {
                state: Some(crate::QuarantineState::Held),
                cursor: Some("0.9".into()),
                ..Default::default()
            },
        ] {
            super::super::quarantine::page(&conn, &filter).unwrap();
        }
        searches(&conn);
        conn.trace_v2(TraceEventCodes::empty(), None);

        let statements = std::mem::take(&mut *RAN.lock().unwrap());
        // A partial index holds one unfinished state's rows only (dead letters, in flight).
        let partial: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(statements.len() >= 17, "{statements:#?}");
        let mut scans = Vec::new();
        // A statement run inside another (by the FTS5 index of email keys) is traced as a comment.
        for sql in statements.into_iter().filter(|sql| !sql.starts_with("-- ")) {
            let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap_or_else(|e| panic!("{e}: {sql}"));
            let steps: Vec<String> = plan.query_map([], |r| r.get(3)).unwrap().map(|r| r.unwrap()).collect();
            for step in &steps {
                let table = step.strip_prefix("SCAN ").and_then(|rest| rest.split_whitespace().next());
                // The newest rows of a table, in the order of the index walked (no sort), stop at
                // their LIMIT.
                let outer = sql.replace(super::super::rows::COMMAND_PAYLOAD, "payload");
                let bounded = outer.contains(" ORDER BY ")
                    && outer.contains(" LIMIT ")
                    && !outer.contains(" WHERE ")
                    && !plan_sorts(&conn, &sql);
                let by_partial_index = partial.iter().any(|index| step.ends_with(&format!(" INDEX {index}")));
                // Known and kept: the total of all commands (GET /api/v1/outbox), a count over
                // the smallest covering index.
                let total = sql.contains("(SELECT count(*) FROM outbox),") && step.contains(" COVERING INDEX ");
                if table.is_some_and(|t| LARGE.contains(&t)) && !bounded && !by_partial_index && !total {
                    scans.push(format!("{step}: {sql}"));
                }
                // The index of email keys (FTS5) is read by a MATCH of one key, never walked.
                if table == Some("orders_email") && !step.contains(" VIRTUAL TABLE INDEX 0:M") {
                    scans.push(format!("{step}: {sql}"));
                }
            }
            // A search by email finds its key's orders by reference, whatever else it filters
            // by: another index of orders would be walked, each row tested against the key's.
            let by_key = "SEARCH orders USING INDEX sqlite_autoindex_orders_1 (order_ref=?)";
            if sql.contains("orders_email MATCH") && !steps.iter().any(|s| s == by_key) {
                scans.push(format!("{steps:?}: {sql}"));
            }
        }
        assert!(scans.is_empty(), "reads that walk a whole table:\n{}", scans.join("\n"));
    }
}
