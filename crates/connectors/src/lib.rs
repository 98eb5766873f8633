//! Connectors: how Handoff reads events from and writes commands to each kind of system.
//! Today: the generic `http-json` source and target (see `docs/connectors/http-json.md`).

pub mod http_json;

use handoff_contract::ConnectorKind;
use handoff_store::NewEvent;
use jiff::Timestamp;

pub use http_json::SourceError;

/// Turns a webhook body posted by `system` into its inbox row, or says why it is refused
/// (before anything is stored). One place for the server and the simulation.
pub fn inbound(
    connector: ConnectorKind,
    system: &str,
    body: &[u8],
    received_at: Timestamp,
) -> Result<NewEvent, SourceError> {
    let event = match connector {
        ConnectorKind::HttpJson => http_json::parse_event(body)?,
    };
    let payload = String::from_utf8(body.to_vec()).map_err(|_| SourceError::NotUtf8)?;
    Ok(NewEvent {
        system: system.to_owned(),
        event_id: event.event_id.to_string(),
        kind: event.kind,
        order_ref: event.order_ref,
        received_at,
        payload,
    })
}
