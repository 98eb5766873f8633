//! `POST /webhooks/{system}`: record the event durably, then answer.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use handoff_connectors::{Inbound, SourceError};
use handoff_store::{Recorded, Store};
use serde_json::json;

use crate::AppState;

pub(crate) async fn receive<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Path(system): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(source) = state.contract.systems.get(&system) else {
        let error = format!("no system named {system:?} in the contract");
        return (StatusCode::NOT_FOUND, Json(json!({ "error": error }))).into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let new = match handoff_connectors::inbound(&system, source, header, &body, state.clock.now()) {
        Ok(Inbound::Event(new)) => new,
        Ok(Inbound::Ping) => return (StatusCode::OK, Json(json!({ "status": "ping" }))).into_response(),
        Err(e) => {
            let status = match e {
                SourceError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                _ => StatusCode::BAD_REQUEST,
            };
            let refusal = json!({ "error": e.to_string(), "field": e.field() });
            return (status, Json(refusal)).into_response();
        }
    };
    match state.store.record_event(new).await {
        Ok(Recorded::New(row)) => {
            (StatusCode::ACCEPTED, Json(json!({ "status": "recorded", "event": row }))).into_response()
        }
        Ok(Recorded::Duplicate(row)) => {
            (StatusCode::OK, Json(json!({ "status": "duplicate", "event": row }))).into_response()
        }
        Err(error) => {
            tracing::error!(message = "recording a webhook failed", error = %error);
            // 503 tells the sender nothing was kept and to try again.
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "not recorded; retry" }))).into_response()
        }
    }
}
