//! Drift detection on incoming vendor payloads.
