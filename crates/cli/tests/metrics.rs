//! `/metrics` of a live hub moves: a hub (`handoff serve`) with a Shopify store it hears by
//! signed webhooks and polls, an ERP that acknowledges and a warehouse in an outage, scraped
//! twice while orders flow. Every metric of the hub's list is there, each counter and histogram
//! counted more the second time, and the poller's last success is later.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use handoff_connectors::signature::sign_base64;
use serde_json::{Value, json};

fn contract(port: u16, shop: &str, erp: &str, wms: &str) -> String {
    let orders = r#"["order.created", "order.updated", "order.cancelled"]"#;
    format!(
        r#"[hub]
listen = "127.0.0.1:{port}"

[systems.shop]
role = "storefront"
connector = "shopify"
base_url = "{shop}"
webhook_secrets = ["shop-secret"]
credentials = {{ access_token = "shpat_simulated" }}
poll = {{ every = "300ms", lookback = "1m", page_size = 10, initial = "1h" }}
timeout = "1s"
settle = "200ms"

{}
{}
{}
{}"#,
        http_json_system("erp", "erp", erp),
        http_json_system("wms", "wms", wms),
        flow("shop-to-erp", "shop", "erp", orders, "record-id", 30),
        flow("shop-to-wms", "shop", "wms", orders, "record-id", 2),
    )
}

/// Each series' value, by its name and labels as written (`name{labels}`).
fn scrape_text(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of every series of `name` (all its labels).
fn total(series: &BTreeMap<String, f64>, name: &str) -> f64 {
    series.iter().filter(|(s, _)| s.as_str() == name || s.starts_with(&format!("{name}{{"))).map(|(_, v)| v).sum()
}

fn present(series: &BTreeMap<String, f64>, name: &str, label: &str) -> bool {
    series.keys().any(|s| s.starts_with(&format!("{name}{{")) && s.contains(label))
}

fn shopify_order(id: u64) -> Value {
    let mut order: Value = serde_json::from_slice(&vendor_payload("shopify_order.json")).unwrap();
    order["id"] = json!(id);
    order["name"] = json!(format!("#{id}"));
    for (n, line) in order["line_items"].as_array_mut().unwrap().iter_mut().enumerate() {
        line["id"] = json!(id * 10 + n as u64);
    }
    order
}

/// Counters and histograms (by their count), each of which must move between two scrapes.
const MOVING: [&str; 8] = [
    "handoff_events_received_total",
    "handoff_attempts_total",
    "handoff_retries_total",
    "handoff_dead_letters_total",
    "handoff_ack_latency_seconds_count",
    "handoff_polls_total",
    "handoff_store_commit_seconds_count",
    "handoff_store_sync_seconds_count",
];

#[tokio::test]
async fn every_metric_is_there_and_each_counter_moves_while_orders_flow() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let shop = Mock::start("shop", &["--connector", "shopify", "--seed", "21"]).await;
    let erp = Mock::start("erp", &[]).await;
    let wms = Mock::start("wms", &[]).await;
    wms.set_faults(json!({"outage": true})).await;
    let hub = Hub::start(dir.path(), port, &contract(port, &shop.url, &erp.url, &wms.url)).await;
    let c = client();
    let deliver = |id: u64, body: Vec<u8>| {
        c.post(format!("{}/webhooks/shop", hub.url))
            .header("X-Shopify-Topic", "orders/create")
            .header("X-Shopify-Event-Id", format!("evt-{id}"))
            .header("X-Shopify-API-Version", "2026-07")
            .header("X-Shopify-Hmac-Sha256", sign_base64("shop-secret", &body))
            .body(body)
            .send()
    };
    let scrape = || async {
        let text = hub.get("/metrics").send().await.unwrap().text().await.unwrap();
        scrape_text(&text)
    };
    // Orders until the ERP acknowledged one and the warehouse dead-lettered one.
    let orders = |from: u64| {
        let deliver = &deliver;
        async move {
            for id in from..from + 5 {
                let body = serde_json::to_vec(&shopify_order(id)).unwrap();
                assert_eq!(deliver(id, body).await.unwrap().status(), 202);
            }
        }
    };
    // ... and a poll that succeeded after `polled` (the poller runs every 300 ms: on a loaded
    // machine the orders alone can settle between two of its polls).
    let last_poll = r#"handoff_poll_last_success_timestamp_seconds{system="shop"}"#;
    let settled = |before: f64, polled: f64| {
        let scrape = &scrape;
        async move {
            wait_for("acknowledgments, dead letters and a poll", Duration::from_secs(90), || async {
                let s = scrape().await;
                (total(&s, "handoff_dead_letters_total") >= before + 5.0
                    && total(&s, "handoff_ack_latency_seconds_count") >= before + 5.0
                    && s.get(last_poll).is_some_and(|at| *at > polled))
                .then_some(s)
            })
            .await
        }
    };
    orders(1001).await;
    let first = settled(0.0, 0.0).await;
    // A body the reader cannot map is held, not refused.
    let mut unmappable = shopify_order(1999);
    unmappable.as_object_mut().unwrap().remove("line_items");
    assert_eq!(deliver(1999, serde_json::to_vec(&unmappable).unwrap()).await.unwrap().status(), 202);
    orders(2001).await;
    let second = settled(5.0, first[last_poll]).await;

    for name in MOVING {
        let (was, is) = (total(&first, name), total(&second, name));
        assert!(is > was, "{name} did not move: {was} then {is}");
    }
    // Each by its bounded labels.
    for (name, label) in [
        ("handoff_events_received_total", r#"system="shop""#),
        ("handoff_events_received_total", r#"outcome="held""#),
        ("handoff_attempts_total", r#"kind="create_order""#),
        ("handoff_attempts_total", r#"outcome="acknowledged""#),
        ("handoff_attempts_total", r#"outcome="dead_lettered""#),
        ("handoff_retries_total", r#"flow="shop-to-wms""#),
        ("handoff_dead_letters_total", r#"flow="shop-to-wms""#),
        ("handoff_ack_latency_seconds_bucket", r#"flow="shop-to-erp""#),
        ("handoff_polls_total", r#"outcome="ok""#),
        ("handoff_poll_last_success_timestamp_seconds", r#"system="shop""#),
        ("handoff_commands", r#"state="dead_lettered""#),
        ("handoff_open_exceptions", r#"pattern="dead_delivery""#),
        ("handoff_quarantine_depth", r#"system="shop""#),
    ] {
        assert!(present(&second, name, label), "{name}{{{label}}} missing");
    }
    assert!(second.contains_key("handoff_writer_queue_depth"), "the writer's queue depth is missing");
    // The depths read at each scrape: ten dead letters, their exceptions, one held body.
    assert_eq!(second[r#"handoff_commands{state="dead_lettered"}"#], 10.0);
    assert_eq!(second[r#"handoff_open_exceptions{pattern="dead_delivery"}"#], 10.0);
    assert_eq!(second[r#"handoff_quarantine_depth{system="shop"}"#], 1.0);
    // The poller's lag is now minus its last success: it kept polling.
    assert!(second[last_poll] > first[last_poll], "the poller's last success did not move");
}
