//! `handoff sim`: long deterministic simulations of the whole write path.

use std::time::Instant;

use anyhow::bail;
use handoff_engine::Safety;
use handoff_sim::profile::FaultProfile;
use handoff_sim::runner::{Summary, run_seeds};
use handoff_sim::world::{SimOptions, StoreKind};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct SimArgs {
    /// How many seeds to run (0, 1, 2, ...).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// Run only this seed (to reproduce a failure).
    #[arg(long)]
    seed: Option<u64>,
    /// Orders per seed.
    #[arg(long, default_value_t = 1000)]
    orders: usize,
    /// Fault profile: default, none or harsh.
    #[arg(long, default_value = "default")]
    faults: String,
    /// Run on the SQLite store instead of the in-memory one (slower, same history).
    #[arg(long, conflicts_with = "store")]
    sqlite: bool,
    /// Run on the PostgreSQL database at this URL (`postgres://...`), each seed in a schema of
    /// its own, created and dropped (slower, same history).
    #[arg(long)]
    store: Option<String>,
    /// Threads (each runs whole seeds; a seed is always single-threaded).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let Some(profile) = FaultProfile::named(&args.faults) else {
        bail!("unknown fault profile {:?} (known: default, none, harsh)", args.faults);
    };
    let store = match (args.store, args.sqlite) {
        (Some(url), _) if handoff_store::postgres::is_url(&url) => StoreKind::Postgres(url),
        (Some(other), _) => {
            bail!("--store takes a PostgreSQL URL (postgres://...), not {other:?}; --sqlite for SQLite")
        }
        (None, true) => StoreKind::Sqlite,
        (None, false) => StoreKind::Memory,
    };
    let base =
        SimOptions { seed: 0, orders: args.orders, profile, safety: Safety::default(), store, keep_trace: false };
    let seeds: Vec<u64> = match args.seed {
        Some(seed) => vec![seed],
        None => (0..args.seeds).collect(),
    };
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = ProgressBar::new(seeds.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta} {msg}")
            .expect("a valid template"),
    );
    let start = Instant::now();
    // `suspend` prints whether or not the bar is drawn (it is hidden when stdout is no terminal).
    let say = |line: String| bar.suspend(|| println!("{line}"));
    let reports = run_seeds(&base, &seeds, threads, &|report| {
        say(format!("seed {} trace hash {:016x}", report.seed, report.trace_hash));
        if !report.violations.is_empty() {
            say(format!(
                "seed {} failed: {} violations; reproduce with: handoff sim --seed {} --orders {} --faults {}",
                report.seed,
                report.violations.len(),
                report.seed,
                report.orders,
                args.faults
            ));
            for v in report.violations.iter().take(5) {
                say(format!("  {v}"));
            }
            for e in &report.evidence {
                say(e.clone());
            }
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();
    let summary = Summary::of(&reports);
    println!(
        "profile: {}; {} threads; {:.1} s; {:.2} seeds/s",
        args.faults,
        threads,
        elapsed,
        seeds.len() as f64 / elapsed
    );
    if !summary.failing_seeds.is_empty() {
        println!("failing seeds: {:?}", summary.failing_seeds);
    }
    let unreached = summary.unreached();
    if !unreached.is_empty() {
        println!("rare paths never reached: {}", unreached.join(", "));
    }
    println!("{summary}");
    if summary.total_violations() > 0 {
        std::process::exit(1);
    }
    Ok(())
}
