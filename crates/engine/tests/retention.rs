//! Retention: a purge at now + the retention removes personal data older than it and keeps
//! what is newer, every exception's evidence keeps hashes of what it referred to, dedup keys
//! outlive every vendor's redelivery, and a dry run changes nothing.

mod common;

use std::path::Path;
use std::sync::Arc;

use handoff_contract::{Contract, Retention};
use handoff_engine::{Clock, Intake, ManualClock, RulesWatch, retention};
use handoff_model::InboundEvent;
use handoff_store::memory::MemoryStore;
use handoff_store::personal::hash;
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use handoff_store::{AttemptRecord, NewEvent, NewQuarantined, Outcome, QuarantineSource, Recorded, Store};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const EMAIL: &str = "ada@example.com";

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

fn contract() -> Arc<Contract> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
    Arc::new(Contract::parse(&text, Path::new("handoff.toml")).unwrap())
}

fn raw(order_ref: &str) -> String {
    json!({"name": order_ref, "email": EMAIL, "shipping_address": {"address1": "1 Road"}}).to_string()
}

fn event(id: &str, order_ref: &str, at: Timestamp) -> NewEvent {
    let shaped = |order: &mut Value| {
        order["customer"] = json!({"email": EMAIL, "name": "Ada Lovelace"});
        order["shipping_address"] =
            json!({"name": "Ada Lovelace", "line1": "1 Road", "city": "Town", "postal_code": "N1", "country": "GB"});
    };
    NewEvent { raw: Some(raw(order_ref)), ..common::order_event_with(id, "order.created", order_ref, at, shaped) }
}

/// Plans what was recorded, then sends every due command: acknowledged, except `#stuck`'s,
/// which the ERP keeps refusing (so its order gets a Missing Order).
async fn deliver<S: Store + Clone>(store: &S, c: &Arc<Contract>, clock: &Arc<ManualClock>) {
    let intake = Intake::new(c.clone(), store.clone(), clock.clone());
    while intake.step().await.unwrap() > 0 {}
    for command in store.claim_due(clock.now(), 10_000).await.unwrap() {
        let outcome = match command.order_ref.as_str() {
            "#stuck" => Outcome::Retry { at: clock.now() + days(365), ambiguous: false, error: "503".into() },
            _ => Outcome::Acknowledged { record_id: format!("SO-{}", command.order_ref) },
        };
        let (started_at, finished_at) = (clock.now(), clock.now());
        store
            .record_attempt(AttemptRecord { command, started_at, finished_at, outcome, note: None, mapping: None })
            .await
            .unwrap();
    }
}

/// `#old` (delivered) and `#stuck` (never created, so an open Missing Order) at t0, a held
/// body at t0, `#new` twenty days later.
async fn history<S: Store + Clone>(store: &S, c: &Arc<Contract>, clock: &Arc<ManualClock>) -> i64 {
    store.record_event(event("e-old", "#old", t0())).await.unwrap();
    store.record_event(event("e-stuck", "#stuck", t0())).await.unwrap();
    let held = NewQuarantined {
        system: "shop".into(),
        source: QuarantineSource::Webhook,
        fingerprint: "f1".into(),
        order_ref: Some("#held".into()),
        headers: [("x-shop".to_owned(), "s1".to_owned())].into(),
        body: raw("#held").into_bytes(),
        field: "order.total".into(),
        reason: "unreadable".into(),
        source_version: None,
        flow: None,
        received_at: t0(),
    };
    let Recorded::New(held) = store.quarantine(held, t0()).await.unwrap() else { panic!("held once") };
    deliver(store, c, clock).await;
    let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    rules.step().await.unwrap();
    clock.advance(SignedDuration::from_mins(20));
    assert_eq!(rules.step().await.unwrap().raised, 1, "#stuck's Missing Order");
    clock.advance(days(20));
    store.record_event(event("e-new", "#new", clock.now())).await.unwrap();
    deliver(store, c, clock).await;
    rules.step().await.unwrap();
    held
}

async fn personal_data_goes_after_the_retention_and_evidence_keeps_hashes<S: Store + Clone>(store: S) {
    let (c, clock) = (contract(), Arc::new(ManualClock::new(t0())));
    let held = history(&store, &c, &clock).await;
    let stuck = store.exceptions(None, 10).await.unwrap().into_iter().find(|x| x.order_ref == "#stuck").unwrap();
    assert!(stuck.evidence.as_deref().unwrap().contains(EMAIL), "the rule's evidence holds the ledger's email");
    let r = Retention { personal_data_days: 30, ..Retention::default() };
    // Thirty-five days after t0: #old, #stuck and the held body are past it, #new is not.
    let now = t0() + days(35);

    let before = store.order_timeline("#old".into()).await.unwrap();
    let dry = retention::purge(&store, &r, now, true).await.unwrap();
    assert_eq!((dry.inbox_scrubbed, dry.quarantine_scrubbed, dry.outbox_scrubbed), (2, 1, 1), "{dry:?}");
    let after_dry = store.order_timeline("#old".into()).await.unwrap();
    assert_eq!(after_dry.events[0].raw, before.events[0].raw, "a dry run changes nothing");
    assert_eq!(after_dry.events[0].payload, before.events[0].payload);
    assert!(!store.quarantined_one(held).await.unwrap().unwrap().body.is_empty());

    let purged = retention::purge(&store, &r, now, false).await.unwrap();
    assert_eq!(
        (purged.inbox_scrubbed, purged.quarantine_scrubbed, purged.outbox_scrubbed, purged.evidence_hashed),
        (dry.inbox_scrubbed, dry.quarantine_scrubbed, dry.outbox_scrubbed, dry.evidence_hashed),
        "the dry run counted what the purge removed"
    );

    let old = store.order_timeline("#old".into()).await.unwrap();
    assert_eq!(old.events[0].raw, None, "the raw vendor body is gone");
    assert!(!old.events[0].payload.contains(EMAIL) && !old.events[0].payload.contains("1 Road"));
    assert!(!old.events[0].payload.contains("Ada"), "{}", old.events[0].payload);
    let event: InboundEvent = serde_json::from_str(&old.events[0].payload).expect("still a canonical event");
    assert_eq!(event.order.unwrap().shipping_address.unwrap().country, "GB", "the country is not personal");
    assert!(!old.commands[0].payload.contains(EMAIL), "a finished command loses the personal fields");

    let stuck_timeline = store.order_timeline("#stuck".into()).await.unwrap();
    assert!(stuck_timeline.commands[0].payload.contains(EMAIL), "an unfinished command keeps what it must send");
    let new = store.order_timeline("#new".into()).await.unwrap();
    assert_eq!(new.events[0].raw.as_deref(), Some(raw("#new").as_str()), "newer than the retention: kept");
    assert!(new.events[0].payload.contains(EMAIL));

    let x = store.exception(stuck.id).await.unwrap().unwrap();
    let evidence: Value = serde_json::from_str(x.evidence.as_deref().unwrap()).unwrap();
    assert!(!x.evidence.as_deref().unwrap().contains(EMAIL), "{evidence}");
    assert_eq!(evidence["ledger"]["email"], hash(EMAIL.as_bytes()), "the evidence keeps the email's hash");
    let row = stuck_timeline.events[0].row;
    assert_eq!(evidence["purged"][format!("inbox/{row}")], hash(raw("#stuck").as_bytes()), "{evidence}");
    assert_eq!(evidence["rule"], "missing_order", "the rest of the evidence stays");

    let body = store.quarantined_one(held).await.unwrap().unwrap();
    assert!(body.body.is_empty() && body.headers.is_empty(), "the held body is gone");
    let held_x = store.exception(body.exception_id.unwrap()).await.unwrap().unwrap();
    let evidence: Value = serde_json::from_str(held_x.evidence.as_deref().unwrap()).unwrap();
    assert_eq!(evidence["purged"][format!("quarantine/{held}")], hash(raw("#held").as_bytes()));
    assert_eq!(evidence["quarantine"], held, "the evidence still names the held row");

    let again = retention::purge(&store, &r, now, false).await.unwrap();
    assert_eq!(again.inbox_scrubbed + again.quarantine_scrubbed + again.outbox_scrubbed, 0, "{again:?}");
}

#[tokio::test]
async fn sqlite_personal_data_goes_after_the_retention_and_evidence_keeps_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    personal_data_goes_after_the_retention_and_evidence_keeps_hashes(store).await;
}

#[tokio::test]
async fn memory_personal_data_goes_after_the_retention_and_evidence_keeps_hashes() {
    personal_data_goes_after_the_retention_and_evidence_keeps_hashes(MemoryStore::new()).await;
}

#[tokio::test]
async fn postgres_personal_data_goes_after_the_retention_and_evidence_keeps_hashes() {
    handoff_store::postgres::testing::with_store(personal_data_goes_after_the_retention_and_evidence_keeps_hashes)
        .await;
}

#[tokio::test]
async fn sqlite_a_redelivery_within_the_dedup_horizon_is_a_duplicate_and_history_is_compacted_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    a_redelivery_within_the_dedup_horizon_is_a_duplicate_and_history_is_compacted_after_it(store).await;
}

#[tokio::test]
async fn postgres_a_redelivery_within_the_dedup_horizon_is_a_duplicate_and_history_is_compacted_after_it() {
    handoff_store::postgres::testing::with_store(
        a_redelivery_within_the_dedup_horizon_is_a_duplicate_and_history_is_compacted_after_it,
    )
    .await;
}

async fn a_redelivery_within_the_dedup_horizon_is_a_duplicate_and_history_is_compacted_after_it<S: Store + Clone>(
    store: S,
) {
    let (c, clock) = (contract(), Arc::new(ManualClock::new(t0())));
    // The shortest retention a contract may set.
    let r = Retention { personal_data_days: 1, history_days: 7, dedup_days: 7, ..Retention::default() };
    store.record_event(event("e-a", "#a", t0())).await.unwrap();
    deliver(&store, &c, &clock).await;
    let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    rules.step().await.unwrap();

    // Six days later: the vendor redelivers. The key is still there.
    clock.advance(days(6));
    let purged = retention::purge(&store, &r, clock.now(), false).await.unwrap();
    assert_eq!((purged.inbox_removed, purged.outbox_removed, purged.facts_removed), (0, 0, 0), "{purged:?}");
    assert!(matches!(store.record_event(event("e-a", "#a", t0())).await.unwrap(), Recorded::Duplicate(_)));

    // Past the horizon (and the history), the order's rows are compacted away.
    clock.advance(days(3));
    store.record_event(event("e-b", "#b", clock.now())).await.unwrap();
    deliver(&store, &c, &clock).await;
    rules.step().await.unwrap();
    let purged = retention::purge(&store, &r, clock.now(), false).await.unwrap();
    assert_eq!((purged.inbox_removed, purged.outbox_removed), (1, 1), "{purged:?}");
    assert!(purged.facts_removed >= 2 && purged.attempts_removed == 1, "{purged:?}");
    let a = store.order_timeline("#a".into()).await.unwrap();
    assert!(a.events.is_empty() && a.commands.is_empty() && a.attempts.is_empty(), "{a:?}");
    let b = store.order_timeline("#b".into()).await.unwrap();
    assert_eq!((b.events.len(), b.commands.len()), (1, 1), "newer than the horizon: kept");
    // A redelivery this late is recorded again, and planned as the stale version it is.
    assert!(matches!(store.record_event(event("e-a", "#a", t0())).await.unwrap(), Recorded::New(_)));
    let intake = Intake::new(c.clone(), store.clone(), clock.clone());
    while intake.step().await.unwrap() > 0 {}
    assert!(store.order_timeline("#a".into()).await.unwrap().commands.is_empty(), "nothing sent twice");
}

/// More orders than one batch of the purge: the purge, batch by batch, removes exactly what
/// its dry run counted (a command whose journal entries go in a later batch than its own goes
/// too: it once stayed for good), and the dry run changes nothing (the memory store keeps no
/// history to compact).
async fn a_purge_in_many_batches_removes_what_its_dry_run_counts<S: Store + Clone>(store: S) {
    let (c, clock) = (contract(), Arc::new(ManualClock::new(t0())));
    let r = Retention { personal_data_days: 1, history_days: 7, dedup_days: 7, ..Retention::default() };
    let orders = 4_500; // more than two of the purge's batches of 2,000
    for i in 0..orders {
        store.record_event(event(&format!("e-{i}"), &format!("#o{i}"), t0())).await.unwrap();
    }
    deliver(&store, &c, &clock).await;
    let mut rules = RulesWatch::new(c.clone(), store.clone(), clock.clone());
    rules.step().await.unwrap();
    // Ten days on, the hub still runs: a new order's journal entries bring the next checkpoint,
    // which no longer follows the old orders.
    clock.advance(days(10));
    store.record_event(event("e-new", "#new", clock.now())).await.unwrap();
    deliver(&store, &c, &clock).await;
    rules.step().await.unwrap();

    let dry = retention::purge(&store, &r, clock.now(), true).await.unwrap();
    assert_eq!(dry.inbox_scrubbed, orders, "{dry:?}");
    assert_eq!(retention::purge(&store, &r, clock.now(), true).await.unwrap(), dry, "a dry run changed something");
    let done = retention::purge(&store, &r, clock.now(), false).await.unwrap();
    assert_eq!(done, dry);
    assert_eq!(done.outbox_removed, orders, "{done:?}");
}

#[tokio::test]
async fn sqlite_a_purge_in_many_batches_removes_what_its_dry_run_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    a_purge_in_many_batches_removes_what_its_dry_run_counts(store).await;
}

#[tokio::test]
async fn postgres_a_purge_in_many_batches_removes_what_its_dry_run_counts() {
    handoff_store::postgres::testing::with_store(a_purge_in_many_batches_removes_what_its_dry_run_counts).await;
}
