//! A vendor's wire format in front of a [`MockSystem`]. The system keeps the records, the
//! idempotency and the faults (one implementation for every vendor); a dialect only translates
//! the vendor's requests into the system's [`Request`]s and the system's answers back into the
//! vendor's shapes, and keeps what only that vendor has (a storefront's own orders, an ERP's
//! fulfillments). Writes derive their vendor state from the system's records, never from a
//! reply that a fault may have dropped.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::system::{MockSystem, Request};

/// One HTTP request as a dialect sees it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The path's segments, without empty ones.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The body as JSON, or the 400 a vendor would answer.
    pub fn json(&self) -> Result<Value, HttpResponse> {
        serde_json::from_slice(&self.body).map_err(|e| HttpResponse::json(400, json!({"error": e.to_string()})))
    }
}

/// An answer in the vendor's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    /// Sent as JSON; `Value::Null` sends no body (NetSuite's 204).
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl HttpResponse {
    pub fn json(status: u16, body: Value) -> Self {
        HttpResponse { status, body, headers: Vec::new() }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// What a dialect makes of a request.
#[derive(Debug, Clone)]
pub enum Routed {
    /// Answer at once: reads, refusals. Only an outage stops these.
    Answer(HttpResponse),
    /// A write through the system's faults; the dialect renders its answer with
    /// [`Dialect::reply`].
    Write(Request),
}

pub trait Dialect: Send + Sync + 'static {
    fn route(&self, system: &MockSystem, request: &HttpRequest) -> Routed;

    /// Renders the system's answer to a write (`body` is the system's own: `{"id": ...}` or
    /// `{"error": ..., "field": ...}`) in the vendor's shape.
    fn reply(&self, system: &MockSystem, request: &HttpRequest, status: u16, body: &Value) -> HttpResponse;

    /// The `Retry-After` of a throttled write, as this vendor writes it: delay-seconds by
    /// default; Shopify writes a decimal (`2.0`), Handoff's own protocol an HTTP date.
    fn retry_after(&self, seconds: u64) -> String {
        seconds.to_string()
    }

    /// `POST /_orders`: a customer places an order on this (source) system, in the vendor's
    /// own JSON; the system's order API then serves it to pollers.
    fn place_order(&self, _order: Value) -> Result<Value, String> {
        Err("this simulated system takes no orders".into())
    }

    /// `POST /_fulfil` on a system whose fulfillments are polled (an ERP): records one for the
    /// order and answers. `None`: the system announces it by webhook, as `http-json` does.
    fn fulfil(&self, _system: &MockSystem, _external_ref: &str) -> Option<HttpResponse> {
        None
    }
}

/// Handoff's own `http-json` target protocol.
pub struct HttpJson;

impl Dialect for HttpJson {
    fn route(&self, _system: &MockSystem, r: &HttpRequest) -> Routed {
        let body = if r.body.is_empty() {
            None
        } else {
            match r.json() {
                Ok(body) => Some(body),
                Err(refused) => return Routed::Answer(refused),
            }
        };
        let key = r.header("idempotency-key").map(str::to_owned);
        match Request::route(&r.method, &r.path, r.param("external_ref"), key, body) {
            Ok(request) => Routed::Write(request),
            Err((status, error)) => Routed::Answer(HttpResponse::json(status, json!({ "error": error }))),
        }
    }

    fn reply(&self, _system: &MockSystem, _request: &HttpRequest, status: u16, body: &Value) -> HttpResponse {
        HttpResponse::json(status, body.clone())
    }

    /// RFC 9110's other form: the HTTP date to come back at.
    fn retry_after(&self, seconds: u64) -> String {
        http_date(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds as i64))
    }
}

/// An HTTP date (RFC 9110 IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(at: jiff::Timestamp) -> String {
    at.to_zoned(jiff::tz::TimeZone::UTC).strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The dialect of a connector kind, for `handoff mock --connector` and `serve --simulate`.
pub fn for_connector(kind: handoff_contract::ConnectorKind) -> Arc<dyn Dialect> {
    use handoff_contract::ConnectorKind;
    match kind {
        ConnectorKind::Shopify => Arc::new(crate::vendors::shopify::ShopifyAdmin::default()),
        ConnectorKind::Woocommerce => Arc::new(crate::vendors::woocommerce::WooCommerce::default()),
        ConnectorKind::Ebay => Arc::new(crate::vendors::ebay::Ebay::default()),
        ConnectorKind::Amazon => Arc::new(crate::vendors::amazon::Amazon::default()),
        ConnectorKind::HttpJson | ConnectorKind::Stripe => Arc::new(HttpJson),
        ConnectorKind::Netsuite => Arc::new(crate::vendors::netsuite::NetSuite::default()),
        ConnectorKind::Odoo => Arc::new(crate::vendors::odoo::Odoo::default()),
    }
}

/// The dialect for a contract's system (`serve --simulate`): where a simulated vendor checks
/// a key the contract sets, it accepts the contract's own.
pub fn for_system(system: &handoff_contract::System) -> Arc<dyn Dialect> {
    match system.connector {
        handoff_contract::ConnectorKind::Odoo => Arc::new(crate::vendors::odoo::Odoo::for_system(system)),
        kind => for_connector(kind),
    }
}
