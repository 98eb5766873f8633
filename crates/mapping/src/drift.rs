//! Drift detection on incoming vendor payloads and on target schemas.
//!
//! Vendors change payloads under us (new API versions, renamed fields, strings that become
//! numbers) and ERPs change what they require. Both are caught here before they turn into failed
//! handoffs: incoming payloads are reduced to a [`Shape`] and compared with a [`Baseline`] learned
//! per (vendor, resource, api version); the differences are counted by a [`DriftCounter`], which
//! raises each once. Target record schemas are kept as [`TargetSchema`] snapshots and a refreshed
//! snapshot is diffed against the previous one. Everything here is pure; the only I/O is the
//! explicit `load`/`save` of snapshot files.

mod baseline;
mod counter;
mod shape;
mod target;
mod watch;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use baseline::{Baseline, Drift, Missing, PathStats, TypeChange, Unseen};
pub use counter::{DriftCounter, DriftEvent, DriftKind, Observation, SourceStats};
pub use shape::{JsonType, LimitHit, Shape, ShapeLimits, TypeSet};
pub use target::{EnumChange, FieldTypeChange, LookupChange, SchemaDiff, TargetField, TargetSchema};
pub use watch::Watch;

/// Where a payload comes from: vendor, resource and the vendor's API version
/// (`shopify`/`order`/`2026-07`, `amazon`/`order`/`v0`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceKey {
    pub vendor: String,
    pub resource: String,
    pub version: String,
}

impl SourceKey {
    pub fn new(vendor: impl Into<String>, resource: impl Into<String>, version: impl Into<String>) -> Self {
        SourceKey { vendor: vendor.into(), resource: resource.into(), version: version.into() }
    }

    /// `<root>/<vendor>/<resource>/shapes/<version>.json`. The parts come from the wire (the
    /// version header), so anything that could leave `root` is refused.
    pub fn snapshot_path(&self, root: &Path) -> Result<PathBuf, DriftError> {
        for part in [&self.vendor, &self.resource, &self.version] {
            let safe = !part.is_empty()
                && part != "."
                && part != ".."
                && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !safe {
                return Err(DriftError::UnsafeName(part.clone()));
            }
        }
        Ok(root.join(&self.vendor).join(&self.resource).join("shapes").join(format!("{}.json", self.version)))
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.vendor, self.resource, self.version)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("snapshot {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("snapshot {path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("not usable in a snapshot path: {0:?}")]
    UnsafeName(String),
    #[error("target metadata: {0}")]
    Metadata(String),
}

fn load_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, DriftError> {
    let bytes = std::fs::read(path).map_err(|source| DriftError::Io { path: path.to_owned(), source })?;
    serde_json::from_slice(&bytes).map_err(|source| DriftError::Json { path: path.to_owned(), source })
}

/// Writes through a temporary file and a rename, so a crash never leaves half a snapshot.
fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DriftError> {
    let io = |source| DriftError::Io { path: path.to_owned(), source };
    let mut text =
        serde_json::to_vec_pretty(value).map_err(|source| DriftError::Json { path: path.to_owned(), source })?;
    text.push(b'\n');
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    #[test]
    fn snapshot_paths_refuse_names_that_leave_the_root() {
        let root = Path::new("mappings");
        let ok = SourceKey::new("amazon", "order", "2026-01-01").snapshot_path(root).ok();
        assert_eq!(ok, Some(PathBuf::from("mappings/amazon/order/shapes/2026-01-01.json")));
        for bad in ["..", "", "a/b", "v0\\..", "."] {
            assert!(SourceKey::new("amazon", "order", bad).snapshot_path(root).is_err(), "{bad:?}");
        }
    }

    /// The vendor fixtures live next to the workspace (`../shared/fixtures`, or `HANDOFF_FIXTURES`)
    /// and may be absent; tests that use them say whether they ran.
    fn fixture(relative: &str) -> Option<Value> {
        let bytes = fixture_bytes(relative)?;
        let value: Option<Value> = serde_json::from_slice(&bytes).ok();
        // Every fixture also checks that streaming from bytes agrees with walking the `Value`.
        if let Some(value) = &value {
            assert_eq!(Shape::from_slice(&bytes, ShapeLimits::default()).ok(), Some(Shape::of(value)), "{relative}");
        }
        value
    }

    fn fixture_bytes(relative: &str) -> Option<Vec<u8>> {
        crate::samples::read(relative)
    }

    fn learned(source: SourceKey, payload: &Value) -> Baseline {
        let mut baseline = Baseline::new(source);
        assert_eq!(baseline.learn(payload), None);
        baseline
    }

    /// Shopify REST Order 2022-04 as the baseline of a 2026-07 order: the fields SOURCES.md
    /// documents as added come out as `unseen`, each once. The fixtures also show
    /// `shipping_lines[].is_removed` (not in SOURCES.md) and drop three `customer` marketing fields.
    #[test]
    fn shopify_2026_07_against_a_2022_04_baseline_shows_the_added_fields() {
        let (Some(old), Some(new)) =
            (fixture("shopify/rest_2022-04_order_get.json"), fixture("shopify/rest_2026-07_order_get.json"))
        else {
            // Still assert the mechanism on a miniature of the same change.
            let old = serde_json::json!({"id": 1, "line_items": [{"id": 2, "quantity": 1}]});
            let new = serde_json::json!({
                "id": 1, "tax_exempt": false,
                "total_cash_rounding_payment_adjustment_set": {"shop_money": {"amount": "0.00", "currency_code": "USD"}},
                "line_items": [{"id": 2, "quantity": 1, "current_quantity": 1}],
            });
            let drift = learned(SourceKey::new("shopify", "order", "2022-04"), &old).compare(&new);
            let unseen: Vec<_> = drift.unseen.iter().map(|u| u.path.as_str()).collect();
            assert_eq!(
                unseen,
                ["line_items[].current_quantity", "tax_exempt", "total_cash_rounding_payment_adjustment_set"]
            );
            return;
        };
        let baseline = learned(SourceKey::new("shopify", "order", "2022-04"), &old["order"]);
        let drift = baseline.compare(&new["order"]);
        let unseen: BTreeSet<&str> = drift.unseen.iter().map(|u| u.path.as_str()).collect();
        let documented = [
            "confirmation_number",
            "duties_included",
            "merchant_business_entity_id",
            "tax_exempt",
            "total_cash_rounding_payment_adjustment_set",
            "total_cash_rounding_refund_adjustment_set",
            "line_items[].attributed_staffs",
            "line_items[].current_quantity",
        ];
        for path in documented {
            assert!(unseen.contains(path), "{path} should be unseen; got {unseen:?}");
        }
        // Line items recur under fulfillments and refunds, and one undocumented addition.
        let expected: BTreeSet<&str> = documented
            .into_iter()
            .chain([
                "fulfillments[].line_items[].attributed_staffs",
                "fulfillments[].line_items[].current_quantity",
                "refunds[].refund_line_items[].line_item.attributed_staffs",
                "refunds[].refund_line_items[].line_item.current_quantity",
                "shipping_lines[].is_removed",
            ])
            .collect();
        assert_eq!(unseen, expected);
        let missing: Vec<&str> = drift.missing.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(
            missing,
            ["customer.accepts_marketing", "customer.accepts_marketing_updated_at", "customer.marketing_opt_in_level"]
        );
        assert!(drift.type_changed.is_empty(), "{:?}", drift.type_changed);

        // The other way round the same fields are missing, and nothing is unseen but the dropped ones.
        let reverse = learned(SourceKey::new("shopify", "order", "2026-07"), &new["order"]).compare(&old["order"]);
        let missing: BTreeSet<&str> = reverse.missing.iter().map(|m| m.path.as_str()).collect();
        assert!(documented.iter().all(|path| missing.contains(path)), "{missing:?}");
        eprintln!("shopify fixture test ran: {} unseen, {} missing", unseen.len(), drift.missing.len());
    }

    /// Amazon v0 and 2026-01-01 share almost nothing: against each other's baseline nearly every
    /// top-level field is unseen, and a counter treats the first 2026-01-01 payload as a new version.
    #[test]
    fn amazon_new_version_is_an_event_and_v0_baseline_does_not_fit_it() {
        let (Some(v0), Some(next)) =
            (fixture("amazon/v0_getOrder_response.json"), fixture("amazon/2026-01-01_getOrder_response.json"))
        else {
            let mut counter = DriftCounter::new();
            let key = SourceKey::new("amazon", "order", "2026-01-01");
            let payload = serde_json::json!({"order": {"orderId": "902-1845936-5435065"}});
            assert_eq!(counter.observe(&key, None, &payload), Observation::NewVersion);
            return;
        };
        let v0_key = SourceKey::new("amazon", "order", "v0");
        let next_key = SourceKey::new("amazon", "order", "2026-01-01");
        let baseline = learned(v0_key.clone(), &v0);
        let mut counter = DriftCounter::new();
        assert_eq!(counter.observe(&v0_key, Some(&baseline), &v0), Observation::Clean);
        assert_eq!(counter.observe(&next_key, None, &next), Observation::NewVersion);
        assert_eq!(counter.take_events(), vec![DriftEvent::NewVersion { source: next_key }]);
        let drift = baseline.compare(&next);
        assert!(drift.unseen.iter().any(|u| u.path == "order"), "{:?}", drift.unseen);
        assert!(drift.missing.iter().any(|m| m.path == "payload"), "{:?}", drift.missing);
        eprintln!("amazon fixture test ran: {} unseen, {} missing", drift.unseen.len(), drift.missing.len());
    }

    /// Stripe PaymentIntent 2020-08-27 (`charges`) against the 2026 fixture (`latest_charge`).
    #[test]
    fn stripe_charges_became_latest_charge() {
        let (Some(event), Some(current)) = (
            fixture("stripe/event_payment_intent.succeeded.json"),
            fixture("stripe/openapi_fixtures3_payment_intent.json"),
        ) else {
            return;
        };
        let old = event.pointer("/data/object").cloned().unwrap_or(Value::Null);
        if old.get("charges").is_none() {
            eprintln!("stripe event fixture has no `charges`; nothing to compare");
            return;
        }
        let drift = learned(SourceKey::new("stripe", "payment_intent", "2020-08-27"), &old).compare(&current);
        assert!(drift.unseen.iter().any(|u| u.path == "latest_charge"), "{:?}", drift.unseen);
        assert!(drift.missing.iter().any(|m| m.path == "charges"), "{:?}", drift.missing);
        eprintln!("stripe fixture test ran: {} unseen, {} missing", drift.unseen.len(), drift.missing.len());
    }
}
