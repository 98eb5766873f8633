//! A simulated Odoo: the JSON-2 API (`POST /json/2/{model}/{method}`) and the JSON-RPC
//! `execute_kw` endpoint (`POST /jsonrpc`) over the same models. Sale orders are the system's
//! order records (so a create sent twice makes two, exactly as Odoo, which has no idempotency
//! keys); products exist for any `default_code` asked for; partners and deliveries are kept
//! here. A sale order is a quotation (`draft`) until `action_confirm` or a delivery confirms it
//! (`sale`); from then on Odoo's rule holds: none of its lines may be removed (`(5,)`, `(2,)`,
//! `(3,)` raise its `UserError`), only rewritten (`(1, id, vals)`) or added. `POST /_fulfil`
//! validates a delivery of the order's lines, which a poller then reads from `stock.picking`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use handoff_connectors::odoo::origin_version;
use serde_json::{Map, Value, json};

use crate::dialect::{Dialect, HttpRequest, HttpResponse, Routed};
use crate::system::{Collection, MockSystem, Record, Request};

/// The API key and database a simulated Odoo accepts unless told otherwise.
pub const API_KEY: &str = "handoff-sim-odoo-key";
pub const DATABASE: &str = "handoff";
/// The user id `common.authenticate` answers.
pub const UID: i64 = 2;

pub struct Odoo {
    api_key: String,
    database: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    products: Vec<String>,
    partners: Vec<(String, Option<String>)>,
    /// What `origin` said for an order at a version, from the writes asked for; shown only
    /// once the system holds the record at that version.
    origins: HashMap<(String, Option<u64>), String>,
    /// Sale orders confirmed (`action_confirm`, or a delivery made): state `sale`.
    confirmed: HashSet<i64>,
    pickings: Vec<Picking>,
    /// The server's clock when a test holds it still (`None`: the wall clock).
    clock: Option<jiff::Timestamp>,
}

impl State {
    /// Now, as Odoo writes a datetime: UTC, whole seconds.
    fn now(&self) -> String {
        let now = self.clock.unwrap_or_else(jiff::Timestamp::now);
        now.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%d %H:%M:%S").to_string()
    }
}

struct Picking {
    order: i64,
    write_date: String,
    lines: Vec<(String, u64)>,
    tracking: String,
}

/// What Odoo raises on a confirmed order asked to drop a line (`sale.order.line`'s
/// `_unlink_except_confirmed`, word for word).
pub const CONFIRMED_LINE_REMOVED: &str = "Once a sales order is confirmed, you can't remove one of its lines (we need to \
     track if something gets invoiced or delivered).\n                Set the quantity to 0 instead.";

/// Which wire a request came on, for rendering its answer.
#[derive(Clone, Copy, PartialEq)]
enum Wire {
    Json2,
    JsonRpc,
}

/// A call as the server understood it, whichever wire it came on.
struct Parsed {
    wire: Wire,
    model: String,
    method: String,
    params: Map<String, Value>,
}

/// An Odoo exception: status, class, message.
struct Raised(u16, &'static str, String);

impl Default for Odoo {
    fn default() -> Self {
        Odoo::new(API_KEY, DATABASE)
    }
}

impl Odoo {
    pub fn new(api_key: &str, database: &str) -> Self {
        Odoo { api_key: api_key.to_owned(), database: database.to_owned(), state: Mutex::default() }
    }

    /// A simulated Odoo that accepts a contract entry's own `api_key` and `database`, so that
    /// a contract runs unchanged against the simulation (`serve --simulate`).
    pub fn for_system(system: &handoff_contract::System) -> Self {
        let credential = |key: &str, default: &str| {
            system.credentials.get(key).filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| default.to_owned())
        };
        Odoo::new(&credential("api_key", API_KEY), &credential("database", DATABASE))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("odoo state lock")
    }

    /// Holds the server's clock at `at` (`None`: the wall clock again).
    pub fn set_clock(&self, at: Option<jiff::Timestamp>) {
        self.state().clock = at;
    }

    /// A delivery's tracking reference changed in the UI: its `write_date` moves.
    pub fn retrack(&self, picking_id: usize, tracking: &str) {
        let mut state = self.state();
        let now = state.now();
        if let Some(p) = state.pickings.get_mut(picking_id.wrapping_sub(1)) {
            p.tracking = tracking.to_owned();
            p.write_date = now;
        }
    }

    /// The call a request stands for: (wire, model, method, named arguments).
    fn parse(&self, r: &HttpRequest) -> Result<Parsed, (Wire, Raised)> {
        let segments = r.segments();
        let body = r.json().unwrap_or(Value::Null);
        match (r.method.as_str(), segments.as_slice()) {
            ("POST", ["json", "2", model, method]) => {
                let wire = Wire::Json2;
                let bearer = r
                    .header("authorization")
                    .and_then(|h| h.get(..7).filter(|s| s.eq_ignore_ascii_case("bearer ")).map(|_| &h[7..]));
                if bearer != Some(self.api_key.as_str()) {
                    return Err((wire, Raised(401, "werkzeug.exceptions.Unauthorized", "Invalid apikey".into())));
                }
                if r.header("x-odoo-database") != Some(self.database.as_str()) {
                    return Err((wire, Raised(404, "werkzeug.exceptions.NotFound", "database not found".into())));
                }
                let Value::Object(params) = body else {
                    return Err((
                        wire,
                        Raised(400, "werkzeug.exceptions.BadRequest", "the body must be a JSON object".into()),
                    ));
                };
                Ok(Parsed { wire, model: (*model).to_owned(), method: (*method).to_owned(), params })
            }
            ("POST", ["jsonrpc"]) => {
                let wire = Wire::JsonRpc;
                let params = &body["params"];
                let args = params["args"].as_array().cloned().unwrap_or_default();
                let refused = || (wire, Raised(200, "odoo.exceptions.AccessDenied", "Access Denied".into()));
                if args.first().and_then(Value::as_str) != Some(self.database.as_str()) {
                    return Err(refused());
                }
                match (params["service"].as_str(), params["method"].as_str()) {
                    (Some("common"), Some("authenticate")) => {
                        let ok = args.get(2).and_then(Value::as_str) == Some(self.api_key.as_str());
                        let mut named = Map::new();
                        named.insert("uid".into(), if ok { json!(UID) } else { json!(false) });
                        Ok(Parsed { wire, model: "common".into(), method: "authenticate".into(), params: named })
                    }
                    (Some("object"), Some("execute_kw")) => {
                        if args.get(1).and_then(Value::as_i64) != Some(UID)
                            || args.get(2).and_then(Value::as_str) != Some(self.api_key.as_str())
                        {
                            return Err(refused());
                        }
                        let model = args.get(3).and_then(Value::as_str).unwrap_or_default().to_owned();
                        let method = args.get(4).and_then(Value::as_str).unwrap_or_default().to_owned();
                        let positional = args.get(5).and_then(Value::as_array).cloned().unwrap_or_default();
                        let mut named = args.get(6).and_then(Value::as_object).cloned().unwrap_or_default();
                        for (name, value) in positional_names(&method).iter().zip(positional) {
                            named.insert((*name).into(), value);
                        }
                        Ok(Parsed { wire, model, method, params: named })
                    }
                    _ => Err((wire, Raised(200, "werkzeug.exceptions.NotFound", "no such service method".into()))),
                }
            }
            _ => Err((
                Wire::Json2,
                Raised(404, "werkzeug.exceptions.NotFound", format!("no route {} {}", r.method, r.path)),
            )),
        }
    }

    /// Reads answer at once; writes of sale orders go through the system.
    fn call(&self, system: &MockSystem, model: &str, method: &str, p: &Map<String, Value>) -> Result<Outcome, Raised> {
        match (model, method) {
            ("common", "authenticate") => Ok(Outcome::Value(p["uid"].clone())),
            (_, "search_read") => Ok(Outcome::Value(Value::Array(self.search_read(system, model, p)?))),
            (_, "search") => {
                let rows = self.search_read(system, model, p)?;
                Ok(Outcome::Value(rows.iter().map(|r| r["id"].clone()).collect()))
            }
            ("res.partner", "create") => {
                let mut state = self.state();
                let mut ids = Vec::new();
                for vals in vals_list(p) {
                    let name = vals["name"].as_str().unwrap_or_default().to_owned();
                    if name.is_empty() {
                        return Err(missing("Contact", "res.partner", "Name", "name"));
                    }
                    state.partners.push((name, vals["email"].as_str().map(str::to_owned)));
                    ids.push(state.partners.len());
                }
                Ok(Outcome::Value(json!(ids)))
            }
            (_, "fields_get") => Ok(Outcome::Value(fields_get(system, model, p)?)),
            (_, "default_get") => Ok(Outcome::Value(default_get(model, p)?)),
            ("sale.order", "create") => self.create_order(p).map(Outcome::Write),
            ("sale.order", "write") => {
                let record = self.order_of(system, p)?;
                let id = p["ids"].as_array().and_then(|ids| ids.first()).and_then(Value::as_i64).unwrap_or_default();
                let vals = &p["vals"];
                let version = vals["origin"].as_str().and_then(origin_version).or(record.version);
                let lines = match vals.get("order_line") {
                    Some(commands) => {
                        let confirmed = self.state().confirmed.contains(&id);
                        self.apply_lines(id, &record.lines, commands, confirmed)?
                    }
                    None => record.lines.clone(),
                };
                if let Some(origin) = vals["origin"].as_str() {
                    self.state().origins.insert((record.external_ref.clone(), version), origin.to_owned());
                }
                // Odoo writes the ids it is given, whatever shares their `client_order_ref`.
                let body = json!({"external_ref": record.external_ref, "record_id": record.id, "version": version,
                    "order": {"lines": sku_lines(&lines)}});
                Ok(Outcome::Write(Request::Update { body }))
            }
            ("sale.order", "action_confirm") => {
                let record = self.order_of(system, p)?;
                let id = p["ids"].as_array().and_then(|ids| ids.first()).and_then(Value::as_i64).unwrap_or_default();
                if record.status == "cancelled" {
                    return Err(Raised(
                        422,
                        "odoo.exceptions.UserError",
                        "A cancelled order cannot be confirmed.".into(),
                    ));
                }
                self.state().confirmed.insert(id);
                Ok(Outcome::Value(json!(true)))
            }
            ("sale.order", "action_cancel") => {
                let record = self.order_of(system, p)?;
                let body = json!({"external_ref": record.external_ref, "record_id": record.id});
                Ok(Outcome::Write(Request::Cancel { body }))
            }
            _ => Err(Raised(404, "werkzeug.exceptions.NotFound", format!("{model}.{method} is not simulated"))),
        }
    }

    fn create_order(&self, p: &Map<String, Value>) -> Result<Request, Raised> {
        let all = vals_list(p);
        let [vals] = all.as_slice() else {
            return Err(Raised(
                422,
                "odoo.exceptions.UserError",
                "the simulation creates one sale order per call".into(),
            ));
        };
        let partner = vals["partner_id"].as_u64().map(|id| id as usize);
        let (name, email) = {
            let state = self.state();
            match partner.and_then(|id| state.partners.get(id.wrapping_sub(1))) {
                Some(p) => p.clone(),
                None => return Err(missing("Sales Order", "sale.order", "Customer", "partner_id")),
            }
        };
        let lines = self.apply_lines(0, &[], &vals["order_line"], false)?;
        let origin = vals["origin"].as_str();
        let version = origin.and_then(origin_version);
        let external_ref = vals["client_order_ref"].as_str();
        if let (Some(origin), Some(external_ref)) = (origin, external_ref) {
            self.state().origins.insert((external_ref.to_owned(), version), origin.to_owned());
        }
        Ok(Request::Create {
            collection: Collection::Orders,
            idempotency_key: None,
            body: json!({
                "external_ref": external_ref, "version": version,
                "order": {
                    "amount": amount_untaxed(&vals["order_line"]),
                    "name": origin, "customer": {"email": email, "name": name}, "lines": sku_lines(&lines),
                    // The values as sent, so a fault can require a sale.order field by its own name.
                    "sale_order": vals,
                },
            }),
        })
    }

    /// The (sku, quantity) lines an `order_line` command list leaves of `current` (the lines
    /// of order `order`, ids [`line_id`]): `(0, 0, vals)` adds, `(1, id, vals)` rewrites,
    /// `(2, id)`/`(3, id)` remove one and `(5, 0, 0)` all; removing a line of a confirmed
    /// order is refused as Odoo refuses it.
    fn apply_lines(
        &self,
        order: i64,
        current: &[(String, u64)],
        commands: &Value,
        confirmed: bool,
    ) -> Result<Vec<(String, u64)>, Raised> {
        let state = self.state();
        let product = |vals: &Value| -> Result<String, Raised> {
            let id = vals["product_id"].as_u64().map(|id| id as usize);
            id.and_then(|id| state.products.get(id.wrapping_sub(1)))
                .cloned()
                .ok_or_else(|| missing("Sales Order Line", "sale.order.line", "Product", "product_id"))
        };
        let removed = || Raised(422, "odoo.exceptions.UserError", CONFIRMED_LINE_REMOVED.to_owned());
        let mut lines: Vec<Option<(String, u64)>> = current.iter().cloned().map(Some).collect();
        let index = |id: Option<i64>| -> Result<usize, Raised> {
            let n = id.and_then(|id| usize::try_from(id - order * 1000 - 1).ok()).filter(|&n| n < current.len());
            n.ok_or_else(|| {
                Raised(404, "odoo.exceptions.MissingError", "Record does not exist or has been deleted.".into())
            })
        };
        for command in commands.as_array().into_iter().flatten() {
            let vals = &command[2];
            match command[0].as_u64() {
                Some(5) if confirmed && lines.iter().any(Option::is_some) => return Err(removed()),
                Some(5) => lines.iter_mut().for_each(|l| *l = None),
                Some(2 | 3) if confirmed => return Err(removed()),
                Some(2 | 3) => lines[index(command[1].as_i64())?] = None,
                Some(0) => lines.push(Some((product(vals)?, vals["product_uom_qty"].as_u64().unwrap_or(1)))),
                Some(1) => {
                    let n = index(command[1].as_i64())?;
                    let Some((sku, quantity)) = lines[n].clone() else { return Err(index(None).unwrap_err()) };
                    let sku = if vals.get("product_id").is_some() { product(vals)? } else { sku };
                    lines[n] = Some((sku, vals["product_uom_qty"].as_u64().unwrap_or(quantity)));
                }
                _ => {
                    return Err(Raised(
                        422,
                        "odoo.exceptions.UserError",
                        format!("order_line command {command} is not simulated"),
                    ));
                }
            }
        }
        Ok(lines.into_iter().flatten().collect())
    }

    fn order_of(&self, system: &MockSystem, p: &Map<String, Value>) -> Result<Record, Raised> {
        let id = p["ids"].as_array().and_then(|ids| ids.first()).and_then(Value::as_i64).unwrap_or_default();
        order_by_id(system, id).ok_or_else(|| {
            Raised(
                404,
                "odoo.exceptions.MissingError",
                format!("Record does not exist or has been deleted.\n(Record: sale.order({id},), User: {UID})"),
            )
        })
    }

    fn search_read(&self, system: &MockSystem, model: &str, p: &Map<String, Value>) -> Result<Vec<Value>, Raised> {
        let domain = p.get("domain").cloned().unwrap_or(json!([]));
        if model == "product.product" {
            self.seed_products(&domain);
        }
        let mut rows: Vec<Value> = self.rows(system, model)?.into_iter().filter(|row| matches(&domain, row)).collect();
        if let Some(order) = p.get("order").and_then(Value::as_str) {
            sort(&mut rows, order);
        }
        let offset = p.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
        let limit = p.get("limit").and_then(Value::as_u64).map_or(usize::MAX, |l| l as usize);
        let fields: Option<Vec<String>> = p
            .get("fields")
            .and_then(Value::as_array)
            .map(|f| f.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect());
        Ok(rows
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|row| match &fields {
                Some(fields) if !fields.is_empty() => {
                    let mut kept = Map::new();
                    kept.insert("id".into(), row["id"].clone());
                    for f in fields {
                        kept.insert(f.clone(), row.get(f).cloned().unwrap_or(Value::Bool(false)));
                    }
                    Value::Object(kept)
                }
                _ => row,
            })
            .collect())
    }

    /// Any internal reference asked for exists: products are made on first mention.
    fn seed_products(&self, domain: &Value) {
        let mut state = self.state();
        for term in domain.as_array().into_iter().flatten() {
            if term[0] != "default_code" {
                continue;
            }
            let codes: Vec<&str> = match &term[2] {
                Value::String(code) => vec![code.as_str()],
                Value::Array(codes) => codes.iter().filter_map(Value::as_str).collect(),
                _ => continue,
            };
            for code in codes {
                if !state.products.iter().any(|c| c == code) {
                    state.products.push(code.to_owned());
                }
            }
        }
    }

    /// Every row of a model, as Odoo would read it.
    fn rows(&self, system: &MockSystem, model: &str) -> Result<Vec<Value>, Raised> {
        let state = self.state();
        let product_id = |sku: &str| state.products.iter().position(|c| c == sku).map(|i| i + 1);
        Ok(match model {
            "product.product" => state
                .products
                .iter()
                .enumerate()
                .map(|(i, code)| json!({"id": i + 1, "default_code": code, "name": code, "display_name": format!("[{code}] {code}")}))
                .collect(),
            "res.partner" => state
                .partners
                .iter()
                .enumerate()
                .map(|(i, (name, email))| json!({"id": i + 1, "name": name, "email": email.clone().map_or(Value::Bool(false), Value::String)}))
                .collect(),
            "sale.order" => orders(system)
                .map(|(id, r)| {
                    let origin = state.origins.get(&(r.external_ref.clone(), r.version)).cloned();
                    json!({
                        "id": id, "name": order_name(id), "client_order_ref": r.external_ref,
                        "state": order_state(&state, id, &r),
                        "origin": origin.map_or(Value::Bool(false), Value::String),
                    })
                })
                .collect(),
            "sale.order.line" => orders(system)
                .flat_map(|(id, r)| {
                    let state = order_state(&state, id, &r);
                    let product_id = &product_id;
                    r.lines.into_iter().enumerate().map(move |(n, (sku, quantity))| {
                        json!({
                            "id": line_id(id, n), "order_id": [id, order_name(id)], "sequence": 10,
                            "product_id": [product_id(&sku), format!("[{sku}] {sku}")],
                            "product_uom_qty": quantity as f64, "state": state, "display_type": false,
                        })
                    })
                })
                .collect(),
            "stock.picking" => state
                .pickings
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let id = i + 1;
                    json!({
                        "id": id, "name": format!("WH/OUT/{id:05}"), "origin": order_name(p.order),
                        "sale_id": [p.order, order_name(p.order)], "state": "done", "picking_type_code": "outgoing",
                        "write_date": p.write_date, "date_done": p.write_date,
                        "carrier_id": [1, "DHL Express"], "carrier_tracking_ref": p.tracking,
                        "move_ids": (0..p.lines.len()).map(|j| id * 1000 + j).collect::<Vec<_>>(),
                    })
                })
                .collect(),
            "stock.move" => state
                .pickings
                .iter()
                .enumerate()
                .flat_map(|(i, p)| {
                    let picking = i + 1;
                    p.lines.iter().enumerate().map(move |(j, (sku, qty))| (picking, j, sku.clone(), *qty))
                })
                .map(|(picking, j, sku, qty)| {
                    json!({
                        "id": picking * 1000 + j, "picking_id": [picking, format!("WH/OUT/{picking:05}")],
                        "product_id": [product_id(&sku), format!("[{sku}] {sku}")], "quantity": qty as f64, "state": "done",
                    })
                })
                .collect(),
            _ => return Err(Raised(404, "werkzeug.exceptions.NotFound", format!("model {model} is not simulated"))),
        })
    }
}

enum Outcome {
    Value(Value),
    Write(Request),
}

/// The names of `execute_kw`'s positional arguments, by method.
fn positional_names(method: &str) -> &'static [&'static str] {
    match method {
        "search_read" | "search" | "search_count" => &["domain"],
        "create" => &["vals_list"],
        "write" => &["ids", "vals"],
        "fields_get" => &["allfields", "attributes"],
        "default_get" => &["fields"],
        "read" => &["ids", "fields"],
        _ => &["ids"],
    }
}

fn vals_list(p: &Map<String, Value>) -> Vec<Value> {
    match p.get("vals_list") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// `amount_untaxed` as Odoo computes it: each new line's `price_unit x product_uom_qty x
/// (1 - discount / 100)`, rounded to the cent, summed.
fn amount_untaxed(commands: &Value) -> Option<String> {
    let decimal = |v: &Value| v.to_string().trim_matches('"').parse::<rust_decimal::Decimal>().ok();
    let mut sum = rust_decimal::Decimal::ZERO;
    for command in commands.as_array()? {
        let vals = &command[2];
        let discount =
            if vals["discount"].is_null() { rust_decimal::Decimal::ZERO } else { decimal(&vals["discount"])? };
        let subtotal = decimal(&vals["price_unit"])?
            * decimal(&vals["product_uom_qty"])?
            * (rust_decimal::Decimal::ONE - discount / rust_decimal::Decimal::ONE_HUNDRED);
        sum += subtotal.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    }
    Some(sum.to_string())
}

fn sku_lines(lines: &[(String, u64)]) -> Value {
    lines.iter().map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity})).collect()
}

/// A sale order's `state`: cancelled, confirmed, or still a quotation.
fn order_state(state: &State, id: i64, record: &Record) -> &'static str {
    if record.status == "cancelled" {
        "cancel"
    } else if state.confirmed.contains(&id) {
        "sale"
    } else {
        "draft"
    }
}

/// The id of an order's `n`th line.
fn line_id(order: i64, n: usize) -> i64 {
    order * 1000 + n as i64 + 1
}

/// The sale orders with their Odoo ids: a record's place among the system's records.
fn orders(system: &MockSystem) -> impl Iterator<Item = (i64, Record)> {
    system
        .records()
        .into_iter()
        .enumerate()
        .filter(|(_, r)| r.collection == Collection::Orders)
        .map(|(i, r)| (i as i64 + 1, r))
}

fn order_by_id(system: &MockSystem, id: i64) -> Option<Record> {
    orders(system).find(|(i, _)| *i == id).map(|(_, r)| r)
}

fn order_name(id: i64) -> String {
    format!("S{id:05}")
}

/// How a fault makes this Odoo require a `sale.order` field by its own name
/// (`sale_order.x_studio_channel` in `required_fields`): `fields_get` reports it required, with
/// no default, and a create without it is refused.
pub const REQUIRED_PREFIX: &str = "sale_order.";

/// A field's attributes as `fields_get` answers them.
fn field(kind: &str, label: &str, required: bool, depends: &[&str]) -> Value {
    json!({
        "type": kind, "string": label, "required": required, "readonly": false,
        "store": true, "searchable": true, "sortable": true, "depends": depends,
    })
}

fn relational(kind: &str, label: &str, relation: &str, required: bool, depends: &[&str]) -> Value {
    let mut f = field(kind, label, required, depends);
    f["relation"] = json!(relation);
    f
}

fn selection(label: &str, values: &[(&str, &str)], depends: &[&str]) -> Value {
    let mut f = field("selection", label, false, depends);
    f["selection"] = values.iter().map(|(v, l)| json!([v, l])).collect();
    f
}

/// "x_studio_channel" → "Studio Channel", as Studio labels its fields.
fn label_of(name: &str) -> String {
    let name = name.strip_prefix("x_").unwrap_or(name);
    name.split('_').filter(|w| !w.is_empty()).map(|w| w[..1].to_uppercase() + &w[1..]).collect::<Vec<_>>().join(" ")
}

/// `fields_get(allfields, attributes)` of `sale.order` and `sale.order.line`, in Odoo 19's
/// shape (a subset of the fields; Odoo reports `required` regardless of defaults and
/// computations, which `depends` and `default_get` tell apart). A `sale_order.<field>` in the
/// faults' `required_fields` is a required custom field without a default.
fn fields_get(system: &MockSystem, model: &str, p: &Map<String, Value>) -> Result<Value, Raised> {
    let partner = ["partner_id"];
    let mut fields = match model {
        "sale.order" => json!({
            "name": field("char", "Order Reference", true, &[]),
            "partner_id": relational("many2one", "Customer", "res.partner", true, &[]),
            "partner_invoice_id": relational("many2one", "Invoice Address", "res.partner", true, &partner),
            "partner_shipping_id": relational("many2one", "Delivery Address", "res.partner", true, &partner),
            "client_order_ref": field("char", "Customer Reference", false, &[]),
            "origin": field("char", "Source Document", false, &[]),
            "date_order": field("datetime", "Order Date", true, &[]),
            "commitment_date": field("datetime", "Delivery Date", false, &[]),
            "company_id": relational("many2one", "Company", "res.company", true, &[]),
            "currency_id": relational("many2one", "Currency", "res.currency", false, &["company_id", "pricelist_id"]),
            "pricelist_id": relational("many2one", "Pricelist", "product.pricelist", false, &["partner_id", "company_id"]),
            "user_id": relational("many2one", "Salesperson", "res.users", false, &partner),
            "note": field("html", "Terms and conditions", false, &partner),
            "state": selection(
                "Status",
                &[("draft", "Quotation"), ("sent", "Quotation Sent"), ("sale", "Sales Order"), ("cancel", "Cancelled")],
                &[],
            ),
            "order_line": {
                "type": "one2many", "string": "Order Lines", "required": false, "readonly": false,
                "relation": "sale.order.line", "relation_field": "order_id", "store": true, "depends": [],
            },
            "amount_total": field("monetary", "Total", false, &["order_line.price_total"]),
        }),
        "sale.order.line" => json!({
            "order_id": relational("many2one", "Order Reference", "sale.order", true, &[]),
            "sequence": field("integer", "Sequence", false, &[]),
            "display_type": selection("Display Type", &[("line_section", "Section"), ("line_note", "Note")], &[]),
            "name": field("text", "Description", true, &["product_id"]),
            "product_id": relational("many2one", "Product", "product.product", false, &[]),
            "product_template_id": relational("many2one", "Product Template", "product.template", false, &["product_id"]),
            "product_uom_qty": field("float", "Quantity", true, &["display_type", "product_id", "product_packaging_qty"]),
            "product_uom_id": relational("many2one", "Unit", "uom.uom", false, &["product_id"]),
            "price_unit": field("float", "Unit Price", true, &["product_id", "product_uom_id", "product_uom_qty"]),
            "discount": field("float", "Discount (%)", false, &["product_id", "product_uom_id", "product_uom_qty"]),
            "tax_ids": relational("many2many", "Taxes", "account.tax", false, &["product_id", "company_id"]),
            "customer_lead": field("float", "Lead Time", true, &["product_id"]),
            "price_subtotal": field("monetary", "Subtotal", false, &["product_uom_qty", "discount", "price_unit", "tax_ids"]),
        }),
        _ => return Err(Raised(404, "werkzeug.exceptions.NotFound", format!("model {model} is not simulated"))),
    };
    if model == "sale.order" {
        for name in system.faults().required_fields.iter().filter_map(|f| f.strip_prefix(REQUIRED_PREFIX)) {
            fields[name] = field("char", &label_of(name), true, &[]);
        }
    }
    let Value::Object(mut fields) = fields else { return Ok(fields) };
    if let Some(wanted) = p.get("allfields").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        fields.retain(|name, _| wanted.iter().any(|w| w == name));
    }
    if let Some(attributes) = p.get("attributes").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        for attrs in fields.values_mut().filter_map(Value::as_object_mut) {
            attrs.retain(|name, _| attributes.iter().any(|a| a == name));
        }
    }
    Ok(Value::Object(fields))
}

/// `default_get(fields)`: the defaults of the fields asked for that have one.
fn default_get(model: &str, p: &Map<String, Value>) -> Result<Value, Raised> {
    let defaults = match model {
        "sale.order" => json!({
            "name": "New", "date_order": "2026-11-26 10:00:00", "company_id": 1, "state": "draft",
        }),
        "sale.order.line" => json!({"sequence": 10, "product_uom_qty": 1.0, "discount": 0.0}),
        _ => return Err(Raised(404, "werkzeug.exceptions.NotFound", format!("model {model} is not simulated"))),
    };
    let wanted =
        p.get("fields").or_else(|| p.get("fields_list")).and_then(Value::as_array).cloned().unwrap_or_default();
    let Value::Object(mut defaults) = defaults else { return Ok(defaults) };
    defaults.retain(|name, _| wanted.iter().any(|w| w == name));
    Ok(Value::Object(defaults))
}

/// A mandatory field left empty, as Odoo words it.
fn missing(model_label: &str, model: &str, label: &str, field: &str) -> Raised {
    Raised(
        422,
        "odoo.exceptions.ValidationError",
        format!(
            "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n\nModel: {model_label} ({model})\nField: {label} ({field})"
        ),
    )
}

/// Whether a row satisfies a domain in Odoo's prefix notation (`&` between terms by default).
fn matches(domain: &Value, row: &Value) -> bool {
    let items: Vec<&Value> = domain.as_array().map(|d| d.iter().collect()).unwrap_or_default();
    let mut stack: Vec<bool> = Vec::new();
    for item in items.iter().rev() {
        match item.as_str() {
            Some("&") | Some("|") => {
                let (a, b) = (stack.pop().unwrap_or(true), stack.pop().unwrap_or(true));
                stack.push(if item.as_str() == Some("&") { a && b } else { a || b });
            }
            Some("!") => {
                let a = stack.pop().unwrap_or(true);
                stack.push(!a);
            }
            _ => stack.push(term(item, row)),
        }
    }
    stack.into_iter().all(|b| b)
}

fn term(term: &Value, row: &Value) -> bool {
    let (Some(field), Some(op)) = (term[0].as_str(), term[1].as_str()) else { return false };
    let value = &term[2];
    let mut actual = row.get(field).cloned().unwrap_or(Value::Bool(false));
    if let Value::Array(pair) = &actual
        && field != "move_ids"
    {
        actual = pair.first().cloned().unwrap_or(Value::Bool(false));
    }
    match op {
        "=" => &actual == value,
        "!=" => &actual != value,
        "=ilike" => matches!((actual.as_str(), value.as_str()), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b)),
        "in" => value.as_array().is_some_and(|vs| vs.contains(&actual)),
        "not in" => !value.as_array().is_some_and(|vs| vs.contains(&actual)),
        ">" | ">=" | "<" | "<=" => {
            let order = match (&actual, value) {
                (Value::String(a), Value::String(b)) => a.cmp(b),
                (Value::Number(a), Value::Number(b)) => {
                    a.as_i64().unwrap_or_default().cmp(&b.as_i64().unwrap_or_default())
                }
                _ => return false,
            };
            match op {
                ">" => order.is_gt(),
                ">=" => order.is_ge(),
                "<" => order.is_lt(),
                _ => order.is_le(),
            }
        }
        _ => false,
    }
}

/// Sorts rows by an Odoo `order` spec such as `"write_date asc, id asc"`.
fn sort(rows: &mut [Value], spec: &str) {
    let keys: Vec<(String, bool)> = spec
        .split(',')
        .filter_map(|k| {
            let mut parts = k.split_whitespace();
            let field = parts.next()?.to_owned();
            let desc = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
            Some((field, desc))
        })
        .collect();
    rows.sort_by(|a, b| {
        for (field, desc) in &keys {
            let order = match (&a[field], &b[field]) {
                (Value::Number(x), Value::Number(y)) => x.as_i64().cmp(&y.as_i64()),
                (x, y) => x.to_string().cmp(&y.to_string()),
            };
            let order = if *desc { order.reverse() } else { order };
            if order.is_ne() {
                return order;
            }
        }
        std::cmp::Ordering::Equal
    });
}

fn render(wire: Wire, outcome: Result<Value, Raised>) -> HttpResponse {
    match (wire, outcome) {
        (Wire::Json2, Ok(value)) => HttpResponse::json(200, value),
        (Wire::JsonRpc, Ok(value)) => HttpResponse::json(200, json!({"jsonrpc": "2.0", "id": 1, "result": value})),
        (Wire::Json2, Err(Raised(status, name, message))) => {
            let status = if status == 200 { 400 } else { status };
            HttpResponse::json(
                status,
                json!({"name": name, "message": message, "arguments": [message], "context": {}, "debug": ""}),
            )
        }
        (Wire::JsonRpc, Err(Raised(_, name, message))) => HttpResponse::json(
            200,
            json!({"jsonrpc": "2.0", "id": 1, "error": {
                "code": 200, "message": "Odoo Server Error",
                "data": {"name": name, "message": message, "arguments": [message], "context": {}, "debug": ""},
            }}),
        ),
    }
}

impl Dialect for Odoo {
    fn route(&self, system: &MockSystem, r: &HttpRequest) -> Routed {
        let Parsed { wire, model, method, params } = match self.parse(r) {
            Ok(parsed) => parsed,
            Err((wire, raised)) => return Routed::Answer(render(wire, Err(raised))),
        };
        match self.call(system, &model, &method, &params) {
            Ok(Outcome::Value(value)) => Routed::Answer(render(wire, Ok(value))),
            Ok(Outcome::Write(write)) => Routed::Write(write),
            Err(raised) => Routed::Answer(render(wire, Err(raised))),
        }
    }

    fn reply(&self, _system: &MockSystem, request: &HttpRequest, status: u16, body: &Value) -> HttpResponse {
        let wire = if request.path.starts_with("/jsonrpc") { Wire::JsonRpc } else { Wire::Json2 };
        let method = match self.parse(request) {
            Ok(parsed) => parsed.method,
            Err(_) => String::new(),
        };
        match status {
            200..=299 => {
                let id = body["id"].as_str().and_then(|id| id.rsplit('-').next()?.parse::<i64>().ok());
                let value = if method == "create" { json!([id]) } else { json!(true) };
                render(wire, Ok(value))
            }
            // A proxy's answer, not Odoo's: the outcome is unknown to the client.
            429 | 500..=599 => HttpResponse::json(status, Value::Null),
            404 => render(
                wire,
                Err(Raised(
                    404,
                    "odoo.exceptions.MissingError",
                    body["error"].as_str().unwrap_or("missing").to_owned(),
                )),
            ),
            _ => {
                let field = body["field"].as_str().unwrap_or_default();
                let raised = match field.strip_prefix("order.").unwrap_or(field) {
                    "customer.email" => missing("Contact", "res.partner", "Email", "email"),
                    "customer.name" => missing("Contact", "res.partner", "Name", "name"),
                    "customer" => missing("Sales Order", "sale.order", "Customer", "partner_id"),
                    "external_ref" => missing("Sales Order", "sale.order", "Customer Reference", "client_order_ref"),
                    "lines" => missing("Sales Order", "sale.order", "Order Lines", "order_line"),
                    other if other.starts_with(REQUIRED_PREFIX) => {
                        let own = &other[REQUIRED_PREFIX.len()..];
                        missing("Sales Order", "sale.order", &label_of(own), own)
                    }
                    other => missing("Sales Order", "sale.order", other, other.rsplit('.').next().unwrap_or(other)),
                };
                render(wire, Err(raised))
            }
        }
    }

    /// Validates a delivery of all the order's lines, written now.
    fn fulfil(&self, system: &MockSystem, external_ref: &str) -> Option<HttpResponse> {
        let found = orders(system).find(|(_, r)| r.external_ref == external_ref);
        let Some((order, record)) = found else {
            return Some(HttpResponse::json(
                404,
                json!({"error": format!("no sale order with client_order_ref {external_ref}")}),
            ));
        };
        let mut state = self.state();
        let write_date = state.now();
        // A delivery is made of a confirmed order.
        state.confirmed.insert(order);
        let tracking = format!("JD{:010}", state.pickings.len() + 1);
        state.pickings.push(Picking { order, write_date, lines: crate::system::shippable(&record.lines), tracking });
        let id = state.pickings.len();
        Some(HttpResponse::json(201, json!({"picking_id": id, "name": format!("WH/OUT/{id:05}"), "order": order})))
    }
}
