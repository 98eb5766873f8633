//! `handoff bench`: the write path's benchmarks. Each prints its figures; none asserts a time.
//! The hub and the mock ERP run as child processes of this binary, the load generator in this
//! process, all on this machine (loopback), as a merchant's single box would run them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use handoff_contract::Contract;
use handoff_contract::data_dir::StoreAt;
use handoff_engine::{Intake, SystemClock};
use handoff_store::postgres::testing::TestSchema;
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use handoff_store::{NewEvent, Store};
use hdrhistogram::Histogram;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::bench_load::closed_loop;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// The store's durable intake path alone, against a minimal rusqlite program doing the same
    /// inserts with the same durability and batch size (the ceiling), in the same run.
    Store {
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// Concurrent writers; sets the batch size the group commit sees.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
    },
    /// Durable webhook intake over HTTP: the peak rate at each number of connections, then
    /// latency at a fixed rate.
    Intake {
        /// Events posted at the peak, at each number of connections.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        /// Connections posting at once, comma-separated: one peak run each, the hub's busiest
        /// figure printed last. 1,024 is the hub's default limit of connections.
        #[arg(long, value_delimiter = ',', default_values_t = [128, 256, 512, 1024])]
        concurrency: Vec<usize>,
        /// Events per second of the fixed-rate run.
        #[arg(long, default_value_t = 2000)]
        rate: u64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Event ids as vendors send them, in no order (Shopify's webhook ids are UUIDs), instead
        /// of `bench-<n>`, which sort in the order sent: the inbox's key of redeliveries then
        /// takes a leaf of its own for each event, as a vendor's traffic makes it.
        #[arg(long)]
        vendor_ids: bool,
        #[command(flatten)]
        hubs: Hubs,
    },
    /// Webhook -> planned -> outbox -> delivered to the mock ERP over loopback -> acknowledged.
    E2e {
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
        #[arg(long, default_value_t = 128)]
        concurrency: usize,
        #[command(flatten)]
        hubs: Hubs,
    },
    /// A Shopify order webhook from raw bytes to the NetSuite payload, against serde_json
    /// parsing the same bytes, on one core.
    Mapping {
        /// The Shopify order (default: the 2026-07 fixture in ../shared/fixtures).
        #[arg(long)]
        payload: Option<PathBuf>,
        #[arg(long, default_value_t = 20_000)]
        iterations: usize,
    },
    /// Events through the failure-pattern rules on one core, with many orders open.
    Rules {
        /// Open orders before each run, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000, 1_000_000])]
        open: Vec<usize>,
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
    },
    /// Time until the rules are ready after a restart over many settled orders and their
    /// history, without and with a checkpoint, and what the restart wrote.
    Restart {
        #[arg(long, default_value_t = 100_000)]
        orders: usize,
    },
    /// The retention purge over a store of many settled orders with their raw bodies: the time
    /// of each purge, and the commit waits of webhooks arriving meanwhile.
    Purge {
        #[arg(long, default_value_t = 1_000_000)]
        orders: usize,
    },
    /// The API's list endpoints over a store of many orders and exceptions: requests per second
    /// and latency per endpoint with keep-alive clients.
    Api {
        #[arg(long, default_value_t = 1_000_000)]
        orders: usize,
        #[arg(long, default_value_t = 100_000)]
        exceptions: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds per endpoint.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Server-side render time of the console's queue, an order page and the clusters over a
    /// store of many orders and exceptions (p50, p99, max over `requests` each).
    Console {
        #[arg(long, default_value_t = 1_000_000)]
        orders: usize,
        #[arg(long, default_value_t = 100_000)]
        exceptions: usize,
        #[arg(long, default_value_t = 1_000)]
        requests: usize,
    },
    /// Idle RSS of the hub, then its RSS while orders flow through it to completion (webhook
    /// -> planned -> delivered to the mock ERP -> acknowledged, rules driver included), at the
    /// hub's own pace with at most `window` orders waiting; or, with `--backlog`, while a
    /// backlog filled beforehand drains.
    Rss {
        #[arg(long, default_value_t = 1_000_000)]
        orders: usize,
        /// Orders sent but not yet acknowledged, at most: the load pauses above it, as a
        /// merchant's traffic runs below what the hub delivers.
        #[arg(long, default_value_t = 20_000)]
        window: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Instead of the flow: fill a backlog of this many create commands with the hub
        /// stopped, then measure while it drains.
        #[arg(long)]
        backlog: Option<usize>,
    },
}

/// Where the hubs of `intake` and `e2e` keep their store, and how many share it.
#[derive(clap::Args, Clone)]
pub struct Hubs {
    /// A PostgreSQL database (`postgres://...`): the hubs run on a schema of their own there,
    /// dropped at the end. Without it, one hub on SQLite in the scratch folder.
    #[arg(long)]
    store: Option<String>,
    /// `handoff serve` processes sharing the PostgreSQL store; the load goes to each in turn.
    #[arg(long, default_value_t = 1)]
    hubs: usize,
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    if let BenchCommand::Mapping { payload, iterations } = &command {
        return crate::bench_mapping::run(payload.as_deref(), *iterations);
    }
    if let BenchCommand::Rules { open, events } = &command {
        return crate::bench_rules::run(open, *events);
    }
    let dir = tempfile_dir()?;
    println!(
        "machine: {} cores; scratch {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.display()
    );
    let result = match command {
        BenchCommand::Store { events, concurrency } => store(&dir, events, concurrency).await,
        BenchCommand::Intake { events, concurrency, rate, seconds, vendor_ids, hubs } => {
            intake(&dir, Load { events, concurrency: &concurrency, rate, seconds, vendor_ids }, &hubs).await
        }
        BenchCommand::E2e { orders, concurrency, hubs } => e2e(&dir, orders, concurrency, &hubs).await,
        BenchCommand::Rss { backlog: Some(backlog), .. } => rss(&dir, backlog).await,
        BenchCommand::Rss { orders, window, concurrency, backlog: None } => {
            rss_flow(&dir, orders, window, concurrency).await
        }
        BenchCommand::Restart { orders } => crate::bench_restart::run(&dir, orders).await,
        BenchCommand::Purge { orders } => crate::bench_purge::run(&dir, orders).await,
        BenchCommand::Console { orders, exceptions, requests } => {
            crate::bench_console::run(&dir, orders, exceptions, requests).await
        }
        BenchCommand::Api { orders, exceptions, concurrency, seconds } => {
            crate::bench_api::run(&dir, orders, exceptions, concurrency, seconds).await
        }
        BenchCommand::Mapping { .. } | BenchCommand::Rules { .. } => unreachable!("run above"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::current_dir()?.join(format!("handoff-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Lines per benchmark order: enough for a body of about 2 KB.
const LINES: u32 = 22;

/// A canonical `order.created` of about 2 KB.
pub fn order_event(i: usize) -> String {
    order_event_with_id(i, &format!("bench-{i}"))
}

/// [`order_event`] with its event id.
fn order_event_with_id(i: usize, event_id: &str) -> String {
    let order_ref = format!("#B{i}");
    let lines: Vec<Value> = (0..LINES)
        .map(|n| json!({"sku": format!("SKU-{:05}-{n}", i % 50_000), "quantity": 1 + n % 3, "unit_price": "12.50", "tax": "2.50"}))
        .collect();
    let subtotal: u32 = (0..LINES).map(|n| 1250 * (1 + n % 3)).sum();
    let subtotal = format!("{}.{:02}", subtotal / 100, subtotal % 100);
    json!({
        "event_id": event_id,
        "kind": "order.created",
        "order_ref": order_ref,
        "occurred_at": "2026-11-26T10:00:00Z",
        "version": 1,
        "order": {
            "order_ref": order_ref,
            "channel": "web",
            "customer": {"email": format!("customer{i}@example.com"), "name": "Ada Lovelace"},
            "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Square", "line2": "Flat 3",
                                 "city": "London", "region": "Greater London", "postal_code": "SW1Y 4JH", "country": "GB"},
            "lines": lines,
            "currency": "GBP",
            "totals": {"subtotal": subtotal, "tax": "0", "shipping": "0", "discount": "0", "total": subtotal},
            "placed_at": "2026-11-26T09:59:58Z"
        }
    })
    .to_string()
}

async fn store(dir: &Path, events: usize, concurrency: usize) -> anyhow::Result<()> {
    let bodies: Arc<Vec<String>> = Arc::new((0..events).map(order_event).collect());
    println!(
        "events: {events} of {} bytes; {concurrency} concurrent writers; SQLite WAL, each commit synced before its \
         writers hear back (the ceiling: synchronous=FULL; the store: its sync thread)",
        bodies[0].len()
    );

    let store = SqliteStore::open(&dir.join("store"), SqliteOptions::default())?;
    let start = Instant::now();
    let payloads = bodies.clone();
    record_concurrently(&store, events, concurrency, move |i| payloads[i].clone()).await?;
    let store_secs = start.elapsed().as_secs_f64();
    let (commits, jobs) = store.writer_stats();
    let batch = (jobs as f64 / commits as f64).round().max(1.0) as usize;
    let store_rate = events as f64 / store_secs;
    drop(store);

    // The ceiling is the raw program at its own best batch size, not at the store's: each size
    // is swept and the fastest is the bar.
    let mut best = (0.0_f64, 0);
    for size in CEILING_BATCHES {
        let rate = ceiling(&dir.join(format!("ceiling-{size}")), &bodies, size)?;
        println!("ceiling (rusqlite), batches of {size:>5}: {rate:>9.0} events/s");
        if rate > best.0 {
            best = (rate, size);
        }
    }
    let (ceiling_rate, ceiling_batch) = best;
    println!(
        "store intake path:  {store_rate:>9.0} events/s  ({commits} commits, {batch} events per commit on average)"
    );
    println!(
        "ceiling (rusqlite): {ceiling_rate:>9.0} events/s  (same inserts, same durability, its best batch: {ceiling_batch})"
    );
    println!("store / ceiling:    {:>9.0} %", 100.0 * store_rate / ceiling_rate);
    Ok(())
}

/// Records `count` benchmark orders through the store from `concurrency` tasks at once, as
/// concurrent webhooks would; `payload(i)` is the body of the i-th.
async fn record_concurrently(
    store: &SqliteStore,
    count: usize,
    concurrency: usize,
    payload: impl Fn(usize) -> String + Send + Sync + 'static,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let payload = Arc::new(payload);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (store, next, payload) = (store.clone(), next.clone(), payload.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return Ok::<_, handoff_store::StoreError>(());
                    }
                    let event = NewEvent {
                        system: "shop".into(),
                        event_id: format!("bench-{i}"),
                        kind: handoff_model::EventKind::OrderCreated,
                        order_ref: format!("#B{i}"),
                        received_at: Timestamp::now(),
                        payload: payload(i),
                        raw: None,
                    };
                    store.record_event(event).await?;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The batch sizes the raw ceiling is measured at.
const CEILING_BATCHES: [usize; 6] = [1, 16, 64, 256, 1024, 4096];

/// The minimal program: one connection, the same table and pragmas, the same rows in
/// transactions of `batch` rows, one prepared statement, and no checkpoints at all (the store
/// runs them on another thread; here they are left out, so this is an upper bound).
fn ceiling(dir: &Path, bodies: &[String], batch: usize) -> anyhow::Result<f64> {
    // The store creates the same schema, so both write the same table with the same indexes.
    drop(SqliteStore::open(dir, SqliteOptions::default())?);
    let conn = rusqlite::Connection::open(dir.join(handoff_store::sqlite::DB_FILE))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    let start = Instant::now();
    for (chunk_no, chunk) in bodies.chunks(batch).enumerate() {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO inbox (system, event_id, kind, order_ref, received_at, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (system, event_id) DO NOTHING",
            )?;
            for (n, body) in chunk.iter().enumerate() {
                let i = chunk_no * batch + n;
                stmt.execute(rusqlite::params![
                    "shop",
                    format!("bench-{i}"),
                    "order.created",
                    format!("#B{i}"),
                    Timestamp::now().as_microsecond(),
                    body
                ])?;
            }
        }
        conn.execute_batch("COMMIT")?;
    }
    Ok(bodies.len() as f64 / start.elapsed().as_secs_f64())
}

/// A child process of this binary, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spawn(args: &[&str]) -> anyhow::Result<Running> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .args(args)
        .env("HANDOFF_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting a child handoff")?;
    Ok(Running(child))
}

async fn wait_up(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if client.get(url).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{url} never answered")
}

/// The load generator is one client address sending what many vendors would: the per-address
/// rate and connection limits are lifted for it (every other limit of `[hub.limits]` stays).
const LOAD_FROM_ONE_ADDRESS: &str = "[hub.limits]\nrate_per_source = 1000000\nrate_burst = 1000000\n\
                                     max_connections = 8192\nmax_connections_per_source = 8192\n";

/// Starts a mock ERP (`handoff mock`, with `extra` flags) and waits until it answers.
async fn start_erp(client: &reqwest::Client, extra: &[&str]) -> anyhow::Result<(Running, String)> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let erp = spawn(&[&["mock", "--name", "erp", "--listen", &listen], extra].concat())?;
    let url = format!("http://{listen}");
    wait_up(client, &format!("{url}/_faults")).await?;
    Ok((erp, url))
}

/// A hub this benchmark started, and the token it reads the hub's API with.
struct BenchHub {
    process: Running,
    url: String,
    token: String,
}

/// The store the benchmark's hubs run on.
enum BenchStore {
    /// SQLite in this data directory.
    Sqlite(PathBuf),
    /// A fresh schema of a PostgreSQL database, dropped with it.
    Postgres(TestSchema),
}

impl BenchStore {
    async fn new(dir: &Path, hubs: &Hubs) -> anyhow::Result<BenchStore> {
        match &hubs.store {
            None if hubs.hubs > 1 => bail!("--hubs {} needs --store postgres://...: SQLite has one hub", hubs.hubs),
            None => Ok(BenchStore::Sqlite(dir.join("data"))),
            Some(url) if handoff_store::postgres::is_url(url) => {
                let schema = TestSchema::create(url).await.context("creating the benchmark's schema")?;
                println!("store: PostgreSQL schema {} ({} hubs)", schema.name, hubs.hubs);
                Ok(BenchStore::Postgres(schema))
            }
            Some(other) => bail!("--store {other}: a postgres:// URL (the default is SQLite in the scratch folder)"),
        }
    }

    fn at(&self) -> StoreAt {
        match self {
            BenchStore::Sqlite(dir) => StoreAt::Dir(dir.clone()),
            BenchStore::Postgres(schema) => StoreAt::Postgres(schema.store_url()),
        }
    }

    /// `serve`'s arguments naming this store.
    fn serve_args(&self) -> [String; 2] {
        match self {
            BenchStore::Sqlite(dir) => ["--data-dir".into(), path(dir).into()],
            BenchStore::Postgres(schema) => ["--store".into(), schema.store_url()],
        }
    }

    /// Drops a PostgreSQL schema once the hubs on it have stopped.
    async fn drop_schema(self) -> anyhow::Result<()> {
        if let BenchStore::Postgres(schema) = self {
            schema.drop().await?;
        }
        Ok(())
    }
}

/// Starts one hub on SQLite in `dir/data` (see [`start_hubs`]).
async fn start_hub(dir: &Path, erp_url: Option<&str>, client: &reqwest::Client) -> anyhow::Result<BenchHub> {
    let store = BenchStore::Sqlite(dir.join("data"));
    Ok(start_hubs(dir, erp_url, client, &store, 1).await?.remove(0))
}

/// Starts `count` hubs on `store` with a contract whose `erp` target is at `erp_url`; without
/// one, the contract has no flows and the hubs only record and plan (the intake path alone).
async fn start_hubs(
    dir: &Path,
    erp_url: Option<&str>,
    client: &reqwest::Client,
    store: &BenchStore,
    count: usize,
) -> anyhow::Result<Vec<BenchHub>> {
    let token = {
        let store = crate::store::create(&store.at()).await?;
        crate::token::create(&store, "bench", handoff_store::Role::Viewer, Some(1), "bench", Timestamp::now()).await?
    };
    let mut hubs = Vec::with_capacity(count);
    for i in 0..count {
        let port = free_port()?;
        let config = dir.join(format!("handoff-{i}.toml"));
        std::fs::write(&config, contract(port, erp_url))?;
        let [flag, at] = store.serve_args();
        let process = spawn(&["serve", "--config", path(&config), &flag, &at])?;
        let url = format!("http://127.0.0.1:{port}");
        wait_up(client, &format!("{url}/health")).await?;
        hubs.push(BenchHub { process, url, token: token.clone() });
    }
    Ok(hubs)
}

/// The benchmark's contract for a hub listening on `port`.
fn contract(port: u16, erp_url: Option<&str>) -> String {
    match erp_url {
        None => format!(
            "[hub]\nlisten = \"127.0.0.1:{port}\"\n{LOAD_FROM_ONE_ADDRESS}[systems.shop]\nrole = \"storefront\"\nconnector = \"http-json\"\n"
        ),
        Some(erp_url) => format!(
            r#"
[hub]
listen = "127.0.0.1:{port}"
max_in_flight = 512
{LOAD_FROM_ONE_ADDRESS}[systems.shop]
role = "storefront"
connector = "http-json"
[systems.erp]
role = "erp"
connector = "http-json"
base_url = "{erp_url}"
timeout = "5s"
max_in_flight = 512
rate = 100000
[flows.orders-to-erp]
from = "shop"
to = "erp"
events = ["order.created", "order.updated", "order.cancelled"]
proof = "record-id"
deadline = "15m"
retry = {{ attempts = 20, backoff_base = "100ms", backoff_cap = "5s", deadline = "1h" }}
"#
        ),
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("scratch paths are UTF-8")
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(1024).timeout(Duration::from_secs(30)).build()?)
}

fn print_latency(label: &str, hist: &Histogram<u64>) {
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{label}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        hist.max() as f64 / 1000.0
    );
}

/// What `bench intake` sends: events at the peak over each number of connections, then a fixed
/// rate for a time.
#[derive(Clone, Copy)]
struct Load<'a> {
    events: usize,
    concurrency: &'a [usize],
    rate: u64,
    seconds: u64,
    vendor_ids: bool,
}

impl Load<'_> {
    /// The `i`-th event sent.
    fn event(&self, i: usize) -> String {
        if self.vendor_ids { order_event_with_id(i, &vendor_id(i)) } else { order_event(i) }
    }
}

/// An event id as a vendor makes one, the same for the same `i`: 128 random bits written as a
/// UUID is.
fn vendor_id(i: usize) -> String {
    use rand::{Rng, SeedableRng};
    let hex = format!("{:032x}", rand_chacha::ChaCha8Rng::seed_from_u64(i as u64).random::<u128>());
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

async fn intake(dir: &Path, load: Load<'_>, hubs: &Hubs) -> anyhow::Result<()> {
    let store = BenchStore::new(dir, hubs).await?;
    let result = intake_on(dir, load, &store, hubs.hubs).await;
    store.drop_schema().await?;
    result
}

async fn intake_on(dir: &Path, load: Load<'_>, store: &BenchStore, count: usize) -> anyhow::Result<()> {
    let Load { events, concurrency, rate, seconds, .. } = load;
    anyhow::ensure!(!concurrency.is_empty(), "--concurrency names no number of connections");
    let client = http_client()?;
    // No flows: the hubs record and plan each event, and deliver nothing (see `e2e`).
    let hubs = start_hubs(dir, None, &client, store, count).await?;
    let hub = &hubs[0];
    let webhooks: Vec<String> = hubs.iter().map(|h| format!("{}/webhooks/shop", h.url)).collect();

    let ids = if load.vendor_ids { "vendors' ids" } else { "ids in order" };
    let mut sent = 0;
    let mut busiest = (0, 0.0);
    for &connections in concurrency {
        let bodies: Arc<Vec<Bytes>> = Arc::new((sent..sent + events).map(|i| load.event(i).into()).collect());
        sent += events;
        println!("peak: {events} events of {} bytes ({ids}), {connections} connections", bodies[0].len());
        let before = commits(&client, hub).await?;
        let cpu = CpuUse::start(&[("first hub", hub.process.0.id()), ("load generator", std::process::id())])?;
        let (peak, hist) = closed_loop(&webhooks, bodies, connections).await?;
        let after = commits(&client, hub).await?;
        println!("durable intake over HTTP: {peak:.0} events/s");
        print_latency("  time to 2xx under peak load", &hist);
        print_commits("  first hub's store", before, after, events as f64 / peak, events);
        cpu.print(events, events as f64 / peak, "event")?;
        if peak > busiest.1 {
            busiest = (connections, peak);
        }
        // Each peak starts on a hub at rest, not on one still planning the last one's events.
        all_planned(&client, hub, events, events as f64 / peak).await?;
    }
    println!("busiest: {:.0} events/s durable over HTTP, with {} connections", busiest.1, busiest.0);

    let total = (rate * seconds) as usize;
    let bodies: Arc<Vec<String>> = Arc::new((sent..sent + total).map(|i| load.event(i)).collect());
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("fixed rate: {rate} events/s for {seconds} s (latency measured from each request's scheduled time)");
    let hist = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new(3)?));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / rate);
        tokio::time::sleep_until(due).await;
        let url = webhooks[i % webhooks.len()].clone();
        let (client, bodies, hist) = (client.clone(), bodies.clone(), hist.clone());
        tasks.push(tokio::spawn(async move {
            let r = client.post(&url).body(bodies[i].clone()).send().await?;
            if !r.status().is_success() {
                bail!("hub answered {}", r.status());
            }
            let latency = due.elapsed().as_micros() as u64;
            hist.lock().expect("histogram lock").record(latency)?;
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    print_latency(&format!("  time to 2xx at {rate} events/s"), &hist.lock().expect("histogram lock"));
    Ok(())
}

/// The hub's outbox counts (`GET /api/v1/outbox`): one of them by name, 0 when absent.
async fn outbox_counts(client: &reqwest::Client, hub: &BenchHub) -> anyhow::Result<impl Fn(&str) -> u64> {
    let outbox = client.get(format!("{}/api/v1/outbox", hub.url)).bearer_auth(&hub.token);
    let counts: Value = outbox.send().await?.json().await?;
    Ok(move |k: &str| counts.get(k).and_then(Value::as_u64).unwrap_or(0))
}

/// Waits until the hub has planned every event it recorded (none counted as unplanned), and
/// says how long that took and the rate of the peak's `events`, posted in `posting` seconds,
/// recorded and planned: a peak the planning cannot follow waits in the inbox.
async fn all_planned(client: &reqwest::Client, hub: &BenchHub, events: usize, posting: f64) -> anyhow::Result<()> {
    let waited = Instant::now();
    while outbox_counts(client, hub).await?("unplanned_events") > 0 {
        if waited.elapsed() > Duration::from_secs(300) {
            bail!("the peak's events were not all planned after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = waited.elapsed().as_secs_f64();
    println!(
        "  the peak's events all planned {after:.1} s after its last 2xx: recorded and planned {:.0} events/s",
        events as f64 / (posting + after)
    );
    Ok(())
}

/// The store's group commits and WAL syncs so far, each count with its total time in seconds,
/// from the hub's `/metrics` (no syncs on PostgreSQL, whose commits sync).
async fn commits(client: &reqwest::Client, hub: &BenchHub) -> anyhow::Result<[f64; 4]> {
    let text = client.get(format!("{}/metrics", hub.url)).bearer_auth(&hub.token).send().await?.text().await?;
    let value = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok()).unwrap_or(0.0)
    };
    Ok([
        "handoff_store_commit_seconds_count",
        "handoff_store_commit_seconds_sum",
        "handoff_store_sync_seconds_count",
        "handoff_store_sync_seconds_sum",
    ]
    .map(value))
}

/// What the store's writer did over a run, from [`commits`] before and after it: how often it
/// committed and synced, and how long each took.
fn print_commits(label: &str, before: [f64; 4], after: [f64; 4], elapsed: f64, items: usize) {
    let [commits, commit_secs, syncs, sync_secs] = [0, 1, 2, 3].map(|i| after[i] - before[i]);
    if commits > 0.0 {
        println!(
            "{label}: {:.0} group commits/s, {:.2} ms each on average (jobs and commit), {:.2} per item",
            commits / elapsed,
            1000.0 * commit_secs / commits,
            commits / items as f64
        );
    }
    if syncs > 0.0 {
        println!("{label}: {:.0} WAL syncs/s, {:.2} ms each on average", syncs / elapsed, 1000.0 * sync_secs / syncs);
    }
}

async fn acknowledged(client: &reqwest::Client, hub: &BenchHub) -> anyhow::Result<(u64, u64)> {
    let n = outbox_counts(client, hub).await?;
    Ok((n("acknowledged"), n("pending") + n("in_flight")))
}

async fn e2e(dir: &Path, orders: usize, concurrency: usize, hubs: &Hubs) -> anyhow::Result<()> {
    let store = BenchStore::new(dir, hubs).await?;
    let result = e2e_on(dir, orders, concurrency, &store, hubs.hubs).await;
    store.drop_schema().await?;
    result
}

async fn e2e_on(dir: &Path, orders: usize, concurrency: usize, store: &BenchStore, count: usize) -> anyhow::Result<()> {
    let client = http_client()?;
    let (erp, erp_url) = start_erp(&client, &[]).await?;
    let hubs = start_hubs(dir, Some(&erp_url), &client, store, count).await?;
    let webhooks: Vec<String> = hubs.iter().map(|h| format!("{}/webhooks/shop", h.url)).collect();
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..orders).map(|i| order_event(i).into()).collect());
    let cpu = CpuUse::start(&[
        ("first hub", hubs[0].process.0.id()),
        ("ERP emulator", erp.0.id()),
        ("load generator", std::process::id()),
    ])?;
    println!("end to end: {orders} orders of {} bytes, {concurrency} connections, {count} hub(s)", bodies[0].len());
    let start = Instant::now();
    let before = commits(&client, &hubs[0]).await?;
    let (intake_rate, _) = closed_loop(&webhooks, bodies, concurrency).await?;
    loop {
        let (acked, _) = acknowledged(&client, &hubs[0]).await?;
        if acked as usize >= orders {
            break;
        }
        // Each look counts the outbox (on PostgreSQL, scans of it): looked at every 100 ms, the
        // benchmark takes little from the hub it measures, and the figure is within 0.1 s.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let after = commits(&client, &hubs[0]).await?;
    let applied: Vec<Value> = client.get(format!("{erp_url}/_applied")).send().await?.json().await?;
    println!("intake while delivering: {intake_rate:.0} events/s");
    println!("webhook -> acknowledged by the ERP: {:.0} orders/s ({orders} in {secs:.1} s)", orders as f64 / secs);
    print_commits("first hub's store", before, after, secs, orders);
    cpu.print(orders, secs, "order")?;
    // A figure counts only when the ERP holds exactly one record per order.
    let created: std::collections::HashSet<&str> =
        applied.iter().filter(|a| a["op"] == "create").filter_map(|a| a["external_ref"].as_str()).collect();
    println!("ERP records created: {} for {} distinct orders (expected {orders})", applied.len(), created.len());
    anyhow::ensure!(
        applied.len() == orders && created.len() == orders,
        "the ERP does not hold exactly one record per order: {} writes for {} orders",
        applied.len(),
        created.len()
    );
    Ok(())
}

/// Processes by name and the CPU time each had used when a run started.
struct CpuUse<'a>(Vec<(&'a str, u32, f64)>);

impl<'a> CpuUse<'a> {
    fn start(processes: &[(&'a str, u32)]) -> anyhow::Result<Self> {
        processes
            .iter()
            .map(|&(name, pid)| Ok((name, pid, cpu_seconds(pid)?)))
            .collect::<anyhow::Result<_>>()
            .map(CpuUse)
    }

    /// Each process's CPU time since the start, per item and in cores over `secs`.
    fn print(&self, items: usize, secs: f64, item: &str) -> anyhow::Result<()> {
        for &(name, pid, before) in &self.0 {
            let used = cpu_seconds(pid)? - before;
            println!(
                "{name}'s CPU: {:.0} µs per {item}, {:.2} cores on average",
                1e6 * used / items as f64,
                used / secs
            );
        }
        Ok(())
    }
}

/// The CPU time a process has used so far, user and system, in seconds (`/proc/PID/stat`
/// counts it in ticks of 1/100 s, Linux's fixed USER_HZ).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command's name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').context("a /proc stat line")?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).context("a /proc stat field")?.parse::<f64>().context("a tick count");
    // utime and stime, the 14th and 15th fields of the line, the 12th and 13th after the name.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

pub(crate) fn rss_kb(pid: u32) -> anyhow::Result<u64> {
    status_field(&proc_status(pid)?, "VmRSS")
}

fn proc_status(pid: u32) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(format!("/proc/{pid}/status"))?)
}

/// One number of a `/proc/PID/status` (kB for the memory fields).
fn status_field(status: &str, name: &str) -> anyhow::Result<u64> {
    let line = status.lines().find(|l| l.split(':').next() == Some(name)).with_context(|| format!("no {name}"))?;
    Ok(line.split_whitespace().nth(1).with_context(|| format!("{name} value"))?.parse()?)
}

/// Where the RSS is: the heap and stacks (anonymous), mapped files (SQLite's WAL index is one,
/// mapped per connection) and shared memory, and the threads that hold arenas and stacks.
fn rss_parts(pid: u32) -> anyhow::Result<String> {
    let status = proc_status(pid)?;
    let mb = |name| anyhow::Ok(status_field(&status, name)? as f64 / 1024.0);
    Ok(format!(
        "anon {:.1} MB, file {:.1} MB, shmem {:.1} MB, {} threads",
        mb("RssAnon")?,
        mb("RssFile")?,
        mb("RssShmem")?,
        status_field(&status, "Threads")?
    ))
}

/// RSS while `orders` flow through the hub to completion. The generator builds each body as
/// it sends it (a million bodies held at once would be the generator's memory, not the hub's)
/// and pauses while `window` orders are waiting.
async fn rss_flow(dir: &Path, orders: usize, window: usize, concurrency: usize) -> anyhow::Result<()> {
    let client = http_client()?;
    let (_erp, erp_url) = start_erp(&client, &[]).await?;
    let hub = start_hub(dir, Some(&erp_url), &client).await?;
    let pid = hub.process.0.id();
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("idle hub RSS (empty store): {:.1} MB", rss_kb(pid)? as f64 / 1024.0);
    println!(
        "flowing: {orders} orders of {} bytes, {concurrency} connections, at most {window} waiting",
        order_event(0).len()
    );

    let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let webhook = format!("{}/webhooks/shop", hub.url);
    let senders: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, next, acked) = (client.clone(), webhook.clone(), next.clone(), acked.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= orders {
                        return Ok::<_, anyhow::Error>(());
                    }
                    while i as u64 > acked.load(Ordering::Relaxed) + window as u64 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let r = client.post(&url).body(order_event(i)).send().await?;
                    if !r.status().is_success() {
                        bail!("hub answered {}", r.status());
                    }
                }
            })
        })
        .collect();

    let start = Instant::now();
    // (seconds, acknowledged, RSS in KB) once a second.
    let mut samples: Vec<(f64, u64, u64)> = Vec::new();
    loop {
        let (done, waiting) = acknowledged(&client, &hub).await?;
        acked.store(done, Ordering::Relaxed);
        let kb = rss_kb(pid)?;
        let t = start.elapsed().as_secs_f64();
        samples.push((t, done, kb));
        if samples.len() % 10 == 1 {
            println!(
                "  t={t:>5.0}s acknowledged {done:>8} waiting {waiting:>6} RSS {:>6.1} MB ({})",
                kb as f64 / 1024.0,
                rss_parts(pid)?
            );
        }
        if done as usize >= orders {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for s in senders {
        s.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    // Warm-up: the first tenth of the orders (caches, the board and the page cache fill).
    let warm = samples.iter().position(|s| s.1 as usize >= orders / 10).unwrap_or(0);
    let after = &samples[warm..];
    let max = after.iter().map(|s| s.2).max().unwrap_or(0);
    let min = after.iter().map(|s| s.2).min().unwrap_or(0);
    let (at_warm, at_end) = (samples[warm].2, samples.last().map_or(0, |s| s.2));
    println!("{orders} orders webhook -> acknowledged in {secs:.0} s: {:.0} orders/s", orders as f64 / secs);
    println!(
        "hub RSS after warm-up ({} orders, t={:.0}s): {:.1} MB; at the end: {:.1} MB; after warm-up min {:.1} MB, max {:.1} MB",
        samples[warm].1,
        samples[warm].0,
        at_warm as f64 / 1024.0,
        at_end as f64 / 1024.0,
        min as f64 / 1024.0,
        max as f64 / 1024.0
    );
    println!("hub at the end: {}", rss_parts(pid)?);
    Ok(())
}

async fn rss(dir: &Path, backlog: usize) -> anyhow::Result<()> {
    let client = http_client()?;
    println!("filling a backlog of {backlog} create commands");
    let text = "[systems.shop]\nrole = \"storefront\"\nconnector = \"http-json\"\n[systems.erp]\nrole = \"erp\"\nconnector = \"http-json\"\nbase_url = \"http://127.0.0.1:1\"\n[flows.orders-to-erp]\nfrom = \"shop\"\nto = \"erp\"\nevents = [\"order.created\"]\nproof = \"record-id\"\ndeadline = \"15m\"\nretry = { attempts = 20, backoff_base = \"100ms\", backoff_cap = \"5s\", deadline = \"1h\" }\n";
    let contract = Arc::new(Contract::parse(text, Path::new("bench contract"))?);
    {
        let store = SqliteStore::open(&dir.join("data"), SqliteOptions::default())?;
        record_concurrently(&store, backlog, 256, order_event).await?;
        let intake = Intake::new(contract, store.clone(), Arc::new(SystemClock));
        while intake.step().await? > 0 {}
        println!("backlog: {:?}", store.command_counts().await?);
    }
    let (erp, erp_url) = start_erp(&client, &["--outage"]).await?;
    let hub = start_hub(dir, Some(&erp_url), &client).await?;
    let pid = hub.process.0.id();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The ERP is in outage so that the hub is idle apart from the retry schedule.
    println!("hub RSS with the backlog waiting: {} MB", rss_kb(pid)? / 1024);
    client.put(format!("{erp_url}/_faults")).json(&json!({})).send().await?;
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        let (acked, waiting) = acknowledged(&client, &hub).await?;
        let kb = rss_kb(pid)?;
        samples.push(kb);
        if samples.len() % 10 == 1 {
            println!(
                "  t={:>4.0}s acknowledged {acked:>8} waiting {waiting:>8} RSS {:>5} MB",
                start.elapsed().as_secs_f64(),
                kb / 1024
            );
        }
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (min, max) = (samples.iter().min().copied().unwrap_or(0), samples.iter().max().copied().unwrap_or(0));
    println!(
        "drained {backlog} commands in {:.0} s ({:.0} commands/s); RSS while draining: min {} MB, max {} MB",
        start.elapsed().as_secs_f64(),
        backlog as f64 / start.elapsed().as_secs_f64(),
        min / 1024,
        max / 1024
    );
    drop(hub);
    drop(erp);

    let idle_dir = dir.join("idle");
    std::fs::create_dir_all(&idle_dir)?;
    let hub = start_hub(&idle_dir, Some(&erp_url), &client).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("idle hub RSS (empty store): {:.1} MB", rss_kb(hub.process.0.id())? as f64 / 1024.0);
    Ok(())
}
