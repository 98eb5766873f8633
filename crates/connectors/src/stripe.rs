//! Stripe events into the canonical model: `payment_intent.succeeded` and
//! `checkout.session.completed` become a captured payment of an order, `charge.refunded` a
//! refund. Both the older `charges` list and the newer `latest_charge` shapes map. The order
//! is found in `metadata.order_ref` / `metadata.order_id` or the session's
//! `client_reference_id`; a payment naming no order is kept under `stripe-payment:{id}` (a
//! candidate Orphaned Payment).

use handoff_model::{Currency, EventKind, ExternalId, InboundEvent, Money, Payment, Refund};
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::SourceError;
use crate::http_json::{currency as parse_currency, invalid};
use crate::signature::{self, SignatureError};

/// `Stripe-Signature: t=...,v1=...` over `"t." + body`, within `tolerance` of `now`.
pub fn verify<'h>(
    header: &impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    secrets: &[String],
    now: Timestamp,
    tolerance: SignedDuration,
) -> Result<(), SignatureError> {
    signature::verify_timestamped(header("stripe-signature"), "Stripe-Signature", body, secrets, now, tolerance)
}

/// Currencies Stripe counts in whole units (its "zero-decimal" list); the rest in hundredths,
/// except the three-decimal ones.
fn minor_unit_exponent(currency: Currency) -> u32 {
    const ZERO: [&str; 16] = [
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    ];
    const THREE: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];
    if ZERO.contains(&currency.as_str()) {
        0
    } else if THREE.contains(&currency.as_str()) {
        3
    } else {
        2
    }
}

fn money(minor: i64, currency: &str) -> Result<Money, SourceError> {
    let currency = parse_currency("currency", currency)?;
    Ok(Money::new(Decimal::new(minor, minor_unit_exponent(currency)), currency))
}

/// The inbound mappings of this connector, stamped on each event. A PaymentIntent of the older
/// shape lists its `charges` (the email may come from the first one's billing details); the
/// newer one names only its `latest_charge` (the email is `receipt_email`). Checkout sessions
/// and refunded charges have one reader each.
pub const PAYMENT_INTENT_CHARGES: &str = "stripe/payment_intent@charges";
pub const PAYMENT_INTENT_LATEST_CHARGE: &str = "stripe/payment_intent@latest_charge";
pub const CHECKOUT_SESSION: &str = "stripe/checkout_session@rest";
pub const CHARGE_REFUNDED: &str = "stripe/charge@rest";

#[derive(Deserialize)]
struct Envelope {
    id: ExternalId,
    #[serde(rename = "type")]
    kind: String,
    api_version: Option<String>,
    created: i64,
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    object: Value,
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn order_ref_of(object: &Value, payment_id: &str) -> String {
    text(object, &["metadata", "order_ref"])
        .or_else(|| text(object, &["metadata", "order_id"]))
        .or_else(|| text(object, &["client_reference_id"]))
        .map_or_else(|| format!("stripe-payment:{payment_id}"), str::to_owned)
}

/// Maps one verified Stripe event.
pub fn event(body: &[u8]) -> Result<InboundEvent, SourceError> {
    let envelope: Envelope = crate::http_json::read_json(body)?;
    let o = &envelope.data.object;
    let id_of = |field: &'static str| -> Result<String, SourceError> {
        text(o, &[field]).map(str::to_owned).ok_or_else(|| invalid("data.object.id", format!("{field} is missing")))
    };
    let currency = text(o, &["currency"]).ok_or_else(|| invalid("data.object.currency", "is missing"))?;
    let minor = |field: &str| o.get(field).and_then(Value::as_i64);
    let occurred_at = Timestamp::from_second(envelope.created).map_err(|e| invalid("created", e.to_string()))?;
    let (kind, order_ref, payment, refund, mapping) = match envelope.kind.as_str() {
        "payment_intent.succeeded" => {
            let id = id_of("id")?;
            let amount = minor("amount_received")
                .or(minor("amount"))
                .ok_or_else(|| invalid("data.object.amount", "is missing"))?;
            // Older API versions list the charges; newer ones name only the latest charge.
            let charges = o.get("charges").filter(|c| c.is_object());
            let email = text(o, &["receipt_email"])
                .or_else(|| charges?["data"].get(0).and_then(|c| text(c, &["billing_details", "email"])))
                .map(str::to_owned);
            let mapping = if charges.is_some() { PAYMENT_INTENT_CHARGES } else { PAYMENT_INTENT_LATEST_CHARGE };
            let payment = Payment {
                payment_id: ExternalId::new(id.clone()).map_err(|e| invalid("id", e))?,
                amount: money(amount, currency)?,
                email,
            };
            (EventKind::OrderPaid, order_ref_of(o, &id), Some(payment), None, mapping)
        }
        "checkout.session.completed" => {
            let session = id_of("id")?;
            let id = text(o, &["payment_intent"]).map_or(session, str::to_owned);
            let amount = minor("amount_total").ok_or_else(|| invalid("data.object.amount_total", "is missing"))?;
            let email =
                text(o, &["customer_details", "email"]).or_else(|| text(o, &["customer_email"])).map(str::to_owned);
            let payment = Payment {
                payment_id: ExternalId::new(id.clone()).map_err(|e| invalid("id", e))?,
                amount: money(amount, currency)?,
                email,
            };
            (EventKind::OrderPaid, order_ref_of(o, &id), Some(payment), None, CHECKOUT_SESSION)
        }
        "charge.refunded" => {
            let charge = id_of("id")?;
            let payment_id = text(o, &["payment_intent"]).map_or(charge.clone(), str::to_owned);
            let amount =
                minor("amount_refunded").ok_or_else(|| invalid("data.object.amount_refunded", "is missing"))?;
            let refund_id = o["refunds"]["data"].get(0).and_then(|r| text(r, &["id"])).map_or(charge, str::to_owned);
            let refund = Refund {
                refund_id: ExternalId::new(refund_id).map_err(|e| invalid("refunds", e))?,
                amount: money(amount, currency)?,
                reason: None,
            };
            (EventKind::RefundCreated, order_ref_of(o, &payment_id), None, Some(refund), CHARGE_REFUNDED)
        }
        other => return Err(invalid("type", format!("event type {other:?} is not one Handoff reads"))),
    };
    Ok(InboundEvent {
        event_id: envelope.id,
        kind,
        order_ref,
        occurred_at,
        version: None,
        order: None,
        fulfillment: None,
        refund,
        payment,
        source_version: envelope.api_version,
        inbound_mapping: Some(mapping.to_owned()),
    })
}
