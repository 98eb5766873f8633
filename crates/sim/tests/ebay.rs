//! The eBay connector against the simulated Sell Fulfillment API on loopback: the poller pages
//! through orders and a second poll finds nothing new, and an order that does not add up is held
//! while the feed goes on; shipping fulfillments survive a lost
//! acknowledgment without a second record; an unknown SKU is a permanent error naming it. And
//! the hub's notification route: eBay's challenge answered, a signed notification acknowledged
//! with nothing stored, a forged one refused with 401 before its body is read.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use handoff_connectors::ebay;
use handoff_contract::{Contract, System};
use handoff_engine::poll::poll_once;
use handoff_engine::{Clock, DeliveryError, SystemClock, Target};
use handoff_model::{CommandKind, EventKind};
use handoff_sim::http::MockServer;
use handoff_sim::system::Collection;
use handoff_sim::vendors::ebay::Ebay;
use handoff_sim::{Faults, MockSystem};
use handoff_store::memory::MemoryStore;
use handoff_store::{Command, NewCommand, Store};
use jiff::{SignedDuration, Timestamp};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use serde_json::{Value, json};
use sha1::Digest as _;

const KID: &str = "sim-kid-1";
const TOKEN: &str = "verification-token-0123456789-abcdefghijklmnopq";
const ENDPOINT: &str = "https://hub.example.com/webhooks/ebay";

struct Sim {
    url: String,
    system: Arc<MockSystem>,
    dialect: Arc<Ebay>,
    _serving: tokio::task::JoinHandle<()>,
}

async fn serve(dialect: Ebay) -> Sim {
    let system = Arc::new(MockSystem::new("ebay", Faults { idempotency_keys: false, ..Faults::default() }, 7));
    let dialect = Arc::new(dialect);
    let server = MockServer::new(system.clone(), dialect.clone(), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(async move {
        let _ = server.serve(listener).await;
    });
    Sim { url, system, dialect, _serving: serving }
}

fn contract(base_url: &str, page_size: u32) -> Contract {
    let text = format!(
        r#"
[systems.ebay]
role = "marketplace"
connector = "ebay"
base_url = "{base_url}"
timeout = "2s"
idempotency_keys = false
poll = {{ every = "1m", lookback = "5m", page_size = {page_size}, initial = "24h" }}

[systems.ebay.credentials]
client_id = "HandoffT-sim-PRD-0123456789"
client_secret = "PRD-sim-secret"
refresh_token = "v^1.1#i^1#sim-refresh"
verification_token = "{TOKEN}"
endpoint = "{ENDPOINT}"
"#
    );
    Contract::parse(&text, std::path::Path::new("handoff.toml")).unwrap()
}

fn system(contract: &Contract) -> &System {
    &contract.systems["ebay"]
}

/// An eBay order in the Sell Fulfillment shape (our payload), renamed and re-dated.
fn ebay_order(id: &str, created: Timestamp, modified: Timestamp) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/tests/payloads/ebay_order.json");
    let mut order: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    order["orderId"] = id.into();
    order["creationDate"] = created.to_string().into();
    order["lastModifiedDate"] = modified.to_string().into();
    order
}

async fn place(sim: &Sim, order: &Value) {
    let r = reqwest::Client::new().post(format!("{}/_orders", sim.url)).json(order).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

fn fulfillment(order_id: &str, sku: &str, tracking: &str) -> Command {
    let now = Timestamp::now();
    let external_ref = format!("{order_id}/fulfillment/F-{tracking}");
    let payload = json!({
        "external_ref": external_ref,
        "order_ref": order_id,
        "fulfillment": {"fulfillment_id": format!("F-{tracking}"), "lines": [{"sku": sku, "quantity": 2}],
                        "carrier": "USPS", "tracking_number": tracking},
    });
    Command::new_pending(
        1,
        NewCommand {
            flow: "erp-fulfillments".into(),
            target: "ebay".into(),
            order_ref: order_id.into(),
            kind: CommandKind::CreateFulfillment,
            idempotency_key: format!("{external_ref}:1"),
            external_ref,
            version: None,
            payload: payload.to_string(),
            supersede_unsent: false,
        },
        now,
    )
}

fn target(contract: &Contract) -> Arc<dyn Target> {
    handoff_connectors::target("ebay", system(contract)).unwrap().expect("an eBay system with a base_url is a target")
}

fn fulfillments(sim: &Sim) -> usize {
    sim.system.records().iter().filter(|r| r.collection == Collection::Fulfillments).count()
}

#[tokio::test]
async fn the_poller_pages_through_orders_and_a_second_poll_finds_nothing_new() {
    let sim = serve(Ebay::default()).await;
    let contract = contract(&sim.url, 2);
    let now = Timestamp::now();
    for i in 0..5 {
        let at = now - SignedDuration::from_mins(60 - i);
        place(&sim, &ebay_order(&format!("12-00000-0000{i}"), at, at)).await;
    }
    // Outside the first window (`initial` is 24h): never read.
    let old = now - SignedDuration::from_hours(48);
    place(&sim, &ebay_order("12-00000-99999", old, old)).await;

    let poller = handoff_connectors::poller("ebay", system(&contract)).unwrap().expect("poll is configured");
    let store = MemoryStore::new();
    let clock = SystemClock;
    // Polls until caught up: (new events, pages read).
    let drain = async || {
        let (mut new, mut pages) = (0, 0);
        loop {
            let (n, more) = poll_once("ebay", poller.as_ref(), &store, &clock).await.unwrap();
            new += n;
            pages += 1;
            if !more {
                return (new, pages);
            }
        }
    };
    assert_eq!(drain().await, (5, 3), "every order in the window once, 2 a page");
    let events = store.unprocessed_events(100).await.unwrap();
    assert!(events.iter().all(|e| e.kind == EventKind::OrderCreated && e.system == "ebay"));
    assert!(events.iter().any(|e| e.event_id.starts_with("poll:12-00000-00000@")));
    assert_eq!(sim.dialect.tokens_minted(), 1, "the refreshed token is kept until it expires");

    // The next window starts `lookback` before the latest change, so it reads them again.
    assert_eq!(drain().await, (0, 3), "nothing new");

    // A change after the poll: seen once as an update, with a later version.
    let cancelled = Timestamp::now();
    let mut order = ebay_order("12-00000-00002", now - SignedDuration::from_mins(58), cancelled);
    order["cancelStatus"]["cancelState"] = "CANCELED".into();
    place(&sim, &order).await;
    assert_eq!(drain().await.0, 1);
    assert_eq!(drain().await.0, 0);
    let events = store.unprocessed_events(100).await.unwrap();
    let last = events.iter().find(|e| e.kind == EventKind::OrderCancelled).expect("the cancellation");
    assert_eq!(last.order_ref, "12-00000-00002");
    assert_eq!(sim.dialect.tokens_minted(), 1);
}

#[tokio::test]
async fn an_order_that_does_not_add_up_is_held_while_the_feed_goes_on() {
    let sim = serve(Ebay::default()).await;
    let contract = contract(&sim.url, 2);
    let now = Timestamp::now();
    let at = |minutes| now - SignedDuration::from_mins(minutes);
    place(&sim, &ebay_order("12-55555-00001", at(30), at(30))).await;
    // A cent more than its lines, tax and delivery.
    let mut wrong = ebay_order("12-55555-00002", at(29), at(29));
    wrong["pricingSummary"]["total"]["value"] = "81.01".into();
    place(&sim, &wrong).await;
    place(&sim, &ebay_order("12-55555-00003", at(28), at(28))).await;

    let poller = handoff_connectors::poller("ebay", system(&contract)).unwrap().expect("poll is configured");
    let store = MemoryStore::new();
    let drain = async || {
        let mut new = 0;
        loop {
            let (n, more) = poll_once("ebay", poller.as_ref(), &store, &SystemClock).await.unwrap();
            new += n;
            if !more {
                return new;
            }
        }
    };
    assert_eq!(drain().await, 2, "the orders around it came in");
    assert!(store.poll_cursor("ebay".into()).await.unwrap().is_some());
    let held = store.quarantined(None, 10).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].order_ref.as_deref(), held[0].field.as_str()),
        (Some("12-55555-00002"), "pricingSummary.total")
    );
    assert_eq!(held[0].source_version.as_deref(), Some("sell/fulfillment/v1"));
    let exceptions = store.exceptions(None, 10).await.unwrap();
    assert_eq!(exceptions.len(), 1);
    assert_eq!(
        (exceptions[0].pattern.as_str(), exceptions[0].order_ref.as_str(), exceptions[0].field.as_deref()),
        ("transform_mismatch", "12-55555-00002", Some("pricingSummary.total"))
    );

    // The feed goes on: a later order arrives, and the held one is not held twice.
    place(&sim, &ebay_order("12-55555-00004", now, now)).await;
    assert_eq!(drain().await, 1);
    assert_eq!(
        (store.quarantined(None, 10).await.unwrap().len(), store.exceptions(None, 10).await.unwrap().len()),
        (1, 1)
    );
    let refs: Vec<String> = store.unprocessed_events(10).await.unwrap().into_iter().map(|e| e.order_ref).collect();
    assert_eq!(refs, ["12-55555-00001", "12-55555-00003", "12-55555-00004"]);
    let refused = handoff_connectors::reread("ebay", system(&contract), &held[0]).unwrap_err();
    assert_eq!(refused.field, "pricingSummary.total", "today's reader still refuses it");
    // What was kept is the order as eBay sent it: once it adds up, it reads into its event.
    let mut body: Value = serde_json::from_slice(&held[0].body).unwrap();
    body["pricingSummary"]["total"]["value"] = "81.00".into();
    let fixed = handoff_store::Quarantined { body: body.to_string().into_bytes(), ..held[0].clone() };
    let event = handoff_connectors::reread("ebay", system(&contract), &fixed).unwrap();
    assert_eq!((event.order_ref.as_str(), event.kind), ("12-55555-00002", EventKind::OrderCreated));
}

#[tokio::test]
async fn a_throttled_poll_waits_as_told_and_keeps_its_place() {
    let sim = serve(Ebay::default()).await;
    let contract = contract(&sim.url, 50);
    let now = Timestamp::now();
    place(&sim, &ebay_order("12-44444-00001", now, now)).await;
    let poller = handoff_connectors::poller("ebay", system(&contract)).unwrap().unwrap();
    let store = MemoryStore::new();
    sim.dialect.throttle_reads(1, 30);
    let refused = poll_once("ebay", poller.as_ref(), &store, &SystemClock).await.unwrap_err();
    assert_eq!(refused.retry_after, Some(SignedDuration::from_secs(30)), "{refused}");
    assert_eq!(store.poll_cursor("ebay".into()).await.unwrap(), None, "no cursor moved past unread orders");
    assert_eq!(poll_once("ebay", poller.as_ref(), &store, &SystemClock).await.unwrap(), (1, false));
}

#[tokio::test]
async fn a_shipping_fulfillment_whose_ack_is_lost_is_read_back_and_never_made_twice() {
    let sim = serve(Ebay::default()).await;
    let contract = contract(&sim.url, 50);
    let now = Timestamp::now();
    place(&sim, &ebay_order("12-11111-00001", now, now)).await;
    let target = target(&contract);
    assert!(!target.honours_idempotency_keys(), "eBay takes no idempotency key: read back before every send");
    let command = fulfillment("12-11111-00001", "MUG-BLUE-12", "9400111899560000000001");

    assert_eq!(target.read_back(&command).await.unwrap(), None, "nothing shipped yet");
    sim.system.set_faults(Faults { lost_ack: 1.0, idempotency_keys: false, ..Faults::default() });
    match target.send(&command).await {
        Err(DeliveryError::Transient { ambiguous: true, .. }) => {}
        other => panic!("a lost acknowledgment is ambiguous, got {other:?}"),
    }
    sim.system.set_faults(Faults { idempotency_keys: false, ..Faults::default() });
    // What the dispatcher does next: read back before any resend, and find it.
    let found = target.read_back(&command).await.unwrap().expect("the fulfillment eBay applied is listed");
    let record = sim.system.records().into_iter().find(|r| r.collection == Collection::Fulfillments).unwrap();
    assert_eq!(found.record_id, record.id);
    assert_eq!(record.lines, vec![("10041234567001".to_owned(), 2)], "the SKU became its eBay line item");
    assert_eq!(target.read_back(&command).await.unwrap(), Some(found));
    assert_eq!(fulfillments(&sim), 1, "never twice");

    // A second package, acknowledged: its id comes from the Location header.
    let second = fulfillment("12-11111-00001", "COASTER-SET-4", "9400111899560000000002");
    assert_eq!(target.read_back(&second).await.unwrap(), None);
    let ack = target.send(&second).await.unwrap();
    assert_eq!(target.read_back(&second).await.unwrap(), Some(ack));
    assert_eq!(fulfillments(&sim), 2);
}

#[tokio::test]
async fn an_unknown_sku_is_permanent_and_named() {
    let sim = serve(Ebay::default()).await;
    let contract = contract(&sim.url, 50);
    let now = Timestamp::now();
    place(&sim, &ebay_order("12-22222-00001", now, now)).await;
    let command = fulfillment("12-22222-00001", "NOT-ON-EBAY", "9400111899560000000003");
    match target(&contract).send(&command).await {
        Err(DeliveryError::Permanent { reason, field }) => {
            assert!(reason.contains("NOT-ON-EBAY"), "{reason}");
            assert_eq!(field.as_deref(), Some("fulfillment.lines[0].sku"));
        }
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
    assert!(sim.system.applied().is_empty());
}

#[tokio::test]
async fn a_throttled_shipping_fulfillment_is_throttled_with_retry_after() {
    let sim = serve(Ebay::default()).await;
    let contract = contract(&sim.url, 50);
    let now = Timestamp::now();
    place(&sim, &ebay_order("12-33333-00001", now, now)).await;
    sim.system.set_faults(Faults { throttle: 1.0, retry_after_s: 4, idempotency_keys: false, ..Faults::default() });
    let command = fulfillment("12-33333-00001", "MUG-BLUE-12", "9400111899560000000004");
    match target(&contract).send(&command).await {
        Err(DeliveryError::Throttled { retry_after, .. }) => {
            assert_eq!(retry_after, Some(SignedDuration::from_secs(4)));
        }
        other => panic!("expected a throttle, got {other:?}"),
    }
    assert!(sim.system.applied().is_empty());
}

// ---- the notification route of the hub ----

/// A P-256 key for the test (fixed, so failures reproduce), and its public half as eBay
/// publishes it: PEM.
fn signing_key() -> (SigningKey, String) {
    let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let der = key.verifying_key().to_public_key_der().unwrap();
    let body = STANDARD.encode(der.as_bytes());
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    (key, format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n")))
}

/// `X-EBAY-SIGNATURE` as eBay sends it: base64 JSON naming the key, with the DER signature.
fn sign(key: &SigningKey, kid: &str, body: &[u8]) -> String {
    let signature: Signature = key.sign_prehash(&sha1::Sha1::digest(body)).unwrap();
    let der = STANDARD.encode(signature.to_der().as_bytes());
    STANDARD.encode(json!({"alg": "ecdsa", "kid": kid, "signature": der, "digest": "SHA1"}).to_string())
}

/// eBay's own account-deletion notification sample.
fn account_deletion() -> Option<Vec<u8>> {
    handoff_mapping::samples::read("ebay/notification_MARKETPLACE_ACCOUNT_DELETION.json")
}

struct Hub {
    url: String,
    store: handoff_store::sqlite::SqliteStore,
    _dir: tempfile::TempDir,
}

async fn hub(contract: Contract) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store =
        handoff_store::sqlite::SqliteStore::open(dir.path(), handoff_store::sqlite::SqliteOptions::default()).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let drift = Arc::new(handoff_mapping::drift::Watch::new(Vec::new()));
    let state = handoff_server::AppState {
        contract: Arc::new(contract),
        store: store.clone(),
        clock,
        drift,
        mappings: Arc::new(handoff_mapping::Mappings::shipped().unwrap()),
        heartbeats: Default::default(),
        targets: Default::default(),
        recent: Default::default(),
    };
    let app = handoff_server::router(Arc::new(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Hub { url, store, _dir: dir }
}

#[tokio::test]
async fn the_notification_endpoint_answers_the_challenge_and_verifies_before_reading() {
    let (key, pem) = signing_key();
    let sim = serve(Ebay::default().with_public_key(KID, &pem)).await;
    let hub = hub(contract(&sim.url, 50)).await;
    let c = reqwest::Client::new();
    let url = format!("{}/webhooks/ebay", hub.url);

    let r = c.get(format!("{url}?challenge_code=a8628072-3d33-45ee-9004-bee86830a22d")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    let expected = ebay::challenge_response("a8628072-3d33-45ee-9004-bee86830a22d", TOKEN, ENDPOINT);
    assert_eq!(answer, json!({"challengeResponse": expected}));

    let Some(body) = account_deletion() else { return };
    let post = |signature: Option<String>, body: Vec<u8>| {
        let mut request = c.post(&url).header("content-type", "application/json").body(body);
        if let Some(s) = signature {
            request = request.header("X-EBAY-SIGNATURE", s);
        }
        request.send()
    };
    // Genuine: acknowledged, nothing stored (it concerns a user's data, not an order); the
    // key is fetched once and then served from memory.
    assert_eq!(post(Some(sign(&key, KID, &body)), body.clone()).await.unwrap().status(), 204);
    assert_eq!(post(Some(sign(&key, KID, &body)), body.clone()).await.unwrap().status(), 204);
    assert_eq!(sim.dialect.keys_served(), 1, "the public key is cached");

    // Forged: a tampered body, a key eBay never published, another key under eBay's kid, no
    // header; and a body that is not JSON, refused for its signature before anyone parses it.
    let mut tampered = body.clone();
    let at = tampered.iter().position(|&b| b == b't').unwrap();
    tampered[at] = b'T';
    assert_eq!(post(Some(sign(&key, KID, &body)), tampered).await.unwrap().status(), 401);
    assert_eq!(post(Some(sign(&key, "not-a-kid", &body)), body.clone()).await.unwrap().status(), 401);
    let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
    assert_eq!(post(Some(sign(&other, KID, &body)), body.clone()).await.unwrap().status(), 401);
    assert_eq!(post(None, body.clone()).await.unwrap().status(), 401);
    let garbage = b"{not json".to_vec();
    assert_eq!(post(Some(sign(&key, KID, &body)), garbage.clone()).await.unwrap().status(), 401);
    // Signed but not a notification: 400, still nothing stored.
    assert_eq!(post(Some(sign(&key, KID, &garbage)), garbage).await.unwrap().status(), 400);

    assert!(hub.store.unprocessed_events(100).await.unwrap().is_empty(), "nothing stored");
}

#[tokio::test]
async fn an_order_edited_while_its_window_is_paged_is_neither_skipped_nor_duplicated() {
    let sim = serve(Ebay::default()).await;
    let contract = contract(&sim.url, 2);
    let t = Timestamp::now() - SignedDuration::from_mins(30);
    for i in 0..5 {
        let at = t + SignedDuration::from_secs(i);
        place(&sim, &ebay_order(&format!("12-55555-0000{i}"), at, at)).await;
    }
    let poller = handoff_connectors::poller("ebay", system(&contract)).unwrap().unwrap();
    let store = MemoryStore::new();
    let clock = SystemClock;
    assert_eq!(poll_once("ebay", poller.as_ref(), &store, &clock).await.unwrap(), (2, true));
    // Between two page reads an order already read is cancelled: it leaves the closed window,
    // and every order after it moves up one place under the offset.
    let mut cancelled = ebay_order("12-55555-00000", t, Timestamp::now());
    cancelled["cancelStatus"]["cancelState"] = "CANCELED".into();
    place(&sim, &cancelled).await;
    for _ in 0..2 {
        while poll_once("ebay", poller.as_ref(), &store, &clock).await.unwrap().1 {}
    }
    let mut seen: Vec<(String, EventKind)> =
        store.unprocessed_events(100).await.unwrap().iter().map(|e| (e.order_ref.clone(), e.kind)).collect();
    seen.sort();
    let o = |i: u32, kind| (format!("12-55555-0000{i}"), kind);
    assert_eq!(
        seen,
        vec![
            o(0, EventKind::OrderCreated),
            o(0, EventKind::OrderCancelled),
            o(1, EventKind::OrderCreated),
            o(2, EventKind::OrderCreated),
            o(3, EventKind::OrderCreated),
            o(4, EventKind::OrderCreated),
        ],
        "every order once, the cancellation once"
    );
}
