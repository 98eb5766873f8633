//! Bodies a vendor sent that no reader can map: a webhook whose signature verified, or one
//! record of a poll. They are held in the store's quarantine (see `docs/quarantine.md`) rather
//! than refused or skipped, so the vendor is answered 2xx and the feed goes on, and
//! [`reread`] reads them again once the reader is fixed.

use std::collections::BTreeMap;

use handoff_contract::{ConnectorKind, System};
use handoff_engine::poll::{Cursor, Page, PollError};
use handoff_engine::quarantine::Unmapped;
use handoff_model::InboundEvent;
use handoff_store::{NewEvent, NewQuarantined, QuarantineSource, Quarantined};
use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::SourceError;

impl From<SourceError> for Unmapped {
    fn from(e: SourceError) -> Self {
        // A body that is not JSON at all stops before any field.
        let field = e.field().unwrap_or("body").to_owned();
        let reason = e.reason();
        // An order that does not add up names the part of it that does not in its reason
        // (`totals.total: ...`, `lines: ...`).
        if field == "order"
            && let Some((part, why)) = reason.split_once(": ")
            && (part.starts_with("lines") || part.starts_with("totals."))
        {
            return Unmapped { field: format!("order.{part}"), reason: why.to_owned() };
        }
        Unmapped { field, reason }
    }
}

/// The request headers a connector's reader reads: all of a request that is kept (never its
/// signature).
fn read_headers(connector: ConnectorKind) -> &'static [&'static str] {
    match connector {
        ConnectorKind::Shopify => &crate::shopify::READ_HEADERS,
        ConnectorKind::Woocommerce => &crate::woocommerce::READ_HEADERS,
        _ => &[],
    }
}

/// A webhook of `system` whose signature verified but that cannot be mapped.
pub(crate) fn webhook<'h>(
    name: &str,
    system: &System,
    header: &impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    error: SourceError,
    received_at: Timestamp,
) -> NewQuarantined {
    let headers: BTreeMap<String, String> = read_headers(system.connector)
        .iter()
        .filter_map(|&name| Some((name.to_owned(), header(name)?.to_owned())))
        .collect();
    let parsed: Value = serde_json::from_slice(body).unwrap_or_default();
    // What a person looking for the order would search by, where the body still says it.
    let (order_ref, source_version) = match system.connector {
        ConnectorKind::Shopify => {
            let topic = header("x-shopify-topic").or_else(|| header("shopify-topic")).unwrap_or_default();
            let id = if topic.starts_with("orders/") { &parsed["id"] } else { &parsed["order_id"] };
            let version = header("x-shopify-api-version").or_else(|| header("shopify-api-version"));
            (id_of(id), version.map(str::to_owned))
        }
        ConnectorKind::Woocommerce => {
            let id = id_of(&parsed["id"]).or_else(|| id_of(&parsed["order"]["id"]));
            (id, header("x-wc-webhook-resource").map(|_| crate::woocommerce::WC_V3.to_owned()))
        }
        ConnectorKind::Stripe => (None, parsed["api_version"].as_str().map(str::to_owned)),
        _ => (None, None),
    };
    let unmapped = Unmapped::from(error);
    NewQuarantined {
        system: name.to_owned(),
        source: QuarantineSource::Webhook,
        fingerprint: fingerprint(&headers, body),
        order_ref,
        headers,
        body: body.to_vec(),
        field: unmapped.field,
        reason: unmapped.reason,
        source_version,
        flow: None,
        received_at,
    }
}

/// One record of a poll of `system` that cannot be mapped, as the poller read it (with
/// whatever else its reader needs, see each poller's `reread`).
pub(crate) fn record(
    system: &str,
    raw: &Value,
    order_ref: Option<String>,
    source_version: Option<&str>,
    unmapped: impl Into<Unmapped>,
    received_at: Timestamp,
) -> NewQuarantined {
    let body = raw.to_string().into_bytes();
    let unmapped = unmapped.into();
    NewQuarantined {
        system: system.to_owned(),
        source: QuarantineSource::Poll,
        fingerprint: fingerprint(&BTreeMap::new(), &body),
        order_ref,
        headers: BTreeMap::new(),
        body,
        field: unmapped.field,
        reason: unmapped.reason,
        source_version: source_version.map(str::to_owned),
        flow: None,
        received_at,
    }
}

/// What one poll page read: the events to record, each change once through the engine's
/// [`Cursor`], and the records to hold. One place for every poller.
pub(crate) struct PageRead<'a> {
    system: &'a str,
    now: Timestamp,
    events: Vec<NewEvent>,
    held: Vec<NewQuarantined>,
}

impl<'a> PageRead<'a> {
    pub(crate) fn new(system: &'a str, now: Timestamp) -> Self {
        PageRead { system, now, events: Vec::new(), held: Vec::new() }
    }

    /// Record `id`, changed at `modified` (else when its event says it happened), as its
    /// reader read it: its event and the raw body kept beside it, recorded unless the cursor
    /// took this very change already; or, when it cannot be read or checked, held (made by
    /// `hold`) while the page goes on.
    pub(crate) fn take(
        &mut self,
        cursor: &mut Cursor,
        id: &str,
        modified: Option<Timestamp>,
        read: Result<(InboundEvent, String), Unmapped>,
        hold: impl FnOnce(Unmapped) -> NewQuarantined,
    ) -> Result<(), PollError> {
        let checked = match read {
            Ok((event, raw)) => match cursor.take(id, modified.unwrap_or(event.occurred_at), event)? {
                Some(event) => polled(self.system, event, raw, self.now),
                None => return Ok(()),
            },
            Err(unmapped) => {
                if let Some(modified) = modified {
                    cursor.saw(modified);
                }
                Err(unmapped)
            }
        };
        match checked {
            Ok(event) => self.events.push(event),
            Err(unmapped) => self.held.push(hold(unmapped)),
        }
        Ok(())
    }

    /// The page, with the cursor after it.
    pub(crate) fn page(self, cursor: &Cursor, more: bool) -> Result<Page, PollError> {
        Ok(Page { events: self.events, held: self.held, cursor: cursor.to_text()?, more })
    }
}

/// The same headers and bytes are the same delivery (a vendor's retry, an overlapping poll).
fn fingerprint(headers: &BTreeMap<String, String>, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(serde_json::to_vec(headers).expect("a string map serialises"));
    hash.update(b"\n");
    hash.update(body);
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// A vendor id as sent: a string, or an integer kept exact.
pub(crate) fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// Reads held body `held` of system `name` again with today's readers: a webhook with the
/// headers kept beside it, without checking its signature again (it was checked before it was
/// stored); a polled record with its poller's reader. Its inbox row keeps the time it arrived.
pub fn reread(name: &str, system: &System, held: &Quarantined) -> Result<NewEvent, Unmapped> {
    if held.source == QuarantineSource::Webhook {
        let header = |n: &str| held.headers.get(n).map(String::as_str);
        let text = crate::http_json::text(&held.body)?;
        return match crate::map_webhook(name, system.connector, &header, text, held.received_at)? {
            crate::Mapped::Event(event, _) => Ok(event),
            // Nothing to book: the operator ignores the exception.
            crate::Mapped::NoMoney(reason) => Err(Unmapped { field: "type".into(), reason }),
        };
    }
    let raw: Value = serde_json::from_slice(&held.body).map_err(SourceError::from)?;
    let event = match system.connector {
        ConnectorKind::Shopify => crate::shopify::polled_order(raw.clone())?,
        ConnectorKind::Woocommerce => crate::woocommerce::polled_order(&raw)?,
        ConnectorKind::Amazon => crate::amazon::poller::reread(held.source_version.as_deref(), &raw)?,
        ConnectorKind::Ebay => crate::ebay::reread(&raw)?,
        ConnectorKind::Netsuite => crate::netsuite::reread(&raw)?,
        ConnectorKind::Odoo => crate::odoo::reread(&raw, held.received_at)?,
        other => {
            let reason = format!("the {} connector polls nothing", other.as_str());
            return Err(Unmapped { field: "connector".into(), reason });
        }
    };
    let raw = String::from_utf8_lossy(&held.body).into_owned();
    polled(name, event, raw, held.received_at)
}

/// A polled record's inbox row, checked as every event is before it is recorded.
pub(crate) fn polled(name: &str, event: InboundEvent, raw: String, now: Timestamp) -> Result<NewEvent, Unmapped> {
    event.validate().map_err(SourceError::from)?;
    let payload = serde_json::to_string(&event).map_err(SourceError::from)?;
    Ok(crate::new_event(name, &event, payload, Some(raw), now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Inbound;
    use crate::signature::sign_base64;

    fn shopify() -> System {
        let text = "[systems.shop]\nrole = \"storefront\"\nconnector = \"shopify\"\nwebhook_secrets = [\"s\"]\n";
        handoff_contract::Contract::parse(text, std::path::Path::new("handoff.toml")).unwrap().systems["shop"].clone()
    }

    fn deliver(body: &[u8], secret: &str) -> Result<Inbound, SourceError> {
        let signature = sign_base64(secret, body);
        let headers = [
            ("x-shopify-topic", "orders/create"),
            ("x-shopify-event-id", "evt-9"),
            ("x-shopify-api-version", "2027-01"),
            ("x-shopify-hmac-sha256", signature.as_str()),
        ];
        let header = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        crate::inbound("shop", &shopify(), header, body, Timestamp::UNIX_EPOCH, &Default::default())
    }

    fn held(body: &str) -> NewQuarantined {
        match deliver(body.as_bytes(), "s") {
            Ok(Inbound::Held(held)) => held,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_verified_body_is_held_naming_the_field_path_where_its_reader_stopped() {
        let order = r#"{"id":1001,"currency":"EUR","total_price":"5.00","subtotal_price":"5.00"}"#;
        let h = held(order);
        assert_eq!(h.field, "line_items");
        assert!(h.reason.starts_with("missing field `line_items`"), "{}", h.reason);
        assert_eq!((h.order_ref.as_deref(), h.source_version.as_deref()), (Some("1001"), Some("2027-01")));
        assert_eq!(
            h.headers.keys().collect::<Vec<_>>(),
            ["x-shopify-api-version", "x-shopify-event-id", "x-shopify-topic"]
        );
        assert_eq!(h.body, order.as_bytes());
        assert_eq!(h.fingerprint, held(order).fingerprint, "a redelivery is the same body");

        let typed = r#"{"id":1,"currency":"EUR","total_price":"5.00","line_items":[{"id":7,"quantity":"1"}]}"#;
        assert_eq!(held(typed).field, "line_items[0].quantity");
        let nested = r#"{"id":1,"currency":"EUR","total_price":"5.00","line_items":[{"id":7}]}"#;
        assert_eq!(held(nested).field, "line_items[0].quantity");
        let unbalanced = r#"{"id":1,"currency":"EUR","total_price":"9.00","subtotal_price":"5.00",
            "line_items":[{"id":7,"sku":"A","quantity":1,"price":"5.00"}]}"#;
        assert_eq!(held(unbalanced).field, "total_price");
        assert_eq!(held("not json").field, "body");
    }

    #[test]
    fn a_forged_body_is_refused_unread_and_a_readable_one_is_an_event() {
        assert!(matches!(deliver(b"not json", "wrong"), Err(SourceError::Unauthenticated(_))));
        let order = r#"{"id":1001,"currency":"EUR","total_price":"5.00","subtotal_price":"5.00",
            "line_items":[{"id":7,"sku":"A","quantity":1,"price":"5.00"}]}"#;
        assert!(matches!(deliver(order.as_bytes(), "s"), Ok(Inbound::Event { .. })));
    }

    #[test]
    fn a_held_webhook_is_read_again_with_the_headers_kept_and_without_its_signature() {
        let order = r#"{"id":1001,"currency":"EUR","total_price":"5.00","subtotal_price":"5.00",
            "line_items":[{"id":7,"sku":"A","quantity":1,"price":"5.00"}]}"#;
        // As a body held by a build whose reader refused it.
        let h = NewQuarantined { body: order.as_bytes().to_vec(), ..held("{}") };
        let row = Quarantined {
            id: 1,
            system: h.system,
            source: h.source,
            order_ref: None,
            headers: h.headers,
            body: h.body,
            field: h.field,
            reason: h.reason,
            source_version: h.source_version,
            flow: None,
            received_at: h.received_at,
            state: handoff_store::QuarantineState::Held,
            exception_id: None,
            event_row: None,
            replayed_at: None,
        };
        let event = reread("shop", &shopify(), &row).unwrap();
        assert_eq!((event.event_id.as_str(), event.order_ref.as_str()), ("evt-9", "1001"));
        assert_eq!(event.raw.as_deref(), Some(order));
    }
}
