//! The Amazon orders poller: SP-API sends no webhooks, so orders are read by their last
//! update. Orders v0 `getOrders` (then `getOrderItems` per order) or Orders 2026-01-01
//! `searchOrders` (items nested), one event per changed order.
//!
//! Windows by `LastUpdatedAfter`, paged by Amazon's own token (read as a cursor: it "doesn't
//! affect filters; it only impacts the pagination"), through the engine's [`Cursor`]: the next
//! window starts `lookback` before the newest change, and what the overlap shows again is
//! dropped by (id, last update, content). Event ids are `poll:{order id}@{last update}#{content
//! fingerprint}`, and the version is the last update in milliseconds, so an older snapshot never
//! overtakes a newer one. Orders still `Pending` carry no prices yet and are skipped until they
//! change.

use std::sync::Arc;

use handoff_contract::PollSettings;
use handoff_engine::quarantine::Unmapped;
use handoff_engine::{BoxFuture, Cursor, Page, PollError, Poller};
use handoff_model::{EventKind, ExternalId, InboundEvent};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::api::{CallError, SpApi};
use super::pace::Operation;
use super::{AmazonOrder, order_2026, order_v0};

/// Which Orders API generation to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V0,
    V2026,
}

impl ApiVersion {
    /// The contract's `api_version`: `v0` (default) or `2026-01-01`.
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("v0") => Ok(ApiVersion::V0),
            Some("2026-01-01") => Ok(ApiVersion::V2026),
            Some(other) => Err(format!("{other:?} is not an Orders API version (v0 or 2026-01-01)")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V0 => "v0",
            ApiVersion::V2026 => "2026-01-01",
        }
    }

    /// The inbound mapping of an order read in this generation: `order_v0` (PascalCase,
    /// `getOrder` joined with `getOrderItems`) or `order_2026` (camelCase, items nested).
    pub fn inbound_mapping(self) -> &'static str {
        match self {
            ApiVersion::V0 => "amazon/order@v0",
            ApiVersion::V2026 => "amazon/order@2026-01-01",
        }
    }
}

pub struct OrdersPoller {
    api: Arc<SpApi>,
    system: String,
    version: ApiVersion,
    settings: PollSettings,
}

/// One order of a page, before it becomes an event.
struct Seen {
    order_id: String,
    last_updated: Timestamp,
    /// What [`reread`] reads again if it is held: v0 `{"order", "items"}`, 2026 the order.
    record: Value,
    /// `None`: skipped (still pending); `Err`: the mapping refused it.
    event: Option<Result<(InboundEvent, String), Unmapped>>,
}

impl OrdersPoller {
    pub fn new(api: Arc<SpApi>, system: &str, version: ApiVersion, settings: PollSettings) -> Self {
        OrdersPoller { api, system: system.to_owned(), version, settings }
    }

    async fn page(&self, stored: Option<&str>, now: Timestamp) -> Result<Page, PollError> {
        let mut cursor = Cursor::resume(stored, now, self.settings.initial)?;
        let listed = match self.version {
            ApiVersion::V0 => self.page_v0(&cursor).await?,
            ApiVersion::V2026 => self.page_2026(&cursor).await?,
        };
        let Some((seen, next)) = listed else {
            // The page token was refused (expired, say): page through the same window again.
            // Nothing is skipped; what was already recorded deduplicates.
            tracing::warn!(message = "Amazon refused the page token; reading the window again", system = %self.system);
            cursor.restart_window();
            return crate::held::PageRead::new(&self.system, now).page(&cursor, true);
        };
        let mut read = crate::held::PageRead::new(&self.system, now);
        let version = Some(self.version.as_str());
        for Seen { order_id, last_updated, record, event } in seen {
            let Some(event) = event else {
                cursor.saw(last_updated);
                continue;
            };
            // One malformed order must not stop the feed: it is held with a Transform
            // Mismatch until a fixed reader replays it.
            let hold =
                |unmapped| crate::held::record(&self.system, &record, Some(order_id.clone()), version, unmapped, now);
            read.take(&mut cursor, &order_id, Some(last_updated), event, hold)?;
        }
        let more = cursor.token_page(next, self.settings.lookback);
        read.page(&cursor, more)
    }

    /// One page of orders and the next page's token; `None` when Amazon refused the token.
    async fn page_v0(&self, cursor: &Cursor) -> Result<Option<(Vec<Seen>, Option<String>)>, PollError> {
        let marketplaces = ("MarketplaceIds", self.api.marketplaces());
        let query = match cursor.token() {
            // A next page is asked for by its token alone (and the marketplaces).
            Some(token) => vec![("NextToken", token.to_owned()), marketplaces],
            None => vec![
                marketplaces,
                ("LastUpdatedAfter", iso_seconds(cursor.since)),
                ("MaxResultsPerPage", self.settings.page_size.clamp(1, 100).to_string()),
            ],
        };
        let answer = self
            .api
            .call(Operation::GetOrders, reqwest::Method::GET, "/orders/v0/orders", &query, None)
            .await
            .map_err(|e| self.failed(e, Operation::GetOrders, cursor));
        let answer = match answer {
            Ok(answer) => answer,
            Err(None) => return Ok(None),
            Err(Some(e)) => return Err(e),
        };
        let payload = &answer.body["payload"];
        let mut seen = Vec::new();
        for order in payload["Orders"].as_array().into_iter().flatten() {
            let order_id = text(order, "AmazonOrderId")?;
            let last_updated = timestamp(order, "LastUpdateDate")?;
            let items = match order["OrderStatus"].as_str().unwrap_or_default() {
                "Pending" | "PendingAvailability" | "Canceled" => Value::Null,
                _ => {
                    let items = self.api.order_items(&order_id).await.map_err(|e| self.item_failed(e))?;
                    // The items were asked for by this order's id: the join names it, as
                    // getOrderItems does.
                    json!({ "AmazonOrderId": order_id, "OrderItems": items })
                }
            };
            let event = read_v0(order, &items);
            let record = json!({ "order": order, "items": items });
            seen.push(Seen { order_id, last_updated, record, event });
        }
        Ok(Some((seen, token(&payload["NextToken"]))))
    }

    async fn page_2026(&self, cursor: &Cursor) -> Result<Option<(Vec<Seen>, Option<String>)>, PollError> {
        let mut query = vec![
            ("marketplaceIds", self.api.marketplaces()),
            ("lastUpdatedAfter", iso_seconds(cursor.since)),
            ("maxResultsPerPage", self.settings.page_size.clamp(1, 100).to_string()),
            ("includedData", "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT".to_owned()),
        ];
        if let Some(token) = cursor.token() {
            query.push(("paginationToken", token.to_owned()));
        }
        let answer = self
            .api
            .call(Operation::SearchOrders, reqwest::Method::GET, "/orders/2026-01-01/orders", &query, None)
            .await
            .map_err(|e| self.failed(e, Operation::SearchOrders, cursor));
        let answer = match answer {
            Ok(answer) => answer,
            Err(None) => return Ok(None),
            Err(Some(e)) => return Err(e),
        };
        let mut seen = Vec::new();
        for order in answer.body["orders"].as_array().into_iter().flatten() {
            let order_id = text(order, "orderId")?;
            let last_updated = timestamp(order, "lastUpdatedTime")?;
            let event = read_2026(order);
            seen.push(Seen { order_id, last_updated, record: order.clone(), event });
        }
        Ok(Some((seen, token(&answer.body["pagination"]["nextToken"]))))
    }

    /// A failed listing: `None` when it was a page token Amazon refused (400), else the error.
    fn failed(&self, e: CallError, op: Operation, cursor: &Cursor) -> Option<PollError> {
        if cursor.token().is_some() && e.is_invalid_input() {
            return None;
        }
        Some(self.error(e, op))
    }

    fn item_failed(&self, e: CallError) -> PollError {
        self.error(e, Operation::GetOrderItems)
    }

    fn error(&self, e: CallError, op: Operation) -> PollError {
        let mut error = e.poll(self.api.interval(op));
        error.reason = format!("{} {}: {}", self.version.as_str(), op.name(), error.reason);
        error
    }
}

/// A window start as SP-API takes it: ISO 8601 in whole seconds, rounded down so that the
/// window never starts after a change it should include.
fn iso_seconds(t: Timestamp) -> String {
    handoff_engine::poll::whole_second(t).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn token(v: &Value) -> Option<String> {
    v.as_str().filter(|t| !t.is_empty()).map(str::to_owned)
}

fn text(v: &Value, key: &str) -> Result<String, PollError> {
    token(&v[key]).ok_or_else(|| PollError::new(format!("an order without {key}")))
}

fn timestamp(v: &Value, key: &str) -> Result<Timestamp, PollError> {
    let s = text(v, key)?;
    s.parse().map_err(|_| PollError::new(format!("{key} {s:?} is not a timestamp")))
}

/// The stable id of one change of one order; an order id too long for an event id is a
/// mapping error of that order.
fn event_id(order_id: &str, last_updated: Timestamp) -> Result<ExternalId, Unmapped> {
    ExternalId::new(format!("poll:{order_id}@{last_updated}"))
        .map_err(|reason| Unmapped { field: "order id".into(), reason })
}

/// One v0 order and its `getOrderItems` answer (`{"OrderItems": [...]}`, null where it needs
/// none) as an event and its raw body; `None` while it is pending.
fn read_v0(order: &Value, items: &Value) -> Option<Result<(InboundEvent, String), Unmapped>> {
    Some(match order["OrderStatus"].as_str().unwrap_or_default() {
        "Pending" | "PendingAvailability" => return None,
        "Canceled" => envelope(order, "AmazonOrderId", "LastUpdateDate")
            .and_then(|(id, at)| cancelled(&id, at, order.clone(), ApiVersion::V0)),
        _ => order_v0(order, items)
            .map_err(Unmapped::from)
            .and_then(|m| changed(m, json!({ "order": order, "items": items }), ApiVersion::V0)),
    })
}

/// One 2026-01-01 order (items nested) as an event and its raw body; `None` while pending.
fn read_2026(order: &Value) -> Option<Result<(InboundEvent, String), Unmapped>> {
    Some(match order["fulfillment"]["fulfillmentStatus"].as_str().unwrap_or_default() {
        "PENDING" | "PENDING_AVAILABILITY" => return None,
        "CANCELLED" => envelope(order, "orderId", "lastUpdatedTime")
            .and_then(|(id, at)| cancelled(&id, at, order.clone(), ApiVersion::V2026)),
        _ => order_2026(order).map_err(Unmapped::from).and_then(|m| changed(m, order.clone(), ApiVersion::V2026)),
    })
}

/// An order's id and last update, for a cancellation (which needs nothing else of it).
fn envelope(order: &Value, id: &str, updated: &str) -> Result<(String, Timestamp), Unmapped> {
    let missing = |field: &str| Unmapped { field: field.to_owned(), reason: "is missing or not a timestamp".into() };
    let order_id = token(&order[id]).ok_or_else(|| missing(id))?;
    let at = token(&order[updated]).and_then(|t| t.parse().ok()).ok_or_else(|| missing(updated))?;
    Ok((order_id, at))
}

/// Reads a held order again (`version`: the API generation it was polled in; `record` as
/// [`Seen::record`] keeps it).
pub(crate) fn reread(version: Option<&str>, record: &Value) -> Result<InboundEvent, Unmapped> {
    let version = ApiVersion::parse(version).map_err(|reason| Unmapped { field: "source_version".into(), reason })?;
    let read = match version {
        ApiVersion::V0 => read_v0(&record["order"], &record["items"]),
        ApiVersion::V2026 => read_2026(record),
    };
    let pending = || Unmapped { field: "status".into(), reason: "the order is pending: nothing to read yet".into() };
    Ok(read.ok_or_else(pending)??.0)
}

fn version(last_updated: Timestamp) -> Option<u64> {
    u64::try_from(last_updated.as_millisecond()).ok()
}

/// A polled order is a snapshot, not a transition: it is `order.updated`, which intake turns
/// into a create when the order is new to it.
fn changed(mapped: AmazonOrder, raw: Value, api: ApiVersion) -> Result<(InboundEvent, String), Unmapped> {
    let order_id = mapped.order.order_ref.clone();
    let kind = if mapped.cancelled { EventKind::OrderCancelled } else { EventKind::OrderUpdated };
    let event = InboundEvent {
        event_id: event_id(&order_id, mapped.last_updated)?,
        kind,
        order_ref: order_id,
        occurred_at: mapped.last_updated,
        version: version(mapped.last_updated),
        order: Some(mapped.order),
        fulfillment: None,
        refund: None,
        payment: None,
        source_version: Some(api.as_str().to_owned()),
        inbound_mapping: Some(api.inbound_mapping().to_owned()),
    };
    Ok((event, raw.to_string()))
}

/// A cancelled order may no longer carry prices; its cancellation needs none.
fn cancelled(
    order_id: &str,
    last_updated: Timestamp,
    raw: Value,
    api: ApiVersion,
) -> Result<(InboundEvent, String), Unmapped> {
    let event = InboundEvent {
        event_id: event_id(order_id, last_updated)?,
        kind: EventKind::OrderCancelled,
        order_ref: order_id.to_owned(),
        occurred_at: last_updated,
        version: version(last_updated),
        order: None,
        fulfillment: None,
        refund: None,
        payment: None,
        source_version: Some(api.as_str().to_owned()),
        inbound_mapping: Some(api.inbound_mapping().to_owned()),
    };
    Ok((event, raw.to_string()))
}

impl Poller for OrdersPoller {
    fn poll<'a>(&'a self, cursor: Option<&'a str>, now: Timestamp) -> BoxFuture<'a, Result<Page, PollError>> {
        Box::pin(self.page(cursor, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_starts_are_whole_seconds_rounded_down() {
        let t: Timestamp = "2026-11-26T10:00:05.999Z".parse().unwrap();
        assert_eq!(iso_seconds(t), "2026-11-26T10:00:05Z");
        let before_epoch: Timestamp = "1969-12-31T23:59:59.5Z".parse().unwrap();
        assert_eq!(iso_seconds(before_epoch), "1969-12-31T23:59:59Z");
    }
}
