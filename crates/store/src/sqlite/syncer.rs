//! The WAL's sync, off the writer's thread. The writer commits without syncing (`synchronous =
//! NORMAL`) and hands each batch's replies here; this thread syncs the WAL file and only then
//! replies, so a caller still hears "done" only once its write is on disk. Meanwhile the writer
//! runs the next batch: its statements and the disk's flush overlap instead of taking turns.
//! The writer keeps that batch's transaction open for the jobs that arrive until the sync ends
//! (`Syncer::busy`, `Syncer::synced`): a commit made sooner would only wait for the next sync.
//!
//! The durability is that of `synchronous = FULL`, which in WAL mode is `NORMAL` plus a sync of
//! the WAL after each commit (both sync the WAL's header when it starts over, and the files
//! around a checkpoint). The WAL is only appended to, or started over once everything in it was
//! copied back and synced, so a sync after commit N covers N and every commit before it. The
//! file synced is the one the writer's connection keeps open for the hub's life, so SQLite never
//! deletes it under us (it deletes a WAL only when its last connection closes).
//!
//! A failed sync is final: Linux may drop the pages it could not write and report the next
//! sync as a success, so nothing committed after it can be promised either. Every later batch
//! hears "not committed" and readiness reports the writer failing until the hub restarts
//! (SQLite then recovers what reached the disk).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use tokio::sync::Notify;

/// A caller waiting for its job's commit: told `Ok` once it is durable.
pub(super) type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Makes what the writer committed durable: `File::sync_data` of the WAL, a stand-in in tests.
pub(super) type SyncWal = Box<dyn FnMut() -> std::io::Result<()> + Send>;

/// Committed batches that may wait for a sync before the writer waits for the sync thread.
const QUEUE: usize = 64;

pub(super) struct Syncer {
    batches: SyncSender<Vec<Reply>>,
    broken: Arc<AtomicBool>,
    progress: Arc<Progress>,
}

/// What the sync thread has yet to answer, and the signal that it answered.
#[derive(Default)]
struct Progress {
    /// Batches handed over and not yet answered.
    unanswered: AtomicUsize,
    /// Notified each time the thread has answered the batches it synced, and when it ends.
    answered: Notify,
    /// The thread ended: nothing handed over is waited for any more.
    ended: AtomicBool,
}

/// Held by the sync thread: however it ends, the writer stops waiting for it.
struct Ending<'p>(&'p Progress);

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        self.0.ended.store(true, Ordering::Release);
        self.0.answered.notify_waiters();
    }
}

impl Syncer {
    pub(super) fn start(sync: SyncWal) -> std::io::Result<Syncer> {
        let (batches, queue) = sync_channel(QUEUE);
        let broken = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let (failed, answered) = (broken.clone(), progress.clone());
        std::thread::Builder::new()
            .name("handoff-store-sync".into())
            .spawn(move || sync_loop(sync, queue, &failed, &answered))?;
        Ok(Syncer { batches, broken, progress })
    }

    /// A batch handed over is not answered yet: a commit made now would wait for its sync.
    pub(super) fn busy(&self) -> bool {
        self.progress.unanswered.load(Ordering::Acquire) > 0 && !self.progress.ended.load(Ordering::Acquire)
    }

    /// Notified when the thread has answered what it synced; enable it before reading
    /// [`Syncer::busy`], so that an answer between the two is not missed.
    pub(super) fn synced(&self) -> tokio::sync::futures::Notified<'_> {
        self.progress.answered.notified()
    }

    /// Replies to a committed batch's callers once the WAL holding it is synced.
    pub(super) fn reply_when_synced(&self, replies: Vec<Reply>) {
        self.progress.unanswered.fetch_add(1, Ordering::AcqRel);
        if let Err(unsent) = self.batches.send(replies) {
            self.progress.unanswered.fetch_sub(1, Ordering::AcqRel);
            for reply in unsent.0 {
                reply(Err("the WAL's sync thread is gone".into()));
            }
        }
    }

    /// A sync failed: nothing is acknowledged any more.
    pub(super) fn broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }
}

fn sync_loop(mut sync: SyncWal, queue: Receiver<Vec<Reply>>, broken: &AtomicBool, progress: &Progress) {
    let _ending = Ending(progress);
    let mut failure: Option<String> = None;
    while let Ok(mut replies) = queue.recv() {
        let mut batches = 1;
        while let Ok(more) = queue.try_recv() {
            replies.extend(more);
            batches += 1;
        }
        if failure.is_none() {
            let started = std::time::Instant::now();
            if let Err(error) = sync() {
                tracing::error!(
                    message = "the WAL's sync failed: no write is acknowledged until the hub restarts",
                    %error
                );
                failure = Some(format!("the WAL's sync failed: {error}"));
                broken.store(true, Ordering::Relaxed);
            }
            metrics::histogram!("handoff_store_sync_seconds").record(started.elapsed().as_secs_f64());
        }
        let outcome = failure.as_ref().map_or(Ok(()), |e| Err(e.clone()));
        for reply in replies {
            reply(outcome.clone());
        }
        progress.unanswered.fetch_sub(batches, Ordering::AcqRel);
        progress.answered.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Sender, channel};
    use std::time::Duration;

    use super::*;

    /// A stand-in sync that says when it starts and finishes only when released; the `n`th
    /// sync fails when `fail_at` is `Some(n)`.
    fn held_sync(fail_at: Option<usize>) -> (SyncWal, Receiver<()>, Sender<()>) {
        let (started, starts) = channel();
        let (release, released) = channel::<()>();
        let mut n = 0;
        let sync = Box::new(move || {
            n += 1;
            started.send(()).unwrap();
            released.recv().unwrap();
            if Some(n) == fail_at { Err(std::io::Error::other("disk gone")) } else { Ok(()) }
        });
        (sync, starts, release)
    }

    fn reply_to(outcomes: &Sender<(u32, Result<(), String>)>, id: u32) -> Reply {
        let outcomes = outcomes.clone();
        Box::new(move |r| outcomes.send((id, r)).unwrap())
    }

    const WAIT: Duration = Duration::from_secs(10);
    const NOTHING: Duration = Duration::from_millis(100);

    /// No caller hears "done" before the sync that follows its commit has finished; batches
    /// committed while a sync runs share the next one.
    #[test]
    fn callers_hear_back_only_after_the_sync_that_follows_their_commit() {
        let (sync, starts, release) = held_sync(None);
        let syncer = Syncer::start(sync).unwrap();
        let (outcomes, heard) = channel();
        syncer.reply_when_synced(vec![reply_to(&outcomes, 1), reply_to(&outcomes, 2)]);
        starts.recv_timeout(WAIT).unwrap();
        // Committed while the first sync runs.
        syncer.reply_when_synced(vec![reply_to(&outcomes, 3)]);
        syncer.reply_when_synced(vec![reply_to(&outcomes, 4)]);
        assert!(heard.recv_timeout(NOTHING).is_err(), "nobody hears back during the sync");
        release.send(()).unwrap();
        let first: Vec<_> = (0..2).map(|_| heard.recv_timeout(WAIT).unwrap()).collect();
        assert_eq!(first, [(1, Ok(())), (2, Ok(()))]);
        // The two batches committed during the first sync wait for one more, together.
        starts.recv_timeout(WAIT).unwrap();
        assert!(heard.recv_timeout(NOTHING).is_err(), "3 and 4 wait for the sync after their commit");
        release.send(()).unwrap();
        let second: Vec<_> = (0..2).map(|_| heard.recv_timeout(WAIT).unwrap()).collect();
        assert_eq!(second, [(3, Ok(())), (4, Ok(()))]);
        assert!(starts.recv_timeout(NOTHING).is_err(), "one sync for both");
        assert!(!syncer.broken());
    }

    /// After a failed sync nothing is acknowledged: not that batch, not any later one, though
    /// a later sync might report success.
    #[test]
    fn a_failed_sync_fails_its_batch_and_every_later_one() {
        let (sync, starts, release) = held_sync(Some(1));
        let syncer = Syncer::start(sync).unwrap();
        let (outcomes, heard) = channel();
        syncer.reply_when_synced(vec![reply_to(&outcomes, 1)]);
        starts.recv_timeout(WAIT).unwrap();
        release.send(()).unwrap();
        let (id, outcome) = heard.recv_timeout(WAIT).unwrap();
        assert_eq!(id, 1);
        assert!(outcome.unwrap_err().contains("disk gone"));
        assert!(syncer.broken());
        syncer.reply_when_synced(vec![reply_to(&outcomes, 2)]);
        let (id, outcome) = heard.recv_timeout(WAIT).unwrap();
        assert_eq!(id, 2);
        assert!(outcome.is_err(), "a later batch is not acknowledged either");
        assert!(starts.recv_timeout(NOTHING).is_err(), "and is not synced again");
    }
}
