//! Connectors: how Handoff reads events from and writes commands to each kind of system.
//! Today: the generic `http-json` source and target (see `docs/connectors/http-json.md`).

pub mod amazon;
pub mod ebay;
pub mod http_json;
pub mod shopify;
pub mod signature;
pub mod stripe;
pub mod woocommerce;

use handoff_contract::{ConnectorKind, System};
use handoff_store::NewEvent;
use jiff::Timestamp;

pub use http_json::SourceError;

/// The header a signed `http-json` source sends: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const HANDOFF_SIGNATURE: &str = "handoff-signature";

/// What a webhook turned out to be.
#[derive(Debug)]
pub enum Inbound {
    /// An event to record.
    Event(NewEvent),
    /// A vendor's "is this endpoint alive" call (WooCommerce's activation ping): answer 200,
    /// store nothing.
    Ping,
}

/// Turns a webhook posted by `system` into its inbox row, or says why it is refused: first its
/// signature on the raw bytes, then its body; nothing is stored either way. One place for the
/// server and the simulation. `header` looks a request header up by lower-case name.
pub fn inbound<'h>(
    name: &str,
    system: &System,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    received_at: Timestamp,
) -> Result<Inbound, SourceError> {
    let secrets = &system.webhook_secrets;
    let event = match system.connector {
        ConnectorKind::HttpJson => {
            if !secrets.is_empty() {
                let header = header(HANDOFF_SIGNATURE);
                let tolerance = system.signature_tolerance;
                signature::verify_timestamped(header, "Handoff-Signature", body, secrets, received_at, tolerance)?;
            }
            let event = http_json::parse_event(body)?;
            let payload = String::from_utf8(body.to_vec()).map_err(|_| SourceError::NotUtf8)?;
            return Ok(Inbound::Event(new_event(name, event, payload, None, received_at)));
        }
        ConnectorKind::Shopify => {
            shopify::verify(&header, body, secrets)?;
            shopify::event(&header, body)?
        }
        ConnectorKind::Woocommerce if woocommerce::is_ping(body) => return Ok(Inbound::Ping),
        ConnectorKind::Woocommerce => {
            woocommerce::verify(&header, body, secrets)?;
            woocommerce::event(&header, body)?
        }
        ConnectorKind::Stripe => {
            stripe::verify(&header, body, secrets, received_at, system.signature_tolerance)?;
            stripe::event(body)?
        }
    };
    let raw = String::from_utf8(body.to_vec()).map_err(|_| SourceError::NotUtf8)?;
    let payload = serde_json::to_string(&event)?;
    Ok(Inbound::Event(new_event(name, event, payload, Some(raw), received_at)))
}

fn new_event(
    system: &str,
    event: handoff_model::InboundEvent,
    payload: String,
    raw: Option<String>,
    received_at: Timestamp,
) -> NewEvent {
    NewEvent {
        system: system.to_owned(),
        event_id: event.event_id.to_string(),
        kind: event.kind,
        order_ref: event.order_ref,
        received_at,
        payload,
        raw,
    }
}
