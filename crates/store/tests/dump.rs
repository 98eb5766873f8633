//! `handoff export` / `handoff import` at the store: every table a store keeps is in the dump,
//! and a store filled through the write path, dumped and imported into another (SQLite into
//! PostgreSQL, PostgreSQL into SQLite, SQLite into SQLite), reads the same through the store
//! API, with equal counts and hashes on both sides.

use std::collections::BTreeSet;

use handoff_model::{CommandKind, EventKind, ExceptionState, Pattern};
use handoff_store::dump::{self, DumpReader, DumpWriter};
use handoff_store::postgres::testing::{TestSchema, test_database_url};
use handoff_store::postgres::{PgReader, PgStore};
use handoff_store::sqlite::{DB_FILE, SqliteOptions, SqliteReader, SqliteStore};
use handoff_store::{
    AttemptRecord, CheckpointMove, ClusterFilter, CommandFilter, ExceptionFilter, NewCommand, NewEvent, NewFinding,
    NewQuarantined, NewSession, NewToken, NewUser, OrderFilter, OrderState, Outcome, Plan, PurgeBefore,
    QuarantineSource, Recorded, Role, Store,
};
use jiff::{SignedDuration, Timestamp};

fn t0() -> Timestamp {
    "2026-11-26T10:00:00.123456Z".parse().unwrap()
}

fn at(seconds: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(seconds)
}

/// Every table and column SQLite keeps is carried by the dump (or folded into one it carries,
/// or derived on import): a table or column added by a migration and not here fails this.
#[test]
fn every_sqlite_table_and_column_is_in_the_dump() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let mut tables = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    let tables: Vec<String> = tables.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let mut carried = BTreeSet::new();
    for name in &tables {
        let skipped = dump::BOOKKEEPING.contains(&name.as_str()) || dump::sqlite_index(name);
        if dump::FOLDED.iter().any(|(folded, _)| folded == name) || skipped {
            continue;
        }
        let table = dump::table(name).unwrap_or_else(|| panic!("SQLite table {name} is not in the dump"));
        carried.insert(table.name);
        let mut columns = conn.prepare(&format!("SELECT name FROM pragma_table_info('{name}')")).unwrap();
        let columns: Vec<String> = columns.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        for column in &columns {
            let derived = dump::DERIVED.contains(&(name.as_str(), column.as_str()));
            let dumped = table.column(column).is_some_and(|c| c.sqlite.is_none());
            assert!(dumped || derived, "SQLite column {name}.{column} is not in the dump");
        }
        for c in table.columns.iter().filter(|c| c.sqlite.is_none()) {
            assert!(columns.iter().any(|n| n == c.name), "the dump's {name}.{} is no SQLite column", c.name);
        }
    }
    let all: BTreeSet<&str> = dump::TABLES.iter().map(|t| t.name).collect();
    assert_eq!(carried, all, "every table of the dump is a SQLite table");
}

/// The same on PostgreSQL: every table and column (but generated ones) is dumped or derived.
#[tokio::test]
async fn every_postgres_table_and_column_is_in_the_dump() {
    let Some(url) = test_database_url() else { return };
    let schema = TestSchema::create(&url).await.unwrap();
    PgStore::open(&url, schema.options()).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    let running = tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = $1 AND is_generated = 'NEVER' ORDER BY 1, 2",
            &[&schema.name],
        )
        .await
        .unwrap();
    let mut carried = BTreeSet::new();
    for r in &rows {
        let (name, column): (String, String) = (r.get(0), r.get(1));
        if dump::BOOKKEEPING.contains(&name.as_str()) {
            continue;
        }
        let table = dump::table(&name).unwrap_or_else(|| panic!("PostgreSQL table {name} is not in the dump"));
        carried.insert(table.name);
        let derived = dump::DERIVED.contains(&(name.as_str(), column.as_str()))
            || dump::DERIVED_AFTER_IMPORT.contains(&(name.as_str(), column.as_str()));
        assert!(table.column(&column).is_some() || derived, "PostgreSQL column {name}.{column} is not in the dump");
    }
    let all: BTreeSet<&str> = dump::TABLES.iter().map(|t| t.name).collect();
    assert_eq!(carried, all);
    for table in dump::TABLES {
        for c in table.columns {
            assert!(
                rows.iter().any(|r| r.get::<_, String>(0) == table.name && r.get::<_, String>(1) == c.name),
                "the dump's {}.{} is no PostgreSQL column",
                table.name,
                c.name
            );
        }
    }
    drop(client);
    let _ = running.await;
    schema.drop().await.unwrap();
}

fn event(n: usize, kind: EventKind, order_ref: &str) -> NewEvent {
    NewEvent {
        system: "shop".into(),
        event_id: format!("e{n}"),
        kind,
        order_ref: order_ref.into(),
        received_at: at(n as i64),
        payload: format!(
            r#"{{"order":{{"channel":"{}","customer":{{"email":"buyer{n}@example.com"}}}}}}"#,
            ["web", "pos"][n % 2]
        ),
        raw: Some(format!(r#"{{"id":{n},"note":"caf\u00e9 \"quoted\""}}"#)),
    }
}

fn command(order_ref: &str, kind: CommandKind) -> NewCommand {
    NewCommand {
        flow: "orders-to-erp".into(),
        target: "erp".into(),
        order_ref: order_ref.into(),
        kind,
        idempotency_key: format!("{order_ref}:{kind}"),
        external_ref: order_ref.into(),
        version: Some(3),
        payload: format!(r#"{{"order":"{order_ref}"}}"#),
        supersede_unsent: false,
    }
}

/// A store with something in every table, written through the store's API as a hub writes.
async fn fill<S: Store>(store: &S) {
    let mut plans = Vec::new();
    for n in 0..30 {
        let order_ref = format!("#A{n}");
        let Recorded::New(row) = store.record_event(event(n, EventKind::OrderCreated, &order_ref)).await.unwrap()
        else {
            panic!("new")
        };
        plans.push(Plan {
            event_row: row,
            order_ref: order_ref.clone(),
            state: OrderState { source: "shop".into(), created: true, last_version: Some(3), ..Default::default() },
            ledger: Some(("shop".into(), "created".into())),
            // #A2's update waits behind its create, which is dead-lettered below.
            commands: match n {
                2 => vec![command(&order_ref, CommandKind::CreateOrder), command(&order_ref, CommandKind::UpdateOrder)],
                _ => vec![command(&order_ref, CommandKind::CreateOrder)],
            },
            audit: vec![format!("planned {order_ref}")],
            search: Default::default(),
        });
    }
    store.apply_plans(plans, at(40)).await.unwrap();
    // Two events left unplanned, as a hub stopped mid-way leaves them.
    store.record_event(event(30, EventKind::OrderUpdated, "#A1")).await.unwrap();
    store.record_event(event(31, EventKind::OrderCreated, "#Z")).await.unwrap();
    let claimed = store.claim_due(at(41), 100).await.unwrap();
    assert_eq!(claimed.len(), 30);
    for (i, c) in claimed.into_iter().enumerate() {
        let outcome = match i % 3 {
            0 => Outcome::Acknowledged { record_id: format!("SO{i}") },
            1 => Outcome::Retry { at: at(100), ambiguous: true, error: "timeout".into() },
            _ => Outcome::DeadLettered {
                ambiguous: false,
                error: format!("422 line {i}"),
                field: Some("lines".into()),
                pattern: Pattern::DeadDelivery,
            },
        };
        let mapping = Some("netsuite/sales_order@2".into());
        let record =
            AttemptRecord { command: c, started_at: at(42), finished_at: at(43), outcome, note: None, mapping };
        store.record_attempt(record).await.unwrap();
    }
    for (i, amount) in ["10.50", "0.10", "1234567.89", "7"].into_iter().enumerate() {
        let finding = NewFinding {
            pattern: Pattern::MissingOrder,
            order_ref: format!("#A{i}"),
            subject: format!("s{i}"),
            flow: Some("orders-to-erp".into()),
            field: None,
            channel: Some("web".into()),
            amount: Some(amount.into()),
            currency: Some("EUR".into()),
            detail: format!("no ERP order for #A{i} after 1{i} minutes"),
            action: r#"{"action":"create_erp_order"}"#.into(),
            evidence: "{}".into(),
        };
        store.raise_finding(finding, at(50 + i as i64)).await.unwrap();
    }
    let held = NewQuarantined {
        system: "shop".into(),
        source: QuarantineSource::Webhook,
        fingerprint: "f1".into(),
        order_ref: Some("#Q1".into()),
        headers: [("x-shopify-topic".to_owned(), "orders/create".to_owned())].into(),
        body: vec![0, 159, 146, 150, b'{'],
        field: "line_items".into(),
        reason: "missing field `line_items`".into(),
        source_version: Some("2026-07".into()),
        flow: Some("orders-to-erp".into()),
        received_at: at(60),
    };
    store.quarantine(held, at(60)).await.unwrap();
    store
        .record_polled("erp".into(), vec![], vec![], r#"{"after":"2026-11-26T10:00:00Z"}"#.into(), at(61))
        .await
        .unwrap();
    store
        .move_rules_checkpoint(CheckpointMove { position: 12, joined: vec!["#A1".into(), "#A2".into()], left: vec![] })
        .await
        .unwrap();
    let token = NewToken { name: "ops".into(), role: Role::Operator, hash: "h1".into(), expires_at: Some(at(9_000)) };
    let token = store.create_token(token, "cli".into(), at(62)).await.unwrap();
    store.revoke_token(token, "cli".into(), at(63)).await.unwrap();
    let user = NewUser { name: "ana".into(), role: Role::Admin, password_hash: "$argon2id$x".into() };
    let ana = store.create_user(user, "cli".into(), at(64)).await.unwrap().unwrap();
    let session = NewSession { hash: "s1".into(), user_id: ana, csrf: "c1".into(), link: true };
    store.open_session(session, at(65)).await.unwrap();
    let x = store.exceptions(Some(ExceptionState::Open), 1).await.unwrap();
    store.move_exception(x[0].id, ExceptionState::Acknowledged, "ana".into(), None, at(66)).await.unwrap();
    // A purge of the personal data of the first events keeps where it stopped, and the
    // unfinished commands it passed.
    let long_ago = "2000-01-01T00:00:00Z".parse().unwrap();
    let before = PurgeBefore { personal_data: at(45), history: long_ago, dedup: long_ago };
    store.purge(before, 20, false).await.unwrap();
}

/// What the store API reads of a store, for comparing two.
async fn reads<S: Store>(store: &S) -> Vec<String> {
    let mut read = Vec::new();
    for order in ["#A0", "#A1", "#A2", "#Q1", "#Z"] {
        read.push(format!("{:?}", store.order_timeline(order.into()).await.unwrap()));
    }
    read.push(format!("{:?}", store.search_orders(OrderFilter { limit: 100, ..Default::default() }).await.unwrap()));
    read.push(format!("{:?}", store.exceptions(None, 1_000).await.unwrap()));
    let exceptions = ExceptionFilter { limit: 100, ..Default::default() };
    read.push(format!("{:?}", store.search_exceptions(exceptions).await.unwrap()));
    read.push(format!(
        "{:?}",
        store.search_commands(CommandFilter { limit: 100, ..Default::default() }).await.unwrap()
    ));
    read.push(format!("{:?}", store.dead_letters(100).await.unwrap()));
    read.push(format!("{:?}", store.unprocessed_events(100).await.unwrap()));
    read.push(format!("{:?}", store.quarantined(None, 100).await.unwrap()));
    read.push(format!("{:?}", store.tokens().await.unwrap()));
    read.push(format!("{:?}", store.user_by_name("ana".into()).await.unwrap()));
    read.push(format!("{:?}", store.session_by_hash("s1".into()).await.unwrap()));
    read.push(format!("{:?}", store.rules_checkpoint().await.unwrap()));
    read.push(format!("{:?}", store.facts_after(0, 1_000).await.unwrap()));
    read.push(format!("{:?}", store.poll_cursor("erp".into()).await.unwrap()));
    read.push(format!("{:?}", store.command_counts().await.unwrap()));
    read.push(format!("{:?}", store.next_due_at().await.unwrap()));
    read
}

#[tokio::test]
async fn a_sqlite_store_moves_to_postgres_with_nothing_lost() {
    let Some(url) = test_database_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    fill(&sqlite).await;
    let (dumped, tally) = SqliteReader::open(dir.path()).unwrap().export(Vec::new()).unwrap();
    for table in dump::TABLES {
        assert!(tally[table.name].rows > 0, "the fill leaves a row in {}", table.name);
    }

    let schema = TestSchema::create(&url).await.unwrap();
    let imported = handoff_store::postgres::import(&url, schema.options(), DumpReader::new(dumped.as_slice()).unwrap())
        .await
        .unwrap();
    assert_eq!(imported.tally, tally, "counts and hashes read back from PostgreSQL equal SQLite's");

    let pg = PgStore::open(&url, schema.options()).await.unwrap();
    assert_eq!(reads(&pg).await, reads(&sqlite).await, "the store API reads the same on both");
    let x = pg.exceptions(None, 100).await.unwrap();
    assert!(x.iter().any(|x| x.amount.as_deref() == Some("10.50")), "money exact, as stored: {x:?}");
    let clusters = pg.search_clusters(ClusterFilter { limit: 10, ..Default::default() }).await.unwrap().rows;
    assert!(!clusters.is_empty(), "fingerprints computed on import group clusters");

    // PostgreSQL's own dump of it is the same dump.
    let (_, again) = PgReader::open(&url, schema.options()).await.unwrap().export(Vec::new()).await.unwrap();
    assert_eq!(again, tally);

    // New rows take ids after the imported ones; nothing imported is planned twice.
    let Recorded::New(row) = pg.record_event(event(99, EventKind::OrderCreated, "#N")).await.unwrap() else {
        panic!("new")
    };
    assert!(row > 32, "the inbox's sequence moved past the imported ids: {row}");
    let unplanned: Vec<i64> = pg.unprocessed_events(100).await.unwrap().iter().map(|e| e.row).collect();
    assert_eq!(unplanned, [31, 32, row]);

    drop(pg);

    // Into a store that is not empty, nothing is imported.
    let refused = handoff_store::postgres::import(&url, schema.options(), DumpReader::new(dumped.as_slice()).unwrap())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("not empty"), "{refused}");
    schema.drop().await.unwrap();
}

#[tokio::test]
async fn a_dump_cut_short_or_changed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    fill(&sqlite).await;
    let (dumped, _) = SqliteReader::open(dir.path()).unwrap().export(Vec::new()).unwrap();
    let text = String::from_utf8(dumped).unwrap();
    let read_all = |text: &str| -> handoff_store::Result<usize> {
        let mut reader = DumpReader::new(text.as_bytes())?;
        let mut rows = 0;
        while reader.next_row()?.is_some() {
            rows += 1;
        }
        Ok(rows)
    };
    assert!(read_all(&text).unwrap() > 100);
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines[..lines.len() - 1].join("\n");
    assert!(read_all(&cut).unwrap_err().to_string().contains("cut short"));
    let changed = text.replacen("10.50", "10.51", 1);
    assert!(read_all(&changed).unwrap_err().to_string().contains("exceptions: same row count, different content"));
    let unknown = text.replacen(r#""raw":"#, r#""extra":1,"raw":"#, 1);
    assert!(read_all(&unknown).unwrap_err().to_string().contains("inbox.extra is no column"));
    // Money is hashed normalized: the same amount written with another scale hashes the same.
    let rescaled = text.replacen(r#""amount":"7""#, r#""amount":"7.00""#, 1);
    assert_ne!(rescaled, text);
    assert!(read_all(&rescaled).is_ok());
}

/// Checks a store imported from a dump of `fill` against the store it came from, and that it
/// goes on as a store: new ids after the imported ones, the unplanned events still unplanned.
async fn goes_on_after_import<S: Store>(imported: &S) {
    let Recorded::New(row) = imported.record_event(event(99, EventKind::OrderCreated, "#N")).await.unwrap() else {
        panic!("new")
    };
    assert!(row > 32, "new ids come after the imported ones: {row}");
    let unplanned: Vec<i64> = imported.unprocessed_events(100).await.unwrap().iter().map(|e| e.row).collect();
    assert_eq!(unplanned, [31, 32, row], "the intake cursor rebuilt from the planned flags");
    // The commands retried are due again; #A2's update still waits behind its dead letter.
    let due: Vec<(String, CommandKind)> =
        imported.claim_due(at(200), 100).await.unwrap().into_iter().map(|c| (c.order_ref, c.kind)).collect();
    let retried: Vec<(String, CommandKind)> =
        (0..30).filter(|i| i % 3 == 1).map(|i| (format!("#A{i}"), CommandKind::CreateOrder)).collect();
    assert_eq!(due.len(), retried.len(), "{due:?}");
    assert!(retried.iter().all(|r| due.contains(r)), "{due:?}");
}

#[tokio::test]
async fn a_sqlite_store_moves_to_another_sqlite_store_with_nothing_lost() {
    let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sqlite = SqliteStore::open(from.path(), SqliteOptions::default()).unwrap();
    fill(&sqlite).await;
    let (dumped, tally) = SqliteReader::open(from.path()).unwrap().export(Vec::new()).unwrap();

    let into = to.path().join("data");
    let imported = handoff_store::sqlite::import(&into, DumpReader::new(dumped.as_slice()).unwrap()).unwrap();
    assert_eq!(imported.tally, tally, "counts and hashes read back equal the dump's");
    assert_eq!(imported.not_kept, 0);
    let (_, again) = SqliteReader::open(&into).unwrap().export(Vec::new()).unwrap();
    assert_eq!(again, tally, "the imported store's own dump is the same dump");

    let moved = SqliteStore::open(&into, SqliteOptions::default()).unwrap();
    assert_eq!(reads(&moved).await, reads(&sqlite).await, "the store API reads the same on both");
    let clusters = moved.search_clusters(ClusterFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(
        clusters.rows.len(),
        sqlite.search_clusters(ClusterFilter { limit: 10, ..Default::default() }).await.unwrap().rows.len(),
        "fingerprints computed on import group the same clusters"
    );
    goes_on_after_import(&moved).await;
    drop(moved);

    // Into a store that is not empty, nothing is imported.
    let refused = handoff_store::sqlite::import(&into, DumpReader::new(dumped.as_slice()).unwrap()).unwrap_err();
    assert!(refused.to_string().contains("not empty"), "{refused}");
}

#[tokio::test]
async fn a_postgres_store_moves_to_sqlite_with_nothing_lost() {
    let Some(url) = test_database_url() else { return };
    let schema = TestSchema::create(&url).await.unwrap();
    let pg = PgStore::open(&url, schema.options()).await.unwrap();
    fill(&pg).await;
    let reader = PgReader::open(&url, schema.options()).await.unwrap();
    let (dumped, tally) = reader.export(Vec::new()).await.unwrap();
    for table in dump::TABLES {
        assert!(tally[table.name].rows > 0, "the fill leaves a row in {}", table.name);
    }

    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("data");
    let imported = handoff_store::sqlite::import(&into, DumpReader::new(dumped.as_slice()).unwrap()).unwrap();
    assert_eq!(imported.tally, tally, "counts and hashes read back from SQLite equal PostgreSQL's");
    let sqlite = SqliteStore::open(&into, SqliteOptions::default()).unwrap();
    assert_eq!(reads(&sqlite).await, reads(&pg).await, "the store API reads the same on both");
    let x = sqlite.exceptions(None, 100).await.unwrap();
    assert!(x.iter().any(|x| x.amount.as_deref() == Some("10.50")), "money exact, as stored: {x:?}");
    goes_on_after_import(&sqlite).await;
    drop(sqlite);

    // A PostgreSQL hub's claims are not kept (SQLite's hub takes back every command in flight
    // when it starts): the outbox alone hashes differently, by them.
    let claimed = pg.claim_due(at(200), 100).await.unwrap();
    assert_eq!(claimed.len(), 10, "the retried commands");
    let (dumped, tally) = reader.export(Vec::new()).await.unwrap();
    let into = dir.path().join("claimed");
    let imported = handoff_store::sqlite::import(&into, DumpReader::new(dumped.as_slice()).unwrap()).unwrap();
    assert_eq!(imported.not_kept, 20, "each claim's hub and lease");
    assert_eq!(dump::differences(&tally, &imported.tally), ["outbox: same row count, different content"]);
    let sqlite = SqliteStore::open(&into, SqliteOptions::default()).unwrap();
    assert_eq!(sqlite.command_counts().await.unwrap(), pg.command_counts().await.unwrap(), "still in flight");
    drop((sqlite, reader, pg));
    schema.drop().await.unwrap();
}

/// A dump written by a build before the short email key holds each key as `sha256:` and the whole
/// digest: the orders it names are found by email once imported, into either store.
#[tokio::test]
async fn a_dump_with_the_long_email_keys_of_an_earlier_build_is_searchable_once_imported() {
    let from = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(from.path(), SqliteOptions::default()).unwrap();
    fill(&sqlite).await;
    let (dumped, _) = SqliteReader::open(from.path()).unwrap().export(Vec::new()).unwrap();
    // SHA-256 of "ann@example.com" (sha256sum), as builds before the short key kept it.
    let long = "sha256:71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476";
    let mut reader = DumpReader::new(dumped.as_slice()).unwrap();
    let mut writer = DumpWriter::new(Vec::new(), "sqlite").unwrap();
    let mut ann = Vec::new();
    while let Some((table, mut row)) = reader.next_row().unwrap() {
        if table.name == "orders" && ann.len() < 2 {
            let key = table.columns.iter().position(|c| c.name == "email_key").unwrap();
            row[key] = long.into();
            ann.push(row[0].as_str().unwrap().to_owned());
        }
        writer.row(table, row).unwrap();
    }
    let (older, _) = writer.finish().unwrap();
    let by_email = OrderFilter { email: Some("Ann@Example.com".into()), limit: 10, ..Default::default() };
    let found = |page: handoff_store::Page<handoff_store::OrderRow>| {
        page.rows.into_iter().map(|o| o.order_ref).collect::<BTreeSet<_>>()
    };
    let expected: BTreeSet<String> = ann.into_iter().collect();
    assert_eq!(expected.len(), 2);

    let to = tempfile::tempdir().unwrap();
    handoff_store::sqlite::import(to.path(), DumpReader::new(older.as_slice()).unwrap()).unwrap();
    let imported = SqliteStore::open(to.path(), SqliteOptions::default()).unwrap();
    assert_eq!(found(imported.search_orders(by_email.clone()).await.unwrap()), expected);

    let Some(url) = test_database_url() else { return };
    let schema = TestSchema::create(&url).await.unwrap();
    handoff_store::postgres::import(&url, schema.options(), DumpReader::new(older.as_slice()).unwrap()).await.unwrap();
    let pg = PgStore::open(&url, schema.options()).await.unwrap();
    assert_eq!(found(pg.search_orders(by_email).await.unwrap()), expected);
    drop(pg);
    schema.drop().await.unwrap();
}

/// SQLite plans the inbox behind one cursor: a dump whose planned events are not the first
/// ones (a PostgreSQL intake stopped between two concurrent commits) is refused, saying what
/// to do, and nothing is written.
#[tokio::test]
async fn a_dump_whose_planned_events_leave_a_gap_is_refused_by_sqlite() {
    let from = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(from.path(), SqliteOptions::default()).unwrap();
    fill(&sqlite).await;
    let (dumped, _) = SqliteReader::open(from.path()).unwrap().export(Vec::new()).unwrap();
    let mut reader = DumpReader::new(dumped.as_slice()).unwrap();
    let mut writer = DumpWriter::new(Vec::new(), "postgres").unwrap();
    while let Some((table, mut row)) = reader.next_row().unwrap() {
        if table.name == "inbox" && row[0] == 32 {
            let planned = table.columns.iter().position(|c| c.name == "planned").unwrap();
            row[planned] = true.into();
        }
        writer.row(table, row).unwrap();
    }
    let (gap, _) = writer.finish().unwrap();
    let to = tempfile::tempdir().unwrap();
    let refused = handoff_store::sqlite::import(to.path(), DumpReader::new(gap.as_slice()).unwrap()).unwrap_err();
    assert!(refused.to_string().contains("inbox row 32 is planned but row 31 before it is not"), "{refused}");
    let (_, empty) = SqliteReader::open(to.path()).unwrap().export(Vec::new()).unwrap();
    assert!(empty.values().all(|t| t.rows == 0), "nothing written: {empty:?}");
}
