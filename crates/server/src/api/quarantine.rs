//! Quarantine: vendor bodies no reader could map, held until a fixed reader replays them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use handoff_store::{QuarantineFilter, QuarantineState, Store};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::types::HeldBody;
use super::{Filters, Problem, shown};
use crate::AppState;
use crate::auth::Caller;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuarantineQuery {
    /// `held` or `replayed`.
    #[param(pattern = "^(held|replayed)$")]
    state: Option<String>,
    /// The `next` of the previous page.
    #[param(pattern = "^[0-9]{1,18}\\.[0-9]{1,18}$")]
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// The quarantine's depth and a keyset page of its held bodies (without their bytes), newest
/// first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QuarantineView {
    /// Bodies still held.
    pub held: u64,
    pub by_system: BTreeMap<String, u64>,
    pub items: Vec<HeldBody>,
    /// The cursor of the next page; absent on the last.
    pub next: Option<String>,
}

#[utoipa::path(operation_id = "list_quarantine", get, path = "/api/v1/quarantine", tag = "quarantine", params(QuarantineQuery),
    responses((status = 200, body = QuarantineView), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Filters(q): Filters<QuarantineQuery>,
) -> Result<Response, Problem> {
    let which = q.state.as_deref().map(str::parse::<QuarantineState>).transpose().map_err(Problem::bad_request)?;
    let filter = QuarantineFilter { state: which, cursor: q.cursor, limit: super::page_limit(q.limit)? };
    let depth = state.store.quarantine_depth().await?;
    let page = state.store.search_quarantine(filter).await?;
    let view = QuarantineView {
        held: depth.iter().map(|(_, n)| n).sum(),
        by_system: depth.into_iter().collect(),
        items: page.rows.into_iter().map(HeldBody::from).collect(),
        next: page.next,
    };
    Ok(shown(&caller, view))
}
