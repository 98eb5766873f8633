//! The exception queue: filters, counts per pattern, and bulk moves on a selection or a whole
//! cluster, previewed (what each move will do) before they are confirmed.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use handoff_model::{ExceptionState, Pattern};
use handoff_store::{ExceptionFilter, ExceptionRow, Moved, Store};
use serde::Deserialize;

use super::pages::{self, Chrome, render, segment, shown_text, store_failed};
use super::session::User;
use crate::AppState;

/// Rows a queue page lists; the next page is a keyset link.
const LISTED: usize = 100;
/// Exceptions one bulk move may touch.
pub const MAX_BULK: usize = 1_000;

#[derive(Deserialize, Default)]
pub(crate) struct Filters {
    /// `open` unless said; `any` for every state.
    state: Option<String>,
    pattern: Option<String>,
    flow: Option<String>,
    channel: Option<String>,
    /// An order reference, exactly.
    order: Option<String>,
    /// Where the page starts: the `next` of the page before.
    after: Option<String>,
    notice: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// One row of the queue, as shown.
pub(crate) struct Row {
    pub id: i64,
    pub pattern: String,
    pub order_ref: String,
    pub order_href: String,
    pub flow: String,
    pub channel: String,
    pub state: String,
    pub money: String,
    pub detail: String,
    pub opened_at: String,
}

impl Row {
    pub fn of(user: &User, x: &ExceptionRow) -> Row {
        Row {
            id: x.id,
            pattern: x.pattern.clone(),
            order_ref: x.order_ref.clone(),
            order_href: format!("/console/orders/{}", segment(&x.order_ref)),
            flow: x.flow.clone().unwrap_or_default(),
            channel: x.channel.clone().unwrap_or_default(),
            state: x.state.clone(),
            money: match (&x.amount, &x.currency) {
                (Some(a), Some(c)) => format!("{a} {c}"),
                _ => String::new(),
            },
            detail: shown_text(user, &x.detail),
            opened_at: x.opened_at.strftime("%Y-%m-%d %H:%M").to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/queue.html")]
struct Page {
    c: Chrome,
    rows: Vec<Row>,
    /// (pattern, open count, link to filter on it)
    counts: Vec<(String, u64, String)>,
    /// The link to the next page, if there is one.
    next: Option<String>,
    first_page: bool,
    state: String,
    states: Vec<&'static str>,
    patterns: Vec<&'static str>,
    pattern: String,
    flow: String,
    channel: String,
    order: String,
    flows: Vec<String>,
    channels: Vec<String>,
}

pub(crate) async fn page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    Query(f): Query<Filters>,
) -> Response {
    let wanted = given(&f.state).unwrap_or_else(|| "open".into());
    let which = match wanted.as_str() {
        "any" => None,
        s => match ExceptionState::parse(s) {
            Some(s) => Some(s),
            None => return pages::not_found(&format!("exception state {s:?}")),
        },
    };
    let filter = ExceptionFilter {
        pattern: given(&f.pattern),
        state: which,
        flow: given(&f.flow),
        channel: given(&f.channel),
        order_ref: given(&f.order),
        cursor: given(&f.after),
        limit: LISTED,
        ..ExceptionFilter::default()
    };
    let read = async {
        let page = state.store.search_exceptions(filter).await?;
        let counts = state.store.open_exceptions_by_pattern().await?;
        Ok::<_, handoff_store::StoreError>((page, counts))
    };
    let (page, counts) = match read.await {
        Ok(read) => read,
        Err(handoff_store::StoreError::Invalid(why)) => return pages::not_found(&why),
        Err(e) => return store_failed(e),
    };
    let counts = counts
        .into_iter()
        .map(|(p, n)| {
            let href = format!("/console?state=open&pattern={}", segment(&p));
            (p, n, href)
        })
        .collect();
    let query = |after: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("state", &wanted);
        for (k, v) in [("pattern", &f.pattern), ("flow", &f.flow), ("channel", &f.channel), ("order", &f.order)] {
            if let Some(v) = given(v) {
                q.append_pair(k, &v);
            }
        }
        q.append_pair("after", after);
        format!("/console?{}", q.finish())
    };
    let contract = &state.contract;
    render(Page {
        c: Chrome::new(&user, "Queue").with_notice(f.notice.clone()),
        rows: page.rows.iter().map(|x| Row::of(&user, x)).collect(),
        next: page.next.as_deref().map(query),
        first_page: given(&f.after).is_none(),
        counts,
        state: wanted.clone(),
        states: vec!["open", "acknowledged", "resolved", "auto_resolved", "ignored", "any"],
        patterns: Pattern::ALL.iter().map(|p| p.as_str()).collect(),
        pattern: given(&f.pattern).unwrap_or_default(),
        flow: given(&f.flow).unwrap_or_default(),
        channel: given(&f.channel).unwrap_or_default(),
        order: given(&f.order).unwrap_or_default(),
        flows: contract.flows.keys().cloned().collect(),
        channels: contract.systems.keys().cloned().collect(),
    })
}

/// A person's move of one exception, a replay of its dead letter, or the action it suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Move {
    To(ExceptionState),
    Replay,
    /// `handoff_engine::actions::take`, as the API's `take_action`.
    TakeAction,
}

impl Move {
    pub fn parse(s: &str) -> Option<Move> {
        match s {
            "replay" => Some(Move::Replay),
            "take_action" => Some(Move::TakeAction),
            "acknowledged" => Some(Move::To(ExceptionState::Acknowledged)),
            "resolved" => Some(Move::To(ExceptionState::Resolved)),
            "ignored" => Some(Move::To(ExceptionState::Ignored)),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Move::Replay => "replay",
            Move::TakeAction => "take_action",
            Move::To(s) => s.as_str(),
        }
    }

    /// What this move will do to `x`, in words, before it is done.
    pub fn preview(self, x: &ExceptionRow) -> (bool, String) {
        let from = ExceptionState::parse(&x.state);
        match self {
            Move::Replay => match x.command_id {
                Some(c) if matches!(from, Some(ExceptionState::Open | ExceptionState::Acknowledged)) => {
                    (true, format!("command {c} goes back to the queue with a fresh retry budget"))
                }
                Some(_) => (false, format!("nothing: the exception is {}", x.state)),
                None => (false, "nothing: no dead letter to replay".into()),
            },
            Move::TakeAction => match handoff_engine::actions::preview(x) {
                Ok(what) => (true, what),
                Err(why) => (false, format!("nothing: {why}")),
            },
            Move::To(to) if from.is_some_and(|f| f.person_may_move(to)) => {
                let mut what = format!("{} → {}", x.state, to.as_str());
                if let Some(c) = x.command_id
                    && matches!(to, ExceptionState::Resolved | ExceptionState::Ignored)
                    && x.pattern == Pattern::DeadDelivery.as_str()
                {
                    what.push_str(&format!("; its dead-lettered command {c} is abandoned, never sent"));
                }
                if to == ExceptionState::Resolved && x.command_id.is_none() {
                    what.push_str("; the rules check it again and reopen it if the cause persists");
                }
                (true, what)
            }
            Move::To(to) => (false, format!("nothing: a {} exception cannot become {}", x.state, to.as_str())),
        }
    }

    /// Does the move as `user` (`approve`: their approval of a refund the action suggests); a
    /// line saying what became of it.
    pub async fn apply<S: Store>(
        self,
        state: &AppState<S>,
        user: &User,
        x: &ExceptionRow,
        reason: Option<String>,
        approve: bool,
    ) -> String {
        let now = state.clock.now();
        match self {
            Move::TakeAction => {
                let (store, contract, targets) = (&state.store, &state.contract, &state.targets);
                match handoff_engine::actions::take(store, contract, targets, x.id, &user.actor(), approve, now).await {
                    Ok(out) => format!("exception {}: {}", x.id, out.lines.join("; ")),
                    Err(handoff_engine::actions::ActionError::Store(e)) => {
                        tracing::error!(message = "console action failed", error = %e);
                        format!("exception {}: the store refused the action", x.id)
                    }
                    Err(why) => format!("exception {}: {why}", x.id),
                }
            }
            Move::Replay => {
                let Some(c) = x.command_id else { return format!("exception {}: no dead letter", x.id) };
                match state.store.replay(handoff_store::Replay::One(c), user.actor(), now).await {
                    Ok(0) => format!("exception {}: command {c} is not dead-lettered", x.id),
                    Ok(_) => format!("exception {}: command {c} replayed", x.id),
                    Err(e) => {
                        tracing::error!(message = "console replay failed", error = %e);
                        format!("exception {}: the store refused the replay", x.id)
                    }
                }
            }
            Move::To(to) => match state.store.move_exception(x.id, to, user.actor(), reason, now).await {
                Ok(Moved::Done(_)) => format!("exception {}: {}", x.id, to.as_str()),
                Ok(Moved::NotFound) => format!("exception {}: not found", x.id),
                Ok(Moved::Refused { from }) => format!("exception {}: {from}, cannot become {}", x.id, to.as_str()),
                Err(e) => {
                    tracing::error!(message = "console move failed", error = %e);
                    format!("exception {}: the store refused the move", x.id)
                }
            },
        }
    }
}

#[derive(Template)]
#[template(path = "console/preview.html")]
struct Preview {
    c: Chrome,
    action: &'static str,
    reason: String,
    cluster: String,
    /// (row, will it act, what it will do)
    items: Vec<(Row, bool, String)>,
    acting: usize,
    /// A refund among the actions: the person may approve it here.
    approval: bool,
    /// The exception whose page the move started from (back there when done), else the queue.
    from: Option<i64>,
}

impl Preview {
    /// The preview of `action` on `rows`, as `user` sees them.
    fn of(
        user: &User,
        action: Move,
        rows: &[ExceptionRow],
        reason: Option<String>,
        cluster: Option<String>,
    ) -> Preview {
        let items: Vec<(Row, bool, String)> = rows
            .iter()
            .map(|x| {
                let (acts, what) = action.preview(x);
                (Row::of(user, x), acts, what)
            })
            .collect();
        let acting = items.iter().filter(|(_, acts, _)| *acts).count();
        Preview {
            c: Chrome::new(user, "Queue"),
            action: action.name(),
            reason: reason.unwrap_or_default(),
            cluster: cluster.unwrap_or_default(),
            items,
            acting,
            approval: action == Move::TakeAction && rows.iter().any(handoff_engine::actions::needs_approval),
            from: None,
        }
    }
}

/// The preview of one exception's move, confirmed through the bulk form and back to its page.
pub(crate) fn preview_one(user: &User, action: Move, x: &ExceptionRow, reason: Option<String>) -> Response {
    render(Preview { from: Some(x.id), ..Preview::of(user, action, std::slice::from_ref(x), reason, None) })
}

/// The bulk form's fields: `id` repeated, or `cluster`; `to`; `reason`; `approve` (a refund
/// the actions suggest); `from` (the exception page it started from); `confirm`.
struct Bulk {
    ids: Vec<i64>,
    cluster: Option<String>,
    to: Option<String>,
    reason: Option<String>,
    approve: bool,
    from: Option<i64>,
    confirm: bool,
}

impl Bulk {
    fn parse(body: &[u8]) -> Bulk {
        let mut b =
            Bulk { ids: Vec::new(), cluster: None, to: None, reason: None, approve: false, from: None, confirm: false };
        for (k, v) in form_urlencoded::parse(body) {
            match &*k {
                "id" => b.ids.extend(v.parse::<i64>().ok()),
                "cluster" if !v.is_empty() => b.cluster = Some(v.into_owned()),
                "to" => b.to = Some(v.into_owned()),
                "reason" if !v.trim().is_empty() => b.reason = Some(v.trim().chars().take(500).collect()),
                "approve" => b.approve = v == "1",
                "from" => b.from = v.parse().ok(),
                "confirm" => b.confirm = v == "1",
                _ => {}
            }
        }
        b.ids.sort_unstable();
        b.ids.dedup();
        b
    }
}

/// The bulk form: a preview of each exception's move first; with `confirm`, the moves.
pub(crate) async fn bulk<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    body: Bytes,
) -> Response {
    let b = Bulk::parse(&body);
    let Some(action) = b.to.as_deref().and_then(Move::parse) else {
        return pages::done("/console", "choose what to do with the selection");
    };
    let mut rows = Vec::new();
    if let Some(cluster) = &b.cluster {
        match super::clusters::members(&state.store, cluster).await {
            Ok(Some(members)) => rows = members,
            Ok(None) => return pages::not_found(&format!("cluster {cluster}")),
            Err(e) => return store_failed(e),
        }
    } else {
        for id in b.ids.iter().take(MAX_BULK + 1) {
            match state.store.exception(*id).await {
                Ok(Some(x)) => rows.push(x),
                Ok(None) => {}
                Err(e) => return store_failed(e),
            }
        }
    }
    if rows.is_empty() {
        return pages::done("/console", "nothing was selected");
    }
    if rows.len() > MAX_BULK {
        return pages::done("/console", &format!("at most {MAX_BULK} exceptions at once; narrow the selection"));
    }
    if !b.confirm {
        return render(Preview { from: b.from, ..Preview::of(&user, action, &rows, b.reason, b.cluster) });
    }
    let mut outcomes: BTreeMap<bool, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for x in &rows {
        let (acts, _) = action.preview(x);
        if acts {
            lines.push(action.apply(&state, &user, x, b.reason.clone(), b.approve).await);
        }
        *outcomes.entry(acts).or_default() += 1;
    }
    let skipped = outcomes.get(&false).copied().unwrap_or(0);
    let mut notice = format!("{}: {} done", action.name(), lines.len());
    if skipped > 0 {
        notice.push_str(&format!(", {skipped} left as they were"));
    }
    if let Some(first) = lines.first() {
        notice.push_str(&format!(" ({first}{})", if lines.len() > 1 { ", ..." } else { "" }));
    }
    let back = b.from.map_or_else(|| "/console".to_owned(), |id| format!("/console/exceptions/{id}"));
    pages::done(&back, &notice)
}
