//! The API's own types: what `/api/v1` answers, described in the OpenAPI document. Made from
//! the store's rows here, so a change of storage is never a change of the API by accident.

use std::collections::BTreeMap;

use handoff_store as store;
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

/// A keyset page: `items` in the list's order and, when more follow, the `next` cursor to
/// pass as `cursor` for them.
macro_rules! page {
    ($name:ident, $item:ty) => {
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// The cursor of the next page; absent on the last.
            pub next: Option<String>,
        }

        impl<R> From<store::Page<R>> for $name
        where
            $item: From<R>,
        {
            fn from(page: store::Page<R>) -> $name {
                $name { items: page.rows.into_iter().map(<$item>::from).collect(), next: page.next }
            }
        }
    };
}

page!(OrderPage, OrderSummary);
page!(ExceptionPage, Exception);
page!(ClusterPage, Cluster);
page!(CommandPage, CommandView);
page!(AuditPage, AuditLine);

/// One order as searched.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderSummary {
    pub order_ref: String,
    pub source: String,
    pub channel: Option<String>,
    /// `received` (no create planned yet), `created` or `cancelled`.
    pub state: String,
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<store::OrderRow> for OrderSummary {
    fn from(r: store::OrderRow) -> Self {
        OrderSummary {
            order_ref: r.order_ref,
            source: r.source,
            channel: r.channel,
            state: r.state,
            first_seen: r.first_seen,
            updated_at: r.updated_at,
        }
    }
}

/// An exception, without its evidence (see `EvidencePack`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Exception {
    pub id: i64,
    pub pattern: String,
    pub order_ref: String,
    pub flow: Option<String>,
    pub command_id: Option<i64>,
    pub field: Option<String>,
    pub detail: String,
    pub state: String,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub subject: Option<String>,
    pub channel: Option<String>,
    pub mapping: Option<String>,
    /// The money at stake, exact decimal text, and its currency.
    pub amount: Option<String>,
    pub currency: Option<String>,
    /// The suggested action, as the rule wrote it.
    #[schema(value_type = Option<Object>)]
    pub action: Option<serde_json::Value>,
}

impl From<store::ExceptionRow> for Exception {
    fn from(x: store::ExceptionRow) -> Self {
        Exception {
            id: x.id,
            pattern: x.pattern,
            order_ref: x.order_ref,
            flow: x.flow,
            command_id: x.command_id,
            field: x.field,
            detail: x.detail,
            state: x.state,
            opened_at: x.opened_at,
            updated_at: x.updated_at,
            subject: x.subject,
            channel: x.channel,
            mapping: x.mapping,
            amount: x.amount,
            currency: x.currency,
            action: x.action.and_then(|a| serde_json::from_str(&a).ok()),
        }
    }
}

/// A cluster: exceptions with one cause, with its blast radius.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cluster {
    /// `c` and 8 hex digits, stable for the cluster's key.
    pub id: String,
    pub pattern: String,
    pub flow: Option<String>,
    pub field: Option<String>,
    pub channel: Option<String>,
    pub mapping: Option<String>,
    /// The error's detail with numbers and quoted values blanked.
    pub fingerprint: String,
    pub exceptions: u64,
    pub orders: u64,
    /// The money at stake per currency, exact decimal text.
    pub money: BTreeMap<String, String>,
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// Members per state.
    pub states: BTreeMap<String, u64>,
    /// The newest member's detail.
    pub example: String,
}

impl From<store::ClusterRow> for Cluster {
    fn from(c: store::ClusterRow) -> Self {
        Cluster {
            id: c.id,
            pattern: c.pattern,
            flow: c.flow,
            field: c.field,
            channel: c.channel,
            mapping: c.mapping,
            fingerprint: c.fingerprint,
            exceptions: c.exceptions,
            orders: c.orders,
            money: c.money,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            states: c.states,
            example: c.example,
        }
    }
}

/// A command of the outbox (a dead letter is one in state `dead_lettered`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandView {
    pub id: i64,
    pub flow: String,
    pub target: String,
    pub order_ref: String,
    pub kind: String,
    pub idempotency_key: String,
    pub external_ref: String,
    pub version: Option<u64>,
    pub state: String,
    pub attempts: u32,
    pub ambiguous: bool,
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub record_id: Option<String>,
    pub last_error: Option<String>,
}

impl From<store::Command> for CommandView {
    fn from(c: store::Command) -> Self {
        CommandView {
            id: c.id,
            flow: c.flow,
            target: c.target,
            order_ref: c.order_ref,
            kind: c.kind.as_str().to_owned(),
            idempotency_key: c.idempotency_key,
            external_ref: c.external_ref,
            version: c.version,
            state: c.state.as_str().to_owned(),
            attempts: c.attempts,
            ambiguous: c.ambiguous,
            next_attempt_at: c.next_attempt_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
            record_id: c.record_id,
            last_error: c.last_error,
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLine {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub order_ref: Option<String>,
    pub detail: String,
}

impl From<store::AuditEntry> for AuditLine {
    fn from(e: store::AuditEntry) -> Self {
        AuditLine { id: e.id, at: e.at, actor: e.actor, action: e.action, order_ref: e.order_ref, detail: e.detail }
    }
}

/// An event as received from a system.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub row: i64,
    pub system: String,
    pub event_id: String,
    pub kind: String,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    pub source_version: Option<String>,
    pub inbound_mapping: Option<String>,
}

/// One attempt to deliver a command.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub command_id: i64,
    pub attempt: u32,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: Timestamp,
    pub outcome: String,
    pub detail: Option<String>,
    pub mapping: Option<String>,
}

/// A system's last known state of the order.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerView {
    pub system: String,
    pub state: String,
    pub record_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// A body held because no reader could map it (without its bytes).
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldBody {
    pub id: i64,
    pub system: String,
    pub source: String,
    pub order_ref: Option<String>,
    pub field: String,
    pub reason: String,
    pub source_version: Option<String>,
    pub flow: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    pub state: String,
    pub exception_id: Option<i64>,
    pub event_row: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub replayed_at: Option<Timestamp>,
}

impl From<store::Quarantined> for HeldBody {
    fn from(q: store::Quarantined) -> Self {
        HeldBody {
            id: q.id,
            system: q.system,
            source: q.source.as_str().to_owned(),
            order_ref: q.order_ref,
            field: q.field,
            reason: q.reason,
            source_version: q.source_version,
            flow: q.flow,
            received_at: q.received_at,
            state: q.state.as_str().to_owned(),
            exception_id: q.exception_id,
            event_row: q.event_row,
            replayed_at: q.replayed_at,
        }
    }
}

/// One order across systems, in time order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderTimeline {
    pub order_ref: String,
    pub events: Vec<EventView>,
    pub commands: Vec<CommandView>,
    pub attempts: Vec<AttemptView>,
    pub ledger: Vec<LedgerView>,
    pub exceptions: Vec<Exception>,
    pub audit: Vec<TimelineAudit>,
    pub quarantined: Vec<HeldBody>,
}

/// An audit line of one order.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineAudit {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

impl From<store::Timeline> for OrderTimeline {
    fn from(t: store::Timeline) -> Self {
        OrderTimeline {
            order_ref: t.order_ref,
            events: t
                .events
                .into_iter()
                .map(|e| EventView {
                    row: e.row,
                    system: e.system,
                    event_id: e.event_id,
                    kind: e.kind.as_str().to_owned(),
                    received_at: e.received_at,
                    source_version: e.source_version,
                    inbound_mapping: e.inbound_mapping,
                })
                .collect(),
            commands: t.commands.into_iter().map(CommandView::from).collect(),
            attempts: t
                .attempts
                .into_iter()
                .map(|a| AttemptView {
                    command_id: a.command_id,
                    attempt: a.attempt,
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                    outcome: a.outcome,
                    detail: a.detail,
                    mapping: a.mapping,
                })
                .collect(),
            ledger: t
                .ledger
                .into_iter()
                .map(|l| LedgerView {
                    system: l.system,
                    state: l.state,
                    record_id: l.record_id,
                    updated_at: l.updated_at,
                })
                .collect(),
            exceptions: t.exceptions.into_iter().map(Exception::from).collect(),
            audit: t
                .audit
                .into_iter()
                .map(|a| TimelineAudit { at: a.at, actor: a.actor, action: a.action, detail: a.detail })
                .collect(),
            quarantined: t.quarantined.into_iter().map(HeldBody::from).collect(),
        }
    }
}

/// Everything behind one exception: it, the rule's evidence, the suggested action and the
/// order's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidencePack {
    pub exception: Exception,
    /// The evidence the rule kept (`null` for the write path's own exceptions).
    #[schema(value_type = Option<Object>)]
    pub evidence: serde_json::Value,
    /// The suggested action (`retry` for a dead letter; `null` when there is none).
    #[schema(value_type = Option<Object>)]
    pub action: serde_json::Value,
    pub timeline: OrderTimeline,
}

impl From<handoff_engine::actions::EvidencePack> for EvidencePack {
    fn from(p: handoff_engine::actions::EvidencePack) -> Self {
        EvidencePack {
            exception: p.exception.into(),
            evidence: p.evidence,
            action: p.action,
            timeline: p.timeline.into(),
        }
    }
}

/// What a person does with exceptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionAction {
    Acknowledge,
    Resolve,
    Ignore,
    /// Take the resolution action the exception suggests (`retry` replays a dead letter).
    TakeAction,
}

/// An action on one or many exceptions.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// 1 to 500 exception ids.
    #[schema(min_items = 1, max_items = 500)]
    #[serde(deserialize_with = "integers")]
    pub ids: Vec<i64>,
    pub action: ExceptionAction,
    /// Why, for the audit log (at most 1,000 characters).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
    /// A person's approval, which a refund needs.
    #[serde(default)]
    pub approve: bool,
}

/// Whole numbers as JSON writes them: `7` and `7.0` alike (JSON Schema's `integer` is any
/// number without a fraction); a fraction or a number past `i64` is refused.
fn integers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    let numbers: Vec<serde_json::Number> = serde::Deserialize::deserialize(d)?;
    numbers
        .into_iter()
        .map(|n| {
            n.as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
                .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a whole number id")))
        })
        .collect()
}

/// What became of the action on one exception.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    pub id: i64,
    /// `done`, `not_found` or `refused`.
    pub outcome: String,
    /// The exception's state after.
    pub state: Option<String>,
    /// Commands queued (or replayed) by a resolution action.
    pub queued: Vec<i64>,
    /// What happened, one line each.
    pub lines: Vec<String>,
}

/// Flow health over a window (see `GET /api/v1/flows/health`).
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowHealth {
    pub flow: String,
    pub dead_letter_depth: u64,
    pub buckets: Vec<HealthBucket>,
}

/// The commands of one flow created in one bucket, and how they went.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBucket {
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    pub commands: u64,
    pub acknowledged: u64,
    /// Acknowledged of the commands created in the bucket (0 to 1).
    pub ack_rate: Option<f64>,
    pub retries: u64,
    pub dead_lettered: u64,
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
    pub latency_p99_ms: Option<i64>,
}

impl From<store::FlowHealth> for FlowHealth {
    fn from(f: store::FlowHealth) -> Self {
        FlowHealth {
            flow: f.flow,
            dead_letter_depth: f.dead_letter_depth,
            buckets: f
                .buckets
                .into_iter()
                .map(|b| HealthBucket {
                    start: b.start,
                    commands: b.commands,
                    acknowledged: b.acknowledged,
                    ack_rate: b.ack_rate,
                    retries: b.retries,
                    dead_lettered: b.dead_lettered,
                    latency_p50_ms: b.latency_p50_ms,
                    latency_p95_ms: b.latency_p95_ms,
                    latency_p99_ms: b.latency_p99_ms,
                })
                .collect(),
        }
    }
}
