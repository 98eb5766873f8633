//! The write path's money invariant: an ERP payload adds up to the channel's order, to the
//! currency's minor unit, before it is sent. Each target's payload is summed the way that ERP
//! sums it (NetSuite: line amounts plus shipping cost; Odoo: each line's
//! `price_unit x quantity x (1 - discount%)` rounded to the currency), independently of how the
//! mapping built it, so a mapping that drops, doubles or rounds away money is caught here.

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use crate::prepare::{TAX_LINE, decimal, tax_mode};

/// Why a payload's money is refused: always the field `totals`.
pub(crate) struct Mismatch(pub String);

/// What an order's ERP payload must add up to: what the channel charged, less the tax when the
/// ERP computes tax itself.
fn expected(command: &Value, settings: &Value) -> Option<Decimal> {
    let totals = &command["order"]["totals"];
    let total = decimal(&totals["total"])?;
    let tax = decimal(&totals["tax"]).unwrap_or_default();
    Some(if tax_mode(settings) == TAX_LINE { total } else { total - tax })
}

fn number(v: &Value, what: &str) -> Result<Decimal, Mismatch> {
    decimal(v).ok_or_else(|| Mismatch(format!("{what} is not a number: {v}")))
}

/// What the target's payload adds up to, summed as that target sums it; `None` for a payload
/// this module does not know (a resource that carries no order money).
fn payload_total(target: &str, resource: &str, payload: &Value, dp: u32) -> Option<Result<Decimal, Mismatch>> {
    let lines = |key: &str| payload.pointer(key).and_then(Value::as_array).cloned().unwrap_or_default();
    Some(match (target, resource) {
        ("netsuite", "sales_order") => (|| {
            let mut sum = number(payload.get("shippingCost").unwrap_or(&Value::from(0)), "shippingCost")?;
            for line in lines("/item/items") {
                sum += number(&line["amount"], "item.items.amount")?;
            }
            Ok(sum)
        })(),
        ("odoo", "sale_order") => (|| {
            let mut sum = Decimal::ZERO;
            for line in lines("/order_line") {
                let price = number(&line["price_unit"], "order_line.price_unit")?;
                let quantity = number(&line["product_uom_qty"], "order_line.product_uom_qty")?;
                let discount = line.get("discount").map_or(Ok(Decimal::ZERO), |d| number(d, "order_line.discount"))?;
                let subtotal = price * quantity * (Decimal::ONE - discount / Decimal::ONE_HUNDRED);
                sum += subtotal.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
            }
            Ok(sum)
        })(),
        _ => return None,
    })
}

/// Checks an order command's payload for `target`: `Ok` when it adds up to the order (or
/// carries no order money), else why not.
pub(crate) fn check(
    target: &str,
    resource: &str,
    command: &Value,
    settings: &Value,
    payload: &Value,
) -> Result<(), Mismatch> {
    let Some(expected) = expected(command, settings) else { return Ok(()) };
    let dp = command["order"]["currency"]
        .as_str()
        .and_then(|c| c.parse::<handoff_model::Currency>().ok())
        .map_or(2, |c| c.exponent());
    let Some(sum) = payload_total(target, resource, payload, dp) else { return Ok(()) };
    let sum = sum?;
    let round = |d: Decimal| d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    if round(sum) != round(expected) {
        let what = if tax_mode(settings) == TAX_LINE { "the order's total" } else { "the order's total less its tax" };
        return Err(Mismatch(format!("the {target} payload adds up to {}; {what} is {}", round(sum), round(expected))));
    }
    Ok(())
}
