//! The transform layer: versioned mappings (jq through the jaq crates) from the canonical model
//! to each target's payload, golden cases shipped beside each mapping, and drift detection on
//! incoming vendor payloads. Mappings only move and rename fields; money arithmetic stays in
//! Rust with decimals (`prepare`), and money reaches the target with its digits intact (jaq
//! keeps decimal literals as text).

pub mod drift;
pub mod jq;
pub mod preflight;
pub mod prepare;
mod registry;
pub mod samples;
pub mod table;
mod totals;

/// The resource a target connector's command is mapped to, when it goes through a mapping.
pub fn resource_for(connector: &str, command_kind: &str) -> Option<&'static str> {
    match (connector, command_kind) {
        ("netsuite", "create_order" | "update_order") => Some("sales_order"),
        ("odoo", "create_order" | "update_order") => Some("sale_order"),
        _ => None,
    }
}

pub use registry::{Case, CaseResult, Held, Mapping, MappingError, MappingId, Mappings, PIN, difference, differences};
