//! `handoff doctor`: the ten questions of the handoff checklist (`handoff_server::doctor`, which
//! the API and the console answer too) over the contract and a hub's database, read only.

use std::path::PathBuf;

use handoff_contract::Contract;
use handoff_server::doctor::{self, Checklist, Measured};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// The contract.
    #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
    config: PathBuf,
    #[command(flatten)]
    data: crate::DataDir,
    /// How far back measured traffic counts, in hours.
    #[arg(long, default_value_t = 24 * 7)]
    window_hours: i64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub config: String,
    pub data_dir: String,
    #[serde(flatten)]
    pub checklist: Checklist,
}

pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let contract = Contract::load(&args.config)?;
    let at = args.data.store(&args.config)?;
    let since = Timestamp::now() - SignedDuration::from_hours(args.window_hours.max(0));
    // Read only: the doctor inspects a hub's database and never migrates or writes it.
    let measured = if let Some(store) = crate::store::Reader::open(&at).await? {
        let stats = store.flow_stats(since).await?;
        let exceptions = store.exceptions(None, doctor::MAX_EXCEPTIONS).await?;
        Some(Measured::since(stats, exceptions, since))
    } else {
        None
    };
    let mappings = crate::held::mappings_of(&contract, &args.config).map_err(|e| format!("{e:#}"));
    let report = Report {
        config: args.config.display().to_string(),
        data_dir: at.display(),
        checklist: doctor::checklist(&contract, mappings.as_ref().map_err(Clone::clone), measured, since),
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => print_table(&report),
    }
    Ok(())
}

fn print_table(r: &Report) {
    let c = &r.checklist;
    let measured = if c.measured {
        format!("{} commands, {} exceptions", c.commands, c.exceptions)
    } else {
        format!("no store in {}: the contract alone answers", r.data_dir)
    };
    println!("handoff doctor: {} ({measured}, since {})", r.config, c.since.strftime("%Y-%m-%d %H:%M"));
    for q in &c.questions {
        println!("\n[{:<4}] {:>2}. {}", q.verdict.as_str(), q.number, q.question);
        println!("        {}", q.summary);
        for e in &q.evidence {
            println!("          - {e}");
        }
    }
    let tally: Vec<String> = c.verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    println!("\n{}", tally.join(", "));
}
