//! The deterministic simulation of the whole write path, judged by the history checker.

use handoff_engine::Safety;
use handoff_sim::checker::Violation;
use handoff_sim::profile::FaultProfile;
use handoff_sim::runner::{Summary, run_seeds};
use handoff_sim::world::{SimOptions, SimReport, StoreKind, run};

const ORDERS: usize = 1000;

fn options(profile: FaultProfile) -> SimOptions {
    SimOptions {
        seed: 0,
        orders: ORDERS,
        profile,
        safety: Safety::default(),
        store: StoreKind::Memory,
        keep_trace: false,
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn explain(reports: &[SimReport]) -> String {
    let mut out = String::new();
    for r in reports.iter().filter(|r| !r.violations.is_empty()).take(3) {
        out += &format!(
            "\nseed {} failed; reproduce with: handoff sim --seed {} --orders {} --faults default\n",
            r.seed, r.seed, r.orders
        );
        for v in r.violations.iter().take(5) {
            out += &format!("  {v}\n");
        }
        for e in &r.evidence {
            out += &format!("{e}\n");
        }
    }
    out
}

async fn one(options: SimOptions) -> SimReport {
    run(&options).await
}

#[test]
fn two_hundred_seeds_of_a_thousand_orders_run_clean_under_the_default_faults() {
    let seeds: u64 = std::env::var("HANDOFF_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let seeds: Vec<u64> = (0..seeds).collect();
    let start = std::time::Instant::now();
    let reports = run_seeds(&options(FaultProfile::default_profile()), &seeds, threads(), &|_| {});
    let summary = Summary::of(&reports);
    println!("{summary}\n{} seeds in {:.1} s", seeds.len(), start.elapsed().as_secs_f64());
    assert_eq!(summary.total_violations(), 0, "{}", explain(&reports));
    assert_eq!(summary.unreached(), Vec::<&str>::new(), "every rare path must be reached");
}

#[tokio::test]
async fn the_same_seed_gives_the_same_trace() {
    let a = one(SimOptions { seed: 7, ..options(FaultProfile::default_profile()) }).await;
    let b = one(SimOptions { seed: 7, ..options(FaultProfile::default_profile()) }).await;
    let c = one(SimOptions { seed: 8, ..options(FaultProfile::default_profile()) }).await;
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[tokio::test]
async fn the_sqlite_store_runs_the_same_history_as_the_memory_store() {
    for seed in [3, 11] {
        let base = SimOptions { seed, orders: 300, keep_trace: true, ..options(FaultProfile::default_profile()) };
        let memory = one(base.clone()).await;
        let sqlite = one(SimOptions { store: StoreKind::Sqlite, ..base }).await;
        assert!(sqlite.violations.is_empty(), "{:?}", sqlite.violations);
        if let Some(i) = (0..memory.trace.len()).find(|&i| memory.trace.get(i) != sqlite.trace.get(i)) {
            let around = |t: &[String]| t[i.saturating_sub(3)..(i + 3).min(t.len())].join("\n");
            panic!(
                "seed {seed}: the stores diverge at step {i}\nmemory:\n{}\nsqlite:\n{}",
                around(&memory.trace),
                around(&sqlite.trace)
            );
        }
        assert_eq!(memory.trace_hash, sqlite.trace_hash);
    }
}

/// The PostgreSQL store, in a fresh schema per run, gives memory's (and so SQLite's) history
/// step by step: it reads no clock of its own, and claims, leases and ids as the others do.
#[tokio::test]
async fn the_postgres_store_runs_the_same_history_as_the_memory_store() {
    let Some(url) = handoff_store::postgres::testing::test_database_url() else { return };
    // One seed: each of its steps is a round trip to the database (about 30 s on a loaded machine).
    let seed = 3;
    let base = SimOptions { seed, orders: 300, keep_trace: true, ..options(FaultProfile::default_profile()) };
    let memory = one(base.clone()).await;
    let postgres = one(SimOptions { store: StoreKind::Postgres(url), ..base }).await;
    assert!(postgres.violations.is_empty(), "{:?}", postgres.violations);
    if let Some(i) = (0..memory.trace.len()).find(|&i| memory.trace.get(i) != postgres.trace.get(i)) {
        let around = |t: &[String]| t[i.saturating_sub(3)..(i + 3).min(t.len())].join("\n");
        panic!(
            "seed {seed}: the stores diverge at step {i}\nmemory:\n{}\npostgres:\n{}",
            around(&memory.trace),
            around(&postgres.trace)
        );
    }
    assert_eq!(memory.trace_hash, postgres.trace_hash);
}

#[tokio::test]
async fn a_clean_run_raises_nothing_and_drains_at_once() {
    let report = one(SimOptions { seed: 5, ..options(FaultProfile::none()) }).await;
    assert_eq!(report.violations, vec![]);
    assert!(report.faults.is_empty(), "{:?}", report.faults);
    assert_eq!(report.drained_after_s, 0);
}

#[tokio::test]
async fn the_harsh_profile_runs_clean_too() {
    for seed in 0..3 {
        let report = one(SimOptions { seed, orders: 500, ..options(FaultProfile::harsh()) }).await;
        assert_eq!(report.violations, vec![], "seed {seed}: {}", explain(std::slice::from_ref(&report)));
    }
}

/// Regression: seed 1 found that after a timed-out request the hub read the ERP back before a
/// write still on its way had landed, then sent it again: duplicate orders at the ERP without
/// idempotency keys, and double cancellations. Fixed by the target's settle time.
#[tokio::test]
async fn regression_seed_1_a_late_write_is_not_mistaken_for_a_missing_one() {
    let report = one(SimOptions { seed: 1, ..options(FaultProfile::default_profile()) }).await;
    assert_eq!(report.violations, vec![], "{}", explain(std::slice::from_ref(&report)));
    assert!(report.sometimes.get("read-back found the write").copied().unwrap_or(0) > 0);
}

/// Regression: seed 1239 (of the first 2000-seed run) found that the in-memory store handed
/// out a command that was no longer pending (a stale due-time entry left by a second restart),
/// so it was sent again and again: a divergence from the SQLite store, which checks the state.
#[tokio::test]
async fn regression_seed_1239_only_pending_commands_are_claimed() {
    let report = one(SimOptions { seed: 1239, ..options(FaultProfile::default_profile()) }).await;
    assert_eq!(report.violations, vec![], "{}", explain(std::slice::from_ref(&report)));
    assert!(report.attempts < 50_000, "{} attempts: a command is being resent in a loop", report.attempts);
}

fn kinds(report: &SimReport) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = report.violations.iter().map(Violation::kind).collect();
    kinds.dedup();
    kinds
}

#[tokio::test]
async fn negative_control_without_read_back_the_checker_reports_duplicates() {
    let safety = Safety { read_back: false, ..Safety::default() };
    let report = one(SimOptions { seed: 2, safety, ..options(FaultProfile::default_profile()) }).await;
    let duplicates = report.violations.iter().filter(|v| v.kind() == "duplicate").count();
    assert!(duplicates > 0, "the checker missed the duplicates: {:?}", kinds(&report));
}

#[tokio::test]
async fn negative_control_without_dedup_the_checker_reports_duplicates() {
    let safety = Safety { dedup: false, ..Safety::default() };
    let report = one(SimOptions { seed: 2, safety, ..options(FaultProfile::default_profile()) }).await;
    let duplicates = report.violations.iter().filter(|v| v.kind() == "duplicate").count();
    assert!(duplicates > 0, "the checker missed the duplicates: {:?}", kinds(&report));
}

#[tokio::test]
async fn negative_control_a_store_acknowledging_before_durable_loses_events_on_power_loss() {
    // Many crashes, so that some fall while acknowledged orders still wait out the outage.
    let profile = FaultProfile { crashes: 30, ..FaultProfile::default_profile() };
    let store = StoreKind::AcknowledgingBeforeDurable;
    let report = one(SimOptions { seed: 2, store, ..options(profile) }).await;
    let lost = report.violations.iter().filter(|v| v.kind() == "lost").count();
    assert!(lost > 0, "the checker missed the losses: {:?}", kinds(&report));
}
