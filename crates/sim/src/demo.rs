//! The week twice: what a naive relay leaves behind (its history, observed by Handoff in
//! shadow mode, so every planted divergence must be detected and nothing else raised), and
//! the same stories through Handoff's write path against simulated systems with the same
//! fault rates. Both run in simulated time on one thread.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use handoff_contract::Contract;
use handoff_engine::{Clock, Dispatcher, Intake, ManualClock, Rng, RulesWatch, Target, Targets};
use handoff_model::{EventKind, InboundEvent, Pattern};
use handoff_store::{ExceptionRow, NewEvent, Store};
use jiff::{SignedDuration, Timestamp};

use crate::system::{Collection, Faults, MockSystem};
use crate::target::SimTarget;
use crate::week::{self, Fate, Observed, RelayFaults, Story};

/// The stack of the week: a storefront, a marketplace, a payment processor and an ERP.
pub fn contract(shadow: bool) -> Contract {
    let flows = [
        ("shop-orders", "shop", "erp", r#"["order.created", "order.updated", "order.cancelled"]"#, "15m"),
        ("market-orders", "market", "erp", r#"["order.created", "order.updated", "order.cancelled"]"#, "15m"),
        ("fulfillments-to-shop", "erp", "shop", r#"["fulfillment.created"]"#, "30m"),
        ("fulfillments-to-market", "erp", "market", r#"["fulfillment.created"]"#, "30m"),
    ];
    let mut toml = String::from(
        r#"
[systems.shop]
role = "storefront"
connector = "http-json"
base_url = "http://shop.sim"
[systems.market]
role = "marketplace"
connector = "http-json"
base_url = "http://market.sim"
[systems.pay]
role = "payment"
connector = "http-json"
[systems.erp]
role = "erp"
connector = "http-json"
base_url = "http://erp.sim"
"#,
    );
    for (name, from, to, events, deadline) in flows {
        toml.push_str(&format!(
            "[flows.{name}]\nfrom = \"{from}\"\nto = \"{to}\"\nevents = {events}\nproof = \"record-id\"\n\
             deadline = \"{deadline}\"\nshadow = {shadow}\n\
             retry = {{ attempts = 60, backoff_base = \"2s\", backoff_cap = \"10m\", jitter = \"full\", deadline = \"72h\" }}\n"
        ));
    }
    Contract::parse(&toml, Path::new("demo contract")).expect("a valid contract")
}

/// Hears the simulated time as a run goes on.
pub type Progress<'a> = dyn Fn(Timestamp) + 'a;

/// One exception the hub raised, reduced to what the judgement needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    pub order_ref: String,
    pub pattern: Pattern,
    pub state: String,
    pub field: Option<String>,
    pub opened_at: Timestamp,
}

fn raised(rows: Vec<ExceptionRow>) -> Vec<Raised> {
    rows.into_iter()
        .filter_map(|x| {
            let pattern = Pattern::parse(&x.pattern)?;
            Some(Raised { order_ref: x.order_ref, pattern, state: x.state, field: x.field, opened_at: x.opened_at })
        })
        .collect()
}

fn new_event(system: &str, event: &InboundEvent, at: Timestamp) -> NewEvent {
    NewEvent {
        system: system.to_owned(),
        event_id: event.event_id.to_string(),
        kind: event.kind,
        order_ref: event.order_ref.clone(),
        received_at: at,
        payload: serde_json::to_string(event).expect("events serialize"),
        raw: None,
    }
}

/// Handoff in shadow mode over the relay's week: every system's announcements recorded, the
/// rules judging, nothing sent. Time steps to each announcement and to each deadline, so an
/// exception opens exactly when its deadline passes.
pub async fn observe<S: Store + Clone>(store: S, history: &[Observed], progress: &Progress<'_>) -> Vec<Raised> {
    let contract = Arc::new(contract(true));
    let start = history.first().map_or_else(|| week::WEEK_START.parse().expect("a start"), |o| o.at);
    let clock = Arc::new(ManualClock::new(start));
    let intake = Intake::new(contract.clone(), store.clone(), clock.clone());
    let mut rules = RulesWatch::new(contract, store.clone(), clock.clone());
    let end = history.last().map_or(start, |o| o.at) + SignedDuration::from_hours(2);
    let mut next = 0;
    loop {
        let due = rules.next_deadline();
        let event_at = history.get(next).map(|o| o.at);
        let Some(at) = [due, event_at].into_iter().flatten().min().filter(|at| *at <= end) else { break };
        clock.set(at.max(clock.now()));
        progress(clock.now());
        while history.get(next).is_some_and(|o| o.at <= at) {
            let o = &history[next];
            store.record_event(new_event(o.system, &o.event, o.at)).await.expect("record");
            next += 1;
        }
        while intake.step().await.expect("intake") > 0 {}
        rules.step().await.expect("rules");
    }
    raised(store.exceptions(None, usize::MAX >> 1).await.expect("exceptions"))
}

/// How one pattern fared in both runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// Divergences the relay left behind (planted, each detected in shadow mode).
    pub relay: usize,
    /// Of those, detected by the rules watching the relay.
    pub detected_in_relay: usize,
    /// Exceptions Handoff raised in its own run.
    pub raised: usize,
    /// Of those, resolved by the time the week settled (by the write path or the rules).
    pub resolved: usize,
    /// Still open at the end: each needs a person (a held payload, a refund to approve).
    pub open: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub orders: usize,
    pub rows: BTreeMap<Pattern, Row>,
    /// Exceptions raised in shadow mode that the relay did not plant (must be none).
    pub false_in_relay: usize,
    /// Orders Handoff delivered to the ERP, and duplicates it made there (must be none).
    pub erp_orders: usize,
    pub erp_duplicates: usize,
    /// The fields Handoff held Transform Mismatches for.
    pub held_fields: Vec<String>,
}

/// Judges shadow-mode findings against what the relay planted.
pub fn judge_relay(stories: &[Story], found: &[Raised], rows: &mut BTreeMap<Pattern, Row>) -> usize {
    let planted = week::planted(stories);
    let truth: HashMap<(&str, Pattern), ()> = planted.iter().map(|(k, p)| ((k.as_str(), *p), ())).collect();
    for (_, pattern) in &planted {
        rows.entry(*pattern).or_default().relay += 1;
    }
    let mut false_positives = 0;
    for f in found {
        if truth.contains_key(&(f.order_ref.as_str(), f.pattern)) {
            rows.entry(f.pattern).or_default().detected_in_relay += 1;
        } else {
            false_positives += 1;
        }
    }
    false_positives
}

/// The same stories through Handoff's write path: channel events into the hub, commands to a
/// simulated ERP and channels that fail at the relay's rates, the ERP shipping what it holds.
pub async fn through_handoff<S: Store + Clone>(
    store: S,
    stories: &[Story],
    faults: &RelayFaults,
    seed: u64,
    progress: &Progress<'_>,
) -> (Vec<Raised>, usize, usize) {
    let contract = Arc::new(contract(false));
    let start: Timestamp = week::WEEK_START.parse().expect("a start");
    let clock = Arc::new(ManualClock::new(start));
    let erp_faults = Faults {
        lost_request: faults.create_lost,
        error_after_apply: faults.create_resent,
        // The payloads the relay's mapping damaged reach this ERP without an email it requires.
        required_fields: vec!["customer.email".into()],
        ..Faults::default()
    };
    let channel_faults = Faults { lost_request: faults.fulfillment_lost, ..Faults::default() };
    let mut targets: Targets = HashMap::new();
    let mut systems = HashMap::new();
    for (i, (name, f)) in
        [("erp", erp_faults), ("shop", channel_faults.clone()), ("market", channel_faults)].into_iter().enumerate()
    {
        let system = Arc::new(MockSystem::new(name, f, seed.wrapping_add(i as u64)));
        targets.insert(name.into(), Arc::new(SimTarget::new(system.clone(), 10_000, true)) as Arc<dyn Target>);
        systems.insert(name, system);
    }
    let erp = systems["erp"].clone();
    let intake = Intake::new(contract.clone(), store.clone(), clock.clone());
    let dispatcher = Dispatcher::new(contract.clone(), store.clone(), targets, clock.clone(), Rng::seeded(seed));
    let mut rules = RulesWatch::new(contract, store.clone(), clock.clone());

    // The channels' and processor's announcements, and the ERP's shipping dates.
    let mut schedule: Vec<(Timestamp, usize, Option<Observed>)> = Vec::new();
    for (i, s) in stories.iter().enumerate() {
        let mut order = s.order.clone();
        if s.planted == Some(Pattern::TransformMismatch) {
            order.customer.email = None;
        }
        schedule.extend(s.placed(i, &order).into_iter().map(|o| (o.at, i, Some(o))));
        match s.fate {
            _ if s.planted == Some(Pattern::OrphanedPayment) => {}
            Fate::Ship(at) => schedule.push((at, i, None)),
            Fate::Cancel(at) => {
                let cancelled = week::announce(i, at, s.channel, EventKind::OrderCancelled, &s.order_ref);
                schedule.push((at, i, Some(cancelled)));
            }
        }
    }
    schedule.sort_by_key(|(at, i, _)| (*at, *i));

    let mut next = 0;
    loop {
        let due = store.next_due_at().await.expect("store").filter(|d| *d > clock.now());
        let at = [schedule.get(next).map(|s| s.0), due, rules.next_deadline()].into_iter().flatten().min();
        let Some(at) = at else { break };
        clock.set(at.max(clock.now()));
        progress(clock.now());
        while schedule.get(next).is_some_and(|s| s.0 <= clock.now()) {
            let (at, i, said) = &schedule[next];
            next += 1;
            let o = match said {
                Some(o) => o.clone(),
                None => {
                    // The ERP ships what it holds and has not cancelled.
                    let s = &stories[*i];
                    let held = erp.find(Collection::Orders, &s.order_ref);
                    if !held.iter().any(|r| r.status == "open") {
                        continue;
                    }
                    let mut shipped = week::announce(*i, *at, "erp", EventKind::FulfillmentCreated, &s.order_ref);
                    shipped.event.fulfillment = Some(week::fulfillment(s, *i));
                    shipped
                }
            };
            let recorded = store.record_event(new_event(o.system, &o.event, o.at)).await.expect("record");
            let outcome = if matches!(recorded, handoff_store::Recorded::New(_)) { "recorded" } else { "duplicate" };
            handoff_engine::telemetry::event_received(o.system, outcome);
        }
        while intake.step().await.expect("intake") > 0 {}
        if store.next_due_at().await.expect("store").is_some_and(|d| d <= clock.now()) {
            for command in store.claim_due(clock.now(), 4096).await.expect("claim") {
                let record = dispatcher.attempt(command).await;
                dispatcher.record(record).await;
            }
        }
        rules.step().await.expect("rules");
    }
    let records = erp.records();
    let orders: Vec<&str> =
        records.iter().filter(|r| r.collection == Collection::Orders).map(|r| r.external_ref.as_str()).collect();
    let mut unique = orders.clone();
    unique.sort_unstable();
    unique.dedup();
    let found = raised(store.exceptions(None, usize::MAX >> 1).await.expect("exceptions"));
    (found, unique.len(), orders.len() - unique.len())
}

/// Runs the week twice and compares, pattern by pattern.
pub async fn compare<R: Store + Clone, S: Store + Clone>(
    relay_store: R,
    handoff_store: S,
    seed: u64,
    orders: usize,
    faults: &RelayFaults,
    relay_progress: &Progress<'_>,
    handoff_progress: &Progress<'_>,
) -> Comparison {
    let stories = week::stories(seed, orders, faults);
    let history = week::relay_history(&stories);
    let found = observe(relay_store, &history, relay_progress).await;
    let mut c = Comparison { orders, ..Comparison::default() };
    c.false_in_relay = judge_relay(&stories, &found, &mut c.rows);
    let (raised, erp_orders, duplicates) =
        through_handoff(handoff_store, &stories, faults, seed, handoff_progress).await;
    (c.erp_orders, c.erp_duplicates) = (erp_orders, duplicates);
    for x in raised {
        let row = c.rows.entry(x.pattern).or_default();
        row.raised += 1;
        match x.state.as_str() {
            "open" | "acknowledged" => row.open += 1,
            _ => row.resolved += 1,
        }
        if x.pattern == Pattern::TransformMismatch
            && let Some(field) = x.field
            && !c.held_fields.contains(&field)
        {
            c.held_fields.push(field);
        }
    }
    c
}
