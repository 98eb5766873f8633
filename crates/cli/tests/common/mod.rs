//! Drives the real `handoff` binary: a hub and simulated systems as child processes on
//! loopback ports, each in its own temporary directory.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod pg;

use handoff_sim::Applied;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_handoff");

/// A loopback port nothing holds, picked at random below the kernel's ephemeral range: a port
/// the kernel hands out (`bind` to port 0) can be taken again, by another test's outgoing
/// connection, in the moment before the process it is meant for binds it.
pub fn free_port() -> u16 {
    const LOWEST: u16 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral > LOWEST + 1_000 {
        for _ in 0..200 {
            let port = rand::random_range(LOWEST..ephemeral);
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    // A machine whose ephemeral range starts low: the kernel's choice, as before.
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Fails the test at once when `child`, which a test waits to hear from, has ended: it never
/// will. `left` says what it left behind (its log).
fn still_running(child: &mut Child, what: &str, left: impl FnOnce() -> String) {
    if let Some(status) = child.try_wait().unwrap() {
        panic!("{what} ended ({status}) before it answered{}", left());
    }
}

/// Polls `f` until it returns `Some`, failing the test with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Mock {
    pub url: String,
    _proc: Proc,
}

impl Mock {
    /// Starts `handoff mock --name NAME` with extra flags, and waits until it answers.
    pub async fn start(name: &str, args: &[&str]) -> Mock {
        let port = free_port();
        let child = Command::new(BIN)
            .args(["mock", "--name", name, "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut mock = Mock { url: format!("http://127.0.0.1:{port}"), _proc: Proc(child) };
        let c = client();
        let url = format!("{}/_faults", mock.url);
        let what = format!("the mock {name}");
        wait_for("the mock to answer", Duration::from_secs(10), || {
            still_running(&mut mock._proc.0, &what, String::new);
            let c = c.clone();
            let url = url.clone();
            async move { c.get(&url).send().await.ok().map(|_| ()) }
        })
        .await;
        mock
    }

    pub async fn applied(&self) -> Vec<Applied> {
        client().get(format!("{}/_applied", self.url)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn set_faults(&self, faults: Value) {
        let r = client().put(format!("{}/_faults", self.url)).json(&faults).send().await.unwrap();
        assert!(r.status().is_success(), "faults refused: {}", r.text().await.unwrap());
    }

    /// Makes this system fulfil one of its orders and announce it to the hub.
    pub async fn fulfil(&self, external_ref: &str) {
        let r = client()
            .post(format!("{}/_fulfil", self.url))
            .json(&json!({"external_ref": external_ref}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
}

pub struct Hub {
    pub url: String,
    pub port: u16,
    pub dir: PathBuf,
    pub config: PathBuf,
    /// An admin token of this hub's API.
    pub token: String,
    proc: Option<Proc>,
}

/// A contract with a storefront `shop` and an ERP `erp`, fast retries for tests.
pub fn contract(port: u16, erp: &str, shop: &str, erp_extra: &str) -> String {
    let orders = r#"["order.created", "order.updated", "order.cancelled"]"#;
    format!(
        "[hub]\nlisten = \"127.0.0.1:{port}\"\n\n{}\n{}{erp_extra}\n\n{}\n{}",
        http_json_system("shop", "storefront", shop),
        http_json_system("erp", "erp", erp),
        flow("orders-to-erp", "shop", "erp", orders, "record-id", 30),
        flow("fulfillments-to-shop", "erp", "shop", r#"["fulfillment.created"]"#, "read-back", 30),
    )
}

/// An `http-json` system at `url` with test time-outs.
pub fn http_json_system(name: &str, role: &str, url: &str) -> String {
    format!(
        "[systems.{name}]\nrole = \"{role}\"\nconnector = \"http-json\"\nbase_url = \"{url}\"\ntimeout = \"2s\"\n\
         settle = \"200ms\"\n"
    )
}

/// A flow with fast retries for tests; `events` is a TOML list.
pub fn flow(name: &str, from: &str, to: &str, events: &str, proof: &str, attempts: u32) -> String {
    format!(
        "[flows.{name}]\nfrom = \"{from}\"\nto = \"{to}\"\nevents = {events}\nproof = \"{proof}\"\ndeadline = \"15m\"\n\
         retry = {{ attempts = {attempts}, backoff_base = \"100ms\", backoff_cap = \"1s\", jitter = \"equal\", deadline = \"1h\" }}\n"
    )
}

/// A vendor payload of ours in the vendor's documented shape (`crates/connectors/tests/payloads`).
pub fn vendor_payload(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/tests/payloads").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Hub {
    /// Writes the contract into `dir` and starts `handoff serve` on it.
    pub async fn start(dir: &Path, port: u16, contract: &str) -> Hub {
        let config = dir.join("handoff.toml");
        std::fs::write(&config, contract).unwrap();
        let token = create_token(&dir.join("data"), "tests", "admin");
        let url = format!("http://127.0.0.1:{port}");
        let mut hub = Hub { url, port, dir: dir.to_owned(), config, token, proc: None };
        hub.restart().await;
        hub
    }

    /// A GET of this hub's API (or `/metrics`) with its admin token.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        client().get(format!("{}{path}", self.url)).bearer_auth(&self.token)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub async fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("hub.log")).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.data_dir())
            .env("HANDOFF_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let proc = self.proc.insert(Proc(child));
        let c = client();
        let url = format!("{}/health", self.url);
        let log = self.dir.join("hub.log");
        wait_for("the hub to answer", Duration::from_secs(20), || {
            still_running(&mut proc.0, "the hub", || {
                format!(":\n{}", std::fs::read_to_string(&log).unwrap_or_default())
            });
            let c = c.clone();
            let url = url.clone();
            async move { c.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
    }

    /// The hub's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.0.id())
    }

    /// Whether the hub's process is still running (it has not exited or crashed).
    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| matches!(p.0.try_wait(), Ok(None)))
    }

    /// kill -9: no shutdown, no flush.
    pub fn kill(&mut self) {
        self.proc.take();
    }

    pub async fn post(&self, system: &str, event: &Value) -> reqwest::Response {
        client().post(format!("{}/webhooks/{system}", self.url)).json(event).send().await.unwrap()
    }

    /// Waits until nothing is pending or in flight and the inbox is drained.
    pub async fn drained(&self) {
        wait_for("the outbox to drain", Duration::from_secs(120), || {
            let request = self.get("/api/v1/outbox");
            async move {
                let counts: Value = request.send().await.ok()?.json().await.ok()?;
                let busy = ["pending", "in_flight", "unplanned_events"].iter().any(|k| counts.get(k).is_some());
                (!busy).then_some(())
            }
        })
        .await;
    }

    pub async fn order(&self, order_ref: &str) -> Value {
        self.get(&format!("/api/v1/orders/{}", urlencode(order_ref))).send().await.unwrap().json().await.unwrap()
    }

    /// Runs the `handoff` CLI against this hub's data directory.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .env("HANDOFF_DATA_DIR", self.data_dir())
            .env("HANDOFF_LOG", "warn")
            .output()
            .unwrap()
    }
}

/// `handoff token create` on a data directory: the token it prints.
pub fn create_token(data_dir: &Path, name: &str, role: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "create", "--name", name, "--role", role, "--data-dir"])
        .arg(data_dir)
        .env("HANDOFF_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A canonical `order.created` (or `order.updated` with `kind`) event.
pub fn order_event(event_id: &str, kind: &str, order_ref: &str, version: u64) -> Value {
    json!({
        "event_id": event_id,
        "kind": kind,
        "order_ref": order_ref,
        "occurred_at": "2026-11-26T10:00:00Z",
        "version": version,
        "order": {
            "order_ref": order_ref,
            "customer": {"email": "ada@example.com"},
            "lines": [{"sku": "MUG-1", "quantity": 2, "unit_price": "9.95"}],
            "currency": "EUR",
            "totals": {"subtotal": "19.90", "tax": "3.78", "shipping": "4.90", "total": "28.58"},
            "placed_at": "2026-11-26T10:00:00Z"
        }
    })
}

pub fn cancel_event(event_id: &str, order_ref: &str, version: u64) -> Value {
    json!({
        "event_id": event_id,
        "kind": "order.cancelled",
        "order_ref": order_ref,
        "occurred_at": "2026-11-26T10:05:00Z",
        "version": version,
    })
}
