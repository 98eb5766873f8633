//! Clusters: exceptions with one cause, grouped and summed by the store.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use handoff_model::ExceptionState;
use handoff_store::{ClusterFilter, Store};
use serde::Deserialize;
use utoipa::IntoParams;

use super::types::ClusterPage;
use super::{Filters, Problem, shown};
use crate::AppState;
use crate::auth::Caller;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterQuery {
    /// Member states, comma-separated (`open,acknowledged` when absent: what an action acts on).
    #[param(
        pattern = "^(open|acknowledged|resolved|auto_resolved|ignored)(,(open|acknowledged|resolved|auto_resolved|ignored))*$"
    )]
    states: Option<String>,
    pattern: Option<String>,
    flow: Option<String>,
    channel: Option<String>,
    /// The `next` of the previous page.
    #[param(pattern = "^[0-9]{1,18}\\.[0-9]{1,18}\\.c[0-9a-f]{8}$")]
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Clusters largest first, with their blast radius: orders and money per currency.
#[utoipa::path(operation_id = "list_clusters", get, path = "/api/v1/clusters", tag = "exceptions", params(ClusterQuery),
    responses((status = 200, body = ClusterPage), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Filters(q): Filters<ClusterQuery>,
) -> Result<Response, Problem> {
    let states = match q.states.as_deref() {
        None => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|name| {
                ExceptionState::parse(name.trim())
                    .ok_or_else(|| Problem::bad_request(format!("{name:?} is not an exception state")))
            })
            .collect::<Result<_, _>>()?,
    };
    let filter = ClusterFilter {
        states,
        pattern: q.pattern,
        flow: q.flow,
        channel: q.channel,
        cursor: q.cursor,
        limit: super::page_limit(q.limit)?,
    };
    let page = state.store.search_clusters(filter).await?;
    Ok(shown(&caller, ClusterPage::from(page)))
}
