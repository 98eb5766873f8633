//! `handoff`: the hub and its tools in one binary.

mod bench;
mod bench_api;
mod bench_console;
mod bench_load;
mod bench_mapping;
mod bench_purge;
mod bench_restart;
mod bench_rules;
mod contract;
mod demo;
mod doctor;
mod dump;
mod held;
mod inspect;
mod mapping;
mod migrate;
mod mock;
mod purge;
mod quarantine;
mod reconcile;
mod serve;
mod sim;
mod store;
mod token;
mod user;

use handoff_model::ExceptionState;

/// jemalloc for every allocation of the process, SQLite's included: a hub runs for months, and
/// glibc's arenas kept freed memory (RSS climbing while orders flowed, docs/BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "handoff",
    version,
    about = "The acknowledged write path between storefronts, marketplaces, payments and ERPs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to standard error: `text` for a person, `json` (one object a
    /// line, with each event's fields) for a log pipeline.
    #[arg(long, global = true, env = "HANDOFF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Clone)]
pub struct DataDir {
    /// Where the embedded store lives: this flag, else HANDOFF_DATA_DIR, else the contract's
    /// `[hub] data_dir`, else `handoff-data`.
    #[arg(long, env = "HANDOFF_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL database several hubs share (`postgres://user@host:5432/db`) instead of
    /// the embedded store: this flag, else HANDOFF_STORE, else the contract's `[hub] store`.
    #[arg(long, env = "HANDOFF_STORE")]
    store: Option<String>,
}

impl DataDir {
    /// The data directory of a command that reads the contract at `config` and only ever
    /// uses the embedded store.
    pub fn with(&self, config: &Path) -> anyhow::Result<PathBuf> {
        Ok(handoff_contract::data_dir::resolve(self.data_dir.clone(), Some(config))?)
    }

    /// The store of a command that reads the contract at `config`: `--store` (or
    /// HANDOFF_STORE) first, then the data directory, then the contract's `[hub] store` and
    /// `data_dir`.
    pub fn store(&self, config: &Path) -> anyhow::Result<handoff_contract::data_dir::StoreAt> {
        Ok(handoff_contract::data_dir::resolve_store(self.store.clone(), self.data_dir.clone(), Some(config))?)
    }

    /// The store of a command that takes no contract: the contract HANDOFF_CONFIG names, or
    /// `handoff.toml` here, may still name it.
    pub fn store_here(&self) -> anyhow::Result<handoff_contract::data_dir::StoreAt> {
        self.store(&default_config())
    }

    /// The data directory of a command that takes no contract and only ever uses the
    /// embedded store (`reconcile --import`): a PostgreSQL store named is refused, not ignored.
    pub fn get(&self) -> anyhow::Result<PathBuf> {
        if let Some(store) = self.store.as_deref().filter(|s| handoff_store::postgres::is_url(s)) {
            let at = handoff_contract::data_dir::StoreAt::Postgres(store.to_owned());
            anyhow::bail!(
                "this command writes into the embedded store only, and --store or HANDOFF_STORE names {}",
                at.display()
            );
        }
        self.with(&default_config())
    }
}

/// The contract a command that takes none may still read its store from.
fn default_config() -> PathBuf {
    std::env::var_os("HANDOFF_CONFIG").map_or_else(|| PathBuf::from("handoff.toml"), PathBuf::from)
}

#[derive(Subcommand)]
enum Command {
    /// A simulated week of orders through a naive relay and through Handoff, compared pattern
    /// by pattern; then the hub serves what it did. The first command to run.
    Demo(demo::DemoArgs),
    /// Run the hub: webhooks in, commands out, with acknowledgment, retries and dead letters.
    Serve {
        /// The contract.
        #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
        config: PathBuf,
        #[command(flatten)]
        data: DataDir,
        /// Listen here instead of the contract's `hub.listen`.
        #[arg(long)]
        listen: Option<String>,
        /// Also serve every target of the contract with a simulated system at its `base_url`,
        /// to try Handoff without real systems.
        #[arg(long)]
        simulate: bool,
        /// On PostgreSQL, how long a claim of a command is this hub's alone (e.g. `90s`): a
        /// claim held longer, by a hub paused or cut off, is taken over. Default: twice the
        /// longest time-out plus settle time of the contract's systems, at least 60 s; never
        /// shorter than one attempt can last.
        #[arg(long, env = "HANDOFF_LEASE")]
        lease: Option<jiff::SignedDuration>,
    },
    /// The contract as a document: check it, or render it for the teams that share it.
    Contract {
        #[command(subcommand)]
        command: contract::ContractCommand,
    },
    /// One order's cross-system timeline.
    Order {
        #[command(subcommand)]
        command: OrderCommand,
    },
    /// Dead-lettered commands.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The API's tokens: who may read and act, with which role.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// The console's people: who may log in, with which role.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Vendor bodies no reader could map, held until a fixed reader replays them.
    Quarantine {
        #[command(subcommand)]
        command: quarantine::QuarantineCommand,
    },
    /// Detected exceptions.
    Exceptions {
        #[command(subcommand)]
        command: ExceptionsCommand,
    },
    /// Remove what the contract's `[retention]` no longer keeps (personal data, raw bodies,
    /// old history), printing what went per table; `serve` does this every `purge_every`.
    Purge {
        #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
        config: PathBuf,
        #[command(flatten)]
        data: DataDir,
        /// Count what would go, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// The handoff checklist's ten questions, each answered from the contract and the traffic
    /// the store measured, with evidence and a verdict (ok, warn, gap).
    Doctor(doctor::DoctorArgs),
    /// Bring the store's schema to this build's version (`serve` does it on start too), on
    /// the embedded store or on PostgreSQL; prints the version before and after.
    Migrate(migrate::MigrateArgs),
    /// Write the whole store (either backend) to one file, through a read-only snapshot, so
    /// a running hub keeps going: every table's rows with their ids, and each table's row
    /// count and content hash. See docs/postgres.md, "Moving between stores".
    Export(dump::ExportArgs),
    /// Write a dump `export` made into an empty store (PostgreSQL, or a SQLite data
    /// directory), in one transaction that commits only when every table read back has the
    /// dump's row count and content hash.
    Import(dump::ImportArgs),
    /// Run a simulated system (ERP, storefront, marketplace) that speaks Handoff's http-json
    /// protocol or, with --connector, a vendor's API.
    Mock(mock::MockArgs),
    /// Deterministic simulation of the whole write path under faults, judged by the history
    /// checker; the last line reads `violations: N`.
    Sim(sim::SimArgs),
    /// The versioned mappings to each target: golden cases, running one by hand.
    Mapping {
        #[command(subcommand)]
        command: mapping::MappingCommand,
    },
    /// Find every existing exception in plain exports of each system (see docs/reconcile.md).
    Reconcile(Box<reconcile::ReconcileArgs>),
    /// Benchmarks of the write path; each prints its figures (see docs/BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum OrderCommand {
    /// Show everything known about one order.
    Show {
        order_ref: String,
        #[command(flatten)]
        data: DataDir,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List dead letters.
    List {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back in the queue with a fresh retry budget.
    Replay {
        /// The dead letter's command id (see `dlq list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Replay every dead letter.
        #[arg(long)]
        all: bool,
        /// Who replays, for the audit log.
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
        /// Which mapping version a dead letter that went through a mapping is replayed with:
        /// the one it ran with, or the latest. Required when one did (see --dry-run).
        #[arg(long, value_enum)]
        mapping: Option<inspect::ReplayMapping>,
        /// Replay nothing: show, per dead letter, the target payload the mapping that ran made
        /// and what the latest mapping makes of it (needs --config).
        #[arg(long, requires = "config")]
        dry_run: bool,
        /// The contract, for --dry-run.
        #[arg(long, env = "HANDOFF_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        data: DataDir,
    },
    /// Give up on a dead letter: it is never sent, its exception is resolved, and its order's
    /// later commands go on. (Resolving or ignoring its exception does the same.)
    Abandon {
        /// The dead letter's command id (see `dlq list`).
        id: i64,
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
        /// Who abandons, for the audit log.
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum ExceptionsCommand {
    /// Take an open exception on (someone is looking at it).
    Ack {
        id: i64,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// Close an exception as resolved by hand.
    Resolve {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// Close an exception as not worth acting on; the reason is required and audited.
    Ignore {
        id: i64,
        #[arg(long)]
        reason: String,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// The evidence pack of one exception: the exception, the rule and its finding, the ledger
    /// it judged, and the order's timeline (events, commands, attempts with mapping versions,
    /// audit).
    Show {
        id: i64,
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
    /// Take the action an exception suggests (a dead letter: replay it), or, with --cluster,
    /// on every open member of a cluster. Commands are queued with intake's idempotency keys,
    /// so nothing is queued twice; a refund is never sent, only approved and audited.
    Act {
        #[arg(required_unless_present = "cluster", conflicts_with = "cluster")]
        id: Option<i64>,
        /// A cluster's id or rank (see `exceptions clusters`).
        #[arg(long)]
        cluster: Option<String>,
        /// A person's approval, required for a refund.
        #[arg(long)]
        approve: bool,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
        /// The contract: which flows carry the commands an action queues.
        #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
        config: PathBuf,
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
    /// Exceptions grouped by pattern, flow, field, channel, mapping and error fingerprint, with
    /// orders, money and states; largest first.
    Clusters {
        /// Only exceptions in this state.
        #[arg(long, value_parser = exception_state)]
        state: Option<handoff_model::ExceptionState>,
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
    /// List exceptions, newest first.
    List {
        /// Only exceptions in this state (open, acknowledged, resolved, auto_resolved, ignored).
        #[arg(long, value_parser = exception_state)]
        state: Option<handoff_model::ExceptionState>,
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HANDOFF_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        // Colours only for a person at a terminal: never escape codes in a log file or journal.
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    if let Command::Contract { command } = cli.command {
        // No runtime needed; the exit code tells a refused contract (2) from a failed check (1).
        let code = contract::run(command)?;
        std::process::exit(code);
    }
    if let Command::Sim(args) = cli.command {
        // Each seed runs on its own single-threaded runtime.
        return sim::run(args);
    }
    // Store reads run on blocking threads; a small bound keeps their memory bounded too.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(16).build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { config, data, listen, simulate, lease } => {
                serve::run(&config, &data.store(&config)?, listen, simulate, lease).await
            }
            Command::Order { command: OrderCommand::Show { order_ref, data, json } } => {
                inspect::order_show(&data.store_here()?, &order_ref, json).await
            }
            Command::Dlq { command: DlqCommand::List { data, json } } => {
                inspect::dlq_list(&data.store_here()?, json).await
            }
            Command::Dlq { command: DlqCommand::Replay { id, all: _, actor, mapping, dry_run, config, data } } => {
                match config {
                    Some(config) if dry_run => inspect::dlq_dry_run(&data.store(&config)?, id, &config).await,
                    _ => {
                        let at = config.as_deref().map_or_else(|| data.store_here(), |config| data.store(config))?;
                        inspect::dlq_replay(&at, id, actor, mapping).await
                    }
                }
            }
            Command::Dlq { command: DlqCommand::Abandon { id, reason, actor, data } } => {
                inspect::dlq_abandon(&data.store_here()?, id, actor, reason).await
            }
            Command::Exceptions { command: ExceptionsCommand::List { state, data, json } } => {
                inspect::exceptions_list(&data.store_here()?, state, json).await
            }
            Command::Exceptions { command: ExceptionsCommand::Show { id, data, json } } => {
                inspect::exception_show(&data.store_here()?, id, json).await
            }
            Command::Exceptions {
                command: ExceptionsCommand::Act { id, cluster, approve, actor, config, data, json },
            } => inspect::exception_act(&data.store(&config)?, &config, id, cluster, approve, actor, json).await,
            Command::Exceptions { command: ExceptionsCommand::Clusters { state, data, json } } => {
                inspect::exception_clusters(&data.store_here()?, state, json).await
            }
            Command::Exceptions { command: ExceptionsCommand::Ack { id, actor, data } } => {
                inspect::exception_move(&data.store_here()?, id, ExceptionState::Acknowledged, actor, None).await
            }
            Command::Exceptions { command: ExceptionsCommand::Resolve { id, reason, actor, data } } => {
                inspect::exception_move(&data.store_here()?, id, ExceptionState::Resolved, actor, reason).await
            }
            Command::Exceptions { command: ExceptionsCommand::Ignore { id, reason, actor, data } } => {
                inspect::exception_move(&data.store_here()?, id, ExceptionState::Ignored, actor, Some(reason)).await
            }
            Command::Quarantine { command } => quarantine::run(command).await,
            Command::Token { command } => token::run(command).await,
            Command::User { command } => user::run(command).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Purge { config, data, dry_run, json } => {
                purge::run(&config, &data.store(&config)?, dry_run, json).await
            }
            Command::Doctor(args) => doctor::run(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Export(args) => dump::export(args).await,
            Command::Import(args) => dump::import(args).await,
            Command::Mock(args) => mock::run(args).await,
            Command::Bench { command } => bench::run(command).await,
            Command::Mapping { command } => mapping::run(command).await,
            Command::Reconcile(args) => reconcile::run(*args),
            Command::Sim(_) | Command::Contract { .. } => unreachable!("run above"),
        }
    })
}

/// An exception state as people type it, or the states there are.
fn exception_state(s: &str) -> Result<handoff_model::ExceptionState, String> {
    handoff_model::ExceptionState::parse(s).ok_or_else(|| {
        let states: Vec<&str> = handoff_model::ExceptionState::ALL.iter().map(|s| s.as_str()).collect();
        format!("no exception state {s:?}; the states are {}", states.join(", "))
    })
}

#[cfg(test)]
mod tests {
    /// Every command's flags are consistent (no name twice, every default parses).
    #[test]
    fn the_command_line_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
