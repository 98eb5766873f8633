//! `handoff reconcile`: from plain exports of each system, every existing exception, classified
//! into the failure patterns by the live engine's own rules, clustered, with what to do.
//!
//! The pipeline streams each input once: `input` opens it (gzip, CSV/TSV/JSONL), `infer`
//! decides which column is which (from the header against the `presets`' known names, or the
//! merchant's columns) and how its values are written (`values`: dates, amounts, yes/no),
//! `rows` turns rows into compact records, one reader thread per input; `join` keeps one compact entry per order reference and ties loose payments and
//! ERP records to orders by fuzzy keys; `classify` builds each order's rules `Ledger` and calls
//! `handoff_rules::evaluate`; `cluster` and `report` summarise. `generate` writes realistic
//! exports with planted exceptions and their ground truth, which `truth` scores a run against.

mod arena;
pub mod classify;
pub mod cluster;
pub mod generate;
pub mod html;
pub mod infer;
pub mod input;
pub mod join;
pub mod presets;
mod references;
pub mod report;
pub mod rows;
pub mod truth;
pub mod values;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use handoff_rules::Deadlines;
use jiff::Timestamp;

pub use classify::Exception;
pub use infer::Layout;
pub use input::{BadRow, BadRows, Format};
pub use join::{FuzzyLink, JoinStats};
pub use presets::{Columns, ColumnsFile, Preset, Role};

/// Batches in flight between the readers and the join: bounds memory whatever the input size.
const CHANNEL_BATCHES: usize = 16;

/// One export to read.
#[derive(Debug, Clone)]
pub struct Input {
    /// The input's name on the command line (`storefront`, `marketplace`, `payments`, `erp`,
    /// `erp-fulfillments`), used in messages and for its `[reconcile.<name>]` columns.
    pub name: String,
    pub path: PathBuf,
    pub role: Role,
    /// The preset given for it (`--preset`); without one, the presets of its role are tried
    /// against its header.
    pub preset: Option<Preset>,
    /// The merchant's columns and formats: they win over anything inferred.
    pub columns: Columns,
}

impl Input {
    /// An input named as on the command line, with the role its name says.
    pub fn new(name: &str, path: impl Into<PathBuf>, preset: Option<Preset>, columns: Columns) -> Input {
        let preset = columns.preset.or(preset);
        let role = match (preset, name) {
            (Some(p), _) => p.role(),
            (None, "payments") => Role::Payments,
            (None, "erp") => Role::Erp,
            (None, "erp-fulfillments") => Role::ErpFulfillments,
            (None, _) => Role::Channel,
        };
        Input { name: name.to_owned(), path: path.into(), role, preset, columns }
    }

    /// The preset tried first: the one its name suggests.
    pub fn default_preset(&self) -> Preset {
        match (self.role, self.name.as_str()) {
            (Role::Channel, "marketplace") => Preset::Amazon,
            (Role::Channel, _) => Preset::Shopify,
            (Role::Payments, _) => Preset::Stripe,
            (Role::Erp, _) => Preset::Netsuite,
            (Role::ErpFulfillments, _) => Preset::NetsuiteFulfillments,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub deadlines: Deadlines,
    pub as_of: Timestamp,
    /// Threads that evaluate the ledgers.
    pub threads: usize,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub as_of: Timestamp,
    pub findings: Vec<Exception>,
    pub stats: JoinStats,
    /// Rows read per input name.
    pub rows: Vec<(String, u64)>,
    /// Rows deliberately left out (payments not captured).
    pub skipped: u64,
    pub bad: BadRows,
    pub links: Vec<FuzzyLink>,
    pub ledgers: u64,
    pub elapsed: Duration,
    /// Each input's columns and formats, with why.
    pub layouts: Vec<String>,
    /// What a person should look at in the exports themselves (discounts of both signs).
    pub warnings: Vec<String>,
}

impl Outcome {
    pub fn rows_total(&self) -> u64 {
        self.rows.iter().map(|(_, n)| n).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    #[error("input {input}: {reason}")]
    Columns { input: String, reason: String },
    #[error(transparent)]
    Input(#[from] input::InputError),
    #[error("no input given")]
    NoInput,
}

/// Each input's columns and formats, decided from its file (what `--explain` prints).
pub fn layouts(inputs: &[Input]) -> Result<Vec<Layout>, ReconError> {
    if inputs.is_empty() {
        return Err(ReconError::NoInput);
    }
    inputs.iter().map(infer::layout).collect()
}

/// Reads every input, joins, classifies. `progress` is called with the rows read so far.
pub fn reconcile(inputs: &[Input], options: &Options, progress: &(dyn Fn(u64) + Sync)) -> Result<Outcome, ReconError> {
    if inputs.is_empty() {
        return Err(ReconError::NoInput);
    }
    let started = Instant::now();
    let layouts = layouts(inputs)?;
    let explained: Vec<String> = layouts.iter().map(Layout::text).collect();
    let mut channels = Vec::new();
    let mut readers = Vec::new();
    for (input, layout) in inputs.iter().zip(layouts) {
        let system = match input.role {
            Role::Channel => {
                channels.push(layout.columns.system.clone().unwrap_or_else(|| input.name.clone()));
                (channels.len() - 1) as u8
            }
            _ => 0,
        };
        readers.push(rows::Reader::new(input.role, system, layout));
    }
    let mut join = join::Join::new(channels);
    let mut bad = BadRows::default();
    let mut skipped = 0;
    let mut rows = vec![0u64; inputs.len()];
    let mut signs = vec![rows::Signs::default(); inputs.len()];
    let (tx, rx) = mpsc::sync_channel::<(usize, rows::Batch)>(CHANNEL_BATCHES);
    std::thread::scope(|s| -> Result<(), ReconError> {
        let mut handles = Vec::new();
        for (i, (reader, input)) in readers.into_iter().zip(inputs).enumerate() {
            let tx = tx.clone();
            handles.push(s.spawn(move || reader.run(&input.path, |batch| tx.send((i, batch)).is_ok())));
        }
        drop(tx);
        let mut read = 0;
        for (i, batch) in rx {
            join.apply(&batch);
            rows[i] += batch.rows;
            signs[i].extend(&batch.signs);
            read += batch.rows;
            skipped += batch.skipped;
            bad.extend(batch.bad);
            progress(read);
        }
        for h in handles {
            h.join().expect("a reader thread panicked")?;
        }
        Ok(())
    })?;
    join.finish();

    let n = join.len();
    let threads = options.threads.max(1);
    let chunk = n.div_ceil(threads).max(1);
    let join = &join;
    let mut findings = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    for i in start..(start + chunk).min(n) {
                        let ledger = join.ledger(i);
                        classify::classify(&ledger, &options.deadlines, options.as_of, join.occurred_at(i), &mut out);
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            findings.extend(h.join().expect("an evaluation thread panicked"));
        }
    });
    Ok(Outcome {
        as_of: options.as_of,
        findings,
        stats: join.stats.clone(),
        rows: inputs.iter().map(|i| i.name.clone()).zip(rows).collect(),
        skipped,
        bad,
        links: join.links.clone(),
        ledgers: n as u64,
        elapsed: started.elapsed(),
        layouts: explained,
        warnings: inputs.iter().zip(&signs).filter_map(|(input, s)| s.warning(&input.name)).collect(),
    })
}
