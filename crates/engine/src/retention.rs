//! The retention purge (`[retention]`): one policy, run by `handoff purge` and periodically by
//! `handoff serve`. The contract says how long; the store removes what is older, in batches.

use std::sync::Arc;

use handoff_contract::Retention;
use handoff_store::{PurgeBefore, Purged, Store};
use jiff::Timestamp;

use crate::Clock;

/// Rows per table per store call: keeps each of the writer's transactions short (the SQLite
/// store also stops a call after a few tens of milliseconds of work).
const BATCH: usize = 2_000;

/// What the retention removes at `now`.
pub fn before(retention: &Retention, now: Timestamp) -> PurgeBefore {
    let c = retention.cutoffs(now);
    PurgeBefore { personal_data: c.personal_data, history: c.history, dedup: c.dedup }
}

/// Purges what `retention` no longer keeps as of `now`, in batches until nothing is left; a dry
/// run counts what would go and changes nothing, in one call: how it counts exactly without
/// holding up writes is the store's business (SQLite: on a private copy; PostgreSQL: one
/// transaction rolled back).
pub async fn purge<S: Store>(
    store: &S,
    retention: &Retention,
    now: Timestamp,
    dry_run: bool,
) -> handoff_store::Result<Purged> {
    let before = before(retention, now);
    if dry_run {
        return store.purge(before, usize::MAX, true).await;
    }
    let mut total = Purged::default();
    loop {
        let batch = store.purge(before, BATCH, false).await?;
        total.add(&batch);
        if !batch.more {
            return Ok(total);
        }
        // Other writers (webhooks, intake) get their turn between batches.
        tokio::task::yield_now().await;
    }
}

/// `serve`'s purge: once at start, then every `retention.purge_every`, until shutdown.
pub async fn run<S: Store>(
    retention: Retention,
    store: S,
    clock: Arc<dyn Clock>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let every = retention.purge_every.unsigned_abs();
    loop {
        match purge(&store, &retention, clock.now(), false).await {
            Ok(p) => {
                let removed: u64 = p.lines().iter().map(|(_, _, n)| n).sum();
                if removed > 0 {
                    tracing::info!(message = "retention purge", ?p);
                }
            }
            Err(e) => tracing::warn!(message = "retention purge failed; trying again later", error = %e),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
