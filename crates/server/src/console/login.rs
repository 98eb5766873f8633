//! Logging in and out: the login form (its own double-submit CSRF cookie, since there is no
//! session yet), the password checked with argon2 off the async threads and at most
//! [`CHECKS`] at once, the one-time login link `handoff demo` prints, and logout.

use std::sync::{Arc, LazyLock};

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use handoff_store::{NewSession, Store};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::pages::{self, store_failed};
use super::session::{self, COOKIE, CookiePolicy, LINK_TTL, LOGIN_COOKIE, User};
use crate::AppState;

/// Password checks at once: each costs argon2's memory and tens of milliseconds of a core, so
/// a flood of logins waits its turn instead of taking the hub's CPU.
const CHECKS: usize = 2;
static CHECKING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(CHECKS)));

/// Longest name and password read.
const MAX_FIELD: usize = 256;

#[derive(Template)]
#[template(path = "console/login.html")]
struct Form<'a> {
    csrf: &'a str,
    next: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// Where to go after login: a console path only, never another site.
fn next_or_home(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/console",
    }
}

fn form_page(policy: CookiePolicy, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let csrf = session::random_key();
    let mut r = pages::render(Form { csrf: &csrf, next, error });
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(policy, LOGIN_COOKIE, Some(csrf))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub(crate) async fn form(Extension(policy): Extension<CookiePolicy>, Query(q): Query<Next>) -> Response {
    form_page(policy, next_or_home(q.next.as_deref()), None, StatusCode::OK)
}

#[derive(Deserialize)]
pub(crate) struct Login {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// Opens a session for `user_id` and sends the person on with its cookie.
async fn logged_in<S: Store + Clone>(state: &AppState<S>, policy: CookiePolicy, user_id: i64, to: &str) -> Response {
    let key = session::random_key();
    let new = NewSession { hash: session::hash(&key), user_id, csrf: session::random_key(), link: false };
    if let Err(e) = state.store.open_session(new, state.clock.now()).await {
        return store_failed(e);
    }
    with_session_cookie(policy, Some(key), Redirect::to(to).into_response())
}

fn with_session_cookie(policy: CookiePolicy, key: Option<String>, mut r: Response) -> Response {
    for (name, value) in [(COOKIE, key), (LOGIN_COOKIE, None)] {
        if let Ok(v) = HeaderValue::from_str(&session::set_cookie(policy, name, value)) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

pub(crate) async fn submit<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(policy): Extension<CookiePolicy>,
    headers: HeaderMap,
    axum::Form(login): axum::Form<Login>,
) -> Response {
    let next = next_or_home(login.next.as_deref()).to_owned();
    let expected = session::cookie_value(&headers, LOGIN_COOKIE);
    if !expected.is_some_and(|e| !login.csrf.is_empty() && session::same_secret(&e, &login.csrf)) {
        let why = "the login form expired; try again";
        return form_page(policy, &next, Some(why), StatusCode::FORBIDDEN);
    }
    if login.name.len() > MAX_FIELD || login.password.len() > MAX_FIELD {
        return form_page(policy, &next, Some("name or password too long"), StatusCode::BAD_REQUEST);
    }
    let user = match state.store.user_by_name(login.name.clone()).await {
        Ok(user) => user,
        Err(e) => return store_failed(e),
    };
    let Ok(_permit) = CHECKING.clone().try_acquire_owned() else {
        let mut r =
            form_page(policy, &next, Some("too many logins at once; try again"), StatusCode::SERVICE_UNAVAILABLE);
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let password = login.password;
    let matches = tokio::task::spawn_blocking(move || session::password_matches(&password, phc.as_deref()))
        .await
        .unwrap_or(false);
    match user {
        Some(user) if matches => logged_in(&state, policy, user.id, &next).await,
        _ => {
            // Which of the two was wrong is not said.
            tracing::info!(message = "console login refused");
            form_page(policy, &next, Some("wrong name or password"), StatusCode::UNAUTHORIZED)
        }
    }
}

/// A one-time login link (`handoff demo` prints one): redeemed once, within [`LINK_TTL`].
pub(crate) async fn link<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(policy): Extension<CookiePolicy>,
    Path(key): Path<String>,
) -> Response {
    let now = state.clock.now();
    let fresh = session::random_key();
    let not_before = now.checked_sub(LINK_TTL).unwrap_or(now);
    match state.store.redeem_link(session::hash(&key), session::hash(&fresh), not_before, now).await {
        Ok(Some(_)) => with_session_cookie(policy, Some(fresh), Redirect::to("/console").into_response()),
        Ok(None) => (StatusCode::UNAUTHORIZED, pages::refused("this login link was used or has expired; log in"))
            .into_response(),
        Err(e) => store_failed(e),
    }
}

pub(crate) async fn logout<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(policy): Extension<CookiePolicy>,
    Extension(_user): Extension<User>,
    headers: HeaderMap,
) -> Response {
    if let Some(key) = session::cookie_value(&headers, COOKIE)
        && let Err(e) = state.store.end_session(session::hash(&key), state.clock.now()).await
    {
        return store_failed(e);
    }
    let mut r = with_session_cookie(policy, None, Redirect::to("/console/login").into_response());
    // htmx follows the redirect itself; have it load the login page as a whole page.
    r.headers_mut().insert("HX-Redirect", HeaderValue::from_static("/console/login"));
    r
}

/// Creates a one-time login link for `user_id`; returns its path (`/console/link/...`).
pub async fn create_link<S: Store>(store: &S, user_id: i64, now: jiff::Timestamp) -> handoff_store::Result<String> {
    let key = session::random_key();
    let new = NewSession { hash: session::hash(&key), user_id, csrf: session::random_key(), link: true };
    store.open_session(new, now).await?;
    Ok(format!("/console/link/{key}"))
}
