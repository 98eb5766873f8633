//! The contract's settings said in words, for people: `contract check` and `contract docs`
//! describe a flow the same way.

use jiff::SignedDuration;

use crate::{DeadLetterRule, Flow, Jitter, Proof, RetryPolicy, System};

/// A duration as the contract writes it (`500ms`, `5m`, `1h 30m`); sub-second parts of long
/// spans are dropped, nobody plans around them.
pub fn duration(d: SignedDuration) -> String {
    let d = if d >= SignedDuration::from_mins(1) { SignedDuration::from_secs(d.as_secs()) } else { d };
    format!("{d:#}")
}

/// What counts as the target's acknowledgment.
pub fn proof(flow: &Flow) -> String {
    match flow.proof {
        Proof::RecordId => format!("a 2xx answer from {} that carries its record id", flow.to),
        Proof::ReadBack => {
            format!("a 2xx answer from {}, confirmed by reading the record back by its external reference", flow.to)
        }
    }
}

/// When a command stops being retried and goes to the dead letters.
pub fn dead_letter(rule: DeadLetterRule) -> &'static str {
    match rule {
        DeadLetterRule::PermanentAtOnce => {
            "a permanent error (a 4xx data error) is dead-lettered at once, a transient one once the retry \
             budget is spent; either opens a Dead Delivery exception"
        }
        DeadLetterRule::AfterBudget => {
            "every error, 4xx included, is retried until the budget is spent, then dead-lettered with a \
             Dead Delivery exception"
        }
    }
}

/// The retry budget and its worst-case schedule, e.g. "12 attempts, 500ms doubling to 5m (full
/// jitter: each wait at most that); at the longest waits the last attempt is sent 13m 31s after
/// the first; no retry is scheduled after 24h".
pub fn retry(policy: &RetryPolicy) -> String {
    let backoff = if policy.backoff_base == policy.backoff_cap {
        format!("every {}", duration(policy.backoff_base))
    } else {
        format!("{} doubling to {}", duration(policy.backoff_base), duration(policy.backoff_cap))
    };
    let jitter = match policy.jitter {
        Jitter::Full => "full jitter: each wait at most that",
        Jitter::Equal => "equal jitter: each wait between half of that and that",
        Jitter::None => "no jitter",
    };
    let fit = policy.attempts_within_deadline();
    let span = policy
        .longest_waits()
        .into_iter()
        .take(fit.saturating_sub(1) as usize)
        .fold(SignedDuration::ZERO, SignedDuration::saturating_add);
    let schedule = if policy.attempts == 1 {
        "no retry".to_owned()
    } else if fit < policy.attempts {
        format!("at the longest waits only {fit} attempts fit before the deadline")
    } else {
        format!("at the longest waits the last attempt is sent {} after the first", duration(span))
    };
    format!(
        "{} attempts, {backoff} ({jitter}); {schedule}; no retry is scheduled after {}",
        policy.attempts,
        duration(policy.deadline)
    )
}

/// The waits the one retry schedule (`schedule`) adds to the backoff for a flow's target.
pub fn waits(target: &str, system: &System) -> String {
    let limits = system.limits();
    format!(
        "after an unknown outcome (timeout, 5xx, a restart while in flight) {target} is read back before any \
         resend, no sooner than its settle time, {}; a 429 or a Retry-After waits as long as {target} asks (its \
         backoff when it does not say) and spends no attempt (only the deadline bounds it); at most {} requests in flight and {} a second to {target}",
        duration(system.settle),
        limits.max_in_flight,
        limits.rate
    )
}

/// How Handoff hears of the system's changes.
pub fn intake(system: &System) -> String {
    let poll = system.poll.as_ref().map(|p| {
        format!("polled every {} (looking back {}, {} per page)", duration(p.every), duration(p.lookback), p.page_size)
    });
    match (system.connector.sends_webhooks(), poll) {
        (true, Some(poll)) => format!("webhooks, and {poll} for any that never came"),
        (true, None) => "webhooks".to_owned(),
        (false, Some(poll)) => poll,
        (false, None) => "nothing: it sends no webhooks and is not polled".to_owned(),
    }
}

/// How a duplicate is avoided when a request to the system is retried.
pub fn idempotency(system: &System) -> &'static str {
    use crate::ConnectorKind;
    match system.connector {
        _ if system.base_url.is_none() => "receives no commands",
        ConnectorKind::Netsuite => "upsert by external id: a resend updates the same sales order",
        ConnectorKind::HttpJson if system.honours_idempotency_keys() => "honours Idempotency-Key",
        ConnectorKind::Shopify => {
            "fulfillments and cancels read back before every send; refunds carry an idempotency key"
        }
        _ => "no idempotency keys: every send is preceded by a read-back by external reference",
    }
}
