//! The console's access matrix (every route × role × session state, and CSRF), login, logout,
//! login links, and masking for a viewer.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use handoff_engine::ManualClock;
use handoff_store::memory::MemoryStore;
use handoff_store::{NewSession, NewUser, Role, Store};
use jiff::{SignedDuration, Timestamp};
use tower::ServiceExt as _;

use super::session::{self, COOKIE, IDLE, LOGIN_COOKIE};
use crate::AppState;

fn t0() -> Timestamp {
    "2026-12-01T10:00:00Z".parse().unwrap()
}

fn app() -> (Router, MemoryStore, Arc<ManualClock>) {
    let (state, store, clock) = state();
    (crate::router(state), store, clock)
}

fn state() -> (Arc<AppState<MemoryStore>>, MemoryStore, Arc<ManualClock>) {
    let text = "[systems.shop]\nrole = \"storefront\"\nconnector = \"http-json\"\n";
    let contract = Arc::new(handoff_contract::Contract::parse(text, Path::new("test")).unwrap());
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let drift = Arc::new(handoff_mapping::drift::Watch::shipped().unwrap());
    let state = Arc::new(AppState {
        contract,
        store: store.clone(),
        clock: clock.clone(),
        drift,
        mappings: Arc::new(handoff_mapping::Mappings::shipped().unwrap()),
        heartbeats: Default::default(),
        targets: Default::default(),
        recent: Default::default(),
    });
    (state, store, clock)
}

/// The session states a request can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Valid,
    Expired,
    LoggedOut,
    Missing,
    Forged,
}

/// A user of each role, made once per store.
async fn users(store: &MemoryStore) -> Vec<(Role, i64)> {
    let mut ids = Vec::new();
    for role in Role::ALL {
        let user = NewUser { name: format!("{role}"), role, password_hash: "unused".into() };
        let id = match store.create_user(user, "test".into(), t0()).await.unwrap() {
            Some(id) => id,
            None => store.user_by_name(role.to_string()).await.unwrap().unwrap().id,
        };
        ids.push((role, id));
    }
    ids
}

/// A session for `user` at the clock's time: (cookie value, CSRF token).
async fn login(store: &MemoryStore, clock: &ManualClock, user: i64) -> (String, String) {
    use handoff_engine::Clock as _;
    let key = session::random_key();
    let csrf = session::random_key();
    let new = NewSession { hash: session::hash(&key), user_id: user, csrf: csrf.clone(), link: false };
    store.open_session(new, clock.now()).await.unwrap();
    (key, csrf)
}

fn request(method: &Method, uri: &str, cookie: Option<&str>, csrf: Option<&str>) -> Request<Body> {
    let mut r = Request::builder().method(method.clone()).uri(uri);
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, format!("{COOKIE}={c}"));
    }
    if let Some(t) = csrf {
        r = r.header("x-csrf-token", t);
    }
    r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::empty()).unwrap()
}

fn sent_to_login(response: &axum::response::Response) -> bool {
    response.status() == StatusCode::SEE_OTHER
        && response.headers()[header::LOCATION].to_str().unwrap().starts_with("/console/login")
}

/// Every console route × every role × every session state: a live session of the route's role
/// or above gets in (with its CSRF token on a POST), one below is 403; an expired, logged-out,
/// missing or forged session is sent to the login page (a GET) or refused 401 (anything else),
/// whatever the role; and a POST of a live session without its CSRF token, or with another
/// session's, is 403.
#[tokio::test]
async fn the_console_access_matrix_of_every_route_role_and_session_state() {
    let (app, store, clock) = app();
    let users = users(&store).await;
    let routes = super::console_routes::<MemoryStore>();
    assert!(routes.len() >= 14);
    let mut checked = 0;
    for (method, path, needs, _) in routes {
        let uri = path.replace("{order_ref}", "%231").replace("{id}", "1");
        // Sessions made fresh for each route: the logout route ends the one it is given.
        let mut held = Vec::new();
        for &(role, user) in &users {
            held.push((role, Held::Expired, Some(login(&store, &clock, user).await)));
        }
        clock.advance(IDLE + SignedDuration::from_secs(1));
        for &(role, user) in &users {
            held.push((role, Held::Valid, Some(login(&store, &clock, user).await)));
            let (key, csrf) = login(&store, &clock, user).await;
            assert!(store.end_session(session::hash(&key), t0()).await.unwrap());
            held.push((role, Held::LoggedOut, Some((key, csrf))));
            held.push((role, Held::Missing, None));
            held.push((role, Held::Forged, Some((session::random_key(), session::random_key()))));
        }
        for (role, state, session) in &held {
            let cookie = session.as_ref().map(|(k, _)| k.as_str());
            let csrf = session.as_ref().map(|(_, c)| c.as_str());
            let response = app.clone().oneshot(request(&method, &uri, cookie, csrf)).await.unwrap();
            let status = response.status();
            match state {
                Held::Valid if *role >= needs => {
                    // Logging out is the one way in that ends at the login page.
                    let refused = sent_to_login(&response) && path != "/console/logout";
                    assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN && !refused,
                        "{method} {path} as {role}: {status}"
                    );
                }
                Held::Valid => assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} as {role}"),
                _ if method == Method::GET => assert!(sent_to_login(&response), "{method} {path} {state:?}: {status}"),
                _ => assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} {state:?} {role}"),
            }
            checked += 1;
            if method == Method::POST && *state == Held::Valid && *role >= needs {
                let (key, _) = login(&store, &clock, users.iter().find(|(r, _)| r == role).unwrap().1).await;
                let none = app.clone().oneshot(request(&method, &uri, Some(&key), None)).await.unwrap();
                assert_eq!(none.status(), StatusCode::FORBIDDEN, "{method} {path} without its CSRF token");
                let other = app.clone().oneshot(request(&method, &uri, Some(&key), csrf)).await.unwrap();
                assert_eq!(other.status(), StatusCode::FORBIDDEN, "{method} {path} with another session's token");
            }
        }
    }
    assert!(checked >= 14 * 15, "{checked}");
}

#[test]
fn a_session_ends_idle_or_old_or_logged_out() {
    let s = handoff_store::SessionRow {
        id: 1,
        user: "a".into(),
        role: Role::Viewer,
        csrf: "c".into(),
        link: false,
        created_at: t0(),
        last_seen_at: t0(),
        ended_at: None,
    };
    let at = |d: SignedDuration| t0().checked_add(d).unwrap();
    assert_eq!(session::refusal(&s, at(IDLE)), None);
    assert_eq!(session::refusal(&s, at(IDLE + SignedDuration::from_secs(1))), Some("idle too long"));
    let busy = handoff_store::SessionRow { last_seen_at: at(session::ABSOLUTE), ..s.clone() };
    assert_eq!(session::refusal(&busy, at(session::ABSOLUTE)), None);
    assert_eq!(session::refusal(&busy, at(session::ABSOLUTE + SignedDuration::from_secs(1))), Some("too old"));
    let ended = handoff_store::SessionRow { ended_at: Some(t0()), ..s.clone() };
    assert_eq!(session::refusal(&ended, t0()), Some("logged out"));
    let link = handoff_store::SessionRow { link: true, ..s };
    assert_eq!(session::refusal(&link, t0()), Some("an unredeemed login link"));
}

fn set_cookie(response: &axum::response::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}="))?.split(';').next().map(str::to_owned))
        .filter(|v| !v.is_empty())
}

async fn body(response: axum::response::Response) -> String {
    String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap()
}

/// The login form, a wrong and a right password, the queue, logout, and the session gone; every
/// step in the audit log as the person.
#[tokio::test]
async fn a_person_logs_in_with_their_password_and_out_again() {
    let (app, store, _) = app();
    let phc = session::hash_password("correct horse").unwrap();
    store
        .create_user(NewUser { name: "ana".into(), role: Role::Operator, password_hash: phc }, "test".into(), t0())
        .await
        .unwrap();

    let form = app.clone().oneshot(Request::get("/console/login").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let login_csrf = set_cookie(&form, LOGIN_COOKIE).expect("the login form's CSRF cookie");
    assert!(body(form).await.contains(&login_csrf));

    let post = |password: &str, csrf: &str| {
        let form = format!("csrf={csrf}&name=ana&password={password}&next=%2Fconsole%3Fstate%3Dany");
        Request::post("/console/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("{LOGIN_COOKIE}={login_csrf}"))
            .body(Body::from(form))
            .unwrap()
    };
    let wrong = app.clone().oneshot(post("wrong+horse", &login_csrf)).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, COOKIE).is_none());
    let forged = app.clone().oneshot(post("correct+horse", "forged")).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "a login form from elsewhere");

    let right = app.clone().oneshot(post("correct+horse", &login_csrf)).await.unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()[header::LOCATION], "/console?state=any");
    let key = set_cookie(&right, COOKIE).expect("a session cookie");
    let queue = app.clone().oneshot(request(&Method::GET, "/console", Some(&key), None)).await.unwrap();
    assert_eq!(queue.status(), StatusCode::OK);
    let page = body(queue).await;
    assert!(page.contains("Exception queue") && page.contains("ana"));
    let csrf = store.session_by_hash(session::hash(&key)).await.unwrap().unwrap().csrf;
    assert!(page.contains(&csrf), "the page's forms carry the session's CSRF token");

    let out = app.clone().oneshot(request(&Method::POST, "/console/logout", Some(&key), Some(&csrf))).await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = app.clone().oneshot(request(&Method::GET, "/console", Some(&key), None)).await.unwrap();
    assert!(sent_to_login(&after), "the session ended with the logout");

    let open_redirect = Request::get("/console/login?next=https%3A%2F%2Fevil.example").body(Body::empty()).unwrap();
    let page = body(app.clone().oneshot(open_redirect).await.unwrap()).await;
    assert!(!page.contains("evil.example"), "never sent to another site after login");
}

/// A one-time login link logs in once, and not after its time.
#[tokio::test]
async fn a_login_link_works_once() {
    let (app, store, clock) = app();
    let users = users(&store).await;
    let link = super::create_link(&store, users[1].1, t0()).await.unwrap();
    let first = app.clone().oneshot(Request::get(&link).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let key = set_cookie(&first, COOKIE).expect("a session");
    let queue = app.clone().oneshot(request(&Method::GET, "/console", Some(&key), None)).await.unwrap();
    assert_eq!(queue.status(), StatusCode::OK);
    let again = app.clone().oneshot(Request::get(&link).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "used");

    let late = super::create_link(&store, users[1].1, t0()).await.unwrap();
    clock.advance(session::LINK_TTL + SignedDuration::from_secs(1));
    let expired = app.clone().oneshot(Request::get(&late).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED, "too old");
    let unredeemed = app
        .clone()
        .oneshot(request(&Method::GET, "/console", Some(late.rsplit('/').next().unwrap()), None))
        .await
        .unwrap();
    assert!(sent_to_login(&unredeemed), "a link's key is no session cookie");
}

/// A viewer's pages never show a customer's email; an operator's do.
#[tokio::test]
async fn a_viewer_sees_personal_data_masked() {
    let (app, store, clock) = app();
    let users = users(&store).await;
    let canary = "canary.person@example.com";
    let finding = handoff_store::NewFinding {
        pattern: handoff_model::Pattern::MissingOrder,
        order_ref: "#1001".into(),
        subject: "order".into(),
        flow: Some("orders".into()),
        field: None,
        channel: Some("shop".into()),
        amount: Some("12.50".into()),
        currency: Some("EUR".into()),
        detail: format!("no ERP order for {canary}"),
        action: "{}".into(),
        evidence: serde_json::json!({ "customer": { "email": canary, "name": "Ana Canary" } }).to_string(),
    };
    let raised = store.raise_finding(finding, t0()).await.unwrap();
    let id = match raised {
        handoff_store::Raised::Opened(id) | handoff_store::Raised::Reopened(id) => id,
        other => panic!("{other:?}"),
    };
    for (role, user) in users {
        let (key, _) = login(&store, &clock, user).await;
        for uri in ["/console".to_owned(), format!("/console/exceptions/{id}"), "/console/orders/%231001".to_owned()] {
            let response = app.clone().oneshot(request(&Method::GET, &uri, Some(&key), None)).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{uri} as {role}");
            let page = body(response).await;
            if role == Role::Viewer {
                assert!(!page.contains(canary) && !page.contains("Ana Canary"), "{uri} shows a viewer personal data");
            } else if uri.contains("exceptions") {
                assert!(page.contains(canary), "{uri} as {role} shows the evidence");
            }
        }
    }
}

/// A bulk move is previewed first (nothing changes), then done on confirmation, each move in
/// the audit log with the person as its actor.
#[tokio::test]
async fn a_bulk_move_is_previewed_then_done_and_audited_as_the_person() {
    let (app, store, clock) = app();
    let users = users(&store).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let finding = handoff_store::NewFinding {
            pattern: handoff_model::Pattern::MissingOrder,
            order_ref: format!("#20{n}"),
            subject: "order".into(),
            flow: Some("orders".into()),
            field: None,
            channel: Some("shop".into()),
            amount: Some("10.00".into()),
            currency: Some("EUR".into()),
            detail: "no ERP order".into(),
            action: "{}".into(),
            evidence: "{}".into(),
        };
        match store.raise_finding(finding, t0()).await.unwrap() {
            handoff_store::Raised::Opened(id) => ids.push(id),
            other => panic!("{other:?}"),
        }
    }
    let (key, csrf) = login(&store, &clock, users[1].1).await;
    let form = |confirm: bool| {
        let mut body = format!("csrf={csrf}&to=acknowledged&reason=checked+by+hand&id={}&id={}", ids[0], ids[1]);
        if confirm {
            body.push_str("&confirm=1");
        }
        Request::post("/console/exceptions/bulk")
            .header(header::COOKIE, format!("{COOKIE}={key}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let preview = app.clone().oneshot(form(false)).await.unwrap();
    assert_eq!(preview.status(), StatusCode::OK);
    let page = body(preview).await;
    assert!(page.contains("Confirm: acknowledged 2 exceptions") && page.contains("open → acknowledged"), "{page}");
    for id in &ids {
        assert_eq!(store.exception(*id).await.unwrap().unwrap().state, "open", "a preview changes nothing");
    }
    let done = app.clone().oneshot(form(true)).await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(done.headers()[header::LOCATION].to_str().unwrap().contains("notice="));
    for (n, id) in ids.iter().enumerate() {
        let x = store.exception(*id).await.unwrap().unwrap();
        assert_eq!(x.state, if n < 2 { "acknowledged" } else { "open" }, "exception {id}");
        let audit = store.order_timeline(x.order_ref.clone()).await.unwrap().audit;
        let by_person = audit.iter().any(|a| a.actor == "user:operator");
        assert_eq!(by_person, n < 2, "exception {id}: {audit:?}");
    }
}

/// An exception's suggested action is taken from its page: previewed first (nothing changes,
/// the preview says what it will do), then done on confirmation, back on the exception's page,
/// audited as the person. The doctor's checklist is a page too.
#[tokio::test]
async fn an_exceptions_suggested_action_is_previewed_then_taken_from_its_page() {
    let (app, store, clock) = app();
    let users = users(&store).await;
    let finding = handoff_store::NewFinding {
        pattern: handoff_model::Pattern::MissingOrder,
        order_ref: "#300".into(),
        subject: String::new(),
        flow: Some("orders".into()),
        field: Some("total".into()),
        channel: Some("shop".into()),
        amount: None,
        currency: None,
        detail: "the ERP record disagrees on total".into(),
        action: r#"{"action":"review_mapping"}"#.into(),
        evidence: "{}".into(),
    };
    let handoff_store::Raised::Opened(id) = store.raise_finding(finding, t0()).await.unwrap() else { panic!("opened") };
    let (key, csrf) = login(&store, &clock, users[1].1).await;
    let get =
        |uri: String| Request::get(uri).header(header::COOKIE, format!("{COOKIE}={key}")).body(Body::empty()).unwrap();
    let post = |uri: &str, form: String| {
        Request::post(uri)
            .header(header::COOKIE, format!("{COOKIE}={key}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap()
    };
    let page = body(app.clone().oneshot(get(format!("/console/exceptions/{id}"))).await.unwrap()).await;
    assert!(page.contains(r#"<option value="take_action">"#), "{page}");

    let preview =
        app.clone().oneshot(post(&format!("/console/exceptions/{id}"), format!("csrf={csrf}&to=take_action"))).await;
    let preview = preview.unwrap();
    assert_eq!(preview.status(), StatusCode::OK);
    let page = body(preview).await;
    assert!(page.contains("Confirm: take_action 1 exception"), "{page}");
    assert!(page.contains("queues nothing: says what to fix"), "{page}");
    assert!(page.contains(&format!(r#"name="from" value="{id}""#)), "{page}");
    let audit = || async { store.order_timeline("#300".into()).await.unwrap().audit };
    assert!(!audit().await.iter().any(|a| a.action == "action taken"), "a preview changes nothing");

    let form = format!("csrf={csrf}&to=take_action&id={id}&from={id}&confirm=1");
    let done = app.clone().oneshot(post("/console/exceptions/bulk", form)).await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let back = done.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(back.starts_with(&format!("/console/exceptions/{id}?notice=")), "{back}");
    assert!(
        audit().await.iter().any(|a| a.action == "action taken" && a.actor == "user:operator"),
        "{:?}",
        audit().await
    );
    // Without its CSRF token the confirmation is refused and changes nothing.
    let form = format!("to=take_action&id={id}&confirm=1");
    assert_eq!(
        app.clone().oneshot(post("/console/exceptions/bulk", form)).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    let doctor = app.clone().oneshot(get("/console/doctor".into())).await.unwrap();
    assert_eq!(doctor.status(), StatusCode::OK);
    let page = body(doctor).await;
    assert!(page.contains("Doctor: the handoff checklist") && page.contains(r#"id="question-10""#), "{page}");
}

/// With `hub.admin_listen`, the public address serves webhooks, health and readiness only, and
/// the admin address everything else but webhooks.
#[tokio::test]
async fn the_public_address_serves_no_console_api_or_metrics() {
    let (state, _, _) = state();
    let public = crate::public_router(state.clone());
    let admin = crate::admin_router(state);
    let status = |app: &Router, method: Method, uri: &str| {
        let app = app.clone();
        let request = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
        async move { app.oneshot(request).await.unwrap().status() }
    };
    for uri in ["/console", "/console/login", "/api/v1/exceptions", "/metrics", "/console/assets/1/htmx.min.js"] {
        assert_eq!(status(&public, Method::GET, uri).await, StatusCode::NOT_FOUND, "public {uri}");
        assert_ne!(status(&admin, Method::GET, uri).await, StatusCode::NOT_FOUND, "admin {uri}");
    }
    for uri in ["/health", "/ready"] {
        assert_eq!(status(&public, Method::GET, uri).await, StatusCode::OK, "public {uri}");
        assert_eq!(status(&admin, Method::GET, uri).await, StatusCode::OK, "admin {uri}");
    }
    assert_ne!(status(&public, Method::POST, "/webhooks/shop").await, StatusCode::NOT_FOUND, "webhooks are public");
    assert_eq!(status(&admin, Method::POST, "/webhooks/shop").await, StatusCode::NOT_FOUND, "and only public");
}
