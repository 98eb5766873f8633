//! What a (vendor, resource, api version) payload usually looks like, and how a payload differs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::shape::{JsonType, LimitHit, Shape, ShapeLimits, TypeSet, parent};
use super::{DriftError, SourceKey};

/// How often a path was present in the baseline's samples and which types it held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStats {
    /// Samples that had this path at least once.
    pub present: u64,
    pub types: TypeSet,
}

fn default_missing_percent() -> u8 {
    95
}

/// The shape learned from known-good payloads of one (vendor, resource, api version): the union
/// of their shapes with per-path presence counts, so "missing" can mean "usually there" rather
/// than "there once". Kept as a snapshot file (see [`Baseline::snapshot_path`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub source: SourceKey,
    /// Payloads learned from.
    pub samples: u64,
    /// A path absent from a payload is `missing` when it was present in at least this percentage
    /// of the samples; optional fields that vendors omit now and then stay quiet.
    #[serde(default = "default_missing_percent")]
    pub missing_percent: u8,
    #[serde(default)]
    pub limits: ShapeLimits,
    pub paths: BTreeMap<String, PathStats>,
}

/// One path the baseline has never seen. Only the topmost such path is listed: a new object
/// field is one entry, not one per leaf below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unseen {
    pub path: String,
    pub got: TypeSet,
}

/// One usual path the payload lacks, with how often the baseline had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    pub path: String,
    pub present: u64,
    pub samples: u64,
}

/// A path whose value has a (non-null) type the baseline never had there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeChange {
    pub path: String,
    pub expected: TypeSet,
    pub got: JsonType,
}

/// How one payload differs from its baseline. Empty means the payload looks as usual.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub unseen: Vec<Unseen>,
    pub missing: Vec<Missing>,
    pub type_changed: Vec<TypeChange>,
    /// The payload hit a shape bound; `missing` is then not computed (the shape is partial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitHit>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.unseen.is_empty() && self.missing.is_empty() && self.type_changed.is_empty() && self.limit.is_none()
    }
}

impl Baseline {
    pub fn new(source: SourceKey) -> Self {
        Baseline {
            source,
            samples: 0,
            missing_percent: default_missing_percent(),
            limits: ShapeLimits::default(),
            paths: BTreeMap::new(),
        }
    }

    /// Adds a known-good payload. Returns the bound it hit, if any (what was walked is still
    /// learned). The baseline itself never grows past `limits.max_paths` paths.
    pub fn learn(&mut self, payload: &Value) -> Option<LimitHit> {
        let shape = Shape::with_limits(payload, self.limits);
        self.learn_shape(&shape);
        shape.limit
    }

    pub fn learn_shape(&mut self, shape: &Shape) {
        self.samples += 1;
        for (path, types) in &shape.paths {
            if let Some(stats) = self.paths.get_mut(path) {
                stats.present += 1;
                stats.types = stats.types.union(*types);
            } else if self.paths.len() < self.limits.max_paths {
                self.paths.insert(path.clone(), PathStats { present: 1, types: *types });
            }
        }
    }

    /// Compares a payload against this baseline.
    pub fn compare(&self, payload: &Value) -> Drift {
        self.compare_shape(&Shape::with_limits(payload, self.limits))
    }

    pub fn compare_shape(&self, shape: &Shape) -> Drift {
        let mut drift = Drift { limit: shape.limit.clone(), ..Drift::default() };
        for (path, got) in &shape.paths {
            match self.paths.get(path) {
                None => {
                    let top = parent(path);
                    if top.is_empty() || self.paths.contains_key(top) {
                        drift.unseen.push(Unseen { path: path.clone(), got: *got });
                    }
                }
                Some(stats) => {
                    let expected = stats.types.non_null();
                    // A path the baseline only ever saw as null has no type to change from.
                    if expected.is_empty() {
                        continue;
                    }
                    for t in got.non_null().iter().filter(|t| !expected.contains(*t)) {
                        drift.type_changed.push(TypeChange { path: path.clone(), expected: stats.types, got: t });
                    }
                }
            }
        }
        if shape.limit.is_none() && self.samples > 0 {
            for (path, stats) in &self.paths {
                if shape.paths.contains_key(path) || !self.usual(stats) {
                    continue;
                }
                // An element path is absent whenever the array is empty, and a child is absent
                // whenever its parent is null or itself missing: report only the topmost gap.
                if path.ends_with("[]") {
                    continue;
                }
                let top = parent(path);
                let parent_is_object = top.is_empty() || shape.get(top).is_some_and(|t| t.contains(JsonType::Object));
                if parent_is_object {
                    drift.missing.push(Missing { path: path.clone(), present: stats.present, samples: self.samples });
                }
            }
        }
        drift
    }

    fn usual(&self, stats: &PathStats) -> bool {
        u128::from(stats.present) * 100 >= u128::from(self.samples) * u128::from(self.missing_percent)
    }

    /// Where this baseline lives under a mappings root: `<root>/<vendor>/<resource>/shapes/<version>.json`.
    pub fn snapshot_path(&self, root: &Path) -> Result<PathBuf, DriftError> {
        self.source.snapshot_path(root)
    }

    pub fn load(path: &Path) -> Result<Self, DriftError> {
        super::load_json(path)
    }

    /// Writes the snapshot (pretty JSON, sorted paths so diffs in review are readable).
    pub fn save(&self, path: &Path) -> Result<(), DriftError> {
        super::save_json(path, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> SourceKey {
        SourceKey::new("shopify", "order", "2026-07")
    }

    fn order() -> Value {
        json!({
            "id": 820982911946154508u64,
            "email": "jon@example.com",
            "total_price": "199.00",
            "note": null,
            "customer": {"id": 115310627314723954u64, "email": "jon@example.com"},
            "line_items": [{"sku": "IPOD2008GREEN", "quantity": 1, "price": "199.00"}],
        })
    }

    fn baseline_of(payloads: &[Value]) -> Baseline {
        let mut baseline = Baseline::new(key());
        for payload in payloads {
            assert!(baseline.learn(payload).is_none());
        }
        baseline
    }

    #[test]
    fn same_shape_is_no_drift() {
        let baseline = baseline_of(&[order()]);
        let mut other = order();
        other["line_items"] = json!([]);
        other["customer"] = Value::Null;
        other["note"] = json!("leave at the door");
        let drift = baseline.compare(&other);
        assert!(drift.is_empty(), "{drift:?}");
    }

    #[test]
    fn renamed_field_is_one_unseen_and_one_missing() {
        let baseline = baseline_of(&[order()]);
        let mut renamed = order();
        let sku = renamed["line_items"][0].as_object_mut().and_then(|item| item.remove("sku"));
        renamed["line_items"][0]["variant_sku"] = sku.unwrap_or_default();
        let drift = baseline.compare(&renamed);
        assert_eq!(
            drift.unseen,
            vec![Unseen { path: "line_items[].variant_sku".into(), got: TypeSet::single(JsonType::String) }]
        );
        assert_eq!(drift.missing, vec![Missing { path: "line_items[].sku".into(), present: 1, samples: 1 }]);
        assert!(drift.type_changed.is_empty());
    }

    #[test]
    fn renamed_object_is_reported_once_not_per_leaf() {
        let baseline = baseline_of(&[order()]);
        let mut renamed = order();
        if let Some(map) = renamed.as_object_mut() {
            let customer = map.remove("customer").unwrap_or_default();
            map.insert("buyer".into(), customer);
        }
        let drift = baseline.compare(&renamed);
        let unseen: Vec<_> = drift.unseen.iter().map(|u| u.path.as_str()).collect();
        let missing: Vec<_> = drift.missing.iter().map(|m| m.path.as_str()).collect();
        assert_eq!((unseen, missing), (vec!["buyer"], vec!["customer"]));
    }

    #[test]
    fn string_to_number_is_a_type_change_with_its_path() {
        let baseline = baseline_of(&[order()]);
        let mut changed = order();
        changed["line_items"][0]["price"] = json!(199.0);
        let drift = baseline.compare(&changed);
        assert_eq!(
            drift.type_changed,
            vec![TypeChange {
                path: "line_items[].price".into(),
                expected: TypeSet::single(JsonType::String),
                got: JsonType::Number
            }]
        );
        assert!(drift.unseen.is_empty() && drift.missing.is_empty());
    }

    #[test]
    fn null_is_compatible_with_any_type_and_recorded() {
        let mut with_null = order();
        with_null["email"] = Value::Null;
        let baseline = baseline_of(&[order(), with_null.clone()]);
        assert_eq!(baseline.paths["email"].types.to_string(), "string|null");
        // A null where a string was usual is not a type change, nor is a value where only null was seen.
        assert!(baseline.compare(&with_null).is_empty());
        let mut noted = order();
        noted["note"] = json!(42);
        assert!(baseline.compare(&noted).is_empty());
    }

    #[test]
    fn missing_means_usually_present() {
        let mut without_email = order();
        if let Some(map) = without_email.as_object_mut() {
            map.remove("email");
        }
        // email in 1 of 2 samples: 50% < 95%, so its absence is not drift.
        let baseline = baseline_of(&[order(), without_email.clone()]);
        assert!(baseline.compare(&without_email).missing.is_empty());
        // total_price in 2 of 2 samples: its absence is.
        let mut without_total = order();
        if let Some(map) = without_total.as_object_mut() {
            map.remove("total_price");
        }
        let missing: Vec<_> = baseline.compare(&without_total).missing.into_iter().map(|m| m.path).collect();
        assert_eq!(missing, vec!["total_price"]);
    }

    #[test]
    fn partial_shape_reports_the_limit_and_no_missing() {
        let mut baseline = baseline_of(&[order()]);
        baseline.limits = ShapeLimits { max_depth: 64, max_paths: 3 };
        let drift = baseline.compare(&order());
        assert_eq!(drift.limit, Some(LimitHit::Paths { max: 3 }));
        assert!(drift.missing.is_empty());
        assert!(!drift.is_empty());
    }

    #[test]
    fn snapshot_round_trips_through_a_file() {
        let baseline = baseline_of(&[order()]);
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        let path = baseline.snapshot_path(dir.path()).ok();
        let Some(path) = path else { panic!("snapshot path refused a plain key") };
        assert!(path.ends_with("shopify/order/shapes/2026-07.json"));
        assert!(baseline.save(&path).is_ok());
        let loaded = Baseline::load(&path).ok();
        assert_eq!(loaded.as_ref(), Some(&baseline));
    }
}
