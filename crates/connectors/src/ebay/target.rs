//! Shipping fulfillments written back to eBay: `createShippingFulfillment`, read back with
//! `getShippingFulfillments` by tracking number because eBay takes no idempotency key.

use std::time::Duration;

use handoff_engine::{Ack, BoxFuture, DeliveryError, Target};
use handoff_model::{CommandKind, Fulfillment};
use handoff_store::Command;
use jiff::SignedDuration;
use serde::Deserialize;
use serde_json::{Value, json};

use super::FULFILLMENT;
use super::auth::{TokenError, Tokens};
use crate::ConfigError;
use crate::http_json::{retry_after, transport_error};

pub struct EbayTarget {
    base_url: String,
    client: reqwest::Client,
    tokens: Tokens,
}

#[derive(Deserialize)]
struct Payload {
    order_ref: String,
    fulfillment: Fulfillment,
}

#[derive(Deserialize, Default)]
struct Errors {
    #[serde(default)]
    errors: Vec<EbayError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EbayError {
    #[serde(default)]
    error_id: Option<u64>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    parameters: Vec<Parameter>,
}

#[derive(Deserialize)]
struct Parameter {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

/// eBay's `{"errors":[{errorId, domain, category, message, parameters}]}` answers: 429 and
/// 5xx are transient (a 5xx may have applied: ambiguous); a 4xx (`REQUEST`, `APPLICATION`,
/// `BUSINESS`) refuses the data, with the field from its first parameter when it names one.
pub fn classify(status: reqwest::StatusCode, body: &[u8], retry_after: Option<SignedDuration>) -> DeliveryError {
    let parsed: Errors = serde_json::from_slice(body).unwrap_or_default();
    let first = parsed.errors.first();
    let reason = match first {
        Some(e) => format!(
            "{status}: eBay error {} ({}): {}",
            e.error_id.map_or("?".into(), |id| id.to_string()),
            e.category.as_deref().unwrap_or("?"),
            e.message.as_deref().unwrap_or("no message")
        ),
        None => status.to_string(),
    };
    match status.as_u16() {
        429 => DeliveryError::Throttled { reason, retry_after },
        408 | 500..=599 => DeliveryError::Transient { reason, ambiguous: true, retry_after },
        // An expired or revoked token: nothing was applied, and a new token may fix it.
        401 => DeliveryError::Transient { reason, ambiguous: false, retry_after },
        _ => {
            let field = first.and_then(|e| e.parameters.first()).map(|p| match (p.name.as_str(), &p.value) {
                ("field" | "fieldName", Some(value)) => value.clone(),
                _ => p.name.clone(),
            });
            DeliveryError::Permanent { reason, field }
        }
    }
}

fn token_error(e: TokenError) -> DeliveryError {
    DeliveryError::Transient {
        reason: format!("eBay token: {}", e.reason),
        ambiguous: false,
        retry_after: e.retry_after,
    }
}

/// A read-back that failed proves nothing either way.
fn unknown(e: DeliveryError) -> DeliveryError {
    match e {
        DeliveryError::Permanent { reason, .. } => {
            DeliveryError::Transient { reason, ambiguous: true, retry_after: None }
        }
        transient => transient,
    }
}

fn permanent(reason: impl Into<String>, field: &str) -> DeliveryError {
    DeliveryError::Permanent { reason: reason.into(), field: Some(field.to_owned()) }
}

impl EbayTarget {
    pub fn new(name: &str, system: &handoff_contract::System, base_url: &str) -> Result<Self, ConfigError> {
        let timeout: Duration = system.timeout.unsigned_abs();
        let client = crate::outbound::Outbound::of(system)
            .client()
            .timeout(timeout)
            .build()
            .map_err(|e| ConfigError { key: format!("systems.{name}"), message: e.to_string() })?;
        let tokens = Tokens::user(name, system, base_url, client.clone())?;
        Ok(EbayTarget { base_url: base_url.trim_end_matches('/').to_owned(), client, tokens })
    }

    fn url(&self, order_id: &str, rest: &str) -> String {
        let id: String = form_urlencoded::byte_serialize(order_id.as_bytes()).collect();
        format!("{}{FULFILLMENT}/order/{id}{rest}", self.base_url)
    }

    /// GETs eBay JSON, or the classified failure.
    async fn get(&self, url: String) -> Result<Value, DeliveryError> {
        let token = self.tokens.bearer().await.map_err(token_error)?;
        let response = self.client.get(url).bearer_auth(token).send().await.map_err(transport_error)?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let body = response.bytes().await.map_err(transport_error)?;
        if status == 401 {
            self.tokens.forget().await;
        }
        if !status.is_success() {
            return Err(classify(status, &body, retry));
        }
        serde_json::from_slice(&body).map_err(|e| DeliveryError::Transient {
            reason: format!("eBay answer unreadable: {e}"),
            ambiguous: true,
            retry_after: None,
        })
    }

    fn payload(c: &Command) -> Result<Payload, DeliveryError> {
        if c.kind != CommandKind::CreateFulfillment {
            return Err(permanent(format!("eBay takes only fulfillments, not {:?}", c.kind), "kind"));
        }
        let p: Payload = serde_json::from_str(&c.payload)
            .map_err(|e| DeliveryError::Permanent { reason: format!("fulfillment payload: {e}"), field: None })?;
        if p.fulfillment.tracking_number.as_deref().is_none_or(str::is_empty) {
            // Without an idempotency key, the tracking number is how a retry finds its fulfillment.
            return Err(permanent("eBay fulfillments need a tracking number", "fulfillment.tracking_number"));
        }
        Ok(p)
    }

    async fn create(&self, c: &Command) -> Result<Ack, DeliveryError> {
        let p = Self::payload(c)?;
        let order = self.get(self.url(&p.order_ref, "")).await?;
        let mut line_items = Vec::new();
        for (i, line) in p.fulfillment.lines.iter().enumerate() {
            let Some(id) = super::order::line_item_id(&order, &line.sku) else {
                let reason = format!("eBay order {} has no line item with SKU {:?}", p.order_ref, line.sku);
                return Err(permanent(reason, &format!("fulfillment.lines[{i}].sku")));
            };
            line_items.push(json!({"lineItemId": id, "quantity": line.quantity}));
        }
        let carrier = p.fulfillment.carrier.clone().unwrap_or_else(|| "OTHER".into());
        let body = json!({
            "lineItems": line_items,
            "shippedDate": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "shippingCarrierCode": carrier,
            "trackingNumber": p.fulfillment.tracking_number,
        });
        let token = self.tokens.bearer().await.map_err(token_error)?;
        let response = self
            .client
            .post(self.url(&p.order_ref, "/shipping_fulfillment"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let answer = response.bytes().await.map_err(transport_error)?;
        if status == 401 {
            self.tokens.forget().await;
        }
        if !status.is_success() {
            return Err(classify(status, &answer, retry));
        }
        let id = location.as_deref().and_then(|l| l.trim_end_matches('/').rsplit('/').next()).filter(|s| !s.is_empty());
        match id {
            Some(id) => Ok(Ack { record_id: id.to_owned() }),
            None => Err(DeliveryError::Transient {
                reason: format!("{status} without a Location"),
                ambiguous: true,
                retry_after: None,
            }),
        }
    }

    async fn find(&self, c: &Command) -> Result<Option<Ack>, DeliveryError> {
        let p = Self::payload(c).map_err(unknown)?;
        let list = self.get(self.url(&p.order_ref, "/shipping_fulfillment")).await.map_err(unknown)?;
        let tracking = p.fulfillment.tracking_number.unwrap_or_default();
        let found = list["fulfillments"].as_array().into_iter().flatten().find_map(|f| {
            let ours = f["shipmentTrackingNumber"].as_str() == Some(tracking.as_str());
            ours.then(|| f["fulfillmentId"].as_str().map(str::to_owned)).flatten()
        });
        Ok(found.map(|record_id| Ack { record_id }))
    }
}

impl Target for EbayTarget {
    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        Box::pin(self.create(command))
    }

    fn read_back<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        Box::pin(self.find(command))
    }

    fn honours_idempotency_keys(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u16) -> reqwest::StatusCode {
        reqwest::StatusCode::from_u16(n).unwrap()
    }

    #[test]
    fn ebay_errors_are_classified() {
        let body = br#"{"errors":[{"errorId":32100,"domain":"API_FULFILLMENT","category":"REQUEST",
            "message":"Invalid tracking number.","parameters":[{"name":"trackingNumber","value":"x"}]}]}"#;
        match classify(s(400), body, None) {
            DeliveryError::Permanent { reason, field } => {
                assert!(reason.contains("32100") && reason.contains("Invalid tracking number"), "{reason}");
                assert_eq!(field.as_deref(), Some("trackingNumber"));
            }
            other => panic!("{other:?}"),
        }
        let throttled = classify(s(429), b"", Some(SignedDuration::from_secs(3)));
        assert_eq!(
            throttled,
            DeliveryError::Throttled {
                reason: "429 Too Many Requests".into(),
                retry_after: Some(SignedDuration::from_secs(3))
            }
        );
        assert!(matches!(classify(s(500), b"{}", None), DeliveryError::Transient { ambiguous: true, .. }));
        assert!(matches!(classify(s(404), b"", None), DeliveryError::Permanent { field: None, .. }));
    }

    #[test]
    fn a_failed_read_back_is_never_permanent() {
        let e = unknown(permanent("gone", "x"));
        assert!(matches!(e, DeliveryError::Transient { ambiguous: true, .. }));
    }
}
