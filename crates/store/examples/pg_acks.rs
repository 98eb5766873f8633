//! Durable acknowledgments on PostgreSQL: `record_attempt` per second, each outcome committed
//! (`synchronous_commit = on`) with its fencing check, attempt row, ledger row and journal
//! entry before it counts, from one caller and from many at once; with each outcome in its own
//! transaction, then with the group commit. Each run in a schema of its own on
//! `HANDOFF_TEST_DATABASE_URL`, dropped at the end.
//!
//! `HANDOFF_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run -p handoff-store --example pg_acks -- 2000 64`

use std::time::Instant;

use handoff_model::{CommandKind, EventKind};
use handoff_store::postgres::{PgOptions, PgStore, testing};
use handoff_store::{AttemptRecord, Command, NewCommand, NewEvent, OrderState, Outcome, Plan, Recorded, Store};
use jiff::Timestamp;

/// `n` orders, each with one command to the ERP, all claimed.
async fn claimed(store: &PgStore, n: usize, now: Timestamp) -> Vec<Command> {
    let mut plans = Vec::with_capacity(n);
    for i in 0..n {
        let order_ref = format!("#{i}");
        let event = NewEvent {
            system: "shop".into(),
            event_id: format!("e{i}"),
            kind: EventKind::OrderCreated,
            order_ref: order_ref.clone(),
            received_at: now,
            payload: "{}".into(),
            raw: None,
        };
        let Recorded::New(row) = store.record_event(event).await.unwrap() else { panic!("new") };
        let command = NewCommand {
            flow: "orders".into(),
            target: "erp".into(),
            order_ref: order_ref.clone(),
            kind: CommandKind::CreateOrder,
            idempotency_key: format!("create:{order_ref}"),
            external_ref: order_ref.clone(),
            version: Some(1),
            payload: "{}".into(),
            supersede_unsent: false,
        };
        let state = OrderState { source: "shop".into(), created: true, ..Default::default() };
        plans.push(Plan {
            event_row: row,
            order_ref,
            state,
            ledger: None,
            commands: vec![command],
            audit: vec![],
            search: Default::default(),
        });
    }
    for chunk in plans.chunks(500) {
        store.apply_plans(chunk.to_vec(), now).await.unwrap();
    }
    let claimed = store.claim_due(now, n).await.unwrap();
    assert_eq!(claimed.len(), n);
    claimed
}

fn ack(command: Command, now: Timestamp) -> AttemptRecord {
    let outcome = Outcome::Acknowledged { record_id: format!("SO{}", command.id) };
    AttemptRecord { command, started_at: now, finished_at: now, outcome, note: None, mapping: None }
}

/// Acknowledgments per second of `commands`, recorded by `callers` at once.
async fn acks_per_second(store: &PgStore, commands: Vec<Command>, callers: usize, now: Timestamp) -> f64 {
    let n = commands.len();
    let mut shares: Vec<Vec<Command>> = vec![Vec::new(); callers];
    for (i, c) in commands.into_iter().enumerate() {
        shares[i % callers].push(c);
    }
    let start = Instant::now();
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let store = store.clone();
            tokio::spawn(async move {
                for c in share {
                    store.record_attempt(ack(c, now)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let acks = args.next().unwrap_or(2000);
    let callers = args.next().unwrap_or(64);
    let url = testing::test_database_url().expect("HANDOFF_TEST_DATABASE_URL names the database");
    let now = Timestamp::now();
    println!("{:<36} {:>14} {:>14}", "acknowledgments/s", "1 caller", format!("{callers} callers"));
    for batch_attempts in [false, true] {
        let schema = testing::TestSchema::create(&url).await.unwrap();
        let options = PgOptions { max_connections: 16, batch_attempts, ..schema.options() };
        let store = PgStore::open(&url, options).await.unwrap();
        let mut commands = claimed(&store, 2 * acks, now).await;
        let many = commands.split_off(acks);
        let one = acks_per_second(&store, commands, 1, now).await;
        let many = acks_per_second(&store, many, callers, now).await;
        let mode = if batch_attempts { "group commit" } else { "one transaction per acknowledgment" };
        println!("{mode:<36} {one:>14.0} {many:>14.0}");
        let counts = store.command_counts().await.unwrap();
        assert_eq!(counts, vec![("acknowledged".to_owned(), (2 * acks) as u64)], "every acknowledgment landed");
        drop(store);
        schema.drop().await.unwrap();
    }
}
