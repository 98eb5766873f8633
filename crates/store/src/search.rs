//! The reads behind the console and the API: orders, exceptions, clusters, commands and the
//! audit log searched by filters, and flow health over time. Every list is a keyset page:
//! rows in one fixed order, at most [`MAX_PAGE`] of them, and an opaque cursor (the last row's
//! key) to continue after. Both stores take the same filters and give the same pages.

use std::collections::BTreeMap;

use handoff_model::CommandState;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Command, ExceptionRow, Result, StoreError};

/// Most rows one page holds, whatever was asked.
pub const MAX_PAGE: usize = 500;

/// Most buckets one flow-health read splits its window into.
pub const MAX_BUCKETS: usize = 200;

/// Most commands one flow-health read folds (a window longer than this is refused, narrower
/// windows are exact).
pub const MAX_HEALTH_SAMPLES: usize = 1_000_000;

/// A keyset page: rows in the read's order and, when more may follow, the cursor of the last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Cuts `rows` (read with one row more than `limit`) into a page.
    pub(crate) fn of(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> Cursor) -> Page<T> {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(|r| key(r).encode()) } else { None };
        Page { rows, next }
    }
}

/// The bounded page size of a read: at least 1, at most [`MAX_PAGE`].
pub fn page_size(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE)
}

/// The key of the last row of a page: a time (unix microseconds, 0 where the order has none)
/// and a tie-breaker (an id or a reference). Encoded as `<micros>.<tie>`, opaque to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub micros: i64,
    pub tie: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.micros, self.tie)
    }

    /// Reads a cursor a page gave; anything else is refused.
    pub fn decode(s: &str) -> Result<Cursor> {
        let bad = || StoreError::Invalid(format!("cursor {s:?} is not one a page gave"));
        let (micros, tie) = s.split_once('.').ok_or_else(bad)?;
        Ok(Cursor { micros: micros.parse().map_err(|_| bad())?, tie: tie.to_owned() })
    }

    /// The tie-breaker as a row id.
    pub fn id(&self) -> Result<i64> {
        self.tie.parse().map_err(|_| StoreError::Invalid(format!("cursor {:?} is not one a page gave", self.encode())))
    }
}

fn after(cursor: &Option<String>) -> Result<Option<Cursor>> {
    cursor.as_deref().map(Cursor::decode).transpose()
}

/// Where an order is in its life at the hub: a create not yet planned, created, or cancelled.
pub const ORDER_STATES: [&str; 3] = ["received", "created", "cancelled"];

/// Orders searched. With `reference` (a prefix) the page is in reference order; otherwise
/// newest first (by when the hub first saw the order).
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub reference: Option<String>,
    /// A customer's email, matched exactly (case and surrounding spaces aside) through its
    /// hash: the store keeps no searchable copy of the address itself.
    pub email: Option<String>,
    pub channel: Option<String>,
    /// One of [`ORDER_STATES`].
    pub state: Option<String>,
    /// First seen at or after / before.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub cursor: Option<String>,
    pub limit: usize,
}

impl OrderFilter {
    pub(crate) fn after(&self) -> Result<Option<Cursor>> {
        if let Some(state) = &self.state
            && !ORDER_STATES.contains(&state.as_str())
        {
            return Err(StoreError::Invalid(format!(
                "order state {state:?} is not one of {}",
                ORDER_STATES.join(", ")
            )));
        }
        after(&self.cursor)
    }
}

/// One order as searched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRow {
    pub order_ref: String,
    /// The system the order came from.
    pub source: String,
    /// The sales channel the order names, else its source system.
    pub channel: Option<String>,
    pub state: String,
    pub first_seen: Timestamp,
    pub updated_at: Timestamp,
}

impl OrderRow {
    pub(crate) fn key(&self, by_reference: bool) -> Cursor {
        let micros = if by_reference { 0 } else { self.first_seen.as_microsecond() };
        Cursor { micros, tie: self.order_ref.clone() }
    }
}

/// The searchable key of a customer's email: the first 64 bits of the SHA-256 of it trimmed and
/// lowercased, in hex. Keys sort at random, so each order's key lands on an index page of its
/// own, written to the WAL and checkpointed at every commit: the shorter the key, the fewer and
/// denser those pages. 64 bits leave two of a million customers one key with odds of 1 in
/// 37 million (a search by either email would list both).
pub fn email_key(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    hex::encode(&digest[..EMAIL_KEY_BYTES])
}

/// The bytes of the SHA-256 an email key keeps.
const EMAIL_KEY_BYTES: usize = 8;

/// Rewrites the email keys of builds before the short key (`sha256:` and 64 hex digits) to their
/// first 64 bits; a key already short is left alone. Run by each store's migration to the short
/// key (SQLite's 0018, PostgreSQL's 0008) and by each store's import, after the rows read back
/// hash as the dump's (a dump of such a build holds long keys).
pub const SHORTEN_EMAIL_KEYS: &str =
    "UPDATE orders SET email_key = substr(email_key, 8, 16) WHERE email_key LIKE 'sha256:%'";

/// The order's state name from what the sequencer keeps.
pub fn order_state(created: bool, cancelled: bool) -> &'static str {
    match (created, cancelled) {
        (_, true) => "cancelled",
        (true, false) => "created",
        (false, false) => "received",
    }
}

/// Exceptions searched, newest first (by when they were opened).
#[derive(Debug, Clone, Default)]
pub struct ExceptionFilter {
    pub pattern: Option<String>,
    pub state: Option<handoff_model::ExceptionState>,
    pub flow: Option<String>,
    pub channel: Option<String>,
    pub order_ref: Option<String>,
    /// Opened at or after / before (an age is a bound on these).
    pub opened_from: Option<Timestamp>,
    pub opened_to: Option<Timestamp>,
    pub cursor: Option<String>,
    pub limit: usize,
}

impl ExceptionFilter {
    pub(crate) fn after(&self) -> Result<Option<Cursor>> {
        after(&self.cursor)
    }

    pub(crate) fn matches(&self, x: &ExceptionRow) -> bool {
        self.pattern.as_ref().is_none_or(|p| *p == x.pattern)
            && self.state.is_none_or(|s| s.as_str() == x.state)
            && self.flow.as_ref().is_none_or(|f| Some(f) == x.flow.as_ref())
            && self.channel.as_ref().is_none_or(|c| Some(c) == x.channel.as_ref())
            && self.order_ref.as_ref().is_none_or(|o| *o == x.order_ref)
            && self.opened_from.is_none_or(|t| x.opened_at >= t)
            && self.opened_to.is_none_or(|t| x.opened_at < t)
    }
}

pub(crate) fn exception_key(x: &ExceptionRow) -> Cursor {
    Cursor { micros: x.opened_at.as_microsecond(), tie: x.id.to_string() }
}

/// Clusters of the exceptions in `states` (default: open and acknowledged, those an action
/// would act on), largest first.
#[derive(Debug, Clone, Default)]
pub struct ClusterFilter {
    pub states: Vec<handoff_model::ExceptionState>,
    pub pattern: Option<String>,
    pub flow: Option<String>,
    pub channel: Option<String>,
    pub cursor: Option<String>,
    pub limit: usize,
}

impl ClusterFilter {
    pub(crate) fn states(&self) -> Vec<&'static str> {
        let mut states: Vec<&'static str> = if self.states.is_empty() {
            vec!["open", "acknowledged"]
        } else {
            self.states.iter().map(|s| s.as_str()).collect()
        };
        states.sort_unstable();
        states.dedup();
        states
    }
}

/// One cluster, summed by the store (see `handoff_model::cluster`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterRow {
    pub id: String,
    pub pattern: String,
    pub flow: Option<String>,
    pub field: Option<String>,
    pub channel: Option<String>,
    pub mapping: Option<String>,
    pub fingerprint: String,
    pub exceptions: u64,
    /// Distinct orders among the members.
    pub orders: u64,
    /// The money at stake by currency (decimal text), summed exactly.
    pub money: BTreeMap<String, String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub states: BTreeMap<String, u64>,
    /// One member's detail (the newest), as an example.
    pub example: String,
}

/// Sorts clusters largest first (exceptions, then orders, then id) and cuts the page after
/// the cursor (clusters are few: they are all summed, then the page is cut).
pub(crate) fn clusters_page(mut rows: Vec<ClusterRow>, filter: &ClusterFilter) -> Result<Page<ClusterRow>> {
    let rank = |r: &ClusterRow| (std::cmp::Reverse(r.exceptions), std::cmp::Reverse(r.orders), r.id.clone());
    rows.sort_by_key(rank);
    let limit = page_size(filter.limit);
    let bad = || StoreError::Invalid("cursor is not one a page gave".into());
    let start = match after(&filter.cursor)? {
        Some(c) => {
            let orders: u64 = c.micros.try_into().map_err(|_| bad())?;
            let (exceptions, id) = c.tie.split_once('.').ok_or_else(bad)?;
            let exceptions: u64 = exceptions.parse().map_err(|_| bad())?;
            let key = (std::cmp::Reverse(exceptions), std::cmp::Reverse(orders), id.to_owned());
            rows.partition_point(|r| rank(r) <= key)
        }
        None => 0,
    };
    let rows: Vec<ClusterRow> = rows.into_iter().skip(start).take(limit + 1).collect();
    Ok(Page::of(rows, limit, |r| Cursor { micros: r.orders as i64, tie: format!("{}.{}", r.exceptions, r.id) }))
}

/// Money per currency summed exactly, as decimal text.
pub(crate) fn money_text(money: BTreeMap<String, Decimal>) -> BTreeMap<String, String> {
    money.into_iter().map(|(c, a)| (c, a.to_string())).collect()
}

/// Parses an amount the store kept; a corrupt one is an error, never skipped.
pub(crate) fn amount(text: &str) -> Result<Decimal> {
    text.parse().map_err(|_| StoreError::Corrupt(format!("amount {text:?} is not a decimal")))
}

/// Commands searched, newest first.
#[derive(Debug, Clone, Default)]
pub struct CommandFilter {
    pub state: Option<CommandState>,
    pub target: Option<String>,
    pub order_ref: Option<String>,
    pub cursor: Option<String>,
    pub limit: usize,
}

impl CommandFilter {
    pub(crate) fn after(&self) -> Result<Option<i64>> {
        after(&self.cursor)?.map(|c| c.id()).transpose()
    }

    pub(crate) fn matches(&self, c: &Command) -> bool {
        self.state.is_none_or(|s| s == c.state)
            && self.target.as_ref().is_none_or(|t| *t == c.target)
            && self.order_ref.as_ref().is_none_or(|o| *o == c.order_ref)
    }
}

pub(crate) fn command_key(c: &Command) -> Cursor {
    Cursor { micros: 0, tie: c.id.to_string() }
}

/// Held bodies searched, newest first (by id).
#[derive(Debug, Clone, Default)]
pub struct QuarantineFilter {
    pub state: Option<crate::QuarantineState>,
    pub cursor: Option<String>,
    pub limit: usize,
}

impl QuarantineFilter {
    pub(crate) fn after(&self) -> Result<Option<i64>> {
        after(&self.cursor)?.map(|c| c.id()).transpose()
    }
}

pub(crate) fn quarantine_key(q: &crate::Quarantined) -> Cursor {
    Cursor { micros: 0, tie: q.id.to_string() }
}

/// The audit log searched, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub order_ref: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub cursor: Option<String>,
    pub limit: usize,
}

impl AuditFilter {
    pub(crate) fn after(&self) -> Result<Option<Cursor>> {
        after(&self.cursor)
    }

    pub(crate) fn matches(&self, e: &AuditEntry) -> bool {
        self.actor.as_ref().is_none_or(|a| *a == e.actor)
            && self.order_ref.as_ref().is_none_or(|o| Some(o) == e.order_ref.as_ref())
            && self.from.is_none_or(|t| e.at >= t)
            && self.to.is_none_or(|t| e.at < t)
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub order_ref: Option<String>,
    pub detail: String,
}

pub(crate) fn audit_key(e: &AuditEntry) -> Cursor {
    Cursor { micros: e.at.as_microsecond(), tie: e.id.to_string() }
}

/// Flow health over `[from, to)` in `buckets` equal buckets, by when commands were created.
#[derive(Debug, Clone)]
pub struct HealthWindow {
    pub from: Timestamp,
    pub to: Timestamp,
    pub buckets: usize,
    /// One flow only.
    pub flow: Option<String>,
}

impl HealthWindow {
    pub(crate) fn check(&self) -> Result<()> {
        if self.to <= self.from {
            return Err(StoreError::Invalid("the window must end after it starts".into()));
        }
        if !(1..=MAX_BUCKETS).contains(&self.buckets) {
            return Err(StoreError::Invalid(format!("buckets must be 1 to {MAX_BUCKETS}")));
        }
        Ok(())
    }

    /// The bucket a command created at `t` falls in.
    fn bucket(&self, t: Timestamp) -> usize {
        let span = (self.to.as_microsecond() - self.from.as_microsecond()) as i128;
        let at = (t.as_microsecond() - self.from.as_microsecond()) as i128;
        ((at * self.buckets as i128 / span) as usize).min(self.buckets - 1)
    }

    fn start(&self, i: usize) -> Timestamp {
        let span = (self.to.as_microsecond() - self.from.as_microsecond()) as i128;
        let at = self.from.as_microsecond() as i128 + span * i as i128 / self.buckets as i128;
        Timestamp::from_microsecond(at as i64).unwrap_or(self.from)
    }
}

/// One flow's health over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowHealth {
    pub flow: String,
    /// Dead letters of the flow waiting now.
    pub dead_letter_depth: u64,
    pub buckets: Vec<HealthBucket>,
}

/// The commands of one flow created in one bucket, and how they went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthBucket {
    pub start: Timestamp,
    pub commands: u64,
    pub acknowledged: u64,
    /// Acknowledged of the commands created in the bucket; `None` when there were none.
    pub ack_rate: Option<f64>,
    pub retries: u64,
    pub dead_lettered: u64,
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
    pub latency_p99_ms: Option<i64>,
}

/// One command as flow health counts it (the `flow_stats` sample with its creation time).
#[derive(Debug, Clone)]
pub(crate) struct HealthSample {
    pub created_at: Timestamp,
    pub sample: crate::CommandSample,
}

/// Folds samples into per-flow buckets; flows in name order, each with every bucket.
pub(crate) fn flow_health_of(
    window: &HealthWindow,
    samples: Vec<HealthSample>,
    depth: BTreeMap<String, u64>,
) -> Vec<FlowHealth> {
    let mut flows: BTreeMap<String, Vec<(HealthBucket, Vec<i64>)>> = BTreeMap::new();
    let empty = |i| {
        (
            HealthBucket {
                start: window.start(i),
                commands: 0,
                acknowledged: 0,
                ack_rate: None,
                retries: 0,
                dead_lettered: 0,
                latency_p50_ms: None,
                latency_p95_ms: None,
                latency_p99_ms: None,
            },
            Vec::new(),
        )
    };
    for flow in depth.keys() {
        if window.flow.as_ref().is_none_or(|f| f == flow) {
            flows.entry(flow.clone()).or_insert_with(|| (0..window.buckets).map(empty).collect());
        }
    }
    for s in samples {
        let buckets = flows.entry(s.sample.flow.clone()).or_insert_with(|| (0..window.buckets).map(empty).collect());
        let (b, latencies) = &mut buckets[window.bucket(s.created_at)];
        b.commands += 1;
        b.acknowledged += u64::from(s.sample.state == CommandState::Acknowledged);
        b.retries += s.sample.retries;
        b.dead_lettered += u64::from(s.sample.dead_lettered || s.sample.state == CommandState::DeadLettered);
        latencies.extend(s.sample.latency_ms);
    }
    flows
        .into_iter()
        .map(|(flow, buckets)| FlowHealth {
            dead_letter_depth: depth.get(&flow).copied().unwrap_or(0),
            flow,
            buckets: buckets
                .into_iter()
                .map(|(mut b, mut latencies)| {
                    latencies.sort_unstable();
                    b.ack_rate = (b.commands > 0).then(|| b.acknowledged as f64 / b.commands as f64);
                    b.latency_p50_ms = crate::percentile(&latencies, 50);
                    b.latency_p95_ms = crate::percentile(&latencies, 95);
                    b.latency_p99_ms = crate::percentile(&latencies, 99);
                    b
                })
                .collect(),
        })
        .collect()
}

/// How a SQL store binds a search's parameters: its placeholder, its values and its `LIMIT`.
pub(crate) trait Binds {
    type Param;
    /// The placeholder of the `n`-th parameter (`?n`, `$n`).
    fn mark(n: usize) -> String;
    fn text(value: String) -> Self::Param;
    fn time(value: Timestamp) -> Self::Param;
    /// The `LIMIT` clause naming the `n`-th parameter, and that parameter for `rows`.
    fn limit(n: usize, rows: usize) -> (String, Self::Param);
}

/// A statement's WHERE clauses and their parameters, numbered in order, for either SQL store.
pub(crate) struct Clauses<B: Binds> {
    sql: Vec<String>,
    pub(crate) params: Vec<B::Param>,
}

impl<B: Binds> Default for Clauses<B> {
    fn default() -> Self {
        Clauses { sql: Vec::new(), params: Vec::new() }
    }
}

impl<B: Binds> Clauses<B> {
    /// Adds a clause whose `?` are numbered from the parameters already bound.
    pub(crate) fn add(&mut self, clause: &str, values: impl IntoIterator<Item = B::Param>) {
        let mut parts = clause.split('?');
        let mut numbered = parts.next().unwrap_or_default().to_owned();
        for (part, v) in parts.zip(values) {
            self.params.push(v);
            numbered.push_str(&B::mark(self.params.len()));
            numbered.push_str(part);
        }
        self.sql.push(numbered);
    }

    pub(crate) fn text(&mut self, clause: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.add(clause, [B::text(v.clone())]);
        }
    }

    pub(crate) fn time(&mut self, clause: &str, value: Option<Timestamp>) {
        if let Some(t) = value {
            self.add(clause, [B::time(t)]);
        }
    }

    pub(crate) fn where_(&self) -> String {
        if self.sql.is_empty() { String::new() } else { format!(" WHERE {}", self.sql.join(" AND ")) }
    }

    /// The page size plus one (one row more tells whether another page follows), as the last
    /// parameter.
    pub(crate) fn limit(&mut self, limit: usize) -> String {
        let (clause, param) = B::limit(self.params.len() + 1, limit + 1);
        self.params.push(param);
        clause
    }
}
