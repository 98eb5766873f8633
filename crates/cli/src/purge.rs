//! `handoff purge`: what the contract's `[retention]` no longer keeps, removed now (as
//! `serve` does every `purge_every`), or with `--dry-run` only counted.

use std::path::Path;

use handoff_contract::Contract;
use handoff_contract::data_dir::StoreAt;
use handoff_engine::{Clock, SystemClock};

pub async fn run(config: &Path, at: &StoreAt, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let contract = Contract::load(config)?;
    let store = crate::store::open(at).await?;
    let now = SystemClock.now();
    let r = &contract.retention;
    let purged = handoff_engine::retention::purge(&store, r, now, dry_run).await?;
    if json {
        println!("{}", serde_json::json!({ "dry_run": dry_run, "purged": purged }));
        return Ok(());
    }
    println!(
        "retention: personal data {} days, history {} days, dedup keys at least {} days{}",
        r.personal_data_days,
        r.history_days,
        r.dedup_days,
        if dry_run { " (dry run: nothing changed)" } else { "" }
    );
    let verb = if dry_run { "would remove" } else { "removed" };
    for (table, what, n) in purged.lines() {
        println!("  {table:<11} {n:>9}  {what} ({verb})");
    }
    Ok(())
}
