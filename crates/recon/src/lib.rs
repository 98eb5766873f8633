//! `handoff reconcile`: from plain exports of each system, every existing exception, classified
//! into the failure patterns by the live engine's own rules, clustered, with what to do.
//!
//! The pipeline streams each input once: `input` opens it (gzip, CSV/TSV/JSONL), `rows` turns
//! rows into compact records as `presets` (or the merchant's columns) say, one reader thread
//! per input; `join` keeps one compact entry per order reference and ties loose payments and
//! ERP records to orders by fuzzy keys; `classify` builds each order's rules `Ledger` and calls
//! `handoff_rules::evaluate`; `cluster` and `report` summarise. `generate` writes realistic
//! exports with planted exceptions and their ground truth, which `truth` scores a run against.

pub mod classify;
pub mod cluster;
pub mod generate;
pub mod html;
pub mod input;
pub mod join;
pub mod presets;
pub mod report;
pub mod rows;
pub mod truth;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use handoff_rules::Deadlines;
use jiff::Timestamp;

pub use classify::Exception;
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
    /// Resolved columns (a preset with the merchant's overrides).
    pub columns: Columns,
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

/// Reads every input, joins, classifies. `progress` is called with the rows read so far.
pub fn reconcile(inputs: &[Input], options: &Options, progress: &(dyn Fn(u64) + Sync)) -> Result<Outcome, ReconError> {
    if inputs.is_empty() {
        return Err(ReconError::NoInput);
    }
    let started = Instant::now();
    let mut channels = Vec::new();
    let mut readers = Vec::new();
    for input in inputs {
        let system = match input.role {
            Role::Channel => {
                channels.push(input.columns.system.clone().unwrap_or_else(|| input.name.clone()));
                (channels.len() - 1) as u8
            }
            _ => 0,
        };
        let reader = rows::Reader::new(input.role, system, input.columns.clone())
            .map_err(|reason| ReconError::Columns { input: input.name.clone(), reason })?;
        readers.push(reader);
    }
    let mut join = join::Join::new(channels);
    let mut bad = BadRows::default();
    let mut skipped = 0;
    let mut rows = vec![0u64; inputs.len()];
    let (tx, rx) = mpsc::sync_channel::<(usize, rows::Batch)>(CHANNEL_BATCHES);
    std::thread::scope(|s| -> Result<(), ReconError> {
        let mut handles = Vec::new();
        for (i, (reader, input)) in readers.iter().zip(inputs).enumerate() {
            let tx = tx.clone();
            handles.push(s.spawn(move || reader.run(&input.path, |batch| tx.send((i, batch)).is_ok())));
        }
        drop(tx);
        let mut read = 0;
        for (i, batch) in rx {
            join.apply(&batch);
            rows[i] += batch.rows;
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
    })
}
