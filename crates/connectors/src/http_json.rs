//! The generic `http-json` connector. As a source, a system posts Handoff's canonical event
//! JSON to `/webhooks/{system}`. As a target, a system implements a small record API:
//! `POST /orders`, `POST /orders/update`, `POST /orders/cancel`, `POST /fulfillments`,
//! `POST /refunds` (each with `Idempotency-Key`), and `GET /{collection}?external_ref=...`
//! for read-back. A cancel whose body names a `record_id` (a duplicate draft's) cancels that
//! one record, and is read back as applied only once that record is cancelled.

use std::time::Duration;

use handoff_engine::{Ack, BoxFuture, DeliveryError, Target};
use handoff_model::{CommandKind, InboundEvent};
use handoff_store::Command;
use jiff::SignedDuration;
use serde::Deserialize;

/// Why a body cannot be read: refused (401 unauthenticated; 400 for a canonical event), or held
/// in quarantine (a vendor body whose signature verified).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("body cannot be read: {0}")]
    Json(JsonError),
    #[error("{0}")]
    Invalid(#[from] handoff_model::EventError),
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("not authenticated: {0}")]
    Unauthenticated(#[from] crate::signature::SignatureError),
}

/// A JSON body that does not deserialise, and the field path where it stopped when the reader
/// tracked it (a missing field is named by its own path, not its parent's).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct JsonError {
    pub path: Option<String>,
    #[source]
    pub error: serde_json::Error,
}

impl From<serde_json::Error> for SourceError {
    fn from(error: serde_json::Error) -> Self {
        SourceError::Json(JsonError { path: None, error })
    }
}

impl From<serde_path_to_error::Error<serde_json::Error>> for SourceError {
    fn from(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let parent = e.path().to_string();
        let error = e.into_inner();
        // serde names a missing field in its message only: "missing field `line_items`".
        let missing =
            error.to_string().strip_prefix("missing field `").and_then(|m| m.split('`').next().map(str::to_owned));
        let path = match (parent.as_str(), missing) {
            (".", Some(field)) => Some(field),
            (".", None) => None,
            (parent, Some(field)) => Some(format!("{parent}.{field}")),
            (parent, None) => Some(parent.to_owned()),
        };
        SourceError::Json(JsonError { path, error })
    }
}

impl SourceError {
    /// The field at fault, when one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            SourceError::Invalid(invalid) => Some(invalid.field),
            SourceError::Json(JsonError { path, .. }) => path.as_deref(),
            SourceError::NotUtf8 | SourceError::Unauthenticated(_) => None,
        }
    }

    /// Why, without the field (which [`SourceError::field`] names).
    pub fn reason(&self) -> String {
        match self {
            SourceError::Invalid(invalid) => invalid.reason.clone(),
            SourceError::Json(JsonError { error, .. }) => error.to_string(),
            other => other.to_string(),
        }
    }
}

/// Deserialises a vendor body; one that does not deserialise is read again to find the field
/// path where it stops (tracking paths costs every read, and only a failed one needs it).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, SourceError> {
    serde_json::from_slice(body)
        .or_else(|_| Ok(serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))?))
}

/// [`read_json`] of a record already parsed (a polled one).
pub(crate) fn read_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, SourceError> {
    T::deserialize(&value).or_else(|_| Ok(serde_path_to_error::deserialize(value)?))
}

/// A field of a vendor body that cannot be mapped.
pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> SourceError {
    SourceError::Invalid(handoff_model::EventError { field, reason: reason.into() })
}

/// A currency code as vendors send it (any case).
pub(crate) fn currency(field: &'static str, code: &str) -> Result<handoff_model::Currency, SourceError> {
    code.parse().map_err(|e: handoff_model::money::CurrencyError| invalid(field, e.to_string()))
}

/// A body as text: read once, so each parse after reads text and checks no string's UTF-8 again.
pub(crate) fn text(body: &[u8]) -> Result<&str, SourceError> {
    std::str::from_utf8(body).map_err(|_| SourceError::NotUtf8)
}

/// Parses and validates a canonical event posted by an `http-json` source, held to the hub's
/// JSON limits in the same pass.
pub fn parse_event(body: &str, limits: &handoff_contract::JsonLimits) -> Result<InboundEvent, SourceError> {
    let event: InboundEvent = crate::json_limits::parse(body, limits)?;
    event.validate()?;
    Ok(event)
}

/// The header carrying a write's fencing token (`Command::fencing_token`): a target may refuse
/// a token lower than one it already took for the same idempotency key.
pub const FENCING_TOKEN: &str = "handoff-fencing-token";

pub struct HttpJsonTarget {
    base_url: String,
    client: reqwest::Client,
    idempotency_keys: bool,
}

impl HttpJsonTarget {
    pub fn new(
        base_url: &str,
        timeout: Duration,
        idempotency_keys: bool,
        outbound: &crate::outbound::Outbound,
    ) -> Result<Self, reqwest::Error> {
        let client = outbound.client().timeout(timeout).pool_max_idle_per_host(512).build()?;
        Ok(HttpJsonTarget { base_url: base_url.trim_end_matches('/').to_owned(), client, idempotency_keys })
    }

    async fn send_command(&self, c: &Command) -> Result<Ack, DeliveryError> {
        let url = format!("{}/{}", self.base_url, command_path(c.kind));
        let response = self
            .client
            .post(url)
            .header("idempotency-key", &c.idempotency_key)
            .header(FENCING_TOKEN, c.fencing_token())
            .header("content-type", "application/json")
            .body(c.payload.clone())
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(transport_error)?;
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&body) {
                Ok(Created { id }) => Ok(Ack { record_id: id }),
                Err(_) => Err(DeliveryError::Transient {
                    reason: format!("{status} without a record id"),
                    ambiguous: true,
                    retry_after: None,
                }),
            };
        }
        Err(classify(status, &body, retry_after))
    }

    async fn find(&self, c: &Command) -> Result<Option<Ack>, DeliveryError> {
        let query: String =
            form_urlencoded::Serializer::new(String::new()).append_pair("external_ref", &c.external_ref).finish();
        let url = format!("{}/{}?{query}", self.base_url, collection(c.kind));
        let response = self.client.get(url).send().await.map_err(transport_error)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(transport_error)?;
        if !status.is_success() {
            // A failed read-back never proves anything: keep the outcome unknown.
            return Err(match classify(status, &body, retry_after) {
                DeliveryError::Permanent { reason, .. } => {
                    DeliveryError::Transient { reason, ambiguous: true, retry_after: None }
                }
                transient => transient,
            });
        }
        let found: Found = serde_json::from_slice(&body).map_err(|e| DeliveryError::Transient {
            reason: format!("read-back answer unreadable: {e}"),
            ambiguous: true,
            retry_after: None,
        })?;
        Ok(applied_record(c, found.records))
    }
}

/// Where a command is posted, relative to the target's base URL.
pub fn command_path(kind: CommandKind) -> &'static str {
    match kind {
        CommandKind::CreateOrder => "orders",
        CommandKind::UpdateOrder => "orders/update",
        CommandKind::CancelOrder => "orders/cancel",
        CommandKind::CreateFulfillment => "fulfillments",
        CommandKind::CreateRefund => "refunds",
    }
}

/// The collection a command's record is read back from.
pub fn collection(kind: CommandKind) -> &'static str {
    match kind {
        CommandKind::CreateOrder | CommandKind::UpdateOrder | CommandKind::CancelOrder => "orders",
        CommandKind::CreateFulfillment => "fulfillments",
        CommandKind::CreateRefund => "refunds",
    }
}

/// Whether a read-back shows the command applied: a record under its external reference (for
/// a cancel, cancelled, and the very record when the cancel names one; for an update, at least
/// the command's version).
pub fn applied_record(c: &Command, records: Vec<FoundRecord>) -> Option<Ack> {
    let record_id = (c.kind == CommandKind::CancelOrder).then(|| record_id(c)).flatten();
    let applied = records.into_iter().find(|r| match c.kind {
        CommandKind::CancelOrder => r.status == "cancelled" && record_id.as_ref().is_none_or(|id| *id == r.id),
        CommandKind::UpdateOrder => r.version >= c.version,
        _ => true,
    });
    applied.map(|r| Ack { record_id: r.id })
}

/// The one record a command addresses, when its payload names it (`record_id`).
pub fn record_id(c: &Command) -> Option<String> {
    c.address().map(|address| address.record_id)
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Found {
    records: Vec<FoundRecord>,
}

/// A record as a read-back answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct FoundRecord {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub version: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Refusal {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    field: Option<String>,
}

/// A request that failed below HTTP. Only a refused connection proves the target never saw it.
pub(crate) fn transport_error(e: reqwest::Error) -> DeliveryError {
    let ambiguous = !e.is_connect();
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused"
    } else {
        "connection lost"
    };
    DeliveryError::Transient { reason: format!("{what}: {e}"), ambiguous, retry_after: None }
}

/// 429 is throttled (applied nothing, spends no attempt); 5xx is transient and may have
/// applied (ambiguous); other 4xx are data errors.
pub fn classify(status: reqwest::StatusCode, body: &[u8], retry_after: Option<SignedDuration>) -> DeliveryError {
    let refusal: Refusal = serde_json::from_slice(body).unwrap_or_default();
    let reason = match refusal.error {
        Some(e) => format!("{status}: {e}"),
        None => status.to_string(),
    };
    match status.as_u16() {
        429 => DeliveryError::Throttled { reason, retry_after },
        408 | 500..=599 => DeliveryError::Transient { reason, ambiguous: true, retry_after },
        _ => DeliveryError::Permanent { reason, field: refusal.field },
    }
}

/// `Retry-After` of an answer, read by [`parse_retry_after`]: every connector reads it here.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<SignedDuration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, jiff::Timestamp::now())
}

/// `Retry-After` as vendors send it: delay-seconds (RFC 9110), a decimal number of seconds
/// (Shopify's `2.0`), or an HTTP date in any of the three forms RFC 9110 asks recipients to
/// read; a date in the past is no wait. Capped at a day; `None` for anything else.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<SignedDuration> {
    const DAY_MS: i64 = 86_400_000;
    let value = value.trim();
    if let Ok(seconds) = value.parse::<rust_decimal::Decimal>() {
        // Whole milliseconds, rounded up: a wait shorter than asked is a wait too short.
        let ms = (seconds.max(rust_decimal::Decimal::ZERO) * rust_decimal::Decimal::from(1000)).ceil();
        let ms = i64::try_from(ms.mantissa() / 10i128.pow(ms.scale())).unwrap_or(DAY_MS);
        return Some(SignedDuration::from_millis(ms.min(DAY_MS)));
    }
    let at = jiff::Timestamp::try_from(httpdate::parse_http_date(value).ok()?).ok()?;
    let wait = at.duration_since(now).max(SignedDuration::ZERO);
    Some(wait.min(SignedDuration::from_millis(DAY_MS)))
}

impl Target for HttpJsonTarget {
    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        Box::pin(self.send_command(command))
    }

    fn read_back<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        Box::pin(self.find(command))
    }

    /// The protocol's cancel names the record in its body (`record_id`), and a read-back
    /// counts only that record.
    fn addresses_records(&self) -> bool {
        true
    }

    fn honours_idempotency_keys(&self) -> bool {
        self.idempotency_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let s = |n| reqwest::StatusCode::from_u16(n).unwrap();
        assert!(matches!(classify(s(503), b"", None), DeliveryError::Transient { ambiguous: true, .. }));
        assert!(matches!(classify(s(429), b"", None), DeliveryError::Throttled { retry_after: None, .. }));
        let refused = classify(s(422), br#"{"error":"email required","field":"order.customer.email"}"#, None);
        assert_eq!(
            refused,
            DeliveryError::Permanent {
                reason: "422 Unprocessable Entity: email required".into(),
                field: Some("order.customer.email".into())
            }
        );
    }

    #[test]
    fn a_cancel_naming_a_record_is_applied_only_when_that_record_is_cancelled() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let command = |payload: &str| {
            let c = handoff_store::NewCommand {
                flow: "orders".into(),
                target: "erp".into(),
                order_ref: "#1".into(),
                kind: CommandKind::CancelOrder,
                idempotency_key: "k".into(),
                external_ref: "#1".into(),
                version: None,
                payload: payload.into(),
                supersede_unsent: false,
            };
            Command::new_pending(1, c, now)
        };
        let records = || {
            vec![
                FoundRecord { id: "R1".into(), status: "cancelled".into(), version: None },
                FoundRecord { id: "R2".into(), status: "open".into(), version: None },
            ]
        };
        let one = command(r##"{"external_ref":"#1","record_id":"R2"}"##);
        assert_eq!(record_id(&one).as_deref(), Some("R2"));
        assert_eq!(applied_record(&one, records()), None);
        let mut cancelled = records();
        cancelled[1].status = "cancelled".into();
        assert_eq!(applied_record(&one, cancelled).map(|a| a.record_id).as_deref(), Some("R2"));
        let any = command(r##"{"external_ref":"#1"}"##);
        assert_eq!(applied_record(&any, records()).map(|a| a.record_id).as_deref(), Some("R1"));
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(SignedDuration::from_secs(7)));
    }

    /// RFC 9110 section 10.2.3 (delay-seconds or HTTP-date, whose three forms section 5.6.7
    /// gives for `Sun, 06 Nov 1994 08:49:37 GMT`) and Shopify's REST throttle (`2.0`).
    #[test]
    fn retry_after_reads_what_vendors_send() {
        let now: jiff::Timestamp = "1994-11-06T08:49:30Z".parse().unwrap();
        let secs = |s| Some(SignedDuration::from_secs(s));
        assert_eq!(parse_retry_after("120", now), secs(120));
        assert_eq!(parse_retry_after("2.0", now), secs(2));
        assert_eq!(parse_retry_after("0.25", now), Some(SignedDuration::from_millis(250)));
        assert_eq!(parse_retry_after("1.0001", now), Some(SignedDuration::from_millis(1001)), "rounded up");
        for date in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse_retry_after(date, now), secs(7), "{date}");
        }
        let later: jiff::Timestamp = "1994-11-06T09:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later), secs(0), "a past date is no wait");
        assert_eq!(parse_retry_after("9999999", now), secs(86_400));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), secs(0));
    }
}
