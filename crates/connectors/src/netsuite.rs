//! NetSuite through SuiteTalk REST web services (see `docs/connectors/netsuite.md`).
//!
//! As a target it writes sales orders: create and update are one upsert by external id
//! (`PUT /record/v1/salesOrder/eid:{external_ref}`), so a resend can never make a second order;
//! a cancel closes every line of the order (NetSuite has no writable "cancelled" status). As a
//! poller it reads item fulfillments changed since its cursor through SuiteQL and reports them
//! as `fulfillment.created` against the sales order's external id. Every request is signed with
//! OAuth 1.0 token-based authentication (HMAC-SHA256).

use std::time::Duration;

use handoff_contract::{PollSettings, System};
use handoff_engine::poll::{Page, PollError};
use handoff_engine::{Ack, BoxFuture, DeliveryError, Poller, Target};
use handoff_model::{CanonicalOrder, CommandKind, EventKind, ExternalId, Fulfillment, FulfillmentLine, InboundEvent};
use handoff_store::Command;
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode, Url};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::ConfigError;
use crate::http_json::{retry_after, transport_error};

/// Where record requests go, under the account's base URL.
pub const RECORD_PATH: &str = "/services/rest/record/v1";
/// Where SuiteQL queries are posted.
pub const SUITEQL_PATH: &str = "/services/rest/query/v1/suiteql";
/// The custom transaction body field that carries the order's version (an integer field the
/// account must define), so an update is recognisable on read-back.
pub const DEFAULT_VERSION_FIELD: &str = "custbody_handoff_version";
/// Most rows SuiteQL returns per page.
const SUITEQL_MAX_LIMIT: u32 = 1000;

/// OAuth 1.0 request signing as NetSuite's token-based authentication wants it.
///
/// Built on `hmac`, `sha2` and `percent-encoding` rather than `oauth1-request`: that crate
/// (0.6) offers HMAC-SHA1, RSA-SHA1 and PLAINTEXT only, cannot write the `realm` parameter
/// NetSuite requires, and would bring a second generation of the `hmac`/`digest` crates.
pub mod oauth {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    use reqwest::Url;

    /// RFC 5849 section 3.6: everything but the unreserved characters is encoded.
    const RESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

    pub fn encode(s: &str) -> String {
        utf8_percent_encode(s, RESERVED).to_string()
    }

    /// The token-based authentication credentials of one integration record and access token.
    #[derive(Clone)]
    pub struct Credentials {
        /// The account id as NetSuite writes it in `realm` (`1234567_SB1`).
        pub realm: String,
        pub consumer_key: String,
        pub consumer_secret: String,
        pub token_id: String,
        pub token_secret: String,
    }

    impl std::fmt::Debug for Credentials {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Credentials").field("realm", &self.realm).finish_non_exhaustive()
        }
    }

    /// The account id in `realm` form: NetSuite's URLs write `1234567-sb1`, its realm
    /// `1234567_SB1`.
    pub fn realm(account: &str) -> String {
        account.trim().replace('-', "_").to_uppercase()
    }

    /// The signature base string (RFC 5849 section 3.4.1): method, base URI, and the sorted,
    /// encoded query and `oauth_*` parameters. `oauth` holds every protocol parameter but
    /// `realm` and `oauth_signature`.
    pub fn base_string(method: &str, url: &Url, oauth: &[(&str, &str)]) -> String {
        let mut base_uri = format!("{}://{}", url.scheme(), url.host_str().unwrap_or("").to_lowercase());
        if let Some(port) = url.port() {
            base_uri.push_str(&format!(":{port}"));
        }
        base_uri.push_str(url.path());
        let mut params: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (encode(&k), encode(&v))).collect();
        params.extend(oauth.iter().map(|(k, v)| (encode(k), encode(v))));
        params.sort();
        let normalized: Vec<String> = params.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}&{}&{}", method.to_uppercase(), encode(&base_uri), encode(&normalized.join("&")))
    }

    /// The signing key: both secrets, encoded, joined by `&`.
    fn key(consumer_secret: &str, token_secret: &str) -> String {
        format!("{}&{}", encode(consumer_secret), encode(token_secret))
    }

    /// Base64 HMAC of the base string with `M` (SHA-256 for NetSuite; SHA-1 for RFC 5849's
    /// own test vector).
    pub fn sign<M: Mac + KeyInit>(base_string: &str, consumer_secret: &str, token_secret: &str) -> String {
        // Invariant: HMAC takes keys of any length.
        let mut mac = <M as KeyInit>::new_from_slice(key(consumer_secret, token_secret).as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(base_string.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// The `Authorization` header of one request.
    pub fn authorization(c: &Credentials, method: &str, url: &Url, timestamp: i64, nonce: &str) -> String {
        let timestamp = timestamp.to_string();
        let oauth = [
            ("oauth_consumer_key", c.consumer_key.as_str()),
            ("oauth_nonce", nonce),
            ("oauth_signature_method", "HMAC-SHA256"),
            ("oauth_timestamp", timestamp.as_str()),
            ("oauth_token", c.token_id.as_str()),
            ("oauth_version", "1.0"),
        ];
        let base = base_string(method, url, &oauth);
        let signature = sign::<Hmac<sha2::Sha256>>(&base, &c.consumer_secret, &c.token_secret);
        let mut header = format!("OAuth realm=\"{}\"", encode(&c.realm));
        for (k, v) in oauth.iter().chain([("oauth_signature", signature.as_str())].iter()) {
            header.push_str(&format!(",{k}=\"{}\"", encode(v)));
        }
        header
    }

    /// The parameters of an `OAuth ...` header, decoded; `None` when it is not one.
    pub fn parse_header(header: &str) -> Option<Vec<(String, String)>> {
        let rest = header.strip_prefix("OAuth ")?;
        rest.split(',')
            .map(|part| {
                let (k, v) = part.trim().split_once('=')?;
                let v = v.strip_prefix('"')?.strip_suffix('"')?;
                let v = percent_encoding::percent_decode_str(v).decode_utf8().ok()?;
                Some((k.to_owned(), v.into_owned()))
            })
            .collect()
    }

    /// Checks a signed request against known credentials: the realm, the key and token, and
    /// the HMAC-SHA256 signature (what a simulated NetSuite verifies). Returns why not.
    pub fn verify(c: &Credentials, method: &str, url: &Url, header: &str) -> Result<(), String> {
        let params = parse_header(header).ok_or("Authorization is not an OAuth header")?;
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let expect = |name: &str, want: &str| match get(name) {
            Some(v) if v == want => Ok(()),
            Some(v) => Err(format!("{name} is {v:?}")),
            None => Err(format!("{name} is missing")),
        };
        expect("realm", &c.realm)?;
        expect("oauth_consumer_key", &c.consumer_key)?;
        expect("oauth_token", &c.token_id)?;
        expect("oauth_signature_method", "HMAC-SHA256")?;
        expect("oauth_version", "1.0")?;
        let (Some(nonce), Some(timestamp)) = (get("oauth_nonce"), get("oauth_timestamp")) else {
            return Err("oauth_nonce and oauth_timestamp are required".into());
        };
        let timestamp: i64 = timestamp.parse().map_err(|_| "oauth_timestamp is not a number")?;
        let want = authorization(c, method, url, timestamp, nonce);
        let want_signature = parse_header(&want).and_then(|p| p.into_iter().find(|(k, _)| k == "oauth_signature"));
        match (get("oauth_signature"), want_signature) {
            (Some(got), Some((_, want))) if got == want => Ok(()),
            _ => Err("oauth_signature does not match".into()),
        }
    }
}

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
    pub timeout: Duration,
}

impl Settings {
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
            timeout: system.timeout.unsigned_abs(),
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
        let http = reqwest::Client::builder().timeout(settings.timeout).pool_max_idle_per_host(64).build()?;
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

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<String>,
        transient: bool,
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
        if transient {
            request = request.header("prefer", "transient");
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

/// Classifies a NetSuite failure: 429 and concurrency limits are transient and unapplied; a
/// rejected login (a clock skew or a reused nonce as often as a bad token) is transient and
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
        (429, _) | (_, "CONCURRENCY_LIMIT_EXCEEDED" | "SSS_REQUEST_LIMIT_EXCEEDED") => transient(false),
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

/// A decimal as a JSON number written from its digits (never through a float).
fn number(d: Decimal) -> Box<RawValue> {
    // Invariant: a Decimal's Display is a valid JSON number (digits, one point, a sign).
    RawValue::from_string(d.normalize().to_string()).expect("a decimal is a JSON number")
}

/// A reference to another record by internal or external id.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ref {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
}

impl Ref {
    fn id(id: &str) -> Self {
        Ref { id: Some(id.to_owned()), external_id: None }
    }
    fn external(id: &str) -> Self {
        Ref { id: None, external_id: Some(id.to_owned()) }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemLine {
    item: Ref,
    quantity: u32,
    rate: Box<RawValue>,
    /// The line's price after its discount; NetSuite keeps `amount` when both are given.
    amount: Box<RawValue>,
}

#[derive(Debug, Serialize)]
struct Sublist<T> {
    items: Vec<T>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ShippingAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    addressee: Option<String>,
    addr1: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    addr2: Option<String>,
    city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    zip: String,
    country: Ref,
}

/// The salesOrder body of an upsert.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SalesOrder {
    external_id: String,
    entity: Ref,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    tran_date: String,
    currency: Ref,
    other_ref_num: String,
    memo: String,
    shipping_cost: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipping_address: Option<ShippingAddress>,
    item: Sublist<ItemLine>,
    /// The version field, named by the settings.
    #[serde(flatten)]
    version: serde_json::Map<String, Value>,
}

/// Maps a canonical order to the salesOrder NetSuite upserts under `external_ref`. Fails with
/// the canonical field at fault when the order cannot name its customer.
pub fn sales_order(
    order: &CanonicalOrder,
    external_ref: &str,
    version: Option<u64>,
    settings: &Settings,
) -> Result<SalesOrder, DeliveryError> {
    let entity = match (&settings.customer_id, &order.customer.email) {
        (Some(id), _) => Ref::id(id),
        (None, Some(email)) => Ref::external(email),
        (None, None) => {
            return Err(DeliveryError::Permanent {
                reason: "NetSuite needs a customer: the order has no email and no customer_id is configured".into(),
                field: Some("order.customer.email".into()),
            });
        }
    };
    let lines = order
        .lines
        .iter()
        .map(|l| ItemLine {
            item: Ref::external(&l.sku),
            quantity: l.quantity,
            rate: number(l.unit_price),
            amount: number(l.unit_price * Decimal::from(l.quantity) - l.discount),
        })
        .collect();
    let name = order.name.clone().unwrap_or_else(|| order.order_ref.clone());
    let channel = order.channel.as_deref().unwrap_or("Handoff");
    let mut version_field = serde_json::Map::new();
    if let Some(v) = version {
        version_field.insert(settings.version_field.clone(), json!(v));
    }
    Ok(SalesOrder {
        external_id: external_ref.to_owned(),
        entity,
        email: order.customer.email.clone(),
        tran_date: order.placed_at.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
        currency: Ref::external(order.currency.as_str()),
        other_ref_num: name.clone(),
        memo: format!("{channel} order {name}"),
        shipping_cost: number(order.totals.shipping),
        shipping_address: order.shipping_address.as_ref().map(|a| ShippingAddress {
            addressee: a.name.clone(),
            addr1: a.line1.clone(),
            addr2: a.line2.clone(),
            city: a.city.clone(),
            state: a.region.clone(),
            zip: a.postal_code.clone(),
            country: Ref::id(&a.country),
        }),
        item: Sublist { items: lines },
        version: version_field,
    })
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
}

#[derive(Deserialize)]
struct OrderPayload {
    order: CanonicalOrder,
}

impl NetSuiteTarget {
    pub fn new(settings: Settings) -> Result<Self, reqwest::Error> {
        Ok(NetSuiteTarget { client: Client::new(settings)? })
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
        let payload: OrderPayload = serde_json::from_str(&c.payload).map_err(|e| DeliveryError::Permanent {
            reason: format!("command payload is not an order: {e}"),
            field: Some("order".into()),
        })?;
        let body = sales_order(&payload.order, &c.external_ref, c.version, &self.client.settings)?;
        let body = serde_json::to_string(&body).map_err(|e| unreadable("salesOrder body", e))?;
        // `replace=item`: the sent lines are the order's lines; without it an update would add
        // them beside the old ones.
        let url = self.client.sales_order_url(&c.external_ref, "?replace=item")?;
        let answer = self.client.send(Method::PUT, url, Some(body), false).await?;
        acknowledged(answer)
    }

    /// Closes every line of the order: NetSuite then shows it Closed, and fulfils nothing more.
    async fn close(&self, c: &Command) -> Result<Ack, DeliveryError> {
        let Some(stored) = self.get(&c.external_ref, true).await.map_err(unknown)? else {
            return Err(DeliveryError::Permanent {
                reason: format!("no sales order with external id {}", c.external_ref),
                field: Some("external_ref".into()),
            });
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
        let url = self.client.sales_order_url(&c.external_ref, "")?;
        let answer = self.client.send(Method::PATCH, url, Some(body.to_string()), false).await?;
        acknowledged(answer)
            .map(|ack| Ack { record_id: if ack.record_id.is_empty() { record_id } else { ack.record_id } })
    }

    /// The sales order with this external id, or `None` (404).
    async fn get(&self, external_ref: &str, lines: bool) -> Result<Option<StoredOrder>, DeliveryError> {
        let query = if lines { "?expandSubResources=true" } else { "" };
        let url = self.client.sales_order_url(external_ref, query)?;
        let answer = self.client.send(Method::GET, url, None, false).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(classify(answer.status, &answer.body, answer.retry_after));
        }
        serde_json::from_slice(&answer.body).map(Some).map_err(|e| unreadable("salesOrder unreadable", e))
    }

    async fn find(&self, c: &Command) -> Result<Option<Ack>, DeliveryError> {
        let Some(stored) = self.get(&c.external_ref, false).await.map_err(unknown)? else { return Ok(None) };
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
    fn honours_idempotency_keys(&self) -> bool {
        true
    }
}

/// The SuiteQL that lists item fulfillments changed at or after `since` (UTC), oldest first.
/// Times are read in the integration user's time zone, which must be GMT.
pub fn fulfillments_query(since: Timestamp) -> String {
    let since = since.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%d %H:%M:%S").to_string();
    format!(
        "SELECT f.id AS id, TO_CHAR(f.lastmodifieddate, 'YYYY-MM-DD\"T\"HH24:MI:SS') AS last_modified, \
         so.externalid AS order_ref, BUILTIN.DF(f.shipcarrier) AS carrier, \
         (SELECT MAX(p.packagetrackingnumber) FROM itemfulfillmentpackage p WHERE p.itemfulfillment = f.id) \
         AS tracking_number \
         FROM transaction f \
         JOIN previoustransactionlink ptl ON ptl.nextdoc = f.id \
         JOIN transaction so ON so.id = ptl.previousdoc AND so.type = 'SalesOrd' \
         WHERE f.type = 'ItemShip' AND f.lastmodifieddate >= TO_TIMESTAMP('{since}', 'YYYY-MM-DD HH24:MI:SS') \
         ORDER BY f.lastmodifieddate, f.id"
    )
}

/// The SuiteQL that lists the item lines of some fulfillments, SKU by the item's external id.
pub fn fulfillment_lines_query(ids: &[String]) -> String {
    let ids: Vec<String> = ids.iter().map(|id| format!("'{}'", id.replace('\'', "''"))).collect();
    format!(
        "SELECT l.transaction AS fulfillment, i.externalid AS sku, ABS(l.quantity) AS quantity \
         FROM transactionline l JOIN item i ON i.id = l.item \
         WHERE l.transaction IN ({}) AND l.mainline = 'F' AND l.iscogs = 'F' \
         ORDER BY l.transaction, l.id",
        ids.join(", ")
    )
}

/// A SuiteQL answer page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rows {
    #[serde(default)]
    items: Vec<serde_json::Map<String, Value>>,
    #[serde(default)]
    has_more: bool,
}

/// Where the next poll starts: fulfillments modified at or after `since`, skipping `offset`
/// rows of that query (while paging through one window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub since: Timestamp,
    #[serde(default)]
    pub offset: u32,
}

pub struct NetSuitePoller {
    system: String,
    client: Client,
    poll: PollSettings,
}

impl NetSuitePoller {
    pub fn new(system: &str, settings: Settings, poll: PollSettings) -> Result<Self, reqwest::Error> {
        Ok(NetSuitePoller { system: system.to_owned(), client: Client::new(settings)?, poll })
    }

    async fn query(&self, q: &str, limit: u32, offset: u32) -> Result<Rows, PollError> {
        let url = self
            .client
            .url(&format!("{SUITEQL_PATH}?limit={limit}&offset={offset}"))
            .map_err(|e| PollError::new(e.to_string()))?;
        let body = json!({ "q": q }).to_string();
        let answer =
            self.client.send(Method::POST, url, Some(body), true).await.map_err(|e| PollError::new(e.to_string()))?;
        if !answer.status.is_success() {
            let e = classify(answer.status, &answer.body, answer.retry_after);
            let retry_after = match &e {
                DeliveryError::Transient { retry_after, .. } => *retry_after,
                DeliveryError::Permanent { .. } => None,
            };
            return Err(PollError { reason: format!("SuiteQL: {e}"), retry_after });
        }
        serde_json::from_slice(&answer.body).map_err(|e| PollError::new(format!("SuiteQL answer unreadable: {e}")))
    }

    async fn page(&self, cursor: Option<&str>, now: Timestamp) -> Result<Page, PollError> {
        let cursor = match cursor {
            Some(text) => {
                serde_json::from_str(text).map_err(|e| PollError::new(format!("bad cursor {text:?}: {e}")))?
            }
            None => Cursor { since: now - self.poll.initial, offset: 0 },
        };
        let limit = self.poll.page_size.clamp(1, SUITEQL_MAX_LIMIT);
        let headers = self.query(&fulfillments_query(cursor.since), limit, cursor.offset).await?;
        let ids: Vec<String> = headers.items.iter().filter_map(|r| r.get("id").and_then(text)).collect();
        let mut lines: Vec<serde_json::Map<String, Value>> = Vec::new();
        if !ids.is_empty() {
            let q = fulfillment_lines_query(&ids);
            let mut offset = 0;
            loop {
                let page = self.query(&q, SUITEQL_MAX_LIMIT, offset).await?;
                let more = page.has_more && !page.items.is_empty();
                lines.extend(page.items);
                if !more {
                    break;
                }
                offset += SUITEQL_MAX_LIMIT;
            }
        }
        let mut events = Vec::new();
        let mut latest: Option<Timestamp> = None;
        for header in &headers.items {
            let Some(seen) = fulfillment_event(header, &lines) else { continue };
            latest = latest.max(Some(seen.occurred_at));
            let raw = json!({"fulfillment": header, "lines": lines_of(header, &lines)}).to_string();
            let payload = serde_json::to_string(&seen).map_err(|e| PollError::new(e.to_string()))?;
            events.push(crate::new_event(&self.system, seen, payload, Some(raw), now));
        }
        let next = if headers.has_more {
            Cursor { since: cursor.since, offset: cursor.offset + limit }
        } else {
            // Start the next window a lookback before the newest change, never behind this one.
            let since = latest.map_or(cursor.since, |l| (l - self.poll.lookback).max(cursor.since));
            Cursor { since, offset: 0 }
        };
        let cursor = serde_json::to_string(&next).map_err(|e| PollError::new(e.to_string()))?;
        Ok(Page { events, cursor, more: headers.has_more })
    }
}

fn lines_of<'a>(
    header: &serde_json::Map<String, Value>,
    lines: &'a [serde_json::Map<String, Value>],
) -> Vec<&'a serde_json::Map<String, Value>> {
    let id = header.get("id").and_then(text);
    lines.iter().filter(|l| l.get("fulfillment").and_then(text) == id).collect()
}

fn quantity(v: &Value) -> Option<u32> {
    let d: Decimal = match v {
        Value::Number(n) => n.to_string().parse().ok()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    u32::try_from(d.normalize().mantissa()).ok().filter(|_| d.normalize().scale() == 0)
}

/// One fulfillment row and its lines as a `fulfillment.created` event, or `None` for one
/// Handoff cannot report: of an order without an external id (not Handoff's), or without lines
/// whose items have an external id.
fn fulfillment_event(
    header: &serde_json::Map<String, Value>,
    lines: &[serde_json::Map<String, Value>],
) -> Option<InboundEvent> {
    let id = header.get("id").and_then(text)?;
    let order_ref = header.get("order_ref").and_then(text)?;
    let modified = header.get("last_modified").and_then(Value::as_str)?;
    let occurred_at =
        modified.parse::<jiff::civil::DateTime>().ok()?.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    let lines: Vec<FulfillmentLine> = lines_of(header, lines)
        .into_iter()
        .filter_map(|l| {
            Some(FulfillmentLine { sku: l.get("sku").and_then(text)?, quantity: quantity(l.get("quantity")?)? })
        })
        .filter(|l| l.quantity > 0)
        .collect();
    let event = InboundEvent {
        event_id: ExternalId::new(format!("netsuite:itemFulfillment:{id}")).ok()?,
        kind: EventKind::FulfillmentCreated,
        order_ref,
        occurred_at,
        version: u64::try_from(occurred_at.as_millisecond()).ok(),
        order: None,
        fulfillment: Some(Fulfillment {
            fulfillment_id: ExternalId::new(id).ok()?,
            lines,
            carrier: header.get("carrier").and_then(text),
            tracking_number: header.get("tracking_number").and_then(text),
        }),
        refund: None,
        payment: None,
        source_version: None,
    };
    event.validate().ok()?;
    Some(event)
}

impl Poller for NetSuitePoller {
    fn poll<'a>(&'a self, cursor: Option<&'a str>, now: Timestamp) -> BoxFuture<'a, Result<Page, PollError>> {
        Box::pin(self.page(cursor, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Hmac;

    fn settings() -> Settings {
        Settings {
            base_url: "https://1234567-sb1.suitetalk.api.netsuite.com".into(),
            credentials: oauth::Credentials {
                realm: oauth::realm("1234567-sb1"),
                consumer_key: "ck".into(),
                consumer_secret: "cs".into(),
                token_id: "tk".into(),
                token_secret: "ts".into(),
            },
            customer_id: None,
            version_field: DEFAULT_VERSION_FIELD.into(),
            timeout: Duration::from_secs(5),
        }
    }

    /// OAuth Core 1.0 Appendix A (the photos.example.net request RFC 5849 section 3.4.1
    /// quotes): the base string and HMAC-SHA1 signature are published; the HMAC-SHA256 one was
    /// computed independently with Python's `hmac` module over the same base string.
    #[test]
    fn signature_matches_the_published_vector() {
        let url = Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
        let oauth = |method| {
            [
                ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
                ("oauth_token", "nnch734d00sl2jdk"),
                ("oauth_signature_method", method),
                ("oauth_timestamp", "1191242096"),
                ("oauth_nonce", "kllo9940pd9333jh"),
                ("oauth_version", "1.0"),
            ]
        };
        let base = oauth::base_string("GET", &url, &oauth("HMAC-SHA1"));
        assert_eq!(
            base,
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03\
             %26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096\
             %26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
        );
        let sha1 = oauth::sign::<Hmac<sha1::Sha1>>(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00");
        assert_eq!(sha1, "tR3+Ty81lMeYAr/Fid0kMTYa/WM=");
        let base = oauth::base_string("GET", &url, &oauth("HMAC-SHA256"));
        let sha256 = oauth::sign::<Hmac<sha2::Sha256>>(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00");
        assert_eq!(sha256, "WVPzl1j6ZsnkIjWr7e3OZ3jkenL57KwaLFhYsroX1hg=");
    }

    #[test]
    fn authorization_header_carries_realm_and_verifies() {
        let c = settings().credentials;
        assert_eq!(c.realm, "1234567_SB1");
        let url = Url::parse("https://a.example/services/rest/query/v1/suiteql?limit=10&offset=0").unwrap();
        let header = oauth::authorization(&c, "POST", &url, 1_700_000_000, "n0nce");
        assert!(header.starts_with("OAuth realm=\"1234567_SB1\",oauth_consumer_key=\"ck\""), "{header}");
        assert!(header.contains("oauth_signature_method=\"HMAC-SHA256\""));
        assert_eq!(oauth::verify(&c, "POST", &url, &header), Ok(()));
        // Signed for another query or method, it no longer verifies.
        let other = Url::parse("https://a.example/services/rest/query/v1/suiteql?limit=10&offset=10").unwrap();
        assert!(oauth::verify(&c, "POST", &other, &header).is_err());
        assert!(oauth::verify(&c, "GET", &url, &header).is_err());
    }

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
        assert!(matches!(
            classify(s(429), limit, wait),
            DeliveryError::Transient { ambiguous: false, retry_after: Some(_), .. }
        ));
        let limit_400 =
            br#"{"status":400,"o:errorDetails":[{"detail":"x","o:errorCode":"CONCURRENCY_LIMIT_EXCEEDED"}]}"#;
        assert!(matches!(classify(s(400), limit_400, None), DeliveryError::Transient { ambiguous: false, .. }));
        assert!(matches!(classify(s(503), b"", None), DeliveryError::Transient { ambiguous: true, .. }));
        assert!(matches!(classify(s(500), b"not json", None), DeliveryError::Transient { ambiguous: true, .. }));
        let unexpected = br#"{"status":400,"o:errorDetails":[{"detail":"An unexpected error occurred.","o:errorCode":"UNEXPECTED_ERROR"}]}"#;
        assert!(matches!(classify(s(400), unexpected, None), DeliveryError::Transient { ambiguous: true, .. }));
        assert!(matches!(classify(s(401), b"{}", None), DeliveryError::Transient { ambiguous: false, .. }));
        assert!(matches!(classify(s(404), b"{}", None), DeliveryError::Permanent { field: None, .. }));
        // A failed read-back is never a data error.
        assert!(matches!(unknown(classify(s(400), body, None)), DeliveryError::Transient { ambiguous: true, .. }));
    }

    fn order() -> CanonicalOrder {
        serde_json::from_value(json!({
            "order_ref": "1001", "name": "#1001",
            "customer": {"email": "ada@example.com", "name": "Ada"},
            "lines": [{"sku": "MUG-1", "quantity": 2, "unit_price": "9.95", "discount": "1.00"}],
            "currency": "EUR",
            "totals": {"subtotal": "19.90", "tax": "3.78", "shipping": "4.90", "discount": "1.00", "total": "27.58"},
            "placed_at": "2026-11-26T10:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn order_maps_to_a_sales_order() {
        let order = order();
        let body = sales_order(&order, "1001", Some(7), &settings()).unwrap();
        let v: Value = serde_json::to_value(&body).unwrap();
        assert_eq!(v["externalId"], "1001");
        assert_eq!(v["entity"], json!({"externalId": order.customer.email.clone().unwrap()}));
        assert_eq!(v["otherRefNum"], "#1001");
        assert_eq!(v["currency"], json!({"externalId": order.currency.as_str()}));
        assert_eq!(v[DEFAULT_VERSION_FIELD], 7);
        let lines = v["item"]["items"].as_array().unwrap();
        assert_eq!(lines.len(), order.lines.len());
        assert_eq!(lines[0]["item"], json!({"externalId": order.lines[0].sku}));
        assert_eq!(lines[0]["quantity"], order.lines[0].quantity);
        // Money is written from the decimal's digits.
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(
            text,
            r##"{"externalId":"1001","entity":{"externalId":"ada@example.com"},"email":"ada@example.com","##.to_owned()
                + r##""tranDate":"2026-11-26","currency":{"externalId":"EUR"},"otherRefNum":"#1001","##
                + r##""memo":"Handoff order #1001","shippingCost":4.9,"item":{"items":[{"item":{"externalId":"MUG-1"},"##
                + r##""quantity":2,"rate":9.95,"amount":18.9}]},"custbody_handoff_version":7}"##
        );
        // A configured customer wins; without one and without an email there is no entity.
        let mut fixed = settings();
        fixed.customer_id = Some("42".into());
        let v = serde_json::to_value(sales_order(&order, "1001", None, &fixed).unwrap()).unwrap();
        assert_eq!(v["entity"], json!({"id": "42"}));
        assert!(v.get(DEFAULT_VERSION_FIELD).is_none());
        let mut anonymous = order.clone();
        anonymous.customer.email = None;
        let refused = sales_order(&anonymous, "1001", None, &settings()).unwrap_err();
        assert!(matches!(refused, DeliveryError::Permanent { field: Some(f), .. } if f == "order.customer.email"));
    }

    #[test]
    fn fulfillment_rows_become_one_event() {
        let header = json!({"id": "88", "last_modified": "2026-11-26T18:00:05", "order_ref": "1001",
            "carrier": "UPS", "tracking_number": "1Z999"});
        let lines = json!([
            {"fulfillment": "88", "sku": "SKU-1", "quantity": "2"},
            {"fulfillment": 88, "sku": "SKU-2", "quantity": 1},
            {"fulfillment": "89", "sku": "SKU-3", "quantity": "1"}
        ]);
        let header = header.as_object().unwrap().clone();
        let lines: Vec<_> = lines.as_array().unwrap().iter().map(|l| l.as_object().unwrap().clone()).collect();
        let event = fulfillment_event(&header, &lines).unwrap();
        assert_eq!(event.event_id.as_str(), "netsuite:itemFulfillment:88");
        assert_eq!(event.order_ref, "1001");
        let f = event.fulfillment.unwrap();
        assert_eq!(
            f.lines.iter().map(|l| (l.sku.as_str(), l.quantity)).collect::<Vec<_>>(),
            [("SKU-1", 2), ("SKU-2", 1)]
        );
        assert_eq!(f.tracking_number.as_deref(), Some("1Z999"));
        assert_eq!(event.version, Some("2026-11-26T18:00:05Z".parse::<Timestamp>().unwrap().as_millisecond() as u64));
        // Without the order's external id it is not Handoff's to report.
        let mut foreign = header.clone();
        foreign.remove("order_ref");
        assert!(fulfillment_event(&foreign, &lines).is_none());
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
