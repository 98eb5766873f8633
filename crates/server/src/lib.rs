//! The HTTP face of the hub: vendor webhooks in (and eBay's endpoint challenge), the JSON API under `/api/v1`, health and
//! readiness. A webhook handler only records: the event is durable before the 2xx, and the
//! engine's workers drain the inbox. Every resource a client can spend is bounded (`listen`,
//! `guard`, and the JSON limits the connectors check): see `docs/security.md`.

mod api;
mod guard;
mod listen;
mod ready;
mod webhooks;

pub use listen::serve;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use handoff_contract::Contract;
use handoff_engine::Clock;
use handoff_store::Store;
use tower_http::timeout::TimeoutLayer;

pub struct AppState<S> {
    pub contract: Arc<Contract>,
    pub store: S,
    pub clock: Arc<dyn Clock>,
    /// Compares every vendor payload with its baseline shape and counts the drift.
    pub drift: Arc<handoff_mapping::drift::Watch>,
    /// The parts of the hub `/ready` watches (none: only the store is asked).
    pub heartbeats: handoff_store::heartbeat::Heartbeats,
}

pub fn router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    let max_body = state.contract.hub.max_event_bytes;
    // eBay's notification keys, fetched by key id and kept for the life of the server.
    let ebay_keys = Arc::new(handoff_connectors::ebay::PublicKeys::new());
    let guard = Arc::new(guard::Guard::new(&state.contract.hub));
    let request_timeout = state.contract.hub.limits.request_timeout.unsigned_abs();
    let readiness = Arc::new(ready::Readiness::new(state.heartbeats.clone()));
    Router::new()
        .route(
            "/webhooks/{system}",
            post(webhooks::receive::<S>)
                .get(webhooks::challenge::<S>)
                .layer(DefaultBodyLimit::max(max_body))
                .layer(axum::middleware::from_fn_with_state(guard, guard::webhook)),
        )
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(api::ready::<S>).layer(Extension(readiness)))
        .route("/api/v1/orders/{order_ref}", get(api::order::<S>))
        .route("/api/v1/exceptions", get(api::exceptions::<S>))
        .route("/api/v1/exceptions/{id}", get(api::exception::<S>))
        .route("/api/v1/clusters", get(api::clusters::<S>))
        .route("/api/v1/dead-letters", get(api::dead_letters::<S>))
        .route("/api/v1/dead-letters/{id}/replay", post(api::replay::<S>))
        .route("/api/v1/outbox", get(api::outbox::<S>))
        .route("/api/v1/drift", get(api::drift::<S>))
        .route("/api/v1/quarantine", get(api::quarantine::<S>))
        .with_state(state)
        .layer(Extension(ebay_keys))
        // Past it a request is answered 408; a webhook's write already queued still completes,
        // and the vendor's retry of it is a duplicate.
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
}
