//! The database going away (issue 16): two hubs under load on a throw-away cluster, the
//! cluster stopped with `pg_ctl -m immediate` mid-run and started again. The hubs reconnect
//! on their own (pool, listener, leads), `/ready` comes back, and every event a hub
//! acknowledged reaches the ERP exactly once (the history checker).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::pg::{Cluster, PgHub, Vendor, drained, judge, unthrottled};
use common::*;
use handoff_store::postgres::{PgOptions, PgStore};
use serde_json::Value;

const ORDERS: usize = 1_000;
const POSTING: usize = 32;

/// Order `i`'s events: a create, an update, and for every tenth order a cancel.
fn events_of(i: usize) -> Vec<Value> {
    let order_ref = format!("#D{i}");
    let mut events = vec![
        order_event(&format!("c-{i}"), "order.created", &order_ref, 1),
        order_event(&format!("u-{i}"), "order.updated", &order_ref, 2),
    ];
    if i.is_multiple_of(10) {
        events.push(cancel_event(&format!("x-{i}"), &order_ref, 3));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_ctl_immediate_stop_mid_run_loses_nothing_acknowledged() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let erp = Mock::start("erp", &["--lost-ack", "0.1", "--no-idempotency"]).await;
    let shop = Mock::start("shop", &[]).await;
    let contract = unthrottled(&contract(free_port(), &erp.url, &shop.url, ""));
    let mut hubs = Vec::new();
    for name in ["a", "b"] {
        hubs.push(PgHub::start(dir.path(), name, &contract, &cluster.url(), "5s").await);
    }
    let vendor = Arc::new(Vendor::new(&hubs.iter().collect::<Vec<_>>(), "shop"));

    let start = Instant::now();
    let posted = Arc::new(AtomicU64::new(0));
    let posting = Arc::new(tokio::sync::Semaphore::new(POSTING));
    let senders: Vec<_> = (0..ORDERS)
        .map(|i| {
            let (vendor, posted, posting) = (vendor.clone(), posted.clone(), posting.clone());
            tokio::spawn(async move {
                for event in events_of(i) {
                    let _permit = posting.acquire().await.unwrap();
                    vendor.deliver(&event).await;
                    posted.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Mid-run: a third of the events acknowledged, the database dies and comes back.
    let total: u64 = (0..ORDERS).map(|i| events_of(i).len() as u64).sum();
    wait_for("a third of the events", Duration::from_secs(120), || {
        let posted = posted.load(Ordering::Relaxed);
        async move { (posted >= total / 3).then_some(()) }
    })
    .await;
    cluster.crash();
    // Answers already on their way (committed before the stop) may still arrive after it.
    let before = posted.load(Ordering::Relaxed);
    println!("cluster stopped (-m immediate) with {before} of {total} events acknowledged");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = posted.load(Ordering::Relaxed) - before;
    cluster.up();
    println!("cluster started again; {during} answers arrived while it was down");
    for sender in senders {
        sender.await.unwrap();
    }
    let store = PgStore::open(&cluster.url(), PgOptions { max_connections: 2, ..PgOptions::default() }).await.unwrap();
    drained(&store, Duration::from_secs(180)).await;

    // Every hub is ready again: reconnected, its parts led or waiting for their lead.
    for hub in &mut hubs {
        assert!(hub.running(), "a hub died with its database:\n{}", hub.log_tail());
        let url = format!("{}/ready", hub.url);
        wait_for("the hub to be ready again", Duration::from_secs(60), || {
            let url = url.clone();
            async move { client().get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
    }

    let applied = erp.applied().await;
    // An order not cancelled ends at its update at the ERP.
    let (violations, behind) = judge(&applied, "#D", ORDERS, |i| i.is_multiple_of(10), 2);
    println!(
        "{ORDERS} orders, {total} events in {:.1} s; the database down 3 s; {} writes applied at the ERP; \
         {} violations, {} orders behind their update",
        start.elapsed().as_secs_f64(),
        applied.len(),
        violations.len(),
        behind.len()
    );
    assert!(
        violations.is_empty(),
        "{} violations, first: {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    assert_eq!(behind, Vec::<String>::new(), "orders whose update never reached the ERP");
}
