//! The group-commit writer. One thread owns the write connection; callers queue jobs, the
//! thread runs every queued job in one transaction (a failing job undoes only itself: see
//! `commit_batch`) and commits once. Replies are sent only after the commit is
//! synced (by the `syncer`'s thread while the writer runs the next batch), so a caller that hears
//! "done" knows its write is on disk; the sync is shared by the batch.
//! The thread beats once per job and per commit, and says when it waits for work, so readiness
//! tells a writer stuck in a commit from an idle one; a failed commit marks it failing until it
//! can write again (idle, it tries the write lock every second). The queue's depth is there to
//! read, and a webhook's write is refused when it is full instead of waiting in line
//! (`try_run`). A long job (a purge's batch) runs in a commit of its own (`run_alone`): the
//! writes queued with it commit first, without waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use rusqlite::Connection;
use rusqlite::hooks::Action;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};

use super::SqliteOptions;
use super::syncer::{Reply, SyncWal, Syncer};
use crate::heartbeat::{Beat, Pulse};
use crate::{Result, StoreError, Topic, WriterQueue};

/// The writer beats at least this often while it works (one job or one commit of a batch).
pub(super) const WRITER_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

struct Job {
    work: Box<dyn Work>,
    /// Committed alone, never in the same commit as other jobs.
    alone: bool,
}

/// A caller's write, run in a group commit and answered after it.
trait Work: Send {
    /// Runs the write (in a savepoint of its own when `in_savepoint`), keeping its result
    /// for the answer; `false` when it failed. May run twice: see `commit_batch`.
    fn run(&mut self, conn: &Connection, in_savepoint: bool) -> bool;
    /// The answer to send once the commit is durable, or failed.
    fn into_reply(self: Box<Self>) -> Reply;
}

struct Write<R, F> {
    f: F,
    result: Option<Result<R>>,
    tx: oneshot::Sender<Result<R>>,
}

impl<R, F> Work for Write<R, F>
where
    R: Send + 'static,
    F: Fn(&Connection) -> Result<R> + Send + 'static,
{
    fn run(&mut self, conn: &Connection, savepoint: bool) -> bool {
        let result = if savepoint { in_savepoint(conn, &self.f) } else { (self.f)(conn) };
        let ran = result.is_ok();
        self.result = Some(result);
        ran
    }

    fn into_reply(self: Box<Self>) -> Reply {
        let Write { result, tx, .. } = *self;
        Box::new(move |commit: Result<(), String>| {
            let _ = tx.send(match (commit, result) {
                (Ok(()), Some(result)) => result,
                (Ok(()), None) => Err(StoreError::NotCommitted("the write did not run".into())),
                (Err(e), _) => Err(StoreError::NotCommitted(e)),
            });
        })
    }
}

pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
    pulse: Arc<Pulse>,
}

/// Counters of the group commit: jobs per commit is the batch size the load produced.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub commits: AtomicU64,
    pub jobs: AtomicU64,
}

/// The counters the writer's commits bump for the store's subscribers: every commit that
/// changed rows bumps `changed`, and each topic whose tables it changed bumps that topic's
/// too, so that a task is not woken by the writes of the others (the dispatcher by each
/// webhook recorded, intake by its own plans).
#[derive(Clone)]
pub(super) struct Wakes {
    pub(super) changed: Arc<watch::Sender<u64>>,
    topics: Arc<[watch::Sender<u64>; 3]>,
    /// The topics the batch changed a row of, one bit each: set by the writer connection's
    /// update hook.
    touched: Arc<AtomicU8>,
}

impl Wakes {
    pub(super) fn new() -> Self {
        Wakes {
            changed: Arc::new(watch::Sender::new(0)),
            topics: Arc::new([(); 3].map(|()| watch::Sender::new(0))),
            touched: Arc::new(AtomicU8::new(0)),
        }
    }

    pub(super) fn subscribe(&self, topic: Topic) -> watch::Receiver<u64> {
        self.topics[topic as usize].subscribe()
    }
}

/// The topic a change of a row of `table` belongs to.
fn topic_of(table: &str) -> Option<Topic> {
    match table {
        "inbox" => Some(Topic::Events),
        "facts" | "exceptions" => Some(Topic::Journal),
        "outbox" => Some(Topic::Commands),
        _ => None,
    }
}

impl Writer {
    /// `wal`: how the writer's commits are made durable, `None` when they need not be.
    pub(super) fn start(conn: Connection, options: SqliteOptions, wakes: Wakes, wal: Option<SyncWal>) -> Result<Self> {
        let touched = wakes.touched.clone();
        conn.update_hook(Some(move |_: Action, _: &str, table: &str, _: i64| {
            if let Some(topic) = topic_of(table) {
                touched.fetch_or(1 << topic as u8, Ordering::Relaxed);
            }
        }))?;
        let thread_error = |source| StoreError::DataDir { path: "writer thread".into(), source };
        let syncer = wal.map(Syncer::start).transpose().map_err(thread_error)?;
        let waits = tokio::runtime::Builder::new_current_thread().build().map_err(thread_error)?;
        let (jobs, queue) = mpsc::channel(options.queue_depth);
        let queue = Queue { jobs: queue, waits };
        let stats = Arc::new(WriterStats::default());
        let counters = stats.clone();
        let beat = Beat::new("writer", WRITER_PERIOD);
        let pulse = beat.pulse();
        std::thread::Builder::new()
            .name("handoff-store-writer".into())
            .spawn(move || write_loop(conn, queue, options.max_batch, wakes, syncer, &counters, &beat))
            .map_err(thread_error)?;
        Ok(Writer { jobs, stats, pulse })
    }

    pub(super) fn pulse(&self) -> Arc<Pulse> {
        self.pulse.clone()
    }

    /// Jobs waiting for the writer, and how many may.
    pub(super) fn queue(&self) -> WriterQueue {
        let capacity = self.jobs.max_capacity();
        WriterQueue { queued: capacity - self.jobs.capacity(), capacity }
    }

    pub(super) fn stats(&self) -> (u64, u64) {
        (self.stats.commits.load(Ordering::Relaxed), self.stats.jobs.load(Ordering::Relaxed))
    }

    /// Runs `f` inside the next group commit and returns its result once that commit is durable.
    pub(super) async fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> Result<R> + Send + 'static,
    {
        self.send(job(f, false)).await
    }

    /// As [`Writer::run`], in a commit of its own: for a job that takes long (tens of
    /// milliseconds), so that the writes queued beside it are not held until it is done.
    pub(super) async fn run_alone<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> Result<R> + Send + 'static,
    {
        self.send(job(f, true)).await
    }

    async fn send<R>(&self, (job, rx): (Job, oneshot::Receiver<Result<R>>)) -> Result<R> {
        self.jobs.send(job).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::NotCommitted("the transaction could not begin".into()))?
    }

    /// As [`Writer::run`], but refused with [`StoreError::QueueFull`] rather than waiting for
    /// room in a full queue: for a caller that can tell its own sender to come back.
    pub(super) async fn try_run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: Fn(&Connection) -> Result<R> + Send + 'static,
    {
        let (job, rx) = job(f, false);
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let WriterQueue { queued, capacity } = self.queue();
                return Err(StoreError::QueueFull { queued, capacity });
            }
            Err(TrySendError::Closed(_)) => return Err(StoreError::WriterGone),
        }
        rx.await.map_err(|_| StoreError::NotCommitted("the transaction could not begin".into()))?
    }
}

/// A job running `f`, and where its result arrives after the commit.
fn job<R, F>(f: F, alone: bool) -> (Job, oneshot::Receiver<Result<R>>)
where
    R: Send + 'static,
    F: Fn(&Connection) -> Result<R> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    (Job { work: Box::new(Write { f, result: None, tx }), alone }, rx)
}

/// Runs one job in its own savepoint. The statements are prepared once: every webhook passes
/// here, and parsing them anew cost more than the insert they wrap.
fn in_savepoint<R>(conn: &Connection, f: impl Fn(&Connection) -> Result<R>) -> Result<R> {
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    run("SAVEPOINT job")?;
    match f(conn) {
        Ok(r) => {
            run("RELEASE job")?;
            Ok(r)
        }
        Err(e) => {
            run("ROLLBACK TO job")?;
            run("RELEASE job")?;
            Err(e)
        }
    }
}

/// The writer's queue of jobs, and where it waits for the next one or the end of a sync,
/// whichever comes first.
struct Queue {
    jobs: mpsc::Receiver<Job>,
    waits: tokio::runtime::Runtime,
}

impl Queue {
    /// The next job, or `None` once `synced` resolves first (or the queue is closed).
    fn next_unless(&mut self, synced: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>) -> Option<Job> {
        self.waits.block_on(async {
            tokio::select! {
                biased;
                job = self.jobs.recv() => job,
                () = synced => None,
            }
        })
    }
}

fn write_loop(
    conn: Connection,
    mut queue: Queue,
    max_batch: usize,
    wakes: Wakes,
    syncer: Option<Syncer>,
    stats: &WriterStats,
    beat: &Beat,
) {
    let mut batch = Vec::with_capacity(max_batch);
    // A job to run alone, taken from the queue while a batch was gathered: the next commit's.
    let mut held: Option<Job> = None;
    // The last commit failed: readiness says so until the writer can write again.
    let mut failing = false;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None if failing => match probe_until_writable(&conn, &mut queue.jobs, beat) {
                Probed::Job(job) => job,
                Probed::Writable => {
                    failing = false;
                    beat.failing(false);
                    continue;
                }
                Probed::Closed => break,
            },
            None => {
                beat.waiting();
                let Some(job) = queue.jobs.blocking_recv() else { break };
                job
            }
        };
        beat.beat();
        let started = std::time::Instant::now();
        let mut waited = std::time::Duration::ZERO;
        let rows_before = conn.total_changes();
        wakes.touched.store(0, Ordering::Relaxed);
        let alone = first.alone;
        batch.push(first);
        // No job joins a batch run alone, one that is full, or one a job to run alone follows.
        let closed = |batch: &[Job], held: &Option<Job>| alone || held.is_some() || batch.len() >= max_batch;
        let mut open = Batch::begin(&conn);
        loop {
            // Whatever queued meanwhile joins this commit.
            while !closed(&batch, &held) {
                let Ok(job) = queue.jobs.try_recv() else { break };
                join(job, &mut batch, &mut held);
            }
            open = open.and_then(|open| open.run(&mut batch, beat));
            if closed(&batch, &held) || open.is_err() {
                break;
            }
            // The last commit is still being synced, and this one could not be synced before
            // that ends: the transaction stays open for the jobs that arrive meanwhile, so the
            // load makes fewer, larger commits (each writes its pages to the WAL once).
            let Some(syncer) = &syncer else { break };
            let synced = syncer.synced();
            tokio::pin!(synced);
            synced.as_mut().enable();
            if !syncer.busy() {
                break;
            }
            let since = std::time::Instant::now();
            let next = queue.next_unless(synced);
            waited += since.elapsed();
            let Some(job) = next else { break };
            join(job, &mut batch, &mut held);
        }
        stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
        stats.commits.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("handoff_writer_queue_depth").set(queue.jobs.len() as f64);
        let commit = match open {
            Ok(open) => open.commit(&mut batch),
            Err(e) => {
                // Dropping the jobs drops their reply channels: each caller hears "not committed".
                batch.clear();
                (Err(e), Vec::new())
            }
        };
        metrics::histogram!("handoff_store_commit_seconds").record((started.elapsed() - waited).as_secs_f64());
        beat.beat();
        // A writer that cannot commit (the database locked by another process, a full disk)
        // keeps beating and stores nothing: readiness must hear it.
        failing = commit.0.is_err();
        beat.failing(failing || syncer.as_ref().is_some_and(Syncer::broken));
        if let Err(e) = &commit.0 {
            tracing::error!(message = "group commit failed", error = %e, jobs = commit.1.len());
        }
        // Only a commit that changed rows wakes the waiters: a claim that found nothing would
        // otherwise wake the dispatcher into claiming again, a loop of empty commits. Woken
        // before the callers hear back, so a caller that saw its write done sees the bump. A
        // waiter woken before the sync acts through the writer, whose reply waits for a sync.
        if commit.0.is_ok() && conn.total_changes() != rows_before {
            wakes.changed.send_modify(|n| *n = n.wrapping_add(1));
            let touched = wakes.touched.load(Ordering::Relaxed);
            for (i, topic) in wakes.topics.iter().enumerate() {
                if touched & (1 << i) != 0 {
                    topic.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
        }
        match (&commit.0, &syncer) {
            (Ok(()), Some(syncer)) => syncer.reply_when_synced(commit.1),
            _ => {
                for reply in commit.1 {
                    reply(commit.0.clone());
                }
            }
        }
    }
}

/// `job` joins the batch, or, to run alone, waits for the next commit.
fn join(job: Job, batch: &mut Vec<Job>, held: &mut Option<Job>) {
    if job.alone {
        *held = Some(job);
    } else {
        batch.push(job);
    }
}

enum Probed {
    Job(Job),
    Writable,
    Closed,
}

/// After a failed commit, with nothing queued: tries the write lock every second (each try
/// waits up to the connection's busy timeout) until it is had, or a job arrives to try with.
/// Without it, a hub left idle would stay unready after the fault passed, and an orchestrator
/// that withholds traffic from it would never send the write that shows it healed.
fn probe_until_writable(conn: &Connection, queue: &mut mpsc::Receiver<Job>, beat: &Beat) -> Probed {
    loop {
        match queue.try_recv() {
            Ok(job) => return Probed::Job(job),
            Err(mpsc::error::TryRecvError::Disconnected) => return Probed::Closed,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        beat.beat();
        if conn.execute_batch("BEGIN IMMEDIATE").is_ok() {
            let _ = conn.execute_batch("ROLLBACK");
            return Probed::Writable;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// A batch's transaction, its jobs run as they join it. Every job runs straight in the
/// transaction; only when one fails is the transaction rolled back and the jobs so far run
/// again, each in a savepoint of its own, as every later one then is, so that the failed job
/// undoes only itself. A savepoint per job on every batch cost a tenth of the hub's CPU under
/// load (its journal copies each page the job first touches, and each release frees the
/// copies), and a failed write is rare.
struct Batch<'c> {
    conn: &'c Connection,
    /// The jobs of the batch that have run.
    ran: usize,
    in_savepoints: bool,
}

impl<'c> Batch<'c> {
    fn begin(conn: &'c Connection) -> Result<Self, String> {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
        Ok(Batch { conn, ran: 0, in_savepoints: false })
    }

    /// Runs the jobs of `batch` that have not run yet; an error when the transaction cannot
    /// go on.
    fn run(mut self, batch: &mut [Job], beat: &Beat) -> Result<Self, String> {
        while self.ran < batch.len() {
            let ran = batch[self.ran].work.run(self.conn, self.in_savepoints);
            beat.beat();
            self.ran += 1;
            if !ran && !self.in_savepoints {
                // A job failed: its writes are mixed with the others'. An error that ended
                // the transaction already (a full disk) leaves nothing to roll back.
                let _ = self.conn.execute_batch("ROLLBACK");
                self = Batch::begin(self.conn)?;
                self.in_savepoints = true;
            }
        }
        Ok(self)
    }

    /// Commits the jobs of `batch`, whose replies wait for the commit to be durable.
    fn commit(self, batch: &mut Vec<Job>) -> (Result<(), String>, Vec<Reply>) {
        let replies: Vec<Reply> = batch.drain(..).map(|job| job.work.into_reply()).collect();
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => (Ok(()), replies),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                (Err(e.to_string()), replies)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that fails after writing leaves nothing behind, and the jobs committed with it keep
    /// what they wrote, each once, though the batch ran again in savepoints after the failure.
    #[tokio::test]
    async fn a_failing_job_undoes_only_itself() {
        let writer = writer_of_one_table();
        let (release, holder) = hold(&writer).await;
        let mut jobs = Vec::new();
        for (v, fail) in [("a", false), ("b", true), ("c", false)] {
            let queued = writer.clone();
            jobs.push(tokio::spawn(async move {
                queued
                    .run(move |conn| {
                        conn.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                        if fail { Err(StoreError::NotCommitted("refused".into())) } else { Ok(()) }
                    })
                    .await
            }));
            while writer.queue().queued < jobs.len() {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        let outcomes: Vec<bool> = futures_ok(jobs).await;
        assert_eq!(outcomes, [true, false, true]);
        assert_eq!(writer.stats(), (2, 4), "a, b and c in one commit after the holder's");
        let kept = writer
            .run(|conn| {
                let mut s = conn.prepare("SELECT group_concat(v, '') FROM (SELECT v FROM t ORDER BY v)")?;
                Ok(s.query_row([], |r| r.get::<_, String>(0))?)
            })
            .await
            .unwrap();
        assert_eq!(kept, "ac");
    }

    /// While the last commit is being synced, the jobs that arrive run in one open transaction
    /// and commit together once that sync ends; with no sync under way, a job commits at once.
    #[tokio::test]
    async fn jobs_arriving_while_the_last_commit_syncs_share_the_next_commit() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v TEXT)").unwrap();
        let (started, starts) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let sync: SyncWal = Box::new(move || {
            started.send(()).unwrap();
            released.recv().unwrap();
            Ok(())
        });
        let options = SqliteOptions { max_batch: 64, queue_depth: 64, durable: true };
        let writer = Arc::new(Writer::start(conn, options, Wakes::new(), Some(sync)).unwrap());
        let (ran, runs) = std::sync::mpsc::channel();
        let runs = Arc::new(std::sync::Mutex::new(runs));
        let starts = Arc::new(std::sync::Mutex::new(starts));
        let insert = |v: &'static str| {
            let (writer, ran) = (writer.clone(), ran.clone());
            tokio::spawn(async move {
                let job = move |conn: &Connection| {
                    conn.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                    ran.send(v).unwrap();
                    Ok(())
                };
                writer.run(job).await
            })
        };
        let a = insert("a");
        assert_eq!(next(&runs).await, "a");
        next(&starts).await;
        assert_eq!(writer.stats(), (1, 1), "a committed alone: no sync was under way");
        let (b, c) = (insert("b"), insert("c"));
        let mut both = [next(&runs).await, next(&runs).await];
        both.sort_unstable();
        assert_eq!(both, ["b", "c"]);
        assert_eq!(writer.stats(), (1, 1), "b and c ran, uncommitted while a's sync goes on");
        release.send(()).unwrap();
        a.await.unwrap().unwrap();
        next(&starts).await;
        assert_eq!(writer.stats(), (2, 3), "b and c committed together once a's sync ended");
        release.send(()).unwrap();
        b.await.unwrap().unwrap();
        c.await.unwrap().unwrap();
    }

    /// What `from` receives next, waited for off the runtime (a bug fails, not hangs).
    async fn next<T: Send + 'static>(from: &Arc<std::sync::Mutex<std::sync::mpsc::Receiver<T>>>) -> T {
        let from = from.clone();
        let wait = std::time::Duration::from_secs(10);
        tokio::task::spawn_blocking(move || from.lock().unwrap().recv_timeout(wait).unwrap()).await.unwrap()
    }

    /// A writer of a throwaway database with one table, `t (v TEXT)`.
    fn writer_of_one_table() -> Arc<Writer> {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v TEXT)").unwrap();
        let options = SqliteOptions { max_batch: 64, queue_depth: 64, durable: false };
        Arc::new(Writer::start(conn, options, Wakes::new(), None).unwrap())
    }

    /// Queues a job that holds the writer until released, so the jobs queued next share a batch.
    async fn hold(writer: &Arc<Writer>) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<Result<()>>) {
        let (started, is_started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = std::sync::Mutex::new(released);
        let holder = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .run(move |_| {
                        started.send(()).unwrap();
                        released.lock().unwrap().recv().unwrap();
                        Ok(())
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || is_started.recv().unwrap()).await.unwrap();
        (release, holder)
    }

    async fn futures_ok(jobs: Vec<tokio::task::JoinHandle<Result<()>>>) -> Vec<bool> {
        let mut ok = Vec::new();
        for job in jobs {
            ok.push(job.await.unwrap().is_ok());
        }
        ok
    }

    /// A job run alone commits on its own: the jobs queued before it commit without it, the
    /// ones queued after it in the next commit.
    #[tokio::test]
    async fn a_job_run_alone_commits_apart_from_the_jobs_queued_beside_it() {
        let writer = writer_of_one_table();
        let (release, holder) = hold(&writer).await;
        let mut jobs = Vec::new();
        for (v, alone) in [("a", false), ("b", true), ("c", false)] {
            let queued = writer.clone();
            let insert = move |conn: &Connection| Ok(conn.execute("INSERT INTO t (v) VALUES (?1)", [v]).map(drop)?);
            jobs.push(tokio::spawn(async move {
                let writer = queued;
                if alone { writer.run_alone(insert).await } else { writer.run(insert).await }
            }));
            while writer.queue().queued < jobs.len() {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert_eq!(futures_ok(jobs).await, [true, true, true]);
        // The holder's commit, then a, b and c each in their own.
        assert_eq!(writer.stats(), (4, 4));
    }
}
