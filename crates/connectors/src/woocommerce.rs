//! WooCommerce webhooks into the canonical model: `order.created`, `order.updated` (a status
//! of `cancelled` is a cancellation) and `order.deleted`. The body is the REST v3 order; the
//! legacy v3 `{"order": ...}` wrapper maps too. WooCommerce signs the raw body
//! (`X-WC-Webhook-Signature`) and sends an unsigned form-encoded ping when a webhook is saved.

use handoff_model::{Address, CanonicalOrder, Customer, EventKind, ExternalId, InboundEvent, OrderLine, Totals};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::SourceError;
use crate::http_json::{currency, invalid};
use crate::signature::{self, SignatureError};

/// The activation ping (`webhook_id=12`), which carries no signature and no order.
pub fn is_ping(body: &[u8]) -> bool {
    body.starts_with(b"webhook_id=")
}

pub fn verify<'h>(
    header: &impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    secrets: &[String],
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

fn text(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

#[derive(Deserialize)]
struct Wrapped {
    order: Value,
}

/// Maps one verified delivery.
pub fn event<'h>(header: &impl Fn(&str) -> Option<&'h str>, body: &[u8]) -> Result<InboundEvent, SourceError> {
    let topic = header("x-wc-webhook-topic").ok_or_else(|| invalid("X-WC-Webhook-Topic", "is missing"))?;
    let mut o: Value = serde_json::from_slice(body)?;
    if let Ok(Wrapped { order }) = serde_json::from_value::<Wrapped>(o.clone()) {
        o = order;
    }
    let id = match &o["id"] {
        Value::Number(n) if n.is_u64() => n.to_string(),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => return Err(invalid("id", "is missing or not an integer")),
    };
    let modified =
        text(&o, "date_modified_gmt").or_else(|| text(&o, "updated_at")).and_then(|s| gmt(s.trim_end_matches('Z')));
    let created =
        text(&o, "date_created_gmt").or_else(|| text(&o, "created_at")).and_then(|s| gmt(s.trim_end_matches('Z')));
    let occurred_at = modified.or(created).unwrap_or(Timestamp::UNIX_EPOCH);
    let version = modified.map(|t| t.as_millisecond().max(0) as u64);
    // WooCommerce never retries, and each delivery has its own id: the order's state is the
    // dedup key, so the same state delivered twice has no second effect.
    let event_id = ExternalId::new(format!("{id}@{}", version.unwrap_or(0))).map_err(|e| invalid("id", e))?;
    let status = text(&o, "status").unwrap_or_default();
    let kind = match topic {
        "order.deleted" => EventKind::OrderCancelled,
        "order.created" | "order.updated" if status == "cancelled" => EventKind::OrderCancelled,
        "order.created" => EventKind::OrderCreated,
        "order.updated" => EventKind::OrderUpdated,
        other => return Err(invalid("X-WC-Webhook-Topic", format!("topic {other:?} is not one Handoff reads"))),
    };
    let order = match kind {
        EventKind::OrderCancelled => None,
        _ => Some(order(&id, &o, created.unwrap_or(occurred_at))?),
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
        source_version: header("x-wc-webhook-resource").map(|_| "wc/v3".to_owned()),
    })
}

fn order(id: &str, o: &Value, placed_at: Timestamp) -> Result<CanonicalOrder, SourceError> {
    let code = text(o, "currency").ok_or_else(|| invalid("currency", "is missing"))?;
    let currency = currency("currency", &code)?;
    let mut lines = Vec::new();
    for l in o["line_items"].as_array().into_iter().flatten() {
        let quantity =
            l["quantity"].as_u64().ok_or_else(|| invalid("line_items.quantity", "is not a whole number"))? as u32;
        let subtotal = dec(l, "subtotal")?;
        let total = dec(l, "total")?;
        let sku = text(l, "sku").unwrap_or_else(|| format!("wc-product-{}", l["product_id"]));
        let unit_price = if quantity == 0 { Decimal::ZERO } else { subtotal / Decimal::from(quantity) };
        lines.push(OrderLine { sku, quantity, unit_price, tax: dec(l, "total_tax")?, discount: subtotal - total });
    }
    let billing = &o["billing"];
    let shipping = &o["shipping"];
    let name =
        [text(billing, "first_name"), text(billing, "last_name")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let subtotal: Decimal = lines.iter().map(|l| l.unit_price * Decimal::from(l.quantity) - l.discount).sum();
    Ok(CanonicalOrder {
        order_ref: id.to_owned(),
        name: text(o, "number"),
        channel: Some("woocommerce".into()),
        customer: Customer { email: text(billing, "email"), name: Some(name).filter(|n| !n.is_empty()) },
        shipping_address: text(shipping, "address_1").map(|line1| Address {
            name: Some(
                [text(shipping, "first_name"), text(shipping, "last_name")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            line1,
            line2: text(shipping, "address_2"),
            city: text(shipping, "city").unwrap_or_default(),
            region: text(shipping, "state"),
            postal_code: text(shipping, "postcode").unwrap_or_default(),
            country: text(shipping, "country").unwrap_or_default(),
        }),
        lines,
        currency,
        totals: Totals {
            subtotal,
            tax: dec(o, "total_tax")?,
            shipping: dec(o, "shipping_total")?,
            discount: Decimal::ZERO,
            total: dec(o, "total")?,
        },
        placed_at,
    })
}
