//! `handoff demo`: a simulated week of orders run twice, through a naive fire-and-forget relay
//! and through Handoff, compared pattern by pattern; then the hub keeps serving what it did.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use handoff_engine::SystemClock;
use handoff_model::Pattern;
use handoff_sim::demo::{self, Comparison};
use handoff_sim::week::{self, RelayFaults};
use handoff_store::Role;
use handoff_store::memory::MemoryStore;
use handoff_store::sqlite::{SqliteOptions, SqliteStore};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;

/// Marks a data directory the demo made, so that it may replace it on the next run.
const MARKER: &str = ".handoff-demo";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Orders in the simulated week.
    #[arg(long, default_value_t = 3000)]
    orders: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where the hub's store of the Handoff run is kept (replaced on each demo run).
    #[arg(long, default_value = "handoff-demo")]
    data_dir: PathBuf,
    /// Where the hub serves its API after the run.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Print the table and exit (for scripts and CI).
    #[arg(long)]
    no_serve: bool,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    handoff_server::metrics::install();
    let store = fresh_store(&args.data_dir)?;
    let faults = RelayFaults::default();
    let start: Timestamp = week::WEEK_START.parse()?;
    let hours = 9 * 24;
    let bar = ProgressBar::new(2 * hours);
    bar.set_style(ProgressStyle::with_template("{msg:28} {bar:40} {percent:>3}% {elapsed}").expect("a valid template"));
    let tick = |offset: u64| {
        let bar = bar.clone();
        move |at: Timestamp| bar.set_position(offset + (at.duration_since(start).as_hours().max(0) as u64).min(hours))
    };
    let began = Instant::now();
    bar.set_message("the week through a relay");
    let (relay_tick, handoff_tick) = (tick(0), tick(hours));
    let handoff_started = std::cell::Cell::new(false);
    let handoff_progress = |at: Timestamp| {
        if !handoff_started.replace(true) {
            bar.set_message("the same week through Handoff");
        }
        handoff_tick(at);
    };
    let c = demo::compare(
        MemoryStore::new(),
        store.clone(),
        args.seed,
        args.orders,
        &faults,
        &relay_tick,
        &handoff_progress,
    )
    .await;
    bar.finish_and_clear();
    print_table(&c, began.elapsed().as_secs_f64());
    if args.no_serve {
        return Ok(());
    }
    serve(store, &args).await
}

/// The demo's own data directory, emptied; any other non-empty directory is left alone.
fn fresh_store(dir: &Path) -> anyhow::Result<SqliteStore> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        anyhow::ensure!(
            dir.join(MARKER).exists(),
            "{} holds something else than a demo; choose another --data-dir",
            dir.display()
        );
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(MARKER), "made by handoff demo; replaced by the next one\n")?;
    // The demo's store is throwaway: no fsync per commit, so the week runs in seconds.
    Ok(SqliteStore::open(dir, SqliteOptions { durable: false, ..SqliteOptions::default() })?)
}

fn print_table(c: &Comparison, seconds: f64) {
    println!("A simulated week of {} orders (storefront, marketplace, payments, ERP), run twice:", c.orders);
    println!();
    println!(
        "{:<20} {:>14} {:>10} | {:>12} {:>10} {:>12}",
        "pattern", "relay left", "detected", "Handoff", "resolved", "open"
    );
    println!("{:<20} {:>14} {:>10} | {:>12} {:>10} {:>12}", "", "behind", "in shadow", "raised", "", "(needs you)");
    for pattern in Pattern::ALL {
        let r = c.rows.get(&pattern).cloned().unwrap_or_default();
        println!(
            "{:<20} {:>14} {:>10} | {:>12} {:>10} {:>12}",
            pattern.name(),
            r.relay,
            r.detected_in_relay,
            r.raised,
            r.resolved,
            r.open
        );
    }
    println!();
    println!(
        "Handoff: {} orders in the ERP, {} duplicates; mismatches held with their field: {}; false exceptions in shadow mode: {}.",
        c.erp_orders,
        c.erp_duplicates,
        if c.held_fields.is_empty() { "none".to_owned() } else { c.held_fields.join(", ") },
        c.false_in_relay
    );
    println!("Ran in {seconds:.1} s.");
}

async fn serve(store: SqliteStore, args: &DemoArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {} (use --listen, or --no-serve)", args.listen))?;
    let addr = listener.local_addr()?;
    // The demo's own reader: an operator, so the demo shows what an operator sees.
    let token = crate::token::create(&store, "demo", Role::Operator, Some(1), "demo", Timestamp::now()).await?;
    // And its console user, logged in by a one-time link (its password is random and never shown).
    let password = handoff_server::console::session::random_key();
    let user = crate::user::create(&store, "demo", Role::Operator, &password, "demo", Timestamp::now()).await?;
    let link = handoff_server::console::create_link(&store, user, Timestamp::now()).await?;
    let drift = Arc::new(handoff_mapping::drift::Watch::shipped()?);
    let state = handoff_server::AppState {
        contract: Arc::new(demo::contract(false)),
        store,
        clock: Arc::new(SystemClock),
        drift,
        mappings: Arc::new(handoff_mapping::Mappings::shipped()?),
        // The demo's run is over when it serves: no part of it still runs.
        heartbeats: Default::default(),
        // The demo's targets were simulated and are gone: a resolution action is refused.
        targets: Default::default(),
        recent: Default::default(),
    };
    let dir = args.data_dir.display();
    println!();
    println!("The hub's record of the Handoff run is served at http://{addr}: its console, logged in as the");
    println!("demo's operator by a one-time link (good for an hour):");
    println!("  console:         http://{addr}{link}");
    println!("and its API, to the demo's token:");
    println!("  export HANDOFF_TOKEN={token}");
    println!("  exceptions:      curl -H \"Authorization: Bearer $HANDOFF_TOKEN\" http://{addr}/api/v1/exceptions");
    println!("  dead letters:    curl -H \"Authorization: Bearer $HANDOFF_TOKEN\" http://{addr}/api/v1/dead-letters");
    println!(
        "  one order:       curl -H \"Authorization: Bearer $HANDOFF_TOKEN\" http://{addr}/api/v1/orders/%2310001"
    );
    println!("  metrics:         curl -H \"Authorization: Bearer $HANDOFF_TOKEN\" http://{addr}/metrics");
    println!("and from the command line:");
    println!("  handoff exceptions list --data-dir {dir}");
    println!("  handoff order show '#10001' --data-dir {dir}");
    println!("Ctrl-C to stop.");
    let limits = state.contract.hub.limits.clone();
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    handoff_server::serve(listener, handoff_server::router(Arc::new(state)), &limits, stop).await?;
    Ok(())
}
