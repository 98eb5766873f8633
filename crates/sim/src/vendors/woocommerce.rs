//! A simulated WooCommerce store behind its REST API (`/wp-json/wc/v3/orders`): the orders its
//! customers placed or changed (`POST /_orders`, REST v3 order JSON; posting a known id again
//! is a change), listed by `modified_after` with `per_page`/`page` and the `X-WP-Total` and
//! `X-WP-TotalPages` headers, behind HTTP basic auth with a REST API key. Handoff writes
//! nothing to WooCommerce, so no request goes through the system's faults.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;
use jiff::civil::DateTime;
use serde_json::{Value, json};

use crate::dialect::{Dialect, HttpRequest, HttpResponse, Routed};
use crate::system::MockSystem;

#[derive(Default)]
struct Store {
    orders: BTreeMap<u64, Value>,
    next_id: u64,
}

#[derive(Default)]
pub struct WooCommerce {
    store: Mutex<Store>,
}

fn refusal(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::json(status, json!({"code": code, "message": message, "data": {"status": status}}))
}

/// WooCommerce's `_gmt` dates: UTC without a zone, to the second.
fn gmt(at: Timestamp) -> String {
    at.to_zoned(jiff::tz::TimeZone::UTC).datetime().strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

fn modified(order: &Value) -> Option<DateTime> {
    order["date_modified_gmt"].as_str()?.parse().ok()
}

impl WooCommerce {
    fn list(&self, r: &HttpRequest) -> HttpResponse {
        let after = match r.param("modified_after").map(|s| s.trim_end_matches('Z').parse::<DateTime>()) {
            None => None,
            Some(Ok(at)) => Some(at),
            Some(Err(_)) => return refusal(400, "rest_invalid_param", "Invalid parameter(s): modified_after"),
        };
        let per_page = r.param("per_page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(10);
        if !(1..=100).contains(&per_page) {
            return refusal(400, "rest_invalid_param", "Invalid parameter(s): per_page");
        }
        let page = r.param("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
        let store = self.store.lock().expect("store lock");
        let mut orders: Vec<&Value> = store
            .orders
            .values()
            .filter(|o| after.is_none_or(|after| modified(o).is_some_and(|m| m > after)))
            .collect();
        match r.param("orderby").as_deref() {
            Some("modified") => orders.sort_by_key(|o| (modified(o), o["id"].as_u64())),
            _ => orders.sort_by_key(|o| o["id"].as_u64()),
        }
        if r.param("order").as_deref() != Some("asc") {
            orders.reverse();
        }
        let total = orders.len();
        let pages = total.div_ceil(per_page);
        let body: Vec<Value> = orders.into_iter().skip((page - 1) * per_page).take(per_page).cloned().collect();
        HttpResponse::json(200, Value::Array(body))
            .with_header("x-wp-total", total.to_string())
            .with_header("x-wp-totalpages", pages.to_string())
    }
}

impl Dialect for WooCommerce {
    fn route(&self, _system: &MockSystem, r: &HttpRequest) -> Routed {
        let basic =
            r.header("authorization").and_then(|a| a.strip_prefix("Basic ")).is_some_and(|c| !c.trim().is_empty());
        if !basic {
            return Routed::Answer(refusal(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."));
        }
        match (r.method.as_str(), r.segments().as_slice()) {
            ("GET", ["wp-json", "wc", "v3", "orders"]) => Routed::Answer(self.list(r)),
            ("GET", ["wp-json", "wc", "v3", "orders", id]) => {
                let found = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| self.store.lock().expect("store lock").orders.get(&id).cloned());
                Routed::Answer(match found {
                    Some(order) => HttpResponse::json(200, order),
                    None => refusal(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID."),
                })
            }
            _ => {
                Routed::Answer(refusal(404, "rest_no_route", "No route was found matching the URL and request method."))
            }
        }
    }

    fn reply(&self, _system: &MockSystem, _request: &HttpRequest, status: u16, body: &Value) -> HttpResponse {
        HttpResponse::json(status, body.clone())
    }

    fn place_order(&self, order: Value) -> Result<Value, String> {
        if !order.is_object() {
            return Err("an order is a JSON object".into());
        }
        let mut order = order;
        let mut store = self.store.lock().expect("store lock");
        store.next_id = store.next_id.max(726) + 1;
        let id = order["id"].as_u64().unwrap_or(store.next_id);
        let now = gmt(Timestamp::now());
        let created = store.orders.get(&id).map(|o| o["date_created_gmt"].clone());
        order["id"] = json!(id);
        order["number"] =
            order.get("number").cloned().filter(Value::is_string).unwrap_or_else(|| json!(id.to_string()));
        order["date_created_gmt"] =
            created.unwrap_or_else(|| order.get("date_created_gmt").cloned().unwrap_or(json!(now)));
        if order["date_modified_gmt"].as_str().is_none() {
            order["date_modified_gmt"] = json!(now);
        }
        store.orders.insert(id, order.clone());
        Ok(order)
    }
}
