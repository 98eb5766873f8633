//! The write path's acceptance tests: the real binary, the mock ERP and storefront, loopback.

mod common;

use std::time::Duration;

use common::*;
use handoff_sim::Checker;
use serde_json::{Value, json};

async fn setup(erp_flags: &[&str], shop_flags: &[&str], erp_extra: &str) -> (tempfile::TempDir, Hub, Mock, Mock) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let notify = format!("http://127.0.0.1:{port}/webhooks/erp");
    let mut erp_args = vec!["--notify", notify.as_str()];
    erp_args.extend_from_slice(erp_flags);
    let erp = Mock::start("erp", &erp_args).await;
    let shop = Mock::start("shop", shop_flags).await;
    let hub = Hub::start(dir.path(), port, &contract(port, &erp.url, &shop.url, erp_extra)).await;
    (dir, hub, erp, shop)
}

fn creates(applied: &[handoff_sim::Applied], external_ref: &str) -> usize {
    applied.iter().filter(|a| a.op == "create" && a.external_ref == external_ref).count()
}

/// Another process holds the store's write lock (a `sqlite3 handoff.db` left in a transaction):
/// the writer of a real hub cannot commit. `/ready` answers 503 naming it, and a webhook is
/// refused (503, nothing kept) rather than acknowledged. Once the lock is let go the hub is
/// ready again with no write of its own to show it, and the webhook's redelivery reaches the ERP.
#[tokio::test]
async fn a_writer_that_cannot_commit_makes_the_hub_unready_until_it_can() {
    let (_dir, hub, erp, _shop) = setup(&[], &[], "").await;
    let ready = || async {
        let answer = client().get(format!("{}/ready", hub.url)).send().await.unwrap();
        (answer.status().as_u16(), answer.json::<Value>().await.unwrap())
    };
    assert_eq!(ready().await.0, 200);
    let lock = rusqlite::Connection::open(hub.data_dir().join("handoff.db")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let event = order_event("evt-locked", "order.created", "#2001", 1);
    // The writer waits for the lock as long as its busy timeout (10 s), then gives up.
    let patient = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let refused = patient.post(format!("{}/webhooks/shop", hub.url)).json(&event).send().await.unwrap();
    assert_eq!(refused.status(), 503, "{}", refused.text().await.unwrap());
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    let writer = body["failing"].as_array().unwrap().iter().find(|p| p["component"] == "writer");
    assert_eq!(writer.map(|w| &w["state"]), Some(&json!("failing")), "{body}");
    lock.execute_batch("ROLLBACK").unwrap();
    wait_for("the hub to be ready again", Duration::from_secs(30), || async { (ready().await.0 == 200).then_some(()) })
        .await;
    assert_eq!(hub.post("shop", &event).await.status(), 202, "the redelivery is stored");
    hub.drained().await;
    assert_eq!(creates(&erp.applied().await, "#2001"), 1);
}

#[tokio::test]
async fn a_duplicated_webhook_gives_one_erp_order() {
    let (_dir, hub, erp, _shop) = setup(&[], &[], "").await;
    let event = order_event("evt-1", "order.created", "#1001", 1);
    assert_eq!(hub.post("shop", &event).await.status(), 202);
    let again = hub.post("shop", &event).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
    hub.drained().await;
    let applied = erp.applied().await;
    assert_eq!(creates(&applied, "#1001"), 1, "{applied:?}");
    assert_eq!(applied.len(), 1);
}

#[tokio::test]
async fn a_lost_response_is_read_back_not_resent() {
    let (_dir, hub, erp, _shop) = setup(&["--lost-ack", "1.0"], &[], "").await;
    assert_eq!(hub.post("shop", &order_event("evt-1", "order.created", "#2001", 1)).await.status(), 202);
    hub.drained().await;
    let applied = erp.applied().await;
    assert_eq!(creates(&applied, "#2001"), 1, "{applied:?}");
    let timeline = hub.order("#2001").await;
    let attempts = timeline["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["outcome"], "ambiguous");
    assert!(attempts[1]["detail"].as_str().unwrap().contains("read back: already applied"), "{attempts:?}");
    assert_eq!(timeline["commands"][0]["state"], "acknowledged");
    assert_eq!(timeline["commands"][0]["record_id"], applied[0].record_id);
}

#[tokio::test]
async fn an_erp_outage_is_waited_out_with_backoff_and_delivered_once() {
    let (_dir, hub, erp, _shop) = setup(&["--outage"], &[], "").await;
    assert_eq!(hub.post("shop", &order_event("evt-1", "order.created", "#3001", 1)).await.status(), 202);
    tokio::time::sleep(Duration::from_secs(3)).await;
    erp.set_faults(json!({})).await;
    hub.drained().await;
    assert_eq!(creates(&erp.applied().await, "#3001"), 1);

    let timeline = hub.order("#3001").await;
    let attempts = timeline["attempts"].as_array().unwrap();
    let failed = attempts.len() - 1;
    // With a 100 ms base doubling to a 1 s cap, 3 s of outage allows only a handful of tries.
    assert!((2..=10).contains(&failed), "{failed} failed attempts: {attempts:?}");
    let started: Vec<jiff::Timestamp> =
        attempts.iter().map(|a| a["started_at"].as_str().unwrap().parse().unwrap()).collect();
    for (n, pair) in started.windows(2).enumerate() {
        // Equal jitter waits at least half of min(100 ms * 2^n, 1 s).
        let floor_ms = (100u64 << n).min(1000) / 2;
        let gap_ms = pair[1].duration_since(pair[0]).as_millis() as u64;
        assert!(gap_ms + 5 >= floor_ms, "attempt {} came {gap_ms} ms after the previous, floor {floor_ms} ms", n + 2);
    }
    assert_eq!(attempts.last().unwrap()["outcome"], "acknowledged");
}

#[tokio::test]
async fn a_data_error_is_dead_lettered_then_replayed_after_the_fix() {
    let (_dir, hub, erp, _shop) = setup(&["--require", "customer.name"], &[], "").await;
    assert_eq!(hub.post("shop", &order_event("evt-1", "order.created", "#4001", 1)).await.status(), 202);
    wait_for("a dead letter", Duration::from_secs(20), || async {
        let out = hub.cli(&["dlq", "list", "--json"]);
        let rows: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
        (rows.len() == 1).then_some(())
    })
    .await;
    // Not retried blindly: one attempt, then the dead letter.
    let timeline = hub.order("#4001").await;
    assert_eq!(timeline["attempts"].as_array().unwrap().len(), 1);
    assert!(erp.applied().await.is_empty());

    let out = hub.cli(&["exceptions", "list", "--json"]);
    let exceptions: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exceptions.len(), 1);
    assert_eq!(exceptions[0]["pattern"], "transform_mismatch");
    assert_eq!(exceptions[0]["state"], "open");
    assert_eq!(exceptions[0]["field"], "order.customer.name");

    // The ERP's requirement is lifted (the fix), then the dead letter is replayed.
    erp.set_faults(json!({})).await;
    let out = hub.cli(&["dlq", "replay", "--all", "--actor", "ops@example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    hub.drained().await;
    assert_eq!(creates(&erp.applied().await, "#4001"), 1);
    let out = hub.cli(&["exceptions", "list", "--json"]);
    let exceptions: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exceptions[0]["state"], "auto_resolved");
    let timeline = hub.order("#4001").await;
    let audit = timeline["audit"].as_array().unwrap();
    assert!(audit.iter().any(|a| a["actor"] == "ops@example.com" && a["action"] == "replayed"), "{audit:?}");
}

#[tokio::test]
async fn a_cancel_that_overtakes_its_create_means_the_create_is_never_sent() {
    let (_dir, hub, erp, _shop) = setup(&[], &[], "").await;
    assert_eq!(hub.post("shop", &cancel_event("evt-2", "#5001", 2)).await.status(), 202);
    assert_eq!(hub.post("shop", &order_event("evt-1", "order.created", "#5001", 1)).await.status(), 202);
    hub.drained().await;
    // Another order goes through to show the hub was working all along.
    assert_eq!(hub.post("shop", &order_event("evt-3", "order.created", "#5002", 1)).await.status(), 202);
    hub.drained().await;
    let applied = erp.applied().await;
    assert!(applied.iter().all(|a| a.external_ref != "#5001"), "{applied:?}");
    assert_eq!(creates(&applied, "#5002"), 1);
}

#[tokio::test]
async fn a_cancel_after_the_create_was_sent_arrives_after_it() {
    let (_dir, hub, erp, _shop) = setup(&["--slow-ack", "1.0", "--slow-ack-ms", "700"], &[], "").await;
    assert_eq!(hub.post("shop", &order_event("evt-1", "order.created", "#6001", 1)).await.status(), 202);
    // The create is in flight (the ERP answers after 700 ms) when the cancel arrives.
    wait_for("the create to be in flight", Duration::from_secs(10), || async {
        let t = hub.order("#6001").await;
        (t["commands"][0]["state"] == "in_flight").then_some(())
    })
    .await;
    assert_eq!(hub.post("shop", &cancel_event("evt-2", "#6001", 2)).await.status(), 202);
    hub.drained().await;
    let ops: Vec<String> =
        erp.applied().await.into_iter().filter(|a| a.external_ref == "#6001").map(|a| a.op).collect();
    assert_eq!(ops, vec!["create", "cancel"]);
}

#[tokio::test]
async fn an_erp_fulfillment_reaches_the_storefront_exactly_once() {
    let (_dir, hub, erp, shop) = setup(&[], &["--lost-ack", "0.5", "--seed", "3"], "").await;
    assert_eq!(hub.post("shop", &order_event("evt-1", "order.created", "#7001", 1)).await.status(), 202);
    hub.drained().await;
    erp.fulfil("#7001").await;
    let fulfillments = wait_for("the fulfillment at the storefront", Duration::from_secs(20), || async {
        let applied = shop.applied().await;
        (!applied.is_empty()).then_some(applied)
    })
    .await;
    hub.drained().await;
    let applied = shop.applied().await;
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert!(fulfillments[0].external_ref.starts_with("#7001/fulfillment/"));
    let mut checker = Checker::new();
    let id = applied[0].external_ref.rsplit('/').next().unwrap();
    checker.acked_fulfillment("#7001", id);
    assert_eq!(checker.check_fulfillments(&applied), vec![]);
}

#[tokio::test]
async fn bad_requests_get_a_clear_4xx_and_store_nothing() {
    let (_dir, hub, _erp, _shop) = setup(&[], &[], "").await;
    let c = client();
    let unknown = hub.post("nowhere", &order_event("e", "order.created", "#1", 1)).await;
    assert_eq!(unknown.status(), 404);
    let malformed = c.post(format!("{}/webhooks/shop", hub.url)).body("{not json").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    let mut wrong_total = order_event("e2", "order.created", "#1", 1);
    wrong_total["order"]["totals"]["total"] = json!("1.00");
    let refused = hub.post("shop", &wrong_total).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(refused.json::<Value>().await.unwrap()["field"], "order");
    let huge = c.post(format!("{}/webhooks/shop", hub.url)).body(vec![b' '; 300 * 1024]).send().await.unwrap();
    assert_eq!(huge.status(), 413);
    let r = hub.get("/api/v1/orders/%231").send().await.unwrap();
    assert_eq!(r.status(), 404, "nothing was stored for #1");
}

#[tokio::test]
async fn a_bad_contract_is_refused_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = contract(port, "http://127.0.0.1:1", "http://127.0.0.1:2", "").replace("attempts = 30", "attempts = 0");
    let path = dir.path().join("handoff.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("handoff.toml"), "{stderr}");
    assert!(stderr.contains("flows.fulfillments-to-shop.retry.attempts"), "{stderr}");
}
