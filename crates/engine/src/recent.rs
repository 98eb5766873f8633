//! The events the hub parsed at its door, kept by inbox row for a moment: intake plans from them
//! and the rules learn from them without parsing the stored payload again (a webhook's event was
//! parsed three times, a tenth of the hub's CPU at its intake peak). Only a cache: an event it
//! no longer holds (or never held: a poll's, one recorded before a restart, one recorded by
//! another hub) is parsed from the store, which holds the same event as JSON.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use handoff_model::InboundEvent;

/// Events kept: intake and the rules read the inbox a batch or two behind the webhooks, and an
/// event parsed is a few kilobytes of the hub's memory.
pub const CAPACITY: usize = 1024;

/// Parsed events by inbox row, the newest [`CAPACITY`] of them.
pub struct Recent {
    events: Mutex<BTreeMap<i64, Arc<InboundEvent>>>,
    capacity: usize,
}

impl Default for Recent {
    fn default() -> Self {
        Recent::new(CAPACITY)
    }
}

impl Recent {
    pub fn new(capacity: usize) -> Self {
        Recent { events: Mutex::new(BTreeMap::new()), capacity }
    }

    /// Keeps `event`, which the store just recorded as inbox row `row` (and which was validated
    /// at the door), in place of the oldest kept one when full.
    pub fn keep(&self, row: i64, event: InboundEvent) {
        let event = Arc::new(event);
        let oldest = {
            let mut events = self.events.lock().expect("recent events lock");
            events.insert(row, event);
            (events.len() > self.capacity).then(|| events.pop_first()).flatten()
        };
        // Freed outside the lock: an event is many small allocations.
        drop(oldest);
    }

    /// Forgets every event, as a hub that stops does.
    pub fn clear(&self) {
        self.events.lock().expect("recent events lock").clear();
    }

    /// The event recorded as inbox row `row`, if it is still kept.
    pub fn get(&self, row: i64) -> Option<Arc<InboundEvent>> {
        self.events.lock().expect("recent events lock").get(&row).cloned()
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
        let recent = Recent::new(2);
        recent.keep(7, event("a"));
        recent.keep(8, event("b"));
        assert_eq!(recent.get(7).unwrap().event_id.to_string(), "a");
        recent.keep(9, event("c"));
        assert!(recent.get(7).is_none(), "the oldest row leaves when a third comes");
        assert_eq!(recent.get(8).unwrap().event_id.to_string(), "b");
        assert_eq!(recent.get(9).unwrap().event_id.to_string(), "c");
        assert!(recent.get(10).is_none());
    }
}
