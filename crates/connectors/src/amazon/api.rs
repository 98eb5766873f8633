//! One SP-API client per contract entry: the LWA token, pacing per operation, and SP-API's
//! error body `{"errors":[{"code","message","details"}]}` classified for the dispatcher and
//! the poller.

use std::sync::Arc;
use std::time::Duration;

use handoff_contract::System;
use handoff_engine::DeliveryError;
use handoff_engine::poll::PollError;
use jiff::SignedDuration;
use serde::Deserialize;
use serde_json::Value;

use super::lwa::{Lwa, TokenError};
use super::pace::{Operation, Pace};
use crate::ConfigError;
use crate::http_json::{retry_after, transport_error};

/// Where LWA hands out access tokens, unless the contract says otherwise.
pub const DEFAULT_AUTH_URL: &str = "https://api.amazon.com/auth/o2/token";

pub struct SpApi {
    base_url: String,
    http: reqwest::Client,
    lwa: Lwa,
    pace: Pace,
    /// The marketplaces polled; the first is the one shipments are confirmed in.
    pub(crate) marketplace_ids: Vec<String>,
}

/// A successful answer; `Value::Null` when it had no body (confirmShipment's 204).
pub(crate) struct Answer {
    pub(crate) body: Value,
}

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum CallError {
    Token(TokenError),
    Transport(reqwest::Error),
    Status { status: u16, code: String, message: String, retry_after: Option<SignedDuration> },
    Unreadable(String),
}

#[derive(Deserialize, Default)]
struct Errors {
    #[serde(default)]
    errors: Vec<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<String>,
}

/// The confirmShipment fields an `InvalidInput` message may name, most specific first.
const BODY_FIELDS: [&str; 7] =
    ["orderItemId", "quantity", "packageReferenceId", "carrierCode", "trackingNumber", "shipDate", "marketplaceId"];

impl CallError {
    fn reason(&self) -> String {
        match self {
            CallError::Token(TokenError::Transport(e)) => format!("LWA token exchange failed: {e}"),
            CallError::Token(TokenError::Refused { reason, .. }) => reason.clone(),
            CallError::Transport(e) => e.to_string(),
            CallError::Status { status, code, message, .. } => format!("{status} {code}: {message}"),
            CallError::Unreadable(why) => why.clone(),
        }
    }

    /// The dispatcher's view of a failed write. A token failure happened before anything was
    /// sent, so it is never ambiguous.
    pub(crate) fn delivery(self) -> DeliveryError {
        let reason = self.reason();
        match self {
            CallError::Token(TokenError::Transport(_)) => {
                DeliveryError::Transient { reason, ambiguous: false, retry_after: None }
            }
            CallError::Token(TokenError::Refused { status, .. }) if status >= 500 => {
                DeliveryError::Transient { reason, ambiguous: false, retry_after: None }
            }
            CallError::Token(TokenError::Refused { .. }) => {
                DeliveryError::Permanent { reason, field: Some("credentials.refresh_token".into()) }
            }
            CallError::Transport(e) => transport_error(e),
            CallError::Unreadable(_) => DeliveryError::Transient { reason, ambiguous: true, retry_after: None },
            CallError::Status { status, message, retry_after, .. } => match status {
                429 => DeliveryError::Throttled { reason, retry_after },
                408 | 500..=599 => DeliveryError::Transient { reason, ambiguous: true, retry_after },
                400 => {
                    let field = BODY_FIELDS.iter().find(|f| message.contains(*f)).map(|f| match *f {
                        "marketplaceId" => "marketplaceId".to_owned(),
                        "orderItemId" | "quantity" => format!("packageDetail.orderItems.{f}"),
                        other => format!("packageDetail.{other}"),
                    });
                    DeliveryError::Permanent { reason, field }
                }
                _ => DeliveryError::Permanent { reason, field: None },
            },
        }
    }

    /// The same failure as a read-back: it proves nothing either way, so never Permanent.
    pub(crate) fn read_back(self) -> DeliveryError {
        match self.delivery() {
            DeliveryError::Permanent { reason, .. } => {
                DeliveryError::Transient { reason, ambiguous: true, retry_after: None }
            }
            transient => transient,
        }
    }

    pub(crate) fn poll(self, pace_interval: Duration) -> PollError {
        let reason = self.reason();
        let retry_after = match &self {
            CallError::Status { status: 429, retry_after, .. } => {
                Some(retry_after.unwrap_or_else(|| SignedDuration::try_from(pace_interval).unwrap_or_default()))
            }
            _ => None,
        };
        PollError { reason, retry_after }
    }

    pub(crate) fn is_invalid_input(&self) -> bool {
        matches!(self, CallError::Status { status: 400, .. })
    }

    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, CallError::Status { status: 404, .. })
    }
}

impl SpApi {
    /// Builds the client from a contract entry (`base_url`, `credentials`, `timeout`).
    pub fn from_contract(name: &str, system: &System) -> Result<Arc<Self>, ConfigError> {
        let base_url = system.base_url.as_deref().ok_or_else(|| ConfigError {
            key: format!("systems.{name}.base_url"),
            message: "the SP-API endpoint, e.g. https://sellingpartnerapi-eu.amazon.com".into(),
        })?;
        let credential = |key| system.credential(name, key).map(str::to_owned).map_err(ConfigError::from);
        let marketplace_ids: Vec<String> = credential("marketplace_id")?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let auth_url = system.credentials.get("auth_url").cloned().unwrap_or_else(|| DEFAULT_AUTH_URL.to_owned());
        let lwa =
            Lwa::new(auth_url, credential("client_id")?, credential("client_secret")?, credential("refresh_token")?);
        let http = crate::outbound::Outbound::of(system)
            .client()
            .timeout(system.timeout.unsigned_abs())
            .build()
            .map_err(|e| ConfigError { key: format!("systems.{name}"), message: e.to_string() })?;
        Ok(Arc::new(SpApi {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
            lwa,
            pace: Pace::default(),
            marketplace_ids,
        }))
    }

    pub(crate) fn marketplaces(&self) -> String {
        self.marketplace_ids.join(",")
    }

    pub(crate) fn interval(&self, op: Operation) -> Duration {
        self.pace.interval(op)
    }

    /// One call of `op`: waits for its pace, sends with the access token, learns the stated
    /// rate, and reads SP-API's error body on failure.
    pub(crate) async fn call(
        &self,
        op: Operation,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, CallError> {
        let wait = self.pace.take(op);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        // After the wait, so a long wait never sends a token that expired meanwhile.
        let token = self.lwa.token(&self.http).await.map_err(CallError::Token)?;
        let mut url = format!("{}{path}", self.base_url);
        if !query.is_empty() {
            let mut pairs = form_urlencoded::Serializer::new(String::new());
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
            url = format!("{url}?{}", pairs.finish());
        }
        let mut request = self.http.request(method, url).header("x-amz-access-token", token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(CallError::Transport)?;
        let status = response.status().as_u16();
        let rate = response.headers().get("x-amzn-ratelimit-limit").and_then(|v| v.to_str().ok()?.trim().parse().ok());
        if let Some(rate) = rate {
            self.pace.learn(op, rate);
        }
        let retry_after = retry_after(response.headers());
        let bytes = response.bytes().await.map_err(CallError::Transport)?;
        if (200..300).contains(&status) {
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .map_err(|e| CallError::Unreadable(format!("{} answer unreadable: {e}", op.name())))?
            };
            return Ok(Answer { body });
        }
        let errors: Errors = serde_json::from_slice(&bytes).unwrap_or_default();
        let first = errors.errors.into_iter().next();
        let (code, message) = first.map_or((String::new(), String::new()), |e| {
            let message = match e.details.filter(|d| !d.is_empty()) {
                Some(details) => format!("{} ({details})", e.message),
                None => e.message,
            };
            (e.code, message)
        });
        Err(CallError::Status { status, code, message, retry_after })
    }

    /// All of an order's v0 items, following `NextToken`.
    pub(crate) async fn order_items(&self, order_id: &str) -> Result<Vec<Value>, CallError> {
        let path = format!("/orders/v0/orders/{}/orderItems", encode(order_id));
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let query: Vec<(&str, String)> = token.iter().map(|t| ("NextToken", t.clone())).collect();
            let answer = self.call(Operation::GetOrderItems, reqwest::Method::GET, &path, &query, None).await?;
            let payload = &answer.body["payload"];
            items.extend(payload["OrderItems"].as_array().into_iter().flatten().cloned());
            token = payload["NextToken"].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
            if token.is_none() {
                return Ok(items);
            }
        }
    }
}

/// An id as one path segment.
pub(crate) fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, message: &str) -> CallError {
        CallError::Status { status, code: "InvalidInput".into(), message: message.into(), retry_after: None }
    }

    #[test]
    fn sp_api_errors_are_classified() {
        let invalid = status(400, "Invalid orderItemId 123 for order 902-1").delivery();
        assert_eq!(
            invalid,
            DeliveryError::Permanent {
                reason: "400 InvalidInput: Invalid orderItemId 123 for order 902-1".into(),
                field: Some("packageDetail.orderItems.orderItemId".into()),
            }
        );
        assert!(matches!(status(403, "Access denied").delivery(), DeliveryError::Permanent { field: None, .. }));
        let throttled = CallError::Status {
            status: 429,
            code: "QuotaExceeded".into(),
            message: String::new(),
            retry_after: Some(SignedDuration::from_secs(2)),
        };
        assert_eq!(
            throttled.delivery(),
            DeliveryError::Throttled {
                reason: "429 QuotaExceeded: ".into(),
                retry_after: Some(SignedDuration::from_secs(2))
            }
        );
        assert!(matches!(status(503, "").delivery(), DeliveryError::Transient { ambiguous: true, .. }));
        // A refused refresh token is the operator's to fix; nothing was sent.
        let lwa = CallError::Token(TokenError::Refused { status: 400, reason: "invalid_grant".into() });
        let DeliveryError::Permanent { field, .. } = lwa.delivery() else { panic!("permanent") };
        assert_eq!(field.as_deref(), Some("credentials.refresh_token"));
    }

    #[test]
    fn a_failed_read_back_is_never_permanent() {
        assert!(matches!(status(403, "denied").read_back(), DeliveryError::Transient { ambiguous: true, .. }));
    }

    #[test]
    fn a_429_tells_the_poller_how_long_to_wait() {
        let e =
            CallError::Status { status: 429, code: "QuotaExceeded".into(), message: String::new(), retry_after: None };
        assert_eq!(e.poll(Duration::from_secs(60)).retry_after, Some(SignedDuration::from_secs(60)));
    }
}
