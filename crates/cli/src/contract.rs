//! `handoff contract check|docs`: the contract checked as a document, and rendered as one.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use handoff_contract::check::{self, Finding, Tally};
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
            let mut findings = check::check(&contract);
            findings.extend(connector_findings(&contract));
            findings.extend(mapping_findings(&contract, &config));
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
            let mut document = docs::document(&contract, &format!("Handoff contract: {name}"));
            document.sections.extend(mapping_section(&contract, &config));
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

/// Each system's connector built as `serve` builds it (its target and its poller), so a
/// system `serve` would refuse (a NetSuite account without its token, say) fails the check
/// too, naming the key. Nothing is sent: building a connector makes no request.
fn connector_findings(contract: &Contract) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (name, system) in &contract.systems {
        let built = handoff_connectors::target(name, system).and_then(|_| handoff_connectors::poller(name, system));
        match built {
            Ok(_) => findings.push(Finding::ok(
                format!("systems.{name}"),
                format!("the {} connector is configured", system.connector.as_str()),
            )),
            Err(e) => findings.push(Finding::error(e.key, e.message)),
        }
    }
    findings
}

/// The mappings the contract's flows go through (the doctor's check of them), read from the
/// contract's `hub.mappings` directory or the shipped ones.
fn mapping_findings(contract: &Contract, config: &Path) -> Vec<Finding> {
    match crate::held::mappings_of(contract, config) {
        Ok(mappings) => handoff_server::doctor::mapping_findings(contract, &mappings),
        Err(e) => vec![Finding::error("hub.mappings", format!("{e:#}"))],
    }
}

/// The mappings section of the contract document: per mapping, its version, the flows that
/// use it, the target's required fields, and the field-by-field table.
fn mapping_section(contract: &Contract, config: &Path) -> Option<docs::Section> {
    let mapped = handoff_server::doctor::mapped_flows(contract);
    if mapped.is_empty() {
        return None;
    }
    let mappings = crate::held::mappings_of(contract, config).ok()?;
    let mut blocks = vec![docs::Block::Paragraph(
        "Commands to these targets are mapped from the canonical order by versioned jq mappings (money \
         arithmetic in Rust), checked against the target's schema snapshot before they are sent; a payload \
         the target would refuse is held as a Transform Mismatch."
            .into(),
    )];
    for ((connector, resource), flows) in mapped {
        let Some(mapping) = mappings.latest(connector, resource) else { continue };
        blocks.push(docs::Block::Heading(mapping.id.to_string()));
        let cases = mappings.case_counts().into_iter().find(|(id, _)| *id == mapping.id).map_or(0, |(_, n)| n);
        let mut facts = vec![("Flows".to_owned(), flows.join(", ")), ("Golden cases".to_owned(), cases.to_string())];
        if let Some(schema) = mappings.schema(connector, resource) {
            let required: Vec<&str> =
                schema.fields.iter().filter(|(_, f)| f.must_send()).map(|(n, _)| n.as_str()).collect();
            facts.push((format!("{} requires", schema.record), required.join(", ")));
        }
        blocks.push(docs::Block::Facts(facts));
        if let Some(rows) = mappings.field_table(connector, resource) {
            let rows = rows
                .into_iter()
                .map(|r| {
                    let from =
                        if r.sources.is_empty() { "(set by the mapping)".to_owned() } else { r.sources.join(", ") };
                    vec![r.target, from, r.example]
                })
                .collect();
            let header = vec!["target field".into(), "from".into(), "example".into()];
            blocks.push(docs::Block::Table(docs::Table { header, rows }));
        }
    }
    Some(docs::Section { id: "mappings".into(), title: "Mappings".into(), blocks })
}
