//! The JSON API under `/api/v1`: what the CLI shows, for dashboards and scripts.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use handoff_store::{QuarantineState, Replay, Store};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::Caller;

/// Rows any list answers with at most.
const MAX_LIST: usize = 1000;

/// An answer about orders, with personal data masked for a caller who may not see it (see
/// `handoff_model::personal`).
fn shown<T: serde::Serialize>(caller: &Caller, answer: T) -> Response {
    match serde_json::to_value(answer) {
        Ok(mut v) => {
            if !caller.sees_personal_data() {
                handoff_model::personal::mask(&mut v);
            }
            Json(v).into_response()
        }
        Err(e) => {
            tracing::error!(message = "answer not serialisable", error = %e);
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "answer not serialisable" }))).into_response()
        }
    }
}

fn internal(error: handoff_store::StoreError) -> Response {
    tracing::error!(message = "store query failed", error = %error);
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "store unavailable" }))).into_response()
}

/// Ready while the store answers and every part of the hub keeps beating (`ready`); the
/// writer's queue is shown, not judged: a full queue refuses webhooks, it does not stop the hub.
pub(crate) async fn ready<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(readiness): Extension<Arc<crate::ready::Readiness>>,
) -> Response {
    if let Err(e) = state.store.command_counts().await {
        return internal(e);
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

pub(crate) async fn order<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Path(order_ref): Path<String>,
) -> Response {
    match state.store.order_timeline(order_ref.clone()).await {
        Ok(t) if t.is_empty() => {
            (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no order {order_ref:?}") }))).into_response()
        }
        Ok(t) => shown(&caller, t),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ExceptionQuery {
    /// An unknown state is a 400 naming the states there are.
    state: Option<handoff_model::ExceptionState>,
    limit: Option<usize>,
}

pub(crate) async fn exceptions<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Query(q): Query<ExceptionQuery>,
) -> Response {
    match state.store.exceptions(q.state, q.limit.unwrap_or(100).min(MAX_LIST)).await {
        Ok(rows) => shown(&caller, rows),
        Err(e) => internal(e),
    }
}

pub(crate) async fn dead_letters<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
) -> Response {
    match state.store.dead_letters(MAX_LIST).await {
        Ok(rows) => shown(&caller, rows),
        Err(e) => internal(e),
    }
}

pub(crate) async fn replay<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<i64>,
) -> Response {
    match state.store.replay(Replay::One(id), caller.actor(), state.clock.now()).await {
        Ok(0) => (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no dead letter {id}") }))).into_response(),
        Ok(n) => Json(json!({ "replayed": n })).into_response(),
        Err(e) => internal(e),
    }
}

pub(crate) async fn outbox<S: Store + Clone>(State(state): State<Arc<AppState<S>>>) -> Response {
    let counts = async {
        // Events recorded but not yet planned are work too (bounded count: a backlog indicator).
        // Read before the commands: an event planned in between then shows as its commands,
        // never as nothing.
        let unplanned = state.store.unprocessed_events(1000).await?.len() as u64;
        let mut counts: std::collections::BTreeMap<String, u64> =
            state.store.command_counts().await?.into_iter().collect();
        if unplanned > 0 {
            counts.insert("unplanned_events".into(), unplanned);
        }
        Ok::<_, handoff_store::StoreError>(counts)
    };
    match counts.await {
        Ok(counts) => Json(counts).into_response(),
        Err(e) => internal(e),
    }
}

/// Payload drift per vendor, resource and API version, and what was raised.
pub(crate) async fn drift<S: Store + Clone>(State(state): State<Arc<AppState<S>>>) -> Response {
    let (sources, raised) = state.drift.report();
    let sources: Vec<_> =
        sources.into_iter().map(|(source, stats)| json!({"source": source, "stats": stats})).collect();
    Json(json!({ "sources": sources, "raised": raised })).into_response()
}

/// One exception's evidence pack: the exception, the rule's evidence and the order's timeline.
pub(crate) async fn exception<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<i64>,
) -> Response {
    match handoff_engine::actions::evidence(&state.store, id).await {
        Ok(Some(pack)) => shown(&caller, pack),
        Ok(None) => (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no exception {id}") }))).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ClusterQuery {
    state: Option<handoff_model::ExceptionState>,
}

/// Exceptions clustered by pattern, flow, field, channel, mapping and error fingerprint,
/// largest first.
pub(crate) async fn clusters<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Query(q): Query<ClusterQuery>,
) -> Response {
    match state.store.exceptions(q.state, CLUSTERED).await {
        Ok(rows) => shown(&caller, handoff_engine::clusters::clusters(&rows)),
        Err(e) => internal(e),
    }
}

/// Exceptions clustered at most (the newest).
const CLUSTERED: usize = 100_000;

#[derive(Deserialize)]
pub(crate) struct QuarantineQuery {
    state: Option<String>,
    limit: Option<usize>,
}

/// Held bodies (newest first, without their bytes) and the quarantine's depth per system.
pub(crate) async fn quarantine<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Query(q): Query<QuarantineQuery>,
) -> Response {
    let which = match q.state.as_deref().map(str::parse::<QuarantineState>).transpose() {
        Ok(which) => which,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
    };
    let listed = async {
        let depth = state.store.quarantine_depth().await?;
        let rows = state.store.quarantined(which, q.limit.unwrap_or(100).min(MAX_LIST)).await?;
        Ok::<_, handoff_store::StoreError>((depth, rows))
    };
    match listed.await {
        Ok((depth, rows)) => {
            let held: u64 = depth.iter().map(|(_, n)| n).sum();
            let by_system: std::collections::BTreeMap<_, _> = depth.into_iter().collect();
            shown(&caller, json!({ "held": held, "by_system": by_system, "rows": rows }))
        }
        Err(e) => internal(e),
    }
}
