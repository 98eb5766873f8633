//! Commands of the outbox, dead letters and their replay.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use handoff_model::CommandState;
use handoff_store::{CommandFilter, Replay, Store};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::types::CommandPage;
use super::{Filters, Params, Problem, shown};
use crate::AppState;
use crate::auth::Caller;
use crate::console::dry_run::{self, ReplayMapping};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandQuery {
    /// `pending`, `in_flight`, `acknowledged`, `dead_lettered`, `superseded` or `abandoned`.
    #[param(value_type = Option<String>, pattern = "^(pending|in_flight|acknowledged|dead_lettered|superseded|abandoned)$")]
    state: Option<CommandState>,
    target: Option<String>,
    order_ref: Option<String>,
    /// The `next` of the previous page.
    #[param(pattern = "^[0-9]{1,18}\\.[0-9]{1,18}$")]
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Commands, newest first.
#[utoipa::path(operation_id = "list_commands", get, path = "/api/v1/commands", tag = "commands", params(CommandQuery),
    responses((status = 200, body = CommandPage), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Filters(q): Filters<CommandQuery>,
) -> Result<Response, Problem> {
    let filter = CommandFilter {
        state: q.state,
        target: q.target,
        order_ref: q.order_ref,
        cursor: q.cursor,
        limit: super::page_limit(q.limit)?,
    };
    Ok(shown(&caller, CommandPage::from(state.store.search_commands(filter).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadLetterQuery {
    target: Option<String>,
    order_ref: Option<String>,
    /// The `next` of the previous page.
    #[param(pattern = "^[0-9]{1,18}\\.[0-9]{1,18}$")]
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Dead letters (commands in state `dead_lettered`), newest first.
#[utoipa::path(operation_id = "list_dead_letters", get, path = "/api/v1/dead-letters", tag = "commands", params(DeadLetterQuery),
    responses((status = 200, body = CommandPage), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn dead_letters<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Filters(q): Filters<DeadLetterQuery>,
) -> Result<Response, Problem> {
    let filter = CommandFilter {
        state: Some(CommandState::DeadLettered),
        target: q.target,
        order_ref: q.order_ref,
        cursor: q.cursor,
        limit: super::page_limit(q.limit)?,
    };
    Ok(shown(&caller, CommandPage::from(state.store.search_commands(filter).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayQuery {
    /// The mapping version a dead letter that went through a mapping is made with: `as-ran`
    /// (the version its last attempt ran with) or `latest` (the default).
    #[param(pattern = "^(as-ran|latest)$")]
    mapping: Option<String>,
}

fn mapping(name: Option<&str>) -> Result<ReplayMapping, Problem> {
    match name {
        None | Some("latest") => Ok(ReplayMapping::Latest),
        Some("as-ran") => Ok(ReplayMapping::AsRan),
        Some(other) => Err(Problem::bad_request(format!("mapping {other:?} is not as-ran or latest"))),
    }
}

/// A dead letter put back in the queue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Replayed {
    /// How many dead letters went back (1).
    pub replayed: u64,
    /// `as-ran` or `latest`: what the payload is made with.
    pub mapping: String,
    /// The mapping version its last attempt ran with; absent when it went through none.
    pub ran: Option<String>,
}

/// Puts a dead letter back in the queue with a fresh retry budget, its payload made with the
/// mapping version it ran with (`mapping=as-ran`) or the latest (`mapping=latest`, the
/// default). Audited with the caller; `GET .../dry-run` shows the difference first.
#[utoipa::path(operation_id = "replay_dead_letter", post, path = "/api/v1/dead-letters/{id}/replay", tag = "commands",
    params(("id" = i64, Path, description = "The dead letter's command id"), ReplayQuery),
    responses((status = 200, body = Replayed), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn replay<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Params(id): Params<i64>,
    Filters(q): Filters<ReplayQuery>,
) -> Result<Json<Replayed>, Problem> {
    let choice = mapping(q.mapping.as_deref())?;
    let Some(command) = dry_run::dead_letter(&state.store, id).await? else {
        return Err(Problem::not_found(format!("no dead letter {id}")));
    };
    let now = state.clock.now();
    let ran = dry_run::pin(&state.store, &command, choice, caller.actor(), now).await?;
    match state.store.replay(Replay::One(id), caller.actor(), now).await? {
        0 => Err(Problem::not_found(format!("no dead letter {id}"))),
        replayed => Ok(Json(Replayed { replayed, mapping: choice.as_str().to_owned(), ran })),
    }
}

/// What replaying a dead letter would send now, against what the mapping that ran made of it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DryRun {
    pub id: i64,
    /// The mapping version its last attempt ran with; absent when it went through none.
    pub ran: Option<String>,
    /// The diff, one line each: the versions, each field that differs, and whether the latest
    /// passes the target's pre-flight check.
    pub lines: Vec<String>,
}

/// A dead letter's dry run, through the mappings the hub runs with: nothing is replayed.
#[utoipa::path(operation_id = "dry_run_dead_letter", get, path = "/api/v1/dead-letters/{id}/dry-run", tag = "commands",
    params(("id" = i64, Path, description = "The dead letter's command id")),
    responses((status = 200, body = DryRun), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn dry_run<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Params(id): Params<i64>,
) -> Result<Response, Problem> {
    let Some(command) = dry_run::dead_letter(&state.store, id).await? else {
        return Err(Problem::not_found(format!("no dead letter {id}")));
    };
    let ran = dry_run::ran_with(&state.store, &command).await?;
    let lines = dry_run::dry_run(&state.contract, &state.mappings, &command, ran.as_deref()).map_err(|e| {
        tracing::error!(message = "dry run failed", command = id, error = %e);
        Problem::internal(format!("the dry run of dead letter {id} failed"))
    })?;
    Ok(shown(&caller, DryRun { id, ran, lines }))
}
