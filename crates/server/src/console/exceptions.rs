//! One exception: its evidence pack (the rule's evidence, the suggested action, the order's
//! timeline) and the moves a person may make on it.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use handoff_model::ExceptionState;
use serde::Deserialize;

use super::pages::{self, Chrome, render, shown_json, store_failed};
use super::queue::{Move, Row};
use super::session::User;
use crate::AppState;
use handoff_store::Store;

#[derive(Template)]
#[template(path = "console/exception.html")]
struct Page {
    c: Chrome,
    x: Row,
    field: String,
    mapping: String,
    command_id: Option<i64>,
    evidence: String,
    action: String,
    /// The moves this exception allows now: (value, label).
    moves: Vec<(&'static str, &'static str)>,
    timeline: String,
}

#[derive(Deserialize)]
pub(crate) struct Notice {
    notice: Option<String>,
}

pub(crate) async fn page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    Path(id): Path<i64>,
    Query(q): Query<Notice>,
) -> Response {
    let pack = match handoff_engine::actions::evidence(&state.store, id).await {
        Ok(Some(pack)) => pack,
        Ok(None) => return pages::not_found(&format!("exception {id}")),
        Err(e) => return store_failed(e),
    };
    let x = &pack.exception;
    let from = ExceptionState::parse(&x.state);
    let mut moves = Vec::new();
    for (to, label) in [
        (ExceptionState::Acknowledged, "acknowledge"),
        (ExceptionState::Resolved, "resolve"),
        (ExceptionState::Ignored, "ignore"),
    ] {
        if from.is_some_and(|f| f.person_may_move(to)) {
            moves.push((to.as_str(), label));
        }
    }
    if Move::Replay.preview(x).0 {
        moves.push(("replay", "replay the dead letter"));
    }
    // The suggested action (a dead letter's is its replay, offered above).
    if x.command_id.is_none() && Move::TakeAction.preview(x).0 {
        moves.push(("take_action", "take the suggested action (preview first)"));
    }
    let masked = |v: &serde_json::Value| if v.is_null() { String::new() } else { shown_json(&user, &v.to_string()) };
    render(Page {
        c: Chrome::new(&user, "Queue").with_notice(q.notice),
        x: Row::of(&user, x),
        field: x.field.clone().unwrap_or_default(),
        mapping: x.mapping.clone().unwrap_or_default(),
        command_id: x.command_id,
        evidence: masked(&pack.evidence),
        action: masked(&pack.action),
        moves,
        timeline: super::timeline::swimlanes(&pack.timeline, &user),
    })
}

/// One move on this exception (the form on its page): `to` and an optional `reason`.
pub(crate) async fn act<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<ActForm>,
) -> Response {
    let here = format!("/console/exceptions/{id}");
    let Some(action) = Move::parse(&form.to) else { return pages::done(&here, "choose what to do") };
    let x = match state.store.exception(id).await {
        Ok(Some(x)) => x,
        Ok(None) => return pages::not_found(&format!("exception {id}")),
        Err(e) => return store_failed(e),
    };
    let (acts, what) = action.preview(&x);
    if !acts {
        return pages::done(&here, &what);
    }
    let reason = form.reason.filter(|r| !r.trim().is_empty()).map(|r| r.trim().chars().take(500).collect());
    if action == Move::TakeAction {
        // Previewed first; confirmed through the bulk form, which comes back here.
        return super::queue::preview_one(&user, action, &x, reason);
    }
    let line = action.apply(&state, &user, &x, reason, false).await;
    pages::done(&here, &line)
}

#[derive(Deserialize)]
pub(crate) struct ActForm {
    to: String,
    reason: Option<String>,
}
