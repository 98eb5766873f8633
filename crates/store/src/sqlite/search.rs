//! The searches of `crate::search` in SQL: each filter led by an index (migration 0012), rows
//! in the index's order, one row more than the page to know whether another follows.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::rows::{self, COMMAND_COLUMNS, EXCEPTION_COLUMNS, micros, ts};
use crate::search::{
    AuditEntry, AuditFilter, ClusterFilter, ClusterRow, CommandFilter, ExceptionFilter, FlowHealth, HealthSample,
    HealthWindow, MAX_HEALTH_SAMPLES, OrderFilter, OrderRow, Page, audit_key, command_key, email_key, exception_key,
    page_size,
};
use crate::{Command, ExceptionRow, Result, StoreError};

/// SQLite's parameters: `?n`, times as microseconds.
pub(super) enum Sqlite {}

impl crate::search::Binds for Sqlite {
    type Param = Value;
    fn mark(n: usize) -> String {
        format!("?{n}")
    }
    fn text(value: String) -> Value {
        Value::Text(value)
    }
    fn time(value: jiff::Timestamp) -> Value {
        Value::Integer(micros(value))
    }
    fn limit(n: usize, rows: usize) -> (String, Value) {
        // `+ 0` keeps the statement prepared (see the module documentation of `sqlite`).
        (format!(" LIMIT ?{} + 0", n), Value::Integer(rows as i64))
    }
}

type Clauses = crate::search::Clauses<Sqlite>;

/// What an email key is looked for as in the index of email keys, an FTS5 table (migration
/// 0019): a phrase, so the key is one token whatever it holds.
pub(super) fn email_phrase(key: &str) -> String {
    format!("\"{}\"", key.replace('"', "\"\""))
}

/// The end of a prefix's range of texts (SQLite compares text bytewise).
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

pub(super) fn orders(conn: &Connection, f: &OrderFilter) -> Result<Page<OrderRow>> {
    let after = f.after()?;
    let limit = page_size(f.limit);
    let mut c = Clauses::default();
    let by_reference = f.reference.is_some();
    let email = f.email.as_deref().map(|e| email_phrase(&email_key(e)));
    // A search by email is led by the orders of its key, a handful: the other filters and the
    // page's order are checked on those rows only. `+` keeps SQLite from walking another index
    // of orders instead and testing each of its rows against the key's (a search by email and
    // channel took a second over a million orders, `handoff bench api`).
    let led = if email.is_some() { "+" } else { "" };
    if let Some(prefix) = &f.reference {
        let clause = format!("{led}order_ref >= ? AND {led}order_ref < ?");
        c.add(&clause, [Value::Text(prefix.clone()), Value::Text(prefix_end(prefix))]);
    }
    c.text("order_ref IN (SELECT order_ref FROM orders_email WHERE orders_email MATCH ?)", &email);
    c.text(&format!("{led}channel = ?"), &f.channel);
    c.text(&format!("{led}state = ?"), &f.state);
    c.time(&format!("{led}first_seen >= ?"), f.from);
    c.time(&format!("{led}first_seen < ?"), f.to);
    let order = match (&after, by_reference) {
        (Some(a), true) => {
            c.add(&format!("{led}order_ref > ?"), [Value::Text(a.tie.clone())]);
            " ORDER BY order_ref".to_owned()
        }
        (Some(a), false) => {
            let clause = format!("({led}first_seen, {led}order_ref) < (?, ?)");
            c.add(&clause, [Value::Integer(a.micros), Value::Text(a.tie.clone())]);
            format!(" ORDER BY {led}first_seen DESC, {led}order_ref DESC")
        }
        (None, true) => " ORDER BY order_ref".to_owned(),
        (None, false) => format!(" ORDER BY {led}first_seen DESC, {led}order_ref DESC"),
    };
    let sql = format!(
        "SELECT order_ref, source, channel, state, first_seen, updated_at FROM orders{}{order}{}",
        c.where_(),
        c.limit(limit)
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(c.params.iter()), |r| {
            Ok(OrderRow {
                order_ref: r.get(0)?,
                source: r.get(1)?,
                channel: r.get(2)?,
                state: r.get(3)?,
                first_seen: ts(r.get(4)?)?,
                updated_at: ts(r.get(5)?)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::of(rows, limit, |r| r.key(by_reference)))
}

pub(super) fn exceptions(conn: &Connection, f: &ExceptionFilter) -> Result<Page<ExceptionRow>> {
    let after = f.after()?;
    let limit = page_size(f.limit);
    let mut c = Clauses::default();
    c.text("pattern = ?", &f.pattern);
    c.text("state = ?", &f.state.map(|s| s.as_str().to_owned()));
    c.text("flow = ?", &f.flow);
    c.text("channel = ?", &f.channel);
    c.text("order_ref = ?", &f.order_ref);
    c.time("opened_at >= ?", f.opened_from);
    c.time("opened_at < ?", f.opened_to);
    if let Some(a) = &after {
        c.add("(opened_at, id) < (?, ?)", [Value::Integer(a.micros), Value::Integer(a.id()?)]);
    }
    let sql = format!(
        "SELECT {EXCEPTION_COLUMNS} FROM exceptions{} ORDER BY opened_at DESC, id DESC{}",
        c.where_(),
        c.limit(limit)
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(c.params.iter()), rows::exception)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::of(rows, limit, exception_key))
}

/// Clusters summed at one count of the exceptions' changes (`generations`, migration 0014),
/// with each cluster's newest member, kept for the views until the count moves.
pub(super) struct Summed {
    generation: i64,
    rows: Vec<ClusterRow>,
    newest: BTreeMap<String, i64>,
}

/// The clusters summed per filter (states, pattern, flow, channel), at most [`CACHED`] filters.
pub(super) type ClusterCache =
    Mutex<HashMap<(Vec<&'static str>, Option<String>, Option<String>, Option<String>), Arc<Summed>>>;

/// Most filters whose clusters are kept at once (the console asks for one or two).
const CACHED: usize = 64;

/// One page of clusters: summed again only when the exceptions changed since they last were.
pub(super) fn clusters(conn: &Connection, f: &ClusterFilter, cache: &ClusterCache) -> Result<Page<ClusterRow>> {
    let generation: i64 =
        conn.prepare_cached("SELECT n FROM generations WHERE name = 'exceptions'")?.query_row([], |r| r.get(0))?;
    let key = (f.states(), f.pattern.clone(), f.flow.clone(), f.channel.clone());
    let kept = cache.lock().expect("cluster cache lock").get(&key).filter(|s| s.generation == generation).cloned();
    let summed = match kept {
        Some(summed) => summed,
        None => {
            // Counted before the sum, so a change in between makes the next view sum again.
            let summed = Arc::new(sum_clusters(conn, f, generation)?);
            let mut cache = cache.lock().expect("cluster cache lock");
            if cache.len() >= CACHED {
                cache.clear();
            }
            cache.insert(key, summed.clone());
            summed
        }
    };
    let mut page = crate::search::clusters_page(summed.rows.clone(), f)?;
    let mut detail = conn.prepare_cached("SELECT detail FROM exceptions WHERE id = ?1")?;
    for cluster in &mut page.rows {
        if let Some(id) = summed.newest.get(&cluster.id) {
            // Gone since (a purge): the cluster is summed again on the next view.
            cluster.example = detail.query_row([id], |r| r.get(0)).optional()?.unwrap_or_default();
        }
    }
    Ok(page)
}

/// Every cluster of the filter, grouped and summed in SQL.
fn sum_clusters(conn: &Connection, f: &ClusterFilter, generation: i64) -> Result<Summed> {
    let mut c = Clauses::default();
    let states = f.states();
    let mut from = "exceptions";
    if states == ["acknowledged", "open"] {
        // The work left, read from the partial index `exceptions_clusters` (migration 0014) alone,
        // in its key's order. Named, or the planner (without statistics) leads by the state and
        // sorts; written as the index's own clause, which SQLite needs to know it holds every
        // row asked for.
        from = "exceptions INDEXED BY exceptions_clusters";
        c.add("state IN ('acknowledged', 'open')", []);
    } else {
        let marks = vec!["?"; states.len()].join(", ");
        c.add(&format!("state IN ({marks})"), states.iter().map(|s| Value::Text((*s).to_owned())));
    }
    c.text("pattern = ?", &f.pattern);
    c.text("flow = ?", &f.flow);
    c.text("channel = ?", &f.channel);
    // Grouped and summed here, one row per cluster, in the index's order (each member's
    // fingerprint was kept when it was written): the members are never loaded. The example's
    // detail is read afterwards, for the page's clusters only.
    let sql = format!(
        "SELECT pattern, flow, field, channel, mapping, fingerprint,
                count(*), count(DISTINCT order_ref), handoff_money(amount, currency), min(opened_at),
                max(max(updated_at, opened_at)), handoff_tally(state), handoff_newest(opened_at, id)
         FROM {from}{}
         GROUP BY pattern, flow, field, channel, mapping, fingerprint",
        c.where_()
    );
    let mut newest: BTreeMap<String, i64> = BTreeMap::new();
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(c.params.iter()), |r| {
            let (pattern, flow, field, channel, mapping, fingerprint): (
                String,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
                String,
            ) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
            let id = handoff_model::cluster::cluster_id([
                Some(pattern.as_str()),
                flow.as_deref(),
                field.as_deref(),
                channel.as_deref(),
                mapping.as_deref(),
                Some(fingerprint.as_str()),
            ]);
            Ok((
                ClusterRow {
                    id,
                    pattern,
                    flow,
                    field,
                    channel,
                    mapping,
                    fingerprint,
                    exceptions: r.get::<_, i64>(6)? as u64,
                    orders: r.get::<_, i64>(7)? as u64,
                    money: json(8, r.get(8)?)?,
                    first_seen: ts(r.get(9)?)?,
                    last_seen: ts(r.get(10)?)?,
                    states: json(11, r.get(11)?)?,
                    example: String::new(),
                },
                r.get::<_, i64>(12)?,
            ))
        })?
        .map(|row| {
            let (cluster, example) = row?;
            newest.insert(cluster.id.clone(), example);
            Ok(cluster)
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Summed { generation, rows, newest })
}

/// A JSON column the store's own aggregate wrote.
fn json<T: serde::de::DeserializeOwned>(i: usize, text: String) -> rusqlite::Result<T> {
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

pub(super) fn commands(conn: &Connection, f: &CommandFilter) -> Result<Page<Command>> {
    let after = f.after()?;
    let limit = page_size(f.limit);
    let mut c = Clauses::default();
    c.text("state = ?", &f.state.map(|s| s.as_str().to_owned()));
    c.text("target = ?", &f.target);
    c.text("order_ref = ?", &f.order_ref);
    if let Some(id) = after {
        c.add("id < ?", [Value::Integer(id)]);
    }
    let sql = format!("SELECT {COMMAND_COLUMNS} FROM outbox{} ORDER BY id DESC{}", c.where_(), c.limit(limit));
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(c.params.iter()), rows::command)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::of(rows, limit, command_key))
}

pub(super) fn audit(conn: &Connection, f: &AuditFilter) -> Result<Page<AuditEntry>> {
    let after = f.after()?;
    let limit = page_size(f.limit);
    let mut c = Clauses::default();
    c.text("actor = ?", &f.actor);
    c.text("order_ref = ?", &f.order_ref);
    c.time("at >= ?", f.from);
    c.time("at < ?", f.to);
    if let Some(a) = &after {
        c.add("(at, id) < (?, ?)", [Value::Integer(a.micros), Value::Integer(a.id()?)]);
    }
    let sql = format!(
        "SELECT id, at, actor, action, nullif(order_ref, ''), detail FROM audit{} ORDER BY at DESC, id DESC{}",
        c.where_(),
        c.limit(limit)
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(c.params.iter()), |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: ts(r.get(1)?)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                order_ref: r.get(4)?,
                detail: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::of(rows, limit, audit_key))
}

pub(super) fn flow_health(conn: &Connection, w: &HealthWindow) -> Result<Vec<FlowHealth>> {
    w.check()?;
    let mut c = Clauses::default();
    c.time("c.created_at >= ?", Some(w.from));
    c.time("c.created_at < ?", Some(w.to));
    c.text("c.flow = ?", &w.flow);
    // As `flow_stats`: the window's commands by their creation index, each one's attempts by
    // their key, one pass.
    let sql = format!(
        "SELECT c.flow, c.target, c.kind, c.state,
                count(a.attempt),
                count(CASE WHEN a.outcome IN ('retry', 'ambiguous') THEN 1 END),
                count(CASE WHEN a.outcome = 'dead_lettered' THEN 1 END),
                min(CASE WHEN a.outcome = 'acknowledged' THEN a.finished_at END),
                i.received_at, c.created_at
         FROM outbox c LEFT JOIN attempts a ON a.command_id = c.id LEFT JOIN inbox i ON i.id = c.event_row{}
         GROUP BY c.id{}",
        c.where_(),
        c.limit(MAX_HEALTH_SAMPLES)
    );
    let samples = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(c.params.iter()), |r| {
            let state: String = r.get(3)?;
            let acked: Option<i64> = r.get(7)?;
            let received: Option<i64> = r.get(8)?;
            Ok(HealthSample {
                created_at: ts(r.get(9)?)?,
                sample: crate::CommandSample {
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
                },
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if samples.len() > MAX_HEALTH_SAMPLES {
        return Err(StoreError::Invalid(format!("more than {MAX_HEALTH_SAMPLES} commands in the window: narrow it")));
    }
    let depth: BTreeMap<String, u64> = conn
        .prepare_cached("SELECT flow, count(*) FROM outbox WHERE state = 'dead_lettered' GROUP BY flow")?
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(crate::search::flow_health_of(w, samples, depth))
}
