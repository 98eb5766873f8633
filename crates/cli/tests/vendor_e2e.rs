//! End to end through the simulated vendors, on the real binary: Shopify orders (signed
//! webhooks, some delivered twice) reach the simulated NetSuite and Odoo exactly once while both
//! run the simulation's default per-request faults; NetSuite's item fulfillments, found by
//! polling, travel back to the simulated Shopify store exactly once; an Amazon order polled from
//! the simulated SP-API reaches NetSuite and its shipment is confirmed back; a Stripe payment
//! links to its order.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use handoff_connectors::signature::{sign_base64, sign_timestamped};
use handoff_sim::profile::FaultProfile;
use handoff_sim::system::{Collection, Record};
use serde_json::{Value, json};

const ORDERS: u64 = 60;
const AMAZON_ORDERS: usize = 20;

fn contract(port: u16, shop: &str, netsuite: &str, odoo: &str, amazon: &str) -> String {
    let retry = r#"{ attempts = 40, backoff_base = "100ms", backoff_cap = "1s", jitter = "equal", deadline = "1h" }"#;
    let poll = r#"{ every = "300ms", lookback = "1m", page_size = 10, initial = "1h" }"#;
    let flow = |name: &str, from: &str, to: &str, events: &str| {
        format!(
            "[flows.{name}]\nfrom = \"{from}\"\nto = \"{to}\"\nevents = {events}\nproof = \"record-id\"\n\
             deadline = \"15m\"\nretry = {retry}\n\n"
        )
    };
    let orders = r#"["order.created", "order.updated", "order.cancelled"]"#;
    let fulfillments = r#"["fulfillment.created"]"#;
    let ns_credentials = handoff_sim::vendors::netsuite::contract_credentials(&[("customer_id", "42")]);
    let amazon_token = handoff_sim::vendors::amazon::SIM_REFRESH_TOKEN;
    let odoo_key = handoff_sim::vendors::odoo::API_KEY;
    let odoo_db = handoff_sim::vendors::odoo::DATABASE;
    format!(
        r#"
[hub]
listen = "127.0.0.1:{port}"

[systems.shop]
role = "storefront"
connector = "shopify"
base_url = "{shop}"
webhook_secrets = ["shop-secret"]
credentials = {{ access_token = "shpat_simulated" }}
timeout = "1s"
settle = "2s"
max_in_flight = 16  # the emulators take more than the vendors' defaults
rate = 1000

[systems.pay]
role = "payment"
connector = "stripe"
webhook_secrets = ["whsec_test"]

[systems.amazon]
role = "marketplace"
connector = "amazon"
base_url = "{amazon}"
credentials = {{ client_id = "amzn1.application-oa2-client.sim", client_secret = "sim-secret", refresh_token = "{amazon_token}", marketplace_id = "ATVPDKIKX0DER", auth_url = "{amazon}/auth/o2/token" }}
poll = {poll}
timeout = "1s"
settle = "2s"
max_in_flight = 16  # the emulators take more than the vendors' defaults
rate = 1000

[systems.netsuite]
role = "erp"
connector = "netsuite"
base_url = "{netsuite}"
credentials = {ns_credentials}
poll = {poll}
timeout = "1s"
settle = "2s"
max_in_flight = 16  # the emulators take more than the vendors' defaults
rate = 1000

[systems.odoo]
role = "erp"
connector = "odoo"
base_url = "{odoo}"
credentials = {{ api_key = "{odoo_key}", database = "{odoo_db}" }}
timeout = "1s"
settle = "2s"
max_in_flight = 16  # the emulators take more than the vendors' defaults
rate = 1000

{}{}{}{}{}"#,
        flow("shop-to-netsuite", "shop", "netsuite", orders),
        flow("shop-to-odoo", "shop", "odoo", orders),
        flow("amazon-to-netsuite", "amazon", "netsuite", orders),
        flow("netsuite-to-shop", "netsuite", "shop", fulfillments),
        flow("netsuite-to-amazon", "netsuite", "amazon", fulfillments),
    )
}

/// The simulation's default per-request faults (its crashes, outage and webhook faults are the
/// simulation's own business; here the webhooks are duplicated by the test itself).
async fn default_faults(mock: &Mock) {
    let p = FaultProfile::default_profile();
    mock.set_faults(json!({
        "lost_ack": p.lost_ack, "lost_request": p.lost_request,
        "slow_ack": p.slow_ack, "slow_ack_ms": 1500,
        "error_after_apply": p.error_after_apply,
        "throttle": p.throttle, "retry_after_s": 1,
    }))
    .await;
}

async fn records(mock: &Mock) -> Vec<Record> {
    client().get(format!("{}/_records", mock.url)).send().await.unwrap().json().await.unwrap()
}

/// Records of one collection per external reference (up to the first `/` when `prefix_only`).
async fn count_by_ref(mock: &Mock, collection: Collection, prefix_only: bool) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in records(mock).await.into_iter().filter(|r| r.collection == collection) {
        let key = if prefix_only { r.external_ref.split('/').next().unwrap_or("").to_owned() } else { r.external_ref };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

async fn post_json(url: String, body: &Value) -> reqwest::Response {
    client().post(url).json(body).send().await.unwrap()
}

fn shopify_order(id: u64) -> Value {
    let mut order: Value = serde_json::from_slice(&vendor_payload("shopify_order.json")).unwrap();
    order["id"] = json!(id);
    order["name"] = json!(format!("#{id}"));
    for (n, line) in order["line_items"].as_array_mut().unwrap().iter_mut().enumerate() {
        line["id"] = json!(id * 10 + n as u64);
        line["sku"] = json!(format!("SKU-{n}"));
    }
    order
}

#[tokio::test]
async fn orders_travel_through_the_simulated_vendors_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let shop = Mock::start("shop", &["--connector", "shopify", "--seed", "11"]).await;
    let netsuite = Mock::start("netsuite", &["--connector", "netsuite", "--seed", "12"]).await;
    let odoo = Mock::start("odoo", &["--connector", "odoo", "--seed", "13"]).await;
    let amazon = Mock::start("amazon", &["--connector", "amazon", "--seed", "14"]).await;
    for mock in [&shop, &netsuite, &odoo, &amazon] {
        default_faults(mock).await;
    }
    let hub = Hub::start(dir.path(), port, &contract(port, &shop.url, &netsuite.url, &odoo.url, &amazon.url)).await;
    let c = client();

    // Shopify: each order placed in the store, then announced by a signed webhook; every third
    // one delivered twice (same event id), every fifth once more under a new event id.
    for id in 1001..1001 + ORDERS {
        let order = shopify_order(id);
        assert!(post_json(format!("{}/_orders", shop.url), &order).await.status().is_success());
        let body = serde_json::to_vec(&order).unwrap();
        let deliver = |event_id: String| {
            c.post(format!("{}/webhooks/shop", hub.url))
                .header("X-Shopify-Topic", "orders/create")
                .header("X-Shopify-Event-Id", event_id)
                .header("X-Shopify-API-Version", "2026-07")
                .header("X-Shopify-Hmac-Sha256", sign_base64("shop-secret", &body))
                .body(body.clone())
                .send()
        };
        assert_eq!(deliver(format!("evt-{id}")).await.unwrap().status(), 202);
        if id % 3 == 0 {
            assert_eq!(deliver(format!("evt-{id}")).await.unwrap().status(), 200);
        }
        if id % 5 == 0 {
            assert_eq!(deliver(format!("evt-{id}-again")).await.unwrap().status(), 202);
        }
    }

    // Amazon: orders placed in the SP-API simulator are found by the hub's poll.
    let amazon_orders: Vec<String> = (1..=AMAZON_ORDERS).map(|n| format!("111-{n:07}-{n:07}")).collect();
    for (n, id) in amazon_orders.iter().enumerate() {
        assert!(post_json(format!("{}/_orders", amazon.url), &amazon_order(id, n)).await.status().is_success());
    }

    let expected: BTreeMap<String, usize> =
        (1001..1001 + ORDERS).map(|id| id.to_string()).chain(amazon_orders.iter().cloned()).map(|r| (r, 1)).collect();
    let shop_only: BTreeMap<String, usize> = (1001..1001 + ORDERS).map(|id| (id.to_string(), 1)).collect();
    wait_for("every order in NetSuite and Odoo", Duration::from_secs(180), || async {
        let ns = count_by_ref(&netsuite, Collection::Orders, false).await;
        let od = count_by_ref(&odoo, Collection::Orders, false).await;
        (ns.len() == expected.len() && od.len() == shop_only.len()).then_some(())
    })
    .await;
    hub.drained().await;
    assert_eq!(count_by_ref(&netsuite, Collection::Orders, false).await, expected, "one NetSuite sales order each");
    assert_eq!(count_by_ref(&odoo, Collection::Orders, false).await, shop_only, "one Odoo sale order each");

    // NetSuite fulfils everything; the poll finds the item fulfillments; each goes back to
    // its own channel: Shopify orders to the store, Amazon orders to confirmShipment.
    for order_ref in expected.keys() {
        let r = post_json(format!("{}/_fulfil", netsuite.url), &json!({"external_ref": order_ref})).await;
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    wait_for("every fulfillment back at its channel", Duration::from_secs(180), || async {
        let shop_done = count_by_ref(&shop, Collection::Fulfillments, true).await;
        let amazon_done = count_by_ref(&amazon, Collection::Fulfillments, true).await;
        (shop_done.len() == shop_only.len() && amazon_done.len() == amazon_orders.len()).then_some(())
    })
    .await;
    hub.drained().await;
    assert_eq!(count_by_ref(&shop, Collection::Fulfillments, true).await, shop_only, "one Shopify fulfillment each");
    for system in [&netsuite, &odoo, &shop, &amazon] {
        let fired: BTreeMap<String, u64> =
            client().get(format!("{}/_fired", system.url)).send().await.unwrap().json().await.unwrap();
        eprintln!("{}: faults fired {fired:?}", system.url);
        assert!(fired.get("lost_ack").is_some_and(|&n| n > 0), "the faults really fired: {fired:?}");
    }
    let amazon_expected: BTreeMap<String, usize> = amazon_orders.iter().map(|s| (s.clone(), 1)).collect();
    assert_eq!(
        count_by_ref(&amazon, Collection::Fulfillments, true).await,
        amazon_expected,
        "one confirmShipment each"
    );

    // Stripe: a payment for a Shopify order lands in that order's timeline.
    let payment = String::from_utf8(vendor_payload("stripe_payment_intent_succeeded.json"))
        .unwrap()
        .replace("18446744073709551001", "1001");
    let signature = sign_timestamped("whsec_test", jiff::Timestamp::now().as_second(), payment.as_bytes());
    let r = c
        .post(format!("{}/webhooks/pay", hub.url))
        .header("Stripe-Signature", signature)
        .body(payment)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_for("the payment in order 1001's timeline", Duration::from_secs(10), || async {
        let t = hub.order("1001").await;
        t["events"].as_array()?.iter().any(|e| e["kind"] == "order.paid" && e["system"] == "pay").then_some(())
    })
    .await;
}

/// An Amazon Orders v0 order and its items, as the simulator takes them.
fn amazon_order(id: &str, n: usize) -> Value {
    let now = jiff::Timestamp::now();
    json!({
        "order": {
            "AmazonOrderId": id,
            "PurchaseDate": now.to_string(),
            "LastUpdateDate": now.to_string(),
            "OrderStatus": "Unshipped",
            "MarketplaceId": "ATVPDKIKX0DER",
            "OrderTotal": {"CurrencyCode": "USD", "Amount": format!("{}.00", 20 + n)},
            "BuyerInfo": {"BuyerEmail": format!("buyer{n}@marketplace.amazon.com")},
        },
        "items": [{
            "OrderItemId": format!("{id}-1"),
            "SellerSKU": format!("AMZ-{n}"),
            "QuantityOrdered": 1,
            "ItemPrice": {"CurrencyCode": "USD", "Amount": format!("{}.00", 20 + n)},
        }],
    })
}
