//! Stripe events into the canonical model: `payment_intent.succeeded`, a paid
//! `checkout.session.completed` and `checkout.session.async_payment_succeeded` become a
//! captured payment of an order; a succeeded refund, seen as `refund.created`, `refund.updated`,
//! `charge.refund.updated` or `charge.refunded`, a refund of its own amount under its own id.
//! Both the older `charges` list and the newer `latest_charge` shapes map. The order is found
//! in `metadata.order_ref` / `metadata.order_id` or the session's `client_reference_id`; a
//! payment naming no order is kept under `stripe-payment:{id}` (a candidate Orphaned Payment).
//! A verified event that moves no money (a session completed unpaid, a refund still pending or
//! failed) is [`Read::NoMoney`]: answered 2xx, nothing booked.

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
    secrets: &[impl signature::SigningKey],
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
/// A charge whose refunds Stripe no longer lists (API 2022-11-15 and later): the refund is the
/// step of its cumulative `amount_refunded`.
pub const CHARGE_REFUNDED_STEP: &str = "stripe/charge@amount_refunded";
pub const REFUND: &str = "stripe/refund@rest";

/// What one verified Stripe event is to Handoff.
#[derive(Debug)]
pub enum Read {
    /// A payment or a refund to record.
    Event(Box<InboundEvent>),
    /// No money moved (yet), so nothing is booked; why, for the log.
    NoMoney(String),
}

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
    /// What the object's changed fields were before this event (update events only).
    #[serde(default)]
    previous_attributes: Value,
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
pub fn event(body: &[u8]) -> Result<Read, SourceError> {
    let envelope: Envelope = crate::http_json::read_json(body)?;
    let o = &envelope.data.object;
    let id_of = |field: &'static str| -> Result<String, SourceError> {
        text(o, &[field]).map(str::to_owned).ok_or_else(|| invalid("data.object.id", format!("{field} is missing")))
    };
    // Read where money is booked: an event that books none may carry no currency.
    let currency = || text(o, &["currency"]).ok_or_else(|| invalid("data.object.currency", "is missing"));
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
                amount: money(amount, currency()?)?,
                email,
            };
            (EventKind::OrderPaid, order_ref_of(o, &id), Some(payment), None, mapping)
        }
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            let session = id_of("id")?;
            // A delayed payment method (a bank debit) completes the session `unpaid`: the money
            // comes with `async_payment_succeeded`, or never (`async_payment_failed`).
            // `no_payment_required` moves no money. Sessions older than `payment_status` were
            // paid when they completed.
            match text(o, &["payment_status"]) {
                None | Some("paid") => {}
                Some(status) => {
                    return Ok(Read::NoMoney(format!(
                        "checkout session {session} is {status}: not a payment (yet); \
                         checkout.session.async_payment_succeeded books it when it is paid"
                    )));
                }
            }
            let id = text(o, &["payment_intent"]).map_or(session, str::to_owned);
            let amount = minor("amount_total").ok_or_else(|| invalid("data.object.amount_total", "is missing"))?;
            let email =
                text(o, &["customer_details", "email"]).or_else(|| text(o, &["customer_email"])).map(str::to_owned);
            let payment = Payment {
                payment_id: ExternalId::new(id.clone()).map_err(|e| invalid("id", e))?,
                amount: money(amount, currency()?)?,
                email,
            };
            (EventKind::OrderPaid, order_ref_of(o, &id), Some(payment), None, CHECKOUT_SESSION)
        }
        "checkout.session.async_payment_failed" => {
            return Ok(Read::NoMoney(format!("checkout session {}: its delayed payment failed", id_of("id")?)));
        }
        "charge.refunded" => {
            let charge = id_of("id")?;
            let payment_id = text(o, &["payment_intent"]).map_or(charge.clone(), str::to_owned);
            let (refund, mapping) = match charged_refund(o, &envelope.data.previous_attributes, &charge)? {
                Charged::Refund(refund, mapping) => (refund, mapping),
                Charged::Nothing(why) => return Ok(Read::NoMoney(why)),
            };
            let refund = Refund {
                refund_id: ExternalId::new(refund.id).map_err(|e| invalid("data.object.refunds", e))?,
                amount: money(refund.amount, currency()?)?,
                reason: None,
            };
            (EventKind::RefundCreated, order_ref_of(o, &payment_id), None, Some(refund), mapping)
        }
        "refund.created" | "refund.updated" | "charge.refund.updated" => {
            let id = id_of("id")?;
            let status = text(o, &["status"]).unwrap_or("unknown");
            if status != "succeeded" {
                return Ok(Read::NoMoney(format!("refund {id} is {status}: no money has moved back yet")));
            }
            let payment_id = text(o, &["payment_intent"]).or_else(|| text(o, &["charge"])).unwrap_or(&id).to_owned();
            let amount = minor("amount").ok_or_else(|| invalid("data.object.amount", "is missing"))?;
            let refund = Refund {
                refund_id: ExternalId::new(id).map_err(|e| invalid("data.object.id", e))?,
                amount: money(amount, currency()?)?,
                reason: text(o, &["reason"]).map(str::to_owned),
            };
            (EventKind::RefundCreated, order_ref_of(o, &payment_id), None, Some(refund), REFUND)
        }
        "refund.failed" => {
            return Ok(Read::NoMoney(format!("refund {} failed: no money moved back", id_of("id")?)));
        }
        other => return Err(invalid("type", format!("event type {other:?} is not one Handoff reads"))),
    };
    Ok(Read::Event(Box::new(InboundEvent {
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
    })))
}

/// One refund of a charge: its id and its own amount, in minor units.
struct ChargedRefund {
    id: String,
    amount: i64,
}

/// What a `charge.refunded` event books: a refund (and the reader that found it), or nothing,
/// and why.
enum Charged {
    Refund(ChargedRefund, &'static str),
    Nothing(String),
}

/// The refund a `charge.refunded` event is about, never the charge's cumulative
/// `amount_refunded`. Before API 2022-11-15 the charge lists its refunds (newest first): the
/// one not in `previous_attributes.refunds` (else the newest) is booked under its own id, if it
/// succeeded, so that `refund.*` events of it are the same refund. Since then the charge lists
/// none, and the refund is the step of `amount_refunded` from `previous_attributes`, under an
/// id of that step (`{charge}@amount_refunded:{after}`).
fn charged_refund(o: &Value, previous: &Value, charge: &str) -> Result<Charged, SourceError> {
    let listed = o["refunds"]["data"].as_array().filter(|l| !l.is_empty());
    if let Some(listed) = listed {
        let known: Vec<&str> =
            previous["refunds"]["data"].as_array().into_iter().flatten().filter_map(|r| text(r, &["id"])).collect();
        let new: Vec<&Value> = match previous["refunds"]["data"].is_array() {
            true => listed.iter().filter(|r| text(r, &["id"]).is_some_and(|id| !known.contains(&id))).collect(),
            false => listed.iter().take(1).collect(),
        };
        let refund = match new.as_slice() {
            [one] => *one,
            [] => return Ok(Charged::Nothing(format!("charge {charge}: no refund is new in this event"))),
            more => {
                return Err(invalid(
                    "data.object.refunds",
                    format!("{} refunds are new in one event; each is booked from its own event", more.len()),
                ));
            }
        };
        let id = text(refund, &["id"]).ok_or_else(|| invalid("data.object.refunds.data.id", "is missing"))?;
        let status = text(refund, &["status"]).unwrap_or("unknown");
        if status != "succeeded" {
            let why = format!("refund {id} of charge {charge} is {status}: no money has moved back yet");
            return Ok(Charged::Nothing(why));
        }
        let amount =
            refund["amount"].as_i64().ok_or_else(|| invalid("data.object.refunds.data.amount", "is missing"))?;
        return Ok(Charged::Refund(ChargedRefund { id: id.to_owned(), amount }, CHARGE_REFUNDED));
    }
    let after = o["amount_refunded"].as_i64().ok_or_else(|| invalid("data.object.amount_refunded", "is missing"))?;
    let before = previous["amount_refunded"].as_i64().ok_or_else(|| {
        invalid(
            "data.previous_attributes.amount_refunded",
            "is missing: this refund's own amount cannot be told from the cumulative amount_refunded",
        )
    })?;
    if after <= before {
        return Ok(Charged::Nothing(format!("charge {charge}: amount_refunded did not grow ({before} to {after})")));
    }
    let id = format!("{charge}@amount_refunded:{after}");
    Ok(Charged::Refund(ChargedRefund { id, amount: after - before }, CHARGE_REFUNDED_STEP))
}
