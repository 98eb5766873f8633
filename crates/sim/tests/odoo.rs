//! The Odoo connector against the simulated Odoo on loopback, over JSON-2 and over JSON-RPC:
//! orders are found by `client_order_ref` before any create, so a lost acknowledgment never
//! makes a second sale order; deliveries come back as `fulfillment.created` events (one of which
//! nothing maps is held while the others come in).

use std::sync::Arc;

use handoff_contract::System;
use handoff_engine::poll::poll_once;
use handoff_engine::{DeliveryError, ManualClock};
use handoff_model::{CommandKind, EventKind, InboundEvent};
use handoff_sim::system::{Collection, Faults, MockSystem};
use handoff_sim::vendors::odoo::{API_KEY, DATABASE, Odoo};
use handoff_sim::{Dialect, http::MockServer};
use handoff_store::memory::MemoryStore;
use handoff_store::{Command, NewCommand, Store};
use jiff::Timestamp;
use serde_json::{Value, json};

/// A simulated Odoo on a loopback port: its system and base URL.
async fn serve() -> (Arc<MockSystem>, String) {
    serve_as(Odoo::default()).await
}

async fn serve_as(odoo: Odoo) -> (Arc<MockSystem>, String) {
    let faults = Faults { idempotency_keys: false, ..Faults::default() };
    let system = Arc::new(MockSystem::new("odoo", faults, 7));
    let dialect: Arc<dyn Dialect> = Arc::new(odoo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(MockServer::new(system.clone(), dialect, None).serve(listener));
    (system, url)
}

fn contract(base_url: &str, protocol: &str, api_key: &str) -> System {
    contract_paged(base_url, protocol, api_key, 10)
}

fn contract_paged(base_url: &str, protocol: &str, api_key: &str, page_size: u32) -> System {
    serde_json::from_value(json!({
        "role": "erp",
        "connector": "odoo",
        "base_url": base_url,
        "timeout": "2s",
        "idempotency_keys": false,
        "credentials": {"api_key": api_key, "database": DATABASE, "protocol": protocol, "login": "admin"},
        "poll": {"every": "1m", "lookback": "5m", "page_size": page_size, "initial": "1h"},
    }))
    .unwrap()
}

/// Every unit at 12.50, nothing else charged.
fn order(order_ref: &str, email: Option<&str>, lines: &[(&str, u32)]) -> Value {
    let units: u32 = lines.iter().map(|(_, q)| q).sum();
    let total = (rust_decimal::Decimal::new(1250, 2) * rust_decimal::Decimal::from(units)).to_string();
    let lines: Vec<Value> =
        lines.iter().map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity, "unit_price": "12.50"})).collect();
    json!({
        "order_ref": order_ref, "name": format!("#{order_ref}"),
        "customer": {"email": email, "name": "Ada Lovelace"},
        "lines": lines, "currency": "EUR",
        "totals": {"subtotal": total, "total": total}, "placed_at": "2026-11-26T10:00:00Z",
    })
}

fn command(kind: CommandKind, external_ref: &str, version: Option<u64>, order: Option<Value>) -> Command {
    let now = Timestamp::now();
    let mut payload = json!({"external_ref": external_ref, "version": version});
    if let Some(order) = order {
        payload["order"] = order;
    }
    Command::new_pending(
        1,
        NewCommand {
            flow: "orders".into(),
            target: "erp".into(),
            order_ref: external_ref.into(),
            kind,
            idempotency_key: format!("{external_ref}:{kind:?}"),
            external_ref: external_ref.into(),
            version,
            payload: payload.to_string(),
            supersede_unsent: false,
        },
        now,
    )
}

fn creates_of(system: &MockSystem, external_ref: &str) -> usize {
    system.applied().iter().filter(|a| a.op == "create" && a.external_ref == external_ref).count()
}

/// The whole life of two orders, over one protocol.
async fn order_life(protocol: &str) {
    let (system, url) = serve().await;
    let contract = contract(&url, protocol, API_KEY);
    let target = handoff_connectors::target("erp", &contract).unwrap().expect("odoo is a target");
    assert!(!target.honours_idempotency_keys());

    // Create: nothing to read back before, the sale order after.
    let create = command(
        CommandKind::CreateOrder,
        "1001",
        Some(1),
        Some(order("1001", Some("ada@example.com"), &[("SKU-A", 2)])),
    );
    assert_eq!(target.read_back(&create).await.unwrap(), None);
    let ack = target.send(&create).await.unwrap();
    assert_eq!(target.read_back(&create).await.unwrap(), Some(ack.clone()));
    assert_eq!(system.find(Collection::Orders, "1001")[0].lines, vec![("SKU-A".to_owned(), 2)]);

    // Lost acknowledgment: the order exists though the client saw nothing; read-back finds it
    // and a resend makes no second one.
    system.set_faults(Faults { idempotency_keys: false, lost_ack: 1.0, ..Faults::default() });
    let lost = command(
        CommandKind::CreateOrder,
        "1002",
        Some(1),
        Some(order("1002", Some("bob@example.com"), &[("SKU-B", 1), ("SKU-C", 3)])),
    );
    match target.send(&lost).await {
        Err(DeliveryError::Transient { ambiguous: true, .. }) => {}
        other => panic!("a lost ack is ambiguous, got {other:?}"),
    }
    system.set_faults(Faults { idempotency_keys: false, ..Faults::default() });
    let found = target.read_back(&lost).await.unwrap().expect("the lost create is found");
    assert_eq!(target.send(&lost).await.unwrap(), found);
    assert_eq!(system.find(Collection::Orders, "1002").len(), 1);
    assert_eq!(creates_of(&system, "1002"), 1);

    // Update: version 2 is not shown until written, then it is.
    let update = command(
        CommandKind::UpdateOrder,
        "1001",
        Some(2),
        Some(order("1001", Some("ada@example.com"), &[("SKU-A", 5)])),
    );
    assert_eq!(target.read_back(&update).await.unwrap(), None);
    assert_eq!(target.send(&update).await.unwrap(), ack);
    assert_eq!(target.read_back(&update).await.unwrap(), Some(ack.clone()));
    let record = &system.find(Collection::Orders, "1001")[0];
    assert_eq!((record.version, record.lines.clone()), (Some(2), vec![("SKU-A".to_owned(), 5)]));

    // Cancel.
    let cancel = command(CommandKind::CancelOrder, "1001", Some(3), None);
    assert_eq!(target.read_back(&cancel).await.unwrap(), None);
    assert_eq!(target.send(&cancel).await.unwrap(), ack);
    assert_eq!(target.read_back(&cancel).await.unwrap(), Some(ack));
    assert_eq!(system.find(Collection::Orders, "1001")[0].status, "cancelled");

    // A field the system requires is missing: refused for good, naming it, nothing created.
    system.set_faults(Faults {
        idempotency_keys: false,
        required_fields: vec!["customer.email".into()],
        ..Faults::default()
    });
    let mut anonymous = order("1003", None, &[("SKU-A", 1)]);
    anonymous["customer"]["name"] = json!("Charles Babbage");
    let no_email = command(CommandKind::CreateOrder, "1003", Some(1), Some(anonymous));
    match target.send(&no_email).await {
        Err(DeliveryError::Permanent { field, .. }) => assert_eq!(field.as_deref(), Some("order.customer.email")),
        other => panic!("a missing email is permanent, got {other:?}"),
    }
    assert!(system.find(Collection::Orders, "1003").is_empty());
    system.set_faults(Faults { idempotency_keys: false, ..Faults::default() });
    assert_eq!(system.applied().iter().filter(|a| a.op == "create").count(), 2, "exactly one sale order per order");

    // The warehouse ships order 1002; the poller reads it back once.
    let fulfilled = reqwest::Client::new()
        .post(format!("{url}/_fulfil"))
        .json(&json!({"external_ref": "1002"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fulfilled.status(), 201);
    let poller = handoff_connectors::poller("erp", &contract).unwrap().expect("odoo polls");
    let page = poller.poll(None, Timestamp::now()).await.unwrap();
    assert_eq!(page.events.len(), 1);
    let event: InboundEvent = serde_json::from_str(&page.events[0].payload).unwrap();
    assert_eq!((event.kind, event.order_ref.as_str()), (EventKind::FulfillmentCreated, "1002"));
    let fulfillment = event.fulfillment.expect("a fulfillment");
    let lines: Vec<(String, u32)> = fulfillment.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect();
    assert_eq!(lines, vec![("SKU-B".to_owned(), 1), ("SKU-C".to_owned(), 3)]);
    assert_eq!(fulfillment.carrier.as_deref(), Some("DHL Express"));
    assert!(fulfillment.tracking_number.is_some());

    // Through the store: the first poll records it, a second from the returned cursor finds
    // nothing new.
    let store = MemoryStore::new();
    let clock = ManualClock::new(Timestamp::now());
    assert_eq!(poll_once("erp", poller.as_ref(), &store, &clock).await.unwrap(), (1, false));
    assert_eq!(poll_once("erp", poller.as_ref(), &store, &clock).await.unwrap(), (0, false));
}

#[tokio::test]
async fn json2_order_life() {
    order_life("json-2").await;
}

#[tokio::test]
async fn json_rpc_order_life() {
    order_life("json-rpc").await;
}

#[tokio::test]
async fn the_simulated_odoo_has_no_idempotency() {
    let (system, url) = serve().await;
    let call = |model: &str, method: &str, body: Value| {
        reqwest::Client::new()
            .post(format!("{url}/json/2/{model}/{method}"))
            .bearer_auth(API_KEY)
            .header("x-odoo-database", DATABASE)
            .json(&body)
            .send()
    };
    let partner: Value =
        call("res.partner", "create", json!({"vals_list": [{"name": "Ada"}]})).await.unwrap().json().await.unwrap();
    let vals = json!({"vals_list": [{"partner_id": partner[0], "client_order_ref": "X1", "order_line": []}]});
    for _ in 0..2 {
        assert_eq!(call("sale.order", "create", vals.clone()).await.unwrap().status(), 200);
    }
    assert_eq!(system.find(Collection::Orders, "X1").len(), 2);
}

#[tokio::test]
async fn a_wrong_api_key_is_refused_for_good() {
    let (system, url) = serve().await;
    let target = handoff_connectors::target("erp", &contract(&url, "json-2", "not-the-key")).unwrap().unwrap();
    let create = command(CommandKind::CreateOrder, "1", Some(1), Some(order("1", Some("a@b.c"), &[("S", 1)])));
    assert!(matches!(target.send(&create).await, Err(DeliveryError::Permanent { .. })));
    // A read-back proves nothing either way, so it stays transient.
    assert!(matches!(target.read_back(&create).await, Err(DeliveryError::Transient { ambiguous: true, .. })));
    assert!(system.applied().is_empty());
}

#[tokio::test]
async fn deliveries_page_through_and_are_recorded_once() {
    // The simulation takes the contract's own key, as `serve --simulate` needs.
    let (_system, url) = serve_as(Odoo::for_system(&contract("unused", "json-2", "our-own-key"))).await;
    let contract = contract_paged(&url, "json-2", "our-own-key", 1);
    let target = handoff_connectors::target("erp", &contract).unwrap().unwrap();
    let client = reqwest::Client::new();
    for n in ["2001", "2002", "2003"] {
        let create =
            command(CommandKind::CreateOrder, n, Some(1), Some(order(n, Some("c@example.com"), &[("SKU-P", 1)])));
        target.send(&create).await.unwrap();
        let fulfilled = client.post(format!("{url}/_fulfil")).json(&json!({"external_ref": n})).send().await.unwrap();
        assert_eq!(fulfilled.status(), 201);
    }
    let poller = handoff_connectors::poller("erp", &contract).unwrap().unwrap();
    let store = MemoryStore::new();
    let clock = ManualClock::new(Timestamp::now());
    // One delivery a page: three full pages, then a caught-up one.
    let mut polls = Vec::new();
    loop {
        let (new, more) = poll_once("erp", poller.as_ref(), &store, &clock).await.unwrap();
        polls.push(new);
        if !more {
            break;
        }
    }
    assert_eq!(polls, vec![1, 1, 1, 0]);
    // The next round reads the lookback window again and finds nothing new.
    let mut again = 0;
    loop {
        let (new, more) = poll_once("erp", poller.as_ref(), &store, &clock).await.unwrap();
        again += new;
        if !more {
            break;
        }
    }
    assert_eq!(again, 0);
}

/// `fields_get` and `default_get` over both wires make the `sale.order` snapshot: Odoo calls
/// `name` and `date_order` required but fills them, the partner must be named, and a fault
/// makes a custom field required, which a create without it is refused on.
#[tokio::test]
async fn fields_get_makes_the_sale_order_snapshot_over_both_wires() {
    let (system, url) = serve().await;
    for protocol in ["json-2", "json-rpc"] {
        let odoo = handoff_connectors::odoo::client("erp", &contract(&url, protocol, API_KEY)).unwrap();
        let raw = odoo.fields_get("sale.order").await.unwrap();
        assert_eq!(raw["partner_id"]["relation"], "res.partner", "{protocol}");
        assert_eq!(raw["state"]["selection"][2], json!(["sale", "Sales Order"]), "{protocol}");
        assert!(raw["partner_id"].get("readonly").is_none(), "only the attributes asked for");
        let schema = odoo.sale_order_schema().await.unwrap();
        let must: Vec<&str> = schema.fields.iter().filter(|(_, f)| f.must_send()).map(|(n, _)| n.as_str()).collect();
        assert_eq!(must, ["partner_id"], "{protocol}");
        assert!(schema.fields["name"].required && schema.fields["partner_invoice_id"].defaulted);
        let lines = &schema.lines["order_line"];
        assert_eq!(lines.record, "sale.order.line");
        assert!(lines.fields["order_id"].defaulted, "the inverse of order_line is Odoo's to fill");
        assert_eq!(lines.fields["product_id"].lookup.as_deref(), Some("product.product"));
    }

    system.set_faults(Faults {
        idempotency_keys: false,
        required_fields: vec!["sale_order.x_studio_channel".into()],
        ..Faults::default()
    });
    let contract = contract(&url, "json-2", API_KEY);
    let odoo = handoff_connectors::odoo::client("erp", &contract).unwrap();
    let field = &odoo.sale_order_schema().await.unwrap().fields["x_studio_channel"];
    assert!(field.must_send() && field.label.as_deref() == Some("Studio Channel"));
    // Without a snapshot that knows it, the order reaches Odoo and is refused naming the field.
    let target = handoff_connectors::target("erp", &contract).unwrap().unwrap();
    let create =
        command(CommandKind::CreateOrder, "2001", Some(1), Some(order("2001", Some("ada@example.com"), &[("A", 1)])));
    match target.send(&create).await {
        Err(DeliveryError::Permanent { field, .. }) => assert_eq!(field.as_deref(), Some("x_studio_channel")),
        other => panic!("refused for the custom field, got {other:?}"),
    }
    assert!(system.find(Collection::Orders, "2001").is_empty());
}

#[tokio::test]
async fn a_delivery_the_poll_cannot_map_is_held_and_the_feed_goes_on() {
    let (_system, url) = serve_as(Odoo::for_system(&contract("unused", "json-2", "our-own-key"))).await;
    let contract = contract_paged(&url, "json-2", "our-own-key", 2);
    let target = handoff_connectors::target("erp", &contract).unwrap().unwrap();
    let client = reqwest::Client::new();
    let ship = async |order_ref: &str, quantity: u32| {
        let order = order(order_ref, Some("c@example.com"), &[("SKU-P", quantity)]);
        target.send(&command(CommandKind::CreateOrder, order_ref, Some(1), Some(order))).await.unwrap();
        let r = client.post(format!("{url}/_fulfil")).json(&json!({"external_ref": order_ref})).send();
        assert_eq!(r.await.unwrap().status(), 201);
    };
    // 3002's delivery moves no whole unit: nothing of it can be reported.
    ship("3001", 1).await;
    ship("3002", 0).await;
    let poller = handoff_connectors::poller("erp", &contract).unwrap().unwrap();
    let store = MemoryStore::new();
    let clock = ManualClock::new(Timestamp::now());
    let drain = async || {
        let mut new = 0;
        loop {
            let (n, more) = poll_once("erp", poller.as_ref(), &store, &clock).await.unwrap();
            new += n;
            if !more {
                return new;
            }
        }
    };
    assert_eq!(drain().await, 1);
    assert!(store.poll_cursor("erp".into()).await.unwrap().is_some());
    let held = store.quarantined(None, 10).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].order_ref.as_deref(), held[0].field.as_str()), (Some("3002"), "fulfillment.lines"));
    assert_eq!(store.exceptions(None, 10).await.unwrap().len(), 1);

    // Later deliveries still come in, and the held one is held once.
    ship("3003", 2).await;
    assert_eq!(drain().await, 1);
    assert_eq!(store.quarantined(None, 10).await.unwrap().len(), 1);
    let refs: Vec<String> = store.unprocessed_events(10).await.unwrap().into_iter().map(|e| e.order_ref).collect();
    assert_eq!(refs, ["3001", "3003"]);
    // Read again from what was kept (the picking, its moves, the references it was read with).
    let refused = handoff_connectors::reread("erp", &contract, &held[0]).unwrap_err();
    assert_eq!(refused.field, "fulfillment.lines", "today's reader still refuses it");
    // What was kept is enough to read it: with a unit moved, it is 3002's fulfillment.
    let mut body: Value = serde_json::from_slice(&held[0].body).unwrap();
    body["moves"][0]["quantity"] = json!(1);
    let moved = handoff_store::Quarantined { body: body.to_string().into_bytes(), ..held[0].clone() };
    let event = handoff_connectors::reread("erp", &contract, &moved).unwrap();
    let event: InboundEvent = serde_json::from_str(&event.payload).unwrap();
    let lines: Vec<_> = event.fulfillment.unwrap().lines.into_iter().map(|l| (l.sku, l.quantity)).collect();
    assert_eq!((event.order_ref.as_str(), lines), ("3002", vec![("SKU-P".to_owned(), 1)]));
}

/// Odoo 19's JSON-2 call of `model.method` with named arguments.
async fn json2(url: &str, model: &str, method: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/json/2/{model}/{method}"))
        .bearer_auth(API_KEY)
        .header("x-odoo-database", DATABASE)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_confirmed_order_keeps_its_lines_and_an_update_rewrites_them_in_place() {
    let (system, url) = serve().await;
    let target = handoff_connectors::target("erp", &contract(&url, "json-2", API_KEY)).unwrap().unwrap();
    let lines = [("SKU-A", 2), ("SKU-B", 1)];
    let create = command(CommandKind::CreateOrder, "3001", Some(1), Some(order("3001", Some("a@b.c"), &lines)));
    let id: i64 = target.send(&create).await.unwrap().record_id.parse().unwrap();
    let state = |system: &MockSystem| system.find(Collection::Orders, "3001")[0].lines.clone();

    // Confirmed: Odoo refuses to drop its lines, in its own words, and changes nothing.
    assert_eq!(json2(&url, "sale.order", "action_confirm", json!({"ids": [id]})).await.status(), 200);
    let replace = json2(&url, "sale.order", "write", json!({"ids": [id], "vals": {"order_line": [[5, 0, 0]]}})).await;
    assert_eq!(replace.status(), 422);
    let refused: Value = replace.json().await.unwrap();
    assert_eq!(refused["name"], "odoo.exceptions.UserError");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .starts_with("Once a sales order is confirmed, you can't remove one of its lines")
    );
    assert_eq!(state(&system), vec![("SKU-A".to_owned(), 2), ("SKU-B".to_owned(), 1)]);

    // The connector's update rewrites the kept product, adds the new one, zeroes the dropped one.
    let update = command(
        CommandKind::UpdateOrder,
        "3001",
        Some(2),
        Some(order("3001", Some("a@b.c"), &[("SKU-A", 5), ("SKU-C", 1)])),
    );
    target.send(&update).await.unwrap();
    assert_eq!(
        state(&system),
        vec![("SKU-A".to_owned(), 5), ("SKU-B".to_owned(), 0), ("SKU-C".to_owned(), 1)],
        "no line of a confirmed order removed"
    );
    assert_eq!(target.read_back(&update).await.unwrap().map(|a| a.record_id), Some(id.to_string()));
}

#[tokio::test]
async fn a_delivery_edited_while_its_window_is_paged_is_neither_skipped_nor_duplicated() {
    use handoff_store::Store;
    let odoo = Arc::new(Odoo::default());
    let faults = Faults { idempotency_keys: false, ..Faults::default() };
    let system = Arc::new(MockSystem::new("odoo", faults, 7));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(MockServer::new(system.clone(), odoo.clone(), None).serve(listener));
    let contract = contract_paged(&url, "json-2", API_KEY, 1);
    let target = handoff_connectors::target("erp", &contract).unwrap().unwrap();
    let at = |s: i64| {
        Some(
            handoff_engine::poll::whole_second(Timestamp::now() - jiff::SignedDuration::from_mins(10))
                + jiff::SignedDuration::from_secs(s),
        )
    };
    let base = at(0);
    odoo.set_clock(base);
    for n in ["4001", "4002", "4003"] {
        let create =
            command(CommandKind::CreateOrder, n, Some(1), Some(order(n, Some("c@example.com"), &[("SKU-P", 1)])));
        target.send(&create).await.unwrap();
        let fulfilled = reqwest::Client::new()
            .post(format!("{url}/_fulfil"))
            .json(&json!({"external_ref": n}))
            .send()
            .await
            .unwrap();
        assert_eq!(fulfilled.status(), 201);
    }
    let poller = handoff_connectors::poller("erp", &contract).unwrap().unwrap();
    let store = MemoryStore::new();
    let clock = handoff_engine::SystemClock;
    assert_eq!(poll_once("erp", poller.as_ref(), &store, &clock).await.unwrap(), (1, true));
    // Between two pages: the delivery read is re-tracked within the same second, one not yet
    // read a second later.
    odoo.retrack(1, "JD-FIXED-1");
    odoo.set_clock(base.map(|b| b + jiff::SignedDuration::from_secs(1)));
    odoo.retrack(2, "JD-FIXED-2");
    for _ in 0..2 {
        while poll_once("erp", poller.as_ref(), &store, &clock).await.unwrap().1 {}
    }
    let mut seen: Vec<(String, String)> = store
        .unprocessed_events(100)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let event: InboundEvent = serde_json::from_str(&e.payload).unwrap();
            (e.order_ref.clone(), event.fulfillment.and_then(|f| f.tracking_number).unwrap_or_default())
        })
        .collect();
    seen.sort();
    let t = |o: &str, t: &str| (o.to_owned(), t.to_owned());
    assert_eq!(
        seen,
        vec![t("4001", "JD-FIXED-1"), t("4001", "JD0000000001"), t("4002", "JD-FIXED-2"), t("4003", "JD0000000003")]
    );
}
