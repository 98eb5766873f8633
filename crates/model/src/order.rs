//! The canonical order: what Handoff knows of an order, whatever system it came from.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{Currency, ExternalId, Money};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanonicalOrder {
    /// The order's reference as its source system shows it (Shopify `name`, Amazon order id).
    pub order_ref: String,
    /// The name people use for the order when it differs from `order_ref` (Shopify's `#1001`
    /// while `order_ref` is its numeric id).
    #[serde(default)]
    pub name: Option<String>,
    /// Where the order was placed: `web`, `amazon`, `ebay`, ...
    #[serde(default)]
    pub channel: Option<String>,
    pub customer: Customer,
    #[serde(default)]
    pub shipping_address: Option<Address>,
    pub lines: Vec<OrderLine>,
    pub currency: Currency,
    pub totals: Totals,
    pub placed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default)]
    pub name: Option<String>,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default)]
    pub region: Option<String>,
    pub postal_code: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    pub sku: String,
    pub quantity: u32,
    #[serde(with = "rust_decimal::serde::str")]
    pub unit_price: Decimal,
    #[serde(default, with = "rust_decimal::serde::str")]
    pub tax: Decimal,
    #[serde(default, with = "rust_decimal::serde::str")]
    pub discount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    #[serde(with = "rust_decimal::serde::str")]
    pub subtotal: Decimal,
    #[serde(default, with = "rust_decimal::serde::str")]
    pub tax: Decimal,
    #[serde(default, with = "rust_decimal::serde::str")]
    pub shipping: Decimal,
    #[serde(default, with = "rust_decimal::serde::str")]
    pub discount: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

impl CanonicalOrder {
    pub fn total(&self) -> Money {
        Money::new(self.totals.total, self.currency)
    }

    /// Checks the arithmetic a target would check: lines add up to the subtotal and the parts
    /// add up to the total. Returns the first field that disagrees.
    pub fn check_totals(&self) -> Result<(), String> {
        if self.lines.is_empty() {
            return Err("lines: an order needs at least one line".into());
        }
        let lines: Decimal = self.lines.iter().map(|l| l.unit_price * Decimal::from(l.quantity) - l.discount).sum();
        if lines != self.totals.subtotal {
            return Err(format!("totals.subtotal: lines add up to {lines}, subtotal says {}", self.totals.subtotal));
        }
        let t = &self.totals;
        let expected = t.subtotal + t.tax + t.shipping - t.discount;
        if expected != t.total {
            return Err(format!(
                "totals.total: subtotal + tax + shipping - discount is {expected}, total says {}",
                t.total
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fulfillment {
    /// The fulfilling system's own id for this fulfillment (shipment, delivery).
    pub fulfillment_id: ExternalId,
    pub lines: Vec<FulfillmentLine>,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentLine {
    pub sku: String,
    pub quantity: u32,
}

/// A captured payment, as the payment processor reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub payment_id: ExternalId,
    pub amount: Money,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    pub refund_id: ExternalId,
    pub amount: Money,
    #[serde(default)]
    pub reason: Option<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn order(order_ref: &str) -> CanonicalOrder {
        serde_json::from_value(serde_json::json!({
            "order_ref": order_ref,
            "customer": {"email": "ada@example.com", "name": "Ada"},
            "lines": [{"sku": "MUG-1", "quantity": 2, "unit_price": "9.95"}],
            "currency": "EUR",
            "totals": {"subtotal": "19.90", "tax": "3.78", "shipping": "4.90", "total": "28.58"},
            "placed_at": "2026-11-26T10:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn totals_add_up() {
        let o = order("#1001");
        assert_eq!(o.check_totals(), Ok(()));
        assert_eq!(o.total().to_string(), "28.58 EUR");
    }

    #[test]
    fn a_wrong_total_names_its_field() {
        let mut o = order("#1001");
        o.totals.total = Decimal::new(2857, 2);
        assert!(o.check_totals().unwrap_err().starts_with("totals.total"));
    }
}
