//! An order across systems: its swimlane timeline and its exceptions.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use handoff_store::Store;

use super::pages::{self, Chrome, render, store_failed};
use super::queue::Row;
use super::session::User;
use crate::AppState;

#[derive(Template)]
#[template(path = "console/order.html")]
struct Page {
    c: Chrome,
    order_ref: String,
    exceptions: Vec<Row>,
    timeline: String,
}

pub(crate) async fn page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    Path(order_ref): Path<String>,
) -> Response {
    let t = match state.store.order_timeline(order_ref.clone()).await {
        // An order known only by its exceptions (a rule's finding) still has a page.
        Ok(t) if t.is_empty() && t.exceptions.is_empty() => return pages::not_found(&format!("order {order_ref}")),
        Ok(t) => t,
        Err(e) => return store_failed(e),
    };
    render(Page {
        c: Chrome::new(&user, "Queue"),
        exceptions: t.exceptions.iter().map(|x| Row::of(&user, x)).collect(),
        timeline: super::timeline::swimlanes(&t, &user),
        order_ref,
    })
}
