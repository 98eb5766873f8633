//! NetSuite through SuiteTalk REST web services (see `docs/connectors/netsuite.md`).
//!
//! As a target it writes sales orders: create and update are one upsert by external id
//! (`PUT /record/v1/salesOrder/eid:{external_ref}`), so a resend can never make a second order;
//! the body is the `netsuite/sales_order` mapping's (`mappings/`), checked before it is sent;
//! a cancel closes every line of the order (NetSuite has no writable "cancelled" status); a
//! cancel addressed to one record (a duplicate's) closes that sales order by its internal id
//! (`PATCH /record/v1/salesOrder/{id}`) and reads it back by that id. As a
//! poller it reads item fulfillments changed since its cursor through SuiteQL and reports them
//! as `fulfillment.created` against the sales order's external id. Every request is signed with
//! OAuth 1.0 token-based authentication (HMAC-SHA256).

pub mod oauth;
mod poll;

use std::sync::Arc;
use std::time::Duration;

use handoff_contract::System;
use handoff_engine::{Ack, BoxFuture, DeliveryError, Target};
use handoff_mapping::Mappings;
use handoff_model::{CommandKind, RecordAddress};
use handoff_store::Command;
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ConfigError;
use crate::http_json::{retry_after, transport_error};

pub(crate) use poll::reread;
pub use poll::{NetSuitePoller, fulfillment_lines_query, fulfillments_query};

/// Where record requests go, under the account's base URL.
pub const RECORD_PATH: &str = "/services/rest/record/v1";
/// Where SuiteQL queries are posted.
pub const SUITEQL_PATH: &str = "/services/rest/query/v1/suiteql";
/// The custom transaction body field that carries the order's version (an integer field the
/// account must define), so an update is recognisable on read-back.
pub const DEFAULT_VERSION_FIELD: &str = "custbody_handoff_version";
/// Most rows SuiteQL returns per page.
const SUITEQL_MAX_LIMIT: u32 = 1000;

/// How the connector reaches one NetSuite account, from its contract entry.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `https://{account}.suitetalk.api.netsuite.com`, without a trailing slash.
    pub base_url: String,
    pub credentials: oauth::Credentials,
    /// The internal id of the customer every order is entered for (a web-sales customer);
    /// without it, the customer whose external id is the order's email.
    pub customer_id: Option<String>,
    pub version_field: String,
    /// Where the order's tax goes and the items of its charges (the contract's `tax` and
    /// `charge_items`).
    pub tax: handoff_contract::TaxMode,
    pub charge_items: std::collections::BTreeMap<String, String>,
    pub timeout: Duration,
    /// The networks its calls may reach (`outbound_allow`).
    pub outbound: crate::outbound::Outbound,
}

impl Settings {
    /// What a mapping may read of the connector's settings (never its credentials).
    pub fn for_mapping(&self) -> Value {
        let mut settings = crate::money_settings(&self.tax, &self.charge_items);
        settings["customer_id"] = json!(self.customer_id);
        settings["version_field"] = json!(self.version_field);
        settings
    }

    pub fn from_contract(name: &str, system: &System) -> Result<Self, ConfigError> {
        let base_url = system.base_url.as_deref().ok_or_else(|| ConfigError {
            key: format!("systems.{name}.base_url"),
            message: "NetSuite needs the account's REST base URL".into(),
        })?;
        let credential = |key| system.credential(name, key).map(str::to_owned);
        let credentials = oauth::Credentials {
            realm: oauth::realm(&credential("account")?),
            consumer_key: credential("consumer_key")?,
            consumer_secret: credential("consumer_secret")?,
            token_id: credential("token_id")?,
            token_secret: credential("token_secret")?,
        };
        let optional = |key: &str| system.credentials.get(key).filter(|v| !v.is_empty()).cloned();
        Ok(Settings {
            base_url: base_url.trim_end_matches('/').to_owned(),
            credentials,
            customer_id: optional("customer_id"),
            version_field: optional("version_field").unwrap_or_else(|| DEFAULT_VERSION_FIELD.to_owned()),
            tax: system.tax,
            charge_items: system.charge_items.clone(),
            timeout: system.timeout.unsigned_abs(),
            outbound: crate::outbound::Outbound::of(system),
        })
    }
}

/// A signed HTTP client of one account.
struct Client {
    settings: Settings,
    http: reqwest::Client,
}

/// An answer read to the end.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    retry_after: Option<SignedDuration>,
    /// Kept as bytes so that a failure can be classified from it.
    body: Vec<u8>,
}

impl Client {
    fn new(settings: Settings) -> Result<Self, reqwest::Error> {
        let http = settings.outbound.client().timeout(settings.timeout).pool_max_idle_per_host(64).build()?;
        Ok(Client { settings, http })
    }

    fn url(&self, path_and_query: &str) -> Result<Url, DeliveryError> {
        Url::parse(&format!("{}{path_and_query}", self.settings.base_url)).map_err(|e| DeliveryError::Permanent {
            reason: format!("invalid NetSuite URL: {e}"),
            field: Some("base_url".into()),
        })
    }

    /// The record URL of a sales order by external id.
    fn sales_order_url(&self, external_ref: &str, query: &str) -> Result<Url, DeliveryError> {
        self.url(&format!("{RECORD_PATH}/salesOrder/eid:{}{query}", oauth::encode(external_ref)))
    }

    /// The record URL of the sales order a command acts on: the one its payload addresses, by
    /// internal id, else the order's by external id.
    fn command_url(&self, c: &Command, query: &str) -> Result<Url, DeliveryError> {
        match c.address() {
            Some(address) => {
                self.url(&format!("{RECORD_PATH}/salesOrder/{}{query}", oauth::encode(&address.record_id)))
            }
            None => self.sales_order_url(&c.external_ref, query),
        }
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, DeliveryError> {
        let nonce: String = {
            use rand::Rng;
            let mut rng = rand::rng();
            (0..24).map(|_| char::from(rng.sample(rand::distr::Alphanumeric))).collect()
        };
        let authorization = oauth::authorization(
            &self.settings.credentials,
            method.as_str(),
            &url,
            Timestamp::now().as_second(),
            &nonce,
        );
        let mut request = self.http.request(method, url).header("authorization", authorization);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        Ok(Answer { status, location, retry_after, body })
    }
}

/// A NetSuite error body (RFC 7807 with NetSuite's `o:errorDetails`).
#[derive(Debug, Default, Deserialize)]
struct Problem {
    #[serde(default)]
    title: Option<String>,
    #[serde(default, rename = "o:errorDetails")]
    details: Vec<ProblemDetail>,
}

#[derive(Debug, Default, Deserialize)]
struct ProblemDetail {
    #[serde(default)]
    detail: Option<String>,
    #[serde(default, rename = "o:errorPath")]
    path: Option<String>,
    #[serde(default, rename = "o:errorCode")]
    code: Option<String>,
}

/// Classifies a NetSuite failure: 429 and concurrency limits are throttled (unapplied, no
/// attempt spent); a rejected login (a clock skew or a reused nonce as often as a bad token) is transient and
/// unapplied; 408, 5xx and `UNEXPECTED_ERROR` may have applied (ambiguous); any other 4xx is a
/// data error naming `o:errorPath` as the field.
pub fn classify(status: StatusCode, body: &[u8], retry_after: Option<SignedDuration>) -> DeliveryError {
    let problem: Problem = serde_json::from_slice(body).unwrap_or_default();
    let first = problem.details.into_iter().next().unwrap_or_default();
    let code = first.code.unwrap_or_default();
    let what = first.detail.or(problem.title).unwrap_or_default();
    let reason = match (code.is_empty(), what.is_empty()) {
        (true, true) => status.to_string(),
        (true, false) => format!("{status}: {what}"),
        (false, _) => format!("{status}: {code}: {what}"),
    };
    let transient = |ambiguous| DeliveryError::Transient { reason: reason.clone(), ambiguous, retry_after };
    match (status.as_u16(), code.as_str()) {
        (429, _) | (_, "CONCURRENCY_LIMIT_EXCEEDED" | "SSS_REQUEST_LIMIT_EXCEEDED") => {
            DeliveryError::Throttled { reason, retry_after }
        }
        (401, _) => transient(false),
        (408 | 500..=599, _) | (_, "UNEXPECTED_ERROR") => transient(true),
        _ => DeliveryError::Permanent { reason, field: first.path.filter(|p| !p.is_empty()) },
    }
}

/// A failed read-back proves nothing: never let it be a data error.
fn unknown(e: DeliveryError) -> DeliveryError {
    match e {
        DeliveryError::Permanent { reason, .. } => {
            DeliveryError::Transient { reason, ambiguous: true, retry_after: None }
        }
        transient => transient,
    }
}

fn unreadable(what: &str, e: impl std::fmt::Display) -> DeliveryError {
    DeliveryError::Transient { reason: format!("{what}: {e}"), ambiguous: true, retry_after: None }
}

/// The salesOrder fields a read-back looks at.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredOrder {
    id: Value,
    #[serde(default)]
    order_status: Option<Status>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    item: Option<StoredLines>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    ref_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StoredLines {
    #[serde(default)]
    items: Vec<StoredLine>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredLine {
    line: Value,
}

/// An id NetSuite writes as a string or an integer.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

impl StoredOrder {
    /// Closed (`H`) or cancelled (`C`): the order will ship nothing more.
    fn closed(&self) -> bool {
        [&self.order_status, &self.status].into_iter().flatten().any(|s| {
            matches!(s.id.as_deref(), Some("C" | "H"))
                || matches!(s.ref_name.as_deref().map(str::to_lowercase).as_deref(), Some("closed" | "cancelled"))
        })
    }

    fn version(&self, field: &str) -> Option<u64> {
        match self.rest.get(field)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

pub struct NetSuiteTarget {
    client: Client,
    /// The salesOrder body comes from the latest `netsuite/sales_order` mapping, checked
    /// against the salesOrder schema snapshot before it is sent.
    mappings: Arc<Mappings>,
}

impl NetSuiteTarget {
    pub fn new(settings: Settings, mappings: Arc<Mappings>) -> Result<Self, reqwest::Error> {
        Ok(NetSuiteTarget { client: Client::new(settings)?, mappings })
    }

    async fn deliver(&self, c: &Command) -> Result<Ack, DeliveryError> {
        match c.kind {
            CommandKind::CreateOrder | CommandKind::UpdateOrder => self.upsert(c).await,
            CommandKind::CancelOrder => self.close(c).await,
            CommandKind::CreateFulfillment | CommandKind::CreateRefund => Err(DeliveryError::Permanent {
                reason: format!("NetSuite takes no {} commands from Handoff", c.kind.as_str()),
                field: None,
            }),
        }
    }

    async fn upsert(&self, c: &Command) -> Result<Ack, DeliveryError> {
        let command: Value = serde_json::from_str(&c.payload).map_err(|e| DeliveryError::Permanent {
            reason: format!("command payload is not JSON: {e}"),
            field: Some("order".into()),
        })?;
        let (_, body) = self
            .mappings
            .transform("netsuite", "sales_order", &command, &self.client.settings.for_mapping())
            .map_err(|h| DeliveryError::Held { reason: h.reason, field: h.field, mapping: h.mapping })?;
        // `replace=item`: the sent lines are the order's lines; without it an update would add
        // them beside the old ones.
        let url = self.client.sales_order_url(&c.external_ref, "?replace=item")?;
        let answer = self.client.send(Method::PUT, url, Some(body), &[]).await?;
        acknowledged(answer)
    }

    /// Closes every line of the order (of the one sales order the command addresses, when it
    /// names one): NetSuite then shows it Closed, and fulfils nothing more.
    async fn close(&self, c: &Command) -> Result<Ack, DeliveryError> {
        let Some(stored) = self.get(c, true).await.map_err(unknown)? else {
            let reason = match RecordAddress::of(&c.payload) {
                Some(address) => format!("no sales order with internal id {}", address.record_id),
                None => format!("no sales order with external id {}", c.external_ref),
            };
            return Err(DeliveryError::Permanent { reason, field: Some("external_ref".into()) });
        };
        let record_id = text(&stored.id).ok_or_else(|| unreadable("salesOrder", "no id"))?;
        if stored.closed() {
            return Ok(Ack { record_id });
        }
        let lines: Vec<Value> = stored
            .item
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .map(|l| json!({"line": l.line, "isClosed": true}))
            .collect();
        if lines.is_empty() {
            return Err(DeliveryError::Permanent {
                reason: "the sales order has no lines to close".into(),
                field: Some("item".into()),
            });
        }
        let mut body = json!({"item": {"items": lines}});
        if let Some(v) = c.version {
            body[&self.client.settings.version_field] = json!(v);
        }
        let url = self.client.command_url(c, "")?;
        let answer = self.client.send(Method::PATCH, url, Some(body.to_string()), &[]).await?;
        acknowledged(answer)
            .map(|ack| Ack { record_id: if ack.record_id.is_empty() { record_id } else { ack.record_id } })
    }

    /// A record's metadata from the account's metadata catalog (a JSON Schema), from which the
    /// target schema snapshot is refreshed.
    pub async fn metadata(&self, record: &str) -> Result<Value, DeliveryError> {
        let url = self.client.url(&format!("{RECORD_PATH}/metadata-catalog/{}", oauth::encode(record)))?;
        let accept = [("accept", "application/schema+json")];
        let answer = self.client.send(Method::GET, url, None, &accept).await?;
        if !answer.status.is_success() {
            return Err(classify(answer.status, &answer.body, answer.retry_after));
        }
        serde_json::from_slice(&answer.body).map_err(|e| unreadable("metadata unreadable", e))
    }

    /// The sales order a command acts on ([`Client::command_url`]), or `None` (404).
    async fn get(&self, c: &Command, lines: bool) -> Result<Option<StoredOrder>, DeliveryError> {
        let query = if lines { "?expandSubResources=true" } else { "" };
        let url = self.client.command_url(c, query)?;
        let answer = self.client.send(Method::GET, url, None, &[]).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(classify(answer.status, &answer.body, answer.retry_after));
        }
        serde_json::from_slice(&answer.body).map(Some).map_err(|e| unreadable("salesOrder unreadable", e))
    }

    async fn find(&self, c: &Command) -> Result<Option<Ack>, DeliveryError> {
        let Some(stored) = self.get(c, false).await.map_err(unknown)? else { return Ok(None) };
        let applied = match c.kind {
            CommandKind::CancelOrder => stored.closed(),
            CommandKind::UpdateOrder => match c.version {
                Some(want) => stored.version(&self.client.settings.version_field).is_some_and(|v| v >= want),
                None => true,
            },
            _ => true,
        };
        let record_id = text(&stored.id).ok_or_else(|| unreadable("salesOrder", "no id"))?;
        Ok(applied.then_some(Ack { record_id }))
    }
}

/// A write's answer: 204 with the record's URL in `Location`, whose last segment is its
/// internal id. An empty id means "applied, id not given"; the caller reads it back.
fn acknowledged(answer: Answer) -> Result<Ack, DeliveryError> {
    if !answer.status.is_success() {
        return Err(classify(answer.status, &answer.body, answer.retry_after));
    }
    let id = answer.location.as_deref().and_then(|l| l.trim_end_matches('/').rsplit('/').next()).unwrap_or("");
    Ok(Ack { record_id: id.to_owned() })
}

impl Target for NetSuiteTarget {
    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        Box::pin(async move {
            let ack = self.deliver(command).await?;
            if ack.record_id.is_empty() {
                // Applied without a Location: the read-back names the record.
                return match self.find(command).await? {
                    Some(ack) => Ok(ack),
                    None => Err(unreadable("answered without a Location", "record not found after the write")),
                };
            }
            Ok(ack)
        })
    }

    fn read_back<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        Box::pin(self.find(command))
    }

    /// The upsert by external id cannot make a second order, and closing closed lines
    /// changes nothing.
    fn mapping(&self, command: &Command) -> Option<String> {
        crate::pinned_or_latest(&self.mappings, "netsuite", command)
    }

    /// A sales order's internal id is its address: a cancel naming one closes that one.
    fn addresses_records(&self) -> bool {
        true
    }

    fn honours_idempotency_keys(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        let s = |n| StatusCode::from_u16(n).unwrap();
        let body = br#"{"type":"https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1","title":"Bad Request",
            "status":400,"o:errorDetails":[{"detail":"Please enter a value for Email.","o:errorPath":"email",
            "o:errorCode":"USER_ERROR"}]}"#;
        assert_eq!(
            classify(s(400), body, None),
            DeliveryError::Permanent {
                reason: "400 Bad Request: USER_ERROR: Please enter a value for Email.".into(),
                field: Some("email".into())
            }
        );
        let limit = br#"{"title":"Too Many Requests","status":429,"o:errorDetails":[{"detail":"Concurrent request limit exceeded.","o:errorCode":"CONCURRENCY_LIMIT_EXCEEDED"}]}"#;
        let wait = Some(SignedDuration::from_secs(2));
        assert!(matches!(classify(s(429), limit, wait), DeliveryError::Throttled { retry_after: Some(_), .. }));
        let limit_400 =
            br#"{"status":400,"o:errorDetails":[{"detail":"x","o:errorCode":"CONCURRENCY_LIMIT_EXCEEDED"}]}"#;
        assert!(matches!(classify(s(400), limit_400, None), DeliveryError::Throttled { retry_after: None, .. }));
        assert!(matches!(classify(s(503), b"", None), DeliveryError::Transient { ambiguous: true, .. }));
        assert!(matches!(classify(s(500), b"not json", None), DeliveryError::Transient { ambiguous: true, .. }));
        let unexpected = br#"{"status":400,"o:errorDetails":[{"detail":"An unexpected error occurred.","o:errorCode":"UNEXPECTED_ERROR"}]}"#;
        assert!(matches!(classify(s(400), unexpected, None), DeliveryError::Transient { ambiguous: true, .. }));
        assert!(matches!(classify(s(401), b"{}", None), DeliveryError::Transient { ambiguous: false, .. }));
        assert!(matches!(classify(s(404), b"{}", None), DeliveryError::Permanent { field: None, .. }));
        // A failed read-back is never a data error.
        assert!(matches!(unknown(classify(s(400), body, None)), DeliveryError::Transient { ambiguous: true, .. }));
    }

    #[test]
    fn closed_and_versions_are_read() {
        let stored: StoredOrder =
            serde_json::from_value(json!({"id": "5", "orderStatus": {"id": "H", "refName": "Closed"},
            "custbody_handoff_version": 3}))
            .unwrap();
        assert!(stored.closed());
        assert_eq!(stored.version(DEFAULT_VERSION_FIELD), Some(3));
        let open: StoredOrder =
            serde_json::from_value(json!({"id": 5, "orderStatus": {"id": "B", "refName": "Pending Fulfillment"}}))
                .unwrap();
        assert!(!open.closed());
        assert_eq!(text(&open.id).as_deref(), Some("5"));
    }
}
