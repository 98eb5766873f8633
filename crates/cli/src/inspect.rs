//! Read and repair commands that work on the data directory directly, with or without a
//! running hub (SQLite's WAL lets them share the file).

use std::path::Path;

use anyhow::bail;
use handoff_store::sqlite::{DB_FILE, SqliteOptions, SqliteStore};
use handoff_store::{Replay, Store};
use jiff::Timestamp;

fn open(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    if !data_dir.join(DB_FILE).exists() {
        bail!("no Handoff store in {} (set --data-dir or HANDOFF_DATA_DIR)", data_dir.display());
    }
    Ok(SqliteStore::open(data_dir, SqliteOptions::default())?)
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

pub async fn order_show(data_dir: &Path, order_ref: &str, json: bool) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let t = store.order_timeline(order_ref.to_owned()).await?;
    if t.is_empty() {
        bail!("no order {order_ref:?} in {}", data_dir.display());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&t)?);
        return Ok(());
    }
    println!("order {order_ref}");
    println!("\nledger");
    for l in &t.ledger {
        println!(
            "  {:<14} {:<12} {:<16} {}",
            l.system,
            l.state,
            l.record_id.as_deref().unwrap_or("-"),
            time(l.updated_at)
        );
    }
    let mut lines: Vec<(Timestamp, String)> = Vec::new();
    for e in &t.events {
        let stamps: Vec<String> = [e.source_version.as_ref().map(|v| format!("api {v}")), e.inbound_mapping.clone()]
            .into_iter()
            .flatten()
            .collect();
        let stamps = if stamps.is_empty() { String::new() } else { format!(" [{}]", stamps.join(", ")) };
        lines.push((e.received_at, format!("event    {:<14} {} ({}){stamps}", e.system, e.kind, e.event_id)));
    }
    for c in &t.commands {
        lines.push((c.created_at, format!("command  {:<14} #{} {} [{}]", c.target, c.id, c.kind, c.state)));
    }
    for a in &t.attempts {
        let detail = a.detail.as_deref().unwrap_or("");
        let mapping = a.mapping.as_deref().map(|m| format!(" [{m}]")).unwrap_or_default();
        let line = format!("attempt  #{}.{} {}{mapping}: {detail}", a.command_id, a.attempt, a.outcome);
        lines.push((a.started_at, line));
    }
    for x in &t.exceptions {
        lines.push((x.opened_at, format!("exception {} [{}]: {}", x.pattern, x.state, x.detail)));
    }
    for a in &t.audit {
        lines.push((a.at, format!("audit    {} {}: {}", a.actor, a.action, a.detail)));
    }
    lines.sort_by_key(|(at, _)| *at);
    println!("\ntimeline");
    for (at, line) in lines {
        println!("  {}  {line}", time(at));
    }
    Ok(())
}

pub async fn dlq_list(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let rows = store.dead_letters(10_000).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no dead letters");
    }
    for c in rows {
        println!(
            "{:>8}  {:<20} {:<18} {:<10} attempts {:<3} {}",
            c.id,
            c.order_ref,
            c.kind.as_str(),
            c.target,
            c.attempts,
            c.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

/// The mapping version a replay uses, chosen explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayMapping {
    /// The version the dead letter's last attempt ran with.
    AsRan,
    /// The newest version loaded by the hub.
    Latest,
}

pub async fn dlq_replay(
    data_dir: &Path,
    id: Option<i64>,
    actor: String,
    mapping: Option<ReplayMapping>,
) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let letters: Vec<_> =
        store.dead_letters(10_000).await?.into_iter().filter(|c| id.is_none_or(|id| c.id == id)).collect();
    let now = Timestamp::now();
    for c in &letters {
        let Some(ran) = crate::held::last_mapping(&store, c).await? else { continue };
        let mut payload: serde_json::Value = serde_json::from_str(&c.payload)?;
        match mapping {
            None => bail!(
                "dead letter {} ran with mapping {ran}: choose --mapping as-ran or --mapping latest \
                 (`dlq replay --dry-run --config ...` shows the difference)",
                c.id
            ),
            Some(ReplayMapping::AsRan) => payload[handoff_mapping::PIN] = serde_json::Value::String(ran),
            Some(ReplayMapping::Latest) => {
                if let Some(object) = payload.as_object_mut() {
                    object.remove(handoff_mapping::PIN);
                }
            }
        }
        store.set_dead_letter_payload(c.id, payload.to_string(), actor.clone(), now).await?;
    }
    let which = id.map_or(Replay::All, Replay::One);
    let n = store.replay(which, actor, Timestamp::now()).await?;
    if n == 0 && id.is_some() {
        bail!("no dead letter {}", id.unwrap_or_default());
    }
    println!("replayed {n} dead letter(s); a running hub sends them within a second");
    Ok(())
}

/// `dlq replay --dry-run`: what replaying would send, against what was sent (or held).
pub async fn dlq_dry_run(data_dir: &Path, id: Option<i64>, config: &Path) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let transform = crate::held::Transform::load(config)?;
    let letters: Vec<_> =
        store.dead_letters(10_000).await?.into_iter().filter(|c| id.is_none_or(|id| c.id == id)).collect();
    if letters.is_empty() {
        bail!("no dead letter{}", id.map(|id| format!(" {id}")).unwrap_or_default());
    }
    for c in &letters {
        let ran = crate::held::last_mapping(&store, c).await?;
        for line in transform.dry_run(c, ran.as_deref())? {
            println!("{line}");
        }
    }
    println!("dry run: nothing replayed");
    Ok(())
}

/// `mapping capture ID`: a dead letter becomes a golden case of its mapping.
pub async fn mapping_capture(data_dir: &Path, id: i64, config: &Path) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let transform = crate::held::Transform::load(config)?;
    let Some(c) = store.dead_letters(10_000).await?.into_iter().find(|c| c.id == id) else {
        bail!("no dead letter {id}");
    };
    let path = transform.capture(&c)?;
    println!("{}: correct `expected`, then `handoff mapping test`", path.display());
    Ok(())
}

/// A person acknowledges, resolves or ignores an exception.
pub async fn exception_move(
    data_dir: &Path,
    id: i64,
    to: handoff_model::ExceptionState,
    actor: String,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    match store.move_exception(id, to, actor, reason, Timestamp::now()).await? {
        handoff_store::Moved::Done(x) => {
            println!("exception {} ({}, order {}) is {}", x.id, x.pattern, x.order_ref, x.state)
        }
        handoff_store::Moved::NotFound => bail!("no exception {id}"),
        handoff_store::Moved::Refused { from } => bail!("exception {id} is {from}; it cannot become {}", to.as_str()),
    }
    Ok(())
}

pub async fn exceptions_list(data_dir: &Path, state: Option<String>, json: bool) -> anyhow::Result<()> {
    let store = open(data_dir)?;
    let rows = store.exceptions(state, 10_000).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no exceptions");
    }
    for x in rows {
        println!(
            "{:>6}  {:<16} {:<13} {:<20} {:<22} {}",
            x.id,
            x.pattern,
            x.state,
            x.order_ref,
            x.field.as_deref().unwrap_or("-"),
            x.detail
        );
    }
    Ok(())
}
