//! A simulated WooCommerce store behind its REST API (`/wp-json/wc/v3/orders`): the orders its
//! customers placed or changed (`POST /_orders`, REST v3 order JSON; posting a known id again
//! is a change), listed by `modified_after`/`modified_before` (exclusive, in seconds),
//! `exclude`, `orderby` (the schema's values; ties of a date in no documented order) and
//! `per_page`/`page` with the `X-WP-Total` and `X-WP-TotalPages` headers, behind HTTP basic
//! auth with a REST API key. Handoff writes
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

/// The ids of an array parameter: `exclude=1,2` or `exclude[]=1&exclude[]=2`, as WordPress
/// reads them (`wp_parse_id_list`).
fn ids(r: &HttpRequest, name: &str) -> Vec<u64> {
    let bracketed = format!("{name}[]");
    form_urlencoded::parse(r.query.as_bytes())
        .filter(|(k, _)| *k == name || *k == bracketed)
        .flat_map(|(_, v)| v.split([',', ' ']).filter_map(|id| id.trim().parse().ok()).collect::<Vec<u64>>())
        .collect()
}

/// `orderby` as the REST controller's schema allows it.
const ORDER_BY: [&str; 6] = ["date", "id", "include", "title", "slug", "modified"];

impl WooCommerce {
    fn list(&self, r: &HttpRequest) -> HttpResponse {
        let date = |name: &str| match r.param(name).map(|s| s.trim_end_matches('Z').parse::<DateTime>()) {
            None => Ok(None),
            Some(Ok(at)) => Ok(Some(at)),
            Some(Err(_)) => Err(refusal(400, "rest_invalid_param", &format!("Invalid parameter(s): {name}"))),
        };
        let (after, before) = match (date("modified_after"), date("modified_before")) {
            (Ok(after), Ok(before)) => (after, before),
            (Err(refused), _) | (_, Err(refused)) => return refused,
        };
        let per_page = r.param("per_page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(10);
        if !(1..=100).contains(&per_page) {
            return refusal(400, "rest_invalid_param", "Invalid parameter(s): per_page");
        }
        let order_by = r.param("orderby").unwrap_or_else(|| "date".into());
        if !ORDER_BY.contains(&order_by.as_str()) {
            return refusal(400, "rest_invalid_param", "Invalid parameter(s): orderby");
        }
        let page = r.param("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
        let excluded = ids(r, "exclude");
        let store = self.store.lock().expect("store lock");
        // Both date bounds are exclusive, as WP_Query's date_query leaves them.
        let mut orders: Vec<&Value> = store
            .orders
            .values()
            .filter(|o| after.is_none_or(|after| modified(o).is_some_and(|m| m > after)))
            .filter(|o| before.is_none_or(|before| modified(o).is_some_and(|m| m < before)))
            .filter(|o| !o["id"].as_u64().is_some_and(|id| excluded.contains(&id)))
            .collect();
        // Ties of a date are in no documented order: here the newest id first, so that a
        // reader relying on ids to break them finds out.
        let key = |o: &&Value| std::cmp::Reverse(o["id"].as_u64());
        match order_by.as_str() {
            "modified" => orders.sort_by_key(|o| (modified(o), key(o))),
            "date" => orders.sort_by_key(|o| (o["date_created_gmt"].as_str().map(str::to_owned), key(o))),
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
