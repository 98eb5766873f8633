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

/// How many dead letters a replay put back in the queue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Replayed {
    pub replayed: u64,
}

/// Puts a dead letter back in the queue with a fresh retry budget; its payload is made again
/// with the latest mapping when it is sent. Audited with the caller.
#[utoipa::path(operation_id = "replay_dead_letter", post, path = "/api/v1/dead-letters/{id}/replay", tag = "commands",
    params(("id" = i64, Path, description = "The dead letter's command id")),
    responses((status = 200, body = Replayed), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn replay<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Params(id): Params<i64>,
) -> Result<Json<Replayed>, Problem> {
    match state.store.replay(Replay::One(id), caller.actor(), state.clock.now()).await? {
        0 => Err(Problem::not_found(format!("no dead letter {id}"))),
        replayed => Ok(Json(Replayed { replayed })),
    }
}
