//! Cancelling a duplicate draft against the simulated NetSuite and Odoo, through the real
//! resolution action, dispatcher and connectors. Two records of one order exist; the action
//! keeps one and cancels the other by the ERP's own id for it: exactly the duplicate is closed,
//! the record kept stays open (though it holds the order's external reference, by which the
//! cancel used to find its record), and both ledgers name the record kept.

use std::path::Path;
use std::sync::Arc;

use handoff_contract::{ConnectorKind, Contract};
use handoff_engine::{Clock, Dispatcher, Intake, ManualClock, Rng, Targets, actions};
use handoff_model::{CommandKind, CommandState, Pattern};
use handoff_rules::{ErpState, Fact, Ledger};
use handoff_sim::MockSystem;
use handoff_sim::dialect::for_connector;
use handoff_sim::http::MockServer;
use handoff_sim::system::{Collection, Faults, Request};
use handoff_store::memory::MemoryStore;
use handoff_store::{NewEvent, NewFinding, Raised, Store};
use jiff::Timestamp;
use serde_json::json;

const ORDER: &str = "1001";

/// A simulated ERP on loopback, and a contract whose `erp` is it, fed by an `http-json` shop.
struct Erp {
    system: Arc<MockSystem>,
    contract: Arc<Contract>,
    targets: Targets,
}

async fn serve(kind: ConnectorKind) -> Erp {
    // Odoo has no idempotency keys (its connector searches before it creates); NetSuite's
    // upsert keys on the external id.
    let faults = Faults { idempotency_keys: kind == ConnectorKind::Netsuite, ..Faults::default() };
    let system = Arc::new(MockSystem::new("erp", faults, 7));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(MockServer::new(system.clone(), for_connector(kind), None).serve(listener));
    let erp = match kind {
        ConnectorKind::Netsuite => format!(
            "connector = \"netsuite\"\ncredentials = {}\n",
            handoff_sim::vendors::netsuite::contract_credentials(&[("customer_id", "42")])
        ),
        _ => format!(
            "connector = \"odoo\"\nidempotency_keys = false\ncredentials = {{ api_key = \"{}\", database = \"{}\" }}\n",
            handoff_sim::vendors::odoo::API_KEY,
            handoff_sim::vendors::odoo::DATABASE
        ),
    };
    let text = format!(
        r#"
[systems.shop]
role = "storefront"
connector = "http-json"

[systems.erp]
role = "erp"
base_url = "{url}"
timeout = "2s"
{erp}
[flows.orders-to-erp]
from = "shop"
to = "erp"
events = ["order.created", "order.updated", "order.cancelled"]
proof = "record-id"
deadline = "15m"
retry = {{ attempts = 3, backoff_base = "100ms", backoff_cap = "1s", jitter = "full", deadline = "1h" }}
"#
    );
    let contract = Arc::new(Contract::parse(&text, Path::new("handoff.toml")).unwrap());
    let target = handoff_connectors::target("erp", &contract.systems["erp"]).unwrap().expect("a target");
    assert!(target.addresses_records());
    Erp { system, contract, targets: [("erp".to_owned(), target)].into_iter().collect() }
}

/// The shop's order: two mugs and a tee, nothing else charged.
fn order_created() -> NewEvent {
    let payload = json!({
        "event_id": "e1", "kind": "order.created", "order_ref": ORDER, "occurred_at": "2026-11-26T10:00:00Z",
        "version": 1,
        "order": {
            "order_ref": ORDER, "name": format!("#{ORDER}"),
            "customer": {"email": "ada@example.com", "name": "Ada Lovelace"}, "currency": "EUR",
            "placed_at": "2026-11-26T10:00:00Z",
            "lines": [{"sku": "MUG-1", "quantity": 2, "unit_price": "12.50"}, {"sku": "TEE-2", "quantity": 1, "unit_price": "12.50"}],
            "totals": {"subtotal": "37.50", "tax": "0", "total": "37.50"},
        },
    });
    NewEvent {
        system: "shop".into(),
        event_id: "e1".into(),
        kind: "order.created".parse().unwrap(),
        order_ref: ORDER.into(),
        received_at: Timestamp::now(),
        payload: payload.to_string(),
        raw: None,
    }
}

/// Sends every due command once, as the hub's dispatcher does.
async fn dispatch(store: &MemoryStore, dispatcher: &Dispatcher<MemoryStore>, now: Timestamp) -> usize {
    let due = store.claim_due(now, 10).await.unwrap();
    let sent = due.len();
    for command in due {
        let record = dispatcher.attempt(command).await;
        dispatcher.record(record).await;
    }
    sent
}

/// The Duplicate Draft the rules raise for two records of the order: keep the first, cancel
/// the second.
fn duplicate_draft(keep: &str, cancel: &str) -> NewFinding {
    let record = |id: &str| json!({"system": "erp", "id": id, "seen_at": "2026-11-26T10:00:00Z", "state": "open"});
    NewFinding {
        pattern: Pattern::DuplicateDraft,
        order_ref: ORDER.into(),
        subject: format!("{keep},{cancel}"),
        flow: Some("orders-to-erp".into()),
        field: None,
        channel: Some("shop".into()),
        amount: Some("37.50".into()),
        currency: Some("EUR".into()),
        detail: format!("two ERP records of {ORDER}"),
        action: json!({"action": "cancel_duplicates", "keep": keep, "cancel": [cancel]}).to_string(),
        evidence: json!({"ledger": {"erp": [record(keep), record(cancel)]}}).to_string(),
    }
}

/// The order's ledger as the rules learn it from the journal, the duplicate included (the
/// rules learned it when it was made; here it was made by the test's hand).
async fn rules_ledger(erp: &Erp, store: &MemoryStore, duplicate: &str) -> Ledger {
    let mut ledger = Ledger::new(ORDER);
    let at = Timestamp::now();
    ledger.apply(Fact::ErpRecord {
        system: "erp".into(),
        id: duplicate.into(),
        at,
        total: None,
        lines: None,
        confidence: 1.0,
    });
    for row in store.facts_of(vec![ORDER.into()], i64::MAX).await.unwrap() {
        for fact in handoff_engine::rules::facts_of(&erp.contract, &row) {
            ledger.apply(fact);
        }
    }
    ledger
}

/// The record a connector acknowledges for a system record: NetSuite's internal id is the
/// record's own id in the simulation; Odoo's is its number.
fn erp_id(kind: ConnectorKind, record_id: &str) -> String {
    match kind {
        ConnectorKind::Odoo => record_id.rsplit('-').next().unwrap().to_owned(),
        _ => record_id.to_owned(),
    }
}

async fn the_duplicate_and_only_it_is_cancelled(kind: ConnectorKind) {
    let erp = serve(kind).await;
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    store.record_event(order_created()).await.unwrap();
    Intake::new(erp.contract.clone(), store.clone(), clock.clone()).step().await.unwrap();
    let dispatcher =
        Dispatcher::new(erp.contract.clone(), store.clone(), erp.targets.clone(), clock.clone(), Rng::seeded(1));
    assert_eq!(dispatch(&store, &dispatcher, clock.now()).await, 1, "the create");
    let created = erp.system.find(Collection::Orders, ORDER);
    assert_eq!(created.len(), 1);
    let kept = erp_id(kind, &created[0].id);

    // A second record of the order, made behind the hub's back. Odoo keeps no external
    // reference unique: a create whose answer was lost, made again, shares the order's
    // `client_order_ref`. NetSuite does (an upsert by external id cannot make a second order):
    // a duplicate there was keyed in beside it, without one.
    let duplicate_ref = if kind == ConnectorKind::Odoo { ORDER } else { "" };
    let body = json!({"external_ref": duplicate_ref, "order": {"lines": [{"sku": "MUG-1", "quantity": 2}, {"sku": "TEE-2", "quantity": 1}]}});
    erp.system.handle(Request::Create { collection: Collection::Orders, idempotency_key: None, body });
    let records = erp.system.records();
    assert_eq!(records.len(), 2);
    let duplicate = erp_id(kind, &records[1].id);

    let Raised::Opened(exception) = store.raise_finding(duplicate_draft(&kept, &duplicate), clock.now()).await.unwrap()
    else {
        panic!("a new finding")
    };
    let out = actions::take(&store, &erp.contract, &erp.targets, exception, "ada", false, clock.now()).await.unwrap();
    assert_eq!(out.queued.len(), 1, "{:?}", out.lines);
    assert_eq!(dispatch(&store, &dispatcher, clock.now()).await, 1, "the duplicate's cancel");

    // Exactly the duplicate is closed; the record kept, which holds the order's external
    // reference, stays open.
    let status = |id: &str| erp.system.records().into_iter().find(|r| r.id == id).map(|r| r.status).unwrap();
    assert_eq!(status(&records[1].id), "cancelled");
    assert_eq!(status(&records[0].id), "open");
    let cancels: Vec<String> =
        erp.system.applied().into_iter().filter(|a| a.op == "cancel").map(|a| a.record_id).collect();
    assert_eq!(cancels, vec![records[1].id.clone()]);

    // The cancel was acknowledged for the duplicate; the hub's ledger still names the order's
    // record kept, open.
    let timeline = store.order_timeline(ORDER.into()).await.unwrap();
    let cancel = timeline.commands.iter().find(|c| c.kind == CommandKind::CancelOrder).unwrap();
    assert_eq!((cancel.state, cancel.record_id.as_deref()), (CommandState::Acknowledged, Some(duplicate.as_str())));
    let row = timeline.ledger.iter().find(|l| l.system == "erp").unwrap();
    assert_eq!((row.state.as_str(), row.record_id.as_deref()), ("created", Some(kept.as_str())));

    // The rules learn the cancel from the record the ERP acknowledged: the duplicate is
    // cancelled, the record kept is the order's one live record.
    let ledger = rules_ledger(&erp, &store, &duplicate).await;
    let state = |id: &str| ledger.erp.iter().find(|r| r.id == id).map(|r| r.state);
    assert_eq!(state(&duplicate), Some(ErpState::Cancelled));
    assert_eq!(state(&kept), Some(ErpState::Open));
    let live: Vec<&str> = ledger.live_records().map(|r| r.id.as_str()).collect();
    assert_eq!(live, vec![kept.as_str()]);

    // Acting again queues nothing, and the cancel read back by the duplicate's id is applied.
    let again = actions::take(&store, &erp.contract, &erp.targets, exception, "bob", false, clock.now()).await.unwrap();
    assert!(again.queued.is_empty() && again.already_queued == out.queued, "{:?}", again.lines);
    let found = erp.targets["erp"].read_back(cancel).await.unwrap().map(|a| a.record_id);
    assert_eq!(found, Some(duplicate));
}

#[tokio::test]
async fn netsuite_closes_exactly_the_duplicate_sales_order() {
    the_duplicate_and_only_it_is_cancelled(ConnectorKind::Netsuite).await;
}

#[tokio::test]
async fn odoo_cancels_exactly_the_duplicate_sale_order() {
    the_duplicate_and_only_it_is_cancelled(ConnectorKind::Odoo).await;
}
