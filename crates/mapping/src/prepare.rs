//! What a mapping may not compute itself: money arithmetic, done here with decimals and handed
//! to the mapping as decimal strings.
//!
//! `prepare` adds `erp` to the command: what an ERP order must carry so that it adds up to
//! what the channel charged, to the currency's minor unit.
//! - `lines`: each order line net of its discounts (and of its tax when the channel's prices
//!   include tax), as `quantity` x `unit_price` = `amount` exactly. A net that does not divide
//!   by the quantity in the currency's minor unit is split in two lines of one SKU (all units
//!   but one at the rounded-down price, the last one at the rest), so no rounding loses a cent.
//! - `shipping`: shipping net of its discounts (and of its tax when included).
//! - `charges`: the rest of the money as lines of their own items (`settings.charge_items`):
//!   an order-level discount (negative), tips, duties, fees, and the tax itself when
//!   `settings.tax` is `"line"`. With `"erp"` (the default) the ERP computes tax itself.

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

/// How tax reaches the ERP: computed by the ERP from what it is sent (`erp`), or sent as a
/// line of the channel's own tax (`line`).
pub const TAX_ERP: &str = "erp";
pub const TAX_LINE: &str = "line";

/// The items that carry an order's charges when the contract names none.
pub const DEFAULT_CHARGE_ITEMS: [(&str, &str); 6] = [
    ("shipping", "HANDOFF-SHIPPING"),
    ("discount", "HANDOFF-DISCOUNT"),
    ("tip", "HANDOFF-TIP"),
    ("duties", "HANDOFF-DUTIES"),
    ("fees", "HANDOFF-FEES"),
    ("tax", "HANDOFF-TAX"),
];

pub(crate) fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

fn text(d: Decimal) -> Value {
    Value::String(d.normalize().to_string())
}

/// Money for the ERP: every digit kept, and at least the currency's minor unit (`4.90`, `20.00`).
fn money(d: Decimal, dp: u32) -> Value {
    let mut d = d.normalize();
    if d.scale() < dp {
        d.rescale(dp);
    }
    Value::String(d.to_string())
}

/// The tax mode a target's settings ask for.
pub(crate) fn tax_mode(settings: &Value) -> &str {
    settings.get("tax").and_then(Value::as_str).unwrap_or(TAX_ERP)
}

/// The item of a charge: the contract's `charge_items`, else the default.
fn charge_item(settings: &Value, charge: &str) -> String {
    settings
        .pointer(&format!("/charge_items/{charge}"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| DEFAULT_CHARGE_ITEMS.iter().find(|(c, _)| *c == charge).map(|(_, item)| (*item).to_owned()))
        .unwrap_or_else(|| charge.to_uppercase())
}

/// The currency's minor-unit digits, from the order's currency code.
fn exponent(order: &Value) -> u32 {
    order["currency"].as_str().and_then(|c| c.parse::<handoff_model::Currency>().ok()).map_or(2, |c| c.exponent())
}

/// `amount` over `quantity` units as lines of exact prices: one line when the unit price is
/// exact in the minor unit, else all units but one at the rounded-down price and one at the rest.
fn split(amount: Decimal, quantity: u64, dp: u32) -> Vec<(u64, Decimal)> {
    if quantity == 0 {
        return vec![(0, Decimal::ZERO)];
    }
    let q = Decimal::from(quantity);
    let unit = (amount / q).round_dp_with_strategy(dp, RoundingStrategy::ToZero);
    if unit * q == amount || quantity == 1 {
        return vec![(quantity, if quantity == 1 { amount } else { unit })];
    }
    vec![(quantity - 1, unit), (1, amount - unit * Decimal::from(quantity - 1))]
}

/// Adds `erp` (see the module) to the command, and `net_amount` and `discount_percent` to
/// each line for the mappings written before it.
pub(crate) fn prepare(command: &mut Value, settings: &Value) {
    let Some(order) = command.get_mut("order") else { return };
    let dp = exponent(order);
    let totals = order["totals"].clone();
    let amount = |key: &str| decimal(&totals[key]).unwrap_or_default();
    let included = totals["taxes_included"].as_bool().unwrap_or(false);
    let mut lines = Vec::new();
    let mut line_tax = Decimal::ZERO;
    for line in order.get_mut("lines").and_then(Value::as_array_mut).into_iter().flatten() {
        let unit_price = decimal(&line["unit_price"]).unwrap_or_default();
        let quantity = line["quantity"].as_u64().unwrap_or_default();
        let discount = decimal(&line["discount"]).unwrap_or_default();
        let tax = decimal(&line["tax"]).unwrap_or_default();
        line_tax += tax;
        let gross = unit_price * Decimal::from(quantity);
        line["net_amount"] = text(gross - discount);
        if discount > Decimal::ZERO && gross > Decimal::ZERO {
            let percent = (discount * Decimal::ONE_HUNDRED / gross).round_dp(4);
            line["discount_percent"] = text(percent);
        }
        let net = gross - discount - if included { tax } else { Decimal::ZERO };
        for (quantity, unit_price) in split(net, quantity, dp) {
            let amount = unit_price * Decimal::from(quantity);
            let (unit_price, amount) = (money(unit_price, dp), money(amount, dp));
            lines.push(json!({"sku": line["sku"], "quantity": quantity, "unit_price": unit_price, "amount": amount}));
        }
    }
    let shipping_tax = if included { amount("tax") - line_tax } else { Decimal::ZERO };
    let shipping = amount("shipping") - amount("shipping_discount") - shipping_tax;
    let mut charges = Vec::new();
    let mut charge = |name: &str, value: Decimal| {
        if !value.is_zero() {
            charges.push(json!({"charge": name, "sku": charge_item(settings, name), "amount": money(value, dp)}));
        }
    };
    charge("discount", -amount("discount"));
    charge("tip", amount("tip"));
    charge("duties", amount("duties"));
    charge("fees", amount("fees"));
    if tax_mode(settings) == TAX_LINE {
        charge("tax", amount("tax"));
    }
    // For an ERP that books shipping as a line (Odoo); NetSuite has `shippingCost`.
    let shipping_line: Vec<Value> = (!shipping.is_zero())
        .then(|| json!({"sku": charge_item(settings, "shipping"), "amount": money(shipping, dp)}))
        .into_iter()
        .collect();
    command["erp"] = json!({
        "lines": lines,
        "shipping": money(shipping, dp),
        "shipping_line": shipping_line,
        "charges": charges,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(order: Value, settings: Value) -> Value {
        let mut c = json!({ "order": order });
        prepare(&mut c, &settings);
        c
    }

    #[test]
    fn net_amounts_are_exact() {
        let c = prepared(
            json!({"currency": "USD", "lines": [
                {"sku": "A", "unit_price": "0.10", "quantity": 3, "discount": "0.05"},
                {"sku": "B", "unit_price": "9.95", "quantity": 2},
            ]}),
            Value::Null,
        );
        assert_eq!(c["order"]["lines"][0]["net_amount"], "0.25");
        assert_eq!(c["order"]["lines"][0]["discount_percent"], "16.6667");
        assert_eq!(c["order"]["lines"][1]["net_amount"], "19.9");
        assert!(c["order"]["lines"][1].get("discount_percent").is_none());
    }

    /// 0.25 over three units is not a price in cents: two at 0.08 and one at 0.09.
    #[test]
    fn a_net_that_does_not_divide_is_split_without_losing_a_cent() {
        let c = prepared(
            json!({"currency": "USD", "lines": [{"sku": "A", "unit_price": "0.10", "quantity": 3, "discount": "0.05"}]}),
            Value::Null,
        );
        assert_eq!(
            c["erp"]["lines"],
            json!([
                {"sku": "A", "quantity": 2, "unit_price": "0.08", "amount": "0.16"},
                {"sku": "A", "quantity": 1, "unit_price": "0.09", "amount": "0.09"},
            ])
        );
        assert_eq!(split(Decimal::from(1000), 3, 0), vec![(2, Decimal::from(333)), (1, Decimal::from(334))], "yen");
    }

    /// Prices with VAT inside: the ERP, which adds its own tax, is sent the amounts net of it;
    /// the order-level discount and a tip travel as lines of their own items.
    #[test]
    fn included_tax_is_taken_out_and_charges_are_lines() {
        let c = prepared(
            json!({"currency": "EUR",
                "lines": [{"sku": "A", "unit_price": "12.00", "quantity": 1, "tax": "2.00"}],
                "totals": {"subtotal": "12.00", "tax": "3.00", "shipping": "6.00", "shipping_discount": "0.00",
                    "discount": "1.00", "tip": "2.00", "taxes_included": true, "total": "19.00"}}),
            json!({"charge_items": {"tip": "TIP-ITEM"}}),
        );
        assert_eq!(c["erp"]["lines"], json!([{"sku": "A", "quantity": 1, "unit_price": "10.00", "amount": "10.00"}]));
        assert_eq!(c["erp"]["shipping"], "5.00", "6.00 less its 1.00 of tax");
        assert_eq!(
            c["erp"]["charges"],
            json!([
                {"charge": "discount", "sku": "HANDOFF-DISCOUNT", "amount": "-1.00"},
                {"charge": "tip", "sku": "TIP-ITEM", "amount": "2.00"},
            ])
        );
    }
}
