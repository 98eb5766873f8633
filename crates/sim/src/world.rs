//! The deterministic simulation: the real engine (intake, dispatcher, retry, read-back) over a
//! real store, driven by a simulated clock and one seeded RNG, against simulated sources and
//! ERPs that misbehave; every run judged by the history checker. Everything happens on one
//! thread in simulated time, so a seed always gives the same trace.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use handoff_connectors::signature::{SignatureError, sign_timestamped};
use handoff_connectors::{HANDOFF_SIGNATURE, Inbound, SourceError};
use handoff_contract::Contract;
use handoff_engine::recent::Recent;
use handoff_engine::{Clock, Dispatcher, Intake, ManualClock, Rng, Safety, Target, Targets};
use handoff_store::memory::MemoryStore;
use handoff_store::{AttemptRecord, Outcome, Recorded, Store};
use jiff::{SignedDuration, Timestamp};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::checker::{Checker, Violation};
use crate::profile::FaultProfile;
use crate::system::{Faults, MockSystem, Request};
use crate::target::SimTarget;

/// The simulated stack: a storefront and a marketplace sending orders, a payment processor,
/// an ERP with idempotency keys (NetSuite-like) and one without (Odoo-like).
pub const CONTRACT: &str = r#"
[systems.shop]
role = "storefront"
connector = "http-json"
base_url = "http://shop.sim"
timeout = "10s"
webhook_secrets = ["sim-secret"]

[systems.market]
role = "marketplace"
connector = "http-json"
webhook_secrets = ["sim-secret"]

[systems.pay]
role = "payment"
connector = "http-json"
webhook_secrets = ["sim-secret"]

[systems.erp]
role = "erp"
connector = "http-json"
base_url = "http://erp.sim"
timeout = "10s"
webhook_secrets = ["sim-secret"]

[systems.erp2]
role = "erp"
connector = "http-json"
base_url = "http://erp2.sim"
timeout = "10s"
idempotency_keys = false

[flows.shop-orders-to-erp]
from = "shop"
to = "erp"
events = ["order.created", "order.updated", "order.cancelled"]
proof = "record-id"
deadline = "15m"
retry = { attempts = 100, backoff_base = "2s", backoff_cap = "30m", jitter = "full", deadline = "72h" }

[flows.shop-orders-to-erp2]
from = "shop"
to = "erp2"
events = ["order.created", "order.updated", "order.cancelled"]
proof = "record-id"
deadline = "15m"
retry = { attempts = 100, backoff_base = "2s", backoff_cap = "30m", jitter = "full", deadline = "72h" }

[flows.market-orders-to-erp]
from = "market"
to = "erp"
events = ["order.created", "order.updated", "order.cancelled"]
proof = "record-id"
deadline = "15m"
retry = { attempts = 100, backoff_base = "2s", backoff_cap = "30m", jitter = "full", deadline = "72h" }

[flows.shop-refunds-to-erp]
from = "shop"
to = "erp"
events = ["refund.created"]
proof = "record-id"
deadline = "30m"
retry = { attempts = 100, backoff_base = "2s", backoff_cap = "30m", jitter = "full", deadline = "72h" }

[flows.fulfillments-to-shop]
from = "erp"
to = "shop"
events = ["fulfillment.created"]
proof = "read-back"
deadline = "30m"
retry = { attempts = 100, backoff_base = "2s", backoff_cap = "30m", jitter = "full", deadline = "72h" }
"#;

/// What every simulated source signs its webhooks with.
const SECRET: &str = "sim-secret";
/// The field both ERPs require; orders planted without it must end as dead letters.
const REQUIRED_FIELD: &str = "customer.email";
/// Orders arrive over one simulated day.
const ORDER_WINDOW_S: i64 = 24 * 3600;
/// The ERP ships an order within this long of its creation.
const FULFIL_WITHIN_S: i64 = 12 * 3600;
/// Late webhooks arrive at most this long after their event.
const MAX_LATE_S: i64 = 6 * 3600;
/// How long a crashed hub stays down.
const RESTART_S: i64 = 30;
/// After the faults stop, the backlog must drain within this (the liveness promise).
pub const DRAIN_LIMIT_S: i64 = 2 * 3600;
/// A run still busy this long after the faults stopped, or after this many steps, is stuck.
const SETTLE_LIMIT_S: i64 = 7 * 24 * 3600;
const MAX_STEPS: u64 = 5_000_000;
/// During the faults, at least this share of accepted orders must reach the ERP.
pub const THROUGHPUT_FLOOR: f64 = 0.5;
/// A lying store syncs this often; what it acknowledged since is lost on power loss.
const LYING_SYNC_S: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    /// Acknowledges writes before they are durable; a crash is a power loss (negative control).
    AcknowledgingBeforeDurable,
    Sqlite,
    /// The PostgreSQL database at this URL, in a schema of its own created for the run and
    /// dropped after it.
    Postgres(String),
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub seed: u64,
    pub orders: usize,
    pub profile: FaultProfile,
    pub safety: Safety,
    pub store: StoreKind,
    /// Keep every traced step as text (to diff two runs), not only their hash.
    pub keep_trace: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SimReport {
    pub seed: u64,
    pub orders: usize,
    pub trace_hash: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub sometimes: BTreeMap<&'static str, u64>,
    pub violations: Vec<Violation>,
    pub deliveries: u64,
    pub attempts: u64,
    /// Simulated seconds from the end of the faults until nothing was left to deliver.
    pub drained_after_s: i64,
    /// The hub's timeline of the first orders in violation, to start debugging from.
    pub evidence: Vec<String>,
    /// Every traced step, when asked for (`SimOptions::keep_trace`).
    pub trace: Vec<String>,
}

/// What the source learns when the hub acknowledges an event, and so what must follow.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Create,
    Cancel,
    Fulfillment(String),
    Refund(String),
    /// The order lacks the required field: it must become a dead letter, never a record.
    Refused,
    /// The cancellation of such an order: if it came first, no dead letter is needed.
    RefusedCancel,
    /// A stale replay of a delivery: the hub must refuse it.
    Replay,
    Nothing,
}

enum Ev {
    /// `signature` is set for a replay, which carries the original delivery's signature;
    /// every other delivery is signed when it is sent.
    Deliver {
        system: &'static str,
        order_ref: String,
        body: String,
        expect: Expect,
        tries: u32,
        signature: Option<String>,
    },
    Record {
        generation: u64,
        record: Box<AttemptRecord>,
    },
    LateApply {
        system: Arc<MockSystem>,
        request: Box<Request>,
    },
    Fulfil {
        order_ref: String,
    },
    Crash,
    Restart,
    OutageStart,
    OutageEnd,
    FaultsEnd,
    Sync,
}

impl Ev {
    fn name(&self) -> &'static str {
        match self {
            Ev::Deliver { .. } => "deliver",
            Ev::Record { .. } => "record",
            Ev::LateApply { .. } => "late-apply",
            Ev::Fulfil { .. } => "fulfil",
            Ev::Crash => "crash",
            Ev::Restart => "restart",
            Ev::OutageStart => "outage-start",
            Ev::OutageEnd => "outage-end",
            Ev::FaultsEnd => "faults-end",
            Ev::Sync => "sync",
        }
    }
}

struct Scheduled(Timestamp, u64, Ev);

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// Runs one seed to completion and judges it.
///
/// # Panics
/// When its store cannot be opened (a simulation without its store proves nothing).
pub async fn run(options: &SimOptions) -> SimReport {
    match &options.store {
        StoreKind::Memory => World::new(options, MemoryStore::new(), None).run().await,
        StoreKind::AcknowledgingBeforeDurable => {
            let store = MemoryStore::acknowledging_before_durable();
            World::new(options, store.clone(), Some(store)).run().await
        }
        StoreKind::Sqlite => {
            let dir = tempfile::tempdir().expect("a scratch directory");
            let store = handoff_store::sqlite::SqliteStore::open(dir.path(), Default::default()).expect("a store");
            World::new(options, store, None).run().await
        }
        StoreKind::Postgres(url) => {
            use handoff_store::postgres::{PgStore, testing::TestSchema};
            let schema = TestSchema::create(url).await.expect("a schema of the run's own");
            let store = PgStore::open(url, schema.options()).await.expect("a PostgreSQL store");
            let report = World::new(options, store.clone(), None).run().await;
            drop(store);
            schema.drop().await.expect("dropping the run's schema");
            report
        }
    }
}

struct World<S: Store + Clone> {
    options: SimOptions,
    rng: ChaCha8Rng,
    clock: Arc<ManualClock>,
    contract: Arc<Contract>,
    store: S,
    lying: Option<MemoryStore>,
    systems: BTreeMap<&'static str, Arc<MockSystem>>,
    targets: BTreeMap<&'static str, Arc<SimTarget>>,
    intake: Intake<S>,
    /// The hub's parsed webhook events, which intake plans from: lost at each crash.
    recent: Arc<Recent>,
    dispatcher: Arc<Dispatcher<S>>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    steps: u64,
    hub_up: bool,
    generation: u64,
    faults_on: bool,
    faults_end: Timestamp,
    /// When the backlog was first empty after the faults ended.
    drained_at: Option<Timestamp>,
    /// Accepted orders that had reached the ERP when the faults ended.
    delivered_during_faults: usize,
    erp_orders: Checker,
    erp2_orders: Checker,
    shop_fulfillments: Checker,
    refused: HashSet<String>,
    refused_cancelled: HashSet<String>,
    accepted_creates_in_window: HashSet<String>,
    recorded_in: HashMap<(String, String), u64>,
    create_recorded: HashSet<String>,
    in_flight: HashMap<String, u32>,
    trace: DefaultHasher,
    report: SimReport,
}

fn at(start: Timestamp, s: i64) -> Timestamp {
    start.checked_add(SignedDuration::from_secs(s)).expect("simulated time stays in range")
}

impl<S: Store + Clone> World<S> {
    fn new(options: &SimOptions, store: S, lying: Option<MemoryStore>) -> Self {
        let start: Timestamp = "2026-01-05T00:00:00Z".parse().expect("a valid start");
        let clock = Arc::new(ManualClock::new(start));
        let contract = Arc::new(Contract::parse(CONTRACT, Path::new("simulation contract")).expect("a valid contract"));
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let p = &options.profile;
        let erp_faults = Faults {
            lost_ack: p.lost_ack,
            lost_request: p.lost_request,
            slow_ack: p.slow_ack,
            slow_ack_ms: 15_000,
            error_after_apply: p.error_after_apply,
            throttle: p.throttle,
            retry_after_s: 30,
            outage: false,
            required_fields: vec![REQUIRED_FIELD.into()],
            idempotency_keys: true,
        };
        let mut systems = BTreeMap::new();
        let mut targets = BTreeMap::new();
        let mut engine_targets: Targets = HashMap::new();
        for (name, keys) in [("erp", true), ("erp2", false), ("shop", true)] {
            let faults = Faults { idempotency_keys: keys, ..erp_faults.clone() };
            let system = Arc::new(MockSystem::new(name, faults, rng.random()));
            let target = Arc::new(SimTarget::new(system.clone(), 10_000, keys));
            engine_targets.insert(name.to_owned(), target.clone() as Arc<dyn Target>);
            systems.insert(name, system);
            targets.insert(name, target);
        }
        let safety = options.safety;
        let recent = Arc::new(Recent::default());
        let intake =
            Intake::new(contract.clone(), store.clone(), clock.clone()).with_safety(safety).with_recent(recent.clone());
        let dispatcher =
            Dispatcher::new(contract.clone(), store.clone(), engine_targets, clock.clone(), Rng::seeded(rng.random()))
                .with_safety(safety);
        World {
            options: options.clone(),
            rng,
            clock,
            contract,
            store,
            lying,
            systems,
            targets,
            intake,
            recent,
            dispatcher: Arc::new(dispatcher),
            queue: BinaryHeap::new(),
            seq: 0,
            steps: 0,
            hub_up: true,
            generation: 0,
            faults_on: true,
            faults_end: start,
            drained_at: None,
            delivered_during_faults: 0,
            erp_orders: Checker::new(),
            erp2_orders: Checker::new(),
            shop_fulfillments: Checker::new(),
            refused: HashSet::new(),
            refused_cancelled: HashSet::new(),
            accepted_creates_in_window: HashSet::new(),
            recorded_in: HashMap::new(),
            create_recorded: HashSet::new(),
            in_flight: HashMap::new(),
            trace: DefaultHasher::new(),
            report: SimReport { seed: options.seed, orders: options.orders, ..SimReport::default() },
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn schedule(&mut self, when: Timestamp, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled(when, self.seq, ev)));
    }

    fn fault(&mut self, kind: &'static str) {
        *self.report.faults.entry(kind).or_default() += 1;
    }

    fn sometimes(&mut self, path: &'static str) {
        *self.report.sometimes.entry(path).or_default() += 1;
    }

    fn roll(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.random_bool(rate.min(1.0))
    }

    fn trace(&mut self, what: impl Hash + std::fmt::Debug) {
        what.hash(&mut self.trace);
        if self.options.keep_trace {
            self.report.trace.push(format!("{what:?}"));
        }
    }

    /// Plans every order's lifecycle and every fault of the run.
    fn plan_run(&mut self) {
        let start = self.now();
        let p = self.options.profile.clone();
        for i in 0..self.options.orders {
            let from_shop = self.rng.random_bool(0.7);
            let (system, order_ref) =
                if from_shop { ("shop", format!("#S{i}")) } else { ("market", format!("AMZ-{i}")) };
            let missing = self.roll(p.missing_field);
            if missing {
                self.fault("missing_field");
            }
            let t0 = self.rng.random_range(0..ORDER_WINDOW_S);
            let create_expect = if missing { Expect::Refused } else { Expect::Create };
            let body = order_event(&format!("{order_ref}-created"), "order.created", &order_ref, 1, missing);
            self.send(at(start, t0), system, &order_ref, body, create_expect.clone());
            if self.rng.random_bool(0.3) {
                let t = t0 + self.rng.random_range(60..3600);
                let body = order_event(&format!("{order_ref}-updated"), "order.updated", &order_ref, 2, missing);
                self.send(at(start, t), system, &order_ref, body, create_expect.clone());
            }
            let cancelled = self.rng.random_bool(0.15);
            if cancelled {
                let t = t0 + self.rng.random_range(60..7200);
                let body = json!({"event_id": format!("{order_ref}-cancelled"), "kind": "order.cancelled",
                                  "order_ref": order_ref, "occurred_at": at(start, t), "version": 3})
                .to_string();
                let expect = if missing { Expect::RefusedCancel } else { Expect::Cancel };
                self.send(at(start, t), system, &order_ref, body, expect);
            }
            let t = t0 + self.rng.random_range(0..300);
            let paid = json!({"event_id": format!("pay-{i}"), "kind": "order.paid", "order_ref": order_ref, "occurred_at": at(start, t)});
            self.send(at(start, t), "pay", &order_ref, paid.to_string(), Expect::Nothing);
            if from_shop && !missing && self.rng.random_bool(0.05) {
                let t = t0 + self.rng.random_range(3600..20 * 3600);
                let refund_id = format!("R-{i}");
                let body = json!({"event_id": format!("{order_ref}-refund"), "kind": "refund.created", "order_ref": order_ref,
                                  "occurred_at": at(start, t),
                                  "refund": {"refund_id": refund_id, "amount": {"amount": "5.50", "currency": "EUR"}}});
                self.send(at(start, t), system, &order_ref, body.to_string(), Expect::Refund(refund_id));
            }
            if from_shop && !missing && self.rng.random_bool(0.8) {
                let t = t0 + self.rng.random_range(2 * 3600..FULFIL_WITHIN_S);
                self.schedule(at(start, t), Ev::Fulfil { order_ref });
            }
        }
        for _ in 0..p.crashes {
            let t = self.rng.random_range(0..ORDER_WINDOW_S);
            self.schedule(at(start, t), Ev::Crash);
        }
        // Faults stop at the end of the order window (or of the outage); traffic goes on.
        let mut faults_end_s = ORDER_WINDOW_S;
        if p.outage_hours > 0 {
            let t = self.rng.random_range(0..ORDER_WINDOW_S - 6 * 3600);
            let end = t + i64::from(p.outage_hours) * 3600;
            self.schedule(at(start, t), Ev::OutageStart);
            self.schedule(at(start, end), Ev::OutageEnd);
            faults_end_s = faults_end_s.max(end);
        }
        self.faults_end = at(start, faults_end_s);
        self.schedule(self.faults_end, Ev::FaultsEnd);
        if self.lying.is_some() {
            let mut t = LYING_SYNC_S;
            while t < faults_end_s {
                self.schedule(at(start, t), Ev::Sync);
                t += LYING_SYNC_S;
            }
        }
    }

    /// A source sends an event: with webhook faults, it may arrive late, reordered, or more
    /// than once.
    fn send(&mut self, when: Timestamp, system: &'static str, order_ref: &str, body: String, expect: Expect) {
        let p = if self.faults_on { self.options.profile.clone() } else { FaultProfile::none() };
        let mut when = when;
        if self.roll(p.late) {
            self.fault("late_webhook");
            when = at(when, self.rng.random_range(3600..MAX_LATE_S));
        } else if self.roll(p.reordered) {
            self.fault("reordered_webhook");
            when = at(when, self.rng.random_range(60..1800));
        }
        let copies = if self.roll(p.triplicate) {
            self.fault("triplicate_webhook");
            3
        } else if self.roll(p.duplicate) {
            self.fault("duplicate_webhook");
            2
        } else {
            1
        };
        if self.roll(p.replay) {
            self.fault("stale_replay");
            let signature = Some(sign_timestamped(SECRET, when.as_second(), body.as_bytes()));
            let later = at(when, self.rng.random_range(600..7200));
            let order_ref = order_ref.to_owned();
            let ev = Ev::Deliver { system, order_ref, body: body.clone(), expect: Expect::Replay, tries: 0, signature };
            self.schedule(later, ev);
        }
        for copy in 0..copies {
            let delay = if copy == 0 { 0 } else { self.rng.random_range(0..20) };
            let ev = Ev::Deliver {
                system,
                order_ref: order_ref.to_owned(),
                body: body.clone(),
                expect: expect.clone(),
                tries: 0,
                signature: None,
            };
            self.schedule(at(when, delay), ev);
        }
    }

    async fn run(mut self) -> SimReport {
        self.plan_run();
        loop {
            if self.hub_up {
                self.hub_step().await;
            }
            let next_event = self.queue.peek().map(|Reverse(s)| s.0);
            let next_due = if self.hub_up { self.store.next_due_at().await.expect("store read") } else { None };
            let next_due = next_due.filter(|due| *due > self.now());
            let next = match (next_event, next_due) {
                (Some(e), Some(d)) => e.min(d),
                (Some(e), None) => e,
                (None, Some(d)) => d,
                (None, None) => break,
            };
            self.clock.set(next.max(self.now()));
            self.steps += 1;
            if self.now() > at(self.faults_end, SETTLE_LIMIT_S) || self.steps > MAX_STEPS {
                let detail = format!("the run had not settled after {} steps, at {}", self.steps, self.now());
                self.report.violations.push(Violation::Liveness { detail });
                break;
            }
            while self.queue.peek().is_some_and(|Reverse(s)| s.0 <= self.now()) {
                let Reverse(Scheduled(_, _, ev)) = self.queue.pop().expect("peeked");
                self.handle(ev).await;
            }
        }
        self.judge().await;
        self.report.trace_hash = self.trace.finish();
        self.report
    }

    /// The hub's workers, one round: plan the inbox, then send every due command.
    async fn hub_step(&mut self) {
        while self.intake.step().await.expect("intake step") > 0 {}
        let claimed = self.store.claim_due(self.now(), usize::MAX >> 1).await.expect("claim");
        if claimed.is_empty() && !self.faults_on && self.drained_at.is_none() {
            // Drained: nothing in flight, and nothing due later (what is due now and was not
            // claimed waits behind a dead letter of its order).
            let in_flight: u32 = self.in_flight.values().sum();
            let later = self.store.next_due_at().await.expect("store read").is_some_and(|due| due > self.now());
            if in_flight == 0 && !later {
                self.drained_at = Some(self.now());
            }
        }
        for command in claimed {
            let (id, order_ref, target) = (command.id, command.order_ref.clone(), command.target.clone());
            let record = self.dispatcher.attempt(command).await;
            self.report.attempts += 1;
            let target = self.targets[target.as_str()].clone();
            let (latency, late, throttled) = {
                let mut observed = target.observed.lock().expect("observed lock");
                let late: Vec<_> = observed.late.drain(..).collect();
                (observed.latency_ms.remove(&id).unwrap_or(0), late, observed.throttled.remove(&id))
            };
            for (after_ms, request) in late {
                let when = at(self.now(), (after_ms / 1000) as i64);
                self.schedule(when, Ev::LateApply { system: target.system.clone(), request: Box::new(request) });
            }
            if let Some(retry_after_s) = throttled
                && let Outcome::Retry { at: next, .. } | Outcome::Throttled { at: next, .. } = &record.outcome
            {
                if *next >= at(self.now(), retry_after_s as i64) {
                    self.sometimes("429 honoured");
                } else {
                    let detail = format!("retry at {next} sooner than Retry-After {retry_after_s}s");
                    self.report.violations.push(Violation::Protocol { order_ref: order_ref.clone(), detail });
                }
            }
            if record.note.as_deref().is_some_and(|n| n.contains("already applied")) {
                self.sometimes("read-back found the write");
            }
            self.trace((record.command.id, record.outcome.name(), self.now().as_millisecond()));
            *self.in_flight.entry(order_ref).or_default() += 1;
            let when = self.now().checked_add(SignedDuration::from_millis(latency.max(1) as i64)).expect("in range");
            self.schedule(when, Ev::Record { generation: self.generation, record: Box::new(record) });
        }
    }

    async fn handle(&mut self, ev: Ev) {
        self.trace((ev.name(), self.now().as_millisecond()));
        match ev {
            Ev::Deliver { system, order_ref, body, expect, tries, signature } => {
                self.deliver(system, order_ref, body, expect, tries, signature).await
            }
            Ev::Record { generation, record } => {
                if let Some(n) = self.in_flight.get_mut(&record.command.order_ref) {
                    *n = n.saturating_sub(1);
                }
                if generation == self.generation {
                    self.dispatcher.record(*record).await;
                } else {
                    // The hub died between sending and recording: only read-back can save it.
                    self.sometimes("crash in the unknown-outcome window");
                }
            }
            Ev::LateApply { system, request } => {
                system.apply_late(*request);
            }
            Ev::Fulfil { order_ref } => self.fulfil(order_ref),
            // A process that is already down cannot crash again.
            Ev::Crash if !self.hub_up => {}
            Ev::Crash => {
                self.fault("crash");
                self.hub_up = false;
                self.generation += 1;
                self.recent.clear();
                if let Some(lying) = &self.lying {
                    lying.power_loss();
                }
                let when = at(self.now(), RESTART_S);
                self.schedule(when, Ev::Restart);
            }
            Ev::Restart => {
                self.hub_up = true;
                handoff_engine::dispatcher::recover_in_flight(&self.store, &self.contract, self.now())
                    .await
                    .expect("recover");
            }
            Ev::OutageStart => {
                self.fault("outage");
                let erp = &self.systems["erp"];
                erp.set_faults(Faults { outage: true, ..erp.faults() });
            }
            Ev::OutageEnd => {
                let erp = &self.systems["erp"];
                erp.set_faults(Faults { outage: false, ..erp.faults() });
            }
            Ev::FaultsEnd => {
                self.faults_on = false;
                let erp = &self.systems["erp"];
                self.delivered_during_faults = self
                    .accepted_creates_in_window
                    .iter()
                    .filter(|r| !erp.find(crate::system::Collection::Orders, r).is_empty())
                    .count();
                for system in self.systems.values() {
                    let calm = Faults::default();
                    let f = system.faults();
                    system.set_faults(Faults {
                        required_fields: f.required_fields,
                        idempotency_keys: f.idempotency_keys,
                        ..calm
                    });
                }
            }
            Ev::Sync => {
                if let Some(lying) = &self.lying {
                    lying.flush();
                }
            }
        }
    }

    async fn deliver(
        &mut self,
        system: &'static str,
        order_ref: String,
        body: String,
        expect: Expect,
        tries: u32,
        signature: Option<String>,
    ) {
        self.report.deliveries += 1;
        if !self.hub_up {
            // A real vendor retries with backoff; give up after a day, as Shopify does.
            if tries < 10 {
                let when = at(self.now(), 60 << tries.min(10));
                self.schedule(when, Ev::Deliver { system, order_ref, body, expect, tries: tries + 1, signature });
            }
            return;
        }
        let replay = signature.is_some();
        let body =
            if self.options.safety.dedup || replay { body } else { without_dedup(&body, self.report.deliveries) };
        let signature = signature.unwrap_or_else(|| sign_timestamped(SECRET, self.now().as_second(), body.as_bytes()));
        let header = |name: &str| (name == HANDOFF_SIGNATURE).then_some(signature.as_str());
        let inbound = handoff_connectors::inbound(
            system,
            &self.contract.systems[system],
            header,
            body.as_bytes(),
            self.now(),
            &self.contract.hub.json,
        );
        let (event, parsed) = match inbound {
            Ok(_) if replay => {
                let detail = "a stale replay was accepted".to_owned();
                self.report.violations.push(Violation::Protocol { order_ref, detail });
                return;
            }
            Ok(Inbound::Event { event, parsed }) => (event, parsed),
            Ok(Inbound::Ping | Inbound::NoMoney { .. }) => unreachable!("simulated sources send only events"),
            Ok(Inbound::Held(held)) => panic!("a simulated source sent a body no reader maps: {}", held.reason),
            Err(SourceError::Unauthenticated(SignatureError::Stale { .. })) if replay => {
                self.sometimes("stale replay refused");
                return;
            }
            Err(e) => panic!("a simulated source sent a refused event: {e}"),
        };
        let key = (event.system.clone(), event.event_id.clone());
        let (kind, bytes) = (event.kind, event.payload.len());
        match self.store.record_event(event).await.expect("record") {
            Recorded::New(row) => {
                self.recent.keep(row, parsed, bytes);
                self.recorded_in.insert(key, self.generation);
                match kind {
                    handoff_model::EventKind::OrderCreated | handoff_model::EventKind::OrderUpdated => {
                        self.create_recorded.insert(order_ref.clone());
                    }
                    handoff_model::EventKind::OrderCancelled if !self.create_recorded.contains(&order_ref) => {
                        self.sometimes("cancel before create");
                    }
                    _ => {}
                }
            }
            Recorded::Duplicate(_) => {
                if self.recorded_in.get(&key).is_some_and(|g| *g < self.generation) {
                    self.sometimes("dedup hit after restart");
                }
                if self.in_flight.get(&order_ref).is_some_and(|n| *n > 0) {
                    self.sometimes("duplicate while the original is in flight");
                }
            }
        }
        self.trace((system, &order_ref, self.now().as_millisecond()));
        // The hub answered 2xx: from here on, what the source was told must come true.
        let market = system == "market";
        match expect {
            Expect::Create => {
                self.erp_orders.acked_create(&order_ref);
                if !market {
                    self.erp2_orders.acked_create(&order_ref);
                }
                if self.faults_on {
                    self.accepted_creates_in_window.insert(order_ref);
                }
            }
            Expect::Cancel => {
                self.erp_orders.acked_cancel(&order_ref);
                if !market {
                    self.erp2_orders.acked_cancel(&order_ref);
                }
            }
            Expect::Fulfillment(id) => self.shop_fulfillments.acked_fulfillment(&order_ref, &id),
            Expect::Refund(id) => self.erp_orders.acked_refund(&order_ref, &id),
            Expect::Refused => {
                self.refused.insert(order_ref);
            }
            Expect::RefusedCancel => {
                self.refused_cancelled.insert(order_ref);
            }
            Expect::Nothing | Expect::Replay => {}
        }
    }

    /// The ERP ships an order it holds and announces the fulfillment to the hub.
    fn fulfil(&mut self, order_ref: String) {
        let records = self.systems["erp"].find(crate::system::Collection::Orders, &order_ref);
        let Some(record) = records.into_iter().find(|r| r.status == "open") else { return };
        let fulfillment_id = format!("F-{}", record.id);
        let lines: Vec<Value> = record.lines.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q})).collect();
        let body = json!({
            "event_id": format!("erp-{fulfillment_id}"), "kind": "fulfillment.created", "order_ref": order_ref,
            "occurred_at": self.now(), "fulfillment": {"fulfillment_id": fulfillment_id, "lines": lines},
        });
        self.send(self.now(), "erp", &order_ref, body.to_string(), Expect::Fulfillment(fulfillment_id));
    }

    async fn judge(&mut self) {
        let erp = self.systems["erp"].applied();
        let erp2 = self.systems["erp2"].applied();
        let shop = self.systems["shop"].applied();
        let mut violations = std::mem::take(&mut self.report.violations);
        violations.extend(self.erp_orders.check_orders(&erp));
        violations.extend(self.erp2_orders.check_orders(&erp2));
        violations.extend(self.shop_fulfillments.check_fulfillments(&shop));
        violations.extend(self.erp_orders.check_refunds(&erp));

        let dead: HashSet<String> = self
            .store
            .exceptions(None, usize::MAX >> 1)
            .await
            .expect("exceptions")
            .into_iter()
            .map(|x| x.order_ref)
            .collect();
        let mut refused: Vec<&String> = self.refused.iter().collect();
        refused.sort();
        for order_ref in refused {
            if erp.iter().chain(&erp2).any(|a| &a.external_ref == order_ref) {
                violations.push(Violation::Duplicate {
                    order_ref: order_ref.clone(),
                    by: "refused order applied",
                    count: 1,
                });
            } else if !dead.contains(order_ref) && !self.refused_cancelled.contains(order_ref) {
                let what = "refused order has no dead-letter exception".to_owned();
                violations.push(Violation::Lost { order_ref: order_ref.clone(), what });
            }
        }

        for system in self.systems.values() {
            for (fault, n) in system.fired() {
                *self.report.faults.entry(fault).or_default() += n;
            }
        }
        let pending = self.store.command_counts().await.expect("counts");
        let drained_at = self.drained_at.unwrap_or(self.now());
        self.report.drained_after_s = drained_at.duration_since(self.faults_end).as_secs().max(0);
        if self.report.drained_after_s > DRAIN_LIMIT_S {
            let detail = format!(
                "backlog drained {} s after the faults stopped (limit {DRAIN_LIMIT_S} s)",
                self.report.drained_after_s
            );
            violations.push(Violation::Liveness { detail });
        }
        let superseded = pending.iter().find(|(s, _)| s == "superseded").map_or(0, |(_, n)| *n);
        if superseded > 0 {
            *self.report.sometimes.entry("create superseded by its cancel").or_default() += superseded;
        }
        let delivered_in_window = self.delivered_during_faults;
        let accepted = self.accepted_creates_in_window.len();
        if accepted > 0 && (delivered_in_window as f64) < THROUGHPUT_FLOOR * accepted as f64 {
            let detail = format!("only {delivered_in_window} of {accepted} accepted orders reached the ERP");
            violations.push(Violation::Liveness { detail });
        }
        for order_ref in violations.iter().filter_map(Violation::order_ref).take(3) {
            let t = self.store.order_timeline(order_ref.to_owned()).await.expect("timeline");
            let mut lines = vec![format!("order {order_ref}:")];
            lines.extend(
                t.events.iter().map(|e| format!("  event {} {} {} at {}", e.row, e.system, e.kind, e.received_at)),
            );
            lines.extend(
                t.commands.iter().map(|c| format!("  command {} {} to {} [{}]", c.id, c.kind, c.target, c.state)),
            );
            lines.extend(t.attempts.iter().map(|a| {
                format!(
                    "  attempt {}.{} {} at {}: {}",
                    a.command_id,
                    a.attempt,
                    a.outcome,
                    a.started_at,
                    a.detail.as_deref().unwrap_or("")
                )
            }));
            lines.extend(t.audit.iter().map(|a| format!("  audit {} {}: {}", a.at, a.action, a.detail)));
            for (name, system) in &self.systems {
                for a in system.applied().iter().filter(|a| a.external_ref == order_ref) {
                    lines.push(format!("  {name} applied #{} {} v{:?}", a.seq, a.op, a.version));
                }
            }
            self.report.evidence.push(lines.join("\n"));
        }
        self.report.violations = violations;
    }
}

/// Negative control: a hub without dedup sees every delivery as a new event.
fn without_dedup(body: &str, delivery: u64) -> String {
    let mut v: Value = serde_json::from_str(body).expect("sim events are JSON");
    let id = v["event_id"].as_str().unwrap_or_default().to_owned();
    v["event_id"] = json!(format!("{id}#delivery-{delivery}"));
    v.to_string()
}

fn order_event(event_id: &str, kind: &str, order_ref: &str, version: u64, missing_email: bool) -> String {
    let email =
        if missing_email { Value::Null } else { json!(format!("{}@example.com", order_ref.trim_start_matches('#'))) };
    json!({
        "event_id": event_id,
        "kind": kind,
        "order_ref": order_ref,
        "occurred_at": "2026-01-05T00:00:00Z",
        "version": version,
        "order": {
            "order_ref": order_ref,
            "customer": {"email": email, "name": "Sim Customer"},
            "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "10.00"}, {"sku": "SKU-2", "quantity": 1, "unit_price": "5.50"}],
            "currency": "EUR",
            "totals": {"subtotal": "25.50", "tax": "0", "shipping": "4.50", "total": "30.00"},
            "placed_at": "2026-01-05T00:00:00Z"
        }
    })
    .to_string()
}
