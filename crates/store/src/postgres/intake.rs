//! Group commit of intake: `record_event` calls arriving together ([`super::batch`]) are
//! written in one statement (one transaction), and each caller answered once it committed.

use std::collections::HashMap;

use deadpool_postgres::Pool;

use super::batch::Batched;
use super::rows::query;
use crate::{NewEvent, Recorded, Result, StoreError};

/// `record_event`'s writes, committed in batches ([`super::batch`]).
pub(super) struct Intake {
    pub(super) pool: Pool,
    /// The NOTIFY channel the batch wakes the hubs on.
    pub(super) channel: String,
}

impl Batched for Intake {
    type Item = NewEvent;
    type Answer = Recorded;
    const WHAT: &'static str = "event";
    const MAX_BATCH: usize = 512;

    async fn commit(&self, events: &[&NewEvent]) -> Result<Vec<Result<Recorded>>> {
        Ok(commit(&self.pool, &self.channel, events).await?.into_iter().map(Ok).collect())
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
