//! Heartbeats of the hub's long-running parts (the store's writer thread, intake, the
//! dispatcher, the rules driver, each poller), for readiness. A beat is a counter, never a
//! time: the parts keep reading time only through their clock, and the one who asks (the
//! server's `/ready`) times the counters itself. A part that waits for work says so, and a part
//! that ended (returned or panicked) is marked stopped when its [`Beat`] is dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one part shows the world: how often it beats, how many beats so far, whether it is
/// waiting for work, whether it stopped.
#[derive(Debug)]
pub struct Pulse {
    name: String,
    period: Duration,
    beats: AtomicU64,
    waiting: AtomicBool,
    failing: AtomicBool,
    stopped: AtomicBool,
}

/// A reading of one [`Pulse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub name: String,
    /// The longest the part goes between two beats while it works.
    pub period: Duration,
    pub beats: u64,
    /// Blocked waiting for work (an idle writer): not beating, and not stuck.
    pub waiting: bool,
    /// Its last try at its work failed (a writer whose commit failed): alive, and doing nothing.
    pub failing: bool,
    /// Its loop ended: returned, or panicked.
    pub stopped: bool,
}

impl Pulse {
    pub fn read(&self) -> Reading {
        Reading {
            name: self.name.clone(),
            period: self.period,
            beats: self.beats.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
            failing: self.failing.load(Ordering::Relaxed),
            stopped: self.stopped.load(Ordering::Relaxed),
        }
    }
}

/// The part's own end of its pulse. Not `Clone`: dropping it (the part's loop ended, or its
/// thread or task unwound) marks the part stopped.
#[derive(Debug)]
pub struct Beat(Arc<Pulse>);

impl Beat {
    /// A beat of a part that beats at least every `period` while it works.
    pub fn new(name: impl Into<String>, period: Duration) -> Beat {
        Beat(Arc::new(Pulse {
            name: name.into(),
            period,
            beats: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        }))
    }

    /// The part made progress (or looked for work and found none).
    pub fn beat(&self) {
        self.0.beats.fetch_add(1, Ordering::Relaxed);
        self.0.waiting.store(false, Ordering::Relaxed);
    }

    /// The part is about to block until work arrives; its next [`Beat::beat`] ends the wait.
    pub fn waiting(&self) {
        self.0.beats.fetch_add(1, Ordering::Relaxed);
        self.0.waiting.store(true, Ordering::Relaxed);
    }

    /// Whether the part's last try at its work failed; it stays failing until one succeeds.
    pub fn failing(&self, failing: bool) {
        self.0.failing.store(failing, Ordering::Relaxed);
    }

    pub fn pulse(&self) -> Arc<Pulse> {
        self.0.clone()
    }
}

impl Drop for Beat {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Relaxed);
    }
}

/// The pulses readiness watches.
#[derive(Debug, Clone, Default)]
pub struct Heartbeats(Arc<Mutex<Vec<Arc<Pulse>>>>);

impl Heartbeats {
    /// A new part to watch; the part keeps the returned beat for as long as it runs.
    pub fn register(&self, name: impl Into<String>, period: Duration) -> Beat {
        let beat = Beat::new(name, period);
        self.watch(beat.pulse());
        beat
    }

    /// Watches a pulse made elsewhere (the store's writer thread makes its own). A pulse of
    /// the same name replaces the one watched before: a part started again (a hub taking the
    /// lead of it back) is watched as it runs now.
    pub fn watch(&self, pulse: Arc<Pulse>) {
        let mut pulses = self.0.lock().expect("heartbeats lock");
        pulses.retain(|p| p.name != pulse.name);
        pulses.push(pulse);
    }

    pub fn read(&self) -> Vec<Reading> {
        self.0.lock().expect("heartbeats lock").iter().map(|p| p.read()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_count_and_a_dropped_beat_is_stopped() {
        let hearts = Heartbeats::default();
        let beat = hearts.register("intake", Duration::from_secs(1));
        beat.beat();
        beat.waiting();
        let r = &hearts.read()[0];
        assert_eq!((r.beats, r.waiting, r.stopped), (2, true, false));
        beat.beat();
        assert!(!hearts.read()[0].waiting);
        drop(beat);
        assert!(hearts.read()[0].stopped);
    }

    #[test]
    fn a_part_that_panics_is_stopped() {
        let hearts = Heartbeats::default();
        let beat = hearts.register("dispatcher", Duration::from_secs(1));
        let _ = std::thread::spawn(move || {
            beat.beat();
            panic!("the part died");
        })
        .join();
        assert!(hearts.read()[0].stopped);
    }

    #[test]
    fn a_part_started_again_replaces_its_old_pulse() {
        let hearts = Heartbeats::default();
        let old = hearts.register("intake", Duration::from_secs(1));
        let other = hearts.register("rules", Duration::from_secs(1));
        let new = hearts.register("intake", Duration::from_secs(1));
        drop(old);
        new.beat();
        let readings = hearts.read();
        assert_eq!(readings.len(), 2, "{readings:?}");
        let intake = readings.iter().find(|r| r.name == "intake").unwrap();
        assert_eq!((intake.beats, intake.stopped), (1, false), "the new pulse is the one watched");
        drop(other);
    }
}
