//! Amazon SP-API: orders of both API generations into the canonical model (Orders v0
//! `getOrder` + `getOrderItems`, PascalCase, `payload` wrapper; Orders 2026-01-01
//! `getOrder`/`searchOrders`, camelCase, nested items and proceeds), `ORDER_CHANGE`
//! notifications deduplicated by their `NotificationId`, the orders [`poller`] and the
//! `confirmShipment` back-channel ([`shipment`]). See `docs/connectors/amazon.md`.

mod api;
mod lwa;
mod pace;
pub mod poller;
pub mod shipment;

pub use api::SpApi;
pub use poller::OrdersPoller;
pub use shipment::ShipmentTarget;

use handoff_model::{CanonicalOrder, Currency, Customer, OrderLine, Totals};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::SourceError;
use crate::fields::{self, AddressKeys, Amounts, text, time};
use crate::http_json::{currency as currency_of, invalid};

const V0_ADDRESS: AddressKeys = AddressKeys {
    line1: "AddressLine1",
    line2: "AddressLine2",
    city: "City",
    region: "StateOrRegion",
    postal_code: "PostalCode",
    country: "CountryCode",
};

const ADDRESS_2026: AddressKeys = AddressKeys {
    line1: "addressLine1",
    line2: "addressLine2",
    city: "city",
    region: "stateOrRegion",
    postal_code: "postalCode",
    country: "countryCode",
};

/// A `{Amount|amount, CurrencyCode|currencyCode}` money object; Amazon sends decimal strings.
fn money(v: &Value, field: &'static str) -> Result<Option<(Decimal, Currency)>, SourceError> {
    if v.is_null() {
        return Ok(None);
    }
    let amount = text(v, "Amount").or_else(|| text(v, "amount")).ok_or_else(|| invalid(field, "Amount is missing"))?;
    let currency = text(v, "CurrencyCode")
        .or_else(|| text(v, "currencyCode"))
        .ok_or_else(|| invalid(field, "CurrencyCode is missing"))?;
    let amount: Decimal = amount.parse().map_err(|_| invalid(field, format!("{amount:?} is not a decimal")))?;
    Ok(Some((amount, currency_of(field, &currency)?)))
}

/// Amazon does not say whether its prices include tax (its US marketplaces add sales tax on
/// top, its European ones show VAT inside the price, often with `ItemTax` 0.00): the order's
/// own total decides which reading adds up, and an order neither reading adds up is refused.
fn settle(mut totals: Totals, field: &'static str) -> Result<Totals, SourceError> {
    let excluded = totals.computed_total();
    totals.taxes_included = excluded != totals.total;
    if totals.computed_total() == totals.total {
        return Ok(totals);
    }
    Err(invalid(
        field,
        format!(
            "the parts add up to {excluded} with tax on top and {} with tax inside the prices, not {}",
            totals.computed_total(),
            totals.total
        ),
    ))
}

/// An Amazon order, whichever generation it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct AmazonOrder {
    pub order: CanonicalOrder,
    pub last_updated: Timestamp,
    pub cancelled: bool,
}

/// Orders v0: the `getOrder` payload and the `getOrderItems` payload of the same order (both
/// name it in `AmazonOrderId`; items of another order are refused). Per item, as the v0 model
/// documents them: `ItemPrice` is the price of the whole quantity before its promotions
/// (`PromotionDiscount`, tax `PromotionDiscountTax`); `ItemTax` the tax on it; `ShippingPrice`,
/// `ShippingTax`, `ShippingDiscount`, `ShippingDiscountTax` the same for shipping; gift wrap
/// (`BuyerInfo.GiftWrapPrice`, `GiftWrapTax`) and cash on delivery (`CODFee`, `CODFeeDiscount`)
/// are fees. `OrderTotal` is the total charged; the parts must add up to it.
pub fn order_v0(order: &Value, items: &Value) -> Result<AmazonOrder, SourceError> {
    let order = order.get("payload").unwrap_or(order);
    let items = items.get("payload").unwrap_or(items);
    let order_ref = text(order, "AmazonOrderId").ok_or_else(|| invalid("AmazonOrderId", "is missing"))?;
    match text(items, "AmazonOrderId") {
        Some(of) if of == order_ref => {}
        of => {
            return Err(invalid(
                "AmazonOrderId",
                format!("the items are of order {}, not of {order_ref}", of.as_deref().unwrap_or("(unnamed)")),
            ));
        }
    }
    let items = items["OrderItems"].as_array().filter(|i| !i.is_empty());
    let items = items.ok_or_else(|| invalid("OrderItems", "an order needs at least one item"))?;
    let order_total = money(&order["OrderTotal"], "OrderTotal")?;
    let first_price = money(&items[0]["ItemPrice"], "ItemPrice")?;
    let currency =
        order_total.or(first_price).map(|(_, c)| c).ok_or_else(|| invalid("OrderTotal", "no currency anywhere"))?;
    let read = Amounts { currency, money };
    let mut lines = Vec::with_capacity(items.len());
    let mut totals = Totals::new(Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for item in items {
        let quantity = item["QuantityOrdered"].as_u64().and_then(|q| u32::try_from(q).ok());
        let quantity = quantity.ok_or_else(|| invalid("QuantityOrdered", "is missing"))?;
        let (unit_price, rounding) =
            fields::unit_price(read.of(&item["ItemPrice"], "ItemPrice")?, quantity, "ItemPrice")?;
        let tax = read.of(&item["ItemTax"], "ItemTax")?
            - read.discount(&item["PromotionDiscountTax"], "PromotionDiscountTax")?;
        totals.shipping += read.of(&item["ShippingPrice"], "ShippingPrice")?;
        totals.shipping_discount += read.discount(&item["ShippingDiscount"], "ShippingDiscount")?;
        let buyer = &item["BuyerInfo"];
        totals.tax += tax + read.of(&item["ShippingTax"], "ShippingTax")?
            - read.discount(&item["ShippingDiscountTax"], "ShippingDiscountTax")?
            + read.of(&buyer["GiftWrapTax"], "BuyerInfo.GiftWrapTax")?;
        totals.fees += read.of(&buyer["GiftWrapPrice"], "BuyerInfo.GiftWrapPrice")?
            + read.of(&item["CODFee"], "CODFee")?
            - read.discount(&item["CODFeeDiscount"], "CODFeeDiscount")?;
        lines.push(OrderLine {
            sku: text(item, "SellerSKU").or_else(|| text(item, "ASIN")).unwrap_or_default(),
            quantity,
            unit_price,
            tax,
            discount: read.discount(&item["PromotionDiscount"], "PromotionDiscount")? + rounding,
        });
    }
    totals.subtotal = lines.iter().map(OrderLine::net).sum();
    // `OrderTotal` is not returned for Pending and Canceled orders: their parts are their total.
    totals.total = order_total.map_or_else(|| totals.computed_total(), |(a, _)| a);
    let totals = settle(totals, "OrderTotal")?;
    let address = &order["ShippingAddress"];
    let last_updated = time(order, "LastUpdateDate")?;
    let cancelled = text(order, "OrderStatus").as_deref() == Some("Canceled");
    let canonical = CanonicalOrder {
        order_ref: order_ref.clone(),
        name: None,
        channel: Some("amazon".into()),
        customer: Customer {
            email: text(&order["BuyerInfo"], "BuyerEmail"),
            name: text(&order["BuyerInfo"], "BuyerName").or_else(|| text(address, "Name")),
        },
        shipping_address: fields::address(address, &V0_ADDRESS, text(address, "Name")),
        lines,
        currency,
        totals,
        placed_at: time(order, "PurchaseDate")?,
        payment_status: None,
        cancelled_at: cancelled.then_some(last_updated),
    };
    Ok(AmazonOrder { order: canonical, last_updated, cancelled })
}

/// The `proceeds.breakdowns` entries of one order or item, by type.
struct Breakdowns<'a> {
    entries: &'a [Value],
    read: &'a Amounts,
}

impl<'a> Breakdowns<'a> {
    fn of(proceeds: &'a Value, read: &'a Amounts) -> Self {
        Breakdowns { entries: proceeds["breakdowns"].as_array().map_or(&[], Vec::as_slice), read }
    }

    /// The sum of the entries of this type (zero when none).
    fn sum(&self, kind: &str) -> Result<Decimal, SourceError> {
        let mut sum = Decimal::ZERO;
        for b in self.entries.iter().filter(|b| b["type"] == kind) {
            sum += self.read.of(&b["subtotal"], "proceeds.breakdowns.subtotal")?;
        }
        Ok(sum)
    }

    /// The part of this type's entries that its `detailedBreakdowns` give to `subtype`, or, when
    /// an entry has no details, all of it when `subtype` is the default one.
    fn detail(&self, kind: &str, subtype: &str, default: bool) -> Result<Decimal, SourceError> {
        let mut sum = Decimal::ZERO;
        for b in self.entries.iter().filter(|b| b["type"] == kind) {
            match b["detailedBreakdowns"].as_array() {
                Some(details) => {
                    for d in details.iter().filter(|d| d["subtype"] == subtype) {
                        sum += self.read.of(&d["value"], "proceeds.breakdowns.detailedBreakdowns.value")?;
                    }
                }
                None if default => sum += self.read.of(&b["subtotal"], "proceeds.breakdowns.subtotal")?,
                None => {}
            }
        }
        Ok(sum)
    }
}

/// Orders 2026-01-01: one `order` object (from `getOrder`, or one of `searchOrders`). Its
/// `proceeds.grandTotal` is the total; `proceeds.breakdowns` give the parts (`ITEM`, `SHIPPING`,
/// `GIFT_WRAP`, `COD_FEE`, `OTHER`, `TAX`, `DISCOUNT`, and `DELIVERY_TIP`, which is charged
/// apart). Each item's own proceeds give its price (`ITEM`, the whole quantity), its discounts
/// (`DISCOUNT`, split by `detailedBreakdowns` into the item's and its shipping's) and its tax.
pub fn order_2026(order: &Value) -> Result<AmazonOrder, SourceError> {
    let order = order.get("order").unwrap_or(order);
    let order_ref = text(order, "orderId").ok_or_else(|| invalid("orderId", "is missing"))?;
    let proceeds = &order["proceeds"];
    let (total, currency) = money(&proceeds["grandTotal"], "proceeds.grandTotal")?
        .ok_or_else(|| invalid("proceeds.grandTotal", "is missing"))?;
    let read = Amounts { currency, money };
    let items = order["orderItems"].as_array().filter(|i| !i.is_empty());
    let items = items.ok_or_else(|| invalid("orderItems", "an order needs at least one item"))?;
    let (mut lines, mut shipping_discount, mut allocated) =
        (Vec::with_capacity(items.len()), Decimal::ZERO, Decimal::ZERO);
    for item in items {
        let quantity = item["quantityOrdered"].as_u64().and_then(|q| u32::try_from(q).ok());
        let quantity = quantity.ok_or_else(|| invalid("quantityOrdered", "is missing"))?;
        let product = &item["product"];
        let parts = Breakdowns::of(&item["proceeds"], &read);
        let price = match parts.entries.iter().any(|b| b["type"] == "ITEM") {
            true => parts.sum("ITEM")?,
            false => read
                .of(&product["price"]["unitPrice"], "product.price.unitPrice")?
                .checked_mul(Decimal::from(quantity))
                .ok_or_else(|| invalid("product.price.unitPrice", "times quantityOrdered is beyond any amount"))?,
        };
        let (unit_price, rounding) = fields::unit_price(price, quantity, "proceeds.breakdowns.ITEM")?;
        let discount = parts.detail("DISCOUNT", "ITEM", true)?.abs();
        shipping_discount += parts.detail("DISCOUNT", "SHIPPING", false)?.abs();
        allocated += discount;
        lines.push(OrderLine {
            sku: text(product, "sellerSku").or_else(|| text(product, "asin")).unwrap_or_default(),
            quantity,
            unit_price,
            tax: parts.detail("TAX", "ITEM", true)?,
            discount: discount + rounding,
        });
    }
    let parts = Breakdowns::of(proceeds, &read);
    // The order's DISCOUNT is every discount; what no item or shipping carries is the order's own.
    let discount = parts.sum("DISCOUNT")?.abs() - allocated - shipping_discount;
    if discount < Decimal::ZERO {
        return Err(invalid("proceeds.breakdowns.DISCOUNT", "the items' discounts add up to more than the order's"));
    }
    let totals = Totals {
        shipping_discount,
        discount,
        tip: parts.sum("DELIVERY_TIP")?,
        fees: parts.sum("GIFT_WRAP")? + parts.sum("COD_FEE")? + parts.sum("OTHER")?,
        ..Totals::new(lines.iter().map(OrderLine::net).sum(), parts.sum("TAX")?, parts.sum("SHIPPING")?, total)
    };
    let totals = settle(totals, "proceeds.grandTotal")?;
    let address = &order["recipient"]["deliveryAddress"];
    let last_updated = time(order, "lastUpdatedTime")?;
    let cancelled = text(&order["fulfillment"], "fulfillmentStatus").as_deref() == Some("CANCELLED");
    let canonical = CanonicalOrder {
        order_ref,
        name: None,
        channel: Some("amazon".into()),
        customer: Customer { email: text(&order["buyer"], "buyerEmail"), name: text(&order["buyer"], "buyerName") },
        shipping_address: fields::address(address, &ADDRESS_2026, text(address, "name")),
        lines,
        currency,
        totals,
        placed_at: time(order, "createdTime")?,
        payment_status: None,
        cancelled_at: cancelled.then_some(last_updated),
    };
    Ok(AmazonOrder { order: canonical, last_updated, cancelled })
}

/// An `ORDER_CHANGE` notification: which order changed, and the key that makes a redelivered
/// notification have no second effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderChange {
    pub notification_id: String,
    pub order_id: String,
    pub status: Option<String>,
    pub change_type: Option<String>,
}

pub fn order_change(body: &[u8]) -> Result<OrderChange, SourceError> {
    let v: Value = serde_json::from_slice(body)?;
    if v["NotificationType"] != "ORDER_CHANGE" {
        return Err(invalid("NotificationType", "is not ORDER_CHANGE"));
    }
    let change = &v["Payload"]["OrderChangeNotification"];
    let order_id = text(change, "AmazonOrderId").ok_or_else(|| invalid("AmazonOrderId", "is missing"))?;
    // The envelope's NotificationMetadata.NotificationId is the dedup key; should it be
    // missing, a content key (order, change time) stands in.
    let notification_id = text(&v["NotificationMetadata"], "NotificationId").unwrap_or_else(|| {
        let at = text(&change["OrderChangeTrigger"], "TimeOfOrderChange").unwrap_or_default();
        format!("{order_id}@{at}")
    });
    Ok(OrderChange {
        notification_id,
        order_id,
        status: text(&change["Summary"], "OrderStatus"),
        change_type: text(change, "OrderChangeType"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(id: Option<&str>, at: &str) -> Vec<u8> {
        let mut v = serde_json::json!({
            "NotificationType": "ORDER_CHANGE",
            "Payload": {"OrderChangeNotification": {
                "AmazonOrderId": "302-1234567-1234567",
                "OrderChangeType": "OrderStatusChange",
                "OrderChangeTrigger": {"TimeOfOrderChange": at},
                "Summary": {"OrderStatus": "Unshipped"},
            }},
            "NotificationMetadata": {},
        });
        if let Some(id) = id {
            v["NotificationMetadata"]["NotificationId"] = id.into();
        }
        v.to_string().into_bytes()
    }

    #[test]
    fn order_changes_are_deduplicated_by_notification_id() {
        let at = "2026-11-26T10:00:00Z";
        let first = order_change(&notification(Some("n-1"), at)).unwrap();
        // SQS redelivers: the same notification has the same key.
        assert_eq!(first, order_change(&notification(Some("n-1"), at)).unwrap());
        assert_eq!(first.notification_id, "n-1");
        // Another notification about the same order, even at the same time, is another change.
        assert_ne!(first.notification_id, order_change(&notification(Some("n-2"), at)).unwrap().notification_id);
        // Without an id, the order and its change time stand in.
        let keyless = order_change(&notification(None, at)).unwrap();
        assert_eq!(keyless.notification_id, format!("302-1234567-1234567@{at}"));
        assert_eq!(keyless.status.as_deref(), Some("Unshipped"));
    }

    #[test]
    fn other_notifications_are_refused() {
        let body = serde_json::json!({"NotificationType": "ANY_OFFER_CHANGED"}).to_string();
        assert!(order_change(body.as_bytes()).is_err());
    }
}

#[cfg(test)]
mod contract_tests {
    use std::path::Path;

    use handoff_contract::Contract;

    const CONTRACT: &str = r#"
[systems.amazon]
role = "marketplace"
connector = "amazon"
base_url = "https://sellingpartnerapi-eu.amazon.com"
api_version = "API_VERSION"
idempotency_keys = false
poll = { every = "2m", lookback = "10m", page_size = 100, initial = "24h" }

[systems.amazon.credentials]
client_id = "amzn1.application-oa2-client.x"
client_secret = "secret"
refresh_token = "Atzr|x"
marketplace_id = "A1PA6795UKMFR9, A13V1IB3VIYZZH"

[systems.erp]
role = "erp"
connector = "http-json"
base_url = "http://127.0.0.1:9001"

[flows.orders]
from = "amazon"
to = "erp"
events = ["order.updated", "order.cancelled"]
proof = "record-id"
deadline = "30m"
retry = { attempts = 12, backoff_base = "1s", backoff_cap = "10m", jitter = "full", deadline = "48h" }

[flows.shipments]
from = "erp"
to = "amazon"
events = ["fulfillment.created"]
proof = "read-back"
deadline = "30m"
retry = { attempts = 12, backoff_base = "1s", backoff_cap = "10m", jitter = "full", deadline = "48h" }
"#;

    fn contract(api_version: &str) -> Contract {
        Contract::parse(&CONTRACT.replace("API_VERSION", api_version), Path::new("handoff.toml")).unwrap()
    }

    #[test]
    fn a_contract_entry_builds_a_poller_and_a_target() {
        for version in ["v0", "2026-01-01"] {
            let contract = contract(version);
            let amazon = &contract.systems["amazon"];
            assert!(crate::poller("amazon", amazon).unwrap().is_some());
            let target = crate::target("amazon", amazon).unwrap().unwrap();
            assert!(!target.honours_idempotency_keys());
            let api = super::SpApi::from_contract("amazon", amazon).unwrap();
            assert_eq!(api.marketplace_ids, ["A1PA6795UKMFR9", "A13V1IB3VIYZZH"]);
        }
    }

    #[test]
    fn a_bad_entry_names_the_key_to_fix() {
        let mut amazon = contract("v0").systems["amazon"].clone();
        amazon.api_version = Some("2021-01-01".into());
        let Err(e) = crate::poller("amazon", &amazon) else { panic!("refused") };
        assert_eq!(e.key, "systems.amazon.api_version");
        amazon.api_version = None;
        amazon.credentials.remove("refresh_token");
        let Err(e) = crate::target("amazon", &amazon) else { panic!("refused") };
        assert_eq!(e.key, "systems.amazon.credentials.refresh_token");
    }
}
