//! `handoff doctor` and the exception queue over a store filled by a short run of the real hub.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn named(mut event: Value) -> Value {
    event["order"]["customer"]["name"] = json!("Ada Lovelace");
    event
}

#[tokio::test]
async fn the_doctor_answers_the_ten_questions_and_a_cluster_is_fixed_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let notify = format!("http://127.0.0.1:{port}/webhooks/erp");
    // The ERP refuses orders without a customer name: the two unnamed orders are one cause.
    let erp = Mock::start("erp", &["--notify", notify.as_str(), "--require", "customer.name"]).await;
    let shop = Mock::start("shop", &[]).await;
    let hub = Hub::start(dir.path(), port, &contract(port, &erp.url, &shop.url, "")).await;

    for (n, order) in ["#1", "#2", "#3"].iter().enumerate() {
        let event = named(order_event(&format!("evt-{n}"), "order.created", order, 1));
        assert_eq!(hub.post("shop", &event).await.status(), 202);
    }
    for (n, order) in ["#4", "#5"].iter().enumerate() {
        assert_eq!(hub.post("shop", &order_event(&format!("bad-{n}"), "order.created", order, 1)).await.status(), 202);
    }
    hub.drained().await;
    erp.fulfil("#1").await;
    assert_eq!(hub.post("shop", &cancel_event("evt-c", "#2", 2)).await.status(), 202);
    wait_for("the fulfillment at the shop", Duration::from_secs(20), || async {
        (!shop.applied().await.is_empty()).then_some(())
    })
    .await;
    hub.drained().await;

    let config = hub.config.to_str().unwrap().to_owned();
    let out = hub.cli(&["doctor", "--config", &config, "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let questions = report["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 10);
    for (n, q) in questions.iter().enumerate() {
        assert_eq!(q["number"], n + 1);
        assert!(["ok", "warn", "gap"].contains(&q["verdict"].as_str().unwrap()), "{q}");
        assert!(!q["summary"].as_str().unwrap().is_empty(), "{q}");
        assert!(!q["evidence"].as_array().unwrap().is_empty(), "question {} has no evidence: {q}", n + 1);
    }
    let evidence = |n: usize| questions[n - 1]["evidence"].to_string();
    assert!(report["measured"].as_bool().unwrap());
    assert!(evidence(3).contains("measured create_order: 5 commands, acknowledged 3"), "{}", evidence(3));
    assert!(evidence(4).contains("dead-lettered 2"), "{}", evidence(4));
    assert!(evidence(6).contains("create_fulfillment commands, acknowledged 1"), "{}", evidence(6));
    assert!(evidence(7).contains("1 cancel_order commands"), "{}", evidence(7));
    // Both dead letters are one cause: the doctor names it.
    assert_eq!(questions[9]["verdict"], "gap", "{}", questions[9]);
    let table = hub.cli(&["doctor", "--config", &config]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("10. Do exceptions cluster"));
    // The running hub answers the same checklist (one computation): each verdict and summary.
    let api: Value = hub.get("/api/v1/doctor").send().await.unwrap().json().await.unwrap();
    let answers = api["questions"].as_array().unwrap();
    assert_eq!(answers.len(), 10, "{api}");
    for (cli, api) in questions.iter().zip(answers) {
        assert_eq!(
            (&cli["verdict"], &cli["summary"]),
            (&api["verdict"], &api["summary"]),
            "question {}",
            cli["number"]
        );
    }

    let out = hub.cli(&["exceptions", "clusters", "--json"]);
    let clusters: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(clusters[0]["exceptions"], 2, "{clusters:?}");
    assert_eq!(clusters[0]["money"]["EUR"], json!(null), "dead letters carry no amount");
    let api: Value = hub.get("/api/v1/clusters").send().await.unwrap().json().await.unwrap();
    assert_eq!(api["items"][0]["id"], clusters[0]["id"], "one cluster id, summed in the store or in the CLI");
    assert_eq!(api["items"][0]["exceptions"], clusters[0]["exceptions"]);

    let member = clusters[0]["members"][0].as_i64().unwrap();
    let out = hub.cli(&["exceptions", "show", &member.to_string(), "--json"]);
    let pack: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pack["action"]["action"], "retry");
    assert!(!pack["timeline"]["attempts"].as_array().unwrap().is_empty());
    let r = hub.get(&format!("/api/v1/exceptions/{member}")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["exception"]["id"], member);

    // The fix, once; then every member of the cluster is acted on.
    erp.set_faults(json!({})).await;
    let id = clusters[0]["id"].as_str().unwrap();
    let out = hub.cli(&["exceptions", "act", "--cluster", id, "--config", &config, "--actor", "ops@example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.matches("replayed with a fresh retry budget").count(), 2, "{said}");
    hub.drained().await;
    let applied = erp.applied().await;
    for order in ["#4", "#5"] {
        assert_eq!(applied.iter().filter(|a| a.op == "create" && a.external_ref == order).count(), 1, "{applied:?}");
    }
    let audit = hub.order("#4").await["audit"].to_string();
    assert!(audit.contains("ops@example.com"), "{audit}");
}
