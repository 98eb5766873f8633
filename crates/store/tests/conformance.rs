//! The store's promises, on every implementation: memory, SQLite and PostgreSQL (the last on
//! the database `HANDOFF_TEST_DATABASE_URL` names, each test in a schema of its own).

use handoff_model::{CommandKind, CommandState, EventKind};
use handoff_store::memory::MemoryStore;
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use handoff_store::{
    AttemptRecord, NewCommand, NewEvent, NewQuarantined, OrderState, Outcome, Plan, QuarantineSource, QuarantineState,
    Recorded, Released, Replay, SearchFields, Store, Topic,
};
use jiff::{SignedDuration, Timestamp};

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

/// Runs each named test against every store implementation: one conformance suite.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let store = super::SqliteStore::open(dir.path(), super::SqliteOptions::default()).unwrap();
                super::$name(store).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                handoff_store::postgres::testing::with_store(super::$name).await;
            })*
        }
        mod memory {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::MemoryStore::new()).await;
            })*
        }
    };
}

conformance!(
    a_duplicate_event_is_recorded_once,
    unplanned_events_are_read_without_their_raw_bodies_and_counted_up_to_a_bound,
    a_claim_that_finds_nothing_wakes_nobody_and_a_new_event_does,
    a_token_is_found_by_its_hash_until_revoked_or_expired,
    a_poll_records_its_events_and_cursor_together,
    many_concurrent_writers_share_commits_and_all_land,
    one_event_delivered_many_times_at_once_is_new_once,
    a_cancel_supersedes_a_create_never_sent,
    a_cancel_waits_behind_its_create_in_flight_without_blocking_other_orders,
    a_command_waiting_behind_one_superseded_goes_next,
    in_flight_commands_are_read_back_after_a_restart,
    a_dead_letter_opens_an_exception_and_replays_with_a_fresh_budget,
    a_person_acknowledges_resolves_or_ignores_an_exception_and_is_audited,
    a_retry_waits_until_it_is_due,
    the_rules_journal_holds_events_and_command_outcomes_in_order,
    a_finding_is_raised_once_clears_itself_and_reopens_after_a_person_resolves_it,
    an_action_queues_a_command_once,
    a_duplicates_cancel_leaves_the_orders_record_kept,
    flow_stats_count_attempts_retries_dead_letters_and_latency,
    an_audit_line_is_written_with_its_actor,
    a_body_no_reader_maps_is_held_once_with_its_exception,
    a_poll_holds_the_records_it_cannot_map_and_still_moves_its_cursor,
    a_held_body_replays_into_the_inbox_once,
    an_order_keeps_its_last_version_and_what_it_said,
    the_rules_checkpoint_and_an_orders_journal_and_raised_findings_are_kept,
    a_resolved_dead_letter_is_abandoned_and_its_orders_later_commands_go,
    a_dead_letter_abandoned_outright_resolves_its_exception_and_tells_the_rules,
    console_users_and_sessions_open_redeem_and_end_once,
    orders_are_searched_by_reference_email_channel_state_and_time_in_keyset_pages,
    exceptions_are_searched_and_clustered_with_money_summed_exactly,
    commands_and_the_audit_log_are_searched_newest_first,
    flow_health_counts_each_bucket_of_the_window,
    held_bodies_are_listed_newest_first_in_keyset_pages,
);

fn event(id: &str, kind: EventKind, order_ref: &str) -> NewEvent {
    NewEvent {
        system: "shop".into(),
        event_id: id.into(),
        kind,
        order_ref: order_ref.into(),
        received_at: t0(),
        payload: "{}".into(),
        raw: None,
    }
}

fn command(order_ref: &str, kind: CommandKind) -> NewCommand {
    NewCommand {
        flow: "orders".into(),
        target: "erp".into(),
        order_ref: order_ref.into(),
        kind,
        idempotency_key: format!("{order_ref}:{kind}"),
        external_ref: order_ref.into(),
        version: None,
        payload: "{}".into(),
        supersede_unsent: kind == CommandKind::CancelOrder,
    }
}

async fn plan<S: Store>(store: &S, row: i64, commands: Vec<NewCommand>) {
    let order_ref = commands[0].order_ref.clone();
    let p = Plan {
        event_row: row,
        order_ref,
        state: OrderState { source: "shop".into(), ..Default::default() },
        ledger: None,
        commands,
        audit: vec![],
        search: Default::default(),
    };
    store.apply_plans(vec![p], t0()).await.unwrap();
}

async fn new_event<S: Store>(store: &S, id: &str, kind: EventKind, order_ref: &str) -> i64 {
    match store.record_event(event(id, kind, order_ref)).await.unwrap() {
        Recorded::New(row) => row,
        Recorded::Duplicate(_) => panic!("{id} is new"),
    }
}

async fn a_duplicate_event_is_recorded_once<S: Store + Clone>(store: S) {
    let first = store.record_event(event("e1", EventKind::OrderCreated, "#1")).await.unwrap();
    let again = store.record_event(event("e1", EventKind::OrderCreated, "#1")).await.unwrap();
    let Recorded::New(row) = first else { panic!("first is new") };
    assert_eq!(again, Recorded::Duplicate(row));
    assert_eq!(store.unprocessed_events(10).await.unwrap().len(), 1);
}

/// Intake reads the canonical payload of the events it has not planned, not the vendor's body
/// (the timeline still shows it); the backlog is counted without reading the events.
async fn unplanned_events_are_read_without_their_raw_bodies_and_counted_up_to_a_bound<S: Store + Clone>(store: S) {
    for i in 0..3 {
        let raw = Some(format!(r#"{{"id":{i},"vendor":"body"}}"#));
        store.record_event(NewEvent { raw, ..event(&format!("e{i}"), EventKind::OrderCreated, "#1") }).await.unwrap();
    }
    let unplanned = store.unprocessed_events(10).await.unwrap();
    let read: Vec<(&str, &str, Option<&str>)> =
        unplanned.iter().map(|e| (e.event_id.as_str(), e.payload.as_str(), e.raw.as_deref())).collect();
    assert_eq!(read, [("e0", "{}", None), ("e1", "{}", None), ("e2", "{}", None)]);
    let timeline = store.order_timeline("#1".into()).await.unwrap();
    assert_eq!(timeline.events[2].raw.as_deref(), Some(r#"{"id":2,"vendor":"body"}"#), "kept, and shown");
    assert_eq!(store.count_unplanned(1000).await.unwrap(), 3);
    assert_eq!(store.count_unplanned(2).await.unwrap(), 2, "counted up to the bound");
    plan(&store, unplanned[0].row, vec![command("#1", CommandKind::CreateOrder)]).await;
    assert_eq!(store.count_unplanned(1000).await.unwrap(), 2);
}

/// The hub's tasks sleep on the store's wakes between steps: if a claim that found nothing woke
/// the dispatcher, it would claim again at once, for ever.
async fn a_claim_that_finds_nothing_wakes_nobody_and_a_new_event_does<S: Store + Clone>(store: S) {
    let mut changed = store.subscribe();
    changed.mark_unchanged();
    assert!(store.claim_due(t0(), 10).await.unwrap().is_empty());
    assert!(store.claim_due_to("erp".into(), t0(), 10).await.unwrap().is_empty());
    assert!(store.claim_due_except(vec!["erp".into()], t0(), 10).await.unwrap().is_empty());
    assert!(!changed.has_changed().unwrap(), "an empty claim woke the waiters");
    store.record_event(event("e1", EventKind::OrderCreated, "#1")).await.unwrap();
    assert!(changed.has_changed().unwrap(), "a new event did not wake the waiters");
    let [events, journal, commands] = wakes(&store);
    let row = new_event(&store, "e2", EventKind::OrderCreated, "#2").await;
    assert!(events.has_changed().unwrap(), "a new event did not wake intake");
    plan(&store, row, vec![command("#2", CommandKind::CreateOrder)]).await;
    assert!(journal.has_changed().unwrap(), "a journal entry did not wake the rules");
    assert!(commands.has_changed().unwrap(), "a new command did not wake the dispatcher");
}

/// The wakes of intake, the rules and the dispatcher, none of them changed yet.
fn wakes<S: Store>(store: &S) -> [tokio::sync::watch::Receiver<u64>; 3] {
    [Topic::Events, Topic::Journal, Topic::Commands].map(|topic| {
        let mut woken = store.subscribe_to(topic);
        woken.mark_unchanged();
        woken
    })
}

/// SQLite's writer tells which tables a commit changed: intake wakes for events recorded, the
/// rules for journal entries and exceptions, the dispatcher for commands, each not for the
/// others' writes.
#[tokio::test]
async fn sqlite_wakes_each_task_for_its_own_topic() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let [mut events, mut journal, mut commands] = wakes(&store);
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    assert!(events.has_changed().unwrap(), "a recorded event did not wake intake");
    assert!(!journal.has_changed().unwrap(), "a recorded event woke the rules");
    assert!(!commands.has_changed().unwrap(), "a recorded event woke the dispatcher");
    events.mark_unchanged();

    plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
    assert!(!events.has_changed().unwrap(), "intake's own plan woke it");
    assert!(journal.has_changed().unwrap(), "a journal entry did not wake the rules");
    assert!(commands.has_changed().unwrap(), "a new command did not wake the dispatcher");
    journal.mark_unchanged();
    commands.mark_unchanged();

    let claimed = store.claim_due(t0() + jiff::SignedDuration::from_secs(3600), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(commands.has_changed().unwrap(), "a claim did not wake the dispatcher");
    assert!(!journal.has_changed().unwrap() && !events.has_changed().unwrap(), "a claim woke intake or the rules");

    store.raise_finding(finding("erp"), t0()).await.unwrap();
    assert!(journal.has_changed().unwrap(), "an exception changed did not wake the rules");
    assert!(!events.has_changed().unwrap(), "an exception woke intake");
}

async fn a_poll_records_its_events_and_cursor_together<S: Store + Clone>(store: S) {
    assert_eq!(store.poll_cursor("shop".into()).await.unwrap(), None);
    let webhook = store.record_event(event("e1", EventKind::OrderCreated, "#1")).await.unwrap();
    let page = vec![event("e1", EventKind::OrderCreated, "#1"), event("e2", EventKind::OrderCreated, "#2")];
    let recorded = store.record_polled("shop".into(), page, vec![], "c1".into(), t0()).await.unwrap();
    assert_eq!(
        recorded[0],
        Recorded::Duplicate(match webhook {
            Recorded::New(row) => row,
            Recorded::Duplicate(_) => panic!("first is new"),
        })
    );
    assert!(matches!(recorded[1], Recorded::New(_)));
    assert_eq!(store.poll_cursor("shop".into()).await.unwrap().as_deref(), Some("c1"));
    store.record_polled("shop".into(), vec![], vec![], "c2".into(), t0()).await.unwrap();
    assert_eq!(store.poll_cursor("shop".into()).await.unwrap().as_deref(), Some("c2"));
    assert_eq!(store.poll_cursor("erp".into()).await.unwrap(), None);
    assert_eq!(store.unprocessed_events(10).await.unwrap().len(), 2);
}

async fn an_order_keeps_its_last_version_and_what_it_said<S: Store + Clone>(store: S) {
    let row = new_event(&store, "e1", EventKind::OrderUpdated, "#1").await;
    let state = OrderState {
        source: "shop".into(),
        created: true,
        cancelled: false,
        last_version: Some(1_782_918_000_000),
        last_fingerprint: Some("0123456789abcdef".into()),
    };
    let p = Plan {
        event_row: row,
        order_ref: "#1".into(),
        state: state.clone(),
        ledger: None,
        commands: vec![],
        audit: vec![],
        search: Default::default(),
    };
    store.apply_plans(vec![p], t0()).await.unwrap();
    assert_eq!(store.order_states(vec!["#1".into()]).await.unwrap().get("#1"), Some(&state));
}

async fn many_concurrent_writers_share_commits_and_all_land<S: Store + Clone>(store: S) {
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.record_event(event(&format!("e{i}"), EventKind::OrderCreated, &format!("#{i}"))).await
            })
        })
        .collect();
    for t in tasks {
        assert!(matches!(t.await.unwrap().unwrap(), Recorded::New(_)));
    }
    assert_eq!(store.unprocessed_events(1000).await.unwrap().len(), 500);
}

async fn one_event_delivered_many_times_at_once_is_new_once<S: Store + Clone>(store: S) {
    // Redeliveries arriving together may share one group commit: still one row, one `New`.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            let id = if i % 2 == 0 { "same" } else { "other" };
            tokio::spawn(async move { store.record_event(event(id, EventKind::OrderCreated, "#1")).await })
        })
        .collect();
    let mut recorded = Vec::new();
    for t in tasks {
        recorded.push(t.await.unwrap().unwrap());
    }
    let new: Vec<i64> =
        recorded.iter().filter_map(|r| if let Recorded::New(row) = r { Some(*row) } else { None }).collect();
    assert_eq!(new.len(), 2, "{recorded:?}");
    for r in &recorded {
        let (Recorded::New(row) | Recorded::Duplicate(row)) = r;
        assert!(new.contains(row), "a duplicate names the row recorded: {recorded:?}");
    }
    assert_eq!(store.unprocessed_events(100).await.unwrap().len(), 2);
}

async fn a_cancel_supersedes_a_create_never_sent<S: Store + Clone>(store: S) {
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
    let row = new_event(&store, "e2", EventKind::OrderCancelled, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CancelOrder)]).await;
    assert!(store.claim_due(t0(), 10).await.unwrap().is_empty(), "nothing is left to send");
    let t = store.order_timeline("#1".into()).await.unwrap();
    let states: Vec<CommandState> = t.commands.iter().map(|c| c.state).collect();
    assert_eq!(states, vec![CommandState::Superseded, CommandState::Superseded]);
}

async fn a_cancel_waits_behind_its_create_in_flight_without_blocking_other_orders<S: Store + Clone>(store: S) {
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
    let create = store.claim_due(t0(), 10).await.unwrap();
    assert_eq!(create.len(), 1);
    let row = new_event(&store, "e2", EventKind::OrderCancelled, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CancelOrder)]).await;
    let row = new_event(&store, "e3", EventKind::OrderCreated, "#2").await;
    plan(&store, row, vec![command("#2", CommandKind::CreateOrder)]).await;

    let claimed = store.claim_due(t0(), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.order_ref.as_str()).collect::<Vec<_>>(), vec!["#2"], "#1's cancel waits");

    let ack = Outcome::Acknowledged { record_id: "r1".into() };
    store
        .record_attempt(AttemptRecord {
            command: create[0].clone(),
            started_at: t0(),
            finished_at: t0(),
            outcome: ack,
            note: None,
            mapping: Some("erp/order@1".into()),
        })
        .await
        .unwrap();
    let claimed = store.claim_due(t0(), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].kind, CommandKind::CancelOrder);
    let attempts = store.order_timeline("#1".into()).await.unwrap().attempts;
    assert_eq!(attempts[0].mapping.as_deref(), Some("erp/order@1"), "the mapping version is kept with the attempt");
}

/// A fulfillment queued behind an update never sent, which a later update supersedes: the
/// fulfillment is first of its order now, and goes before the update that came after it.
async fn a_command_waiting_behind_one_superseded_goes_next<S: Store + Clone>(store: S) {
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    let update = |key: &str| NewCommand {
        idempotency_key: key.into(),
        supersede_unsent: true,
        ..command("#1", CommandKind::UpdateOrder)
    };
    plan(&store, row, vec![update("u1"), command("#1", CommandKind::CreateFulfillment)]).await;
    let row = new_event(&store, "e2", EventKind::OrderUpdated, "#1").await;
    plan(&store, row, vec![update("u2")]).await;
    let claimed = store.claim_due(t0(), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.kind).collect::<Vec<_>>(), vec![CommandKind::CreateFulfillment]);
    let ack = Outcome::Acknowledged { record_id: "f1".into() };
    attempt(&store, claimed.into_iter().next().unwrap(), t0(), ack).await;
    let claimed = store.claim_due(t0(), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.idempotency_key.as_str()).collect::<Vec<_>>(), vec!["u2"]);
    let t = store.order_timeline("#1".into()).await.unwrap();
    let states: Vec<CommandState> = t.commands.iter().map(|c| c.state).collect();
    assert_eq!(states, vec![CommandState::Superseded, CommandState::Acknowledged, CommandState::InFlight]);
}

async fn in_flight_commands_are_read_back_after_a_restart<S: Store + Clone>(store: S) {
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
    let slow = NewCommand {
        target: "slow".into(),
        idempotency_key: "k-slow".into(),
        ..command("#1", CommandKind::CreateOrder)
    };
    plan(&store, row, vec![slow]).await;
    assert_eq!(store.claim_due(t0(), 10).await.unwrap().len(), 2);
    // The process stops here; the next one starts by recovering: each command is read back
    // after its own target's settle time.
    let secs = |n: i64| t0().checked_add(SignedDuration::from_secs(n)).unwrap();
    let read_back_at = [("erp".to_owned(), secs(5)), ("slow".to_owned(), secs(60))].into_iter().collect();
    assert_eq!(store.recover_in_flight(t0(), read_back_at).await.unwrap(), 2);
    assert!(store.claim_due(secs(4), 10).await.unwrap().is_empty());
    assert!(store.claim_due_to("slow".into(), secs(5), 10).await.unwrap().is_empty());
    let claimed = store.claim_due_to("erp".into(), secs(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(claimed[0].ambiguous, "the outcome of the interrupted send is unknown");
    assert_eq!((claimed[0].attempts, claimed[0].budget_attempts), (2, 2));
    // The target asks to come back later: the attempt is given back to the budget.
    let throttled = Outcome::Throttled { at: secs(30), ambiguous: true, error: "429".into() };
    attempt(&store, claimed.into_iter().next().unwrap(), secs(5), throttled).await;
    assert!(store.claim_due_to("erp".into(), secs(29), 10).await.unwrap().is_empty());
    let again = store.claim_due_to("erp".into(), secs(30), 10).await.unwrap();
    assert_eq!((again[0].attempts, again[0].budget_attempts), (3, 2));
    assert!(store.claim_due_except(vec!["slow".into()], secs(60), 10).await.unwrap().is_empty());
    assert_eq!(store.claim_due_except(vec!["erp".into()], secs(60), 10).await.unwrap()[0].target, "slow");
}

#[tokio::test]
async fn sqlite_keeps_in_flight_commands_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = handoff_store::sqlite::SqliteStore::open(dir.path(), Default::default()).unwrap();
        let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
        plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
        assert_eq!(store.claim_due(t0(), 10).await.unwrap().len(), 1);
    }
    let store = handoff_store::sqlite::SqliteStore::open(dir.path(), Default::default()).unwrap();
    assert_eq!(store.recover_in_flight(t0(), Default::default()).await.unwrap(), 1);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn postgres_keeps_in_flight_commands_across_a_reopen() {
    use handoff_store::postgres::{PgStore, testing};
    let Some(url) = testing::test_database_url() else { return };
    let schema = testing::TestSchema::create(&url).await.unwrap();
    {
        let store = PgStore::open(&url, schema.options()).await.unwrap();
        let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
        plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
        assert_eq!(store.claim_due(t0(), 10).await.unwrap().len(), 1);
    }
    let store = PgStore::open(&url, schema.options()).await.unwrap();
    // The first process's claim is free once its session has ended (its connections close
    // as it is dropped); until then another hub would leave it to its holder.
    let mut recovered = 0;
    for _ in 0..100 {
        recovered = store.recover_in_flight(t0(), Default::default()).await.unwrap();
        if recovered > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(recovered, 1);
    drop(store);
    schema.drop().await.unwrap();
}

async fn a_person_acknowledges_resolves_or_ignores_an_exception_and_is_audited<S: Store + Clone>(store: S) {
    use handoff_model::ExceptionState::{Acknowledged, Ignored, Open, Resolved};
    use handoff_store::Moved;
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
    let c = store.claim_due(t0(), 10).await.unwrap().remove(0);
    let dead = Outcome::DeadLettered {
        ambiguous: false,
        error: "422".into(),
        field: None,
        pattern: handoff_model::Pattern::DeadDelivery,
    };
    attempt(&store, c, t0(), dead).await;
    let id = store.exceptions(None, 10).await.unwrap()[0].id;
    let moved = |to, reason: Option<&str>| store.move_exception(id, to, "ada".into(), reason.map(Into::into), t0());

    assert!(matches!(moved(Acknowledged, None).await.unwrap(), Moved::Done(x) if x.state == "acknowledged"));
    assert!(matches!(moved(Acknowledged, None).await.unwrap(), Moved::Refused { from } if from == "acknowledged"));
    assert!(matches!(moved(Open, None).await.unwrap(), Moved::Refused { .. }), "reopening is the rules' business");
    assert!(matches!(moved(Ignored, Some("test order")).await.unwrap(), Moved::Done(x) if x.state == "ignored"));
    assert!(matches!(moved(Resolved, None).await.unwrap(), Moved::Refused { from } if from == "ignored"));
    assert!(matches!(
        store.move_exception(id + 99, Resolved, "ada".into(), None, t0()).await.unwrap(),
        Moved::NotFound
    ));
    let audit = store.order_timeline("#1".into()).await.unwrap().audit;
    assert!(
        audit.iter().any(|a| a.actor == "ada" && a.action == "ignored" && a.detail.contains("test order")),
        "{audit:?}"
    );
}

async fn a_dead_letter_opens_an_exception_and_replays_with_a_fresh_budget<S: Store + Clone>(store: S) {
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
    let c = store.claim_due(t0(), 10).await.unwrap().remove(0);
    let dead = Outcome::DeadLettered {
        ambiguous: false,
        error: "422".into(),
        field: Some("order.customer.name".into()),
        pattern: handoff_model::Pattern::DeadDelivery,
    };
    attempt(&store, c, t0(), dead).await;
    assert_eq!(store.dead_letters(10).await.unwrap().len(), 1);
    let open = store.exceptions(Some(handoff_model::ExceptionState::Open), 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].field.as_deref(), Some("order.customer.name"));
    let by_pattern = store.open_exceptions_by_pattern().await.unwrap();
    assert_eq!(by_pattern, [(open[0].pattern.clone(), 1)]);

    let later = t0().checked_add(SignedDuration::from_secs(60)).unwrap();
    let id = store.dead_letters(10).await.unwrap()[0].id;
    let pinned = r#"{"mapping":"erp/order@1"}"#.to_owned();
    assert!(store.set_dead_letter_payload(id, pinned.clone(), "ops".into(), later).await.unwrap());
    assert!(!store.set_dead_letter_payload(id + 100, pinned.clone(), "ops".into(), later).await.unwrap());
    assert_eq!(store.replay(Replay::All, "ops".into(), later).await.unwrap(), 1);
    let c = store.claim_due(later, 10).await.unwrap().remove(0);
    assert_eq!((c.attempts, c.budget_attempts, c.budget_start), (2, 1, later));
    assert_eq!(c.payload, pinned, "the replay sends the rewritten payload");
    assert!(
        !store.set_dead_letter_payload(id, "{}".into(), "ops".into(), later).await.unwrap(),
        "not a dead letter now"
    );
    assert!(store.dead_letters(10).await.unwrap().is_empty());
}

async fn a_retry_waits_until_it_is_due<S: Store + Clone>(store: S) {
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
    let c = store.claim_due(t0(), 10).await.unwrap().remove(0);
    let at = t0().checked_add(SignedDuration::from_secs(5)).unwrap();
    let retry = Outcome::Retry { at, ambiguous: true, error: "timeout".into() };
    attempt(&store, c, t0(), retry).await;
    assert!(store.claim_due(t0(), 10).await.unwrap().is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), Some(at));
    let c = store.claim_due(at, 10).await.unwrap().remove(0);
    assert!(c.ambiguous);
}

#[tokio::test]
async fn an_honest_memory_store_loses_nothing_on_power_loss() {
    let store = MemoryStore::new();
    new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    store.power_loss();
    assert_eq!(store.unprocessed_events(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_store_acknowledging_before_durable_loses_unflushed_writes() {
    let store = MemoryStore::acknowledging_before_durable();
    new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    store.flush();
    new_event(&store, "e2", EventKind::OrderCreated, "#2").await;
    store.power_loss();
    let left: Vec<String> = store.unprocessed_events(10).await.unwrap().into_iter().map(|e| e.event_id).collect();
    assert_eq!(left, vec!["e1"]);
}

async fn the_rules_journal_holds_events_and_command_outcomes_in_order<S: Store + Clone>(store: S) {
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    let sent = NewCommand { payload: r#"{"sent":true}"#.into(), ..command("#1", CommandKind::CreateOrder) };
    plan(&store, row, vec![sent]).await;
    let c = store.claim_due(t0(), 10).await.unwrap().remove(0);
    attempt(&store, c, t0(), Outcome::Acknowledged { record_id: "SO-1".into() }).await;
    let facts = store.facts_after(0, 10).await.unwrap();
    let seen: Vec<_> = facts.iter().map(|f| (f.system.as_str(), f.kind.as_str(), f.record_id.as_deref())).collect();
    assert_eq!(seen, vec![("shop", "order.created", None), ("erp", "acknowledged:create_order", Some("SO-1"))]);
    assert_eq!(facts[1].command_id, Some(1));
    assert_eq!(store.facts_after(facts[0].id, 10).await.unwrap().len(), 1);
    // The event's entry comes without its payload, read by row when wanted; the command's with.
    assert_eq!(facts[0].event_row, Some(row));
    assert_eq!(facts[0].payload, None);
    assert_eq!(facts[1].payload.as_deref(), Some(r#"{"sent":true}"#));
    let payloads = store.event_payloads(vec![row, row + 100]).await.unwrap();
    assert_eq!(payloads, vec![(row, "{}".to_owned())], "the event's payload by its row; a row not kept is absent");
    // Following an order again reads each entry whole.
    let whole = store.facts_of(vec!["#1".into()], i64::MAX).await.unwrap();
    let whole: Vec<_> = whole.iter().map(|f| f.payload.as_deref()).collect();
    assert_eq!(whole, vec![Some("{}"), Some(r#"{"sent":true}"#)]);
}

fn finding(subject: &str) -> handoff_store::NewFinding {
    handoff_store::NewFinding {
        pattern: handoff_model::Pattern::MissingOrder,
        order_ref: "#1".into(),
        subject: subject.into(),
        flow: Some("orders".into()),
        field: None,
        channel: Some("shop".into()),
        amount: Some("28.58".into()),
        currency: Some("EUR".into()),
        detail: "no ERP order".into(),
        action: r#"{"action":"create_erp_order"}"#.into(),
        evidence: "{}".into(),
    }
}

async fn a_finding_is_raised_once_clears_itself_and_reopens_after_a_person_resolves_it<S: Store + Clone>(store: S) {
    use handoff_model::{ExceptionState, Pattern};
    use handoff_store::Raised;
    let Raised::Opened(id) = store.raise_finding(finding(""), t0()).await.unwrap() else { panic!("opened") };
    assert_eq!(store.raise_finding(finding(""), t0()).await.unwrap(), Raised::AlreadyOpen(id));
    let x = store.exception(id).await.unwrap().unwrap();
    assert_eq!(
        (x.channel.as_deref(), x.amount.as_deref(), x.subject.as_deref()),
        (Some("shop"), Some("28.58"), Some(""))
    );
    assert!(store.clear_finding(Pattern::MissingOrder, "#1".into(), "".into(), t0()).await.unwrap());
    assert_eq!(store.exception(id).await.unwrap().unwrap().state, "auto_resolved");
    assert!(!store.clear_finding(Pattern::MissingOrder, "#1".into(), "".into(), t0()).await.unwrap());
    assert_eq!(store.raise_finding(finding(""), t0()).await.unwrap(), Raised::Reopened(id));

    assert!(store.take_rechecks(10).await.unwrap().is_empty());
    store.move_exception(id, ExceptionState::Resolved, "ada".into(), None, t0()).await.unwrap();
    let rechecks = store.take_rechecks(10).await.unwrap();
    assert_eq!(rechecks.iter().map(|x| x.id).collect::<Vec<_>>(), vec![id]);
    assert!(store.take_rechecks(10).await.unwrap().is_empty(), "handed out once");
    assert_eq!(store.raise_finding(finding(""), t0()).await.unwrap(), Raised::Reopened(id));
    let audit = store.order_timeline("#1".into()).await.unwrap().audit;
    assert!(audit.iter().any(|a| a.actor == "rule:missing_order" && a.action == "exception reopened"), "{audit:?}");
}

async fn an_action_queues_a_command_once<S: Store + Clone>(store: S) {
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    let c = command("#1", CommandKind::CreateOrder);
    let id = store.enqueue_action(7, row, c.clone(), "ada".into(), t0()).await.unwrap();
    assert!(id.is_some());
    assert_eq!(store.enqueue_action(7, row, c, "ada".into(), t0()).await.unwrap(), None);
    assert_eq!(store.claim_due(t0(), 10).await.unwrap().len(), 1);
    let audit = store.order_timeline("#1".into()).await.unwrap().audit;
    assert!(audit.iter().any(|a| a.actor == "ada" && a.action == "action"), "{audit:?}");
}

/// A cancel addressed to one record (a duplicate's) closes that record only: the order's
/// ledger row in that system keeps its state and names the record kept; the journal has the
/// record the target acknowledged.
async fn a_duplicates_cancel_leaves_the_orders_record_kept<S: Store + Clone>(store: S) {
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
    let create = store.claim_due(t0(), 10).await.unwrap().remove(0);
    attempt(&store, create, t0(), Outcome::Acknowledged { record_id: "R2".into() }).await;
    let address =
        handoff_model::RecordAddress { external_ref: "#1".into(), record_id: "R2".into(), keep: Some("R1".into()) };
    let cancel = NewCommand {
        idempotency_key: "#1:cancel:record-R2".into(),
        payload: address.payload(),
        supersede_unsent: false,
        ..command("#1", CommandKind::CancelOrder)
    };
    store.enqueue_action(7, row, cancel, "ada".into(), t0()).await.unwrap().expect("queued");
    let cancel = store.claim_due(t0(), 10).await.unwrap().remove(0);
    attempt(&store, cancel, t0(), Outcome::Acknowledged { record_id: "R2".into() }).await;
    let ledger = store.order_timeline("#1".into()).await.unwrap().ledger;
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!((ledger[0].state.as_str(), ledger[0].record_id.as_deref()), ("created", Some("R1")));
    let facts = store.facts_of(vec!["#1".into()], i64::MAX).await.unwrap();
    let cancelled = facts.iter().find(|f| f.kind == "acknowledged:cancel_order").expect("journalled");
    assert_eq!(cancelled.record_id.as_deref(), Some("R2"));
}

async fn attempt<S: Store>(store: &S, c: handoff_store::Command, at: Timestamp, outcome: Outcome) {
    let record = AttemptRecord { command: c, started_at: at, finished_at: at, outcome, note: None, mapping: None };
    store.record_attempt(record).await.unwrap();
}

async fn flow_stats_count_attempts_retries_dead_letters_and_latency<S: Store + Clone>(store: S) {
    let secs = |n| t0().checked_add(SignedDuration::from_secs(n)).unwrap();
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
    let row = new_event(&store, "e2", EventKind::OrderCreated, "#2").await;
    plan(&store, row, vec![command("#2", CommandKind::CreateOrder)]).await;
    let row = new_event(&store, "e3", EventKind::OrderCancelled, "#3").await;
    plan(&store, row, vec![command("#3", CommandKind::CancelOrder)]).await;

    let claimed = store.claim_due(t0(), 10).await.unwrap();
    let (one, two) = (claimed[0].clone(), claimed[1].clone());
    let retry = Outcome::Retry { at: secs(1), ambiguous: true, error: "timeout".into() };
    attempt(&store, one, t0(), retry).await;
    let dead = Outcome::DeadLettered {
        ambiguous: false,
        error: "422".into(),
        field: None,
        pattern: handoff_model::Pattern::DeadDelivery,
    };
    attempt(&store, two, t0(), dead).await;
    let one = store.claim_due(secs(1), 10).await.unwrap().into_iter().find(|c| c.order_ref == "#1").unwrap();
    attempt(&store, one, secs(2), Outcome::Acknowledged { record_id: "R1".into() }).await;

    let stats = store.flow_stats(t0()).await.unwrap();
    assert_eq!(stats.len(), 2, "{stats:?}");
    let cancel = &stats[0];
    // Claimed, in flight, no attempt recorded yet.
    assert_eq!((cancel.kind.as_str(), cancel.commands, cancel.attempts, cancel.unfinished), ("cancel_order", 1, 0, 1));
    let creates = &stats[1];
    assert_eq!(creates.kind, "create_order");
    assert_eq!((creates.commands, creates.acknowledged, creates.dead_lettered), (2, 1, 1));
    assert_eq!((creates.attempts, creates.retries, creates.retried_commands), (3, 1, 1));
    assert_eq!((creates.latency_p50_ms, creates.latency_p99_ms), (Some(2000), Some(2000)));
    // Nothing was created after the window starts.
    assert!(store.flow_stats(secs(60)).await.unwrap().is_empty());
}

async fn an_audit_line_is_written_with_its_actor<S: Store + Clone>(store: S) {
    store.record_audit("#1".into(), "ada".into(), "approved".into(), "refund of P1".into(), t0()).await.unwrap();
    let audit = store.order_timeline("#1".into()).await.unwrap().audit;
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].actor.as_str(), audit[0].action.as_str()), ("ada", "approved"));
}

/// A Shopify order delivery whose reader stopped at `line_items`.
fn unmapped(fingerprint: &str, order_ref: Option<&str>) -> NewQuarantined {
    NewQuarantined {
        system: "shop".into(),
        source: QuarantineSource::Webhook,
        fingerprint: fingerprint.into(),
        order_ref: order_ref.map(str::to_owned),
        headers: [("x-shopify-topic".to_owned(), "orders/create".to_owned())].into(),
        body: br#"{"id":1001}"#.to_vec(),
        field: "line_items".into(),
        reason: "missing field `line_items`".into(),
        source_version: Some("2026-07".into()),
        flow: Some("orders".into()),
        received_at: t0(),
    }
}

async fn a_body_no_reader_maps_is_held_once_with_its_exception<S: Store + Clone>(store: S) {
    let Recorded::New(id) = store.quarantine(unmapped("f1", Some("1001")), t0()).await.unwrap() else {
        panic!("first is new")
    };
    assert_eq!(store.quarantine(unmapped("f1", Some("1001")), t0()).await.unwrap(), Recorded::Duplicate(id));

    let held = store.quarantined_one(id).await.unwrap().unwrap();
    assert_eq!((held.state, held.body.as_slice()), (QuarantineState::Held, br#"{"id":1001}"#.as_slice()));
    assert_eq!(held.headers["x-shopify-topic"], "orders/create");
    assert_eq!((held.field.as_str(), held.source_version.as_deref()), ("line_items", Some("2026-07")));

    let exceptions = store.exceptions(None, 10).await.unwrap();
    assert_eq!(exceptions.len(), 1, "a redelivery raises nothing again");
    let x = &exceptions[0];
    assert_eq!(Some(x.id), held.exception_id);
    assert_eq!(
        (x.pattern.as_str(), x.state.as_str(), x.order_ref.as_str(), x.flow.as_deref(), x.field.as_deref()),
        ("transform_mismatch", "open", "1001", Some("orders"), Some("line_items"))
    );
    assert!(x.detail.contains("2026-07") && x.detail.contains(&format!("quarantine replay {id}")), "{}", x.detail);
    assert_eq!(store.quarantine_depth().await.unwrap(), [("shop".to_owned(), 1)]);
    let timeline = store.order_timeline("1001".into()).await.unwrap();
    assert_eq!(timeline.quarantined.len(), 1);
    assert!(!timeline.is_empty(), "an order known only by a held body still has a timeline");
    assert_eq!(timeline.audit[0].action, "quarantined");
    assert!(store.unprocessed_events(10).await.unwrap().is_empty(), "nothing held reaches intake");
}

async fn a_poll_holds_the_records_it_cannot_map_and_still_moves_its_cursor<S: Store + Clone>(store: S) {
    let held = NewQuarantined { source: QuarantineSource::Poll, headers: Default::default(), ..unmapped("f1", None) };
    let page = vec![event("e2", EventKind::OrderCreated, "#2")];
    let recorded = store.record_polled("shop".into(), page, vec![held.clone()], "c1".into(), t0()).await.unwrap();
    assert!(matches!(recorded[..], [Recorded::New(_)]));
    assert_eq!(store.poll_cursor("shop".into()).await.unwrap().as_deref(), Some("c1"));
    // The same record read again by an overlapping window is held once.
    store.record_polled("shop".into(), vec![], vec![held], "c2".into(), t0()).await.unwrap();
    let rows = store.quarantined(Some(QuarantineState::Held), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].source, rows[0].order_ref.as_deref()), (QuarantineSource::Poll, None));
    assert_eq!(store.exceptions(None, 10).await.unwrap().len(), 1);
    assert_eq!(store.poll_cursor("shop".into()).await.unwrap().as_deref(), Some("c2"));
}

async fn a_held_body_replays_into_the_inbox_once<S: Store + Clone>(store: S) {
    let Recorded::New(id) = store.quarantine(unmapped("f1", None), t0()).await.unwrap() else { panic!("new") };
    let later = t0() + SignedDuration::from_mins(5);
    let replayed = event("evt-1001", EventKind::OrderCreated, "1001");
    let Released::Replayed(Recorded::New(row)) =
        store.release_quarantined(id, replayed.clone(), "ada".into(), later).await.unwrap()
    else {
        panic!("the replay is recorded")
    };
    let again = store.release_quarantined(id, replayed.clone(), "ada".into(), later).await.unwrap();
    assert_eq!(again, Released::AlreadyReplayed { event_row: Some(row) });
    assert_eq!(store.unprocessed_events(10).await.unwrap().len(), 1, "replayed once");

    let q = store.quarantined_one(id).await.unwrap().unwrap();
    assert_eq!((q.state, q.event_row, q.replayed_at), (QuarantineState::Replayed, Some(row), Some(later)));
    assert_eq!(q.order_ref.as_deref(), Some("1001"), "the replay names the order");
    let x = store.exception(q.exception_id.unwrap()).await.unwrap().unwrap();
    assert_eq!((x.state.as_str(), x.order_ref.as_str()), ("resolved", "1001"));
    let audit = store.order_timeline("1001".into()).await.unwrap().audit;
    assert!(audit.iter().any(|a| a.actor == "ada" && a.action == "quarantine replayed"), "{audit:?}");
    assert!(store.quarantine_depth().await.unwrap().is_empty());

    // A second held body that reads into the same event is replayed onto the same inbox row.
    let Recorded::New(other) = store.quarantine(unmapped("f2", None), t0()).await.unwrap() else { panic!("new") };
    let onto = store.release_quarantined(other, replayed, "ada".into(), later).await.unwrap();
    assert_eq!(onto, Released::Replayed(Recorded::Duplicate(row)));
    assert_eq!(store.unprocessed_events(10).await.unwrap().len(), 1);
    assert_eq!(
        store.release_quarantined(99, event("e", EventKind::OrderCreated, "x"), "ada".into(), later).await.unwrap(),
        Released::NotFound
    );
}

async fn the_rules_checkpoint_and_an_orders_journal_and_raised_findings_are_kept<S: Store + Clone>(store: S) {
    use handoff_model::{ExceptionState, Pattern};
    use handoff_store::{CheckpointMove, RaisedFinding, RulesCheckpoint};
    assert_eq!(store.rules_checkpoint().await.unwrap(), None);
    for (i, order_ref) in ["#1", "#2", "#1"].iter().enumerate() {
        let row = new_event(&store, &format!("e{i}"), EventKind::OrderCreated, order_ref).await;
        plan(&store, row, vec![command(order_ref, CommandKind::CreateOrder)]).await;
    }
    let facts = store.facts_of(vec!["#1".into()], i64::MAX).await.unwrap();
    assert_eq!(facts.iter().map(|f| f.order_ref.as_str()).collect::<Vec<_>>(), vec!["#1", "#1"]);
    assert!(facts[0].id < facts[1].id && facts[0].kind == "order.created");
    let up_to_first = store.facts_of(vec!["#1".into(), "#2".into()], facts[0].id).await.unwrap();
    assert_eq!(up_to_first.len(), 1);

    // More orders than SQLite writes in one step of a move.
    let many: Vec<String> = (0..2500).map(|i| format!("#m{i:04}")).collect();
    let joined = [vec!["#2".to_owned(), "#1".to_owned()], many.clone()].concat();
    store.move_rules_checkpoint(CheckpointMove { position: facts[1].id, joined, left: vec![] }).await.unwrap();
    let mut saved = store.rules_checkpoint().await.unwrap().unwrap();
    saved.orders.sort();
    let mut expected = [vec!["#1".to_owned(), "#2".to_owned()], many.clone()].concat();
    expected.sort();
    assert_eq!((saved.position, saved.orders), (facts[1].id, expected));
    // A move writes what changed: the orders that left go, the others stay.
    let left = [vec!["#2".to_owned()], many].concat();
    store.move_rules_checkpoint(CheckpointMove { position: 9, joined: vec!["#3".into()], left }).await.unwrap();
    let orders = vec!["#1".to_owned(), "#3".to_owned()];
    assert_eq!(store.rules_checkpoint().await.unwrap(), Some(RulesCheckpoint { position: 9, orders }));
    store
        .move_rules_checkpoint(CheckpointMove { position: 10, joined: vec![], left: vec!["#1".into(), "#3".into()] })
        .await
        .unwrap();
    assert_eq!(store.rules_checkpoint().await.unwrap(), Some(RulesCheckpoint { position: 10, orders: vec![] }));

    let raised = |subject: &str| RaisedFinding {
        order_ref: "#1".into(),
        pattern: Pattern::MissingOrder.as_str().into(),
        subject: subject.into(),
    };
    let handoff_store::Raised::Opened(open) = store.raise_finding(finding("a"), t0()).await.unwrap() else { panic!() };
    let handoff_store::Raised::Opened(gone) = store.raise_finding(finding("b"), t0()).await.unwrap() else { panic!() };
    let handoff_store::Raised::Opened(ignored) = store.raise_finding(finding("c"), t0()).await.unwrap() else {
        panic!()
    };
    store.clear_finding(Pattern::MissingOrder, "#1".into(), "b".into(), t0()).await.unwrap();
    store
        .move_exception(ignored, ExceptionState::Ignored, "ada".into(), Some("test order".into()), t0())
        .await
        .unwrap();
    let mut found = store.raised_findings(vec!["#1".into(), "#9".into()]).await.unwrap();
    found.sort_by(|a, b| a.subject.cmp(&b.subject));
    assert_eq!(found, vec![raised("a"), raised("c")], "open and ignored, not auto-resolved ({open}, {gone})");
}

/// An order whose create is dead-lettered with an update queued behind it.
async fn dead_create_with_update_behind<S: Store + Clone>(store: &S, order_ref: &str) -> i64 {
    let row = new_event(store, &format!("e-{order_ref}"), EventKind::OrderCreated, order_ref).await;
    let update = NewCommand {
        kind: CommandKind::UpdateOrder,
        idempotency_key: format!("k-{order_ref}-update"),
        ..command(order_ref, CommandKind::CreateOrder)
    };
    plan(store, row, vec![command(order_ref, CommandKind::CreateOrder), update]).await;
    let claimed = store.claim_due(t0(), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.kind).collect::<Vec<_>>(), vec![CommandKind::CreateOrder]);
    let create = claimed[0].id;
    let dead = Outcome::DeadLettered {
        ambiguous: false,
        error: "422".into(),
        field: None,
        pattern: handoff_model::Pattern::DeadDelivery,
    };
    attempt(store, claimed.into_iter().next().unwrap(), t0(), dead).await;
    assert!(store.claim_due(t0(), 10).await.unwrap().is_empty(), "the update waits behind the dead letter");
    create
}

async fn a_resolved_dead_letter_is_abandoned_and_its_orders_later_commands_go<S: Store + Clone>(store: S) {
    use handoff_model::ExceptionState;
    let create = dead_create_with_update_behind(&store, "#1").await;
    let x = store.exceptions(Some(handoff_model::ExceptionState::Open), 10).await.unwrap().remove(0);
    assert_eq!(x.command_id, Some(create));
    let moved = store.move_exception(x.id, ExceptionState::Resolved, "ada".into(), Some("keyed by hand".into()), t0());
    assert!(matches!(moved.await.unwrap(), handoff_store::Moved::Done(_)));
    let timeline = store.order_timeline("#1".into()).await.unwrap();
    assert_eq!(timeline.commands[0].state, CommandState::Abandoned);
    assert!(timeline.audit.iter().any(|a| a.actor == "ada" && a.action == "abandoned"), "{:?}", timeline.audit);
    let next = store.claim_due(t0(), 10).await.unwrap();
    assert_eq!(next.iter().map(|c| c.kind).collect::<Vec<_>>(), vec![CommandKind::UpdateOrder]);
    assert!(store.dead_letters(10).await.unwrap().is_empty());
}

async fn a_dead_letter_abandoned_outright_resolves_its_exception_and_tells_the_rules<S: Store + Clone>(store: S) {
    let create = dead_create_with_update_behind(&store, "#2").await;
    assert!(store.abandon(create, "ada".into(), None, t0()).await.unwrap());
    assert!(!store.abandon(create, "ada".into(), None, t0()).await.unwrap(), "once");
    let x = store.exceptions(None, 10).await.unwrap().remove(0);
    assert_eq!(x.state, "resolved");
    let kinds: Vec<String> = store.facts_after(0, 10).await.unwrap().into_iter().map(|f| f.kind).collect();
    assert_eq!(kinds.last().map(String::as_str), Some("abandoned:create_order"), "{kinds:?}");
    assert_eq!(store.claim_due(t0(), 10).await.unwrap().len(), 1);
    let counts = store.command_counts().await.unwrap();
    assert!(counts.contains(&("abandoned".to_owned(), 1)), "{counts:?}");
}

async fn a_token_is_found_by_its_hash_until_revoked_or_expired<S: Store + Clone>(store: S) {
    use handoff_store::{NewToken, Role, TokenRefusal};
    let later = |s| t0().checked_add(SignedDuration::from_secs(s)).unwrap();
    let new =
        |name: &str, role, hash: &str, expires_at| NewToken { name: name.into(), role, hash: hash.into(), expires_at };
    let ops = store.create_token(new("ops", Role::Operator, "h1", None), "cli".into(), t0()).await.unwrap();
    let temp = store.create_token(new("temp", Role::Viewer, "h2", Some(later(60))), "cli".into(), t0()).await.unwrap();
    assert_ne!(ops, temp);
    let found = store.token_by_hash("h1".into()).await.unwrap().unwrap();
    assert_eq!((found.id, found.name.as_str(), found.role), (ops, "ops", Role::Operator));
    assert_eq!(found.check(later(3600)), Ok(()));
    assert!(store.token_by_hash("nope".into()).await.unwrap().is_none());
    let temp_row = store.token_by_hash("h2".into()).await.unwrap().unwrap();
    assert_eq!(temp_row.check(later(59)), Ok(()));
    assert_eq!(temp_row.check(later(60)), Err(TokenRefusal::Expired));

    assert!(store.revoke_token(ops, "admin".into(), later(10)).await.unwrap());
    assert!(!store.revoke_token(ops, "admin".into(), later(11)).await.unwrap(), "revoked once");
    assert!(!store.revoke_token(999, "admin".into(), later(11)).await.unwrap());
    let revoked = store.token_by_hash("h1".into()).await.unwrap().unwrap();
    assert_eq!(revoked.check(later(10)), Err(TokenRefusal::Revoked));
    let listed = store.tokens().await.unwrap();
    assert_eq!(listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["ops", "temp"]);
    assert_eq!(listed[0].revoked_at, Some(later(10)));
}

async fn console_users_and_sessions_open_redeem_and_end_once<S: Store + Clone>(store: S) {
    use handoff_store::{NewSession, NewUser, Role};
    let later = |s| t0().checked_add(SignedDuration::from_secs(s)).unwrap();
    let user = |name: &str| NewUser { name: name.into(), role: Role::Operator, password_hash: "$argon2id$x".into() };
    let ana = store.create_user(user("ana"), "cli".into(), t0()).await.unwrap().unwrap();
    assert!(store.create_user(user("ana"), "cli".into(), t0()).await.unwrap().is_none(), "names are unique");
    let found = store.user_by_name("ana".into()).await.unwrap().unwrap();
    assert_eq!((found.id, found.role, found.password_hash.as_str()), (ana, Role::Operator, "$argon2id$x"));
    assert!(store.user_by_name("bob".into()).await.unwrap().is_none());

    let session = |hash: &str, link| NewSession { hash: hash.into(), user_id: ana, csrf: "c1".into(), link };
    store.open_session(session("s1", false), t0()).await.unwrap();
    let s1 = store.session_by_hash("s1".into()).await.unwrap().unwrap();
    assert_eq!((s1.user.as_str(), s1.role, s1.csrf.as_str(), s1.link), ("ana", Role::Operator, "c1", false));
    store.touch_session(s1.id, later(30)).await.unwrap();
    store.touch_session(s1.id, later(10)).await.unwrap();
    assert_eq!(store.session_by_hash("s1".into()).await.unwrap().unwrap().last_seen_at, later(30), "never back");
    assert!(store.end_session("s1".into(), later(40)).await.unwrap());
    assert!(!store.end_session("s1".into(), later(41)).await.unwrap(), "ended once");
    assert_eq!(store.session_by_hash("s1".into()).await.unwrap().unwrap().ended_at, Some(later(40)));

    store.open_session(session("link", true), t0()).await.unwrap();
    assert!(store.redeem_link("link".into(), "s2".into(), later(1), later(5)).await.unwrap().is_none(), "too old");
    let s2 = store.redeem_link("link".into(), "s2".into(), t0(), later(5)).await.unwrap().unwrap();
    assert_eq!((s2.link, s2.created_at, s2.user.as_str()), (false, later(5), "ana"));
    assert!(store.redeem_link("link".into(), "s3".into(), t0(), later(6)).await.unwrap().is_none(), "once");
    assert!(
        store.redeem_link("s2".into(), "s3".into(), t0(), later(6)).await.unwrap().is_none(),
        "a session is no link"
    );
    assert!(store.session_by_hash("link".into()).await.unwrap().is_none(), "the link's key lets no one in");
}

/// Every row of a search, page after page: no row twice, none missed.
async fn all_pages<T, F, Fut>(mut read: F) -> Vec<T>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = handoff_store::Page<T>>,
{
    let mut rows = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = read(cursor).await;
        rows.extend(page.rows);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return rows,
        }
    }
    panic!("more than 100 pages");
}

async fn orders_are_searched_by_reference_email_channel_state_and_time_in_keyset_pages<S: Store + Clone>(store: S) {
    use handoff_store::OrderFilter;
    for i in 0..7 {
        let order_ref = format!("#10{i}");
        let channel = if i % 2 == 0 { "web" } else { "pos" };
        let e = event(&format!("e{i}"), EventKind::OrderCreated, &order_ref);
        let Recorded::New(row) = store.record_event(e).await.unwrap() else { panic!("new") };
        let state = OrderState { source: "shop".into(), created: i != 3, cancelled: i == 5, ..Default::default() };
        // The planner reads these from the event; #106 says neither, and keeps its source.
        let search = match i {
            6 => SearchFields::default(),
            _ => SearchFields {
                channel: Some(channel.into()),
                email_key: Some(handoff_store::search::email_key(&format!("Buyer{}@Example.com", i % 3))),
            },
        };
        let p = Plan { event_row: row, order_ref, state, ledger: None, commands: vec![], audit: vec![], search };
        store.apply_plans(vec![p], t0() + SignedDuration::from_secs(i)).await.unwrap();
    }
    let search = |f: OrderFilter| {
        let store = store.clone();
        async move {
            let all = all_pages(|cursor| {
                let f = OrderFilter { cursor, limit: 2, ..f.clone() };
                let store = store.clone();
                async move { store.search_orders(f).await.unwrap() }
            })
            .await;
            all.into_iter().map(|o| o.order_ref).collect::<Vec<_>>()
        }
    };
    assert_eq!(search(OrderFilter::default()).await, ["#106", "#105", "#104", "#103", "#102", "#101", "#100"]);
    let by_ref = OrderFilter { reference: Some("#10".into()), ..Default::default() };
    assert_eq!(search(by_ref).await, ["#100", "#101", "#102", "#103", "#104", "#105", "#106"]);
    let email = OrderFilter { email: Some(" buyer1@example.COM ".into()), ..Default::default() };
    assert_eq!(search(email.clone()).await, ["#104", "#101"]);
    // An order whose customer's email changes is found by the new email only.
    let Recorded::New(row) = store.record_event(event("e7", EventKind::OrderUpdated, "#104")).await.unwrap() else {
        panic!("new")
    };
    let search_fields = SearchFields::stated(None, Some("buyer2@example.com"));
    let state = OrderState { source: "shop".into(), created: true, ..Default::default() };
    let p = Plan {
        event_row: row,
        order_ref: "#104".into(),
        state,
        ledger: None,
        commands: vec![],
        audit: vec![],
        search: search_fields,
    };
    store.apply_plans(vec![p], t0() + SignedDuration::from_secs(8)).await.unwrap();
    assert_eq!(search(email).await, ["#101"]);
    let buyer2 = OrderFilter { email: Some("Buyer2@example.com".into()), ..Default::default() };
    assert_eq!(search(buyer2.clone()).await, ["#105", "#104", "#102"]);
    assert_eq!(search(OrderFilter { channel: Some("web".into()), ..buyer2 }).await, ["#104", "#102"]);
    assert_eq!(
        search(OrderFilter { channel: Some("pos".into()), ..Default::default() }).await,
        ["#105", "#103", "#101"]
    );
    let by_source = OrderFilter { channel: Some("shop".into()), ..Default::default() };
    assert_eq!(search(by_source).await, ["#106"], "an order whose events name no channel is found by its source");
    assert_eq!(search(OrderFilter { state: Some("cancelled".into()), ..Default::default() }).await, ["#105"]);
    assert_eq!(search(OrderFilter { state: Some("received".into()), ..Default::default() }).await, ["#103"]);
    let window = OrderFilter {
        from: Some(t0() + SignedDuration::from_secs(2)),
        to: Some(t0() + SignedDuration::from_secs(4)),
        ..Default::default()
    };
    assert_eq!(search(window).await, ["#103", "#102"]);
    let one = store.search_orders(OrderFilter { reference: Some("#106".into()), ..Default::default() }).await.unwrap();
    assert_eq!((one.rows[0].channel.as_deref(), one.rows[0].state.as_str()), (Some("shop"), "created"));
    let bad = store.search_orders(OrderFilter { cursor: Some("nonsense".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(handoff_store::StoreError::Invalid(_))), "{bad:?}");
    let bad = store.search_orders(OrderFilter { state: Some("lost".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(handoff_store::StoreError::Invalid(_))), "{bad:?}");
}

async fn exceptions_are_searched_and_clustered_with_money_summed_exactly<S: Store + Clone>(store: S) {
    use handoff_model::ExceptionState;
    use handoff_store::{ClusterFilter, ExceptionFilter, NewFinding, Raised};
    let raise = |order: &str, amount: &str, currency: &str, detail: &str, channel: &str, at: i64| {
        let store = store.clone();
        let f = NewFinding {
            order_ref: order.into(),
            amount: Some(amount.into()),
            currency: Some(currency.into()),
            detail: detail.into(),
            channel: Some(channel.into()),
            ..finding("")
        };
        async move {
            let Raised::Opened(id) = store.raise_finding(f, t0() + SignedDuration::from_secs(at)).await.unwrap() else {
                panic!("opened")
            };
            id
        }
    };
    let a = raise("#1", "0.10", "EUR", "no ERP order for #1 by 10:00", "shop", 1).await;
    let b = raise("#2", "0.20", "EUR", "no ERP order for #2 by 11:00", "shop", 2).await;
    let c = raise("#3", "5", "USD", "no ERP order for #3 by 12:00", "shop", 3).await;
    let d = raise("#4", "1.5", "EUR", "another cause entirely", "market", 4).await;
    store.move_exception(b, ExceptionState::Acknowledged, "ada".into(), None, t0()).await.unwrap();
    store.move_exception(d, ExceptionState::Resolved, "ada".into(), None, t0()).await.unwrap();

    let ids =
        |page: handoff_store::Page<handoff_store::ExceptionRow>| page.rows.iter().map(|x| x.id).collect::<Vec<_>>();
    let all = store.search_exceptions(ExceptionFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(ids(all), [d, c, b, a], "newest opened first");
    let open = ExceptionFilter { state: Some(ExceptionState::Open), limit: 10, ..Default::default() };
    assert_eq!(ids(store.search_exceptions(open).await.unwrap()), [c, a]);
    let market = ExceptionFilter { channel: Some("market".into()), limit: 10, ..Default::default() };
    assert_eq!(ids(store.search_exceptions(market).await.unwrap()), [d]);
    let aged = ExceptionFilter {
        opened_from: Some(t0() + SignedDuration::from_secs(2)),
        opened_to: Some(t0() + SignedDuration::from_secs(4)),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(ids(store.search_exceptions(aged).await.unwrap()), [c, b]);
    let first = store.search_exceptions(ExceptionFilter { limit: 3, ..Default::default() }).await.unwrap();
    let rest = ExceptionFilter { limit: 3, cursor: first.next.clone(), ..Default::default() };
    assert_eq!((ids(first), ids(store.search_exceptions(rest).await.unwrap())), (vec![d, c, b], vec![a]));

    let clusters = store.search_clusters(ClusterFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(clusters.rows.len(), 1, "the resolved exception is not actionable: {clusters:?}");
    let one = &clusters.rows[0];
    assert_eq!((one.exceptions, one.orders), (3, 3));
    assert_eq!(one.money.get("EUR").map(String::as_str), Some("0.30"), "summed exactly");
    assert_eq!(one.money.get("USD").map(String::as_str), Some("5"));
    assert_eq!((one.states.get("open"), one.states.get("acknowledged")), (Some(&2), Some(&1)));
    assert_eq!(one.example, "no ERP order for #3 by 12:00", "the newest member's detail");
    assert_eq!(one.fingerprint, handoff_model::cluster::fingerprint("no ERP order for #1 by 10:00"));
    assert!(one.id.starts_with('c') && one.id.len() == 9);
    let every = ClusterFilter { states: ExceptionState::ALL.to_vec(), limit: 1, ..Default::default() };
    let page = store.search_clusters(every.clone()).await.unwrap();
    assert_eq!(page.rows[0].exceptions, 3, "largest first");
    let next = store.search_clusters(ClusterFilter { cursor: page.next, ..every }).await.unwrap();
    assert_eq!((next.rows.len(), next.rows[0].exceptions, next.next), (1, 1, None));

    // Reopened with another detail, an exception moves to that detail's cluster.
    store.move_exception(c, ExceptionState::Resolved, "ada".into(), None, t0()).await.unwrap();
    let again = NewFinding { order_ref: "#3".into(), detail: "another cause entirely".into(), ..finding("") };
    assert_eq!(store.raise_finding(again, t0()).await.unwrap(), Raised::Reopened(c));
    let clusters = store.search_clusters(ClusterFilter { limit: 10, ..Default::default() }).await.unwrap();
    let sizes: Vec<(u64, &str)> = clusters.rows.iter().map(|r| (r.exceptions, r.fingerprint.as_str())).collect();
    assert_eq!(sizes, [(2, "no ERP order for ## by #:#"), (1, "another cause entirely")], "{clusters:?}");
    assert_eq!(clusters.rows[0].example, "no ERP order for #2 by 11:00", "the newest member left");
}

async fn held_bodies_are_listed_newest_first_in_keyset_pages<S: Store + Clone>(store: S) {
    use handoff_store::QuarantineFilter;
    let mut held = Vec::new();
    for f in ["f1", "f2", "f3"] {
        let Recorded::New(id) = store.quarantine(unmapped(f, None), t0()).await.unwrap() else { panic!("new") };
        held.push(id);
    }
    let replayed = event("evt-1001", EventKind::OrderCreated, "1001");
    store.release_quarantined(held[1], replayed, "ada".into(), t0()).await.unwrap();
    let ids =
        |page: &handoff_store::Page<handoff_store::Quarantined>| page.rows.iter().map(|q| q.id).collect::<Vec<_>>();
    let first = store.search_quarantine(QuarantineFilter { limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(ids(&first), [held[2], held[1]]);
    let rest = QuarantineFilter { limit: 2, cursor: first.next.clone(), ..Default::default() };
    let rest = store.search_quarantine(rest).await.unwrap();
    assert_eq!((ids(&rest), rest.next), (vec![held[0]], None));
    let still = QuarantineFilter { state: Some(QuarantineState::Held), limit: 1, ..Default::default() };
    let page = store.search_quarantine(still.clone()).await.unwrap();
    assert_eq!(ids(&page), [held[2]]);
    let next = store.search_quarantine(QuarantineFilter { cursor: page.next, ..still }).await.unwrap();
    assert_eq!((ids(&next), next.next), (vec![held[0]], None));
    let bad = store.search_quarantine(QuarantineFilter { cursor: Some("x".into()), ..Default::default() }).await;
    assert!(matches!(bad, Err(handoff_store::StoreError::Invalid(_))), "{bad:?}");
}

async fn commands_and_the_audit_log_are_searched_newest_first<S: Store + Clone>(store: S) {
    use handoff_store::{AuditFilter, CommandFilter};
    for i in 0..3 {
        let order_ref = format!("#{i}");
        let row = new_event(&store, &format!("e{i}"), EventKind::OrderCreated, &order_ref).await;
        plan(&store, row, vec![command(&order_ref, CommandKind::CreateOrder)]).await;
    }
    let claimed = store.claim_due(t0(), 1).await.unwrap();
    let all = store.search_commands(CommandFilter { limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(all.rows.iter().map(|c| c.order_ref.as_str()).collect::<Vec<_>>(), ["#2", "#1"]);
    let rest = store.search_commands(CommandFilter { limit: 2, cursor: all.next, ..Default::default() }).await.unwrap();
    assert_eq!((rest.rows.len(), rest.rows[0].order_ref.as_str(), rest.next), (1, "#0", None));
    let in_flight = CommandFilter { state: Some(CommandState::InFlight), limit: 10, ..Default::default() };
    let in_flight = store.search_commands(in_flight).await.unwrap();
    assert_eq!(in_flight.rows.iter().map(|c| c.id).collect::<Vec<_>>(), vec![claimed[0].id]);
    let of_order =
        CommandFilter { order_ref: Some("#1".into()), target: Some("erp".into()), limit: 10, ..Default::default() };
    assert_eq!(store.search_commands(of_order).await.unwrap().rows.len(), 1);

    for (i, actor) in ["ada", "bob", "ada"].into_iter().enumerate() {
        let at = t0() + SignedDuration::from_secs(10 + i as i64);
        store.record_audit(format!("#{i}"), actor.into(), "approved".into(), format!("line {i}"), at).await.unwrap();
    }
    let ada = AuditFilter { actor: Some("ada".into()), limit: 10, ..Default::default() };
    let ada = store.search_audit(ada).await.unwrap();
    assert_eq!(ada.rows.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(), ["line 2", "line 0"]);
    assert_eq!(ada.rows[0].order_ref.as_deref(), Some("#2"));
    let late = AuditFilter { from: Some(t0() + SignedDuration::from_secs(11)), limit: 1, ..Default::default() };
    let first = store.search_audit(late.clone()).await.unwrap();
    let second = store.search_audit(AuditFilter { cursor: first.next.clone(), ..late }).await.unwrap();
    assert_eq!((first.rows[0].detail.as_str(), second.rows[0].detail.as_str()), ("line 2", "line 1"));
    assert_eq!(second.next, None);
}

async fn flow_health_counts_each_bucket_of_the_window<S: Store + Clone>(store: S) {
    use handoff_store::HealthWindow;
    let row = new_event(&store, "e1", EventKind::OrderCreated, "#1").await;
    plan(&store, row, vec![command("#1", CommandKind::CreateOrder)]).await;
    let c = store.claim_due(t0(), 1).await.unwrap().remove(0);
    let acked = t0() + SignedDuration::from_millis(250);
    attempt(&store, c, acked, Outcome::Acknowledged { record_id: "SO1".into() }).await;
    let window = HealthWindow {
        from: t0() - SignedDuration::from_secs(60),
        to: t0() + SignedDuration::from_secs(60),
        buckets: 2,
        flow: None,
    };
    let health = store.flow_health(window.clone()).await.unwrap();
    assert_eq!(health.len(), 1);
    let orders = &health[0];
    assert_eq!((orders.flow.as_str(), orders.dead_letter_depth, orders.buckets.len()), ("orders", 0, 2));
    assert_eq!((orders.buckets[0].commands, orders.buckets[1].commands), (0, 1));
    let b = &orders.buckets[1];
    assert_eq!((b.acknowledged, b.ack_rate, b.latency_p50_ms), (1, Some(1.0), Some(250)));
    assert_eq!(b.start, t0());
    let none = store.flow_health(HealthWindow { buckets: 0, ..window }).await;
    assert!(matches!(none, Err(handoff_store::StoreError::Invalid(_))));
}
