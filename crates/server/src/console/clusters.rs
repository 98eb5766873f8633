//! Clusters of open and acknowledged exceptions, grouped and summed by the store, with their
//! blast radius (orders and money per currency), each with a form that previews, then takes,
//! one move on every member.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use handoff_engine::clusters::ClusterKey;
use handoff_model::ExceptionState;
use handoff_store::{ClusterFilter, ClusterRow, ExceptionFilter, ExceptionRow, Store};
use serde::Deserialize;

use super::pages::{self, Chrome, render, shown_text, store_failed};
use super::session::User;
use crate::AppState;

/// Clusters a page lists.
const LISTED: usize = 100;
/// Pages of clusters searched for one by its id.
const SEARCHED_PAGES: usize = 20;
/// Exceptions read looking for a cluster's members.
const SCANNED_MEMBERS: usize = 100_000;

/// Cluster `id`, if it is among the clusters of open and acknowledged exceptions.
async fn find<S: Store>(store: &S, id: &str) -> handoff_store::Result<Option<ClusterRow>> {
    let mut cursor = None;
    for _ in 0..SEARCHED_PAGES {
        let page = store
            .search_clusters(ClusterFilter { cursor, limit: handoff_store::search::MAX_PAGE, ..Default::default() })
            .await?;
        if let Some(found) = page.rows.into_iter().find(|c| c.id == id) {
            return Ok(Some(found));
        }
        let Some(next) = page.next else { return Ok(None) };
        cursor = Some(next);
    }
    Ok(None)
}

/// The members of cluster `id` an action would act on (open and acknowledged, at most one more
/// than a bulk move takes, so the caller can refuse), or `None` when there is no such cluster.
pub(crate) async fn members<S: Store>(store: &S, id: &str) -> handoff_store::Result<Option<Vec<ExceptionRow>>> {
    let Some(cluster) = find(store, id).await? else { return Ok(None) };
    let mut members = Vec::new();
    for state in [ExceptionState::Open, ExceptionState::Acknowledged] {
        let mut cursor = None;
        let mut scanned = 0;
        loop {
            let filter = ExceptionFilter {
                pattern: Some(cluster.pattern.clone()),
                state: Some(state),
                flow: cluster.flow.clone(),
                channel: cluster.channel.clone(),
                cursor,
                limit: handoff_store::search::MAX_PAGE,
                ..Default::default()
            };
            let page = store.search_exceptions(filter).await?;
            scanned += page.rows.len();
            members.extend(page.rows.into_iter().filter(|x| ClusterKey::of(x).id() == id));
            if members.len() > super::queue::MAX_BULK || scanned >= SCANNED_MEMBERS {
                return Ok(Some(members));
            }
            let Some(next) = page.next else { break };
            cursor = Some(next);
        }
    }
    Ok(Some(members))
}

struct Shown {
    id: String,
    pattern: String,
    flow: String,
    field: String,
    channel: String,
    mapping: String,
    exceptions: u64,
    orders: u64,
    money: Vec<(String, String)>,
    last_seen: String,
    example: String,
}

#[derive(Template)]
#[template(path = "console/clusters.html")]
struct Page {
    c: Chrome,
    clusters: Vec<Shown>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct Q {
    after: Option<String>,
}

pub(crate) async fn page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    Query(q): Query<Q>,
) -> Response {
    let filter = ClusterFilter { cursor: q.after.filter(|a| !a.is_empty()), limit: LISTED, ..Default::default() };
    let page = match state.store.search_clusters(filter).await {
        Ok(page) => page,
        Err(handoff_store::StoreError::Invalid(why)) => return pages::not_found(&why),
        Err(e) => return store_failed(e),
    };
    let shown = page
        .rows
        .iter()
        .map(|c| Shown {
            id: c.id.clone(),
            pattern: c.pattern.clone(),
            flow: c.flow.clone().unwrap_or_default(),
            field: c.field.clone().unwrap_or_default(),
            channel: c.channel.clone().unwrap_or_default(),
            mapping: c.mapping.clone().unwrap_or_default(),
            exceptions: c.exceptions,
            orders: c.orders,
            money: c.money.iter().map(|(cur, amount)| (amount.clone(), cur.clone())).collect(),
            last_seen: c.last_seen.strftime("%Y-%m-%d %H:%M").to_string(),
            example: shown_text(&user, &c.example),
        })
        .collect();
    let next = page.next.map(|n| format!("/console/clusters?after={}", pages::segment(&n)));
    render(Page { c: Chrome::new(&user, "Clusters"), clusters: shown, next })
}
