//! Property: whatever the mix of line, order and shipping discounts, tips and duties, tax
//! included in the prices or added on top, in currencies of 0, 2 and 3 decimals, an order whose
//! parts add up is never held by the money check of the shipped mappings, and the ERP payload,
//! summed as each ERP sums it here (written apart from `mapping::totals`), equals the order's
//! total less the tax the ERP computes itself (or the whole total when the tax travels as a line).

use handoff_mapping::Mappings;
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

/// (currency, its minor-unit digits)
const CURRENCIES: [(&str, u32); 3] = [("JPY", 0), ("EUR", 2), ("KWD", 3)];

/// One order line in minor units: its discount and tax as generated.
#[derive(Debug, Clone)]
struct Line {
    quantity: u32,
    unit: i64,
    discount: i64,
    tax: i64,
}

impl Line {
    fn net(&self) -> i64 {
        self.unit * i64::from(self.quantity) - self.discount
    }
}

fn line() -> impl Strategy<Value = Line> {
    (1u32..7, 1i64..50_000, 0i64..=100, 0i64..3_000).prop_map(|(quantity, unit, discount_percent, tax)| Line {
        quantity,
        unit,
        // Up to the whole of the line's gross, in minor units.
        discount: unit * i64::from(quantity) * discount_percent / 100,
        tax,
    })
}

/// The order's money, all in minor units.
#[derive(Debug, Clone)]
struct Money {
    shipping: i64,
    shipping_discount_percent: i64,
    order_discount: i64,
    tip: i64,
    duties: i64,
    taxes_included: bool,
}

fn money() -> impl Strategy<Value = Money> {
    (
        0i64..5_000,
        prop_oneof![Just(0i64), Just(100i64), 0i64..100],
        prop_oneof![Just(0i64), 0i64..2_000],
        prop_oneof![Just(0i64), 0i64..1_000],
        prop_oneof![Just(0i64), 0i64..1_000],
        any::<bool>(),
    )
        .prop_map(|(shipping, shipping_discount_percent, order_discount, tip, duties, taxes_included)| Money {
            shipping,
            shipping_discount_percent,
            order_discount,
            tip,
            duties,
            taxes_included,
        })
}

/// A canonical order whose parts add up, by the model's documented formula.
fn order(dp: u32, currency: &str, lines: &[Line], m: &Money) -> Value {
    // Tax inside a price can be no more than the line (nor, for shipping, than the shipping).
    let lines: Vec<Line> = lines
        .iter()
        .map(|l| Line { tax: if m.taxes_included { l.tax.min(l.net()) } else { l.tax }, ..l.clone() })
        .collect();
    let subtotal: i64 = lines.iter().map(Line::net).sum();
    let order_discount = m.order_discount.min(subtotal);
    let shipping_discount = m.shipping * m.shipping_discount_percent / 100;
    let tax: i64 = lines.iter().map(|l| l.tax).sum();
    let added_tax = if m.taxes_included { 0 } else { tax };
    let total = subtotal + m.shipping - shipping_discount - order_discount + m.tip + m.duties + added_tax;
    let text = |v: i64| Decimal::new(v, dp).to_string();
    json!({
        "order_ref": "P1", "customer": {"email": "p@example.com"}, "currency": currency,
        "placed_at": "2026-11-26T10:00:00Z",
        "lines": lines.iter().enumerate().map(|(i, l)| json!({
            "sku": format!("SKU-{i}"), "quantity": l.quantity, "unit_price": text(l.unit),
            "discount": text(l.discount), "tax": text(l.tax),
        })).collect::<Vec<_>>(),
        "totals": {
            "subtotal": text(subtotal), "tax": text(tax), "shipping": text(m.shipping),
            "shipping_discount": text(shipping_discount), "discount": text(order_discount),
            "tip": text(m.tip), "duties": text(m.duties), "taxes_included": m.taxes_included,
            "total": text(total),
        },
    })
}

fn decimal(v: &Value) -> Decimal {
    v.to_string().trim_matches('"').parse().unwrap()
}

/// NetSuite's sum of a salesOrder: its line amounts and its shipping cost.
fn netsuite_sum(payload: &Value) -> Decimal {
    payload["item"]["items"].as_array().unwrap().iter().map(|i| decimal(&i["amount"])).sum::<Decimal>()
        + decimal(&payload["shippingCost"])
}

/// Odoo's `amount_untaxed`: each line's price x quantity, rounded to the currency.
fn odoo_sum(payload: &Value, dp: u32) -> Decimal {
    let lines = payload["order_line"].as_array().unwrap();
    lines
        .iter()
        .map(|l| {
            (decimal(&l["price_unit"]) * decimal(&l["product_uom_qty"]))
                .round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn erp_payloads_add_up_to_the_channel_s_order(
        currency in 0usize..3,
        lines in prop::collection::vec(line(), 1..5),
        m in money(),
        tax_line in any::<bool>(),
    ) {
        let (code, dp) = CURRENCIES[currency];
        let order = order(dp, code, &lines, &m);
        let canonical: handoff_model::CanonicalOrder = serde_json::from_value(order.clone()).unwrap();
        prop_assert_eq!(canonical.check_totals(), Ok(()));
        let (total, tax) = (canonical.totals.total, canonical.totals.tax);
        let expected = if tax_line { total } else { total - tax };
        let command = json!({"external_ref": "P1", "version": 1, "order": order});
        let mut settings = json!({"customer_id": "42", "version_field": "custbody_v"});
        if tax_line {
            settings["tax"] = json!("line");
        }
        let mappings = Mappings::shipped().unwrap();
        let (_, ns) = mappings
            .transform("netsuite", "sales_order", &command, &settings)
            .map_err(|h| TestCaseError::fail(format!("{}: {}", h.field, h.reason)))?;
        prop_assert_eq!(netsuite_sum(&serde_json::from_str(&ns).unwrap()), expected);
        let (_, odoo) = mappings
            .transform("odoo", "sale_order", &command, &settings)
            .map_err(|h| TestCaseError::fail(format!("{}: {}", h.field, h.reason)))?;
        prop_assert_eq!(odoo_sum(&serde_json::from_str(&odoo).unwrap(), dp), expected);
    }
}
