//! The embedded store: one SQLite file in WAL mode, where a write is on disk before its caller
//! hears it is done (the writer's commits are synced by a thread of their own, `syncer`). All
//! writes go through one group-commit writer thread; reads use a small pool of read connections
//! beside it (WAL lets them run during a write).
//!
//! Every statement is prepared once per connection (`prepare_cached`), and every bound `LIMIT`
//! is written `LIMIT ?n + 0`: SQLite's planner reads the value of a bare bound `LIMIT`, which
//! expires the prepared statement, so it was parsed and planned again on every run (a sixth of
//! the hub's CPU under webhook load, in the dispatcher's claims and the intake's reads); the
//! planner does not read an expression's value.

mod checkpointer;
mod console;
mod dry_run;
mod dump;
mod functions;
mod quarantine;
mod reads;
mod retention;
mod rows;
mod search;
mod syncer;
mod tokens;
mod writer;
mod writes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};
use tokio::sync::watch;

use crate::{
    AttemptRecord, Command, ExceptionRow, FactRow, NewCommand, NewEvent, NewFinding, NewQuarantined, OrderState, Plan,
    QuarantineState, Quarantined, Raised, Recorded, Released, Replay, Result, Store, StoreError, StoredEvent, Timeline,
};
use writer::Writer;

pub use dump::import;
pub(crate) use rows::COMMAND_PAYLOAD;

/// The file inside the data directory.
pub const DB_FILE: &str = "handoff.db";

/// Read connections kept open; more readers than cores only queue.
const MAX_IDLE_READERS: usize = 4;

/// Orders of the rules' checkpoint written per writer job (a millisecond or two of its work).
const CHECKPOINT_STEP: usize = 1024;

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Most write jobs committed in one transaction (one fsync).
    pub max_batch: usize,
    /// Write jobs queued before callers wait (a webhook's write is refused instead): the bound
    /// on memory under overload.
    pub queue_depth: usize,
    /// `false` only for throwaway stores (the demo's): commits survive a crash of the process
    /// but not a power loss, and skip the fsync that makes them durable.
    pub durable: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { max_batch: 512, queue_depth: 16_384, durable: true }
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Tells the checkpointer thread to stop when the store is dropped.
    stop: Arc<AtomicBool>,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    /// What the writer's commits bump for the store's subscribers.
    wakes: writer::Wakes,
    /// Clusters summed, kept until the exceptions change (`search::clusters`).
    clusters: search::ClusterCache,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The schema, one migration per file, in order; the database's `user_version` counts the ones
/// applied.
const MIGRATIONS: [&str; 19] = [
    include_str!("../../migrations/sqlite/0001_write_path.sql"),
    include_str!("../../migrations/sqlite/0002_inbox_raw.sql"),
    include_str!("../../migrations/sqlite/0003_poll_cursor.sql"),
    include_str!("../../migrations/sqlite/0004_attempt_mapping.sql"),
    include_str!("../../migrations/sqlite/0005_rules.sql"),
    include_str!("../../migrations/sqlite/0006_quarantine.sql"),
    include_str!("../../migrations/sqlite/0007_order_fingerprint.sql"),
    include_str!("../../migrations/sqlite/0008_read_indexes.sql"),
    include_str!("../../migrations/sqlite/0009_rules_checkpoint.sql"),
    include_str!("../../migrations/sqlite/0010_retention.sql"),
    include_str!("../../migrations/sqlite/0011_api_tokens.sql"),
    include_str!("../../migrations/sqlite/0012_search.sql"),
    include_str!("../../migrations/sqlite/0013_console.sql"),
    include_str!("../../migrations/sqlite/0014_cluster_key.sql"),
    include_str!("../../migrations/sqlite/0015_purge_indexes.sql"),
    include_str!("../../migrations/sqlite/0016_outbox_payloads.sql"),
    include_str!("../../migrations/sqlite/0017_fewer_outbox_indexes.sql"),
    include_str!("../../migrations/sqlite/0018_short_email_keys.sql"),
    include_str!("../../migrations/sqlite/0019_email_index_segments.sql"),
];

fn migrations() -> Migrations<'static> {
    // 0012_search fills the orders' search columns from the rows already there, 0014_cluster_key
    // the exceptions' fingerprints, 0018_short_email_keys shortens the email keys, and
    // 0019_email_index_segments moves them into the index of email keys.
    let (search, cluster_key, short_email_keys, email_index) = (11, 13, 17, 18);
    Migrations::new(
        MIGRATIONS
            .iter()
            .enumerate()
            .map(|(i, sql)| match i {
                _ if i == search => M::up_with_hook(sql, writes::fill_order_search),
                _ if i == cluster_key => M::up_with_hook(sql, writes::fill_fingerprints),
                _ if i == short_email_keys => M::up_with_hook(sql, |tx: &rusqlite::Transaction| {
                    tx.execute(crate::search::SHORTEN_EMAIL_KEYS, [])?;
                    Ok(())
                }),
                _ if i == email_index => M::up_with_hook(sql, |tx: &rusqlite::Transaction| {
                    tx.execute(writes::FILL_EMAIL_INDEX, [])?;
                    Ok(())
                }),
                _ => M::up(sql),
            })
            .collect(),
    )
}

/// The page size of a new store. The inbox's events and the commands' payloads are rows of about
/// 2 KB: with pages of 4 KiB each took a page to itself (two do not fit), half of every page the
/// WAL wrote, synced and copied back was empty. Pages of 8 KiB hold three (end to end, 9–20 % more
/// orders a second; docs/BENCHMARKS.md). A store made before keeps its pages (SQLite cannot change
/// them in WAL mode without rewriting the file).
const PAGE_SIZE: i64 = 8192;

/// Opens a connection with the durability every connection of the store must share.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Before the WAL: only a database without pages yet takes it; any other keeps its own.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // When the WAL starts over, its file is cut back to what the checkpointer lets it reach.
    conn.pragma_update(None, "journal_size_limit", checkpointer::RESTART_BYTES)?;
    functions::register(&conn)?;
    Ok(conn)
}

/// Syncs the WAL of the database at `path`, which the writer's connection has created.
fn wal_sync(path: &Path) -> Result<syncer::SyncWal> {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    let wal = std::fs::File::open(&name)
        .map_err(|source| StoreError::DataDir { path: PathBuf::from(name).display().to_string(), source })?;
    Ok(Box::new(move || wal.sync_data()))
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`, migrating it to the latest schema.
    pub fn open(data_dir: &Path, options: SqliteOptions) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
        let path = data_dir.join(DB_FILE);
        let mut conn = connect(&path)?;
        migrations().to_latest(&mut conn)?;
        // The writer's commits do not wait for the disk: its sync thread syncs the WAL after them
        // while the writer goes on (`syncer`), and only a throwaway store skips that sync.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let wal = if options.durable { Some(wal_sync(&path)?) } else { None };
        // The checkpointer thread does this work instead (see `checkpointer`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // A savepoint's journal (a job's, when its batch runs again after a failure; a statement's
        // that may fail halfway) keeps the first image of every page it touches: in memory, not
        // written to a temporary file and read back (a quarter of the writer's time under webhook
        // load, when every job had a savepoint). It is emptied at its release.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        let stop = Arc::new(AtomicBool::new(false));
        checkpointer::start(path.clone(), stop.clone());
        let wakes = writer::Wakes::new();
        let writer = Writer::start(conn, options, wakes.clone(), wal)?;
        let readers = Mutex::new(Vec::new());
        let clusters = search::ClusterCache::default();
        Ok(SqliteStore { inner: Arc::new(Inner { path, stop, writer, readers, wakes, clusters }) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a read connection off the async threads.
    async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().expect("reader pool lock").pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => connect(&inner.path)?,
            };
            let result = f(&conn);
            let mut readers = inner.readers.lock().expect("reader pool lock");
            if readers.len() < MAX_IDLE_READERS {
                readers.push(conn);
            }
            result
        })
        .await
        .expect("read task panicked")
    }

    /// The writer thread's heartbeat, for readiness.
    pub fn writer_pulse(&self) -> Arc<crate::heartbeat::Pulse> {
        self.inner.writer.pulse()
    }

    /// Group commits so far and the write jobs they carried.
    pub fn writer_stats(&self) -> (u64, u64) {
        self.inner.writer.stats()
    }

    /// Runs a SQLite integrity check; `ok` when the file is sound.
    pub async fn integrity_check(&self) -> Result<String> {
        self.read(|conn| Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))?)).await
    }
}

/// The store opened to read only (`handoff doctor`): never migrated, never written, no writer
/// or checkpointer started. A store of another schema version is refused rather than changed.
pub struct SqliteReader {
    path: PathBuf,
}

impl SqliteReader {
    pub fn open(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(DB_FILE);
        let conn = Self::connect(&path)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != MIGRATIONS.len() as i64 {
            return Err(StoreError::Schema(format!(
                "{} is at schema version {version}, this build reads version {}: run `handoff serve` of this \
                 build once to migrate it, or use the build that wrote it",
                path.display(),
                MIGRATIONS.len()
            )));
        }
        Ok(SqliteReader { path })
    }

    fn connect(path: &Path) -> Result<Connection> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        functions::register(&conn)?;
        Ok(conn)
    }

    async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || f(&Self::connect(&path)?)).await.expect("read task panicked")
    }

    pub async fn flow_stats(&self, since: Timestamp) -> Result<Vec<crate::FlowStats>> {
        self.read(move |conn| reads::flow_stats(conn, since)).await
    }

    pub async fn exceptions(
        &self,
        state: Option<handoff_model::ExceptionState>,
        limit: usize,
    ) -> Result<Vec<ExceptionRow>> {
        self.read(move |conn| reads::exceptions(conn, state, limit)).await
    }
}

impl Store for SqliteStore {
    async fn record_event(&self, event: NewEvent) -> Result<Recorded> {
        self.inner.writer.try_run(move |conn| writes::record_event(conn, &event)).await
    }

    async fn poll_cursor(&self, system: String) -> Result<Option<String>> {
        self.read(move |conn| reads::poll_cursor(conn, &system)).await
    }

    async fn record_polled(
        &self,
        system: String,
        events: Vec<NewEvent>,
        held: Vec<NewQuarantined>,
        cursor: String,
        now: Timestamp,
    ) -> Result<Vec<Recorded>> {
        self.inner.writer.run(move |conn| writes::record_polled(conn, &system, &events, &held, &cursor, now)).await
    }

    async fn quarantine(&self, held: NewQuarantined, now: Timestamp) -> Result<Recorded> {
        self.inner.writer.try_run(move |conn| quarantine::hold(conn, &held, now)).await
    }

    async fn quarantined(&self, state: Option<QuarantineState>, limit: usize) -> Result<Vec<Quarantined>> {
        self.read(move |conn| quarantine::list(conn, state, limit)).await
    }

    async fn search_quarantine(&self, filter: crate::QuarantineFilter) -> Result<crate::Page<Quarantined>> {
        self.read(move |conn| quarantine::page(conn, &filter)).await
    }

    async fn quarantined_one(&self, id: i64) -> Result<Option<Quarantined>> {
        self.read(move |conn| quarantine::one(conn, id)).await
    }

    async fn quarantine_depth(&self) -> Result<Vec<(String, u64)>> {
        self.read(quarantine::depth).await
    }

    async fn release_quarantined(&self, id: i64, event: NewEvent, actor: String, now: Timestamp) -> Result<Released> {
        self.inner.writer.run(move |conn| quarantine::release(conn, id, &event, &actor, now)).await
    }

    async fn set_dead_letter_payload(&self, id: i64, payload: String, actor: String, now: Timestamp) -> Result<bool> {
        self.inner.writer.run(move |conn| writes::set_dead_letter_payload(conn, id, &payload, &actor, now)).await
    }

    async fn move_exception(
        &self,
        id: i64,
        to: handoff_model::ExceptionState,
        actor: String,
        reason: Option<String>,
        now: Timestamp,
    ) -> Result<crate::Moved> {
        self.inner.writer.run(move |conn| writes::move_exception(conn, id, to, &actor, reason.as_deref(), now)).await
    }

    async fn unprocessed_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        self.read(move |conn| reads::unprocessed_events(conn, limit)).await
    }

    async fn count_unplanned(&self, at_most: usize) -> Result<u64> {
        self.read(move |conn| reads::count_unplanned(conn, at_most)).await
    }

    async fn order_states(&self, order_refs: Vec<String>) -> Result<HashMap<String, OrderState>> {
        self.read(move |conn| reads::order_states(conn, &order_refs)).await
    }

    async fn apply_plans(&self, plans: Vec<Plan>, now: Timestamp) -> Result<()> {
        self.inner.writer.run(move |conn| writes::apply_plans(conn, &plans, now)).await
    }

    async fn claim_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Command>> {
        self.inner.writer.run(move |conn| writes::claim_due(conn, now, limit)).await
    }

    async fn claim_due_to(&self, target: String, now: Timestamp, limit: usize) -> Result<Vec<Command>> {
        self.inner.writer.run(move |conn| writes::claim_due_to(conn, Some(&target), &[], now, limit)).await
    }

    async fn claim_due_except(&self, targets: Vec<String>, now: Timestamp, limit: usize) -> Result<Vec<Command>> {
        self.inner.writer.run(move |conn| writes::claim_due_to(conn, None, &targets, now, limit)).await
    }

    async fn record_attempt(&self, attempt: AttemptRecord) -> Result<()> {
        self.inner.writer.run(move |conn| writes::record_attempt(conn, &attempt)).await
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        self.read(reads::next_due_at).await
    }

    async fn recover_in_flight(&self, now: Timestamp, read_back_at: HashMap<String, Timestamp>) -> Result<u64> {
        self.inner.writer.run(move |conn| writes::recover_in_flight(conn, now, &read_back_at)).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<Command>> {
        self.read(move |conn| reads::dead_letters(conn, limit)).await
    }

    async fn replay(&self, which: Replay, actor: String, now: Timestamp) -> Result<u64> {
        self.inner.writer.run(move |conn| writes::replay(conn, which, &actor, now)).await
    }

    async fn abandon(&self, id: i64, actor: String, reason: Option<String>, now: Timestamp) -> Result<bool> {
        self.inner.writer.run(move |conn| writes::abandon(conn, id, &actor, reason.as_deref(), now)).await
    }

    async fn exceptions(
        &self,
        state: Option<handoff_model::ExceptionState>,
        limit: usize,
    ) -> Result<Vec<ExceptionRow>> {
        self.read(move |conn| reads::exceptions(conn, state, limit)).await
    }

    async fn create_token(&self, token: crate::NewToken, actor: String, now: Timestamp) -> Result<i64> {
        self.inner.writer.run(move |conn| tokens::create(conn, &token, &actor, now)).await
    }

    async fn tokens(&self) -> Result<Vec<crate::TokenRow>> {
        self.read(tokens::list).await
    }

    async fn token_by_hash(&self, hash: String) -> Result<Option<crate::TokenRow>> {
        self.read(move |conn| tokens::by_hash(conn, &hash)).await
    }

    async fn revoke_token(&self, id: i64, actor: String, now: Timestamp) -> Result<bool> {
        self.inner.writer.run(move |conn| tokens::revoke(conn, id, &actor, now)).await
    }

    async fn create_user(&self, user: crate::NewUser, actor: String, now: Timestamp) -> Result<Option<i64>> {
        self.inner.writer.run(move |conn| console::create_user(conn, &user, &actor, now)).await
    }

    async fn user_by_name(&self, name: String) -> Result<Option<crate::UserRow>> {
        self.read(move |conn| console::user_by_name(conn, &name)).await
    }

    async fn open_session(&self, session: crate::NewSession, now: Timestamp) -> Result<i64> {
        self.inner.writer.run(move |conn| console::open_session(conn, &session, now)).await
    }

    async fn session_by_hash(&self, hash: String) -> Result<Option<crate::SessionRow>> {
        self.read(move |conn| console::session_by_hash(conn, &hash)).await
    }

    async fn touch_session(&self, id: i64, now: Timestamp) -> Result<()> {
        self.inner.writer.run(move |conn| console::touch(conn, id, now)).await
    }

    async fn redeem_link(
        &self,
        link_hash: String,
        new_hash: String,
        not_before: Timestamp,
        now: Timestamp,
    ) -> Result<Option<crate::SessionRow>> {
        self.inner.writer.run(move |conn| console::redeem(conn, &link_hash, &new_hash, not_before, now)).await
    }

    async fn end_session(&self, hash: String, now: Timestamp) -> Result<bool> {
        self.inner.writer.run(move |conn| console::end(conn, &hash, now)).await
    }

    async fn open_exceptions_by_pattern(&self) -> Result<Vec<(String, u64)>> {
        self.read(reads::open_exceptions_by_pattern).await
    }

    async fn exception(&self, id: i64) -> Result<Option<ExceptionRow>> {
        self.read(move |conn| reads::exception(conn, id)).await
    }

    async fn facts_after(&self, after: i64, limit: usize) -> Result<Vec<FactRow>> {
        self.read(move |conn| reads::facts_after(conn, after, limit)).await
    }

    async fn event_payloads(&self, rows: Vec<i64>) -> Result<Vec<(i64, String)>> {
        self.read(move |conn| reads::event_payloads(conn, &rows)).await
    }

    async fn facts_of(&self, order_refs: Vec<String>, up_to: i64) -> Result<Vec<FactRow>> {
        self.read(move |conn| reads::facts_of(conn, &order_refs, up_to)).await
    }

    async fn raised_findings(&self, order_refs: Vec<String>) -> Result<Vec<crate::RaisedFinding>> {
        self.read(move |conn| reads::raised_findings(conn, &order_refs)).await
    }

    async fn rules_checkpoint(&self) -> Result<Option<crate::RulesCheckpoint>> {
        self.read(reads::rules_checkpoint).await
    }

    async fn move_rules_checkpoint(&self, change: crate::CheckpointMove) -> Result<()> {
        // In steps of their own, so that no commit holds the webhooks queued behind it for
        // long: a board of 220,000 orders rewritten in one job held them 190-320 ms.
        let writer = &self.inner.writer;
        for chunk in change.joined.chunks(CHECKPOINT_STEP) {
            let chunk = chunk.to_vec();
            writer.run(move |conn| writes::keep_on_board(conn, &chunk)).await?;
        }
        writer.run(move |conn| writes::set_checkpoint_position(conn, change.position)).await?;
        for chunk in change.left.chunks(CHECKPOINT_STEP) {
            let chunk = chunk.to_vec();
            writer.run(move |conn| writes::take_off_board(conn, &chunk)).await?;
        }
        Ok(())
    }

    async fn raise_finding(&self, finding: NewFinding, now: Timestamp) -> Result<Raised> {
        self.inner.writer.run(move |conn| writes::raise_finding(conn, &finding, now)).await
    }

    async fn clear_finding(
        &self,
        pattern: handoff_model::Pattern,
        order_ref: String,
        subject: String,
        now: Timestamp,
    ) -> Result<bool> {
        self.inner.writer.run(move |conn| writes::clear_finding(conn, pattern, &order_ref, &subject, now)).await
    }

    async fn take_rechecks(&self, limit: usize) -> Result<Vec<ExceptionRow>> {
        // Asked on every step of the rules and rarely non-empty: look before taking a write.
        let any = self
            .read(|conn| {
                Ok(conn.query_row("SELECT EXISTS (SELECT 1 FROM exceptions WHERE rechecked = 0)", [], |r| {
                    r.get::<_, bool>(0)
                })?)
            })
            .await?;
        if !any {
            return Ok(Vec::new());
        }
        self.inner.writer.run(move |conn| writes::take_rechecks(conn, limit)).await
    }

    async fn enqueue_action(
        &self,
        exception_id: i64,
        event_row: i64,
        command: NewCommand,
        actor: String,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        self.inner
            .writer
            .run(move |conn| writes::enqueue_action(conn, exception_id, event_row, &command, &actor, now))
            .await
    }

    async fn order_timeline(&self, order_ref: String) -> Result<Timeline> {
        self.read(move |conn| reads::order_timeline(conn, &order_ref)).await
    }

    async fn record_audit(
        &self,
        order_ref: String,
        actor: String,
        action: String,
        detail: String,
        now: Timestamp,
    ) -> Result<()> {
        self.inner.writer.run(move |conn| writes::audit(conn, now, &actor, &action, &order_ref, &detail)).await
    }

    async fn flow_stats(&self, since: Timestamp) -> Result<Vec<crate::FlowStats>> {
        self.read(move |conn| reads::flow_stats(conn, since)).await
    }

    async fn search_orders(&self, filter: crate::OrderFilter) -> Result<crate::Page<crate::OrderRow>> {
        self.read(move |conn| search::orders(conn, &filter)).await
    }

    async fn search_exceptions(&self, filter: crate::ExceptionFilter) -> Result<crate::Page<ExceptionRow>> {
        self.read(move |conn| search::exceptions(conn, &filter)).await
    }

    async fn search_clusters(&self, filter: crate::ClusterFilter) -> Result<crate::Page<crate::ClusterRow>> {
        let inner = self.inner.clone();
        self.read(move |conn| search::clusters(conn, &filter, &inner.clusters)).await
    }

    async fn search_commands(&self, filter: crate::CommandFilter) -> Result<crate::Page<Command>> {
        self.read(move |conn| search::commands(conn, &filter)).await
    }

    async fn search_audit(&self, filter: crate::AuditFilter) -> Result<crate::Page<crate::AuditEntry>> {
        self.read(move |conn| search::audit(conn, &filter)).await
    }

    async fn flow_health(&self, window: crate::HealthWindow) -> Result<Vec<crate::FlowHealth>> {
        self.read(move |conn| search::flow_health(conn, &window)).await
    }

    async fn command_counts(&self) -> Result<Vec<(String, u64)>> {
        self.read(reads::command_counts).await
    }

    /// A batch runs in a commit of its own, for at most about `retention::BATCH_TIME`; a dry
    /// run never takes the writer: it counts on a copy of the store (`dry_run`).
    async fn purge(&self, before: crate::PurgeBefore, limit: usize, dry_run: bool) -> Result<crate::Purged> {
        if dry_run {
            let db = self.inner.path.clone();
            return self.read(move |conn| dry_run::count(conn, &db, &before, limit)).await;
        }
        self.inner.writer.run_alone(move |conn| retention::purge(conn, &before, limit)).await
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.wakes.changed.subscribe()
    }

    fn subscribe_to(&self, topic: crate::Topic) -> watch::Receiver<u64> {
        self.inner.wakes.subscribe(topic)
    }

    fn writer_queue(&self) -> Option<crate::WriterQueue> {
        Some(self.inner.writer.queue())
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, StatementStatus};

    /// Runs `sql` (one bound value) ten times from the statement cache: how often SQLite had to
    /// prepare it again.
    fn reprepared(sql: &str) -> i32 {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);").unwrap();
        for limit in 1..=10 {
            conn.prepare_cached(sql).unwrap().query_map([limit], |r| r.get::<_, i64>(0)).unwrap().for_each(drop);
        }
        conn.prepare_cached(sql).unwrap().get_status(StatementStatus::RePrepare)
    }

    #[test]
    fn a_bare_bound_limit_is_prepared_again_on_every_run_and_an_expression_is_not() {
        assert!(reprepared("SELECT id FROM t ORDER BY id LIMIT ?1") >= 9);
        assert_eq!(reprepared("SELECT id FROM t ORDER BY id LIMIT ?1 + 0"), 0);
    }

    /// The store's SQL never binds a bare `LIMIT` (see the module's documentation).
    #[test]
    fn no_statement_of_the_store_binds_a_bare_limit() {
        let sources = [
            ("reads.rs", include_str!("reads.rs")),
            ("writes.rs", include_str!("writes.rs")),
            ("quarantine.rs", include_str!("quarantine.rs")),
            ("retention.rs", include_str!("retention.rs")),
            ("tokens.rs", include_str!("tokens.rs")),
            ("search.rs", include_str!("search.rs")),
            ("console.rs", include_str!("console.rs")),
        ];
        for (file, text) in sources {
            for (at, _) in text.match_indices("LIMIT ?") {
                let rest = &text[at + "LIMIT ?".len()..];
                // A number, or a `{}` the statement's builder fills with one.
                let digits =
                    if rest.starts_with("{}") { 2 } else { rest.chars().take_while(char::is_ascii_digit).count() };
                assert!(rest[digits..].starts_with(" + 0"), "{file}: {}", &text[at..at + 12]);
            }
        }
    }

    /// A new store takes pages of `PAGE_SIZE`; a store made with 4 KiB pages keeps them and opens.
    #[test]
    fn a_new_store_has_large_pages_and_an_older_store_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let page = |path: &std::path::Path| -> i64 {
            super::connect(path).unwrap().pragma_query_value(None, "page_size", |r| r.get(0)).unwrap()
        };
        let new = dir.path().join("new");
        super::SqliteStore::open(&new, super::SqliteOptions::default()).unwrap();
        assert_eq!(page(&new.join(super::DB_FILE)), super::PAGE_SIZE);
        let old = dir.path().join("old");
        std::fs::create_dir_all(&old).unwrap();
        let conn = Connection::open(old.join(super::DB_FILE)).unwrap();
        conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (v);").unwrap();
        drop(conn);
        super::SqliteStore::open(&old, super::SqliteOptions::default()).unwrap();
        assert_eq!(page(&old.join(super::DB_FILE)), 4096);
    }

    /// Migration 0014 fingerprints the exceptions already there, so they cluster as new ones.
    #[test]
    fn the_cluster_key_migration_fingerprints_the_exceptions_already_kept() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::migrations().to_version(&mut conn, 13).unwrap();
        conn.execute(
            "INSERT INTO exceptions (pattern, order_ref, detail, state, opened_at, updated_at)
             VALUES ('missing_order', '#1', 'no ERP order for #1 by \"10:00\"', 'open', 0, 0)",
            [],
        )
        .unwrap();
        super::migrations().to_latest(&mut conn).unwrap();
        let kept: String = conn.query_row("SELECT fingerprint FROM exceptions", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, handoff_model::cluster::fingerprint("no ERP order for #1 by \"10:00\""));
        assert_eq!(kept, "no ERP order for ## by \"…\"");
    }

    /// Migration 0018 shortens the email keys kept by earlier builds to the key a search looks for.
    #[test]
    fn the_short_email_key_migration_rewrites_the_keys_already_kept() {
        // SHA-256 of "ann@example.com" (sha256sum), as builds before 0018 kept it.
        let long = "sha256:71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476";
        let mut conn = Connection::open_in_memory().unwrap();
        super::migrations().to_version(&mut conn, 17).unwrap();
        conn.execute(
            "INSERT INTO orders (order_ref, source, first_seen, updated_at, email_key)
             VALUES ('#1', 'shop', 0, 0, ?1), ('#2', 'shop', 0, 0, '0123456789abcdef'), ('#3', 'shop', 0, 0, NULL)",
            [long],
        )
        .unwrap();
        super::migrations().to_latest(&mut conn).unwrap();
        let keys: Vec<Option<String>> = conn
            .prepare("SELECT email_key FROM orders ORDER BY order_ref")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(keys, [Some("71d4f55f72fa128d".to_owned()), Some("0123456789abcdef".to_owned()), None]);
        assert_eq!(crate::search::email_key(" Ann@Example.com "), "71d4f55f72fa128d");
    }

    /// Migration 0019 moves the email keys already kept into the index a search reads now.
    #[test]
    fn the_email_index_migration_keeps_every_order_findable_by_email() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::migrations().to_version(&mut conn, 18).unwrap();
        let ann = crate::search::email_key("ann@example.com");
        conn.execute(
            "INSERT INTO orders (order_ref, source, first_seen, updated_at, email_key)
             VALUES ('#1', 'shop', 1, 1, ?1), ('#2', 'shop', 2, 2, '0123456789abcdef'), ('#3', 'shop', 3, 3, ?1),
                    ('#4', 'shop', 4, 4, NULL)",
            [&ann],
        )
        .unwrap();
        super::migrations().to_latest(&mut conn).unwrap();
        let found = |email: &str| {
            let filter = crate::OrderFilter { email: Some(email.into()), limit: 10, ..Default::default() };
            super::search::orders(&conn, &filter).unwrap().rows.into_iter().map(|o| o.order_ref).collect::<Vec<_>>()
        };
        assert_eq!(found("Ann@Example.com"), ["#3", "#1"]);
        assert_eq!(found("bob@example.com"), Vec::<String>::new());
    }

    /// Migration 0016 moves each command's payload into its own table, where every read finds it.
    #[test]
    fn the_payloads_migration_keeps_every_commands_payload() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        super::migrations().to_version(&mut conn, 15).unwrap();
        conn.execute_batch(
            "INSERT INTO inbox (id, system, event_id, kind, order_ref, received_at, payload)
                 VALUES (1, 'shop', 'e1', 'order.created', '#1', 0, '{}');
             INSERT INTO outbox (id, flow, target, order_ref, kind, event_row, idempotency_key, external_ref, payload,
                                 state, next_attempt_at, budget_start, created_at, updated_at)
                 VALUES (7, 'orders', 'erp', '#1', 'create_order', 1, 'k1', '#1', '{\"total\":\"9.99\"}',
                         'dead_lettered', 0, 0, 0, 0);",
        )
        .unwrap();
        super::migrations().to_latest(&mut conn).unwrap();
        let sql = format!("SELECT {} FROM outbox", super::rows::COMMAND_COLUMNS);
        let command = conn.query_row(&sql, [], super::rows::command).unwrap();
        assert_eq!((command.id, command.payload.as_str()), (7, r#"{"total":"9.99"}"#));
        conn.execute("DELETE FROM outbox WHERE id = 7", []).unwrap();
        let left: i64 = conn.query_row("SELECT count(*) FROM outbox_payloads", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0, "a command's payload goes with it");
    }
}
