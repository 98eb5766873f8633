//! The events the hub parsed at its door, kept by inbox row for a moment: intake plans from them
//! and the rules learn from them without parsing the stored payload again (a webhook's event was
//! parsed three times, a tenth of the hub's CPU at its intake peak). Only a cache: an event it
//! no longer holds (or never held: a poll's, one recorded before a restart, one recorded by
//! another hub) is parsed from the store, which holds the same event as JSON.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use handoff_model::InboundEvent;

/// Events kept at most: intake and the rules read the inbox a batch or two behind the webhooks
/// (at 1,024, `bench e2e` found 97 % of its events here, and 71 % at 256).
pub const CAPACITY: usize = 1024;

/// The canonical JSON of the events kept, in bytes, at most: a parsed event takes about four and
/// a half times its JSON in memory, so orders of many lines are kept fewer.
pub const MAX_BYTES: usize = 2 << 20;

/// Parsed events by inbox row, the newest of them within [`CAPACITY`] and [`MAX_BYTES`].
pub struct Recent {
    kept: Mutex<Kept>,
    capacity: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Kept {
    /// Each event with the size of its JSON.
    events: BTreeMap<i64, (Arc<InboundEvent>, usize)>,
    bytes: usize,
}

impl Default for Recent {
    fn default() -> Self {
        Recent::new(CAPACITY, MAX_BYTES)
    }
}

impl Recent {
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Recent { kept: Mutex::default(), capacity, max_bytes }
    }

    /// Keeps `event`, which the store just recorded as inbox row `row` from `bytes` of canonical
    /// JSON (and which was validated at the door), the oldest events leaving to make room.
    pub fn keep(&self, row: i64, event: InboundEvent, bytes: usize) {
        let event = Arc::new(event);
        let mut gone = Vec::new();
        {
            let mut kept = self.kept.lock().expect("recent events lock");
            if let Some((_, replaced)) = kept.events.insert(row, (event, bytes)) {
                kept.bytes -= replaced;
            }
            kept.bytes += bytes;
            while kept.events.len() > self.capacity || kept.bytes > self.max_bytes {
                let Some((_, (oldest, size))) = kept.events.pop_first() else { break };
                kept.bytes -= size;
                gone.push(oldest);
            }
        }
        // Freed outside the lock: an event is many small allocations.
        drop(gone);
    }

    /// Forgets every event, as a hub that stops does.
    pub fn clear(&self) {
        *self.kept.lock().expect("recent events lock") = Kept::default();
    }

    /// The event recorded as inbox row `row`, if it is still kept.
    pub fn get(&self, row: i64) -> Option<Arc<InboundEvent>> {
        self.kept.lock().expect("recent events lock").events.get(&row).map(|(event, _)| event.clone())
    }
}

#[cfg(test)]
mod tests {
    use handoff_model::{EventKind, ExternalId};

    use super::*;

    fn event(id: &str) -> InboundEvent {
        InboundEvent::new(
            ExternalId::new(id).unwrap(),
            EventKind::OrderCreated,
            "#1",
            "2026-12-06T10:00:00Z".parse().unwrap(),
        )
    }

    #[test]
    fn the_newest_rows_are_kept_and_the_oldest_go_first() {
        let recent = Recent::new(2, 1000);
        recent.keep(7, event("a"), 10);
        recent.keep(8, event("b"), 10);
        assert_eq!(recent.get(7).unwrap().event_id.to_string(), "a");
        recent.keep(9, event("c"), 10);
        assert!(recent.get(7).is_none(), "the oldest row leaves when a third comes");
        assert_eq!(recent.get(8).unwrap().event_id.to_string(), "b");
        assert_eq!(recent.get(9).unwrap().event_id.to_string(), "c");
        assert!(recent.get(10).is_none());
        recent.clear();
        assert!(recent.get(9).is_none(), "a hub that stops holds nothing");
    }

    #[test]
    fn large_events_are_kept_fewer() {
        let recent = Recent::new(100, 1000);
        recent.keep(1, event("a"), 400);
        recent.keep(2, event("b"), 400);
        recent.keep(3, event("c"), 400);
        assert!(recent.get(1).is_none(), "1,200 bytes kept would be over 1,000");
        assert!(recent.get(2).is_some() && recent.get(3).is_some());
        recent.keep(4, event("d"), 5000);
        assert!((1..=4).all(|row| recent.get(row).is_none()), "an event over the bound is not kept at all");
        recent.keep(5, event("e"), 10);
        assert!(recent.get(5).is_some(), "the bytes of the events gone were given back");
    }
}
