//! What the fuzz targets share: the systems a webhook is posted to, the clock, and a fuzz
//! input split into request headers and a body.

use std::collections::BTreeMap;
use std::path::Path;

use handoff_contract::{ConnectorKind, Contract, System};
use jiff::Timestamp;

/// The secret every fuzzed delivery is signed with; the contract also lists an older one, so
/// verification walks a rotation.
pub const SECRET: &str = "fuzz-secret";

/// When every delivery arrives.
pub fn now() -> Timestamp {
    Timestamp::from_second(1_767_225_600).expect("2026-01-01 is a timestamp")
}

/// A system of `connector` as a contract declares it, with webhook secrets `old` and
/// [`SECRET`] and the default signature tolerance.
pub fn system(connector: ConnectorKind) -> System {
    let text = format!(
        "[systems.fuzz]\nrole = \"storefront\"\nconnector = \"shopify\"\nwebhook_secrets = [\"old\", \"{SECRET}\"]\n"
    );
    let contract = Contract::parse(&text, Path::new("handoff.toml")).expect("the fuzz contract parses");
    let mut system = contract.systems["fuzz"].clone();
    system.connector = connector;
    system
}

/// A fuzz input is a body, or, when it holds a NUL byte, `name: value` header lines before the
/// first NUL and the body after it. Header names are lower-cased, as the readers look them up.
pub struct Request<'a> {
    pub headers: BTreeMap<String, String>,
    pub body: &'a [u8],
    /// Whether the input named its own headers (otherwise each reader gets valid ones).
    pub own_headers: bool,
}

impl<'a> Request<'a> {
    pub fn split(data: &'a [u8]) -> Request<'a> {
        let Some(nul) = data.iter().position(|&b| b == 0) else {
            return Request { headers: BTreeMap::new(), body: data, own_headers: false };
        };
        let headers = String::from_utf8_lossy(&data[..nul])
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Request { headers, body: &data[nul + 1..], own_headers: true }
    }
}
