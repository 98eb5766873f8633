//! Exceptions: searched, one with its evidence pack, and a person's actions on one or many.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use handoff_model::ExceptionState;
use handoff_store::{ExceptionFilter, Moved, Store};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use utoipa::IntoParams;

use super::types::{ActionRequest, ActionResult, EvidencePack, ExceptionAction, ExceptionPage};
use super::{Body, Filters, Params, Problem, shown};
use crate::AppState;
use crate::auth::Caller;

/// Most exceptions one action request names.
pub(crate) const MAX_ACTION_IDS: usize = 500;

/// Longest reason kept in the audit log.
const MAX_REASON: usize = 1000;

/// Longest age a filter may name (ten years).
const MAX_AGE_SECONDS: i64 = 10 * 366 * 24 * 3600;

/// Filters of the exception search; all given must match.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExceptionQuery {
    /// A failure pattern (`dead_delivery`, `transform_mismatch`, ...).
    pattern: Option<String>,
    #[param(value_type = Option<String>, pattern = "^(open|acknowledged|resolved|auto_resolved|ignored)$")]
    state: Option<ExceptionState>,
    flow: Option<String>,
    channel: Option<String>,
    order_ref: Option<String>,
    /// Opened at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    opened_from: Option<Timestamp>,
    /// Opened before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    opened_to: Option<Timestamp>,
    /// Opened at least this many seconds ago (at most ten years).
    #[param(minimum = 0, maximum = 316224000)]
    older_than: Option<u64>,
    /// Opened at most this many seconds ago (at most ten years).
    #[param(minimum = 0, maximum = 316224000)]
    younger_than: Option<u64>,
    /// The `next` of the previous page.
    #[param(pattern = "^-?[0-9]{1,18}\\.[0-9]{1,18}$")]
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

fn ago(now: Timestamp, seconds: Option<u64>) -> Result<Option<Timestamp>, Problem> {
    let Some(s) = seconds else { return Ok(None) };
    let s = i64::try_from(s).ok().filter(|s| *s <= MAX_AGE_SECONDS);
    let s = s.ok_or_else(|| Problem::bad_request(format!("an age is at most {MAX_AGE_SECONDS} seconds")))?;
    Ok(now.checked_sub(SignedDuration::from_secs(s)).ok())
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    a.max(b).or(a).or(b)
}

fn earlier(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[utoipa::path(operation_id = "search_exceptions", get, path = "/api/v1/exceptions", tag = "exceptions", params(ExceptionQuery),
    responses((status = 200, body = ExceptionPage), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn search<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Filters(q): Filters<ExceptionQuery>,
) -> Result<Response, Problem> {
    let now = state.clock.now();
    // An age is a bound on the opening time: older than N opened before now - N.
    let filter = ExceptionFilter {
        pattern: q.pattern,
        state: q.state,
        flow: q.flow,
        channel: q.channel,
        order_ref: q.order_ref,
        opened_from: later(q.opened_from, ago(now, q.younger_than)?),
        opened_to: earlier(q.opened_to, ago(now, q.older_than)?),
        cursor: q.cursor,
        limit: super::page_limit(q.limit)?,
    };
    let page = state.store.search_exceptions(filter).await?;
    Ok(shown(&caller, ExceptionPage::from(page)))
}

/// One exception's evidence pack.
#[utoipa::path(operation_id = "exception_evidence", get, path = "/api/v1/exceptions/{id}", tag = "exceptions",
    params(("id" = i64, Path, description = "The exception's id")),
    responses((status = 200, body = EvidencePack), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn evidence<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Params(id): Params<i64>,
) -> Result<Response, Problem> {
    match handoff_engine::actions::evidence(&state.store, id).await? {
        Some(pack) => Ok(shown(&caller, EvidencePack::from(pack))),
        None => Err(Problem::not_found(format!("no exception {id}"))),
    }
}

/// Acknowledge, resolve, ignore, or take the suggested resolution action, on 1 to 500
/// exceptions; each is audited with the caller. One answer per id, in the order given.
#[utoipa::path(operation_id = "act_on_exceptions", post, path = "/api/v1/exceptions/actions", tag = "exceptions", request_body = ActionRequest,
    responses((status = 200, body = Vec<ActionResult>), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn act<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Body(request): Body<ActionRequest>,
) -> Result<Response, Problem> {
    if request.ids.is_empty() || request.ids.len() > MAX_ACTION_IDS {
        return Err(Problem::bad_request(format!("name 1 to {MAX_ACTION_IDS} exception ids")));
    }
    if request.reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON) {
        return Err(Problem::bad_request(format!("a reason is at most {MAX_REASON} characters")));
    }
    let mut results = Vec::with_capacity(request.ids.len());
    for &id in &request.ids {
        results.push(act_on(&state, &caller, &request, id).await?);
    }
    Ok(shown(&caller, results))
}

async fn act_on<S: Store + Clone>(
    state: &AppState<S>,
    caller: &Caller,
    request: &ActionRequest,
    id: i64,
) -> Result<ActionResult, Problem> {
    let now = state.clock.now();
    let result = |outcome: &str, state: Option<String>, lines: Vec<String>| ActionResult {
        id,
        outcome: outcome.to_owned(),
        state,
        queued: Vec::new(),
        lines,
    };
    let to = match request.action {
        ExceptionAction::Acknowledge => ExceptionState::Acknowledged,
        ExceptionAction::Resolve => ExceptionState::Resolved,
        ExceptionAction::Ignore => ExceptionState::Ignored,
        ExceptionAction::TakeAction => {
            let taken = handoff_engine::actions::take(
                &state.store,
                &state.contract,
                &state.targets,
                id,
                &caller.actor(),
                request.approve,
                now,
            )
            .await;
            return match taken {
                Ok(out) => {
                    let after = state.store.exception(id).await?.map(|x| x.state);
                    Ok(ActionResult { queued: out.queued, ..result("done", after, out.lines) })
                }
                Err(handoff_engine::actions::ActionError::NotFound(_)) => {
                    Ok(result("not_found", None, vec![format!("no exception {id}")]))
                }
                Err(handoff_engine::actions::ActionError::Store(e)) => Err(e.into()),
                Err(e) => {
                    let now_state = state.store.exception(id).await?.map(|x| x.state);
                    Ok(result("refused", now_state, vec![e.to_string()]))
                }
            };
        }
    };
    match state.store.move_exception(id, to, caller.actor(), request.reason.clone(), now).await? {
        Moved::Done(x) => Ok(result("done", Some(x.state), vec![format!("exception {id} is {}", to.as_str())])),
        Moved::NotFound => Ok(result("not_found", None, vec![format!("no exception {id}")])),
        Moved::Refused { from } => {
            let line = format!("exception {id} is {from}: it cannot be moved to {}", to.as_str());
            Ok(result("refused", Some(from), vec![line]))
        }
    }
}
