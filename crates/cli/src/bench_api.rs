//! `handoff bench api`: the API's list endpoints over a large store. The store is filled
//! directly (orders planned, exceptions raised, no HTTP), then the hub's router serves on
//! loopback and a keep-alive client asks each endpoint for its first page, and a later one by
//! cursor, as fast as it answers.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use handoff_contract::Contract;
use handoff_engine::SystemClock;
use handoff_model::{EventKind, Pattern};
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use handoff_store::{NewEvent, NewFinding, OrderState, Plan, Role, Store};
use hdrhistogram::Histogram;
use jiff::{SignedDuration, Timestamp};

const CONTRACT: &str = "[systems.shop]\nrole = \"storefront\"\nconnector = \"http-json\"\n";

/// Orders planned per store call while filling.
const BATCH: usize = 100;

pub async fn run(dir: &Path, orders: usize, exceptions: usize, concurrency: usize, seconds: u64) -> anyhow::Result<()> {
    let options = SqliteOptions { durable: false, ..SqliteOptions::default() };
    let store = SqliteStore::open(&dir.join("data"), options)?;
    let start: Timestamp = "2026-11-26T10:00:00Z".parse()?;
    let began = Instant::now();
    fill_orders(&store, orders, start).await?;
    println!("api: {orders} orders planned in {:.1} s", began.elapsed().as_secs_f64());
    let began = Instant::now();
    fill_exceptions(&store, orders, exceptions, start).await?;
    println!("api: {exceptions} exceptions raised in {:.1} s", began.elapsed().as_secs_f64());

    let contract = Arc::new(Contract::parse(CONTRACT, Path::new("handoff.toml"))?);
    let token = crate::token::create(&store, "bench", Role::Viewer, Some(1), "bench", Timestamp::now()).await?;
    let state = handoff_server::AppState {
        contract,
        store: store.clone(),
        clock: Arc::new(SystemClock),
        drift: Arc::new(handoff_mapping::drift::Watch::new(Vec::new())),
        mappings: Arc::new(handoff_mapping::Mappings::shipped()?),
        heartbeats: Default::default(),
        targets: Default::default(),
        recent: Default::default(),
    };
    let app = handoff_server::router(Arc::new(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/api/v1", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let page_two = |path: &'static str| {
        let (client, token, url) = (client.clone(), token.clone(), format!("{base}/{path}"));
        async move {
            let first: serde_json::Value =
                client.get(&url).bearer_auth(&token).send().await?.error_for_status()?.json().await?;
            let next = first["next"].as_str().context("a first page with a next")?.to_owned();
            anyhow::Ok(format!("{path}&cursor={next}"))
        }
    };
    let mut paths: Vec<String> = [
        "orders?limit=50",
        "orders?channel=web&limit=50",
        "orders?state=cancelled&limit=50",
        "orders?reference=%23A12&limit=50",
        "orders?email=buyer12%40example.com&limit=50",
        "orders?email=buyer12%40example.com&channel=web&limit=50",
        "exceptions?limit=50",
        "exceptions?state=open&pattern=missing_order&limit=50",
        "commands?limit=50",
        "audit?limit=50",
    ]
    .map(str::to_owned)
    .to_vec();
    paths.push(page_two("orders?limit=50").await?);
    paths.push(page_two("exceptions?state=open&limit=50").await?);
    paths.push("clusters?limit=50".to_owned());

    println!(
        "{:<58} {:>9} {:>9} {:>9} {:>9}",
        format!("GET /api/v1/... ({concurrency} keep-alive clients, {seconds} s each)"),
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors"
    );
    for path in &paths {
        let url = format!("{base}/{path}");
        let figures = hammer(&client, &url, &token, concurrency, Duration::from_secs(seconds)).await?;
        let shown = if path.len() > 58 { format!("{}…", &path[..57]) } else { path.clone() };
        println!(
            "{shown:<58} {:>9.0} {:>9.2} {:>9.2} {:>9}",
            figures.per_second, figures.p50_ms, figures.p99_ms, figures.errors
        );
    }
    server.abort();
    Ok(())
}

/// `orders` orders seen an hour apart in groups, a third of them web, every tenth cancelled.
pub(crate) async fn fill_orders(store: &SqliteStore, orders: usize, start: Timestamp) -> anyhow::Result<()> {
    let writers = 256;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.spawn(async move {
            let mine: Vec<usize> = (w..orders).step_by(writers).collect();
            for chunk in mine.chunks(BATCH) {
                let mut plans = Vec::with_capacity(chunk.len());
                for &i in chunk {
                    let channel = ["web", "pos", "marketplace"][i % 3];
                    let order_ref = format!("#A{i}");
                    let email = format!("buyer{}@example.com", i % 50_000);
                    let payload = format!(r#"{{"order":{{"channel":"{channel}","customer":{{"email":"{email}"}}}}}}"#);
                    let event = NewEvent {
                        system: "shop".into(),
                        event_id: format!("e{i}"),
                        kind: EventKind::OrderCreated,
                        order_ref: order_ref.clone(),
                        received_at: start,
                        payload,
                        raw: None,
                    };
                    let (handoff_store::Recorded::New(row) | handoff_store::Recorded::Duplicate(row)) =
                        store.record_event(event).await?;
                    let state = OrderState {
                        source: "shop".into(),
                        created: true,
                        cancelled: i % 10 == 0,
                        ..Default::default()
                    };
                    plans.push(Plan {
                        event_row: row,
                        order_ref,
                        state,
                        ledger: None,
                        commands: vec![],
                        audit: vec![],
                        // As intake reads them from the event.
                        search: handoff_store::SearchFields::stated(Some(channel), Some(&email)),
                    });
                }
                let at = start + SignedDuration::from_secs((chunk[0] / 1000) as i64);
                store.apply_plans(plans, at).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// `exceptions` findings on the orders, in 40 causes across patterns and channels.
pub(crate) async fn fill_exceptions(
    store: &SqliteStore,
    orders: usize,
    exceptions: usize,
    start: Timestamp,
) -> anyhow::Result<()> {
    if orders == 0 {
        bail!("exceptions need orders");
    }
    let writers = 64;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (w..exceptions).step_by(writers) {
                let order = (i * 7919) % orders;
                let pattern = [Pattern::MissingOrder, Pattern::StatusVoid, Pattern::RollbackGap][i % 3];
                let finding = NewFinding {
                    pattern,
                    order_ref: format!("#A{order}"),
                    subject: format!("s{i}"),
                    flow: Some("orders-to-erp".into()),
                    field: None,
                    channel: Some(["web", "pos", "marketplace"][order % 3].into()),
                    amount: Some(format!("{}.{:02}", 10 + i % 90, i % 100)),
                    currency: Some(["EUR", "USD"][i % 2].into()),
                    detail: format!("cause {}: order #A{order} differs by {} at step {}", i % 13, i % 97, i),
                    action: r#"{"action":"create_erp_order"}"#.into(),
                    evidence: "{}".into(),
                };
                store.raise_finding(finding, start + SignedDuration::from_secs(i as i64)).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

struct Figures {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// `concurrency` clients asking `url` in a loop for `run`.
async fn hammer(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    concurrency: usize,
    run: Duration,
) -> anyhow::Result<Figures> {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, token, stop, errors) =
            (client.clone(), url.to_owned(), token.to_owned(), stop.clone(), errors.clone());
        tasks.spawn(async move {
            let mut latencies = Histogram::<u64>::new(3).expect("a histogram");
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                let ok = match client.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                if ok {
                    latencies.record(began.elapsed().as_micros() as u64).expect("in range");
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        });
    }
    let began = Instant::now();
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new(3)?;
    while let Some(done) = tasks.join_next().await {
        all.add(done?)?;
    }
    let elapsed = began.elapsed().as_secs_f64();
    Ok(Figures {
        per_second: all.len() as f64 / elapsed,
        p50_ms: all.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: all.value_at_quantile(0.99) as f64 / 1000.0,
        errors: errors.load(Ordering::Relaxed),
    })
}
