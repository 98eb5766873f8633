//! The Amazon connector against the simulated SP-API on loopback: the orders poller of both
//! API generations paging through, a 429 honoured, and confirmShipment read back after a lost
//! acknowledgment.

use std::collections::BTreeMap;
use std::sync::Arc;

use handoff_contract::{ConnectorKind, PollSettings, Role, System};
use handoff_engine::poll::poll_once;
use handoff_engine::{Ack, DeliveryError, ManualClock, Poller, Target};
use handoff_model::{CommandKind, EventKind, InboundEvent};
use handoff_sim::http::MockServer;
use handoff_sim::system::Collection;
use handoff_sim::vendors::amazon::{Amazon, SIM_REFRESH_TOKEN};
use handoff_sim::{Faults, MockSystem};
use handoff_store::memory::MemoryStore;
use handoff_store::{Command, NewCommand, Store};
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use serde_json::{Value, json};

const MARKETPLACE: &str = "A1PA6795UKMFR9";

struct Sim {
    base: String,
    system: Arc<MockSystem>,
    amazon: Arc<Amazon>,
    http: reqwest::Client,
}

async fn serve(faults: Faults) -> Sim {
    let system = Arc::new(MockSystem::new("amazon", faults, 7));
    let amazon = Arc::new(Amazon::new(SIM_REFRESH_TOKEN));
    let server = MockServer::new(system.clone(), amazon.clone(), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server.serve(listener));
    Sim { base, system, amazon, http: reqwest::Client::new() }
}

fn contract_entry(sim: &Sim, api_version: Option<&str>, refresh_token: &str) -> System {
    let credentials: BTreeMap<String, String> = [
        ("client_id", "amzn1.application-oa2-client.sim"),
        ("client_secret", "sim-secret"),
        ("refresh_token", refresh_token),
        ("marketplace_id", MARKETPLACE),
        ("auth_url", &format!("{}/auth/o2/token", sim.base)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    System {
        role: Role::Marketplace,
        connector: ConnectorKind::Amazon,
        base_url: Some(sim.base.clone()),
        timeout: SignedDuration::from_secs(2),
        idempotency_keys: Some(false),
        settle: SignedDuration::ZERO,
        max_in_flight: None,
        rate: None,
        webhook_secrets: Vec::new(),
        signature_tolerance: SignedDuration::from_secs(300),
        credentials: credentials.into(),
        outbound_allow: Vec::new(),
        api_version: api_version.map(str::to_owned),
        poll: Some(PollSettings {
            every: SignedDuration::from_secs(60),
            lookback: SignedDuration::from_mins(5),
            page_size: 2,
            initial: SignedDuration::from_hours(1),
        }),
        tax: Default::default(),
        charge_items: Default::default(),
    }
}

fn money(amount: &str) -> Value {
    json!({"CurrencyCode": "EUR", "Amount": amount})
}

/// A v0 order with three items (so `getOrderItems` pages): 2 x SKU-A at 10.00 with 2.00 tax
/// and 5.00 shipping, SKU-B at 7.50 with 0.75 tax and 1.50 off, SKU-C at 3.00. Subtotal
/// 29.00, tax 2.75, shipping 5.00, total 36.75.
fn order(id: &str, status: &str, updated: Timestamp) -> Value {
    json!({
        "order": {
            "AmazonOrderId": id,
            "PurchaseDate": (updated - SignedDuration::from_mins(10)).to_string(),
            "LastUpdateDate": updated.to_string(),
            "OrderStatus": status,
            "MarketplaceId": MARKETPLACE,
            "OrderTotal": money("36.75"),
            "BuyerInfo": {"BuyerEmail": "buyer@marketplace.amazon.de", "BuyerName": "Erika Mustermann"},
            "ShippingAddress": {"Name": "Erika Mustermann", "AddressLine1": "Heidestr. 17", "City": "Köln",
                "PostalCode": "51147", "CountryCode": "DE"},
        },
        "items": [
            {"OrderItemId": format!("{id}-1"), "SellerSKU": "SKU-A", "ASIN": "B000000001", "QuantityOrdered": 2,
             "ItemPrice": money("20.00"), "ItemTax": money("2.00"), "ShippingPrice": money("5.00")},
            {"OrderItemId": format!("{id}-2"), "SellerSKU": "SKU-B", "ASIN": "B000000002", "QuantityOrdered": 1,
             "ItemPrice": money("7.50"), "ItemTax": money("0.75"), "PromotionDiscount": money("1.50")},
            {"OrderItemId": format!("{id}-3"), "SellerSKU": "SKU-C", "ASIN": "B000000003", "QuantityOrdered": 1,
             "ItemPrice": money("3.00")},
        ],
    })
}

async fn place(sim: &Sim, order: Value) {
    let placed = sim.http.post(format!("{}/_orders", sim.base)).json(&order).send().await.unwrap();
    assert_eq!(placed.status(), 201, "{}", placed.text().await.unwrap());
}

/// Six orders in the last hour: four open, one pending (not yet priced), one cancelled.
async fn place_orders(sim: &Sim, now: Timestamp) {
    for i in 0..6 {
        let status = match i {
            2 => "Pending",
            4 => "Canceled",
            _ => "Unshipped",
        };
        place(sim, order(&format!("302-000000{i}-000000{i}"), status, now - SignedDuration::from_mins(50 - i))).await;
    }
}

fn poller(sim: &Sim, api_version: Option<&str>) -> Arc<dyn Poller> {
    handoff_connectors::poller("amazon", &contract_entry(sim, api_version, SIM_REFRESH_TOKEN)).unwrap().unwrap()
}

/// Polls until no more pages are ready; returns how many events were new.
async fn poll_all(poller: &dyn Poller, store: &MemoryStore, clock: &ManualClock) -> usize {
    let mut new = 0;
    loop {
        let (n, more) = poll_once("amazon", poller, store, clock).await.unwrap();
        new += n;
        if !more {
            return new;
        }
    }
}

async fn pages_through(api_version: Option<&str>) {
    let sim = serve(Faults::default()).await;
    let now = Timestamp::now();
    place_orders(&sim, now).await;
    let poller = poller(&sim, api_version);

    // Page by page, following the cursor: six orders, two a page.
    let mut cursor: Option<String> = None;
    let mut events = Vec::new();
    let mut pages = 0;
    loop {
        let page = poller.poll(cursor.as_deref(), now).await.unwrap();
        pages += 1;
        events.extend(page.events);
        cursor = Some(page.cursor);
        if !page.more {
            break;
        }
    }
    assert_eq!(pages, 3);
    let ids: Vec<&str> = events.iter().map(|e| e.order_ref.as_str()).collect();
    assert_eq!(
        ids,
        [
            "302-0000000-0000000",
            "302-0000001-0000001",
            "302-0000003-0000003",
            "302-0000004-0000004",
            "302-0000005-0000005"
        ]
    );
    for event in &events {
        let parsed: InboundEvent = serde_json::from_str(&event.payload).unwrap();
        assert!(event.event_id.starts_with(&format!("poll:{}@", event.order_ref)), "{}", event.event_id);
        assert!(parsed.version.is_some());
        if event.order_ref == "302-0000004-0000004" {
            assert_eq!(event.kind, EventKind::OrderCancelled);
            continue;
        }
        assert_eq!(event.kind, EventKind::OrderUpdated);
        let order = parsed.order.unwrap();
        assert_eq!(order.lines.len(), 3, "all item pages were read");
        assert_eq!(order.totals.subtotal, Decimal::new(2900, 2));
        assert_eq!(order.totals.tax, Decimal::new(275, 2));
        assert_eq!(order.totals.shipping, Decimal::new(500, 2));
        assert_eq!(order.totals.total, Decimal::new(3675, 2));
        assert_eq!(order.lines[0].unit_price, Decimal::new(1000, 2));
        assert_eq!(order.currency.to_string(), "EUR");
    }

    // Through the store: the same orders, then a second poll from the cursor finds nothing new.
    let store = MemoryStore::new();
    let clock = ManualClock::new(now);
    assert_eq!(poll_all(poller.as_ref(), &store, &clock).await, 5);
    // The next window starts `lookback` before the newest change, so it reads the overlap again
    // (all six orders here, over pages), and every one of them is already recorded.
    let mut again = Vec::new();
    loop {
        let (n, more) = poll_once("amazon", poller.as_ref(), &store, &clock).await.unwrap();
        again.push(n);
        if !more {
            break;
        }
    }
    assert_eq!(again, [0, 0, 0], "the overlap of the next window is deduplicated");

    // A change to an order is a new event with a newer version.
    place(&sim, order("302-0000001-0000001", "Unshipped", now - SignedDuration::from_mins(1))).await;
    assert_eq!(poll_all(poller.as_ref(), &store, &clock).await, 1);
    assert_eq!(sim.amazon.token_requests(), 1, "the LWA token is cached");
}

#[tokio::test]
async fn v0_poller_pages_through_and_a_second_poll_finds_nothing_new() {
    pages_through(None).await;
}

#[tokio::test]
async fn v2026_poller_pages_through_and_a_second_poll_finds_nothing_new() {
    pages_through(Some("2026-01-01")).await;
}

#[tokio::test]
async fn a_429_is_honoured_and_the_cursor_stays() {
    let sim = serve(Faults { throttle: 1.0, retry_after_s: 7, ..Faults::default() }).await;
    let now = Timestamp::now();
    place_orders(&sim, now).await;
    let poller = poller(&sim, None);
    let store = MemoryStore::new();
    let clock = ManualClock::new(now);
    let refused = poll_once("amazon", poller.as_ref(), &store, &clock).await.unwrap_err();
    assert_eq!(refused.retry_after, Some(SignedDuration::from_secs(7)), "{}", refused.reason);
    assert!(refused.reason.contains("429"), "{}", refused.reason);
    assert_eq!(store.poll_cursor("amazon".into()).await.unwrap(), None);
    sim.system.set_faults(Faults::default());
    assert_eq!(poll_once("amazon", poller.as_ref(), &store, &clock).await.unwrap(), (2, true));
}

fn shipment(order_id: &str, fulfillment_id: &str, sku: &str) -> Command {
    let now = Timestamp::now();
    let external_ref = format!("{order_id}/fulfillment/{fulfillment_id}");
    let payload = json!({
        "external_ref": external_ref,
        "order_ref": order_id,
        "fulfillment": {
            "fulfillment_id": fulfillment_id,
            "lines": [{"sku": sku, "quantity": 2}, {"sku": "SKU-B", "quantity": 1}],
            "carrier": "DHL",
            "tracking_number": "JJD000390007",
        },
    });
    Command::new_pending(
        1,
        NewCommand {
            flow: "erp_fulfilments_to_amazon".into(),
            target: "amazon".into(),
            order_ref: order_id.into(),
            kind: CommandKind::CreateFulfillment,
            idempotency_key: format!("amazon:{external_ref}"),
            external_ref,
            version: None,
            payload: payload.to_string(),
            supersede_unsent: false,
        },
        now,
    )
}

fn target(sim: &Sim, refresh_token: &str) -> Arc<dyn Target> {
    handoff_connectors::target("amazon", &contract_entry(sim, None, refresh_token)).unwrap().unwrap()
}

#[tokio::test]
async fn a_shipment_whose_ack_was_lost_is_read_back_and_not_confirmed_twice() {
    let sim = serve(Faults { lost_ack: 1.0, idempotency_keys: false, ..Faults::default() }).await;
    let order_id = "302-0000009-0000009";
    place(&sim, order(order_id, "Unshipped", Timestamp::now())).await;
    let target = target(&sim, SIM_REFRESH_TOKEN);
    assert!(!target.honours_idempotency_keys());
    let command = shipment(order_id, "4711", "SKU-A");

    assert_eq!(target.read_back(&command).await.unwrap(), None);
    let lost = target.send(&command).await.unwrap_err();
    assert!(matches!(lost, DeliveryError::Transient { ambiguous: true, .. }), "{lost:?}");
    // What the dispatcher does before any resend: the package is there, so no second send.
    let found = target.read_back(&command).await.unwrap();
    assert_eq!(found, Some(Ack { record_id: format!("{order_id}/4711") }));
    let applied = sim.system.applied();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].collection, Collection::Fulfillments);
    assert_eq!(applied[0].idempotency_key, None);

    // v0 shows the quantities shipped although the answer never arrived.
    let token: Value = sim
        .http
        .post(format!("{}/auth/o2/token", sim.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={}&client_id=c&client_secret=s",
            form_urlencoded::byte_serialize(SIM_REFRESH_TOKEN.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap();
    let get = |path: String| sim.http.get(format!("{}{path}", sim.base)).header("x-amz-access-token", access).send();
    let order: Value = get(format!("/orders/v0/orders/{order_id}")).await.unwrap().json().await.unwrap();
    assert_eq!(order["payload"]["OrderStatus"], "PartiallyShipped");
    let items: Value = get(format!("/orders/v0/orders/{order_id}/orderItems")).await.unwrap().json().await.unwrap();
    let shipped: Vec<u64> = items["payload"]["OrderItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["QuantityShipped"].as_u64().unwrap())
        .collect();
    assert_eq!(shipped, [2, 1]);

    // A different fulfillment of the same order is a different package: not found.
    assert_eq!(target.read_back(&shipment(order_id, "F-erp-2", "SKU-A")).await.unwrap(), None);
}

#[tokio::test]
async fn a_confirmed_shipment_in_the_orders_marketplace_is_found_by_its_package() {
    let sim = serve(Faults { idempotency_keys: false, ..Faults::default() }).await;
    let order_id = "302-0000008-0000008";
    place(&sim, order(order_id, "Unshipped", Timestamp::now())).await;
    // Two marketplaces configured: the shipment is confirmed in the order's own.
    let mut entry = contract_entry(&sim, None, SIM_REFRESH_TOKEN);
    entry.credentials.insert("marketplace_id".into(), format!("A13V1IB3VIYZZH,{MARKETPLACE}"));
    let target = handoff_connectors::target("amazon", &entry).unwrap().unwrap();
    let command = shipment(order_id, "F-erp-1", "SKU-A");
    let ack = target.send(&command).await.unwrap();
    assert_eq!(target.read_back(&command).await.unwrap(), Some(ack.clone()));
    assert!(ack.record_id.starts_with(&format!("{order_id}/")), "{}", ack.record_id);
}

#[tokio::test]
async fn an_unknown_sku_is_permanent_and_named() {
    let sim = serve(Faults { idempotency_keys: false, ..Faults::default() }).await;
    let order_id = "302-0000007-0000007";
    place(&sim, order(order_id, "Unshipped", Timestamp::now())).await;
    let refused = target(&sim, SIM_REFRESH_TOKEN).send(&shipment(order_id, "4712", "SKU-NOPE")).await.unwrap_err();
    let DeliveryError::Permanent { reason, field } = refused else { panic!("permanent: {refused:?}") };
    assert!(reason.contains("SKU-NOPE"), "{reason}");
    assert_eq!(field.as_deref(), Some("fulfillment.lines[0].sku"));
    assert!(sim.system.applied().is_empty());
}

#[tokio::test]
async fn a_throttled_or_unauthorised_shipment_is_classified() {
    let sim = serve(Faults { throttle: 1.0, retry_after_s: 3, idempotency_keys: false, ..Faults::default() }).await;
    let order_id = "302-0000006-0000006";
    place(&sim, order(order_id, "Unshipped", Timestamp::now())).await;
    let throttled = target(&sim, SIM_REFRESH_TOKEN).send(&shipment(order_id, "1", "SKU-A")).await.unwrap_err();
    // A 429 was not applied, and spends no attempt.
    let DeliveryError::Throttled { retry_after, .. } = throttled else { panic!("throttled: {throttled:?}") };
    assert_eq!(retry_after, Some(SignedDuration::from_secs(3)));
    sim.system.set_faults(Faults { idempotency_keys: false, ..Faults::default() });
    let refused = target(&sim, "Atzr|revoked").send(&shipment(order_id, "1", "SKU-A")).await.unwrap_err();
    assert!(
        matches!(&refused, DeliveryError::Permanent { field: Some(f), .. } if f == "credentials.refresh_token"),
        "{refused:?}"
    );
    assert!(sim.system.applied().is_empty());
}

#[tokio::test]
async fn an_order_that_does_not_add_up_is_held_and_the_rest_flow() {
    let sim = serve(Faults::default()).await;
    let now = Timestamp::now();
    let mut wrong = order("302-0000010-0000010", "Unshipped", now - SignedDuration::from_mins(3));
    wrong["order"]["OrderTotal"] = money("99.99");
    place(&sim, wrong).await;
    place(&sim, order("302-0000011-0000011", "Unshipped", now - SignedDuration::from_mins(2))).await;
    let poller = poller(&sim, None);
    let page = poller.poll(None, now).await.unwrap();
    let ids: Vec<&str> = page.events.iter().map(|e| e.order_ref.as_str()).collect();
    assert_eq!(ids, ["302-0000011-0000011"]);
    assert!(!page.more);
    let held: Vec<_> = page.held.iter().map(|h| (h.order_ref.as_deref(), h.field.as_str())).collect();
    assert_eq!(held, [(Some("302-0000010-0000010"), "OrderTotal")]);
    assert!(page.held[0].reason.contains("99.99"), "{}", page.held[0].reason);
    assert_eq!(page.held[0].source_version.as_deref(), Some("v0"));

    // Through the store: held with its exception, the cursor past it; a later order still
    // comes in, and the held one, read again by the overlap, is held once.
    let store = MemoryStore::new();
    let clock = ManualClock::new(now);
    assert_eq!(poll_all(poller.as_ref(), &store, &clock).await, 1);
    assert!(store.poll_cursor("amazon".into()).await.unwrap().is_some());
    place(&sim, order("302-0000012-0000012", "Unshipped", now - SignedDuration::from_mins(1))).await;
    assert_eq!(poll_all(poller.as_ref(), &store, &clock).await, 1);
    let quarantined = store.quarantined(None, 10).await.unwrap();
    let exceptions = store.exceptions(None, 10).await.unwrap();
    assert_eq!((quarantined.len(), exceptions.len()), (1, 1));
    assert_eq!(
        (exceptions[0].pattern.as_str(), exceptions[0].field.as_deref()),
        ("transform_mismatch", Some("OrderTotal"))
    );
    // Today's reader still refuses it, from the order and items kept.
    let entry = contract_entry(&sim, None, SIM_REFRESH_TOKEN);
    let refused = handoff_connectors::reread("amazon", &entry, &quarantined[0]);
    assert_eq!(refused.unwrap_err().field, "OrderTotal");
    // What was kept is enough to read it: once its total adds up, it is the order's update.
    let mut body: Value = serde_json::from_slice(&quarantined[0].body).unwrap();
    body["order"]["OrderTotal"] = money("36.75");
    let fixed = handoff_store::Quarantined { body: body.to_string().into_bytes(), ..quarantined[0].clone() };
    let event = handoff_connectors::reread("amazon", &entry, &fixed).unwrap();
    assert_eq!((event.order_ref.as_str(), event.kind), ("302-0000010-0000010", EventKind::OrderUpdated));
}

#[tokio::test]
async fn a_refused_page_token_reads_the_window_again() {
    for version in [None, Some("2026-01-01")] {
        let sim = serve(Faults::default()).await;
        let now = Timestamp::now();
        place_orders(&sim, now).await;
        let poller = poller(&sim, version);
        let first = poller.poll(None, now).await.unwrap();
        assert!(first.more);
        // The token of the next page has expired meanwhile.
        let mut cursor: Value = serde_json::from_str(&first.cursor).unwrap();
        assert!(cursor["next"]["token"].is_string(), "{cursor}");
        cursor["next"]["token"] = json!("expired");
        let refused = poller.poll(Some(&cursor.to_string()), now).await.unwrap();
        assert!(refused.events.is_empty() && refused.more);
        let restarted: Value = serde_json::from_str(&refused.cursor).unwrap();
        assert_eq!(restarted["since"], cursor["since"], "the same window, from its start");
        assert_eq!(restarted["next"], json!({"page": "start"}));
        // Read again from its start: what the first page gave is not given twice, and the
        // rest of the window comes.
        let mut orders: Vec<String> = first.events.iter().map(|e| e.order_ref.clone()).collect();
        let mut text = refused.cursor;
        loop {
            let page = poller.poll(Some(&text), now).await.unwrap();
            orders.extend(page.events.iter().map(|e| e.order_ref.clone()));
            text = page.cursor;
            if !page.more {
                break;
            }
        }
        orders.sort();
        let expected: Vec<String> = [0, 1, 3, 4, 5].iter().map(|i| format!("302-000000{i}-000000{i}")).collect();
        assert_eq!(orders, expected, "{version:?}: every priced order once, the pending one not yet");
    }
}

/// The two API generations of one order map to the same canonical order, each event stamped
/// with the generation it was read from.
#[tokio::test]
async fn both_api_generations_give_the_same_canonical_order_stamped_with_their_version() {
    let sim = serve(Faults::default()).await;
    let now = Timestamp::now();
    place_orders(&sim, now).await;
    let mut by_version = Vec::new();
    for version in [None, Some("2026-01-01")] {
        let poller = poller(&sim, version);
        let mut cursor: Option<String> = None;
        let mut orders = Vec::new();
        loop {
            let page = poller.poll(cursor.as_deref(), now).await.unwrap();
            for event in &page.events {
                let parsed: InboundEvent = serde_json::from_str(&event.payload).unwrap();
                assert_eq!(
                    parsed.inbound_mapping.as_deref(),
                    Some(if version.is_some() { "amazon/order@2026-01-01" } else { "amazon/order@v0" }),
                    "each event names the reader of its generation"
                );
                orders.push((parsed.source_version.clone(), parsed.order.clone()));
            }
            cursor = Some(page.cursor);
            if !page.more {
                break;
            }
        }
        by_version.push(orders);
    }
    let (v0, v2026) = (&by_version[0], &by_version[1]);
    assert_eq!(v0.len(), v2026.len());
    assert!(v0.iter().all(|(stamp, _)| stamp.as_deref() == Some("v0")), "{v0:?}");
    assert!(v2026.iter().all(|(stamp, _)| stamp.as_deref() == Some("2026-01-01")));
    let orders = |all: &Vec<(Option<String>, Option<handoff_model::CanonicalOrder>)>| {
        all.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>()
    };
    assert_eq!(orders(v0), orders(v2026), "the same orders, whichever generation they were read from");
}

/// (order, buyer name) of every event the store recorded, sorted.
async fn recorded_buyers(store: &MemoryStore) -> Vec<(String, String)> {
    use handoff_store::Store;
    let mut seen: Vec<(String, String)> = store
        .unprocessed_events(100)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let event: InboundEvent = serde_json::from_str(&e.payload).unwrap();
            (e.order_ref.clone(), event.order.and_then(|o| o.customer.name).unwrap_or_default())
        })
        .collect();
    seen.sort();
    seen
}

async fn edited_while_paged(api_version: Option<&str>) {
    let sim = serve(Faults::default()).await;
    let t = handoff_engine::poll::whole_second(Timestamp::now() - SignedDuration::from_mins(10));
    let named = |i: u32, name: &str, at: Timestamp| {
        let mut o = order(&format!("302-000000{i}-000000{i}"), "Unshipped", at);
        o["order"]["BuyerInfo"]["BuyerName"] = json!(name);
        o["order"]["ShippingAddress"]["Name"] = json!(name);
        o
    };
    // Four orders changed within one second; two a page.
    for i in 0..4 {
        place(&sim, named(i, "Erika", t)).await;
    }
    let poller = poller(&sim, api_version);
    let store = MemoryStore::new();
    let clock = ManualClock::new(Timestamp::now());
    assert_eq!(poll_once("amazon", poller.as_ref(), &store, &clock).await.unwrap(), (2, true));
    // Between two pages: an order read is changed within the same second, one not yet read a
    // second later.
    place(&sim, named(0, "Max", t)).await;
    place(&sim, named(2, "Anna", t + SignedDuration::from_secs(1))).await;
    poll_all(poller.as_ref(), &store, &clock).await;
    poll_all(poller.as_ref(), &store, &clock).await;
    let o = |i: u32, name: &str| (format!("302-000000{i}-000000{i}"), name.to_owned());
    assert_eq!(
        recorded_buyers(&store).await,
        vec![o(0, "Erika"), o(0, "Max"), o(1, "Erika"), o(2, "Anna"), o(3, "Erika")],
        "{api_version:?}: every state a page could see, each once"
    );
}

#[tokio::test]
async fn v0_an_order_edited_while_its_window_is_paged_is_neither_skipped_nor_duplicated() {
    edited_while_paged(None).await;
}

#[tokio::test]
async fn v2026_an_order_edited_while_its_window_is_paged_is_neither_skipped_nor_duplicated() {
    edited_while_paged(Some("2026-01-01")).await;
}
