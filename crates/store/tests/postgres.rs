//! What only a store shared by several processes must keep: two stores on one database (two
//! hubs) claim commands at once without claiming one twice or overtaking an order's earlier
//! command, and each wakes on the other's writes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use handoff_model::{CommandKind, EventKind, ExceptionState, Pattern};
use handoff_store::postgres::{INTAKE_LEAD, Leadership, PURGE_LEAD, PgStore, RULES_LEAD, poller_lead, testing};
use handoff_store::{
    AttemptRecord, CheckpointMove, NewCommand, NewEvent, NewFinding, NewQuarantined, OrderState, Outcome, Plan,
    PurgeBefore, QuarantineSource, Raised, Recorded, RulesCheckpoint, Store,
};
use jiff::Timestamp;

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn event(id: &str, order_ref: &str) -> NewEvent {
    NewEvent {
        system: "shop".into(),
        event_id: id.into(),
        kind: EventKind::OrderUpdated,
        order_ref: order_ref.into(),
        received_at: t0(),
        payload: "{}".into(),
        raw: None,
    }
}

fn command(order_ref: &str, n: usize) -> NewCommand {
    NewCommand {
        flow: "orders".into(),
        target: "erp".into(),
        order_ref: order_ref.into(),
        kind: CommandKind::UpdateOrder,
        idempotency_key: format!("{order_ref}:{n}"),
        external_ref: order_ref.into(),
        version: Some(n as u64),
        payload: "{}".into(),
        supersede_unsent: false,
    }
}

/// Two stores on one schema, as two hub processes see it.
async fn two_hubs() -> Option<(PgStore, PgStore, testing::TestSchema)> {
    let url = testing::test_database_url()?;
    let schema = testing::TestSchema::create(&url).await.unwrap();
    let a = PgStore::open(&url, schema.options()).await.unwrap();
    let b = PgStore::open(&url, schema.options()).await.unwrap();
    Some((a, b, schema))
}

/// Order `#o`'s event number `n`, planned into its command number `n`, as intake plans it.
async fn nth_command(store: &PgStore, o: usize, n: usize) {
    planned(store, &format!("e{o}-{n}"), &format!("#{o}"), n).await;
}

/// The event `event_id` of `order_ref`, recorded and planned into its command number `n`.
async fn planned(store: &PgStore, event_id: &str, order_ref: &str, n: usize) {
    let Recorded::New(row) = store.record_event(event(event_id, order_ref)).await.unwrap() else { panic!("new event") };
    let plan = Plan {
        event_row: row,
        order_ref: order_ref.into(),
        state: OrderState { source: "shop".into(), ..Default::default() },
        ledger: None,
        commands: vec![command(order_ref, n)],
        audit: vec![],
        search: Default::default(),
    };
    store.apply_plans(vec![plan], t0()).await.unwrap();
}

/// A command one hub claimed: its order, its version, and when (by a clock the hubs share) it
/// was claimed and its acknowledgment began.
struct Claimed {
    id: i64,
    order_ref: String,
    version: u64,
    claimed: u64,
    acknowledging: u64,
}

/// Claims and acknowledges in a loop until nothing was due for a while after `written`.
async fn drain(store: PgStore, clock: Arc<AtomicU64>, written: Arc<AtomicBool>) -> Vec<Claimed> {
    let mut log = Vec::new();
    let mut idle = 0;
    while idle < 50 {
        let claimed = store.claim_due(t0(), 4).await.unwrap();
        let at = clock.fetch_add(1, Ordering::SeqCst);
        if claimed.is_empty() {
            if written.load(Ordering::SeqCst) {
                idle += 1;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        idle = 0;
        for c in claimed {
            let (id, order_ref, version) = (c.id, c.order_ref.clone(), c.version.unwrap());
            let acknowledging = clock.fetch_add(1, Ordering::SeqCst);
            store.record_attempt(acknowledged(c)).await.unwrap();
            log.push(Claimed { id, order_ref, version, claimed: at, acknowledging });
        }
    }
    log
}

/// No command claimed twice, every one of `per_order` claimed, and each claimed only after the
/// acknowledgment of its order's one before had begun: no order overtaken.
fn assert_each_claimed_after_the_one_before(log: impl IntoIterator<Item = Claimed>, per_order: usize) {
    let mut by_order: HashMap<String, Vec<Claimed>> = HashMap::new();
    let mut ids = HashSet::new();
    for c in log {
        assert!(ids.insert(c.id), "command {} claimed twice", c.id);
        by_order.entry(c.order_ref.clone()).or_default().push(c);
    }
    for (order_ref, mut claims) in by_order {
        claims.sort_by_key(|c| c.version);
        let versions: Vec<u64> = claims.iter().map(|c| c.version).collect();
        assert_eq!(versions, (0..per_order as u64).collect::<Vec<_>>(), "{order_ref}: each version claimed once");
        for pair in claims.windows(2) {
            assert!(
                pair[1].claimed > pair[0].acknowledging,
                "{order_ref}: version {} claimed at {} before version {} was acknowledged at {}",
                pair[1].version,
                pair[1].claimed,
                pair[0].version,
                pair[0].acknowledging
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hubs_claim_at_once_without_a_command_twice_or_an_order_overtaken() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    const ORDERS: usize = 20;
    const PER_ORDER: usize = 10;
    for o in 0..ORDERS {
        for n in 0..PER_ORDER {
            nth_command(&a, o, n).await;
        }
    }
    // Each hub claims and acknowledges in a loop until the outbox is drained.
    let (clock, written) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(true)));
    let (la, lb) = tokio::join!(
        tokio::spawn(drain(a.clone(), clock.clone(), written.clone())),
        tokio::spawn(drain(b.clone(), clock.clone(), written.clone()))
    );
    let (la, lb) = (la.unwrap(), lb.unwrap());
    assert!(!la.is_empty() && !lb.is_empty(), "both hubs claimed: {} and {}", la.len(), lb.len());
    assert_eq!(la.len() + lb.len(), ORDERS * PER_ORDER, "every command claimed once");
    assert_each_claimed_after_the_one_before(la.into_iter().chain(lb), PER_ORDER);
    let counts = a.command_counts().await.unwrap();
    assert_eq!(counts, vec![("acknowledged".to_owned(), (ORDERS * PER_ORDER) as u64)]);
    drop((a, b));
    schema.drop().await.unwrap();
}

/// Intake writes each order's next command while two hubs claim and acknowledge the one before
/// it: a command written behind one being acknowledged at that moment is either written due or
/// released by the acknowledgment, never left held behind a finished command; and no order is
/// overtaken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_written_while_the_ones_before_are_acknowledged_all_go_in_order() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    const ORDERS: usize = 8;
    const PER_ORDER: usize = 25;
    let written = Arc::new(AtomicBool::new(false));
    let intake = {
        let (a, written) = (a.clone(), written.clone());
        async move {
            for n in 0..PER_ORDER {
                for o in 0..ORDERS {
                    nth_command(&a, o, n).await;
                }
            }
            written.store(true, Ordering::SeqCst);
        }
    };
    let clock = Arc::new(AtomicU64::new(0));
    let (_, la, lb) = tokio::join!(
        tokio::spawn(intake),
        tokio::spawn(drain(a.clone(), clock.clone(), written.clone())),
        tokio::spawn(drain(b.clone(), clock.clone(), written.clone()))
    );
    let counts = a.command_counts().await.unwrap();
    assert_eq!(counts, vec![("acknowledged".to_owned(), (ORDERS * PER_ORDER) as u64)], "none left waiting");
    assert_each_claimed_after_the_one_before(la.unwrap().into_iter().chain(lb.unwrap()), PER_ORDER);
    drop((a, b));
    schema.drop().await.unwrap();
}

#[tokio::test]
async fn a_hub_wakes_on_another_hubs_write() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    let mut woken = b.subscribe();
    woken.borrow_and_update();
    a.record_event(event("e1", "#1")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken.changed())
        .await
        .expect("the other hub's commit wakes this one")
        .unwrap();
    assert_eq!(b.unprocessed_events(10).await.unwrap().len(), 1);
    drop((a, b));
    schema.drop().await.unwrap();
}

#[tokio::test]
async fn a_database_of_a_newer_schema_is_refused() {
    let Some(url) = testing::test_database_url() else { return };
    let schema = testing::TestSchema::create(&url).await.unwrap();
    assert_eq!(PgStore::migrate(&url, schema.options()).await.unwrap(), 0, "a fresh schema starts at 0");
    assert_eq!(
        PgStore::migrate(&url, schema.options()).await.unwrap(),
        handoff_store::postgres::SCHEMA_VERSION,
        "migrating again changes nothing"
    );
    let newer = handoff_store::postgres::SCHEMA_VERSION + 1;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("INSERT INTO {}.schema_version (version) VALUES ({newer})", schema.name))
        .await
        .unwrap();
    let refused = PgStore::open(&url, schema.options()).await.err().expect("a newer schema is refused");
    assert!(refused.to_string().contains(&format!("schema version {newer}")), "{refused}");
    schema.drop().await.unwrap();
}

async fn one_command(store: &PgStore, order_ref: &str) {
    planned(store, &format!("e-{order_ref}"), order_ref, 0).await;
}

fn acknowledged(c: handoff_store::Command) -> AttemptRecord {
    let ack = Outcome::Acknowledged { record_id: format!("r{}-{}", c.id, c.attempts) };
    AttemptRecord { command: c, started_at: t0(), finished_at: t0(), outcome: ack, note: None, mapping: None }
}

#[tokio::test]
async fn a_claim_past_its_lease_is_taken_over_and_its_late_outcome_refused() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    one_command(&a, "#1").await;
    let secs = |n: i64| t0().checked_add(jiff::SignedDuration::from_secs(n)).unwrap();
    let first = a.claim_due(t0(), 10).await.unwrap().remove(0);
    assert!(b.claim_due(secs(599), 10).await.unwrap().is_empty(), "a's claim holds for its lease");
    let again = b.claim_due(secs(600), 10).await.unwrap().remove(0);
    assert_eq!((again.id, again.attempts), (first.id, 2));
    assert!(again.ambiguous, "the first claim's outcome is unknown: read back before any resend");
    // a wakes from its pause and reports: refused, and nothing of it recorded.
    let refused = a.record_attempt(acknowledged(first.clone())).await.unwrap_err();
    assert!(matches!(refused, handoff_store::StoreError::StaleClaim { command, attempt: 1 } if command == first.id));
    b.record_attempt(acknowledged(again)).await.unwrap();
    let timeline = a.order_timeline("#1".into()).await.unwrap();
    assert_eq!(timeline.attempts.len(), 1, "only the live claim's attempt");
    assert_eq!(timeline.commands[0].record_id.as_deref(), Some(format!("r{}-2", first.id).as_str()));
    // Recorded once, an outcome cannot be recorded again under the same claim.
    assert!(b.record_attempt(acknowledged(timeline.commands[0].clone())).await.is_err());
    drop((a, b));
    schema.drop().await.unwrap();
}

#[tokio::test]
async fn a_booting_hub_takes_back_a_dead_hubs_claims_but_not_a_live_ones() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    one_command(&a, "#1").await;
    assert_eq!(a.claim_due(t0(), 10).await.unwrap().len(), 1);
    assert_eq!(b.recover_in_flight(t0(), Default::default()).await.unwrap(), 0, "a lives: its claim stays");
    drop(a);
    // a's session ends as its connections close.
    let mut recovered = 0;
    for _ in 0..100 {
        recovered = b.recover_in_flight(t0(), Default::default()).await.unwrap();
        if recovered > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recovered, 1, "a dead hub's claim is taken back");
    let c = b.claim_due(t0(), 10).await.unwrap().remove(0);
    assert!(c.ambiguous);
    drop(b);
    schema.drop().await.unwrap();
}

#[tokio::test]
async fn one_hub_leads_a_part_and_another_takes_it_over_when_the_leader_dies() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    let (_stop, mut stopped) = tokio::sync::watch::channel(false);
    let mut lead = a.lead("intake", &mut stopped).await.unwrap().expect("the first hub to ask leads");
    // b asks while a leads: it waits.
    let waiting = tokio::time::timeout(Duration::from_secs(3), b.lead("intake", &mut stopped)).await;
    assert!(waiting.is_err(), "one leader at a time");
    let mut other = b.lead("rules", &mut stopped).await.unwrap().expect("another part has its own lead");
    // a gives the lead up (its process dies): b takes it over.
    let takes_over = {
        let b = b.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move { b.lead("intake", &mut stopped).await.unwrap().is_some() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(lead);
    assert!(tokio::time::timeout(Duration::from_secs(10), takes_over).await.unwrap().unwrap());
    // A lead lost is told.
    drop(a);
    tokio::select! {
        _ = other.lost() => panic!("b's lead of the rules is its own"),
        _ = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    lead = b.lead("pollers", &mut stopped).await.unwrap().unwrap();
    drop((lead, other, b));
    schema.drop().await.unwrap();
}

/// `b` takes `part` over from `a`: `a`'s leading session ends (as the server ends a paused
/// hub's once it stops pinging) and `b`, asking, gets the lead. `a` keeps its epoch, as a
/// paused hub does, so its writes after this are those of a former leader.
async fn take_over(a_lead: Leadership, b: &PgStore, part: &str) -> Leadership {
    let (_stop, mut stopped) = tokio::sync::watch::channel(false);
    drop(a_lead);
    tokio::time::timeout(Duration::from_secs(10), b.lead(part, &mut stopped))
        .await
        .expect("b takes the lead once a's session is gone")
        .unwrap()
        .unwrap()
}

async fn lead(hub: &PgStore, part: &str) -> Leadership {
    let (_stop, mut stopped) = tokio::sync::watch::channel(false);
    hub.lead(part, &mut stopped).await.unwrap().expect("the first hub to ask leads")
}

fn lead_lost(refused: handoff_store::StoreError, part: &str) {
    assert!(matches!(&refused, handoff_store::StoreError::LeadLost { part: p } if p == part), "{refused}");
}

/// A hub paused past the loss of its intake lead, another hub leading intake since, plans
/// nothing when it wakes: its plans (and their journal entries) are refused, the new
/// leader's go.
#[tokio::test]
async fn a_former_leader_plans_nothing_after_its_lead_was_taken_over() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    let plan = |event_row, n| Plan {
        event_row,
        order_ref: "#1".into(),
        state: OrderState { source: "shop".into(), ..Default::default() },
        ledger: None,
        commands: vec![command("#1", n)],
        audit: vec![],
        search: Default::default(),
    };
    let a_lead = lead(&a, INTAKE_LEAD).await;
    let Recorded::New(first) = a.record_event(event("e1", "#1")).await.unwrap() else { panic!("new") };
    a.apply_plans(vec![plan(first, 1)], t0()).await.unwrap();

    let taken = take_over(a_lead, &b, INTAKE_LEAD).await;
    let Recorded::New(second) = a.record_event(event("e2", "#1")).await.unwrap() else { panic!("new") };
    lead_lost(a.apply_plans(vec![plan(second, 2)], t0()).await.unwrap_err(), INTAKE_LEAD);
    let unplanned: Vec<i64> = b.unprocessed_events(10).await.unwrap().iter().map(|e| e.row).collect();
    assert_eq!(unplanned, [second], "nothing of the refused plan was written");
    assert_eq!(b.facts_after(0, 10).await.unwrap().len(), 1, "nor journalled");

    b.apply_plans(vec![plan(second, 2)], t0()).await.unwrap();
    assert!(b.unprocessed_events(10).await.unwrap().is_empty());
    assert_eq!(b.facts_after(0, 10).await.unwrap().len(), 2);
    drop((taken, a, b));
    schema.drop().await.unwrap();
}

fn finding(order_ref: &str) -> NewFinding {
    NewFinding {
        pattern: Pattern::MissingOrder,
        order_ref: order_ref.into(),
        subject: "erp".into(),
        flow: None,
        field: None,
        channel: None,
        amount: None,
        currency: None,
        detail: "not in the ERP".into(),
        action: "{}".into(),
        evidence: "{}".into(),
    }
}

/// A former leader of the rules driver, waking in the middle of a step, raises, clears, takes
/// and checkpoints nothing: each of its writes is refused, and the new leader's go.
#[tokio::test]
async fn a_former_rules_leader_writes_no_finding_after_its_lead_was_taken_over() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    let a_lead = lead(&a, RULES_LEAD).await;
    let Raised::Opened(open) = a.raise_finding(finding("#1"), t0()).await.unwrap() else { panic!("opened") };
    let Raised::Opened(resolved) = a.raise_finding(finding("#2"), t0()).await.unwrap() else { panic!("opened") };
    // A person resolves one: the rules are to check it again.
    b.move_exception(resolved, ExceptionState::Resolved, "ops".into(), None, t0()).await.unwrap();

    let taken = take_over(a_lead, &b, RULES_LEAD).await;
    lead_lost(a.raise_finding(finding("#3"), t0()).await.unwrap_err(), RULES_LEAD);
    lead_lost(a.clear_finding(Pattern::MissingOrder, "#1".into(), "erp".into(), t0()).await.unwrap_err(), RULES_LEAD);
    lead_lost(a.take_rechecks(10).await.unwrap_err(), RULES_LEAD);
    let checkpoint = CheckpointMove { position: 7, joined: vec!["#1".into()], left: vec![] };
    lead_lost(a.move_rules_checkpoint(checkpoint.clone()).await.unwrap_err(), RULES_LEAD);

    let states: Vec<(String, String)> =
        b.exceptions(None, 10).await.unwrap().into_iter().rev().map(|x| (x.order_ref, x.state)).collect();
    assert_eq!(states, [("#1".into(), "open".into()), ("#2".into(), "resolved".into())], "none raised or cleared");
    assert_eq!(b.rules_checkpoint().await.unwrap(), None, "no checkpoint");
    let rechecks: Vec<i64> = b.take_rechecks(10).await.unwrap().iter().map(|x| x.id).collect();
    assert_eq!(rechecks, [resolved], "the recheck was left for the new leader");

    assert!(b.clear_finding(Pattern::MissingOrder, "#1".into(), "erp".into(), t0()).await.unwrap());
    assert_eq!(b.exception(open).await.unwrap().unwrap().state, "auto_resolved");
    b.move_rules_checkpoint(checkpoint).await.unwrap();
    assert_eq!(b.rules_checkpoint().await.unwrap(), Some(RulesCheckpoint { position: 7, orders: vec!["#1".into()] }));
    drop((taken, a, b));
    schema.drop().await.unwrap();
}

/// A former leader of a poller records neither the page it read nor its cursor: the new
/// leader polls on from the cursor it finds. Another system's poller is its own lead.
#[tokio::test]
async fn a_former_poller_records_no_page_after_its_lead_was_taken_over() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    let part = poller_lead("shop");
    let a_lead = lead(&a, &part).await;
    let _other = lead(&a, &poller_lead("market")).await;
    a.record_polled("shop".into(), vec![event("e1", "#1")], vec![], "c1".into(), t0()).await.unwrap();

    let taken = take_over(a_lead, &b, &part).await;
    let held = NewQuarantined {
        system: "shop".into(),
        source: QuarantineSource::Poll,
        fingerprint: "f1".into(),
        order_ref: Some("#2".into()),
        headers: Default::default(),
        body: b"{}".to_vec(),
        field: "line_items".into(),
        reason: "unreadable".into(),
        source_version: None,
        flow: None,
        received_at: t0(),
    };
    let refused = a.record_polled("shop".into(), vec![event("e2", "#2")], vec![held], "c2".into(), t0()).await;
    lead_lost(refused.unwrap_err(), &part);
    assert_eq!(b.poll_cursor("shop".into()).await.unwrap().as_deref(), Some("c1"), "the cursor stayed");
    let events: Vec<String> = b.unprocessed_events(10).await.unwrap().into_iter().map(|e| e.event_id).collect();
    assert_eq!(events, ["e1"], "no event of the refused page");
    assert!(b.quarantined(None, 10).await.unwrap().is_empty(), "nothing of it held");
    // a still leads the other system's poller.
    a.record_polled("market".into(), vec![], vec![], "m1".into(), t0()).await.unwrap();

    b.record_polled("shop".into(), vec![event("e2", "#2")], vec![], "c2".into(), t0()).await.unwrap();
    assert_eq!(b.poll_cursor("shop".into()).await.unwrap().as_deref(), Some("c2"));
    drop((taken, a, b));
    schema.drop().await.unwrap();
}

/// A former leader of the purge removes nothing; the new leader's purge does. A tool that never
/// led the purge (`handoff purge`, a dry run) is not fenced.
#[tokio::test]
async fn a_former_purge_leader_removes_nothing_after_its_lead_was_taken_over() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    let a_lead = lead(&a, PURGE_LEAD).await;
    a.record_event(NewEvent { raw: Some("personal".into()), ..event("e1", "#1") }).await.unwrap();
    let (day, before) = (jiff::SignedDuration::from_hours(24), t0() - jiff::SignedDuration::from_hours(24));
    let before = PurgeBefore { personal_data: t0() + day, history: before, dedup: before };

    let taken = take_over(a_lead, &b, PURGE_LEAD).await;
    lead_lost(a.purge(before, 100, false).await.unwrap_err(), PURGE_LEAD);
    let dry = a.purge(before, 100, true).await.unwrap();
    assert_eq!(dry.inbox_scrubbed, 1, "the raw body is still there");

    assert_eq!(b.purge(before, 100, false).await.unwrap().inbox_scrubbed, 1);
    assert_eq!(b.purge(before, 100, true).await.unwrap().inbox_scrubbed, 0);
    drop((taken, a, b));
    schema.drop().await.unwrap();
}

#[tokio::test]
async fn an_event_the_database_refuses_fails_alone_not_the_events_committed_with_it() {
    let Some((a, b, schema)) = two_hubs().await else { return };
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let a = a.clone();
            // PostgreSQL text holds no NUL: this one raw body is refused.
            let raw = (i == 7).then(|| "bad\u{0}body".to_owned());
            tokio::spawn(async move { a.record_event(NewEvent { raw, ..event(&format!("e{i}"), "#1") }).await })
        })
        .collect();
    let mut refused = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await.unwrap().is_err() {
            refused.push(i);
        }
    }
    assert_eq!(refused, vec![7]);
    assert_eq!(a.unprocessed_events(100).await.unwrap().len(), 19);
    drop((a, b));
    schema.drop().await.unwrap();
}

#[tokio::test]
async fn a_test_schema_goes_even_when_its_test_panics() {
    let Some(url) = testing::test_database_url() else { return };
    let schema = testing::TestSchema::create(&url).await.unwrap();
    let name = schema.name.clone();
    let panicked = tokio::spawn(async move {
        let _schema = schema;
        panic!("a failing test");
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let left: i64 =
        client.query_one("SELECT count(*) FROM pg_namespace WHERE nspname = $1", &[&name]).await.unwrap().get(0);
    assert_eq!(left, 0, "{name} was dropped as the test unwound");
}

/// Outcomes reported together are recorded together (a group commit), yet each keeps its own
/// fencing check and its own answer: the claims taken over are refused, a claim reported twice
/// is recorded once, an outcome the database refuses fails alone, and the store holds exactly
/// the others' rows. The same with each outcome in its own transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outcomes_recorded_together_each_keep_their_fencing_and_their_answer() {
    for batch_attempts in [true, false] {
        let Some(url) = testing::test_database_url() else { return };
        let schema = testing::TestSchema::create(&url).await.unwrap();
        let options = handoff_store::postgres::PgOptions { batch_attempts, ..schema.options() };
        let a = PgStore::open(&url, options.clone()).await.unwrap();
        let b = PgStore::open(&url, options).await.unwrap();
        const ORDERS: usize = 60;
        const TAKEN: usize = 15;
        for o in 0..ORDERS {
            one_command(&a, &format!("#{o:02}")).await;
        }
        let secs = |n: i64| t0().checked_add(jiff::SignedDuration::from_secs(n)).unwrap();
        // a claims the first commands at 0 s and the others at 300 s; b takes over the first
        // ones when their lease ends, at 600 s.
        let mut claims = a.claim_due(t0(), TAKEN).await.unwrap();
        claims.extend(a.claim_due(secs(300), ORDERS).await.unwrap());
        assert_eq!(claims.len(), ORDERS);
        let taken = b.claim_due(secs(600), ORDERS).await.unwrap();
        assert_eq!(taken.len(), TAKEN);
        let taken_ids: HashSet<i64> = taken.iter().map(|c| c.id).collect();

        let outcome = |i: usize, c: &handoff_store::Command| match i % 3 {
            0 => Outcome::Acknowledged { record_id: format!("r{}-{}", c.id, c.attempts) },
            1 => Outcome::Retry { at: secs(900), ambiguous: false, error: "HTTP 503".into() },
            _ => Outcome::DeadLettered {
                ambiguous: false,
                error: "HTTP 400".into(),
                field: None,
                pattern: handoff_model::Pattern::DeadDelivery,
            },
        };
        let mut reports: Vec<(PgStore, AttemptRecord)> = Vec::new();
        for (i, c) in claims.iter().enumerate() {
            let record = AttemptRecord { outcome: outcome(i, c), ..acknowledged(c.clone()) };
            reports.push((a.clone(), record));
        }
        // The database refuses a NUL in text: this dead letter's exception fails when the
        // batch's attempts are already written, so its whole batch fails, and its others are
        // then written one by one.
        let refused = claims.iter().position(|c| !taken_ids.contains(&c.id)).unwrap() + 1;
        reports[refused].1.outcome = Outcome::DeadLettered {
            ambiguous: false,
            error: "HTTP 400".into(),
            field: Some("bad\u{0}field".into()),
            pattern: handoff_model::Pattern::DeadDelivery,
        };
        // A live claim reported twice.
        let twice = claims.iter().rposition(|c| !taken_ids.contains(&c.id)).unwrap();
        reports.push(reports[twice].clone());
        // b's live claims, half of them through a, beside a's stale claims of the same commands.
        for (i, c) in taken.iter().enumerate() {
            let through = if i % 2 == 0 { a.clone() } else { b.clone() };
            reports.push((through, acknowledged(c.clone())));
        }
        let tasks: Vec<_> = reports
            .iter()
            .cloned()
            .map(|(store, record)| tokio::spawn(async move { store.record_attempt(record).await }))
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }

        let mut recorded: HashMap<i64, (u32, &'static str)> = HashMap::new();
        let mut twice_recorded = 0;
        for (i, ((_, record), answer)) in reports.iter().zip(&answers).enumerate() {
            let c = &record.command;
            if i < ORDERS && taken_ids.contains(&c.id) {
                assert!(
                    matches!(answer, Err(handoff_store::StoreError::StaleClaim { command, attempt: 1 }) if *command == c.id),
                    "{batch_attempts}: the claim taken over is refused: {answer:?}"
                );
            } else if i == refused {
                assert!(answer.is_err(), "{batch_attempts}: the NUL is refused");
                assert!(!matches!(answer, Err(handoff_store::StoreError::StaleClaim { .. })), "{answer:?}");
            } else if c.id == claims[twice].id {
                twice_recorded += usize::from(answer.is_ok());
                if answer.is_ok() {
                    recorded.insert(c.id, (c.attempts, record.outcome.name()));
                }
            } else {
                assert!(answer.is_ok(), "{batch_attempts}: command {} recorded: {answer:?}", c.id);
                recorded.insert(c.id, (c.attempts, record.outcome.name()));
            }
        }
        assert_eq!(twice_recorded, 1, "{batch_attempts}: a claim reported twice is recorded once");
        assert_eq!(recorded.len(), ORDERS - 1, "every command but the refused one");

        // Exactly the recorded outcomes' rows: one attempt each, under its claim's count.
        let mut states: HashMap<String, u64> = HashMap::new();
        let mut expected_facts: Vec<String> = Vec::new();
        for c in &claims {
            let timeline = a.order_timeline(c.order_ref.clone()).await.unwrap();
            let attempts: Vec<(u32, &str)> =
                timeline.attempts.iter().map(|r| (r.attempt, r.outcome.as_str())).collect();
            let command = &timeline.commands[0];
            *states.entry(command.state.as_str().to_owned()).or_default() += 1;
            match recorded.get(&c.id) {
                Some((attempt, outcome)) => {
                    assert_eq!(attempts, vec![(*attempt, *outcome)], "{batch_attempts}: {}", c.order_ref);
                    match *outcome {
                        "acknowledged" => expected_facts.push(format!("{} acknowledged", c.order_ref)),
                        "dead_lettered" => expected_facts.push(format!("{} dead_lettered", c.order_ref)),
                        _ => {}
                    }
                    assert_eq!(timeline.exceptions.len(), usize::from(*outcome == "dead_lettered"));
                }
                None => {
                    assert!(attempts.is_empty(), "{batch_attempts}: nothing of the refused outcome");
                    assert_eq!(command.state.as_str(), "in_flight");
                }
            }
        }
        let acknowledged_n = recorded.values().filter(|(_, o)| *o == "acknowledged").count() as u64;
        let dead_n = recorded.values().filter(|(_, o)| *o == "dead_lettered").count() as u64;
        let pending_n = recorded.values().filter(|(_, o)| *o == "retry").count() as u64;
        assert_eq!(states.get("acknowledged").copied().unwrap_or(0), acknowledged_n);
        assert_eq!(states.get("dead_lettered").copied().unwrap_or(0), dead_n);
        assert_eq!(states.get("pending").copied().unwrap_or(0), pending_n);
        assert_eq!(states.get("in_flight").copied().unwrap_or(0), 1);
        // The journal holds each acknowledgment and dead letter once, and nothing else of them.
        let mut facts: Vec<String> = a
            .facts_after(0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.command_id.is_some())
            .map(|f| format!("{} {}", f.order_ref, f.kind.split(':').next().unwrap()))
            .collect();
        facts.sort();
        expected_facts.sort();
        assert_eq!(facts, expected_facts, "{batch_attempts}");
        drop((a, b));
        schema.drop().await.unwrap();
    }
}
