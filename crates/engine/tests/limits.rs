//! Per-target limits: a target that keeps answering 429 spends no attempt and holds up no
//! other target; an attempt whose task panics is read back, never left in flight.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use handoff_contract::Contract;
use handoff_engine::{Ack, BoxFuture, DeliveryError, Dispatcher, Intake, Rng, SystemClock, Target, Targets};
use handoff_model::EventKind;
use handoff_store::memory::MemoryStore;
use handoff_store::{Command, NewEvent, Store};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

const ORDERS: usize = 40;
const REFUSALS: usize = 1_000;

const CONTRACT: &str = r#"
[systems.shop]
role = "storefront"
connector = "http-json"
[systems.noisy]
role = "erp"
connector = "http-json"
base_url = "http://127.0.0.1:9"
max_in_flight = 2
settle = "1ms"
[systems.calm]
role = "erp"
connector = "http-json"
base_url = "http://127.0.0.1:9"
settle = "1ms"
[flows.to-noisy]
from = "shop"
to = "noisy"
events = ["order.created"]
proof = "record-id"
deadline = "15m"
retry = { attempts = 3, backoff_base = "1ms", backoff_cap = "1ms", deadline = "1h" }
[flows.to-calm]
from = "shop"
to = "calm"
events = ["order.created"]
proof = "record-id"
deadline = "15m"
retry = { attempts = 3, backoff_base = "1ms", backoff_cap = "1ms", deadline = "1h" }
"#;

/// Answers 429 (every other one with Retry-After 1 ms) to its first `refusals` sends, or panics on its first send,
/// then applies; counts what it did.
#[derive(Default)]
struct Noisy {
    refusals: usize,
    panic_first: bool,
    sends: AtomicUsize,
    refused: AtomicUsize,
    applied: AtomicUsize,
}

impl Target for Noisy {
    fn send<'a>(&'a self, c: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        let n = self.sends.fetch_add(1, Ordering::SeqCst);
        if self.panic_first && n == 0 {
            panic!("a connector bug");
        }
        let refused = n < self.refusals;
        Box::pin(async move {
            if refused {
                self.refused.fetch_add(1, Ordering::SeqCst);
                // Every other 429 says nothing of when to come back: it spends no attempt either.
                let retry_after = n.is_multiple_of(2).then(|| SignedDuration::from_millis(1));
                return Err(DeliveryError::Throttled { reason: "429 Too Many Requests".into(), retry_after });
            }
            self.applied.fetch_add(1, Ordering::SeqCst);
            Ok(Ack { record_id: format!("R-{}", c.order_ref) })
        })
    }
    fn read_back<'a>(&'a self, c: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        // Nothing a panicking send was about to do ever landed.
        let _ = c;
        Box::pin(async move { Ok(None) })
    }
    fn honours_idempotency_keys(&self) -> bool {
        true
    }
}

/// Counts completions, and how many 429s the noisy target had answered at each.
struct Calm {
    noisy: Arc<Noisy>,
    seen: std::sync::Mutex<Vec<usize>>,
}

impl Target for Calm {
    fn send<'a>(&'a self, c: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        self.seen.lock().unwrap().push(self.noisy.refused.load(Ordering::SeqCst));
        Box::pin(async move { Ok(Ack { record_id: format!("C-{}", c.order_ref) }) })
    }
    fn read_back<'a>(&'a self, _: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        Box::pin(async { Ok(None) })
    }
    fn honours_idempotency_keys(&self) -> bool {
        true
    }
}

fn order_event(i: usize) -> NewEvent {
    let order_ref = format!("#{i}");
    let payload = json!({
        "event_id": format!("e{i}"), "kind": "order.created", "order_ref": order_ref,
        "occurred_at": "2026-11-26T10:00:00Z", "version": 1,
        "order": {"order_ref": order_ref, "customer": {"email": "ada@example.com"}, "currency": "EUR",
                  "placed_at": "2026-11-26T10:00:00Z",
                  "lines": [{"sku": "A", "quantity": 1, "unit_price": "5.00"}],
                  "totals": {"subtotal": "5.00", "total": "5.00"}},
    });
    NewEvent {
        system: "shop".into(),
        event_id: format!("e{i}"),
        kind: EventKind::OrderCreated,
        order_ref,
        received_at: Timestamp::now(),
        payload: payload.to_string(),
        raw: None,
    }
}

async fn orders(store: &MemoryStore, contract: &Arc<Contract>, n: usize) {
    for i in 0..n {
        store.record_event(order_event(i)).await.unwrap();
    }
    let intake = Intake::new(contract.clone(), store.clone(), Arc::new(SystemClock));
    while intake.step().await.unwrap() > 0 {}
    let counts = store.command_counts().await.unwrap();
    assert_eq!(counts, vec![("pending".to_owned(), 2 * n as u64)], "one command per order and target");
}

/// Runs the dispatcher until every command is acknowledged or dead-lettered (a liveness guard
/// of a minute, not a timing assertion).
async fn drain(store: &MemoryStore, contract: &Arc<Contract>, targets: Targets) {
    let dispatcher =
        Arc::new(Dispatcher::new(contract.clone(), store.clone(), targets, Arc::new(SystemClock), Rng::seeded(1)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(dispatcher.run(64, stopped));
    for _ in 0..6_000 {
        let counts = store.command_counts().await.unwrap();
        if counts.iter().all(|(state, _)| state == "acknowledged" || state == "dead_lettered") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_429s_dead_letter_nothing_and_hold_up_no_other_target() {
    let contract = Arc::new(Contract::parse(CONTRACT, Path::new("handoff.toml")).unwrap());
    let store = MemoryStore::new();
    orders(&store, &contract, ORDERS).await;
    let noisy = Arc::new(Noisy { refusals: REFUSALS, ..Noisy::default() });
    let calm = Arc::new(Calm { noisy: noisy.clone(), seen: Default::default() });
    let targets: Targets =
        [("noisy".to_owned(), noisy.clone() as Arc<dyn Target>), ("calm".to_owned(), calm.clone() as Arc<dyn Target>)]
            .into_iter()
            .collect();
    drain(&store, &contract, targets).await;

    assert_eq!(noisy.refused.load(Ordering::SeqCst), REFUSALS, "1,000 consecutive 429s were answered");
    assert!(store.dead_letters(10).await.unwrap().is_empty(), "no 429 spends an attempt of a budget of 3");
    assert_eq!(noisy.applied.load(Ordering::SeqCst), ORDERS);
    let seen = calm.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), ORDERS, "the calm target completed every order");
    let waited = seen.iter().filter(|&&refused| refused >= REFUSALS).count();
    assert_eq!(waited, 0, "no calm order waited for the noisy target's 429s to stop: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_that_panics_is_read_back_and_delivered_not_left_in_flight() {
    let contract = Arc::new(Contract::parse(CONTRACT, Path::new("handoff.toml")).unwrap());
    let store = MemoryStore::new();
    orders(&store, &contract, 1).await;
    let noisy = Arc::new(Noisy { panic_first: true, ..Noisy::default() });
    let calm = Arc::new(Calm { noisy: noisy.clone(), seen: Default::default() });
    let targets: Targets =
        [("noisy".to_owned(), noisy.clone() as Arc<dyn Target>), ("calm".to_owned(), calm as Arc<dyn Target>)]
            .into_iter()
            .collect();
    drain(&store, &contract, targets).await;
    let timeline = store.order_timeline("#0".into()).await.unwrap();
    let command = timeline.commands.iter().find(|c| c.target == "noisy").unwrap();
    assert_eq!(command.state.as_str(), "acknowledged");
    let first = timeline.attempts.iter().find(|a| a.command_id == command.id).unwrap();
    assert_eq!(first.outcome, "ambiguous");
    assert!(first.detail.as_deref().unwrap_or("").contains("panicked"), "{first:?}");
    assert_eq!(noisy.sends.load(Ordering::SeqCst), 2, "read back (nothing landed), then sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_to_a_system_no_longer_in_the_contract_is_dead_lettered_not_stuck() {
    let with_gone = format!(
        "{CONTRACT}\n[systems.gone]\nrole = \"erp\"\nconnector = \"http-json\"\nbase_url = \"http://127.0.0.1:9\"\n\
         [flows.to-gone]\nfrom = \"shop\"\nto = \"gone\"\nevents = [\"order.created\"]\nproof = \"record-id\"\n\
         deadline = \"15m\"\nretry = {{ attempts = 3, backoff_base = \"1ms\", backoff_cap = \"1ms\", deadline = \"1h\" }}\n"
    );
    let before = Arc::new(Contract::parse(&with_gone, Path::new("handoff.toml")).unwrap());
    let store = MemoryStore::new();
    let intake = Intake::new(before, store.clone(), Arc::new(SystemClock));
    store.record_event(order_event(0)).await.unwrap();
    while intake.step().await.unwrap() > 0 {}
    let contract = Arc::new(Contract::parse(CONTRACT, Path::new("handoff.toml")).unwrap());
    let noisy = Arc::new(Noisy::default());
    let calm = Arc::new(Calm { noisy: noisy.clone(), seen: Default::default() });
    let targets: Targets =
        [("noisy".to_owned(), noisy as Arc<dyn Target>), ("calm".to_owned(), calm as Arc<dyn Target>)]
            .into_iter()
            .collect();
    drain(&store, &contract, targets).await;
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.iter().map(|c| c.target.as_str()).collect::<Vec<_>>(), vec!["gone"]);
}
