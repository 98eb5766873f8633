//! `handoff contract check|docs`: the contract checked as a document, and rendered as one.

use std::collections::BTreeMap;
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

/// Each (target connector, resource) a flow's commands are mapped to, with those flows.
fn mapped_flows(contract: &Contract) -> BTreeMap<(&'static str, &'static str), Vec<String>> {
    let mut mapped: BTreeMap<_, Vec<String>> = BTreeMap::new();
    for (name, flow) in &contract.flows {
        let Some(target) = contract.systems.get(&flow.to) else { continue };
        let connector = target.connector.as_str();
        for kind in flow.events.iter().filter_map(|k| handoff_contract::command_for(*k)) {
            if let Some(resource) = handoff_mapping::resource_for(connector, kind.as_str()) {
                let flows = mapped.entry((connector, resource)).or_default();
                if !flows.contains(name) {
                    flows.push(name.clone());
                }
            }
        }
    }
    mapped
}

/// The mappings the contract's flows go through: each exists, passes its golden cases, and
/// still produces every field the target's refreshed schema snapshot newly requires.
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

pub(crate) fn mapping_findings(contract: &Contract, config: &Path) -> Vec<Finding> {
    let mappings = match crate::held::mappings_of(contract, config) {
        Ok(m) => m,
        Err(e) => return vec![Finding::error("hub.mappings", format!("{e:#}"))],
    };
    let mut findings = Vec::new();
    // Every golden case runs once, whatever the number of flows sharing a mapping.
    let results = mappings.test();
    for ((connector, resource), flows) in mapped_flows(contract) {
        let outputs = mappings.case_outputs(connector, resource);
        for name in flows {
            let at = format!("flows.{name}.to");
            let Some(mapping) = mappings.latest(connector, resource) else {
                findings.push(Finding::error(at, format!("no mapping {connector}/{resource} for its commands")));
                continue;
            };
            let results: Vec<_> = results.iter().filter(|r| r.mapping == mapping.id).collect();
            let failed: Vec<_> =
                results.iter().filter_map(|r| r.outcome.as_ref().err().map(|e| (&r.case, e))).collect();
            if results.is_empty() {
                findings.push(Finding::warning(at.clone(), format!("{} has no golden cases", mapping.id)));
            } else if let Some((case, why)) = failed.first() {
                findings.push(Finding::error(
                    at.clone(),
                    format!("{} fails {} of {} golden cases ({case}: {why})", mapping.id, failed.len(), results.len()),
                ));
            } else {
                findings
                    .push(Finding::ok(at.clone(), format!("{} passes its {} golden cases", mapping.id, results.len())));
            }
            let Some(diff) = mappings.schema_diff(connector, resource) else { continue };
            let lookups = handoff_mapping::preflight::lookups_for(connector, resource);
            for field in &diff.newly_required {
                let missing: Vec<&str> = outputs
                    .iter()
                    .filter(|(_, out)| {
                        out.as_ref().map_or(true, |v| !handoff_mapping::preflight::provides(v, field, lookups))
                    })
                    .map(|(case, _)| case.as_str())
                    .collect();
                let message = format!("the refreshed {resource} snapshot newly requires {field}");
                if missing.is_empty() && !outputs.is_empty() {
                    findings.push(Finding::ok(at.clone(), format!("{message}; {} produces it", mapping.id)));
                } else {
                    findings.push(Finding::error(
                        at.clone(),
                        format!("{message}; {} does not produce it (golden cases: {})", mapping.id, missing.join(", ")),
                    ));
                }
            }
        }
    }
    findings
}

/// The mappings section of the contract document: per mapping, its version, the flows that
/// use it, the target's required fields, and the field-by-field table.
fn mapping_section(contract: &Contract, config: &Path) -> Option<docs::Section> {
    let mapped = mapped_flows(contract);
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
