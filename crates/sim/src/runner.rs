//! Runs many seeds across threads (each seed alone on its own single-threaded runtime, so each
//! stays deterministic) and sums them up.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::world::{SimOptions, SimReport, run};

/// Runs `base` once per seed on `threads` threads; `done` hears of each finished seed.
pub fn run_seeds(
    base: &SimOptions,
    seeds: &[u64],
    threads: usize,
    done: &(dyn Fn(&SimReport) + Sync),
) -> Vec<SimReport> {
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::with_capacity(seeds.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { return };
                    let report = runtime.block_on(run(&SimOptions { seed, ..base.clone() }));
                    done(&report);
                    reports.lock().expect("reports lock").push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().expect("reports lock");
    reports.sort_by_key(|r| r.seed);
    reports
}

/// The sum of many seeds.
#[derive(Debug, Default)]
pub struct Summary {
    pub seeds: usize,
    pub orders: usize,
    pub attempts: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub sometimes: BTreeMap<&'static str, u64>,
    pub violations: BTreeMap<&'static str, u64>,
    pub failing_seeds: Vec<u64>,
    pub max_drained_after_s: i64,
}

/// The rare paths every long run must reach, or it proves less than it seems to.
pub const SOMETIMES: [&str; 7] = [
    "crash in the unknown-outcome window",
    "duplicate while the original is in flight",
    "cancel before create",
    "dedup hit after restart",
    "429 honoured",
    "read-back found the write",
    "stale replay refused",
];

impl Summary {
    pub fn of(reports: &[SimReport]) -> Summary {
        let mut s = Summary { seeds: reports.len(), ..Summary::default() };
        for r in reports {
            s.orders += r.orders;
            s.attempts += r.attempts;
            s.max_drained_after_s = s.max_drained_after_s.max(r.drained_after_s);
            for (k, n) in &r.faults {
                *s.faults.entry(k).or_default() += n;
            }
            for (k, n) in &r.sometimes {
                *s.sometimes.entry(k).or_default() += n;
            }
            for v in &r.violations {
                *s.violations.entry(v.kind()).or_default() += 1;
            }
            if !r.violations.is_empty() {
                s.failing_seeds.push(r.seed);
            }
        }
        s
    }

    pub fn total_violations(&self) -> u64 {
        self.violations.values().sum()
    }

    /// Rare paths that no seed reached.
    pub fn unreached(&self) -> Vec<&'static str> {
        SOMETIMES.into_iter().filter(|p| self.sometimes.get(p).copied().unwrap_or(0) == 0).collect()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seeds run: {}", self.seeds)?;
        writeln!(f, "orders: {}", self.orders)?;
        writeln!(f, "attempts: {}", self.attempts)?;
        writeln!(f, "faults injected:")?;
        for (k, n) in &self.faults {
            writeln!(f, "  {k}: {n}")?;
        }
        writeln!(f, "sometimes (rare paths reached):")?;
        for p in SOMETIMES {
            writeln!(f, "  {p}: {}", self.sometimes.get(p).copied().unwrap_or(0))?;
        }
        for (k, n) in self.sometimes.iter().filter(|(k, _)| !SOMETIMES.contains(k)) {
            writeln!(f, "  {k}: {n}")?;
        }
        writeln!(f, "longest drain after the faults stopped: {} s", self.max_drained_after_s)?;
        writeln!(f, "violations by kind:")?;
        for (k, n) in &self.violations {
            writeln!(f, "  {k}: {n}")?;
        }
        write!(f, "violations: {}", self.total_violations())
    }
}
