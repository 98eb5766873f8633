//! Odoo as a target of orders (`sale.order`) and a polled source of deliveries
//! (`stock.picking`). Odoo 19's JSON-2 API (`POST /json/2/{model}/{method}`, named arguments,
//! bearer API key) by default; the JSON-RPC `execute_kw` endpoint for older servers. Both carry
//! the same ORM calls, so the order logic is written once over [`Call`].
//!
//! Odoo has no idempotency keys: an order is found again by `client_order_ref` (= the command's
//! external reference) before any create, and its version rides in `origin` as
//! `"{name} [handoff v{version}]"` so that a read-back can tell whether an update landed. A
//! cancel addressed to one record (a duplicate's) cancels that `sale.order` by its id and is
//! read back by that id, whatever else shares its `client_order_ref`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use handoff_contract::{PollSettings, System};
use handoff_engine::poll::{Cursor, Page, PollError};
use handoff_engine::quarantine::Unmapped;
use handoff_engine::{Ack, BoxFuture, DeliveryError, Poller, Target};
use handoff_mapping::Mappings;
use handoff_mapping::drift::TargetSchema;
use handoff_model::{CommandKind, EventKind, ExternalId, Fulfillment, FulfillmentLine, InboundEvent};
use handoff_store::Command;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::ConfigError;
use crate::http_json::{retry_after, transport_error};

/// Products remembered by `default_code`; past this many the cache starts over.
const PRODUCT_CACHE_LIMIT: usize = 10_000;

/// The `fields_get` attributes a schema snapshot reads.
const FIELD_ATTRIBUTES: [&str; 7] =
    ["type", "string", "required", "selection", "relation", "relation_field", "depends"];

/// The tag in `origin` that carries the order's version.
const VERSION_TAG: &str = " [handoff v";

/// How the ORM calls travel.
enum Transport {
    /// Odoo 19+: `POST /json/2/{model}/{method}`, the arguments as one JSON object.
    Json2 { api_key: String, database: Option<String> },
    /// Older servers: `POST /jsonrpc`, `object.execute_kw(db, uid, key, model, method, args, kwargs)`.
    JsonRpc { database: String, api_key: String, uid: tokio::sync::OnceCell<i64>, login: Option<String> },
}

/// One ORM call. `ids` and `args` are positional for JSON-RPC and named for JSON-2, which is
/// the only difference between the two.
struct Call<'a> {
    model: &'a str,
    method: &'a str,
    ids: Option<Vec<i64>>,
    args: Vec<(&'static str, Value)>,
    kwargs: Map<String, Value>,
}

impl<'a> Call<'a> {
    fn new(model: &'a str, method: &'a str) -> Self {
        Call { model, method, ids: None, args: Vec::new(), kwargs: Map::new() }
    }

    fn ids(mut self, ids: Vec<i64>) -> Self {
        self.ids = Some(ids);
        self
    }

    fn arg(mut self, name: &'static str, value: Value) -> Self {
        self.args.push((name, value));
        self
    }

    fn kwarg(mut self, name: &str, value: Value) -> Self {
        self.kwargs.insert(name.to_owned(), value);
        self
    }

    /// `search_read(domain, fields=..., order=..., limit=...)`.
    fn search_read(model: &'a str, domain: Value, fields: &[&str]) -> Self {
        Call::new(model, "search_read").arg("domain", domain).kwarg("fields", json!(fields))
    }

    /// The JSON-2 body: every argument by name.
    fn json2_body(&self) -> Value {
        let mut body = self.kwargs.clone();
        if let Some(ids) = &self.ids {
            body.insert("ids".into(), json!(ids));
        }
        for (name, value) in &self.args {
            body.insert((*name).into(), value.clone());
        }
        Value::Object(body)
    }

    /// The `execute_kw` positional arguments: the ids first (a recordset method), then the rest.
    fn positional(&self) -> Value {
        let ids = self.ids.iter().map(|ids| json!(ids));
        Value::Array(ids.chain(self.args.iter().map(|(_, v)| v.clone())).collect())
    }
}

/// An Odoo server and the lookups worth remembering.
pub struct Odoo {
    base_url: String,
    client: reqwest::Client,
    transport: Transport,
    /// `product.product` id by `default_code`.
    products: Mutex<HashMap<String, i64>>,
    /// `default_code` by `product.product` id, for deliveries.
    codes: Mutex<HashMap<i64, Option<String>>>,
}

impl Odoo {
    /// Reads `credentials.api_key`, `database`, `protocol` (`json-2` or `json-rpc`), and for
    /// JSON-RPC `uid` or `login` (the uid is then found by `common.authenticate`).
    pub fn from_contract(name: &str, system: &System, base_url: &str) -> Result<Self, ConfigError> {
        let api_key = system.credential(name, "api_key")?.to_owned();
        let database = system.credentials.get("database").filter(|d| !d.is_empty()).cloned();
        let transport = match system.credentials.get("protocol").map(String::as_str).unwrap_or("json-2") {
            "json-2" => Transport::Json2 { api_key, database },
            "json-rpc" => {
                let database = system.credential(name, "database")?.to_owned();
                let uid = tokio::sync::OnceCell::new();
                if let Some(given) = system.credentials.get("uid") {
                    let parsed = given.parse::<i64>().map_err(|_| ConfigError {
                        key: format!("systems.{name}.credentials.uid"),
                        message: "must be the user's numeric id".into(),
                    })?;
                    let _ = uid.set(parsed);
                }
                let login = system.credentials.get("login").cloned();
                if uid.get().is_none() && login.is_none() {
                    return Err(ConfigError {
                        key: format!("systems.{name}.credentials.uid"),
                        message: "JSON-RPC needs the user's `uid`, or the `login` to find it".into(),
                    });
                }
                Transport::JsonRpc { database, api_key, uid, login }
            }
            other => {
                return Err(ConfigError {
                    key: format!("systems.{name}.credentials.protocol"),
                    message: format!("{other:?} is neither \"json-2\" nor \"json-rpc\""),
                });
            }
        };
        let client = crate::outbound::Outbound::of(system)
            .client()
            .timeout(system.timeout.unsigned_abs())
            .build()
            .map_err(|e| ConfigError { key: format!("systems.{name}"), message: e.to_string() })?;
        Ok(Odoo {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client,
            transport,
            products: Mutex::default(),
            codes: Mutex::default(),
        })
    }

    async fn call(&self, call: Call<'_>) -> Result<Value, DeliveryError> {
        match &self.transport {
            Transport::Json2 { api_key, database } => {
                let url = format!("{}/json/2/{}/{}", self.base_url, call.model, call.method);
                let mut request = self.client.post(url).bearer_auth(api_key).json(&call.json2_body());
                if let Some(database) = database {
                    request = request.header("x-odoo-database", database);
                }
                let response = request.send().await.map_err(transport_error)?;
                let status = response.status().as_u16();
                let retry_after = retry_after(response.headers());
                let body = response.bytes().await.map_err(transport_error)?;
                let value = serde_json::from_slice::<Value>(&body);
                match value {
                    Ok(value) if (200..300).contains(&status) => Ok(value),
                    // A success whose body is lost or garbled may have applied.
                    Err(e) if (200..300).contains(&status) => {
                        Err(ambiguous(&format!("{status} with a body unreadable: {e}")))
                    }
                    Ok(value) => Err(classify(status, Fault::json2(&value), retry_after)),
                    Err(_) => Err(classify(status, None, retry_after)),
                }
            }
            Transport::JsonRpc { database, api_key, .. } => {
                let uid = self.uid().await?;
                let params = json!({
                    "service": "object", "method": "execute_kw",
                    "args": [database, uid, api_key, call.model, call.method, call.positional(), call.kwargs],
                });
                self.json_rpc(params).await
            }
        }
    }

    async fn json_rpc(&self, params: Value) -> Result<Value, DeliveryError> {
        let url = format!("{}/jsonrpc", self.base_url);
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params});
        let response = self.client.post(url).json(&body).send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let bytes = response.bytes().await.map_err(transport_error)?;
        let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(classify(if status == 200 { 502 } else { status }, None, retry_after));
        };
        if let Some(error) = value.get("error") {
            // JSON-RPC answers its errors with 200: the status says nothing, the name does.
            let status = if status == 200 { 500 } else { status };
            return Err(classify(status, Fault::json_rpc(error), retry_after));
        }
        if !(200..300).contains(&status) {
            return Err(classify(status, None, retry_after));
        }
        Ok(value.get_mut("result").map(Value::take).unwrap_or(Value::Null))
    }

    /// The JSON-RPC user id: configured, or found once by `common.authenticate`.
    async fn uid(&self) -> Result<i64, DeliveryError> {
        let Transport::JsonRpc { database, api_key, uid, login } = &self.transport else {
            return Ok(0);
        };
        let found = uid
            .get_or_try_init(|| async {
                let login = login.clone().unwrap_or_default();
                let params =
                    json!({"service": "common", "method": "authenticate", "args": [database, login, api_key, {}]});
                match self.json_rpc(params).await? {
                    Value::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or_default()),
                    _ => Err(DeliveryError::Permanent {
                        reason: "Odoo refused the login and API key (common.authenticate)".into(),
                        field: None,
                    }),
                }
            })
            .await?;
        Ok(*found)
    }

    /// A model's fields as `fields_get` describes them (type, label, required, selection
    /// values, related model, what a computed field depends on): `{field: {attribute: value}}`.
    pub async fn fields_get(&self, model: &str) -> Result<Value, DeliveryError> {
        let call = Call::new(model, "fields_get").kwarg("attributes", json!(FIELD_ATTRIBUTES));
        self.call(call).await
    }

    /// The defaults `default_get` answers for these fields of a model (only those that have one).
    pub async fn default_get(&self, model: &str, fields: &[&str]) -> Result<Value, DeliveryError> {
        self.call(Call::new(model, "default_get").arg("fields", json!(fields))).await
    }

    /// The `sale.order` schema snapshot the `odoo/sale_order` mapping is checked against, with
    /// its `order_line` records (`sale.order.line`): `fields_get` of both, and `default_get` of
    /// their required fields so that the ones Odoo fills are told apart.
    pub async fn sale_order_schema(&self) -> Result<TargetSchema, DeliveryError> {
        let (order, raw) = self.schema_of("sale.order").await?;
        let (lines, _) = self.schema_of("sale.order.line").await?;
        let inverse = raw.pointer("/order_line/relation_field").and_then(Value::as_str);
        Ok(order.with_lines("order_line", lines, inverse))
    }

    /// One model's snapshot, and its `fields_get` as answered.
    async fn schema_of(&self, model: &str) -> Result<(TargetSchema, Value), DeliveryError> {
        let fields = self.fields_get(model).await?;
        let schema = TargetSchema::from_odoo(model, &fields).map_err(|e| DeliveryError::Permanent {
            reason: format!("Odoo's fields_get of {model} is unreadable: {e}"),
            field: None,
        })?;
        let required: Vec<&str> = schema.required_fields().collect();
        let defaults = if required.is_empty() { json!({}) } else { self.default_get(model, &required).await? };
        Ok((schema.with_odoo_defaults(&defaults), fields))
    }

    /// The orders whose `client_order_ref` is `external_ref`, oldest first.
    async fn orders(&self, external_ref: &str) -> Result<Vec<SaleOrder>, DeliveryError> {
        let call = Call::search_read(
            "sale.order",
            json!([["client_order_ref", "=", external_ref]]),
            &["id", "state", "origin", "client_order_ref"],
        )
        .kwarg("order", json!("id asc"));
        decode(self.call(call).await?)
    }

    /// The sale orders a command reads back: the one it addresses, by id, else those of its
    /// external reference.
    async fn orders_of(&self, c: &Command) -> Result<Vec<SaleOrder>, DeliveryError> {
        let Some(id) = addressed(c)? else { return self.orders(&c.external_ref).await };
        let call =
            Call::search_read("sale.order", json!([["id", "=", id]]), &["id", "state", "origin", "client_order_ref"]);
        decode(self.call(call).await?)
    }

    /// Product ids by SKU (`default_code`), asking Odoo only for the ones not remembered.
    async fn product_ids(&self, skus: &[&str]) -> Result<HashMap<String, i64>, DeliveryError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = lock(&self.products);
            for sku in skus {
                if let Some(&id) = cache.get(*sku) {
                    found.insert((*sku).to_owned(), id);
                } else {
                    missing.push(*sku);
                }
            }
        }
        if !missing.is_empty() {
            let call =
                Call::search_read("product.product", json!([["default_code", "in", missing]]), &["id", "default_code"]);
            let rows: Vec<Product> = decode(self.call(call).await?)?;
            let mut cache = lock(&self.products);
            if cache.len() + rows.len() > PRODUCT_CACHE_LIMIT {
                cache.clear();
            }
            for row in rows {
                if let Some(code) = row.default_code.into_code() {
                    cache.insert(code.clone(), row.id);
                    found.entry(code).or_insert(row.id);
                }
            }
        }
        Ok(found)
    }

    /// The customer's partner: found by email (else by name), created when absent.
    async fn partner(&self, customer: &DraftPartner) -> Result<i64, DeliveryError> {
        let email = customer.email.as_deref().filter(|e| !e.is_empty());
        let name = customer.name.as_deref().filter(|n| !n.is_empty());
        let domain = match (email, name) {
            // Exact: `=ilike` would read `_` in an address as a wildcard.
            (Some(email), _) => json!([["email", "=", email]]),
            (None, Some(name)) => json!([["name", "=", name]]),
            (None, None) => {
                return Err(DeliveryError::Permanent {
                    reason: "the order names no customer (neither email nor name)".into(),
                    field: Some("order.customer.email".into()),
                });
            }
        };
        let call = Call::new("res.partner", "search").arg("domain", domain).kwarg("limit", json!(1));
        let ids: Vec<i64> = decode(self.call(call).await?)?;
        if let Some(&id) = ids.first() {
            return Ok(id);
        }
        let partner = json!({"name": name.or(email).unwrap_or_default(), "email": email});
        let created = self.call(Call::new("res.partner", "create").arg("vals_list", json!([partner]))).await?;
        first_id(&created)
    }

    /// The mapping's lines with each `default_code` resolved to its product, as `order_line`
    /// create commands.
    async fn order_lines(&self, lines: &[Value]) -> Result<Vec<Value>, DeliveryError> {
        let skus: Vec<&str> = lines.iter().filter_map(|l| l["default_code"].as_str()).collect();
        let products = self.product_ids(&skus).await?;
        let mut commands = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let sku = line["default_code"].as_str().unwrap_or_default();
            let Some(&product) = products.get(sku) else {
                return Err(DeliveryError::Permanent {
                    reason: format!("no Odoo product has internal reference {sku:?}"),
                    field: Some(format!("order.lines[{i}].sku")),
                });
            };
            let mut vals = line.clone();
            if let Some(object) = vals.as_object_mut() {
                object.remove("default_code");
                object.insert("product_id".into(), json!(product));
            }
            commands.push(json!([0, 0, vals]));
        }
        Ok(commands)
    }

    async fn create(&self, c: &Command, draft: &Draft) -> Result<Ack, DeliveryError> {
        if let Some(existing) = self.orders(&c.external_ref).await?.first() {
            return Ok(existing.ack());
        }
        let partner = self.partner(&draft.partner).await?;
        let lines = self.order_lines(&draft.order_line).await?;
        let vals = json!({
            "partner_id": partner,
            "client_order_ref": draft.client_order_ref,
            "origin": draft.origin,
            "order_line": lines,
        });
        let created = self.call(Call::new("sale.order", "create").arg("vals_list", json!([vals]))).await?;
        Ok(Ack { record_id: first_id(&created)?.to_string() })
    }

    async fn update(&self, c: &Command, draft: &Draft) -> Result<Ack, DeliveryError> {
        let existing = self.existing(c).await?;
        let wanted = self.order_lines(&draft.order_line).await?;
        let lines = if existing.state == "sale" {
            self.rewrite_lines(existing.id, wanted).await?
        } else {
            // A quotation's lines are simply replaced.
            std::iter::once(json!([5, 0, 0])).chain(wanted).collect()
        };
        let vals = json!({"origin": draft.origin, "order_line": lines});
        self.call(Call::new("sale.order", "write").ids(vec![existing.id]).arg("vals", vals)).await?;
        Ok(existing.ack())
    }

    /// The `order_line` commands that bring a confirmed order to the `wanted` lines without
    /// removing one: Odoo refuses that once an order is confirmed ("Once a sales order is
    /// confirmed, you can't remove one of its lines ... Set the quantity to 0 instead."), so a
    /// line of a product still ordered is rewritten in place, a new product is added, and a line
    /// no longer ordered is set to zero.
    async fn rewrite_lines(&self, order: i64, wanted: Vec<Value>) -> Result<Vec<Value>, DeliveryError> {
        let call = Call::search_read("sale.order.line", json!([["order_id", "=", order]]), &["id", "product_id"])
            .kwarg("order", json!("sequence asc, id asc"));
        let current: Vec<OrderLine> = decode(self.call(call).await?)?;
        let mut open: Vec<&OrderLine> = current.iter().filter(|l| l.product_id.0.is_some()).collect();
        let mut commands = Vec::with_capacity(wanted.len() + open.len());
        for command in wanted {
            let mut vals = command.get(2).cloned().unwrap_or(Value::Null);
            let product = vals["product_id"].as_i64();
            match open.iter().position(|l| l.product_id.0.as_ref().map(|p| p.0) == product) {
                Some(i) => {
                    let line = open.remove(i);
                    if let Some(object) = vals.as_object_mut() {
                        object.remove("product_id");
                    }
                    commands.push(json!([1, line.id, vals]));
                }
                None => commands.push(command),
            }
        }
        commands.extend(open.into_iter().map(|l| json!([1, l.id, {"product_uom_qty": 0}])));
        Ok(commands)
    }

    async fn cancel(&self, c: &Command) -> Result<Ack, DeliveryError> {
        let existing = self.existing(c).await?;
        if existing.state == "cancel" {
            return Ok(existing.ack());
        }
        // Without this flag Odoo may answer with a confirmation wizard instead of cancelling.
        let call = Call::new("sale.order", "action_cancel")
            .ids(vec![existing.id])
            .kwarg("context", json!({"disable_cancel_warning": true}));
        self.call(call).await?;
        match self.orders_of(c).await?.into_iter().find(|o| o.id == existing.id) {
            Some(order) if order.state == "cancel" => Ok(order.ack()),
            Some(order) => Err(DeliveryError::Permanent {
                reason: format!("Odoo left sale order {} in state {:?} after action_cancel", order.id, order.state),
                field: None,
            }),
            None => Err(ambiguous("the sale order vanished after action_cancel")),
        }
    }

    /// The order an update or cancel applies to (the one it addresses, when it names one);
    /// refused when Odoo has none.
    async fn existing(&self, c: &Command) -> Result<SaleOrder, DeliveryError> {
        let reason = match addressed(c)? {
            Some(id) => format!("no Odoo sale order has id {id}"),
            None => format!("no Odoo sale order has client_order_ref {:?}", c.external_ref),
        };
        self.orders_of(c)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| DeliveryError::Permanent { reason, field: Some("external_ref".into()) })
    }

    async fn send_command(&self, c: &Command, mappings: &Mappings, settings: &Value) -> Result<Ack, DeliveryError> {
        let draft = || -> Result<Draft, DeliveryError> {
            let command: Value = serde_json::from_str(&c.payload).map_err(|e| DeliveryError::Permanent {
                reason: format!("command payload unreadable: {e}"),
                field: None,
            })?;
            let (_, draft) = mappings
                .transform("odoo", "sale_order", &command, settings)
                .map_err(|h| DeliveryError::Held { reason: h.reason, field: h.field, mapping: h.mapping })?;
            serde_json::from_str(&draft).map_err(|e| DeliveryError::Held {
                reason: format!("the mapping's output is not a sale order draft: {e}"),
                field: "mapping".into(),
                mapping: "odoo/sale_order".into(),
            })
        };
        match c.kind {
            CommandKind::CreateOrder => self.create(c, &draft()?).await,
            CommandKind::UpdateOrder => self.update(c, &draft()?).await,
            CommandKind::CancelOrder => self.cancel(c).await,
            kind => Err(DeliveryError::Permanent {
                reason: format!("the odoo connector takes orders, not {kind:?}"),
                field: None,
            }),
        }
    }

    async fn find(&self, c: &Command) -> Result<Option<Ack>, DeliveryError> {
        let orders = self.orders_of(c).await.map_err(never_permanent)?;
        Ok(applied(c, &orders))
    }
}

/// The `sale.order` id a command addresses, if it names one; a name that is not an Odoo id is
/// a data error (sending it again cannot help).
fn addressed(c: &Command) -> Result<Option<i64>, DeliveryError> {
    let Some(address) = c.address() else { return Ok(None) };
    address.record_id.parse().map(Some).map_err(|_| DeliveryError::Permanent {
        reason: format!("{:?} is not an Odoo sale order id", address.record_id),
        field: Some("record_id".into()),
    })
}

/// Whether the orders found show the command applied: one exists; for a cancel, it is
/// cancelled; for an update, its version in `origin` is at least the command's.
fn applied(c: &Command, orders: &[SaleOrder]) -> Option<Ack> {
    let first = orders.first()?;
    let shows = match c.kind {
        CommandKind::CancelOrder => first.state == "cancel",
        CommandKind::UpdateOrder => match (first.version(), c.version) {
            (Some(seen), Some(wanted)) => seen >= wanted,
            // Without versions nothing proves the update landed; a write is safe to repeat.
            _ => false,
        },
        _ => true,
    };
    shows.then(|| first.ack())
}

/// The version tagged in an `origin`, if any.
pub fn origin_version(origin: &str) -> Option<u64> {
    let at = origin.rfind(VERSION_TAG)?;
    origin[at + VERSION_TAG.len()..].strip_suffix(']')?.parse().ok()
}

/// A sale order as the `odoo/sale_order` mapping writes it, before its partner and products
/// are looked up.
#[derive(Debug, Deserialize)]
struct Draft {
    client_order_ref: String,
    origin: String,
    partner: DraftPartner,
    order_line: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct DraftPartner {
    email: Option<String>,
    name: Option<String>,
}

/// A `sale.order.line` as a confirmed order's update reads it.
#[derive(Debug, Deserialize)]
struct OrderLine {
    id: i64,
    #[serde(default)]
    product_id: Many2one,
}

/// A `sale.order` as read back.
#[derive(Debug, Clone, Deserialize)]
struct SaleOrder {
    id: i64,
    #[serde(default)]
    state: String,
    #[serde(default)]
    origin: OdooText,
}

impl SaleOrder {
    fn ack(&self) -> Ack {
        Ack { record_id: self.id.to_string() }
    }

    fn version(&self) -> Option<u64> {
        origin_version(self.origin.0.as_deref()?)
    }
}

/// A char field: Odoo sends `false` for an empty one.
#[derive(Debug, Clone, Default)]
struct OdooText(Option<String>);

impl OdooText {
    fn into_code(self) -> Option<String> {
        self.0.filter(|s| !s.is_empty())
    }
}

impl<'de> Deserialize<'de> for OdooText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => OdooText(Some(s)),
            _ => OdooText(None),
        })
    }
}

/// A many2one as Odoo reads it: `[id, "display name"]`, or `false`.
#[derive(Debug, Clone, Default)]
struct Many2one(Option<(i64, String)>);

impl<'de> Deserialize<'de> for Many2one {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(pair) => match (pair.first().and_then(Value::as_i64), pair.get(1)) {
                (Some(id), name) => Many2one(Some((id, name.and_then(Value::as_str).unwrap_or_default().to_owned()))),
                (None, _) => Many2one(None),
            },
            Value::Number(n) => Many2one(n.as_i64().map(|id| (id, String::new()))),
            _ => Many2one(None),
        })
    }
}

#[derive(Deserialize)]
struct Product {
    id: i64,
    #[serde(default)]
    default_code: OdooText,
}

fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, DeliveryError> {
    serde_json::from_value(value).map_err(|e| ambiguous(&format!("Odoo's answer is unreadable: {e}")))
}

/// The id a `create` answered: `[id]` (a list of values) or `id`.
fn first_id(created: &Value) -> Result<i64, DeliveryError> {
    created
        .as_i64()
        .or_else(|| created.as_array()?.first()?.as_i64())
        .ok_or_else(|| ambiguous(&format!("create answered {created} instead of a record id")))
}

fn ambiguous(reason: &str) -> DeliveryError {
    DeliveryError::Transient { reason: reason.to_owned(), ambiguous: true, retry_after: None }
}

/// A failed read-back proves nothing: keep the outcome unknown.
fn never_permanent(e: DeliveryError) -> DeliveryError {
    match e {
        DeliveryError::Permanent { reason, .. } => ambiguous(&reason),
        transient => transient,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a cache lock leaves a usable map: take it regardless.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An error as Odoo serialises an exception: its class (`odoo.exceptions.ValidationError`)
/// and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub name: Option<String>,
    pub message: String,
}

impl Fault {
    /// A JSON-2 error body: `{"name", "message", "arguments", "context", "debug"}`, or, from
    /// early 19.0 servers, the message as a bare JSON string.
    pub fn json2(body: &Value) -> Option<Fault> {
        match body {
            Value::String(message) => Some(Fault { name: None, message: message.clone() }),
            Value::Object(o) => Some(Fault {
                name: o.get("name").and_then(Value::as_str).map(str::to_owned),
                message: o.get("message").and_then(Value::as_str).unwrap_or_default().to_owned(),
            }),
            _ => None,
        }
    }

    /// A JSON-RPC `error`: `{"code", "message", "data": {"name", "message", ...}}`.
    pub fn json_rpc(error: &Value) -> Option<Fault> {
        let data = error.get("data");
        let name = data.and_then(|d| d.get("name")).and_then(Value::as_str).map(str::to_owned);
        let message = data
            .and_then(|d| d.get("message"))
            .or_else(|| error.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Some(Fault { name, message })
    }

    /// The class name without its module.
    fn class(&self) -> Option<&str> {
        self.name.as_deref().map(|n| n.rsplit('.').next().unwrap_or(n))
    }
}

/// Odoo runs each call in one transaction and rolls it back on any exception, so an answer
/// that names an exception proves nothing was applied. A concurrency failure is worth
/// retrying; a data or access error is not. Only an answer that is not Odoo's (a proxy's 502,
/// a timeout) leaves the outcome unknown.
pub fn classify(status: u16, fault: Option<Fault>, retry_after: Option<SignedDuration>) -> DeliveryError {
    let reason = match &fault {
        Some(f) => format!("{status} {}: {}", f.name.as_deref().unwrap_or("error"), first_line(&f.message)),
        None => format!("{status} without an Odoo error body"),
    };
    let class = fault.as_ref().and_then(Fault::class);
    let transient = |ambiguous| DeliveryError::Transient { reason: reason.clone(), ambiguous, retry_after };
    let throttled = || DeliveryError::Throttled { reason: reason.clone(), retry_after };
    match class {
        Some(
            "ConcurrencyError"
            | "SerializationFailure"
            | "TransactionRollbackError"
            | "LockNotAvailable"
            | "DeadlockDetected"
            | "CacheMiss",
        ) => transient(false),
        Some(_) if status == 429 => throttled(),
        Some(
            "ValidationError"
            | "UserError"
            | "AccessError"
            | "MissingError"
            | "AccessDenied"
            | "RedirectWarning"
            | "ValueError"
            | "TypeError"
            | "KeyError"
            | "BadRequest"
            | "NotFound"
            | "Unauthorized"
            | "Forbidden"
            | "UnprocessableEntity",
        ) => {
            let field = fault.as_ref().and_then(|f| field_in_message(&f.message)).map(canonical_field);
            DeliveryError::Permanent { reason, field }
        }
        // Another exception: Odoo rolled the call back, so it is safe to send again.
        Some(_) if status >= 500 => transient(false),
        _ => match status {
            429 => throttled(),
            408 | 500..=599 => transient(true),
            _ => {
                let field = fault.as_ref().and_then(|f| field_in_message(&f.message)).map(canonical_field);
                DeliveryError::Permanent { reason, field }
            }
        },
    }
}

fn first_line(message: &str) -> &str {
    message.lines().find(|l| !l.trim().is_empty()).unwrap_or(message).trim()
}

/// The technical name of the field an Odoo message blames: `Field: Customer (partner_id)`,
/// `the field 'Customer' (partner_id)`, `Invalid field 'x_foo' on model ...`, or a list of
/// fields an access error names (`- note (allowed for groups ...)`).
pub fn field_in_message(message: &str) -> Option<String> {
    let identifier = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && s.starts_with(|c: char| c.is_ascii_lowercase())
    };
    let in_parens = |line: &str| {
        line.match_indices('(').find_map(|(at, _)| {
            let inner = &line[at + 1..];
            let inner = &inner[..inner.find(')')?];
            identifier(inner).then(|| inner.to_owned())
        })
    };
    if let Some(at) = message.find("Field:") {
        let line = message[at..].lines().next().unwrap_or_default();
        if let Some(field) = in_parens(line) {
            return Some(field);
        }
    }
    for quote in ["field '", "field \"", "Field '"] {
        if let Some(at) = message.find(quote) {
            let rest = &message[at + quote.len()..];
            let name = &rest[..rest.find(['\'', '"']).unwrap_or(rest.len())];
            if identifier(name) {
                return Some(name.to_owned());
            }
            if let Some(field) = in_parens(rest.lines().next().unwrap_or_default()) {
                return Some(field);
            }
        }
    }
    if let Some(at) = message.find("Fields:") {
        let listed = message[at..].lines().skip(1).find_map(|l| l.trim().strip_prefix("- "));
        if let Some(name) = listed.and_then(|l| l.split_whitespace().next())
            && identifier(name)
        {
            return Some(name.to_owned());
        }
    }
    message.lines().find_map(in_parens)
}

/// The canonical path an Odoo field stands for, where there is one; else the Odoo name.
fn canonical_field(odoo: String) -> String {
    let path = match odoo.as_str() {
        "partner_id" => "order.customer",
        "email" => "order.customer.email",
        "name" => "order.customer.name",
        "client_order_ref" => "external_ref",
        "order_line" => "order.lines",
        "product_id" | "default_code" => "order.lines.sku",
        "product_uom_qty" => "order.lines.quantity",
        "price_unit" => "order.lines.unit_price",
        "discount" => "order.lines.discount",
        "currency_id" | "pricelist_id" => "order.currency",
        _ => return odoo,
    };
    path.to_owned()
}

/// Sends orders to Odoo as sale orders.
pub struct OdooTarget {
    odoo: Arc<Odoo>,
    /// The sale order comes from the latest `odoo/sale_order` mapping (or a replay's pin).
    mappings: Arc<Mappings>,
    /// What the mapping reads of the contract: where tax goes, the items of charges.
    settings: Value,
}

impl OdooTarget {
    pub fn new(odoo: Arc<Odoo>, mappings: Arc<Mappings>) -> Self {
        OdooTarget { odoo, mappings, settings: Value::Null }
    }

    /// The contract's order-money settings for the mapping (`crate::money_settings`).
    pub fn with_settings(mut self, settings: Value) -> Self {
        self.settings = settings;
        self
    }
}

impl Target for OdooTarget {
    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        Box::pin(self.odoo.send_command(command, &self.mappings, &self.settings))
    }

    fn mapping(&self, command: &Command) -> Option<String> {
        crate::pinned_or_latest(&self.mappings, "odoo", command)
    }

    fn read_back<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        Box::pin(self.odoo.find(command))
    }

    /// A sale order's id is its address: a cancel naming one cancels that one.
    fn addresses_records(&self) -> bool {
        true
    }

    /// Odoo has none: the dispatcher reads back before every send.
    fn honours_idempotency_keys(&self) -> bool {
        false
    }
}

/// Reads done outgoing deliveries (`stock.picking`) as `fulfillment.created` events of the
/// orders Handoff sent (those with a `client_order_ref`).
pub struct OdooPoller {
    odoo: Arc<Odoo>,
    system: String,
    settings: PollSettings,
}

/// A `stock.picking` as polled.
#[derive(Debug, Clone, Deserialize)]
struct Picking {
    id: i64,
    #[serde(default)]
    sale_id: Many2one,
    #[serde(default)]
    carrier_id: Many2one,
    #[serde(default)]
    carrier_tracking_ref: OdooText,
    #[serde(default)]
    origin: OdooText,
    write_date: String,
    #[serde(default)]
    date_done: OdooText,
    /// The record exactly as Odoo answered it, kept as the event's raw body.
    #[serde(skip)]
    raw: Value,
}

#[derive(Debug, Clone, Deserialize)]
struct Move {
    picking_id: Many2one,
    product_id: Many2one,
    #[serde(default)]
    quantity: Value,
}

const ODOO_DATETIME: &str = "%Y-%m-%d %H:%M:%S";

/// Odoo's datetimes are UTC, `YYYY-MM-DD HH:MM:SS`.
pub fn parse_odoo_time(s: &str) -> Option<Timestamp> {
    let s = s.split('.').next().unwrap_or(s);
    jiff::civil::DateTime::strptime(ODOO_DATETIME, s)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

pub fn format_odoo_time(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::UTC).strftime(ODOO_DATETIME).to_string()
}

impl OdooPoller {
    pub fn new(odoo: Arc<Odoo>, system: &str, settings: PollSettings) -> Self {
        OdooPoller { odoo, system: system.to_owned(), settings }
    }

    /// A keyset page of the engine's [`Cursor`]: done deliveries whose `write_date` is at or
    /// after the page's second, less the ones read at that second (`id not in`, since Odoo keeps
    /// `write_date` finer than the second it shows and ids do not follow it).
    async fn page(&self, stored: Option<&str>, now: Timestamp) -> Result<Page, PollError> {
        let mut cursor = Cursor::resume(stored, now, self.settings.initial)?;
        let excluded: Vec<i64> = cursor.excluded().iter().filter_map(|id| id.parse().ok()).collect();
        let mut domain = vec![
            json!(["picking_type_code", "=", "outgoing"]),
            json!(["state", "=", "done"]),
            json!(["write_date", ">=", format_odoo_time(cursor.from())]),
        ];
        if !excluded.is_empty() {
            domain.push(json!(["id", "not in", excluded]));
        }
        let fields = ["id", "sale_id", "origin", "write_date", "date_done", "carrier_id", "carrier_tracking_ref"];
        let call = Call::search_read("stock.picking", Value::Array(domain), &fields)
            .kwarg("order", json!("write_date asc, id asc"))
            .kwarg("limit", json!(self.settings.page_size));
        let rows: Vec<Value> = decode(self.odoo.call(call).await.map_err(PollError::from)?).map_err(PollError::from)?;
        let mut pickings = Vec::with_capacity(rows.len());
        let mut listed = Vec::with_capacity(rows.len());
        for row in rows {
            let mut picking: Picking = decode(row.clone()).map_err(PollError::from)?;
            picking.raw = row;
            let modified = parse_odoo_time(&picking.write_date)
                .ok_or_else(|| PollError::new(format!("write_date {:?} unreadable", picking.write_date)))?;
            listed.push((picking.id.to_string(), modified));
            pickings.push(picking);
        }
        let full = !pickings.is_empty() && pickings.len() >= self.settings.page_size as usize;
        let mut read = crate::held::PageRead::new(&self.system, now);
        self.deliveries(&pickings, &mut cursor, &mut read, now).await?;
        let more = cursor.keyset_page(&listed, full, self.settings.lookback)?;
        read.page(&cursor, more)
    }

    /// Reads a page's deliveries of Handoff's orders into `read`: each one's event, or the
    /// delivery held when it cannot be read.
    async fn deliveries(
        &self,
        pickings: &[Picking],
        cursor: &mut Cursor,
        read: &mut crate::held::PageRead<'_>,
        now: Timestamp,
    ) -> Result<(), PollError> {
        if pickings.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = pickings.iter().map(|p| p.id).collect();
        let call = Call::search_read(
            "stock.move",
            json!([["picking_id", "in", ids]]),
            &["picking_id", "product_id", "quantity"],
        );
        let rows: Vec<Value> = decode(self.odoo.call(call).await.map_err(PollError::from)?).map_err(PollError::from)?;
        let moves: Vec<(Move, Value)> = rows
            .into_iter()
            .map(|row| Ok::<_, DeliveryError>((decode(row.clone())?, row)))
            .collect::<Result<_, _>>()
            .map_err(PollError::from)?;
        let product_ids: Vec<i64> = moves.iter().filter_map(|(m, _)| m.product_id.0.as_ref().map(|p| p.0)).collect();
        let codes = self.codes(&product_ids).await?;
        let refs = self.order_refs(pickings).await?;
        for picking in pickings {
            let Some(order_ref) = refs.get(&picking.id) else { continue };
            let mine: Vec<&(Move, Value)> =
                moves.iter().filter(|(m, _)| m.picking_id.0.as_ref().map(|p| p.0) == Some(picking.id)).collect();
            let moves_of = mine.iter().map(|(m, _)| m).collect::<Vec<_>>();
            let raw = json!({"picking": picking.raw, "moves": mine.iter().map(|(_, raw)| raw).collect::<Vec<_>>()});
            let event = delivery_event(picking, &moves_of, &codes, order_ref, now).map(|e| (e, raw.to_string()));
            // Nothing of it maps (no product with an internal reference, no whole units): held,
            // with the references it was read with, while the others come in.
            let hold = |unmapped| {
                let mut record = raw;
                record["order_ref"] = json!(order_ref);
                let used = moves_of.iter().filter_map(|m| m.product_id.0.as_ref().map(|p| p.0));
                let used: serde_json::Map<String, Value> =
                    used.map(|id| (id.to_string(), json!(codes.get(&id).cloned().flatten()))).collect();
                record["codes"] = Value::Object(used);
                crate::held::record(&self.system, &record, Some(order_ref.clone()), None, unmapped, now)
            };
            let modified = parse_odoo_time(&picking.write_date);
            read.take(cursor, &picking.id.to_string(), modified, event, hold)?;
        }
        Ok(())
    }

    /// `default_code` of each product, from the cache or one read.
    async fn codes(&self, product_ids: &[i64]) -> Result<HashMap<i64, Option<String>>, PollError> {
        let missing: Vec<i64> = {
            let cache = lock(&self.odoo.codes);
            product_ids.iter().filter(|id| !cache.contains_key(id)).copied().collect()
        };
        if !missing.is_empty() {
            let call = Call::search_read("product.product", json!([["id", "in", missing]]), &["id", "default_code"])
                .kwarg("context", json!({"active_test": false}));
            let rows: Vec<Product> =
                decode(self.odoo.call(call).await.map_err(PollError::from)?).map_err(PollError::from)?;
            let mut cache = lock(&self.odoo.codes);
            if cache.len() + rows.len() > PRODUCT_CACHE_LIMIT {
                cache.clear();
            }
            for row in rows {
                cache.insert(row.id, row.default_code.into_code());
            }
        }
        let cache = lock(&self.odoo.codes);
        Ok(product_ids.iter().filter_map(|id| Some((*id, cache.get(id)?.clone()))).collect())
    }

    /// Each picking's order reference: the `client_order_ref` of its sale order (`sale_id`,
    /// else the order named by `origin`). Pickings of orders Handoff did not send have none.
    async fn order_refs(&self, pickings: &[Picking]) -> Result<HashMap<i64, String>, PollError> {
        let ids: Vec<i64> = pickings.iter().filter_map(|p| p.sale_id.0.as_ref().map(|s| s.0)).collect();
        let names: Vec<String> =
            pickings.iter().filter(|p| p.sale_id.0.is_none()).filter_map(|p| p.origin.0.clone()).collect();
        let domain = json!(["|", ["id", "in", ids], ["name", "in", names]]);
        let call = Call::search_read("sale.order", domain, &["id", "name", "client_order_ref"]);
        let orders: Vec<Value> =
            decode(self.odoo.call(call).await.map_err(PollError::from)?).map_err(PollError::from)?;
        let reference = |o: &Value| o["client_order_ref"].as_str().filter(|r| !r.is_empty()).map(str::to_owned);
        let mut refs = HashMap::new();
        for p in pickings {
            let order = match &p.sale_id.0 {
                Some((sale, _)) => orders.iter().find(|o| o["id"].as_i64() == Some(*sale)),
                None => {
                    orders.iter().find(|o| o["name"].as_str().is_some() && o["name"].as_str() == p.origin.0.as_deref())
                }
            };
            if let Some(r) = order.and_then(reference) {
                refs.insert(p.id, r);
            }
        }
        Ok(refs)
    }
}

/// One done delivery of `order_ref` as a `fulfillment.created` event: its moves' products by
/// internal reference (`codes`), in whole units.
fn delivery_event(
    picking: &Picking,
    moves: &[&Move],
    codes: &HashMap<i64, Option<String>>,
    order_ref: &str,
    now: Timestamp,
) -> Result<InboundEvent, Unmapped> {
    let mut lines: BTreeMap<String, u32> = BTreeMap::new();
    for m in moves {
        let Some(sku) = m.product_id.0.as_ref().and_then(|p| codes.get(&p.0).cloned().flatten()) else {
            continue;
        };
        // Handoff counts whole units; a fractional quantity (kg, m) is not one of ours.
        let Some(quantity) = whole(&m.quantity) else { continue };
        if quantity > 0 {
            *lines.entry(sku).or_default() += quantity;
        }
    }
    let occurred = picking.date_done.0.as_deref().or(Some(picking.write_date.as_str()));
    let id = |s: &str| ExternalId::new(s).map_err(|reason| Unmapped { field: "id".into(), reason });
    let event = InboundEvent {
        event_id: id(&format!("odoo-picking-{}", picking.id))?,
        kind: EventKind::FulfillmentCreated,
        order_ref: order_ref.to_owned(),
        occurred_at: occurred.and_then(parse_odoo_time).unwrap_or(now),
        // No version: Odoo's clock would be compared with the storefront's order
        // versions; one event per picking dedups by its id.
        version: None,
        order: None,
        fulfillment: Some(Fulfillment {
            fulfillment_id: id(&picking.id.to_string())?,
            lines: lines.into_iter().map(|(sku, quantity)| FulfillmentLine { sku, quantity }).collect(),
            carrier: picking.carrier_id.0.as_ref().map(|c| c.1.clone()).filter(|c| !c.is_empty()),
            tracking_number: picking.carrier_tracking_ref.clone().into_code(),
        }),
        refund: None,
        payment: None,
        source_version: None,
        inbound_mapping: Some("odoo/stock_picking@search_read".into()),
    };
    Ok(event)
}

/// Reads a held delivery again: `{"picking", "moves"}` as polled, with the `order_ref` and the
/// products' internal references (`codes`) it was read with.
pub(crate) fn reread(raw: &Value, received_at: Timestamp) -> Result<InboundEvent, Unmapped> {
    let unreadable = |field: &str, e: serde_json::Error| Unmapped { field: field.into(), reason: e.to_string() };
    let picking: Picking = serde_json::from_value(raw["picking"].clone()).map_err(|e| unreadable("picking", e))?;
    let moves: Vec<Move> = serde_json::from_value(raw["moves"].clone()).map_err(|e| unreadable("moves", e))?;
    let codes = raw["codes"].as_object().into_iter().flatten();
    let codes = codes.filter_map(|(id, code)| Some((id.parse().ok()?, code.as_str().map(str::to_owned)))).collect();
    let order_ref = raw["order_ref"].as_str().unwrap_or_default();
    delivery_event(&picking, &moves.iter().collect::<Vec<_>>(), &codes, order_ref, received_at)
}

/// A quantity that is a whole, non-negative number of units.
fn whole(quantity: &Value) -> Option<u32> {
    let n: Decimal = match quantity {
        Value::Number(n) => n.to_string().parse().ok()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    if n.fract().is_zero() { n.to_u32() } else { None }
}

impl Poller for OdooPoller {
    fn poll<'a>(&'a self, cursor: Option<&'a str>, now: Timestamp) -> BoxFuture<'a, Result<Page, PollError>> {
        Box::pin(self.page(cursor, now))
    }
}

/// The shared client of one contract entry, for its target and its poller.
pub fn client(name: &str, system: &System) -> Result<Arc<Odoo>, ConfigError> {
    let base_url = system.base_url.as_deref().ok_or_else(|| ConfigError {
        key: format!("systems.{name}.base_url"),
        message: "the odoo connector needs the server's URL".into(),
    })?;
    Ok(Arc::new(Odoo::from_contract(name, system, base_url)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(name: &str, message: &str) -> Option<Fault> {
        Some(Fault { name: Some(name.into()), message: message.into() })
    }

    #[test]
    fn data_and_access_errors_are_permanent_and_name_the_field() {
        let missing = "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n\n\
                       Model: Sales Order (sale.order)\nField: Customer (partner_id)";
        assert_eq!(
            classify(422, fault("odoo.exceptions.ValidationError", missing), None),
            DeliveryError::Permanent {
                reason: "422 odoo.exceptions.ValidationError: The operation cannot be completed:".into(),
                field: Some("order.customer".into()),
            }
        );
        let access = "You are not allowed to modify some fields of 'Sales Order' (sale.order) records.\n\
                      Fields:\n- note (allowed for groups 'Sales / Administrator')";
        match classify(403, fault("odoo.exceptions.AccessError", access), None) {
            DeliveryError::Permanent { field, .. } => assert_eq!(field.as_deref(), Some("note")),
            other => panic!("{other:?}"),
        }
        let missing_record = "Record does not exist or has been deleted.\n(Record: sale.order(7,), User: 2)";
        assert!(matches!(
            classify(404, fault("odoo.exceptions.MissingError", missing_record), None),
            DeliveryError::Permanent { field: None, .. }
        ));
        assert!(matches!(
            classify(422, fault("odoo.exceptions.UserError", "You cannot cancel a locked order."), None),
            DeliveryError::Permanent { field: None, .. }
        ));
        // Early 19.0 servers: the message alone, as a JSON string.
        assert!(matches!(classify(401, Fault::json2(&json!("Invalid apikey")), None), DeliveryError::Permanent { .. }));
    }

    #[test]
    fn concurrency_and_rate_limits_are_transient_and_not_ambiguous() {
        let serialization = "could not serialize access due to concurrent update";
        assert!(matches!(
            classify(500, fault("psycopg2.errors.SerializationFailure", serialization), None),
            DeliveryError::Transient { ambiguous: false, .. }
        ));
        assert!(matches!(
            classify(503, fault("odoo.exceptions.ConcurrencyError", "concurrent update"), None),
            DeliveryError::Transient { ambiguous: false, .. }
        ));
        let wait = Some(SignedDuration::from_secs(3));
        assert_eq!(
            classify(429, None, wait),
            DeliveryError::Throttled { reason: "429 without an Odoo error body".into(), retry_after: wait }
        );
        // Any other exception Odoo names was rolled back with its transaction.
        assert!(matches!(
            classify(500, fault("builtins.RuntimeError", "boom"), None),
            DeliveryError::Transient { ambiguous: false, .. }
        ));
    }

    #[test]
    fn answers_that_are_not_odoos_leave_the_outcome_unknown() {
        for status in [502, 503, 504, 408] {
            assert!(matches!(classify(status, None, None), DeliveryError::Transient { ambiguous: true, .. }));
        }
    }

    #[test]
    fn json_rpc_errors_are_read_from_their_data() {
        let error = json!({"code": 200, "message": "Odoo Server Error", "data": {
            "name": "odoo.exceptions.ValidationError", "message": "Invalid field 'x_colour' on model 'sale.order'",
            "arguments": [], "context": {}, "debug": "Traceback ..."}});
        let fault = Fault::json_rpc(&error);
        assert_eq!(fault.as_ref().and_then(Fault::class), Some("ValidationError"));
        assert!(matches!(
            classify(500, fault, None),
            DeliveryError::Permanent { field: Some(f), .. } if f == "x_colour"
        ));
    }

    #[test]
    fn fields_are_found_in_odoos_wordings() {
        assert_eq!(
            field_in_message("Missing required value for the field 'Customer' (partner_id)").as_deref(),
            Some("partner_id")
        );
        assert_eq!(field_in_message("Field: Email (email)").as_deref(), Some("email"));
        assert_eq!(field_in_message("Invalid field 'x_foo' on model 'sale.order'").as_deref(), Some("x_foo"));
        assert_eq!(field_in_message("Something went wrong (sale.order)"), None);
        assert_eq!(field_in_message("You cannot cancel a locked order."), None);
    }

    #[test]
    fn one_call_two_wires() {
        let call = Call::new("sale.order", "write").ids(vec![7]).arg("vals", json!({"origin": "x"}));
        assert_eq!(call.json2_body(), json!({"ids": [7], "vals": {"origin": "x"}}));
        assert_eq!(call.positional(), json!([[7], {"origin": "x"}]));
        let search =
            Call::search_read("sale.order", json!([["client_order_ref", "=", "1"]]), &["id"]).kwarg("limit", json!(1));
        assert_eq!(
            search.json2_body(),
            json!({"domain": [["client_order_ref", "=", "1"]], "fields": ["id"], "limit": 1})
        );
        assert_eq!(search.positional(), json!([[["client_order_ref", "=", "1"]]]));
        assert_eq!(search.kwargs, json!({"fields": ["id"], "limit": 1}).as_object().cloned().unwrap());
    }

    #[test]
    fn the_version_rides_in_origin() {
        assert_eq!(origin_version("#1001 [handoff v42]"), Some(42));
        assert_eq!(origin_version("#1001"), None);
        assert_eq!(origin_version("edited [handoff v4x]"), None);
    }

    /// Three at 19.99 less 6.00 of discount: 53.97, three at 17.99 exactly.
    #[test]
    fn the_mapping_writes_the_version_and_exact_net_prices() {
        let mappings = Mappings::shipped().unwrap();
        let command = json!({"external_ref": "1001", "version": 42, "order": {
            "order_ref": "1001", "name": "#1001", "customer": {"email": "a@b.c"}, "currency": "EUR",
            "placed_at": "2026-11-26T10:00:00Z", "totals": {"subtotal": "53.97", "total": "53.97"},
            "lines": [{"sku": "A", "quantity": 3, "unit_price": "19.99", "discount": "6.00"}]}});
        let (id, draft) = mappings.transform("odoo", "sale_order", &command, &Value::Null).unwrap();
        assert_eq!(id.to_string(), "odoo/sale_order@2");
        let draft: Value = serde_json::from_str(&draft).unwrap();
        assert_eq!(draft["origin"], format!("#1001{VERSION_TAG}42]"));
        assert_eq!(
            draft["order_line"],
            json!([{"default_code": "A", "product_uom_qty": 3, "price_unit": "17.99", "name": "A"}])
        );
    }

    #[test]
    fn odoo_times_are_utc_without_zone() {
        let t = parse_odoo_time("2026-11-26 10:15:00").unwrap();
        assert_eq!(t, "2026-11-26T10:15:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(format_odoo_time(t), "2026-11-26 10:15:00");
        assert_eq!(parse_odoo_time("yesterday"), None);
    }

    #[test]
    fn only_whole_quantities_count() {
        assert_eq!(whole(&json!(3.0)), Some(3));
        assert_eq!(whole(&json!(2)), Some(2));
        assert_eq!(whole(&json!(1.5)), None);
        assert_eq!(whole(&json!(-1.0)), None);
    }
}
