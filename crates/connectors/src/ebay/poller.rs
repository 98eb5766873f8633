//! The order intake: `getOrders` filtered by `lastmodifieddate`, paged by `offset` (the one
//! paging eBay offers, over an order it does not document). So each window is closed
//! (`lastmodifieddate:[since..until]`, `until` fixed at its first page): an order edited while
//! the window is read moves past `until` and out of it, the window's `total` drops, and the
//! engine's [`Cursor`] reads the window again from its start rather than let an offset step
//! over an order; the order left is in the next window, which starts `lookback` before the
//! newest change. What a window shows twice is dropped by (id, modified, content).

use handoff_contract::{PollSettings, System};
use handoff_engine::poll::{Cursor, Page, PollError};
use handoff_engine::{BoxFuture, Poller};
use jiff::Timestamp;
use serde_json::Value;

use super::FULFILLMENT;
use super::auth::Tokens;
use crate::ConfigError;
use crate::http_json::retry_after;

pub struct EbayPoller {
    name: String,
    base_url: String,
    client: reqwest::Client,
    tokens: Tokens,
    settings: PollSettings,
}

/// eBay's filter syntax wants milliseconds and a `Z`.
fn ebay_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl EbayPoller {
    pub fn new(name: &str, system: &System, base_url: &str, settings: PollSettings) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(system.timeout.unsigned_abs())
            .build()
            .map_err(|e| ConfigError { key: format!("systems.{name}"), message: e.to_string() })?;
        let tokens = Tokens::user(name, system, base_url, client.clone())?;
        let base_url = base_url.trim_end_matches('/').to_owned();
        Ok(EbayPoller { name: name.to_owned(), base_url, client, tokens, settings })
    }

    async fn page(&self, stored: Option<&str>, now: Timestamp) -> Result<Page, PollError> {
        let mut cursor = Cursor::resume(stored, now, self.settings.initial)?;
        let (until, offset) = cursor.offset_window(now);
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &format!("lastmodifieddate:[{}..{}]", ebay_time(cursor.since), ebay_time(until)))
            .append_pair("limit", &self.settings.page_size.to_string())
            .append_pair("offset", &offset.to_string())
            .finish();
        let token =
            self.tokens.bearer().await.map_err(|e| PollError { reason: e.reason, retry_after: e.retry_after })?;
        let response = self
            .client
            .get(format!("{}{FULFILLMENT}/order?{query}", self.base_url))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| PollError::new(format!("getOrders: {e}")))?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let body = response.bytes().await.map_err(|e| PollError::new(format!("getOrders: {e}")))?;
        if status == 401 {
            self.tokens.forget().await;
        }
        if !status.is_success() {
            let reason = format!("getOrders answered {status}: {}", String::from_utf8_lossy(&body));
            return Err(PollError { reason, retry_after: retry });
        }
        let page: Value = serde_json::from_slice(&body).map_err(|e| PollError::new(format!("getOrders: {e}")))?;
        let orders = page["orders"].as_array().cloned().unwrap_or_default();
        let mut events = Vec::with_capacity(orders.len());
        for raw in &orders {
            // One order that cannot be mapped stops the intake loudly rather than being skipped.
            let refused = |e: crate::SourceError| {
                PollError::new(format!("eBay order {}: {e}", raw["orderId"].as_str().unwrap_or("?")))
            };
            let mapped = super::order(raw).map_err(refused)?;
            let modified_raw = raw["lastModifiedDate"].as_str().unwrap_or_default();
            let event = mapped.event(modified_raw).map_err(refused)?;
            let order_id = mapped.order.order_ref.clone();
            let Some(event) = cursor.take(&order_id, mapped.last_modified, event)? else { continue };
            let payload = serde_json::to_string(&event).map_err(|e| PollError::new(e.to_string()))?;
            events.push(crate::new_event(&self.name, event, payload, Some(raw.to_string()), now));
        }
        let total = page["total"].as_u64().unwrap_or(0);
        let more = cursor.offset_page(orders.len() as u64, total, self.settings.lookback);
        Ok(Page { events, cursor: cursor.to_text()?, more })
    }
}

impl Poller for EbayPoller {
    fn poll<'a>(&'a self, cursor: Option<&'a str>, now: Timestamp) -> BoxFuture<'a, Result<Page, PollError>> {
        Box::pin(self.page(cursor, now))
    }
}
