//! The transform layer: versioned mappings (jq through the jaq crates) from the canonical model
//! to each target's payload, pre-flight validation against the target's schema snapshot, and
//! drift detection on incoming vendor payloads. Mappings only move and rename fields; money
//! arithmetic stays in Rust with decimals.

pub mod drift;
