//! The dispatcher delivers commands: it claims due commands that head their order's sequence,
//! sends each with its idempotency key, reads the target back before any resend after an
//! ambiguous outcome, records the acknowledgment, and schedules retries or dead-letters.
//! Each command runs in its own task, so a slow target or order never holds up the others.

use std::sync::Arc;
use std::time::Duration;

use handoff_contract::{Contract, DeadLetterRule, Proof};
use handoff_model::Pattern;
use handoff_store::{AttemptRecord, Command, Outcome, Store};
use tokio::sync::Semaphore;

use crate::retry::next_attempt;
use crate::{Ack, Clock, DeliveryError, Rng, Safety, Targets};

/// Commands claimed per store round trip.
const CLAIM_BATCH: usize = 256;

pub struct Dispatcher<S> {
    contract: Arc<Contract>,
    store: S,
    targets: Targets,
    clock: Arc<dyn Clock>,
    rng: Rng,
    safety: Safety,
}

impl<S: Store + Clone> Dispatcher<S> {
    pub fn new(contract: Arc<Contract>, store: S, targets: Targets, clock: Arc<dyn Clock>, rng: Rng) -> Self {
        Dispatcher { contract, store, targets, clock, rng, safety: Safety::default() }
    }

    /// Negative controls only: see [`Safety`].
    pub fn with_safety(mut self, safety: Safety) -> Self {
        self.safety = safety;
        self
    }

    /// One attempt at one claimed command: what happened, ready to record.
    pub async fn attempt(&self, command: Command) -> AttemptRecord {
        let started_at = self.clock.now();
        let (outcome, note) = self.deliver(&command).await;
        let mapping = self.targets.get(&command.target).and_then(|t| t.mapping(&command));
        AttemptRecord { command, started_at, finished_at: self.clock.now(), outcome, note, mapping }
    }

    async fn deliver(&self, c: &Command) -> (Outcome, Option<String>) {
        let Some(flow) = self.contract.flows.get(&c.flow) else {
            let error = format!("flow {:?} is no longer in the contract", c.flow);
            return (
                Outcome::DeadLettered { ambiguous: c.ambiguous, error, field: None, pattern: Pattern::DeadDelivery },
                None,
            );
        };
        let Some(target) = self.targets.get(&c.target) else {
            let error = format!("system {:?} has no target connector", c.target);
            return (
                Outcome::DeadLettered { ambiguous: c.ambiguous, error, field: None, pattern: Pattern::DeadDelivery },
                None,
            );
        };
        let mut note = None;
        if self.safety.read_back && (c.ambiguous || !target.honours_idempotency_keys()) {
            match target.read_back(c).await {
                Ok(Some(ack)) => {
                    let note = Some("read back: already applied, not sent again".to_owned());
                    return (Outcome::Acknowledged { record_id: ack.record_id }, note);
                }
                Ok(None) => note = Some("read back: not applied".to_owned()),
                // Not knowing whether it applied, we must not send it again yet.
                Err(e) => return (self.failed(c, flow, e, true, "read-back"), None),
            }
        }
        let sent = target.send(c).await;
        let outcome = match sent {
            Ok(ack) if flow.proof == Proof::ReadBack => match target.read_back(c).await {
                Ok(Some(confirmed)) => Outcome::Acknowledged { record_id: confirmed.record_id },
                Ok(None) => {
                    let e = DeliveryError::Transient {
                        reason: format!("acknowledged as {} but not found on read-back", ack.record_id),
                        ambiguous: true,
                        retry_after: None,
                    };
                    self.failed(c, flow, e, true, "confirm")
                }
                Err(e) => self.failed(c, flow, e, true, "confirm"),
            },
            Ok(Ack { record_id }) => Outcome::Acknowledged { record_id },
            Err(e) => self.failed(c, flow, e, c.ambiguous, "send"),
        };
        (outcome, note)
    }

    /// Turns a failure into a retry or a dead letter. `was_ambiguous` keeps an earlier unknown
    /// outcome unknown: only a read-back can clear it.
    fn failed(
        &self,
        c: &Command,
        flow: &handoff_contract::Flow,
        e: DeliveryError,
        was_ambiguous: bool,
        step: &str,
    ) -> Outcome {
        let now = self.clock.now();
        let (ambiguous, mut retry_after, permanent_field) = match &e {
            DeliveryError::Transient { ambiguous, retry_after, .. } => {
                (*ambiguous || was_ambiguous, *retry_after, None)
            }
            DeliveryError::Permanent { field, .. } => (was_ambiguous, None, Some(field.clone())),
            DeliveryError::Held { field, .. } => {
                // Never sent: nothing to retry until the mapping or the target schema changes.
                let error = format!("{step}: {e}");
                let (field, pattern) = (Some(field.clone()), Pattern::TransformMismatch);
                return Outcome::DeadLettered { ambiguous: was_ambiguous, error, field, pattern };
            }
        };
        if ambiguous && let Some(system) = self.contract.systems.get(&c.target) {
            // Read back only once a write still on its way can no longer land.
            retry_after = Some(retry_after.map_or(system.settle, |after| after.max(system.settle)));
        }
        let error = format!("{step}: {e}");
        if let Some(field) = permanent_field
            && flow.dead_letter == DeadLetterRule::PermanentAtOnce
        {
            // A target that refuses a field refuses the mapping's output: a Transform Mismatch.
            let pattern = if field.is_some() { Pattern::TransformMismatch } else { Pattern::DeadDelivery };
            return Outcome::DeadLettered { ambiguous, error, field, pattern };
        }
        match next_attempt(&flow.retry, c.budget_attempts, c.budget_start, now, retry_after, &self.rng) {
            Some(at) => Outcome::Retry { at, ambiguous, error },
            None => Outcome::DeadLettered {
                ambiguous,
                error: format!("retry budget spent; last error: {error}"),
                field: None,
                pattern: Pattern::DeadDelivery,
            },
        }
    }

    /// Delivers until `shutdown` resolves, with at most `max_in_flight` commands in flight.
    pub async fn run(self: Arc<Self>, max_in_flight: usize, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(max_in_flight));
        let mut changed = self.store.subscribe();
        while !*shutdown.borrow() {
            let free = permits.available_permits().min(CLAIM_BATCH);
            if free == 0 {
                // Wait for one command to finish before claiming more.
                let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
                drop(permit);
                continue;
            }
            let claimed = match self.store.claim_due(self.clock.now(), free).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::error!(message = "claiming commands failed", error = %error);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                let wait = self.idle_wait().await;
                tokio::select! {
                    _ = changed.changed() => {}
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            for command in claimed {
                let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
                let this = self.clone();
                tokio::spawn(async move {
                    let record = this.attempt(command).await;
                    this.record(record).await;
                    drop(permit);
                });
            }
        }
        // Let attempts in flight finish and be recorded before returning.
        let _ = permits.acquire_many(max_in_flight as u32).await;
    }

    /// Records an attempt, retrying while the store refuses: the attempt's effect on the
    /// target has happened and must not be forgotten while the process lives. If the process
    /// dies first, the command stays in flight and is read back after restart.
    pub async fn record(&self, record: AttemptRecord) {
        let mut delay = Duration::from_millis(50);
        while let Err(error) = self.store.record_attempt(record.clone()).await {
            tracing::error!(message = "recording an attempt failed; retrying", command = record.command.id, error = %error);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// How long to sleep when nothing could be claimed: until the next retry is due. A due
    /// command that was not claimed waits behind an earlier one of its order; a commit wakes
    /// the loop when that one finishes, so it is not polled.
    async fn idle_wait(&self) -> Duration {
        let ceiling = Duration::from_secs(1);
        match self.store.next_due_at().await {
            Ok(Some(due)) if due > self.clock.now() => {
                let ms = due.duration_since(self.clock.now()).as_millis().max(1) as u64;
                Duration::from_millis(ms).min(ceiling)
            }
            _ => ceiling,
        }
    }
}
