//! A simulated Shopify shop behind its Admin API (`/admin/api/{version}/...`): the orders its
//! customers placed (`POST /_orders`, REST order JSON; posting a known `id` again is an edit in
//! the admin), `updated_at` in whole seconds as Shopify writes it, listed by `updated_at_min`
//! with `Link` pagination whose `page_info` is a keyset over (`updated_at`, id), so an order
//! edited between two page reads moves ahead of the reader, never behind it; fulfillment orders whose remaining quantities are the order's lines minus the
//! fulfillments the [`MockSystem`] recorded; `fulfillments.json` and `cancel.json` through the
//! system's faults (no idempotency key: a blind retry duplicates, as at Shopify); GraphQL
//! `refundCreate` with `@idempotent(key:)`, which the system honours.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use handoff_engine::poll::whole_second;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::dialect::{Dialect, HttpRequest, HttpResponse, Routed};
use crate::system::{Collection, MockSystem, Request};

/// Shopify's answer to a request without a valid token.
const UNAUTHORIZED: &str = "[API] Invalid API key or access token (unrecognized login or wrong password)";
const THROTTLED: &str =
    "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.";

/// An order as the shop keeps it, with what it has seen of the system's writes so far.
#[derive(Debug, Clone)]
struct Placed {
    json: Value,
    updated_at: Timestamp,
    cancelled_at: Option<Timestamp>,
    /// Fulfillments and refunds already reflected in `updated_at`.
    writes_seen: usize,
}

#[derive(Default)]
struct Shop {
    orders: BTreeMap<u64, Placed>,
    next_id: u64,
    /// The shop's clock when a test holds it still (`None`: the wall clock).
    clock: Option<Timestamp>,
    /// What a refund request asked for, by idempotency key: the system keeps the record, the
    /// shop the note and amount it renders.
    refund_requests: HashMap<String, Value>,
}

impl Shop {
    /// A change made in the admin: the fields given replace the order's, `updated_at` moves.
    fn edit(&mut self, id: u64, fields: Value) -> Value {
        let at = self.tick();
        let placed = self.orders.get_mut(&id).expect("the caller checked");
        for (key, value) in fields.as_object().into_iter().flatten() {
            if !matches!(key.as_str(), "id" | "created_at" | "updated_at" | "cancelled_at") {
                placed.json[key] = value.clone();
            }
        }
        placed.updated_at = at;
        placed.json["updated_at"] = json!(at);
        placed.json.clone()
    }

    /// The time of a change, as Shopify writes `updated_at`: in whole seconds, so two changes
    /// within one second carry one `updated_at`.
    fn tick(&self) -> Timestamp {
        whole_second(self.clock.unwrap_or_else(Timestamp::now))
    }
}

#[derive(Default)]
pub struct ShopifyAdmin {
    shop: Mutex<Shop>,
}

impl ShopifyAdmin {
    /// Holds the shop's clock at `at` (`None`: the wall clock again), so that a test can make
    /// several changes within one second.
    pub fn set_clock(&self, at: Option<Timestamp>) {
        self.shop.lock().expect("shop lock").clock = at;
    }
}

fn numeric(record_id: &str) -> u64 {
    1_000_000 + record_id.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0)
}

fn errors(status: u16, errors: Value) -> HttpResponse {
    HttpResponse::json(status, json!({ "errors": errors }))
}

fn sku_of(line: &Value) -> String {
    line["sku"].as_str().filter(|s| !s.is_empty()).map_or_else(|| format!("shopify-line-{}", line["id"]), str::to_owned)
}

/// Fulfillment records of one order; the system keeps them under `{order id}/{tracking number}`.
fn fulfillments_of(system: &MockSystem, order_id: u64) -> Vec<crate::system::Record> {
    let prefix = format!("{order_id}/");
    system
        .records()
        .into_iter()
        .filter(|r| r.collection == Collection::Fulfillments && r.external_ref.starts_with(&prefix))
        .collect()
}

fn refunds_of(system: &MockSystem, order_id: u64) -> Vec<crate::system::Applied> {
    let order_ref = order_id.to_string();
    system
        .applied()
        .into_iter()
        .filter(|a| a.collection == Collection::Refunds && a.op == "create" && a.external_ref == order_ref)
        .collect()
}

impl ShopifyAdmin {
    /// Brings each order's `updated_at` and `cancelled_at` up to the system's records: a change
    /// the system applied is seen even when its acknowledgment was lost.
    fn sync(&self, system: &MockSystem) {
        let mut shop = self.shop.lock().expect("shop lock");
        let ids: Vec<u64> = shop.orders.keys().copied().collect();
        for id in ids {
            let cancelled = system.find(Collection::Orders, &id.to_string()).iter().any(|r| r.status == "cancelled");
            let writes = fulfillments_of(system, id).len() + refunds_of(system, id).len();
            let Some(placed) = shop.orders.get(&id) else { continue };
            let newly_cancelled = cancelled && placed.cancelled_at.is_none();
            if newly_cancelled || writes != placed.writes_seen {
                let at = shop.tick();
                if let Some(placed) = shop.orders.get_mut(&id) {
                    placed.updated_at = at;
                    placed.writes_seen = writes;
                    if newly_cancelled {
                        placed.cancelled_at = Some(at);
                    }
                }
            }
        }
    }

    fn placed(&self, id: u64) -> Option<Placed> {
        self.shop.lock().expect("shop lock").orders.get(&id).cloned()
    }

    /// Units of each SKU fulfilled so far.
    fn fulfilled(system: &MockSystem, id: u64) -> HashMap<String, u64> {
        let mut done = HashMap::new();
        for record in fulfillments_of(system, id) {
            for (sku, quantity) in record.lines {
                *done.entry(sku).or_default() += quantity;
            }
        }
        done
    }

    fn render_fulfillment(order_id: u64, record: &crate::system::Record, order: &Value) -> Value {
        let tracking = record.external_ref.split_once('/').map(|(_, t)| t).filter(|t| !t.is_empty());
        let lines: Vec<Value> = record
            .lines
            .iter()
            .map(|(sku, quantity)| {
                let line = order["line_items"].as_array().and_then(|ls| ls.iter().find(|l| sku_of(l) == *sku));
                json!({"id": line.map(|l| l["id"].clone()), "sku": sku, "quantity": quantity})
            })
            .collect();
        json!({
            "id": numeric(&record.id),
            "order_id": order_id,
            "status": "success",
            "tracking_number": tracking,
            "line_items": lines,
        })
    }

    fn render_refund(&self, order_id: u64, applied: &crate::system::Applied) -> Value {
        let shop = self.shop.lock().expect("shop lock");
        let asked = applied.idempotency_key.as_ref().and_then(|k| shop.refund_requests.get(k)).cloned();
        let asked = asked.unwrap_or(Value::Null);
        json!({
            "id": numeric(&applied.record_id),
            "order_id": order_id,
            "note": asked["note"],
            "transactions": [{"kind": "refund", "status": "success", "amount": asked["amount"], "currency": asked["currency"]}],
        })
    }

    /// The order as `orders/{id}.json` shows it now.
    fn render(&self, system: &MockSystem, id: u64) -> Option<Value> {
        let placed = self.placed(id)?;
        let mut order = placed.json.clone();
        order["updated_at"] = json!(placed.updated_at);
        order["cancelled_at"] = json!(placed.cancelled_at);
        let fulfillments: Vec<Value> =
            fulfillments_of(system, id).iter().map(|r| Self::render_fulfillment(id, r, &placed.json)).collect();
        order["fulfillment_status"] = json!(if fulfillments.is_empty() { None } else { Some("partial") });
        order["fulfillments"] = json!(fulfillments);
        order["refunds"] = json!(refunds_of(system, id).iter().map(|a| self.render_refund(id, a)).collect::<Vec<_>>());
        Some(order)
    }

    /// One fulfillment order per order, its lines' remaining quantities derived from the
    /// system's fulfillment records (so a fulfillment whose ack was lost still counts).
    fn fulfillment_orders(system: &MockSystem, placed: &Placed, id: u64) -> Value {
        let mut done = Self::fulfilled(system, id);
        let lines: Vec<Value> = placed.json["line_items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                let quantity = l["quantity"].as_u64().unwrap_or(0);
                let used = done.entry(sku_of(l)).or_default();
                let taken = (*used).min(quantity);
                *used -= taken;
                let left = if placed.cancelled_at.is_some() { 0 } else { quantity - taken };
                let line_item_id = l["id"].as_u64().unwrap_or(0);
                json!({
                    "id": line_item_id * 10 + 1,
                    "fulfillment_order_id": id * 10 + 1,
                    "line_item_id": line_item_id,
                    "quantity": quantity,
                    "fulfillable_quantity": left,
                })
            })
            .collect();
        let open = lines.iter().any(|l| l["fulfillable_quantity"].as_u64() > Some(0));
        let status = match (placed.cancelled_at, open) {
            (Some(_), _) => "cancelled",
            (None, true) => "open",
            (None, false) => "closed",
        };
        json!({"fulfillment_orders": [{"id": id * 10 + 1, "order_id": id, "status": status, "line_items": lines}]})
    }

    fn list(&self, r: &HttpRequest, system: &MockSystem, version: &str) -> HttpResponse {
        let limit = r.param("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(50).clamp(1, 250);
        // Keyset pagination as Shopify's page_info: the filter and the last (updated_at, id) seen.
        let (since, after, status) = match r.param("page_info") {
            Some(token) => {
                let extra = form_urlencoded::parse(r.query.as_bytes())
                    .find(|(k, _)| k != "limit" && k != "page_info" && k != "fields");
                if let Some((k, _)) = extra {
                    return errors(
                        400,
                        json!({"page_info": [format!("cannot be combined with {k}: only limit and fields may be")]}),
                    );
                }
                let parts: Vec<&str> = token.split('.').collect();
                let parsed = match parts.as_slice() {
                    [since, at, id, status] => (since.parse::<i64>(), at.parse::<i64>(), id.parse::<u64>(), status),
                    _ => return errors(400, json!({"page_info": ["is invalid"]})),
                };
                match parsed {
                    (Ok(since), Ok(at), Ok(id), status) => (since, Some((at, id)), (*status).to_owned()),
                    _ => return errors(400, json!({"page_info": ["is invalid"]})),
                }
            }
            None => {
                let since = match r.param("updated_at_min").map(|s| s.parse::<Timestamp>()) {
                    None => i64::MIN,
                    Some(Ok(t)) => t.as_millisecond(),
                    Some(Err(_)) => return errors(400, json!({"updated_at_min": ["is invalid"]})),
                };
                (since, None, r.param("status").unwrap_or_else(|| "open".into()))
            }
        };
        let shop = self.shop.lock().expect("shop lock");
        let mut matching: Vec<(i64, u64)> = shop
            .orders
            .iter()
            .filter(|(_, p)| p.updated_at.as_millisecond() >= since)
            .filter(|(_, p)| match status.as_str() {
                "any" => true,
                "cancelled" => p.cancelled_at.is_some(),
                _ => p.cancelled_at.is_none(),
            })
            .map(|(id, p)| (p.updated_at.as_millisecond(), *id))
            .filter(|key| after.is_none_or(|after| *key > after))
            .collect();
        drop(shop);
        matching.sort();
        let page: Vec<(i64, u64)> = matching.iter().take(limit).copied().collect();
        let orders: Vec<Value> = page.iter().filter_map(|(_, id)| self.render(system, *id)).collect();
        let mut response = HttpResponse::json(200, json!({ "orders": orders }));
        if matching.len() > limit
            && let Some((at, id)) = page.last()
        {
            let host = r.header("host").unwrap_or("127.0.0.1");
            let token = format!("{since}.{at}.{id}.{status}");
            let link = format!(
                "<http://{host}/admin/api/{version}/orders.json?limit={limit}&page_info={token}>; rel=\"next\""
            );
            response = response.with_header("link", link);
        }
        response
    }

    fn fulfil(&self, system: &MockSystem, r: &HttpRequest) -> Routed {
        let body = match r.json() {
            Ok(body) => body,
            Err(refused) => return Routed::Answer(refused),
        };
        let refuse =
            |message: String| Routed::Answer(errors(422, json!({"line_items_by_fulfillment_order": [message]})));
        let groups = body["fulfillment"]["line_items_by_fulfillment_order"].as_array().cloned().unwrap_or_default();
        if groups.is_empty() {
            return refuse("must have at least one fulfillment order".into());
        }
        let mut order_id = None;
        let mut lines: Vec<Value> = Vec::new();
        for group in groups {
            let Some(fo_id) = group["fulfillment_order_id"].as_u64() else {
                return refuse("fulfillment_order_id is required".into());
            };
            let id = fo_id / 10;
            if order_id.is_some_and(|o| o != id) {
                return refuse("all fulfillment orders must belong to one order".into());
            }
            order_id = Some(id);
            let Some(placed) = self.placed(id).filter(|_| fo_id % 10 == 1) else {
                return Routed::Answer(errors(404, json!("Not Found")));
            };
            let open = Self::fulfillment_orders(system, &placed, id);
            let open_lines = open["fulfillment_orders"][0]["line_items"].as_array().cloned().unwrap_or_default();
            let asked: Vec<(u64, Option<u64>)> = match group["fulfillment_order_line_items"].as_array() {
                Some(items) => items.iter().map(|i| (i["id"].as_u64().unwrap_or(0), i["quantity"].as_u64())).collect(),
                None => open_lines.iter().map(|l| (l["id"].as_u64().unwrap_or(0), None)).collect(),
            };
            for (line_id, quantity) in asked {
                let Some(open_line) = open_lines.iter().find(|l| l["id"].as_u64() == Some(line_id)) else {
                    return refuse(format!("fulfillment order line item {line_id} does not exist"));
                };
                let left = open_line["fulfillable_quantity"].as_u64().unwrap_or(0);
                let quantity = quantity.unwrap_or(left);
                if quantity == 0 && left == 0 {
                    continue;
                }
                if quantity > left {
                    return refuse(format!("line item {line_id}: {quantity} requested, {left} fulfillable"));
                }
                let line_item_id = open_line["line_item_id"].as_u64();
                let line = placed.json["line_items"]
                    .as_array()
                    .and_then(|ls| ls.iter().find(|l| l["id"].as_u64() == line_item_id));
                lines.push(json!({"sku": line.map(sku_of), "quantity": quantity}));
            }
        }
        if lines.is_empty() {
            return refuse("nothing left to fulfil".into());
        }
        let Some(order_id) = order_id else { return refuse("no fulfillment order".into()) };
        let tracking = body["fulfillment"]["tracking_info"]["number"].as_str().unwrap_or("");
        // No idempotency key: Shopify has none for fulfillments, so a blind retry duplicates.
        Routed::Write(Request::Create {
            collection: Collection::Fulfillments,
            idempotency_key: None,
            body: json!({"external_ref": format!("{order_id}/{tracking}"), "order": {"lines": lines}}),
        })
    }

    fn cancel(&self, system: &MockSystem, id: u64) -> Routed {
        let Some(placed) = self.placed(id) else { return Routed::Answer(errors(404, json!("Not Found"))) };
        if placed.cancelled_at.is_some() {
            return Routed::Answer(HttpResponse::json(422, json!({"error": "Order has already been cancelled"})));
        }
        let order_ref = id.to_string();
        if system.find(Collection::Orders, &order_ref).is_empty() {
            // The system learns of a shop's order when something is first done to it; entered
            // without the fault dice, as the customer's checkout is not under test.
            let lines: Vec<Value> = placed.json["line_items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| json!({"sku": sku_of(l), "quantity": l["quantity"]}))
                .collect();
            let _ = system.apply_late(Request::Create {
                collection: Collection::Orders,
                idempotency_key: Some(format!("shopify-order-{id}")),
                body: json!({"external_ref": order_ref, "order": {"lines": lines}}),
            });
        }
        Routed::Write(Request::Cancel { body: json!({ "external_ref": order_ref }) })
    }

    fn graphql(&self, r: &HttpRequest) -> Routed {
        let body = match r.json() {
            Ok(body) => body,
            Err(refused) => return Routed::Answer(refused),
        };
        let query = body["query"].as_str().unwrap_or("");
        let graphql_error = |message: &str, code: &str| {
            Routed::Answer(HttpResponse::json(
                200,
                json!({"errors": [{"message": message, "extensions": {"code": code}}]}),
            ))
        };
        if !query.contains("refundCreate") {
            return graphql_error("this simulated shop answers only refundCreate", "BAD_REQUEST");
        }
        let Some(key) = idempotency_key(query) else {
            return graphql_error("refundCreate requires the @idempotent directive", "BAD_REQUEST");
        };
        let input = &body["variables"]["input"];
        let user_error = |field: &[&str], message: &str| {
            Routed::Answer(HttpResponse::json(
                200,
                json!({"data": {"refundCreate": {"refund": null, "userErrors": [{"field": field, "message": message}]}}}),
            ))
        };
        let id =
            input["orderId"].as_str().and_then(|g| g.strip_prefix("gid://shopify/Order/")).and_then(|n| n.parse().ok());
        let Some(placed) = id.and_then(|id| self.placed(id).map(|p| (id, p))) else {
            return user_error(&["orderId"], "Order does not exist");
        };
        let (id, placed) = placed;
        let amount = input["transactions"][0]["amount"].clone();
        if amount.is_null() {
            return user_error(&["transactions"], "a refund transaction is required");
        }
        self.shop
            .lock()
            .expect("shop lock")
            .refund_requests
            .entry(key.clone())
            .or_insert_with(|| json!({"note": input["note"], "amount": amount, "currency": placed.json["currency"]}));
        Routed::Write(Request::Create {
            collection: Collection::Refunds,
            idempotency_key: Some(key),
            body: json!({"external_ref": id.to_string(), "order": {"lines": []}}),
        })
    }
}

/// The key of `@idempotent(key: "...")` in a GraphQL document.
fn idempotency_key(query: &str) -> Option<String> {
    let rest = query.split_once("@idempotent")?.1.trim_start().strip_prefix('(')?;
    let rest = rest.trim_start().strip_prefix("key")?.trim_start().strip_prefix(':')?.trim_start();
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    stream.next()?.ok()
}

impl Dialect for ShopifyAdmin {
    fn route(&self, system: &MockSystem, r: &HttpRequest) -> Routed {
        if r.header("x-shopify-access-token").is_none_or(str::is_empty) {
            return Routed::Answer(errors(401, json!(UNAUTHORIZED)));
        }
        self.sync(system);
        let segments = r.segments();
        let (version, rest) = match segments.as_slice() {
            ["admin", "api", version, rest @ ..] => (*version, rest),
            _ => return Routed::Answer(errors(404, json!("Not Found"))),
        };
        let order = |s: &str| s.trim_end_matches(".json").parse::<u64>().ok();
        let not_found = || Routed::Answer(errors(404, json!("Not Found")));
        match (r.method.as_str(), rest) {
            ("GET", ["orders.json"]) => Routed::Answer(self.list(r, system, version)),
            ("GET", ["orders", id]) => match order(id).and_then(|id| self.render(system, id)) {
                Some(o) => Routed::Answer(HttpResponse::json(200, json!({ "order": o }))),
                None => not_found(),
            },
            ("GET", ["orders", id, "fulfillment_orders.json"]) => {
                match order(id).and_then(|id| self.placed(id).map(|p| (id, p))) {
                    Some((id, placed)) => {
                        Routed::Answer(HttpResponse::json(200, Self::fulfillment_orders(system, &placed, id)))
                    }
                    None => not_found(),
                }
            }
            ("GET", ["orders", id, "transactions.json"]) => {
                match order(id).and_then(|id| self.placed(id).map(|p| (id, p))) {
                    Some((id, placed)) => Routed::Answer(HttpResponse::json(
                        200,
                        json!({"transactions": [{
                            "id": id * 10 + 2, "order_id": id, "kind": "sale", "status": "success", "gateway": "bogus",
                            "amount": placed.json["total_price"], "currency": placed.json["currency"],
                        }]}),
                    )),
                    None => not_found(),
                }
            }
            ("GET", ["orders", id, "refunds.json"]) => match order(id).filter(|id| self.placed(*id).is_some()) {
                Some(id) => {
                    let refunds: Vec<Value> =
                        refunds_of(system, id).iter().map(|a| self.render_refund(id, a)).collect();
                    Routed::Answer(HttpResponse::json(200, json!({ "refunds": refunds })))
                }
                None => not_found(),
            },
            ("POST", ["orders", id, "cancel.json"]) => match order(id) {
                Some(id) => self.cancel(system, id),
                None => not_found(),
            },
            ("POST", ["fulfillments.json"]) => self.fulfil(system, r),
            ("POST", ["graphql.json"]) => self.graphql(r),
            _ => not_found(),
        }
    }

    fn reply(&self, system: &MockSystem, r: &HttpRequest, status: u16, body: &Value) -> HttpResponse {
        let graphql = r.path.ends_with("/graphql.json");
        match status {
            429 if graphql => HttpResponse::json(
                200,
                json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}),
            ),
            429 => errors(429, json!(THROTTLED)),
            200..=299 => {
                self.sync(system);
                let id = body["id"].as_str().unwrap_or("");
                if graphql {
                    let refund = json!({"id": format!("gid://shopify/Refund/{}", numeric(id))});
                    return HttpResponse::json(
                        200,
                        json!({"data": {"refundCreate": {"refund": refund, "userErrors": []}}}),
                    );
                }
                if r.path.ends_with("/cancel.json") {
                    let order_id = r.segments().iter().rev().nth(1).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                    return HttpResponse::json(200, json!({"order": self.render(system, order_id)}));
                }
                let Some(record) = system.records().into_iter().find(|rec| rec.id == id) else {
                    return errors(500, json!("record vanished"));
                };
                let order_id = record.external_ref.split('/').next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                let order = self.placed(order_id).map(|p| p.json).unwrap_or(Value::Null);
                HttpResponse::json(201, json!({"fulfillment": Self::render_fulfillment(order_id, &record, &order)}))
            }
            _ => {
                let message = body["error"].as_str().unwrap_or("error").to_owned();
                match body["field"].as_str() {
                    Some(field) => errors(status, json!({ field: [message] })),
                    None => errors(status, json!(message)),
                }
            }
        }
    }

    /// Shopify's REST throttle answers `Retry-After: 2.0`.
    fn retry_after(&self, seconds: u64) -> String {
        format!("{seconds}.0")
    }

    fn place_order(&self, order: Value) -> Result<Value, String> {
        let mut order = match order.get("order") {
            Some(inner) if inner.is_object() => inner.clone(),
            _ => order,
        };
        if !order.is_object() {
            return Err("an order is a JSON object".into());
        }
        if order["currency"].as_str().is_none() || order["total_price"].as_str().is_none() {
            return Err("a Shopify order needs currency and total_price".into());
        }
        let mut shop = self.shop.lock().expect("shop lock");
        if let Some(id) = order["id"].as_u64()
            && shop.orders.contains_key(&id)
        {
            return Ok(json!({ "order": shop.edit(id, order) }));
        }
        shop.next_id = shop.next_id.max(450_789_468) + 1;
        let id = order["id"].as_u64().unwrap_or(shop.next_id);
        for (n, line) in order["line_items"].as_array_mut().into_iter().flatten().enumerate() {
            if line["id"].as_u64().is_none() {
                line["id"] = json!(id * 100 + n as u64 + 1);
            }
        }
        let at = shop.tick();
        order["id"] = json!(id);
        order["name"] =
            order.get("name").cloned().filter(|n| n.is_string()).unwrap_or_else(|| json!(format!("#{}", id % 10_000)));
        order["created_at"] = json!(at);
        order["updated_at"] = json!(at);
        order["cancelled_at"] = Value::Null;
        shop.orders.insert(id, Placed { json: order.clone(), updated_at: at, cancelled_at: None, writes_seen: 0 });
        Ok(json!({ "order": order }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idempotency_key_is_read_from_the_directive() {
        let q = r#"mutation M($input: RefundInput!) { refundCreate(input: $input) @idempotent(key: "k-\"1\"") { refund { id } } }"#;
        assert_eq!(idempotency_key(q).as_deref(), Some("k-\"1\""));
        assert_eq!(idempotency_key("mutation { refundCreate(input: {}) { refund { id } } }"), None);
    }
}
