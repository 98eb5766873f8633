//! Readiness and the store's back-pressure through the router: a part of the hub that stops
//! beating (or dies) turns `/ready` to 503 naming it; a full writer queue answers a webhook 503
//! with `Retry-After` and stores nothing, and the sender's retry is stored.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use handoff_contract::Contract;
use handoff_engine::SystemClock;
use handoff_server::AppState;
use handoff_store::Store;
use handoff_store::heartbeat::Heartbeats;
use handoff_store::sqlite::{DB_FILE, SqliteOptions, SqliteStore};
use serde_json::Value;
use tower::ServiceExt as _;

const CONTRACT: &str = r#"
[systems.shop]
role = "storefront"
connector = "http-json"
"#;

fn app(store: SqliteStore, heartbeats: Heartbeats) -> Router {
    let contract = Arc::new(Contract::parse(CONTRACT, Path::new("handoff.toml")).unwrap());
    let drift = Arc::new(handoff_mapping::drift::Watch::shipped().unwrap());
    handoff_server::router(Arc::new(AppState {
        contract,
        store,
        clock: Arc::new(SystemClock),
        drift,
        mappings: Arc::new(handoff_mapping::Mappings::shipped().unwrap()),
        heartbeats,
        targets: Default::default(),
        recent: Default::default(),
    }))
}

async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    let response = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The example order, under its own event id.
fn order_created(event_id: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/events/order-created.json");
    let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event["event_id"] = event_id.into();
    event.to_string()
}

async fn post(app: &Router, body: String) -> axum::response::Response {
    let request = Request::post("/webhooks/shop")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap();
    app.clone().oneshot(request).await.unwrap()
}

async fn inbox(store: &SqliteStore) -> Vec<String> {
    store.unprocessed_events(1000).await.unwrap().into_iter().map(|e| e.event_id).collect()
}

#[tokio::test]
async fn a_part_that_stops_beating_or_dies_turns_ready_to_503_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let heartbeats = Heartbeats::default();
    heartbeats.watch(store.writer_pulse());
    let intake = heartbeats.register("intake", Duration::from_millis(100));
    let dispatcher = heartbeats.register("dispatcher", Duration::from_millis(100));
    let app = app(store, heartbeats);
    let beating = tokio::spawn(async move {
        loop {
            intake.beat();
            dispatcher.beat();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = get(&app, "/ready").await;
    assert_eq!(status, StatusCode::OK, "every part beats, and the idle writer waits for work: {body}");
    assert_eq!(body["writer_queue"]["capacity"], 16_384);

    // The task running both parts dies: each part's beat is dropped with it.
    beating.abort();
    let _ = beating.await;
    let (status, body) = get(&app, "/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let failing: Vec<(String, String)> = body["failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["component"].as_str().unwrap().to_owned(), f["state"].as_str().unwrap().to_owned()))
        .collect();
    // Each part is named stopped at once; the writer, waiting for work, is not named.
    assert_eq!(failing, [("intake".to_owned(), "stopped".to_owned()), ("dispatcher".into(), "stopped".into())]);
    assert!(body["error"].as_str().unwrap().contains("intake stopped"), "{body}");
    let (status, _) = get(&app, "/health").await;
    assert_eq!(status, StatusCode::OK, "liveness is not readiness");
}

#[tokio::test]
async fn a_part_that_is_silent_past_its_bound_is_named_while_the_others_beat() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let heartbeats = Heartbeats::default();
    let rules = heartbeats.register("rules", Duration::from_millis(100));
    let poller = heartbeats.register("poller:shop", Duration::from_millis(100));
    let app = app(store, heartbeats);
    for _ in 0..25 {
        poller.beat();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = get(&app, "/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["failing"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["failing"][0]["component"], "rules");
    assert_eq!(body["failing"][0]["state"], "silent");
    assert_eq!(body["failing"][0]["bound_ms"], 300);
    rules.beat();
    poller.beat();
    let (status, body) = get(&app, "/ready").await;
    assert_eq!(status, StatusCode::OK, "beating again, ready again: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_writer_queue_answers_503_with_retry_after_and_stores_nothing_until_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions { queue_depth: 2, ..SqliteOptions::default() }).unwrap();
    let app = app(store.clone(), Heartbeats::default());

    // Another connection holds the write lock, as a commit stuck on a slow disk would: the
    // writer takes its first batch and waits, and the next writes fill its queue.
    let holder = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut waiting = Vec::new();
    for i in 0..50 {
        if store.writer_queue().unwrap().is_full() {
            break;
        }
        let store = store.clone();
        waiting.push(tokio::spawn(async move { store.move_rules_checkpoint(checkpoint(i)).await }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queue = store.writer_queue().unwrap();
    assert!(queue.is_full(), "{queue:?}");

    let refused = post(&app, order_created("refused")).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
    let said = axum::body::to_bytes(refused.into_body(), 1 << 16).await.unwrap();
    assert!(String::from_utf8_lossy(&said).contains("write queue is full"), "{said:?}");
    let (status, body) = get(&app, "/ready").await;
    assert_eq!(status, StatusCode::OK, "a full queue is back-pressure, not a dead hub: {body}");
    assert_eq!(body["writer_queue"]["queued"], 2);

    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    assert!(inbox(&store).await.is_empty(), "the refused body was not stored");

    let retried = post(&app, order_created("refused")).await;
    assert_eq!(retried.status(), StatusCode::ACCEPTED, "the sender's retry is stored");
    assert_eq!(inbox(&store).await, ["refused"]);
}

fn checkpoint(i: i64) -> handoff_store::CheckpointMove {
    handoff_store::CheckpointMove { position: i, ..Default::default() }
}
