//! `POST /webhooks/{system}`: record the event durably, then answer.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use handoff_connectors::http_json::{SourceError, parse_event};
use handoff_contract::ConnectorKind;
use handoff_store::{NewEvent, Recorded, Store};
use serde_json::json;

use crate::AppState;

pub(crate) async fn receive<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Path(system): Path<String>,
    body: Bytes,
) -> Response {
    let Some(source) = state.contract.systems.get(&system) else {
        let error = format!("no system named {system:?} in the contract");
        return (StatusCode::NOT_FOUND, Json(json!({ "error": error }))).into_response();
    };
    let event = match source.connector {
        ConnectorKind::HttpJson => parse_event(&body),
    };
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            let field = match &e {
                SourceError::Invalid(invalid) => Some(invalid.field),
                SourceError::Json(_) => None,
            };
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": e.to_string(), "field": field }))).into_response();
        }
    };
    let Ok(payload) = String::from_utf8(body.to_vec()) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "body is not UTF-8" }))).into_response();
    };
    let new = NewEvent {
        system,
        event_id: event.event_id.to_string(),
        kind: event.kind,
        order_ref: event.order_ref,
        received_at: state.clock.now(),
        payload,
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
