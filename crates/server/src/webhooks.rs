//! `POST /webhooks/{system}`: record the event durably, then answer. `GET` answers eBay's
//! endpoint challenge.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use handoff_connectors::ebay::{self, KeyError, Notification, PublicKeys};
use handoff_connectors::{Inbound, SourceError};
use handoff_contract::{ConnectorKind, System};
use handoff_mapping::drift::{SourceKey, Watch};
use handoff_model::EventKind;
use handoff_store::{NewEvent, NewQuarantined, Recorded, Store, StoreError};
use serde_json::json;

use crate::AppState;

pub(crate) async fn receive<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(keys): Extension<Arc<PublicKeys>>,
    Path(system): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(source) = state.contract.systems.get(&system) else {
        let error = format!("no system named {system:?} in the contract");
        return (StatusCode::NOT_FOUND, Json(json!({ "error": error }))).into_response();
    };
    if source.connector == ConnectorKind::Ebay {
        let answer = ebay_notification(&keys, &system, source, &headers, &body).await;
        let outcome = match answer.status() {
            StatusCode::NO_CONTENT => "notification",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            s if s.is_server_error() => "failed",
            _ => "refused",
        };
        counted(&system, outcome);
        return answer;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let json = &state.contract.hub.json;
    let (new, parsed) = match handoff_connectors::inbound(&system, source, header, &body, state.clock.now(), json) {
        Ok(Inbound::Event { event, parsed }) => (event, parsed),
        Ok(Inbound::Ping) => {
            counted(&system, "ping");
            return (StatusCode::OK, Json(json!({ "status": "ping" }))).into_response();
        }
        Ok(Inbound::NoMoney { reason }) => {
            counted(&system, "no_money");
            tracing::info!(message = "webhook books nothing", system = %system, reason);
            return (StatusCode::OK, Json(json!({ "status": "no money moved", "reason": reason }))).into_response();
        }
        Ok(Inbound::Held(held)) => return hold(&state, held).await,
        Err(e) => {
            let (status, outcome) = match e {
                SourceError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
                _ => (StatusCode::BAD_REQUEST, "refused"),
            };
            counted(&system, outcome);
            let refusal = json!({ "error": e.to_string(), "field": e.field() });
            return (status, Json(refusal)).into_response();
        }
    };
    if let Some(raw) = &new.raw {
        watch_drift(&state.drift, source.connector, &new, parsed.source_version.as_deref(), raw);
    }
    let bytes = new.payload.len();
    let recorded = state.store.record_event(new).await;
    counted(&system, recorded_outcome(&recorded, "recorded"));
    match recorded {
        Ok(Recorded::New(row)) => {
            state.recent.keep(row, parsed, bytes);
            (StatusCode::ACCEPTED, Json(json!({ "status": "recorded", "event": row }))).into_response()
        }
        Ok(Recorded::Duplicate(row)) => {
            (StatusCode::OK, Json(json!({ "status": "duplicate", "event": row }))).into_response()
        }
        Err(error) => not_recorded("recording a webhook failed", error),
    }
}

/// A webhook the store did not keep: 503 tells the sender nothing was kept and to try again;
/// when the writer's queue is full, with `Retry-After` (back-pressure, not a fault).
fn not_recorded(message: &str, error: StoreError) -> Response {
    if let StoreError::QueueFull { queued, capacity } = error {
        tracing::warn!(message = "webhook refused: the store's write queue is full", queued, capacity);
        let body = Json(json!({ "error": "the store's write queue is full; not recorded, retry" }));
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], body).into_response();
    }
    tracing::error!(message, error = %error);
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "not recorded; retry" }))).into_response()
}

/// A body that verified but that no reader maps: held, raised, and answered 2xx only once it
/// is durable, so the vendor neither retries it forever nor disables the subscription.
async fn hold<S: Store + Clone>(state: &AppState<S>, mut held: NewQuarantined) -> Response {
    held.flow = handoff_engine::quarantine::inbound_flow(&state.contract, &held.system);
    let (system, field, reason) = (held.system.clone(), held.field.clone(), held.reason.clone());
    let recorded = state.store.quarantine(held, state.clock.now()).await;
    counted(&system, recorded_outcome(&recorded, "held"));
    match recorded {
        Ok(recorded) => {
            let (status, id) = match recorded {
                Recorded::New(id) => (StatusCode::ACCEPTED, id),
                Recorded::Duplicate(id) => (StatusCode::OK, id),
            };
            tracing::warn!(message = "webhook held: it cannot be mapped", system = %system, quarantine = id, field = %field, reason = %reason);
            (status, Json(json!({ "status": "quarantined", "quarantine": id, "field": field, "error": reason })))
                .into_response()
        }
        Err(error) => not_recorded("holding a webhook failed", error),
    }
}

fn counted(system: &str, outcome: &'static str) {
    handoff_engine::telemetry::event_received(system, outcome);
}

/// `new` for a body kept for the first time, `duplicate` for one known, `failed` when the
/// store could not keep it (the sender is told to retry).
fn recorded_outcome(recorded: &handoff_store::Result<Recorded>, new: &'static str) -> &'static str {
    match recorded {
        Ok(Recorded::New(_)) => new,
        Ok(Recorded::Duplicate(_)) => "duplicate",
        Err(_) => "failed",
    }
}

fn refused(status: StatusCode, error: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": error.to_string() }))).into_response()
}

/// An eBay notification: its signing key resolved by `kid` (the one network call), then the
/// signature checked on the raw bytes before the body is read. Verified notifications carry no
/// order to record (see `docs/connectors/ebay.md`): 204, nothing stored.
async fn ebay_notification(
    keys: &PublicKeys,
    name: &str,
    source: &System,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let Some(header) = headers.get("x-ebay-signature").and_then(|v| v.to_str().ok()) else {
        return refused(StatusCode::UNAUTHORIZED, "not authenticated: X-EBAY-SIGNATURE is missing");
    };
    let kid = match ebay::key_id(header) {
        Ok(kid) => kid,
        Err(e) => return refused(StatusCode::UNAUTHORIZED, format!("not authenticated: {e}")),
    };
    let pem = match keys.key(name, source, &kid).await {
        Ok(pem) => pem,
        Err(e @ KeyError::Unknown(_)) => return refused(StatusCode::UNAUTHORIZED, format!("not authenticated: {e}")),
        Err(e) => {
            tracing::warn!(message = "eBay public key lookup failed", system = %name, error = %e);
            // 503: eBay retries the notification once the key can be had.
            return refused(StatusCode::SERVICE_UNAVAILABLE, e);
        }
    };
    match ebay::inbound(Some(header), body, &pem) {
        Ok(Notification::Acknowledged { topic, notification_id }) => {
            tracing::info!(message = "eBay notification acknowledged", system = %name, topic, notification_id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e @ SourceError::Unauthenticated(_)) => refused(StatusCode::UNAUTHORIZED, e),
        Err(e) => {
            (StatusCode::BAD_REQUEST, Json(json!({ "error": e.to_string(), "field": e.field() }))).into_response()
        }
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct Challenge {
    challenge_code: Option<String>,
}

/// `GET /webhooks/{system}?challenge_code=...`: eBay checks the endpoint before it sends
/// anything, with the verification token and the endpoint URL exactly as registered.
pub(crate) async fn challenge<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Path(system): Path<String>,
    Query(q): Query<Challenge>,
) -> Response {
    let Some(source) = state.contract.systems.get(&system).filter(|s| s.connector == ConnectorKind::Ebay) else {
        return refused(StatusCode::NOT_FOUND, format!("no eBay system named {system:?} in the contract"));
    };
    let Some(code) = q.challenge_code.filter(|c| !c.is_empty()) else {
        return refused(StatusCode::BAD_REQUEST, "challenge_code is required");
    };
    let credential = |key| source.credential(&system, key).map_err(|(key, message)| format!("{key}: {message}"));
    match (credential("verification_token"), credential("endpoint")) {
        (Ok(token), Ok(endpoint)) => {
            Json(json!({ "challengeResponse": ebay::challenge_response(&code, token, endpoint) })).into_response()
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(message = "eBay challenge cannot be answered", system = %system, error = %e);
            refused(StatusCode::INTERNAL_SERVER_ERROR, e)
        }
    }
}

/// Counts how this vendor payload differs from its baseline (by vendor, resource and the API
/// version the vendor announced) and logs what is raised for the first time. A version never
/// seen before is news, not a failure: the event is recorded either way.
fn watch_drift(watch: &Watch, connector: ConnectorKind, new: &NewEvent, version: Option<&str>, raw: &str) {
    let resource = match (connector, new.kind) {
        (ConnectorKind::Stripe, _) => "event",
        (_, EventKind::FulfillmentCreated) => "fulfillment",
        (_, EventKind::RefundCreated) => "refund",
        _ => "order",
    };
    let source = SourceKey::new(connector.as_str(), resource, version.unwrap_or("unversioned"));
    for event in watch.observe(&source, raw.as_bytes()) {
        tracing::warn!(message = "payload drift", source = %source, event = %serde_json::to_string(&event).unwrap_or_default());
    }
}
