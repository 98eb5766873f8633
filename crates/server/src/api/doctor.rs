//! The doctor's answers: the ten questions of the handoff checklist (`crate::doctor`, which
//! `handoff doctor` prints), from the contract, the hub's mappings and the traffic measured.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use handoff_store::Store;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Filters, Problem, shown};
use crate::AppState;
use crate::auth::Caller;
use crate::doctor::{self, Checklist, Measured};

/// The longest window the doctor measures: a year, in hours.
pub(crate) const MAX_WINDOW_HOURS: u32 = 366 * 24;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DoctorQuery {
    /// How far back measured traffic counts, in hours (a week when absent).
    #[param(minimum = 1, maximum = 8784)]
    window_hours: Option<u32>,
}

/// One question of the checklist, answered.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DoctorAnswer {
    pub number: u8,
    pub question: String,
    /// `ok`, `warn` or `gap`.
    pub verdict: String,
    pub summary: String,
    pub evidence: Vec<String>,
}

/// The checklist answered: each question with its verdict and evidence, and the tally.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DoctorReport {
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
    /// Commands measured in the window.
    pub commands: u64,
    /// Exceptions touched in the window (the newest 100,000 at most are read).
    pub exceptions: usize,
    pub questions: Vec<DoctorAnswer>,
    /// How many questions got each verdict.
    pub verdicts: BTreeMap<String, usize>,
}

impl From<Checklist> for DoctorReport {
    fn from(c: Checklist) -> Self {
        DoctorReport {
            since: c.since,
            commands: c.commands,
            exceptions: c.exceptions,
            questions: c
                .questions
                .into_iter()
                .map(|q| DoctorAnswer {
                    number: q.number,
                    question: q.question.to_owned(),
                    verdict: q.verdict.as_str().to_owned(),
                    summary: q.summary,
                    evidence: q.evidence,
                })
                .collect(),
            verdicts: c.verdicts.into_iter().map(|(v, n)| (v.to_owned(), n)).collect(),
        }
    }
}

/// The checklist as it stands: what the contract promises, and what the hub measured.
#[utoipa::path(operation_id = "doctor", get, path = "/api/v1/doctor", tag = "doctor", params(DoctorQuery),
    responses((status = 200, body = DoctorReport), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn answers<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Filters(q): Filters<DoctorQuery>,
) -> Result<Response, Problem> {
    let hours = q.window_hours.unwrap_or(7 * 24);
    if !(1..=MAX_WINDOW_HOURS).contains(&hours) {
        return Err(Problem::bad_request(format!("window_hours {hours} is not 1 to {MAX_WINDOW_HOURS}")));
    }
    let mut report = DoctorReport::from(checklist(&state, hours).await?);
    if !caller.sees_personal_data() {
        // Evidence is free text (a cluster's example names what its members name).
        for q in &mut report.questions {
            q.summary = crate::console::pages::masked_text(&q.summary);
            q.evidence = q.evidence.iter().map(|e| crate::console::pages::masked_text(e)).collect();
        }
    }
    Ok(shown(&caller, report))
}

/// The checklist over the last `hours`, for the API and the console's page.
pub(crate) async fn checklist<S: Store>(state: &AppState<S>, hours: u32) -> handoff_store::Result<Checklist> {
    let since = state.clock.now() - SignedDuration::from_hours(i64::from(hours));
    let measured = Measured::read(&state.store, since).await?;
    Ok(doctor::checklist(&state.contract, Ok(&state.mappings), Some(measured), since))
}
