//! Held bodies replayed through a reader seam over the memory store: refused while the reader
//! still cannot map them (nothing changes), an ordinary inbox event and order once it can, and
//! never twice.

use std::path::Path;
use std::sync::Arc;

use handoff_contract::Contract;
use handoff_engine::poll::{Page, PollError, Poller, poll_once};
use handoff_engine::quarantine::{self, ReplayError, Replayed, Unmapped};
use handoff_engine::{BoxFuture, Intake, ManualClock};
use handoff_model::CommandKind;
use handoff_store::memory::MemoryStore;
use handoff_store::{NewEvent, NewQuarantined, QuarantineSource, QuarantineState, Quarantined, Recorded, Store};
use jiff::Timestamp;
use serde_json::{Value, json};

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn contract() -> Arc<Contract> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
    Arc::new(Contract::parse(&text, Path::new("handoff.toml")).unwrap())
}

/// An order whose lines came under a key today's reader does not know (`lineItems`): it stopped
/// at `line_items`.
fn held_order() -> NewQuarantined {
    let body = json!({"id": "1001", "currency": "EUR", "total_price": "10.00",
        "lineItems": [{"sku": "MUG", "quantity": 2, "price": "5.00"}]});
    NewQuarantined {
        system: "shop".into(),
        source: QuarantineSource::Webhook,
        fingerprint: "sha256:1".into(),
        order_ref: Some("1001".into()),
        headers: [("x-shopify-topic".to_owned(), "orders/create".to_owned())].into(),
        body: body.to_string().into_bytes(),
        field: "line_items".into(),
        reason: "missing field `line_items`".into(),
        source_version: Some("2027-01".into()),
        flow: quarantine::inbound_flow(&contract(), "shop"),
        received_at: t0(),
    }
}

/// Today's reader: it still wants `line_items`.
fn reader_of_today(_: &Quarantined) -> Result<NewEvent, Unmapped> {
    Err(Unmapped { field: "line_items".into(), reason: "missing field `line_items`".into() })
}

/// The fixed reader: it reads `lineItems` too, into the canonical event.
fn fixed_reader(held: &Quarantined) -> Result<NewEvent, Unmapped> {
    let body: Value = serde_json::from_slice(&held.body).unwrap();
    let lines: Vec<Value> = body["lineItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| json!({"sku": l["sku"], "quantity": l["quantity"], "unit_price": l["price"]}))
        .collect();
    let order_ref = body["id"].as_str().unwrap();
    let event = json!({
        "event_id": "evt-1001", "kind": "order.created", "order_ref": order_ref,
        "occurred_at": "2026-11-26T10:00:00Z", "version": 1,
        "order": {"order_ref": order_ref, "customer": {"email": "ada@example.com"}, "currency": body["currency"],
            "placed_at": "2026-11-26T10:00:00Z", "lines": lines,
            "totals": {"subtotal": "10.00", "total": body["total_price"]}},
    });
    Ok(NewEvent {
        system: held.system.clone(),
        event_id: "evt-1001".into(),
        kind: handoff_model::EventKind::OrderCreated,
        order_ref: order_ref.into(),
        received_at: held.received_at,
        payload: event.to_string(),
        raw: Some(String::from_utf8(held.body.clone()).unwrap()),
    })
}

#[tokio::test]
async fn a_held_body_is_refused_until_its_reader_maps_it_then_becomes_an_order_once() {
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let Recorded::New(id) = store.quarantine(held_order(), t0()).await.unwrap() else { panic!("new") };
    let exception = store.quarantined_one(id).await.unwrap().unwrap().exception_id.unwrap();
    let x = store.exception(exception).await.unwrap().unwrap();
    assert_eq!((x.flow.as_deref(), x.field.as_deref()), (Some("orders-to-erp"), Some("line_items")));
    assert_eq!(quarantine::held_by(&x), Some(id));
    let pack = handoff_engine::actions::evidence(&store, exception).await.unwrap().unwrap();
    assert_eq!(pack.action, json!({"action": "replay_quarantined", "quarantine": id}));
    assert_eq!(pack.timeline.quarantined.len(), 1, "the order's timeline shows the held body");

    let refused = quarantine::replay(&store, id, reader_of_today, "ada", t0()).await.unwrap_err();
    assert!(matches!(&refused, ReplayError::StillUnmapped { unmapped, .. } if unmapped.field == "line_items"));
    assert_eq!(store.quarantined_one(id).await.unwrap().unwrap().state, QuarantineState::Held, "nothing changed");
    assert_eq!(store.exception(exception).await.unwrap().unwrap().state, "open");
    assert!(store.unprocessed_events(10).await.unwrap().is_empty());

    let replayed = quarantine::replay(&store, id, fixed_reader, "ada", t0()).await.unwrap();
    let Replayed::Recorded(Recorded::New(row)) = replayed else { panic!("{replayed:?}") };
    assert_eq!(
        quarantine::replay(&store, id, fixed_reader, "ada", t0()).await.unwrap(),
        Replayed::Before { event_row: Some(row) }
    );
    assert_eq!(store.exception(exception).await.unwrap().unwrap().state, "resolved");

    // An ordinary event: intake plans the order's create for the ERP, once.
    Intake::new(contract(), store.clone(), clock.clone()).step().await.unwrap();
    let timeline = store.order_timeline("1001".into()).await.unwrap();
    assert_eq!(timeline.events.len(), 1);
    let creates: Vec<_> = timeline.commands.iter().filter(|c| c.kind == CommandKind::CreateOrder).collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].target, "erp");
    assert!(timeline.audit.iter().any(|a| a.actor == "ada" && a.action == "quarantine replayed"));

    let missing = quarantine::replay(&store, 99, fixed_reader, "ada", t0()).await.unwrap_err();
    assert!(matches!(missing, ReplayError::NotFound(99)));
}

/// A poller of `shop` that holds one record per page.
struct Holding;

impl Poller for Holding {
    fn poll<'a>(&'a self, _: Option<&'a str>, _: Timestamp) -> BoxFuture<'a, Result<Page, PollError>> {
        Box::pin(async {
            let held = NewQuarantined { source: QuarantineSource::Poll, flow: None, ..held_order() };
            Ok(Page { events: vec![], held: vec![held], cursor: "next".into(), more: false })
        })
    }
}

#[tokio::test]
async fn a_polled_record_is_held_on_the_inbound_flow_and_the_cursor_moves() {
    let store = MemoryStore::new();
    let clock = ManualClock::new(t0());
    let poller = quarantine::naming_flow(Arc::new(Holding), quarantine::inbound_flow(&contract(), "shop"));
    assert_eq!(poll_once("shop", poller.as_ref(), &store, &clock).await.unwrap(), (0, false));
    assert_eq!(store.poll_cursor("shop".into()).await.unwrap().as_deref(), Some("next"));
    let x = &store.exceptions(None, 10).await.unwrap()[0];
    assert_eq!((x.pattern.as_str(), x.flow.as_deref()), ("transform_mismatch", Some("orders-to-erp")));
    assert_eq!(quarantine::inbound_flow(&contract(), "nobody"), None);
}
