//! Shopify webhooks into the canonical model: `orders/create`, `orders/updated`,
//! `orders/cancelled`, `orders/paid`, `fulfillments/create`, `refunds/create`. The body is the
//! REST resource of the topic; the 2014, 2022-04 and 2026-07 shapes all map. An order is known
//! by its numeric id (fulfillments and refunds name only that), with `name` (`#1001`) kept.

use handoff_model::{
    Address, CanonicalOrder, Currency, Customer, EventKind, ExternalId, Fulfillment, FulfillmentLine, InboundEvent,
    Money, OrderLine, Payment, PaymentStatus, Refund, Totals,
};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::SourceError;
use crate::http_json::{invalid, read_json, read_value};
use crate::signature::{self, SignatureError};

/// The inbound mappings of this connector, stamped on each event (`InboundEvent::inbound_mapping`).
/// An order's shipping is read from `total_shipping_price_set` where the payload has it (the
/// price-set shape: 2022-04 and 2026-07 alike) and summed from `shipping_lines` where it does
/// not (the 2014 shape); nothing else in the order differs between the versions read.
pub const ORDER_PRICE_SET: &str = "shopify/order@total_shipping_price_set";
pub const ORDER_SHIPPING_LINES: &str = "shopify/order@shipping_lines";
/// Fulfillments and refunds have one reader each, of the REST resource.
pub const FULFILLMENT: &str = "shopify/fulfillment@rest";
pub const REFUND: &str = "shopify/refund@rest";

/// The delivery headers [`event`] reads, in both spellings: all of a request kept beside a
/// body held in quarantine, to read it again.
pub(crate) const READ_HEADERS: [&str; 10] = [
    "x-shopify-topic",
    "shopify-topic",
    "x-shopify-event-id",
    "shopify-event-id",
    "x-shopify-webhook-id",
    "shopify-webhook-id",
    "x-shopify-triggered-at",
    "shopify-triggered-at",
    "x-shopify-api-version",
    "shopify-api-version",
];

/// Shopify sends each header both with and without the `X-` prefix (newer deliveries).
fn shopify_header<'h>(header: &impl Fn(&str) -> Option<&'h str>, name: &str) -> Option<&'h str> {
    header(&format!("x-shopify-{name}")).or_else(|| header(&format!("shopify-{name}")))
}

/// `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the raw body with the app's secret.
pub fn verify<'h>(
    header: &impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    secrets: &[impl signature::SigningKey],
) -> Result<(), SignatureError> {
    signature::verify_base64(shopify_header(header, "hmac-sha256"), "X-Shopify-Hmac-Sha256", body, secrets)
}

/// Maps one verified delivery to a canonical event.
pub fn event<'h>(header: &impl Fn(&str) -> Option<&'h str>, body: &[u8]) -> Result<InboundEvent, SourceError> {
    let topic = shopify_header(header, "topic").ok_or_else(|| invalid("X-Shopify-Topic", "is missing"))?;
    let event_id = shopify_header(header, "event-id")
        .or_else(|| shopify_header(header, "webhook-id"))
        .ok_or_else(|| invalid("X-Shopify-Event-Id", "is missing (and so is X-Shopify-Webhook-Id)"))?;
    let event_id = ExternalId::new(event_id).map_err(|e| invalid("X-Shopify-Event-Id", e))?;
    let triggered_at = shopify_header(header, "triggered-at").and_then(|t| t.parse::<Timestamp>().ok());
    let source_version = shopify_header(header, "api-version").map(str::to_owned);
    let mut event = match topic {
        "orders/create" | "orders/updated" | "orders/cancelled" | "orders/paid" => {
            let order: ShopifyOrder = read_json(body)?;
            order_event(topic, order)?
        }
        "fulfillments/create" => {
            let f: ShopifyFulfillment = read_json(body)?;
            InboundEvent {
                order_ref: f.order_id.to_string(),
                occurred_at: f.created_at,
                fulfillment: Some(Fulfillment {
                    fulfillment_id: f.id,
                    lines: f
                        .line_items
                        .into_iter()
                        .map(|l| FulfillmentLine { sku: sku_or_line(&l.sku, &l.id), quantity: l.quantity })
                        .collect(),
                    carrier: f.tracking_company,
                    tracking_number: f.tracking_number,
                }),
                inbound_mapping: Some(FULFILLMENT.into()),
                ..blank(EventKind::FulfillmentCreated)
            }
        }
        "refunds/create" => {
            let r: ShopifyRefund = read_json(body)?;
            // Only money that moved: a refund transaction that failed or is still pending
            // refunds nothing (yet).
            let refunds: Vec<&Transaction> = r
                .transactions
                .iter()
                .filter(|t| t.kind == "refund" && t.status.as_deref().is_none_or(|s| s == "success"))
                .collect();
            let currency = refunds
                .first()
                .and_then(|t| t.currency)
                .ok_or_else(|| invalid("transactions", "no successful refund transaction with a currency"))?;
            let amount: Decimal = refunds.iter().map(|t| t.amount).sum();
            InboundEvent {
                order_ref: r.order_id.to_string(),
                occurred_at: r.created_at,
                refund: Some(Refund { refund_id: r.id, amount: Money::new(amount, currency), reason: r.note }),
                inbound_mapping: Some(REFUND.into()),
                ..blank(EventKind::RefundCreated)
            }
        }
        other => return Err(invalid("X-Shopify-Topic", format!("topic {other:?} is not one Handoff reads"))),
    };
    event.event_id = event_id;
    event.source_version = source_version;
    if let Some(at) = triggered_at {
        event.occurred_at = at;
    }
    Ok(event)
}

/// One order as the Admin REST API returns it (`orders.json`, `orders/{id}.json`) into the
/// event its webhook would have given, for the reconciliation poll: `order.cancelled` once
/// `cancelled_at` is set, `order.created` while it was never changed, else `order.updated`.
/// The id `poll:{id}@{updated_at}` names one state of the order, so overlapping polls dedup.
pub fn polled_order(order: serde_json::Value) -> Result<InboundEvent, SourceError> {
    let cancelled = order.get("cancelled_at").is_some_and(|c| !c.is_null());
    let o: ShopifyOrder = read_value(order)?;
    let updated_at = o.updated_at.ok_or_else(|| invalid("updated_at", "is missing"))?;
    let topic = if cancelled {
        "orders/cancelled"
    } else if o.created_at == Some(updated_at) {
        "orders/create"
    } else {
        "orders/updated"
    };
    let event_id = ExternalId::new(format!("poll:{}@{updated_at}", o.id)).map_err(|e| invalid("id", e))?;
    let mut event = order_event(topic, o)?;
    event.event_id = event_id;
    Ok(event)
}

fn blank(kind: EventKind) -> InboundEvent {
    InboundEvent::new(ExternalId::new("-").expect("a valid id"), kind, String::new(), Timestamp::UNIX_EPOCH)
}

fn order_event(topic: &str, o: ShopifyOrder) -> Result<InboundEvent, SourceError> {
    let kind = match topic {
        // An order that arrives already cancelled stays cancelled.
        "orders/create" | "orders/updated" if o.cancelled_at.is_some() => EventKind::OrderCancelled,
        "orders/create" => EventKind::OrderCreated,
        "orders/updated" => EventKind::OrderUpdated,
        "orders/cancelled" => EventKind::OrderCancelled,
        _ => EventKind::OrderPaid,
    };
    let order_ref = o.id.to_string();
    // updated_at only moves forward for one order: it orders Shopify's deliveries.
    let version = o.updated_at.map(|t| t.as_millisecond().max(0) as u64);
    let occurred_at = o.updated_at.or(o.created_at).unwrap_or(Timestamp::UNIX_EPOCH);
    let email = o.email.clone().filter(|e| !e.is_empty());
    let payment = (kind == EventKind::OrderPaid).then(|| Payment {
        payment_id: ExternalId::new(format!("shopify-order-{}", o.id)).expect("a valid id"),
        amount: Money::new(o.total_price, o.currency),
        email: email.clone(),
    });
    let (shipping, mapping) = match &o.total_shipping_price_set {
        Some(set) => (set.shop_money.amount, ORDER_PRICE_SET),
        None => (o.shipping_lines.iter().map(|s| s.price).sum(), ORDER_SHIPPING_LINES),
    };
    let customer = o.customer.as_ref();
    let name = customer
        .map(|c| [c.first_name.as_deref(), c.last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" "))
        .filter(|n| !n.is_empty());
    let lines: Vec<OrderLine> = o
        .line_items
        .iter()
        .map(|l| OrderLine {
            sku: sku_or_line(&l.sku, &l.id),
            quantity: l.quantity,
            unit_price: l.price,
            tax: l.tax_lines.iter().map(|t| t.price).sum(),
            discount: l.discount(),
        })
        .collect();
    let subtotal: Decimal = lines.iter().map(OrderLine::net).sum();
    let shipping_discount: Decimal =
        o.shipping_lines.iter().flat_map(|s| &s.discount_allocations).map(Allocation::amount).sum();
    let allocated = lines.iter().map(|l| l.discount).sum::<Decimal>() + shipping_discount;
    // `total_discounts` is every discount of the order; what no line or shipping line carries
    // (a legacy payload without allocations) is an order-level discount.
    let discount = o.total_discounts.unwrap_or_default() - allocated;
    if discount < Decimal::ZERO {
        return Err(invalid(
            "total_discounts",
            format!(
                "the allocations add up to {allocated}, more than total_discounts {}",
                o.total_discounts.unwrap_or_default()
            ),
        ));
    }
    let totals = Totals {
        shipping_discount,
        discount,
        tip: o.total_tip_received.unwrap_or_default(),
        duties: o.original_total_duties_set.as_ref().map_or(Decimal::ZERO, |d| d.shop_money.amount),
        taxes_included: o.taxes_included.unwrap_or(false),
        ..Totals::new(subtotal, o.total_tax.unwrap_or_default(), shipping, o.total_price)
    };
    // `total_price` is what Shopify charged: the parts must add up to it, or the order is not
    // read as something it is not.
    if totals.computed_total() != totals.total {
        return Err(invalid(
            "total_price",
            format!(
                "lines, shipping, discounts, tips, duties and tax add up to {}, not {}",
                totals.computed_total(),
                o.total_price
            ),
        ));
    }
    let order = CanonicalOrder {
        order_ref: order_ref.clone(),
        name: o.name,
        channel: Some("shopify".into()),
        customer: Customer {
            email: email.or_else(|| customer.and_then(|c| c.email.clone()).filter(|e| !e.is_empty())),
            name,
        },
        shipping_address: o.shipping_address.map(|a| Address {
            name: a.name,
            line1: a.address1.unwrap_or_default(),
            line2: a.address2.filter(|l| !l.is_empty()),
            city: a.city.unwrap_or_default(),
            region: a.province_code.or(a.province),
            postal_code: a.zip.unwrap_or_default(),
            country: a.country_code.unwrap_or_default(),
        }),
        lines,
        currency: o.currency,
        totals,
        placed_at: o.created_at.unwrap_or(occurred_at),
        payment_status: o.financial_status.as_deref().map(payment_status).transpose()?,
        cancelled_at: o.cancelled_at,
    };
    let inbound_mapping = Some(mapping.to_owned());
    Ok(InboundEvent { order_ref, occurred_at, version, order: Some(order), payment, inbound_mapping, ..blank(kind) })
}

/// Shopify's `financial_status`, one to one.
fn payment_status(s: &str) -> Result<PaymentStatus, SourceError> {
    Ok(match s {
        "pending" => PaymentStatus::Pending,
        "authorized" => PaymentStatus::Authorized,
        "partially_paid" => PaymentStatus::PartiallyPaid,
        "paid" => PaymentStatus::Paid,
        "partially_refunded" => PaymentStatus::PartiallyRefunded,
        "refunded" => PaymentStatus::Refunded,
        "voided" => PaymentStatus::Voided,
        other => {
            return Err(invalid("financial_status", format!("{other:?} is not one of Shopify's financial statuses")));
        }
    })
}

mod dec {
    //! Shopify money is a decimal string; older payloads sometimes omit it.
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer};

    pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.filter(|s| !s.is_empty()).map(|s| s.parse().map_err(serde::de::Error::custom)).transpose()
    }
}

#[derive(Deserialize)]
struct ShopifyOrder {
    id: ExternalId,
    name: Option<String>,
    email: Option<String>,
    currency: Currency,
    created_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "dec::opt")]
    total_tax: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str")]
    total_price: Decimal,
    #[serde(default, deserialize_with = "dec::opt")]
    total_discounts: Option<Decimal>,
    #[serde(default, deserialize_with = "dec::opt")]
    total_tip_received: Option<Decimal>,
    original_total_duties_set: Option<PriceSet>,
    taxes_included: Option<bool>,
    financial_status: Option<String>,
    cancelled_at: Option<Timestamp>,
    #[serde(default)]
    shipping_lines: Vec<ShippingLine>,
    total_shipping_price_set: Option<PriceSet>,
    line_items: Vec<LineItem>,
    customer: Option<ShopifyCustomer>,
    shipping_address: Option<ShopifyAddress>,
}

#[derive(Deserialize)]
struct ShippingLine {
    #[serde(with = "rust_decimal::serde::str")]
    price: Decimal,
    #[serde(default)]
    discount_allocations: Vec<Allocation>,
}

/// One discount application's share of a line or shipping line. Its amount is in shop money
/// (`amount`, and `amount_set.shop_money` where the payload has the set).
#[derive(Deserialize)]
struct Allocation {
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    amount_set: Option<PriceSet>,
}

impl Allocation {
    fn amount(&self) -> Decimal {
        self.amount_set.as_ref().map_or(self.amount, |set| set.shop_money.amount)
    }
}

#[derive(Deserialize)]
struct PriceSet {
    shop_money: ShopMoney,
}

#[derive(Deserialize)]
struct ShopMoney {
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
}

#[derive(Deserialize)]
struct LineItem {
    id: ExternalId,
    sku: Option<String>,
    quantity: u32,
    #[serde(default, with = "rust_decimal::serde::str")]
    price: Decimal,
    #[serde(default, deserialize_with = "dec::opt")]
    total_discount: Option<Decimal>,
    discount_allocations: Option<Vec<Allocation>>,
    #[serde(default)]
    tax_lines: Vec<TaxLine>,
}

impl LineItem {
    /// The line's discounts: its `discount_allocations` (the field Shopify documents), else
    /// the deprecated `total_discount` of payloads older than allocations.
    fn discount(&self) -> Decimal {
        match &self.discount_allocations {
            Some(allocations) => allocations.iter().map(Allocation::amount).sum(),
            None => self.total_discount.unwrap_or_default(),
        }
    }
}

/// A line without a SKU is still a line: it is named by its Shopify id.
fn sku_or_line(sku: &Option<String>, id: &ExternalId) -> String {
    sku.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| format!("shopify-line-{id}"))
}

#[derive(Deserialize)]
struct TaxLine {
    #[serde(with = "rust_decimal::serde::str")]
    price: Decimal,
}

#[derive(Deserialize)]
struct ShopifyCustomer {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Deserialize)]
struct ShopifyAddress {
    name: Option<String>,
    address1: Option<String>,
    address2: Option<String>,
    city: Option<String>,
    province: Option<String>,
    province_code: Option<String>,
    zip: Option<String>,
    country_code: Option<String>,
}

#[derive(Deserialize)]
struct ShopifyFulfillment {
    id: ExternalId,
    order_id: ExternalId,
    created_at: Timestamp,
    tracking_company: Option<String>,
    tracking_number: Option<String>,
    line_items: Vec<FulfilledItem>,
}

#[derive(Deserialize)]
struct FulfilledItem {
    id: ExternalId,
    sku: Option<String>,
    quantity: u32,
}

#[derive(Deserialize)]
struct ShopifyRefund {
    id: ExternalId,
    order_id: ExternalId,
    created_at: Timestamp,
    note: Option<String>,
    #[serde(default)]
    transactions: Vec<Transaction>,
}

#[derive(Deserialize)]
struct Transaction {
    #[serde(default)]
    kind: String,
    status: Option<String>,
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    currency: Option<Currency>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(updated_at: &str, cancelled_at: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "id": 450789469, "name": "#1001", "email": "bob@example.com", "currency": "USD",
            "created_at": "2026-07-01T10:00:00-05:00", "updated_at": updated_at, "cancelled_at": cancelled_at,
            "total_price": "20.00", "subtotal_price": "20.00",
            "line_items": [{"id": 11, "sku": "RED", "quantity": 2, "price": "10.00"}],
        })
    }

    #[test]
    fn a_polled_order_is_the_webhooks_order_with_a_stable_id() {
        let created = polled_order(order("2026-07-01T10:00:00-05:00", None)).unwrap();
        assert_eq!(created.kind, EventKind::OrderCreated);
        assert_eq!(created.event_id.to_string(), "poll:450789469@2026-07-01T15:00:00Z");
        assert_eq!(created.version, Some(1_782_918_000_000));
        let canonical = created.order.unwrap();
        assert_eq!(
            (canonical.order_ref.as_str(), canonical.lines[0].sku.as_str(), canonical.lines[0].quantity),
            ("450789469", "RED", 2)
        );

        let updated = polled_order(order_json_updated()).unwrap();
        assert_eq!(updated.kind, EventKind::OrderUpdated);
        let cancelled = polled_order(order("2026-07-03T10:00:00Z", Some("2026-07-03T10:00:00Z"))).unwrap();
        assert_eq!(cancelled.kind, EventKind::OrderCancelled);
        assert!(cancelled.order.is_some());
    }

    fn order_json_updated() -> serde_json::Value {
        order("2026-07-02T10:00:00Z", None)
    }
}
