//! The one retry schedule: when a command that failed is tried again. The dispatcher follows
//! it (`handoff_engine::retry`) and `contract docs` spells it out (`words::retry`), both from
//! these functions: backoff, jitter, the settle wait after an unknown outcome, Retry-After,
//! the attempts and the deadline of the budget, and the read-back after a restart.

use jiff::{SignedDuration, Timestamp};

use crate::{Jitter, RetryPolicy};

/// How an attempt failed, as far as its schedule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failure {
    /// The request may have applied: the next attempt reads the target back first, and not
    /// before the target's `settle` time has passed.
    pub ambiguous: bool,
    /// The target refused for its own load (a 429, a rate limit), whether or not it said when
    /// to come back: this attempt is not spent; only the flow's deadline bounds how long a
    /// target may keep refusing.
    pub throttled: bool,
    /// The target said when to come back (a 429, or any answer with `Retry-After`): the next
    /// attempt waits at least that long, and this attempt is not spent either.
    pub retry_after: Option<SignedDuration>,
}

impl Failure {
    /// Whether the target asked to come back later: such an attempt spends nothing.
    pub fn throttled(&self) -> bool {
        self.throttled || self.retry_after.is_some()
    }
}

impl RetryPolicy {
    /// The longest wait after the `spent`th send of a budget (`spent` ≥ 1): `backoff_base`
    /// doubling after each send, up to `backoff_cap`. Jitter only ever shortens it.
    pub fn backoff(&self, spent: u32) -> SignedDuration {
        let base = self.backoff_base.as_millis().max(0) as u64;
        let cap = self.backoff_cap.as_millis().max(0) as u64;
        let wait = base.saturating_mul(1u64 << spent.max(1).saturating_sub(1).min(32)).min(cap);
        SignedDuration::from_millis(i64::try_from(wait).unwrap_or(i64::MAX))
    }

    /// The backoff after the `spent`th send with its jitter; `draw(max)` is a uniform integer
    /// in `0..=max` (the engine's seeded random source).
    pub fn jittered(&self, spent: u32, draw: impl FnOnce(u64) -> u64) -> SignedDuration {
        let longest = self.backoff(spent).as_millis().max(0) as u64;
        let ms = match self.jitter {
            Jitter::Full => draw(longest),
            Jitter::Equal => longest / 2 + draw(longest - longest / 2),
            Jitter::None => longest,
        };
        SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
    }
}

/// When the next attempt of a command is due, or `None` when its budget is spent: its
/// attempts (a throttled attempt spends none) or its deadline, `policy.deadline` after
/// `budget_start`. `spent` counts the sends of the budget, the failed one included. The wait
/// is the jittered backoff, at least what the target asked (`Retry-After`), and at least the
/// target's `settle` time after an unknown outcome.
#[allow(clippy::too_many_arguments, reason = "the schedule's inputs, each named")]
pub fn next_attempt(
    policy: &RetryPolicy,
    settle: SignedDuration,
    failure: Failure,
    spent: u32,
    budget_start: Timestamp,
    now: Timestamp,
    draw: impl FnOnce(u64) -> u64,
) -> Option<Timestamp> {
    if !failure.throttled() && spent >= policy.attempts {
        return None;
    }
    let mut wait = policy.jittered(spent, draw);
    if let Some(after) = failure.retry_after {
        wait = wait.max(after);
    }
    if failure.ambiguous {
        wait = wait.max(settle);
    }
    let at = now.checked_add(wait).ok()?;
    let deadline = budget_start.checked_add(policy.deadline).ok()?;
    (at <= deadline).then_some(at)
}

/// After a restart, a command the hub had in flight has an unknown outcome: it is read back
/// once its own target's `settle` time has passed, not any other system's.
pub fn read_back_after_restart(settle: SignedDuration, now: Timestamp) -> Timestamp {
    now.checked_add(settle).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            backoff_base: SignedDuration::from_millis(100),
            backoff_cap: SignedDuration::from_secs(1),
            jitter,
            deadline: SignedDuration::from_secs(60),
        }
    }

    fn start() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn after(at: Option<Timestamp>) -> i64 {
        at.unwrap().duration_since(start()).as_millis() as i64
    }

    const PLAIN: Failure = Failure { ambiguous: false, throttled: false, retry_after: None };

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy(Jitter::None);
        let delays: Vec<i64> =
            (1..5).map(|n| after(next_attempt(&p, SignedDuration::ZERO, PLAIN, n, start(), start(), |m| m))).collect();
        assert_eq!(delays, vec![100, 200, 400, 800]);
        let capped = RetryPolicy { attempts: 10, ..p };
        assert_eq!(after(next_attempt(&capped, SignedDuration::ZERO, PLAIN, 8, start(), start(), |m| m)), 1000);
    }

    #[test]
    fn jitter_stays_within_the_backoff() {
        let full = policy(Jitter::Full);
        assert_eq!(full.jittered(3, |max| max / 4), SignedDuration::from_millis(100));
        let equal = policy(Jitter::Equal);
        assert_eq!(equal.jittered(3, |_| 0), SignedDuration::from_millis(200));
        assert_eq!(equal.jittered(3, |max| max), SignedDuration::from_millis(400));
    }

    #[test]
    fn budget_and_deadline_end_the_retries() {
        let p = policy(Jitter::None);
        assert!(next_attempt(&p, SignedDuration::ZERO, PLAIN, 5, start(), start(), |m| m).is_none());
        let late = start() + SignedDuration::from_secs(60);
        assert!(next_attempt(&p, SignedDuration::ZERO, PLAIN, 1, start(), late, |m| m).is_none());
    }

    #[test]
    fn retry_after_is_honoured_and_spends_no_attempt() {
        let p = policy(Jitter::None);
        let asked = Failure { retry_after: Some(SignedDuration::from_secs(30)), ..PLAIN };
        assert_eq!(after(next_attempt(&p, SignedDuration::ZERO, asked, 1, start(), start(), |m| m)), 30_000);
        // Far past the attempts: only the deadline ends a target's asking.
        assert!(next_attempt(&p, SignedDuration::ZERO, asked, 1_000, start(), start(), |m| m).is_some());
        let late = start() + SignedDuration::from_secs(45);
        assert!(next_attempt(&p, SignedDuration::ZERO, asked, 1, start(), late, |m| m).is_none());
    }

    #[test]
    fn a_429_without_retry_after_spends_no_attempt_and_waits_its_backoff() {
        let p = policy(Jitter::None);
        let refused = Failure { throttled: true, ..PLAIN };
        assert_eq!(after(next_attempt(&p, SignedDuration::ZERO, refused, 2, start(), start(), |m| m)), 200);
        assert!(next_attempt(&p, SignedDuration::ZERO, refused, 1_000, start(), start(), |m| m).is_some());
        let late = start() + SignedDuration::from_secs(60);
        assert!(next_attempt(&p, SignedDuration::ZERO, refused, 1, start(), late, |m| m).is_none(), "the deadline");
    }

    #[test]
    fn an_unknown_outcome_waits_for_the_targets_settle_time() {
        let p = policy(Jitter::None);
        let unknown = Failure { ambiguous: true, ..PLAIN };
        let settle = SignedDuration::from_secs(5);
        assert_eq!(after(next_attempt(&p, settle, unknown, 1, start(), start(), |m| m)), 5_000);
        assert_eq!(read_back_after_restart(settle, start()), start() + settle);
    }
}
