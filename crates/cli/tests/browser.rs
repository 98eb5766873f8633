//! The console in real headless Chromium, through chromedriver (WebDriver), against `handoff
//! demo`: the demo's one-time link logs in; a person made with `handoff user create` logs in
//! with their password; the queue is filtered; an order's timeline read; an exception resolved
//! and its audit entry seen; a dead letter's dry-run diff read and the dead letter replayed;
//! logout. A screenshot of each page goes to `target/screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (`scripts/install-browser`). Without them the test fails
//! when `CI` is set, and otherwise says loudly that it did not run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|p| p.is_file())
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page, once `css` holds an element whose text contains `needle` (htmx swaps pages in
/// place, so a click's page arrives a moment later).
async fn wait_text(c: &Client, css: &str, needle: &str) -> String {
    let start = Instant::now();
    loop {
        if let Ok(elements) = c.find_all(Locator::Css(css)).await {
            for e in elements {
                if let Ok(text) = e.text().await
                    && text.contains(needle)
                {
                    return text;
                }
            }
        }
        if start.elapsed() > Duration::from_secs(20) {
            let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let source = c.source().await.unwrap_or_default();
            panic!("no {css} with {needle:?} at {url}:\n{source:.3000}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.len() > 1000, "a screenshot of {name}");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_works_the_console_in_a_real_browser() {
    let (Some(chromium), Some(driver)) = (which("chromium"), which("chromedriver")) else {
        assert!(std::env::var_os("CI").is_none(), "chromium and chromedriver are missing: run scripts/install-browser");
        eprintln!("!!! BROWSER TEST NOT RUN: chromium or chromedriver missing; run scripts/install-browser !!!");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let out = dir.path().join("demo.out");
    let _demo = Proc(
        Command::new(BIN)
            .args(["demo", "--orders", "300", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(&data)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(dir.path().join("demo.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let link = wait_for("the demo to print its console link", Duration::from_secs(180), || {
        let printed = std::fs::read_to_string(&out).unwrap_or_default();
        async move { printed.lines().find_map(|l| l.trim().strip_prefix("console:").map(|u| u.trim().to_owned())) }
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");

    // A person of our own, made from the command line while the hub serves.
    let mut create = Command::new(BIN)
        .args(["user", "create", "--name", "ana", "--role", "operator", "--password-stdin", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    create.stdin.take().unwrap().write_all(b"correct horse battery\n").unwrap();
    assert!(create.wait().unwrap().success(), "handoff user create");

    let driver_port = free_port();
    let _driver = Proc(
        Command::new(driver)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut caps = serde_json::Map::new();
    let options = serde_json::json!({
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"],
    });
    caps.insert("goog:chromeOptions".into(), options);
    let webdriver = format!("http://127.0.0.1:{driver_port}");
    let c = wait_for("chromedriver to start a session", Duration::from_secs(30), || {
        let (caps, webdriver) = (caps.clone(), webdriver.clone());
        async move { ClientBuilder::rustls().ok()?.capabilities(caps).connect(&webdriver).await.ok() }
    })
    .await;

    // The demo's one-time link logs in, once.
    c.goto(&link).await.unwrap();
    wait_text(&c, "h1", "Exception queue").await;
    click(&c, "header form button").await;
    wait_text(&c, "h1", "Handoff console").await;
    c.goto(&link).await.unwrap();
    wait_text(&c, ".error", "used or has expired").await;

    // Log in with a password.
    c.goto(&format!("{base}/console")).await.unwrap();
    wait_text(&c, "h1", "Handoff console").await;
    shot(&c, "01-login").await;
    c.find(Locator::Id("name")).await.unwrap().send_keys("ana").await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys("correct horse battery").await.unwrap();
    click(&c, "form button[type=submit]").await;
    wait_text(&c, "h1", "Exception queue").await;
    wait_text(&c, "header", "ana").await;
    shot(&c, "02-queue").await;

    // Filter the queue on any state and the pattern with open exceptions: every row listed is
    // of that pattern.
    let counted =
        c.find(Locator::Css(".counts a")).await.expect("the demo leaves open exceptions").text().await.unwrap();
    let pattern = counted.split_whitespace().next().unwrap().to_owned();
    c.find(Locator::Id("f-state")).await.unwrap().select_by_value("any").await.unwrap();
    c.find(Locator::Id("f-pattern")).await.unwrap().select_by_value(&pattern).await.unwrap();
    click(&c, "form.filters button").await;
    wait_text(&c, "#matched", "listed").await;
    let url = c.current_url().await.unwrap().to_string();
    assert!(url.contains(&format!("pattern={pattern}")) && url.contains("state=any"), "{url}");
    let patterns = c.find_all(Locator::Css("tbody tr td:nth-child(3)")).await.unwrap();
    assert!(!patterns.is_empty());
    for p in patterns {
        assert_eq!(p.text().await.unwrap(), pattern);
    }
    shot(&c, "03-queue-filtered").await;

    // Open an order and read its timeline: a lane per system, the exception raised.
    c.goto(&format!("{base}/console?state=open")).await.unwrap();
    wait_text(&c, "h1", "Exception queue").await;
    let order = c.find(Locator::Css("tbody tr td:nth-child(4) a")).await.unwrap();
    let order_ref = order.text().await.unwrap();
    order.click().await.unwrap();
    wait_text(&c, "h1", &format!("Order {order_ref}")).await;
    let timeline = wait_text(&c, "#timeline", "exception raised").await;
    assert!(timeline.contains("event") && timeline.contains("received from"), "{timeline}");
    assert!(c.find(Locator::Css("svg[aria-labelledby=tl-title] circle")).await.is_ok(), "the swimlane chart");
    shot(&c, "04-order").await;

    // Resolve an open exception, and see the audit entry with the person's name.
    c.goto(&format!("{base}/console?state=open")).await.unwrap();
    wait_text(&c, "h1", "Exception queue").await;
    let first = c.find(Locator::Css("tbody tr td:nth-child(2) a")).await.unwrap();
    let id = first.text().await.unwrap();
    first.click().await.unwrap();
    wait_text(&c, "h1", &format!("Exception {id}")).await;
    c.find(Locator::Id("act-to")).await.unwrap().select_by_value("resolved").await.unwrap();
    c.find(Locator::Id("act-reason")).await.unwrap().send_keys("fixed in the ERP by hand").await.unwrap();
    click(&c, "#act").await;
    wait_text(&c, "#exception-state", "resolved").await;
    let audit = wait_text(&c, "#timeline", "user:ana").await;
    assert!(audit.contains("resolved by user:ana") && audit.contains("fixed in the ERP by hand"), "{audit}");
    shot(&c, "05-exception-resolved").await;

    // A dead letter: its dry-run diff, then its replay.
    c.goto(&format!("{base}/console/dead-letters")).await.unwrap();
    wait_text(&c, "h1", "Dead letters").await;
    shot(&c, "06-dead-letters").await;
    click(&c, "tbody tr td:first-child a").await;
    let diff = wait_text(&c, "#dry-run", "command").await;
    assert!(diff.contains("replayed now") || diff.contains("no mapping applies"), "{diff}");
    shot(&c, "07-dead-letter-dry-run").await;
    click(&c, "#replay").await;
    wait_text(&c, ".notice", "replayed with a fresh retry budget").await;
    shot(&c, "08-replayed").await;

    // A whole cluster resolved: the preview says what each member will do and changes nothing;
    // the confirmation does it.
    c.goto(&format!("{base}/console/clusters")).await.unwrap();
    wait_text(&c, "h1", "Clusters").await;
    shot(&c, "09-clusters").await;
    let members: usize = c
        .find(Locator::Css("tbody tr td:nth-child(4)"))
        .await
        .expect("the demo leaves a cluster of open exceptions")
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    c.find(Locator::Css("tbody tr select")).await.unwrap().select_by_value("resolved").await.unwrap();
    click(&c, "tbody tr form button").await;
    let title = wait_text(&c, "h1", "Confirm: resolved").await;
    let acting: usize = title.split_whitespace().nth(2).and_then(|n| n.parse().ok()).expect(&title);
    let preview = c.find(Locator::Css("tbody")).await.unwrap().text().await.unwrap();
    assert_eq!(preview.lines().count(), members, "one preview line per member: {preview}");
    assert!(acting >= 1 && preview.matches("→ resolved").count() == acting, "{title}: {preview}");
    shot(&c, "10-cluster-preview").await;
    click(&c, "#confirm").await;
    wait_text(&c, ".notice", &format!("resolved: {acting} done")).await;
    shot(&c, "11-cluster-resolved").await;

    // The other pages render.
    for (path, title, name) in [
        ("/console/flows", "Flow health", "12-flows"),
        ("/console/quarantine", "Quarantine", "13-quarantine"),
        ("/console/drift", "drift", "14-drift"),
        ("/console/doctor", "Doctor", "15-doctor"),
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        wait_text(&c, "h1", title).await;
        shot(&c, name).await;
    }

    // The audit log names the person for what they did.
    c.goto(&format!("{base}/console/audit?actor=user%3Aana")).await.unwrap();
    let audit = wait_text(&c, "#audit", "resolved").await;
    assert!(audit.contains("user:ana") && audit.contains("fixed in the ERP by hand"), "{audit}");
    shot(&c, "16-audit").await;

    // Log out: the console asks for a login again.
    click(&c, "header form button").await;
    wait_text(&c, "h1", "Handoff console").await;
    c.goto(&format!("{base}/console")).await.unwrap();
    wait_text(&c, "h1", "Handoff console").await;
    assert!(c.current_url().await.unwrap().path().starts_with("/console/login"));
    shot(&c, "17-logged-out").await;
    c.close().await.unwrap();
}
