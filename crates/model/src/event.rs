//! Events: inbound facts from a system, in Handoff's canonical JSON form.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{CanonicalOrder, ExternalId, Fulfillment, Payment, Refund};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "order.created")]
    OrderCreated,
    #[serde(rename = "order.updated")]
    OrderUpdated,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "fulfillment.created")]
    FulfillmentCreated,
    #[serde(rename = "refund.created")]
    RefundCreated,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::OrderCreated,
        EventKind::OrderUpdated,
        EventKind::OrderCancelled,
        EventKind::OrderPaid,
        EventKind::FulfillmentCreated,
        EventKind::RefundCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderCreated => "order.created",
            EventKind::OrderUpdated => "order.updated",
            EventKind::OrderCancelled => "order.cancelled",
            EventKind::OrderPaid => "order.paid",
            EventKind::FulfillmentCreated => "fulfillment.created",
            EventKind::RefundCreated => "refund.created",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let known: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown event kind {s:?} (known: {})", known.join(", "))
        })
    }
}

/// The canonical event that an `http-json` source posts to `/webhooks/{system}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundEvent {
    /// The source's own id for this event: the dedup key.
    pub event_id: ExternalId,
    pub kind: EventKind,
    /// The order this event is about, as the order's source system names it.
    pub order_ref: String,
    pub occurred_at: Timestamp,
    /// The order's version at the source (for example its `updated_at` as a counter); events
    /// of one order older than one already applied are stale and never overtake it.
    #[serde(default)]
    pub version: Option<u64>,
    #[serde(default)]
    pub order: Option<CanonicalOrder>,
    #[serde(default)]
    pub fulfillment: Option<Fulfillment>,
    #[serde(default)]
    pub refund: Option<Refund>,
    #[serde(default)]
    pub payment: Option<Payment>,
    /// The source's own format version (`X-Shopify-API-Version`, Stripe's `api_version`),
    /// recorded so that every event says which shape it came in.
    #[serde(default)]
    pub source_version: Option<String>,
    /// The inbound mapping that made this canonical event from the vendor's payload: the
    /// connector's reader and the payload shape it took (`shopify/order@total_shipping_price_set`,
    /// `stripe/payment_intent@latest_charge`, `amazon/order@2026-01-01`). `None` for events that
    /// came canonical (`http-json`) and for rows stored before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_mapping: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct EventError {
    pub field: &'static str,
    pub reason: String,
}

/// Longest order reference accepted.
pub const MAX_ORDER_REF_LEN: usize = 200;

impl InboundEvent {
    /// An event with its envelope only; the body (order, fulfillment, ...) is set after.
    pub fn new(event_id: ExternalId, kind: EventKind, order_ref: impl Into<String>, occurred_at: Timestamp) -> Self {
        InboundEvent {
            event_id,
            kind,
            order_ref: order_ref.into(),
            occurred_at,
            version: None,
            order: None,
            fulfillment: None,
            refund: None,
            payment: None,
            source_version: None,
            inbound_mapping: None,
        }
    }

    /// Checks what the types alone cannot: each kind carries the body it needs, and that body
    /// agrees with the envelope.
    pub fn validate(&self) -> Result<(), EventError> {
        let err = |field, reason: &str| EventError { field, reason: reason.to_owned() };
        if self.order_ref.is_empty() || self.order_ref.len() > MAX_ORDER_REF_LEN {
            return Err(err("order_ref", "must be 1 to 200 bytes"));
        }
        if let Some(payment) = &self.payment {
            crate::money::within_bounds(payment.amount.amount)
                .map_err(|reason| EventError { field: "payment.amount", reason })?;
        }
        match self.kind {
            EventKind::OrderCreated | EventKind::OrderUpdated => {
                let order = self.order.as_ref().ok_or_else(|| err("order", "is required for this kind"))?;
                if order.order_ref != self.order_ref {
                    return Err(err("order.order_ref", "differs from the event's order_ref"));
                }
                order.check_totals().map_err(|reason| EventError { field: "order", reason })?;
            }
            EventKind::FulfillmentCreated => {
                let f = self.fulfillment.as_ref().ok_or_else(|| err("fulfillment", "is required for this kind"))?;
                if f.lines.is_empty() {
                    return Err(err("fulfillment.lines", "needs at least one line"));
                }
            }
            EventKind::RefundCreated => {
                let r = self.refund.as_ref().ok_or_else(|| err("refund", "is required for this kind"))?;
                crate::money::within_bounds(r.amount.amount)
                    .map_err(|reason| EventError { field: "refund.amount", reason })?;
            }
            EventKind::OrderCancelled | EventKind::OrderPaid => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::tests::order;

    fn created() -> InboundEvent {
        InboundEvent {
            event_id: ExternalId::new("evt-1").unwrap(),
            kind: EventKind::OrderCreated,
            order_ref: "#1001".into(),
            occurred_at: "2026-11-26T10:00:00Z".parse().unwrap(),
            version: Some(1),
            order: Some(order("#1001")),
            fulfillment: None,
            refund: None,
            payment: None,
            source_version: None,
            inbound_mapping: None,
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>().unwrap(), k);
        }
        assert!("order.exploded".parse::<EventKind>().unwrap_err().contains("order.created"));
    }

    #[test]
    fn money_beyond_any_order_is_refused_before_it_is_multiplied() {
        // 7.9e28 is near the largest Decimal: times a quantity of 2 it would overflow (a panic).
        let mut e = created();
        let order = e.order.as_mut().unwrap();
        order.lines[0].unit_price = rust_decimal::Decimal::MAX;
        order.lines[0].quantity = 2;
        let refused = e.validate().unwrap_err();
        assert_eq!(refused.field, "order");
        assert!(refused.reason.starts_with("lines[0].unit_price: "), "{}", refused.reason);
        let mut e = created();
        e.order.as_mut().unwrap().lines[0].quantity = u32::MAX;
        assert!(e.validate().unwrap_err().reason.starts_with("lines[0].quantity: "));
    }

    #[test]
    fn a_create_needs_its_order() {
        assert_eq!(created().validate(), Ok(()));
        let mut e = created();
        e.order = None;
        assert_eq!(e.validate().unwrap_err().field, "order");
        let mut e = created();
        e.order_ref = "#1002".into();
        assert_eq!(e.validate().unwrap_err().field, "order.order_ref");
    }
}
