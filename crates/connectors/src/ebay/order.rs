//! A Sell Fulfillment API `Order` into the canonical model. eBay sends amounts as decimal
//! strings in `{value, currency}` objects; `lineItemCost` is the price of the whole quantity.

use handoff_model::{
    CanonicalOrder, Currency, Customer, EventKind, ExternalId, InboundEvent, OrderLine, PaymentStatus, Totals,
};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::SourceError;
use crate::fields::{self, AddressKeys, Amounts, text, time};
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

/// Maps one `Order` (from `getOrder`, or one of `getOrders`' `orders`), its money as eBay's
/// Sell Fulfillment API documents it. A line's `lineItemCost` is its whole quantity before
/// discounts; its discount is `lineItemCost - discountedLineItemCost` (else the sum of its
/// `appliedPromotions`); its tax the sum of its `taxes`. `pricingSummary`: `priceSubtotal` (all
/// lines before discounts, which must be the lines' sum), `priceDiscount` (all item discounts,
/// negative; what no line carries is an order-level discount), `deliveryCost` (before its
/// discounts) and `deliveryDiscount` (negative), `tax`, `fee` (special fees), `adjustment`
/// (a credit or a debit, signed) and `total`. The parts must add up to `total` to the cent, or
/// the order is refused naming `pricingSummary.total` rather than booked with a guessed
/// difference.
pub fn order(v: &Value) -> Result<EbayOrder, SourceError> {
    let order_ref = text(v, "orderId").ok_or_else(|| invalid("orderId", "is missing"))?;
    let pricing = &v["pricingSummary"];
    let (total, currency) = money(&pricing["total"], "pricingSummary.total")?
        .ok_or_else(|| invalid("pricingSummary.total", "is missing"))?;
    let read = Amounts { currency, money };
    let items = v["lineItems"].as_array().filter(|l| !l.is_empty());
    let items = items.ok_or_else(|| invalid("lineItems", "an order needs at least one line"))?;
    let (mut lines, mut line_costs, mut allocated) = (Vec::with_capacity(items.len()), Decimal::ZERO, Decimal::ZERO);
    for item in items {
        let quantity = item["quantity"].as_u64().ok_or_else(|| invalid("lineItems.quantity", "is missing"))?;
        let quantity = u32::try_from(quantity).map_err(|_| invalid("lineItems.quantity", "is too large"))?;
        let cost = read.of(&item["lineItemCost"], "lineItems.lineItemCost")?;
        let (unit_price, rounding) = fields::unit_price(cost, quantity, "lineItems.lineItemCost")?;
        let discount = if item["discountedLineItemCost"].is_object() {
            cost - read.of(&item["discountedLineItemCost"], "lineItems.discountedLineItemCost")?
        } else {
            let mut sum = Decimal::ZERO;
            for p in item["appliedPromotions"].as_array().into_iter().flatten() {
                sum += read.discount(&p["discountAmount"], "lineItems.appliedPromotions.discountAmount")?;
            }
            sum
        };
        let mut tax = Decimal::ZERO;
        for t in item["taxes"].as_array().into_iter().flatten() {
            tax += read.of(&t["amount"], "lineItems.taxes.amount")?;
        }
        line_costs += cost;
        allocated += discount;
        let line_item_id = text(item, "lineItemId").ok_or_else(|| invalid("lineItems.lineItemId", "is missing"))?;
        lines.push(OrderLine {
            // A listing without a seller SKU is still one line: name it by its line item.
            sku: text(item, "sku").unwrap_or_else(|| format!("ebay-line-{line_item_id}")),
            quantity,
            unit_price,
            tax,
            discount: discount + rounding,
        });
    }
    if pricing["priceSubtotal"].is_object() {
        let subtotal = read.of(&pricing["priceSubtotal"], "pricingSummary.priceSubtotal")?;
        if subtotal != line_costs {
            return Err(invalid(
                "pricingSummary.priceSubtotal",
                format!("is {subtotal}, the lines' lineItemCost add up to {line_costs}"),
            ));
        }
    }
    // Without `priceDiscount` no discount is applied beyond the lines' own.
    let discount = match pricing["priceDiscount"].is_object() {
        true => read.discount(&pricing["priceDiscount"], "pricingSummary.priceDiscount")? - allocated,
        false => Decimal::ZERO,
    };
    if discount < Decimal::ZERO {
        return Err(invalid("pricingSummary.priceDiscount", format!("is less than the lines' discounts, {allocated}")));
    }
    // `tax` is returned when the order has any; else the lines' taxes (none) stand.
    let tax = match pricing["tax"].is_object() {
        true => read.of(&pricing["tax"], "pricingSummary.tax")?,
        false => lines.iter().map(|l| l.tax).sum(),
    };
    let totals = Totals {
        shipping_discount: read.discount(&pricing["deliveryDiscount"], "pricingSummary.deliveryDiscount")?,
        discount,
        fees: read.of(&pricing["fee"], "pricingSummary.fee")?
            + read.of(&pricing["adjustment"], "pricingSummary.adjustment")?,
        ..Totals::new(
            lines.iter().map(OrderLine::net).sum(),
            tax,
            read.of(&pricing["deliveryCost"], "pricingSummary.deliveryCost")?,
            total,
        )
    };
    if totals.computed_total() != total {
        return Err(invalid(
            "pricingSummary.total",
            format!(
                "lines, delivery, discounts, fees, adjustments and tax add up to {}, not {total}",
                totals.computed_total()
            ),
        ));
    }
    let ship_to = &v["fulfillmentStartInstructions"][0]["shippingStep"]["shipTo"];
    let address = &ship_to["contactAddress"];
    let registration = &v["buyer"]["buyerRegistrationAddress"];
    let cancel = &v["cancelStatus"];
    let cancelled = text(cancel, "cancelState").as_deref() == Some("CANCELED");
    let last_modified = time(v, "lastModifiedDate")?;
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
        totals,
        placed_at: time(v, "creationDate")?,
        payment_status: text(v, "orderPaymentStatus").as_deref().map(payment_status).transpose()?,
        cancelled_at: match cancelled {
            true => {
                Some(if cancel["cancelledDate"].is_string() { time(cancel, "cancelledDate")? } else { last_modified })
            }
            false => None,
        },
    };
    Ok(EbayOrder { order: canonical, last_modified, cancelled })
}

/// eBay's `orderPaymentStatus`: `FAILED` brought no money, so it is still pending.
fn payment_status(s: &str) -> Result<PaymentStatus, SourceError> {
    Ok(match s {
        "PENDING" | "FAILED" => PaymentStatus::Pending,
        "PAID" => PaymentStatus::Paid,
        "PARTIALLY_REFUNDED" => PaymentStatus::PartiallyRefunded,
        "FULLY_REFUNDED" => PaymentStatus::Refunded,
        other => return Err(invalid("orderPaymentStatus", format!("{other:?} is not one of eBay's payment statuses"))),
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
