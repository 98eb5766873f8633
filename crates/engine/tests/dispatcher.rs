//! The dispatcher's decisions against a scripted target, on a manual clock.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use handoff_contract::Contract;
use handoff_engine::{Ack, BoxFuture, Clock, DeliveryError, Dispatcher, Intake, ManualClock, Rng, Target};
use handoff_model::{CommandState, EventKind};
use handoff_store::postgres::{PgOptions, PgStore, testing};
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use handoff_store::{Command, NewEvent, Outcome, Store};
use jiff::{SignedDuration, Timestamp};

/// Answers sends and read-backs from scripts, and counts the calls.
#[derive(Default)]
struct Scripted {
    sends: Mutex<VecDeque<Result<Ack, DeliveryError>>>,
    reads: Mutex<VecDeque<Result<Option<Ack>, DeliveryError>>>,
    calls: Mutex<Vec<&'static str>>,
}

impl Target for Scripted {
    fn send<'a>(&'a self, _: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        self.calls.lock().unwrap().push("send");
        let r = self.sends.lock().unwrap().pop_front().expect("a scripted send");
        Box::pin(async move { r })
    }
    fn read_back<'a>(&'a self, _: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        self.calls.lock().unwrap().push("read_back");
        let r = self.reads.lock().unwrap().pop_front().expect("a scripted read-back");
        Box::pin(async move { r })
    }
    fn honours_idempotency_keys(&self) -> bool {
        true
    }
}

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

struct World<S = SqliteStore> {
    _dir: Option<tempfile::TempDir>,
    store: S,
    clock: Arc<ManualClock>,
    target: Arc<Scripted>,
    dispatcher: Dispatcher<S>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    World { _dir: Some(dir), ..world_on(store).await }
}

/// The example contract's order #1001 planned on `store`: one command to the ERP, due at `t0`.
async fn world_on<S: Store + Clone>(store: S) -> World<S> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
    let contract = Arc::new(Contract::parse(&text, Path::new("handoff.toml")).unwrap());
    let clock = Arc::new(ManualClock::new(t0()));
    let target = Arc::new(Scripted::default());
    let targets = [("erp".to_owned(), target.clone() as Arc<dyn Target>)].into_iter().collect();
    let payload =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/events/order-created.json"))
            .unwrap();
    let event = NewEvent {
        system: "shop".into(),
        event_id: "e1".into(),
        kind: EventKind::OrderCreated,
        order_ref: "#1001".into(),
        received_at: t0(),
        payload,
        raw: None,
    };
    store.record_event(event).await.unwrap();
    Intake::new(contract.clone(), store.clone(), clock.clone()).step().await.unwrap();
    let dispatcher = Dispatcher::new(contract, store.clone(), targets, clock.clone(), Rng::seeded(1));
    World { _dir: None, store, clock, target, dispatcher }
}

impl<S: Store + Clone> World<S> {
    async fn attempt(&self) -> Outcome {
        let mut claimed = self.store.claim_due(self.clock.now(), 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "one command due");
        let record = self.dispatcher.attempt(claimed.remove(0)).await;
        let outcome = record.outcome.clone();
        self.dispatcher.record(record).await;
        outcome
    }
}

fn transient(ambiguous: bool, retry_after: Option<SignedDuration>) -> DeliveryError {
    DeliveryError::Transient { reason: "boom".into(), ambiguous, retry_after }
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_retry_after() {
    let w = world().await;
    w.target.sends.lock().unwrap().push_back(Err(transient(false, Some(SignedDuration::from_secs(90)))));
    let Outcome::Throttled { at, ambiguous, .. } = w.attempt().await else { panic!("throttled") };
    assert!(!ambiguous);
    assert!(at >= t0().checked_add(SignedDuration::from_secs(90)).unwrap());
    assert!(w.store.claim_due(t0().checked_add(SignedDuration::from_secs(89)).unwrap(), 10).await.unwrap().is_empty());
    let again = w.store.claim_due(at, 10).await.unwrap();
    assert_eq!((again[0].attempts, again[0].budget_attempts), (2, 1), "the 429 spent no attempt of the budget");
}

#[tokio::test]
async fn after_a_restart_in_flight_commands_wait_for_their_own_targets_settle_only() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
    // The ERP settles in 5 s; the shop keeps the 60 s default, and a third system takes 10 min.
    let text = text.replace("settle = \"60s\"", "settle = \"5s\"")
        + "\n[systems.slow]\nrole = \"erp\"\nconnector = \"http-json\"\nsettle = \"10m\"\n";
    let contract = Contract::parse(&text, Path::new("handoff.toml")).unwrap();
    assert_eq!(contract.settle_of("erp"), SignedDuration::from_secs(5));
    let payload =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/events/order-created.json"))
            .unwrap();
    {
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
        let event = NewEvent {
            system: "shop".into(),
            event_id: "e1".into(),
            kind: EventKind::OrderCreated,
            order_ref: "#1001".into(),
            received_at: t0(),
            payload,
            raw: None,
        };
        store.record_event(event).await.unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        Intake::new(Arc::new(contract.clone()), store.clone(), clock).step().await.unwrap();
        assert_eq!(store.claim_due(t0(), 10).await.unwrap().len(), 1, "in flight when the hub is killed");
    }
    let restarted = t0() + SignedDuration::from_mins(3);
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    assert_eq!(handoff_engine::dispatcher::recover_in_flight(&store, &contract, restarted).await.unwrap(), 1);
    let command = store.order_timeline("#1001".into()).await.unwrap().commands.remove(0);
    assert_eq!((command.target.as_str(), command.ambiguous), ("erp", true));
    assert_eq!(command.next_attempt_at, restarted + SignedDuration::from_secs(5));
}

#[tokio::test]
async fn an_ambiguous_outcome_is_read_back_before_any_resend() {
    let w = world().await;
    w.target.sends.lock().unwrap().push_back(Err(transient(true, None)));
    w.target.reads.lock().unwrap().push_back(Ok(None));
    w.target.sends.lock().unwrap().push_back(Ok(Ack { record_id: "SO-1".into() }));
    assert!(matches!(w.attempt().await, Outcome::Retry { ambiguous: true, .. }));
    w.clock.advance(SignedDuration::from_mins(10));
    assert!(matches!(w.attempt().await, Outcome::Acknowledged { .. }));
    assert_eq!(*w.target.calls.lock().unwrap(), vec!["send", "read_back", "send"]);
}

#[tokio::test]
async fn a_failed_read_back_keeps_the_outcome_unknown_and_does_not_resend() {
    let w = world().await;
    w.target.sends.lock().unwrap().push_back(Err(transient(true, None)));
    w.target.reads.lock().unwrap().push_back(Err(transient(false, None)));
    w.attempt().await;
    w.clock.advance(SignedDuration::from_mins(10));
    assert!(matches!(w.attempt().await, Outcome::Retry { ambiguous: true, .. }));
    assert_eq!(*w.target.calls.lock().unwrap(), vec!["send", "read_back"]);
}

#[tokio::test]
async fn a_spent_budget_dead_letters_and_opens_an_exception() {
    let w = world().await;
    // The example contract allows 12 attempts within 24 h.
    for _ in 0..12 {
        w.target.sends.lock().unwrap().push_back(Err(transient(false, None)));
    }
    for n in 1..=12 {
        let outcome = w.attempt().await;
        if n < 12 {
            assert!(matches!(outcome, Outcome::Retry { .. }), "attempt {n}: {outcome:?}");
            w.clock.advance(SignedDuration::from_mins(6));
        } else {
            assert!(matches!(outcome, Outcome::DeadLettered { .. }), "attempt {n}: {outcome:?}");
        }
    }
    let exceptions = w.store.exceptions(Some(handoff_model::ExceptionState::Open), 10).await.unwrap();
    assert_eq!(exceptions.len(), 1);
    assert_eq!(exceptions[0].pattern, "dead_delivery");
}

impl<S: Store + Clone> World<S> {
    async fn command(&self) -> Command {
        self.store.order_timeline("#1001".into()).await.unwrap().commands.remove(0)
    }
}

/// How long the claims of the lease tests last, and how long their hub was paused since it
/// claimed.
const LEASE: Duration = Duration::from_secs(60);

fn claimed_a_lease_ago() -> Instant {
    Instant::now().checked_sub(LEASE).expect("the machine has been up longer than a lease")
}

/// A hub woken past its claim's lease (on a store several hubs claim from) sends nothing,
/// even to a target that would not refuse its fencing token: the command stays in flight,
/// untouched, until the lease has run out; whoever claims it then reads the target back first
/// and sends it once.
#[tokio::test]
async fn a_claim_past_its_lease_is_not_sent_and_its_next_claim_reads_back_first() {
    let Some(url) = testing::test_database_url() else { return };
    let schema = testing::TestSchema::create(&url).await.unwrap();
    let store = PgStore::open(&url, PgOptions { lease: LEASE, ..schema.options() }).await.unwrap();
    let w = world_on(store).await;
    let command = w.store.claim_due(w.clock.now(), 10).await.unwrap().remove(0);
    assert!(w.dispatcher.attempt_claimed(command, claimed_a_lease_ago()).await.is_none(), "not attempted");
    assert!(w.target.calls.lock().unwrap().is_empty(), "the target saw no request");
    let c = w.command().await;
    assert_eq!((c.state, c.attempts, c.ambiguous, c.last_error), (CommandState::InFlight, 1, false, None));
    assert!(w.store.claim_due(w.clock.now(), 10).await.unwrap().is_empty(), "held by its claim until the lease ends");

    w.clock.advance(SignedDuration::try_from(LEASE).unwrap() + SignedDuration::from_secs(1));
    let again = w.store.claim_due(w.clock.now(), 10).await.unwrap().remove(0);
    assert_eq!((again.attempts, again.ambiguous), (2, true), "taken over, its outcome unknown");
    w.target.reads.lock().unwrap().push_back(Ok(None));
    w.target.sends.lock().unwrap().push_back(Ok(Ack { record_id: "SO-1".into() }));
    let record = w.dispatcher.attempt_claimed(again, Instant::now()).await.expect("sent within its lease");
    w.dispatcher.record(record).await;
    assert_eq!(*w.target.calls.lock().unwrap(), vec!["read_back", "send"]);
    let c = w.command().await;
    assert_eq!((c.state, c.record_id.as_deref()), (CommandState::Acknowledged, Some("SO-1")));
    drop(w);
    schema.drop().await.unwrap();
}

/// SQLite's claims are one process's: none is ever taken over, so however long ago a command
/// was claimed, it is sent.
#[tokio::test]
async fn on_sqlite_a_claim_is_sent_however_long_ago_it_was_made() {
    let w = world().await;
    w.target.sends.lock().unwrap().push_back(Ok(Ack { record_id: "SO-1".into() }));
    let command = w.store.claim_due(w.clock.now(), 10).await.unwrap().remove(0);
    let record = w.dispatcher.attempt_claimed(command, claimed_a_lease_ago()).await.expect("attempted");
    w.dispatcher.record(record).await;
    assert_eq!(*w.target.calls.lock().unwrap(), vec!["send"]);
    assert_eq!(w.command().await.state, CommandState::Acknowledged);
}
