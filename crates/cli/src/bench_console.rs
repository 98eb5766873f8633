//! `handoff bench console`: the server-side render time of the console's pages over a large
//! store (filled as `bench api` fills it). Each page is asked for in process through the hub's
//! router, with a live session, one request at a time, so the time is the server's alone: the
//! store's reads, the template and the SVG.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use handoff_contract::Contract;
use handoff_engine::SystemClock;
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use handoff_store::{NewSession, NewUser, Role, Store};
use hdrhistogram::Histogram;
use jiff::Timestamp;
use tower::ServiceExt as _;

const CONTRACT: &str = "[systems.shop]\nrole = \"storefront\"\nconnector = \"http-json\"\n";

pub async fn run(dir: &Path, orders: usize, exceptions: usize, requests: usize) -> anyhow::Result<()> {
    let options = SqliteOptions { durable: false, ..SqliteOptions::default() };
    let store = SqliteStore::open(&dir.join("data"), options)?;
    let start: Timestamp = "2026-11-26T10:00:00Z".parse()?;
    let began = Instant::now();
    crate::bench_api::fill_orders(&store, orders, start).await?;
    crate::bench_api::fill_exceptions(&store, orders, exceptions, start).await?;
    println!("console: {orders} orders, {exceptions} exceptions filled in {:.1} s", began.elapsed().as_secs_f64());

    // An operator's session: the pages with their action forms and personal data shown.
    let user = NewUser { name: "bench".into(), role: Role::Operator, password_hash: "unused".into() };
    let user_id = store.create_user(user, "bench".into(), Timestamp::now()).await?.unwrap_or(1);
    let key = handoff_server::console::session::random_key();
    let session = NewSession {
        hash: handoff_server::console::session::hash(&key),
        user_id,
        csrf: handoff_server::console::session::random_key(),
        link: false,
    };
    store.open_session(session, Timestamp::now()).await?;
    let cookie = format!("{}={key}", handoff_server::console::session::COOKIE);

    let state = handoff_server::AppState {
        contract: Arc::new(Contract::parse(CONTRACT, Path::new("handoff.toml"))?),
        store: store.clone(),
        clock: Arc::new(SystemClock),
        drift: Arc::new(handoff_mapping::drift::Watch::new(Vec::new())),
        mappings: Arc::new(handoff_mapping::Mappings::shipped()?),
        heartbeats: Default::default(),
        targets: Default::default(),
        recent: Default::default(),
    };
    let app = handoff_server::router(Arc::new(state));
    // An order with exceptions (the filler puts exception i on order i * 7919 % orders).
    let order = format!("/console/orders/%23A{}", 7919 % orders.max(1));
    let pages = [
        ("queue", "/console".to_owned()),
        ("queue, one pattern", "/console?state=open&pattern=status_void".to_owned()),
        ("order", order),
        ("clusters", "/console/clusters".to_owned()),
    ];
    println!("console: server-side render time, {requests} requests per page, one at a time");
    for (name, uri) in pages {
        let mut histogram = Histogram::<u64>::new(3)?;
        let mut bytes = 0;
        // The first view reads cold (the clusters are summed then, and again after a change).
        let mut first = std::time::Duration::ZERO;
        for i in 0..requests + 10 {
            let request = Request::get(&uri).header(header::COOKIE, &cookie).body(Body::empty())?;
            let began = Instant::now();
            let response = app.clone().oneshot(request).await?;
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 64 << 20).await?;
            let took = began.elapsed();
            anyhow::ensure!(status == StatusCode::OK, "{uri}: {status}");
            bytes = body.len();
            if i == 0 {
                first = took;
            }
            if i >= 10 {
                histogram.record(took.as_micros() as u64)?;
            }
        }
        println!(
            "  {name:<20} first {:>7.2} ms  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} KiB)",
            first.as_secs_f64() * 1000.0,
            histogram.value_at_quantile(0.5) as f64 / 1000.0,
            histogram.value_at_quantile(0.99) as f64 / 1000.0,
            histogram.max() as f64 / 1000.0,
            bytes / 1024
        );
    }
    Ok(())
}
