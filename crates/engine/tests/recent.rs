//! The events the hub parsed at its door (`recent`): intake plans from them and the rules learn
//! from them, and an event no longer held is read from the store to the same effect (and kept,
//! once intake read it, for the rules).

mod common;

use std::path::Path;
use std::sync::Arc;

use handoff_contract::Contract;
use handoff_engine::recent::Recent;
use handoff_engine::{Clock, Intake, ManualClock, RulesWatch};
use handoff_model::InboundEvent;
use handoff_store::memory::MemoryStore;
use handoff_store::{Recorded, Store};
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;

fn t0() -> Timestamp {
    "2026-12-06T10:00:00Z".parse().unwrap()
}

fn contract() -> Arc<Contract> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
    Arc::new(Contract::parse(&text, Path::new("handoff.toml")).unwrap())
}

/// A store holding order `#1`'s creation, its inbox row, and the event parsed from its payload.
async fn recorded() -> (MemoryStore, i64, InboundEvent) {
    let store = MemoryStore::new();
    let event = common::order_event("c1", "order.created", "#1", t0());
    let parsed: InboundEvent = serde_json::from_str(&event.payload).unwrap();
    let Recorded::New(row) = store.record_event(event).await.unwrap() else { panic!("a new event") };
    (store, row, parsed)
}

/// The payload of the one command intake planned, with or without `recent`.
async fn planned(store: &MemoryStore, recent: Option<Arc<Recent>>) -> String {
    let clock = Arc::new(ManualClock::new(t0()));
    let intake = Intake::new(contract(), store.clone(), clock.clone());
    let intake = match recent {
        Some(recent) => intake.with_recent(recent),
        None => intake,
    };
    assert_eq!(intake.step().await.unwrap(), 1);
    let commands = store.claim_due(clock.now(), 10).await.unwrap();
    assert_eq!(commands.len(), 1, "one create for the ERP");
    commands[0].payload.clone()
}

#[tokio::test]
async fn intake_plans_an_event_held_parsed_as_it_plans_it_from_the_store() {
    let (from_store, _, _) = recorded().await;
    let (held, row, parsed) = recorded().await;
    let recent = Arc::new(Recent::default());
    recent.keep(row, parsed, 1000);
    assert_eq!(planned(&held, Some(recent)).await, planned(&from_store, None).await);
}

#[tokio::test]
async fn intake_plans_from_the_event_held_not_from_its_payload() {
    let (store, row, mut parsed) = recorded().await;
    // Only a hub that read the held event can plan this address.
    parsed.order.as_mut().unwrap().customer.email = Some("held@example.com".into());
    let recent = Arc::new(Recent::default());
    recent.keep(row, parsed, 1000);
    assert!(planned(&store, Some(recent)).await.contains("held@example.com"));
}

/// The amount of the Missing Order the rules raise for `#1`, which no ERP acknowledges.
async fn missing_order_amount(store: &MemoryStore, recent: Option<Arc<Recent>>) -> String {
    let clock = Arc::new(ManualClock::new(t0()));
    Intake::new(contract(), store.clone(), clock.clone()).step().await.unwrap();
    let rules = RulesWatch::new(contract(), store.clone(), clock.clone());
    let mut rules = match recent {
        Some(recent) => rules.with_recent(recent),
        None => rules,
    };
    rules.step().await.unwrap();
    clock.advance(SignedDuration::from_hours(1));
    rules.step().await.unwrap();
    let exceptions = store.exceptions(None, 10).await.unwrap();
    let missing: Vec<_> = exceptions.iter().filter(|x| x.pattern == "missing_order").collect();
    assert_eq!(missing.len(), 1, "{exceptions:?}");
    missing[0].amount.clone().expect("the order's total")
}

#[tokio::test]
async fn the_rules_learn_from_the_event_held_and_else_from_the_store() {
    let (store, _, _) = recorded().await;
    assert_eq!(missing_order_amount(&store, None).await, "5.00");
    let (store, row, mut parsed) = recorded().await;
    let order = parsed.order.as_mut().unwrap();
    order.totals.total = Decimal::new(700, 2);
    let recent = Arc::new(Recent::default());
    recent.keep(row, parsed, 1000);
    assert_eq!(missing_order_amount(&store, Some(recent)).await, "7.00", "learned from the held event");
}

#[tokio::test]
async fn an_event_intake_read_from_the_store_is_kept_for_the_rules() {
    let (store, row, parsed) = recorded().await;
    let recent = Arc::new(Recent::default());
    assert!(recent.get(row).is_none(), "the webhooks kept nothing");
    planned(&store, Some(recent.clone())).await;
    let kept = recent.get(row).expect("intake kept what it parsed");
    assert_eq!(kept.event_id, parsed.event_id);
    assert_eq!(kept.order.as_ref().unwrap().totals.total, parsed.order.as_ref().unwrap().totals.total);
    // The rules learn the same from it as from the store.
    let (from_store, _, _) = recorded().await;
    assert_eq!(missing_order_amount(&store, Some(recent)).await, missing_order_amount(&from_store, None).await);
}
