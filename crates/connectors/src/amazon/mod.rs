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
use crate::fields::{self, AddressKeys, text, time};
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
fn money(v: &Value) -> Result<Option<(Decimal, Currency)>, SourceError> {
    if v.is_null() {
        return Ok(None);
    }
    let amount = text(v, "Amount").or_else(|| text(v, "amount")).ok_or_else(|| invalid("Amount", "is missing"))?;
    let currency = text(v, "CurrencyCode")
        .or_else(|| text(v, "currencyCode"))
        .ok_or_else(|| invalid("CurrencyCode", "is missing"))?;
    let amount: Decimal = amount.parse().map_err(|_| invalid("Amount", format!("{amount:?} is not a decimal")))?;
    let currency = currency_of("CurrencyCode", &currency)?;
    Ok(Some((amount, currency)))
}

fn amount(v: &Value) -> Result<Decimal, SourceError> {
    Ok(money(v)?.map_or(Decimal::ZERO, |(a, _)| a))
}

/// An Amazon order, whichever generation it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct AmazonOrder {
    pub order: CanonicalOrder,
    pub last_updated: Timestamp,
    pub cancelled: bool,
}

/// Orders v0: the `getOrder` payload and the `getOrderItems` payload of the same order.
pub fn order_v0(order: &Value, items: &Value) -> Result<AmazonOrder, SourceError> {
    let order = order.get("payload").unwrap_or(order);
    let items = items.get("payload").unwrap_or(items);
    let order_ref = text(order, "AmazonOrderId").ok_or_else(|| invalid("AmazonOrderId", "is missing"))?;
    let mut lines = Vec::new();
    let (mut tax, mut shipping, mut currency) = (Decimal::ZERO, Decimal::ZERO, None);
    for item in items["OrderItems"].as_array().into_iter().flatten() {
        let quantity = item["QuantityOrdered"].as_u64().ok_or_else(|| invalid("QuantityOrdered", "is missing"))? as u32;
        // v0's ItemPrice is the price of the whole quantity.
        let price = money(&item["ItemPrice"])?;
        currency = currency.or(price.map(|(_, c)| c));
        let total = price.map_or(Decimal::ZERO, |(a, _)| a);
        let unit_price = if quantity == 0 { Decimal::ZERO } else { total / Decimal::from(quantity) };
        let line_tax = amount(&item["ItemTax"])?;
        tax += line_tax;
        shipping += amount(&item["ShippingPrice"])?;
        lines.push(OrderLine {
            sku: text(item, "SellerSKU").or_else(|| text(item, "ASIN")).unwrap_or_default(),
            quantity,
            unit_price,
            tax: line_tax,
            discount: amount(&item["PromotionDiscount"])?,
        });
    }
    let order_total = money(&order["OrderTotal"])?;
    let currency =
        order_total.map(|(_, c)| c).or(currency).ok_or_else(|| invalid("OrderTotal", "no currency anywhere"))?;
    let subtotal: Decimal = lines.iter().map(|l| l.unit_price * Decimal::from(l.quantity) - l.discount).sum();
    let total = order_total.map_or(subtotal + tax + shipping, |(a, _)| a);
    let address = &order["ShippingAddress"];
    let canonical = CanonicalOrder {
        order_ref: order_ref.clone(),
        name: None,
        channel: Some("amazon".into()),
        customer: Customer { email: text(&order["BuyerInfo"], "BuyerEmail"), name: text(address, "Name") },
        shipping_address: fields::address(address, &V0_ADDRESS, text(address, "Name")),
        lines,
        currency,
        totals: Totals::new(subtotal, tax, shipping, total),
        placed_at: time(order, "PurchaseDate")?,
        payment_status: None,
        cancelled_at: None,
    };
    Ok(AmazonOrder {
        order: canonical,
        last_updated: time(order, "LastUpdateDate")?,
        cancelled: text(order, "OrderStatus").as_deref() == Some("Canceled"),
    })
}

/// The amount of one `proceeds.breakdowns` entry of this type, if any.
fn breakdown(proceeds: &Value, kind: &str) -> Result<Decimal, SourceError> {
    let found = proceeds["breakdowns"].as_array().into_iter().flatten().find(|b| b["type"] == kind);
    found.map_or(Ok(Decimal::ZERO), |b| amount(&b["subtotal"]))
}

/// Orders 2026-01-01: one `order` object (from `getOrder`, or one of `searchOrders`).
pub fn order_2026(order: &Value) -> Result<AmazonOrder, SourceError> {
    let order = order.get("order").unwrap_or(order);
    let order_ref = text(order, "orderId").ok_or_else(|| invalid("orderId", "is missing"))?;
    let (total, currency) =
        money(&order["proceeds"]["grandTotal"])?.ok_or_else(|| invalid("proceeds.grandTotal", "is missing"))?;
    let mut lines = Vec::new();
    for item in order["orderItems"].as_array().into_iter().flatten() {
        let quantity = item["quantityOrdered"].as_u64().ok_or_else(|| invalid("quantityOrdered", "is missing"))? as u32;
        let product = &item["product"];
        lines.push(OrderLine {
            sku: text(product, "sellerSku").or_else(|| text(product, "asin")).unwrap_or_default(),
            quantity,
            unit_price: amount(&product["price"]["unitPrice"])?,
            tax: breakdown(&item["proceeds"], "TAX")?,
            discount: breakdown(&item["proceeds"], "DISCOUNT")?.abs(),
        });
    }
    let proceeds = &order["proceeds"];
    let address = &order["recipient"]["deliveryAddress"];
    let canonical = CanonicalOrder {
        order_ref,
        name: None,
        channel: Some("amazon".into()),
        customer: Customer { email: text(&order["buyer"], "buyerEmail"), name: text(&order["buyer"], "buyerName") },
        shipping_address: fields::address(address, &ADDRESS_2026, text(address, "name")),
        lines,
        currency,
        totals: Totals {
            subtotal: breakdown(proceeds, "ITEM")? - breakdown(proceeds, "DISCOUNT")?.abs(),
            tax: breakdown(proceeds, "TAX")?,
            shipping: breakdown(proceeds, "SHIPPING")?,
            ..Totals::new(Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, total)
        },
        placed_at: time(order, "createdTime")?,
        payment_status: None,
        cancelled_at: None,
    };
    let status = text(&order["fulfillment"], "fulfillmentStatus").unwrap_or_default();
    Ok(AmazonOrder {
        order: canonical,
        last_updated: time(order, "lastUpdatedTime")?,
        cancelled: status == "CANCELLED",
    })
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
