//! Personal data planted in a whole simulation run (`handoff demo`: every simulated customer's
//! name, email and address carries the word "canary") reaches the store and the ERP payloads,
//! and appears in no log line (at trace level), no panic, no answer of the API and no metric.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const CANARY: &str = "canary";

fn leaks(text: &str) -> bool {
    text.to_lowercase().contains(CANARY)
}

#[tokio::test]
async fn canaries_of_a_simulation_run_reach_no_log_and_no_api_answer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let out = std::fs::File::create(dir.path().join("demo.out")).unwrap();
    let err = std::fs::File::create(dir.path().join("demo.err")).unwrap();
    let _demo = Proc(
        Command::new(BIN)
            .args(["demo", "--orders", "300", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(&data)
            .env("HANDOFF_LOG", "trace")
            .env("RUST_BACKTRACE", "1")
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let c = client();
    let health = format!("http://127.0.0.1:{port}/health");
    wait_for("the demo to serve its record", Duration::from_secs(120), || {
        let request = c.get(&health);
        async move { request.send().await.ok().filter(|r| r.status().is_success()) }
    })
    .await;
    // A viewer: the role that must never see personal data.
    let token = create_token(&data, "reader", "viewer");
    let get = |path: String| {
        let request = c.get(format!("{base}/{path}")).bearer_auth(&token);
        async move {
            let r = request.send().await.ok()?;
            assert!(r.status().is_success() || r.status() == 404, "{}: {}", r.url(), r.status());
            r.text().await.ok()
        }
    };
    let exceptions = get("exceptions?limit=500".into()).await.unwrap();

    // The canaries are really there: in the hub's inbox and in what it sent the ERP.
    let db = rusqlite::Connection::open(data.join("handoff.db")).unwrap();
    let planted = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert!(planted("SELECT count(*) FROM inbox WHERE payload LIKE '%canary%'") > 100);
    assert!(planted("SELECT count(*) FROM outbox_payloads WHERE payload LIKE '%canary%'") > 100);

    // Every answer of the API: lists, each exception's evidence pack, every order's timeline.
    let mut answers = vec![exceptions.clone()];
    let paths = [
        "clusters",
        "clusters?states=open,acknowledged,resolved,ignored,auto_resolved",
        "dead-letters",
        "commands?limit=500",
        "quarantine",
        "outbox",
        "drift",
        "exceptions?state=open",
        "orders?limit=500",
        "flows/health",
        "audit?limit=500",
        "doctor?window_hours=8784",
        "openapi.json",
    ];
    for path in paths {
        answers.push(get(path.into()).await.unwrap());
    }
    let listed: Vec<Value> =
        serde_json::from_value(serde_json::from_str::<Value>(&exceptions).unwrap()["items"].clone()).unwrap();
    assert!(!listed.is_empty(), "the demo raises exceptions whose evidence is checked");
    for e in &listed {
        answers.push(get(format!("exceptions/{}", e["id"])).await.unwrap());
    }
    let refs: Vec<String> = db
        .prepare("SELECT order_ref FROM orders")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(refs.len() >= 300);
    for order_ref in &refs {
        answers.push(get(format!("orders/{}", urlencode(order_ref))).await.unwrap());
    }
    // And the metrics: counted during the run, labelled by system, flow, kind and pattern only.
    let metrics = c.get(format!("http://127.0.0.1:{port}/metrics")).bearer_auth(&token).send().await;
    let metrics = metrics.unwrap().text().await.unwrap();
    for metric in ["handoff_events_received_total{", "handoff_attempts_total{", "handoff_ack_latency_seconds_count{"] {
        assert!(metrics.contains(metric), "{metric} in {metrics}");
    }
    answers.push(metrics);
    for answer in &answers {
        assert!(!leaks(answer), "an API answer shows personal data: {answer}");
    }

    // And every console page a viewer can open: the queue in every state, each exception, each
    // order, each dead letter, and the other pages.
    let pages = console_pages(&data, port, &refs, &listed).await;
    assert!(pages.len() > refs.len(), "{} pages", pages.len());
    for (uri, page) in &pages {
        assert!(!leaks(page), "the console shows a viewer personal data at {uri}: {page}");
    }

    // Nothing in the logs (trace level: every line the hub can write) or on standard output.
    let logs = std::fs::read_to_string(dir.path().join("demo.err")).unwrap();
    let printed = std::fs::read_to_string(dir.path().join("demo.out")).unwrap();
    assert!(logs.lines().count() > 100, "trace logging was on");
    assert!(printed.contains("served at"), "{printed}");
    for line in logs.lines().chain(printed.lines()) {
        assert!(!leaks(line), "a log line shows personal data: {line}");
    }
    assert!(!logs.contains("panicked"), "{logs}");
}

/// `--log-format json`: every line one JSON object, an attempt's line carrying its order
/// reference, flow and command id, and still no canary.
#[test]
fn json_logs_carry_order_flow_and_command_and_no_canary() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--orders", "60", "--no-serve", "--log-format", "json", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("HANDOFF_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logs = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<Value> =
        logs.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let attempt = lines.iter().find(|l| l["message"] == "attempt").expect("an attempt logged");
    assert!(attempt["order"].is_string() && attempt["flow"].is_string() && attempt["command"].is_i64(), "{attempt}");
    assert!(attempt["level"] == "DEBUG" && attempt["timestamp"].is_string(), "{attempt}");
    assert!(!leaks(&logs));
}

/// Logs a new viewer into the console (made with `handoff user create`) and reads every page a
/// viewer can: (path, page).
async fn console_pages(
    data: &std::path::Path,
    port: u16,
    refs: &[String],
    exceptions: &[Value],
) -> Vec<(String, String)> {
    use std::io::Write as _;
    let mut create = Command::new(BIN)
        .args(["user", "create", "--name", "reader", "--role", "viewer", "--password-stdin", "--data-dir"])
        .arg(data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    create.stdin.take().unwrap().write_all(b"a long viewer password\n").unwrap();
    assert!(create.wait().unwrap().success());
    let base = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie_of = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}="))?.split(';').next().map(str::to_owned))
            .unwrap()
    };
    let form = c.get(format!("{base}/console/login")).send().await.unwrap();
    let login = cookie_of(&form, "handoff_login");
    let body = format!("csrf={login}&name=reader&password=a+long+viewer+password&next=%2Fconsole");
    let logged_in = c
        .post(format!("{base}/console/login"))
        .header(reqwest::header::COOKIE, format!("handoff_login={login}"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(logged_in.status(), 303, "the viewer logs in");
    let session = format!("handoff_session={}", cookie_of(&logged_in, "handoff_session"));
    let mut uris: Vec<String> =
        ["", "?state=any", "?state=resolved", "?state=auto_resolved", "/clusters", "/dead-letters"]
            .iter()
            .chain(&["/quarantine", "/flows?days=365", "/drift", "/audit", "/doctor?hours=8784"])
            .map(|p| format!("/console{p}"))
            .collect();
    uris.extend(exceptions.iter().map(|e| format!("/console/exceptions/{}", e["id"])));
    uris.extend(refs.iter().map(|r| format!("/console/orders/{}", urlencode(r))));
    let mut pages = Vec::new();
    for uri in uris {
        let r = c.get(format!("{base}{uri}")).header(reqwest::header::COOKIE, &session).send().await.unwrap();
        assert_eq!(r.status(), 200, "{uri}");
        let page = r.text().await.unwrap();
        assert!(page.contains("masked for your role"), "{uri} is a viewer's page");
        pages.push((uri, page));
    }
    // Each dead letter the list links to.
    let list = pages.iter().find(|(u, _)| u == "/console/dead-letters").map(|(_, p)| p.clone()).unwrap();
    for id in list.split("href=\"/console/dead-letters/").skip(1).filter_map(|s| s.split('"').next()) {
        let uri = format!("/console/dead-letters/{id}");
        let r = c.get(format!("{base}{uri}")).header(reqwest::header::COOKIE, &session).send().await.unwrap();
        assert_eq!(r.status(), 200, "{uri}");
        pages.push((uri, r.text().await.unwrap()));
    }
    pages
}
