//! What replaying a dead letter would send now, against what the mapping that ran made of it:
//! the dry-run diff `handoff dlq replay --dry-run` prints, the console shows before a replay
//! and the API answers; and the mapping a replay is made with (as it ran, or the latest), one
//! implementation for the three.

use anyhow::Context as _;
use handoff_contract::Contract;
use handoff_mapping::{MappingId, Mappings};
use handoff_model::CommandState;
use handoff_store::{Command, CommandFilter, Replay, Store};
use jiff::Timestamp;
use serde_json::{Value, json};

/// Which mapping version a dead letter that went through a mapping is replayed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMapping {
    /// The version its last attempt ran with.
    AsRan,
    /// The newest version the hub runs.
    Latest,
}

impl ReplayMapping {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplayMapping::AsRan => "as-ran",
            ReplayMapping::Latest => "latest",
        }
    }
}

/// Dead letter `id`, if it is one now: found by the dead letters' index, newest first from
/// just above it.
pub async fn dead_letter<S: Store>(store: &S, id: i64) -> handoff_store::Result<Option<Command>> {
    let above = handoff_store::search::Cursor { micros: 0, tie: id.saturating_add(1).to_string() };
    let filter = CommandFilter {
        state: Some(CommandState::DeadLettered),
        cursor: Some(above.encode()),
        limit: 1,
        ..CommandFilter::default()
    };
    Ok(store.search_commands(filter).await?.rows.into_iter().find(|c| c.id == id))
}

/// The mapping version a command's last attempt ran with, if it went through a mapping.
pub async fn ran_with<S: Store>(store: &S, c: &Command) -> handoff_store::Result<Option<String>> {
    let attempts = store.order_timeline(c.order_ref.clone()).await?.attempts;
    Ok(attempts.iter().rev().filter(|a| a.command_id == c.id).find_map(|a| a.mapping.clone()))
}

/// Makes dead letter `c`'s next payload with `mapping`: pinned to the version its last attempt
/// ran with, or unpinned so the latest makes it; audited with `actor`. A command that went
/// through no mapping is left as it is. The version that ran, if any.
pub async fn pin<S: Store>(
    store: &S,
    c: &Command,
    mapping: ReplayMapping,
    actor: String,
    now: Timestamp,
) -> handoff_store::Result<Option<String>> {
    let Some(ran) = ran_with(store, c).await? else { return Ok(None) };
    let mut payload: Value = serde_json::from_str(&c.payload)
        .map_err(|e| handoff_store::StoreError::Corrupt(format!("command {}'s payload: {e}", c.id)))?;
    let Some(object) = payload.as_object_mut() else {
        return Err(handoff_store::StoreError::Corrupt(format!("command {}'s payload is not an object", c.id)));
    };
    match mapping {
        ReplayMapping::AsRan => object.insert(handoff_mapping::PIN.to_owned(), Value::String(ran.clone())),
        ReplayMapping::Latest => object.remove(handoff_mapping::PIN),
    };
    store.set_dead_letter_payload(c.id, payload.to_string(), actor, now).await?;
    Ok(Some(ran))
}

/// Replays dead letter `c` with `mapping` (see [`pin`]): back in the queue with a fresh retry
/// budget, audited with `actor`. `false` when it was no longer a dead letter.
pub async fn replay<S: Store>(
    store: &S,
    c: &Command,
    mapping: ReplayMapping,
    actor: String,
    now: Timestamp,
) -> handoff_store::Result<bool> {
    pin(store, c, mapping, actor.clone(), now).await?;
    Ok(store.replay(Replay::One(c.id), actor, now).await? > 0)
}

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
