//! A simulated NetSuite account: SuiteTalk REST's salesOrder upsert by external id, read by
//! external id, closing an order's lines, and the SuiteQL the NetSuite connector sends for item
//! fulfillments. Every request must carry an OAuth 1.0 `Authorization` signed with
//! [`credentials`] (HMAC-SHA256), or it is refused 401 as NetSuite does. Errors are RFC 7807
//! bodies with NetSuite's `o:errorDetails`.
//!
//! Orders live in the [`MockSystem`] (its faults, idempotency and history); only item
//! fulfillments, which the system does not model, live here. A write is a create the first
//! time an external id is seen (its idempotency key is derived from the external id, so two
//! racing creates still make one order) and an update after.

use std::sync::Mutex;

use handoff_connectors::netsuite::{DEFAULT_VERSION_FIELD, RECORD_PATH, SUITEQL_PATH, oauth};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::dialect::{Dialect, HttpRequest, HttpResponse, Routed};
use crate::system::{Collection, MockSystem, Record, Request};

/// The fixed test account the simulator accepts (document them in a test `handoff.toml`):
/// `account`, `consumer_key`, `consumer_secret`, `token_id`, `token_secret`.
pub const CREDENTIALS: [(&str, &str); 5] = [
    ("account", "TSTDRV1234567"),
    ("consumer_key", "sim-consumer-key"),
    ("consumer_secret", "sim-consumer-secret"),
    ("token_id", "sim-token-id"),
    ("token_secret", "sim-token-secret"),
];

/// [`CREDENTIALS`] (and `extra` settings such as `customer_id`) as a contract's `credentials`
/// inline table, for a `handoff.toml` that runs against the simulator.
pub fn contract_credentials(extra: &[(&str, &str)]) -> String {
    let pairs: Vec<String> = CREDENTIALS.iter().chain(extra).map(|(k, v)| format!("{k} = \"{v}\"")).collect();
    format!("{{ {} }}", pairs.join(", "))
}

/// [`CREDENTIALS`] as the signer wants them.
pub fn credentials() -> oauth::Credentials {
    let get = |key: &str| CREDENTIALS.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned()).unwrap_or_default();
    oauth::Credentials {
        realm: oauth::realm(&get("account")),
        consumer_key: get("consumer_key"),
        consumer_secret: get("consumer_secret"),
        token_id: get("token_id"),
        token_secret: get("token_secret"),
    }
}

/// An item fulfillment recorded by `POST /_fulfil`.
#[derive(Debug, Clone)]
struct ItemFulfillment {
    id: String,
    /// The sales order's external id.
    order_ref: String,
    lines: Vec<(String, u64)>,
    carrier: String,
    tracking_number: String,
    /// NetSuite keeps seconds.
    last_modified: Timestamp,
}

pub struct NetSuite {
    credentials: oauth::Credentials,
    fulfillments: Mutex<Vec<ItemFulfillment>>,
}

impl Default for NetSuite {
    fn default() -> Self {
        NetSuite { credentials: credentials(), fulfillments: Mutex::default() }
    }
}

/// An RFC 7807 body as NetSuite writes it.
pub fn problem(status: u16, title: &str, code: &str, detail: &str, path: Option<&str>) -> HttpResponse {
    let mut detail = json!({"detail": detail, "o:errorCode": code});
    if let Some(path) = path {
        detail["o:errorPath"] = json!(path);
    }
    HttpResponse::json(
        status,
        json!({
            "type": format!("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.{}", if status >= 500 { "6.1" } else { "5.1" }),
            "title": title,
            "status": status,
            "o:errorDetails": [detail],
        }),
    )
}

/// The salesOrder field NetSuite would name for a canonical order field the system requires.
fn netsuite_path(field: &str) -> String {
    let field = field.strip_prefix("order.").unwrap_or(field);
    // A salesOrder field required as such (`salesOrder.department` in the faults) is named as is.
    if let Some(own) = field.strip_prefix("salesOrder.") {
        return own.to_owned();
    }
    match field {
        "customer.email" => "email".into(),
        "customer.name" | "customer" => "entity".into(),
        "name" => "otherRefNum".into(),
        "currency" => "currency".into(),
        "lines" => "item".into(),
        other => match other.strip_prefix("shipping_address.") {
            Some(part) => {
                let part = match part {
                    "line1" => "addr1",
                    "line2" => "addr2",
                    "postal_code" => "zip",
                    "region" => "state",
                    "name" => "addressee",
                    other => other,
                };
                format!("shippingAddress.{part}")
            }
            None => other.to_owned(),
        },
    }
}

/// The salesOrder record's metadata as the catalog serves it (JSON Schema): the fields the
/// simulator reads, required as it requires them, plus any `salesOrder.<field>` its faults
/// require (how a test makes NetSuite require a new field).
fn metadata(system: &MockSystem, r: &HttpRequest) -> HttpResponse {
    if r.header("accept") != Some("application/schema+json") {
        let detail = "The metadata catalog answers Accept: application/schema+json.";
        return problem(400, "Bad Request", "INVALID_HEADER", detail, None);
    }
    let reference =
        |record: &str| json!({"type": "object", "$ref": format!("/services/rest/record/v1/metadata-catalog/{record}")});
    let mut properties = json!({
        "externalId": {"type": "string", "title": "External ID"},
        "entity": reference("customer"),
        "email": {"type": "string", "title": "Email"},
        "tranDate": {"type": "string", "format": "date", "title": "Date"},
        "currency": reference("currency"),
        "otherRefNum": {"type": "string", "title": "PO/Check Number"},
        "memo": {"type": "string", "title": "Memo"},
        "shippingCost": {"type": "number", "title": "Shipping Cost"},
        "shippingAddress": {"type": "object", "title": "Shipping Address"},
        "item": {"type": "object", "title": "Items"},
    });
    let mut required: Vec<String> =
        ["externalId", "entity", "tranDate", "currency", "item"].iter().map(|s| (*s).to_owned()).collect();
    for field in system.faults().required_fields {
        if let Some(own) = field.strip_prefix("salesOrder.") {
            properties[own] = json!({"type": "object", "title": own});
            required.push(own.to_owned());
        }
    }
    HttpResponse::json(200, json!({"type": "object", "properties": properties, "required": required}))
}

/// A salesOrder body as the system's order (canonical paths, so required fields apply).
fn system_body(external_ref: &str, so: &Value) -> Value {
    let lines: Vec<Value> = so["item"]["items"]
        .as_array()
        .map(|items| items.iter().map(|i| json!({"sku": i["item"]["externalId"], "quantity": i["quantity"]})).collect())
        .unwrap_or_default();
    let address = &so["shippingAddress"];
    let shipping_address = if address.is_object() {
        json!({"name": address["addressee"], "line1": address["addr1"], "line2": address["addr2"],
            "city": address["city"], "region": address["state"], "postal_code": address["zip"],
            "country": address["country"]["id"]})
    } else {
        Value::Null
    };
    // NetSuite's order amount before its own tax: the line amounts plus the shipping cost.
    let decimal = |v: &Value| v.to_string().trim_matches('"').parse::<rust_decimal::Decimal>().ok();
    let amount = so["item"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| decimal(&i["amount"]))
        .sum::<Option<rust_decimal::Decimal>>();
    let amount = amount.map(|a| a + decimal(&so["shippingCost"]).unwrap_or_default()).map(|a| a.to_string());
    json!({
        "external_ref": external_ref,
        "version": so[DEFAULT_VERSION_FIELD],
        "order": {
            "amount": amount,
            "name": so["otherRefNum"],
            "customer": {"email": so["email"], "name": so["entity"]["id"].as_str().or(so["entity"]["externalId"].as_str())},
            "currency": so["currency"]["externalId"],
            "shipping_address": shipping_address,
            "lines": lines,
            // The body as sent, so a fault can require a salesOrder field by its own name.
            "salesOrder": so,
        },
    })
}

fn status_of(record: &Record) -> Value {
    if record.status == "cancelled" {
        json!({"id": "H", "refName": "Closed"})
    } else {
        json!({"id": "B", "refName": "Pending Fulfillment"})
    }
}

/// A stored order as `GET salesOrder/eid:...` answers it; lines only when expanded.
fn sales_order(record: &Record, expanded: bool) -> Value {
    let closed = record.status == "cancelled";
    let item = if expanded {
        let items: Vec<Value> = record
            .lines
            .iter()
            .enumerate()
            .map(|(i, (sku, quantity))| {
                json!({"line": i + 1, "item": {"externalId": sku}, "quantity": quantity, "isClosed": closed})
            })
            .collect();
        json!({"items": items})
    } else {
        json!({"links": [{"rel": "self", "href": format!("{RECORD_PATH}/salesOrder/{}/item", record.id)}]})
    };
    json!({
        "id": record.id,
        "externalId": record.external_ref,
        "orderStatus": status_of(record),
        "status": status_of(record),
        DEFAULT_VERSION_FIELD: record.version,
        "item": item,
    })
}

/// The text between `open` and the next `close` after it.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}

impl NetSuite {
    /// The URL the client signed: it reached us through `Host`.
    fn signed_url(r: &HttpRequest) -> Option<reqwest::Url> {
        let query = if r.query.is_empty() { String::new() } else { format!("?{}", r.query) };
        reqwest::Url::parse(&format!("http://{}{}{query}", r.header("host")?, r.path)).ok()
    }

    fn authenticate(&self, r: &HttpRequest) -> Result<(), HttpResponse> {
        let refused = |why: String| {
            problem(401, "Unauthorized", "INVALID_LOGIN_ATTEMPT", &format!("Invalid login attempt: {why}"), None)
        };
        let header = r.header("authorization").ok_or_else(|| refused("no Authorization header".into()))?;
        let url = Self::signed_url(r).ok_or_else(|| refused("no Host".into()))?;
        oauth::verify(&self.credentials, &r.method, &url, header).map_err(refused)
    }

    /// The external id in `salesOrder/eid:{id}`.
    fn external_ref(segment: &str) -> Option<String> {
        let eid = segment.strip_prefix("eid:")?;
        percent_encoding::percent_decode_str(eid).decode_utf8().ok().map(|s| s.into_owned())
    }

    fn suiteql(&self, r: &HttpRequest) -> HttpResponse {
        if r.header("prefer") != Some("transient") {
            return problem(
                400,
                "Bad Request",
                "INVALID_HEADER",
                "SuiteQL requires the header Prefer: transient.",
                None,
            );
        }
        let Some(q) = r.json().ok().and_then(|b| b["q"].as_str().map(str::to_owned)) else {
            return problem(400, "Bad Request", "INVALID_CONTENT", "The request body must be {\"q\": \"...\"}.", None);
        };
        let limit: usize = r.param("limit").and_then(|l| l.parse().ok()).unwrap_or(1000).clamp(1, 1000);
        let offset: usize = r.param("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let fulfillments = self.fulfillments.lock().expect("fulfillments lock").clone();
        let rows: Vec<Value> = if q.contains("FROM transactionline l") {
            let ids: Vec<String> = between(&q, "IN (", ")")
                .unwrap_or("")
                .split(',')
                .map(|id| id.trim().trim_matches('\'').replace("''", "'"))
                .collect();
            fulfillments
                .iter()
                .filter(|f| ids.contains(&f.id))
                .flat_map(|f| {
                    f.lines.iter().map(|(sku, quantity)| {
                        json!({"links": [], "fulfillment": f.id, "sku": sku, "quantity": quantity.to_string()})
                    })
                })
                .collect()
        } else if q.contains("f.type = 'ItemShip'") {
            let since = between(&q, "TO_TIMESTAMP('", "'")
                .and_then(|s| jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", s).ok())
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp());
            let Some(since) = since else {
                return problem(400, "Bad Request", "INVALID_SEARCH", "Unreadable TO_TIMESTAMP.", None);
            };
            let mut changed: Vec<&ItemFulfillment> = fulfillments.iter().filter(|f| f.last_modified >= since).collect();
            changed.sort_by(|a, b| (a.last_modified, &a.id).cmp(&(b.last_modified, &b.id)));
            changed
                .into_iter()
                .map(|f| {
                    let modified =
                        f.last_modified.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%dT%H:%M:%S").to_string();
                    json!({"links": [], "id": f.id, "last_modified": modified, "order_ref": f.order_ref,
                        "carrier": f.carrier, "tracking_number": f.tracking_number})
                })
                .collect()
        } else {
            return problem(
                400,
                "Bad Request",
                "INVALID_SEARCH",
                "The simulator answers the connector's own queries only.",
                None,
            );
        };
        let total = rows.len();
        let items: Vec<Value> = rows.into_iter().skip(offset).take(limit).collect();
        let has_more = offset + items.len() < total;
        HttpResponse::json(
            200,
            json!({"links": [], "count": items.len(), "hasMore": has_more, "offset": offset, "totalResults": total, "items": items}),
        )
    }

    /// `PATCH salesOrder/eid:...` closing every line: the system's cancel.
    fn close(&self, system: &MockSystem, r: &HttpRequest, external_ref: String) -> Routed {
        let body = match r.json() {
            Ok(body) => body,
            Err(_) => return Routed::Answer(problem(400, "Bad Request", "INVALID_CONTENT", "Body is not JSON.", None)),
        };
        let Some(record) = system.find(Collection::Orders, &external_ref).into_iter().next() else {
            return Routed::Answer(not_found(&external_ref));
        };
        let closed: Vec<u64> = body["item"]["items"]
            .as_array()
            .map(|items| {
                items.iter().filter(|i| i["isClosed"] == json!(true)).filter_map(|i| i["line"].as_u64()).collect()
            })
            .unwrap_or_default();
        let every_line = (1..=record.lines.len() as u64).all(|n| closed.contains(&n));
        if !every_line || record.lines.is_empty() {
            return Routed::Answer(problem(
                400,
                "Bad Request",
                "USER_ERROR",
                "The simulated NetSuite takes PATCHes that close every line of an order only.",
                Some("item"),
            ));
        }
        Routed::Write(Request::Cancel {
            body: json!({"external_ref": external_ref, "version": body[DEFAULT_VERSION_FIELD]}),
        })
    }
}

fn not_found(external_ref: &str) -> HttpResponse {
    problem(
        404,
        "Record Not Found",
        "NONEXISTENT_ID",
        &format!("The record instance does not exist. Provided id: eid:{external_ref}."),
        None,
    )
}

impl Dialect for NetSuite {
    fn route(&self, system: &MockSystem, r: &HttpRequest) -> Routed {
        if let Err(refused) = self.authenticate(r) {
            return Routed::Answer(refused);
        }
        let record_path: Vec<&str> = RECORD_PATH.split('/').filter(|s| !s.is_empty()).collect();
        let suiteql_path: Vec<&str> = SUITEQL_PATH.split('/').filter(|s| !s.is_empty()).collect();
        let segments = r.segments();
        if r.method == "POST" && segments == suiteql_path {
            return Routed::Answer(self.suiteql(r));
        }
        if r.method == "GET"
            && segments.strip_prefix(record_path.as_slice()) == Some(&["metadata-catalog", "salesOrder"])
        {
            return Routed::Answer(metadata(system, r));
        }
        let external_ref = match segments.strip_prefix(record_path.as_slice()) {
            Some(["salesOrder", eid]) => Self::external_ref(eid),
            _ => None,
        };
        let Some(external_ref) = external_ref else {
            return Routed::Answer(problem(
                404,
                "Not Found",
                "INVALID_URL",
                &format!("No route {} {}.", r.method, r.path),
                None,
            ));
        };
        match r.method.as_str() {
            "GET" => {
                let expanded = r.param("expandSubResources").as_deref() == Some("true");
                Routed::Answer(match system.find(Collection::Orders, &external_ref).first() {
                    Some(record) => HttpResponse::json(200, sales_order(record, expanded)),
                    None => not_found(&external_ref),
                })
            }
            "PUT" => {
                let so = match r.json() {
                    Ok(so) => so,
                    Err(_) => {
                        return Routed::Answer(problem(
                            400,
                            "Bad Request",
                            "INVALID_CONTENT",
                            "Body is not JSON.",
                            None,
                        ));
                    }
                };
                let body = system_body(&external_ref, &so);
                let exists = !system.find(Collection::Orders, &external_ref).is_empty();
                if exists && r.param("replace").as_deref() != Some("item") {
                    // Real NetSuite would add the sent lines beside the old ones.
                    let detail = "The simulator refuses an update that would append lines: send replace=item.";
                    return Routed::Answer(problem(400, "Bad Request", "USER_ERROR", detail, Some("item")));
                }
                if !exists {
                    let idempotency_key = Some(format!("eid:{external_ref}"));
                    Routed::Write(Request::Create { collection: Collection::Orders, idempotency_key, body })
                } else {
                    Routed::Write(Request::Update { body })
                }
            }
            "PATCH" => self.close(system, r, external_ref),
            _ => Routed::Answer(problem(405, "Method Not Allowed", "INVALID_METHOD", "Method not allowed.", None)),
        }
    }

    fn reply(&self, _system: &MockSystem, r: &HttpRequest, status: u16, body: &Value) -> HttpResponse {
        if (200..300).contains(&status) {
            let id = body["id"].as_str().unwrap_or_default();
            let host = r.header("host").unwrap_or("localhost");
            return HttpResponse::json(204, Value::Null)
                .with_header("location", format!("http://{host}{RECORD_PATH}/salesOrder/{id}"));
        }
        let error = body["error"].as_str().unwrap_or("error");
        match status {
            422 | 400 => {
                let path = body["field"].as_str().map(netsuite_path);
                let detail = match &path {
                    Some(path) => format!("Please enter value(s) for: {path}."),
                    None => error.to_owned(),
                };
                problem(400, "Bad Request", "USER_ERROR", &detail, path.as_deref())
            }
            404 => problem(404, "Record Not Found", "NONEXISTENT_ID", error, None),
            429 => problem(
                429,
                "Too Many Requests",
                "CONCURRENCY_LIMIT_EXCEEDED",
                "Concurrent request limit exceeded. Request blocked.",
                None,
            ),
            _ => problem(status, "Internal Server Error", "UNEXPECTED_ERROR", error, None),
        }
    }

    fn fulfil(&self, system: &MockSystem, external_ref: &str) -> Option<HttpResponse> {
        let Some(order) = system.find(Collection::Orders, external_ref).into_iter().next() else {
            return Some(HttpResponse::json(404, json!({"error": format!("no sales order {external_ref}")})));
        };
        let mut fulfillments = self.fulfillments.lock().expect("fulfillments lock");
        let n = fulfillments.len() + 1;
        let now = Timestamp::now();
        let fulfillment = ItemFulfillment {
            id: format!("{}", 9000 + n),
            order_ref: external_ref.to_owned(),
            lines: crate::system::shippable(&order.lines),
            carrier: "UPS".into(),
            tracking_number: format!("1Z{n:08}"),
            last_modified: Timestamp::from_second(now.as_second()).unwrap_or(now),
        };
        let answer = json!({"id": fulfillment.id, "order_ref": external_ref, "created_from": order.id});
        fulfillments.push(fulfillment);
        Some(HttpResponse::json(201, answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Faults;

    /// A request signed with the simulator's own test account.
    fn signed(method: &str, path_and_query: &str, body: Value, extra: &[(&str, &str)]) -> HttpRequest {
        let url = reqwest::Url::parse(&format!("http://ns.test{path_and_query}")).unwrap();
        let authorization = oauth::authorization(&credentials(), method, &url, 1_800_000_000, "nonce");
        let mut headers = vec![("host".to_owned(), "ns.test".to_owned()), ("authorization".to_owned(), authorization)];
        headers.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        HttpRequest {
            method: method.into(),
            path: url.path().into(),
            query: url.query().unwrap_or("").into(),
            headers,
            body: if body.is_null() { Default::default() } else { body.to_string().into() },
        }
    }

    fn answer(routed: Routed) -> HttpResponse {
        match routed {
            Routed::Answer(answer) => answer,
            Routed::Write(w) => panic!("expected an answer, got the write {w:?}"),
        }
    }

    #[test]
    fn reads_need_a_valid_signature_and_expand_lines_only_when_asked() {
        let ns = NetSuite::default();
        let system = MockSystem::new("netsuite", Faults::default(), 1);
        let so = json!({"email": "a@b.c", "item": {"items": [{"item": {"externalId": "MUG-1"}, "quantity": 2}]}});
        let put = signed("PUT", &format!("{RECORD_PATH}/salesOrder/eid:1001?replace=item"), so, &[]);
        let Routed::Write(create) = ns.route(&system, &put) else { panic!("a write") };
        assert!(matches!(&create, Request::Create { idempotency_key: Some(k), .. } if k == "eid:1001"));
        system.handle(create);

        let get = signed("GET", &format!("{RECORD_PATH}/salesOrder/eid:1001"), Value::Null, &[]);
        let plain = answer(ns.route(&system, &get));
        assert_eq!(plain.status, 200);
        assert!(plain.body["item"]["items"].is_null());
        let expanded =
            signed("GET", &format!("{RECORD_PATH}/salesOrder/eid:1001?expandSubResources=true"), Value::Null, &[]);
        let expanded = answer(ns.route(&system, &expanded));
        assert_eq!(expanded.body["item"]["items"][0]["line"], 1);
        assert_eq!(expanded.body["orderStatus"]["id"], "B");

        let missing = signed("GET", &format!("{RECORD_PATH}/salesOrder/eid:9999"), Value::Null, &[]);
        let missing = answer(ns.route(&system, &missing));
        assert_eq!(
            (missing.status, &missing.body["o:errorDetails"][0]["o:errorCode"]),
            (404, &json!("NONEXISTENT_ID"))
        );

        // Tampered: the signature covered another path.
        let mut tampered = get.clone();
        tampered.path = format!("{RECORD_PATH}/salesOrder/eid:1002");
        assert_eq!(answer(ns.route(&system, &tampered)).status, 401);
        let mut unsigned = get;
        unsigned.headers.retain(|(k, _)| k != "authorization");
        assert_eq!(answer(ns.route(&system, &unsigned)).status, 401);
    }

    #[test]
    fn suiteql_needs_prefer_transient_and_fulfil_needs_an_order() {
        let ns = NetSuite::default();
        let system = MockSystem::new("netsuite", Faults::default(), 1);
        let q = json!({"q": handoff_connectors::netsuite::fulfillments_query(Timestamp::UNIX_EPOCH)});
        let path = format!("{SUITEQL_PATH}?limit=10&offset=0");
        let refused = answer(ns.route(&system, &signed("POST", &path, q.clone(), &[])));
        assert_eq!(refused.status, 400);
        let empty = answer(ns.route(&system, &signed("POST", &path, q, &[("prefer", "transient")])));
        assert_eq!((empty.status, &empty.body["items"], &empty.body["hasMore"]), (200, &json!([]), &json!(false)));
        assert_eq!(ns.fulfil(&system, "nope").map(|a| a.status), Some(404));
    }

    #[test]
    fn required_fields_are_named_as_netsuite_fields() {
        assert_eq!(netsuite_path("order.customer.email"), "email");
        assert_eq!(netsuite_path("order.shipping_address.postal_code"), "shippingAddress.zip");
        assert_eq!(netsuite_path("order.channel"), "channel");
    }

    #[test]
    fn a_sales_order_body_becomes_the_system_order() {
        let so = json!({"email": "a@b.c", "otherRefNum": "#1", "currency": {"externalId": "EUR"},
            DEFAULT_VERSION_FIELD: 3, "entity": {"externalId": "a@b.c"},
            "item": {"items": [{"item": {"externalId": "MUG-1"}, "quantity": 2, "rate": 9.95}]}});
        let body = system_body("1001", &so);
        assert_eq!(body["external_ref"], "1001");
        assert_eq!(body["version"], 3);
        assert_eq!(body["order"]["customer"]["email"], "a@b.c");
        assert_eq!(body["order"]["lines"], json!([{"sku": "MUG-1", "quantity": 2}]));
    }
}
