//! Reconcile's export readers: a fuzzed export file read as CSV, TSV or JSONL (gzip by its
//! magic bytes), its layout inferred or given by a preset, its rows read, joined with a small
//! NetSuite export and classified. The input's first line names the input, the preset (`-`:
//! inferred) and the file name, e.g. `storefront shopify orders.csv`; the rest is the file.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use handoff_recon::{Columns, Input, Options, Preset, layouts, reconcile};
use handoff_rules::Deadlines;
use libfuzzer_sys::fuzz_target;

const ERP: &str = "\
Document Number,Date Created,Last Modified,Status,External ID,Email,Currency,Amount (Transaction Total),Line Count
SO1,1/15/2026 9:30 am,1/15/2026 9:30 am,Pending Fulfillment,#1001,ada@example.com,EUR,28.58,2
SO2,1/15/2026 10:05 am,1/16/2026 8:00 am,Billed,,alan@example.com,EUR,10.00,1
";

/// A directory of this process's own for the files.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("handoff-fuzz-exports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    std::fs::write(dir.join("erp.csv"), ERP).expect("the ERP export is written");
    dir
});

const NAMES: [&str; 5] = ["storefront", "marketplace", "payments", "erp", "erp-fulfillments"];

fuzz_target!(|data: &[u8]| {
    let (first, file) = match data.iter().position(|&b| b == b'\n') {
        Some(n) => (String::from_utf8_lossy(&data[..n]).into_owned(), &data[n + 1..]),
        None => (String::new(), data),
    };
    let mut words = first.split_whitespace();
    let name = words.next().filter(|n| NAMES.contains(n)).unwrap_or("storefront");
    let preset = words.next().and_then(Preset::parse);
    // Only the extension matters (it says the format); the name stays inside our directory.
    let extension = words.next().and_then(|f| f.split_once('.')).map(|(_, e)| e).unwrap_or("csv");
    let extension: String = extension.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.').take(12).collect();
    let path = DIR.join(format!("input.{extension}"));
    std::fs::write(&path, file).expect("the export is written");
    let fuzzed = Input::new(name, &path, preset, Columns::default());
    let erp = Input::new("erp", DIR.join("erp.csv"), Some(Preset::Netsuite), Columns::default());
    let _ = layouts(std::slice::from_ref(&fuzzed));
    let options =
        Options { deadlines: Deadlines::default(), as_of: "2026-03-01T00:00:00Z".parse().unwrap(), threads: 1 };
    let inputs = if name == "erp" { vec![fuzzed] } else { vec![fuzzed, erp] };
    let _ = reconcile(&inputs, &options, &|_| {});
});
