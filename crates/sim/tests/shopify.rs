//! The Shopify target and poller, and the WooCommerce poller, against their simulated APIs on
//! loopback: paging, an order that cannot be mapped held while the feed goes on, read-back after
//! lost acknowledgments, remaining quantities, refunds deduplicated by their idempotency key.

use std::sync::Arc;

use handoff_contract::System;
use handoff_engine::poll::{Poller, poll_once};
use handoff_engine::{DeliveryError, SystemClock, Target};
use handoff_model::{CommandKind, EventKind};
use handoff_sim::dialect::Dialect;
use handoff_sim::http::MockServer;
use handoff_sim::system::Collection;
use handoff_sim::vendors::shopify::ShopifyAdmin;
use handoff_sim::vendors::woocommerce::WooCommerce;
use handoff_sim::{Faults, MockSystem};
use handoff_store::memory::MemoryStore;
use handoff_store::{Command, NewCommand, Store};
use jiff::Timestamp;
use serde_json::{Value, json};

async fn serve(dialect: Arc<dyn Dialect>) -> (Arc<MockSystem>, String) {
    let system = Arc::new(MockSystem::new("shop", Faults::default(), 7));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(MockServer::new(system.clone(), dialect, None).serve(listener));
    (system, url)
}

fn system(connector: &str, base_url: &str, credentials: Value, page_size: u32) -> System {
    serde_json::from_value(json!({
        "role": "storefront",
        "connector": connector,
        "base_url": base_url,
        "timeout": "2s",
        "credentials": credentials,
        "poll": {"every": "1m", "lookback": "5m", "page_size": page_size, "initial": "24h"},
    }))
    .unwrap()
}

fn shopify(base_url: &str, page_size: u32) -> System {
    system("shopify", base_url, json!({"access_token": "shpat_test"}), page_size)
}

/// The Shopify REST order of `lines` (sku, quantity) at 10.00 each; `id` edits that order.
fn shopify_order(id: Option<u64>, lines: &[(&str, u32)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(n, (sku, q))| json!({"id": 9000 + n, "sku": sku, "quantity": q, "price": "10.00"}))
        .collect();
    let total: u32 = lines.iter().map(|(_, q)| q * 10).sum();
    let mut order = json!({"email": "bob@example.com", "currency": "USD", "total_price": format!("{total}.00"),
        "subtotal_price": format!("{total}.00"), "line_items": items});
    if let Some(id) = id {
        order["id"] = json!(id);
    }
    json!({ "order": order })
}

async fn place(base_url: &str, order: Value) -> Value {
    let r = reqwest::Client::new().post(format!("{base_url}/_orders")).json(&order).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// Places a Shopify order with these (sku, quantity) lines and returns its id.
async fn place_shopify(base_url: &str, lines: &[(&str, u32)]) -> String {
    let items: Vec<Value> = lines.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q, "price": "10.00"})).collect();
    // Ten dollars a unit, nothing else charged: what Shopify's total_price would say.
    let total = format!("{}.00", 10 * lines.iter().map(|(_, q)| q).sum::<u32>());
    let placed = place(
        base_url,
        json!({"order": {"email": "bob@example.com", "currency": "USD", "total_price": total, "line_items": items}}),
    )
    .await;
    placed["order"]["id"].as_u64().unwrap().to_string()
}

async fn get(url: &str) -> Value {
    let r = reqwest::Client::new().get(url).header("x-shopify-access-token", "shpat_test").send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

async fn remaining(base_url: &str, order_id: &str) -> Vec<u64> {
    let fo = get(&format!("{base_url}/admin/api/2026-07/orders/{order_id}/fulfillment_orders.json")).await;
    fo["fulfillment_orders"][0]["line_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["fulfillable_quantity"].as_u64().unwrap())
        .collect()
}

fn command(kind: CommandKind, order_ref: &str, key: &str, external_ref: &str, payload: Value) -> Command {
    let now = Timestamp::now();
    Command::new_pending(
        1,
        NewCommand {
            flow: "returns".into(),
            target: "shop".into(),
            order_ref: order_ref.into(),
            kind,
            idempotency_key: key.into(),
            external_ref: external_ref.into(),
            version: None,
            payload: payload.to_string(),
            supersede_unsent: false,
        },
        now,
    )
}

fn fulfillment(order_ref: &str, id: &str, lines: &[(&str, u32)], tracking: &str) -> Command {
    let external_ref = format!("{order_ref}/fulfillment/{id}");
    let lines: Vec<Value> = lines.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q})).collect();
    let payload = json!({"external_ref": external_ref, "order_ref": order_ref, "fulfillment": {
        "fulfillment_id": id, "lines": lines, "carrier": "DHL", "tracking_number": tracking,
    }});
    command(CommandKind::CreateFulfillment, order_ref, &format!("key-{id}"), &external_ref, payload)
}

fn cancel(order_ref: &str) -> Command {
    let payload = json!({"external_ref": order_ref, "version": null});
    command(CommandKind::CancelOrder, order_ref, &format!("cancel-{order_ref}"), order_ref, payload)
}

fn refund(order_ref: &str, id: &str, key: &str) -> Command {
    let external_ref = format!("{order_ref}/refund/{id}");
    let payload = json!({"external_ref": external_ref, "order_ref": order_ref, "refund": {
        "refund_id": id, "amount": {"amount": "12.50", "currency": "USD"}, "reason": "damaged",
    }});
    command(CommandKind::CreateRefund, order_ref, key, &external_ref, payload)
}

fn target(base_url: &str) -> Arc<dyn Target> {
    handoff_connectors::target("shop", &shopify(base_url, 50)).unwrap().expect("a target")
}

fn fulfillment_records(system: &MockSystem) -> usize {
    system.records().iter().filter(|r| r.collection == Collection::Fulfillments).count()
}

/// Polls until caught up: (new events, pages).
async fn poll_through(name: &str, poller: &dyn Poller, store: &MemoryStore) -> (usize, usize) {
    let (mut new, mut pages) = (0, 0);
    loop {
        let (n, more) = poll_once(name, poller, store, &SystemClock).await.unwrap();
        new += n;
        pages += 1;
        if !more {
            return (new, pages);
        }
        assert!(pages < 50, "the poll never caught up");
    }
}

/// A shop clock held still: `s` seconds after a whole second ten minutes ago.
fn clock_at() -> impl Fn(i64) -> Timestamp {
    let base = handoff_engine::poll::whole_second(Timestamp::now() - jiff::SignedDuration::from_mins(10));
    move |s| base + jiff::SignedDuration::from_secs(s)
}

#[tokio::test]
async fn the_orders_poll_pages_through_and_a_second_poll_finds_nothing_new() {
    let second = clock_at();
    let shop = Arc::new(ShopifyAdmin::default());
    let (_system, url) = serve(shop.clone()).await;
    shop.set_clock(Some(second(0)));
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(place_shopify(&url, &[("RED", 1)]).await);
    }
    let poller = handoff_connectors::poller("shop", &shopify(&url, 2)).unwrap().expect("a poller");
    let store = MemoryStore::new();
    assert_eq!(poll_through("shop", poller.as_ref(), &store).await, (5, 3));
    assert_eq!(poll_through("shop", poller.as_ref(), &store).await.0, 0, "the overlap is deduplicated");

    // A cancel that no webhook announced is found by the next poll, as order.cancelled.
    shop.set_clock(Some(second(1)));
    target(&url).send(&cancel(&ids[2])).await.unwrap();
    assert_eq!(poll_through("shop", poller.as_ref(), &store).await.0, 1);
    let mut cursor = None;
    let mut kinds = Vec::new();
    loop {
        let page = poller.poll(cursor.as_deref(), Timestamp::now()).await.unwrap();
        kinds.extend(page.events.iter().map(|e| (e.order_ref.clone(), e.kind)));
        assert!(page.events.iter().all(|e| e.event_id.starts_with("poll:") && e.raw.is_some()));
        assert!(page.events.iter().all(|e| e.event_id.contains('#')), "the content's fingerprint is in the id");
        cursor = Some(page.cursor);
        if !page.more {
            break;
        }
    }
    assert_eq!(kinds.len(), 5);
    assert_eq!(kinds.last(), Some(&(ids[2].clone(), EventKind::OrderCancelled)), "ordered by updated_at");
    assert_eq!(kinds.iter().filter(|(_, k)| *k == EventKind::OrderCreated).count(), 4);
}

#[tokio::test]
async fn a_fulfillment_whose_ack_was_lost_is_read_back_and_never_created_twice() {
    let (system, url) = serve(Arc::new(ShopifyAdmin::default())).await;
    let order = place_shopify(&url, &[("RED", 2), ("BLUE", 1)]).await;
    let target = target(&url);
    assert!(!target.honours_idempotency_keys());
    let c = fulfillment(&order, "F1", &[("RED", 2), ("BLUE", 1)], "TRK1");
    assert_eq!(target.read_back(&c).await.unwrap(), None);

    system.set_faults(Faults { lost_ack: 1.0, ..Faults::default() });
    let lost = target.send(&c).await.unwrap_err();
    assert!(matches!(lost, DeliveryError::Transient { ambiguous: true, .. }), "{lost:?}");
    system.set_faults(Faults::default());

    assert_eq!(remaining(&url, &order).await, vec![0, 0]);
    let found = target.read_back(&c).await.unwrap().expect("the lost fulfillment is found");
    // A resend after all checks the remaining quantities first and posts nothing.
    assert_eq!(target.send(&c).await.unwrap(), found);
    assert_eq!(fulfillment_records(&system), 1, "no second fulfillment");
    let shown = get(&format!("{url}/admin/api/2026-07/orders/{order}.json")).await;
    assert_eq!(shown["order"]["fulfillments"][0]["id"].to_string(), found.record_id);
    assert_eq!(shown["order"]["fulfillments"][0]["tracking_number"], "TRK1");
}

#[tokio::test]
async fn a_partial_fulfillment_leaves_the_rest_remaining() {
    let (system, url) = serve(Arc::new(ShopifyAdmin::default())).await;
    let order = place_shopify(&url, &[("RED", 3), ("BLUE", 1)]).await;
    let target = target(&url);
    let first = fulfillment(&order, "F1", &[("RED", 1)], "TRK1");
    let first_ack = target.send(&first).await.unwrap();
    assert_eq!(remaining(&url, &order).await, vec![2, 1]);

    let second = fulfillment(&order, "F2", &[("RED", 1)], "TRK2");
    assert_eq!(target.read_back(&second).await.unwrap(), None, "same lines, another shipment");
    assert_eq!(target.read_back(&first).await.unwrap(), Some(first_ack.clone()));
    let second_ack = target.send(&second).await.unwrap();
    assert_ne!(second_ack, first_ack);
    assert_eq!(remaining(&url, &order).await, vec![1, 1]);
    assert_eq!(fulfillment_records(&system), 2);

    let too_many = fulfillment(&order, "F3", &[("RED", 2)], "TRK3");
    let refused = target.send(&too_many).await.unwrap_err();
    assert!(
        matches!(&refused, DeliveryError::Permanent { field: Some(f), .. } if f == "fulfillment.lines.quantity"),
        "{refused:?}"
    );
    let unknown = fulfillment(&order, "F4", &[("GREEN", 1)], "TRK4");
    assert!(matches!(target.send(&unknown).await, Err(DeliveryError::Permanent { .. })));
    assert_eq!(fulfillment_records(&system), 2);
}

#[tokio::test]
async fn a_throttled_write_waits_as_shopify_asks() {
    let (system, url) = serve(Arc::new(ShopifyAdmin::default())).await;
    let order = place_shopify(&url, &[("RED", 1)]).await;
    system.set_faults(Faults { throttle: 1.0, retry_after_s: 3, ..Faults::default() });
    let throttled = target(&url).send(&fulfillment(&order, "F1", &[("RED", 1)], "TRK1")).await.unwrap_err();
    assert!(
        matches!(throttled, DeliveryError::Throttled { retry_after: Some(d), .. } if d.as_secs() == 3),
        "{throttled:?}"
    );
    assert_eq!(fulfillment_records(&system), 0);
}

#[tokio::test]
async fn a_cancel_is_read_back_even_when_its_ack_was_lost() {
    let (system, url) = serve(Arc::new(ShopifyAdmin::default())).await;
    let target = target(&url);
    let order = place_shopify(&url, &[("RED", 1)]).await;
    let c = cancel(&order);
    assert_eq!(target.read_back(&c).await.unwrap(), None);
    assert_eq!(target.send(&c).await.unwrap().record_id, order);
    assert_eq!(target.read_back(&c).await.unwrap().map(|a| a.record_id), Some(order.clone()));
    let shown = get(&format!("{url}/admin/api/2026-07/orders/{order}.json")).await;
    assert!(shown["order"]["cancelled_at"].is_string());
    assert_eq!(remaining(&url, &order).await, vec![0], "nothing left to fulfil on a cancelled order");

    let other = place_shopify(&url, &[("RED", 1)]).await;
    system.set_faults(Faults { lost_ack: 1.0, ..Faults::default() });
    assert!(target.send(&cancel(&other)).await.is_err());
    system.set_faults(Faults::default());
    assert!(target.read_back(&cancel(&other)).await.unwrap().is_some());
    // A resend meets Shopify's "already cancelled" and takes it as done.
    assert_eq!(target.send(&cancel(&other)).await.unwrap().record_id, other);
}

#[tokio::test]
async fn a_refund_sent_twice_with_one_key_is_one_refund() {
    let (system, url) = serve(Arc::new(ShopifyAdmin::default())).await;
    let target = target(&url);
    let order = place_shopify(&url, &[("RED", 1)]).await;
    let c = refund(&order, "R1", "refund-key-1");
    assert_eq!(target.read_back(&c).await.unwrap(), None);

    system.set_faults(Faults { lost_ack: 1.0, ..Faults::default() });
    assert!(matches!(target.send(&c).await, Err(DeliveryError::Transient { ambiguous: true, .. })));
    system.set_faults(Faults::default());
    let again = target.send(&c).await.unwrap();
    assert_eq!(target.send(&c).await.unwrap(), again);
    assert_eq!(target.read_back(&c).await.unwrap(), Some(again.clone()));

    let refunds = get(&format!("{url}/admin/api/2026-07/orders/{order}/refunds.json")).await;
    let refunds = refunds["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["id"].to_string(), again.record_id);
    assert_eq!(refunds[0]["note"], format!("damaged [handoff {order}/refund/R1]"));
    assert_eq!(refunds[0]["transactions"][0]["amount"], "12.50");

    let other_currency = {
        let mut c = refund(&order, "R2", "refund-key-2");
        c.payload = c.payload.replace("USD", "EUR");
        c
    };
    let refused = target.send(&other_currency).await.unwrap_err();
    assert!(matches!(&refused, DeliveryError::Permanent { field: Some(f), .. } if f == "refund.amount.currency"));
}

fn woocommerce(base_url: &str, page_size: u32) -> System {
    system("woocommerce", base_url, json!({"consumer_key": "ck_test", "consumer_secret": "cs_test"}), page_size)
}

fn woo_order(id: u64, status: &str, modified: &str) -> Value {
    json!({
        "id": id, "status": status, "currency": "EUR", "total": "20.00", "total_tax": "0.00", "shipping_total": "0.00",
        "date_created_gmt": "2026-11-01T10:00:00", "date_modified_gmt": modified,
        "billing": {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"},
        "line_items": [{"sku": "MUG", "quantity": 2, "subtotal": "20.00", "total": "20.00", "total_tax": "0.00"}],
    })
}

#[tokio::test]
async fn the_woocommerce_poll_pages_through_and_sees_a_cancel() {
    let (_system, url) = serve(Arc::new(WooCommerce::default())).await;
    let now = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let at = |minutes: i64| (now - jiff::SignedDuration::from_mins(minutes)).strftime("%Y-%m-%dT%H:%M:%S").to_string();
    for (n, id) in (101..=105).enumerate() {
        place(&url, woo_order(id, "processing", &at(30 - n as i64))).await;
    }
    // Older than the first window: not read.
    place(&url, woo_order(99, "processing", &at(60 * 48))).await;

    let poller = handoff_connectors::poller("store", &woocommerce(&url, 2)).unwrap().expect("a poller");
    let store = MemoryStore::new();
    assert_eq!(poll_through("store", poller.as_ref(), &store).await, (5, 3));
    assert_eq!(poll_through("store", poller.as_ref(), &store).await.0, 0, "the overlap is deduplicated");

    // The cancel's webhook was never retried; the poll finds it.
    place(&url, woo_order(103, "cancelled", &at(1))).await;
    let page = poller.poll(None, Timestamp::now()).await.unwrap();
    assert_eq!(page.events.iter().map(|e| e.order_ref.as_str()).collect::<Vec<_>>(), ["101", "102"]);
    assert_eq!(poll_through("store", poller.as_ref(), &store).await.0, 1);

    let unauthenticated = reqwest::get(format!("{url}/wp-json/wc/v3/orders")).await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn a_woocommerce_order_edited_while_its_window_is_paged_is_neither_skipped_nor_duplicated() {
    let (_system, url) = serve(Arc::new(WooCommerce::default())).await;
    let second = clock_at();
    let gmt = |s: i64| second(s).to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let order = |id: u64, quantity: u64, at: &str| {
        let mut o = woo_order(id, "processing", at);
        o["line_items"][0]["quantity"] = json!(quantity);
        o
    };
    // Five orders changed within one second: a page boundary falls inside it.
    for id in 101..=105 {
        place(&url, order(id, 1, &gmt(0))).await;
    }
    let poller = handoff_connectors::poller("store", &woocommerce(&url, 2)).unwrap().expect("a poller");
    let store = MemoryStore::new();
    let first = poller.poll(None, Timestamp::now()).await.unwrap();
    let read: Vec<String> = first.events.iter().map(|e| e.order_ref.clone()).collect();
    assert_eq!(read.len(), 2);
    store.record_polled("store".into(), first.events, first.held, first.cursor, Timestamp::now()).await.unwrap();
    let unread: Vec<u64> = (101..=105).filter(|id| !read.contains(&id.to_string())).collect();

    // Between two page reads: an order already read is edited within the same second, one not
    // yet read too, and another already read a second later (it moves ahead of the reader).
    let (read_a, read_b) = (read[0].parse::<u64>().unwrap(), read[1].parse::<u64>().unwrap());
    place(&url, order(read_a, 7, &gmt(0))).await;
    place(&url, order(unread[0], 9, &gmt(0))).await;
    place(&url, order(read_b, 4, &gmt(1))).await;
    poll_through("store", poller.as_ref(), &store).await;
    poll_through("store", poller.as_ref(), &store).await;
    assert_eq!(poll_through("store", poller.as_ref(), &store).await.0, 0);

    let mut expected: Vec<(String, u64)> = vec![(read_a.to_string(), 1), (read_a.to_string(), 7)];
    expected.extend([(read_b.to_string(), 1), (read_b.to_string(), 4), (unread[0].to_string(), 9)]);
    expected.extend(unread[1..].iter().map(|id| (id.to_string(), 1)));
    expected.sort();
    assert_eq!(recorded_quantities(&store).await, expected, "every state a page could see, each once");
}

#[tokio::test]
async fn a_polled_cancelled_woocommerce_order_is_a_cancellation() {
    let (_system, url) = serve(Arc::new(WooCommerce::default())).await;
    let soon = (Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).datetime() + jiff::SignedDuration::from_mins(1))
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string();
    place(&url, woo_order(7, "trash", &soon)).await;
    let poller = handoff_connectors::poller("store", &woocommerce(&url, 10)).unwrap().expect("a poller");
    let page = poller.poll(None, Timestamp::now()).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].kind, EventKind::OrderCancelled);
    assert!(!page.more);
}

#[tokio::test]
async fn a_partial_fulfillment_whose_ack_was_lost_is_found_by_its_tracking_number() {
    let (system, url) = serve(Arc::new(ShopifyAdmin::default())).await;
    let order = place_shopify(&url, &[("RED", 3)]).await;
    let target = target(&url);
    let c = fulfillment(&order, "F1", &[("RED", 1)], "TRK1");
    system.set_faults(Faults { lost_ack: 1.0, ..Faults::default() });
    assert!(target.send(&c).await.is_err());
    system.set_faults(Faults::default());
    // Units remain, so only the fulfillment itself can say the command is done.
    assert_eq!(remaining(&url, &order).await, vec![2]);
    let found = target.read_back(&c).await.unwrap().expect("found by tracking number and lines");
    assert_eq!(target.send(&c).await.unwrap(), found);
    assert_eq!(fulfillment_records(&system), 1);
    assert_eq!(remaining(&url, &order).await, vec![2]);
}

/// The one held record of `store` and its exception's field, after checking there is one of each.
async fn held_once(store: &MemoryStore) -> (handoff_store::Quarantined, String) {
    let held = store.quarantined(None, 10).await.unwrap();
    let exceptions = store.exceptions(None, 10).await.unwrap();
    assert_eq!((held.len(), exceptions.len()), (1, 1), "held once, raised once");
    assert_eq!(exceptions[0].pattern, "transform_mismatch");
    (held[0].clone(), exceptions[0].field.clone().unwrap_or_default())
}

#[tokio::test]
async fn an_order_the_shopify_poll_cannot_map_is_held_and_the_feed_goes_on() {
    let (_system, url) = serve(Arc::new(ShopifyAdmin::default())).await;
    let first = place_shopify(&url, &[("RED", 1)]).await;
    // A shape never seen: the currency is not an ISO 4217 code.
    let odd = place(&url, json!({"order": {"email": "eve@example.com", "currency": "US Dollar",
        "subtotal_price": "10.00", "total_price": "10.00", "line_items": [{"sku": "RED", "quantity": 1, "price": "10.00"}]}}))
    .await;
    let odd = odd["order"]["id"].to_string();
    let system = shopify(&url, 2);
    let poller = handoff_connectors::poller("shop", &system).unwrap().expect("a poller");
    let store = MemoryStore::new();
    assert_eq!(poll_through("shop", poller.as_ref(), &store).await, (1, 1));
    assert!(store.poll_cursor("shop".into()).await.unwrap().is_some(), "the cursor moved past it");
    let (held, field) = held_once(&store).await;
    assert_eq!(
        (held.order_ref.as_deref(), held.field.as_str(), field.as_str()),
        (Some(odd.as_str()), "currency", "currency")
    );
    assert_eq!(held.source_version.as_deref(), Some("2026-07"));

    // Later orders still arrive; the held one, read again by the overlap, is held once.
    let later = place_shopify(&url, &[("BLUE", 2)]).await;
    assert_eq!(poll_through("shop", poller.as_ref(), &store).await.0, 1);
    held_once(&store).await;
    let refs: Vec<String> = store.unprocessed_events(10).await.unwrap().into_iter().map(|e| e.order_ref).collect();
    assert_eq!(refs, [first, later]);
    // Today's reader still refuses it.
    let refused = handoff_connectors::reread("shop", &system, &held).unwrap_err();
    assert_eq!(refused.field, "currency");
    // What was kept is the order as Shopify listed it: with a currency it reads.
    let mut body: Value = serde_json::from_slice(&held.body).unwrap();
    body["currency"] = json!("USD");
    let fixed = handoff_store::Quarantined { body: body.to_string().into_bytes(), ..held.clone() };
    assert_eq!(handoff_connectors::reread("shop", &system, &fixed).unwrap().order_ref, odd);
}

#[tokio::test]
async fn an_order_the_woocommerce_poll_cannot_map_is_held_and_the_feed_goes_on() {
    let (_system, url) = serve(Arc::new(WooCommerce::default())).await;
    let now = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let at = |minutes: i64| (now - jiff::SignedDuration::from_mins(minutes)).strftime("%Y-%m-%dT%H:%M:%S").to_string();
    place(&url, woo_order(201, "processing", &at(30))).await;
    // A type change: the quantity came as text.
    let mut odd = woo_order(202, "processing", &at(29));
    odd["line_items"][0]["quantity"] = json!("2");
    place(&url, odd).await;
    let system = woocommerce(&url, 2);
    let poller = handoff_connectors::poller("store", &system).unwrap().expect("a poller");
    let store = MemoryStore::new();
    // Two orders fill the first keyset page of two; an empty second page ends the window.
    assert_eq!(poll_through("store", poller.as_ref(), &store).await, (1, 2));
    assert!(store.poll_cursor("store".into()).await.unwrap().is_some());
    let (held, field) = held_once(&store).await;
    assert_eq!((held.order_ref.as_deref(), field.as_str()), (Some("202"), "line_items.quantity"));

    place(&url, woo_order(203, "processing", &at(1))).await;
    assert_eq!(poll_through("store", poller.as_ref(), &store).await.0, 1);
    held_once(&store).await;
    assert!(handoff_connectors::reread("store", &system, &held).is_err(), "still refused");
    let mut body: Value = serde_json::from_slice(&held.body).unwrap();
    body["line_items"][0]["quantity"] = json!(2);
    let fixed = handoff_store::Quarantined { body: body.to_string().into_bytes(), ..held.clone() };
    assert_eq!(handoff_connectors::reread("store", &system, &fixed).unwrap().order_ref, "202");
}

/// (order, first line's quantity) of every event the store recorded, sorted.
async fn recorded_quantities(store: &MemoryStore) -> Vec<(String, u64)> {
    let mut seen: Vec<(String, u64)> = store
        .unprocessed_events(1000)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let payload: Value = serde_json::from_str(&e.payload).unwrap();
            (e.order_ref.clone(), payload["order"]["lines"][0]["quantity"].as_u64().unwrap_or(0))
        })
        .collect();
    seen.sort();
    seen
}

#[tokio::test]
async fn an_order_edited_while_its_window_is_paged_is_neither_skipped_nor_duplicated() {
    let second = clock_at();
    let shop = Arc::new(ShopifyAdmin::default());
    let (_system, url) = serve(shop.clone()).await;
    shop.set_clock(Some(second(0)));
    let mut ids = Vec::new();
    for _ in 0..5 {
        let placed = place(&url, shopify_order(None, &[("RED", 1)])).await;
        ids.push(placed["order"]["id"].as_u64().unwrap());
    }
    let poller = handoff_connectors::poller("shop", &shopify(&url, 2)).unwrap().expect("a poller");
    let store = MemoryStore::new();
    let (new, more) = poll_once("shop", poller.as_ref(), &store, &SystemClock).await.unwrap();
    assert_eq!((new, more), (2, true), "the first page: the first two orders");

    // Between two page reads, within the same second: an order already read and one not yet
    // read are edited (their updated_at stays), and one already read is edited a second later.
    place(&url, shopify_order(Some(ids[0]), &[("RED", 7)])).await;
    place(&url, shopify_order(Some(ids[3]), &[("RED", 9)])).await;
    shop.set_clock(Some(second(1)));
    place(&url, shopify_order(Some(ids[1]), &[("RED", 4)])).await;
    poll_through("shop", poller.as_ref(), &store).await;
    // The next window starts the overlap back and reads the same-second edit by its content.
    poll_through("shop", poller.as_ref(), &store).await;
    assert_eq!(poll_through("shop", poller.as_ref(), &store).await.0, 0);

    let o = |n: usize, q: u64| (ids[n].to_string(), q);
    assert_eq!(
        recorded_quantities(&store).await,
        vec![o(0, 1), o(0, 7), o(1, 1), o(1, 4), o(2, 1), o(3, 9), o(4, 1)],
        "every state an order had when a page could see it, each once"
    );
}

#[tokio::test]
async fn two_changes_of_one_order_within_one_second_both_reach_the_erp() {
    use handoff_engine::{Dispatcher, Intake, Rng};

    let second = clock_at();
    let shop = Arc::new(ShopifyAdmin::default());
    let (_system, url) = serve(shop.clone()).await;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
    let contract = Arc::new(handoff_contract::Contract::parse(&text, std::path::Path::new("handoff.toml")).unwrap());
    let erp = Arc::new(MockSystem::new("erp", Faults::default(), 3));
    let targets = [("erp".to_owned(), Arc::new(handoff_sim::target::SimTarget::new(erp.clone(), 1000, true)) as _)];
    let store = MemoryStore::new();
    let clock: Arc<dyn handoff_engine::Clock> = Arc::new(SystemClock);
    let intake = Intake::new(contract.clone(), store.clone(), clock.clone());
    let dispatcher = Dispatcher::new(contract, store.clone(), targets.into_iter().collect(), clock, Rng::seeded(1));
    let poller = handoff_connectors::poller("shop", &shopify(&url, 10)).unwrap().expect("a poller");
    let deliver = || async {
        poll_through("shop", poller.as_ref(), &store).await;
        while intake.step().await.unwrap() > 0 {}
        loop {
            let claimed = store.claim_due(Timestamp::now(), 10).await.unwrap();
            if claimed.is_empty() {
                break;
            }
            for c in claimed {
                let record = dispatcher.attempt(c).await;
                dispatcher.record(record).await;
            }
        }
    };

    shop.set_clock(Some(second(0)));
    let id = place(&url, shopify_order(None, &[("RED", 1)])).await["order"]["id"].as_u64().unwrap();
    deliver().await;
    shop.set_clock(Some(second(1)));
    place(&url, shopify_order(Some(id), &[("RED", 2)])).await;
    deliver().await;
    place(&url, shopify_order(Some(id), &[("RED", 3)])).await;
    deliver().await;

    let ops: Vec<(String, Option<u64>)> = erp.applied().iter().map(|a| (a.op.clone(), a.version)).collect();
    let v = |s: i64| Some(u64::try_from(second(s).as_millisecond()).unwrap());
    assert_eq!(ops, vec![("create".into(), v(0)), ("update".into(), v(1)), ("update".into(), v(1))]);
    let record = erp.find(Collection::Orders, &id.to_string()).remove(0);
    assert_eq!(record.lines, vec![("RED".to_owned(), 3)], "the ERP holds the second change of that second");
}
