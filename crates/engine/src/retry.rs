//! When to try again: exponential backoff with jitter inside the flow's budget and deadline.
//! The schedule lives in the outbox row (`next_attempt_at`), so it survives restarts.

use handoff_contract::{Jitter, RetryPolicy};
use jiff::{SignedDuration, Timestamp};

use crate::Rng;

/// The next attempt's time, or `None` when the budget (attempts or deadline) is spent.
/// `attempts_spent` counts sends in the current budget, the failed one included.
pub fn next_attempt(
    policy: &RetryPolicy,
    attempts_spent: u32,
    budget_start: Timestamp,
    now: Timestamp,
    retry_after: Option<SignedDuration>,
    rng: &Rng,
) -> Option<Timestamp> {
    if attempts_spent >= policy.attempts {
        return None;
    }
    let base = policy.backoff_base.as_millis() as u64;
    let cap = policy.backoff_cap.as_millis() as u64;
    let exp = base.saturating_mul(1u64 << attempts_spent.saturating_sub(1).min(32)).min(cap);
    let delay_ms = match policy.jitter {
        Jitter::Full => rng.up_to(exp),
        Jitter::Equal => exp / 2 + rng.up_to(exp - exp / 2),
        Jitter::None => exp,
    };
    let mut delay = SignedDuration::from_millis(delay_ms as i64);
    if let Some(after) = retry_after {
        delay = delay.max(after);
    }
    let at = now.checked_add(delay).ok()?;
    let deadline = budget_start.checked_add(policy.deadline).ok()?;
    (at <= deadline).then_some(at)
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

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let rng = Rng::seeded(1);
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let delays: Vec<i64> = (1..5)
            .map(|n| {
                let at = next_attempt(&policy(Jitter::None), n, start, start, None, &rng).unwrap();
                at.duration_since(start).as_millis() as i64
            })
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 800]);
        let capped = RetryPolicy { attempts: 10, ..policy(Jitter::None) };
        let at = next_attempt(&capped, 8, start, start, None, &rng).unwrap();
        assert_eq!(at.duration_since(start).as_millis() as i64, 1000);
    }

    #[test]
    fn jitter_stays_within_the_backoff() {
        let rng = Rng::seeded(7);
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for _ in 0..200 {
            let full = next_attempt(&policy(Jitter::Full), 3, start, start, None, &rng).unwrap();
            assert!(full.duration_since(start).as_millis() as i64 <= 400);
            let equal = next_attempt(&policy(Jitter::Equal), 3, start, start, None, &rng).unwrap();
            assert!((200..=400).contains(&(equal.duration_since(start).as_millis() as i64)));
        }
    }

    #[test]
    fn budget_and_deadline_end_the_retries() {
        let rng = Rng::seeded(1);
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(next_attempt(&policy(Jitter::None), 5, start, start, None, &rng).is_none());
        let late = start.checked_add(SignedDuration::from_secs(60)).unwrap();
        assert!(next_attempt(&policy(Jitter::None), 1, start, late, None, &rng).is_none());
    }

    #[test]
    fn retry_after_is_honoured() {
        let rng = Rng::seeded(1);
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at =
            next_attempt(&policy(Jitter::None), 1, start, start, Some(SignedDuration::from_secs(30)), &rng).unwrap();
        assert_eq!(at.duration_since(start).as_secs(), 30);
    }
}
