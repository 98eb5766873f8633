//! The HTTP face of the hub: vendor webhooks in (and eBay's endpoint challenge), the JSON API under `/api/v1`, health,
//! readiness and `/metrics`. A webhook handler only records: the event is durable before the 2xx, and the
//! engine's workers drain the inbox. Every resource a client can spend is bounded (`listen`,
//! `guard`, and the JSON limits the connectors check): see `docs/security.md`.

mod api;
pub mod auth;
pub mod console;
pub mod doctor;
mod guard;
mod listen;
pub mod metrics;
mod ready;
mod webhooks;

pub use listen::serve;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Router};
use handoff_contract::Contract;
use handoff_engine::{Clock, Targets};
use handoff_store::{Role, Store};
use tower_http::timeout::TimeoutLayer;

pub struct AppState<S> {
    pub contract: Arc<Contract>,
    pub store: S,
    pub clock: Arc<dyn Clock>,
    /// Compares every vendor payload with its baseline shape and counts the drift.
    pub drift: Arc<handoff_mapping::drift::Watch>,
    /// The mappings the hub runs with (the contract's `hub.mappings` directory, else the
    /// shipped ones): the dead letters' dry runs and the doctor read them.
    pub mappings: Arc<handoff_mapping::Mappings>,
    /// The parts of the hub `/ready` watches (none: only the store is asked).
    pub heartbeats: handoff_store::heartbeat::Heartbeats,
    /// The contract's targets: a resolution action asks what each can do (a duplicate's cancel
    /// needs one that addresses records). Empty: such actions are refused, never guessed.
    pub targets: Targets,
    /// Where a webhook's event, once recorded, waits parsed for intake and the rules.
    pub recent: Arc<handoff_engine::recent::Recent>,
}

/// A route behind a token or a login: its method and path, the role it needs, its handler.
type GuardedRoute<S> = (Method, &'static str, Role, MethodRouter<Arc<AppState<S>>>);

/// Every route behind a token, with the role it needs: the one table the router is built from
/// and the access tests walk.
pub(crate) fn api_routes<S: Store + Clone>() -> Vec<GuardedRoute<S>> {
    use Role::{Admin, Operator, Viewer};
    vec![
        (Method::GET, "/metrics", Viewer, get(metrics::scrape::<S>)),
        (Method::GET, "/api/v1/openapi.json", Viewer, get(api::openapi::document)),
        (Method::GET, "/api/v1/orders", Viewer, get(api::orders::search::<S>)),
        (Method::GET, "/api/v1/orders/{order_ref}", Viewer, get(api::orders::timeline::<S>)),
        (Method::GET, "/api/v1/exceptions", Viewer, get(api::exceptions::search::<S>)),
        (Method::GET, "/api/v1/exceptions/{id}", Viewer, get(api::exceptions::evidence::<S>)),
        (Method::POST, "/api/v1/exceptions/actions", Operator, post(api::exceptions::act::<S>)),
        (Method::GET, "/api/v1/clusters", Viewer, get(api::clusters::list::<S>)),
        (Method::GET, "/api/v1/commands", Viewer, get(api::commands::list::<S>)),
        (Method::GET, "/api/v1/dead-letters", Viewer, get(api::commands::dead_letters::<S>)),
        (Method::GET, "/api/v1/dead-letters/{id}/dry-run", Operator, get(api::commands::dry_run::<S>)),
        (Method::POST, "/api/v1/dead-letters/{id}/replay", Operator, post(api::commands::replay::<S>)),
        (Method::GET, "/api/v1/outbox", Viewer, get(api::status::outbox::<S>)),
        (Method::GET, "/api/v1/flows/health", Viewer, get(api::flows::health::<S>)),
        (Method::GET, "/api/v1/drift", Viewer, get(api::status::drift::<S>)),
        (Method::GET, "/api/v1/quarantine", Viewer, get(api::quarantine::list::<S>)),
        (Method::GET, "/api/v1/contract", Admin, get(api::contract::read::<S>)),
        (Method::GET, "/api/v1/audit", Viewer, get(api::audit::list::<S>)),
        (Method::GET, "/api/v1/doctor", Viewer, get(api::doctor::answers::<S>)),
    ]
}

/// The OpenAPI document of `/api/v1`, as served at `/api/v1/openapi.json`.
pub fn openapi_json() -> String {
    api::openapi::document_json()
}

/// Which routes an address serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    /// Everything, on one address (no `hub.admin_listen`).
    All,
    /// What the internet reaches when the console has its own address: webhooks, `/health`, `/ready`.
    Public,
    /// The console, `/api/v1` and `/metrics` (`hub.admin_listen`), with `/health` and `/ready`.
    Admin,
}

/// Every route on one address: webhooks, the API, the console, health and readiness.
pub fn router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    app(state, Face::All)
}

/// The public address when `hub.admin_listen` is set: webhooks, `/health` and `/ready` only.
pub fn public_router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    app(state, Face::Public)
}

/// The admin address (`hub.admin_listen`): the console, `/api/v1`, `/metrics`, `/health`, `/ready`.
pub fn admin_router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    app(state, Face::Admin)
}

fn app<S: Store + Clone>(state: Arc<AppState<S>>, face: Face) -> Router {
    let max_body = state.contract.hub.max_event_bytes;
    // eBay's notification keys, fetched by key id and kept for the life of the server.
    let ebay_keys = Arc::new(handoff_connectors::ebay::PublicKeys::new());
    let guard = Arc::new(guard::Guard::new(&state.contract.hub));
    let request_timeout = state.contract.hub.limits.request_timeout.unsigned_abs();
    let cookies = console::session::CookiePolicy { secure: state.contract.hub.cookies_secure() };
    let readiness = Arc::new(ready::Readiness::new(state.heartbeats.clone()));
    let mut app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(api::status::ready::<S>).layer(Extension(readiness)));
    if face != Face::Admin {
        app = app.route(
            "/webhooks/{system}",
            post(webhooks::receive::<S>)
                .get(webhooks::challenge::<S>)
                .layer(DefaultBodyLimit::max(max_body))
                .layer(axum::middleware::from_fn_with_state(guard, guard::webhook)),
        );
    }
    if face != Face::Public {
        let mut api = Router::new();
        for (_, path, role, handler) in api_routes::<S>() {
            let needs = axum::middleware::from_fn_with_state((state.clone(), role), auth::require::<S>);
            api = api.route(path, handler.route_layer(needs));
        }
        app = app.merge(api).merge(console::router(state.clone()));
    }
    app.fallback(|| async { api::Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            api::Problem::new(StatusCode::METHOD_NOT_ALLOWED, "the route does not take this method")
        })
        .with_state(state)
        .layer(Extension(ebay_keys))
        .layer(Extension(cookies))
        // Past it a request is answered 408; a webhook's write already queued still completes,
        // and the vendor's retry of it is a duplicate.
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
}
