//! The audit log: every action with its actor (a person `user:NAME`, a token `token:NAME`, the
//! engine or a rule), newest first, filtered by actor or order, a keyset page at a time.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use handoff_store::{AuditFilter, Store};
use serde::Deserialize;

use super::pages::{self, Chrome, render, segment, shown_text, store_failed};
use super::session::User;
use crate::AppState;

/// Entries a page lists.
const LISTED: usize = 100;

#[derive(Deserialize)]
pub(crate) struct Q {
    actor: Option<String>,
    order: Option<String>,
    after: Option<String>,
}

struct Entry {
    at: String,
    actor: String,
    action: String,
    order_ref: String,
    order_href: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct Page {
    c: Chrome,
    entries: Vec<Entry>,
    actor: String,
    order: String,
    next: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

pub(crate) async fn page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    Query(q): Query<Q>,
) -> Response {
    let filter = AuditFilter {
        actor: given(&q.actor),
        order_ref: given(&q.order),
        cursor: given(&q.after),
        limit: LISTED,
        ..Default::default()
    };
    let page = match state.store.search_audit(filter).await {
        Ok(page) => page,
        Err(handoff_store::StoreError::Invalid(why)) => return pages::not_found(&why),
        Err(e) => return store_failed(e),
    };
    let entries = page
        .rows
        .iter()
        .map(|e| Entry {
            at: e.at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            actor: e.actor.clone(),
            action: e.action.clone(),
            order_ref: e.order_ref.clone().unwrap_or_default(),
            order_href: e.order_ref.as_deref().map(|o| format!("/console/orders/{}", segment(o))).unwrap_or_default(),
            detail: shown_text(&user, &e.detail),
        })
        .collect();
    let next = page.next.map(|after| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("actor", &q.actor), ("order", &q.order)] {
            if let Some(v) = given(v) {
                s.append_pair(k, &v);
            }
        }
        s.append_pair("after", &after);
        format!("/console/audit?{}", s.finish())
    });
    render(Page {
        c: Chrome::new(&user, "Audit log"),
        entries,
        actor: given(&q.actor).unwrap_or_default(),
        order: given(&q.order).unwrap_or_default(),
        next,
    })
}
