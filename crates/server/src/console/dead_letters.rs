//! Dead letters: the list, one dead letter with its dry-run diff (what a replay would send now
//! against what the mapping that ran made of it), and its replay.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use handoff_store::{Command, Replay, Store};
use serde::Deserialize;

use super::dry_run;
use super::pages::{self, Chrome, render, segment, shown_json, shown_text, store_failed};
use super::session::User;
use crate::AppState;

/// Dead letters listed, oldest first.
const LISTED: usize = 500;

struct Shown {
    id: i64,
    order_ref: String,
    order_href: String,
    flow: String,
    target: String,
    kind: String,
    attempts: u32,
    updated_at: String,
    error: String,
}

impl Shown {
    fn of(user: &User, c: &Command) -> Shown {
        Shown {
            id: c.id,
            order_ref: c.order_ref.clone(),
            order_href: format!("/console/orders/{}", segment(&c.order_ref)),
            flow: c.flow.clone(),
            target: c.target.clone(),
            kind: c.kind.to_string(),
            attempts: c.attempts,
            updated_at: c.updated_at.strftime("%Y-%m-%d %H:%M").to_string(),
            error: c.last_error.as_deref().map(|e| shown_text(user, e)).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/dead_letters.html")]
struct List {
    c: Chrome,
    rows: Vec<Shown>,
}

#[derive(Deserialize)]
pub(crate) struct Notice {
    notice: Option<String>,
}

pub(crate) async fn list<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    Query(q): Query<Notice>,
) -> Response {
    match state.store.dead_letters(LISTED).await {
        Ok(rows) => render(List {
            c: Chrome::new(&user, "Dead letters").with_notice(q.notice),
            rows: rows.iter().map(|c| Shown::of(&user, c)).collect(),
        }),
        Err(e) => store_failed(e),
    }
}

#[derive(Template)]
#[template(path = "console/dead_letter.html")]
struct Page {
    c: Chrome,
    d: Shown,
    state: String,
    ran: String,
    diff: Vec<String>,
    payload: String,
    dead: bool,
}

pub(crate) async fn page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    Path(id): Path<i64>,
    Query(q): Query<Notice>,
) -> Response {
    let command = match dry_run::dead_letter(&state.store, id).await {
        Ok(Some(c)) => c,
        Ok(None) => return pages::not_found(&format!("dead letter {id} (replayed or settled already?)")),
        Err(e) => return store_failed(e),
    };
    let ran = match dry_run::ran_with(&state.store, &command).await {
        Ok(ran) => ran,
        Err(e) => return store_failed(e),
    };
    let diff = dry_run::dry_run(&state.contract, &state.mappings, &command, ran.as_deref())
        .unwrap_or_else(|e| vec![format!("the dry run failed: {e}")]);
    render(Page {
        c: Chrome::new(&user, "Dead letters").with_notice(q.notice),
        state: command.state.to_string(),
        ran: ran.unwrap_or_default(),
        diff: diff.iter().map(|l| shown_text(&user, l)).collect(),
        payload: shown_json(&user, &command.payload),
        dead: command.state == handoff_model::CommandState::DeadLettered,
        d: Shown::of(&user, &command),
    })
}

pub(crate) async fn replay<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    Path(id): Path<i64>,
) -> Response {
    match state.store.replay(Replay::One(id), user.actor(), state.clock.now()).await {
        Ok(0) => pages::done("/console/dead-letters", &format!("command {id} is not dead-lettered: nothing replayed")),
        Ok(_) => pages::done("/console/dead-letters", &format!("command {id} replayed with a fresh retry budget")),
        Err(e) => store_failed(e),
    }
}
