//! The rows the store takes and gives.

use handoff_model::{CommandKind, CommandState, EventKind, Pattern};
use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub system: String,
    pub event_id: String,
    pub kind: EventKind,
    pub order_ref: String,
    pub received_at: Timestamp,
    /// The event in canonical JSON: what intake plans from.
    pub payload: String,
    /// The vendor's body exactly as received, kept for audit and replay, when it is not
    /// already the canonical JSON (`http-json` sources post canonical JSON).
    pub raw: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New(i64),
    /// Seen before: the original row, no second effect.
    Duplicate(i64),
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub row: i64,
    pub system: String,
    pub event_id: String,
    pub kind: EventKind,
    pub order_ref: String,
    pub received_at: Timestamp,
    #[serde(skip)]
    pub payload: String,
    #[serde(skip)]
    pub raw: Option<String>,
    /// The vendor's API version and the inbound mapping the canonical event was made with, read
    /// from its payload for an order's timeline ([`StoredEvent::stamped`]); `None` elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_mapping: Option<String>,
}

impl StoredEvent {
    /// Reads `source_version` and `inbound_mapping` out of the canonical payload.
    pub fn stamped(mut self) -> Self {
        #[derive(serde::Deserialize)]
        struct Stamps {
            #[serde(default)]
            source_version: Option<String>,
            #[serde(default)]
            inbound_mapping: Option<String>,
        }
        if let Ok(stamps) = serde_json::from_str::<Stamps>(&self.payload) {
            self.source_version = stamps.source_version;
            self.inbound_mapping = stamps.inbound_mapping;
        }
        self
    }
}

/// What the sequencer remembers of an order between events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderState {
    pub source: String,
    /// A create (or an update standing in for it) has been planned.
    pub created: bool,
    pub cancelled: bool,
    /// Highest source version planned; older events are stale.
    pub last_version: Option<u64>,
    /// The content fingerprint of the last event planned at `last_version`: an event of the
    /// same version is stale only if it says the same (sources count versions in whole seconds).
    pub last_fingerprint: Option<String>,
}

/// The effects of one event, written atomically.
#[derive(Debug, Clone)]
pub struct Plan {
    pub event_row: i64,
    pub order_ref: String,
    pub state: OrderState,
    /// The source system's new state in the ledger, if the event changes it.
    pub ledger: Option<(String, String)>,
    pub commands: Vec<NewCommand>,
    pub audit: Vec<String>,
    /// What the event says of the order's searchable fields, read by the planner from the
    /// event it already parsed (a store never parses the payload again for them).
    pub search: SearchFields,
}

/// An order's searchable fields as one event states them (`crate::search::OrderFilter`): the
/// sales channel it names and its customer's email key. `None` keeps what the order had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFields {
    pub channel: Option<String>,
    pub email_key: Option<String>,
}

impl SearchFields {
    /// The fields of an event that names `channel` and its customer's `email`.
    pub fn stated(channel: Option<&str>, email: Option<&str>) -> Self {
        SearchFields { channel: channel.map(str::to_owned), email_key: email.map(crate::search::email_key) }
    }
}

#[derive(Debug, Clone)]
pub struct NewCommand {
    pub flow: String,
    pub target: String,
    pub order_ref: String,
    pub kind: CommandKind,
    pub idempotency_key: String,
    /// How the target's record is found on read-back.
    pub external_ref: String,
    pub version: Option<u64>,
    pub payload: String,
    /// Creates and updates of this order to this target that were never sent are superseded
    /// (fulfillments and refunds still travel); if one was the create, this command is moot
    /// and is stored superseded too.
    pub supersede_unsent: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Command {
    pub id: i64,
    pub flow: String,
    pub target: String,
    pub order_ref: String,
    pub kind: CommandKind,
    pub idempotency_key: String,
    pub external_ref: String,
    pub version: Option<u64>,
    #[serde(skip)]
    pub payload: String,
    pub state: CommandState,
    /// Sends so far, this one included once claimed.
    pub attempts: u32,
    /// Attempts spent in the current budget (since creation or the last replay).
    pub budget_attempts: u32,
    pub budget_start: Timestamp,
    pub ambiguous: bool,
    pub next_attempt_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub record_id: Option<String>,
    pub last_error: Option<String>,
}

impl Command {
    /// The claim's fencing token: its attempt count, which every claim raises by one. It
    /// travels with each write (`Handoff-Fencing-Token`), so a target can refuse a write of a
    /// claim older than one it already took (a hub paused past its lease); the store refuses
    /// such a claim's outcome the same way (`StoreError::StaleClaim`).
    pub fn fencing_token(&self) -> u32 {
        self.attempts
    }

    /// The one record the command acts on, when its payload names one: only a cancel (of a
    /// duplicate) does, so no other command's payload, a whole order, is parsed to find out.
    pub fn address(&self) -> Option<handoff_model::RecordAddress> {
        if self.kind != CommandKind::CancelOrder {
            return None;
        }
        handoff_model::RecordAddress::of(&self.payload)
    }

    /// A command as the outbox takes it in: pending, never sent, due now.
    pub fn new_pending(id: i64, c: NewCommand, now: Timestamp) -> Command {
        Command {
            id,
            flow: c.flow,
            target: c.target,
            order_ref: c.order_ref,
            kind: c.kind,
            idempotency_key: c.idempotency_key,
            external_ref: c.external_ref,
            version: c.version,
            payload: c.payload,
            state: CommandState::Pending,
            attempts: 0,
            budget_attempts: 0,
            budget_start: now,
            ambiguous: false,
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
            record_id: None,
            last_error: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Acknowledged {
        record_id: String,
    },
    Retry {
        at: Timestamp,
        ambiguous: bool,
        error: String,
    },
    /// The target asked to come back later (a 429, a Retry-After): tried again at `at`, and
    /// the attempt is given back to the budget (only the flow's deadline bounds these).
    Throttled {
        at: Timestamp,
        ambiguous: bool,
        error: String,
    },
    /// Dead-lettered with an open exception of `pattern` (Dead Delivery, or Transform Mismatch
    /// for a command held at the transform layer).
    DeadLettered {
        ambiguous: bool,
        error: String,
        field: Option<String>,
        pattern: Pattern,
    },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Acknowledged { .. } => "acknowledged",
            Outcome::Retry { ambiguous: true, .. } => "ambiguous",
            Outcome::Retry { .. } => "retry",
            Outcome::Throttled { .. } => "throttled",
            Outcome::DeadLettered { .. } => "dead_lettered",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub command: Command,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: Outcome,
    /// What the attempt did first, e.g. "read back: found 123".
    pub note: Option<String>,
    /// The mapping version the payload was made with, when the target maps.
    pub mapping: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    One(i64),
    All,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ExceptionRow {
    pub id: i64,
    pub pattern: String,
    pub order_ref: String,
    pub flow: Option<String>,
    pub command_id: Option<i64>,
    pub field: Option<String>,
    pub detail: String,
    pub state: String,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    /// What within the order the rule found diverging; `None` for the write path's own
    /// exceptions (dead letters), which name their command instead.
    pub subject: Option<String>,
    pub channel: Option<String>,
    /// The mapping version the command ran with, for a dead letter.
    pub mapping: Option<String>,
    /// The money at stake (decimal text) and its currency.
    pub amount: Option<String>,
    pub currency: Option<String>,
    /// The suggested action, as JSON.
    pub action: Option<String>,
    /// The evidence pack the rule kept (the ledger it judged), as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// A finding of the rules, to raise as an exception.
#[derive(Debug, Clone)]
pub struct NewFinding {
    pub pattern: Pattern,
    pub order_ref: String,
    pub subject: String,
    pub flow: Option<String>,
    pub field: Option<String>,
    pub channel: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub detail: String,
    pub action: String,
    pub evidence: String,
}

/// Where the rules' board was left: the journal position it reflects and the orders whose
/// journal rebuilds it (settled orders are not among them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesCheckpoint {
    pub position: i64,
    pub orders: Vec<String>,
}

/// A move of the rules' checkpoint to a later journal position: the orders that joined those
/// kept since the last move, and those that left (a move writes what changed, not the board).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointMove {
    pub position: i64,
    pub joined: Vec<String>,
    pub left: Vec<String>,
}

/// A finding of the rules whose exception is open, acknowledged or ignored: raised already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaisedFinding {
    pub order_ref: String,
    pub pattern: String,
    pub subject: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    Opened(i64),
    /// Closed before, by a person or by the rules, and its cause is back.
    Reopened(i64),
    AlreadyOpen(i64),
}

/// One entry of the rules' journal: an event planned, or a command's outcome.
#[derive(Debug, Clone)]
pub struct FactRow {
    pub id: i64,
    pub order_ref: String,
    pub system: String,
    /// An event kind, or `acknowledged:<command kind>` / `dead_lettered:<command kind>`.
    pub kind: String,
    pub record_id: Option<String>,
    pub command_id: Option<i64>,
    /// The inbox row of the event, for an event's entry.
    pub event_row: Option<i64>,
    /// The command's payload, or the event's canonical JSON; `None` for an event's entry read
    /// by [`crate::Store::facts_after`] (the rules hold most of them parsed already; the others'
    /// they read with [`crate::Store::event_payloads`]).
    pub payload: Option<String>,
    pub at: Timestamp,
}

/// What became of a person's move of an exception.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant, reason = "returned once per person's move, never stored")]
pub enum Moved {
    Done(ExceptionRow),
    NotFound,
    /// The move is not allowed from the exception's current state.
    Refused {
        from: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub command_id: i64,
    pub attempt: u32,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: String,
    pub detail: Option<String>,
    pub mapping: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LedgerRow {
    pub system: String,
    pub state: String,
    pub record_id: Option<String>,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// One order across systems.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    pub order_ref: String,
    pub events: Vec<StoredEvent>,
    pub commands: Vec<Command>,
    pub attempts: Vec<AttemptRow>,
    pub ledger: Vec<LedgerRow>,
    pub exceptions: Vec<ExceptionRow>,
    pub audit: Vec<AuditRow>,
    /// Bodies about this order that no reader could map.
    pub quarantined: Vec<crate::Quarantined>,
}

impl Timeline {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.commands.is_empty() && self.quarantined.is_empty()
    }
}

/// Measured delivery of one (flow, command kind) over a window (see `Store::flow_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowStats {
    pub flow: String,
    pub target: String,
    pub kind: String,
    pub commands: u64,
    /// Commands acknowledged by the target (with its record id or a read-back).
    pub acknowledged: u64,
    /// Commands dead-lettered at least once (replayed or not).
    pub dead_lettered: u64,
    /// Commands superseded before they were ever sent.
    pub superseded: u64,
    /// Commands still pending or in flight.
    pub unfinished: u64,
    /// Attempts made, and those that ended in a retry (ambiguous ones included).
    pub attempts: u64,
    pub retries: u64,
    /// Commands that needed more than one attempt.
    pub retried_commands: u64,
    /// From the event that produced the command being received to its acknowledgment.
    pub latency_p50_ms: Option<i64>,
    pub latency_p99_ms: Option<i64>,
    pub latency_max_ms: Option<i64>,
}

/// One command as `flow_stats` counts it; both stores feed these to [`flow_stats_of`].
#[derive(Debug, Clone)]
pub struct CommandSample {
    pub flow: String,
    pub target: String,
    pub kind: String,
    pub state: CommandState,
    pub attempts: u64,
    pub retries: u64,
    pub dead_lettered: bool,
    /// Milliseconds from the event to the acknowledgment, when acknowledged.
    pub latency_ms: Option<i64>,
}

/// Folds command samples into per (flow, kind) statistics, sorted by flow then kind.
pub fn flow_stats_of(samples: impl IntoIterator<Item = CommandSample>) -> Vec<FlowStats> {
    let mut groups: std::collections::BTreeMap<(String, String), (FlowStats, Vec<i64>)> = Default::default();
    for s in samples {
        let (stats, latencies) = groups.entry((s.flow.clone(), s.kind.clone())).or_insert_with(|| {
            (
                FlowStats {
                    flow: s.flow.clone(),
                    target: s.target.clone(),
                    kind: s.kind.clone(),
                    ..Default::default()
                },
                vec![],
            )
        });
        stats.commands += 1;
        match s.state {
            CommandState::Acknowledged => stats.acknowledged += 1,
            CommandState::Superseded => stats.superseded += 1,
            CommandState::Pending | CommandState::InFlight => stats.unfinished += 1,
            // Dead-lettered first; counted there.
            CommandState::DeadLettered | CommandState::Abandoned => {}
        }
        stats.dead_lettered += u64::from(s.dead_lettered || s.state == CommandState::DeadLettered);
        stats.attempts += s.attempts;
        stats.retries += s.retries;
        stats.retried_commands += u64::from(s.attempts > 1);
        latencies.extend(s.latency_ms);
    }
    groups
        .into_values()
        .map(|(mut stats, mut latencies)| {
            latencies.sort_unstable();
            stats.latency_p50_ms = percentile(&latencies, 50);
            stats.latency_p99_ms = percentile(&latencies, 99);
            stats.latency_max_ms = latencies.last().copied();
            stats
        })
        .collect()
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The ledger state a target reaches when a command of this kind is acknowledged.
pub fn acknowledged_state(kind: CommandKind) -> &'static str {
    match kind {
        CommandKind::CreateOrder => "created",
        CommandKind::UpdateOrder => "updated",
        CommandKind::CancelOrder => "cancelled",
        CommandKind::CreateFulfillment => "fulfilled",
        CommandKind::CreateRefund => "refunded",
    }
}

/// What a purge removes: what is older than each instant (the contract's `[retention]` as of
/// the purge's `now`; the store never reads the clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeBefore {
    /// Raw bodies and personal fields received before this go.
    pub personal_data: Timestamp,
    /// The journal, attempts, audit and finished commands from before this are compacted.
    pub history: Timestamp,
    /// No inbox row (a dedup key) received after this is deleted.
    pub dedup: Timestamp,
}

/// What one purge removed (or, dry, would remove), per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    /// Inbox rows whose raw vendor body and personal fields were removed.
    pub inbox_scrubbed: u64,
    /// Finished commands whose payload's personal fields were removed.
    pub outbox_scrubbed: u64,
    /// Held bodies removed (their hash kept).
    pub quarantine_scrubbed: u64,
    /// Exceptions whose evidence now keeps hashes instead of personal values.
    pub evidence_hashed: u64,
    /// Journal entries removed.
    pub facts_removed: u64,
    /// Attempts removed (a finished command keeps its last).
    pub attempts_removed: u64,
    /// Audit lines removed.
    pub audit_removed: u64,
    /// Finished commands removed.
    pub outbox_removed: u64,
    /// Inbox rows removed (their dedup key with them), none younger than the dedup horizon.
    pub inbox_removed: u64,
    /// Whether rows are left for another round (a purge works in bounded batches).
    pub more: bool,
}

impl Purged {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: &Purged) {
        self.inbox_scrubbed += other.inbox_scrubbed;
        self.outbox_scrubbed += other.outbox_scrubbed;
        self.quarantine_scrubbed += other.quarantine_scrubbed;
        self.evidence_hashed += other.evidence_hashed;
        self.facts_removed += other.facts_removed;
        self.attempts_removed += other.attempts_removed;
        self.audit_removed += other.audit_removed;
        self.outbox_removed += other.outbox_removed;
        self.inbox_removed += other.inbox_removed;
        self.more = other.more;
    }

    /// (table, what, count) lines, as `handoff purge` prints them.
    pub fn lines(&self) -> [(&'static str, &'static str, u64); 9] {
        [
            ("inbox", "raw bodies and personal fields removed", self.inbox_scrubbed),
            ("outbox", "personal fields removed from finished commands", self.outbox_scrubbed),
            ("quarantine", "held bodies removed (hash kept)", self.quarantine_scrubbed),
            ("exceptions", "evidence values replaced by hashes", self.evidence_hashed),
            ("facts", "journal entries removed", self.facts_removed),
            ("attempts", "attempts removed", self.attempts_removed),
            ("audit", "audit lines removed", self.audit_removed),
            ("outbox", "finished commands removed", self.outbox_removed),
            ("inbox", "rows removed (dedup keys past the horizon)", self.inbox_removed),
        ]
    }
}

#[cfg(test)]
mod tests {
    use handoff_model::RecordAddress;

    use super::*;

    #[test]
    fn only_a_cancel_addresses_one_record() {
        let address = RecordAddress { external_ref: "#1".into(), record_id: "R2".into(), keep: Some("R1".into()) };
        let command = |kind: CommandKind| {
            let new = NewCommand {
                flow: "orders".into(),
                target: "erp".into(),
                order_ref: "#1".into(),
                kind,
                idempotency_key: "k".into(),
                external_ref: "#1".into(),
                version: None,
                payload: address.payload(),
                supersede_unsent: false,
            };
            Command::new_pending(1, new, "2026-12-06T10:00:00Z".parse().unwrap())
        };
        assert_eq!(command(CommandKind::CancelOrder).address(), Some(address.clone()));
        assert_eq!(command(CommandKind::CreateOrder).address(), None, "an order's payload is never read as an address");
    }
}
