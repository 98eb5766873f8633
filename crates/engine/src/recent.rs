//! The events the hub parsed at its door, kept by inbox row for a moment: intake plans from them
//! and the rules learn from them without parsing the stored payload again (a webhook's event was
//! parsed three times, a tenth of the hub's CPU at its intake peak). Only a cache: an event it
//! no longer holds (or never held: a poll's, one recorded before a restart, one recorded by
//! another hub) is parsed from the store, which holds the same event as JSON; intake keeps what
//! it parsed so, and the rules learn from that.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use handoff_model::InboundEvent;

/// Events kept at most: intake and the rules read the inbox a batch or two behind the webhooks
/// (at 1,024, `bench e2e` found 97 % of its events here, and 71 % at 256).
pub const CAPACITY: usize = 1024;

/// The canonical JSON of the events kept, in bytes, at most: a parsed event takes about four and
/// a half times its JSON in memory, so orders of many lines are kept fewer.
pub const MAX_BYTES: usize = 2 << 20;

/// Parsed events by inbox row: the newest the webhooks parsed, and apart from them the newest
/// intake parsed from the store, each set within [`CAPACITY`] and [`MAX_BYTES`]. Behind a peak
/// intake reads rows the webhooks' set has long let go; the rules, a batch behind intake, then
/// learn from what intake parsed instead of parsing it a second time.
pub struct Recent {
    door: Mutex<Kept>,
    read: Mutex<Kept>,
    capacity: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Kept {
    /// Each event with the size of its JSON.
    events: BTreeMap<i64, (Arc<InboundEvent>, usize)>,
    bytes: usize,
}

impl Kept {
    /// Keeps `event` as row `row`; answers the oldest events that left to make room.
    fn keep(
        &mut self,
        row: i64,
        event: Arc<InboundEvent>,
        bytes: usize,
        capacity: usize,
        max_bytes: usize,
    ) -> Vec<Arc<InboundEvent>> {
        if let Some((_, replaced)) = self.events.insert(row, (event, bytes)) {
            self.bytes -= replaced;
        }
        self.bytes += bytes;
        let mut gone = Vec::new();
        while self.events.len() > capacity || self.bytes > max_bytes {
            let Some((_, (oldest, size))) = self.events.pop_first() else { break };
            self.bytes -= size;
            gone.push(oldest);
        }
        gone
    }
}

impl Default for Recent {
    fn default() -> Self {
        Recent::new(CAPACITY, MAX_BYTES)
    }
}

impl Recent {
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Recent { door: Mutex::default(), read: Mutex::default(), capacity, max_bytes }
    }

    /// Keeps `event`, which the store just recorded as inbox row `row` from `bytes` of canonical
    /// JSON (and which was validated at the door), the oldest events leaving to make room.
    pub fn keep(&self, row: i64, event: InboundEvent, bytes: usize) {
        self.keep_in(&self.door, row, Arc::new(event), bytes);
    }

    /// Keeps `event`, which intake parsed (and validated) from inbox row `row`'s `bytes` of
    /// stored JSON, apart from the webhooks' events, the oldest it read leaving to make room.
    pub fn keep_read(&self, row: i64, event: Arc<InboundEvent>, bytes: usize) {
        self.keep_in(&self.read, row, event, bytes);
    }

    fn keep_in(&self, set: &Mutex<Kept>, row: i64, event: Arc<InboundEvent>, bytes: usize) {
        let gone = set.lock().expect("recent events lock").keep(row, event, bytes, self.capacity, self.max_bytes);
        // Freed outside the lock: an event is many small allocations.
        drop(gone);
    }

    /// Forgets every event, as a hub that stops does.
    pub fn clear(&self) {
        *self.door.lock().expect("recent events lock") = Kept::default();
        *self.read.lock().expect("recent events lock") = Kept::default();
    }

    /// The event recorded as inbox row `row`, if it is still kept.
    pub fn get(&self, row: i64) -> Option<Arc<InboundEvent>> {
        let kept = |set: &Mutex<Kept>| set.lock().expect("recent events lock").events.get(&row).map(|(e, _)| e.clone());
        kept(&self.door).or_else(|| kept(&self.read))
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
    fn what_intake_read_is_kept_apart_from_the_door() {
        let recent = Recent::new(2, 1000);
        recent.keep_read(3, Arc::new(event("read")), 10);
        recent.keep(8, event("b"), 10);
        recent.keep(9, event("c"), 10);
        recent.keep(10, event("d"), 10);
        assert_eq!(recent.get(3).unwrap().event_id.to_string(), "read", "the webhooks' newest rows never push it out");
        assert!(recent.get(8).is_none());
        recent.keep_read(4, Arc::new(event("e")), 10);
        recent.keep_read(5, Arc::new(event("f")), 10);
        assert!(recent.get(3).is_none(), "the oldest row intake read leaves when it has read two more");
        assert_eq!(recent.get(5).unwrap().event_id.to_string(), "f");
        recent.clear();
        assert!(recent.get(5).is_none() && recent.get(10).is_none());
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
