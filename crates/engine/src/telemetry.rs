//! What the hub counts, in one place: every metric's name and labels are written here, and the
//! places that count call these functions. Labels are bounded: systems and flows come from the
//! contract, kinds, outcomes and patterns from closed lists. Nothing personal is ever a label.
//! Without an installed recorder (the simulation, most tests) every call is a no-op.

use handoff_store::{AttemptRecord, Outcome};
use jiff::Timestamp;
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// Every metric the hub exports, with its help text (docs/metrics.md lists them too).
pub fn describe() {
    describe_counter!("handoff_events_received_total", "Webhooks and polled records by system and outcome.");
    describe_counter!("handoff_attempts_total", "Delivery attempts by flow, command kind and outcome.");
    describe_counter!(
        "handoff_retries_total",
        "Attempts that ended in a retry (plain, ambiguous or throttled), by flow."
    );
    describe_counter!("handoff_dead_letters_total", "Commands dead-lettered, by flow.");
    describe_histogram!(
        "handoff_ack_latency_seconds",
        Unit::Seconds,
        "From a command's creation to its target's acknowledgment, by flow."
    );
    describe_counter!("handoff_polls_total", "Polls by system and outcome (ok, failed).");
    describe_gauge!(
        "handoff_poll_last_success_timestamp_seconds",
        Unit::Seconds,
        "When each poller last read its page."
    );
    describe_gauge!("handoff_commands", "Commands pending, in flight and dead-lettered (read at each scrape).");
    describe_gauge!("handoff_open_exceptions", "Open exceptions by pattern (read at each scrape).");
    describe_gauge!("handoff_quarantine_depth", "Bodies held in quarantine by system (read at each scrape).");
    describe_gauge!("handoff_writer_queue_depth", "Writes waiting for the store's next group commit.");
    describe_histogram!(
        "handoff_store_commit_seconds",
        Unit::Seconds,
        "Duration of each group commit, its jobs and the commit without the WAL's sync."
    );
    describe_histogram!(
        "handoff_store_sync_seconds",
        Unit::Seconds,
        "Duration of each sync of the store's WAL, shared by the group commits made while the last one ran."
    );
}

/// A webhook or a polled record, by what became of it: `recorded`, `duplicate`, `held`,
/// `refused`, `unauthenticated`, `no_money`, `ping`.
pub fn event_received(system: &str, outcome: &'static str) {
    counter!("handoff_events_received_total", "system" => system.to_owned(), "outcome" => outcome).increment(1);
}

/// A page of polled records: new ones, ones already known, ones held.
pub fn events_recorded(system: &str, new: usize, duplicate: usize, held: usize) {
    for (outcome, n) in [("recorded", new), ("duplicate", duplicate), ("held", held)] {
        if n > 0 {
            counter!("handoff_events_received_total", "system" => system.to_owned(), "outcome" => outcome)
                .increment(n as u64);
        }
    }
}

/// One attempt's outcome; an acknowledgment also times the command from its creation, and a
/// retry (plain, ambiguous or throttled) is counted as such.
pub fn attempt(record: &AttemptRecord) {
    let c = &record.command;
    let outcome = record.outcome.name();
    counter!("handoff_attempts_total", "flow" => c.flow.clone(), "kind" => c.kind.as_str(), "outcome" => outcome)
        .increment(1);
    match &record.outcome {
        Outcome::Acknowledged { .. } => {
            let latency = record.finished_at.duration_since(c.created_at).as_secs_f64().max(0.0);
            histogram!("handoff_ack_latency_seconds", "flow" => c.flow.clone()).record(latency);
        }
        Outcome::Retry { .. } | Outcome::Throttled { .. } => {
            counter!("handoff_retries_total", "flow" => c.flow.clone()).increment(1);
        }
        Outcome::DeadLettered { .. } => {
            counter!("handoff_dead_letters_total", "flow" => c.flow.clone()).increment(1);
        }
    }
}

/// A poll that read its page (`ok`) or failed (`failed`); a good one stamps the time, so that
/// the poller's lag is `time() - handoff_poll_last_success_timestamp_seconds`.
pub fn polled(system: &str, ok: bool, at: Timestamp) {
    let outcome = if ok { "ok" } else { "failed" };
    counter!("handoff_polls_total", "system" => system.to_owned(), "outcome" => outcome).increment(1);
    if ok {
        gauge!("handoff_poll_last_success_timestamp_seconds", "system" => system.to_owned())
            .set(at.as_millisecond() as f64 / 1000.0);
    }
}
