//! `handoff mapping`: the golden cases of the mappings, and running one mapping by hand.

use std::path::{Path, PathBuf};

use anyhow::Context;
use handoff_mapping::{MappingId, Mappings};

#[derive(clap::Subcommand)]
pub enum MappingCommand {
    /// Run every mapping's golden cases; exits 1 when one fails.
    Test {
        /// The mappings directory (`<target>/<resource>/v<N>.jq`, cases in `v<N>.cases/`).
        #[arg(long, default_value = "mappings")]
        dir: PathBuf,
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

pub fn run(command: MappingCommand) -> anyhow::Result<()> {
    match command {
        MappingCommand::Test { dir } => test(&dir),
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
