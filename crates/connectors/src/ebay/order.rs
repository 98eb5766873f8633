//! A Sell Fulfillment API `Order` into the canonical model. eBay sends amounts as decimal
//! strings in `{value, currency}` objects; `lineItemCost` is the price of the whole quantity.

use handoff_model::{CanonicalOrder, Currency, Customer, EventKind, ExternalId, InboundEvent, OrderLine, Totals};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::SourceError;
use crate::fields::{self, AddressKeys, text, time};
use crate::http_json::{currency as currency_of, invalid};

/// The inbound mapping stamped on each event: a Sell Fulfillment API v1 `Order`.
pub const INBOUND_MAPPING: &str = "ebay/order@sell_fulfillment_v1";

const ADDRESS: AddressKeys = AddressKeys {
    line1: "addressLine1",
    line2: "addressLine2",
    city: "city",
    region: "stateOrProvince",
    postal_code: "postalCode",
    country: "countryCode",
};

/// An eBay `Amount` (`{value, currency}`), absent when the object is.
fn money(v: &Value, field: &'static str) -> Result<Option<(Decimal, Currency)>, SourceError> {
    if v.is_null() {
        return Ok(None);
    }
    let value = text(v, "value").ok_or_else(|| invalid(field, "value is missing"))?;
    let amount = value.parse().map_err(|_| invalid(field, format!("{value:?} is not a decimal")))?;
    let currency = text(v, "currency").ok_or_else(|| invalid(field, "currency is missing"))?;
    Ok(Some((amount, currency_of(field, &currency)?)))
}

fn amount(v: &Value, field: &'static str) -> Result<Decimal, SourceError> {
    Ok(money(v, field)?.map_or(Decimal::ZERO, |(a, _)| a))
}

/// An eBay order in canonical form, with what the poller needs besides.
#[derive(Debug, Clone, PartialEq)]
pub struct EbayOrder {
    pub order: CanonicalOrder,
    pub last_modified: Timestamp,
    /// `cancelStatus.cancelState` is `CANCELED`.
    pub cancelled: bool,
}

impl EbayOrder {
    /// The canonical event of this state of the order: the poll's id for one change
    /// (`poll:{orderId}@{lastModifiedDate}`, stable across overlapping polls) and its version
    /// (`lastModifiedDate` in ms).
    pub fn event(&self, last_modified_raw: &str) -> Result<InboundEvent, SourceError> {
        let kind = if self.cancelled {
            EventKind::OrderCancelled
        } else if self.order.placed_at == self.last_modified {
            EventKind::OrderCreated
        } else {
            EventKind::OrderUpdated
        };
        let id = format!("poll:{}@{last_modified_raw}", self.order.order_ref);
        let event = InboundEvent {
            event_id: ExternalId::new(id).map_err(|e| invalid("orderId", e))?,
            kind,
            order_ref: self.order.order_ref.clone(),
            occurred_at: self.last_modified,
            version: u64::try_from(self.last_modified.as_millisecond()).ok(),
            order: Some(self.order.clone()),
            fulfillment: None,
            refund: None,
            payment: None,
            source_version: Some(super::API_VERSION.into()),
            inbound_mapping: Some(INBOUND_MAPPING.into()),
        };
        event.validate()?;
        Ok(event)
    }
}

/// Discounts eBay applied to one line (`appliedPromotions[].discountAmount`), as a positive amount.
fn line_discount(item: &Value) -> Result<Decimal, SourceError> {
    let mut discount = Decimal::ZERO;
    for promotion in item["appliedPromotions"].as_array().into_iter().flatten() {
        discount += amount(&promotion["discountAmount"], "lineItems.appliedPromotions.discountAmount")?.abs();
    }
    Ok(discount)
}

/// Maps one `Order` (from `getOrder`, or one of `getOrders`' `orders`). Totals are eBay's own
/// `pricingSummary.total`; the lines, tax and delivery must add up to it to the cent, or the
/// order is refused rather than booked with a guessed difference.
pub fn order(v: &Value) -> Result<EbayOrder, SourceError> {
    let order_ref = text(v, "orderId").ok_or_else(|| invalid("orderId", "is missing"))?;
    let pricing = &v["pricingSummary"];
    let (total, currency) = money(&pricing["total"], "pricingSummary.total")?
        .ok_or_else(|| invalid("pricingSummary.total", "is missing"))?;
    let mut lines = Vec::new();
    let mut line_tax = Decimal::ZERO;
    for item in v["lineItems"].as_array().into_iter().flatten() {
        let quantity = item["quantity"].as_u64().ok_or_else(|| invalid("lineItems.quantity", "is missing"))?;
        let quantity = u32::try_from(quantity).map_err(|_| invalid("lineItems.quantity", "is too large"))?;
        let cost = amount(&item["lineItemCost"], "lineItems.lineItemCost")?;
        let unit_price = if quantity == 0 { Decimal::ZERO } else { cost / Decimal::from(quantity) };
        let mut tax = Decimal::ZERO;
        for t in item["taxes"].as_array().into_iter().flatten() {
            tax += amount(&t["amount"], "lineItems.taxes.amount")?;
        }
        line_tax += tax;
        let line_item_id = text(item, "lineItemId").ok_or_else(|| invalid("lineItems.lineItemId", "is missing"))?;
        lines.push(OrderLine {
            // A listing without a seller SKU is still one line: name it by its line item.
            sku: text(item, "sku").unwrap_or_else(|| format!("ebay-line-{line_item_id}")),
            quantity,
            unit_price,
            tax,
            discount: line_discount(item)?,
        });
    }
    let subtotal: Decimal = lines.iter().map(|l| l.unit_price * Decimal::from(l.quantity) - l.discount).sum();
    let tax = money(&pricing["tax"], "pricingSummary.tax")?.map_or(line_tax, |(a, _)| a);
    let shipping = amount(&pricing["deliveryCost"], "pricingSummary.deliveryCost")?
        - amount(&pricing["deliveryDiscount"], "pricingSummary.deliveryDiscount")?.abs();
    if subtotal + tax + shipping != total {
        return Err(invalid(
            "pricingSummary.total",
            format!("lines {subtotal} + tax {tax} + delivery {shipping} do not add up to {total}"),
        ));
    }
    let ship_to = &v["fulfillmentStartInstructions"][0]["shippingStep"]["shipTo"];
    let address = &ship_to["contactAddress"];
    let registration = &v["buyer"]["buyerRegistrationAddress"];
    let canonical = CanonicalOrder {
        order_ref,
        name: None,
        channel: Some("ebay".into()),
        customer: Customer {
            email: text(registration, "email").or_else(|| text(ship_to, "email")),
            name: text(registration, "fullName").or_else(|| text(ship_to, "fullName")),
        },
        shipping_address: fields::address(address, &ADDRESS, text(ship_to, "fullName")),
        lines,
        currency,
        totals: Totals { subtotal, tax, shipping, discount: Decimal::ZERO, total },
        placed_at: time(v, "creationDate")?,
    };
    Ok(EbayOrder {
        order: canonical,
        last_modified: time(v, "lastModifiedDate")?,
        cancelled: text(&v["cancelStatus"], "cancelState").as_deref() == Some("CANCELED"),
    })
}

/// The line item of `order` that carries `sku` (as [`order`] names lines).
pub(crate) fn line_item_id(v: &Value, sku: &str) -> Option<String> {
    v["lineItems"].as_array().into_iter().flatten().find_map(|item| {
        let id = text(item, "lineItemId")?;
        let named = text(item, "sku").unwrap_or_else(|| format!("ebay-line-{id}"));
        (named == sku).then_some(id)
    })
}
