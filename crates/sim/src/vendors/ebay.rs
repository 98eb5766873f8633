//! eBay's Sell Fulfillment API in front of a [`MockSystem`]: orders placed by customers
//! (`POST /_orders` in eBay's `Order` JSON) served by `getOrders` (filtered by
//! `lastmodifieddate`, paged by offset) and `getOrder`; shipping fulfillments created through
//! the system's faults (no idempotency key, as on eBay) and listed from the system's records,
//! so a fulfillment whose acknowledgment was lost is still listed. Besides: the OAuth token
//! endpoint and the Notification API's `getPublicKey`, serving keys a test registers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::dialect::{Dialect, HttpRequest, HttpResponse, Routed};
use crate::system::{Collection, MockSystem, Request};

const ORDERS: [&str; 4] = ["sell", "fulfillment", "v1", "order"];

#[derive(Default)]
pub struct Ebay {
    /// Orders in the order they were placed; a re-placed `orderId` replaces its order.
    orders: Mutex<Vec<Value>>,
    /// Public keys by `kid`, PEM.
    keys: Mutex<HashMap<String, String>>,
    tokens_minted: AtomicU64,
    keys_served: AtomicU64,
    /// Reads still to refuse with 429 (eBay's call limits), and the `Retry-After` they carry.
    throttled_reads: AtomicU64,
    throttle_retry_after_s: AtomicU64,
}

/// eBay's error answer.
fn errors(status: u16, error_id: u64, category: &str, message: &str, parameter: Option<&str>) -> HttpResponse {
    let parameters: Vec<Value> = parameter.map(|p| json!({"name": p, "value": ""})).into_iter().collect();
    HttpResponse::json(
        status,
        json!({"errors": [{
            "errorId": error_id,
            "domain": "API_FULFILLMENT",
            "category": category,
            "message": message,
            "parameters": parameters,
        }]}),
    )
}

fn modified(order: &Value) -> Option<Timestamp> {
    order["lastModifiedDate"].as_str()?.parse().ok()
}

/// `lastmodifieddate:[from..]` or `lastmodifieddate:[from..to]`.
fn window(filter: &str) -> Option<(Timestamp, Option<Timestamp>)> {
    let range = filter.strip_prefix("lastmodifieddate:[")?.strip_suffix(']')?;
    let (from, to) = range.split_once("..")?;
    let to = if to.is_empty() { None } else { Some(to.parse().ok()?) };
    Some((from.parse().ok()?, to))
}

impl Ebay {
    /// Serves `pem` as eBay's public key `kid` on `getPublicKey`.
    pub fn with_public_key(self, kid: &str, pem: &str) -> Self {
        self.keys.lock().expect("keys lock").insert(kid.to_owned(), pem.to_owned());
        self
    }

    /// Refuses the next `reads` API reads with 429 and `Retry-After: retry_after_s`, as eBay
    /// does past an application's call limit. (Writes are throttled by the system's faults.)
    pub fn throttle_reads(&self, reads: u64, retry_after_s: u64) {
        self.throttle_retry_after_s.store(retry_after_s, Ordering::Relaxed);
        self.throttled_reads.store(reads, Ordering::Relaxed);
    }

    /// How many OAuth tokens the token endpoint minted.
    pub fn tokens_minted(&self) -> u64 {
        self.tokens_minted.load(Ordering::Relaxed)
    }

    /// How many times `getPublicKey` answered a key.
    pub fn keys_served(&self) -> u64 {
        self.keys_served.load(Ordering::Relaxed)
    }

    fn order(&self, id: &str) -> Option<Value> {
        self.orders.lock().expect("orders lock").iter().find(|o| o["orderId"] == id).cloned()
    }

    fn get_orders(&self, r: &HttpRequest) -> HttpResponse {
        let filter = r.param("filter").unwrap_or_default();
        let Some((from, to)) = window(&filter) else {
            return errors(400, 30850, "REQUEST", "The filter is not lastmodifieddate:[from..to].", Some("filter"));
        };
        let limit: usize = r.param("limit").and_then(|l| l.parse().ok()).unwrap_or(50).clamp(1, 200);
        let offset: usize = r.param("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let mut matching: Vec<Value> = self
            .orders
            .lock()
            .expect("orders lock")
            .iter()
            .filter(|o| modified(o).is_some_and(|m| m >= from && to.is_none_or(|to| m <= to)))
            .cloned()
            .collect();
        matching.sort_by_key(modified);
        let total = matching.len();
        let page: Vec<Value> = matching.into_iter().skip(offset).take(limit).collect();
        let href = |offset: usize| format!("/sell/fulfillment/v1/order?limit={limit}&offset={offset}");
        let mut body = json!({"href": href(offset), "total": total, "limit": limit, "offset": offset, "orders": page});
        if offset + limit < total {
            body["next"] = href(offset + limit).into();
        }
        HttpResponse::json(200, body)
    }

    /// The fulfillments of one order, from the system's records (`external_ref` is
    /// `{orderId}/{trackingNumber}`).
    fn fulfillments(system: &MockSystem, order_id: &str) -> HttpResponse {
        let prefix = format!("{order_id}/");
        let found: Vec<Value> = system
            .records()
            .into_iter()
            .filter(|r| r.collection == Collection::Fulfillments)
            .filter_map(|r| {
                let tracking = r.external_ref.strip_prefix(&prefix)?.to_owned();
                let lines: Vec<Value> =
                    r.lines.iter().map(|(id, quantity)| json!({"lineItemId": id, "quantity": quantity})).collect();
                Some(json!({"fulfillmentId": r.id, "lineItems": lines, "shipmentTrackingNumber": tracking}))
            })
            .collect();
        HttpResponse::json(200, json!({"total": found.len(), "fulfillments": found, "warnings": []}))
    }

    fn create_fulfillment(&self, r: &HttpRequest, order_id: &str) -> Routed {
        let Some(order) = self.order(order_id) else {
            return Routed::Answer(errors(404, 32100, "REQUEST", "Invalid order ID.", Some("orderId")));
        };
        let body = match r.json() {
            Ok(b) => b,
            Err(refused) => return Routed::Answer(refused),
        };
        let Some(tracking) = body["trackingNumber"].as_str().filter(|t| !t.is_empty()) else {
            return Routed::Answer(errors(
                400,
                32500,
                "REQUEST",
                "Tracking number is missing.",
                Some("trackingNumber"),
            ));
        };
        let mut lines = Vec::new();
        for line in body["lineItems"].as_array().into_iter().flatten() {
            let id = line["lineItemId"].as_str().unwrap_or_default();
            if !order["lineItems"].as_array().into_iter().flatten().any(|l| l["lineItemId"] == id) {
                return Routed::Answer(errors(400, 32400, "REQUEST", "Invalid line item ID.", Some("lineItemId")));
            }
            lines.push(json!({"sku": id, "quantity": line["quantity"].as_u64().unwrap_or(1)}));
        }
        Routed::Write(Request::Create {
            collection: Collection::Fulfillments,
            idempotency_key: None,
            body: json!({"external_ref": format!("{order_id}/{tracking}"), "order": {"lines": lines}}),
        })
    }
}

impl Dialect for Ebay {
    fn route(&self, system: &MockSystem, r: &HttpRequest) -> Routed {
        let segments = r.segments();
        if r.method == "POST" && segments == ["identity", "v1", "oauth2", "token"] {
            if !r.header("authorization").is_some_and(|a| a.starts_with("Basic ")) {
                return Routed::Answer(HttpResponse::json(401, json!({"error": "invalid_client"})));
            }
            let n = self.tokens_minted.fetch_add(1, Ordering::Relaxed) + 1;
            let token = json!({"access_token": format!("sim-ebay-token-{n}"), "expires_in": 7200, "token_type": "User Access Token"});
            return Routed::Answer(HttpResponse::json(200, token));
        }
        if !r.header("authorization").is_some_and(|a| a.starts_with("Bearer ")) {
            return Routed::Answer(errors(401, 1001, "REQUEST", "Invalid access token.", None));
        }
        if r.method == "GET"
            && self.throttled_reads.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
        {
            let retry_after = self.throttle_retry_after_s.load(Ordering::Relaxed).to_string();
            let refused = errors(429, 2001, "REQUEST", "Too many requests.", None);
            return Routed::Answer(refused.with_header("retry-after", retry_after));
        }
        match (r.method.as_str(), segments.as_slice()) {
            ("GET", ["commerce", "notification", "v1", "public_key", kid]) => {
                let key = self.keys.lock().expect("keys lock").get(*kid).cloned();
                Routed::Answer(match key {
                    Some(key) => {
                        self.keys_served.fetch_add(1, Ordering::Relaxed);
                        HttpResponse::json(200, json!({"algorithm": "ECDSA", "digest": "SHA1", "key": key}))
                    }
                    None => errors(404, 195001, "REQUEST", "The public key was not found.", Some("public_key_id")),
                })
            }
            ("GET", [a, b, c, d]) if [*a, *b, *c, *d] == ORDERS => Routed::Answer(self.get_orders(r)),
            ("GET", [a, b, c, d, id]) if [*a, *b, *c, *d] == ORDERS => Routed::Answer(match self.order(id) {
                Some(order) => HttpResponse::json(200, order),
                None => errors(404, 32100, "REQUEST", "Invalid order ID.", Some("orderId")),
            }),
            ("GET", [a, b, c, d, id, "shipping_fulfillment"]) if [*a, *b, *c, *d] == ORDERS => {
                Routed::Answer(match self.order(id) {
                    Some(_) => Self::fulfillments(system, id),
                    None => errors(404, 32100, "REQUEST", "Invalid order ID.", Some("orderId")),
                })
            }
            ("POST", [a, b, c, d, id, "shipping_fulfillment"]) if [*a, *b, *c, *d] == ORDERS => {
                self.create_fulfillment(r, id)
            }
            _ => Routed::Answer(errors(404, 2002, "REQUEST", &format!("No resource {} {}.", r.method, r.path), None)),
        }
    }

    fn reply(&self, _system: &MockSystem, r: &HttpRequest, status: u16, body: &Value) -> HttpResponse {
        match (status, body["id"].as_str()) {
            (200 | 201, Some(id)) => HttpResponse { status: 201, body: Value::Null, headers: Vec::new() }
                .with_header("location", format!("{}/{id}", r.path.trim_end_matches('/'))),
            (429, _) => errors(429, 2001, "REQUEST", "Too many requests.", None),
            (500..=599, _) => errors(status, 2003, "APPLICATION", "Internal error.", None),
            _ => {
                let message = body["error"].as_str().unwrap_or("refused");
                errors(status, 32000, "REQUEST", message, body["field"].as_str())
            }
        }
    }

    fn place_order(&self, order: Value) -> Result<Value, String> {
        let id = order["orderId"].as_str().filter(|i| !i.is_empty()).ok_or("an eBay order needs orderId")?.to_owned();
        if modified(&order).is_none() {
            return Err("an eBay order needs lastModifiedDate".into());
        }
        let mut orders = self.orders.lock().expect("orders lock");
        match orders.iter_mut().find(|o| o["orderId"] == id.as_str()) {
            Some(placed) => *placed = order,
            None => orders.push(order),
        }
        Ok(json!({"orderId": id}))
    }
}
