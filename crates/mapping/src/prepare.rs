//! What a mapping may not compute itself: money arithmetic, done here with decimals and handed
//! to the mapping as decimal strings.

use rust_decimal::Decimal;
use serde_json::Value;

fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

/// Adds `net_amount` (unit price x quantity - discount) to each line of the command's order,
/// and `discount_percent` (the discount as a percentage of the gross, 4 places) when there is one.
pub(crate) fn prepare(command: &mut Value) {
    let Some(lines) = command.pointer_mut("/order/lines").and_then(Value::as_array_mut) else { return };
    for line in lines {
        let unit_price = decimal(&line["unit_price"]).unwrap_or_default();
        let quantity = line["quantity"].as_u64().map(Decimal::from).unwrap_or_default();
        let discount = decimal(&line["discount"]).unwrap_or_default();
        let gross = unit_price * quantity;
        line["net_amount"] = Value::String((gross - discount).normalize().to_string());
        if discount > Decimal::ZERO && gross > Decimal::ZERO {
            let percent = (discount * Decimal::ONE_HUNDRED / gross).round_dp(4).normalize();
            line["discount_percent"] = Value::String(percent.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_amounts_are_exact() {
        let mut c = serde_json::json!({"order": {"lines": [
            {"unit_price": "0.10", "quantity": 3, "discount": "0.05"},
            {"unit_price": "9.95", "quantity": 2},
        ]}});
        prepare(&mut c);
        assert_eq!(c["order"]["lines"][0]["net_amount"], "0.25");
        assert_eq!(c["order"]["lines"][0]["discount_percent"], "16.6667");
        assert_eq!(c["order"]["lines"][1]["net_amount"], "19.9");
        assert!(c["order"]["lines"][1].get("discount_percent").is_none());
    }
}
