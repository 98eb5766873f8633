//! `/ready`: the hub is ready while every part it runs (the store's writer thread, intake, the
//! dispatcher, the rules driver, each poller) keeps beating. A part whose beats stop for three
//! of its own periods, whose loop ended, or whose last try failed (a writer that cannot commit)
//! makes `/ready` answer 503 naming it. `/health`
//! stays liveness: the process answers.
//!
//! The parts count beats and never read a clock; this module times the counts: it remembers
//! when it last saw each count change, from the moment the router was made.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use handoff_store::heartbeat::{Heartbeats, Reading};
use serde::Serialize;

/// A part is silent once it has not beaten for this many of its periods.
const PERIODS_OF_SILENCE: u32 = 3;

pub(crate) struct Readiness {
    heartbeats: Heartbeats,
    /// By part: its last count and when it was first seen at that count.
    seen: Mutex<HashMap<String, (u64, Instant)>>,
}

/// A part that is not doing its work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Failing {
    pub component: String,
    /// `stopped` (its loop ended or panicked), `failing` (its last try at its work failed) or
    /// `silent` (no beat within its bound).
    pub state: &'static str,
    pub silent_ms: u64,
    pub bound_ms: u64,
}

impl std::fmt::Display for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.state {
            "stopped" => write!(f, "{} stopped", self.component),
            "failing" => write!(f, "{} is failing: its last try at its work failed", self.component),
            _ => write!(
                f,
                "{} has not beaten for {} ms (its bound is {} ms)",
                self.component, self.silent_ms, self.bound_ms
            ),
        }
    }
}

/// How long a part beating every `period` may stay silent.
pub(crate) fn bound(period: Duration) -> Duration {
    period.saturating_mul(PERIODS_OF_SILENCE)
}

impl Readiness {
    pub(crate) fn new(heartbeats: Heartbeats) -> Readiness {
        let readiness = Readiness { heartbeats, seen: Mutex::new(HashMap::new()) };
        readiness.failing(Instant::now());
        readiness
    }

    /// The parts failing as of `now`, in the order they were registered.
    pub(crate) fn failing(&self, now: Instant) -> Vec<Failing> {
        let mut seen = self.seen.lock().expect("readiness lock");
        self.heartbeats.read().into_iter().filter_map(|reading| judge(&mut seen, reading, now)).collect()
    }
}

fn judge(seen: &mut HashMap<String, (u64, Instant)>, r: Reading, now: Instant) -> Option<Failing> {
    let (count, since) = seen.entry(r.name.clone()).or_insert((r.beats, now));
    if *count != r.beats {
        (*count, *since) = (r.beats, now);
    }
    let silent = now.saturating_duration_since(*since);
    let bound = bound(r.period);
    let failing = |state| Failing {
        component: r.name.clone(),
        state,
        silent_ms: silent.as_millis() as u64,
        bound_ms: bound.as_millis() as u64,
    };
    if r.stopped {
        Some(failing("stopped"))
    } else if r.failing {
        Some(failing("failing"))
    } else if !r.waiting && silent > bound {
        Some(failing("silent"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_failing_once_silent_past_its_bound_or_stopped() {
        let hearts = Heartbeats::default();
        let intake = hearts.register("intake", Duration::from_secs(1));
        let writer = hearts.register("writer", Duration::from_secs(1));
        let t0 = Instant::now();
        let readiness = Readiness { heartbeats: hearts.clone(), seen: Mutex::new(HashMap::new()) };
        assert!(readiness.failing(t0).is_empty());
        writer.waiting();
        intake.beat();
        assert!(readiness.failing(t0 + Duration::from_secs(2)).is_empty(), "both beat");
        let later = t0 + Duration::from_secs(6);
        let failing = readiness.failing(later);
        assert_eq!(failing.len(), 1, "an idle writer waiting for work is not silent: {failing:?}");
        assert_eq!((failing[0].component.as_str(), failing[0].state), ("intake", "silent"));
        assert_eq!(failing[0].silent_ms, 4_000);
        intake.beat();
        assert!(readiness.failing(later).is_empty(), "beating again, ready again");
        writer.failing(true);
        assert_eq!(readiness.failing(later)[0].state, "failing", "a writer whose commit failed");
        writer.failing(false);
        assert!(readiness.failing(later).is_empty(), "committing again, ready again");
        drop(intake);
        assert_eq!(readiness.failing(later)[0].state, "stopped");
    }
}
