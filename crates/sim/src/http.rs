//! The loopback transport of a simulated system: `handoff mock` serves a [`MockSystem`] over
//! HTTP/1.1 (a write's `Handoff-Fencing-Token` fenced per idempotency key, see
//! [`MockSystem::handle_fenced`]). Built on hyper directly because a lost acknowledgment has to be a connection
//! closed with no response at all, which a router cannot express.
//!
//! It speaks a vendor's protocol through a [`Dialect`] (Handoff's own `http-json` target
//! protocol by default, see `docs/connectors/http-json.md`), and besides serves
//! `GET /_applied`, `GET /_records`, `GET|PUT /_faults`, `GET /_fired` (how often each fault fired), `POST /_orders` (a customer places an
//! order on a simulated storefront or marketplace) and `POST /_fulfil`, which makes the system
//! fulfil one of its orders: an ERP whose fulfillments are polled records it, any other system
//! announces it to the hub as a `fulfillment.created` event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::dialect::{Dialect, HttpRequest, HttpResponse, Routed};
use crate::system::{Collection, Fence, MockSystem, Reply};
use handoff_connectors::http_json::FENCING_TOKEN;

/// Largest request body the mock reads.
const MAX_BODY_BYTES: usize = 1 << 20;

type Response = hyper::Response<Full<Bytes>>;

/// The error that makes hyper close the connection without a response.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

/// A simulated system on the network: its behaviour, and where it announces its own events.
pub struct MockServer {
    pub system: Arc<MockSystem>,
    /// The vendor's wire format in front of the system.
    pub dialect: Arc<dyn Dialect>,
    /// The hub's webhook URL for this system, e.g. `http://127.0.0.1:8080/webhooks/erp`.
    pub notify_url: Option<String>,
    client: reqwest::Client,
    events_sent: AtomicU64,
}

impl MockServer {
    pub fn new(system: Arc<MockSystem>, dialect: Arc<dyn Dialect>, notify_url: Option<String>) -> Arc<Self> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("http client");
        Arc::new(MockServer { system, dialect, notify_url, client, events_sent: AtomicU64::new(0) })
    }

    /// Serves until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let server = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| server.clone().route(req));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    }

    async fn route(self: Arc<Self>, req: hyper::Request<Incoming>) -> Result<Response, Dropped> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return Ok(json_response(413, &json!({"error": "body too large"}))),
        };
        let request = HttpRequest {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            headers: parts
                .headers
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body,
        };
        let parsed = || serde_json::from_slice::<Value>(&request.body);
        match (&parts.method, request.segments().as_slice()) {
            (&Method::GET, ["_applied"]) => return Ok(json_response(200, &json!(self.system.applied()))),
            (&Method::GET, ["_records"]) => return Ok(json_response(200, &json!(self.system.records()))),
            (&Method::GET, ["_fired"]) => return Ok(json_response(200, &json!(self.system.fired()))),
            (&Method::GET, ["_faults"]) => return Ok(json_response(200, &json!(self.system.faults()))),
            (&Method::PUT, ["_faults"]) => {
                return Ok(match parsed().and_then(serde_json::from_value) {
                    Ok(faults) => {
                        self.system.set_faults(faults);
                        json_response(200, &json!(self.system.faults()))
                    }
                    Err(e) => json_response(400, &json!({"error": e.to_string()})),
                });
            }
            (&Method::POST, ["_fulfil"]) => return Ok(self.fulfil(parsed().ok()).await),
            (&Method::POST, ["_orders"]) => {
                return Ok(match parsed().map_err(|e| e.to_string()).and_then(|o| self.dialect.place_order(o)) {
                    Ok(placed) => json_response(201, &placed),
                    Err(e) => json_response(400, &json!({"error": e})),
                });
            }
            _ => {}
        }
        if self.system.faults().outage {
            return Ok(json_response(503, &json!({"error": "service unavailable"})));
        }
        let write = match self.dialect.route(&self.system, &request) {
            Routed::Answer(answer) => return Ok(vendor_response(answer)),
            Routed::Write(write) => write,
        };
        let (status, body) = match self.system.handle_fenced(write, fence_of(&request)) {
            Reply::Answer { status, body, retry_after_s } => {
                let mut response = vendor_response(self.dialect.reply(&self.system, &request, status, &body));
                if let Some(s) = retry_after_s
                    && let Ok(value) = hyper::header::HeaderValue::from_str(&self.dialect.retry_after(s))
                {
                    response.headers_mut().insert("retry-after", value);
                }
                return Ok(response);
            }
            Reply::Drop => return Err(Dropped),
            Reply::Late { after_ms, request: late } => {
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
                match self.system.apply_late(*late) {
                    Reply::Answer { status, body, .. } => (status, body),
                    _ => return Err(Dropped),
                }
            }
        };
        Ok(vendor_response(self.dialect.reply(&self.system, &request, status, &body)))
    }

    /// Fulfils one order of this system and announces it to the hub, retrying like a vendor
    /// webhook sender until the hub acknowledges (bounded to a few minutes).
    async fn fulfil(&self, body: Option<Value>) -> Response {
        let Some(external_ref) = body.as_ref().and_then(|b| b.get("external_ref")).and_then(Value::as_str) else {
            return json_response(400, &json!({"error": "body needs external_ref"}));
        };
        if let Some(recorded) = self.dialect.fulfil(&self.system, external_ref) {
            return vendor_response(recorded);
        }
        let Some(url) = self.notify_url.clone() else {
            return json_response(409, &json!({"error": "this mock has no --notify URL"}));
        };
        let Some(record) = self.system.find(Collection::Orders, external_ref).into_iter().next() else {
            return json_response(404, &json!({"error": format!("no order {external_ref}")}));
        };
        let lines: Vec<Value> =
            record.lines.iter().map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity})).collect();
        let n = self.events_sent.fetch_add(1, Ordering::Relaxed) + 1;
        let event = json!({
            "event_id": format!("{}-fulfillment-{}", self.system.name(), record.id),
            "kind": "fulfillment.created",
            "order_ref": external_ref,
            "occurred_at": jiff::Timestamp::now(),
            "fulfillment": {"fulfillment_id": format!("F-{}-{n}", record.id), "lines": lines, "carrier": "DHL", "tracking_number": format!("TRK{n:08}")},
        });
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(100);
            for _ in 0..20 {
                match client.post(&url).json(&event).send().await {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) if r.status().is_client_error() => {
                        tracing::warn!(message = "hub refused the fulfillment event", status = %r.status());
                        return;
                    }
                    _ => {}
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            tracing::error!(message = "hub never acknowledged the fulfillment event", url);
        });
        json_response(202, &json!({"record_id": record.id}))
    }
}

/// The fencing token of a write, with the command (idempotency key) it fences; a token that
/// is not a number is no token (a vendor's own clients send none).
fn fence_of(request: &HttpRequest) -> Option<Fence> {
    let token = request.header(FENCING_TOKEN)?.trim().parse().ok()?;
    Some(Fence { key: request.header("idempotency-key")?.to_owned(), token })
}

fn vendor_response(answer: HttpResponse) -> Response {
    let mut response = if answer.body.is_null() {
        let mut r = hyper::Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        r
    } else {
        json_response(answer.status, &answer.body)
    };
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) =
            (hyper::header::HeaderName::from_bytes(name.as_bytes()), hyper::header::HeaderValue::from_str(&value))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn json_response(status: u16, body: &Value) -> Response {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert("content-type", "application/json".parse().expect("static header"));
    response
}
