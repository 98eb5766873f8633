//! The hub's drift watch: every vendor payload that comes in is reduced to its shape (streamed
//! from the raw bytes, no `Value` built) and compared with the baseline of its vendor, resource
//! and API version; what differs is counted and raised once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use super::{Baseline, DriftCounter, DriftError, DriftEvent, Shape, ShapeLimits, SourceKey, SourceStats};

/// The baselines shipped with Handoff, learned from the vendors' own sample payloads
/// (`handoff mapping learn`).
const SHIPPED: &[&str] = &[
    include_str!("../../../../mappings/shopify/order/shapes/2022-04.json"),
    include_str!("../../../../mappings/shopify/order/shapes/2026-07.json"),
];

/// Events kept for the report; each is raised once per source and path, so this is plenty.
const MAX_RAISED: usize = 10_000;

pub struct Watch {
    baselines: BTreeMap<SourceKey, Baseline>,
    /// The counts, and every event raised so far (oldest first).
    state: Mutex<(DriftCounter, Vec<DriftEvent>)>,
}

impl Watch {
    pub fn shipped() -> Result<Watch, DriftError> {
        let baselines = SHIPPED
            .iter()
            .map(|text| {
                serde_json::from_str::<Baseline>(text)
                    .map_err(|source| DriftError::Json { path: "shipped baseline".into(), source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Watch::new(baselines))
    }

    /// The baselines under `<dir>/<vendor>/<resource>/shapes/<version>.json`.
    pub fn load(dir: &Path) -> Result<Watch, DriftError> {
        let mut baselines = Vec::new();
        let entries = |d: &Path| -> Vec<std::path::PathBuf> {
            std::fs::read_dir(d).map(|r| r.filter_map(|e| Some(e.ok()?.path())).collect()).unwrap_or_default()
        };
        for vendor in entries(dir) {
            for resource in entries(&vendor) {
                for file in entries(&resource.join("shapes")) {
                    if file.extension().is_some_and(|e| e == "json") {
                        baselines.push(Baseline::load(&file)?);
                    }
                }
            }
        }
        Ok(Watch::new(baselines))
    }

    pub fn new(baselines: Vec<Baseline>) -> Watch {
        let baselines = baselines.into_iter().map(|b| (b.source.clone(), b)).collect();
        Watch { baselines, state: Mutex::new((DriftCounter::new(), Vec::new())) }
    }

    /// Observes one payload; returns what it raised for the first time (to log).
    pub fn observe(&self, source: &SourceKey, raw: &[u8]) -> Vec<DriftEvent> {
        let Ok(shape) = Shape::from_slice(raw, ShapeLimits::default()) else { return Vec::new() };
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (counter, raised) = &mut *state;
        match self.baselines.get(source) {
            Some(baseline) => counter.record(source, &baseline.compare_shape(&shape)),
            None => {
                counter.record_unbaselined(source);
            }
        }
        let new = counter.take_events();
        let room = MAX_RAISED.saturating_sub(raised.len());
        raised.extend(new.iter().take(room).cloned());
        new
    }

    /// Every source seen, with its counts, and every event raised so far.
    pub fn report(&self) -> (Vec<(SourceKey, SourceStats)>, Vec<DriftEvent>) {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let sources = state.0.sources().map(|(k, s)| (k.clone(), s.clone())).collect();
        (sources, state.1.clone())
    }
}
