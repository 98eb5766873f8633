//! `handoff export` + `handoff import` at the store, timed: a SQLite store of N orders, each
//! with the event that made it, its create command acknowledged with its attempt, its ledger
//! row, journal entries and audit line, written through the `Store` API; then exported to a
//! dump file and imported into a fresh schema on `HANDOFF_TEST_DATABASE_URL` (checked by
//! counts and hashes), each step's time printed.
//!
//! `HANDOFF_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --release -p handoff-store --example pg_move -- 100000`

use std::io::{BufReader, BufWriter};
use std::time::Instant;

use handoff_model::{CommandKind, EventKind};
use handoff_store::dump::DumpReader;
use handoff_store::postgres::testing;
use handoff_store::sqlite::{SqliteOptions, SqliteReader, SqliteStore};
use handoff_store::{AttemptRecord, NewCommand, NewEvent, OrderState, Outcome, Plan, Recorded, Store};
use jiff::Timestamp;

const BATCH: usize = 500;

async fn fill(store: &SqliteStore, orders: usize) {
    let now = Timestamp::now();
    let writers = 32;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.spawn(async move {
            let mine: Vec<usize> = (w..orders).step_by(writers).collect();
            for chunk in mine.chunks(BATCH) {
                let mut plans = Vec::with_capacity(chunk.len());
                for &i in chunk {
                    let order_ref = format!("#A{i}");
                    let event = NewEvent {
                        system: "shop".into(),
                        event_id: format!("e{i}"),
                        kind: EventKind::OrderCreated,
                        order_ref: order_ref.clone(),
                        received_at: now,
                        payload: format!(
                            r#"{{"order":{{"id":"{i}","channel":"web","total":"{}.{:02}","currency":"EUR","customer":{{"email":"b{i}@example.com"}},"lines":[{{"sku":"SKU-{}","quantity":1,"price":"12.50"}}]}}}}"#,
                            i % 900,
                            i % 100,
                            i % 77
                        ),
                        raw: Some(format!(r#"{{"id":{i},"line_items":[{{"sku":"SKU-{}"}}]}}"#, i % 77)),
                    };
                    let Recorded::New(row) = store.record_event(event).await.unwrap() else { panic!("new") };
                    let command = NewCommand {
                        flow: "orders-to-erp".into(),
                        target: "erp".into(),
                        order_ref: order_ref.clone(),
                        kind: CommandKind::CreateOrder,
                        idempotency_key: format!("{order_ref}:create"),
                        external_ref: order_ref.clone(),
                        version: None,
                        payload: format!(r#"{{"order":"{order_ref}"}}"#),
                        supersede_unsent: false,
                    };
                    plans.push(Plan {
                        event_row: row,
                        order_ref,
                        state: OrderState { source: "shop".into(), created: true, ..Default::default() },
                        ledger: Some(("shop".into(), "created".into())),
                        commands: vec![command],
                        audit: vec!["planned".into()],
                        search: Default::default(),
                    });
                }
                store.apply_plans(plans, now).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    loop {
        let claimed = store.claim_due(now, 1_000).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        // Acknowledged together, as a dispatcher's attempts finish (the writer commits them in groups).
        let mut acks = tokio::task::JoinSet::new();
        for c in claimed {
            let store = store.clone();
            let outcome = Outcome::Acknowledged { record_id: format!("SO-{}", c.id) };
            let mapping = Some("netsuite/sales_order@2".into());
            let attempt = AttemptRecord { command: c, started_at: now, finished_at: now, outcome, note: None, mapping };
            acks.spawn(async move { store.record_attempt(attempt).await });
        }
        while let Some(done) = acks.join_next().await {
            done.unwrap().unwrap();
        }
    }
}

#[tokio::main]
async fn main() {
    let orders = std::env::args().nth(1).map_or(10_000, |a| a.parse().expect("a number of orders"));
    let url = testing::test_database_url().expect("HANDOFF_TEST_DATABASE_URL names the database");
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions { durable: false, ..SqliteOptions::default() }).unwrap();
    let start = Instant::now();
    fill(&store, orders).await;
    println!("filled SQLite with {orders} orders in {:.1?}", start.elapsed());
    drop(store);

    let file = dir.path().join("dump.jsonl");
    let start = Instant::now();
    let out = BufWriter::new(std::fs::File::create(&file).unwrap());
    let reader = SqliteReader::open(dir.path()).unwrap();
    let (_, tally) = tokio::task::spawn_blocking(move || reader.export(out).unwrap()).await.unwrap();
    let export = start.elapsed();
    let rows: u64 = tally.values().map(|t| t.rows).sum();
    let bytes = std::fs::metadata(&file).unwrap().len();
    println!("export: {rows} rows, {:.0} MiB in {export:.1?}", bytes as f64 / (1 << 20) as f64);

    let schema = testing::TestSchema::create(&url).await.unwrap();
    let start = Instant::now();
    let input = DumpReader::new(BufReader::new(std::fs::File::open(&file).unwrap())).unwrap();
    let imported = handoff_store::postgres::import(&url, schema.options(), input).await.unwrap();
    let import = start.elapsed();
    assert_eq!(imported.tally, tally);
    println!("import: {rows} rows in {import:.1?}, counts and hashes equal");
    println!(
        "export + import of {orders} orders: {:.1?} ({:.0} rows/s)",
        export + import,
        rows as f64 / (export + import).as_secs_f64()
    );
    schema.drop().await.unwrap();
}
