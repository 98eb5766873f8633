//! The contract: TOML parse, validation and secret resolution (`Contract::parse`), then what
//! `contract check` and `contract docs` do with a contract that parsed.
#![no_main]

use std::path::Path;

use handoff_contract::Contract;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A directory that does not exist: relative `file:` secrets resolve to nothing.
    let Ok(contract) = Contract::parse(text, Path::new("/nonexistent/handoff-fuzz/handoff.toml")) else { return };
    let _ = handoff_contract::check::check(&contract);
    let document = handoff_contract::docs::document(&contract, "fuzz");
    let _ = handoff_contract::docs::markdown(&document);
    let _ = handoff_contract::docs::html(&document);
});
