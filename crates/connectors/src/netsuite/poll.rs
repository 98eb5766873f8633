//! Shipped item fulfillments read back from NetSuite through SuiteQL, as `fulfillment.created`
//! events against the sales order's external id: once when a fulfillment ships, and again when
//! its tracking changes (a new content fingerprint). Keyset pages of the engine's [`Cursor`].

use handoff_contract::PollSettings;
use handoff_engine::poll::{Cursor, Page, PollError};
use handoff_engine::quarantine::Unmapped;
use handoff_engine::{BoxFuture, Poller};
use handoff_model::{EventKind, ExternalId, Fulfillment, FulfillmentLine, InboundEvent};
use jiff::Timestamp;
use reqwest::Method;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Client, SUITEQL_MAX_LIMIT, SUITEQL_PATH, Settings, classify, text};

/// The SuiteQL that lists shipped item fulfillments (`shipstatus` C: picked or packed ones are
/// not shipments yet) changed at or after `from` (UTC), but for the `excluded` ids, oldest
/// first: a keyset page of the engine's [`Cursor`]. Times are read in the integration user's
/// time zone, which must be GMT. A fulfillment changes (`lastmodifieddate`) when it ships and
/// when its packages' tracking numbers change, so it is reported again then.
pub fn fulfillments_query(from: Timestamp, excluded: &[String]) -> String {
    let from = from.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%d %H:%M:%S").to_string();
    let excluded = if excluded.is_empty() {
        String::new()
    } else {
        format!(" AND f.id NOT IN ({})", excluded.iter().map(|id| literal(id)).collect::<Vec<_>>().join(", "))
    };
    format!(
        "SELECT f.id AS id, TO_CHAR(f.lastmodifieddate, 'YYYY-MM-DD\"T\"HH24:MI:SS') AS last_modified, \
         so.externalid AS order_ref, BUILTIN.DF(f.shipcarrier) AS carrier, \
         (SELECT MAX(p.packagetrackingnumber) FROM itemfulfillmentpackage p WHERE p.itemfulfillment = f.id) \
         AS tracking_number \
         FROM transaction f \
         JOIN previoustransactionlink ptl ON ptl.nextdoc = f.id \
         JOIN transaction so ON so.id = ptl.previousdoc AND so.type = 'SalesOrd' \
         WHERE f.type = 'ItemShip' AND f.shipstatus = 'C' \
         AND f.lastmodifieddate >= TO_TIMESTAMP('{from}', 'YYYY-MM-DD HH24:MI:SS'){excluded} \
         ORDER BY f.lastmodifieddate, f.id"
    )
}

/// An id as a SuiteQL literal: a number as it is, anything else quoted.
fn literal(id: &str) -> String {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        id.to_owned()
    } else {
        format!("'{}'", id.replace('\'', "''"))
    }
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
        let answer = self
            .client
            .send(Method::POST, url, Some(body), &[("prefer", "transient")])
            .await
            .map_err(|e| PollError::new(e.to_string()))?;
        if !answer.status.is_success() {
            let e = PollError::from(classify(answer.status, &answer.body, answer.retry_after));
            return Err(PollError { reason: format!("SuiteQL: {}", e.reason), ..e });
        }
        serde_json::from_slice(&answer.body).map_err(|e| PollError::new(format!("SuiteQL answer unreadable: {e}")))
    }

    async fn page(&self, stored: Option<&str>, now: Timestamp) -> Result<Page, PollError> {
        let mut cursor = Cursor::resume(stored, now, self.poll.initial)?;
        let limit = self.poll.page_size.clamp(1, SUITEQL_MAX_LIMIT);
        let headers = self.query(&fulfillments_query(cursor.from(), cursor.excluded()), limit, 0).await?;
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
        let mut read = crate::held::PageRead::new(&self.system, now);
        let mut listed = Vec::with_capacity(headers.items.len());
        for header in &headers.items {
            let (Some(id), Some(modified)) = (header.get("id").and_then(text), last_modified(header)) else {
                return Err(PollError::new(format!("SuiteQL row without id or last_modified: {header:?}")));
            };
            listed.push((id.clone(), modified));
            let raw = json!({"fulfillment": header, "lines": lines_of(header, &lines)});
            let event = match fulfillment_event(header, &lines) {
                Ok(None) => continue,
                Ok(Some(event)) => Ok((event, raw.to_string())),
                Err(unmapped) => Err(unmapped),
            };
            // One fulfillment Handoff cannot read is held while the others come in.
            let hold = |unmapped| {
                let order_ref = header.get("order_ref").and_then(text);
                crate::held::record(&self.system, &raw, order_ref, None, unmapped, now)
            };
            read.take(&mut cursor, &id, Some(modified), event, hold)?;
        }
        let more = cursor.keyset_page(&listed, headers.has_more, self.poll.lookback)?;
        read.page(&cursor, more)
    }
}

/// `last_modified` of a fulfillment row, UTC.
fn last_modified(header: &serde_json::Map<String, Value>) -> Option<Timestamp> {
    let modified = header.get("last_modified").and_then(Value::as_str)?;
    modified.parse::<jiff::civil::DateTime>().ok()?.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
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

/// One fulfillment row and its lines as a `fulfillment.created` event; `None` for one of an
/// order without an external id (not Handoff's to report); `Err` for one Handoff cannot read
/// (without lines whose items have an external id, say).
fn fulfillment_event(
    header: &serde_json::Map<String, Value>,
    lines: &[serde_json::Map<String, Value>],
) -> Result<Option<InboundEvent>, Unmapped> {
    let Some(order_ref) = header.get("order_ref").and_then(text) else { return Ok(None) };
    let unmapped = |field: &str, reason: String| Unmapped { field: field.to_owned(), reason };
    let id = header.get("id").and_then(text).ok_or_else(|| unmapped("id", "is missing".into()))?;
    let occurred_at = last_modified(header).ok_or_else(|| {
        unmapped("last_modified", format!("{:?} is not a date and time", header.get("last_modified")))
    })?;
    let lines: Vec<FulfillmentLine> = lines_of(header, lines)
        .into_iter()
        .filter_map(|l| {
            Some(FulfillmentLine { sku: l.get("sku").and_then(text)?, quantity: quantity(l.get("quantity")?)? })
        })
        .filter(|l| l.quantity > 0)
        .collect();
    let event = InboundEvent {
        event_id: ExternalId::new(format!("netsuite:itemFulfillment:{id}")).map_err(|e| unmapped("id", e))?,
        kind: EventKind::FulfillmentCreated,
        order_ref,
        occurred_at,
        version: u64::try_from(occurred_at.as_millisecond()).ok(),
        order: None,
        fulfillment: Some(Fulfillment {
            fulfillment_id: ExternalId::new(id).map_err(|e| unmapped("id", e))?,
            lines,
            carrier: header.get("carrier").and_then(text),
            tracking_number: header.get("tracking_number").and_then(text),
        }),
        refund: None,
        payment: None,
        source_version: None,
        inbound_mapping: Some("netsuite/item_fulfillment@suiteql".into()),
    };
    event.validate().map_err(crate::SourceError::from)?;
    Ok(Some(event))
}

/// Reads a held fulfillment again (`{"fulfillment", "lines"}` as the poll read them).
pub(crate) fn reread(raw: &Value) -> Result<InboundEvent, Unmapped> {
    let header = raw["fulfillment"].as_object().cloned().unwrap_or_default();
    let lines: Vec<_> = raw["lines"].as_array().into_iter().flatten().filter_map(|l| l.as_object().cloned()).collect();
    let unowned = || Unmapped { field: "order_ref".into(), reason: "names no order Handoff sent".into() };
    fulfillment_event(&header, &lines)?.ok_or_else(unowned)
}

impl Poller for NetSuitePoller {
    fn poll<'a>(&'a self, cursor: Option<&'a str>, now: Timestamp) -> BoxFuture<'a, Result<Page, PollError>> {
        Box::pin(self.page(cursor, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let event = fulfillment_event(&header, &lines).unwrap().unwrap();
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
        assert!(fulfillment_event(&foreign, &lines).unwrap().is_none());
    }
}
