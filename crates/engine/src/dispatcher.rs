//! The dispatcher delivers commands: it claims due commands that head their order's sequence,
//! sends each with its idempotency key, reads the target back before any resend after an
//! ambiguous outcome, records the acknowledgment, and schedules retries or dead-letters.
//! Each command runs in its own supervised task, so a slow target or order never holds up the
//! others, and each target is pressed no harder than its limits (`System::limits`): commands are
//! claimed per target, only as many as it has room for, and paced to its request rate.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use handoff_contract::schedule::Failure;
use handoff_contract::{Contract, DeadLetterRule, Proof};
use handoff_model::Pattern;
use handoff_store::heartbeat::Beat;
use handoff_store::{AttemptRecord, Command, Outcome, Store};
use jiff::Timestamp;
use tokio::sync::Semaphore;

use crate::retry::next_attempt;
use crate::{Ack, Clock, DeliveryError, Rng, Safety, Targets};

/// Commands claimed per store round trip.
const CLAIM_BATCH: usize = 256;

/// A claimed command is put on the wire only while its lease leaves room for the whole send
/// (the target's time-out) and a margin of this share of the lease: another hub takes a
/// command over by its own clock, which may be ahead of this one's.
const LEASE_MARGIN_DIVISOR: u32 = 10;

/// The dispatcher beats at least this often while it runs: it looks for due commands every
/// second, and a full house of commands in flight wakes it as often.
pub const PERIOD: Duration = Duration::from_secs(5);

/// After a restart, the commands left in flight are read back, each once its own target's
/// `settle` time has passed (the one schedule: `schedule::read_back_after_restart`).
pub async fn recover_in_flight<S: Store>(store: &S, contract: &Contract, now: Timestamp) -> handoff_store::Result<u64> {
    let read_back_at = contract
        .systems
        .iter()
        .map(|(name, system)| (name.clone(), handoff_contract::schedule::read_back_after_restart(system.settle, now)))
        .collect();
    store.recover_in_flight(now, read_back_at).await
}

/// One target's limits at work: its requests in flight and their pace.
struct Gate {
    slots: Arc<Semaphore>,
    pace: DefaultDirectRateLimiter,
}

pub struct Dispatcher<S> {
    contract: Arc<Contract>,
    store: S,
    targets: Targets,
    clock: Arc<dyn Clock>,
    rng: Rng,
    safety: Safety,
    /// By system name, every system of the contract.
    gates: HashMap<String, Gate>,
    /// Taken by [`Dispatcher::run`], so it is dropped (the dispatcher stopped) when the loop
    /// ends, whatever attempts still hold the dispatcher.
    beat: std::sync::Mutex<Option<Beat>>,
}

impl<S: Store + Clone> Dispatcher<S> {
    pub fn new(contract: Arc<Contract>, store: S, targets: Targets, clock: Arc<dyn Clock>, rng: Rng) -> Self {
        let gates = contract
            .systems
            .iter()
            .map(|(name, system)| {
                let limits = system.limits();
                let rate = NonZeroU32::new(limits.rate).unwrap_or(NonZeroU32::MIN);
                let gate = Gate {
                    slots: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
                    pace: RateLimiter::direct(Quota::per_second(rate)),
                };
                (name.clone(), gate)
            })
            .collect();
        Dispatcher { contract, store, targets, clock, rng, safety: Safety::default(), gates, beat: Default::default() }
    }

    /// Beats `beat` once per turn of [`Dispatcher::run`], for readiness.
    pub fn beating(self, beat: Beat) -> Self {
        *self.beat.lock().expect("beat lock") = Some(beat);
        self
    }

    /// Negative controls only: see [`Safety`].
    pub fn with_safety(mut self, safety: Safety) -> Self {
        self.safety = safety;
        self
    }

    /// One attempt at one claimed command, whatever its lease: what happened, ready to record.
    pub async fn attempt(&self, command: Command) -> AttemptRecord {
        self.attempt_until(command, None).await.expect("an attempt without a deadline is always made")
    }

    /// One attempt at a command claimed at `claimed_at` (an instant taken before the claim
    /// was asked for). `None`, and nothing sent, when its lease no longer leaves room for the
    /// send (see [`Dispatcher::send_by`]): the hub was paused or held up past it, and another
    /// hub may have taken the command over. The command stays in flight, untouched, for
    /// whoever claims it once its lease has run out, who reads the target back first.
    pub async fn attempt_claimed(&self, command: Command, claimed_at: Instant) -> Option<AttemptRecord> {
        let send_by = self.send_by(&command, claimed_at);
        self.attempt_until(command, send_by).await
    }

    async fn attempt_until(&self, command: Command, send_by: Option<Instant>) -> Option<AttemptRecord> {
        let started_at = self.clock.now();
        let (outcome, note) = self.deliver(&command, send_by).await?;
        let mapping = self.targets.get(&command.target).and_then(|t| t.mapping(&command));
        Some(AttemptRecord { command, started_at, finished_at: self.clock.now(), outcome, note, mapping })
    }

    /// The last instant a command claimed at `claimed_at` may be put on the wire: its lease,
    /// less the target's time-out (the send must be over before another hub may take the
    /// command over and read the target back) and the margin. A local, monotonic check, no
    /// round trip; `None` on a store whose claims only this process takes.
    fn send_by(&self, command: &Command, claimed_at: Instant) -> Option<Instant> {
        let lease = self.store.lease()?;
        let timeout = self.contract.systems.get(&command.target).map_or(Duration::ZERO, |s| s.timeout.unsigned_abs());
        Some(claimed_at + lease.saturating_sub(timeout + lease / LEASE_MARGIN_DIVISOR))
    }

    /// What the attempt did, or `None` when it sent nothing because `send_by` had passed.
    async fn deliver(&self, c: &Command, send_by: Option<Instant>) -> Option<(Outcome, Option<String>)> {
        let Some(flow) = self.contract.flows.get(&c.flow) else {
            let error = format!("flow {:?} is no longer in the contract", c.flow);
            return Some((
                Outcome::DeadLettered { ambiguous: c.ambiguous, error, field: None, pattern: Pattern::DeadDelivery },
                None,
            ));
        };
        let Some(target) = self.targets.get(&c.target) else {
            let error = format!("system {:?} has no target connector", c.target);
            return Some((
                Outcome::DeadLettered { ambiguous: c.ambiguous, error, field: None, pattern: Pattern::DeadDelivery },
                None,
            ));
        };
        let mut note = None;
        if self.safety.read_back && (c.ambiguous || !target.honours_idempotency_keys()) {
            match target.read_back(c).await {
                Ok(Some(ack)) => {
                    let note = Some("read back: already applied, not sent again".to_owned());
                    return Some((Outcome::Acknowledged { record_id: ack.record_id }, note));
                }
                Ok(None) => note = Some("read back: not applied".to_owned()),
                // Not knowing whether it applied, we must not send it again yet.
                Err(e) => return Some((self.failed(c, flow, e, true, "read-back"), None)),
            }
        }
        // Just before the send: a hub woken past its claim's lease (or held up in pacing or a
        // read-back) leaves the command to whoever holds it now, even for a target that would
        // not refuse a stale fencing token.
        if send_by.is_some_and(|by| Instant::now() >= by) {
            return None;
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
        Some((outcome, note))
    }

    /// Turns a failure into a retry or a dead letter, by the contract's one retry schedule.
    /// `was_ambiguous` keeps an earlier unknown outcome unknown: only a read-back can clear it.
    fn failed(
        &self,
        c: &Command,
        flow: &handoff_contract::Flow,
        e: DeliveryError,
        was_ambiguous: bool,
        step: &str,
    ) -> Outcome {
        let now = self.clock.now();
        let (failure, permanent_field) = match &e {
            DeliveryError::Transient { ambiguous, retry_after, .. } => {
                let ambiguous = *ambiguous || was_ambiguous;
                (Failure { ambiguous, throttled: false, retry_after: *retry_after }, None)
            }
            DeliveryError::Throttled { retry_after, .. } => {
                (Failure { ambiguous: was_ambiguous, throttled: true, retry_after: *retry_after }, None)
            }
            DeliveryError::Permanent { field, .. } => {
                (Failure { ambiguous: was_ambiguous, throttled: false, retry_after: None }, Some(field.clone()))
            }
            DeliveryError::Held { field, .. } => {
                // Never sent: nothing to retry until the mapping or the target schema changes.
                let error = format!("{step}: {e}");
                let (field, pattern) = (Some(field.clone()), Pattern::TransformMismatch);
                return Outcome::DeadLettered { ambiguous: was_ambiguous, error, field, pattern };
            }
        };
        let ambiguous = failure.ambiguous;
        let error = format!("{step}: {e}");
        if let Some(field) = permanent_field
            && flow.dead_letter == DeadLetterRule::PermanentAtOnce
        {
            // A target that refuses a field refuses the mapping's output: a Transform Mismatch.
            let pattern = if field.is_some() { Pattern::TransformMismatch } else { Pattern::DeadDelivery };
            return Outcome::DeadLettered { ambiguous, error, field, pattern };
        }
        let settle = self.contract.settle_of(&c.target);
        match next_attempt(&flow.retry, settle, failure, c.budget_attempts, c.budget_start, now, &self.rng) {
            Some(at) if failure.throttled() => Outcome::Throttled { at, ambiguous, error },
            Some(at) => Outcome::Retry { at, ambiguous, error },
            None => Outcome::DeadLettered {
                ambiguous,
                error: format!("retry budget spent; last error: {error}"),
                field: None,
                pattern: Pattern::DeadDelivery,
            },
        }
    }

    /// What becomes of an attempt whose task panicked: its outcome is unknown, so the target is
    /// read back after its settle time, as after a restart, never left in flight.
    fn panicked(&self, command: Command, started_at: Timestamp) -> AttemptRecord {
        let now = self.clock.now();
        let at = handoff_contract::schedule::read_back_after_restart(self.contract.settle_of(&command.target), now);
        let outcome = Outcome::Retry { at, ambiguous: true, error: "the attempt's task panicked".into() };
        AttemptRecord { command, started_at, finished_at: now, outcome, note: None, mapping: None }
    }

    /// Delivers until `shutdown` resolves, with at most `max_in_flight` commands in flight in
    /// all, and each target within its own limits.
    pub async fn run(self: Arc<Self>, max_in_flight: usize, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let beat = self.beat.lock().expect("beat lock").take();
        let permits = Arc::new(Semaphore::new(max_in_flight));
        let mut changed = self.store.subscribe_to(handoff_store::Topic::Commands);
        let mut names: Vec<String> = self.gates.keys().cloned().collect();
        names.sort_unstable();
        while !*shutdown.borrow() {
            if let Some(beat) = &beat {
                beat.beat();
            }
            if permits.available_permits() == 0 {
                // Wait for one command to finish before claiming more (and beat meanwhile).
                if let Ok(permit) = tokio::time::timeout(Duration::from_secs(1), permits.clone().acquire_owned()).await
                {
                    drop(permit.expect("semaphore is never closed"));
                }
                continue;
            }
            let mut claimed_any = false;
            for name in &names {
                let gate = &self.gates[name];
                let room = permits.available_permits().min(gate.slots.available_permits()).min(CLAIM_BATCH);
                if room == 0 {
                    continue;
                }
                let claimed_at = Instant::now();
                let claimed = match self.store.claim_due_to(name.clone(), self.clock.now(), room).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        tracing::error!(message = "claiming commands failed", target = %name, error = %error);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                claimed_any |= !claimed.is_empty();
                for command in claimed {
                    let permit = permits.clone().try_acquire_owned().expect("claimed within the free permits");
                    let slot = gate.slots.clone().try_acquire_owned().expect("claimed within the target's room");
                    self.clone().spawn(command, claimed_at, permit, slot);
                }
            }
            // Commands to a system the contract no longer names: dead-lettered, never stuck.
            let room = permits.available_permits().min(CLAIM_BATCH);
            if room > 0 {
                let claimed_at = Instant::now();
                match self.store.claim_due_except(names.clone(), self.clock.now(), room).await {
                    Ok(claimed) => {
                        claimed_any |= !claimed.is_empty();
                        for command in claimed {
                            let permit = permits.clone().try_acquire_owned().expect("claimed within the free permits");
                            let unlimited = Arc::new(Semaphore::new(1)).try_acquire_owned().expect("a fresh permit");
                            self.clone().spawn(command, claimed_at, permit, unlimited);
                        }
                    }
                    Err(error) => tracing::error!(message = "claiming commands failed", error = %error),
                }
            }
            if !claimed_any {
                let wait = self.idle_wait().await;
                tokio::select! {
                    _ = changed.changed() => {}
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        // Let attempts in flight finish and be recorded before returning.
        let _ = permits.acquire_many(max_in_flight as u32).await;
    }

    /// Runs one attempt in a task of its own, paced to its target's rate, and supervises it:
    /// a panic is recorded as an unknown outcome, never left in flight until a restart.
    fn spawn(
        self: Arc<Self>,
        command: Command,
        claimed_at: Instant,
        permit: tokio::sync::OwnedSemaphorePermit,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) {
        tokio::spawn(async move {
            if let Some(gate) = self.gates.get(&command.target) {
                gate.pace.until_ready().await;
            }
            let started_at = self.clock.now();
            let this = self.clone();
            let copy = command.clone();
            let record = match tokio::spawn(async move { this.attempt_claimed(copy, claimed_at).await }).await {
                Ok(Some(record)) => record,
                Ok(None) => {
                    tracing::warn!(
                        message = "a claim's lease ran out before its command was sent; not sent",
                        command = command.id,
                        attempt = command.attempts
                    );
                    drop((permit, slot));
                    return;
                }
                Err(error) => {
                    tracing::error!(message = "an attempt panicked; its target will be read back", command = command.id,
                        error = %error);
                    self.panicked(command, started_at)
                }
            };
            self.record(record).await;
            drop((permit, slot));
        });
    }

    /// Records an attempt, retrying while the store refuses: the attempt's effect on the
    /// target has happened and must not be forgotten while the process lives. If the process
    /// dies first, the command stays in flight and is read back after restart.
    pub async fn record(&self, record: AttemptRecord) {
        let c = &record.command;
        tracing::debug!(message = "attempt", order = %c.order_ref, flow = %c.flow, command = c.id, kind = c.kind.as_str(),
            outcome = record.outcome.name());
        let mut delay = Duration::from_millis(50);
        while let Err(error) = self.store.record_attempt(record.clone()).await {
            if let handoff_store::StoreError::StaleClaim { .. } = error {
                // Another hub took the command over (this one was paused or cut off past its
                // lease); it reads the target back before any resend, and its outcome counts.
                tracing::warn!(message = "an attempt's claim was taken over; its outcome is not recorded",
                    command = record.command.id, error = %error);
                return;
            }
            tracing::error!(message = "recording an attempt failed; retrying", command = record.command.id, error = %error);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        // Counted once recorded: a scrape never counts an outcome (a dead letter) that the
        // store's depths do not show yet.
        crate::telemetry::attempt(&record);
    }

    /// How long to sleep when nothing could be claimed: until the next retry is due. A command
    /// waiting behind an earlier one of its order is not counted; a commit wakes the loop when
    /// that one finishes, so it is not polled.
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
