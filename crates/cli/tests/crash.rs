//! kill -9 of the hub, again and again, under load with lost acknowledgments: every event
//! that got a 2xx reaches the ERP exactly once, in per-order order, and the SQLite file is
//! sound after every crash.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use handoff_sim::Checker;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const ORDERS: usize = 2000;
const KILLS: usize = 10;
const SENDERS: usize = 8;

/// The events of order `i`: a create; every 5th gets an update; every 10th is then cancelled.
fn events_of(i: usize) -> Vec<(String, Value)> {
    let order_ref = format!("#C{i}");
    let mut events = vec![("create".to_owned(), order_event(&format!("c-{i}"), "order.created", &order_ref, 1))];
    if i.is_multiple_of(5) {
        events.push(("update".into(), order_event(&format!("u-{i}"), "order.updated", &order_ref, 2)));
    }
    if i.is_multiple_of(10) {
        events.push(("cancel".into(), cancel_event(&format!("x-{i}"), &order_ref, 3)));
    }
    events
}

/// Posts like a vendor: retry the same event until the hub answers 2xx.
async fn deliver(url: &str, event: &Value) {
    let c = client();
    loop {
        match c.post(url).json(event).timeout(Duration::from_secs(5)).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => assert!(r.status().is_server_error(), "hub refused a good event: {}", r.status()),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn integrity_check(data_dir: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(data_dir.join("handoff.db")).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_and_duplicates_nothing() {
    let seed: u64 = std::env::var("HANDOFF_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("crash test seed {seed} (rerun with HANDOFF_CRASH_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The ERP ignores idempotency keys: only read-back before resending can prevent duplicates.
    let erp = Mock::start("erp", &["--lost-ack", "0.2", "--no-idempotency", "--seed", &seed.to_string()]).await;
    let shop = Mock::start("shop", &[]).await;
    let mut hub = Hub::start(dir.path(), port, &contract(port, &erp.url, &shop.url, "")).await;
    let url = format!("{}/webhooks/shop", hub.url);

    let next = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let next = next.clone();
            let url = url.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ORDERS {
                        return;
                    }
                    for (_, event) in events_of(i) {
                        deliver(&url, &event).await;
                    }
                }
            })
        })
        .collect();
    let sending = Arc::new(AtomicBool::new(true));
    let watcher = {
        let sending = sending.clone();
        tokio::spawn(async move {
            for s in senders {
                s.await.unwrap();
            }
            sending.store(false, Ordering::Relaxed);
        })
    };

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut kills = 0;
    while kills < KILLS || sending.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..900))).await;
        hub.kill();
        kills += 1;
        assert_eq!(integrity_check(&hub.data_dir()), "ok", "after kill {kills}");
        hub.restart().await;
    }
    watcher.await.unwrap();
    println!("{kills} kills; every event acknowledged; draining");
    hub.drained().await;

    let applied = erp.applied().await;
    let mut checker = Checker::new();
    for i in 0..ORDERS {
        for (what, event) in events_of(i) {
            let order_ref = event["order_ref"].as_str().unwrap();
            match what.as_str() {
                "create" => checker.acked_create(order_ref),
                "cancel" => checker.acked_cancel(order_ref),
                _ => {}
            }
        }
    }
    let violations = checker.check_orders(&applied);
    assert!(
        violations.is_empty(),
        "seed {seed}: {} violations, first: {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );

    // Updates of orders that were not cancelled arrive exactly once too.
    let mut updates: HashMap<&str, usize> = HashMap::new();
    for a in applied.iter().filter(|a| a.op == "update") {
        *updates.entry(a.external_ref.as_str()).or_default() += 1;
    }
    for i in (0..ORDERS).filter(|i| i.is_multiple_of(5) && !i.is_multiple_of(10)) {
        let order_ref = format!("#C{i}");
        assert_eq!(updates.get(order_ref.as_str()), Some(&1), "seed {seed}: update of {order_ref}");
    }
    let creates = applied.iter().filter(|a| a.op == "create").count();
    assert!(creates >= ORDERS - ORDERS / 10, "seed {seed}: only {creates} creates");
    assert_eq!(integrity_check(&hub.data_dir()), "ok");
    println!("seed {seed}: {} writes applied at the ERP, {creates} creates, 0 violations", applied.len());
}
