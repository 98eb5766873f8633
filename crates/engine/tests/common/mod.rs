//! What the engine's tests share: a canonical order event from the storefront `shop`.

#![allow(dead_code)]

use handoff_store::NewEvent;
use jiff::Timestamp;
use serde_json::{Value, json};

/// The event `id` of `kind` about a one-line 5.00 EUR order placed at `at`, its customer's
/// email ada@example.com; `shape` may add to the order (a name, an address) before it is sent.
pub fn order_event_with(
    id: &str,
    kind: &str,
    order_ref: &str,
    at: Timestamp,
    shape: impl FnOnce(&mut Value),
) -> NewEvent {
    let mut order = json!({
        "order_ref": order_ref, "customer": {"email": "ada@example.com"}, "currency": "EUR",
        "placed_at": at.to_string(),
        "lines": [{"sku": "A", "quantity": 1, "unit_price": "5.00"}],
        "totals": {"subtotal": "5.00", "total": "5.00"},
    });
    shape(&mut order);
    let payload = json!({
        "event_id": id, "kind": kind, "order_ref": order_ref, "occurred_at": at.to_string(), "version": 1,
        "order": order,
    });
    NewEvent {
        system: "shop".into(),
        event_id: id.into(),
        kind: kind.parse().unwrap(),
        order_ref: order_ref.into(),
        received_at: at,
        payload: payload.to_string(),
        raw: None,
    }
}

/// [`order_event_with`] as it is.
pub fn order_event(id: &str, kind: &str, order_ref: &str, at: Timestamp) -> NewEvent {
    order_event_with(id, kind, order_ref, at, |_| {})
}
