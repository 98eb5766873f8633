//! WooCommerce webhooks into the canonical model: `order.created`, `order.updated` (a status
//! of `cancelled` is a cancellation) and `order.deleted`. The body is the REST v3 order; the
//! legacy v3 `{"order": ...}` wrapper maps too, with its own field names. WooCommerce signs the
//! raw body (`X-WC-Webhook-Signature`) and sends an unsigned form-encoded ping when a webhook is
//! saved. The money is read as WooCommerce documents it (see `docs/connectors/woocommerce.md`).

use handoff_engine::BoxFuture;
use handoff_engine::poll::{Cursor, Page, PollError, Poller};
use handoff_engine::quarantine::Unmapped;
use handoff_model::{CanonicalOrder, Customer, EventKind, ExternalId, InboundEvent, OrderLine, PaymentStatus, Totals};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::SourceError;
use crate::fields::{self, AddressKeys, text};
use crate::http_json::{currency, invalid};

const ADDRESS: AddressKeys = AddressKeys {
    line1: "address_1",
    line2: "address_2",
    city: "city",
    region: "state",
    postal_code: "postcode",
    country: "country",
};
use crate::signature::{self, SignatureError};

/// The delivery headers [`event`] reads: all of a request kept beside a body held in
/// quarantine, to read it again.
pub(crate) const READ_HEADERS: [&str; 2] = ["x-wc-webhook-topic", "x-wc-webhook-resource"];

/// The REST API version of a v3 order, webhook or poll.
pub(crate) const WC_V3: &str = "wc/v3";

/// The activation ping (`webhook_id=12`), which carries no signature and no order.
pub fn is_ping(body: &[u8]) -> bool {
    body.starts_with(b"webhook_id=")
}

pub fn verify<'h>(
    header: &impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    secrets: &[impl signature::SigningKey],
) -> Result<(), SignatureError> {
    signature::verify_base64(header("x-wc-webhook-signature"), "X-WC-Webhook-Signature", body, secrets)
}

/// WooCommerce's dates carry no zone; the `_gmt` ones are UTC.
fn gmt(s: &str) -> Option<Timestamp> {
    s.parse::<jiff::civil::DateTime>().ok()?.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

fn dec(v: &Value, field: &'static str) -> Result<Decimal, SourceError> {
    match v.get(field) {
        Some(Value::String(s)) if !s.is_empty() => {
            s.parse().map_err(|_| invalid(field, format!("{s:?} is not a decimal")))
        }
        None | Some(Value::Null) => Ok(Decimal::ZERO),
        Some(Value::String(_)) => Ok(Decimal::ZERO),
        Some(other) => Err(invalid(field, format!("{other} is not a decimal string"))),
    }
}

/// The inbound mappings of this connector: a wp-api v3 order (flat), or a legacy REST API v3
/// order (`{"order": {...}}`, read after unwrapping).
pub const ORDER_WC_V3: &str = "woocommerce/order@wc_v3";
pub const ORDER_LEGACY_V3: &str = "woocommerce/order@legacy_v3";

/// Where each order shape keeps what the reader needs: the legacy v3 API names its fields
/// differently, and has no `prices_include_tax`, `discount_tax`, `date_paid` or `refunds`.
struct Shape {
    number: &'static str,
    billing: &'static str,
    shipping: &'static str,
    shipping_total: &'static str,
    discount_total: &'static str,
}

const WC_V3_SHAPE: Shape = Shape {
    number: "number",
    billing: "billing",
    shipping: "shipping",
    shipping_total: "shipping_total",
    discount_total: "discount_total",
};

const LEGACY_V3_SHAPE: Shape = Shape {
    number: "order_number",
    billing: "billing_address",
    shipping: "shipping_address",
    shipping_total: "total_shipping",
    discount_total: "total_discount",
};

#[derive(Deserialize)]
struct Wrapped {
    order: Value,
}

/// Maps one verified delivery.
pub fn event<'h>(header: &impl Fn(&str) -> Option<&'h str>, body: &[u8]) -> Result<InboundEvent, SourceError> {
    let topic = header("x-wc-webhook-topic").ok_or_else(|| invalid("X-WC-Webhook-Topic", "is missing"))?;
    let mut o: Value = serde_json::from_slice(body)?;
    let mut mapping = ORDER_WC_V3;
    if let Ok(Wrapped { order }) = serde_json::from_value::<Wrapped>(o.clone()) {
        o = order;
        mapping = ORDER_LEGACY_V3;
    }
    let status = text(&o, "status").unwrap_or_default();
    let kind = match topic {
        "order.deleted" => EventKind::OrderCancelled,
        // An order created already cancelled stays cancelled.
        "order.created" | "order.updated" if status == "cancelled" => EventKind::OrderCancelled,
        "order.created" => EventKind::OrderCreated,
        "order.updated" => EventKind::OrderUpdated,
        other => return Err(invalid("X-WC-Webhook-Topic", format!("topic {other:?} is not one Handoff reads"))),
    };
    let source_version = header("x-wc-webhook-resource").map(|_| WC_V3.to_owned());
    order_event(kind, &o, source_version, mapping)
}

/// One order as `GET /wp-json/wc/v3/orders` lists it into the event its webhook would have
/// given, for the poll that closes WooCommerce's gap (it never retries a webhook): status
/// `cancelled` or `trash` is a cancellation; an order never modified since it was created is
/// `order.created`. Its id is the webhook's (`{id}@{modified ms}`); the poll's cursor adds the
/// content's fingerprint, and intake finds a change seen both ways stale by version and content.
pub fn polled_order(o: &Value) -> Result<InboundEvent, SourceError> {
    let status = text(o, "status").unwrap_or_default();
    let kind = if status == "cancelled" || status == "trash" {
        EventKind::OrderCancelled
    } else if text(o, "date_modified_gmt").is_none() || text(o, "date_modified_gmt") == text(o, "date_created_gmt") {
        EventKind::OrderCreated
    } else {
        EventKind::OrderUpdated
    };
    order_event(kind, o, Some(WC_V3.to_owned()), ORDER_WC_V3)
}

fn order_event(
    kind: EventKind,
    o: &Value,
    source_version: Option<String>,
    mapping: &str,
) -> Result<InboundEvent, SourceError> {
    let id = match &o["id"] {
        Value::Number(n) if n.is_u64() => n.to_string(),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => return Err(invalid("id", "is missing or not an integer")),
    };
    let modified =
        text(o, "date_modified_gmt").or_else(|| text(o, "updated_at")).and_then(|s| gmt(s.trim_end_matches('Z')));
    let created =
        text(o, "date_created_gmt").or_else(|| text(o, "created_at")).and_then(|s| gmt(s.trim_end_matches('Z')));
    let occurred_at = modified.or(created).unwrap_or(Timestamp::UNIX_EPOCH);
    let version = modified.map(|t| t.as_millisecond().max(0) as u64);
    // WooCommerce never retries, and each delivery has its own id: the order's state is the
    // dedup key, so the same state delivered twice has no second effect.
    let event_id = ExternalId::new(format!("{id}@{}", version.unwrap_or(0))).map_err(|e| invalid("id", e))?;
    let shape = if mapping == ORDER_LEGACY_V3 { &LEGACY_V3_SHAPE } else { &WC_V3_SHAPE };
    // `order.deleted` carries only the id; any other body is the whole order, cancelled or not.
    let order = match kind {
        EventKind::OrderCancelled if o.get("line_items").is_none() => None,
        _ => {
            let mut order = order(&id, o, shape, created.unwrap_or(occurred_at))?;
            // WooCommerce keeps no cancellation date: the change that made the order
            // cancelled is its last modification.
            order.cancelled_at = (kind == EventKind::OrderCancelled).then_some(occurred_at);
            Some(order)
        }
    };
    Ok(InboundEvent {
        event_id,
        kind,
        order_ref: id,
        occurred_at,
        version,
        order,
        fulfillment: None,
        refund: None,
        payment: None,
        source_version,
        inbound_mapping: Some(mapping.to_owned()),
    })
}

/// The order's money as WooCommerce documents it: a line's `subtotal` is before discounts and
/// its `total` after, both without tax (`subtotal_tax`, `total_tax` beside them); shipping
/// lines and fee lines (signed: a negative fee lowers the total) likewise; `total` is the
/// grand total charged. With `prices_include_tax` the canonical prices carry their tax, as the
/// customer saw them. The parts must add up to `total`, or the order is refused naming it.
fn order(id: &str, o: &Value, shape: &Shape, placed_at: Timestamp) -> Result<CanonicalOrder, SourceError> {
    let code = text(o, "currency").ok_or_else(|| invalid("currency", "is missing"))?;
    let currency = currency("currency", &code)?;
    let taxes_included = o["prices_include_tax"].as_bool().unwrap_or(false);
    // A price with its tax when the shop's prices include tax, else without.
    let gross = |v: &Value, amount: &'static str, tax: &'static str| -> Result<Decimal, SourceError> {
        Ok(dec(v, amount)? + if taxes_included { dec(v, tax)? } else { Decimal::ZERO })
    };
    let items = o["line_items"].as_array().filter(|l| !l.is_empty());
    let items = items.ok_or_else(|| invalid("line_items", "an order needs at least one line"))?;
    let (mut lines, mut allocated) = (Vec::with_capacity(items.len()), Decimal::ZERO);
    for l in items {
        let quantity = l["quantity"].as_u64().and_then(|q| u32::try_from(q).ok());
        let quantity = quantity.ok_or_else(|| invalid("line_items.quantity", "is not a whole number"))?;
        let before = gross(l, "subtotal", "subtotal_tax")?;
        let after = gross(l, "total", "total_tax")?;
        let (unit_price, rounding) = fields::unit_price(before, quantity, "line_items.subtotal")?;
        allocated += before - after;
        let sku = text(l, "sku").unwrap_or_else(|| format!("wc-product-{}", l["product_id"]));
        lines.push(OrderLine {
            sku,
            quantity,
            unit_price,
            tax: dec(l, "total_tax")?,
            discount: before - after + rounding,
        });
    }
    let mut fees = Decimal::ZERO;
    for f in o["fee_lines"].as_array().into_iter().flatten() {
        fees += gross(f, "total", "total_tax")?;
    }
    // `discount_total` is every discount of the order, the lines' included; what no line carries
    // (an order-level discount of an old order) is the order's own.
    let discount_total = gross(o, shape.discount_total, "discount_tax")?;
    let discount = discount_total - allocated;
    if discount < Decimal::ZERO {
        return Err(invalid(
            shape.discount_total,
            format!("the lines' discounts add up to {allocated}, more than {discount_total}"),
        ));
    }
    let shipping = gross(o, shape.shipping_total, "shipping_tax")?;
    let totals = Totals {
        discount,
        fees,
        taxes_included,
        ..Totals::new(lines.iter().map(OrderLine::net).sum(), dec(o, "total_tax")?, shipping, dec(o, "total")?)
    };
    if totals.computed_total() != totals.total {
        return Err(invalid(
            "total",
            format!(
                "lines, shipping, fees, discounts and tax add up to {}, not {}",
                totals.computed_total(),
                totals.total
            ),
        ));
    }
    let billing = &o[shape.billing];
    let shipping = &o[shape.shipping];
    let full_name =
        |v: &Value| [text(v, "first_name"), text(v, "last_name")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let name = full_name(billing);
    let number = match &o[shape.number] {
        Value::Number(n) => Some(n.to_string()),
        other => other.as_str().filter(|s| !s.is_empty()).map(str::to_owned),
    };
    Ok(CanonicalOrder {
        order_ref: id.to_owned(),
        name: number,
        channel: Some("woocommerce".into()),
        customer: Customer {
            email: text(billing, "email").or_else(|| text(&o["customer"], "email")),
            name: Some(name).filter(|n| !n.is_empty()),
        },
        shipping_address: fields::address(shipping, &ADDRESS, Some(full_name(shipping))),
        lines,
        currency,
        totals,
        placed_at,
        payment_status: payment_status(o)?,
        cancelled_at: None,
    })
}

/// WooCommerce's order `status` as a payment status: `pending`, `on-hold` (awaiting payment)
/// and `failed` hold no money; `processing` and `completed` are paid; `refunded` is refunded.
/// A cancelled or trashed order, or one in a status a plugin added, is paid only if it has a
/// `date_paid` (legacy: `payment_details.paid`). A paid order with `refunds` (their `total` is
/// negative in the order) is partly refunded, or refunded when they cover its total.
fn payment_status(o: &Value) -> Result<Option<PaymentStatus>, SourceError> {
    let paid = text(o, "date_paid_gmt").is_some() || o["payment_details"]["paid"].as_bool() == Some(true);
    let status = match text(o, "status").unwrap_or_default().as_str() {
        "pending" | "on-hold" | "failed" | "checkout-draft" => PaymentStatus::Pending,
        "processing" | "completed" => PaymentStatus::Paid,
        "refunded" => return Ok(Some(PaymentStatus::Refunded)),
        _ if paid => PaymentStatus::Paid,
        _ => return Ok(None),
    };
    let mut refunded = Decimal::ZERO;
    for r in o["refunds"].as_array().into_iter().flatten() {
        refunded += dec(r, "total")?.abs();
    }
    Ok(Some(match status {
        PaymentStatus::Paid if refunded >= dec(o, "total")? && !refunded.is_zero() => PaymentStatus::Refunded,
        PaymentStatus::Paid if !refunded.is_zero() => PaymentStatus::PartiallyRefunded,
        other => other,
    }))
}

/// Polls `GET /wp-json/wc/v3/orders` (HTTP basic auth with the REST API key): WooCommerce
/// drops a webhook its endpoint did not take, this finds the change anyway. Keyset pages of
/// the engine's [`Cursor`]: `modified_after` one second before the page's second (the bound is
/// exclusive and in seconds), oldest change first, `exclude` naming the orders already read
/// at that second; never `page=2`, which slips when an order is edited between two reads.
pub struct OrdersPoller {
    name: String,
    url: String,
    consumer_key: String,
    consumer_secret: String,
    client: reqwest::Client,
    page_size: u32,
    initial: jiff::SignedDuration,
    lookback: jiff::SignedDuration,
}

impl OrdersPoller {
    pub fn new(name: &str, system: &handoff_contract::System) -> Result<Self, crate::ConfigError> {
        let base_url = system.base_url.as_deref().ok_or_else(|| crate::ConfigError {
            key: format!("systems.{name}.base_url"),
            message: "polling WooCommerce needs the store's URL".into(),
        })?;
        let settings = system.poll.clone().unwrap_or_default();
        let client = crate::outbound::Outbound::of(system)
            .client()
            .timeout(system.timeout.unsigned_abs())
            .build()
            .map_err(|e| crate::ConfigError { key: format!("systems.{name}"), message: e.to_string() })?;
        Ok(OrdersPoller {
            name: name.to_owned(),
            url: format!("{}/wp-json/wc/v3/orders", base_url.trim_end_matches('/')),
            consumer_key: system.credential(name, "consumer_key")?.to_owned(),
            consumer_secret: system.credential(name, "consumer_secret")?.to_owned(),
            client,
            page_size: settings.page_size.clamp(1, 100),
            initial: settings.initial,
            lookback: settings.lookback,
        })
    }

    async fn page(&self, stored: Option<&str>, now: Timestamp) -> Result<Page, PollError> {
        let mut cursor = Cursor::resume(stored, now, self.initial)?;
        // WooCommerce reads dates without a zone (dates_are_gmt: UTC), after the one given.
        let after = (cursor.from() - jiff::SignedDuration::from_secs(1)).to_zoned(jiff::tz::TimeZone::UTC);
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("modified_after", &after.strftime("%Y-%m-%dT%H:%M:%S").to_string())
                .append_pair("dates_are_gmt", "true")
                .append_pair("per_page", &self.page_size.to_string())
                .append_pair("orderby", "modified")
                .append_pair("order", "asc");
            if !cursor.excluded().is_empty() {
                query.append_pair("exclude", &cursor.excluded().join(","));
            }
            query.finish()
        };
        let response = self
            .client
            .get(format!("{}?{query}", self.url))
            .basic_auth(&self.consumer_key, Some(&self.consumer_secret))
            .send()
            .await
            .map_err(|e| PollError::new(format!("GET orders: {e}")))?;
        let status = response.status();
        let retry_after = crate::http_json::retry_after(response.headers());
        let body = response.bytes().await.map_err(|e| PollError::new(format!("GET orders: {e}")))?;
        if !status.is_success() {
            let message = String::from_utf8_lossy(&body).chars().take(300).collect::<String>();
            return Err(PollError { reason: format!("GET orders: {status}: {message}"), retry_after });
        }
        let orders: Vec<Value> =
            serde_json::from_slice(&body).map_err(|e| PollError::new(format!("GET orders: not a list: {e}")))?;
        let mut read = crate::held::PageRead::new(&self.name, now);
        let mut listed = Vec::with_capacity(orders.len());
        for o in &orders {
            let id = match &o["id"] {
                Value::Number(n) => n.to_string(),
                other => return Err(PollError::new(format!("GET orders: an order with the id {other}"))),
            };
            let modified = text(o, "date_modified_gmt").and_then(|m| gmt(m.trim_end_matches('Z')));
            let Some(modified) = modified else {
                return Err(PollError::new(format!("GET orders: order {id} has no date_modified_gmt")));
            };
            listed.push((id.clone(), modified));
            let event = polled_order(o).map(|e| (e, o.to_string())).map_err(Unmapped::from);
            // One order Handoff cannot read must not stop the others from coming in: it is
            // held, with a Transform Mismatch, until a fixed reader replays it.
            let hold = |unmapped| crate::held::record(&self.name, o, Some(id.clone()), Some(WC_V3), unmapped, now);
            read.take(&mut cursor, &id, Some(modified), event, hold)?;
        }
        let full = orders.len() >= self.page_size as usize;
        let more = cursor.keyset_page(&listed, full, self.lookback)?;
        read.page(&cursor, more)
    }
}

impl Poller for OrdersPoller {
    fn poll<'a>(&'a self, cursor: Option<&'a str>, now: Timestamp) -> BoxFuture<'a, Result<Page, PollError>> {
        Box::pin(self.page(cursor, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: &str, modified: &str) -> Value {
        serde_json::json!({
            "id": 727, "status": status, "currency": "EUR", "total": "20.00",
            "date_created_gmt": "2026-11-01T10:00:00", "date_modified_gmt": modified,
            "line_items": [{"sku": "MUG", "quantity": 2, "subtotal": "20.00", "total": "20.00"}],
        })
    }

    #[test]
    fn a_polled_order_is_its_webhooks_event() {
        let created = polled_order(&order("processing", "2026-11-01T10:00:00")).unwrap();
        assert_eq!((created.kind, created.event_id.to_string()), (EventKind::OrderCreated, "727@1793527200000".into()));
        assert_eq!(created.order.unwrap().lines[0].quantity, 2);
        let updated = polled_order(&order("completed", "2026-11-02T10:00:00")).unwrap();
        assert_eq!(updated.kind, EventKind::OrderUpdated);
        for status in ["cancelled", "trash"] {
            let cancelled = polled_order(&order(status, "2026-11-03T10:00:00")).unwrap();
            assert_eq!(cancelled.kind, EventKind::OrderCancelled);
            assert_eq!(cancelled.order.unwrap().cancelled_at, Some(cancelled.occurred_at), "kept cancelled");
        }
    }
}
