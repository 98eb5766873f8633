//! `handoff mapping`: the golden cases of the mappings, and running one mapping by hand.

use std::path::{Path, PathBuf};

use anyhow::Context;
use handoff_mapping::drift::{Baseline, SourceKey, TargetSchema};
use handoff_mapping::{MappingId, Mappings};

#[derive(clap::Subcommand)]
pub enum MappingCommand {
    /// Run every mapping's golden cases; exits 1 when one fails.
    Test {
        /// The mappings directory (`<target>/<resource>/v<N>.jq`, cases in `v<N>.cases/`).
        #[arg(long, default_value = "mappings")]
        dir: PathBuf,
    },
    /// Learn the shape baseline of a vendor's payloads (the drift watch compares incoming
    /// payloads with it): writes `<dir>/<vendor>/<resource>/shapes/<version>.json`.
    Learn {
        #[arg(long)]
        vendor: String,
        #[arg(long)]
        resource: String,
        /// The vendor's API version, as its webhooks announce it (e.g. 2026-07).
        #[arg(long)]
        version: String,
        /// Sample payloads; a REST response's wrapper (`{"order": {...}}`) is unwrapped.
        #[arg(required = true)]
        samples: Vec<PathBuf>,
        #[arg(long, default_value = "mappings")]
        dir: PathBuf,
    },
    /// Refresh a target's schema snapshot from its own metadata (NetSuite's metadata catalog,
    /// Odoo's `fields_get` of `sale.order` and `sale.order.line`):
    /// the current snapshot is kept as `schema.previous.json`, and `contract check` reports
    /// what the refresh made newly required.
    Refresh {
        /// The target system in the contract.
        #[arg(long)]
        system: String,
        #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
        config: PathBuf,
    },
    /// Turn a dead-lettered or held command into a golden case of its mapping.
    Capture {
        /// The dead letter's command id (see `dlq list`).
        id: i64,
        #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
        config: PathBuf,
        #[command(flatten)]
        data: crate::DataDir,
    },
    /// Map one command payload (`{"command": ..., "settings": ...}`) and print the target payload.
    Run {
        /// e.g. netsuite/sales_order@1
        id: String,
        /// A JSON file with `command` and `settings`.
        input: PathBuf,
        #[arg(long, default_value = "mappings")]
        dir: PathBuf,
    },
}

pub async fn run(command: MappingCommand) -> anyhow::Result<()> {
    match command {
        MappingCommand::Refresh { system, config } => refresh(&system, &config).await,
        MappingCommand::Capture { id, config, data } => {
            crate::inspect::mapping_capture(&data.store(&config)?, id, &config).await
        }
        MappingCommand::Test { dir } => test(&dir),
        MappingCommand::Learn { vendor, resource, version, samples, dir } => {
            let source = SourceKey::new(vendor, resource.clone(), version);
            let mut baseline = Baseline::new(source);
            for file in &samples {
                let mut sample: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
                )
                .with_context(|| format!("{} is not JSON", file.display()))?;
                if let Some(inner) = sample.get(&resource).filter(|v| v.is_object()) {
                    sample = inner.clone();
                }
                baseline.learn(&sample);
            }
            let path = baseline.snapshot_path(&dir)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            baseline.save(&path)?;
            println!("{}: {} paths from {} samples", path.display(), baseline.paths.len(), samples.len());
            Ok(())
        }
        MappingCommand::Run { id, input, dir } => {
            let mappings = Mappings::load(&dir)?;
            let id: MappingId = id.parse()?;
            let mapping = mappings.get(&id).with_context(|| format!("no mapping {id} in {}", dir.display()))?;
            let input: serde_json::Value = serde_json::from_slice(
                &std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?,
            )?;
            let out = mapping.apply(&input["command"], &input["settings"])?;
            println!("{out}");
            Ok(())
        }
    }
}

fn test(dir: &Path) -> anyhow::Result<()> {
    let mappings = Mappings::load(dir)?;
    let results = mappings.test();
    let mut failed = 0;
    for r in &results {
        match &r.outcome {
            Ok(()) => println!("ok    {} {}", r.mapping, r.case),
            Err(why) => {
                failed += 1;
                println!("FAIL  {} {}: {why}", r.mapping, r.case);
            }
        }
    }
    for (id, cases) in mappings.case_counts() {
        if cases == 0 {
            println!("none  {id}: no golden cases");
        }
    }
    println!("{} cases, {failed} failed", results.len());
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Fetches the target's record metadata and rotates the snapshot files.
async fn refresh(name: &str, config: &Path) -> anyhow::Result<()> {
    let transform = crate::held::Transform::load(config)?;
    let system = transform.contract.systems.get(name).with_context(|| format!("no system {name:?} in the contract"))?;
    let (connector, resource, fresh) = match system.connector {
        handoff_contract::ConnectorKind::Netsuite => {
            let record = "salesOrder";
            let settings = handoff_connectors::netsuite::Settings::from_contract(name, system)?;
            let target =
                handoff_connectors::netsuite::NetSuiteTarget::new(settings, std::sync::Arc::new(transform.mappings))?;
            let metadata = target.metadata(record).await?;
            ("netsuite", "sales_order", TargetSchema::from_netsuite(record, &metadata)?)
        }
        handoff_contract::ConnectorKind::Odoo => {
            let odoo = handoff_connectors::odoo::client(name, system)?;
            ("odoo", "sale_order", odoo.sale_order_schema().await?)
        }
        other => anyhow::bail!(
            "refresh reads NetSuite's metadata catalog or Odoo's fields_get; {name} is {}",
            other.as_str()
        ),
    };
    let dir = transform.dir.join(connector).join(resource);
    std::fs::create_dir_all(&dir)?;
    let current = dir.join("schema.json");
    if current.is_file() {
        let old: TargetSchema = serde_json::from_slice(&std::fs::read(&current)?)?;
        let diff = TargetSchema::diff(&old, &fresh);
        std::fs::rename(&current, dir.join("schema.previous.json"))?;
        let list = |v: &[String]| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
        println!("newly required: {}; removed: {}", list(&diff.newly_required), list(&diff.removed));
    }
    std::fs::write(&current, serde_json::to_string_pretty(&fresh)? + "\n")?;
    let must = fresh.fields.values().filter(|f| f.must_send()).count();
    let filled = fresh.fields.values().filter(|f| f.required && !f.must_send()).count();
    println!(
        "{}: {} fields, {must} required of the payload ({filled} more required but filled by {connector})",
        current.display(),
        fresh.fields.len()
    );
    Ok(())
}
