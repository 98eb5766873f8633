//! The transform layer: versioned mappings (jq through the jaq crates) from the canonical model
//! to each target's payload, golden cases shipped beside each mapping, and drift detection on
//! incoming vendor payloads. Mappings only move and rename fields; money arithmetic stays in
//! Rust with decimals (`prepare`), and money reaches the target with its digits intact (jaq
//! keeps decimal literals as text).

pub mod drift;
pub mod jq;
pub mod preflight;
mod prepare;
mod registry;

pub use registry::{Case, CaseResult, Held, Mapping, MappingError, MappingId, Mappings, difference};
