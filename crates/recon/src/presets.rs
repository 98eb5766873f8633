//! Which column of an export holds what: a preset per vendor export, and per-input overrides
//! (a `--columns` file or a `[reconcile.<input>]` table) because every merchant's export differs.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::input::Format;

/// What an input tells about orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A storefront or marketplace: where orders are placed.
    Channel,
    Payments,
    /// ERP sales orders.
    Erp,
    /// ERP fulfillments (item fulfillments, deliveries) that name their sales order.
    ErpFulfillments,
}

/// The exports Handoff knows the layout of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Shopify's order export CSV: one row per line item, order fields on the first row.
    Shopify,
    /// Amazon's All Orders report: tab-separated, one row per item.
    Amazon,
    /// Stripe's payments export CSV, the order reference in a metadata column.
    Stripe,
    /// A NetSuite sales order saved search (main line), exported as CSV.
    Netsuite,
    /// A NetSuite item fulfillment saved search, exported as CSV.
    NetsuiteFulfillments,
    /// An Odoo sale order export (`sale.order` list view, CSV).
    Odoo,
}

impl Preset {
    pub fn parse(name: &str) -> Option<Preset> {
        Some(match name {
            "shopify" => Preset::Shopify,
            "amazon" => Preset::Amazon,
            "stripe" => Preset::Stripe,
            "netsuite" => Preset::Netsuite,
            "netsuite-fulfillments" => Preset::NetsuiteFulfillments,
            "odoo" => Preset::Odoo,
            _ => return None,
        })
    }

    pub fn role(self) -> Role {
        match self {
            Preset::Shopify | Preset::Amazon => Role::Channel,
            Preset::Stripe => Role::Payments,
            Preset::Netsuite | Preset::Odoo => Role::Erp,
            Preset::NetsuiteFulfillments => Role::ErpFulfillments,
        }
    }
}

/// Column names and value formats of one input. Every field is optional so that an override
/// names only what differs from the preset.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Columns {
    /// The preset these columns start from.
    pub preset: Option<Preset>,
    /// The system's name in findings (the channel of an order); defaults to the preset's.
    pub system: Option<String>,
    pub format: Option<Format>,
    /// A strftime-style format (`%m/%d/%Y %I:%M %p`); without it, ISO 8601 and
    /// `YYYY-MM-DD HH:MM[:SS][ ±HHMM]` are read.
    pub date_format: Option<String>,
    /// The time zone of dates that carry no offset (an IANA name); UTC by default.
    pub timezone: Option<String>,
    /// The decimal separator of amounts: `.` (default) or `,`.
    pub decimal: Option<char>,
    /// The thousands separator of amounts, removed before parsing.
    pub thousands: Option<char>,
    /// The record's own id (a payment id, an ERP record id).
    pub id: Option<String>,
    /// The order reference: the channel's order number, or the one a payment or an ERP record
    /// names.
    pub reference: Option<String>,
    /// Removed from the start of a reference (`Sales Order #`).
    pub reference_strip: Option<String>,
    /// Added to the start of a reference that lacks it (`#` when a payment names `1001` for
    /// Shopify's `#1001`).
    pub reference_prefix: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub email: Option<String>,
    pub currency: Option<String>,
    /// The order's (or payment's, or record's) total.
    pub total: Option<String>,
    /// Amounts added up over an order's rows when there is no total column (Amazon's item,
    /// tax, shipping and gift-wrap prices).
    pub add: Option<Vec<String>>,
    /// Amounts subtracted over an order's rows (promotion discounts).
    pub subtract: Option<Vec<String>>,
    /// The number of lines, when a row is an order rather than a line.
    pub lines: Option<String>,
    /// The column whose values say fulfilled, and those values.
    pub fulfilled_status: Option<String>,
    pub fulfilled_values: Option<Vec<String>>,
    /// When it was fulfilled; without it, the updated (else created) time of the row.
    pub fulfilled_at: Option<String>,
    /// The column whose values say cancelled, refunded or closed, and those values.
    pub closed_status: Option<String>,
    pub closed_values: Option<Vec<String>>,
    /// When it was cancelled; a non-empty value means cancelled.
    pub cancelled_at: Option<String>,
    /// A payment's refunded amount: refunded in full means not held any more.
    pub amount_refunded: Option<String>,
    /// A payment's captured flag (`true`/`false`); a payment not captured is skipped.
    pub captured: Option<String>,
    /// Values of `closed_status` that mean the payment failed (skipped, not refunded).
    pub failed_values: Option<Vec<String>>,
}

/// The `[reconcile]` table of a contract, or a `--columns` file: columns per input name
/// (`storefront`, `marketplace`, `payments`, `erp`, `erp-fulfillments`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct ColumnsFile(pub BTreeMap<String, Columns>);

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn list(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

impl Columns {
    pub fn preset(preset: Preset) -> Columns {
        let base = Columns { preset: Some(preset), ..Columns::default() };
        match preset {
            Preset::Shopify => Columns {
                system: s("shopify"),
                format: Some(Format::Csv),
                reference: s("Name"),
                created_at: s("Created at"),
                email: s("Email"),
                currency: s("Currency"),
                total: s("Total"),
                fulfilled_status: s("Fulfillment Status"),
                fulfilled_values: list(&["fulfilled"]),
                fulfilled_at: s("Fulfilled at"),
                closed_status: s("Financial Status"),
                closed_values: list(&["refunded", "voided"]),
                cancelled_at: s("Cancelled at"),
                ..base
            },
            Preset::Amazon => Columns {
                system: s("amazon"),
                format: Some(Format::Tsv),
                reference: s("amazon-order-id"),
                created_at: s("purchase-date"),
                updated_at: s("last-updated-date"),
                currency: s("currency"),
                add: list(&[
                    "item-price",
                    "item-tax",
                    "shipping-price",
                    "shipping-tax",
                    "gift-wrap-price",
                    "gift-wrap-tax",
                ]),
                subtract: list(&["item-promotion-discount", "ship-promotion-discount"]),
                fulfilled_status: s("order-status"),
                fulfilled_values: list(&["Shipped"]),
                closed_status: s("order-status"),
                closed_values: list(&["Cancelled"]),
                ..base
            },
            Preset::Stripe => Columns {
                system: s("stripe"),
                format: Some(Format::Csv),
                id: s("id"),
                reference: s("order_id (metadata)"),
                created_at: s("Created (UTC)"),
                email: s("Customer Email"),
                currency: s("Currency"),
                total: s("Amount"),
                amount_refunded: s("Amount Refunded"),
                captured: s("Captured"),
                closed_status: s("Status"),
                closed_values: list(&["Refunded"]),
                failed_values: list(&["Failed", "Canceled"]),
                ..base
            },
            Preset::Netsuite => Columns {
                system: s("netsuite"),
                format: Some(Format::Csv),
                date_format: s("%m/%d/%Y %I:%M %p"),
                id: s("Document Number"),
                reference: s("External ID"),
                created_at: s("Date Created"),
                updated_at: s("Last Modified"),
                email: s("Email"),
                currency: s("Currency"),
                total: s("Amount (Transaction Total)"),
                lines: s("Line Count"),
                fulfilled_status: s("Status"),
                fulfilled_values: list(&["Pending Billing", "Billed", "Fulfilled"]),
                closed_status: s("Status"),
                closed_values: list(&["Cancelled", "Closed"]),
                ..base
            },
            Preset::NetsuiteFulfillments => Columns {
                system: s("netsuite"),
                format: Some(Format::Csv),
                date_format: s("%m/%d/%Y %I:%M %p"),
                id: s("Document Number"),
                reference: s("Created From"),
                reference_strip: s("Sales Order #"),
                created_at: s("Date Created"),
                ..base
            },
            Preset::Odoo => Columns {
                system: s("odoo"),
                format: Some(Format::Csv),
                id: s("Order Reference"),
                reference: s("Customer Reference"),
                created_at: s("Creation Date"),
                updated_at: s("Last Updated on"),
                email: s("Customer/Email"),
                currency: s("Currency"),
                total: s("Total"),
                fulfilled_status: s("Delivery Status"),
                fulfilled_values: list(&["Fully Delivered", "full"]),
                closed_status: s("Status"),
                closed_values: list(&["Cancelled", "cancel"]),
                ..base
            },
        }
    }

    /// These columns with every field `over` sets replacing this one's.
    pub fn with(self, over: Columns) -> Columns {
        macro_rules! pick {
            ($($f:ident),*) => { Columns { $($f: over.$f.or(self.$f)),* } };
        }
        pick!(
            preset,
            system,
            format,
            date_format,
            timezone,
            decimal,
            thousands,
            id,
            reference,
            reference_strip,
            reference_prefix,
            created_at,
            updated_at,
            email,
            currency,
            total,
            add,
            subtract,
            lines,
            fulfilled_status,
            fulfilled_values,
            fulfilled_at,
            closed_status,
            closed_values,
            cancelled_at,
            amount_refunded,
            captured,
            failed_values
        )
    }

    /// The preset named by `over.preset` (or `default`), overridden by `over`.
    pub fn resolve(default: Preset, over: Columns) -> Columns {
        Columns::preset(over.preset.unwrap_or(default)).with(over)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_names_only_what_differs() {
        let over: Columns = toml::from_str(
            r#"
            reference = "PO/Check Number"
            date_format = "%d.%m.%Y %H:%M"
            decimal = ","
            "#,
        )
        .unwrap();
        let c = Columns::resolve(Preset::Netsuite, over);
        assert_eq!(c.reference.as_deref(), Some("PO/Check Number"));
        assert_eq!(c.decimal, Some(','));
        assert_eq!(c.id.as_deref(), Some("Document Number"));
        assert_eq!(c.preset, Some(Preset::Netsuite));
        let file: ColumnsFile =
            toml::from_str("[erp]\npreset = \"odoo\"\n[payments]\nreference = \"order\"\n").unwrap();
        assert_eq!(Columns::resolve(Preset::Netsuite, file.0["erp"].clone()).id.as_deref(), Some("Order Reference"));
        assert!(toml::from_str::<Columns>("colour = \"red\"").is_err());
    }
}
