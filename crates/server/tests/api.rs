//! The API through the router on the in-memory store: a person's actions on many exceptions
//! at once, audited with the caller; keyset pages followed to their end; problem+json for what
//! cannot be answered; a viewer's answers masked.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use handoff_contract::Contract;
use handoff_engine::ManualClock;
use handoff_server::AppState;
use handoff_store::memory::MemoryStore;
use handoff_store::{NewFinding, Raised, Role, Store};
use jiff::Timestamp;
use serde_json::{Value, json};
use tower::ServiceExt as _;

fn t0() -> Timestamp {
    "2026-12-01T10:00:00Z".parse().unwrap()
}

async fn hub() -> (Router, MemoryStore, [String; 2]) {
    let text = "[systems.shop]\nrole = \"storefront\"\nconnector = \"http-json\"\n";
    let contract = Arc::new(Contract::parse(text, Path::new("test")).unwrap());
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let drift = Arc::new(handoff_mapping::drift::Watch::shipped().unwrap());
    let state = AppState {
        contract,
        store: store.clone(),
        clock,
        drift,
        mappings: Arc::new(handoff_mapping::Mappings::shipped().unwrap()),
        heartbeats: Default::default(),
        targets: Default::default(),
        recent: Default::default(),
    };
    let mut tokens = Vec::new();
    for (name, role) in [("vic", Role::Viewer), ("ops", Role::Operator)] {
        let (token, hash) = handoff_server::auth::issue();
        let new = handoff_store::NewToken { name: name.into(), role, hash, expires_at: None };
        store.create_token(new, "test".into(), t0()).await.unwrap();
        tokens.push(token);
    }
    (handoff_server::router(Arc::new(state)), store, tokens.try_into().unwrap())
}

async fn call(app: &Router, token: &str, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, String, Value) {
    let mut request =
        Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let kind = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, kind, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn raise(store: &MemoryStore, order: &str, at: i64) -> i64 {
    let finding = NewFinding {
        pattern: handoff_model::Pattern::MissingOrder,
        order_ref: order.into(),
        subject: String::new(),
        flow: Some("orders".into()),
        field: None,
        channel: Some("shop".into()),
        amount: Some("10.05".into()),
        currency: Some("EUR".into()),
        detail: format!("no ERP order for {order}"),
        action: r#"{"action":"create_erp_order"}"#.into(),
        evidence: r#"{"customer":{"email":"ada@example.com"}}"#.into(),
    };
    let at = t0() + jiff::SignedDuration::from_secs(at);
    let Raised::Opened(id) = store.raise_finding(finding, at).await.unwrap() else { panic!("opened") };
    id
}

#[tokio::test]
async fn actions_on_many_exceptions_are_taken_one_by_one_and_audited_with_the_caller() {
    let (app, store, [viewer, operator]) = hub().await;
    let (a, b) = (raise(&store, "#1", 1).await, raise(&store, "#2", 2).await);
    let ack = json!({ "ids": [a, b, 999], "action": "acknowledge", "reason": "looking" });

    let (status, kind, _) = call(&app, &viewer, "POST", "/api/v1/exceptions/actions", Some(ack.clone())).await;
    assert_eq!((status, kind.as_str()), (StatusCode::FORBIDDEN, "application/problem+json"));

    let (status, _, results) = call(&app, &operator, "POST", "/api/v1/exceptions/actions", Some(ack.clone())).await;
    assert_eq!(status, StatusCode::OK, "{results}");
    let outcomes: Vec<(&str, Option<&str>)> =
        results.as_array().unwrap().iter().map(|r| (r["outcome"].as_str().unwrap(), r["state"].as_str())).collect();
    assert_eq!(outcomes, [("done", Some("acknowledged")), ("done", Some("acknowledged")), ("not_found", None)]);
    let (_, _, again) = call(&app, &operator, "POST", "/api/v1/exceptions/actions", Some(ack)).await;
    assert_eq!(again[0]["outcome"], "refused", "an acknowledged exception is not acknowledged twice: {again}");

    let resolve = json!({ "ids": [a], "action": "resolve" });
    let (_, _, results) = call(&app, &operator, "POST", "/api/v1/exceptions/actions", Some(resolve)).await;
    assert_eq!(results[0]["state"], "resolved");
    let (status, _, audit) = call(&app, &viewer, "GET", "/api/v1/audit?actor=token:ops", None).await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> =
        audit["items"].as_array().unwrap().iter().map(|e| e["order_ref"].as_str().unwrap()).collect();
    assert_eq!(actions, ["#1", "#2", "#1"], "newest first, each with its actor: {audit}");

    for bad in [json!({ "ids": [], "action": "resolve" }), json!({ "ids": [a], "action": "explode" })] {
        let (status, kind, problem) = call(&app, &operator, "POST", "/api/v1/exceptions/actions", Some(bad)).await;
        assert_eq!(
            (status.as_u16(), kind.as_str()),
            (problem["status"].as_u64().unwrap() as u16, "application/problem+json")
        );
        assert!(status.is_client_error(), "{status}");
    }
}

#[tokio::test]
async fn pages_are_followed_to_their_end_and_a_viewer_sees_no_personal_data() {
    let (app, store, [viewer, operator]) = hub().await;
    let mut raised = Vec::new();
    for i in 0..5 {
        raised.push(raise(&store, &format!("#{i}"), i).await);
    }
    let mut seen = Vec::new();
    let mut uri = "/api/v1/exceptions?limit=2".to_owned();
    loop {
        let (status, _, page) = call(&app, &viewer, "GET", &uri, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for x in page["items"].as_array().unwrap() {
            assert!(!x.to_string().contains("ada@example.com"), "masked for a viewer: {x}");
            seen.push(x["id"].as_i64().unwrap());
        }
        match page["next"].as_str() {
            Some(next) => uri = format!("/api/v1/exceptions?limit=2&cursor={next}"),
            None => break,
        }
    }
    raised.reverse();
    assert_eq!(seen, raised, "every exception once, newest first");

    let (_, _, pack) = call(&app, &operator, "GET", &format!("/api/v1/exceptions/{}", raised[0]), None).await;
    assert!(pack.to_string().contains("ada@example.com"), "an operator sees personal data");
    let (_, _, pack) = call(&app, &viewer, "GET", &format!("/api/v1/exceptions/{}", raised[0]), None).await;
    assert!(!pack.to_string().contains("ada@example.com"), "{pack}");

    let (_, _, clusters) = call(&app, &viewer, "GET", "/api/v1/clusters", None).await;
    assert_eq!(clusters["items"][0]["exceptions"], 5, "{clusters}");
    assert_eq!(clusters["items"][0]["money"]["EUR"], "50.25");

    for (uri, status) in [
        ("/api/v1/exceptions?cursor=nonsense", StatusCode::BAD_REQUEST),
        ("/api/v1/exceptions?limit=0", StatusCode::BAD_REQUEST),
        ("/api/v1/exceptions?state=lost", StatusCode::BAD_REQUEST),
        ("/api/v1/exceptions?unknown=1", StatusCode::BAD_REQUEST),
        ("/api/v1/exceptions/x", StatusCode::BAD_REQUEST),
        ("/api/v1/exceptions/12345", StatusCode::NOT_FOUND),
        ("/api/v1/clusters?states=open,lost", StatusCode::BAD_REQUEST),
        ("/api/v1/flows/health?buckets=0", StatusCode::BAD_REQUEST),
        ("/api/v1/nothing-here", StatusCode::NOT_FOUND),
        ("/api/v1/contract", StatusCode::FORBIDDEN),
    ] {
        let (got, kind, problem) = call(&app, &viewer, "GET", uri, None).await;
        assert_eq!(got, status, "{uri}: {problem}");
        assert_eq!(kind, "application/problem+json", "{uri}");
        assert_eq!(
            (problem["type"].as_str(), problem["status"].as_u64()),
            (Some("about:blank"), Some(status.as_u16() as u64))
        );
        assert!(problem["title"].is_string() && problem["detail"].is_string(), "{problem}");
    }
}

/// A dead letter of `order` whose last attempt ran with mapping `ran`: its command id.
async fn dead_letter(store: &MemoryStore, order: &str, ran: &str) -> i64 {
    use handoff_store::{AttemptRecord, NewCommand, NewEvent, OrderState, Outcome, Plan, Recorded};
    let event = NewEvent {
        system: "shop".into(),
        event_id: format!("e-{order}"),
        kind: handoff_model::EventKind::OrderCreated,
        order_ref: order.into(),
        received_at: t0(),
        payload: "{}".into(),
        raw: None,
    };
    let Recorded::New(row) = store.record_event(event).await.unwrap() else { panic!("new") };
    let command = NewCommand {
        flow: "orders".into(),
        target: "erp".into(),
        order_ref: order.into(),
        kind: handoff_model::CommandKind::CreateOrder,
        idempotency_key: format!("{order}:create"),
        external_ref: order.into(),
        version: None,
        payload: r#"{"order":{"ref":"1"}}"#.into(),
        supersede_unsent: false,
    };
    let state = OrderState { source: "shop".into(), ..Default::default() };
    let plan = Plan {
        event_row: row,
        order_ref: order.into(),
        state,
        ledger: None,
        commands: vec![command],
        audit: vec![],
        search: Default::default(),
    };
    store.apply_plans(vec![plan], t0()).await.unwrap();
    let c = store.claim_due(t0(), 1).await.unwrap().remove(0);
    let id = c.id;
    let outcome = Outcome::DeadLettered {
        ambiguous: false,
        error: "422".into(),
        field: None,
        pattern: handoff_model::Pattern::DeadDelivery,
    };
    let record = AttemptRecord {
        command: c,
        started_at: t0(),
        finished_at: t0(),
        outcome,
        note: None,
        mapping: Some(ran.into()),
    };
    store.record_attempt(record).await.unwrap();
    id
}

#[tokio::test]
async fn a_dead_letter_is_dry_run_then_replayed_as_it_ran_or_with_the_latest_mapping() {
    let (app, store, [viewer, operator]) = hub().await;
    let pinned = dead_letter(&store, "#1", "erp/order@v3").await;
    let latest = dead_letter(&store, "#2", "erp/order@v3").await;

    // The dry run: an operator's, nothing replayed.
    let (status, _, dry) = call(&app, &operator, "GET", &format!("/api/v1/dead-letters/{pinned}/dry-run"), None).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!((dry["id"].as_i64(), dry["ran"].as_str()), (Some(pinned), Some("erp/order@v3")));
    assert!(dry["lines"][0].as_str().unwrap().starts_with(&format!("command {pinned} create_order to erp")), "{dry}");
    let (status, ..) = call(&app, &viewer, "GET", &format!("/api/v1/dead-letters/{pinned}/dry-run"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(store.dead_letters(10).await.unwrap().len(), 2, "a dry run replays nothing");

    let replay = |id: i64, mapping: &str| format!("/api/v1/dead-letters/{id}/replay?mapping={mapping}");
    let (status, kind, _) = call(&app, &operator, "POST", &replay(pinned, "newest"), None).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "application/problem+json"));

    let (status, _, done) = call(&app, &operator, "POST", &replay(pinned, "as-ran"), None).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done, json!({"replayed": 1, "mapping": "as-ran", "ran": "erp/order@v3"}));
    let (status, _, done) = call(&app, &operator, "POST", &replay(latest, "latest"), None).await;
    assert_eq!((status, done["mapping"].as_str()), (StatusCode::OK, Some("latest")));

    // The next attempts send the payloads as chosen: pinned to the version that ran, or not.
    let claimed = store.claim_due(t0() + jiff::SignedDuration::from_secs(60), 10).await.unwrap();
    let payload =
        |id: i64| -> Value { serde_json::from_str(&claimed.iter().find(|c| c.id == id).unwrap().payload).unwrap() };
    assert_eq!(payload(pinned)["mapping"], "erp/order@v3");
    assert!(payload(latest).get("mapping").is_none(), "{}", payload(latest));
    let (status, kind, _) = call(&app, &operator, "POST", &replay(pinned, "as-ran"), None).await;
    assert_eq!((status, kind.as_str()), (StatusCode::NOT_FOUND, "application/problem+json"), "no longer dead");
    let audit = store.order_timeline("#1".into()).await.unwrap().audit;
    assert!(audit.iter().any(|a| a.actor == "token:ops" && a.action == "replayed"), "{audit:?}");
}

#[tokio::test]
async fn the_doctor_answers_its_ten_questions_and_the_quarantine_pages_to_its_end() {
    let (app, store, [viewer, _]) = hub().await;
    raise(&store, "#1", 1).await;
    let (status, _, doctor) = call(&app, &viewer, "GET", "/api/v1/doctor?window_hours=24", None).await;
    assert_eq!(status, StatusCode::OK, "{doctor}");
    let questions = doctor["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 10);
    assert!(questions.iter().all(|q| ["ok", "warn", "gap"].contains(&q["verdict"].as_str().unwrap())), "{doctor}");
    assert_eq!(doctor["exceptions"], 1, "the exception raised in the window");
    let tally: u64 = doctor["verdicts"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(tally, 10);
    let (status, kind, _) = call(&app, &viewer, "GET", "/api/v1/doctor?window_hours=0", None).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "application/problem+json"));

    for n in 0..3 {
        let held = handoff_store::NewQuarantined {
            system: "shop".into(),
            source: handoff_store::QuarantineSource::Webhook,
            fingerprint: format!("f{n}"),
            order_ref: None,
            headers: Default::default(),
            body: b"{}".to_vec(),
            field: "line_items".into(),
            reason: "missing".into(),
            source_version: None,
            flow: None,
            received_at: t0(),
        };
        store.quarantine(held, t0()).await.unwrap();
    }
    let (status, _, first) = call(&app, &viewer, "GET", "/api/v1/quarantine?limit=2", None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!((first["held"].as_u64(), first["items"].as_array().unwrap().len()), (Some(3), 2));
    let next = first["next"].as_str().unwrap();
    let (_, _, rest) = call(&app, &viewer, "GET", &format!("/api/v1/quarantine?limit=2&cursor={next}"), None).await;
    assert_eq!((rest["items"].as_array().unwrap().len(), rest["next"].is_null()), (1, true), "{rest}");
    assert!(rest["items"][0]["id"].as_i64() < first["items"][1]["id"].as_i64(), "newest first");
}
