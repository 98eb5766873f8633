//! Dead letters seen through the transform layer: what the mapping that ran made of a command,
//! what the latest makes of it (`dlq replay --dry-run`), and a dead letter turned into a golden
//! case (`mapping capture`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use handoff_contract::Contract;
use handoff_mapping::{MappingId, Mappings};
use handoff_store::Command;
use serde_json::{Value, json};

/// The mappings a contract runs with: its `hub.mappings` directory, else the shipped ones.
pub fn mappings_of(contract: &Contract, config: &Path) -> anyhow::Result<Mappings> {
    Ok(match contract.mappings_dir(config) {
        Some(dir) => Mappings::load(&dir).with_context(|| format!("loading mappings from {}", dir.display()))?,
        None => Mappings::shipped()?,
    })
}

/// The mapping version a dead letter's last attempt ran with, if it went through a mapping.
pub async fn last_mapping(store: &impl handoff_store::Store, c: &Command) -> anyhow::Result<Option<String>> {
    let attempts = store.order_timeline(c.order_ref.clone()).await?.attempts;
    Ok(attempts.iter().rev().filter(|a| a.command_id == c.id).find_map(|a| a.mapping.clone()))
}

/// The contract and the mappings the hub runs with.
pub struct Transform {
    pub contract: Contract,
    pub mappings: Mappings,
    /// Where mapping files live (for `capture`): `hub.mappings`, or the repository's `mappings`.
    pub dir: PathBuf,
}

impl Transform {
    pub fn load(config: &Path) -> anyhow::Result<Transform> {
        let contract = Contract::load(config)?;
        let mappings = mappings_of(&contract, config)?;
        let dir = contract.mappings_dir(config).unwrap_or_else(|| PathBuf::from("mappings"));
        Ok(Transform { contract, mappings, dir })
    }

    /// The mapping a command goes through and the input it gets, if its target maps.
    fn input(&self, c: &Command) -> anyhow::Result<Option<(&'static str, &'static str, Value)>> {
        let Some(system) = self.contract.systems.get(&c.target) else { return Ok(None) };
        let connector = system.connector.as_str();
        let Some(resource) = handoff_mapping::resource_for(connector, c.kind.as_str()) else { return Ok(None) };
        let settings = handoff_connectors::mapping_settings(&c.target, system)?;
        let command: Value = serde_json::from_str(&c.payload).context("the command's payload is not JSON")?;
        Ok(Some((connector, resource, json!({"command": command, "settings": settings}))))
    }

    /// What replaying `c` would send now, against what the mapping that ran (`ran`, recorded
    /// with its last attempt) made of it.
    pub fn dry_run(&self, c: &Command, ran: Option<&str>) -> anyhow::Result<Vec<String>> {
        let head = format!("command {} {} to {} (order {})", c.id, c.kind, c.target, c.order_ref);
        let Some((connector, resource, input)) = self.input(c)? else {
            return Ok(vec![format!("{head}: sent as its canonical payload; no mapping applies")]);
        };
        let Some(latest) = self.mappings.latest(connector, resource) else {
            return Ok(vec![format!("{head}: no mapping {connector}/{resource}")]);
        };
        let now = latest.apply(&input["command"], &input["settings"]);
        let mut lines = Vec::new();
        let ran = ran.and_then(|id| id.parse::<MappingId>().ok()).and_then(|id| self.mappings.get(&id));
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
        match self.mappings.transform(connector, resource, &input["command"], &input["settings"]) {
            Ok(_) => lines.push(format!("  replayed now, {} passes the pre-flight check", latest.id)),
            Err(held) => lines.push(format!("  replayed now, it would be held again: {}: {}", held.field, held.reason)),
        }
        Ok(lines)
    }

    /// Writes the command as a golden case of the latest mapping; `expected` is what that
    /// mapping makes of it now (or null when it fails), for a person to correct.
    pub fn capture(&self, c: &Command) -> anyhow::Result<PathBuf> {
        let Some((connector, resource, input)) = self.input(c)? else {
            bail!("command {} goes to {} without a mapping: nothing to capture", c.id, c.target);
        };
        let Some(latest) = self.mappings.latest(connector, resource) else {
            bail!("no mapping {connector}/{resource}");
        };
        let expected = latest
            .apply(&input["command"], &input["settings"])
            .ok()
            .and_then(|out| serde_json::from_str::<Value>(&out).ok())
            .unwrap_or(Value::Null);
        let dir = self.dir.join(connector).join(resource).join(format!("v{}.cases", latest.id.version));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("captured-command-{}.json", c.id));
        let case = json!({"command": input["command"], "settings": input["settings"], "expected": expected});
        std::fs::write(&path, serde_json::to_string_pretty(&case)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}
