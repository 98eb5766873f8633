//! Resolution actions: what a person (or an auto-resolve policy) does about an exception.
//!
//! An action that sends something queues a command in the outbox as intake would have planned
//! it from the event that should have produced it, with the same idempotency key
//! ([`crate::intake::command_for_event`]): a command already queued is reported, never queued
//! twice. The write path's own exceptions (a dead letter) are retried by replaying the dead
//! letter. Money never moves by itself: a refund is recorded as approved by a person and must
//! be issued in the payment system. Every action is audited with who took it.

use handoff_contract::{Contract, Role};
use handoff_model::{CommandKind, EventKind, ExceptionState, InboundEvent, Pattern, RecordAddress, idempotency_key};
use handoff_rules::Action;
use handoff_store::{ExceptionRow, NewCommand, Replay, Store, StoredEvent, Timeline};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

use crate::Targets;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Store(#[from] handoff_store::StoreError),
    #[error("no exception {0}")]
    NotFound(i64),
    #[error("exception {id} is {state}: there is nothing left to act on")]
    Closed { id: i64, state: String },
    #[error("exception {0} suggests no action")]
    NoAction(i64),
    #[error("exception {id}: its action is unreadable: {why}")]
    Unreadable { id: i64, why: String },
    /// A duplicate's cancel needs a target that closes one record by its id; nothing is queued.
    #[error(
        "exception {id}: {target} cannot address one record by its id, so cancelling the duplicate {record} \
         could close the record kept ({keep}); nothing was queued: cancel {record} by hand in {target}"
    )]
    CannotAddress { id: i64, target: String, record: String, keep: String },
}

/// What taking an action did.
#[derive(Debug, Clone, Serialize)]
pub struct ActionOutcome {
    pub exception_id: i64,
    pub order_ref: String,
    pub pattern: String,
    /// The action's tag: `create_erp_order`, ..., or `retry` for a dead letter.
    pub action: String,
    /// Commands this action queued (or replayed) now.
    pub queued: Vec<i64>,
    /// Commands an earlier action, or intake itself, had already queued.
    pub already_queued: Vec<i64>,
    /// A person still has to do something outside Handoff (or approve).
    pub needs_person: bool,
    /// What happened, one line each, for people.
    pub lines: Vec<String>,
}

impl ActionOutcome {
    fn new(x: &ExceptionRow, action: &str) -> Self {
        ActionOutcome {
            exception_id: x.id,
            order_ref: x.order_ref.clone(),
            pattern: x.pattern.clone(),
            action: action.to_owned(),
            queued: Vec::new(),
            already_queued: Vec::new(),
            needs_person: false,
            lines: Vec::new(),
        }
    }
}

/// The action an exception suggests, by its tag (`retry` for a dead letter).
pub fn action_of(x: &ExceptionRow) -> Option<Result<Action, String>> {
    x.action.as_ref().map(|json| serde_json::from_str(json).map_err(|e| e.to_string()))
}

/// Whether an exception is a dead letter of the write path that a replay retries.
fn is_dead_letter(x: &ExceptionRow) -> bool {
    x.command_id.is_some()
        && (x.pattern == Pattern::DeadDelivery.as_str() || x.pattern == Pattern::TransformMismatch.as_str())
}

/// What taking the action `x` suggests would do, in words, before it is taken (the console's
/// preview); the reason it cannot be taken otherwise. `take` decides the rest as it goes: a
/// command already queued is not queued again.
pub fn preview(x: &ExceptionRow) -> Result<String, ActionError> {
    if !matches!(ExceptionState::parse(&x.state), Some(ExceptionState::Open | ExceptionState::Acknowledged)) {
        return Err(ActionError::Closed { id: x.id, state: x.state.clone() });
    }
    if is_dead_letter(x) {
        let id = x.command_id.unwrap_or_default();
        return Ok(format!(
            "replays dead letter {id} with a fresh retry budget, its payload made with the latest mapping"
        ));
    }
    let action = match action_of(x) {
        None => return Err(ActionError::NoAction(x.id)),
        Some(Err(why)) => return Err(ActionError::Unreadable { id: x.id, why }),
        Some(Ok(action)) => action,
    };
    let what = match action {
        Action::CreateErpOrder => "queues the order's create to the ERP that intake would have planned".to_owned(),
        Action::SendFulfillmentToChannel => "sends the ERP's fulfillment back to the order's channel".to_owned(),
        Action::SendCancellation { records } => {
            format!("queues the cancellation of ERP record(s) {}, as the channel cancelled", records.join(", "))
        }
        Action::CancelDuplicates { keep, cancel } => format!(
            "queues the cancel of duplicate record(s) {}, each by its id, keeping {keep} (refused for a target \
             that cannot address one record)",
            cancel.join(", ")
        ),
        Action::FulfilInErp => "queues nothing: says which ERP records to fulfil by hand".to_owned(),
        Action::ReviewMapping => "queues nothing: says what to fix (the mapping or the ERP record)".to_owned(),
        Action::RefundPayment { payment_id } => format!(
            "records your approval of refunding payment {payment_id} (Handoff sends no refund: issue it in the \
             payment system); without approval, nothing"
        ),
    };
    Ok(format!("{what}; an open exception becomes acknowledged, and the action is audited"))
}

/// Whether the action `x` suggests is a refund, which a person must approve.
pub fn needs_approval(x: &ExceptionRow) -> bool {
    matches!(action_of(x), Some(Ok(Action::RefundPayment { .. })))
}

/// Takes the action exception `exception_id` suggests, as `actor`. `approve` is a person's
/// approval, needed for a refund. `targets` say what each system can do (a duplicate's cancel
/// needs one that addresses records).
pub async fn take<S: Store>(
    store: &S,
    contract: &Contract,
    targets: &Targets,
    exception_id: i64,
    actor: &str,
    approve: bool,
    now: Timestamp,
) -> Result<ActionOutcome, ActionError> {
    let x = store.exception(exception_id).await?.ok_or(ActionError::NotFound(exception_id))?;
    let state = ExceptionState::parse(&x.state);
    if !matches!(state, Some(ExceptionState::Open | ExceptionState::Acknowledged)) {
        return Err(ActionError::Closed { id: x.id, state: x.state });
    }
    let mut out;
    if is_dead_letter(&x) {
        out = ActionOutcome::new(&x, "retry");
        let id = x.command_id.unwrap_or_default();
        if store.replay(Replay::One(id), actor.to_owned(), now).await? == 1 {
            out.queued.push(id);
            let mapping = match &x.mapping {
                Some(m) => format!(" (it ran with {m}; a replay makes its payload with the latest mapping)"),
                None => String::new(),
            };
            out.lines.push(format!("dead letter {id} replayed with a fresh retry budget{mapping}"));
        } else {
            let state = store.order_timeline(x.order_ref.clone()).await?.commands.into_iter().find(|c| c.id == id);
            let state = state.map_or_else(|| "gone".to_owned(), |c| c.state.as_str().to_owned());
            out.already_queued.push(id);
            out.lines.push(format!("command {id} is no longer a dead letter ({state}): nothing replayed"));
        }
    } else {
        let action = match action_of(&x) {
            None => return Err(ActionError::NoAction(x.id)),
            Some(Err(why)) => return Err(ActionError::Unreadable { id: x.id, why }),
            Some(Ok(action)) => action,
        };
        let tag = serde_json::to_value(&action).ok().and_then(|v| v["action"].as_str().map(str::to_owned));
        out = ActionOutcome::new(&x, tag.as_deref().unwrap_or("unknown"));
        let timeline = store.order_timeline(x.order_ref.clone()).await?;
        let a = Act { store, contract, targets, x: &x, timeline: &timeline, actor, now };
        match action {
            Action::CreateErpOrder => a.create_erp_order(&mut out).await?,
            Action::SendFulfillmentToChannel => a.send_fulfillment(&mut out).await?,
            Action::SendCancellation { records } => a.send_cancellation(&records, &mut out).await?,
            Action::CancelDuplicates { keep, cancel } => a.cancel_duplicates(&keep, &cancel, &mut out).await?,
            Action::FulfilInErp => {
                out.needs_person = true;
                let records = a.erp_records().join(", ");
                out.lines.push(format!(
                    "{} shipped the order; fulfil the ERP record(s) {records} in the ERP (Handoff sends no \
                     fulfillments to an ERP); the exception resolves itself once the ERP shows it fulfilled",
                    a.channel().unwrap_or("the channel")
                ));
            }
            Action::ReviewMapping => {
                out.needs_person = true;
                let field = x.field.as_deref().unwrap_or("the order");
                out.lines.push(format!(
                    "the ERP record disagrees with the order on {field}: fix the mapping (`handoff mapping test`) \
                     or the ERP record, then correct the record; the exception resolves itself once they agree"
                ));
            }
            Action::RefundPayment { payment_id } => a.refund(&payment_id, approve, &mut out).await?,
        }
    }
    // Someone (or a policy) is on it: an open exception becomes acknowledged.
    if (!out.queued.is_empty() || !out.already_queued.is_empty()) && state == Some(ExceptionState::Open) {
        let reason = Some(format!("action {}", out.action));
        store.move_exception(x.id, ExceptionState::Acknowledged, actor.to_owned(), reason, now).await?;
    }
    let detail = format!("exception {} ({}): {}: {}", x.id, x.pattern, out.action, out.lines.join("; "));
    store.record_audit(x.order_ref.clone(), actor.to_owned(), "action taken".into(), detail, now).await?;
    Ok(out)
}

/// One action's context.
struct Act<'a, S> {
    store: &'a S,
    contract: &'a Contract,
    targets: &'a Targets,
    x: &'a ExceptionRow,
    timeline: &'a Timeline,
    actor: &'a str,
    now: Timestamp,
}

impl<S: Store> Act<'_, S> {
    fn role(&self, system: &str) -> Option<Role> {
        self.contract.systems.get(system).map(|s| s.role)
    }

    /// The order's channel: the exception's, else the first channel that spoke of the order.
    fn channel(&self) -> Option<&str> {
        self.x.channel.as_deref().or_else(|| {
            self.timeline
                .events
                .iter()
                .find(|e| self.role(&e.system).is_some_and(Role::is_channel))
                .map(|e| e.system.as_str())
        })
    }

    /// The channel's latest event of one of `kinds`.
    fn latest(&self, kinds: &[EventKind]) -> Option<&StoredEvent> {
        let channel = self.channel()?;
        self.timeline.events.iter().rev().find(|e| e.system == channel && kinds.contains(&e.kind))
    }

    /// The ERP records of the order, from the evidence the rule kept.
    fn evidence_records(&self) -> Vec<(String, String)> {
        let evidence: serde_json::Value =
            self.x.evidence.as_deref().and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default();
        let records = evidence["ledger"]["erp"].as_array().cloned().unwrap_or_default();
        records.iter().filter_map(|r| Some((r["system"].as_str()?.to_owned(), r["id"].as_str()?.to_owned()))).collect()
    }

    fn erp_records(&self) -> Vec<String> {
        let ids: Vec<String> = self.evidence_records().into_iter().map(|(_, id)| id).collect();
        if ids.is_empty() { vec!["(see `exceptions show`)".into()] } else { ids }
    }

    /// Queues `command` for the exception as planned from `event_row`, or reports the command
    /// that already holds its idempotency key.
    async fn queue(&self, event_row: i64, command: NewCommand, out: &mut ActionOutcome) -> handoff_store::Result<()> {
        let (kind, target, key) = (command.kind, command.target.clone(), command.idempotency_key.clone());
        match self.store.enqueue_action(self.x.id, event_row, command, self.actor.to_owned(), self.now).await? {
            Some(id) => {
                out.queued.push(id);
                out.lines.push(format!("{kind} to {target} queued as command {id}"));
            }
            None => {
                let existing = self.store.order_timeline(self.x.order_ref.clone()).await?;
                match existing.commands.iter().find(|c| c.idempotency_key == key) {
                    Some(c) => {
                        out.already_queued.push(c.id);
                        out.lines.push(format!("{kind} to {target} already queued as command {} ({})", c.id, c.state));
                    }
                    None => out.lines.push(format!("{kind} to {target} already queued (idempotency key {key})")),
                }
            }
        }
        Ok(())
    }

    /// Queues, for each non-shadow flow carrying `stored` to a system `to_role` accepts, the
    /// command intake would have planned as `kind`.
    async fn resend(
        &self,
        stored: &StoredEvent,
        kind: CommandKind,
        to: impl Fn(&str) -> bool,
        out: &mut ActionOutcome,
    ) -> Result<usize, ActionError> {
        let unreadable =
            |why: String| ActionError::Unreadable { id: self.x.id, why: format!("event {}: {why}", stored.event_id) };
        let event: InboundEvent = serde_json::from_str(&stored.payload).map_err(|e| unreadable(e.to_string()))?;
        event.validate().map_err(|e| unreadable(e.to_string()))?;
        let content = crate::Content::of(&event);
        let mut flows = 0;
        for (flow, f) in self.contract.flows_for(&stored.system, stored.kind).filter(|(_, f)| to(&f.to)) {
            flows += 1;
            if f.shadow {
                out.needs_person = true;
                out.lines.push(format!("flow {flow} is in shadow: Handoff observes it and sends nothing"));
                continue;
            }
            let command = crate::intake::command_for_event(flow, &f.to, kind, &event, &content, stored);
            self.queue(stored.row, command, out).await?;
        }
        if flows == 0 {
            out.needs_person = true;
            out.lines.push(format!("no flow carries {} from {}: nothing to send", stored.kind, stored.system));
        }
        Ok(flows)
    }

    fn is_erp(&self, system: &str) -> bool {
        self.role(system) == Some(Role::Erp)
    }

    async fn create_erp_order(&self, out: &mut ActionOutcome) -> Result<(), ActionError> {
        let Some(stored) = self.latest(&[EventKind::OrderCreated, EventKind::OrderUpdated]) else {
            out.needs_person = true;
            out.lines.push("no order event from the channel to create the ERP order from".into());
            return Ok(());
        };
        self.resend(stored, CommandKind::CreateOrder, |to| self.is_erp(to), out).await?;
        Ok(())
    }

    async fn send_fulfillment(&self, out: &mut ActionOutcome) -> Result<(), ActionError> {
        let Some(channel) = self.channel().map(str::to_owned) else {
            out.needs_person = true;
            out.lines.push("the order's channel is unknown: nowhere to send the fulfillment".into());
            return Ok(());
        };
        let fulfillments: Vec<&StoredEvent> = self
            .timeline
            .events
            .iter()
            .filter(|e| {
                e.kind == EventKind::FulfillmentCreated && matches!(self.role(&e.system), Some(Role::Erp | Role::Wms))
            })
            .collect();
        if fulfillments.is_empty() {
            out.needs_person = true;
            out.lines.push("no fulfillment event from the ERP: fulfil the order in the channel by hand".into());
        }
        for stored in fulfillments {
            self.resend(stored, CommandKind::CreateFulfillment, |to| to == channel, out).await?;
        }
        Ok(())
    }

    async fn send_cancellation(&self, records: &[String], out: &mut ActionOutcome) -> Result<(), ActionError> {
        match self.latest(&[EventKind::OrderCancelled]) {
            Some(stored) => {
                self.resend(stored, CommandKind::CancelOrder, |to| self.is_erp(to), out).await?;
            }
            None => {
                out.needs_person = true;
                out.lines.push(format!(
                    "the channel closed the order by refunds, not by a cancellation: cancel the ERP record(s) {} \
                     by hand",
                    records.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Queues one cancel per duplicate, each addressed to its record by the target's id for it,
    /// to a target that can address records. Refused, with nothing queued, when one cannot:
    /// cancelling by external reference may close the record kept.
    async fn cancel_duplicates(
        &self,
        keep: &str,
        cancel: &[String],
        out: &mut ActionOutcome,
    ) -> Result<(), ActionError> {
        let Some(stored) = self.timeline.events.last() else {
            out.needs_person = true;
            out.lines.push("no event of the order to plan the cancels from".into());
            return Ok(());
        };
        let records = self.evidence_records();
        let channel = self.channel().map(str::to_owned);
        let order_ref = &self.x.order_ref;
        let mut commands = Vec::new();
        for record in cancel {
            let erp = records.iter().find(|(_, id)| id == record).map(|(system, _)| system.clone());
            // The flow that carries the order to that ERP (its cancels, preferably).
            let flow = self
                .contract
                .flows
                .iter()
                .filter(|(_, f)| erp.as_ref().is_none_or(|e| &f.to == e) && self.is_erp(&f.to))
                .filter(|(_, f)| channel.as_ref().is_none_or(|c| &f.from == c))
                .max_by_key(|(_, f)| (f.events.contains(&EventKind::OrderCancelled), f.events.len()));
            let Some((name, f)) = flow else {
                out.needs_person = true;
                out.lines.push(format!("no flow reaches the ERP holding {record}: cancel it by hand"));
                continue;
            };
            if f.shadow {
                out.needs_person = true;
                out.lines.push(format!("flow {name} is in shadow: cancel {record} by hand"));
                continue;
            }
            if !self.targets.get(&f.to).is_some_and(|t| t.addresses_records()) {
                return Err(ActionError::CannotAddress {
                    id: self.x.id,
                    target: f.to.clone(),
                    record: record.clone(),
                    keep: keep.to_owned(),
                });
            }
            let address = RecordAddress {
                external_ref: order_ref.clone(),
                record_id: record.clone(),
                keep: Some(keep.to_owned()),
            };
            commands.push(NewCommand {
                flow: name.clone(),
                target: f.to.clone(),
                order_ref: order_ref.clone(),
                kind: CommandKind::CancelOrder,
                idempotency_key: idempotency_key(
                    &f.to,
                    order_ref,
                    CommandKind::CancelOrder,
                    &format!("record-{record}"),
                ),
                external_ref: order_ref.clone(),
                version: None,
                payload: address.payload(),
                // Only this record goes: the one kept keeps its updates.
                supersede_unsent: false,
            });
        }
        // Every target was asked before any cancel is queued: a refusal plans nothing.
        for command in commands {
            self.queue(stored.row, command, out).await?;
        }
        out.lines.push(format!("{keep} is kept"));
        Ok(())
    }

    async fn refund(&self, payment_id: &str, approve: bool, out: &mut ActionOutcome) -> Result<(), ActionError> {
        out.needs_person = true;
        if !approve || self.actor.starts_with("rule:") {
            out.lines.push(format!(
                "refunding payment {payment_id} awaits a person's approval (`handoff exceptions act {} --approve`)",
                self.x.id
            ));
            return Ok(());
        }
        let money = match (&self.x.amount, &self.x.currency) {
            (Some(a), Some(c)) => format!(" ({a} {c})"),
            _ => String::new(),
        };
        let detail = format!("exception {}: refund of payment {payment_id}{money} approved", self.x.id);
        self.store
            .record_audit(self.x.order_ref.clone(), self.actor.to_owned(), "refund approved".into(), detail, self.now)
            .await?;
        out.lines.push(format!(
            "refund of payment {payment_id}{money} approved by {} and audited; Handoff has no payment target and \
             sends no refund: issue it in the payment system, then `handoff exceptions resolve {}`",
            self.actor, self.x.id
        ));
        Ok(())
    }
}

/// Everything behind one exception: the exception, the rule's evidence (the rule, the finding,
/// the ledger it judged) and the order's timeline across systems.
#[derive(Debug, Clone, Serialize)]
pub struct EvidencePack {
    pub exception: ExceptionRow,
    /// The evidence the rule kept, as JSON (`null` for the write path's own exceptions).
    pub evidence: serde_json::Value,
    /// The suggested action, as JSON (`retry` for a dead letter).
    pub action: serde_json::Value,
    pub timeline: Timeline,
}

/// The evidence pack of exception `id`, if it exists.
pub async fn evidence<S: Store>(store: &S, id: i64) -> handoff_store::Result<Option<EvidencePack>> {
    let Some(mut exception) = store.exception(id).await? else { return Ok(None) };
    // Given once, parsed, below.
    let held = crate::quarantine::held_by(&exception);
    let evidence = exception.evidence.take().and_then(|e| serde_json::from_str(&e).ok()).unwrap_or_default();
    let action = match (&exception.action, is_dead_letter(&exception), held) {
        (Some(a), _, _) => serde_json::from_str(a).unwrap_or_default(),
        (None, true, _) => json!({ "action": "retry", "command_id": exception.command_id }),
        (None, false, Some(held)) => json!({ "action": "replay_quarantined", "quarantine": held }),
        (None, false, None) => serde_json::Value::Null,
    };
    let timeline = store.order_timeline(exception.order_ref.clone()).await?;
    Ok(Some(EvidencePack { exception, evidence, action, timeline }))
}
