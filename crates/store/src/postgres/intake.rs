//! Group commit of intake: `record_event` calls arriving together are written in one
//! statement (one transaction), and each caller answered once it committed. One commit (one WAL flush) for the batch, as the SQLite writer
//! does; a full queue refuses the write ([`StoreError::QueueFull`]) instead of growing.

use std::collections::HashMap;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use super::rows::query;
use crate::{NewEvent, Recorded, Result, StoreError, WriterQueue};

/// Most events committed in one transaction.
const MAX_BATCH: usize = 512;

struct Job {
    event: NewEvent,
    reply: oneshot::Sender<Result<Recorded>>,
}

/// The queue of events waiting for the batcher task; dropping it ends the task.
pub(super) struct Intake {
    jobs: mpsc::Sender<Job>,
    capacity: usize,
}

impl Intake {
    pub(super) fn start(pool: Pool, channel: String, capacity: usize, changed: super::Changed) -> Intake {
        let (jobs, queue) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(pool, channel, queue, changed));
        Intake { jobs, capacity: capacity.max(1) }
    }

    pub(super) async fn record(&self, event: NewEvent) -> Result<Recorded> {
        let (reply, answer) = oneshot::channel();
        self.jobs.try_send(Job { event, reply }).map_err(|e| match e {
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

async fn run(pool: Pool, channel: String, mut queue: mpsc::Receiver<Job>, changed: super::Changed) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let events: Vec<&NewEvent> = batch.iter().map(|job| &job.event).collect();
        match commit(&pool, &channel, &events).await {
            Ok(recorded) => {
                changed.send_modify(|n| *n = n.wrapping_add(1));
                for (job, recorded) in batch.drain(..).zip(recorded) {
                    let _ = job.reply.send(Ok(recorded));
                }
            }
            Err(error) if batch.len() > 1 => {
                // One event the database refuses (a NUL in a raw body) must not fail the others
                // that shared its batch: each is written alone.
                tracing::warn!(message = "an intake batch was not committed; writing its events one by one",
                    events = batch.len(), error = %error);
                for job in batch.drain(..) {
                    let alone = commit(&pool, &channel, &[&job.event]).await;
                    if alone.is_ok() {
                        changed.send_modify(|n| *n = n.wrapping_add(1));
                    }
                    let _ = job.reply.send(alone.and_then(|mut recorded| {
                        recorded.pop().ok_or_else(|| StoreError::NotCommitted("no answer".into()))
                    }));
                }
            }
            Err(error) => {
                let why = error.to_string();
                tracing::warn!(message = "an event was not committed", error = %why);
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(StoreError::NotCommitted(why.clone())));
                }
            }
        }
    }
}

/// One statement, so one transaction and one round trip: the batch inserted (a key already
/// there, or twice in the batch, inserted once) with its NOTIFY, committed before it returns;
/// then the ids of the duplicates looked up.
async fn commit(pool: &Pool, channel: &str, events: &[&NewEvent]) -> Result<Vec<Recorded>> {
    let client = pool.get().await?;
    let column = |f: fn(&NewEvent) -> &str| events.iter().map(|e| f(e)).collect::<Vec<&str>>();
    let (systems, ids) = (column(|e| &e.system), column(|e| &e.event_id));
    let kinds = column(|e| e.kind.as_str());
    let (orders, payloads) = (column(|e| &e.order_ref), column(|e| &e.payload));
    let received: Vec<jiff::Timestamp> = events.iter().map(|e| e.received_at).collect();
    let raws: Vec<Option<&str>> = events.iter().map(|e| e.raw.as_deref()).collect();
    let inserted = query(
        &client,
        "WITH ins AS (
             INSERT INTO inbox (system, event_id, kind, order_ref, received_at, payload, raw)
             SELECT system, event_id, kind, order_ref, received_at, payload, raw
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[])
                  WITH ORDINALITY AS b (system, event_id, kind, order_ref, received_at, payload, raw, n)
             ORDER BY n
             ON CONFLICT (system, event_id) DO NOTHING
             RETURNING id, system, event_id)
         SELECT ins.id, ins.system, ins.event_id FROM ins, (SELECT pg_notify($8, '')) AS notified",
        &[&systems, &ids, &kinds, &orders, &received, &payloads, &raws, &channel],
    )
    .await?;
    let mut new: HashMap<(String, String), i64> = HashMap::with_capacity(inserted.len());
    for row in &inserted {
        new.insert((row.try_get(1)?, row.try_get(2)?), row.try_get(0)?);
    }
    let mut known: HashMap<(String, String), i64> = HashMap::new();
    if new.len() < events.len() {
        let found = query(
            &client,
            "SELECT i.id, i.system, i.event_id FROM inbox i
             JOIN unnest($1::text[], $2::text[]) AS k (system, event_id)
               ON i.system = k.system AND i.event_id = k.event_id",
            &[&systems, &ids],
        )
        .await?;
        for row in &found {
            known.insert((row.try_get(1)?, row.try_get(2)?), row.try_get(0)?);
        }
    }
    // The first of a key this batch inserted is new; any other is its duplicate.
    events
        .iter()
        .map(|e| {
            let key = (e.system.clone(), e.event_id.clone());
            if let Some(id) = new.remove(&key) {
                known.insert(key, id);
                return Ok(Recorded::New(id));
            }
            let id = known.get(&key).ok_or_else(|| StoreError::Corrupt(format!("inbox {key:?} vanished")))?;
            Ok(Recorded::Duplicate(*id))
        })
        .collect()
}
