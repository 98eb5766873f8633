//! `handoff reconcile`: every existing exception from plain exports (see docs/reconcile.md);
//! `handoff reconcile generate`: realistic exports with planted exceptions and ground truth.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use handoff_contract::Contract;
use handoff_model::Pattern;
use handoff_recon::{Columns, ColumnsFile, Input, Options, Preset, cluster, generate, html, report, truth};
use handoff_rules::Deadlines;
use indicatif::{ProgressBar, ProgressStyle};
use jiff::{SignedDuration, Timestamp};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReconcileArgs {
    #[command(subcommand)]
    command: Option<ReconcileCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum ReconcileCommand {
    /// Write realistic exports of a Shopify + Amazon + Stripe + NetSuite stack with every
    /// pattern planted, and the ground truth (ground_truth.jsonl) to score a reconcile with.
    Generate {
        /// Orders across the storefront and the marketplace.
        #[arg(long, default_value_t = 10_000)]
        orders: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// Compress every export with gzip.
        #[arg(long)]
        gzip: bool,
        /// Which header Stripe's payments export has: `current` (`Created date (UTC)`) or
        /// `legacy` (`Created (UTC)`).
        #[arg(long, value_enum, default_value = "current")]
        stripe_headers: StripeHeaders,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StripeHeaders {
    Current,
    Legacy,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Jsonl,
    Csv,
    Html,
}

#[derive(Args)]
struct RunArgs {
    /// The storefront's order export (Shopify's order CSV by default).
    #[arg(long)]
    storefront: Option<PathBuf>,
    /// The marketplace's order report (Amazon's All Orders report by default).
    #[arg(long)]
    marketplace: Option<PathBuf>,
    /// The payment processor's export (Stripe's payments CSV by default).
    #[arg(long)]
    payments: Option<PathBuf>,
    /// The ERP's sales orders (a NetSuite saved search CSV by default).
    #[arg(long)]
    erp: Option<PathBuf>,
    /// The ERP's fulfillments (a NetSuite item fulfillment saved search by default).
    #[arg(long)]
    erp_fulfillments: Option<PathBuf>,
    /// Another preset for an input: `erp=odoo`, `storefront=shopify` (repeatable).
    #[arg(long = "preset", value_name = "INPUT=PRESET")]
    presets: Vec<String>,
    /// Column names and formats per input (TOML: `[erp]`, `[payments]` ...).
    #[arg(long)]
    columns: Option<PathBuf>,
    /// The contract: its flow deadlines time the rules, its `[reconcile.<input>]` tables name
    /// columns. Only needed to reuse the live hub's settings.
    #[arg(long)]
    config: Option<PathBuf>,
    /// How long each promise may take (the exports' lag): `48h` for every rule, or per rule,
    /// `missing_order=48h,status_void=72h` (units s, m, h, d; repeatable).
    #[arg(long = "deadline", value_name = "[RULE=]DURATION")]
    deadlines: Vec<String>,
    /// The time zone of dates without an offset: `America/New_York` for every input, or
    /// `erp=America/New_York` for one (repeatable). A column whose name says UTC stays UTC.
    #[arg(long = "timezone", value_name = "[INPUT=]ZONE")]
    timezones: Vec<String>,
    /// Print which column of each input was chosen for what, and how its values are read,
    /// with why; then stop without reconciling.
    #[arg(long)]
    explain: bool,
    /// Judge the exports as of this time (RFC 3339); now by default.
    #[arg(long)]
    as_of: Option<Timestamp>,
    /// The report's format; `text` is the terminal summary.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the report here; the summary still goes to the terminal.
    #[arg(long)]
    output: Option<PathBuf>,
    /// A ground truth (from `reconcile generate`) to score the findings against.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Threads that evaluate ledgers; all cores by default.
    #[arg(long)]
    threads: Option<usize>,
    /// Raise every finding as an exception in the hub's queue (in --data-dir), once each.
    #[arg(long)]
    import: bool,
    #[command(flatten)]
    data: crate::DataDir,
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    match args.command {
        Some(ReconcileCommand::Generate { orders, seed, out, gzip, stripe_headers }) => {
            let mut spec = generate::Spec::new(orders, seed, out);
            spec.gzip = gzip;
            spec.stripe_legacy = matches!(stripe_headers, StripeHeaders::Legacy);
            let m = generate::generate(&spec).context("writing the exports")?;
            println!("{}", serde_json::to_string_pretty(&m)?);
            let f = &m.files;
            println!(
                "reconcile with: handoff reconcile --storefront {} --marketplace {} --payments {} --erp {} --erp-fulfillments {} --as-of {} --timezone {} --deadline {} --truth {}",
                f.storefront.display(),
                f.marketplace.display(),
                f.payments.display(),
                f.erp.display(),
                f.erp_fulfillments.display(),
                m.as_of,
                m.timezone,
                m.deadline,
                f.ground_truth.display()
            );
            Ok(())
        }
        None => reconcile(args.run),
    }
}

fn reconcile(a: RunArgs) -> anyhow::Result<()> {
    let mut overrides: ColumnsFile = ColumnsFile::default();
    let mut deadline = Deadlines::default();
    if let Some(path) = &a.config {
        let contract = Contract::load(path)?;
        deadline = handoff_engine::rules::deadlines(&contract);
        for (input, table) in contract.reconcile {
            let columns: Columns = toml::Value::Table(table)
                .try_into()
                .with_context(|| format!("[reconcile.{input}] in {}", path.display()))?;
            overrides.0.insert(input, columns);
        }
    }
    for d in &a.deadlines {
        set_deadlines(&mut deadline, d)?;
    }
    if let Some(path) = &a.columns {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: ColumnsFile = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        for (input, columns) in file.0 {
            let merged = overrides.0.remove(&input).unwrap_or_default().with(columns);
            overrides.0.insert(input, merged);
        }
    }
    for p in &a.presets {
        let Some((input, name)) = p.split_once('=') else { bail!("--preset wants INPUT=PRESET, got {p:?}") };
        let Some(preset) = Preset::parse(name) else {
            bail!("unknown preset {name:?}: shopify, amazon, stripe, netsuite, netsuite-fulfillments, odoo")
        };
        overrides.0.entry(input.to_owned()).or_default().preset = Some(preset);
    }
    let given = [
        ("storefront", &a.storefront),
        ("marketplace", &a.marketplace),
        ("payments", &a.payments),
        ("erp", &a.erp),
        ("erp-fulfillments", &a.erp_fulfillments),
    ];
    let known = |name: &str| given.iter().any(|(n, _)| *n == name);
    let mut every_zone = None;
    for z in &a.timezones {
        match z.split_once('=') {
            Some((input, zone)) => {
                if !known(input) {
                    bail!(
                        "--timezone for an unknown input {input:?}: storefront, marketplace, payments, erp, erp-fulfillments"
                    );
                }
                let columns = overrides.0.entry(input.to_owned()).or_default();
                columns.timezone = columns.timezone.take().or(Some(zone.to_owned()));
            }
            None => every_zone = Some(z.clone()),
        }
    }
    for name in overrides.0.keys() {
        if !known(name) {
            bail!("columns for an unknown input {name:?}: storefront, marketplace, payments, erp, erp-fulfillments");
        }
    }
    let mut inputs = Vec::new();
    for (name, path) in given {
        let Some(path) = path else { continue };
        let mut columns = overrides.0.remove(name).unwrap_or_default();
        if columns.timezone.is_none() {
            columns.timezone = every_zone.clone();
        }
        inputs.push(Input::new(name, path.clone(), None, columns));
    }
    if inputs.is_empty() {
        bail!("give at least one export: --storefront, --marketplace, --payments, --erp, --erp-fulfillments");
    }
    if a.explain {
        for layout in handoff_recon::layouts(&inputs)? {
            print!("{}", layout.text());
        }
        print!("{}", deadlines_text(&deadline));
        return Ok(());
    }
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let options = Options { deadlines: deadline, as_of: a.as_of.unwrap_or_else(Timestamp::now), threads };

    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} rows read ({per_sec}) {elapsed}")
            .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let outcome = handoff_recon::reconcile(&inputs, &options, &|rows| bar.set_position(rows))?;
    bar.finish_and_clear();

    let summary = cluster::summarise(&outcome.findings);
    let score = match &a.truth {
        Some(path) => {
            let t = truth::load(path).with_context(|| format!("reading {}", path.display()))?;
            Some(truth::score(&t, &outcome.findings, &outcome.links))
        }
        None => None,
    };
    let text = report::text(&outcome, &summary, score.as_ref());
    let write = |out: &mut dyn Write| -> anyhow::Result<()> {
        match a.format {
            Format::Text => out.write_all(text.as_bytes())?,
            Format::Json => report::json(&outcome, &summary, score.as_ref(), out)?,
            Format::Jsonl => report::jsonl(&outcome, out)?,
            Format::Csv => report::csv(&outcome, out)?,
            Format::Html => out.write_all(html::render(&outcome, &summary, score.as_ref())?.as_bytes())?,
        }
        out.flush()?;
        Ok(())
    };
    match (&a.output, a.format) {
        (Some(path), _) => {
            let mut file = BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?);
            write(&mut file)?;
            print!("{text}");
            println!("report written to {}", path.display());
        }
        (None, Format::Text) => print!("{text}"),
        (None, _) => {
            eprint!("{text}");
            write(&mut std::io::stdout().lock())?;
        }
    }
    if a.import {
        let dir = a.data.get()?;
        let (opened, already) = import(&dir, &outcome.findings)?;
        println!("imported into {}: {opened} exceptions opened, {already} already there", dir.display());
    }
    Ok(())
}

/// `48h` for every rule, or `missing_order=48h,status_void=72h`.
fn set_deadlines(d: &mut Deadlines, text: &str) -> anyhow::Result<()> {
    if !text.contains('=') {
        let t = duration(text)?;
        *d = Deadlines { erp_order: t, fulfillment: t, cancellation: t, payment: t };
        return Ok(());
    }
    for part in text.split(',') {
        let Some((rule, value)) = part.split_once('=') else { bail!("--deadline wants RULE=DURATION, got {part:?}") };
        let t = duration(value)?;
        match Pattern::parse(rule.trim()) {
            // One deadline times both: an ERP order (and its contents) is due at the same time.
            Some(Pattern::MissingOrder | Pattern::TransformMismatch) => d.erp_order = t,
            Some(Pattern::StatusVoid) => d.fulfillment = t,
            Some(Pattern::RollbackGap) => d.cancellation = t,
            Some(Pattern::OrphanedPayment) => d.payment = t,
            Some(p @ (Pattern::DuplicateDraft | Pattern::DeadDelivery)) => {
                bail!("{} has no deadline: it fires once the records exist", p.name())
            }
            None => bail!(
                "--deadline: unknown rule {rule:?}: missing_order, status_void, transform_mismatch, rollback_gap, orphaned_payment"
            ),
        }
    }
    Ok(())
}

/// `90s`, `30m`, `48h`, `2d`, `1h30m`.
fn duration(text: &str) -> anyhow::Result<SignedDuration> {
    let text = text.trim();
    let parsed = match text.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
        Some(days) => Ok(SignedDuration::from_hours(days * 24)),
        None => text.parse::<SignedDuration>(),
    };
    match parsed {
        Ok(t) if t.is_positive() => Ok(t),
        _ => bail!("--deadline: {text:?} is not a duration like 90s, 30m, 48h or 2d"),
    }
}

fn deadlines_text(d: &Deadlines) -> String {
    format!(
        "deadlines: missing_order and transform_mismatch {:#}, status_void {:#}, rollback_gap {:#}, orphaned_payment {:#}\n",
        d.erp_order, d.fulfillment, d.cancellation, d.payment
    )
}

/// Raises each finding in the live queue under the identity the hub's rules give it, so that
/// importing twice changes nothing and the hub resolves it when its cause goes.
fn import(dir: &std::path::Path, findings: &[handoff_recon::classify::Exception]) -> anyhow::Result<(usize, usize)> {
    use handoff_store::{NewFinding, Raised, Store};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = handoff_store::sqlite::SqliteStore::open(dir, Default::default())?;
        let now = Timestamp::now();
        let (mut opened, mut already) = (0, 0);
        for x in findings {
            let finding = NewFinding {
                pattern: x.pattern,
                order_ref: x.ledger_key.clone(),
                subject: x.subject.clone(),
                flow: None,
                field: x.field.map(str::to_owned),
                channel: x.channel.clone(),
                amount: x.amount.map(|m| m.amount.to_string()),
                currency: x.amount.map(|m| m.currency.to_string()),
                detail: format!("from reconcile: {}", x.evidence),
                action: serde_json::to_string(&x.action_detail)?,
                evidence: serde_json::to_string(x)?,
            };
            match store.raise_finding(finding, now).await? {
                Raised::AlreadyOpen(_) => already += 1,
                Raised::Opened(_) | Raised::Reopened(_) => opened += 1,
            }
        }
        Ok((opened, already))
    })
}
