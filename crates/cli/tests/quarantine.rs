//! Quarantine through the real binary: a signed Shopify body that cannot be mapped is answered
//! 2xx, held raw and raised as a Transform Mismatch naming the field; replaying it while the
//! reader still refuses it changes nothing; a held body the reader of this build maps replays
//! into an ordinary order, once. A forged body is still refused with 401 and stores nothing.

mod common;

use common::*;
use handoff_connectors::signature::sign_base64;
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use handoff_store::{NewQuarantined, QuarantineSource, Recorded, Store};
use serde_json::Value;

const ORDER: &str = "18446744073709551001";

fn contract(port: u16, erp: &str) -> String {
    format!(
        "[hub]\nlisten = \"127.0.0.1:{port}\"\n\n[systems.shopify]\nrole = \"storefront\"\nconnector = \"shopify\"\n\
         webhook_secrets = [\"shpss_secret\"]\n\n{}\n{}",
        http_json_system("erp", "erp", erp),
        flow("shopify-orders", "shopify", "erp", r#"["order.created", "order.cancelled"]"#, "record-id", 10),
    )
}

/// Our `orders/create` payload in Shopify's documented shape.
fn shopify_order() -> Value {
    serde_json::from_slice(&vendor_payload("shopify_order.json")).unwrap()
}

fn text(out: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn a_signed_body_that_cannot_be_mapped_is_held_raised_and_replayed_once_a_reader_maps_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let erp = Mock::start("erp", &[]).await;
    let hub = Hub::start(dir.path(), port, &contract(port, &erp.url)).await;
    let c = client();
    let deliver = |event_id: &'static str, signature: String, body: Vec<u8>| {
        c.post(format!("{}/webhooks/shopify", hub.url))
            .header("X-Shopify-Topic", "orders/create")
            .header("X-Shopify-Event-Id", event_id)
            .header("X-Shopify-API-Version", "2026-07")
            .header("X-Shopify-Hmac-Sha256", signature)
            .body(body)
            .send()
    };
    let quarantine = async || -> Value { hub.get("/api/v1/quarantine").send().await.unwrap().json().await.unwrap() };
    let exceptions = async || -> Vec<Value> {
        let page: Value = hub.get("/api/v1/exceptions").send().await.unwrap().json().await.unwrap();
        serde_json::from_value(page["items"].clone()).unwrap()
    };

    let mut order = shopify_order();
    order.as_object_mut().unwrap().remove("line_items");
    let body = serde_json::to_vec(&order).unwrap();

    // Forged: refused before it is read, nothing held.
    assert_eq!(deliver("evt-1", sign_base64("wrong", &body), body.clone()).await.unwrap().status(), 401);
    assert_eq!(quarantine().await["held"], 0);

    // Signed: answered 2xx, held, raised; a redelivery is the same held body.
    let held = deliver("evt-1", sign_base64("shpss_secret", &body), body.clone()).await.unwrap();
    assert_eq!(held.status(), 202);
    let held: Value = held.json().await.unwrap();
    assert_eq!((held["status"].as_str(), held["field"].as_str()), (Some("quarantined"), Some("line_items")));
    let id = held["quarantine"].as_i64().unwrap();
    let again = deliver("evt-1", sign_base64("shpss_secret", &body), body.clone()).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["quarantine"], id);

    let listed = quarantine().await;
    assert_eq!((listed["held"].as_u64(), listed["by_system"]["shopify"].as_u64()), (Some(1), Some(1)));
    let row = &listed["items"][0];
    assert!(listed["next"].is_null(), "one held body, one page");
    assert_eq!(
        (row["field"].as_str(), row["source_version"].as_str(), row["flow"].as_str(), row["order_ref"].as_str()),
        (Some("line_items"), Some("2026-07"), Some("shopify-orders"), Some(ORDER))
    );
    assert!(row["headers"].get("x-shopify-hmac-sha256").is_none(), "the signature is not kept");
    let raised = exceptions().await;
    assert_eq!(raised.len(), 1);
    let x = &raised[0];
    assert_eq!(
        (x["pattern"].as_str(), x["state"].as_str(), x["field"].as_str(), x["flow"].as_str(), x["order_ref"].as_str()),
        (Some("transform_mismatch"), Some("open"), Some("line_items"), Some("shopify-orders"), Some(ORDER))
    );
    assert!(x["detail"].as_str().unwrap().contains("source version 2026-07"), "{}", x["detail"]);
    assert_eq!(hub.order(ORDER).await["quarantined"].as_array().unwrap().len(), 1, "the order shows what is held");

    let (listing, _) = text(&hub.cli(&["quarantine", "list"]));
    assert!(listing.contains("held") && listing.contains("line_items"), "{listing}");
    let (shown, _) = text(&hub.cli(&["quarantine", "show", &id.to_string()]));
    assert!(shown.contains("x-shopify-topic: orders/create") && shown.contains("2026-07"), "{shown}");
    assert!(shown.contains(ORDER) && !shown.to_lowercase().contains("hmac"), "the body as received: {shown}");

    // Replayed while the reader still refuses it: refused, and nothing changes.
    let config = hub.config.to_str().unwrap().to_owned();
    let refused = hub.cli(&["quarantine", "replay", &id.to_string(), "--config", &config]);
    let (_, stderr) = text(&refused);
    assert!(!refused.status.success());
    assert!(stderr.contains("still cannot be mapped") && stderr.contains("line_items"), "{stderr}");
    // Its exception's action is the same replay.
    let acted = hub.cli(&["exceptions", "act", &x["id"].to_string(), "--config", &config]);
    let (_, stderr) = text(&acted);
    assert!(!acted.status.success() && stderr.contains("still cannot be mapped"), "{stderr}");
    assert_eq!(quarantine().await["held"], 1);
    assert_eq!(exceptions().await[0]["state"], "open");
    assert!(hub.order(ORDER).await["events"].as_array().unwrap().is_empty());
    assert!(erp.applied().await.is_empty());

    // A body an earlier reader held that this build's reader maps (as after a fix).
    let mut readable = shopify_order();
    readable["id"] = serde_json::json!(2002);
    let readable = serde_json::to_vec(&readable).unwrap();
    let earlier = {
        let store = SqliteStore::open(&hub.data_dir(), SqliteOptions::default()).unwrap();
        let headers = [("x-shopify-topic", "orders/create"), ("x-shopify-event-id", "evt-2002")];
        let held = NewQuarantined {
            system: "shopify".into(),
            source: QuarantineSource::Webhook,
            fingerprint: "held-by-an-earlier-build".into(),
            order_ref: Some("2002".into()),
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: readable.clone(),
            field: "total_shipping_price_set".into(),
            reason: "a shape that reader did not know".into(),
            source_version: Some("2026-07".into()),
            flow: Some("shopify-orders".into()),
            received_at: jiff::Timestamp::now(),
        };
        let Recorded::New(earlier) = store.quarantine(held, jiff::Timestamp::now()).await.unwrap() else {
            panic!("a new held body")
        };
        earlier
    };
    let replayed = hub.cli(&["quarantine", "replay", "--all", "--config", &config]);
    let (stdout, stderr) = text(&replayed);
    assert!(replayed.status.success(), "{stderr}");
    assert!(stdout.contains(&format!("quarantine {earlier}: replayed as event")), "{stdout}");
    assert!(stdout.contains("1 replayed, 1 still held"), "{stdout}");
    hub.drained().await;
    let applied = erp.applied().await;
    assert_eq!(applied.iter().map(|a| a.external_ref.as_str()).collect::<Vec<_>>(), ["2002"], "a normal order");

    // Idempotent: replayed again it does nothing; the same event delivered again is a duplicate.
    let (again, _) = text(&hub.cli(&["quarantine", "replay", &earlier.to_string(), "--config", &config]));
    assert!(again.contains("replayed before"), "{again}");
    let redelivered = deliver("evt-2002", sign_base64("shpss_secret", &readable), readable.clone()).await.unwrap();
    assert_eq!(redelivered.json::<Value>().await.unwrap()["status"], "duplicate");
    hub.drained().await;
    assert_eq!(erp.applied().await.len(), 1);
    let resolved: Value = hub.get("/api/v1/exceptions?state=resolved").send().await.unwrap().json().await.unwrap();
    let resolved = resolved["items"].as_array().unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0]["order_ref"].as_str(), resolved[0]["field"].as_str()),
        (Some("2002"), Some("total_shipping_price_set"))
    );
    assert_eq!(quarantine().await["held"], 1, "the unreadable one is still held");
    // A state that does not exist is refused, not answered with an empty list.
    let bogus = hub.get("/api/v1/exceptions?state=bogus").send().await.unwrap();
    assert_eq!(bogus.status(), 400);
    assert_eq!(bogus.headers()["content-type"], "application/problem+json");
    assert!(bogus.text().await.unwrap().contains("unknown variant `bogus`"));
}
