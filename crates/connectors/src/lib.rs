//! Connectors: how Handoff reads events from and writes commands to each kind of system, one
//! module per vendor (see `docs/connectors/`). `inbound` takes webhooks; [`target`] and
//! [`poller`] build what a contract entry asks for.

pub mod amazon;
pub mod ebay;
mod fields;
mod held;
pub mod http_json;
pub mod json_limits;
pub mod netsuite;
pub mod odoo;
pub mod outbound;
pub mod shopify;
pub mod shopify_admin;
pub mod signature;
pub mod stripe;
pub mod woocommerce;

use std::sync::Arc;

use handoff_contract::{ConnectorKind, System};
use handoff_engine::{Poller, Target};
use handoff_model::InboundEvent;
use handoff_store::{NewEvent, NewQuarantined};
use jiff::Timestamp;

pub use held::reread;
pub use http_json::SourceError;

/// The header a signed `http-json` source sends: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const HANDOFF_SIGNATURE: &str = "handoff-signature";

/// What a webhook turned out to be.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "one per request, moved straight into the store")]
pub enum Inbound {
    /// An event to record, and the event it is, parsed and validated (for the drift watch, and
    /// for intake and the rules to plan and learn from without parsing it again).
    Event { event: NewEvent, parsed: InboundEvent },
    /// A vendor's "is this endpoint alive" call (WooCommerce's activation ping): answer 200,
    /// store nothing.
    Ping,
    /// A verified delivery that moves no money (a Stripe checkout session completed unpaid, a
    /// refund still pending): answer 200 so the vendor does not retry it, book nothing, and log
    /// why.
    NoMoney { reason: String },
    /// Authenticated, but no reader maps it: hold it in quarantine and answer 2xx, so the
    /// vendor neither retries it forever nor disables the subscription.
    Held(NewQuarantined),
}

/// Turns a webhook posted by `system` into its inbox row, or into a body to hold, or says why
/// it is refused. First its signature on the raw bytes: a refusal stores nothing. Then its JSON
/// against `limits`, before any reader parses it. A vendor body that verified is never refused:
/// what cannot be mapped, or crosses a JSON limit, is [`Inbound::Held`] naming why. A canonical
/// (`http-json`) body that does not parse or crosses a limit is refused, naming the field or
/// the limit, since its sender speaks Handoff's own format. One place for the server and the
/// simulation. `header` looks a request header up by lower-case name.
pub fn inbound<'h>(
    name: &str,
    system: &System,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    received_at: Timestamp,
    limits: &handoff_contract::JsonLimits,
) -> Result<Inbound, SourceError> {
    let secrets = &system.webhook_secrets;
    match system.connector {
        ConnectorKind::HttpJson => {
            if !secrets.is_empty() {
                let header = header(HANDOFF_SIGNATURE);
                let tolerance = system.signature_tolerance;
                signature::verify_timestamped(header, "Handoff-Signature", body, secrets, received_at, tolerance)?;
            }
            let text = http_json::text(body)?;
            let parsed = http_json::parse_event(text, limits)?;
            let event = new_event(name, &parsed, text.to_owned(), None, received_at);
            return Ok(Inbound::Event { event, parsed });
        }
        ConnectorKind::Shopify => shopify::verify(&header, body, secrets)?,
        ConnectorKind::Woocommerce if woocommerce::is_ping(body) => return Ok(Inbound::Ping),
        ConnectorKind::Woocommerce => woocommerce::verify(&header, body, secrets)?,
        ConnectorKind::Stripe => stripe::verify(&header, body, secrets, received_at, system.signature_tolerance)?,
        // Verified with a key fetched by `kid`, which needs a network call first: the server
        // resolves it and calls `ebay::inbound`.
        ConnectorKind::Ebay => {
            return Err(http_json::invalid(
                "connector",
                "eBay notifications are verified with the key named by their kid: use ebay::inbound",
            ));
        }
        ConnectorKind::Amazon | ConnectorKind::Netsuite | ConnectorKind::Odoo => {
            return Err(http_json::invalid(
                "connector",
                format!("{} sends no webhooks to Handoff; its changes are polled", system.connector.as_str()),
            ));
        }
    }
    let mapped = http_json::text(body).and_then(|text| {
        json_limits::check(text, limits)?;
        map_webhook(name, system.connector, &header, text, received_at)
    });
    Ok(match mapped {
        Ok(Mapped::Event(event, parsed)) => Inbound::Event { event, parsed },
        Ok(Mapped::NoMoney(reason)) => Inbound::NoMoney { reason },
        Err(e) => Inbound::Held(held::webhook(name, system, &header, body, e, received_at)),
    })
}

/// What a verified vendor webhook reads as.
#[allow(clippy::large_enum_variant, reason = "one per request, moved straight into an `Inbound`")]
pub(crate) enum Mapped {
    /// Its inbox row, and the event it is.
    Event(NewEvent, InboundEvent),
    /// A delivery that moves no money, and why.
    NoMoney(String),
}

/// Maps a vendor webhook whose signature verified (or a held one, read again) to its inbox
/// row, checked as every event is before it is recorded.
fn map_webhook<'h>(
    name: &str,
    connector: ConnectorKind,
    header: &impl Fn(&str) -> Option<&'h str>,
    text: &str,
    received_at: Timestamp,
) -> Result<Mapped, SourceError> {
    let body = text.as_bytes();
    let event = match connector {
        ConnectorKind::Shopify => shopify::event(header, body)?,
        ConnectorKind::Woocommerce => woocommerce::event(header, body)?,
        ConnectorKind::Stripe => match stripe::event(body)? {
            stripe::Read::Event(event) => *event,
            stripe::Read::NoMoney(reason) => return Ok(Mapped::NoMoney(reason)),
        },
        other => {
            return Err(http_json::invalid("connector", format!("{} webhooks are not read", other.as_str())));
        }
    };
    event.validate()?;
    let payload = serde_json::to_string(&event)?;
    Ok(Mapped::Event(new_event(name, &event, payload, Some(text.to_owned()), received_at), event))
}

pub(crate) fn new_event(
    system: &str,
    event: &InboundEvent,
    payload: String,
    raw: Option<String>,
    received_at: Timestamp,
) -> NewEvent {
    NewEvent {
        system: system.to_owned(),
        event_id: event.event_id.to_string(),
        kind: event.kind,
        order_ref: event.order_ref.clone(),
        received_at,
        payload,
        raw,
    }
}

/// A connector that cannot be built from its contract entry: the key to fix, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl From<(String, String)> for ConfigError {
    fn from((key, message): (String, String)) -> Self {
        ConfigError { key, message }
    }
}

/// The target of a system that receives commands (one with a `base_url`), or `None` for a
/// system that only sends; mappings are the ones shipped with Handoff.
pub fn target(name: &str, system: &System) -> Result<Option<Arc<dyn Target>>, ConfigError> {
    let shipped = handoff_mapping::Mappings::shipped()
        .map_err(|e| ConfigError { key: "mappings".into(), message: e.to_string() })?;
    target_with(name, system, &Arc::new(shipped))
}

/// [`target`], with the mappings a contract names (`hub.mappings`).
pub fn target_with(
    name: &str,
    system: &System,
    mappings: &Arc<handoff_mapping::Mappings>,
) -> Result<Option<Arc<dyn Target>>, ConfigError> {
    let Some(base_url) = &system.base_url else { return Ok(None) };
    let http = |e: reqwest::Error| ConfigError { key: format!("systems.{name}"), message: e.to_string() };
    let target: Arc<dyn Target> = match system.connector {
        ConnectorKind::HttpJson => Arc::new(
            http_json::HttpJsonTarget::new(
                base_url,
                system.timeout.unsigned_abs(),
                system.honours_idempotency_keys(),
                &outbound::Outbound::of(system),
            )
            .map_err(http)?,
        ),
        ConnectorKind::Shopify => Arc::new(shopify_admin::ShopifyTarget::new(name, system)?),
        ConnectorKind::Netsuite => {
            let settings = netsuite::Settings::from_contract(name, system)?;
            Arc::new(netsuite::NetSuiteTarget::new(settings, mappings.clone()).map_err(http)?)
        }
        ConnectorKind::Odoo => Arc::new(
            odoo::OdooTarget::new(odoo::client(name, system)?, mappings.clone())
                .with_settings(money_settings(&system.tax, &system.charge_items)),
        ),
        ConnectorKind::Ebay => Arc::new(ebay::EbayTarget::new(name, system, base_url)?),
        ConnectorKind::Amazon => Arc::new(amazon::ShipmentTarget::new(amazon::SpApi::from_contract(name, system)?)),
        ConnectorKind::Woocommerce | ConnectorKind::Stripe => return Ok(None),
    };
    Ok(Some(target))
}

/// The poller of a system whose contract entry asks for `poll`, or `None`.
pub fn poller(name: &str, system: &System) -> Result<Option<Arc<dyn Poller>>, ConfigError> {
    // The contract refuses `poll` without a `base_url`.
    let (Some(settings), Some(base_url)) = (&system.poll, &system.base_url) else { return Ok(None) };
    let http = |e: reqwest::Error| ConfigError { key: format!("systems.{name}"), message: e.to_string() };
    let poller: Arc<dyn Poller> = match system.connector {
        ConnectorKind::Shopify => Arc::new(shopify_admin::OrdersPoller::new(name, system)?),
        ConnectorKind::Woocommerce => Arc::new(woocommerce::OrdersPoller::new(name, system)?),
        ConnectorKind::Netsuite => {
            let netsuite = netsuite::Settings::from_contract(name, system)?;
            Arc::new(netsuite::NetSuitePoller::new(name, netsuite, settings.clone()).map_err(http)?)
        }
        ConnectorKind::Odoo => Arc::new(odoo::OdooPoller::new(odoo::client(name, system)?, name, settings.clone())),
        ConnectorKind::Ebay => Arc::new(ebay::EbayPoller::new(name, system, base_url, settings.clone())?),
        ConnectorKind::Amazon => {
            let version = amazon::poller::ApiVersion::parse(system.api_version.as_deref())
                .map_err(|message| ConfigError { key: format!("systems.{name}.api_version"), message })?;
            let api = amazon::SpApi::from_contract(name, system)?;
            Arc::new(amazon::OrdersPoller::new(api, name, version, settings.clone()))
        }
        _ => {
            return Err(ConfigError {
                key: format!("systems.{name}.poll"),
                message: format!("the {} connector cannot be polled", system.connector.as_str()),
            });
        }
    };
    Ok(Some(poller))
}

/// The settings a system's mapping reads (`{"settings": ...}` of its input), for the tools that
/// run a mapping outside the hub (`dlq replay --dry-run`, `mapping capture`).
pub fn mapping_settings(name: &str, system: &System) -> Result<serde_json::Value, ConfigError> {
    Ok(match system.connector {
        ConnectorKind::Netsuite => netsuite::Settings::from_contract(name, system)?.for_mapping(),
        ConnectorKind::Odoo => money_settings(&system.tax, &system.charge_items),
        _ => serde_json::Value::Null,
    })
}

/// What an ERP mapping reads of a system's order-money settings: where tax goes and the items
/// of its charges (`System::tax`, `System::charge_items`).
pub(crate) fn money_settings(
    tax: &handoff_contract::TaxMode,
    charge_items: &std::collections::BTreeMap<String, String>,
) -> serde_json::Value {
    serde_json::json!({"tax": tax.as_str(), "charge_items": charge_items})
}

/// The mapping version a target that maps will use for `command`: the one a replay pinned in
/// its payload, else the latest; `None` when the command does not go through a mapping.
pub(crate) fn pinned_or_latest(
    mappings: &handoff_mapping::Mappings,
    connector: &str,
    command: &handoff_store::Command,
) -> Option<String> {
    let resource = handoff_mapping::resource_for(connector, command.kind.as_str())?;
    let payload: serde_json::Value = serde_json::from_str(&command.payload).ok()?;
    match payload.get(handoff_mapping::PIN).and_then(serde_json::Value::as_str) {
        Some(pin) => Some(pin.to_owned()),
        None => Some(mappings.latest(connector, resource)?.id.to_string()),
    }
}
