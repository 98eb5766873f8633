//! Polling: the second way events come in. Some systems send no webhooks (NetSuite, Odoo,
//! the Amazon Orders API), and the ones that do lose some (WooCommerce never retries), so a
//! poller reads the system's changes since a cursor. Each page's events and the cursor after
//! them are committed together, so a crash neither skips a change nor loses the position; a
//! change seen twice (by webhook and by poll, or by two overlapping polls) is deduplicated by
//! its event id, or found stale by its version.

use std::sync::Arc;
use std::time::Duration;

use handoff_store::{NewEvent, NewQuarantined, Recorded, Store};
use jiff::{SignedDuration, Timestamp};

use crate::{BoxFuture, Clock};

/// The longest wait after a failed poll that gave no `Retry-After`.
const MAX_ERROR_WAIT: Duration = Duration::from_secs(30);

/// One page of a system's changes.
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<NewEvent>,
    /// Records of the page no reader could map: held in quarantine with the events and the
    /// cursor, so that one record never stalls the feed and is never skipped unseen.
    pub held: Vec<NewQuarantined>,
    /// Where the next poll starts; opaque to everyone but the poller that wrote it.
    pub cursor: String,
    /// More pages are ready now: poll again at once.
    pub more: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct PollError {
    pub reason: String,
    /// The system asked to be left alone this long (429, a rate limit header).
    pub retry_after: Option<SignedDuration>,
}

impl PollError {
    pub fn new(reason: impl Into<String>) -> Self {
        PollError { reason: reason.into(), retry_after: None }
    }
}

/// A failed API call of a poll: its reason, and how long the system asked to be left alone.
impl From<crate::DeliveryError> for PollError {
    fn from(e: crate::DeliveryError) -> Self {
        let retry_after = match &e {
            crate::DeliveryError::Transient { retry_after, .. } => *retry_after,
            crate::DeliveryError::Permanent { .. } | crate::DeliveryError::Held { .. } => None,
        };
        PollError { reason: e.to_string(), retry_after }
    }
}

pub trait Poller: Send + Sync {
    /// Reads the page of changes after `cursor` (`None`: the first poll ever).
    fn poll<'a>(&'a self, cursor: Option<&'a str>, now: Timestamp) -> BoxFuture<'a, Result<Page, PollError>>;
}

/// Polls `system` until `stop`: at once while pages keep coming, then every `every`.
pub async fn run<S: Store>(
    system: String,
    poller: Arc<dyn Poller>,
    store: S,
    clock: Arc<dyn Clock>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let wait = match poll_once(&system, poller.as_ref(), &store, clock.as_ref()).await {
            Ok((_, true)) => Duration::ZERO,
            Ok((_, false)) => every,
            Err(PollError { reason, retry_after }) => {
                tracing::warn!(message = "poll failed", system = %system, error = %reason);
                // A failed poll is tried again soon (a restart, a blip), unless told otherwise.
                retry_after.map_or(every.min(MAX_ERROR_WAIT), |d| d.unsigned_abs().min(Duration::from_secs(3600)))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One poll: the page's events and the new cursor committed together. Returns how many events
/// were new and whether more pages are ready.
pub async fn poll_once<S: Store>(
    system: &str,
    poller: &dyn Poller,
    store: &S,
    clock: &dyn Clock,
) -> Result<(usize, bool), PollError> {
    let store_error = |e: handoff_store::StoreError| PollError::new(format!("store: {e}"));
    let cursor = store.poll_cursor(system.to_owned()).await.map_err(store_error)?;
    let page = poller.poll(cursor.as_deref(), clock.now()).await?;
    let held = page.held.len();
    let recorded = store
        .record_polled(system.to_owned(), page.events, page.held, page.cursor, clock.now())
        .await
        .map_err(store_error)?;
    let new = recorded.iter().filter(|r| matches!(r, Recorded::New(_))).count();
    if new > 0 {
        tracing::info!(message = "poll recorded events", system = %system, new, seen = recorded.len());
    }
    if held > 0 {
        tracing::warn!(message = "poll held records it cannot map", system = %system, held);
    }
    Ok((new, page.more))
}
