//! The hub's own state: readiness, the outbox's backlog and payload drift.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use handoff_store::Store;
use serde_json::json;

use super::Problem;
use crate::AppState;

/// Ready while the store answers and every part of the hub keeps beating (`ready`); the
/// writer's queue is shown, not judged: a full queue refuses webhooks, it does not stop the hub.
pub(crate) async fn ready<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(readiness): Extension<Arc<crate::ready::Readiness>>,
) -> Response {
    if let Err(e) = state.store.command_counts().await {
        return Problem::from(e).into_response();
    }
    let failing = readiness.failing(std::time::Instant::now());
    let queue = state.store.writer_queue();
    if failing.is_empty() {
        return Json(json!({ "status": "ready", "writer_queue": queue })).into_response();
    }
    let error = failing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    tracing::warn!(message = "not ready", error = %error);
    let body = json!({ "status": "not ready", "error": error, "failing": failing, "writer_queue": queue });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Commands per state, and events recorded but not yet planned (`unplanned_events`, counted
/// up to 1,000): the backlog.
#[utoipa::path(operation_id = "outbox_backlog", get, path = "/api/v1/outbox", tag = "flows",
    responses((status = 200, body = BTreeMap<String, u64>)))]
pub(crate) async fn outbox<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
) -> Result<Json<BTreeMap<String, u64>>, Problem> {
    // Read before the commands: an event planned in between then shows as its commands, never
    // as nothing.
    let unplanned = state.store.count_unplanned(1000).await?;
    let mut counts: BTreeMap<String, u64> = state.store.command_counts().await?.into_iter().collect();
    if unplanned > 0 {
        counts.insert("unplanned_events".into(), unplanned);
    }
    Ok(Json(counts))
}

/// Payload drift per vendor, resource and API version, and what was raised.
#[utoipa::path(operation_id = "payload_drift", get, path = "/api/v1/drift", tag = "flows",
    responses((status = 200, body = Object)))]
pub(crate) async fn drift<S: Store + Clone>(State(state): State<Arc<AppState<S>>>) -> Json<serde_json::Value> {
    let (sources, raised) = state.drift.report();
    let sources: Vec<_> =
        sources.into_iter().map(|(source, stats)| json!({"source": source, "stats": stats})).collect();
    Json(json!({ "sources": sources, "raised": raised }))
}
