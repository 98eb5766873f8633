//! The canonical order: what Handoff knows of an order, whatever system it came from.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{MAX_QUANTITY, within_bounds};
use crate::{Currency, ExternalId, Money};

/// The most lines an order may have.
pub const MAX_LINES: usize = 10_000;

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
    /// Where the order's payment stands at its channel, when the channel says (Shopify
    /// `financial_status`, WooCommerce `status`). `None`: the channel does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<PaymentStatus>,
    /// When the channel cancelled the order, if it did: an order that arrives already cancelled
    /// stays cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<Timestamp>,
}

/// The payment state of an order at its channel, in the channel's own terms mapped to one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Nothing authorised yet (a bank transfer, cash on delivery, a failed card).
    Pending,
    /// Authorised, not captured.
    Authorized,
    PartiallyPaid,
    Paid,
    PartiallyRefunded,
    Refunded,
    /// The authorisation was voided: no money will come.
    Voided,
}

impl PaymentStatus {
    /// Whether the channel holds the order's money (captured, even if partly refunded since).
    pub fn is_paid(self) -> bool {
        matches!(self, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded)
    }
}

/// Personal data: its `Debug` says which fields are known, never what they say.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// Personal data: its `Debug` shows the country only.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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

/// One line of an order. Its money, in the order's currency:
/// `unit_price` before any discount (and including tax when `Totals::taxes_included`),
/// `discount` every discount allocated to the line, all units together (line promotions and
/// the line's share of order-level discounts), `tax` the line's tax.
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

impl OrderLine {
    /// The line's amount after its discounts: unit price x quantity - discount.
    pub fn net(&self) -> Decimal {
        self.unit_price * Decimal::from(self.quantity) - self.discount
    }
}

/// An order's money. What the customer was charged is
/// `total = subtotal + shipping - shipping_discount - discount + tip + duties + fees
///          + (tax unless taxes_included)`:
/// - `subtotal`: the lines after their discounts (the sum of [`OrderLine::net`]);
/// - `shipping`: shipping before its discounts, `shipping_discount` what was taken off it;
/// - `discount`: order-level discounts allocated to no line and no shipping (most channels
///   allocate them; a legacy payload may not);
/// - `tip`, `duties`: charged on top where the channel has them; `fees`: other charges and
///   adjustments (signed: a negative adjustment lowers the total);
/// - `tax`: all tax of the order; inside the prices when `taxes_included`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    #[serde(with = "rust_decimal::serde::str")]
    pub subtotal: Decimal,
    #[serde(default, with = "rust_decimal::serde::str")]
    pub tax: Decimal,
    #[serde(default, with = "rust_decimal::serde::str")]
    pub shipping: Decimal,
    #[serde(default, with = "rust_decimal::serde::str", skip_serializing_if = "Decimal::is_zero")]
    pub shipping_discount: Decimal,
    #[serde(default, with = "rust_decimal::serde::str")]
    pub discount: Decimal,
    #[serde(default, with = "rust_decimal::serde::str", skip_serializing_if = "Decimal::is_zero")]
    pub tip: Decimal,
    #[serde(default, with = "rust_decimal::serde::str", skip_serializing_if = "Decimal::is_zero")]
    pub duties: Decimal,
    #[serde(default, with = "rust_decimal::serde::str", skip_serializing_if = "Decimal::is_zero")]
    pub fees: Decimal,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub taxes_included: bool,
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

impl Totals {
    /// Every amount zero but the ones given: for readers and tests.
    pub fn new(subtotal: Decimal, tax: Decimal, shipping: Decimal, total: Decimal) -> Self {
        Totals {
            subtotal,
            tax,
            shipping,
            shipping_discount: Decimal::ZERO,
            discount: Decimal::ZERO,
            tip: Decimal::ZERO,
            duties: Decimal::ZERO,
            fees: Decimal::ZERO,
            taxes_included: false,
            total,
        }
    }

    /// What the parts add up to (see the type's formula).
    pub fn computed_total(&self) -> Decimal {
        let tax = if self.taxes_included { Decimal::ZERO } else { self.tax };
        self.subtotal + self.shipping - self.shipping_discount - self.discount
            + self.tip
            + self.duties
            + self.fees
            + tax
    }

    /// Shipping as charged: after its discounts.
    pub fn net_shipping(&self) -> Decimal {
        self.shipping - self.shipping_discount
    }
}

impl CanonicalOrder {
    pub fn total(&self) -> Money {
        Money::new(self.totals.total, self.currency)
    }

    /// Every amount within [`MAX_AMOUNT`] and every quantity within [`MAX_QUANTITY`], and not
    /// so many lines that their sum could leave them: checked before any arithmetic.
    fn check_bounds(&self) -> Result<(), String> {
        if self.lines.len() > MAX_LINES {
            return Err(format!("lines: {} lines, more than the {MAX_LINES} an order may have", self.lines.len()));
        }
        for (i, line) in self.lines.iter().enumerate() {
            if line.quantity > MAX_QUANTITY {
                return Err(format!("lines[{i}].quantity: {} is more than {MAX_QUANTITY}", line.quantity));
            }
            for (name, amount) in [("unit_price", line.unit_price), ("tax", line.tax), ("discount", line.discount)] {
                within_bounds(amount).map_err(|why| format!("lines[{i}].{name}: {why}"))?;
            }
        }
        let t = &self.totals;
        for (name, amount) in [
            ("subtotal", t.subtotal),
            ("tax", t.tax),
            ("shipping", t.shipping),
            ("shipping_discount", t.shipping_discount),
            ("discount", t.discount),
            ("tip", t.tip),
            ("duties", t.duties),
            ("fees", t.fees),
            ("total", t.total),
        ] {
            within_bounds(amount).map_err(|why| format!("totals.{name}: {why}"))?;
        }
        Ok(())
    }

    /// Checks the arithmetic a target would check: lines add up to the subtotal and the parts
    /// add up to the total. Returns the first field that disagrees.
    pub fn check_totals(&self) -> Result<(), String> {
        if self.lines.is_empty() {
            return Err("lines: an order needs at least one line".into());
        }
        self.check_bounds()?;
        let lines: Decimal = self.lines.iter().map(OrderLine::net).sum();
        if lines != self.totals.subtotal {
            return Err(format!("totals.subtotal: lines add up to {lines}, subtotal says {}", self.totals.subtotal));
        }
        let t = &self.totals;
        let expected = t.computed_total();
        if expected != t.total {
            return Err(format!("totals.total: the parts add up to {expected}, total says {}", t.total));
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

/// A captured payment, as the payment processor reports it. Its `Debug` hides the payer's
/// email.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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

/// How personal data shows in `Debug`: whether it is known, never its value. `Debug` is what
/// logs, panic messages and test failures print; the value itself stays in the serialized
/// order, which only the store and the systems of the contract see.
struct Redacted<'a>(&'a Option<String>);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(<redacted>)" } else { "None" })
    }
}

const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for Customer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Customer").field("email", &Redacted(&self.email)).field("name", &Redacted(&self.name)).finish()
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Address { name, line1: _, line2, city: _, region, postal_code: _, country } = self;
        f.debug_struct("Address")
            .field("name", &Redacted(name))
            .field("line1", &format_args!("{REDACTED}"))
            .field("line2", &Redacted(line2))
            .field("city", &format_args!("{REDACTED}"))
            .field("region", &Redacted(region))
            .field("postal_code", &format_args!("{REDACTED}"))
            .field("country", country)
            .finish()
    }
}

impl std::fmt::Debug for Payment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payment")
            .field("payment_id", &self.payment_id)
            .field("amount", &self.amount)
            .field("email", &Redacted(&self.email))
            .finish()
    }
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

    /// Canary values planted in every personal field: `Debug` (what logs and panics print)
    /// shows none of them, and the order still carries them all.
    #[test]
    fn debug_never_shows_personal_data() {
        let mut o = order("#1001");
        o.customer = Customer { email: Some("canary-mail@example.invalid".into()), name: Some("Canary Name".into()) };
        o.shipping_address = Some(Address {
            name: Some("Canary Recipient".into()),
            line1: "1 Canary Street".into(),
            line2: Some("Canary Flat 2".into()),
            city: "Canaryville".into(),
            region: Some("Canary Region".into()),
            postal_code: "CANARY-9".into(),
            country: "DE".into(),
        });
        let payment = Payment {
            payment_id: ExternalId::new("pi_1").unwrap(),
            amount: o.total(),
            email: Some("canary-payer@example.invalid".into()),
        };
        let shown = format!("{o:?} {o:#?} {payment:?} {payment:#?}");
        assert!(!shown.to_lowercase().contains("canary"), "{shown}");
        assert!(shown.contains("#1001") && shown.contains("DE") && shown.contains("Some(<redacted>)"), "{shown}");
        let stored = serde_json::to_string(&o).unwrap();
        assert_eq!(stored.matches("anary").count(), 7, "the order keeps what Debug hides: {stored}");
    }

    #[test]
    fn totals_add_up() {
        let o = order("#1001");
        assert_eq!(o.check_totals(), Ok(()));
        assert_eq!(o.total().to_string(), "28.58 EUR");
    }

    #[test]
    fn discounts_are_taken_once_and_included_tax_is_not_added() {
        // Shopify's order #1001: three lines of 199.00, 10.00 of discounts allocated to them
        // (3.34 + 3.33 + 3.33), 11.94 of tax on top, no shipping: 598.94 charged.
        let mut o = order("#1001");
        o.lines = ["3.34", "3.33", "3.33"]
            .iter()
            .map(|d| OrderLine {
                sku: "IPOD".into(),
                quantity: 1,
                unit_price: "199.00".parse().unwrap(),
                tax: "3.98".parse().unwrap(),
                discount: d.parse().unwrap(),
            })
            .collect();
        o.totals =
            Totals::new("587.00".parse().unwrap(), "11.94".parse().unwrap(), Decimal::ZERO, "598.94".parse().unwrap());
        assert_eq!(o.check_totals(), Ok(()));
        // The same prices with VAT inside them: the tax is part of the lines already.
        o.totals.taxes_included = true;
        o.totals.total = "587.00".parse().unwrap();
        assert_eq!(o.check_totals(), Ok(()));
        // Shipping 5.00 with 5.00 off, a 2.00 tip and 1.50 of duties.
        o.totals.shipping = "5.00".parse().unwrap();
        o.totals.shipping_discount = "5.00".parse().unwrap();
        o.totals.tip = "2.00".parse().unwrap();
        o.totals.duties = "1.50".parse().unwrap();
        o.totals.total = "590.50".parse().unwrap();
        assert_eq!(o.check_totals(), Ok(()));
    }

    #[test]
    fn older_rows_without_the_new_fields_still_read() {
        let o = order("#1001");
        let json = serde_json::to_value(&o).unwrap();
        assert!(json["totals"].get("tip").is_none() && json.get("payment_status").is_none());
        assert_eq!(serde_json::from_value::<CanonicalOrder>(json).unwrap(), o);
    }

    #[test]
    fn a_wrong_total_names_its_field() {
        let mut o = order("#1001");
        o.totals.total = Decimal::new(2857, 2);
        assert!(o.check_totals().unwrap_err().starts_with("totals.total"));
    }
}
