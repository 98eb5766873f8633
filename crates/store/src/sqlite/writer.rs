//! The group-commit writer. One thread owns the write connection; callers queue jobs, the
//! thread runs every queued job in one transaction (each in its own savepoint, so one failing
//! job does not undo the others) and commits once. Replies are sent only after the commit, so
//! a caller that hears "done" knows its write is on disk; the fsync is shared by the batch.
//! The thread beats once per job and per commit, and says when it waits for work, so readiness
//! tells a writer stuck in a commit from an idle one; the queue's depth is there to read, and a
//! webhook's write is refused when it is full instead of waiting in line (`try_run`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};

use super::SqliteOptions;
use crate::heartbeat::{Beat, Pulse};
use crate::{Result, StoreError, WriterQueue};

/// The writer beats at least this often while it works (one job or one commit of a batch).
pub(super) const WRITER_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;

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

impl Writer {
    pub(super) fn start(conn: Connection, options: SqliteOptions, changed: Arc<watch::Sender<u64>>) -> Result<Self> {
        let (jobs, queue) = mpsc::channel(options.queue_depth);
        let stats = Arc::new(WriterStats::default());
        let counters = stats.clone();
        let beat = Beat::new("writer", WRITER_PERIOD);
        let pulse = beat.pulse();
        std::thread::Builder::new()
            .name("handoff-store-writer".into())
            .spawn(move || write_loop(conn, queue, options.max_batch, changed, &counters, &beat))
            .map_err(|source| StoreError::DataDir { path: "writer thread".into(), source })?;
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
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let (job, rx) = job(f);
        self.jobs.send(job).await.map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::NotCommitted("the transaction could not begin".into()))?
    }

    /// As [`Writer::run`], but refused with [`StoreError::QueueFull`] rather than waiting for
    /// room in a full queue: for a caller that can tell its own sender to come back.
    pub(super) async fn try_run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let (job, rx) = job(f);
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

/// A job running `f` in its savepoint, and where its result arrives after the commit.
fn job<R, F>(f: F) -> (Job, oneshot::Receiver<Result<R>>)
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        let result = in_savepoint(conn, f);
        Box::new(move |commit: Result<(), String>| {
            let _ = tx.send(match commit {
                Ok(()) => result,
                Err(e) => Err(StoreError::NotCommitted(e)),
            });
        })
    });
    (job, rx)
}

/// Runs one job in its own savepoint. The statements are prepared once: every webhook passes
/// here, and parsing them anew cost more than the insert they wrap.
fn in_savepoint<R>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
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

fn write_loop(
    conn: Connection,
    mut queue: mpsc::Receiver<Job>,
    max_batch: usize,
    changed: Arc<watch::Sender<u64>>,
    stats: &WriterStats,
    beat: &Beat,
) {
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        beat.waiting();
        let Some(first) = queue.blocking_recv() else { break };
        beat.beat();
        batch.push(first);
        // Whatever queued while the last commit was syncing joins this one.
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
        stats.commits.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("handoff_writer_queue_depth").set(queue.len() as f64);
        let started = std::time::Instant::now();
        let rows_before = conn.total_changes();
        let commit = commit_batch(&conn, &mut batch, beat);
        metrics::histogram!("handoff_store_commit_seconds").record(started.elapsed().as_secs_f64());
        beat.beat();
        if let Err(e) = &commit.0 {
            tracing::error!(message = "group commit failed", error = %e, jobs = commit.1.len());
        }
        // Only a commit that changed rows wakes the waiters: a claim that found nothing would
        // otherwise wake the dispatcher into claiming again, a loop of empty commits. Woken
        // before the callers hear back, so a caller that saw its write done sees the bump.
        if commit.0.is_ok() && conn.total_changes() != rows_before {
            changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        for reply in commit.1 {
            reply(commit.0.clone());
        }
    }
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Job>, beat: &Beat) -> (Result<(), String>, Vec<Reply>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs drops their reply channels: each caller hears "not committed".
        batch.clear();
        return (Err(e.to_string()), Vec::new());
    }
    let replies: Vec<Reply> = batch
        .drain(..)
        .map(|job| {
            let reply = job(conn);
            beat.beat();
            reply
        })
        .collect();
    match conn.execute_batch("COMMIT") {
        Ok(()) => (Ok(()), replies),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            (Err(e.to_string()), replies)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that fails after writing leaves nothing behind, and the jobs committed with it keep
    /// what they wrote.
    #[tokio::test]
    async fn a_failing_job_undoes_only_itself() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v TEXT)").unwrap();
        let options = SqliteOptions { max_batch: 64, queue_depth: 64, durable: false };
        let writer = Writer::start(conn, options, Arc::new(watch::channel(0).0)).unwrap();
        let insert = |v: &'static str, fail: bool| {
            writer.run(move |conn| {
                conn.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                if fail { Err(StoreError::NotCommitted("refused".into())) } else { Ok(()) }
            })
        };
        let (a, b, c) = tokio::join!(insert("a", false), insert("b", true), insert("c", false));
        assert!(a.is_ok() && b.is_err() && c.is_ok());
        let kept = writer
            .run(|conn| {
                let mut s = conn.prepare("SELECT group_concat(v, '') FROM (SELECT v FROM t ORDER BY v)")?;
                Ok(s.query_row([], |r| r.get::<_, String>(0))?)
            })
            .await
            .unwrap();
        assert_eq!(kept, "ac");
    }
}
