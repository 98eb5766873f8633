//! The shared store: one PostgreSQL database that several hub processes may use at once.
//! Every write is one transaction over a pooled connection, committed with
//! `synchronous_commit = on` before its future resolves; intake's events arriving together are
//! committed in one transaction (`intake`), and so are the attempts' outcomes (`attempts`),
//! both through one group commit (`batch`); PostgreSQL shares one WAL flush among the other
//! transactions committing together. A commit that adds events or
//! commands sends a NOTIFY, and a listener task turns the notifications of every process into
//! bumps of [`Store::subscribe`]'s counter.

mod attempts;
mod batch;
mod console;
mod dump;
mod intake;
mod leader;
mod listener;
mod migrate;
mod quarantine;
mod reads;
mod retention;
mod rows;
mod search;
pub mod testing;
mod tokens;
mod writes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use jiff::Timestamp;
use tokio::sync::watch;
use tokio_postgres::NoTls;

use self::batch::Batched as _;
use crate::{
    AttemptRecord, Command, ExceptionRow, FactRow, NewCommand, NewEvent, NewFinding, NewQuarantined, OrderState, Plan,
    QuarantineState, Quarantined, Raised, Recorded, Released, Replay, Result, Store, StoreError, StoredEvent, Timeline,
};

pub use dump::import;
pub use leader::Leadership;
pub use migrate::VERSION as SCHEMA_VERSION;

/// The parts of a hub that run in one hub at a time, by the name `serve` leads each under
/// (see `leader`). A part's writes go on only while this hub still leads the part, when it ever
/// led it (see `PgStore::fence`): intake's plans, the rules driver's findings, rechecks and
/// checkpoints, a poller's events and cursor, the purge's batches.
pub const INTAKE_LEAD: &str = "intake";
pub const RULES_LEAD: &str = "rules";
pub const PURGE_LEAD: &str = "purge";

/// The lead of the poller of `system` (one per polled system).
pub fn poller_lead(system: &str) -> String {
    format!("poller:{system}")
}

/// Whether a store address names PostgreSQL rather than a SQLite data directory.
pub fn is_url(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections kept to the database: the writes and reads in progress at once.
    pub max_connections: usize,
    /// How long a caller waits for a free connection before its write is refused (a webhook
    /// is told to come back: [`StoreError::QueueFull`]).
    pub wait: Duration,
    /// Events waiting to be written before a webhook's write is refused (it is told to come
    /// back): the bound on memory under overload. Outcomes of attempts waiting to be recorded
    /// have a queue of their own of that depth.
    pub queue_depth: usize,
    /// Whether outcomes of attempts arriving together are recorded in one transaction (group
    /// commit, the default); off, each is its own transaction, as benchmarks compare.
    pub batch_attempts: bool,
    /// The schema the store lives in (each test gets its own); `None`: the role's default.
    pub schema: Option<String>,
    /// How long a claim of a command is this process's alone: longer than any attempt can
    /// last (a target's time-out and settle time). A claim older than this, or whose process's
    /// session ended, is taken back by another process and read back before any resend.
    pub lease: Duration,
    /// How long a connection may sit inside a transaction waiting for its process before the
    /// database ends its session: a hub paused (or cut off with its connection open) while
    /// holding the journal's lock would otherwise stall every hub's writes until it woke.
    pub idle_in_transaction: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            wait: Duration::from_secs(10),
            queue_depth: 16_384,
            batch_attempts: true,
            schema: None,
            lease: Duration::from_secs(600),
            idle_in_transaction: Duration::from_secs(10),
        }
    }
}

/// The counter [`Store::subscribe`] hands out.
type Changed = Arc<watch::Sender<u64>>;

#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    max_connections: usize,
    /// The NOTIFY channel of this store's schema.
    channel: String,
    /// This process among the hubs: its claims name it, and it holds the advisory lock of
    /// that name for as long as its session lives (see `listener`).
    instance: i32,
    lease: jiff::SignedDuration,
    /// Intake's group commit.
    intake: batch::Batcher<intake::Intake>,
    /// The group commit of attempts' outcomes; `None`: each its own transaction.
    attempts: Option<batch::Batcher<attempts::Outcomes>>,
    /// For the connections outside the pool (the leads).
    config: tokio_postgres::Config,
    changed: Changed,
    /// The epoch of each lead this hub took (see `leader`), kept after it is lost: a led
    /// part's writes carry it and are refused once another hub took the lead since.
    epochs: std::sync::Mutex<HashMap<String, i64>>,
    /// Stops the listener task when the store is dropped.
    _listening: listener::Listening,
}

/// Where a store's notifications travel: one channel per schema, so the tests' schemas do
/// not wake each other.
fn channel(schema: Option<&str>) -> String {
    match schema {
        Some(schema) => format!("handoff_{schema}"),
        None => "handoff".to_owned(),
    }
}

/// A random name for this process among the hubs (non-negative, as `pg_locks` shows it).
fn instance() -> i32 {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    (random & 0x7fff_ffff) as i32
}

/// The connection settings every connection of the store shares: durable commits and, for a
/// store in its own schema, that schema first on the search path.
fn config(url: &str, options: &PgOptions) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url.parse()?;
    // Added to the options the URL may carry (`?options=-c search_path=...`), never replacing them.
    let mut settings = config.get_options().map(|o| format!("{o} ")).unwrap_or_default();
    settings.push_str("-c synchronous_commit=on");
    settings.push_str(&format!(" -c idle_in_transaction_session_timeout={}", options.idle_in_transaction.as_millis()));
    if let Some(schema) = &options.schema {
        if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Schema(format!("schema name {schema:?}: letters, digits and _ only")));
        }
        settings.push_str(&format!(" -c search_path={schema}"));
    }
    config.options(&settings);
    config.connect_timeout(Duration::from_secs(10));
    if config.get_application_name().is_none() {
        config.application_name("handoff");
    }
    Ok(config)
}

/// A pool of connections made with `config`.
fn pool(config: &tokio_postgres::Config, options: &PgOptions) -> Result<Pool> {
    let manager =
        Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(options.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.wait))
        .create_timeout(Some(Duration::from_secs(10)))
        .build()
        .map_err(|e| StoreError::Pool(e.to_string()))
}

/// The store opened to read only (`handoff doctor`, `handoff export`): never migrated, every
/// transaction read only (`default_transaction_read_only`), no listener, no intake, no lead.
/// A database of another schema version is refused rather than changed.
#[derive(Clone)]
pub struct PgReader {
    pool: Pool,
}

impl PgReader {
    pub async fn open(url: &str, options: PgOptions) -> Result<Self> {
        let mut config = config(url, &options)?;
        let settings = format!("{} -c default_transaction_read_only=on", config.get_options().unwrap_or_default());
        config.options(&settings);
        let pool = pool(&config, &options)?;
        let at = migrate::version(&pool.get().await?).await?;
        if at != migrate::VERSION {
            return Err(StoreError::Schema(format!(
                "the database is at schema version {at}, this build reads version {}: run `handoff migrate` of \
                 this build first, or use the build that wrote it",
                migrate::VERSION
            )));
        }
        Ok(PgReader { pool })
    }

    pub async fn flow_stats(&self, since: Timestamp) -> Result<Vec<crate::FlowStats>> {
        reads::flow_stats(&self.pool.get().await?, since).await
    }

    pub async fn exceptions(
        &self,
        state: Option<handoff_model::ExceptionState>,
        limit: usize,
    ) -> Result<Vec<ExceptionRow>> {
        reads::exceptions(&self.pool.get().await?, state, limit).await
    }
}

/// Whether the same transaction may succeed if simply run again: PostgreSQL chose it as a
/// deadlock's victim or refused it as a serialisation failure.
fn is_transient(error: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    let StoreError::Postgres(e) = error else { return false };
    e.code().is_some_and(|c| *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

/// Runs `$body` in a transaction on `$client` and commits it; the transaction rolls back if
/// the body fails. `$tx` names the transaction inside the body.
macro_rules! in_tx {
    ($client:expr, |$tx:ident| $body:expr) => {{
        let mut client = $client;
        let $tx = client.transaction().await?;
        let result = $body;
        $tx.commit().await?;
        Ok(result)
    }};
}

/// As [`in_tx`], for a write that may add events or commands: other processes are notified
/// on commit and this one's waiters wake.
macro_rules! notifying {
    ($store:expr, $client:expr, |$tx:ident| $body:expr) => {{
        let result = in_tx!($client, |$tx| {
            let result = $body;
            writes::notify(&$tx, &$store.inner.channel).await?;
            result
        });
        $store.changed();
        result
    }};
}

impl PgStore {
    /// Connects to the database at `url`, migrating it to the latest schema (one process at
    /// a time: the migration holds a lock), and starts listening for other processes' writes.
    pub async fn open(url: &str, options: PgOptions) -> Result<Self> {
        let config = config(url, &options)?;
        let pool = pool(&config, &options)?;
        {
            let mut client = pool.get().await?;
            migrate::to_latest(&mut client).await?;
        }
        let changed = Arc::new(watch::Sender::new(0));
        let channel = channel(options.schema.as_deref());
        let instance = instance();
        let listening = listener::start(config.clone(), channel.clone(), instance, changed.clone()).await?;
        let lease = jiff::SignedDuration::try_from(options.lease)
            .map_err(|e| StoreError::Schema(format!("lease of {:?}: {e}", options.lease)))?;
        let intake = intake::Intake { pool: pool.clone(), channel: channel.clone() };
        let intake = batch::Batcher::start(intake, options.queue_depth, changed.clone());
        let outcomes = || attempts::Outcomes { pool: pool.clone(), channel: channel.clone() };
        let attempts =
            options.batch_attempts.then(|| batch::Batcher::start(outcomes(), options.queue_depth, changed.clone()));
        let inner = Inner {
            intake,
            attempts,
            config: config.clone(),
            pool,
            max_connections: options.max_connections,
            channel,
            instance,
            lease,
            changed,
            epochs: Default::default(),
            _listening: listening,
        };
        Ok(PgStore { inner: Arc::new(inner) })
    }

    /// Migrates the database at `url` to the latest schema; returns the version it was at.
    pub async fn migrate(url: &str, options: PgOptions) -> Result<i32> {
        let (mut client, connection) = config(url, &options)?.connect(NoTls).await?;
        let running = tokio::spawn(connection);
        let before = migrate::to_latest(&mut client).await;
        drop(client);
        let _ = running.await;
        before
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        Ok(self.inner.pool.get().await?)
    }

    /// A connection for a write the caller may be told to retry (intake): a pool with every
    /// connection busy past the wait is the store's queue being full.
    async fn client_or_full(&self) -> Result<deadpool_postgres::Object> {
        match self.inner.pool.get().await {
            Err(deadpool_postgres::PoolError::Timeout(_)) => {
                let status = self.inner.pool.status();
                Err(StoreError::QueueFull { queued: status.waiting, capacity: self.inner.max_connections })
            }
            other => Ok(other?),
        }
    }

    async fn claim(&self, only: Option<&str>, except: &[String], now: Timestamp, limit: usize) -> Result<Vec<Command>> {
        let lease = writes::Lease {
            instance: self.inner.instance,
            until: now.checked_add(self.inner.lease).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        };
        in_tx!(self.client().await?, |tx| writes::claim_due(&tx, only, except, now, limit, &lease).await?)
    }

    /// Fences a led part's write, inside its transaction: in a hub that took `part`'s lead,
    /// the write goes on only while no other hub took the lead since (`StoreError::LeadLost`
    /// otherwise, see `writes::check_lead`); in one that never led it (a single process, a
    /// tool such as `handoff purge`) it goes on unchecked. The epoch is the one this hub took
    /// last: `serve` stops a part's run before it asks for the lead again, so a run's writes
    /// never carry a later run's epoch.
    async fn fence(&self, tx: &deadpool_postgres::Transaction<'_>, part: &str) -> Result<()> {
        let epoch = self.inner.epochs.lock().expect("epochs lock").get(part).copied();
        match epoch {
            Some(epoch) => writes::check_lead(tx, part, epoch).await,
            None => Ok(()),
        }
    }

    /// Wakes this process's waiters at once (other processes wake on the NOTIFY).
    fn changed(&self) {
        self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Store for PgStore {
    async fn create_user(&self, user: crate::NewUser, actor: String, now: Timestamp) -> Result<Option<i64>> {
        in_tx!(self.client().await?, |tx| console::create_user(&tx, &user, &actor, now).await?)
    }

    async fn user_by_name(&self, name: String) -> Result<Option<crate::UserRow>> {
        console::user_by_name(&self.client().await?, &name).await
    }

    async fn open_session(&self, session: crate::NewSession, now: Timestamp) -> Result<i64> {
        in_tx!(self.client().await?, |tx| console::open_session(&tx, &session, now).await?)
    }

    async fn session_by_hash(&self, hash: String) -> Result<Option<crate::SessionRow>> {
        console::session_by_hash(&self.client().await?, &hash).await
    }

    async fn touch_session(&self, id: i64, now: Timestamp) -> Result<()> {
        console::touch(&self.client().await?, id, now).await
    }

    async fn redeem_link(
        &self,
        link_hash: String,
        new_hash: String,
        not_before: Timestamp,
        now: Timestamp,
    ) -> Result<Option<crate::SessionRow>> {
        in_tx!(self.client().await?, |tx| console::redeem(&tx, &link_hash, &new_hash, not_before, now).await?)
    }

    async fn end_session(&self, hash: String, now: Timestamp) -> Result<bool> {
        in_tx!(self.client().await?, |tx| console::end(&tx, &hash, now).await?)
    }

    async fn search_orders(&self, filter: crate::OrderFilter) -> Result<crate::Page<crate::OrderRow>> {
        search::orders(&self.client().await?, &filter).await
    }

    async fn search_exceptions(&self, filter: crate::ExceptionFilter) -> Result<crate::Page<ExceptionRow>> {
        search::exceptions(&self.client().await?, &filter).await
    }

    async fn search_clusters(&self, filter: crate::ClusterFilter) -> Result<crate::Page<crate::ClusterRow>> {
        search::clusters(&self.client().await?, &filter).await
    }

    async fn search_commands(&self, filter: crate::CommandFilter) -> Result<crate::Page<Command>> {
        search::commands(&self.client().await?, &filter).await
    }

    async fn search_audit(&self, filter: crate::AuditFilter) -> Result<crate::Page<crate::AuditEntry>> {
        search::audit(&self.client().await?, &filter).await
    }

    async fn flow_health(&self, window: crate::HealthWindow) -> Result<Vec<crate::FlowHealth>> {
        let mut client = self.client().await?;
        // One snapshot: the window's commands and the dead letters waiting agree.
        let tx = client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead);
        let tx = tx.read_only(true).start().await?;
        let health = search::flow_health(&tx, &window).await?;
        tx.commit().await?;
        Ok(health)
    }

    async fn record_event(&self, event: NewEvent) -> Result<Recorded> {
        self.inner.intake.write(event).await
    }

    async fn poll_cursor(&self, system: String) -> Result<Option<String>> {
        reads::poll_cursor(&self.client().await?, &system).await
    }

    async fn record_polled(
        &self,
        system: String,
        events: Vec<NewEvent>,
        held: Vec<NewQuarantined>,
        cursor: String,
        now: Timestamp,
    ) -> Result<Vec<Recorded>> {
        notifying!(self, self.client().await?, |tx| {
            self.fence(&tx, &poller_lead(&system)).await?;
            writes::record_polled(&tx, &system, &events, &held, &cursor, now).await?
        })
    }

    async fn quarantine(&self, held: NewQuarantined, now: Timestamp) -> Result<Recorded> {
        in_tx!(self.client_or_full().await?, |tx| quarantine::hold(&tx, &held, now).await?)
    }

    async fn quarantined(&self, state: Option<QuarantineState>, limit: usize) -> Result<Vec<Quarantined>> {
        quarantine::list(&self.client().await?, state, limit).await
    }

    async fn search_quarantine(&self, filter: crate::QuarantineFilter) -> Result<crate::Page<Quarantined>> {
        quarantine::page(&self.client().await?, &filter).await
    }

    async fn quarantined_one(&self, id: i64) -> Result<Option<Quarantined>> {
        quarantine::one(&self.client().await?, id).await
    }

    async fn quarantine_depth(&self) -> Result<Vec<(String, u64)>> {
        quarantine::depth(&self.client().await?).await
    }

    async fn release_quarantined(&self, id: i64, event: NewEvent, actor: String, now: Timestamp) -> Result<Released> {
        notifying!(self, self.client().await?, |tx| quarantine::release(&tx, id, &event, &actor, now).await?)
    }

    async fn set_dead_letter_payload(&self, id: i64, payload: String, actor: String, now: Timestamp) -> Result<bool> {
        in_tx!(self.client().await?, |tx| writes::set_dead_letter_payload(&tx, id, &payload, &actor, now).await?)
    }

    async fn move_exception(
        &self,
        id: i64,
        to: handoff_model::ExceptionState,
        actor: String,
        reason: Option<String>,
        now: Timestamp,
    ) -> Result<crate::Moved> {
        notifying!(self, self.client().await?, |tx| writes::move_exception(&tx, id, to, &actor, reason.as_deref(), now)
            .await?)
    }

    async fn unprocessed_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        reads::unprocessed_events(&self.client().await?, limit).await
    }

    async fn count_unplanned(&self, at_most: usize) -> Result<u64> {
        reads::count_unplanned(&self.client().await?, at_most).await
    }

    async fn order_states(&self, order_refs: Vec<String>) -> Result<HashMap<String, OrderState>> {
        reads::order_states(&self.client().await?, &order_refs).await
    }

    async fn apply_plans(&self, plans: Vec<Plan>, now: Timestamp) -> Result<()> {
        notifying!(self, self.client().await?, |tx| {
            self.fence(&tx, INTAKE_LEAD).await?;
            writes::apply_plans(&tx, &plans, now).await?
        })
    }

    async fn claim_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Command>> {
        self.claim(None, &[], now, limit).await
    }

    async fn claim_due_to(&self, target: String, now: Timestamp, limit: usize) -> Result<Vec<Command>> {
        self.claim(Some(&target), &[], now, limit).await
    }

    async fn claim_due_except(&self, targets: Vec<String>, now: Timestamp, limit: usize) -> Result<Vec<Command>> {
        self.claim(None, &targets, now, limit).await
    }

    async fn record_attempt(&self, attempt: AttemptRecord) -> Result<()> {
        // A command's outcome frees the order's next command: the dispatchers wake.
        match &self.inner.attempts {
            Some(batched) => batched.write(attempt).await,
            None => {
                let alone = attempts::Outcomes { pool: self.inner.pool.clone(), channel: self.inner.channel.clone() };
                let answer = alone.commit(&[&attempt]).await?.pop().expect("one answer per attempt");
                self.changed();
                answer
            }
        }
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        reads::next_due_at(&self.client().await?).await
    }

    /// Run again, up to ten times, when PostgreSQL ends it as a deadlock's victim or a
    /// serialisation failure: another hub's writes may lock the same commands as it starts.
    async fn recover_in_flight(&self, now: Timestamp, read_back_at: HashMap<String, Timestamp>) -> Result<u64> {
        let mut tries = 0;
        loop {
            let run = async {
                notifying!(self, self.client().await?, |tx| writes::recover_in_flight(
                    &tx,
                    now,
                    &read_back_at,
                    self.inner.instance
                )
                .await?)
            };
            match run.await {
                Err(e) if is_transient(&e) && tries < 9 => {
                    tries += 1;
                    tracing::warn!(message = "recovering the commands in flight failed; trying again", error = %e, tries);
                    tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                }
                done => return done,
            }
        }
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<Command>> {
        reads::dead_letters(&self.client().await?, limit).await
    }

    async fn replay(&self, which: Replay, actor: String, now: Timestamp) -> Result<u64> {
        notifying!(self, self.client().await?, |tx| writes::replay(&tx, which, &actor, now).await?)
    }

    async fn abandon(&self, id: i64, actor: String, reason: Option<String>, now: Timestamp) -> Result<bool> {
        notifying!(self, self.client().await?, |tx| writes::abandon(&tx, id, &actor, reason.as_deref(), now).await?)
    }

    async fn exceptions(
        &self,
        state: Option<handoff_model::ExceptionState>,
        limit: usize,
    ) -> Result<Vec<ExceptionRow>> {
        reads::exceptions(&self.client().await?, state, limit).await
    }

    async fn create_token(&self, token: crate::NewToken, actor: String, now: Timestamp) -> Result<i64> {
        in_tx!(self.client().await?, |tx| tokens::create(&tx, &token, &actor, now).await?)
    }

    async fn tokens(&self) -> Result<Vec<crate::TokenRow>> {
        tokens::list(&self.client().await?).await
    }

    async fn token_by_hash(&self, hash: String) -> Result<Option<crate::TokenRow>> {
        tokens::by_hash(&self.client().await?, &hash).await
    }

    async fn revoke_token(&self, id: i64, actor: String, now: Timestamp) -> Result<bool> {
        in_tx!(self.client().await?, |tx| tokens::revoke(&tx, id, &actor, now).await?)
    }

    async fn open_exceptions_by_pattern(&self) -> Result<Vec<(String, u64)>> {
        reads::open_exceptions_by_pattern(&self.client().await?).await
    }

    async fn exception(&self, id: i64) -> Result<Option<ExceptionRow>> {
        reads::exception(&self.client().await?, id).await
    }

    async fn facts_after(&self, after: i64, limit: usize) -> Result<Vec<FactRow>> {
        reads::facts_after(&self.client().await?, after, limit).await
    }

    async fn event_payloads(&self, rows: Vec<i64>) -> Result<Vec<(i64, String)>> {
        reads::event_payloads(&self.client().await?, &rows).await
    }

    async fn facts_of(&self, order_refs: Vec<String>, up_to: i64) -> Result<Vec<FactRow>> {
        reads::facts_of(&self.client().await?, &order_refs, up_to).await
    }

    async fn raised_findings(&self, order_refs: Vec<String>) -> Result<Vec<crate::RaisedFinding>> {
        reads::raised_findings(&self.client().await?, &order_refs).await
    }

    async fn rules_checkpoint(&self) -> Result<Option<crate::RulesCheckpoint>> {
        let mut client = self.client().await?;
        // One snapshot: the position and the orders saved with it.
        let tx = client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead);
        let tx = tx.read_only(true).start().await?;
        let checkpoint = reads::rules_checkpoint(&tx).await?;
        tx.commit().await?;
        Ok(checkpoint)
    }

    async fn move_rules_checkpoint(&self, change: crate::CheckpointMove) -> Result<()> {
        in_tx!(self.client().await?, |tx| {
            self.fence(&tx, RULES_LEAD).await?;
            writes::move_rules_checkpoint(&tx, &change).await?
        })
    }

    async fn raise_finding(&self, finding: NewFinding, now: Timestamp) -> Result<Raised> {
        in_tx!(self.client().await?, |tx| {
            self.fence(&tx, RULES_LEAD).await?;
            writes::raise_finding(&tx, &finding, now).await?
        })
    }

    async fn clear_finding(
        &self,
        pattern: handoff_model::Pattern,
        order_ref: String,
        subject: String,
        now: Timestamp,
    ) -> Result<bool> {
        in_tx!(self.client().await?, |tx| {
            self.fence(&tx, RULES_LEAD).await?;
            writes::clear_finding(&tx, pattern, &order_ref, &subject, now).await?
        })
    }

    async fn take_rechecks(&self, limit: usize) -> Result<Vec<ExceptionRow>> {
        in_tx!(self.client().await?, |tx| {
            self.fence(&tx, RULES_LEAD).await?;
            writes::take_rechecks(&tx, limit).await?
        })
    }

    async fn enqueue_action(
        &self,
        exception_id: i64,
        event_row: i64,
        command: NewCommand,
        actor: String,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        notifying!(self, self.client().await?, |tx| writes::enqueue_action(
            &tx,
            exception_id,
            event_row,
            &command,
            &actor,
            now
        )
        .await?)
    }

    async fn order_timeline(&self, order_ref: String) -> Result<Timeline> {
        let mut client = self.client().await?;
        // One snapshot, so the order's commands and their attempts agree.
        let tx = client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead);
        let tx = tx.read_only(true).start().await?;
        let timeline = reads::order_timeline(&tx, &order_ref).await?;
        tx.commit().await?;
        Ok(timeline)
    }

    async fn record_audit(
        &self,
        order_ref: String,
        actor: String,
        action: String,
        detail: String,
        now: Timestamp,
    ) -> Result<()> {
        writes::audit(&self.client().await?, now, &actor, &action, Some(&order_ref), &detail).await
    }

    async fn flow_stats(&self, since: Timestamp) -> Result<Vec<crate::FlowStats>> {
        reads::flow_stats(&self.client().await?, since).await
    }

    async fn command_counts(&self) -> Result<Vec<(String, u64)>> {
        reads::command_counts(&self.client().await?).await
    }

    async fn purge(&self, before: crate::PurgeBefore, limit: usize, dry_run: bool) -> Result<crate::Purged> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // A dry run changes nothing, so it needs no lead (and holds none back).
        if !dry_run {
            self.fence(&tx, PURGE_LEAD).await?;
        }
        let purged = retention::purge(&tx, &before, limit).await?;
        // A dry run does the same work and rolls it back.
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(purged)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    fn writer_queue(&self) -> Option<crate::WriterQueue> {
        Some(self.inner.intake.queue())
    }

    fn lease(&self) -> Option<Duration> {
        Some(self.inner.lease.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{PgOptions, PgStore, testing};

    /// A transaction left waiting on its process (a hub paused mid-write) is ended by the
    /// database after `idle_in_transaction`, and its locks with it.
    #[tokio::test]
    async fn a_transaction_left_idle_is_ended_and_its_locks_freed() {
        let Some(url) = testing::test_database_url() else { return };
        let schema = testing::TestSchema::create(&url).await.unwrap();
        let options = PgOptions { idle_in_transaction: Duration::from_millis(500), ..schema.options() };
        let store = PgStore::open(&url, options).await.unwrap();
        let mut paused = store.client().await.unwrap();
        let tx = paused.transaction().await.unwrap();
        tx.execute("SELECT pg_advisory_xact_lock(42)", &[]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(tx.execute("SELECT 1", &[]).await.is_err(), "the idle transaction was not ended");
        let other = store.client().await.unwrap();
        let taken: bool = other.query_one("SELECT pg_try_advisory_xact_lock(42)", &[]).await.unwrap().get(0);
        assert!(taken, "the ended transaction's lock is free");
        drop((other, tx));
        drop((paused, store));
        schema.drop().await.unwrap();
    }
}
