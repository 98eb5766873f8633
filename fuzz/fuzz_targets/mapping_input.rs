//! The jq mapping input path: a fuzzed command (JSON, as a golden case holds it:
//! `{"command": ..., "settings": ...}`, or a bare command) through every shipped mapping:
//! `Mappings::transform` (latest version, or the one the command pins: prepare, jq, pre-flight
//! against the schema snapshot, totals) and `Mapping::apply` of every version.
#![no_main]

use std::sync::LazyLock;

use handoff_mapping::Mappings;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static MAPPINGS: LazyLock<Mappings> = LazyLock::new(|| Mappings::shipped().expect("the shipped mappings load"));

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else { return };
    let command = input.get("command").unwrap_or(&input);
    let settings = input.get("settings").cloned().unwrap_or(Value::Null);
    let mappings = &*MAPPINGS;
    for id in mappings.ids().cloned().collect::<Vec<_>>() {
        if let Ok((used, payload)) = mappings.transform(&id.target, &id.resource, command, &settings) {
            // What goes to the target is JSON, made by a mapping of that resource.
            assert_eq!((used.target.as_str(), used.resource.as_str()), (id.target.as_str(), id.resource.as_str()));
            serde_json::from_str::<Value>(&payload).expect("a transformed payload is JSON");
        }
        if let Some(mapping) = mappings.get(&id) {
            let _ = mapping.apply(command, &settings);
        }
    }
});
