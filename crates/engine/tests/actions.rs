//! Resolution actions and auto-resolve policies over the memory store.

mod common;

use std::path::Path;
use std::sync::Arc;

use handoff_contract::Contract;
use handoff_engine::{Ack, BoxFuture, DeliveryError, Intake, ManualClock, RulesWatch, Target, Targets, actions};
use handoff_model::{CommandKind, Pattern};
use handoff_store::memory::MemoryStore;
use handoff_store::{AttemptRecord, Command, NewEvent, NewFinding, Outcome, Raised, Store};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn contract(extra: &str) -> Arc<Contract> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
    Arc::new(Contract::parse(&format!("{text}\n{extra}"), Path::new("handoff.toml")).unwrap())
}

/// A target that only says whether it addresses records (the actions never send).
struct Erp {
    addresses_records: bool,
}

impl Target for Erp {
    fn send<'a>(&'a self, _: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        unreachable!("actions queue, they never send")
    }

    fn read_back<'a>(&'a self, _: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        unreachable!("actions queue, they never read back")
    }

    fn addresses_records(&self) -> bool {
        self.addresses_records
    }

    fn honours_idempotency_keys(&self) -> bool {
        true
    }
}

/// The example contract's targets, its ERP addressing records or not.
fn erp(addresses_records: bool) -> Targets {
    let erp: Arc<dyn Target> = Arc::new(Erp { addresses_records });
    [("erp".to_owned(), erp)].into_iter().collect()
}

fn order_event(id: &str, kind: &str, order_ref: &str) -> NewEvent {
    common::order_event(id, kind, order_ref, t0())
}

async fn intake(store: &MemoryStore, contract: &Arc<Contract>, clock: &Arc<ManualClock>) {
    Intake::new(contract.clone(), store.clone(), clock.clone()).step().await.unwrap();
}

fn finding(pattern: Pattern, order_ref: &str, subject: &str, action: serde_json::Value) -> NewFinding {
    NewFinding {
        pattern,
        order_ref: order_ref.into(),
        subject: subject.into(),
        flow: Some("orders-to-erp".into()),
        field: None,
        channel: Some("shop".into()),
        amount: Some("5.00".into()),
        currency: Some("EUR".into()),
        detail: format!("{pattern} for {order_ref}"),
        action: action.to_string(),
        evidence: json!({"ledger": {"erp": [
            {"system": "erp", "id": "R1", "seen_at": "2026-11-26T10:00:00Z", "state": "open", "confidence": 1.0},
            {"system": "erp", "id": "R2", "seen_at": "2026-11-26T10:01:00Z", "state": "open", "confidence": 1.0},
        ]}})
        .to_string(),
    }
}

async fn raise(store: &MemoryStore, f: NewFinding) -> i64 {
    match store.raise_finding(f, t0()).await.unwrap() {
        Raised::Opened(id) => id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn creating_the_erp_order_reports_the_create_intake_already_queued() {
    let (store, c, clock) = (MemoryStore::new(), contract(""), Arc::new(ManualClock::new(t0())));
    store.record_event(order_event("e1", "order.created", "#1")).await.unwrap();
    intake(&store, &c, &clock).await;
    let id = raise(&store, finding(Pattern::MissingOrder, "#1", "", json!({"action": "create_erp_order"}))).await;
    let out = actions::take(&store, &c, &erp(true), id, "ada", false, t0()).await.unwrap();
    assert_eq!(out.action, "create_erp_order");
    assert!(out.queued.is_empty());
    assert_eq!(out.already_queued, vec![1]);
    assert!(out.lines[0].contains("already queued as command 1 (pending)"), "{:?}", out.lines);
    assert_eq!(store.exception(id).await.unwrap().unwrap().state, "acknowledged");
    let audit = store.order_timeline("#1".into()).await.unwrap().audit;
    assert!(audit.iter().any(|a| a.actor == "ada" && a.action == "action taken"), "{audit:?}");
}

#[tokio::test]
async fn duplicates_are_cancelled_one_record_at_a_time_and_once() {
    let (store, c, clock) = (MemoryStore::new(), contract(""), Arc::new(ManualClock::new(t0())));
    store.record_event(order_event("e1", "order.created", "#1")).await.unwrap();
    intake(&store, &c, &clock).await;
    let action = json!({"action": "cancel_duplicates", "keep": "R1", "cancel": ["R2"]});
    let id = raise(&store, finding(Pattern::DuplicateDraft, "#1", "R1,R2", action)).await;
    let out = actions::take(&store, &c, &erp(true), id, "ada", false, t0()).await.unwrap();
    assert_eq!(out.queued.len(), 1, "{:?}", out.lines);
    let timeline = store.order_timeline("#1".into()).await.unwrap();
    let cancel = timeline.commands.iter().find(|x| x.id == out.queued[0]).unwrap();
    assert_eq!((cancel.kind, cancel.target.as_str()), (CommandKind::CancelOrder, "erp"));
    let payload: serde_json::Value = serde_json::from_str(&cancel.payload).unwrap();
    assert_eq!(payload["record_id"], "R2");
    // The create of the record kept is not superseded by this cancel.
    assert_eq!(timeline.commands[0].state.as_str(), "pending");
    let again = actions::take(&store, &c, &erp(true), id, "bob", false, t0()).await.unwrap();
    assert!(again.queued.is_empty() && again.already_queued == out.queued, "{:?}", again.lines);
}

#[tokio::test]
async fn duplicates_are_not_cancelled_through_a_target_that_cannot_address_one_record() {
    let (store, c, clock) = (MemoryStore::new(), contract(""), Arc::new(ManualClock::new(t0())));
    store.record_event(order_event("e1", "order.created", "#1")).await.unwrap();
    intake(&store, &c, &clock).await;
    let before = store.order_timeline("#1".into()).await.unwrap().commands.len();
    let action = json!({"action": "cancel_duplicates", "keep": "R1", "cancel": ["R2"]});
    let id = raise(&store, finding(Pattern::DuplicateDraft, "#1", "R1,R2", action)).await;
    for targets in [erp(false), Targets::new()] {
        let refused = actions::take(&store, &c, &targets, id, "ada", false, t0()).await.unwrap_err();
        assert!(
            matches!(&refused, actions::ActionError::CannotAddress { record, keep, .. } if record == "R2" && keep == "R1")
        );
        assert!(refused.to_string().contains("cannot address one record by its id"), "{refused}");
    }
    // Nothing planned, nothing audited as taken, the exception still open for a person.
    let timeline = store.order_timeline("#1".into()).await.unwrap();
    assert_eq!(timeline.commands.len(), before);
    assert!(!timeline.audit.iter().any(|a| a.action == "action taken"), "{:?}", timeline.audit);
    assert_eq!(store.exception(id).await.unwrap().unwrap().state, "open");
}

#[tokio::test]
async fn a_refund_waits_for_a_person_and_is_only_ever_recorded() {
    let store = MemoryStore::new();
    let c = contract("");
    let action = json!({"action": "refund_payment", "payment_id": "pi_1"});
    let id = raise(&store, finding(Pattern::OrphanedPayment, "pi_1", "pi_1", action)).await;
    let out = actions::take(&store, &c, &erp(true), id, "rule:auto:orphaned_payment", true, t0()).await.unwrap();
    assert!(out.needs_person && out.lines[0].contains("awaits a person's approval"), "{:?}", out.lines);
    let out = actions::take(&store, &c, &erp(true), id, "ada", false, t0()).await.unwrap();
    assert!(out.lines[0].contains("awaits a person's approval"), "{:?}", out.lines);
    let out = actions::take(&store, &c, &erp(true), id, "ada", true, t0()).await.unwrap();
    assert!(out.lines[0].contains("issue it in the payment system"), "{:?}", out.lines);
    assert!(out.queued.is_empty());
    let audit = store.order_timeline("pi_1".into()).await.unwrap().audit;
    assert!(audit.iter().any(|a| a.actor == "ada" && a.action == "refund approved"), "{audit:?}");
    assert!(store.order_timeline("pi_1".into()).await.unwrap().commands.is_empty());
}

#[tokio::test]
async fn a_dead_letter_is_retried_by_replaying_it() {
    let (store, c, clock) = (MemoryStore::new(), contract(""), Arc::new(ManualClock::new(t0())));
    store.record_event(order_event("e1", "order.created", "#1")).await.unwrap();
    intake(&store, &c, &clock).await;
    let command = store.claim_due(t0(), 10).await.unwrap().remove(0);
    let dead = Outcome::DeadLettered {
        ambiguous: false,
        error: "422: name required".into(),
        field: Some("order.customer.name".into()),
        pattern: Pattern::DeadDelivery,
    };
    let record =
        AttemptRecord { command, started_at: t0(), finished_at: t0(), outcome: dead, note: None, mapping: None };
    store.record_attempt(record).await.unwrap();
    let x = store.exceptions(None, 10).await.unwrap().remove(0);
    let out = actions::take(&store, &c, &erp(true), x.id, "ada", false, t0()).await.unwrap();
    assert_eq!((out.action.as_str(), out.queued.clone()), ("retry", vec![1]));
    assert!(store.dead_letters(10).await.unwrap().is_empty());
    assert_eq!(store.exception(x.id).await.unwrap().unwrap().state, "acknowledged");
}

#[tokio::test]
async fn an_auto_resolve_policy_acts_when_the_rule_fires_and_a_shadow_flow_sends_nothing() {
    let shadowed = contract("[auto_resolve]\nmissing_order = \"create-erp-order\"\n");
    let mut shadowed = (*shadowed).clone();
    shadowed.flows.get_mut("orders-to-erp").unwrap().shadow = true;
    let c = Arc::new(shadowed);
    let (store, clock) = (MemoryStore::new(), Arc::new(ManualClock::new(t0())));
    store.record_event(order_event("e1", "order.created", "#1")).await.unwrap();
    intake(&store, &c, &clock).await;
    let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    rules.step().await.unwrap();
    clock.advance(SignedDuration::from_mins(16));
    let stepped = rules.step().await.unwrap();
    assert_eq!((stepped.raised, stepped.auto_actions), (1, 1));
    let timeline = store.order_timeline("#1".into()).await.unwrap();
    assert!(timeline.commands.is_empty(), "a shadow flow sends nothing");
    let auto = timeline.audit.iter().find(|a| a.actor == "rule:auto:missing_order").expect("audited");
    assert!(auto.detail.contains("in shadow"), "{auto:?}");
}

#[tokio::test]
async fn an_auto_resolve_policy_queues_the_create_that_was_never_planned() {
    // The order reached the hub before the flow existed: no create was planned.
    let c = contract("[auto_resolve]\nmissing_order = \"create-erp-order\"\n");
    let mut without = (*c).clone();
    without.flows.get_mut("orders-to-erp").unwrap().shadow = true;
    let (store, clock) = (MemoryStore::new(), Arc::new(ManualClock::new(t0())));
    store.record_event(order_event("e1", "order.created", "#1")).await.unwrap();
    intake(&store, &Arc::new(without), &clock).await;
    let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    rules.step().await.unwrap();
    clock.advance(SignedDuration::from_mins(16));
    assert_eq!(rules.step().await.unwrap().auto_actions, 1);
    let timeline = store.order_timeline("#1".into()).await.unwrap();
    assert_eq!(timeline.commands.len(), 1);
    assert_eq!(timeline.commands[0].kind, CommandKind::CreateOrder);
    assert_eq!(timeline.commands[0].idempotency_key, "handoff:erp:#1:create_order:#1");
    let x = store.exceptions(None, 10).await.unwrap().remove(0);
    assert_eq!((x.pattern.as_str(), x.state.as_str()), ("missing_order", "acknowledged"));
}

#[tokio::test]
async fn a_resolved_dead_letter_never_leaves_its_orders_later_commands_waiting() {
    use handoff_model::ExceptionState;
    let (store, c, clock) = (MemoryStore::new(), contract(""), Arc::new(ManualClock::new(t0())));
    store.record_event(order_event("e1", "order.created", "#1")).await.unwrap();
    intake(&store, &c, &clock).await;
    let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    rules.step().await.unwrap();
    let create = store.claim_due(t0(), 10).await.unwrap().remove(0);
    let dead = Outcome::DeadLettered {
        ambiguous: false,
        error: "422: customer unknown".into(),
        field: None,
        pattern: Pattern::DeadDelivery,
    };
    store
        .record_attempt(AttemptRecord {
            command: create,
            started_at: t0(),
            finished_at: t0(),
            outcome: dead,
            note: None,
            mapping: None,
        })
        .await
        .unwrap();
    // The shop cancels the order meanwhile: the cancel waits behind the dead create.
    let mut cancelled = order_event("e2", "order.cancelled", "#1");
    cancelled.received_at = t0() + SignedDuration::from_mins(1);
    store.record_event(cancelled).await.unwrap();
    intake(&store, &c, &clock).await;
    rules.step().await.unwrap();
    assert!(store.claim_due(t0() + SignedDuration::from_mins(2), 10).await.unwrap().is_empty());

    // A person resolves the dead letter's exception (the order was keyed into the ERP by hand).
    let x = store.exceptions(Some(handoff_model::ExceptionState::Open), 10).await.unwrap().remove(0);
    assert_eq!(x.pattern, "dead_delivery");
    store
        .move_exception(x.id, ExceptionState::Resolved, "ada".into(), Some("keyed by hand".into()), t0())
        .await
        .unwrap();
    let next = store.claim_due(t0() + SignedDuration::from_mins(2), 10).await.unwrap();
    assert_eq!(next.iter().map(|c| c.kind).collect::<Vec<_>>(), vec![CommandKind::CancelOrder]);
    let timeline = store.order_timeline("#1".into()).await.unwrap();
    assert!(timeline.audit.iter().any(|a| a.actor == "ada" && a.action == "abandoned"), "{:?}", timeline.audit);

    // The rules are told: the dead letter is no longer the exception to work for this order.
    clock.advance(SignedDuration::from_mins(30));
    rules.step().await.unwrap();
    assert_eq!(store.facts_after(0, 100).await.unwrap().iter().filter(|f| f.kind.starts_with("abandoned:")).count(), 1);
}
