//! Polling: the second way events come in. Some systems send no webhooks (NetSuite, Odoo,
//! the Amazon Orders API), and the ones that do lose some (WooCommerce never retries), so a
//! poller reads the system's changes since a cursor. Each page's events and the cursor after
//! them are committed together, so a crash neither skips a change nor loses the position; a
//! change seen twice (by webhook and by poll, or by two overlapping polls) is deduplicated by
//! its event id, or found stale by its version and content.
//!
//! Every poller keeps its place in one [`Cursor`]: windows of changes at or after a start,
//! paged by keyset (changes at or after a second, less the ids already read at that second),
//! by the vendor's own page token, or by offset inside a closed window that starts over when
//! the window changes under it; each window starts again `overlap` before the newest change it
//! saw, and what the overlap shows again is dropped by the cursor's memory of (id, modified,
//! fingerprint). A change that keeps its second-resolution `modified` but not its content is
//! taken again: that is how two edits within one second both come in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use handoff_model::{ExternalId, InboundEvent};
use handoff_store::heartbeat::Beat;
use handoff_store::{NewEvent, NewQuarantined, Recorded, Store};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{BoxFuture, Clock, fingerprint};

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
            crate::DeliveryError::Transient { retry_after, .. }
            | crate::DeliveryError::Throttled { retry_after, .. } => *retry_after,
            crate::DeliveryError::Permanent { .. } | crate::DeliveryError::Held { .. } => None,
        };
        PollError { reason: e.to_string(), retry_after }
    }
}

pub trait Poller: Send + Sync {
    /// Reads the page of changes after `cursor` (`None`: the first poll ever).
    fn poll<'a>(&'a self, cursor: Option<&'a str>, now: Timestamp) -> BoxFuture<'a, Result<Page, PollError>>;
}

/// A poller beats at least every this long while it waits for its next poll.
const BEAT_WHILE_WAITING: Duration = Duration::from_secs(1);

/// How long a poller may go without a beat: one poll, its requests each within `timeout`
/// (a page may take a few, the paced ones waiting their turn), and its wait's beat.
pub fn period(timeout: Duration) -> Duration {
    timeout.saturating_mul(4).max(Duration::from_secs(10))
}

/// Polls `system` until `stop`: at once while pages keep coming, then every `every`. Beats
/// `beat` after every poll and every second of its waits, for readiness.
pub async fn run<S: Store>(
    system: String,
    poller: Arc<dyn Poller>,
    store: S,
    clock: Arc<dyn Clock>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    beat: Option<Beat>,
) {
    let beat = || {
        if let Some(beat) = &beat {
            beat.beat();
        }
    };
    while !*stop.borrow() {
        beat();
        let polled = poll_once(&system, poller.as_ref(), &store, clock.as_ref()).await;
        crate::telemetry::polled(&system, polled.is_ok(), clock.now());
        let wait = match polled {
            Ok((_, true)) => Duration::ZERO,
            Ok((_, false)) => every,
            Err(PollError { reason, retry_after }) => {
                tracing::warn!(message = "poll failed", system = %system, error = %reason);
                // A failed poll is tried again soon (a restart, a blip), unless told otherwise.
                retry_after.map_or(every.min(MAX_ERROR_WAIT), |d| d.unsigned_abs().min(Duration::from_secs(3600)))
            }
        };
        let until = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < until && !*stop.borrow() {
            beat();
            tokio::select! {
                _ = tokio::time::sleep_until(until.min(tokio::time::Instant::now() + BEAT_WHILE_WAITING)) => {}
                _ = stop.changed() => {}
            }
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
    crate::telemetry::events_recorded(system, new, recorded.len() - new, held);
    if new > 0 {
        tracing::info!(message = "poll recorded events", system = %system, new, seen = recorded.len());
    }
    if held > 0 {
        tracing::warn!(message = "poll held records it cannot map", system = %system, held);
    }
    Ok((new, page.more))
}

/// Changes a cursor remembers, newest kept; past it the oldest are forgotten and the inbox's
/// dedup on event ids (which carry the fingerprint) takes over.
const SEEN_LIMIT: usize = 2_000;

/// Most ids read within one second that a keyset page may have to exclude (they travel in the
/// vendor's query); more than that and the poll stops loudly rather than skip.
pub const EXCLUDED_LIMIT: usize = 500;

/// Where the next page of the current window starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "page", rename_all = "snake_case")]
pub enum Position {
    /// The window's first page: changes at or after its start.
    #[default]
    Start,
    /// Keyset: changes at or after the second `at`, except the `ids` this window already read
    /// at that second. Vendors keep sub-second times or order ties their own way, so the ids
    /// are excluded by name, never by "id greater than".
    After { at: Timestamp, ids: Vec<String> },
    /// The vendor's token for its next page (Shopify's `page_info`, Amazon's `NextToken`).
    Token { token: String },
    /// `offset` records into a window closed at `until` that held `total` records: records
    /// only leave a closed window (an edit moves them past `until`), and when its total moves
    /// the window is read again from its start, so an offset never steps over one.
    Offset { until: Timestamp, offset: u64, total: Option<u64> },
}

/// One poller's place: the current window and what it already took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The window's start, a whole second: changes at or after it.
    pub since: Timestamp,
    #[serde(default)]
    pub next: Position,
    /// The newest change seen; a finished window starts the next `overlap` before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<Timestamp>,
    /// Changes taken at or after `since`: record id → (modified, fingerprint).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seen: BTreeMap<String, (Timestamp, String)>,
}

/// A time rounded down to its second: vendors filter by whole seconds, and a bound earlier
/// than asked is safe where a later one would skip.
pub fn whole_second(t: Timestamp) -> Timestamp {
    let second = t.as_second() - i64::from(t.subsec_nanosecond() < 0);
    Timestamp::from_second(second).unwrap_or(t)
}

impl Cursor {
    /// The stored cursor, or the first window, starting `initial` before `now`.
    pub fn resume(stored: Option<&str>, now: Timestamp, initial: SignedDuration) -> Result<Cursor, PollError> {
        match stored {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| PollError::new(format!("cursor {text:?} is not a poll cursor: {e}"))),
            None => Ok(Cursor {
                since: whole_second(now - initial),
                next: Position::Start,
                newest: None,
                seen: BTreeMap::new(),
            }),
        }
    }

    pub fn to_text(&self) -> Result<String, PollError> {
        serde_json::to_string(self).map_err(|e| PollError::new(e.to_string()))
    }

    /// Where a keyset page starts: the window's start, or the second the last page ended on.
    pub fn from(&self) -> Timestamp {
        match &self.next {
            Position::After { at, .. } => *at,
            _ => self.since,
        }
    }

    /// The ids a keyset page leaves out (read already at [`Cursor::from`]).
    pub fn excluded(&self) -> &[String] {
        match &self.next {
            Position::After { ids, .. } => ids,
            _ => &[],
        }
    }

    /// The vendor's token for the next page, if the window is being paged by token.
    pub fn token(&self) -> Option<&str> {
        match &self.next {
            Position::Token { token } => Some(token),
            _ => None,
        }
    }

    /// The closed window `[since, until]` and the offset of its next page; the first page
    /// closes the window at `now`.
    pub fn offset_window(&mut self, now: Timestamp) -> (Timestamp, u64) {
        if let Position::Offset { until, offset, .. } = &self.next {
            return (*until, *offset);
        }
        self.next = Position::Offset { until: now, offset: 0, total: None };
        (now, 0)
    }

    /// One record a page listed, and the event it maps to: the event to record (its id
    /// suffixed with the fingerprint, so a same-second change of content is a new event), or
    /// `None` when this very change was taken already.
    pub fn take(
        &mut self,
        record_id: &str,
        modified: Timestamp,
        mut event: InboundEvent,
    ) -> Result<Option<InboundEvent>, PollError> {
        self.saw(modified);
        let fingerprint = fingerprint(&event);
        if self.seen.get(record_id).is_some_and(|(m, f)| *m == modified && *f == fingerprint) {
            return Ok(None);
        }
        let id = format!("{}#{fingerprint}", event.event_id);
        event.event_id = ExternalId::new(id).map_err(|e| PollError::new(format!("record {record_id}: {e}")))?;
        self.seen.insert(record_id.to_owned(), (modified, fingerprint));
        Ok(Some(event))
    }

    /// A record the page listed but that maps to no event: it still moves the window.
    pub fn saw(&mut self, modified: Timestamp) {
        self.newest = self.newest.max(Some(modified));
    }

    /// After a keyset page that listed `listed` (every record, mapped or not, as (id,
    /// modified)): a full page continues after its last second, a short one ends the window.
    /// Returns whether more pages are ready.
    pub fn keyset_page(
        &mut self,
        listed: &[(String, Timestamp)],
        full: bool,
        overlap: SignedDuration,
    ) -> Result<bool, PollError> {
        for (_, modified) in listed {
            self.saw(*modified);
        }
        let last = listed.iter().map(|(_, m)| whole_second(*m)).max();
        let Some(at) = last.filter(|_| full) else {
            self.finish(overlap);
            return Ok(false);
        };
        let mut ids: Vec<String> = match &self.next {
            Position::After { at: before, ids } if *before == at => ids.clone(),
            _ => Vec::new(),
        };
        ids.extend(listed.iter().filter(|(_, m)| whole_second(*m) == at).map(|(id, _)| id.clone()));
        ids.sort();
        ids.dedup();
        if ids.len() > EXCLUDED_LIMIT {
            return Err(PollError::new(format!(
                "more than {EXCLUDED_LIMIT} records changed within the second {at}: a keyset page cannot step past \
                 them without skipping one; raise the poll's page_size"
            )));
        }
        self.next = Position::After { at, ids };
        Ok(true)
    }

    /// After a page read by token: the vendor's next token, or the end of the window.
    pub fn token_page(&mut self, next: Option<String>, overlap: SignedDuration) -> bool {
        match next {
            Some(token) => {
                self.next = Position::Token { token };
                true
            }
            None => {
                self.finish(overlap);
                false
            }
        }
    }

    /// After a page of a closed window that listed `listed` records of the `total` the vendor
    /// counts now: a total that moved since the window's first page means records left (or
    /// arrived late) and the offsets shifted, so the window is read again from its start.
    pub fn offset_page(&mut self, listed: u64, total: u64, overlap: SignedDuration) -> bool {
        let Position::Offset { until, offset, total: first } = self.next.clone() else {
            self.finish(overlap);
            return false;
        };
        if first.is_some_and(|first| first != total) {
            self.next = Position::Offset { until, offset: 0, total: Some(total) };
            return true;
        }
        let offset = offset + listed;
        if listed > 0 && offset < total {
            self.next = Position::Offset { until, offset, total: Some(total) };
            true
        } else {
            self.finish(overlap);
            false
        }
    }

    /// Reads the current window again from its start (a page token the vendor refused).
    pub fn restart_window(&mut self) {
        self.next = Position::Start;
    }

    /// Ends the window: the next starts `overlap` before the newest change, never earlier than
    /// this one, and forgets what it can no longer show again.
    fn finish(&mut self, overlap: SignedDuration) {
        if let Some(newest) = self.newest {
            self.since = self.since.max(whole_second(newest - overlap));
        }
        self.next = Position::Start;
        let since = self.since;
        self.seen.retain(|_, (modified, _)| *modified >= since);
        while self.seen.len() > SEEN_LIMIT {
            let oldest = self.seen.iter().min_by_key(|(_, (m, _))| *m).map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.seen.remove(&id),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use handoff_model::{EventKind, ExternalId};

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn event(id: &str, kind: EventKind) -> InboundEvent {
        InboundEvent::new(ExternalId::new(id).unwrap(), kind, "1", at("2026-11-26T10:00:00Z"))
    }

    fn cursor() -> Cursor {
        Cursor::resume(None, at("2026-11-26T10:00:00.700Z"), SignedDuration::from_hours(1)).unwrap()
    }

    #[test]
    fn a_first_window_starts_on_a_whole_second() {
        assert_eq!(cursor().since, at("2026-11-26T09:00:00Z"));
        assert_eq!(whole_second(at("1969-12-31T23:59:59.5Z")), at("1969-12-31T23:59:59Z"));
    }

    #[test]
    fn the_same_change_is_taken_once_and_a_same_second_change_of_content_again() {
        let mut c = cursor();
        let t = at("2026-11-26T09:30:00Z");
        let first = c.take("1", t, event("poll:1@t", EventKind::OrderUpdated)).unwrap().unwrap();
        assert!(first.event_id.as_str().starts_with("poll:1@t#"));
        assert_eq!(c.take("1", t, event("poll:1@t", EventKind::OrderUpdated)).unwrap(), None);
        let changed = c.take("1", t, event("poll:1@t", EventKind::OrderCancelled)).unwrap().unwrap();
        assert_ne!(changed.event_id, first.event_id);
        assert_eq!(c.newest, Some(t));
    }

    #[test]
    fn a_full_keyset_page_goes_on_after_its_last_second_less_the_ids_read_there() {
        let mut c = cursor();
        let overlap = SignedDuration::from_mins(5);
        let page = [("7".to_owned(), at("2026-11-26T09:10:00Z")), ("3".to_owned(), at("2026-11-26T09:20:00.250Z"))];
        assert!(c.keyset_page(&page, true, overlap).unwrap());
        assert_eq!((c.from(), c.excluded()), (at("2026-11-26T09:20:00Z"), &["3".to_owned()][..]));
        // The next page ends on the same second: its ids join.
        assert!(c.keyset_page(&[("9".to_owned(), at("2026-11-26T09:20:00.900Z"))], true, overlap).unwrap());
        assert_eq!(c.excluded(), ["3".to_owned(), "9".to_owned()]);
        // A short page ends the window, which starts again the overlap before the newest change.
        assert!(!c.keyset_page(&[], false, overlap).unwrap());
        assert_eq!((c.next.clone(), c.since), (Position::Start, at("2026-11-26T09:15:00Z")));
    }

    #[test]
    fn more_ids_in_one_second_than_a_query_can_exclude_stop_the_poll() {
        let mut c = cursor();
        let t = at("2026-11-26T09:10:00Z");
        let page: Vec<(String, Timestamp)> = (0..=EXCLUDED_LIMIT).map(|i| (i.to_string(), t)).collect();
        assert!(c.keyset_page(&page, true, SignedDuration::ZERO).unwrap_err().reason.contains("page_size"));
    }

    #[test]
    fn a_closed_window_whose_total_moved_is_read_again_from_its_start() {
        let mut c = cursor();
        let now = at("2026-11-26T10:00:00Z");
        assert_eq!(c.offset_window(now), (now, 0));
        assert!(c.offset_page(2, 5, SignedDuration::ZERO));
        assert_eq!(c.offset_window(now), (now, 2));
        // One record was edited away from the window: the offsets shifted.
        assert!(c.offset_page(2, 4, SignedDuration::ZERO));
        assert_eq!(c.offset_window(now), (now, 0));
        assert!(c.offset_page(2, 4, SignedDuration::ZERO));
        assert!(!c.offset_page(2, 4, SignedDuration::ZERO));
        assert_eq!(c.next, Position::Start);
    }

    #[test]
    fn a_finished_window_never_moves_back_and_forgets_what_it_cannot_see_again() {
        let mut c = cursor();
        c.take("old", at("2026-11-26T09:00:01Z"), event("a", EventKind::OrderUpdated)).unwrap();
        c.take("new", at("2026-11-26T09:50:00Z"), event("b", EventKind::OrderUpdated)).unwrap();
        assert!(!c.token_page(None, SignedDuration::from_mins(10)));
        assert_eq!(c.since, at("2026-11-26T09:40:00Z"));
        assert_eq!(c.seen.keys().collect::<Vec<_>>(), ["new"]);
        assert!(!c.token_page(None, SignedDuration::from_hours(5)));
        assert_eq!(c.since, at("2026-11-26T09:40:00Z"), "never earlier than the last window");
        let text = c.to_text().unwrap();
        assert_eq!(Cursor::resume(Some(&text), at("2030-01-01T00:00:00Z"), SignedDuration::ZERO).unwrap(), c);
    }
}
