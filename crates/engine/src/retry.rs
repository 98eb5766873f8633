//! When to try again, as the contract's one schedule says (`handoff_contract::schedule`), with
//! the jitter drawn from the engine's seeded random source. The schedule lives in the outbox row
//! (`next_attempt_at`), so it survives restarts.

use handoff_contract::RetryPolicy;
use handoff_contract::schedule::{self, Failure};
use jiff::{SignedDuration, Timestamp};

use crate::Rng;

/// The next attempt's time, or `None` when the budget (attempts or deadline) is spent. See
/// [`schedule::next_attempt`].
pub fn next_attempt(
    policy: &RetryPolicy,
    settle: SignedDuration,
    failure: Failure,
    spent: u32,
    budget_start: Timestamp,
    now: Timestamp,
    rng: &Rng,
) -> Option<Timestamp> {
    schedule::next_attempt(policy, settle, failure, spent, budget_start, now, |max| rng.up_to(max))
}

#[cfg(test)]
mod tests {
    use handoff_contract::Jitter;

    use super::*;

    #[test]
    fn jitter_drawn_from_the_seeded_source_stays_within_the_backoff() {
        let policy = RetryPolicy {
            attempts: 5,
            backoff_base: SignedDuration::from_millis(100),
            backoff_cap: SignedDuration::from_secs(1),
            jitter: Jitter::Full,
            deadline: SignedDuration::from_secs(60),
        };
        let rng = Rng::seeded(7);
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for _ in 0..200 {
            let at = next_attempt(&policy, SignedDuration::ZERO, Failure::default(), 3, start, start, &rng).unwrap();
            assert!(at.duration_since(start).as_millis() <= 400);
        }
    }
}
