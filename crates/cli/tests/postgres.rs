//! The read and admin commands on a PostgreSQL store (`--store postgres://...`), and an
//! installation moved with `handoff export` and `handoff import`: from SQLite to PostgreSQL,
//! back, and between SQLite data directories. Each test works in a schema of its own on
//! `HANDOFF_TEST_DATABASE_URL`.

mod common;

use std::path::Path;
use std::process::Output;

use common::BIN;
use handoff_model::{CommandKind, EventKind, Pattern};
use handoff_store::postgres::PgStore;
use handoff_store::postgres::testing::{TestSchema, test_database_url};
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use handoff_store::{AttemptRecord, NewCommand, NewEvent, NewFinding, OrderState, Outcome, Plan, Recorded, Store};
use jiff::Timestamp;
use serde_json::Value;

/// `handoff ARGS` in `dir`, where no contract, data directory or store is named but by flags.
fn handoff(dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("HANDOFF_STORE")
        .env_remove("HANDOFF_DATA_DIR")
        .env_remove("HANDOFF_CONFIG")
        .env("HANDOFF_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Two orders, one delivered and one dead-lettered, and a rules finding with money.
async fn fill<S: Store>(store: &S) {
    let now: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
    let mut plans = Vec::new();
    for (n, order_ref) in ["#1", "#2"].into_iter().enumerate() {
        let event = NewEvent {
            system: "shop".into(),
            event_id: format!("e{n}"),
            kind: EventKind::OrderCreated,
            order_ref: order_ref.into(),
            received_at: now,
            payload: format!(r#"{{"order":{{"channel":"web","customer":{{"email":"b{n}@example.com"}}}}}}"#),
            raw: Some("{}".into()),
        };
        let Recorded::New(row) = store.record_event(event).await.unwrap() else { panic!("new") };
        let command = NewCommand {
            flow: "orders-to-erp".into(),
            target: "erp".into(),
            order_ref: order_ref.into(),
            kind: CommandKind::CreateOrder,
            idempotency_key: format!("{order_ref}:create"),
            external_ref: order_ref.into(),
            version: None,
            payload: "{}".into(),
            supersede_unsent: false,
        };
        let state = OrderState { source: "shop".into(), created: true, ..Default::default() };
        plans.push(Plan {
            event_row: row,
            order_ref: order_ref.into(),
            state,
            ledger: None,
            commands: vec![command],
            audit: vec![],
            search: Default::default(),
        });
    }
    store.apply_plans(plans, now).await.unwrap();
    for c in store.claim_due(now, 10).await.unwrap() {
        let outcome = if c.order_ref == "#1" {
            Outcome::Acknowledged { record_id: "SO-1".into() }
        } else {
            Outcome::DeadLettered {
                ambiguous: false,
                error: "422 unknown SKU".into(),
                field: None,
                pattern: Pattern::DeadDelivery,
            }
        };
        let record =
            AttemptRecord { command: c, started_at: now, finished_at: now, outcome, note: None, mapping: None };
        store.record_attempt(record).await.unwrap();
    }
    let finding = NewFinding {
        pattern: Pattern::MissingOrder,
        order_ref: "#1".into(),
        subject: "s".into(),
        flow: Some("orders-to-erp".into()),
        field: None,
        channel: Some("web".into()),
        amount: Some("28.50".into()),
        currency: Some("EUR".into()),
        detail: "no ERP order".into(),
        action: "{}".into(),
        evidence: "{}".into(),
    };
    store.raise_finding(finding, now).await.unwrap();
}

#[tokio::test]
async fn the_read_and_admin_commands_work_on_postgres() {
    let Some(url) = test_database_url() else { return };
    let schema = TestSchema::create(&url).await.unwrap();
    let store_url = schema.store_url();
    let dir = tempfile::tempdir().unwrap();

    // The doctor reads only: on a database holding no store it says so and creates nothing.
    std::fs::write(
        dir.path().join("handoff.toml"),
        common::contract(1, "http://127.0.0.1:1", "http://127.0.0.1:2", ""),
    )
    .unwrap();
    let refused = handoff(dir.path(), &["doctor", "--config", "handoff.toml", "--store", &store_url]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("schema version 0"), "{refused:?}");

    let pg = PgStore::open(&url, schema.options()).await.unwrap();
    fill(&pg).await;

    let token =
        ok(&handoff(dir.path(), &["token", "create", "--name", "ops", "--role", "admin", "--store", &store_url]));
    assert!(token.trim().len() > 20, "a token is printed: {token}");
    assert!(ok(&handoff(dir.path(), &["token", "list", "--store", &store_url])).contains("ops"));
    let tokens = pg.tokens().await.unwrap();
    assert_eq!(tokens.len(), 1, "the token is in PostgreSQL");

    let order: Value =
        serde_json::from_str(&ok(&handoff(dir.path(), &["order", "show", "#1", "--json", "--store", &store_url])))
            .unwrap();
    assert_eq!(order["ledger"][0]["record_id"], "SO-1", "{order}");
    assert_eq!(order["commands"][0]["state"], "acknowledged", "{order}");

    let exceptions = ok(&handoff(dir.path(), &["exceptions", "list", "--store", &store_url]));
    assert!(exceptions.contains("missing_order") && exceptions.contains("dead_delivery"), "{exceptions}");
    let dead = ok(&handoff(dir.path(), &["dlq", "list", "--store", &store_url]));
    assert!(dead.contains("#2") && dead.contains("422 unknown SKU"), "{dead}");

    // HANDOFF_STORE names it as well as the flag.
    let listed = std::process::Command::new(BIN)
        .args(["exceptions", "list", "--json"])
        .current_dir(dir.path())
        .env("HANDOFF_STORE", &store_url)
        .env_remove("HANDOFF_DATA_DIR")
        .env_remove("HANDOFF_CONFIG")
        .output()
        .unwrap();
    let listed: Value = serde_json::from_str(&ok(&listed)).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let doctor =
        ["doctor", "--config", "handoff.toml", "--store", &store_url, "--format", "json", "--window-hours", "100000"];
    let report = ok(&handoff(dir.path(), &doctor));
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["measured"], true, "{report}");
    assert_eq!(report["exceptions"], 2, "{report}");

    let moved =
        ok(&handoff(dir.path(), &["dlq", "abandon", &dead_id(&pg).await, "--reason", "test", "--store", &store_url]));
    assert!(moved.contains("abandoned"), "{moved}");
    assert!(pg.dead_letters(10).await.unwrap().is_empty(), "written to PostgreSQL");
    drop(pg);
    schema.drop().await.unwrap();
}

/// The counts and hashes `export` and `import` print, table by table.
fn tables(out: &str) -> Vec<String> {
    out.lines().filter(|l| l.contains("  ") && !l.starts_with("table")).map(str::to_owned).collect()
}

/// `order show` of each order of `fill` on two stores (the flags naming each) reads the same.
fn same_orders(dir: &Path, one: &[&str], other: &[&str]) {
    for order in ["#1", "#2"] {
        let show = |store: &[&str]| ok(&handoff(dir, &[&["order", "show", order, "--json"], store].concat()));
        let (a, b) = (show(one), show(other));
        let said = if order == "#1" { "SO-1" } else { "422 unknown SKU" };
        assert!(a.contains(said), "{a}");
        assert_eq!(a, b, "order {order} reads the same on both");
    }
}

#[tokio::test]
async fn an_installation_moves_between_sqlite_data_directories_with_export_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("data"), SqliteOptions::default()).unwrap();
    fill(&sqlite).await;
    drop(sqlite);

    let exported = ok(&handoff(dir.path(), &["export", "--data-dir", "data", "--out", "dump.jsonl.gz"]));
    let imported = ok(&handoff(dir.path(), &["import", "dump.jsonl.gz", "--data-dir", "moved"]));
    assert!(imported.contains("imported"), "{imported}");
    assert_eq!(tables(&imported), tables(&exported), "the same counts and hashes");
    assert!(imported.contains("exceptions                    2"), "{imported}");
    same_orders(dir.path(), &["--data-dir", "data"], &["--data-dir", "moved"]);
    let again = handoff(dir.path(), &["import", "dump.jsonl.gz", "--data-dir", "moved"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{again:?}");
}

#[tokio::test]
async fn an_installation_moves_back_from_postgres_to_sqlite_with_export_and_import() {
    let Some(url) = test_database_url() else { return };
    let schema = TestSchema::create(&url).await.unwrap();
    let store_url = schema.store_url();
    let pg = PgStore::open(&url, schema.options()).await.unwrap();
    fill(&pg).await;
    drop(pg);
    let dir = tempfile::tempdir().unwrap();

    let exported = ok(&handoff(dir.path(), &["export", "--store", &store_url, "--out", "dump.jsonl"]));
    let imported = ok(&handoff(dir.path(), &["import", "dump.jsonl", "--data-dir", "back"]));
    assert_eq!(tables(&imported), tables(&exported), "the same counts and hashes");
    assert!(!imported.contains("not kept"), "{imported}");
    same_orders(dir.path(), &["--store", &store_url], &["--data-dir", "back"]);
    // The moved store's own dump is the same dump.
    let again = ok(&handoff(dir.path(), &["export", "--data-dir", "back", "--out", "again.jsonl"]));
    assert_eq!(tables(&again), tables(&exported));
    schema.drop().await.unwrap();
}

async fn dead_id(store: &PgStore) -> String {
    store.dead_letters(10).await.unwrap()[0].id.to_string()
}

#[tokio::test]
async fn an_installation_moves_from_sqlite_to_postgres_with_export_and_import() {
    let Some(url) = test_database_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sqlite = SqliteStore::open(&data, SqliteOptions::default()).unwrap();
    fill(&sqlite).await;
    drop(sqlite);

    let exported = ok(&handoff(dir.path(), &["export", "--data-dir", "data", "--out", "dump.jsonl.gz"]));
    assert!(exported.contains("exported"), "{exported}");
    let bytes = std::fs::read(dir.path().join("dump.jsonl.gz")).unwrap();
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "gzip-compressed");

    let schema = TestSchema::create(&url).await.unwrap();
    let store_url = schema.store_url();
    let imported = ok(&handoff(dir.path(), &["import", "dump.jsonl.gz", "--store", &store_url]));
    // Both print the same counts and hashes, table by table.
    assert_eq!(tables(&imported), tables(&exported));
    assert!(imported.contains("exceptions                    2"), "{imported}");

    same_orders(dir.path(), &["--data-dir", "data"], &["--store", &store_url]);
    let again = handoff(dir.path(), &["import", "dump.jsonl.gz", "--store", &store_url]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{again:?}");
    schema.drop().await.unwrap();
}
