//! Vendor webhooks through the real binary: refused with 401 before any parsing when the
//! signature is wrong (nothing stored), delivered to the ERP when it is right.

mod common;

use std::time::Duration;

use common::*;
use handoff_connectors::signature::{sign_base64, sign_timestamped};

fn contract(port: u16, erp: &str) -> String {
    format!(
        r#"
[hub]
listen = "127.0.0.1:{port}"

[systems.shopify]
role = "storefront"
connector = "shopify"
webhook_secrets = ["old-secret", "new-secret"]

[systems.woo]
role = "storefront"
connector = "woocommerce"
webhook_secrets = ["woo-secret"]

[systems.stripe]
role = "payment"
connector = "stripe"
webhook_secrets = ["whsec_test"]

{}
{}"#,
        http_json_system("erp", "erp", erp),
        flow("shopify-orders", "shopify", "erp", r#"["order.created", "order.cancelled"]"#, "record-id", 10),
    )
}

#[tokio::test]
async fn signed_vendor_webhooks_are_recorded_and_forged_ones_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let erp = Mock::start("erp", &[]).await;
    let mut hub = Hub::start(dir.path(), port, &contract(port, &erp.url)).await;
    let c = client();
    let url = |system: &str| format!("http://127.0.0.1:{port}/webhooks/{system}");
    let body = vendor_payload("shopify_order.json");
    let shopify = |signature: String, body: Vec<u8>| {
        c.post(url("shopify"))
            .header("X-Shopify-Topic", "orders/create")
            .header("X-Shopify-Event-Id", "evt-shopify-1")
            .header("X-Shopify-API-Version", "2026-07")
            .header("X-Shopify-Hmac-Sha256", signature)
            .body(body)
            .send()
    };

    // Forged: a wrong secret, a tampered body, a missing header; and a body that is not even
    // JSON, which must be refused for its signature before anyone tries to parse it.
    assert_eq!(shopify(sign_base64("wrong", &body), body.clone()).await.unwrap().status(), 401);
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    assert_eq!(shopify(sign_base64("new-secret", &body), tampered).await.unwrap().status(), 401);
    let unsigned =
        c.post(url("shopify")).header("X-Shopify-Topic", "orders/create").body(body.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(shopify(sign_base64("wrong", b"not json"), b"not json".to_vec()).await.unwrap().status(), 401);
    let r = hub.get("/api/v1/orders/18446744073709551001").send().await.unwrap();
    assert_eq!(r.status(), 404, "nothing was stored");

    // Signed with the old secret during a rotation: accepted, delivered once, a repeat deduplicated.
    assert_eq!(shopify(sign_base64("old-secret", &body), body.clone()).await.unwrap().status(), 202);
    assert_eq!(shopify(sign_base64("new-secret", &body), body.clone()).await.unwrap().status(), 200);
    hub.drained().await;
    let applied = erp.applied().await;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].external_ref, "18446744073709551001");

    // WooCommerce's activation ping is answered, and stores nothing.
    let ping = c
        .post(url("woo"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("webhook_id=7")
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);

    // Stripe: a signature older than the tolerance is a replay.
    let stripe = vendor_payload("stripe_payment_intent_succeeded.json");
    let stale = sign_timestamped("whsec_test", jiff::Timestamp::now().as_second() - 3600, &stripe);
    let r = c.post(url("stripe")).header("Stripe-Signature", stale).body(stripe.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let fresh = sign_timestamped("whsec_test", jiff::Timestamp::now().as_second(), &stripe);
    let r = c.post(url("stripe")).header("Stripe-Signature", fresh.clone()).body(stripe.clone()).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let timeline = wait_for("the payment in the order's timeline", Duration::from_secs(10), || async {
        let t = hub.order("18446744073709551001").await;
        (t["events"].as_array()?.len() == 2).then_some(t)
    })
    .await;
    assert_eq!(timeline["events"][1]["kind"], "order.paid", "the Stripe payment links to its order");

    // kill -9 and a restart: both deliveries replayed byte for byte are recognised (200, not
    // 202), and the ERP still holds one record.
    hub.drained().await;
    hub.kill();
    hub.restart().await;
    assert_eq!(shopify(sign_base64("new-secret", &body), body.clone()).await.unwrap().status(), 200);
    let r = c.post(url("stripe")).header("Stripe-Signature", fresh.clone()).body(stripe.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200, "a replayed Stripe delivery after a restart");
    hub.drained().await;
    assert_eq!(erp.applied().await.len(), 1);
    assert_eq!(hub.order("18446744073709551001").await["events"].as_array().unwrap().len(), 2);
}

/// A Stripe checkout session paid by a delayed method completes `unpaid`: answered 200, nothing
/// recorded, no payment; its `checkout.session.async_payment_succeeded` (the session now
/// `paid`) is the payment of order 7001.
#[tokio::test]
async fn an_unpaid_stripe_checkout_session_is_no_payment_until_its_async_payment_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let erp = Mock::start("erp", &[]).await;
    let hub = Hub::start(dir.path(), port, &contract(port, &erp.url)).await;
    let c = client();
    let post = |body: Vec<u8>| {
        let signature = sign_timestamped("whsec_test", jiff::Timestamp::now().as_second(), &body);
        c.post(format!("{}/webhooks/stripe", hub.url)).header("Stripe-Signature", signature).body(body).send()
    };
    let unpaid = vendor_payload("stripe_checkout_session_unpaid.json");
    let r = post(unpaid.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["status"], "no money moved");
    let r = hub.get("/api/v1/orders/7001").send().await.unwrap();
    assert_eq!(r.status(), 404, "nothing was recorded");

    let mut paid: serde_json::Value = serde_json::from_slice(&unpaid).unwrap();
    paid["id"] = "evt_handoff_0102".into();
    paid["type"] = "checkout.session.async_payment_succeeded".into();
    paid["data"]["object"]["payment_status"] = "paid".into();
    let r = post(serde_json::to_vec(&paid).unwrap()).await.unwrap();
    assert_eq!(r.status(), 202);
    let timeline = wait_for("the payment in the order's timeline", Duration::from_secs(10), || async {
        let t = hub.order("7001").await;
        (t["events"].as_array()?.len() == 1).then_some(t)
    })
    .await;
    assert_eq!(timeline["events"][0]["kind"], "order.paid");
}
