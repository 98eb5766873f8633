//! Flow health over time.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use handoff_store::{HealthWindow, Store};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use utoipa::IntoParams;

use super::types::FlowHealth;
use super::{Filters, Problem, shown};
use crate::AppState;
use crate::auth::Caller;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthQuery {
    /// The window's start (RFC 3339; 24 hours before `to` when absent).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// The window's end (RFC 3339; now when absent); it must be after `from`.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// Buckets the window is split into, 1 to 200 (24 when absent).
    #[param(minimum = 1, maximum = 200)]
    buckets: Option<usize>,
    flow: Option<String>,
}

/// Each flow's acknowledgment rate, latency percentiles, retries and dead letters per bucket of
/// the commands created in it, and its dead letters waiting now.
#[utoipa::path(operation_id = "flow_health", get, path = "/api/v1/flows/health", tag = "flows", params(HealthQuery),
    responses((status = 200, body = Vec<FlowHealth>), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn health<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Filters(q): Filters<HealthQuery>,
) -> Result<Response, Problem> {
    let to = q.to.unwrap_or_else(|| state.clock.now());
    let from = match q.from {
        Some(from) => from,
        None => to.checked_sub(SignedDuration::from_hours(24)).map_err(|e| Problem::bad_request(e.to_string()))?,
    };
    let window = HealthWindow { from, to, buckets: q.buckets.unwrap_or(24), flow: q.flow };
    let health: Vec<FlowHealth> = state.store.flow_health(window).await?.into_iter().map(FlowHealth::from).collect();
    Ok(shown(&caller, health))
}
