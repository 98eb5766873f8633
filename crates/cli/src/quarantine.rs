//! `handoff quarantine list|show|replay`: vendor bodies no reader could map, held with a
//! Transform Mismatch exception, and read again into the inbox once the reader is fixed.

use anyhow::{Context, bail};
use handoff_contract::Contract;
use handoff_contract::data_dir::StoreAt;
use handoff_engine::actions::ActionOutcome;
use handoff_engine::quarantine::{self, ReplayError, Replayed, Unmapped};
use handoff_store::{ExceptionRow, NewEvent, QuarantineState, Quarantined, Recorded, Store};
use jiff::Timestamp;

#[derive(clap::Subcommand)]
pub enum QuarantineCommand {
    /// List held bodies, newest first.
    List {
        /// Only bodies in this state (held, replayed).
        #[arg(long)]
        state: Option<QuarantineState>,
        #[command(flatten)]
        data: crate::DataDir,
        #[arg(long)]
        json: bool,
    },
    /// One held body: why it cannot be mapped, the headers kept, the body as received.
    Show {
        id: i64,
        #[command(flatten)]
        data: crate::DataDir,
        #[arg(long)]
        json: bool,
    },
    /// Read held bodies again with this build's readers; each one that maps becomes an ordinary
    /// inbox event (deduplicated by its event id) and its exception is resolved. One that still
    /// cannot be mapped stays held and nothing changes.
    Replay {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every body still held (of --system only, if given).
        #[arg(long)]
        all: bool,
        #[arg(long, requires = "all")]
        system: Option<String>,
        /// Who replays, for the audit log.
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
        /// The contract: which connector reads each system's bodies.
        #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
        config: std::path::PathBuf,
        #[command(flatten)]
        data: crate::DataDir,
    },
}

pub async fn run(command: QuarantineCommand) -> anyhow::Result<()> {
    match command {
        QuarantineCommand::List { state, data, json } => list(&data.store_here()?, state, json).await,
        QuarantineCommand::Show { id, data, json } => show(&data.store_here()?, id, json).await,
        QuarantineCommand::Replay { id, all: _, system, actor, config, data } => {
            let contract = Contract::load(&config)?;
            replay(&data.store(&config)?, &contract, id, system, &actor).await
        }
    }
}

async fn list(at: &StoreAt, state: Option<QuarantineState>, json: bool) -> anyhow::Result<()> {
    let store = crate::store::open(at).await?;
    let rows = store.quarantined(state, 10_000).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("nothing held");
    }
    for q in rows {
        println!(
            "{:>6}  {:<9} {:<12} {:<7} {:<22} {}: {}",
            q.id,
            q.state.as_str(),
            q.system,
            q.source.as_str(),
            q.order_ref.as_deref().unwrap_or("-"),
            q.field,
            q.reason
        );
    }
    Ok(())
}

async fn show(at: &StoreAt, id: i64, json: bool) -> anyhow::Result<()> {
    let store = crate::store::open(at).await?;
    let Some(q) = store.quarantined_one(id).await? else { bail!("no quarantined body {id}") };
    let body = String::from_utf8_lossy(&q.body).into_owned();
    if json {
        let mut value = serde_json::to_value(&q)?;
        value["body"] = serde_json::Value::String(body);
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("quarantine {} [{}]", q.id, q.state.as_str());
    println!("  system          {} ({})", q.system, q.source.as_str());
    println!("  order           {}", q.order_ref.as_deref().unwrap_or("-"));
    println!("  field           {}", q.field);
    println!("  reason          {}", q.reason);
    println!("  source version  {}", q.source_version.as_deref().unwrap_or("-"));
    println!("  flow            {}", q.flow.as_deref().unwrap_or("-"));
    println!("  received        {}", q.received_at);
    if let Some(x) = q.exception_id {
        println!("  exception       {x}");
    }
    if let (Some(row), Some(at)) = (q.event_row, q.replayed_at) {
        println!("  replayed        as event {row} at {at}");
    }
    for (name, value) in &q.headers {
        println!("  header          {name}: {value}");
    }
    let pretty =
        serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| serde_json::to_string_pretty(&v).ok());
    println!("\n{}", pretty.unwrap_or(body));
    Ok(())
}

/// This build's reader of each system of the contract.
fn reader(contract: &Contract) -> impl Fn(&Quarantined) -> Result<NewEvent, Unmapped> + '_ {
    |held: &Quarantined| match contract.systems.get(&held.system) {
        Some(source) => handoff_connectors::reread(&held.system, source, held),
        None => Err(Unmapped { field: "system".into(), reason: format!("{:?} is not in the contract", held.system) }),
    }
}

/// `exceptions act` on a held body's exception: its action is the body's replay.
pub(crate) async fn act(
    store: &impl Store,
    contract: &Contract,
    x: &ExceptionRow,
    held: i64,
    actor: &str,
) -> anyhow::Result<ActionOutcome> {
    let lines = match quarantine::replay(store, held, reader(contract), actor, Timestamp::now()).await? {
        Replayed::Recorded(recorded) => {
            let (Recorded::New(row) | Recorded::Duplicate(row)) = recorded;
            vec![format!("quarantine {held} replayed as event {row}; intake plans it like any other")]
        }
        Replayed::Before { event_row } => {
            let row = event_row.map_or_else(|| "-".to_owned(), |r| r.to_string());
            vec![format!("quarantine {held} was replayed before, as event {row}: nothing to do")]
        }
    };
    Ok(ActionOutcome {
        exception_id: x.id,
        order_ref: x.order_ref.clone(),
        pattern: x.pattern.clone(),
        action: "replay_quarantined".into(),
        queued: Vec::new(),
        already_queued: Vec::new(),
        needs_person: false,
        lines,
    })
}

async fn replay(
    at: &StoreAt,
    contract: &Contract,
    id: Option<i64>,
    system: Option<String>,
    actor: &str,
) -> anyhow::Result<()> {
    let store = crate::store::open(at).await?;
    let ids: Vec<i64> = match id {
        Some(id) => vec![id],
        None => {
            let held = store.quarantined(Some(QuarantineState::Held), 1_000_000).await?;
            held.into_iter().filter(|q| system.as_ref().is_none_or(|s| &q.system == s)).map(|q| q.id).rev().collect()
        }
    };
    let read = reader(contract);
    let single = id.is_some();
    let (mut replayed, mut still) = (0, 0);
    for id in ids {
        match quarantine::replay(&store, id, &read, actor, Timestamp::now()).await {
            Ok(Replayed::Recorded(Recorded::New(row))) => {
                replayed += 1;
                println!("quarantine {id}: replayed as event {row}");
            }
            Ok(Replayed::Recorded(Recorded::Duplicate(row))) => {
                replayed += 1;
                println!("quarantine {id}: replayed; its event was already recorded as event {row}");
            }
            Ok(Replayed::Before { event_row }) => {
                let row = event_row.map_or_else(|| "-".to_owned(), |r| r.to_string());
                println!("quarantine {id}: replayed before, as event {row}: nothing to do");
            }
            Err(e @ ReplayError::StillUnmapped { .. }) if single => {
                return Err(e).context("the reader of this build still refuses it; fix the reader, then replay");
            }
            Err(ReplayError::StillUnmapped { unmapped, .. }) => {
                still += 1;
                println!("quarantine {id}: still cannot be mapped, left held: {unmapped}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !single {
        println!("{replayed} replayed, {still} still held");
    }
    Ok(())
}
