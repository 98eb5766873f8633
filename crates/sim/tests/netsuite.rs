//! The NetSuite connector against the simulated NetSuite on loopback: the salesOrder upsert
//! under a lost acknowledgment, read-back, update, close, a refused order, and item
//! fulfillments found by the SuiteQL poller exactly once (one it cannot read held while the
//! others come in).

use std::sync::Arc;

use handoff_contract::System;
use handoff_engine::poll::poll_once;
use handoff_engine::{Clock, DeliveryError, ManualClock, Poller, Target};
use handoff_model::{CommandKind, EventKind, InboundEvent};
use handoff_sim::dialect::for_connector;
use handoff_sim::http::MockServer;
use handoff_sim::system::Collection;
use handoff_sim::vendors::netsuite::CREDENTIALS;
use handoff_sim::{Faults, MockSystem};
use handoff_store::{Command, NewCommand, Store};
use jiff::Timestamp;
use serde_json::json;

struct Sim {
    system: Arc<MockSystem>,
    base_url: String,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn serve(faults: Faults) -> Sim {
    serve_with(faults, for_connector(handoff_contract::ConnectorKind::Netsuite)).await
}

async fn serve_with(faults: Faults, dialect: Arc<dyn handoff_sim::Dialect>) -> Sim {
    let system = Arc::new(MockSystem::new("netsuite", faults, 7));
    let server = MockServer::new(system.clone(), dialect, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    Sim { system, base_url, _server: tokio::spawn(server.serve(listener)) }
}

fn contract(base_url: &str, credentials: &[(&str, &str)]) -> System {
    let credentials: serde_json::Map<String, serde_json::Value> =
        credentials.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    serde_json::from_value(json!({
        "role": "erp",
        "connector": "netsuite",
        "base_url": base_url,
        "timeout": "2s",
        "credentials": credentials,
        "poll": {"every": "1m", "lookback": "5m", "page_size": 1, "initial": "1h"},
    }))
    .unwrap()
}

/// `quantity` mugs at 9.95 and a tee at 20.00, 4.90 of shipping, no tax.
fn order(order_ref: &str, email: Option<&str>, quantity: u32) -> serde_json::Value {
    let subtotal =
        rust_decimal::Decimal::new(995, 2) * rust_decimal::Decimal::from(quantity) + rust_decimal::Decimal::from(20);
    let total = subtotal + rust_decimal::Decimal::new(490, 2);
    json!({
        "order_ref": order_ref,
        "name": format!("#{order_ref}"),
        "customer": {"email": email, "name": "Ada"},
        "lines": [{"sku": "MUG-1", "quantity": quantity, "unit_price": "9.95"}, {"sku": "TEE-2", "quantity": 1, "unit_price": "20.00"}],
        "currency": "EUR",
        "totals": {"subtotal": subtotal.to_string(), "tax": "0", "shipping": "4.90", "total": total.to_string()},
        "placed_at": "2026-11-26T10:00:00Z"
    })
}

fn command(kind: CommandKind, order_ref: &str, version: u64, order: Option<serde_json::Value>) -> Command {
    let now = Timestamp::now();
    let payload = match order {
        Some(order) => json!({"external_ref": order_ref, "version": version, "order": order}),
        None => json!({"external_ref": order_ref, "version": version}),
    };
    Command::new_pending(
        1,
        NewCommand {
            flow: "orders-to-erp".into(),
            target: "netsuite".into(),
            order_ref: order_ref.into(),
            kind,
            idempotency_key: format!("{order_ref}:{}:{version}", kind.as_str()),
            external_ref: order_ref.into(),
            version: Some(version),
            payload: payload.to_string(),
            supersede_unsent: false,
        },
        now,
    )
}

fn target(sim: &Sim) -> Arc<dyn Target> {
    handoff_connectors::target("netsuite", &contract(&sim.base_url, &CREDENTIALS)).unwrap().unwrap()
}

#[tokio::test]
async fn orders_are_upserted_read_back_updated_and_closed() {
    let sim = serve(Faults::default()).await;
    let target = target(&sim);
    assert!(target.honours_idempotency_keys());

    // Created; the acknowledgment is lost, and the read-back finds the order.
    sim.system.set_faults(Faults { lost_ack: 1.0, ..Faults::default() });
    let create = command(CommandKind::CreateOrder, "1001", 1, Some(order("1001", Some("ada@example.com"), 2)));
    let lost = target.send(&create).await.unwrap_err();
    assert!(matches!(lost, DeliveryError::Transient { ambiguous: true, .. }), "{lost:?}");
    sim.system.set_faults(Faults::default());
    let found = target.read_back(&create).await.unwrap().expect("the lost create is found");
    let records = sim.system.find(Collection::Orders, "1001");
    assert_eq!(records.len(), 1);
    assert_eq!(found.record_id, records[0].id);

    // A retried upsert stays one order, acknowledged with the id from Location.
    let ack = target.send(&create).await.unwrap();
    assert_eq!(ack.record_id, records[0].id);
    assert_eq!(sim.system.find(Collection::Orders, "1001").len(), 1);

    // An update is not visible before it is sent, and is after.
    let update = command(CommandKind::UpdateOrder, "1001", 2, Some(order("1001", Some("ada@example.com"), 5)));
    assert_eq!(target.read_back(&update).await.unwrap(), None);
    assert_eq!(target.send(&update).await.unwrap().record_id, records[0].id);
    assert!(target.read_back(&update).await.unwrap().is_some());
    let updated = &sim.system.find(Collection::Orders, "1001")[0];
    assert_eq!(updated.version, Some(2));
    assert_eq!(updated.lines, vec![("MUG-1".to_owned(), 5), ("TEE-2".to_owned(), 1)]);

    // A cancel closes every line; the read-back sees it only afterwards.
    let cancel = command(CommandKind::CancelOrder, "1001", 3, None);
    assert_eq!(target.read_back(&cancel).await.unwrap(), None);
    assert_eq!(target.send(&cancel).await.unwrap().record_id, records[0].id);
    assert_eq!(sim.system.find(Collection::Orders, "1001")[0].status, "cancelled");
    assert!(target.read_back(&cancel).await.unwrap().is_some());
    // A resent cancel changes nothing and is acknowledged.
    assert_eq!(target.send(&cancel).await.unwrap().record_id, records[0].id);

    let ops: Vec<String> = sim.system.applied().iter().map(|a| a.op.clone()).collect();
    assert_eq!(ops, ["create", "update", "update", "cancel"]);
    // Nothing else was ever created.
    assert_eq!(sim.system.records().len(), 1);
    // An order never sent is not found.
    let other = command(CommandKind::CreateOrder, "2002", 1, Some(order("2002", Some("b@example.com"), 1)));
    assert_eq!(target.read_back(&other).await.unwrap(), None);
}

#[tokio::test]
async fn a_missing_required_field_is_permanent_and_names_the_field() {
    let faults = Faults { required_fields: vec!["customer.email".into()], ..Faults::default() };
    let sim = serve(faults).await;
    let mut credentials = CREDENTIALS.to_vec();
    // With a default customer the order is sent without an email, and NetSuite refuses it.
    credentials.push(("customer_id", "42"));
    let target = handoff_connectors::target("netsuite", &contract(&sim.base_url, &credentials)).unwrap().unwrap();
    let create = command(CommandKind::CreateOrder, "3003", 1, Some(order("3003", None, 1)));
    match target.send(&create).await.unwrap_err() {
        DeliveryError::Permanent { field, reason } => {
            assert_eq!(field.as_deref(), Some("email"), "{reason}");
            assert!(reason.contains("USER_ERROR"), "{reason}");
        }
        other => panic!("expected a data error, got {other:?}"),
    }
    assert!(sim.system.applied().is_empty());
}

#[tokio::test]
async fn throttling_and_outages_are_transient() {
    let sim = serve(Faults { throttle: 1.0, retry_after_s: 3, ..Faults::default() }).await;
    let target = target(&sim);
    let create = command(CommandKind::CreateOrder, "4004", 1, Some(order("4004", Some("c@example.com"), 1)));
    let throttled = target.send(&create).await.unwrap_err();
    assert!(
        matches!(&throttled, DeliveryError::Throttled { retry_after: Some(_), reason } if reason.contains("CONCURRENCY_LIMIT_EXCEEDED")),
        "{throttled:?}"
    );
    sim.system.set_faults(Faults { error_after_apply: 1.0, ..Faults::default() });
    assert!(matches!(target.send(&create).await.unwrap_err(), DeliveryError::Transient { ambiguous: true, .. }));
    // A request lost before it applied: unknown to the client, not found, sent again once.
    let lost = command(CommandKind::CreateOrder, "4005", 1, Some(order("4005", Some("c@example.com"), 1)));
    sim.system.set_faults(Faults { lost_request: 1.0, ..Faults::default() });
    assert!(matches!(target.send(&lost).await.unwrap_err(), DeliveryError::Transient { ambiguous: true, .. }));
    sim.system.set_faults(Faults::default());
    assert_eq!(target.read_back(&lost).await.unwrap(), None);
    target.send(&lost).await.unwrap();
    assert_eq!(sim.system.find(Collection::Orders, "4005").len(), 1);
    sim.system.set_faults(Faults { outage: true, ..Faults::default() });
    // A read-back that fails proves nothing.
    assert!(matches!(target.read_back(&create).await.unwrap_err(), DeliveryError::Transient { ambiguous: true, .. }));
}

#[tokio::test]
async fn wrong_credentials_are_refused_before_anything_applies() {
    let sim = serve(Faults::default()).await;
    let mut credentials = CREDENTIALS.to_vec();
    credentials.retain(|(k, _)| *k != "token_secret");
    credentials.push(("token_secret", "not-the-secret"));
    let target = handoff_connectors::target("netsuite", &contract(&sim.base_url, &credentials)).unwrap().unwrap();
    let create = command(CommandKind::CreateOrder, "5005", 1, Some(order("5005", Some("d@example.com"), 1)));
    let refused = target.send(&create).await.unwrap_err();
    assert!(
        matches!(&refused, DeliveryError::Transient { ambiguous: false, reason, .. } if reason.contains("INVALID_LOGIN_ATTEMPT")),
        "{refused:?}"
    );
    assert!(sim.system.applied().is_empty());
}

#[tokio::test]
async fn fulfillments_are_polled_once_each() {
    let sim = serve(Faults::default()).await;
    let target = target(&sim);
    for order_ref in ["6001", "6002"] {
        let create = command(CommandKind::CreateOrder, order_ref, 1, Some(order(order_ref, Some("e@example.com"), 2)));
        target.send(&create).await.unwrap();
    }
    let system = contract(&sim.base_url, &CREDENTIALS);
    let poller: Arc<dyn Poller> = handoff_connectors::poller("netsuite", &system).unwrap().unwrap();
    let store = handoff_store::memory::MemoryStore::new();
    let clock = ManualClock::new(Timestamp::now());

    // Nothing fulfilled yet.
    assert_eq!(poll_once("netsuite", poller.as_ref(), &store, &clock).await.unwrap(), (0, false));

    let http = reqwest::Client::new();
    for order_ref in ["6001", "6002"] {
        let fulfilled = http
            .post(format!("{}/_fulfil", sim.base_url))
            .json(&json!({"external_ref": order_ref}))
            .send()
            .await
            .unwrap();
        assert_eq!(fulfilled.status(), 201);
    }

    // Page size 1: the first page holds one fulfillment and says more are ready.
    assert_eq!(poll_once("netsuite", poller.as_ref(), &store, &clock).await.unwrap(), (1, true));
    assert_eq!(poll_once("netsuite", poller.as_ref(), &store, &clock).await.unwrap(), (1, false));
    // The next window starts a lookback before the newest change: both are read again (a page
    // each), and nothing is new.
    let mut again = Vec::new();
    loop {
        let (new, more) = poll_once("netsuite", poller.as_ref(), &store, &clock).await.unwrap();
        again.push(new);
        if !more {
            break;
        }
    }
    assert_eq!(again, [0, 0]);

    // The events themselves, read page by page from the start.
    let mut page = poller.poll(None, clock.now()).await.unwrap();
    let mut polled = page.events.clone();
    while page.more {
        page = poller.poll(Some(&page.cursor), clock.now()).await.unwrap();
        polled.extend(page.events.clone());
    }
    assert_eq!(polled.len(), 2);
    let ids: std::collections::BTreeSet<&str> = polled.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), 2, "one stable event id per fulfillment");
    let events: Vec<InboundEvent> = polled.iter().map(|e| serde_json::from_str(&e.payload).unwrap()).collect();
    assert_eq!(events.iter().filter(|e| e.order_ref == "6001").count(), 1);
    let first = events.iter().find(|e| e.order_ref == "6001").expect("6001 fulfilled");
    assert_eq!(first.kind, EventKind::FulfillmentCreated);
    let f = first.fulfillment.as_ref().unwrap();
    assert_eq!(f.lines.iter().map(|l| (l.sku.as_str(), l.quantity)).collect::<Vec<_>>(), [("MUG-1", 2), ("TEE-2", 1)]);
    assert_eq!(f.carrier.as_deref(), Some("UPS"));
    assert!(f.tracking_number.as_deref().is_some_and(|t| t.starts_with("1Z")));
    assert!(polled.iter().all(|e| e.event_id.starts_with("netsuite:itemFulfillment:") && e.raw.is_some()));
}

#[tokio::test]
async fn a_fulfillment_the_poll_cannot_map_is_held_and_the_feed_goes_on() {
    let sim = serve(Faults::default()).await;
    let target = target(&sim);
    // 6102 ships nothing countable: its one line is of no units, so its fulfillment has no line
    // Handoff can report.
    let mut empty = order("6102", Some("e@example.com"), 0);
    empty["lines"] = json!([{"sku": "MUG-1", "quantity": 0, "unit_price": "9.95"}]);
    empty["totals"] = json!({"subtotal": "0", "tax": "0", "shipping": "0", "total": "0"});
    for (order_ref, order) in [("6101", order("6101", Some("e@example.com"), 1)), ("6102", empty)] {
        target.send(&command(CommandKind::CreateOrder, order_ref, 1, Some(order))).await.unwrap();
    }
    let system = contract(&sim.base_url, &CREDENTIALS);
    let poller: Arc<dyn Poller> = handoff_connectors::poller("netsuite", &system).unwrap().unwrap();
    let store = handoff_store::memory::MemoryStore::new();
    let clock = ManualClock::new(Timestamp::now());
    let http = reqwest::Client::new();
    let fulfil = async |order_ref: &str| {
        let r = http.post(format!("{}/_fulfil", sim.base_url)).json(&json!({"external_ref": order_ref})).send();
        assert_eq!(r.await.unwrap().status(), 201);
    };
    let drain = async || {
        let mut new = 0;
        loop {
            let (n, more) = poll_once("netsuite", poller.as_ref(), &store, &clock).await.unwrap();
            new += n;
            if !more {
                return new;
            }
        }
    };
    fulfil("6102").await;
    fulfil("6101").await;
    assert_eq!(drain().await, 1);
    assert!(store.poll_cursor("netsuite".into()).await.unwrap().is_some());
    let held = store.quarantined(None, 10).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].order_ref.as_deref(), held[0].field.as_str()), (Some("6102"), "fulfillment.lines"));
    let exceptions = store.exceptions(None, 10).await.unwrap();
    assert_eq!((exceptions.len(), exceptions[0].field.as_deref()), (1, Some("fulfillment.lines")));

    // Later fulfillments still come in, and the held one is held once.
    target
        .send(&command(CommandKind::CreateOrder, "6103", 1, Some(order("6103", Some("e@example.com"), 1))))
        .await
        .unwrap();
    fulfil("6103").await;
    assert_eq!(drain().await, 1);
    assert_eq!(store.quarantined(None, 10).await.unwrap().len(), 1);
    let refs: Vec<String> = store.unprocessed_events(10).await.unwrap().into_iter().map(|e| e.order_ref).collect();
    assert_eq!(refs, ["6101", "6103"]);
    let refused = handoff_connectors::reread("netsuite", &system, &held[0]).unwrap_err();
    assert_eq!(refused.field, "fulfillment.lines", "today's reader still refuses it");
    // What was kept is enough to read it: with a unit shipped, it is 6102's fulfillment.
    let mut body: serde_json::Value = serde_json::from_slice(&held[0].body).unwrap();
    body["lines"][0]["quantity"] = json!(1);
    let shipped = handoff_store::Quarantined { body: body.to_string().into_bytes(), ..held[0].clone() };
    let event = handoff_connectors::reread("netsuite", &system, &shipped).unwrap();
    assert_eq!((event.order_ref.as_str(), event.kind), ("6102", EventKind::FulfillmentCreated));
}

/// Polls until caught up; the events recorded, as (order, tracking number).
async fn poll_through(poller: &dyn Poller, store: &handoff_store::memory::MemoryStore) -> Vec<(String, String)> {
    use handoff_store::Store;
    let clock = handoff_engine::SystemClock;
    for _ in 0..50 {
        if !poll_once("netsuite", poller, store, &clock).await.unwrap().1 {
            let events = store.unprocessed_events(1000).await.unwrap();
            let mut seen: Vec<(String, String)> = events
                .iter()
                .map(|e| {
                    let event: InboundEvent = serde_json::from_str(&e.payload).unwrap();
                    let tracking = event.fulfillment.and_then(|f| f.tracking_number).unwrap_or_default();
                    (e.order_ref.clone(), tracking)
                })
                .collect();
            seen.sort();
            return seen;
        }
    }
    panic!("the poll never caught up");
}

async fn orders(sim: &Sim, refs: &[&str]) {
    let target = target(sim);
    for order_ref in refs {
        let create = command(CommandKind::CreateOrder, order_ref, 1, Some(order(order_ref, Some("e@example.com"), 1)));
        target.send(&create).await.unwrap();
    }
}

fn ten_minutes_ago(s: i64) -> Timestamp {
    let base = handoff_engine::poll::whole_second(Timestamp::now() - jiff::SignedDuration::from_mins(10));
    base + jiff::SignedDuration::from_secs(s)
}

#[tokio::test]
async fn a_fulfillment_is_reported_once_shipped_and_again_when_its_tracking_changes() {
    use handoff_sim::vendors::netsuite::{NetSuite, ShipStatus};
    let ns = Arc::new(NetSuite::default());
    let sim = serve_with(Faults::default(), ns.clone()).await;
    orders(&sim, &["7001"]).await;
    let poller = handoff_connectors::poller("netsuite", &contract(&sim.base_url, &CREDENTIALS)).unwrap().unwrap();
    let store = handoff_store::memory::MemoryStore::new();

    // Picked, then packed: not shipments yet.
    ns.set_clock(Some(ten_minutes_ago(0)));
    let id = ns.record_fulfillment(&sim.system, "7001", ShipStatus::Picked, None).unwrap();
    assert_eq!(poll_through(poller.as_ref(), &store).await, vec![]);
    ns.set_clock(Some(ten_minutes_ago(1)));
    ns.update_fulfillment(id, ShipStatus::Packed, None);
    assert_eq!(poll_through(poller.as_ref(), &store).await, vec![]);
    // Shipped: reported; its tracking corrected within the same second, and a minute later.
    ns.set_clock(Some(ten_minutes_ago(2)));
    ns.update_fulfillment(id, ShipStatus::Shipped, Some("1ZAAA"));
    let once = vec![("7001".to_owned(), "1ZAAA".to_owned())];
    assert_eq!(poll_through(poller.as_ref(), &store).await, once);
    assert_eq!(poll_through(poller.as_ref(), &store).await, once, "read again, not reported again");
    ns.update_fulfillment(id, ShipStatus::Shipped, Some("1ZBBB"));
    ns.set_clock(Some(ten_minutes_ago(62)));
    assert_eq!(poll_through(poller.as_ref(), &store).await.len(), 2);
    ns.update_fulfillment(id, ShipStatus::Shipped, Some("1ZCCC"));
    let tracked: Vec<String> = poll_through(poller.as_ref(), &store).await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(tracked, ["1ZAAA", "1ZBBB", "1ZCCC"]);
}

#[tokio::test]
async fn a_fulfillment_edited_while_its_window_is_paged_is_neither_skipped_nor_duplicated() {
    use handoff_sim::vendors::netsuite::{NetSuite, ShipStatus};
    let ns = Arc::new(NetSuite::default());
    let sim = serve_with(Faults::default(), ns.clone()).await;
    orders(&sim, &["8001", "8002", "8003"]).await;
    ns.set_clock(Some(ten_minutes_ago(0)));
    let ids: Vec<u64> = ["8001", "8002", "8003"]
        .iter()
        .map(|r| ns.record_fulfillment(&sim.system, r, ShipStatus::Shipped, Some(&format!("T{r}"))).unwrap())
        .collect();
    // Page size 1: each page ends inside the second all three share.
    let poller = handoff_connectors::poller("netsuite", &contract(&sim.base_url, &CREDENTIALS)).unwrap().unwrap();
    let store = handoff_store::memory::MemoryStore::new();
    let clock = handoff_engine::SystemClock;
    assert_eq!(poll_once("netsuite", poller.as_ref(), &store, &clock).await.unwrap(), (1, true));
    // Between two pages: the one read is re-tracked within the same second, one not yet read a
    // second later (it moves behind the reader's position).
    ns.update_fulfillment(ids[0], ShipStatus::Shipped, Some("T8001-b"));
    ns.set_clock(Some(ten_minutes_ago(1)));
    ns.update_fulfillment(ids[1], ShipStatus::Shipped, Some("T8002-b"));
    poll_through(poller.as_ref(), &store).await;
    let seen = poll_through(poller.as_ref(), &store).await;
    let t = |o: &str, t: &str| (o.to_owned(), t.to_owned());
    assert_eq!(seen, vec![t("8001", "T8001"), t("8001", "T8001-b"), t("8002", "T8002-b"), t("8003", "T8003")]);
}

#[tokio::test]
async fn suiteql_naming_a_field_netsuite_does_not_expose_is_refused() {
    let sim = serve(Faults::default()).await;
    let url =
        reqwest::Url::parse(&format!("{}/services/rest/query/v1/suiteql?limit=10&offset=0", sim.base_url)).unwrap();
    let c = handoff_sim::vendors::netsuite::credentials();
    let answer = |q: &'static str, nonce: &'static str| {
        let authorization =
            handoff_connectors::netsuite::oauth::authorization(&c, "POST", &url, Timestamp::now().as_second(), nonce);
        reqwest::Client::new()
            .post(url.clone())
            .header("authorization", authorization)
            .header("prefer", "transient")
            .json(&json!({"q": q}))
            .send()
    };
    let refused = answer("SELECT t.id, t.shipstatuss FROM transaction t", "n1").await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.unwrap();
    let detail = &body["o:errorDetails"][0];
    assert_eq!((&detail["o:errorCode"], &detail["o:errorQueryParam"]), (&json!("INVALID_PARAMETER"), &json!("q")));
    assert!(detail["detail"].as_str().unwrap().contains("Field 'shipstatuss' for record 'transaction' was not found"));
    let fine = answer("SELECT t.id, t.shipstatus FROM transaction t WHERE t.type = 'ItemShip'", "n2").await.unwrap();
    assert_eq!(fine.status(), 200);
}
