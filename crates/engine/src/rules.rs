//! The live driver of the rules: follows the store's journal of events and command outcomes,
//! feeds each order's facts to the board, and raises or clears exceptions as findings appear
//! and go, as facts arrive and as deadlines pass.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use handoff_contract::{AutoAction, Contract, Role};
use handoff_model::{CanonicalOrder, Currency, EventKind, InboundEvent, Money, Pattern, RecordAddress};
use handoff_rules::{Action, Board, Change, Deadlines, Fact, Finding, Ledger, PaymentFact};
use handoff_store::heartbeat::Beat;
use handoff_store::{CheckpointMove, FactRow, NewFinding, Raised, Store};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::json;

use crate::recent::Recent;
use crate::{Clock, Targets};

/// Journal entries read per store round trip.
const BATCH: usize = 4096;

/// Orders named per store round trip when the board asks for their journal.
const ORDERS_PER_READ: usize = 4096;

/// The board is checkpointed after this many journal entries, or this long, whichever first.
const CHECKPOINT_FACTS: usize = 50_000;
const CHECKPOINT_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// What one step of the watch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stepped {
    pub facts: usize,
    pub raised: usize,
    pub cleared: usize,
    /// Actions an auto-resolve policy took on findings just raised.
    pub auto_actions: usize,
    /// Orders the board still follows after the step.
    pub followed: usize,
}

pub struct RulesWatch<S> {
    contract: Arc<Contract>,
    store: S,
    /// What the systems can do, for the auto-resolve actions (none given: an action that needs
    /// a target's capability is refused).
    targets: Targets,
    clock: Arc<dyn Clock>,
    board: Board,
    /// The last journal entry the board reflects.
    cursor: i64,
    /// Whether the board was rebuilt since the watch started (the first step does it).
    caught_up: bool,
    /// Whether every order with a fact up to the cursor is on the board: false once orders
    /// may have left it (or were left out of a checkpoint), so a fact of an order not on the
    /// board brings the order's journal back first.
    complete: bool,
    /// Journal entries and the time since the last checkpoint.
    since_checkpoint: usize,
    /// The orders the stored checkpoint keeps, so that a checkpoint writes what changed.
    kept: BTreeSet<String>,
    checkpointed_at: Option<Timestamp>,
    /// For readiness: beaten per step and per batch of the catch-up.
    beat: Option<Beat>,
    /// The events the hub parsed at its door, so a journal entry's is not parsed again.
    recent: Option<Arc<Recent>>,
}

/// The rules driver beats at least this often while it runs (a step, a batch of its catch-up).
pub const PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

impl<S: Store> RulesWatch<S> {
    pub fn new(contract: Arc<Contract>, store: S, clock: Arc<dyn Clock>) -> Self {
        let board = board(&contract);
        RulesWatch {
            contract,
            store,
            targets: Targets::new(),
            clock,
            board,
            cursor: 0,
            caught_up: false,
            complete: true,
            since_checkpoint: 0,
            kept: BTreeSet::new(),
            checkpointed_at: None,
            beat: None,
            recent: None,
        }
    }

    /// Learns the journal's events from `recent` while it holds them.
    pub fn with_recent(mut self, recent: Arc<Recent>) -> Self {
        self.recent = Some(recent);
        self
    }

    /// What a journal entry tells the rules; its event from [`Recent`] when still there.
    fn facts(&self, row: &FactRow) -> Vec<Fact> {
        facts_seen(&self.contract, row, self.recent_event(row).as_deref())
    }

    fn recent_event(&self, row: &FactRow) -> Option<Arc<InboundEvent>> {
        self.recent.as_ref().zip(row.event_row).and_then(|(recent, event_row)| recent.get(event_row))
    }

    /// Each journal entry with its event from [`Recent`] while it holds it; the others' payloads
    /// (which `facts_after` leaves out) read from the store in one read for the batch.
    async fn with_events(
        &self,
        rows: Vec<FactRow>,
    ) -> handoff_store::Result<Vec<(FactRow, Option<Arc<InboundEvent>>)>> {
        let mut entries: Vec<_> = rows
            .into_iter()
            .map(|row| {
                let event = self.recent_event(&row);
                (row, event)
            })
            .collect();
        let unread = |(row, event): &(FactRow, Option<Arc<InboundEvent>>)| event.is_none() && row.payload.is_none();
        let missing: Vec<i64> = entries.iter().filter(|e| unread(e)).filter_map(|(row, _)| row.event_row).collect();
        if !missing.is_empty() {
            let mut payloads: HashMap<i64, String> = self.store.event_payloads(missing).await?.into_iter().collect();
            for (row, _) in entries.iter_mut().filter(|e| unread(e)) {
                row.payload = row.event_row.and_then(|event_row| payloads.remove(&event_row));
            }
        }
        Ok(entries)
    }

    /// Beats `beat` while [`RulesWatch::run`] runs, for readiness.
    pub fn beating(mut self, beat: Beat) -> Self {
        self.beat = Some(beat);
        self
    }

    fn beat(&self) {
        if let Some(beat) = &self.beat {
            beat.beat();
        }
    }

    /// The targets the auto-resolve actions may ask what they can do.
    pub fn with_targets(mut self, targets: Targets) -> Self {
        self.targets = targets;
        self
    }

    /// When the earliest followed order is due to be judged again.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.board.next_deadline()
    }

    /// Orders the board follows now.
    pub fn followed(&self) -> usize {
        self.board.len()
    }

    /// Applies the journal's new entries, wakes the orders whose deadlines passed, checks the
    /// exceptions people resolved, and writes what changed. The first step rebuilds the board
    /// (see [`RulesWatch::catch_up`]).
    pub async fn step(&mut self) -> handoff_store::Result<Stepped> {
        if !self.caught_up {
            return self.catch_up().await;
        }
        let now = self.clock.now();
        let mut changes = Vec::new();
        let facts = self.read_journal(&mut changes).await?;
        for x in self.store.take_rechecks(BATCH).await? {
            let (Some(pattern), Some(subject)) = (Pattern::parse(&x.pattern), x.subject) else { continue };
            if !self.complete && !self.board.contains(&x.order_ref) {
                self.recall(vec![x.order_ref.clone()], self.cursor).await?;
            }
            self.board.recheck(&x.order_ref, pattern, &subject, now, &mut changes);
        }
        self.board.judge(now, &mut changes);
        // From now on orders may leave the board.
        self.complete = false;
        let mut stepped = self.write(changes, now).await?;
        stepped.facts = facts;
        self.since_checkpoint += facts;
        let due = self.checkpointed_at.is_none_or(|at| now.duration_since(at) >= CHECKPOINT_EVERY);
        if self.since_checkpoint > 0 && (self.since_checkpoint >= CHECKPOINT_FACTS || due) {
            self.checkpoint(now).await?;
        }
        Ok(stepped)
    }

    /// Rebuilds the board after a start: the orders of the last checkpoint from their journal,
    /// then the journal since it, all learned without judging; then each order is judged once,
    /// as of now. Findings that held before the stop are known raised (their exceptions are
    /// open), so a restart alone raises, reopens, clears and audits nothing; settled orders
    /// leave the board. Ends with a checkpoint.
    pub async fn catch_up(&mut self) -> handoff_store::Result<Stepped> {
        let now = self.clock.now();
        // From scratch, even after a catch-up that failed half-way.
        self.board = board(&self.contract);
        (self.cursor, self.complete) = (0, true);
        self.kept.clear();
        let mut changes = Vec::new();
        let mut facts = 0;
        if let Some(checkpoint) = self.store.rules_checkpoint().await? {
            self.complete = false;
            self.cursor = checkpoint.position;
            self.kept = checkpoint.orders.iter().cloned().collect();
            facts += self.rebuild(checkpoint.orders, checkpoint.position, &mut changes).await?;
        }
        facts += self.read_journal(&mut changes).await?;
        self.board.judge(now, &mut changes);
        self.caught_up = true;
        self.complete = false;
        let mut stepped = self.write(changes, now).await?;
        stepped.facts = facts;
        self.checkpoint(now).await?;
        Ok(stepped)
    }

    /// The journal after the cursor, learned without judging; orders not on the board are
    /// brought back from their journal first.
    async fn read_journal(&mut self, changes: &mut Vec<Change>) -> handoff_store::Result<usize> {
        let mut facts = 0;
        loop {
            self.beat();
            let rows = self.store.facts_after(self.cursor, BATCH).await?;
            let (Some(first), Some(last)) = (rows.first(), rows.last()) else { break };
            let (first, last) = (first.id, last.id);
            if !self.complete {
                let mut away: Vec<String> =
                    rows.iter().filter(|r| !self.board.contains(&r.order_ref)).map(|r| r.order_ref.clone()).collect();
                away.sort_unstable();
                away.dedup();
                self.recall(away, first - 1).await?;
            }
            let read = rows.len();
            for (row, event) in self.with_events(rows).await? {
                for fact in facts_seen(&self.contract, &row, event.as_deref()) {
                    self.board.learn(&row.order_ref, fact, changes);
                }
            }
            self.cursor = last;
            facts += read;
            if read < BATCH {
                break;
            }
        }
        Ok(facts)
    }

    /// Brings orders that left the board back from their journal up to `up_to`, with the
    /// findings the store holds raised for them.
    async fn recall(&mut self, order_refs: Vec<String>, up_to: i64) -> handoff_store::Result<()> {
        for chunk in order_refs.chunks(ORDERS_PER_READ) {
            self.beat();
            for row in self.store.facts_of(chunk.to_vec(), up_to).await? {
                for fact in self.facts(&row) {
                    self.board.recall(&row.order_ref, fact);
                }
            }
        }
        self.know_raised(order_refs).await
    }

    /// Rebuilds a checkpoint's orders from their journal, in journal order (payments naming
    /// no order are claimed again as they were), with the findings raised for them.
    async fn rebuild(
        &mut self,
        order_refs: Vec<String>,
        up_to: i64,
        changes: &mut Vec<Change>,
    ) -> handoff_store::Result<usize> {
        let mut rows = Vec::new();
        for chunk in order_refs.chunks(ORDERS_PER_READ) {
            rows.extend(self.store.facts_of(chunk.to_vec(), up_to).await?);
        }
        rows.sort_by_key(|r| r.id);
        for row in &rows {
            for fact in self.facts(row) {
                self.board.learn(&row.order_ref, fact, changes);
            }
        }
        self.know_raised(order_refs).await?;
        Ok(rows.len())
    }

    async fn know_raised(&mut self, order_refs: Vec<String>) -> handoff_store::Result<()> {
        for chunk in order_refs.chunks(ORDERS_PER_READ) {
            for f in self.store.raised_findings(chunk.to_vec()).await? {
                if let Some(pattern) = Pattern::parse(&f.pattern) {
                    self.board.know_raised(&f.order_ref, pattern, &f.subject);
                }
            }
        }
        Ok(())
    }

    /// Saves where the board is: the cursor, and which orders it follows now that it did not
    /// at the last checkpoint and the other way round. A move that fails leaves `kept` as it
    /// was, so the next one writes its orders again (the store may keep some that left).
    async fn checkpoint(&mut self, now: Timestamp) -> handoff_store::Result<()> {
        let followed: BTreeSet<String> = self.board.followed().into_iter().collect();
        let change = CheckpointMove {
            position: self.cursor,
            joined: followed.difference(&self.kept).cloned().collect(),
            left: self.kept.difference(&followed).cloned().collect(),
        };
        self.store.move_rules_checkpoint(change).await?;
        self.kept = followed;
        self.since_checkpoint = 0;
        self.checkpointed_at = Some(now);
        Ok(())
    }

    /// Writes what the board found: exceptions raised (and auto-resolve actions) and cleared.
    async fn write(&mut self, changes: Vec<Change>, now: Timestamp) -> handoff_store::Result<Stepped> {
        let mut stepped = Stepped { followed: self.board.len(), ..Stepped::default() };
        for change in changes {
            match change {
                Change::Raised { order_ref, finding } => {
                    let (pattern, action) = (finding.pattern, finding.action.clone());
                    let new = self.finding(&order_ref, finding);
                    match self.store.raise_finding(new, now).await? {
                        Raised::AlreadyOpen(_) => {}
                        Raised::Opened(id) | Raised::Reopened(id) => {
                            stepped.raised += 1;
                            if self.auto_resolve(id, pattern, &action, now).await {
                                stepped.auto_actions += 1;
                            }
                        }
                    }
                }
                Change::Cleared { order_ref, pattern, subject } => {
                    if self.store.clear_finding(pattern, order_ref, subject, now).await? {
                        stepped.cleared += 1;
                    }
                }
            }
        }
        Ok(stepped)
    }

    /// Takes the action the contract's auto-resolve policy sets for `pattern`, when it is the
    /// action the finding suggests; never for an orphaned payment (money moves only with a
    /// person's approval, and validation refuses such a policy anyway). `true` if taken.
    async fn auto_resolve(&self, id: i64, pattern: Pattern, action: &Action, now: Timestamp) -> bool {
        let Some(policy) = self.contract.auto_resolve.for_pattern(pattern) else { return false };
        let fits = matches!(
            (policy, action),
            (AutoAction::CreateErpOrder, Action::CreateErpOrder)
                | (AutoAction::SendFulfillment, Action::SendFulfillmentToChannel)
                | (AutoAction::SendCancellation, Action::SendCancellation { .. })
                | (AutoAction::CancelDuplicates, Action::CancelDuplicates { .. })
        );
        if pattern == Pattern::OrphanedPayment || !fits {
            return false;
        }
        let actor = format!("rule:auto:{pattern}");
        match crate::actions::take(&self.store, &self.contract, &self.targets, id, &actor, false, now).await {
            Ok(outcome) => {
                tracing::info!(message = "auto-resolve action taken", exception = id, action = %outcome.action,
                    outcome = %outcome.lines.join("; "));
                true
            }
            Err(error) => {
                tracing::warn!(message = "auto-resolve action failed", exception = id, error = %error);
                false
            }
        }
    }

    /// Steps whenever the store changes or the next deadline passes, until `shutdown`. The
    /// first step rebuilds the board.
    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut changed = self.store.subscribe_to(handoff_store::Topic::Journal);
        let began = std::time::Instant::now();
        while !self.caught_up && !*shutdown.borrow() {
            self.beat();
            match self.catch_up().await {
                Ok(s) => tracing::info!(
                    message = "rules caught up",
                    facts = s.facts,
                    followed = s.followed,
                    raised = s.raised,
                    cleared = s.cleared,
                    ms = began.elapsed().as_millis() as u64
                ),
                Err(error) => {
                    tracing::error!(message = "rules catch-up failed; retrying", error = %error);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
        while !*shutdown.borrow() {
            self.beat();
            if let Err(error) = self.step().await {
                tracing::error!(message = "rules step failed", error = %error);
            }
            // The store wakes us for new journal entries and changed exceptions (a person's
            // resolve); the deadline timer and a look every second cover the rest.
            let wait = self
                .board
                .next_deadline()
                .and_then(|at| std::time::Duration::try_from(at.duration_since(self.clock.now())).ok())
                .unwrap_or(std::time::Duration::from_secs(1))
                .min(std::time::Duration::from_secs(1));
            tokio::select! {
                _ = changed.changed() => {}
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The exception row for a finding, with its evidence pack: the rule that fired, what it
    /// found, and the ledger it judged.
    fn finding(&self, order_ref: &str, f: Finding) -> NewFinding {
        let ledger = self.board.ledger(order_ref).cloned().unwrap_or_else(|| Ledger::new(order_ref));
        let money = match f.pattern {
            Pattern::OrphanedPayment => ledger.payments.iter().find(|p| p.payment_id == f.subject).map(|p| p.amount),
            _ => ledger.total,
        };
        let evidence = json!({ "rule": f.pattern, "finding": &f, "ledger": &ledger });
        NewFinding {
            pattern: f.pattern,
            order_ref: order_ref.to_owned(),
            flow: flow_of(&self.contract, f.pattern, ledger.channel.as_deref()),
            field: f.field.map(str::to_owned),
            channel: ledger.channel.clone(),
            amount: money.map(|m| m.amount.to_string()),
            currency: money.map(|m| m.currency.to_string()),
            detail: f.detail.clone(),
            action: serde_json::to_string(&f.action).expect("actions serialize"),
            evidence: evidence.to_string(),
            subject: f.subject,
        }
    }
}

/// An empty board for the contract: settled orders wait to be claimed by a payment that names
/// no order only where a payment system can send one.
fn board(contract: &Contract) -> Board {
    let board = Board::new(deadlines(contract));
    if contract.systems.values().any(|s| s.role == Role::Payment) { board } else { board.without_claims() }
}

/// The deadlines of the patterns, from the flows that keep each promise; a contract without
/// such a flow keeps the defaults.
pub fn deadlines(contract: &Contract) -> Deadlines {
    let mut d = Deadlines::default();
    let longest =
        |kind: EventKind| contract.flows.values().filter(|f| f.events.contains(&kind)).map(|f| f.deadline).max();
    if let Some(t) = longest(EventKind::OrderCreated) {
        d.erp_order = t;
        d.payment = t;
    }
    if let Some(t) = longest(EventKind::FulfillmentCreated) {
        d.fulfillment = t;
    }
    if let Some(t) = longest(EventKind::OrderCancelled) {
        d.cancellation = t;
    }
    d
}

/// The flow whose promise a finding says was broken, where one is.
fn flow_of(contract: &Contract, pattern: Pattern, channel: Option<&str>) -> Option<String> {
    let kind = match pattern {
        Pattern::MissingOrder | Pattern::DuplicateDraft | Pattern::TransformMismatch => EventKind::OrderCreated,
        Pattern::StatusVoid => EventKind::FulfillmentCreated,
        Pattern::RollbackGap => EventKind::OrderCancelled,
        Pattern::OrphanedPayment | Pattern::DeadDelivery => return None,
    };
    let from_channel = |f: &&handoff_contract::Flow| channel.is_none_or(|c| f.from == c || f.to == c);
    contract.flows.iter().find(|(_, f)| f.events.contains(&kind) && from_channel(f)).map(|(name, _)| name.clone())
}

/// What a journal entry tells the rules, by the role of the system it concerns.
pub fn facts_of(contract: &Contract, row: &FactRow) -> Vec<Fact> {
    facts_seen(contract, row, None)
}

/// As [`facts_of`], with the entry's event when the hub still holds it parsed (`recent`): its
/// stored payload is parsed only otherwise.
fn facts_seen(contract: &Contract, row: &FactRow, recent: Option<&InboundEvent>) -> Vec<Fact> {
    let Some(role) = contract.systems.get(&row.system).map(|s| s.role) else { return Vec::new() };
    let at = row.at;
    if let Some(kind) = row.kind.strip_prefix("acknowledged:") {
        let command = row.command_id.map(|id| id.to_string()).unwrap_or_default();
        let mut facts = vec![Fact::Delivered { command }];
        facts.extend(acknowledged(role, kind, row, at));
        return facts;
    }
    if row.kind.starts_with("abandoned:") {
        return vec![Fact::Abandoned { command: row.command_id.map(|id| id.to_string()).unwrap_or_default() }];
    }
    if row.kind.starts_with("dead_lettered:") {
        return vec![Fact::DeadLettered { command: row.command_id.map(|id| id.to_string()).unwrap_or_default() }];
    }
    let parsed;
    let event = match recent {
        Some(event) => event,
        None => {
            let Some(Ok(event)) = row.payload.as_deref().map(serde_json::from_str::<InboundEvent>) else {
                tracing::warn!(message = "a journal entry's event is no longer kept or unreadable; the rules learn nothing from it",
                    entry = row.id, order = %row.order_ref, event_row = row.event_row);
                return Vec::new();
            };
            parsed = event;
            &parsed
        }
    };
    match role {
        Role::Storefront | Role::Marketplace | Role::Channel => channel_event(&row.system, event, at),
        Role::Payment => match (event.kind, &event.payment) {
            (EventKind::OrderPaid, Some(p)) => vec![payment(p, at)],
            _ => Vec::new(),
        },
        Role::Erp | Role::Wms => match event.kind {
            EventKind::OrderCreated | EventKind::OrderUpdated => match &event.order {
                Some(order) if role == Role::Erp => {
                    let id = order.name.clone().unwrap_or_else(|| event.order_ref.clone());
                    vec![erp_record(&row.system, id, order, at)]
                }
                _ => Vec::new(),
            },
            EventKind::FulfillmentCreated => vec![Fact::ErpFulfilled { id: None, at }],
            EventKind::OrderCancelled if role == Role::Erp => vec![Fact::ErpCancelled { id: None, at }],
            _ => Vec::new(),
        },
    }
}

fn channel_event(system: &str, event: &InboundEvent, at: Timestamp) -> Vec<Fact> {
    match event.kind {
        EventKind::OrderCreated | EventKind::OrderUpdated => {
            let Some(order) = &event.order else { return Vec::new() };
            let mut facts = vec![Fact::Placed {
                channel: system.to_owned(),
                at,
                total: order.total(),
                lines: order.lines.len() as u32,
                email: order.customer.email.clone(),
            }];
            facts.extend(event.payment.as_ref().map(|p| payment(p, at)));
            facts
        }
        EventKind::OrderPaid => event.payment.as_ref().map(|p| vec![payment(p, at)]).unwrap_or_default(),
        EventKind::OrderCancelled => vec![Fact::Closed { at }],
        EventKind::RefundCreated => {
            event.refund.as_ref().map(|r| vec![Fact::Refunded { amount: r.amount, at }]).unwrap_or_default()
        }
        EventKind::FulfillmentCreated => vec![Fact::ChannelFulfilled { at }],
    }
}

fn acknowledged(role: Role, kind: &str, row: &FactRow, at: Timestamp) -> Vec<Fact> {
    let record = row.record_id.clone();
    match (role, kind) {
        (Role::Erp, "create_order" | "update_order") => {
            /// What of a sent order command the rules read: the order as the ERP got it, its
            /// total and its lines counted (the lines are skipped, not read).
            #[derive(serde::Deserialize)]
            struct Sent {
                order: Option<SentOrder>,
            }
            #[derive(serde::Deserialize)]
            struct SentOrder {
                currency: Currency,
                totals: SentTotals,
                lines: Vec<serde::de::IgnoredAny>,
            }
            #[derive(serde::Deserialize)]
            struct SentTotals {
                #[serde(with = "rust_decimal::serde::str")]
                total: Decimal,
            }
            let sent = row.payload.as_deref().and_then(|payload| serde_json::from_str::<Sent>(payload).ok());
            let order = sent.and_then(|sent| sent.order);
            let (total, lines) = match order {
                Some(o) => (Some(Money::new(o.totals.total, o.currency)), Some(o.lines.len() as u32)),
                None => (None, None),
            };
            let (system, id) = (row.system.clone(), record.unwrap_or_else(|| row.order_ref.clone()));
            vec![Fact::ErpRecord { system, id, at, total, lines, confidence: 1.0 }]
        }
        (Role::Erp, "cancel_order") => {
            // A cancel addressed to one record (a duplicate's) closes only that one: the record
            // the target acknowledged closing, never every record of the order.
            let address = row.payload.as_deref().and_then(RecordAddress::of);
            let id = address.map(|address| record.unwrap_or(address.record_id));
            vec![Fact::ErpCancelled { id, at }]
        }
        (Role::Erp | Role::Wms, "create_fulfillment") => vec![Fact::ErpFulfilled { id: None, at }],
        (Role::Storefront | Role::Marketplace | Role::Channel, "create_fulfillment") => {
            vec![Fact::ChannelFulfilled { at }]
        }
        _ => Vec::new(),
    }
}

fn erp_record(system: &str, id: String, order: &CanonicalOrder, at: Timestamp) -> Fact {
    Fact::ErpRecord {
        system: system.to_owned(),
        id,
        at,
        total: Some(order.total()),
        lines: Some(order.lines.len() as u32),
        confidence: 1.0,
    }
}

fn payment(p: &handoff_model::Payment, at: Timestamp) -> Fact {
    Fact::Payment(PaymentFact {
        payment_id: p.payment_id.to_string(),
        amount: p.amount,
        captured_at: at,
        email: p.email.clone(),
        refunded: false,
        confidence: 1.0,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn an_acknowledged_order_is_an_erp_record_of_the_total_and_lines_sent() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
        let contract = Contract::parse(&text, Path::new("handoff.toml")).unwrap();
        let order = json!({
            "order_ref": "#1", "currency": "EUR", "customer": {"email": "ada@example.com"},
            "placed_at": "2026-12-06T10:00:00Z",
            "lines": [{"sku": "A", "quantity": 1, "unit_price": "5.00"}, {"sku": "B", "quantity": 2, "unit_price": "1.25"}],
            "totals": {"subtotal": "7.50", "shipping": "4.90", "total": "12.40"},
        });
        let at: Timestamp = "2026-12-06T10:00:05Z".parse().unwrap();
        let row = |payload: String| FactRow {
            id: 1,
            order_ref: "#1".into(),
            system: "erp".into(),
            kind: "acknowledged:create_order".into(),
            record_id: Some("SO-1".into()),
            command_id: Some(3),
            event_row: None,
            payload: Some(payload),
            at,
        };
        let record = |total: Option<Money>, lines: Option<u32>| Fact::ErpRecord {
            system: "erp".into(),
            id: "SO-1".into(),
            at,
            total,
            lines,
            confidence: 1.0,
        };
        let sent = json!({ "external_ref": "#1", "version": 1, "order": order }).to_string();
        let total = Money::new(Decimal::new(1240, 2), "EUR".parse().unwrap());
        let delivered = Fact::Delivered { command: "3".into() };
        assert_eq!(facts_of(&contract, &row(sent)), vec![delivered.clone(), record(Some(total), Some(2))]);
        // A payload without the order (written by hand, say) still says the record exists.
        let bare = json!({ "external_ref": "#1" }).to_string();
        assert_eq!(facts_of(&contract, &row(bare)), vec![delivered, record(None, None)]);
    }
}
