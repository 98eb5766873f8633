//! Connectors: how Handoff reads events from and writes commands to each kind of system.
//! Today: the generic `http-json` source and target (see `docs/connectors/http-json.md`).

pub mod http_json;
