//! Pacing of SP-API calls per operation: a token bucket whose rate is the one Amazon states in
//! each answer's `x-amzn-RateLimit-Limit` (requests per second), starting from the published
//! default, with the operation's published burst. Calls wait for a token rather than earn a 429.
//!
//! Hand-rolled rather than `governor`: governor's quota is fixed when the limiter is built,
//! and here the rate is learned at run time from every answer (and differs per seller).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The SP-API operations Handoff calls, each with its own usage plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Operation {
    GetOrders,
    GetOrder,
    GetOrderItems,
    SearchOrders,
    GetOrder2026,
    ConfirmShipment,
}

impl Operation {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Operation::GetOrders => "getOrders",
            Operation::GetOrder => "getOrder (v0)",
            Operation::GetOrderItems => "getOrderItems",
            Operation::SearchOrders => "searchOrders",
            Operation::GetOrder2026 => "getOrder (2026-01-01)",
            Operation::ConfirmShipment => "confirmShipment",
        }
    }

    /// The published default usage plan: (requests per second, burst).
    fn default_plan(self) -> (f64, f64) {
        match self {
            Operation::GetOrders => (0.0167, 20.0),
            Operation::GetOrder => (0.5, 30.0),
            Operation::GetOrderItems => (0.5, 30.0),
            Operation::SearchOrders => (0.0056, 20.0),
            Operation::GetOrder2026 => (0.5, 30.0),
            Operation::ConfirmShipment => (2.0, 10.0),
        }
    }
}

struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
pub(crate) struct Pace {
    buckets: Mutex<HashMap<Operation, Bucket>>,
}

impl Pace {
    /// Takes one token of `op`, returning how long to wait before the call. A token taken
    /// on credit (the bucket below zero) makes the next caller wait longer, so concurrent
    /// callers queue up instead of all firing once the wait is over.
    pub(crate) fn take(&self, op: Operation) -> Duration {
        self.take_at(op, Instant::now())
    }

    fn take_at(&self, op: Operation, now: Instant) -> Duration {
        // A poisoned lock only means another caller panicked mid-update; the numbers are
        // still usable, so carry on with them.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(op).or_insert_with(|| {
            let (rate, burst) = op.default_plan();
            Bucket { rate, burst, tokens: burst, at: now }
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * bucket.rate).min(bucket.burst);
        bucket.at = now;
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-bucket.tokens / bucket.rate) }
    }

    /// Learns the rate Amazon stated for `op`; nonsense values are ignored.
    pub(crate) fn learn(&self, op: Operation, rate: f64) {
        if !(rate.is_finite() && rate > 0.0) {
            return;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = buckets.get_mut(&op) {
            bucket.rate = rate;
        }
    }

    /// The time one token of `op` takes to come back: what a 429 without `Retry-After` waits.
    pub(crate) fn interval(&self, op: Operation) -> Duration {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let rate = buckets.get(&op).map_or(op.default_plan().0, |b| b.rate);
        Duration::from_secs_f64((1.0 / rate).min(3600.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_is_free_then_calls_are_spaced_by_the_learned_rate() {
        let pace = Pace::default();
        let start = Instant::now();
        let items = Operation::GetOrderItems;
        for _ in 0..30 {
            assert_eq!(pace.take_at(items, start), Duration::ZERO);
        }
        // Burst spent: the next token comes after 1/0.5 s.
        assert_eq!(pace.take_at(items, start), Duration::from_secs(2));
        pace.learn(items, 4.0);
        let later = start + Duration::from_secs(2);
        // Two seconds at 4/s refill 8 tokens, one was owed: seven calls are free now.
        for _ in 0..7 {
            assert_eq!(pace.take_at(items, later), Duration::ZERO);
        }
        assert_eq!(pace.take_at(items, later), Duration::from_millis(250));
        assert_eq!(pace.interval(items), Duration::from_millis(250));
        // Another operation has its own plan.
        assert_eq!(pace.interval(Operation::GetOrders), Duration::from_secs_f64(1.0 / 0.0167));
    }
}
