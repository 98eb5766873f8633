//! The searches of `crate::search` in SQL (as `sqlite/search.rs`): each filter led by an index
//! (migration 0003), rows in the index's order, one row more than the page to know whether
//! another follows. References are compared bytewise (COLLATE "C"), as SQLite compares them.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use jiff::Timestamp;
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;

use super::rows::{self, COMMAND_COLUMNS, EXCEPTION_COLUMNS, count, query};
use crate::search::{
    AuditEntry, AuditFilter, ClusterFilter, ClusterRow, CommandFilter, ExceptionFilter, FlowHealth, HealthSample,
    HealthWindow, MAX_HEALTH_SAMPLES, OrderFilter, OrderRow, Page, amount, audit_key, command_key, email_key,
    exception_key, page_size,
};
use crate::{Command, ExceptionRow, Result, StoreError};

type Param = Box<dyn ToSql + Sync + Send>;

/// PostgreSQL's parameters: `$n`, boxed for the driver.
pub(super) enum Postgres {}

impl crate::search::Binds for Postgres {
    type Param = Param;
    fn mark(n: usize) -> String {
        format!("${n}")
    }
    fn text(value: String) -> Param {
        Box::new(value)
    }
    fn time(value: Timestamp) -> Param {
        Box::new(value)
    }
    fn limit(n: usize, rows: usize) -> (String, Param) {
        (format!(" LIMIT ${n}"), Box::new(rows::limit(rows)))
    }
}

type Clauses = crate::search::Clauses<Postgres>;

/// The parameters as the driver takes them.
fn params(w: &Clauses) -> Vec<&(dyn ToSql + Sync)> {
    w.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// A cursor's time as a timestamp.
fn at(micros: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(micros).map_err(|_| StoreError::Invalid("cursor is not one a page gave".into()))
}

/// The end of a prefix's range of texts (compared bytewise).
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

pub(super) async fn orders(c: &impl GenericClient, f: &OrderFilter) -> Result<Page<OrderRow>> {
    let after = f.after()?;
    let limit = page_size(f.limit);
    let mut w = Clauses::default();
    let by_reference = f.reference.is_some();
    if let Some(prefix) = &f.reference {
        w.add(
            r#"order_ref COLLATE "C" >= ? AND order_ref COLLATE "C" < ?"#,
            [Box::new(prefix.clone()) as Param, Box::new(prefix_end(prefix))],
        );
    }
    w.text("email_key = ?", &f.email.as_deref().map(email_key));
    w.text("channel = ?", &f.channel);
    w.text("state = ?", &f.state);
    w.time("first_seen >= ?", f.from);
    w.time("first_seen < ?", f.to);
    let order = match (&after, by_reference) {
        (Some(a), true) => {
            w.add(r#"order_ref COLLATE "C" > ?"#, [Box::new(a.tie.clone()) as Param]);
            r#" ORDER BY order_ref COLLATE "C""#
        }
        (Some(a), false) => {
            w.add(
                r#"(first_seen, order_ref COLLATE "C") < (?, ?)"#,
                [Box::new(at(a.micros)?) as Param, Box::new(a.tie.clone())],
            );
            r#" ORDER BY first_seen DESC, order_ref COLLATE "C" DESC"#
        }
        (None, true) => r#" ORDER BY order_ref COLLATE "C""#,
        (None, false) => r#" ORDER BY first_seen DESC, order_ref COLLATE "C" DESC"#,
    };
    let sql = format!(
        "SELECT order_ref, source, channel, state, first_seen, updated_at FROM orders{}{order}{}",
        w.where_(),
        w.limit(limit)
    );
    let found = query(c, &sql, &params(&w)).await?;
    let rows = found
        .iter()
        .map(|r| {
            Ok(OrderRow {
                order_ref: r.try_get(0)?,
                source: r.try_get(1)?,
                channel: r.try_get(2)?,
                state: r.try_get(3)?,
                first_seen: r.try_get(4)?,
                updated_at: r.try_get(5)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::of(rows, limit, |r| r.key(by_reference)))
}

pub(super) async fn exceptions(c: &impl GenericClient, f: &ExceptionFilter) -> Result<Page<ExceptionRow>> {
    let after = f.after()?;
    let limit = page_size(f.limit);
    let mut w = Clauses::default();
    w.text("pattern = ?", &f.pattern);
    w.text("state = ?", &f.state.map(|s| s.as_str().to_owned()));
    w.text("flow = ?", &f.flow);
    w.text("channel = ?", &f.channel);
    w.text("order_ref = ?", &f.order_ref);
    w.time("opened_at >= ?", f.opened_from);
    w.time("opened_at < ?", f.opened_to);
    if let Some(a) = &after {
        w.add("(opened_at, id) < (?, ?)", [Box::new(at(a.micros)?) as Param, Box::new(a.id()?)]);
    }
    let sql = format!(
        "SELECT {EXCEPTION_COLUMNS} FROM exceptions{} ORDER BY opened_at DESC, id DESC{}",
        w.where_(),
        w.limit(limit)
    );
    let rows = rows::exceptions(query(c, &sql, &params(&w)).await?)?;
    Ok(Page::of(rows, limit, exception_key))
}

pub(super) async fn clusters(c: &impl GenericClient, f: &ClusterFilter) -> Result<Page<ClusterRow>> {
    let mut w = Clauses::default();
    let states: Vec<String> = f.states().into_iter().map(str::to_owned).collect();
    w.add("state = ANY(?)", [Box::new(states) as Param]);
    w.text("pattern = ?", &f.pattern);
    w.text("flow = ?", &f.flow);
    w.text("channel = ?", &f.channel);
    // Grouped and summed here, one row per cluster (the fingerprint was kept when each member
    // was written): the members are never loaded. Money is summed per currency in NUMERIC.
    // Grouped and summed here in one pass (the fingerprint was kept when each member was
    // written): per cluster, per cluster and currency (money, in NUMERIC), and per cluster and
    // state (the tally). The members are never loaded.
    let key = "pattern, flow, field, channel, mapping, fingerprint";
    let sql = format!(
        "SELECT {key}, grouping(currency, state), currency, state, count(*), count(DISTINCT order_ref),
                sum(amount)::text, min(opened_at), max(greatest(updated_at, opened_at)),
                (array_agg(detail ORDER BY opened_at DESC, id DESC))[1]
         FROM exceptions{}
         GROUP BY GROUPING SETS (({key}), ({key}, currency), ({key}, state))",
        w.where_()
    );
    let found = query(c, &sql, &params(&w)).await?;
    type Key = (String, Option<String>, Option<String>, Option<String>, Option<String>, String);
    let mut clusters: BTreeMap<Key, (ClusterRow, BTreeMap<String, Decimal>)> = BTreeMap::new();
    for r in &found {
        let fingerprint: Option<String> = r.try_get(5)?;
        let fingerprint =
            fingerprint.ok_or_else(|| StoreError::Corrupt("an exception without its fingerprint".into()))?;
        let key: Key = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, fingerprint);
        let (cluster, money) = match clusters.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let (pattern, flow, field, channel, mapping, fingerprint) = e.key().clone();
                let id = handoff_model::cluster::cluster_id([
                    Some(pattern.as_str()),
                    flow.as_deref(),
                    field.as_deref(),
                    channel.as_deref(),
                    mapping.as_deref(),
                    Some(fingerprint.as_str()),
                ]);
                let row = ClusterRow {
                    id,
                    pattern,
                    flow,
                    field,
                    channel,
                    mapping,
                    fingerprint,
                    exceptions: 0,
                    orders: 0,
                    money: BTreeMap::new(),
                    first_seen: r.try_get(12)?,
                    last_seen: r.try_get(13)?,
                    states: BTreeMap::new(),
                    example: String::new(),
                };
                e.insert((row, BTreeMap::new()))
            }
        };
        let exceptions = count(r.try_get(9)?);
        // grouping(): 1 where the state is not grouped (a currency's row), 2 where the currency
        // is not (a state's row), 3 for the cluster's own row.
        match r.try_get::<_, i32>(6)? {
            3 => {
                cluster.exceptions = exceptions;
                cluster.orders = count(r.try_get(10)?);
                cluster.first_seen = r.try_get(12)?;
                cluster.last_seen = r.try_get(13)?;
                cluster.example = r.try_get::<_, Option<String>>(14)?.unwrap_or_default();
            }
            1 => {
                // Rows without a currency or an amount are not money.
                let currency: Option<String> = r.try_get(7)?;
                let total: Option<String> = r.try_get(11)?;
                if let (Some(currency), Some(total)) = (currency, total) {
                    money.insert(currency, amount(&total)?);
                }
            }
            _ => {
                cluster.states.insert(r.try_get(8)?, exceptions);
            }
        }
    }
    let rows = clusters
        .into_values()
        .map(|(mut cluster, money)| {
            cluster.money = crate::search::money_text(money);
            cluster
        })
        .collect();
    crate::search::clusters_page(rows, f)
}

pub(super) async fn commands(c: &impl GenericClient, f: &CommandFilter) -> Result<Page<Command>> {
    let after = f.after()?;
    let limit = page_size(f.limit);
    let mut w = Clauses::default();
    w.text("state = ?", &f.state.map(|s| s.as_str().to_owned()));
    w.text("target = ?", &f.target);
    w.text("order_ref = ?", &f.order_ref);
    if let Some(id) = after {
        w.add("id < ?", [Box::new(id) as Param]);
    }
    let sql = format!("SELECT {COMMAND_COLUMNS} FROM outbox{} ORDER BY id DESC{}", w.where_(), w.limit(limit));
    let rows = rows::commands(query(c, &sql, &params(&w)).await?)?;
    Ok(Page::of(rows, limit, command_key))
}

pub(super) async fn audit(c: &impl GenericClient, f: &AuditFilter) -> Result<Page<AuditEntry>> {
    let after = f.after()?;
    let limit = page_size(f.limit);
    let mut w = Clauses::default();
    w.text("actor = ?", &f.actor);
    w.text("order_ref = ?", &f.order_ref);
    w.time("at >= ?", f.from);
    w.time("at < ?", f.to);
    if let Some(a) = &after {
        w.add("(at, id) < (?, ?)", [Box::new(at(a.micros)?) as Param, Box::new(a.id()?)]);
    }
    let sql = format!(
        "SELECT id, at, actor, action, nullif(order_ref, ''), detail FROM audit{} ORDER BY at DESC, id DESC{}",
        w.where_(),
        w.limit(limit)
    );
    let found = query(c, &sql, &params(&w)).await?;
    let rows = found
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                id: r.try_get(0)?,
                at: r.try_get(1)?,
                actor: r.try_get(2)?,
                action: r.try_get(3)?,
                order_ref: r.try_get(4)?,
                detail: r.try_get(5)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Page::of(rows, limit, audit_key))
}

pub(super) async fn flow_health(c: &impl GenericClient, window: &HealthWindow) -> Result<Vec<FlowHealth>> {
    window.check()?;
    let mut w = Clauses::default();
    w.time("c.created_at >= ?", Some(window.from));
    w.time("c.created_at < ?", Some(window.to));
    w.text("c.flow = ?", &window.flow);
    // As `flow_stats`: the window's commands by their creation index, each one's attempts by
    // their key, one pass.
    let sql = format!(
        "SELECT c.flow, c.target, c.kind, c.state,
                count(a.attempt),
                count(CASE WHEN a.outcome IN ('retry', 'ambiguous') THEN 1 END),
                count(CASE WHEN a.outcome = 'dead_lettered' THEN 1 END),
                min(CASE WHEN a.outcome = 'acknowledged' THEN a.finished_at END),
                min(i.received_at), c.created_at
         FROM outbox c LEFT JOIN attempts a ON a.command_id = c.id LEFT JOIN inbox i ON i.id = c.event_row{}
         GROUP BY c.id{}",
        w.where_(),
        w.limit(MAX_HEALTH_SAMPLES)
    );
    let found = query(c, &sql, &params(&w)).await?;
    if found.len() > MAX_HEALTH_SAMPLES {
        return Err(StoreError::Invalid(format!("more than {MAX_HEALTH_SAMPLES} commands in the window: narrow it")));
    }
    let samples = found
        .iter()
        .map(|r| {
            let acked: Option<Timestamp> = r.try_get(7)?;
            let received: Option<Timestamp> = r.try_get(8)?;
            Ok(HealthSample {
                created_at: r.try_get(9)?,
                sample: crate::CommandSample {
                    flow: r.try_get(0)?,
                    target: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    state: rows::parsed("outbox.state", r.try_get(3)?)?,
                    attempts: count(r.try_get(4)?),
                    retries: count(r.try_get(5)?),
                    dead_lettered: r.try_get::<_, i64>(6)? > 0,
                    latency_ms: acked
                        .zip(received)
                        .map(|(a, e)| (a.as_microsecond() - e.as_microsecond()).max(0) / 1000),
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let depth: BTreeMap<String, u64> =
        query(c, "SELECT flow, count(*) FROM outbox WHERE state = 'dead_lettered' GROUP BY flow", &[])
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, count(r.try_get(1)?))))
            .collect::<Result<_>>()?;
    Ok(crate::search::flow_health_of(window, samples, depth))
}
