//! Dead letters seen through the transform layer: what the mapping that ran made of a command,
//! what the latest makes of it (`dlq replay --dry-run`), and a dead letter turned into a golden
//! case (`mapping capture`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use handoff_contract::Contract;
use handoff_mapping::Mappings;
use handoff_store::Command;
use serde_json::{Value, json};

/// The mappings a contract runs with: its `hub.mappings` directory, else the shipped ones.
pub fn mappings_of(contract: &Contract, config: &Path) -> anyhow::Result<Mappings> {
    Ok(match contract.mappings_dir(config) {
        Some(dir) => Mappings::load(&dir).with_context(|| format!("loading mappings from {}", dir.display()))?,
        None => Mappings::shipped()?,
    })
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

    /// What replaying `c` would send now, against what the mapping that ran (`ran`, recorded
    /// with its last attempt) made of it.
    pub fn dry_run(&self, c: &Command, ran: Option<&str>) -> anyhow::Result<Vec<String>> {
        handoff_server::console::dry_run::dry_run(&self.contract, &self.mappings, c, ran)
    }

    /// Writes the command as a golden case of the latest mapping; `expected` is what that
    /// mapping makes of it now (or null when it fails), for a person to correct.
    pub fn capture(&self, c: &Command) -> anyhow::Result<PathBuf> {
        let Some((connector, resource, input)) = handoff_server::console::dry_run::input(&self.contract, c)? else {
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
