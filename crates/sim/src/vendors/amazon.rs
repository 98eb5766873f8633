//! Amazon SP-API in front of a simulated marketplace: the LWA token endpoint, Orders v0
//! (`getOrders` with `NextToken`, `getOrder`, `getOrderItems`, `confirmShipment`) and Orders
//! 2026-01-01 (`searchOrders` with `paginationToken`, `getOrder` with packages), every answer
//! stating its rate in `x-amzn-RateLimit-Limit`.
//!
//! Orders are placed with `POST /_orders` as a v0 order and its v0 items (`{"order", "items"}`);
//! both API generations are rendered from them. A shipment confirmation is a write through the
//! system (collection `fulfillments`, no idempotency key, external reference
//! `{orderId}/{packageReferenceId}`), and the order's shipped quantities, status and packages
//! are derived from the system's records, so they are there even when the answer was lost.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::dialect::{Dialect, HttpRequest, HttpResponse, Routed};
use crate::system::{Collection, MockSystem, Request};

/// The refresh token the simulated LWA accepts, unless built with another.
pub const SIM_REFRESH_TOKEN: &str = "Atzr|handoff-sim";
/// The rate (requests per second) every answer states: high, so tests are not slowed down.
pub const RATE_LIMIT: &str = "50";
/// Items per `getOrderItems` page: small, so clients must follow `NextToken`.
pub const ITEMS_PER_PAGE: usize = 2;

struct Placed {
    order: Value,
    items: Vec<Value>,
}

#[derive(Default)]
struct State {
    orders: BTreeMap<String, Placed>,
    tokens: Vec<String>,
    token_requests: u64,
}

pub struct Amazon {
    refresh_token: String,
    state: Mutex<State>,
    /// Dice for throttling reads; writes are throttled by the system itself.
    rng: Mutex<ChaCha8Rng>,
}

impl Default for Amazon {
    fn default() -> Self {
        Amazon::new(SIM_REFRESH_TOKEN)
    }
}

fn sp_error(status: u16, code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::json(status, json!({"errors": [{"code": code, "message": message.into(), "details": ""}]}))
}

fn answer(response: HttpResponse) -> Routed {
    Routed::Answer(response.with_header("x-amzn-RateLimit-Limit", RATE_LIMIT))
}

fn decimal(v: &Value) -> Decimal {
    v["Amount"].as_str().and_then(|a| a.parse().ok()).unwrap_or_default()
}

fn money(amount: Decimal, currency: &str) -> Value {
    json!({"amount": amount.to_string(), "currencyCode": currency})
}

fn breakdown(kind: &str, amount: Decimal, currency: &str) -> Value {
    json!({"type": kind, "subtotal": money(amount, currency)})
}

fn status_2026(v0: &str) -> &'static str {
    match v0 {
        "Pending" => "PENDING",
        "PendingAvailability" => "PENDING_AVAILABILITY",
        "PartiallyShipped" => "PARTIALLY_SHIPPED",
        "Shipped" => "SHIPPED",
        "Canceled" => "CANCELLED",
        "Unfulfillable" => "UNFULFILLABLE",
        _ => "UNSHIPPED",
    }
}

/// A page token: the window, the filter's marketplaces and where the next page starts.
/// A page token: the window's filter and the last (update, order id) served, so the next page
/// goes on after that position: an order changed meanwhile moves on ahead of it.
fn page_token(after: Timestamp, last: &Position, size: usize) -> String {
    format!("{after}|{}|{}|{size}", last.0, last.1)
}

/// An order's place in a window: (last update, order id).
type Position = (Timestamp, String);

fn read_token(token: &str) -> Option<(Timestamp, Option<Position>, usize)> {
    let mut parts = token.split('|');
    let after = parts.next()?.parse().ok()?;
    let last = (parts.next()?.parse().ok()?, parts.next()?.to_owned());
    Some((after, Some(last), parts.next()?.parse().ok()?))
}

impl Amazon {
    pub fn new(refresh_token: &str) -> Self {
        Amazon {
            refresh_token: refresh_token.to_owned(),
            state: Mutex::default(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
        }
    }

    /// How many access tokens LWA handed out: a client that caches asks once.
    pub fn token_requests(&self) -> u64 {
        self.state.lock().expect("state lock").token_requests
    }

    fn token(&self, r: &HttpRequest) -> HttpResponse {
        let form: HashMap<String, String> = form_urlencoded::parse(&r.body).into_owned().collect();
        let mut state = self.state.lock().expect("state lock");
        let grant = form.get("grant_type").map(String::as_str);
        let refresh = form.get("refresh_token").map(String::as_str);
        let client = form.get("client_id").is_some_and(|c| !c.is_empty())
            && form.get("client_secret").is_some_and(|c| !c.is_empty());
        if grant != Some("refresh_token") || refresh != Some(self.refresh_token.as_str()) || !client {
            return HttpResponse::json(
                400,
                json!({"error": "invalid_grant", "error_description": "The request has an invalid grant parameter"}),
            );
        }
        state.token_requests += 1;
        let token = format!("Atza|sim-{}", state.token_requests);
        state.tokens.push(token.clone());
        HttpResponse::json(200, json!({"access_token": token, "token_type": "bearer", "expires_in": 3600}))
    }

    /// Shipped quantity per order item, from the system's fulfillment records. A package
    /// confirmed again under the same reference id edits it (as Amazon does), so the latest
    /// record of each package counts.
    fn packages(system: &MockSystem, order_id: &str) -> BTreeMap<String, Vec<(String, u64)>> {
        let prefix = format!("{order_id}/");
        system
            .records()
            .into_iter()
            .filter(|r| r.collection == Collection::Fulfillments)
            .filter_map(|r| Some((r.external_ref.strip_prefix(&prefix)?.to_owned(), r.lines)))
            .collect()
    }

    fn shipped(system: &MockSystem, order_id: &str) -> HashMap<String, u64> {
        let mut shipped = HashMap::new();
        for (item, quantity) in Self::packages(system, order_id).into_values().flatten() {
            *shipped.entry(item).or_default() += quantity;
        }
        shipped
    }

    /// The order and its items as v0 renders them now: shipped quantities and status derived.
    fn v0(system: &MockSystem, placed: &Placed) -> (Value, Vec<Value>) {
        let mut order = placed.order.clone();
        let order_id = order["AmazonOrderId"].as_str().unwrap_or_default().to_owned();
        let shipped = Self::shipped(system, &order_id);
        let mut items = placed.items.clone();
        let (mut ordered, mut sent) = (0, 0);
        for item in &mut items {
            let id = item["OrderItemId"].as_str().unwrap_or_default();
            let quantity = shipped.get(id).copied().unwrap_or(0);
            ordered += item["QuantityOrdered"].as_u64().unwrap_or(0);
            sent += quantity;
            item["QuantityShipped"] = json!(quantity);
        }
        if order["OrderStatus"] != "Canceled" && sent > 0 {
            order["OrderStatus"] = json!(if sent >= ordered { "Shipped" } else { "PartiallyShipped" });
        }
        order["NumberOfItemsShipped"] = json!(sent);
        order["NumberOfItemsUnshipped"] = json!(ordered.saturating_sub(sent));
        (order, items)
    }

    /// The same order in the 2026-01-01 shape.
    fn v2026(system: &MockSystem, placed: &Placed) -> Value {
        let (order, items) = Self::v0(system, placed);
        let currency = order["OrderTotal"]["CurrencyCode"].as_str().unwrap_or("USD").to_owned();
        let c = currency.as_str();
        let (mut item_total, mut tax, mut shipping, mut discount) =
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        let mut order_items = Vec::new();
        for item in &items {
            let quantity = item["QuantityOrdered"].as_u64().unwrap_or(0);
            let price = decimal(&item["ItemPrice"]);
            let unit = if quantity == 0 { Decimal::ZERO } else { price / Decimal::from(quantity) };
            let (line_tax, line_discount) = (decimal(&item["ItemTax"]), decimal(&item["PromotionDiscount"]));
            item_total += price;
            tax += line_tax;
            shipping += decimal(&item["ShippingPrice"]);
            discount += line_discount;
            let fulfilled = item["QuantityShipped"].as_u64().unwrap_or(0);
            order_items.push(json!({
                "orderItemId": item["OrderItemId"],
                "quantityOrdered": quantity,
                "product": {
                    "asin": item["ASIN"],
                    "sellerSku": item["SellerSKU"],
                    "price": {"unitPrice": money(unit, c)},
                },
                "proceeds": {"breakdowns": [
                    breakdown("ITEM", price, c),
                    breakdown("TAX", line_tax, c),
                    breakdown("DISCOUNT", -line_discount, c),
                ]},
                "fulfillment": {
                    "quantityFulfilled": fulfilled,
                    "quantityUnfulfilled": quantity.saturating_sub(fulfilled),
                },
            }));
        }
        let order_id = order["AmazonOrderId"].as_str().unwrap_or_default();
        let packages: Vec<Value> = Self::packages(system, order_id)
            .into_iter()
            .map(|(reference, lines)| {
                let items: Vec<Value> = lines.iter().map(|(id, q)| json!({"orderItemId": id, "quantity": q})).collect();
                json!({
                    "packageReferenceId": reference,
                    "packageStatus": {"status": "IN_TRANSIT"},
                    "packageItems": items,
                })
            })
            .collect();
        let address = &order["ShippingAddress"];
        let total = order["OrderTotal"]["Amount"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or(item_total - discount + tax + shipping);
        json!({
            "orderId": order_id,
            "createdTime": order["PurchaseDate"],
            "lastUpdatedTime": order["LastUpdateDate"],
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": order["MarketplaceId"]},
            "buyer": {
                "buyerName": order["BuyerInfo"]["BuyerName"],
                "buyerEmail": order["BuyerInfo"]["BuyerEmail"],
            },
            "recipient": {"deliveryAddress": {
                "name": address["Name"],
                "addressLine1": address["AddressLine1"],
                "addressLine2": address["AddressLine2"],
                "city": address["City"],
                "stateOrRegion": address["StateOrRegion"],
                "postalCode": address["PostalCode"],
                "countryCode": address["CountryCode"],
            }},
            "proceeds": {
                "grandTotal": money(total, c),
                "breakdowns": [
                    breakdown("ITEM", item_total, c),
                    breakdown("SHIPPING", shipping, c),
                    breakdown("TAX", tax, c),
                    breakdown("DISCOUNT", -discount, c),
                ],
            },
            "fulfillment": {
                "fulfillmentStatus": status_2026(order["OrderStatus"].as_str().unwrap_or_default()),
                "fulfilledBy": "MERCHANT",
            },
            "orderItems": order_items,
            "packages": packages,
        })
    }

    /// Orders of these marketplaces updated at or after `after`, oldest change first.
    fn window(&self, marketplaces: &str, after: Timestamp) -> Vec<(Timestamp, String)> {
        let marketplaces: Vec<&str> = marketplaces.split(',').map(str::trim).filter(|m| !m.is_empty()).collect();
        let state = self.state.lock().expect("state lock");
        let mut found: Vec<(Timestamp, String)> = state
            .orders
            .iter()
            .filter(|(_, p)| {
                // No marketplace filter (optional in searchOrders): every marketplace.
                marketplaces.is_empty() || p.order["MarketplaceId"].as_str().is_some_and(|m| marketplaces.contains(&m))
            })
            .filter_map(|(id, p)| Some((p.order["LastUpdateDate"].as_str()?.parse().ok()?, id.clone())))
            .filter(|(at, _)| *at >= after)
            .collect();
        found.sort();
        found
    }

    /// One page of a window: the ids on it and the token of the next.
    fn page(
        &self,
        token: Option<String>,
        after: Option<String>,
        size: Option<String>,
        marketplaces: &str,
    ) -> Result<(Vec<String>, Option<String>), HttpResponse> {
        let (after, last, size) = match token {
            Some(token) => read_token(&token).ok_or_else(|| sp_error(400, "InvalidInput", "Invalid NextToken"))?,
            None => {
                let after = after
                    .ok_or_else(|| sp_error(400, "InvalidInput", "LastUpdatedAfter or CreatedAfter is required"))?;
                let after =
                    after.parse().map_err(|_| sp_error(400, "InvalidInput", format!("{after} is not ISO 8601")))?;
                let size = size
                    .map_or(Ok(100), |s| s.parse::<usize>())
                    .map_err(|_| sp_error(400, "InvalidInput", "MaxResultsPerPage"))?;
                if !(1..=100).contains(&size) {
                    return Err(sp_error(400, "InvalidInput", "MaxResultsPerPage must be between 1 and 100"));
                }
                (after, None, size)
            }
        };
        let rest: Vec<(Timestamp, String)> =
            self.window(marketplaces, after).into_iter().filter(|key| last.as_ref().is_none_or(|l| key > l)).collect();
        let page: Vec<(Timestamp, String)> = rest.iter().take(size).cloned().collect();
        let next = (rest.len() > size).then(|| page.last().map(|l| page_token(after, l, size))).flatten();
        Ok((page.into_iter().map(|(_, id)| id).collect(), next))
    }

    fn get_orders(&self, system: &MockSystem, r: &HttpRequest) -> HttpResponse {
        let Some(marketplaces) = r.param("MarketplaceIds") else {
            return sp_error(400, "InvalidInput", "MarketplaceIds is required");
        };
        let (ids, next) = match self.page(
            r.param("NextToken"),
            r.param("LastUpdatedAfter"),
            r.param("MaxResultsPerPage"),
            &marketplaces,
        ) {
            Ok(page) => page,
            Err(refused) => return refused,
        };
        let state = self.state.lock().expect("state lock");
        let orders: Vec<Value> =
            ids.iter().filter_map(|id| state.orders.get(id)).map(|p| Self::v0(system, p).0).collect();
        let mut payload = json!({"Orders": orders});
        if let Some(next) = next {
            payload["NextToken"] = json!(next);
        }
        HttpResponse::json(200, json!({ "payload": payload }))
    }

    fn search_orders(&self, system: &MockSystem, r: &HttpRequest) -> HttpResponse {
        let marketplaces = r.param("marketplaceIds").unwrap_or_default();
        let (ids, next) = match self.page(
            r.param("paginationToken"),
            r.param("lastUpdatedAfter"),
            r.param("maxResultsPerPage"),
            &marketplaces,
        ) {
            Ok(page) => page,
            Err(refused) => return refused,
        };
        let state = self.state.lock().expect("state lock");
        let orders: Vec<Value> =
            ids.iter().filter_map(|id| state.orders.get(id)).map(|p| Self::v2026(system, p)).collect();
        let mut body = json!({"orders": orders});
        if let Some(next) = next {
            body["pagination"] = json!({"nextToken": next});
        }
        HttpResponse::json(200, body)
    }

    fn order_items(&self, system: &MockSystem, r: &HttpRequest, order_id: &str) -> HttpResponse {
        let state = self.state.lock().expect("state lock");
        let Some(placed) = state.orders.get(order_id) else {
            return sp_error(404, "NotFound", format!("Order {order_id} not found"));
        };
        let offset: usize = r.param("NextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
        let (_, items) = Self::v0(system, placed);
        let page: Vec<Value> = items.iter().skip(offset).take(ITEMS_PER_PAGE).cloned().collect();
        let mut payload = json!({"AmazonOrderId": order_id, "OrderItems": page});
        if offset + ITEMS_PER_PAGE < items.len() {
            payload["NextToken"] = json!((offset + ITEMS_PER_PAGE).to_string());
        }
        HttpResponse::json(200, json!({ "payload": payload }))
    }

    /// Checks a confirmShipment body against the order, and turns it into a system write.
    fn confirm_shipment(&self, r: &HttpRequest, order_id: &str) -> Result<Request, HttpResponse> {
        let body = r.json().map_err(|_| sp_error(400, "InvalidInput", "The request body is not JSON"))?;
        let state = self.state.lock().expect("state lock");
        let placed = state
            .orders
            .get(order_id)
            .ok_or_else(|| sp_error(404, "NotFound", format!("Order {order_id} not found")))?;
        let detail = &body["packageDetail"];
        let reference = detail["packageReferenceId"].as_str().unwrap_or_default();
        if reference.parse::<u64>().map_or(true, |n| n == 0) {
            return Err(sp_error(400, "InvalidInput", "packageReferenceId must be a positive number"));
        }
        if body["marketplaceId"] != placed.order["MarketplaceId"] {
            return Err(sp_error(400, "InvalidInput", "marketplaceId does not match the order"));
        }
        if detail["carrierCode"].as_str().is_none_or(str::is_empty) {
            return Err(sp_error(400, "InvalidInput", "carrierCode is required"));
        }
        let mut lines = Vec::new();
        for line in detail["orderItems"].as_array().into_iter().flatten() {
            let id = line["orderItemId"].as_str().unwrap_or_default();
            let quantity = line["quantity"].as_u64().unwrap_or(0);
            let ordered =
                placed.items.iter().find(|i| i["OrderItemId"] == id).and_then(|i| i["QuantityOrdered"].as_u64());
            match ordered {
                None => {
                    return Err(sp_error(
                        400,
                        "InvalidInput",
                        format!("orderItemId {id} is not part of order {order_id}"),
                    ));
                }
                Some(ordered) if quantity == 0 || quantity > ordered => {
                    return Err(sp_error(
                        400,
                        "InvalidInput",
                        format!("quantity {quantity} of orderItemId {id} is not between 1 and {ordered}"),
                    ));
                }
                Some(_) => lines.push(json!({"sku": id, "quantity": quantity})),
            }
        }
        if lines.is_empty() {
            return Err(sp_error(400, "InvalidInput", "packageDetail.orderItems is required"));
        }
        Ok(Request::Create {
            collection: Collection::Fulfillments,
            idempotency_key: None,
            body: json!({"external_ref": format!("{order_id}/{reference}"), "order": {"lines": lines}}),
        })
    }
}

impl Dialect for Amazon {
    fn route(&self, system: &MockSystem, r: &HttpRequest) -> Routed {
        let segments = r.segments();
        if r.method == "POST" && segments == ["auth", "o2", "token"] {
            return Routed::Answer(self.token(r));
        }
        let known = r
            .header("x-amz-access-token")
            .is_some_and(|t| self.state.lock().expect("state lock").tokens.iter().any(|k| k == t));
        if !known {
            return answer(sp_error(403, "Unauthorized", "Access to requested resource is denied."));
        }
        if r.method == "GET" {
            let faults = system.faults();
            let throttled =
                faults.throttle > 0.0 && self.rng.lock().expect("rng lock").random_bool(faults.throttle.min(1.0));
            if throttled {
                let refused = sp_error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.");
                return answer(refused.with_header("retry-after", faults.retry_after_s.to_string()));
            }
        }
        let response = match (r.method.as_str(), segments.as_slice()) {
            ("GET", ["orders", "v0", "orders"]) => self.get_orders(system, r),
            ("GET", ["orders", "v0", "orders", id]) => {
                let state = self.state.lock().expect("state lock");
                match state.orders.get(*id) {
                    Some(placed) => HttpResponse::json(200, json!({"payload": Self::v0(system, placed).0})),
                    None => sp_error(404, "NotFound", format!("Order {id} not found")),
                }
            }
            ("GET", ["orders", "v0", "orders", id, "orderItems"]) => self.order_items(system, r, id),
            ("GET", ["orders", "2026-01-01", "orders"]) => self.search_orders(system, r),
            ("GET", ["orders", "2026-01-01", "orders", id]) => {
                let state = self.state.lock().expect("state lock");
                match state.orders.get(*id) {
                    Some(placed) => HttpResponse::json(200, json!({"order": Self::v2026(system, placed)})),
                    None => sp_error(404, "NotFound", format!("Order {id} not found")),
                }
            }
            ("POST", ["orders", "v0", "orders", id, "shipment", "confirmation"]) => {
                return match self.confirm_shipment(r, id) {
                    Ok(write) => Routed::Write(write),
                    Err(refused) => answer(refused),
                };
            }
            _ => sp_error(404, "NotFound", format!("no route {} {}", r.method, r.path)),
        };
        answer(response)
    }

    fn reply(&self, _system: &MockSystem, _request: &HttpRequest, status: u16, body: &Value) -> HttpResponse {
        let message = body["error"].as_str().unwrap_or_default().to_owned();
        let response = match status {
            200..=299 => HttpResponse::json(204, Value::Null),
            429 => sp_error(429, "QuotaExceeded", "You exceeded your quota for the requested resource."),
            404 => sp_error(404, "NotFound", message),
            400..=499 => sp_error(400, "InvalidInput", message),
            _ => sp_error(status, "InternalFailure", message),
        };
        response.with_header("x-amzn-RateLimit-Limit", RATE_LIMIT)
    }

    fn place_order(&self, placed: Value) -> Result<Value, String> {
        let order =
            placed.get("order").cloned().ok_or("the body needs {\"order\": <v0 order>, \"items\": [<v0 items>]}")?;
        let items = placed.get("items").and_then(Value::as_array).cloned().ok_or("the body needs items")?;
        let id = order["AmazonOrderId"].as_str().ok_or("order.AmazonOrderId is required")?.to_owned();
        for key in ["PurchaseDate", "LastUpdateDate"] {
            order[key]
                .as_str()
                .and_then(|s| s.parse::<Timestamp>().ok())
                .ok_or(format!("order.{key} must be a timestamp"))?;
        }
        order["MarketplaceId"].as_str().ok_or("order.MarketplaceId is required")?;
        for item in &items {
            for key in ["OrderItemId", "SellerSKU"] {
                item[key].as_str().ok_or(format!("items[].{key} is required"))?;
            }
            item["QuantityOrdered"].as_u64().ok_or("items[].QuantityOrdered is required")?;
        }
        // Placing an order again under its id is a change to it (a new LastUpdateDate).
        self.state.lock().expect("state lock").orders.insert(id.clone(), Placed { order, items });
        Ok(json!({ "AmazonOrderId": id }))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::system::{Faults, Reply};

    fn request(method: &str, path: &str, token: Option<&str>, body: &str) -> HttpRequest {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        HttpRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: token.map(|t| ("x-amz-access-token".to_owned(), t.to_owned())).into_iter().collect(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn answered(routed: Routed) -> HttpResponse {
        match routed {
            Routed::Answer(a) => a,
            Routed::Write(w) => panic!("answered at once, not {w:?}"),
        }
    }

    fn setup() -> (Amazon, MockSystem, String) {
        let amazon = Amazon::default();
        let system = MockSystem::new("amazon", Faults { idempotency_keys: false, ..Faults::default() }, 1);
        let order = json!({
            "order": {
                "AmazonOrderId": "302-1",
                "PurchaseDate": "2026-11-26T10:00:00Z",
                "LastUpdateDate": "2026-11-26T10:00:00Z",
                "OrderStatus": "Unshipped",
                "MarketplaceId": "M1",
                "OrderTotal": {"CurrencyCode": "EUR", "Amount": "20.00"},
            },
            "items": [{
                "OrderItemId": "I1",
                "SellerSKU": "SKU-A",
                "QuantityOrdered": 2,
                "ItemPrice": {"CurrencyCode": "EUR", "Amount": "20.00"},
            }],
        });
        amazon.place_order(order).unwrap();
        let form = format!(
            "grant_type=refresh_token&refresh_token={}&client_id=c&client_secret=s",
            SIM_REFRESH_TOKEN.replace('|', "%7C")
        );
        let granted = answered(amazon.route(&system, &request("POST", "/auth/o2/token", None, &form)));
        assert_eq!(granted.status, 200);
        let token = granted.body["access_token"].as_str().unwrap().to_owned();
        (amazon, system, token)
    }

    fn confirm(amazon: &Amazon, system: &MockSystem, token: &str, package: &str, quantity: u64) -> HttpResponse {
        let body = json!({"marketplaceId": "M1", "packageDetail": {"packageReferenceId": package, "carrierCode": "DHL",
            "orderItems": [{"orderItemId": "I1", "quantity": quantity}]}});
        let r = request("POST", "/orders/v0/orders/302-1/shipment/confirmation", Some(token), &body.to_string());
        match amazon.route(system, &r) {
            Routed::Answer(a) => a,
            Routed::Write(w) => match system.handle(w) {
                Reply::Answer { status, body, .. } => amazon.reply(system, &r, status, &body),
                other => panic!("{other:?}"),
            },
        }
    }

    fn items(amazon: &Amazon, system: &MockSystem, token: &str) -> Value {
        answered(amazon.route(system, &request("GET", "/orders/v0/orders/302-1/orderItems", Some(token), ""))).body
    }

    #[test]
    fn a_package_confirmed_again_is_edited_not_counted_twice() {
        let (amazon, system, token) = setup();
        assert_eq!(confirm(&amazon, &system, &token, "1", 1).status, 204);
        assert_eq!(confirm(&amazon, &system, &token, "1", 1).status, 204);
        assert_eq!(items(&amazon, &system, &token)["payload"]["OrderItems"][0]["QuantityShipped"], 1);
        assert_eq!(confirm(&amazon, &system, &token, "2", 1).status, 204);
        assert_eq!(items(&amazon, &system, &token)["payload"]["OrderItems"][0]["QuantityShipped"], 2);
        let order =
            answered(amazon.route(&system, &request("GET", "/orders/2026-01-01/orders/302-1", Some(&token), "")));
        assert_eq!(order.body["order"]["fulfillment"]["fulfillmentStatus"], "SHIPPED");
        assert_eq!(order.body["order"]["packages"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn bad_shipments_are_refused_as_invalid_input() {
        let (amazon, system, token) = setup();
        let over = confirm(&amazon, &system, &token, "1", 3);
        assert_eq!(over.status, 400);
        assert_eq!(over.body["errors"][0]["code"], "InvalidInput");
        assert!(over.body["errors"][0]["message"].as_str().unwrap().contains("quantity"));
        assert_eq!(confirm(&amazon, &system, &token, "PKG-1", 1).status, 400, "package reference ids are numbers");
        assert!(system.applied().is_empty());
    }

    #[test]
    fn only_tokens_lwa_handed_out_are_accepted() {
        let (amazon, system, _) = setup();
        let refused =
            answered(amazon.route(&system, &request("GET", "/orders/v0/orders/302-1", Some("Atza|forged"), "")));
        assert_eq!(refused.status, 403);
        let wrong = "grant_type=refresh_token&refresh_token=other&client_id=c&client_secret=s";
        let denied = answered(amazon.route(&system, &request("POST", "/auth/o2/token", None, wrong)));
        assert_eq!((denied.status, denied.body["error"].as_str()), (400, Some("invalid_grant")));
        assert!(refused.headers.iter().any(|(n, _)| n == "x-amzn-RateLimit-Limit"));
    }
}
