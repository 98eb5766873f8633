//! `handoff bench purge`: how long the retention purge takes over a large store, and what the
//! webhooks arriving meanwhile wait for a commit (the purge works in short batches so that they
//! keep their turn at the writer).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use handoff_contract::{Contract, Retention};
use handoff_engine::ManualClock;
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use handoff_store::{NewEvent, Purged, Store};
use hdrhistogram::Histogram;
use jiff::{SignedDuration, Timestamp};

/// Webhooks per second recorded while the purge runs, each timed.
const PROBE_RATE: u64 = 500;

pub async fn run(dir: &Path, orders: usize) -> anyhow::Result<()> {
    let contract = Arc::new(Contract::parse(crate::bench_restart::CONTRACT, Path::new("handoff.toml"))?);
    let start: Timestamp = "2026-11-26T10:00:00Z".parse()?;
    let clock = Arc::new(ManualClock::new(start));
    let store = SqliteStore::open(&dir.join("data"), SqliteOptions::default())?;
    let began = Instant::now();
    crate::bench_restart::settled_history(&store, &contract, &clock, orders, true).await?;
    println!(
        "purge: {orders} settled orders with their raw bodies written in {:.1} s; store {}",
        began.elapsed().as_secs_f64(),
        size(&store)
    );

    // The rules have read the journal (as a running hub's have), so the history they no longer
    // follow may go.
    clock.advance(SignedDuration::from_hours(1));
    handoff_engine::RulesWatch::new(contract.clone(), store.clone(), clock.clone()).step().await?;

    let retention = Retention::default();
    println!(
        "retention: personal data {} days, history {} days, dedup keys {} days",
        retention.personal_data_days, retention.history_days, retention.dedup_days
    );
    println!(
        "{:>34} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "run", "seconds", "rows", "rows/s", "probe p50", "probe p99", "probe max"
    );
    // First past the personal-data horizon only, then past the history's: the two purges a
    // store meets as it ages.
    let days = |n: u32| SignedDuration::from_hours(24 * i64::from(n) + 1);
    for (run, (label, at, dry_run)) in [
        ("personal data, dry run", start + days(retention.personal_data_days), true),
        ("personal data", start + days(retention.personal_data_days), false),
        ("history and dedup keys, dry run", start + days(retention.history_days), true),
        ("history and dedup keys", start + days(retention.history_days), false),
    ]
    .into_iter()
    .enumerate()
    {
        let (purged, seconds, probe) = timed(&store, &retention, at, dry_run, run).await?;
        let rows: u64 = purged.lines().iter().map(|(_, _, n)| n).sum();
        println!(
            "{label:>34} {seconds:>9.1} {rows:>10} {:>10.0} {:>10} {:>10} {:>10}",
            rows as f64 / seconds,
            ms(probe.value_at_quantile(0.5)),
            ms(probe.value_at_quantile(0.99)),
            ms(probe.max())
        );
        for (table, what, n) in purged.lines() {
            println!("{:>34} {table:<11} {n:>9}  {what}", "");
        }
    }
    println!("store after: {}", size(&store));
    Ok(())
}

/// One purge at `at`, while a probe records webhooks at [`PROBE_RATE`] and times each commit.
async fn timed(
    store: &SqliteStore,
    retention: &Retention,
    at: Timestamp,
    dry_run: bool,
    run: usize,
) -> anyhow::Result<(Purged, f64, Histogram<u64>)> {
    let stop = Arc::new(tokio::sync::Notify::new());
    let probe = tokio::spawn(probe(store.clone(), at, run, stop.clone()));
    let began = Instant::now();
    let purged = handoff_engine::retention::purge(store, retention, at, dry_run).await?;
    let seconds = began.elapsed().as_secs_f64();
    stop.notify_one();
    Ok((purged, seconds, probe.await??))
}

/// Each run's webhooks are new events (a redelivery of an earlier run's would write nothing).
async fn probe(
    store: SqliteStore,
    at: Timestamp,
    run: usize,
    stop: Arc<tokio::sync::Notify>,
) -> anyhow::Result<Histogram<u64>> {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / PROBE_RATE));
    let mut waits = Histogram::<u64>::new(3)?;
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return Ok(waits),
            _ = tick.tick() => {}
        }
        let i = waits.len() as usize;
        let event = NewEvent {
            system: "shop".into(),
            event_id: format!("probe-{run}-{i}"),
            kind: handoff_model::EventKind::OrderCreated,
            order_ref: format!("#P{i}"),
            received_at: at,
            payload: crate::bench::order_event(i),
            raw: None,
        };
        let began = Instant::now();
        store.record_event(event).await?;
        waits.record(began.elapsed().as_micros() as u64)?;
    }
}

/// Microseconds as milliseconds, `-` when the purge ended before the probe's first webhook.
fn ms(us: u64) -> String {
    if us == 0 { "-".into() } else { format!("{:.1} ms", us as f64 / 1000.0) }
}

/// The database file's size (a purge frees pages, which SQLite reuses rather than shrinking
/// the file).
fn size(store: &SqliteStore) -> String {
    let db = store.path();
    let bytes = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0);
    format!("{:.0} MB", bytes as f64 / 1e6)
}
