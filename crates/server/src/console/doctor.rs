//! The doctor's checklist: the ten questions of the handoff checklist (`crate::doctor`, as
//! `handoff doctor` and `GET /api/v1/doctor` answer them) over a window of measured traffic.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use handoff_store::Store;
use serde::Deserialize;

use super::pages::{Chrome, render, shown_text, store_failed};
use super::session::User;
use crate::AppState;
use crate::api::doctor::MAX_WINDOW_HOURS;

/// The window when none is asked for: a week.
const DEFAULT_HOURS: u32 = 7 * 24;

struct Question {
    number: u8,
    question: &'static str,
    verdict: &'static str,
    /// The badge's class: a gap as an open exception, ok as a resolved one.
    badge: &'static str,
    summary: String,
    evidence: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/doctor.html")]
struct Page {
    c: Chrome,
    hours: u32,
    since: String,
    measured: String,
    tally: String,
    questions: Vec<Question>,
}

#[derive(Deserialize)]
pub(crate) struct Window {
    /// How far back measured traffic counts.
    hours: Option<u32>,
}

pub(crate) async fn page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    Query(q): Query<Window>,
) -> Response {
    let hours = q.hours.unwrap_or(DEFAULT_HOURS).clamp(1, MAX_WINDOW_HOURS);
    let checklist = match crate::api::doctor::checklist(&state, hours).await {
        Ok(c) => c,
        Err(e) => return store_failed(e),
    };
    let questions = checklist
        .questions
        .iter()
        .map(|q| Question {
            number: q.number,
            question: q.question,
            verdict: q.verdict.as_str(),
            badge: match q.verdict {
                crate::doctor::Verdict::Ok => "state-resolved",
                crate::doctor::Verdict::Warn => "state-acknowledged",
                crate::doctor::Verdict::Gap => "state-open",
            },
            summary: shown_text(&user, &q.summary),
            evidence: q.evidence.iter().map(|e| shown_text(&user, e)).collect(),
        })
        .collect();
    let tally: Vec<String> = checklist.verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    render(Page {
        c: Chrome::new(&user, "Doctor"),
        hours,
        since: checklist.since.strftime("%Y-%m-%d %H:%M").to_string(),
        measured: format!("{} commands, {} exceptions", checklist.commands, checklist.exceptions),
        tally: tally.join(", "),
        questions,
    })
}
