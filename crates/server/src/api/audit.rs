//! The audit log: every action with its actor.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use handoff_store::{AuditFilter, Store};
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;

use super::types::AuditPage;
use super::{Filters, Problem, shown};
use crate::AppState;
use crate::auth::Caller;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Who acted (`token:NAME`, `engine`, `rule:PATTERN`, ...).
    actor: Option<String>,
    order_ref: Option<String>,
    /// At or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// Before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// The `next` of the previous page.
    #[param(pattern = "^-?[0-9]{1,18}\\.[0-9]{1,18}$")]
    cursor: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// The audit log, newest first.
#[utoipa::path(operation_id = "list_audit", get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list<S: Store + Clone>(
    Extension(caller): Extension<Caller>,
    State(state): State<Arc<AppState<S>>>,
    Filters(q): Filters<AuditQuery>,
) -> Result<Response, Problem> {
    let filter = AuditFilter {
        actor: q.actor,
        order_ref: q.order_ref,
        from: q.from,
        to: q.to,
        cursor: q.cursor,
        limit: super::page_limit(q.limit)?,
    };
    Ok(shown(&caller, AuditPage::from(state.store.search_audit(filter).await?)))
}
