//! Durable state of the write path behind one trait: the inbox with dedup, the per-order
//! ledger, the outbox of commands with their attempts, dead letters, exceptions and the audit
//! log. The engine speaks only to [`Store`]; `sqlite` is the embedded implementation, `postgres`
//! the one several hub processes share.
//!
//! Times are always passed in by the caller (the engine's `Clock`): a store never reads the
//! wall clock, so a simulated run is deterministic.

mod console;
pub mod dump;
pub mod heartbeat;
pub mod memory;
pub mod personal;
pub mod postgres;
mod quarantine;
pub mod search;
pub mod sqlite;
mod tokens;
mod types;

use std::future::Future;

use jiff::Timestamp;

pub use console::*;
pub use quarantine::*;
pub use search::{
    AuditEntry, AuditFilter, ClusterFilter, ClusterRow, CommandFilter, ExceptionFilter, FlowHealth, HealthBucket,
    HealthWindow, OrderFilter, OrderRow, Page, QuarantineFilter,
};
pub use tokens::*;
pub use types::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(String),
    /// The claim this attempt was made under was taken over (its lease ran out, or its hub's
    /// session ended) and the command claimed again: this outcome is not recorded.
    #[error("command {command}: its claim (attempt {attempt}) was taken over; the outcome is refused")]
    StaleClaim { command: i64, attempt: u32 },
    /// This hub no longer leads the part the write belongs to (another hub took it over while
    /// this one was paused or cut off): the write is refused.
    #[error("this hub no longer leads {part}; its write is refused")]
    LeadLost { part: String },
    #[error("database migration failed")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("cannot open the data directory {path}")]
    DataDir { path: String, source: std::io::Error },
    /// The dry run of a purge could not write its private copy of the store (the disk filled).
    #[error(
        "the purge's dry run copies the store beside it first and needs about {needed_mb} MB free in {dir}: {reason}"
    )]
    NoRoomForDryRun { dir: String, needed_mb: u64, reason: String },
    #[error("the store's writer has stopped")]
    WriterGone,
    /// The writer's queue is full: a caller that can should tell its sender to come back.
    #[error("the store's write queue is full ({queued} of {capacity} jobs); retry")]
    QueueFull { queued: usize, capacity: usize },
    #[error("the write was not committed: {0}")]
    NotCommitted(String),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Schema(String),
    /// A read was asked something it cannot answer (a cursor it never gave, a filter value
    /// out of range): the caller's mistake, nothing stored is wrong.
    #[error("{0}")]
    Invalid(String),
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Backend(error) => StoreError::Postgres(error),
            other => StoreError::Pool(other.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The writes waiting for a store's writer, and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WriterQueue {
    pub queued: usize,
    pub capacity: usize,
}

impl WriterQueue {
    pub fn is_full(&self) -> bool {
        self.queued >= self.capacity
    }
}

/// What a task of the hub waits for in the store (see [`Store::subscribe_to`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Events recorded in the inbox: intake's wake.
    Events,
    /// Journal entries written, or exceptions changed (a person's resolve to check again): the
    /// rules' wake.
    Journal,
    /// Commands written, claimed, answered, released or replayed: the dispatcher's wake.
    Commands,
}

/// The write path's durable state. Every write is durable when its future resolves.
pub trait Store: Send + Sync + 'static {
    /// Records an inbound event, deduplicated on (system, event id). Refused with
    /// [`StoreError::QueueFull`], nothing stored, when the writer's queue is full.
    fn record_event(&self, event: NewEvent) -> impl Future<Output = Result<Recorded>> + Send;

    /// Where the last poll of `system` ended, if it was ever polled.
    fn poll_cursor(&self, system: String) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Records the events one poll of `system` found (each deduplicated as by
    /// [`Store::record_event`]), holds the records it could not map (as by
    /// [`Store::quarantine`]) and moves its cursor, in one transaction. Returns what became of
    /// the events.
    fn record_polled(
        &self,
        system: String,
        events: Vec<NewEvent>,
        held: Vec<NewQuarantined>,
        cursor: String,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Recorded>>> + Send;

    /// Holds a body no reader could map and raises its Transform Mismatch exception, in one
    /// transaction, deduplicated on (system, fingerprint): a body held before is `Duplicate`
    /// and raises nothing again. Refused as [`Store::record_event`] when the writer's queue is full.
    fn quarantine(&self, held: NewQuarantined, now: Timestamp) -> impl Future<Output = Result<Recorded>> + Send;

    /// Held bodies, newest first, optionally only those in one state.
    fn quarantined(
        &self,
        state: Option<QuarantineState>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Quarantined>>> + Send;

    /// Held bodies searched (see [`QuarantineFilter`]), newest first, one keyset page.
    fn search_quarantine(&self, filter: QuarantineFilter) -> impl Future<Output = Result<Page<Quarantined>>> + Send;

    /// One held body, with its bytes.
    fn quarantined_one(&self, id: i64) -> impl Future<Output = Result<Option<Quarantined>>> + Send;

    /// Bodies still held, per system: the quarantine's depth.
    fn quarantine_depth(&self) -> impl Future<Output = Result<Vec<(String, u64)>>> + Send;

    /// A held body was read again into `event`: records it in the inbox (deduplicated as by
    /// [`Store::record_event`]), marks the row replayed and resolves its exception, audited
    /// with `actor`, in one transaction. A row replayed before changes nothing.
    fn release_quarantined(
        &self,
        id: i64,
        event: NewEvent,
        actor: String,
        now: Timestamp,
    ) -> impl Future<Output = Result<Released>> + Send;

    /// Events recorded but not yet planned, oldest first, without their raw vendor bodies
    /// (`raw` is `None`: intake plans from the canonical payload, and a vendor's body is often
    /// several times its size).
    fn unprocessed_events(&self, limit: usize) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;

    /// How many events are recorded but not yet planned, counted up to `at_most`.
    fn count_unplanned(&self, at_most: usize) -> impl Future<Output = Result<u64>> + Send;

    /// The sequencer's state of each order named; absent orders are new.
    fn order_states(
        &self,
        order_refs: Vec<String>,
    ) -> impl Future<Output = Result<std::collections::HashMap<String, OrderState>>> + Send;

    /// Applies planned events atomically: each event marked processed, its order's state, its
    /// ledger entry and its commands written together.
    fn apply_plans(&self, plans: Vec<Plan>, now: Timestamp) -> impl Future<Output = Result<()>> + Send;

    /// Claims due commands that head their (order, target) sequence, marking them in flight.
    fn claim_due(&self, now: Timestamp, limit: usize) -> impl Future<Output = Result<Vec<Command>>> + Send;

    /// As [`Store::claim_due`], for the commands to one target only (each target has its own
    /// limits, so one that is saturated never takes another's turn).
    fn claim_due_to(
        &self,
        target: String,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Command>>> + Send;

    /// As [`Store::claim_due`], for the commands to any target but those named (targets the
    /// contract no longer names: their commands are dead-lettered, never stuck).
    fn claim_due_except(
        &self,
        targets: Vec<String>,
        now: Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Command>>> + Send;

    /// Records how one attempt ended.
    fn record_attempt(&self, attempt: AttemptRecord) -> impl Future<Output = Result<()>> + Send;

    /// When the earliest pending command that heads its sequence becomes due, if any: one
    /// behind an unfinished command of its order and target waits for that one, not a time.
    fn next_due_at(&self) -> impl Future<Output = Result<Option<Timestamp>>> + Send;

    /// After a restart: commands left in flight have an unknown outcome. They return to
    /// pending, marked ambiguous, each due at its own target's time in `read_back_at` (`now`
    /// for a target not named), so the target is read back before any resend, once a request
    /// still on its way can no longer land.
    fn recover_in_flight(
        &self,
        now: Timestamp,
        read_back_at: std::collections::HashMap<String, Timestamp>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Dead-lettered commands, oldest first.
    fn dead_letters(&self, limit: usize) -> impl Future<Output = Result<Vec<Command>>> + Send;

    /// Rewrites a dead letter's payload before it is replayed (to pin the mapping version it is
    /// replayed with); `false` when `id` is not a dead letter. Audited with `actor`.
    fn set_dead_letter_payload(
        &self,
        id: i64,
        payload: String,
        actor: String,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Puts dead letters back in the queue with a fresh budget; returns how many.
    fn replay(&self, which: Replay, actor: String, now: Timestamp) -> impl Future<Output = Result<u64>> + Send;

    /// A person gives up on dead letter `id`: it is abandoned (never sent again, no longer
    /// holding its order's later commands), its exception resolved, the rules told, audited
    /// with `actor` and `reason`, in one transaction. `false` when `id` is not a dead letter.
    fn abandon(
        &self,
        id: i64,
        actor: String,
        reason: Option<String>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Keeps a new API token (its hash), audited with `actor`; returns its id.
    fn create_token(&self, token: NewToken, actor: String, now: Timestamp) -> impl Future<Output = Result<i64>> + Send;

    /// Every token ever created, oldest first, without hashes.
    fn tokens(&self) -> impl Future<Output = Result<Vec<TokenRow>>> + Send;

    /// The token with this hash, revoked and expired ones included (the caller tells why it
    /// refuses).
    fn token_by_hash(&self, hash: String) -> impl Future<Output = Result<Option<TokenRow>>> + Send;

    /// Revokes a token, audited with `actor`; false when there is no such live token.
    fn revoke_token(&self, id: i64, actor: String, now: Timestamp) -> impl Future<Output = Result<bool>> + Send;

    /// Creates a console user, audited with `actor`; `None` when the name is taken.
    fn create_user(
        &self,
        user: NewUser,
        actor: String,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<i64>>> + Send;

    /// The console user of this name.
    fn user_by_name(&self, name: String) -> impl Future<Output = Result<Option<UserRow>>> + Send;

    /// Opens a console session (or a one-time login link), audited as its user.
    fn open_session(&self, session: NewSession, now: Timestamp) -> impl Future<Output = Result<i64>> + Send;

    /// The session whose id has this hash, ended ones and unredeemed links included (the
    /// caller tells why it refuses).
    fn session_by_hash(&self, hash: String) -> impl Future<Output = Result<Option<SessionRow>>> + Send;

    /// Marks a session seen at `now` (its idle limit counts from there).
    fn touch_session(&self, id: i64, now: Timestamp) -> impl Future<Output = Result<()>> + Send;

    /// Redeems a one-time login link created at or after `not_before`: it becomes a session
    /// whose id hashes to `new_hash`, once; audited as its user. `None` when there is no such
    /// live link (used, ended, too old or never made).
    fn redeem_link(
        &self,
        link_hash: String,
        new_hash: String,
        not_before: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<SessionRow>>> + Send;

    /// Ends a live session (logout), audited as its user; `false` when there is none.
    fn end_session(&self, hash: String, now: Timestamp) -> impl Future<Output = Result<bool>> + Send;

    /// Open exceptions counted per pattern (for `/metrics`).
    fn open_exceptions_by_pattern(&self) -> impl Future<Output = Result<Vec<(String, u64)>>> + Send;

    /// Exceptions, newest first, optionally only those in one state.
    fn exceptions(
        &self,
        state: Option<handoff_model::ExceptionState>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ExceptionRow>>> + Send;

    /// A person acknowledges, resolves or ignores an exception (see
    /// `ExceptionState::person_may_move`); audited with `actor` and `reason`. Resolving or
    /// ignoring a dead letter's exception settles its command: a command still dead-lettered
    /// is abandoned with it (as by [`Store::abandon`]), so no order is left stuck behind it.
    fn move_exception(
        &self,
        id: i64,
        to: handoff_model::ExceptionState,
        actor: String,
        reason: Option<String>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Moved>> + Send;

    /// One exception, with its evidence.
    fn exception(&self, id: i64) -> impl Future<Output = Result<Option<ExceptionRow>>> + Send;

    /// The rules' journal after entry `after`, oldest first; an event's entry without its
    /// payload (a join into the inbox's large rows for events the rules mostly hold parsed).
    fn facts_after(&self, after: i64, limit: usize) -> impl Future<Output = Result<Vec<FactRow>>> + Send;

    /// The canonical payloads of the inbox rows named, by row; a row no longer kept is absent.
    fn event_payloads(&self, rows: Vec<i64>) -> impl Future<Output = Result<Vec<(i64, String)>>> + Send;

    /// The journal of the orders named, up to entry `up_to` included, oldest first: what the
    /// rules need to follow an order again.
    fn facts_of(&self, order_refs: Vec<String>, up_to: i64) -> impl Future<Output = Result<Vec<FactRow>>> + Send;

    /// The findings of the orders named whose exceptions are open, acknowledged or ignored.
    fn raised_findings(&self, order_refs: Vec<String>) -> impl Future<Output = Result<Vec<RaisedFinding>>> + Send;

    /// Where the rules' board was last left, if it ever was.
    fn rules_checkpoint(&self) -> impl Future<Output = Result<Option<RulesCheckpoint>>> + Send;

    /// Moves the rules' checkpoint: adds the orders that joined, sets the position, then takes
    /// away the orders that left. In that order, the orders kept always include every order
    /// followed at the position kept, so a store may write a long move in steps (SQLite does,
    /// so that webhooks are not held behind it) and a stop part-way leaves a checkpoint a
    /// restart rebuilds from (an order kept after it left is rebuilt, and leaves again).
    fn move_rules_checkpoint(&self, change: CheckpointMove) -> impl Future<Output = Result<()>> + Send;

    /// Raises a finding of the rules as an exception, once per (pattern, order, subject): an
    /// open one stays as it is, a closed one reopens. Audited as `rule:<pattern>`.
    fn raise_finding(&self, finding: NewFinding, now: Timestamp) -> impl Future<Output = Result<Raised>> + Send;

    /// The cause of a finding is gone: its open exception resolves itself. `true` if one did.
    fn clear_finding(
        &self,
        pattern: handoff_model::Pattern,
        order_ref: String,
        subject: String,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Rules exceptions a person resolved since the rules last looked: the rules check that
    /// their cause is gone (and reopen them if not). Each is handed out once.
    fn take_rechecks(&self, limit: usize) -> impl Future<Output = Result<Vec<ExceptionRow>>> + Send;

    /// A resolution action: a command written to the outbox on behalf of an exception, as if
    /// planned from the event at `event_row`. Audited with `actor`. `None` when the command's
    /// idempotency key was already used (the action was taken before).
    fn enqueue_action(
        &self,
        exception_id: i64,
        event_row: i64,
        command: NewCommand,
        actor: String,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<i64>>> + Send;

    /// Everything known about one order across systems, in time order.
    fn order_timeline(&self, order_ref: String) -> impl Future<Output = Result<Timeline>> + Send;

    /// Writes one line to the audit log (a person's approval, an action that sent nothing).
    fn record_audit(
        &self,
        order_ref: String,
        actor: String,
        action: String,
        detail: String,
        now: Timestamp,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Measured delivery per (flow, command kind) over the commands created since `since`:
    /// counts, attempts, retries, dead letters and the latency from the event that produced a
    /// command to its acknowledgment.
    fn flow_stats(&self, since: Timestamp) -> impl Future<Output = Result<Vec<FlowStats>>> + Send;

    /// Orders searched (see [`OrderFilter`]), one keyset page.
    fn search_orders(&self, filter: OrderFilter) -> impl Future<Output = Result<Page<OrderRow>>> + Send;

    /// Exceptions searched (see [`ExceptionFilter`]), newest first, one keyset page.
    fn search_exceptions(&self, filter: ExceptionFilter) -> impl Future<Output = Result<Page<ExceptionRow>>> + Send;

    /// Clusters of exceptions (see `handoff_model::cluster`), grouped and summed by the store,
    /// largest first, one keyset page.
    fn search_clusters(&self, filter: ClusterFilter) -> impl Future<Output = Result<Page<ClusterRow>>> + Send;

    /// Commands searched (see [`CommandFilter`]), newest first, one keyset page.
    fn search_commands(&self, filter: CommandFilter) -> impl Future<Output = Result<Page<Command>>> + Send;

    /// The audit log searched (see [`AuditFilter`]), newest first, one keyset page.
    fn search_audit(&self, filter: AuditFilter) -> impl Future<Output = Result<Page<AuditEntry>>> + Send;

    /// Each flow's health over a window in buckets: acknowledgment rate, latency percentiles,
    /// retries and dead letters of the commands created in each, and the dead letters waiting.
    fn flow_health(&self, window: HealthWindow) -> impl Future<Output = Result<Vec<FlowHealth>>> + Send;

    /// Counts of commands per state; the backlog and the health of the outbox.
    fn command_counts(&self) -> impl Future<Output = Result<Vec<(String, u64)>>> + Send;

    /// Removes what the retention no longer keeps: raw bodies and personal fields received
    /// before `before.personal_data` (an exception's evidence keeps their hashes), the
    /// journal, attempts, audit lines and finished commands from before `before.history`, and
    /// inbox rows (dedup keys) only once past `before.dedup` too. At most `limit` rows per
    /// table per call, and a store may stop a call sooner to let other writes through (SQLite's
    /// writer, after about 25 ms of work); `Purged::more` says to call again. `dry_run` changes
    /// nothing and counts what one call would remove, without holding up other writes (SQLite
    /// counts on a private copy of the store, PostgreSQL in a transaction it rolls back).
    fn purge(&self, before: PurgeBefore, limit: usize, dry_run: bool) -> impl Future<Output = Result<Purged>> + Send;

    /// A counter bumped by every commit that changed rows: waiters wake when new events or
    /// commands may exist (a commit that changed nothing wakes nobody).
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;

    /// A counter bumped by every commit that may have changed what `topic` names: a task's
    /// wake that other writes need not touch (the dispatcher is not woken by each webhook
    /// recorded, nor intake by each plan). A store that cannot tell bumps it with every change
    /// ([`Store::subscribe`]).
    fn subscribe_to(&self, topic: Topic) -> tokio::sync::watch::Receiver<u64> {
        let _ = topic;
        self.subscribe()
    }

    /// The writes waiting for the store's writer, for a store that queues them (`None`: it
    /// writes in place and is never full).
    fn writer_queue(&self) -> Option<WriterQueue> {
        None
    }

    /// How long a claim of a command is this process's alone, for a store that other
    /// processes claim from too: past it another process may take the command over (`None`:
    /// only this process claims, and a claim lasts until its outcome is recorded).
    fn lease(&self) -> Option<std::time::Duration> {
        None
    }
}
