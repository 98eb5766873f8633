//! Shopify as a target and as a polled source, through the Admin API of one shop
//! (`{base_url}/admin/api/{api_version}/`, `X-Shopify-Access-Token`).
//!
//! Writes back to the storefront: fulfillments (through the order's fulfillment orders), cancels
//! and refunds. Fulfillments and cancels have no idempotency key in Shopify, so every one is
//! preceded by a read-back (`honours_idempotency_keys` is false) and a fulfillment first checks
//! what remains to fulfil. Refunds go through GraphQL `refundCreate` with
//! `@idempotent(key: ...)`, the one way Shopify deduplicates a retried refund.
//!
//! The reconciliation poll reads `orders.json` by `updated_at_min`, following the `Link` header,
//! and maps each order as its webhook would: it catches the webhooks that never came. Its
//! windows, overlap and dedup are the engine's [`Cursor`]'s.

use handoff_contract::System;
use handoff_engine::poll::{Cursor, Page, PollError, Poller};
use handoff_engine::quarantine::Unmapped;
use handoff_engine::{Ack, BoxFuture, DeliveryError, Target};
use handoff_model::{CommandKind, Fulfillment, Refund};
use handoff_store::Command;
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ConfigError;
use crate::http_json::{retry_after, transport_error};

/// The Admin API version asked for when the contract names none.
pub const DEFAULT_API_VERSION: &str = "2026-07";

/// One shop's Admin API: where it is, which version, and the token.
pub struct AdminApi {
    shop: String,
    version: String,
    token: String,
    client: reqwest::Client,
}

impl AdminApi {
    pub fn new(name: &str, system: &System) -> Result<Self, ConfigError> {
        let shop = system.base_url.as_deref().ok_or_else(|| ConfigError {
            key: format!("systems.{name}.base_url"),
            message: "the shopify connector needs the shop's URL (https://{shop}.myshopify.com)".into(),
        })?;
        let token = system.credential(name, "access_token")?.to_owned();
        let client = crate::outbound::Outbound::of(system)
            .client()
            .timeout(system.timeout.unsigned_abs())
            .build()
            .map_err(|e| ConfigError { key: format!("systems.{name}"), message: e.to_string() })?;
        Ok(AdminApi {
            shop: shop.trim_end_matches('/').to_owned(),
            version: system.api_version.clone().unwrap_or_else(|| DEFAULT_API_VERSION.to_owned()),
            token,
            client,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/admin/api/{}/{path}", self.shop, self.version)
    }

    /// One call; a non-2xx answer comes back classified.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Answer, DeliveryError> {
        let mut request = self.client.request(method, self.url(path)).header("x-shopify-access-token", &self.token);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(classify(status, &body, retry_after(&headers)));
        }
        let json = serde_json::from_slice(&body).map_err(|e| DeliveryError::Transient {
            reason: format!("{status} with an unreadable body: {e}"),
            ambiguous: true,
            retry_after: None,
        })?;
        Ok(Answer { json, headers })
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, DeliveryError> {
        let answer = self.call(reqwest::Method::GET, path, None).await?;
        serde_json::from_value(answer.json).map_err(|e| unreadable(path, e))
    }
}

struct Answer {
    json: Value,
    headers: HeaderMap,
}

fn unreadable(what: &str, e: serde_json::Error) -> DeliveryError {
    DeliveryError::Transient { reason: format!("{what}: unexpected answer: {e}"), ambiguous: true, retry_after: None }
}

/// Shopify's REST errors: `{"errors": "..."}`, `{"errors": ["..."]}` or
/// `{"errors": {"field": ["message"]}}` (422), sometimes `{"error": "..."}`. 429 is a rate limit
/// (not applied); 5xx may have applied; any other 4xx is a data error, naming the field when
/// Shopify does.
pub fn classify(status: StatusCode, body: &[u8], retry_after: Option<SignedDuration>) -> DeliveryError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let errors = parsed.get("errors").or_else(|| parsed.get("error")).cloned().unwrap_or(Value::Null);
    let (message, field) = match &errors {
        Value::String(s) => (s.clone(), None),
        Value::Array(items) => (items.iter().map(text).collect::<Vec<_>>().join("; "), None),
        Value::Object(fields) => {
            let message = fields.iter().map(|(k, v)| format!("{k}: {}", text(v))).collect::<Vec<_>>().join("; ");
            (message, fields.keys().next().cloned())
        }
        _ => (String::new(), None),
    };
    let reason = if message.is_empty() { status.to_string() } else { format!("{status}: {message}") };
    match status.as_u16() {
        429 => DeliveryError::Throttled { reason, retry_after },
        408 | 500..=599 => DeliveryError::Transient { reason, ambiguous: true, retry_after },
        _ => DeliveryError::Permanent { reason, field },
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A failed read-back proves nothing: never a data error.
fn unknown(e: DeliveryError) -> DeliveryError {
    match e {
        DeliveryError::Permanent { reason, .. } => {
            DeliveryError::Transient { reason, ambiguous: true, retry_after: None }
        }
        transient => transient,
    }
}

fn permanent(field: &str, reason: impl Into<String>) -> DeliveryError {
    DeliveryError::Permanent { reason: reason.into(), field: Some(field.to_owned()) }
}

/// The Shopify numeric id a command's order_ref must be.
fn order_id(c: &Command) -> Result<u64, DeliveryError> {
    c.order_ref.parse().map_err(|_| permanent("order_ref", format!("{:?} is not a Shopify order id", c.order_ref)))
}

#[derive(Deserialize)]
struct FulfillmentPayload {
    fulfillment: Fulfillment,
}

#[derive(Deserialize)]
struct RefundPayload {
    refund: Refund,
}

fn payload<T: for<'de> Deserialize<'de>>(c: &Command) -> Result<T, DeliveryError> {
    serde_json::from_str(&c.payload)
        .map_err(|e| permanent("payload", format!("not a {} payload: {e}", c.kind.as_str())))
}

// --- The order and its fulfillment orders, as far as Handoff reads them ---------------------

#[derive(Deserialize)]
struct OrderEnvelope {
    order: AdminOrder,
}

#[derive(Deserialize)]
struct AdminOrder {
    id: u64,
    cancelled_at: Option<String>,
    #[serde(default)]
    line_items: Vec<AdminLineItem>,
    #[serde(default)]
    fulfillments: Vec<AdminFulfillment>,
}

#[derive(Deserialize)]
struct AdminLineItem {
    id: u64,
    sku: Option<String>,
    #[serde(default)]
    quantity: u32,
}

impl AdminLineItem {
    /// The SKU the webhook mapping gave this line (`shopify-line-{id}` without one).
    fn sku(&self) -> String {
        self.sku.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| format!("shopify-line-{}", self.id))
    }
}

#[derive(Deserialize)]
struct AdminFulfillment {
    id: u64,
    #[serde(default)]
    status: String,
    tracking_number: Option<String>,
    #[serde(default)]
    line_items: Vec<AdminLineItem>,
}

#[derive(Deserialize)]
struct FulfillmentOrders {
    fulfillment_orders: Vec<FulfillmentOrder>,
}

#[derive(Deserialize)]
struct FulfillmentOrder {
    id: u64,
    #[serde(default)]
    line_items: Vec<FulfillmentOrderLine>,
}

#[derive(Deserialize)]
struct FulfillmentOrderLine {
    id: u64,
    line_item_id: u64,
    #[serde(default)]
    fulfillable_quantity: u32,
}

/// What a fulfillment command needs done at Shopify.
#[derive(Debug, PartialEq)]
enum Plan {
    /// The effect is there: a matching fulfillment, or nothing of its lines left to fulfil.
    Done(Ack),
    /// Post this `fulfillments.json` body.
    Send(Value),
}

/// Sorted (sku, quantity) pairs, for comparing the lines of two fulfillments.
fn line_set(lines: impl IntoIterator<Item = (String, u32)>) -> Vec<(String, u32)> {
    let mut merged: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    for (sku, quantity) in lines {
        *merged.entry(sku).or_default() += quantity;
    }
    merged.into_iter().collect()
}

/// Decides a fulfillment from the order and its fulfillment orders: an existing fulfillment
/// with the command's tracking number and lines is the command's own (a send whose ack was
/// lost); lines with nothing left to fulfil are already shipped; the rest are allocated to
/// the fulfillment order lines that still have quantity.
fn plan(order: &AdminOrder, fulfillment_orders: &[FulfillmentOrder], f: &Fulfillment) -> Result<Plan, DeliveryError> {
    let wanted = line_set(f.lines.iter().map(|l| (l.sku.clone(), l.quantity)));
    let own = order.fulfillments.iter().rev().find(|existing| {
        existing.status != "cancelled"
            && existing.tracking_number.as_deref().filter(|t| !t.is_empty()) == f.tracking_number.as_deref()
            && line_set(existing.line_items.iter().map(|l| (l.sku(), l.quantity))) == wanted
    });
    if let Some(own) = own {
        return Ok(Plan::Done(Ack { record_id: own.id.to_string() }));
    }
    if order.cancelled_at.is_some() {
        // Nothing remains on a cancelled order, yet nothing was shipped for this command.
        return Err(permanent("order_ref", format!("order {} is cancelled: nothing to fulfil", order.id)));
    }
    let mut by_fulfillment_order: Vec<(u64, Vec<Value>)> = Vec::new();
    let mut nothing_left = true;
    for (sku, quantity) in &wanted {
        let line_ids: Vec<u64> = order.line_items.iter().filter(|l| &l.sku() == sku).map(|l| l.id).collect();
        if line_ids.is_empty() {
            return Err(permanent("fulfillment.lines.sku", format!("order {} has no line with SKU {sku}", order.id)));
        }
        let open = fulfillment_orders.iter().flat_map(|fo| fo.line_items.iter().map(move |l| (fo.id, l)));
        let open: Vec<_> =
            open.filter(|(_, l)| line_ids.contains(&l.line_item_id) && l.fulfillable_quantity > 0).collect();
        let remaining: u32 = open.iter().map(|(_, l)| l.fulfillable_quantity).sum();
        if remaining == 0 {
            continue;
        }
        nothing_left = false;
        if remaining < *quantity {
            return Err(permanent(
                "fulfillment.lines.quantity",
                format!("order {}: {quantity} of {sku} to fulfil but only {remaining} remain", order.id),
            ));
        }
        let mut left = *quantity;
        for (fo_id, line) in open {
            if left == 0 {
                break;
            }
            let take = left.min(line.fulfillable_quantity);
            left -= take;
            let item = json!({"id": line.id, "quantity": take});
            match by_fulfillment_order.iter_mut().find(|(id, _)| *id == fo_id) {
                Some((_, items)) => items.push(item),
                None => by_fulfillment_order.push((fo_id, vec![item])),
            }
        }
    }
    if nothing_left {
        // Shipped already (by an earlier send of this command, or by hand in the admin): the
        // latest fulfillment that carries one of the lines stands for it.
        let record_id = order
            .fulfillments
            .iter()
            .rev()
            .find(|existing| existing.line_items.iter().any(|l| wanted.iter().any(|(sku, _)| *sku == l.sku())))
            .map_or_else(|| format!("{}/fulfilled", order.id), |existing| existing.id.to_string());
        return Ok(Plan::Done(Ack { record_id }));
    }
    let groups: Vec<Value> = by_fulfillment_order
        .into_iter()
        .map(|(id, items)| json!({"fulfillment_order_id": id, "fulfillment_order_line_items": items}))
        .collect();
    let mut body = json!({"fulfillment": {"line_items_by_fulfillment_order": groups, "notify_customer": false}});
    if f.tracking_number.is_some() || f.carrier.is_some() {
        body["fulfillment"]["tracking_info"] = json!({"number": f.tracking_number, "company": f.carrier});
    }
    Ok(Plan::Send(body))
}

// --- Refunds: GraphQL refundCreate with @idempotent ----------------------------------------

#[derive(Deserialize)]
struct Transactions {
    transactions: Vec<Transaction>,
}

#[derive(Deserialize)]
struct Transaction {
    id: u64,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    gateway: String,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct Refunds {
    refunds: Vec<AdminRefund>,
}

#[derive(Deserialize)]
struct AdminRefund {
    id: u64,
    note: Option<String>,
}

/// Written into the refund's note: how a read-back recognises the refund of one command
/// (Shopify keeps no external reference on a refund).
fn refund_marker(c: &Command) -> String {
    format!("[handoff {}]", c.external_ref)
}

const REFUND_CREATE: &str = "mutation refundCreate($input: RefundInput!) { refundCreate(input: $input) \
                             @idempotent(key: KEY) { refund { id } userErrors { field message } } }";

/// The `refundCreate` request for a command: the refund of `amount` against the order's captured
/// payment, the command's idempotency key in the `@idempotent` directive.
fn refund_request(c: &Command, order_id: u64, refund: &Refund, parent: &Transaction) -> Value {
    // A JSON string literal is a valid GraphQL string literal (same escapes).
    let key = Value::String(c.idempotency_key.clone()).to_string();
    let note = match &refund.reason {
        Some(reason) => format!("{reason} {}", refund_marker(c)),
        None => refund_marker(c),
    };
    let order_gid = format!("gid://shopify/Order/{order_id}");
    json!({
        "query": REFUND_CREATE.replace("KEY", &key),
        "variables": {"input": {
            "orderId": order_gid,
            "note": note,
            "notify": false,
            "transactions": [{
                "orderId": order_gid,
                "parentId": format!("gid://shopify/OrderTransaction/{}", parent.id),
                "amount": refund.amount.amount.to_string(),
                "gateway": parent.gateway,
                "kind": "REFUND",
            }],
        }},
    })
}

/// Reads a `refundCreate` answer: the refund's numeric id, or why not. GraphQL answers 200
/// with `errors` (throttling, server errors) or `userErrors` (the data).
fn refund_created(answer: &Value) -> Result<Ack, DeliveryError> {
    if let Some(errors) = answer.get("errors").and_then(Value::as_array).filter(|e| !e.is_empty()) {
        let code = errors.iter().find_map(|e| e.pointer("/extensions/code").and_then(Value::as_str)).unwrap_or("");
        let reason =
            format!("refundCreate: {}", errors.iter().map(|e| text(&e["message"])).collect::<Vec<_>>().join("; "));
        return Err(match code {
            // GraphQL's cost limit: a 200 that says no more than a 429 would, and spends no attempt.
            "THROTTLED" => DeliveryError::Throttled { reason, retry_after: None },
            "INTERNAL_SERVER_ERROR" => DeliveryError::Transient { reason, ambiguous: true, retry_after: None },
            _ => DeliveryError::Permanent { reason, field: None },
        });
    }
    let result = &answer["data"]["refundCreate"];
    if let Some(first) = result["userErrors"].as_array().and_then(|e| e.first()) {
        let field = first["field"].as_array().map(|path| path.iter().map(text).collect::<Vec<_>>().join("."));
        return Err(DeliveryError::Permanent { reason: format!("refundCreate: {}", text(&first["message"])), field });
    }
    let gid = result["refund"]["id"].as_str().ok_or_else(|| DeliveryError::Transient {
        reason: "refundCreate answered without a refund id".into(),
        ambiguous: true,
        retry_after: None,
    })?;
    Ok(Ack { record_id: gid.rsplit('/').next().unwrap_or(gid).to_owned() })
}

// --- The target ---------------------------------------------------------------------------

/// Shopify as the target of fulfillments, cancels and refunds.
pub struct ShopifyTarget {
    api: AdminApi,
}

impl ShopifyTarget {
    pub fn new(name: &str, system: &System) -> Result<Self, ConfigError> {
        Ok(ShopifyTarget { api: AdminApi::new(name, system)? })
    }

    async fn order(&self, id: u64) -> Result<AdminOrder, DeliveryError> {
        Ok(self.api.get::<OrderEnvelope>(&format!("orders/{id}.json")).await?.order)
    }

    /// The order and its fulfillment orders as they stand (HTTP errors only).
    async fn fulfillment_state(&self, id: u64) -> Result<(AdminOrder, Vec<FulfillmentOrder>), DeliveryError> {
        let order = self.order(id).await?;
        let FulfillmentOrders { fulfillment_orders } =
            self.api.get(&format!("orders/{id}/fulfillment_orders.json")).await?;
        Ok((order, fulfillment_orders))
    }

    async fn find_refund(&self, c: &Command) -> Result<Option<Ack>, DeliveryError> {
        let id = order_id(c)?;
        let Refunds { refunds } = self.api.get(&format!("orders/{id}/refunds.json")).await?;
        let marker = refund_marker(c);
        let found = refunds.into_iter().find(|r| r.note.as_deref().is_some_and(|n| n.contains(&marker)));
        Ok(found.map(|r| Ack { record_id: r.id.to_string() }))
    }

    async fn send_command(&self, c: &Command) -> Result<Ack, DeliveryError> {
        match c.kind {
            CommandKind::CreateFulfillment => {
                let id = order_id(c)?;
                let FulfillmentPayload { fulfillment } = payload(c)?;
                let (order, fulfillment_orders) = self.fulfillment_state(id).await?;
                match plan(&order, &fulfillment_orders, &fulfillment)? {
                    Plan::Done(ack) => Ok(ack),
                    Plan::Send(body) => {
                        let answer = self.api.call(reqwest::Method::POST, "fulfillments.json", Some(&body)).await?;
                        let id = answer.json["fulfillment"]["id"].as_u64().ok_or_else(|| DeliveryError::Transient {
                            reason: "fulfillment created without an id".into(),
                            ambiguous: true,
                            retry_after: None,
                        })?;
                        Ok(Ack { record_id: id.to_string() })
                    }
                }
            }
            CommandKind::CancelOrder => {
                let id = order_id(c)?;
                let path = format!("orders/{id}/cancel.json");
                match self.api.call(reqwest::Method::POST, &path, Some(&json!({}))).await {
                    Ok(_) => Ok(Ack { record_id: id.to_string() }),
                    // Shopify refuses to cancel a cancelled order: that is the effect wanted.
                    Err(DeliveryError::Permanent { reason, field }) => match self.order(id).await {
                        Ok(order) if order.cancelled_at.is_some() => Ok(Ack { record_id: id.to_string() }),
                        _ => Err(DeliveryError::Permanent { reason, field }),
                    },
                    Err(e) => Err(e),
                }
            }
            CommandKind::CreateRefund => {
                let id = order_id(c)?;
                let RefundPayload { refund } = payload(c)?;
                let Transactions { transactions } = self.api.get(&format!("orders/{id}/transactions.json")).await?;
                let parent = transactions
                    .iter()
                    .rev()
                    .find(|t| (t.kind == "sale" || t.kind == "capture") && t.status == "success")
                    .ok_or_else(|| permanent("refund", format!("order {id} has no captured payment to refund")))?;
                if let Some(currency) = &parent.currency
                    && !currency.eq_ignore_ascii_case(refund.amount.currency.as_str())
                {
                    return Err(permanent(
                        "refund.amount.currency",
                        format!(
                            "order {id} was paid in {currency}, the refund is in {}",
                            refund.amount.currency.as_str()
                        ),
                    ));
                }
                let body = refund_request(c, id, &refund, parent);
                let answer = self.api.call(reqwest::Method::POST, "graphql.json", Some(&body)).await?;
                refund_created(&answer.json)
            }
            CommandKind::CreateOrder | CommandKind::UpdateOrder => Err(DeliveryError::Permanent {
                reason: format!("Shopify takes no {} from Handoff", c.kind.as_str()),
                field: Some("kind".into()),
            }),
        }
    }

    async fn find(&self, c: &Command) -> Result<Option<Ack>, DeliveryError> {
        match c.kind {
            CommandKind::CreateFulfillment => {
                // A command Shopify would refuse (no such order id, SKU or quantity) has no
                // effect to find; the send, which plans again, reports why.
                let (Ok(id), Ok(FulfillmentPayload { fulfillment })) = (order_id(c), payload(c)) else {
                    return Ok(None);
                };
                let (order, fulfillment_orders) = self.fulfillment_state(id).await.map_err(unknown)?;
                match plan(&order, &fulfillment_orders, &fulfillment) {
                    Ok(Plan::Done(ack)) => Ok(Some(ack)),
                    Ok(Plan::Send(_)) | Err(_) => Ok(None),
                }
            }
            CommandKind::CancelOrder => {
                let id = order_id(c).map_err(unknown)?;
                let order = self.order(id).await.map_err(unknown)?;
                Ok(order.cancelled_at.is_some().then(|| Ack { record_id: id.to_string() }))
            }
            CommandKind::CreateRefund => self.find_refund(c).await.map_err(unknown),
            CommandKind::CreateOrder | CommandKind::UpdateOrder => Ok(None),
        }
    }
}

impl Target for ShopifyTarget {
    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        Box::pin(self.send_command(command))
    }

    fn read_back<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        Box::pin(self.find(command))
    }

    /// Fulfillments and cancels carry no key at Shopify: read back before every send.
    fn honours_idempotency_keys(&self) -> bool {
        false
    }
}

// --- The reconciliation poll --------------------------------------------------------------

/// Polls the shop's orders changed since the cursor: a window by `updated_at_min`, paged by
/// Shopify's own `page_info` (its keyset over `updated_at` and id), through the engine's
/// [`Cursor`].
pub struct OrdersPoller {
    name: String,
    api: AdminApi,
    page_size: u32,
    initial: SignedDuration,
    lookback: SignedDuration,
}

impl OrdersPoller {
    pub fn new(name: &str, system: &System) -> Result<Self, ConfigError> {
        let settings = system.poll.clone().unwrap_or_default();
        Ok(OrdersPoller {
            name: name.to_owned(),
            api: AdminApi::new(name, system)?,
            page_size: settings.page_size.clamp(1, 250),
            initial: settings.initial,
            lookback: settings.lookback,
        })
    }

    async fn page(&self, stored: Option<&str>, now: Timestamp) -> Result<Page, PollError> {
        let mut cursor = Cursor::resume(stored, now, self.initial)?;
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &self.page_size.to_string());
            match cursor.token() {
                // With page_info Shopify allows only limit and fields: the rest is in the token.
                Some(page_info) => query.append_pair("page_info", page_info),
                // Whole seconds: the bound is inclusive, and the cursor's start is one already.
                None => query
                    .append_pair("updated_at_min", &cursor.since.to_string())
                    .append_pair("status", "any")
                    .append_pair("order", "updated_at asc"),
            };
            query.finish()
        };
        let answer = self.api.call(reqwest::Method::GET, &format!("orders.json?{query}"), None).await;
        let answer = answer.map_err(PollError::from)?;
        let orders = answer.json["orders"].as_array().cloned().unwrap_or_default();
        let mut read = crate::held::PageRead::new(&self.name, now);
        let version = Some(self.api.version.as_str());
        for order in orders {
            let id = order["id"].to_string();
            let updated_at = order["updated_at"].as_str().and_then(|t| t.parse::<Timestamp>().ok());
            let event = crate::shopify::polled_order(order.clone()).map(|e| (e, order.to_string()));
            // One order Handoff cannot read must not stop the others from coming in: it is
            // held, with a Transform Mismatch, until a fixed reader replays it.
            let hold = |unmapped| {
                crate::held::record(&self.name, &order, crate::held::id_of(&order["id"]), version, unmapped, now)
            };
            read.take(&mut cursor, &id, updated_at, event.map_err(Unmapped::from), hold)?;
        }
        let more = cursor.token_page(next_page_info(&answer.headers), self.lookback);
        read.page(&cursor, more)
    }
}

impl Poller for OrdersPoller {
    fn poll<'a>(&'a self, cursor: Option<&'a str>, now: Timestamp) -> BoxFuture<'a, Result<Page, PollError>> {
        Box::pin(self.page(cursor, now))
    }
}

/// The `page_info` of the `rel="next"` link in Shopify's `Link` header.
fn next_page_info(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let url = part.split(';').next()?.trim().trim_start_matches('<').trim_end_matches('>');
        let query = url.split_once('?')?.1;
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "page_info").map(|(_, v)| v.into_owned())
    })
}

#[cfg(test)]
mod tests {
    use handoff_model::{FulfillmentLine, Money};

    use super::*;

    fn status(n: u16) -> StatusCode {
        StatusCode::from_u16(n).unwrap()
    }

    #[test]
    fn a_422_names_the_field_shopify_names() {
        let body = br#"{"errors":{"line_items_by_fulfillment_order":["must have at least one item"]}}"#;
        assert_eq!(
            classify(status(422), body, None),
            DeliveryError::Permanent {
                reason: "422 Unprocessable Entity: line_items_by_fulfillment_order: must have at least one item".into(),
                field: Some("line_items_by_fulfillment_order".into()),
            }
        );
    }

    #[test]
    fn a_429_waits_as_told_and_a_5xx_may_have_applied() {
        let wait = Some(SignedDuration::from_secs(2));
        let throttled = classify(status(429), br#"{"errors":"Exceeded 2 calls per second for api client."}"#, wait);
        assert_eq!(
            throttled,
            DeliveryError::Throttled {
                reason: "429 Too Many Requests: Exceeded 2 calls per second for api client.".into(),
                retry_after: wait,
            }
        );
        assert!(matches!(classify(status(502), b"<html>", None), DeliveryError::Transient { ambiguous: true, .. }));
        assert!(matches!(
            classify(status(404), br#"{"errors":"Not Found"}"#, None),
            DeliveryError::Permanent { field: None, .. }
        ));
    }

    #[test]
    fn a_failed_read_back_is_never_permanent() {
        let e = unknown(classify(status(404), br#"{"errors":"Not Found"}"#, None));
        assert!(matches!(e, DeliveryError::Transient { ambiguous: true, .. }));
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            "<https://x.myshopify.com/admin/api/2026-07/orders.json?limit=2&page_info=abc%3D>; rel=\"previous\", \
             <https://x.myshopify.com/admin/api/2026-07/orders.json?limit=2&page_info=def>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_page_info(&h).as_deref(), Some("def"));
        h.insert("link", "<https://x/orders.json?page_info=abc>; rel=\"previous\"".parse().unwrap());
        assert_eq!(next_page_info(&h), None);
    }

    fn order() -> AdminOrder {
        serde_json::from_value(json!({
            "id": 450789469,
            "cancelled_at": null,
            "line_items": [
                {"id": 11, "sku": "RED", "quantity": 3},
                {"id": 12, "sku": null, "quantity": 1},
            ],
            "fulfillments": [],
        }))
        .unwrap()
    }

    fn fulfillment_orders(red: u32, other: u32) -> Vec<FulfillmentOrder> {
        serde_json::from_value(json!([{"id": 900, "line_items": [
            {"id": 901, "line_item_id": 11, "fulfillable_quantity": red},
            {"id": 902, "line_item_id": 12, "fulfillable_quantity": other},
        ]}]))
        .unwrap()
    }

    fn fulfillment(lines: &[(&str, u32)], tracking: Option<&str>) -> Fulfillment {
        Fulfillment {
            fulfillment_id: handoff_model::ExternalId::new("F1").unwrap(),
            lines: lines
                .iter()
                .map(|(sku, quantity)| FulfillmentLine { sku: (*sku).into(), quantity: *quantity })
                .collect(),
            carrier: Some("DHL".into()),
            tracking_number: tracking.map(str::to_owned),
        }
    }

    #[test]
    fn a_fulfillment_is_allocated_to_the_remaining_fulfillment_order_lines() {
        let f = fulfillment(&[("RED", 2), ("shopify-line-12", 1)], Some("TRK1"));
        let Plan::Send(body) = plan(&order(), &fulfillment_orders(3, 1), &f).unwrap() else { panic!("a send") };
        assert_eq!(
            body,
            json!({"fulfillment": {
                "line_items_by_fulfillment_order": [{"fulfillment_order_id": 900, "fulfillment_order_line_items": [
                    {"id": 901, "quantity": 2}, {"id": 902, "quantity": 1}
                ]}],
                "tracking_info": {"number": "TRK1", "company": "DHL"},
                "notify_customer": false,
            }})
        );
    }

    #[test]
    fn nothing_remaining_means_the_fulfillment_is_there() {
        let mut o = order();
        o.fulfillments = serde_json::from_value(json!([
            {"id": 77, "status": "success", "tracking_number": "OTHER", "line_items": [{"id": 11, "sku": "RED", "quantity": 3}]}
        ]))
        .unwrap();
        let f = fulfillment(&[("RED", 3)], Some("TRK1"));
        assert_eq!(plan(&o, &fulfillment_orders(0, 1), &f).unwrap(), Plan::Done(Ack { record_id: "77".into() }));
    }

    #[test]
    fn a_fulfillment_with_the_commands_tracking_and_lines_is_its_own() {
        let mut o = order();
        o.fulfillments = serde_json::from_value(json!([
            {"id": 78, "status": "success", "tracking_number": "TRK1", "line_items": [{"id": 11, "sku": "RED", "quantity": 1}]}
        ]))
        .unwrap();
        // Two RED remain, yet this command's one RED is shipped already.
        let f = fulfillment(&[("RED", 1)], Some("TRK1"));
        assert_eq!(plan(&o, &fulfillment_orders(2, 1), &f).unwrap(), Plan::Done(Ack { record_id: "78".into() }));
        let other = fulfillment(&[("RED", 1)], Some("TRK2"));
        assert!(matches!(plan(&o, &fulfillment_orders(2, 1), &other).unwrap(), Plan::Send(_)));
    }

    #[test]
    fn a_cancelled_order_has_nothing_to_fulfil_and_nothing_fulfilled() {
        let mut o = order();
        o.cancelled_at = Some("2026-07-02T10:00:00Z".into());
        let refused = plan(&o, &fulfillment_orders(0, 0), &fulfillment(&[("RED", 1)], Some("TRK1")));
        assert!(matches!(refused, Err(DeliveryError::Permanent { field: Some(f), .. }) if f == "order_ref"));
    }

    #[test]
    fn an_unknown_sku_or_too_many_is_refused_with_the_field() {
        let unknown_sku = plan(&order(), &fulfillment_orders(3, 1), &fulfillment(&[("BLUE", 1)], None));
        assert!(
            matches!(unknown_sku, Err(DeliveryError::Permanent { field: Some(f), .. }) if f == "fulfillment.lines.sku")
        );
        let too_many = plan(&order(), &fulfillment_orders(1, 1), &fulfillment(&[("RED", 2)], None));
        assert!(
            matches!(too_many, Err(DeliveryError::Permanent { field: Some(f), .. }) if f == "fulfillment.lines.quantity")
        );
    }

    fn refund_command() -> Command {
        let command = handoff_store::NewCommand {
            flow: "f".into(),
            target: "shop".into(),
            order_ref: "450789469".into(),
            kind: CommandKind::CreateRefund,
            idempotency_key: "key-\"1\"".into(),
            external_ref: "450789469/refund/R1".into(),
            version: None,
            payload: String::new(),
            supersede_unsent: false,
        };
        Command::new_pending(1, command, Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn the_refund_carries_the_key_in_the_idempotent_directive() {
        let refund = Refund {
            refund_id: handoff_model::ExternalId::new("R1").unwrap(),
            amount: Money::new("12.50".parse().unwrap(), "USD".parse().unwrap()),
            reason: Some("damaged".into()),
        };
        let parent = Transaction {
            id: 389404469,
            kind: "sale".into(),
            status: "success".into(),
            gateway: "bogus".into(),
            currency: None,
        };
        let body = refund_request(&refund_command(), 450789469, &refund, &parent);
        let query = body["query"].as_str().unwrap();
        assert!(query.contains(r#"@idempotent(key: "key-\"1\"")"#), "{query}");
        let input = &body["variables"]["input"];
        assert_eq!(input["orderId"], "gid://shopify/Order/450789469");
        assert_eq!(input["note"], "damaged [handoff 450789469/refund/R1]");
        assert_eq!(input["transactions"][0]["parentId"], "gid://shopify/OrderTransaction/389404469");
        assert_eq!(input["transactions"][0]["amount"], "12.50");
        assert_eq!(input["transactions"][0]["kind"], "REFUND");
    }

    #[test]
    fn refund_answers_are_read() {
        let created =
            json!({"data": {"refundCreate": {"refund": {"id": "gid://shopify/Refund/929361462"}, "userErrors": []}}});
        assert_eq!(refund_created(&created), Ok(Ack { record_id: "929361462".into() }));
        let refused = json!({"data": {"refundCreate": {"refund": null, "userErrors": [
            {"field": ["transactions", "0", "amount"], "message": "Amount cannot exceed the refundable amount"}
        ]}}});
        assert_eq!(
            refund_created(&refused),
            Err(DeliveryError::Permanent {
                reason: "refundCreate: Amount cannot exceed the refundable amount".into(),
                field: Some("transactions.0.amount".into()),
            })
        );
        let throttled = json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]});
        assert!(matches!(refund_created(&throttled), Err(DeliveryError::Throttled { retry_after: None, .. })));
    }
}
