//! The store a command works on, wherever `resolve_store` finds it (`--store`, HANDOFF_STORE,
//! `--data-dir`, the contract's `[hub] store` or `data_dir`; SQLite by default): one type over
//! both backends, so each command has one body for either.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use handoff_contract::data_dir::StoreAt;
use handoff_model::{ExceptionState, Pattern};
use handoff_store::postgres::{PgOptions, PgReader, PgStore};
use handoff_store::sqlite::{DB_FILE, SqliteOptions, SqliteReader, SqliteStore};
use handoff_store::*;
use jiff::Timestamp;

/// The embedded store or the shared database.
#[derive(Clone)]
pub enum AnyStore {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Connections a command keeps to PostgreSQL: it does one thing at a time.
const COMMAND_CONNECTIONS: usize = 4;

/// Opens the store at `at`, which must hold one already (a command never makes an empty store
/// by mistake in the wrong place).
pub async fn open(at: &StoreAt) -> anyhow::Result<AnyStore> {
    if let StoreAt::Dir(dir) = at
        && !dir.join(DB_FILE).exists()
    {
        bail!(
            "no Handoff store in {} (set --store, HANDOFF_STORE, --data-dir, HANDOFF_DATA_DIR or the contract's \
             [hub] store or data_dir)",
            dir.display()
        );
    }
    create(at).await
}

/// Opens the store at `at`, making it if there is none yet (the first token or user is made
/// before the hub ever serves).
pub async fn create(at: &StoreAt) -> anyhow::Result<AnyStore> {
    Ok(match at {
        StoreAt::Dir(dir) => AnyStore::Sqlite(
            SqliteStore::open(dir, SqliteOptions::default())
                .with_context(|| format!("opening the store in {}", dir.display()))?,
        ),
        StoreAt::Postgres(url) => AnyStore::Postgres(
            PgStore::open(url, PgOptions { max_connections: COMMAND_CONNECTIONS, ..PgOptions::default() })
                .await
                .with_context(|| format!("opening the store at {}", at.display()))?,
        ),
    })
}

/// A store opened to read only: never migrated nor written (`handoff doctor`).
pub enum Reader {
    Sqlite(SqliteReader),
    Postgres(PgReader),
}

impl Reader {
    /// The reader of the store at `at`; `None` when a data directory holds no store.
    pub async fn open(at: &StoreAt) -> anyhow::Result<Option<Reader>> {
        Ok(Some(match at {
            StoreAt::Dir(dir) if !dir.join(DB_FILE).exists() => return Ok(None),
            StoreAt::Dir(dir) => Reader::Sqlite(SqliteReader::open(dir)?),
            StoreAt::Postgres(url) => Reader::Postgres(
                PgReader::open(url, PgOptions { max_connections: 1, ..PgOptions::default() })
                    .await
                    .with_context(|| format!("reading the store at {}", at.display()))?,
            ),
        }))
    }

    pub async fn flow_stats(&self, since: Timestamp) -> Result<Vec<FlowStats>> {
        match self {
            Reader::Sqlite(s) => s.flow_stats(since).await,
            Reader::Postgres(s) => s.flow_stats(since).await,
        }
    }

    pub async fn exceptions(&self, state: Option<ExceptionState>, limit: usize) -> Result<Vec<ExceptionRow>> {
        match self {
            Reader::Sqlite(s) => s.exceptions(state, limit).await,
            Reader::Postgres(s) => s.exceptions(state, limit).await,
        }
    }
}

/// Each method of [`Store`] handed to the backend.
macro_rules! delegate {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        impl Store for AnyStore {
            $(async fn $name(&self, $($arg: $ty),*) -> Result<$out> {
                match self {
                    AnyStore::Sqlite(s) => s.$name($($arg),*).await,
                    AnyStore::Postgres(s) => s.$name($($arg),*).await,
                }
            })*

            fn subscribe_to(&self, topic: Topic) -> tokio::sync::watch::Receiver<u64> {
                match self {
                    AnyStore::Sqlite(s) => s.subscribe_to(topic),
                    AnyStore::Postgres(s) => s.subscribe_to(topic),
                }
            }

            fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
                match self {
                    AnyStore::Sqlite(s) => s.subscribe(),
                    AnyStore::Postgres(s) => s.subscribe(),
                }
            }

            fn writer_queue(&self) -> Option<WriterQueue> {
                match self {
                    AnyStore::Sqlite(s) => s.writer_queue(),
                    AnyStore::Postgres(s) => s.writer_queue(),
                }
            }

            fn lease(&self) -> Option<std::time::Duration> {
                match self {
                    AnyStore::Sqlite(s) => s.lease(),
                    AnyStore::Postgres(s) => s.lease(),
                }
            }
        }
    };
}

delegate! {
    fn record_event(event: NewEvent) -> Recorded;
    fn poll_cursor(system: String) -> Option<String>;
    fn record_polled(system: String, events: Vec<NewEvent>, held: Vec<NewQuarantined>, cursor: String, now: Timestamp) -> Vec<Recorded>;
    fn quarantine(held: NewQuarantined, now: Timestamp) -> Recorded;
    fn quarantined(state: Option<QuarantineState>, limit: usize) -> Vec<Quarantined>;
    fn search_quarantine(filter: handoff_store::QuarantineFilter) -> handoff_store::Page<Quarantined>;
    fn quarantined_one(id: i64) -> Option<Quarantined>;
    fn quarantine_depth() -> Vec<(String, u64)>;
    fn release_quarantined(id: i64, event: NewEvent, actor: String, now: Timestamp) -> Released;
    fn unprocessed_events(limit: usize) -> Vec<StoredEvent>;
    fn count_unplanned(at_most: usize) -> u64;
    fn order_states(order_refs: Vec<String>) -> HashMap<String, OrderState>;
    fn apply_plans(plans: Vec<Plan>, now: Timestamp) -> ();
    fn claim_due(now: Timestamp, limit: usize) -> Vec<Command>;
    fn claim_due_to(target: String, now: Timestamp, limit: usize) -> Vec<Command>;
    fn claim_due_except(targets: Vec<String>, now: Timestamp, limit: usize) -> Vec<Command>;
    fn record_attempt(attempt: AttemptRecord) -> ();
    fn next_due_at() -> Option<Timestamp>;
    fn recover_in_flight(now: Timestamp, read_back_at: HashMap<String, Timestamp>) -> u64;
    fn dead_letters(limit: usize) -> Vec<Command>;
    fn set_dead_letter_payload(id: i64, payload: String, actor: String, now: Timestamp) -> bool;
    fn replay(which: Replay, actor: String, now: Timestamp) -> u64;
    fn abandon(id: i64, actor: String, reason: Option<String>, now: Timestamp) -> bool;
    fn create_token(token: NewToken, actor: String, now: Timestamp) -> i64;
    fn tokens() -> Vec<TokenRow>;
    fn token_by_hash(hash: String) -> Option<TokenRow>;
    fn revoke_token(id: i64, actor: String, now: Timestamp) -> bool;
    fn create_user(user: NewUser, actor: String, now: Timestamp) -> Option<i64>;
    fn user_by_name(name: String) -> Option<UserRow>;
    fn open_session(session: NewSession, now: Timestamp) -> i64;
    fn session_by_hash(hash: String) -> Option<SessionRow>;
    fn touch_session(id: i64, now: Timestamp) -> ();
    fn redeem_link(link_hash: String, new_hash: String, not_before: Timestamp, now: Timestamp) -> Option<SessionRow>;
    fn end_session(hash: String, now: Timestamp) -> bool;
    fn open_exceptions_by_pattern() -> Vec<(String, u64)>;
    fn exceptions(state: Option<ExceptionState>, limit: usize) -> Vec<ExceptionRow>;
    fn move_exception(id: i64, to: ExceptionState, actor: String, reason: Option<String>, now: Timestamp) -> Moved;
    fn exception(id: i64) -> Option<ExceptionRow>;
    fn facts_after(after: i64, limit: usize) -> Vec<FactRow>;
    fn event_payloads(rows: Vec<i64>) -> Vec<(i64, String)>;
    fn facts_of(order_refs: Vec<String>, up_to: i64) -> Vec<FactRow>;
    fn raised_findings(order_refs: Vec<String>) -> Vec<RaisedFinding>;
    fn rules_checkpoint() -> Option<RulesCheckpoint>;
    fn move_rules_checkpoint(change: CheckpointMove) -> ();
    fn raise_finding(finding: NewFinding, now: Timestamp) -> Raised;
    fn clear_finding(pattern: Pattern, order_ref: String, subject: String, now: Timestamp) -> bool;
    fn take_rechecks(limit: usize) -> Vec<ExceptionRow>;
    fn enqueue_action(exception_id: i64, event_row: i64, command: NewCommand, actor: String, now: Timestamp) -> Option<i64>;
    fn order_timeline(order_ref: String) -> Timeline;
    fn record_audit(order_ref: String, actor: String, action: String, detail: String, now: Timestamp) -> ();
    fn flow_stats(since: Timestamp) -> Vec<FlowStats>;
    fn search_orders(filter: OrderFilter) -> Page<OrderRow>;
    fn search_exceptions(filter: ExceptionFilter) -> Page<ExceptionRow>;
    fn search_clusters(filter: ClusterFilter) -> Page<ClusterRow>;
    fn search_commands(filter: CommandFilter) -> Page<Command>;
    fn search_audit(filter: AuditFilter) -> Page<AuditEntry>;
    fn flow_health(window: HealthWindow) -> Vec<FlowHealth>;
    fn command_counts() -> Vec<(String, u64)>;
    fn purge(before: PurgeBefore, limit: usize, dry_run: bool) -> Purged;
}
