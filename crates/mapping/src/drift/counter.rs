//! Counting drift per (vendor, resource, api version) and deciding what to raise.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SourceKey;
use super::baseline::{Baseline, Drift};
use super::shape::{JsonType, LimitHit, TypeSet};

/// What kind of difference a path showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    Unseen,
    Missing,
    TypeChanged,
}

/// Something an operator should hear about once: raised on first occurrence, counted after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DriftEvent {
    /// A (vendor, resource, version) seen for the first time with no baseline: a vendor rolled
    /// out an API version. Not a failure; the payload is still handed off, and a baseline should
    /// be learned for it.
    NewVersion {
        source: SourceKey,
    },
    Unseen {
        source: SourceKey,
        path: String,
        got: TypeSet,
    },
    Missing {
        source: SourceKey,
        path: String,
    },
    TypeChanged {
        source: SourceKey,
        path: String,
        expected: TypeSet,
        got: JsonType,
    },
    /// Payloads of this source exceed the shape bounds, so their drift is only partly known.
    LimitExceeded {
        source: SourceKey,
        limit: LimitHit,
    },
}

/// What one observed payload amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// First payload of a source with no baseline (a [`DriftEvent::NewVersion`] was queued).
    NewVersion,
    /// A later payload of a source that still has no baseline.
    Unbaselined,
    Clean,
    Drifted(Drift),
}

/// Counters for one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStats {
    /// Payloads observed.
    pub seen: u64,
    /// Payloads compared against no baseline.
    pub unbaselined: u64,
    /// Payloads that differed from their baseline.
    pub drifted: u64,
    /// Payloads that hit a shape bound.
    pub limited: u64,
    /// Payloads per (kind, path). Bounded by [`DriftCounter::max_paths_per_source`].
    pub paths: BTreeMap<DriftKind, BTreeMap<String, u64>>,
    /// Path occurrences not counted because the per-source bound was reached.
    pub untracked: u64,
}

impl SourceStats {
    pub fn count(&self, kind: DriftKind, path: &str) -> u64 {
        self.paths.get(&kind).and_then(|paths| paths.get(path)).copied().unwrap_or(0)
    }

    fn tracked_paths(&self) -> usize {
        self.paths.values().map(BTreeMap::len).sum()
    }
}

/// Drift counts per (vendor, resource, version), with a queue of events to raise. Pure and in
/// memory: the caller decides where the events go and when baselines are learned or refreshed.
/// Events are raised once per source and (kind, path); the counts keep growing after that.
#[derive(Debug, Clone)]
pub struct DriftCounter {
    sources: BTreeMap<SourceKey, SourceStats>,
    raised: BTreeSet<(SourceKey, DriftKind, String)>,
    limit_raised: BTreeSet<SourceKey>,
    events: Vec<DriftEvent>,
    /// Distinct (kind, path) counters kept per source; a payload with ever-new keys (ids used as
    /// object keys) cannot grow memory without bound.
    pub max_paths_per_source: usize,
    /// Distinct sources tracked; versions come from the wire, so this is bounded too.
    pub max_sources: usize,
    /// Payloads from sources beyond `max_sources`, not counted per source.
    pub overflow: u64,
}

impl Default for DriftCounter {
    fn default() -> Self {
        DriftCounter {
            sources: BTreeMap::new(),
            raised: BTreeSet::new(),
            limit_raised: BTreeSet::new(),
            events: Vec::new(),
            max_paths_per_source: 1_000,
            max_sources: 1_000,
            overflow: 0,
        }
    }
}

impl DriftCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compares `payload` against `baseline` (if the source has one) and counts the result.
    pub fn observe(&mut self, source: &SourceKey, baseline: Option<&Baseline>, payload: &Value) -> Observation {
        match baseline {
            None => self.record_unbaselined(source),
            Some(baseline) => {
                let drift = baseline.compare(payload);
                self.record(source, &drift);
                if drift.is_empty() { Observation::Clean } else { Observation::Drifted(drift) }
            }
        }
    }

    /// Counts a payload of a source that has no baseline; the first one raises `NewVersion`.
    pub fn record_unbaselined(&mut self, source: &SourceKey) -> Observation {
        let first = !self.sources.contains_key(source);
        let Some(stats) = self.stats_entry(source) else { return Observation::Unbaselined };
        stats.seen += 1;
        stats.unbaselined += 1;
        if first {
            self.events.push(DriftEvent::NewVersion { source: source.clone() });
            Observation::NewVersion
        } else {
            Observation::Unbaselined
        }
    }

    /// Counts a payload already compared against its baseline.
    pub fn record(&mut self, source: &SourceKey, drift: &Drift) {
        let max_paths = self.max_paths_per_source;
        let Some(stats) = self.stats_entry(source) else { return };
        stats.seen += 1;
        if drift.is_empty() {
            return;
        }
        stats.drifted += 1;
        if drift.limit.is_some() {
            stats.limited += 1;
        }
        let changes = drift
            .unseen
            .iter()
            .map(|u| (DriftKind::Unseen, &u.path))
            .chain(drift.missing.iter().map(|m| (DriftKind::Missing, &m.path)))
            .chain(drift.type_changed.iter().map(|t| (DriftKind::TypeChanged, &t.path)));
        for (kind, path) in changes {
            let tracked = stats.tracked_paths();
            let counts = stats.paths.entry(kind).or_default();
            if let Some(count) = counts.get_mut(path.as_str()) {
                *count += 1;
            } else if tracked < max_paths {
                counts.insert(path.clone(), 1);
            } else {
                stats.untracked += 1;
            }
        }
        self.raise(source, drift);
    }

    fn stats_entry(&mut self, source: &SourceKey) -> Option<&mut SourceStats> {
        if !self.sources.contains_key(source) && self.sources.len() >= self.max_sources {
            self.overflow += 1;
            return None;
        }
        Some(self.sources.entry(source.clone()).or_default())
    }

    fn raise(&mut self, source: &SourceKey, drift: &Drift) {
        for u in &drift.unseen {
            if self.first_time(source, DriftKind::Unseen, &u.path) {
                let event = DriftEvent::Unseen { source: source.clone(), path: u.path.clone(), got: u.got };
                self.events.push(event);
            }
        }
        for m in &drift.missing {
            if self.first_time(source, DriftKind::Missing, &m.path) {
                self.events.push(DriftEvent::Missing { source: source.clone(), path: m.path.clone() });
            }
        }
        for t in &drift.type_changed {
            if self.first_time(source, DriftKind::TypeChanged, &t.path) {
                let (path, expected, got) = (t.path.clone(), t.expected, t.got);
                self.events.push(DriftEvent::TypeChanged { source: source.clone(), path, expected, got });
            }
        }
        if let Some(limit) = &drift.limit
            && self.limit_raised.insert(source.clone())
        {
            self.events.push(DriftEvent::LimitExceeded { source: source.clone(), limit: limit.clone() });
        }
    }

    /// Whether (source, kind, path) is new; bounded like the counters so raising stays finite.
    fn first_time(&mut self, source: &SourceKey, kind: DriftKind, path: &str) -> bool {
        let key = (source.clone(), kind, path.to_owned());
        if self.raised.contains(&key) {
            return false;
        }
        let per_source =
            self.raised.range((source.clone(), DriftKind::Unseen, String::new())..).take_while(|k| &k.0 == source);
        if per_source.count() >= self.max_paths_per_source {
            return false;
        }
        self.raised.insert(key)
    }

    /// Events not yet handed out, oldest first. Draining them is how the caller raises them.
    pub fn take_events(&mut self) -> Vec<DriftEvent> {
        std::mem::take(&mut self.events)
    }

    /// Events queued and not yet taken.
    pub fn pending_events(&self) -> &[DriftEvent] {
        &self.events
    }

    pub fn stats(&self, source: &SourceKey) -> Option<&SourceStats> {
        self.sources.get(source)
    }

    pub fn sources(&self) -> impl Iterator<Item = (&SourceKey, &SourceStats)> {
        self.sources.iter()
    }

    /// Forgets what was raised for a source, e.g. after its baseline was refreshed, so drift
    /// against the new baseline is raised afresh. Counts are kept.
    pub fn rearm(&mut self, source: &SourceKey) {
        self.raised.retain(|k| &k.0 != source);
        self.limit_raised.remove(source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(version: &str) -> SourceKey {
        SourceKey::new("amazon", "order", version)
    }

    #[test]
    fn first_sight_without_baseline_is_a_new_version_event_not_a_failure() {
        let mut counter = DriftCounter::new();
        let next = source("2026-01-01");
        let payload = json!({"orderId": "902-1845936-5435065"});
        assert_eq!(counter.observe(&next, None, &payload), Observation::NewVersion);
        assert_eq!(counter.observe(&next, None, &payload), Observation::Unbaselined);
        assert_eq!(counter.take_events(), vec![DriftEvent::NewVersion { source: next.clone() }]);
        assert!(counter.take_events().is_empty());
        let stats = counter.stats(&next).cloned().unwrap_or_default();
        assert_eq!((stats.seen, stats.unbaselined, stats.drifted), (2, 2, 0));
    }

    #[test]
    fn drift_is_counted_per_path_and_raised_once() {
        let key = source("v0");
        let mut baseline = Baseline::new(key.clone());
        baseline.learn(&json!({"AmazonOrderId": "902-1845936-5435065", "OrderTotal": {"Amount": "10.00"}}));
        let mut counter = DriftCounter::new();
        let good = json!({"AmazonOrderId": "902-3159896-1390916", "OrderTotal": {"Amount": "5.00"}});
        let drifted = json!({"AmazonOrderId": "902-3159896-1390916", "OrderTotal": {"Amount": 5}, "IsIBA": false});
        assert_eq!(counter.observe(&key, Some(&baseline), &good), Observation::Clean);
        for _ in 0..3 {
            assert!(matches!(counter.observe(&key, Some(&baseline), &drifted), Observation::Drifted(_)));
        }
        let stats = counter.stats(&key).cloned().unwrap_or_default();
        assert_eq!((stats.seen, stats.drifted), (4, 3));
        assert_eq!(stats.count(DriftKind::Unseen, "IsIBA"), 3);
        assert_eq!(stats.count(DriftKind::TypeChanged, "OrderTotal.Amount"), 3);
        let events = counter.take_events();
        assert_eq!(
            events,
            vec![
                DriftEvent::Unseen { source: key.clone(), path: "IsIBA".into(), got: TypeSet::single(JsonType::Bool) },
                DriftEvent::TypeChanged {
                    source: key.clone(),
                    path: "OrderTotal.Amount".into(),
                    expected: TypeSet::single(JsonType::String),
                    got: JsonType::Number,
                },
            ]
        );
        counter.rearm(&key);
        counter.observe(&key, Some(&baseline), &drifted);
        assert_eq!(counter.take_events().len(), 2);
    }

    #[test]
    fn per_source_paths_and_sources_are_bounded() {
        let key = source("v0");
        let mut baseline = Baseline::new(key.clone());
        baseline.learn(&json!({"a": 1}));
        let mut counter = DriftCounter { max_paths_per_source: 5, max_sources: 2, ..DriftCounter::default() };
        for i in 0..20 {
            counter.observe(&key, Some(&baseline), &json!({ "a": 1, format!("id_{i}"): true }));
        }
        let stats = counter.stats(&key).cloned().unwrap_or_default();
        assert_eq!(stats.paths.values().map(BTreeMap::len).sum::<usize>(), 5);
        assert_eq!(stats.untracked, 15);
        assert_eq!(counter.take_events().len(), 5);
        counter.observe(&source("x"), None, &json!({}));
        counter.observe(&source("y"), None, &json!({}));
        assert_eq!(counter.sources().count(), 2);
        assert_eq!(counter.overflow, 1);
    }
}
