//! Orders: searched, and one order's timeline across systems.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use handoff_store::{OrderFilter, Store};
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;

use super::types::{OrderPage, OrderTimeline};
use super::{Filters, Params, Problem, shown};
use crate::AppState;
use crate::auth::Caller;

/// Filters of the order search; all given must match.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderQuery {
    /// A prefix of the order reference (then the page is in reference order, else newest first).
    reference: Option<String>,
    /// The customer's email, matched exactly (case aside).
    email: Option<String>,
    channel: Option<String>,
    /// `received`, `created` or `cancelled`.
    #[param(pattern = "^(received|created|cancelled)$")]
    state: Option<String>,
    /// First seen at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// First seen before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// The `next` of the previous page.
    #[param(pattern = "^-?[0-9]{1,18}\\..+$")]
    cursor: Option<String>,
    /// Rows of the page, 1 to 500 (50 when absent).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

#[utoipa::path(operation_id = "search_orders", get, path = "/api/v1/orders", tag = "orders", params(OrderQuery),
    responses((status = 200, body = OrderPage), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn search<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Filters(q): Filters<OrderQuery>,
) -> Result<Response, Problem> {
    let filter = OrderFilter {
        reference: q.reference,
        email: q.email,
        channel: q.channel,
        state: q.state,
        from: q.from,
        to: q.to,
        cursor: q.cursor,
        limit: super::page_limit(q.limit)?,
    };
    let page = state.store.search_orders(filter).await?;
    Ok(shown(&caller, OrderPage::from(page)))
}

/// One order across systems: events, commands, attempts, ledger, exceptions, audit, held bodies.
#[utoipa::path(operation_id = "order_timeline", get, path = "/api/v1/orders/{order_ref}", tag = "orders",
    params(("order_ref" = String, Path, description = "The order's reference at its source")),
    responses((status = 200, body = OrderTimeline), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn timeline<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Params(order_ref): Params<String>,
) -> Result<Response, Problem> {
    let t = state.store.order_timeline(order_ref.clone()).await?;
    if t.is_empty() {
        return Err(Problem::not_found(format!("no order {order_ref:?}")));
    }
    Ok(shown(&caller, OrderTimeline::from(t)))
}
