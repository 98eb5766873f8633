//! A simulated NetSuite account: SuiteTalk REST's salesOrder upsert by external id, read by
//! external id or internal id, closing a sales order's lines (by either), and SuiteQL. It checks NetSuite's rules, not a
//! connector's: every request must carry an OAuth 1.0 `Authorization` that verifies by RFC 5849
//! (HMAC-SHA256, the account's realm, a fresh nonce; [`crate::oauth1`]), or it is refused 401
//! as NetSuite does; SuiteQL is parsed and every field it names is looked up among the record
//! fields NetSuite exposes ([`catalog`]), an unknown one refused with NetSuite's error, and the
//! query is evaluated over the account's rows ([`crate::vendors::suiteql`]). Errors are RFC 7807
//! bodies with NetSuite's `o:errorDetails`.
//!
//! Orders live in the [`MockSystem`] (its faults, idempotency and history); item fulfillments,
//! which the system does not model, live here with their ship status (picked, packed, shipped),
//! carrier and package tracking numbers, and change under a test's hand
//! ([`NetSuite::record_fulfillment`], [`NetSuite::update_fulfillment`]). A write is a create the
//! first time an external id is seen (its idempotency key is derived from the external id, so
//! two racing creates still make one order) and an update after.

use std::collections::BTreeMap;
use std::sync::Mutex;

use handoff_connectors::netsuite::{DEFAULT_VERSION_FIELD, RECORD_PATH, SUITEQL_PATH, oauth};
use handoff_engine::poll::whole_second;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::dialect::{Dialect, HttpRequest, HttpResponse, Routed};
use crate::oauth1::{self, Verifier};
use crate::system::{Collection, MockSystem, Record, Request};
use crate::vendors::suiteql::{self, Catalog, Data, Row, STORED};

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

/// An item fulfillment's `shipStatus`: NetSuite's pick, pack and ship steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipStatus {
    Picked,
    Packed,
    Shipped,
}

impl ShipStatus {
    /// The value SuiteQL answers for `transaction.shipstatus`.
    fn code(self) -> &'static str {
        match self {
            ShipStatus::Picked => "A",
            ShipStatus::Packed => "B",
            ShipStatus::Shipped => "C",
        }
    }
}

/// An item fulfillment of a sales order.
#[derive(Debug, Clone)]
struct ItemFulfillment {
    id: u64,
    /// The sales order's external id.
    order_ref: String,
    lines: Vec<(String, u64)>,
    status: ShipStatus,
    tracking_number: Option<String>,
    /// NetSuite keeps seconds.
    last_modified: Timestamp,
}

#[derive(Default)]
struct Fulfillments {
    records: Vec<ItemFulfillment>,
    /// The account's clock when a test holds it still (`None`: the wall clock).
    clock: Option<Timestamp>,
}

impl Fulfillments {
    fn now(&self) -> Timestamp {
        whole_second(self.clock.unwrap_or_else(Timestamp::now))
    }
}

pub struct NetSuite {
    verifier: Verifier,
    fulfillments: Mutex<Fulfillments>,
}

impl Default for NetSuite {
    fn default() -> Self {
        let c = credentials();
        let verifier = Verifier::new(
            Some(c.realm),
            oauth1::Method::HmacSha256,
            (c.consumer_key, c.consumer_secret),
            (c.token_id, c.token_secret),
        );
        NetSuite { verifier, fulfillments: Mutex::default() }
    }
}

/// The record fields SuiteQL exposes, for the tables the simulator holds: NetSuite's own
/// names (Records Catalog), a subset of each record.
pub fn catalog() -> Catalog {
    let tables: [(&'static str, &'static [&'static str]); 6] = [
        (
            "transaction",
            &[
                "id",
                "tranid",
                "type",
                "status",
                "trandate",
                "createddate",
                "lastmodifieddate",
                "externalid",
                "entity",
                "currency",
                "memo",
                "otherrefnum",
                "foreigntotal",
                "shipstatus",
                "shipcarrier",
                "shipmethod",
            ],
        ),
        (
            "transactionline",
            &[
                "id",
                "transaction",
                "linesequencenumber",
                "item",
                "itemtype",
                "quantity",
                "rate",
                "netamount",
                "mainline",
                "iscogs",
                "taxline",
                "isclosed",
                "createdfrom",
                "location",
            ],
        ),
        ("previoustransactionlink", &["previousdoc", "nextdoc", "linktype", "amount", "foreignamount"]),
        (
            "itemfulfillmentpackage",
            &["id", "itemfulfillment", "packagetrackingnumber", "packageweight", "packagedescr"],
        ),
        ("item", &["id", "itemid", "externalid", "displayname", "itemtype", "isinactive"]),
        ("customer", &["id", "entityid", "externalid", "email", "companyname", "isinactive"]),
    ];
    Catalog { tables: tables.into_iter().collect() }
}

/// What `BUILTIN.DF` shows for a list field's stored value.
fn display(field: &str, value: &str) -> Option<String> {
    let shown = match (field, value) {
        ("transaction.shipcarrier", "ups") => "UPS",
        ("transaction.shipcarrier", "nonups") => "FedEx/USPS/More",
        ("transaction.shipstatus", "A") => "Picked",
        ("transaction.shipstatus", "B") => "Packed",
        ("transaction.shipstatus", "C") => "Shipped",
        ("transaction.status", "B") => "Sales Order : Pending Fulfillment",
        ("transaction.status", "H") => "Sales Order : Closed",
        _ => return None,
    };
    Some(shown.to_owned())
}

/// A row of `table` with every catalog field, NULL where `set` gives no value.
fn row(table: &str, set: &[(&str, Option<String>)]) -> Row {
    let fields = catalog().tables.get(table).copied().unwrap_or_default();
    let mut row: Row = fields.iter().map(|f| ((*f).to_owned(), None)).collect();
    for (k, v) in set {
        row.insert((*k).to_owned(), v.clone());
    }
    row
}

/// The numeric internal id of a system record (`netsuite-12` → 12).
fn internal_id(record: &Record) -> u64 {
    record.id.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0)
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

impl NetSuite {
    /// Holds the account's clock at `at` (`None`: the wall clock again).
    pub fn set_clock(&self, at: Option<Timestamp>) {
        self.fulfillments.lock().expect("fulfillments lock").clock = at;
    }

    /// Fulfils every line of a sales order with this ship status and tracking number; returns
    /// the fulfillment's internal id.
    pub fn record_fulfillment(
        &self,
        system: &MockSystem,
        external_ref: &str,
        status: ShipStatus,
        tracking_number: Option<&str>,
    ) -> Result<u64, String> {
        let order = system.find(Collection::Orders, external_ref).into_iter().next();
        let order = order.ok_or_else(|| format!("no sales order {external_ref}"))?;
        let mut fulfillments = self.fulfillments.lock().expect("fulfillments lock");
        let id = 9_000_000 + fulfillments.records.len() as u64 + 1;
        let last_modified = fulfillments.now();
        fulfillments.records.push(ItemFulfillment {
            id,
            order_ref: external_ref.to_owned(),
            lines: crate::system::shippable(&order.lines),
            status,
            tracking_number: tracking_number.map(str::to_owned),
            last_modified,
        });
        Ok(id)
    }

    /// A change to a fulfillment in the UI (picked → packed → shipped, a tracking number
    /// added or corrected): its `lastmodifieddate` moves.
    pub fn update_fulfillment(&self, id: u64, status: ShipStatus, tracking_number: Option<&str>) {
        let mut fulfillments = self.fulfillments.lock().expect("fulfillments lock");
        let now = fulfillments.now();
        if let Some(f) = fulfillments.records.iter_mut().find(|f| f.id == id) {
            f.status = status;
            f.tracking_number = tracking_number.map(str::to_owned);
            f.last_modified = now;
        }
    }

    /// Checks the request's OAuth 1.0 signature as NetSuite does.
    fn authenticate(&self, r: &HttpRequest) -> Result<(), HttpResponse> {
        let refused = |why: String| {
            problem(401, "Unauthorized", "INVALID_LOGIN_ATTEMPT", &format!("Invalid login attempt: {why}"), None)
        };
        let authorization = r.header("authorization").ok_or_else(|| refused("no Authorization header".into()))?;
        let host = r.header("host").ok_or_else(|| refused("no Host".into()))?;
        let signed = oauth1::Signed {
            method: &r.method,
            scheme: "http",
            host,
            path: &r.path,
            query: &r.query,
            content_type: r.header("content-type"),
            body: &r.body,
            authorization,
        };
        self.verifier.verify(&signed).map_err(refused)
    }

    /// The external id in `salesOrder/eid:{id}`.
    fn external_ref(segment: &str) -> Option<String> {
        let eid = segment.strip_prefix("eid:")?;
        percent_encoding::percent_decode_str(eid).decode_utf8().ok().map(|s| s.into_owned())
    }

    /// The account's rows, as SuiteQL sees them.
    fn tables(&self, system: &MockSystem) -> BTreeMap<String, Vec<Row>> {
        let orders: Vec<Record> = system.records().into_iter().filter(|r| r.collection == Collection::Orders).collect();
        let fulfillments = self.fulfillments.lock().expect("fulfillments lock").records.clone();
        let stored = |t: Timestamp| Some(t.to_zoned(jiff::tz::TimeZone::UTC).strftime(STORED).to_string());
        let some = |v: &str| Some(v.to_owned());
        let mut skus: Vec<String> = fulfillments.iter().flat_map(|f| f.lines.iter().map(|(s, _)| s.clone())).collect();
        skus.sort();
        skus.dedup();
        let item_id = |sku: &str| skus.iter().position(|s| s == sku).map_or(0, |i| i + 1);
        let mut tables: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        let mut add = |table: &str, r: Row| tables.entry(table.to_owned()).or_default().push(r);
        for o in &orders {
            let status = if o.status == "cancelled" { "H" } else { "B" };
            add(
                "transaction",
                row(
                    "transaction",
                    &[
                        ("id", Some(internal_id(o).to_string())),
                        ("type", some("SalesOrd")),
                        ("tranid", Some(format!("SO{}", internal_id(o)))),
                        ("status", some(status)),
                        ("externalid", some(&o.external_ref)),
                    ],
                ),
            );
        }
        for (i, sku) in skus.iter().enumerate() {
            let id = Some((i + 1).to_string());
            add(
                "item",
                row(
                    "item",
                    &[("id", id), ("itemid", some(sku)), ("externalid", some(sku)), ("itemtype", some("InvtPart"))],
                ),
            );
        }
        for f in &fulfillments {
            let id = Some(f.id.to_string());
            let order = orders.iter().find(|o| o.external_ref == f.order_ref).map(|o| internal_id(o).to_string());
            add(
                "transaction",
                row(
                    "transaction",
                    &[
                        ("id", id.clone()),
                        ("type", some("ItemShip")),
                        ("tranid", Some(format!("IF{}", f.id))),
                        ("shipstatus", some(f.status.code())),
                        ("shipcarrier", some("ups")),
                        ("lastmodifieddate", stored(f.last_modified)),
                    ],
                ),
            );
            add(
                "previoustransactionlink",
                row(
                    "previoustransactionlink",
                    &[("previousdoc", order.clone()), ("nextdoc", id.clone()), ("linktype", some("ShipRcpt"))],
                ),
            );
            // A fulfillment's mainline, then per item a line and its cost-of-goods mirror.
            let first = f.lines.first().map(|(sku, q)| (item_id(sku).to_string(), format!("-{q}")));
            add(
                "transactionline",
                row(
                    "transactionline",
                    &[
                        ("id", some("0")),
                        ("transaction", id.clone()),
                        ("mainline", some("T")),
                        ("iscogs", some("F")),
                        ("item", first.as_ref().map(|f| f.0.clone())),
                        ("quantity", first.map(|f| f.1)),
                    ],
                ),
            );
            for (n, (sku, quantity)) in f.lines.iter().enumerate() {
                for (offset, cogs, sign) in [(1, "F", ""), (2, "T", "-")] {
                    add(
                        "transactionline",
                        row(
                            "transactionline",
                            &[
                                ("id", Some((2 * n + offset).to_string())),
                                ("transaction", id.clone()),
                                ("mainline", some("F")),
                                ("iscogs", some(cogs)),
                                ("item", Some(item_id(sku).to_string())),
                                ("itemtype", some("InvtPart")),
                                ("quantity", Some(format!("{sign}{quantity}"))),
                                ("createdfrom", order.clone()),
                            ],
                        ),
                    );
                }
            }
            if let Some(tracking) = &f.tracking_number {
                add(
                    "itemfulfillmentpackage",
                    row(
                        "itemfulfillmentpackage",
                        &[("id", id.clone()), ("itemfulfillment", id), ("packagetrackingnumber", some(tracking))],
                    ),
                );
            }
        }
        tables
    }

    fn suiteql(&self, system: &MockSystem, r: &HttpRequest) -> HttpResponse {
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
        let tables = self.tables(system);
        let rows = match suiteql::answer(&q, &catalog(), &Data { tables: &tables, display: &display }) {
            Ok(rows) => rows,
            Err(suiteql::Refused(detail)) => {
                let mut refused = problem(400, "Bad Request", "INVALID_PARAMETER", &detail, None);
                refused.body["o:errorDetails"][0]["o:errorQueryParam"] = json!("q");
                return refused;
            }
        };
        let total = rows.len();
        let items: Vec<Value> = rows.into_iter().skip(offset).take(limit).collect();
        let has_more = offset + items.len() < total;
        HttpResponse::json(
            200,
            json!({"links": [], "count": items.len(), "hasMore": has_more, "offset": offset, "totalResults": total, "items": items}),
        )
    }

    /// `PATCH salesOrder/eid:...` or `salesOrder/{id}` closing every line: the system's cancel
    /// of that one record.
    fn close(&self, r: &HttpRequest, record: Record) -> Routed {
        let body = match r.json() {
            Ok(body) => body,
            Err(_) => return Routed::Answer(problem(400, "Bad Request", "INVALID_CONTENT", "Body is not JSON.", None)),
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
            body: json!({"external_ref": record.external_ref, "record_id": record.id,
                "version": body[DEFAULT_VERSION_FIELD]}),
        })
    }

    /// A request to one sales order by its internal id: read it, or close its lines.
    fn by_internal_id(&self, system: &MockSystem, r: &HttpRequest, id: &str) -> Routed {
        let record = system.records().into_iter().find(|record| {
            record.collection == Collection::Orders && (record.id == id || internal_id(record).to_string() == id)
        });
        let Some(record) = record else { return Routed::Answer(not_found(id)) };
        match r.method.as_str() {
            "GET" => {
                let expanded = r.param("expandSubResources").as_deref() == Some("true");
                Routed::Answer(HttpResponse::json(200, sales_order(&record, expanded)))
            }
            "PATCH" => self.close(r, record),
            // PUT is the upsert, by external id only.
            _ => Routed::Answer(problem(405, "Method Not Allowed", "INVALID_METHOD", "Method not allowed.", None)),
        }
    }
}

/// NetSuite's 404 for a record id (`eid:...` or an internal id) that names no record.
fn not_found(id: &str) -> HttpResponse {
    problem(
        404,
        "Record Not Found",
        "NONEXISTENT_ID",
        &format!("The record instance does not exist. Provided id: {id}."),
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
            return Routed::Answer(self.suiteql(system, r));
        }
        if r.method == "GET"
            && segments.strip_prefix(record_path.as_slice()) == Some(&["metadata-catalog", "salesOrder"])
        {
            return Routed::Answer(metadata(system, r));
        }
        let external_ref = match segments.strip_prefix(record_path.as_slice()) {
            Some(["salesOrder", eid]) if eid.starts_with("eid:") => Self::external_ref(eid),
            Some(["salesOrder", id]) if !id.is_empty() => {
                let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
                return self.by_internal_id(system, r, &id);
            }
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
                    None => not_found(&format!("eid:{external_ref}")),
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
            "PATCH" => match system.find(Collection::Orders, &external_ref).into_iter().next() {
                Some(record) => self.close(r, record),
                None => Routed::Answer(not_found(&format!("eid:{external_ref}"))),
            },
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

    /// Ships every line of the order at once, with a tracking number.
    fn fulfil(&self, system: &MockSystem, external_ref: &str) -> Option<HttpResponse> {
        let tracking = format!("1Z{:08}", self.fulfillments.lock().expect("fulfillments lock").records.len() + 1);
        Some(match self.record_fulfillment(system, external_ref, ShipStatus::Shipped, Some(&tracking)) {
            Ok(id) => HttpResponse::json(201, json!({"id": id.to_string(), "order_ref": external_ref})),
            Err(e) => HttpResponse::json(404, json!({"error": e})),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Faults;

    /// A request signed with the simulator's own test account.
    fn signed(method: &str, path_and_query: &str, body: Value, extra: &[(&str, &str)]) -> HttpRequest {
        let url = reqwest::Url::parse(&format!("http://ns.test{path_and_query}")).unwrap();
        static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nonce = format!("nonce{}", NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let authorization = oauth::authorization(&credentials(), method, &url, 1_800_000_000, &nonce);
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
        let q = json!({"q": handoff_connectors::netsuite::fulfillments_query(Timestamp::UNIX_EPOCH, &[])});
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
