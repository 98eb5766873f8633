//! The transform layer on the real binary: a Shopify order missing a field the NetSuite
//! salesOrder schema requires is held at the transform layer, with the field named, and never
//! reaches NetSuite; once the mapping is fixed, replaying the held commands as a group delivers
//! each exactly once.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use handoff_connectors::signature::sign_base64;
use handoff_sim::system::{Collection, Record};
use serde_json::{Value, json};

/// A Shopify storefront whose orders go to one ERP system, `name`, configured by `system`.
fn erp_contract(port: u16, name: &str, system: &str) -> String {
    format!(
        r#"
[hub]
listen = "127.0.0.1:{port}"
mappings = "mappings"

[systems.shop]
role = "storefront"
connector = "shopify"
webhook_secrets = ["shop-secret"]

[systems.{name}]
role = "erp"
{system}
timeout = "2s"
settle = "200ms"

[flows.shop-to-{name}]
from = "shop"
to = "{name}"
events = ["order.created", "order.updated", "order.cancelled"]
proof = "record-id"
deadline = "15m"
retry = {{ attempts = 10, backoff_base = "100ms", backoff_cap = "1s", deadline = "1h" }}
"#
    )
}

fn contract(port: u16, netsuite: &str) -> String {
    let credentials = handoff_sim::vendors::netsuite::contract_credentials(&[]);
    let system = format!("connector = \"netsuite\"\nbase_url = \"{netsuite}\"\ncredentials = {credentials}");
    erp_contract(port, "netsuite", &system)
}

/// A Shopify order with no email anywhere: NetSuite cannot name its customer.
fn anonymous_order(id: u64) -> Vec<u8> {
    let mut order: Value = serde_json::from_slice(&vendor_payload("shopify_order.json")).unwrap();
    order["id"] = json!(id);
    order.as_object_mut().unwrap().remove("email");
    order["customer"].as_object_mut().unwrap().remove("email");
    serde_json::to_vec(&order).unwrap()
}

/// Posts a signed Shopify `orders/create` webhook to the hub; the answer's status.
async fn order_created(hub: &Hub, event_id: &str, body: Vec<u8>) -> u16 {
    let r = client()
        .post(format!("{}/webhooks/shop", hub.url))
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Event-Id", event_id)
        .header("X-Shopify-API-Version", "2026-07")
        .header("X-Shopify-Hmac-Sha256", sign_base64("shop-secret", &body))
        .body(body)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

fn copy_mappings(to: &Path) {
    copy_mapping(to, "netsuite/sales_order");
}

/// Copies one shipped mapping (`target/resource`) into the test's own mapping directory: its
/// latest version, as the directory's v1, with that version's cases and the schema snapshot.
fn copy_mapping(to: &Path, mapping: &str) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../mappings").join(mapping);
    let latest = (1..).take_while(|n| from.join(format!("v{n}.jq")).is_file()).last().expect("a shipped version");
    let to = to.join("mappings").join(mapping);
    std::fs::create_dir_all(to.join("v1.cases")).unwrap();
    std::fs::copy(from.join(format!("v{latest}.jq")), to.join("v1.jq")).unwrap();
    std::fs::copy(from.join("schema.json"), to.join("schema.json")).unwrap();
    for case in std::fs::read_dir(from.join(format!("v{latest}.cases"))).unwrap() {
        let case = case.unwrap().path();
        std::fs::copy(&case, to.join("v1.cases").join(case.file_name().unwrap())).unwrap();
    }
}

async fn netsuite_orders(mock: &Mock) -> Vec<Record> {
    let records: Vec<Record> =
        client().get(format!("{}/_records", mock.url)).send().await.unwrap().json().await.unwrap();
    records.into_iter().filter(|r| r.collection == Collection::Orders).collect()
}

#[tokio::test]
async fn a_held_order_names_its_field_and_is_delivered_once_after_the_mapping_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    copy_mappings(dir.path());
    let port = free_port();
    let netsuite = Mock::start("netsuite", &["--connector", "netsuite"]).await;
    let mut hub = Hub::start(dir.path(), port, &contract(port, &netsuite.url)).await;
    for (n, id) in [3001u64, 3002].into_iter().enumerate() {
        assert_eq!(order_created(&hub, &format!("evt-{n}"), anonymous_order(id)).await, 202);
    }
    hub.drained().await;

    // Held: a Transform Mismatch naming the field and the mapping, nothing sent.
    let out = hub.cli(&["exceptions", "list", "--json"]);
    let exceptions: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exceptions.len(), 2, "{exceptions:?}");
    for x in &exceptions {
        assert_eq!(x["pattern"], "transform_mismatch");
        assert_eq!(x["field"], "entity");
        assert!(x["detail"].as_str().unwrap().contains("netsuite/sales_order@1"), "{x}");
        assert!(x["detail"].as_str().unwrap().contains("source payload version 2026-07"), "{x}");
    }
    assert!(netsuite_orders(&netsuite).await.is_empty(), "nothing reached NetSuite");
    assert!(
        client()
            .get(format!("{}/_applied", netsuite.url))
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap()
            .is_empty()
    );

    // The fix: v2 enters an order without an email for the web-sales guest customer.
    let v1 = std::fs::read_to_string(dir.path().join("mappings/netsuite/sales_order/v1.jq")).unwrap();
    let v2 = v1.replace(
        "else {externalId: $o.customer.email} end",
        "elif $o.customer.email then {externalId: $o.customer.email} else {externalId: \"web-guest\"} end",
    );
    assert_ne!(v1, v2, "the fix applies");
    std::fs::write(dir.path().join("mappings/netsuite/sales_order/v2.jq"), v2).unwrap();

    // Before anything is sent again: the payload the held version made against the latest's.
    let config = hub.config.to_str().unwrap().to_owned();
    let out = hub.cli(&["dlq", "replay", "--all", "--dry-run", "--config", &config]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ran netsuite/sales_order@1, latest netsuite/sales_order@2"), "{text}");
    assert!(text.contains(r#"entity.externalId: null -> "web-guest""#), "{text}");
    assert!(text.contains("passes the pre-flight check") && text.contains("nothing replayed"), "{text}");
    assert!(netsuite_orders(&netsuite).await.is_empty(), "a dry run sends nothing");

    // A held command becomes a golden case of the latest mapping with one command.
    let id = exceptions[0]["command_id"].as_i64().unwrap().to_string();
    let out = hub.cli(&["mapping", "capture", &id, "--config", &config]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let case = dir.path().join(format!("mappings/netsuite/sales_order/v2.cases/captured-command-{id}.json"));
    let case: Value = serde_json::from_slice(&std::fs::read(case).unwrap()).unwrap();
    assert_eq!(case["expected"]["entity"], json!({"externalId": "web-guest"}));
    let out = std::process::Command::new(BIN)
        .args(["mapping", "test", "--dir"])
        .arg(dir.path().join("mappings"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok    netsuite/sales_order@2 captured-command-"));
    hub.restart().await;

    // The hub's API dry-runs through the hub's own mappings directory too, v2 included.
    let dry: Value = hub.get(&format!("/api/v1/dead-letters/{id}/dry-run")).send().await.unwrap().json().await.unwrap();
    let lines: Vec<&str> = dry["lines"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(lines.iter().any(|l| l.contains("latest netsuite/sales_order@2")), "{dry}");
    assert!(lines.iter().any(|l| l.contains(r#"entity.externalId: null -> "web-guest""#)), "{dry}");

    // One group replay: every held order delivered exactly once.
    // Replayed as it ran, the first is held again by the same version: nothing reaches NetSuite.
    let out = hub.cli(&["dlq", "replay", &id, "--mapping", "as-ran", "--actor", "ops@example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("the as-ran replay held again", Duration::from_secs(20), || async {
        let letters: Vec<Value> = serde_json::from_slice(&hub.cli(&["dlq", "list", "--json"]).stdout).ok()?;
        (letters.len() == 2).then_some(())
    })
    .await;
    let order = hub.order(exceptions[0]["order_ref"].as_str().unwrap()).await;
    let mappings: Vec<&str> =
        order["attempts"].as_array().unwrap().iter().filter_map(|a| a["mapping"].as_str()).collect();
    assert!(!mappings.is_empty() && mappings.iter().all(|m| *m == "netsuite/sales_order@1"), "{mappings:?}");
    assert!(netsuite_orders(&netsuite).await.is_empty());

    let refused = hub.cli(&["dlq", "replay", "--all", "--actor", "ops@example.com"]);
    assert!(!refused.status.success(), "the mapping version is chosen explicitly");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("choose --mapping as-ran or --mapping latest"));
    let out = hub.cli(&["dlq", "replay", "--all", "--mapping", "latest", "--actor", "ops@example.com"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for("both orders in NetSuite", Duration::from_secs(30), || async {
        (netsuite_orders(&netsuite).await.len() == 2).then_some(())
    })
    .await;
    hub.drained().await;
    let orders = netsuite_orders(&netsuite).await;
    let mut refs: Vec<&str> = orders.iter().map(|r| r.external_ref.as_str()).collect();
    refs.sort();
    assert_eq!(refs, ["3001", "3002"], "each exactly once");
    let out = hub.cli(&["exceptions", "list", "--state", "open", "--json"]);
    let open: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(open.is_empty(), "the held exceptions resolved themselves: {open:?}");
}

/// Drift: a payload with a renamed field and a type change is counted and raised with the
/// field paths, and still recorded; a new API version is news, not a failure.
#[tokio::test]
async fn a_drifted_payload_is_raised_with_its_field_paths() {
    let dir = tempfile::tempdir().unwrap();
    let mut order: Value = serde_json::from_slice(&vendor_payload("shopify_order.json")).unwrap();
    order["tags"] = json!("vip, wholesale");
    let sample = dir.path().join("sample.json");
    std::fs::write(&sample, serde_json::to_vec(&order).unwrap()).unwrap();
    let learn = std::process::Command::new(BIN)
        .args(["mapping", "learn", "--vendor", "shopify", "--resource", "order", "--version", "2026-07", "--dir"])
        .arg(dir.path().join("mappings"))
        .arg(&sample)
        .output()
        .unwrap();
    assert!(learn.status.success(), "{}", String::from_utf8_lossy(&learn.stderr));

    let port = free_port();
    let contract = format!(
        "[hub]\nlisten = \"127.0.0.1:{port}\"\nmappings = \"mappings\"\n\n[systems.shop]\nrole = \"storefront\"\n\
         connector = \"shopify\"\nwebhook_secrets = [\"shop-secret\"]\n"
    );
    let hub = Hub::start(dir.path(), port, &contract).await;
    let send = |body: Vec<u8>, event_id: &'static str, version: &'static str| {
        client()
            .post(format!("{}/webhooks/shop", hub.url))
            .header("X-Shopify-Topic", "orders/create")
            .header("X-Shopify-Event-Id", event_id)
            .header("X-Shopify-API-Version", version)
            .header("X-Shopify-Hmac-Sha256", sign_base64("shop-secret", &body))
            .body(body)
            .send()
    };
    assert_eq!(send(serde_json::to_vec(&order).unwrap(), "e1", "2026-07").await.unwrap().status(), 202);
    let mut drifted = order.clone();
    drifted["id"] = json!(4002);
    drifted["tags"] = json!(["vip", "wholesale"]);
    let lines = drifted.as_object_mut().unwrap().remove("shipping_lines").unwrap();
    drifted["shipping_line_items"] = lines;
    assert_eq!(send(serde_json::to_vec(&drifted).unwrap(), "e2", "2026-07").await.unwrap().status(), 202);
    let mut next = order.clone();
    next["id"] = json!(4003);
    assert_eq!(send(serde_json::to_vec(&next).unwrap(), "e3", "2027-01").await.unwrap().status(), 202);

    let report: Value = hub.get("/api/v1/drift").send().await.unwrap().json().await.unwrap();
    let raised: Vec<(String, String)> = report["raised"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"].as_str().unwrap().to_owned(), e["path"].as_str().unwrap_or("").to_owned()))
        .collect();
    for expected in [("type_changed", "tags"), ("unseen", "shipping_line_items"), ("missing", "shipping_lines")] {
        assert!(raised.contains(&(expected.0.into(), expected.1.into())), "{expected:?} in {raised:?}");
    }
    assert!(raised.contains(&("new_version".into(), String::new())), "{raised:?}");
    let stats =
        &report["sources"].as_array().unwrap().iter().find(|s| s["source"]["version"] == "2026-07").unwrap()["stats"];
    assert_eq!((stats["seen"].as_u64(), stats["drifted"].as_u64()), (Some(2), Some(1)));
}

/// NetSuite starts requiring a field: refreshing the snapshot from its metadata catalog shows
/// it, `contract check` reports that the mapping does not write it, and an order is held at
/// the transform layer naming it instead of being refused by NetSuite.
#[tokio::test]
async fn a_refreshed_snapshot_names_a_newly_required_field_before_traffic_meets_it() {
    let dir = tempfile::tempdir().unwrap();
    copy_mappings(dir.path());
    let port = free_port();
    let netsuite = Mock::start("netsuite", &["--connector", "netsuite"]).await;
    netsuite.set_faults(json!({"required_fields": ["salesOrder.department"]})).await;
    let config = dir.path().join("handoff.toml");
    std::fs::write(&config, contract(port, &netsuite.url)).unwrap();
    let run = |args: &[&str]| std::process::Command::new(BIN).args(args).arg("--config").arg(&config).output().unwrap();

    let out = run(&["mapping", "refresh", "--system", "netsuite"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("newly required: department"), "{text}");
    assert!(dir.path().join("mappings/netsuite/sales_order/schema.previous.json").is_file());

    let out = run(&["contract", "check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("newly requires department; netsuite/sales_order@1 does not produce it"), "{text}");

    let hub = Hub::start(dir.path(), port, &contract(port, &netsuite.url)).await;
    assert_eq!(order_created(&hub, "evt-dept", vendor_payload("shopify_order.json")).await, 202);
    hub.drained().await;
    let exceptions: Vec<Value> = serde_json::from_slice(&hub.cli(&["exceptions", "list", "--json"]).stdout).unwrap();
    assert_eq!(exceptions.len(), 1, "{exceptions:?}");
    assert_eq!(
        (exceptions[0]["pattern"].as_str(), exceptions[0]["field"].as_str()),
        (Some("transform_mismatch"), Some("department"))
    );
    assert!(netsuite_orders(&netsuite).await.is_empty(), "held, not refused by NetSuite");

    // A person takes it on and closes it; a closed exception stays closed.
    let id = exceptions[0]["id"].to_string();
    assert!(hub.cli(&["exceptions", "ack", &id, "--actor", "ada"]).status.success());
    let out = hub.cli(&["exceptions", "ignore", &id, "--reason", "department arrives with v2", "--actor", "ada"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("is ignored"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = hub.cli(&["exceptions", "resolve", &id]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is ignored; it cannot become resolved")
    );
}

fn odoo_contract(port: u16, odoo: &str) -> String {
    let (key, database) = (handoff_sim::vendors::odoo::API_KEY, handoff_sim::vendors::odoo::DATABASE);
    let system = format!(
        "connector = \"odoo\"\nbase_url = \"{odoo}\"\ncredentials = {{ api_key = \"{key}\", database = \"{database}\" }}"
    );
    erp_contract(port, "odoo", &system)
}

/// Odoo starts requiring a custom field: `mapping refresh` reads `fields_get` (the shipped
/// snapshot is the simulator's, so a first refresh finds nothing new), `contract check` reports
/// that `odoo/sale_order` does not write the field, and an order is held naming it; nothing
/// reaches Odoo.
#[tokio::test]
async fn a_refreshed_odoo_snapshot_names_a_newly_required_field_and_holds_the_order() {
    let dir = tempfile::tempdir().unwrap();
    copy_mapping(dir.path(), "odoo/sale_order");
    let port = free_port();
    let odoo = Mock::start("odoo", &["--connector", "odoo"]).await;
    let config = dir.path().join("handoff.toml");
    std::fs::write(&config, odoo_contract(port, &odoo.url)).unwrap();
    let run = |args: &[&str]| std::process::Command::new(BIN).args(args).arg("--config").arg(&config).output().unwrap();
    let snapshot = dir.path().join("mappings/odoo/sale_order/schema.json");
    let shipped = std::fs::read_to_string(&snapshot).unwrap();

    let out = run(&["mapping", "refresh", "--system", "odoo"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("newly required: none; removed: none"), "{text}");
    assert_eq!(std::fs::read_to_string(&snapshot).unwrap(), shipped, "the shipped snapshot is fields_get's");
    let text = String::from_utf8_lossy(&run(&["contract", "check"]).stdout).into_owned();
    assert!(text.contains("odoo/sale_order@1 passes its 1 golden cases") && !text.contains("newly requires"), "{text}");

    odoo.set_faults(json!({"required_fields": ["sale_order.x_studio_channel"], "idempotency_keys": false})).await;
    let out = run(&["mapping", "refresh", "--system", "odoo"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("newly required: x_studio_channel; removed: none"), "{text}");
    assert!(dir.path().join("mappings/odoo/sale_order/schema.previous.json").is_file());

    let out = run(&["contract", "check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "the refreshed sale_order snapshot newly requires x_studio_channel; odoo/sale_order@1 does not produce it"
        ),
        "{text}"
    );

    let hub = Hub::start(dir.path(), port, &odoo_contract(port, &odoo.url)).await;
    assert_eq!(order_created(&hub, "evt-channel", vendor_payload("shopify_order.json")).await, 202);
    hub.drained().await;
    let exceptions: Vec<Value> = serde_json::from_slice(&hub.cli(&["exceptions", "list", "--json"]).stdout).unwrap();
    assert_eq!(exceptions.len(), 1, "{exceptions:?}");
    let x = &exceptions[0];
    assert_eq!((x["pattern"].as_str(), x["field"].as_str()), (Some("transform_mismatch"), Some("x_studio_channel")));
    assert!(x["detail"].as_str().unwrap().contains("odoo/sale_order@1"), "{x}");
    assert!(x["detail"].as_str().unwrap().contains("sale.order requires x_studio_channel"), "{x}");
    assert!(odoo.applied().await.is_empty(), "held, not sent to Odoo");
    let records: Vec<Record> =
        client().get(format!("{}/_records", odoo.url)).send().await.unwrap().json().await.unwrap();
    assert!(records.iter().all(|r| r.collection != Collection::Orders), "no sale order in Odoo");

    // The event names the Shopify API version it came in and the inbound mapping that read it;
    // the attempt names the outbound mapping.
    let order = hub.order("18446744073709551001").await;
    let event = &order["events"][0];
    assert_eq!(event["source_version"], "2026-07", "{order}");
    assert_eq!(event["inbound_mapping"], "shopify/order@total_shipping_price_set", "{order}");
    assert_eq!(order["attempts"][0]["mapping"], "odoo/sale_order@1", "{order}");
    let out = hub.cli(&["order", "show", "18446744073709551001"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[api 2026-07, shopify/order@total_shipping_price_set]"), "{text}");
}

/// Shopify's 2026-07 order #1001 (the vendor's own sample) through the real binary into the
/// simulated NetSuite and Odoo. By Shopify's docs: three lines of 199.00 with 10.00 of
/// discounts allocated to them, 11.94 of tax on top, 598.94 charged. Both ERPs compute their
/// own tax, so each must hold 587.00 (598.94 less 11.94), as each sums its order: NetSuite its
/// line amounts and shipping cost, Odoo its lines' price x quantity.
#[tokio::test]
async fn shopify_order_1001_reaches_both_erps_net_of_its_discounts() {
    let Some(sample) = handoff_mapping::samples::read("shopify/rest_2026-07_order_get.json") else { return };
    let order: Value = serde_json::from_slice(&sample).unwrap();
    let body = serde_json::to_vec(&order["order"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_mapping(dir.path(), "netsuite/sales_order");
    copy_mapping(dir.path(), "odoo/sale_order");
    let port = free_port();
    let netsuite = Mock::start("netsuite", &["--connector", "netsuite"]).await;
    let odoo = Mock::start("odoo", &["--connector", "odoo"]).await;
    let ns = handoff_sim::vendors::netsuite::contract_credentials(&[("customer_id", "42")]);
    let (key, db) = (handoff_sim::vendors::odoo::API_KEY, handoff_sim::vendors::odoo::DATABASE);
    let mut contract = erp_contract(
        port,
        "netsuite",
        &format!("connector = \"netsuite\"\nbase_url = \"{}\"\ncredentials = {ns}", netsuite.url),
    );
    contract.push_str(&format!(
        r#"
[systems.odoo]
role = "erp"
connector = "odoo"
base_url = "{}"
credentials = {{ api_key = "{key}", database = "{db}" }}
timeout = "2s"
settle = "200ms"

[flows.shop-to-odoo]
from = "shop"
to = "odoo"
events = ["order.created", "order.updated", "order.cancelled"]
proof = "record-id"
deadline = "15m"
retry = {{ attempts = 10, backoff_base = "100ms", backoff_cap = "1s", deadline = "1h" }}
"#,
        odoo.url
    ));
    let hub = Hub::start(dir.path(), port, &contract).await;
    assert_eq!(order_created(&hub, "evt-1001", body).await, 202);
    hub.drained().await;
    for erp in [&netsuite, &odoo] {
        let records: Vec<Record> = wait_for("the order in the ERP", Duration::from_secs(20), || async {
            let records: Vec<Record> =
                client().get(format!("{}/_records", erp.url)).send().await.ok()?.json().await.ok()?;
            let orders: Vec<Record> = records.into_iter().filter(|r| r.collection == Collection::Orders).collect();
            (!orders.is_empty()).then_some(orders)
        })
        .await;
        assert_eq!(records.len(), 1, "{}", erp.url);
        let amount: rust_decimal::Decimal = records[0].amount.as_deref().expect("the ERP's sum").parse().unwrap();
        assert_eq!(amount, "587.00".parse().unwrap(), "{}", erp.url);
        let field = |key: &str| order["order"][key].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap();
        assert_eq!(amount + field("total_tax"), field("total_price"), "with Shopify's tax: what was charged");
    }
    let out = hub.cli(&["exceptions", "list", "--json"]);
    let exceptions: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(exceptions.is_empty(), "{exceptions:?}");
}

/// A mapping that loses one cent of a line: the payload is held naming `totals` and NetSuite
/// receives nothing.
#[tokio::test]
async fn a_payload_one_cent_off_the_order_is_held_naming_totals() {
    let Some(sample) = handoff_mapping::samples::read("shopify/rest_2026-07_order_get.json") else { return };
    let order: Value = serde_json::from_slice(&sample).unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_mapping(dir.path(), "netsuite/sales_order");
    let v1 = std::fs::read_to_string(dir.path().join("mappings/netsuite/sales_order/v1.jq")).unwrap();
    let lossy = v1.replacen("amount: (.amount | tonumber),", "amount: ((.amount | tonumber) - 0.01),", 1);
    assert_ne!(v1, lossy);
    std::fs::write(dir.path().join("mappings/netsuite/sales_order/v2.jq"), lossy).unwrap();
    let port = free_port();
    let netsuite = Mock::start("netsuite", &["--connector", "netsuite"]).await;
    let credentials = handoff_sim::vendors::netsuite::contract_credentials(&[("customer_id", "42")]);
    let system = format!("connector = \"netsuite\"\nbase_url = \"{}\"\ncredentials = {credentials}", netsuite.url);
    let hub = Hub::start(dir.path(), port, &erp_contract(port, "netsuite", &system)).await;
    assert_eq!(order_created(&hub, "evt-1001", serde_json::to_vec(&order["order"]).unwrap()).await, 202);
    hub.drained().await;
    let out = hub.cli(&["exceptions", "list", "--json"]);
    let exceptions: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exceptions.len(), 1, "{exceptions:?}");
    assert_eq!(
        (exceptions[0]["pattern"].as_str(), exceptions[0]["field"].as_str()),
        (Some("transform_mismatch"), Some("totals"))
    );
    assert!(exceptions[0]["detail"].as_str().unwrap().contains("netsuite/sales_order@2"), "{}", exceptions[0]);
    assert!(netsuite_orders(&netsuite).await.is_empty(), "nothing reached NetSuite");
}
