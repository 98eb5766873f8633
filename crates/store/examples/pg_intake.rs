//! Durable intake on PostgreSQL: `record_event` per second, from one client and from many at
//! once, each event committed (`synchronous_commit = on`) before it counts. Runs in a schema of
//! its own on `HANDOFF_TEST_DATABASE_URL`, dropped at the end.
//!
//! `HANDOFF_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run -p handoff-store --example pg_intake -- 2000 64`

use std::time::Instant;

use handoff_model::EventKind;
use handoff_store::postgres::{PgOptions, PgStore, testing};
use handoff_store::{NewEvent, Store};

fn event(i: usize) -> NewEvent {
    NewEvent {
        system: "shop".into(),
        event_id: format!("e{i}"),
        kind: EventKind::OrderCreated,
        order_ref: format!("#{}", i % 2000),
        received_at: jiff::Timestamp::UNIX_EPOCH,
        payload: r#"{"order":{"total":"12.50","currency":"EUR"}}"#.into(),
        raw: None,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let events = args.next().unwrap_or(2000);
    let clients = args.next().unwrap_or(64);
    let url = testing::test_database_url().expect("HANDOFF_TEST_DATABASE_URL names the database");
    let schema = testing::TestSchema::create(&url).await.unwrap();
    let options = PgOptions { max_connections: 16, ..schema.options() };
    let store = PgStore::open(&url, options).await.unwrap();

    let start = Instant::now();
    for i in 0..events {
        store.record_event(event(i)).await.unwrap();
    }
    let one = events as f64 / start.elapsed().as_secs_f64();
    println!("one client:   {events} events in {:.2?}: {one:.0} events/s", start.elapsed());

    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (c..events).step_by(clients) {
                    store.record_event(event(events + i)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let many = events as f64 / start.elapsed().as_secs_f64();
    println!("{clients} clients: {events} events in {:.2?}: {many:.0} events/s", start.elapsed());
    assert_eq!(store.unprocessed_events(2 * events + 1).await.unwrap().len(), 2 * events, "every event landed");
    drop(store);
    schema.drop().await.unwrap();
}
