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

/// The longest window, in hours (a leap year).
const MAX_HOURS: u32 = 8784;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthQuery {
    /// The window's length in hours, 1 to 8,784 (a leap year; 24 when absent).
    #[param(minimum = 1, maximum = 8784)]
    hours: Option<u32>,
    /// The window's end (RFC 3339; now when absent).
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
    // A length rather than a start: no window can end before it starts.
    let hours = q.hours.unwrap_or(24);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(Problem::bad_request(format!("hours must be 1 to {MAX_HOURS}")));
    }
    let to = q.to.unwrap_or_else(|| state.clock.now());
    let from = to
        .checked_sub(SignedDuration::from_hours(i64::from(hours)))
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let window = HealthWindow { from, to, buckets: q.buckets.unwrap_or(24), flow: q.flow };
    let health: Vec<FlowHealth> = state.store.flow_health(window).await?.into_iter().map(FlowHealth::from).collect();
    Ok(shown(&caller, health))
}
