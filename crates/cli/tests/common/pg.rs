//! Hubs on one PostgreSQL database: `handoff serve --store postgres://...` processes, and the
//! vendor that posts to them round-robin, retrying until one answers 2xx.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use handoff_store::Store;
use handoff_store::postgres::PgStore;
use serde_json::Value;

use super::{BIN, Proc, client, free_port, wait_for};

/// One `handoff serve` on a shared database; killed when dropped.
pub struct PgHub {
    pub url: String,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    store: String,
    lease: String,
    proc: Option<Proc>,
    /// Whether it is stopped with SIGSTOP.
    paused: bool,
}

impl PgHub {
    /// Starts `handoff serve` with `contract` (its `hub.listen` overridden) on `store`, with
    /// claims leased for `lease` (e.g. `5s`).
    pub async fn start(dir: &Path, name: &str, contract: &str, store: &str, lease: &str) -> PgHub {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, contract).unwrap();
        let port = free_port();
        let mut hub = PgHub {
            url: format!("http://127.0.0.1:{port}"),
            port,
            config,
            log: dir.join(format!("{name}.log")),
            store: store.to_owned(),
            lease: lease.to_owned(),
            proc: None,
            paused: false,
        };
        hub.restart().await;
        hub
    }

    pub async fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .args(["--store", &self.store, "--listen", &format!("127.0.0.1:{}", self.port), "--lease", &self.lease])
            .env("HANDOFF_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
        self.paused = false;
        // It answers once its store is open and its claims recovered, which waits for the row
        // locks a paused hub may hold mid-transaction.
        let (c, url, start) = (client(), format!("{}/health", self.url), std::time::Instant::now());
        while !c.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            if let Some(Ok(Some(status))) = self.proc.as_mut().map(|p| p.0.try_wait()) {
                panic!("the hub exited ({status}):\n{}", self.log_tail());
            }
            assert!(start.elapsed() < Duration::from_secs(90), "the hub never answered:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// kill -9: no shutdown, no flush; its sessions end with it.
    pub fn kill(&mut self) {
        self.proc.take();
    }

    /// SIGSTOP: the process holds its connections, claims and leads, and does nothing.
    pub fn pause(&mut self) {
        self.signal("-STOP");
        self.paused = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        self.signal("-CONT");
        self.paused = false;
    }

    fn signal(&self, signal: &str) {
        let pid = self.proc.as_ref().expect("a running hub").0.id();
        let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Whether the process is still alive (it has not exited or crashed on its own).
    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| matches!(p.0.try_wait(), Ok(None)))
    }

    /// The last lines of its log, for a failure's message.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for PgHub {
    fn drop(&mut self) {
        if self.paused {
            self.resume();
        }
    }
}

/// Posts like a vendor: the same event until a hub answers 2xx, starting at the next hub of
/// the round and moving on to the next one after each failure (a hub killed, paused, or
/// refusing for a moment with a 503).
pub struct Vendor {
    hubs: Vec<String>,
    next: AtomicUsize,
    client: reqwest::Client,
}

impl Vendor {
    pub fn new(hubs: &[&PgHub], system: &str) -> Vendor {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        let hubs = hubs.iter().map(|h| format!("{}/webhooks/{system}", h.url)).collect();
        Vendor { hubs, next: AtomicUsize::new(0), client }
    }

    pub async fn deliver(&self, event: &Value) {
        let mut at = self.next.fetch_add(1, Ordering::Relaxed);
        loop {
            let url = &self.hubs[at % self.hubs.len()];
            match self.client.post(url).json(event).send().await {
                Ok(r) if r.status().is_success() => return,
                // A 429 (the hub's per-address rate) or 5xx: come back, as a vendor does.
                Ok(r) => assert!(
                    r.status().is_server_error() || r.status() == 429,
                    "a hub refused a good event: {}",
                    r.status()
                ),
                Err(_) => {}
            }
            at += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `contract` with the per-address webhook rate lifted: the test's vendor posts from one
/// address far faster than one real sender does.
pub fn unthrottled(contract: &str) -> String {
    let at = contract.find("[systems.").expect("a contract with systems");
    let limits = "[hub.limits]\nrate_per_source = 1000000\nrate_burst = 1000000\n\n";
    format!("{}{limits}{}", &contract[..at], &contract[at..])
}

/// Waits until every event is planned and no command is pending or in flight.
pub async fn drained(store: &PgStore, timeout: Duration) {
    wait_for("the hubs to drain", timeout, || async {
        // Counting the outbox takes a while at full size: asked once a second, not every 50 ms,
        // the check does not take the hubs' database time.
        tokio::time::sleep(Duration::from_millis(950)).await;
        let unplanned = store.unprocessed_events(1).await.ok()?;
        let counts = store.command_counts().await.ok()?;
        let busy = counts.iter().any(|(state, n)| (state == "pending" || state == "in_flight") && *n > 0);
        (unplanned.is_empty() && !busy).then_some(())
    })
    .await;
}

/// How often each fault fired at a mock (`GET /_fired`).
pub async fn fired(mock_url: &str) -> std::collections::BTreeMap<String, u64> {
    client().get(format!("{mock_url}/_fired")).send().await.unwrap().json().await.unwrap()
}

/// A throw-away PostgreSQL cluster (`initdb` and `pg_ctl` from PATH) in a temporary folder, on
/// a free port of loopback. PostgreSQL refuses to run as root: as root, it runs as the
/// `postgres` user (`runuser`). Stopped with `-m immediate` when dropped.
pub struct Cluster {
    pub port: u16,
    dir: tempfile::TempDir,
    as_postgres: bool,
}

impl Cluster {
    /// Makes the cluster (trust authentication, user `postgres`) and starts it.
    ///
    /// # Panics
    /// When `initdb` or `pg_ctl` cannot run, with what they said: never skipped.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        let as_postgres = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        if as_postgres {
            let owned = Command::new("chown").arg("postgres:postgres").arg(dir.path()).status().unwrap();
            assert!(owned.success(), "chown postgres {}: is there a postgres user?", dir.path().display());
        }
        let cluster = Cluster { port: free_port(), dir, as_postgres };
        let data = cluster.data();
        cluster.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        cluster.up();
        cluster
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    pub fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=on -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        self.run("pg_ctl", &["start", "-w", "-t", "60", "-D", &self.data(), "-l", &log, "-o", &options]);
    }

    /// `pg_ctl stop -m immediate`: every server process quits at once, nothing flushed beyond
    /// what was committed; the next start recovers from the WAL.
    pub fn crash(&self) {
        self.run("pg_ctl", &["stop", "-m", "immediate", "-w", "-D", &self.data()]);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let out = command.args(args).current_dir(self.dir.path()).output().unwrap_or_else(|e| {
            panic!("{program} could not run ({e}): the cluster test needs initdb and pg_ctl on PATH")
        });
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "pg_ctl"]);
            c
        } else {
            Command::new("pg_ctl")
        };
        let _ = command.args(["stop", "-m", "immediate", "-D", &self.data()]).output();
    }
}

/// Judges what the ERP applied for orders `0..orders` named `{prefix}{i}`, every one created
/// and the `cancelled` ones cancelled: the checker's violations, and the first orders not
/// cancelled whose last write at the ERP is not their `last` version (an update lost).
pub fn judge(
    applied: &[handoff_sim::Applied],
    prefix: &str,
    orders: usize,
    cancelled: impl Fn(usize) -> bool,
    last: u64,
) -> (Vec<handoff_sim::Violation>, Vec<String>) {
    let mut checker = handoff_sim::Checker::new();
    for i in 0..orders {
        let order_ref = format!("{prefix}{i}");
        checker.acked_create(&order_ref);
        if cancelled(i) {
            checker.acked_cancel(&order_ref);
        }
    }
    let violations = checker.check_orders(applied);
    let mut reached: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for a in applied.iter().filter(|a| a.op != "cancel") {
        if let Some(v) = a.version {
            reached.insert(a.external_ref.as_str(), v);
        }
    }
    let behind = (0..orders)
        .filter(|&i| !cancelled(i))
        .map(|i| format!("{prefix}{i}"))
        .filter(|r| reached.get(r.as_str()) != Some(&last))
        .take(5)
        .collect();
    (violations, behind)
}
