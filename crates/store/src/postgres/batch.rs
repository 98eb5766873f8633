//! Group commit: writes of one kind arriving together are committed by one task in one
//! transaction, each caller answered once it committed, as the SQLite writer does. One commit
//! (one WAL flush) for the batch; a full queue refuses the write ([`StoreError::QueueFull`])
//! instead of growing. Intake's events (`intake`) and the dispatchers' outcomes
//! (`writes::record_attempts`) go through it.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError, WriterQueue};

/// A kind of write committed in batches.
pub(super) trait Batched: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    type Answer: Send + 'static;
    /// What the logs call one item.
    const WHAT: &'static str;
    /// Most items committed in one transaction.
    const MAX_BATCH: usize;

    /// Writes `items` in one transaction and commits it: the outer error when nothing was
    /// committed, else one answer per item, in order (an item refused on its own, such as a
    /// stale claim, is refused in its answer without failing the others).
    fn commit(&self, items: &[&Self::Item]) -> impl Future<Output = Result<Vec<Result<Self::Answer>>>> + Send;
}

struct Job<B: Batched> {
    item: B::Item,
    reply: oneshot::Sender<Result<B::Answer>>,
}

/// The queue of items waiting for the batching task; dropping it ends the task.
pub(super) struct Batcher<B: Batched> {
    jobs: mpsc::Sender<Job<B>>,
    capacity: usize,
}

impl<B: Batched> Batcher<B> {
    pub(super) fn start(batched: B, capacity: usize, changed: super::Changed) -> Self {
        let (jobs, queue) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(batched, queue, changed));
        Batcher { jobs, capacity: capacity.max(1) }
    }

    /// Queues `item` and waits for its batch's commit.
    pub(super) async fn write(&self, item: B::Item) -> Result<B::Answer> {
        let (reply, answer) = oneshot::channel();
        self.jobs.try_send(Job { item, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                StoreError::QueueFull { queued: self.capacity, capacity: self.capacity }
            }
            mpsc::error::TrySendError::Closed(_) => StoreError::WriterGone,
        })?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    pub(super) fn queue(&self) -> WriterQueue {
        WriterQueue { queued: self.capacity - self.jobs.capacity(), capacity: self.capacity }
    }
}

async fn run<B: Batched>(batched: B, mut queue: mpsc::Receiver<Job<B>>, changed: super::Changed) {
    let mut batch = Vec::with_capacity(B::MAX_BATCH);
    while queue.recv_many(&mut batch, B::MAX_BATCH).await > 0 {
        let items: Vec<&B::Item> = batch.iter().map(|job| &job.item).collect();
        match batched.commit(&items).await {
            Ok(answers) => {
                changed.send_modify(|n| *n = n.wrapping_add(1));
                let mut answers = answers.into_iter();
                for job in batch.drain(..) {
                    let answer = answers.next().unwrap_or_else(|| Err(StoreError::NotCommitted("no answer".into())));
                    let _ = job.reply.send(answer);
                }
            }
            Err(error) if batch.len() > 1 => {
                // One item the database refuses (a NUL in a raw body, a deadlock) must not fail
                // the others that shared its batch: each is written alone.
                tracing::warn!(message = "a batch was not committed; writing its items one by one",
                    what = B::WHAT, items = batch.len(), error = %error);
                for job in batch.drain(..) {
                    let alone = batched.commit(&[&job.item]).await;
                    if alone.is_ok() {
                        changed.send_modify(|n| *n = n.wrapping_add(1));
                    }
                    let _ = job.reply.send(alone.and_then(|answers| {
                        answers.into_iter().next().unwrap_or_else(|| Err(StoreError::NotCommitted("no answer".into())))
                    }));
                }
            }
            Err(error) => {
                let why = error.to_string();
                tracing::warn!(message = "a write was not committed", what = B::WHAT, error = %why);
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(StoreError::NotCommitted(why.clone())));
                }
            }
        }
    }
}
