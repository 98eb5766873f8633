//! The fulfilment back-channel: a `CreateFulfillment` command becomes Orders v0
//! `confirmShipment` for the Amazon order it names. Amazon takes no idempotency key; the
//! package reference id (derived from the fulfillment id) is what a read-back looks for in
//! the order's packages (Orders 2026-01-01 `getOrder` with `PACKAGES`).

use std::collections::HashMap;
use std::sync::Arc;

use handoff_engine::{Ack, BoxFuture, DeliveryError, Target};
use handoff_model::{CommandKind, Fulfillment};
use handoff_store::Command;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::api::{SpApi, encode};
use super::pace::Operation;

pub struct ShipmentTarget {
    api: Arc<SpApi>,
}

#[derive(Deserialize)]
struct Payload {
    fulfillment: Fulfillment,
}

/// Amazon's `packageReferenceId` takes positive numbers only: a numeric fulfillment id is used
/// as it is, any other is hashed to a stable number (SHA-256, first 6 bytes, plus one), so a
/// resend and a read-back name the same package.
pub fn package_reference_id(fulfillment_id: &str) -> String {
    let numeric = !fulfillment_id.is_empty()
        && fulfillment_id.len() <= 15
        && fulfillment_id.bytes().all(|b| b.is_ascii_digit())
        && fulfillment_id.bytes().any(|b| b != b'0');
    if numeric {
        return fulfillment_id.trim_start_matches('0').to_owned();
    }
    let digest = Sha256::digest(fulfillment_id.as_bytes());
    let n = digest[..6].iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
    (n + 1).to_string()
}

fn permanent(reason: impl Into<String>, field: &str) -> DeliveryError {
    DeliveryError::Permanent { reason: reason.into(), field: Some(field.to_owned()) }
}

impl ShipmentTarget {
    pub fn new(api: Arc<SpApi>) -> Self {
        ShipmentTarget { api }
    }

    fn fulfillment(c: &Command) -> Result<Fulfillment, DeliveryError> {
        if c.kind != CommandKind::CreateFulfillment {
            return Err(permanent(format!("Amazon takes shipment confirmations only, not {:?}", c.kind), "kind"));
        }
        let payload: Payload = serde_json::from_str(&c.payload)
            .map_err(|e| permanent(format!("fulfillment payload unreadable: {e}"), "fulfillment"))?;
        Ok(payload.fulfillment)
    }

    async fn confirm(&self, c: &Command) -> Result<Ack, DeliveryError> {
        let fulfillment = Self::fulfillment(c)?;
        let order_id = &c.order_ref;
        let items = self.api.order_items(order_id).await.map_err(|e| e.delivery())?;
        let by_sku: HashMap<&str, &str> =
            items.iter().filter_map(|i| Some((i["SellerSKU"].as_str()?, i["OrderItemId"].as_str()?))).collect();
        let mut order_items = Vec::new();
        for (i, line) in fulfillment.lines.iter().enumerate() {
            let Some(item_id) = by_sku.get(line.sku.as_str()) else {
                return Err(permanent(
                    format!("SKU {} is not on Amazon order {order_id}", line.sku),
                    &format!("fulfillment.lines[{i}].sku"),
                ));
            };
            order_items.push(json!({"orderItemId": item_id, "quantity": line.quantity}));
        }
        let package = package_reference_id(&fulfillment.fulfillment_id.to_string());
        let carrier = fulfillment.carrier.as_deref().unwrap_or("Other");
        let mut detail = json!({
            "packageReferenceId": package,
            "carrierCode": carrier,
            "carrierName": carrier,
            "shipDate": Timestamp::now().to_string(),
            "orderItems": order_items,
        });
        if let Some(tracking) = &fulfillment.tracking_number {
            detail["trackingNumber"] = Value::from(tracking.as_str());
        }
        let marketplace = self.marketplace(order_id).await?;
        let body = json!({"marketplaceId": marketplace, "packageDetail": detail});
        let path = format!("/orders/v0/orders/{}/shipment/confirmation", encode(order_id));
        self.api
            .call(Operation::ConfirmShipment, reqwest::Method::POST, &path, &[], Some(&body))
            .await
            .map_err(|e| e.delivery())?;
        Ok(Ack { record_id: format!("{order_id}/{package}") })
    }

    /// The marketplace the order was placed in: the configured one, or, when several are
    /// configured, the order's own (v0 `getOrder`).
    async fn marketplace(&self, order_id: &str) -> Result<String, DeliveryError> {
        if let [only] = self.api.marketplace_ids.as_slice() {
            return Ok(only.clone());
        }
        let path = format!("/orders/v0/orders/{}", encode(order_id));
        let answer = self
            .api
            .call(Operation::GetOrder, reqwest::Method::GET, &path, &[], None)
            .await
            .map_err(|e| e.delivery())?;
        match answer.body["payload"]["MarketplaceId"].as_str() {
            Some(id) => Ok(id.to_owned()),
            None => Err(DeliveryError::Transient {
                reason: format!("getOrder of {order_id} names no MarketplaceId"),
                ambiguous: false,
                retry_after: None,
            }),
        }
    }

    /// The shipment is visible when the order lists a package with its reference id. Amazon's
    /// v0 answers only show shipped quantities and `OrderStatus`, which cannot tell this
    /// package from another one shipping the same items; the 2026-01-01 packages can.
    async fn find(&self, c: &Command) -> Result<Option<Ack>, DeliveryError> {
        let fulfillment = Self::fulfillment(c).map_err(|e| DeliveryError::Transient {
            reason: e.to_string(),
            ambiguous: true,
            retry_after: None,
        })?;
        let order_id = &c.order_ref;
        let package = package_reference_id(&fulfillment.fulfillment_id.to_string());
        let path = format!("/orders/2026-01-01/orders/{}", encode(order_id));
        let query = [("includedData", "PACKAGES".to_owned())];
        let answer = match self.api.call(Operation::GetOrder2026, reqwest::Method::GET, &path, &query, None).await {
            Ok(answer) => answer,
            // No such order: no shipment of it can have been confirmed.
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.read_back()),
        };
        let order = answer.body.get("order").unwrap_or(&answer.body);
        let found = order["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["packageReferenceId"].as_str() == Some(package.as_str()));
        Ok(found.then(|| Ack { record_id: format!("{order_id}/{package}") }))
    }
}

impl Target for ShipmentTarget {
    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        Box::pin(self.confirm(command))
    }

    fn read_back<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        Box::pin(self.find(command))
    }

    fn honours_idempotency_keys(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_reference_ids_are_positive_numbers_and_stable() {
        assert_eq!(package_reference_id("4711"), "4711");
        assert_eq!(package_reference_id("004711"), "4711");
        let hashed = package_reference_id("F-erp-7/1");
        assert_eq!(hashed, package_reference_id("F-erp-7/1"));
        assert!(hashed.parse::<u64>().is_ok_and(|n| n > 0), "{hashed}");
        assert_ne!(hashed, package_reference_id("F-erp-7/2"));
        assert!(package_reference_id("0").parse::<u64>().is_ok_and(|n| n > 0));
    }
}
