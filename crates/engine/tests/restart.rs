//! A restart of the rules: the board is rebuilt from the journal without judging the past;
//! a restart alone raises, reopens, clears and audits nothing.

mod common;

use std::path::Path;
use std::sync::Arc;

use handoff_contract::Contract;
use handoff_engine::{Clock, Intake, ManualClock, RulesWatch};
use handoff_store::memory::MemoryStore;
use handoff_store::{AttemptRecord, CheckpointMove, ExceptionRow, NewEvent, Outcome, Store};
use jiff::{SignedDuration, Timestamp};

const ORDERS: usize = 300;

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn contract() -> Arc<Contract> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
    Arc::new(Contract::parse(&text, Path::new("handoff.toml")).unwrap())
}

fn event(id: &str, kind: &str, order_ref: &str, at: Timestamp) -> NewEvent {
    common::order_event(id, kind, order_ref, at)
}

/// Orders placed and created in the ERP within a minute, a tenth of them cancelled in both,
/// and one order (`#stuck`) whose create the ERP never acknowledges.
async fn history(
    store: &MemoryStore,
    c: &Arc<Contract>,
    clock: &Arc<ManualClock>,
    rules: Option<&mut RulesWatch<MemoryStore>>,
) {
    for i in 0..ORDERS {
        store.record_event(event(&format!("c{i}"), "order.created", &format!("#{i}"), t0())).await.unwrap();
    }
    store.record_event(event("stuck", "order.created", "#stuck", t0())).await.unwrap();
    let intake = Intake::new(c.clone(), store.clone(), clock.clone());
    while intake.step().await.unwrap() > 0 {}
    clock.advance(SignedDuration::from_secs(30));
    for i in (0..ORDERS).step_by(10) {
        store.record_event(event(&format!("x{i}"), "order.cancelled", &format!("#{i}"), clock.now())).await.unwrap();
    }
    while intake.step().await.unwrap() > 0 {}
    clock.advance(SignedDuration::from_secs(30));
    // Creates first, then the cancels queued behind them.
    for _ in 0..2 {
        for command in store.claim_due(clock.now(), 10_000).await.unwrap() {
            let outcome = match command.order_ref.as_str() {
                "#stuck" => Outcome::Retry {
                    at: clock.now() + SignedDuration::from_hours(24 * 365),
                    ambiguous: false,
                    error: "503".into(),
                },
                _ => Outcome::Acknowledged { record_id: format!("SO-{}", command.order_ref) },
            };
            let (started_at, finished_at) = (clock.now(), clock.now());
            let record = AttemptRecord { command, started_at, finished_at, outcome, note: None, mapping: None };
            store.record_attempt(record).await.unwrap();
        }
    }
    if let Some(rules) = rules {
        rules.step().await.unwrap();
        clock.advance(SignedDuration::from_mins(20));
        let stepped = rules.step().await.unwrap();
        assert_eq!(stepped.raised, 1, "the stuck order's Missing Order, raised live");
    }
}

/// The exceptions and every order's audit lines: what a restart must leave as they are.
async fn written(store: &MemoryStore) -> (Vec<ExceptionRow>, usize) {
    let exceptions = store.exceptions(None, 100_000).await.unwrap();
    let mut audit = 0;
    for order_ref in (0..ORDERS).map(|i| format!("#{i}")).chain(["#stuck".to_owned()]) {
        audit += store.order_timeline(order_ref).await.unwrap().audit.len();
    }
    (exceptions, audit)
}

fn same(a: &[ExceptionRow], b: &[ExceptionRow]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x.id, &x.state, x.updated_at) == (y.id, &y.state, y.updated_at))
}

#[tokio::test]
async fn a_restart_over_settled_history_raises_reopens_clears_and_audits_nothing() {
    let (store, c, clock) = (MemoryStore::new(), contract(), Arc::new(ManualClock::new(t0())));
    let mut live = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    history(&store, &c, &clock, Some(&mut live)).await;
    let before = written(&store).await;
    assert_eq!(before.0.len(), 1);
    assert_eq!(live.followed(), 1, "settled orders left the board: {}", live.followed());
    drop(live);

    // Ten days later, the hub starts again, twice.
    clock.advance(SignedDuration::from_hours(240));
    for _ in 0..2 {
        let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
        let stepped = rules.step().await.unwrap();
        assert_eq!((stepped.raised, stepped.cleared, stepped.auto_actions), (0, 0, 0), "{stepped:?}");
        assert_eq!(rules.followed(), 1, "only the order with an open exception is followed");
        let after = written(&store).await;
        assert!(same(&before.0, &after.0), "exceptions untouched: {:?}", after.0);
        assert_eq!(before.1, after.1, "no audit line written by a restart");
    }
}

#[tokio::test]
async fn a_first_start_over_history_judges_each_order_once_as_of_now() {
    // The hub ran without the rules (or before the checkpoint existed): no checkpoint.
    let (store, c, clock) = (MemoryStore::new(), contract(), Arc::new(ManualClock::new(t0())));
    history(&store, &c, &clock, None).await;
    clock.advance(SignedDuration::from_hours(240));
    let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    let stepped = rules.step().await.unwrap();
    assert_eq!((stepped.raised, stepped.cleared), (1, 0), "only the order still without its ERP order");
    let exceptions = store.exceptions(None, 100).await.unwrap();
    assert_eq!((exceptions.len(), exceptions[0].order_ref.as_str()), (1, "#stuck"));
    let settled_audit = store.order_timeline("#1".into()).await.unwrap().audit;
    assert!(settled_audit.iter().all(|a| !a.actor.starts_with("rule:")), "{settled_audit:?}");

    let before = written(&store).await;
    let mut again = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    let stepped = again.step().await.unwrap();
    assert_eq!((stepped.raised, stepped.cleared), (0, 0));
    let after = written(&store).await;
    assert!(same(&before.0, &after.0) && before.1 == after.1);
}

#[tokio::test]
async fn an_order_that_left_the_board_comes_back_with_its_history() {
    let (store, c, clock) = (MemoryStore::new(), contract(), Arc::new(ManualClock::new(t0())));
    let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    history(&store, &c, &clock, Some(&mut rules)).await;
    clock.advance(SignedDuration::from_hours(240));
    let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    rules.step().await.unwrap();
    // Order #1 settled long ago; the shop cancels it now and the ERP never hears of it: its
    // ERP record, learned from the journal, is what makes this a Rollback Gap.
    store.record_event(event("x1", "order.cancelled", "#1", clock.now())).await.unwrap();
    let shadow = {
        let mut shadowed = (*c).clone();
        shadowed.flows.get_mut("orders-to-erp").unwrap().shadow = true;
        Arc::new(shadowed)
    };
    Intake::new(shadow, store.clone(), clock.clone()).step().await.unwrap();
    assert_eq!(rules.step().await.unwrap().raised, 0);
    assert_eq!(rules.followed(), 2);
    clock.advance(SignedDuration::from_mins(16));
    let stepped = rules.step().await.unwrap();
    assert_eq!(stepped.raised, 1);
    let x = store.exceptions(Some(handoff_model::ExceptionState::Open), 10).await.unwrap();
    assert!(x.iter().any(|x| x.order_ref == "#1" && x.pattern == "rollback_gap"), "{x:?}");
}

#[tokio::test]
async fn a_checkpoint_keeps_the_orders_followed_and_one_cut_short_still_rebuilds() {
    let (store, c, clock) = (MemoryStore::new(), contract(), Arc::new(ManualClock::new(t0())));
    let mut live = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    history(&store, &c, &clock, Some(&mut live)).await;
    // Twenty minutes on, the live step's checkpoint took away the orders that settled.
    let kept = store.rules_checkpoint().await.unwrap().unwrap();
    assert_eq!(kept.orders, ["#stuck"]);
    let before = written(&store).await;
    drop(live);

    // A stop cut a move short after its joins: the store keeps settled orders too.
    let joined = vec!["#1".to_owned(), "#10".to_owned()];
    store.move_rules_checkpoint(CheckpointMove { position: kept.position, joined, left: vec![] }).await.unwrap();
    clock.advance(SignedDuration::from_hours(240));
    let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    let stepped = rules.step().await.unwrap();
    assert_eq!((stepped.raised, stepped.cleared, stepped.auto_actions), (0, 0, 0), "{stepped:?}");
    assert_eq!(rules.followed(), 1, "the settled orders kept were rebuilt and left again");
    let after = written(&store).await;
    assert!(same(&before.0, &after.0) && before.1 == after.1, "a restart wrote nothing");
    assert_eq!(
        store.rules_checkpoint().await.unwrap().unwrap().orders,
        ["#stuck"],
        "the catch-up's move took them away"
    );
}
