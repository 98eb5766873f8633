//! `handoff contract check|docs`: the contract checked as a document, and rendered as one.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use handoff_contract::check::{self, Tally};
use handoff_contract::{Contract, docs};

#[derive(Subcommand)]
pub enum ContractCommand {
    /// Check the contract: every flow has a proof, a deadline, a retry budget and a dead-letter
    /// rule; every stage one owner; events come from their stage's owner. Exits 1 on an error,
    /// 2 when the contract does not load.
    Check {
        #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
        config: PathBuf,
    },
    /// Render the contract for people: systems, flows, ownership by stage, deadlines.
    Docs {
        #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = DocFormat::Markdown)]
        format: DocFormat,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DocFormat {
    Markdown,
    Html,
}

/// Exit code when the contract does not load at all, as distinct from a check that fails.
const REFUSED: i32 = 2;

/// Runs the command; the result is the process exit code.
pub fn run(command: ContractCommand) -> anyhow::Result<i32> {
    match command {
        ContractCommand::Check { config } => {
            let Some(contract) = load(&config) else { return Ok(REFUSED) };
            let findings = check::check(&contract);
            let mut out = std::io::stdout().lock();
            for finding in &findings {
                writeln!(out, "{finding}")?;
            }
            let tally = Tally::of(&findings);
            writeln!(out, "{}: {tally}", config.display())?;
            out.flush()?;
            Ok(if tally.errors > 0 { 1 } else { 0 })
        }
        ContractCommand::Docs { config, format, output } => {
            let Some(contract) = load(&config) else { return Ok(REFUSED) };
            let name = config.file_name().map_or_else(|| config.display().to_string(), |n| n.display().to_string());
            let document = docs::document(&contract, &format!("Handoff contract: {name}"));
            let format = match format {
                DocFormat::Markdown => docs::Format::Markdown,
                DocFormat::Html => docs::Format::Html,
            };
            let text = docs::render(&document, format)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes())?;
                    out.flush()?;
                }
            }
            Ok(0)
        }
    }
}

/// The contract, or `None` after printing why it was refused (file: key: reason).
fn load(path: &Path) -> Option<Contract> {
    match Contract::load(path) {
        Ok(contract) => Some(contract),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}
