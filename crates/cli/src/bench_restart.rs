//! `handoff bench restart`: how long the rules take to be ready after a restart over a store
//! holding many settled orders and their history, and what the restart wrote (it must write
//! nothing).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use handoff_contract::Contract;
use handoff_engine::{Clock, Intake, ManualClock, RulesWatch};
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use handoff_store::{AttemptRecord, NewEvent, Outcome, Store};
use jiff::{SignedDuration, Timestamp};

pub(crate) const CONTRACT: &str = r#"
[systems.shop]
role = "storefront"
connector = "http-json"
[systems.erp]
role = "erp"
connector = "http-json"
base_url = "http://127.0.0.1:9"
[flows.orders-to-erp]
from = "shop"
to = "erp"
events = ["order.created", "order.updated", "order.cancelled"]
proof = "record-id"
deadline = "15m"
retry = { attempts = 12, backoff_base = "500ms", backoff_cap = "5m", deadline = "24h" }
"#;

pub async fn run(dir: &Path, orders: usize) -> anyhow::Result<()> {
    let contract = Arc::new(Contract::parse(CONTRACT, Path::new("handoff.toml"))?);
    let start: Timestamp = "2026-11-26T10:00:00Z".parse()?;
    let clock = Arc::new(ManualClock::new(start));
    let options = SqliteOptions { durable: false, ..SqliteOptions::default() };
    let store = SqliteStore::open(&dir.join("data"), options)?;
    let began = Instant::now();
    settled_history(&store, &contract, &clock, orders, false).await?;
    println!(
        "restart: {orders} settled orders (placed, created in the ERP, acknowledged) written in {:.1} s",
        began.elapsed().as_secs_f64()
    );

    // Ten days later the hub starts: first without a checkpoint (as after an upgrade), then
    // from the checkpoint that first start saved.
    clock.advance(SignedDuration::from_hours(240));
    let exceptions_before = store.exceptions(None, 10).await?.len();
    println!("{:>26} {:>10} {:>12} {:>8} {:>8} {:>12}", "start", "facts", "followed", "raised", "cleared", "ready ms");
    for label in ["first (whole journal)", "restart (checkpoint)"] {
        let mut rules = RulesWatch::new(contract.clone(), store.clone(), clock.clone());
        let began = Instant::now();
        let s = rules.step().await?;
        let ms = began.elapsed().as_secs_f64() * 1000.0;
        println!("{label:>26} {:>10} {:>12} {:>8} {:>8} {ms:>12.0}", s.facts, s.followed, s.raised, s.cleared);
    }
    let exceptions_after = store.exceptions(None, 10).await?.len();
    println!("exceptions before the starts {exceptions_before}, after {exceptions_after}");
    Ok(())
}

/// `orders` orders placed, their creates planned and acknowledged by the ERP a second later;
/// `raw` keeps each webhook's body as the vendor sent it too, as `serve` does.
pub(crate) async fn settled_history(
    store: &SqliteStore,
    contract: &Arc<Contract>,
    clock: &Arc<ManualClock>,
    orders: usize,
    raw: bool,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let writers = 256;
    for w in 0..writers {
        let (store, at) = (store.clone(), clock.now());
        tasks.spawn(async move {
            for i in (w..orders).step_by(writers) {
                let body = crate::bench::order_event(i);
                let order_ref = format!("#B{i}");
                let event = NewEvent {
                    system: "shop".into(),
                    event_id: format!("bench-{i}"),
                    kind: handoff_model::EventKind::OrderCreated,
                    order_ref,
                    received_at: at,
                    raw: raw.then(|| body.clone()),
                    payload: body,
                };
                store.record_event(event).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let intake = Intake::new(contract.clone(), store.clone(), clock.clone());
    while intake.step().await? > 0 {}
    clock.advance(SignedDuration::from_secs(1));
    loop {
        let claimed = store.claim_due(clock.now(), 4096).await?;
        if claimed.is_empty() {
            break;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for command in claimed {
            let (store, at) = (store.clone(), clock.now());
            tasks.spawn(async move {
                let outcome = Outcome::Acknowledged { record_id: format!("SO-{}", command.id) };
                let record =
                    AttemptRecord { command, started_at: at, finished_at: at, outcome, note: None, mapping: None };
                store.record_attempt(record).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
    }
    Ok(())
}
