//! The operator's web console under `/console`: server-rendered pages (askama), forms that post
//! and redirect (readable and usable without JavaScript), htmx to submit them in place, every
//! asset embedded. A person logs in (`session`); each page's module reads the store and renders
//! its template in `templates/console/`. See docs/console.md.

mod assets;
mod audit;
mod clusters;
mod dead_letters;
mod doctor;
pub mod dry_run;
mod exceptions;
mod flows;
mod login;
mod order;
pub(crate) mod pages;
mod queue;
pub mod session;
#[cfg(test)]
mod tests;
mod timeline;

pub use login::create_link;

use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use axum::routing::{get, post};
use handoff_store::{Role, Store};

use crate::{AppState, GuardedRoute};

/// Every console route behind a login, with the role it needs: the one table the router is
/// built from and the access tests walk. Every POST also needs the session's CSRF token.
pub(crate) fn console_routes<S: Store + Clone>() -> Vec<GuardedRoute<S>> {
    use Role::{Operator, Viewer};
    vec![
        (Method::GET, "/console", Viewer, get(queue::page::<S>)),
        (Method::POST, "/console/exceptions/bulk", Operator, post(queue::bulk::<S>)),
        (Method::GET, "/console/exceptions/{id}", Viewer, get(exceptions::page::<S>)),
        (Method::POST, "/console/exceptions/{id}", Operator, post(exceptions::act::<S>)),
        (Method::GET, "/console/orders/{order_ref}", Viewer, get(order::page::<S>)),
        (Method::GET, "/console/clusters", Viewer, get(clusters::page::<S>)),
        (Method::GET, "/console/dead-letters", Viewer, get(dead_letters::list::<S>)),
        (Method::GET, "/console/dead-letters/{id}", Viewer, get(dead_letters::page::<S>)),
        (Method::POST, "/console/dead-letters/{id}/replay", Operator, post(dead_letters::replay::<S>)),
        (Method::GET, "/console/quarantine", Viewer, get(flows::quarantine::<S>)),
        (Method::GET, "/console/flows", Viewer, get(flows::page::<S>)),
        (Method::GET, "/console/drift", Viewer, get(flows::drift::<S>)),
        (Method::GET, "/console/audit", Viewer, get(audit::page::<S>)),
        (Method::GET, "/console/doctor", Viewer, get(doctor::page::<S>)),
        (Method::POST, "/console/logout", Viewer, post(login::logout::<S>)),
    ]
}

/// The console: its pages behind a login, and the login itself, login links and assets open.
pub(crate) fn router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router<Arc<AppState<S>>> {
    let mut console = Router::new();
    for (_, path, role, handler) in console_routes::<S>() {
        let needs = axum::middleware::from_fn_with_state((state.clone(), role), session::require::<S>);
        console = console.route(path, handler.route_layer(needs));
    }
    console
        .route("/console/login", get(login::form).post(login::submit::<S>))
        .route("/console/link/{key}", get(login::link::<S>))
        .route("/console/assets/{version}/{name}", get(assets::serve))
        .route("/", get(|| async { axum::response::Redirect::to("/console") }))
}
