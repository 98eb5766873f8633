//! Clusters of exceptions with their blast radius (orders and money per currency), each with a
//! form that previews, then takes, one move on every member still open.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use handoff_engine::clusters::{self, Cluster};
use handoff_model::ExceptionState;
use handoff_store::{ExceptionRow, Store};

use super::pages::{Chrome, render, shown_text, store_failed};
use super::session::User;
use crate::AppState;

/// Exceptions clustered at most (the newest), as the API does.
const CLUSTERED: usize = 100_000;
/// Clusters listed.
const LISTED: usize = 100;

async fn clustered<S: Store>(store: &S) -> handoff_store::Result<Vec<Cluster>> {
    // Only exceptions a person can still act on: open and acknowledged.
    let mut rows = store.exceptions(Some(ExceptionState::Open), CLUSTERED).await?;
    rows.extend(store.exceptions(Some(ExceptionState::Acknowledged), CLUSTERED).await?);
    Ok(clusters::clusters(&rows))
}

/// The members of cluster `id` an action would act on, or `None` when there is no such cluster.
pub(crate) async fn members<S: Store>(store: &S, id: &str) -> handoff_store::Result<Option<Vec<ExceptionRow>>> {
    let all = clustered(store).await?;
    let Some(cluster) = clusters::find(&all, id) else { return Ok(None) };
    let mut rows = Vec::new();
    for member in cluster.actionable.iter().take(super::queue::MAX_BULK + 1) {
        if let Some(x) = store.exception(*member).await? {
            rows.push(x);
        }
    }
    Ok(Some(rows))
}

struct Shown {
    id: String,
    pattern: String,
    flow: String,
    field: String,
    channel: String,
    mapping: String,
    exceptions: usize,
    orders: usize,
    money: Vec<(String, String)>,
    last_seen: String,
    example: String,
}

#[derive(Template)]
#[template(path = "console/clusters.html")]
struct Page {
    c: Chrome,
    clusters: Vec<Shown>,
    total: usize,
}

pub(crate) async fn page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
) -> Response {
    let all = match clustered(&state.store).await {
        Ok(all) => all,
        Err(e) => return store_failed(e),
    };
    let shown = all
        .iter()
        .take(LISTED)
        .map(|c| Shown {
            id: c.id.clone(),
            pattern: c.key.pattern.clone(),
            flow: c.key.flow.clone().unwrap_or_default(),
            field: c.key.field.clone().unwrap_or_default(),
            channel: c.key.channel.clone().unwrap_or_default(),
            mapping: c.key.mapping.clone().unwrap_or_default(),
            exceptions: c.exceptions,
            orders: c.orders,
            money: c.money.iter().map(|(cur, amount)| (amount.clone(), cur.clone())).collect(),
            last_seen: c.last_seen.strftime("%Y-%m-%d %H:%M").to_string(),
            example: shown_text(&user, &c.example),
        })
        .collect();
    render(Page { c: Chrome::new(&user, "Clusters"), clusters: shown, total: all.len() })
}
