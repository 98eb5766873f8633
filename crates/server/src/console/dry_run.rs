//! What replaying a dead letter would send now, against what the mapping that ran made of it:
//! the dry-run diff `handoff dlq replay --dry-run` prints and the console shows before a replay.

use anyhow::Context as _;
use handoff_contract::Contract;
use handoff_mapping::{MappingId, Mappings};
use handoff_store::Command;
use serde_json::{Value, json};

/// The mapping a command goes through and the input it gets, if its target maps.
pub fn input(contract: &Contract, c: &Command) -> anyhow::Result<Option<(&'static str, &'static str, Value)>> {
    let Some(system) = contract.systems.get(&c.target) else { return Ok(None) };
    let connector = system.connector.as_str();
    let Some(resource) = handoff_mapping::resource_for(connector, c.kind.as_str()) else { return Ok(None) };
    let settings = handoff_connectors::mapping_settings(&c.target, system)?;
    let command: Value = serde_json::from_str(&c.payload).context("the command's payload is not JSON")?;
    Ok(Some((connector, resource, json!({"command": command, "settings": settings}))))
}

/// The dry run of replaying `c`, one line each: the mapping that ran (`ran`, recorded with its
/// last attempt) against the latest, the fields that differ, and whether the latest passes the
/// pre-flight check.
pub fn dry_run(
    contract: &Contract,
    mappings: &Mappings,
    c: &Command,
    ran: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let head = format!("command {} {} to {} (order {})", c.id, c.kind, c.target, c.order_ref);
    let Some((connector, resource, input)) = input(contract, c)? else {
        return Ok(vec![format!("{head}: sent as its canonical payload; no mapping applies")]);
    };
    let Some(latest) = mappings.latest(connector, resource) else {
        return Ok(vec![format!("{head}: no mapping {connector}/{resource}")]);
    };
    let now = latest.apply(&input["command"], &input["settings"]);
    let mut lines = Vec::new();
    let ran = ran.and_then(|id| id.parse::<MappingId>().ok()).and_then(|id| mappings.get(&id));
    match ran {
        Some(ran) if ran.id == latest.id => {
            lines.push(format!("{head}: ran {}, which is the latest: no difference", ran.id));
        }
        Some(ran) => {
            lines.push(format!("{head}: ran {}, latest {}", ran.id, latest.id));
            let before = ran.apply(&input["command"], &input["settings"]);
            match (before, &now) {
                (Ok(before), Ok(after)) => {
                    let (before, after): (Value, Value) =
                        (serde_json::from_str(&before)?, serde_json::from_str(after)?);
                    let diff = handoff_mapping::differences(&before, &after, 50);
                    if diff.is_empty() {
                        lines.push("  no difference in the target payload".into());
                    }
                    lines.extend(diff.into_iter().map(|d| format!("  {d}")));
                }
                (Err(e), _) => lines.push(format!("  {} fails: {e}", ran.id)),
                (_, Err(e)) => lines.push(format!("  {} fails: {e}", latest.id)),
            }
        }
        None => lines.push(format!("{head}: the version that ran is not recorded; latest {}", latest.id)),
    }
    match mappings.transform(connector, resource, &input["command"], &input["settings"]) {
        Ok(_) => lines.push(format!("  replayed now, {} passes the pre-flight check", latest.id)),
        Err(held) => lines.push(format!("  replayed now, it would be held again: {}: {}", held.field, held.reason)),
    }
    Ok(lines)
}
