//! Read and repair commands that work on the store directly, with or without a running hub
//! (SQLite's WAL lets them share the file; PostgreSQL is shared by design), on either backend.

use anyhow::{Context, bail};
use std::path::Path;

use handoff_contract::data_dir::StoreAt;
use handoff_server::console::dry_run;
use handoff_store::{Replay, Store};
use jiff::Timestamp;

use crate::store::open;

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

pub async fn order_show(at: &StoreAt, order_ref: &str, json: bool) -> anyhow::Result<()> {
    let store = open(at).await?;
    let t = store.order_timeline(order_ref.to_owned()).await?;
    if t.is_empty() {
        bail!("no order {order_ref:?} in {}", at.display());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&t)?);
        return Ok(());
    }
    println!("order {order_ref}");
    print_timeline(&t);
    Ok(())
}

/// The ledger and the time-ordered events, commands, attempts, exceptions and audit of an order.
fn print_timeline(t: &handoff_store::Timeline) {
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
    for q in &t.quarantined {
        let line = format!("held     {:<14} quarantine {} [{}] {}: {}", q.system, q.id, q.state, q.field, q.reason);
        lines.push((q.received_at, line));
    }
    lines.sort_by_key(|(at, _)| *at);
    println!("\ntimeline");
    for (at, line) in lines {
        println!("  {}  {line}", time(at));
    }
}

pub async fn dlq_list(at: &StoreAt, json: bool) -> anyhow::Result<()> {
    let store = open(at).await?;
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
    at: &StoreAt,
    id: Option<i64>,
    actor: String,
    mapping: Option<ReplayMapping>,
) -> anyhow::Result<()> {
    let store = open(at).await?;
    let letters: Vec<_> =
        store.dead_letters(10_000).await?.into_iter().filter(|c| id.is_none_or(|id| c.id == id)).collect();
    let now = Timestamp::now();
    for c in &letters {
        let choice = match mapping {
            Some(ReplayMapping::AsRan) => dry_run::ReplayMapping::AsRan,
            Some(ReplayMapping::Latest) => dry_run::ReplayMapping::Latest,
            None => match dry_run::ran_with(&store, c).await? {
                Some(ran) => bail!(
                    "dead letter {} ran with mapping {ran}: choose --mapping as-ran or --mapping latest \
                     (`dlq replay --dry-run --config ...` shows the difference)",
                    c.id
                ),
                None => continue,
            },
        };
        dry_run::pin(&store, c, choice, actor.clone(), now).await?;
    }
    let which = id.map_or(Replay::All, Replay::One);
    let n = store.replay(which, actor, Timestamp::now()).await?;
    if n == 0 && id.is_some() {
        bail!("no dead letter {}", id.unwrap_or_default());
    }
    println!("replayed {n} dead letter(s); a running hub sends them within a second");
    Ok(())
}

/// `dlq abandon`: a dead letter given up on, audited; its order's later commands go on.
pub async fn dlq_abandon(at: &StoreAt, id: i64, actor: String, reason: String) -> anyhow::Result<()> {
    let store = open(at).await?;
    if !store.abandon(id, actor, Some(reason), Timestamp::now()).await? {
        bail!("no dead letter {id}");
    }
    println!("dead letter {id} abandoned: it will not be sent; its order's later commands go on");
    Ok(())
}

/// `dlq replay --dry-run`: what replaying would send, against what was sent (or held).
pub async fn dlq_dry_run(at: &StoreAt, id: Option<i64>, config: &Path) -> anyhow::Result<()> {
    let store = open(at).await?;
    let transform = crate::held::Transform::load(config)?;
    let letters: Vec<_> =
        store.dead_letters(10_000).await?.into_iter().filter(|c| id.is_none_or(|id| c.id == id)).collect();
    if letters.is_empty() {
        bail!("no dead letter{}", id.map(|id| format!(" {id}")).unwrap_or_default());
    }
    for c in &letters {
        let ran = dry_run::ran_with(&store, c).await?;
        for line in transform.dry_run(c, ran.as_deref())? {
            println!("{line}");
        }
    }
    println!("dry run: nothing replayed");
    Ok(())
}

/// `mapping capture ID`: a dead letter becomes a golden case of its mapping.
pub async fn mapping_capture(at: &StoreAt, id: i64, config: &Path) -> anyhow::Result<()> {
    let store = open(at).await?;
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
    at: &StoreAt,
    id: i64,
    to: handoff_model::ExceptionState,
    actor: String,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let store = open(at).await?;
    match store.move_exception(id, to, actor, reason, Timestamp::now()).await? {
        handoff_store::Moved::Done(x) => {
            println!("exception {} ({}, order {}) is {}", x.id, x.pattern, x.order_ref, x.state)
        }
        handoff_store::Moved::NotFound => bail!("no exception {id}"),
        handoff_store::Moved::Refused { from } => bail!("exception {id} is {from}; it cannot become {}", to.as_str()),
    }
    Ok(())
}

pub async fn exceptions_list(
    at: &StoreAt,
    state: Option<handoff_model::ExceptionState>,
    json: bool,
) -> anyhow::Result<()> {
    let store = open(at).await?;
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

/// `exceptions show ID`: the evidence pack.
pub async fn exception_show(at: &StoreAt, id: i64, json: bool) -> anyhow::Result<()> {
    let store = open(at).await?;
    let Some(pack) = handoff_engine::actions::evidence(&store, id).await? else { bail!("no exception {id}") };
    if json {
        println!("{}", serde_json::to_string_pretty(&pack)?);
        return Ok(());
    }
    let x = &pack.exception;
    println!("exception {} [{}]: {} on order {}", x.id, x.state, x.pattern, x.order_ref);
    println!("  {}", x.detail);
    let facts = [
        ("flow", x.flow.clone()),
        ("channel", x.channel.clone()),
        ("field", x.field.clone()),
        ("mapping", x.mapping.clone()),
        ("command", x.command_id.map(|c| c.to_string())),
        ("subject", x.subject.clone().filter(|s| !s.is_empty())),
        ("money", x.amount.as_ref().map(|a| format!("{a} {}", x.currency.as_deref().unwrap_or("")))),
    ];
    for (name, value) in facts {
        if let Some(value) = value {
            println!("  {name:<8} {value}");
        }
    }
    println!("  opened   {}   updated {}", time(x.opened_at), time(x.updated_at));
    if !pack.action.is_null() {
        println!("\naction (`handoff exceptions act {id}`)\n  {}", pack.action);
    }
    if !pack.evidence.is_null() {
        println!("\nrule {}", pack.evidence["rule"].as_str().unwrap_or("?"));
        println!("finding\n  {}", pack.evidence["finding"]);
        println!("ledger the rule judged\n{}", serde_json::to_string_pretty(&pack.evidence["ledger"])?);
    }
    print_timeline(&pack.timeline);
    Ok(())
}

/// `exceptions act ID | --cluster KEY`: take the suggested action on one exception, or on every
/// open member of a cluster.
pub async fn exception_act(
    at: &StoreAt,
    config: &Path,
    id: Option<i64>,
    cluster: Option<String>,
    approve: bool,
    actor: String,
    json: bool,
) -> anyhow::Result<()> {
    let store = open(at).await?;
    let contract = handoff_contract::Contract::load(config)?;
    // A duplicate's cancel is queued only for a target that can address one record.
    let mappings = std::sync::Arc::new(crate::held::mappings_of(&contract, config)?);
    let targets =
        crate::serve::targets(&contract, &mappings).context("building the targets to ask what each can do")?;
    let ids = match (id, cluster) {
        (Some(id), _) => vec![id],
        (None, Some(key)) => {
            let rows = store.exceptions(None, CLUSTERED).await?;
            let clusters = handoff_engine::clusters::clusters(&rows);
            let Some(c) = handoff_engine::clusters::find(&clusters, &key) else {
                bail!("no cluster {key:?} (see `handoff exceptions clusters`)")
            };
            if c.actionable.is_empty() {
                bail!("cluster {} has no open exception to act on", c.id);
            }
            c.actionable.iter().rev().copied().collect()
        }
        (None, None) => bail!("name an exception id or --cluster KEY"),
    };
    let mut outcomes = Vec::new();
    let mut failed = 0;
    for id in ids {
        let held = store.exception(id).await?.and_then(|x| Some((handoff_engine::quarantine::held_by(&x)?, x)));
        let taken = match held {
            Some((held, x)) => crate::quarantine::act(&store, &contract, &x, held, &actor).await,
            None => handoff_engine::actions::take(&store, &contract, &targets, id, &actor, approve, Timestamp::now())
                .await
                .map_err(anyhow::Error::from),
        };
        match taken {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                failed += 1;
                eprintln!("exception {id}: {e:#}");
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        for o in &outcomes {
            println!("exception {} ({}, order {}): {}", o.exception_id, o.pattern, o.order_ref, o.action);
            for line in &o.lines {
                println!("  {line}");
            }
        }
        let queued: usize = outcomes.iter().map(|o| o.queued.len()).sum();
        if outcomes.len() + failed > 1 {
            println!("{} acted on, {queued} command(s) queued, {failed} refused", outcomes.len());
        }
        if queued > 0 {
            println!("a running hub sends queued commands within a second");
        }
    }
    if outcomes.is_empty() {
        bail!("no action taken");
    }
    Ok(())
}

/// Exceptions clustered at most (the newest).
const CLUSTERED: usize = 100_000;

/// `exceptions clusters`: exceptions grouped by cause, largest first.
pub async fn exception_clusters(
    at: &StoreAt,
    state: Option<handoff_model::ExceptionState>,
    json: bool,
) -> anyhow::Result<()> {
    let store = open(at).await?;
    let rows = store.exceptions(state, CLUSTERED).await?;
    let clusters = handoff_engine::clusters::clusters(&rows);
    if json {
        println!("{}", serde_json::to_string_pretty(&clusters)?);
        return Ok(());
    }
    if clusters.is_empty() {
        println!("no exceptions");
    }
    let total = rows.len().max(1);
    for (rank, c) in clusters.iter().enumerate() {
        let money: Vec<String> = c.money.iter().map(|(cur, a)| format!("{a} {cur}")).collect();
        let states: Vec<String> = c.states.iter().map(|(s, n)| format!("{s} {n}")).collect();
        println!(
            "{:>3}. {}  {} exception(s), {} order(s), {:.0}% of all{}",
            rank + 1,
            c.id,
            c.exceptions,
            c.orders,
            100.0 * c.exceptions as f64 / total as f64,
            if money.is_empty() { String::new() } else { format!(", {}", money.join(" + ")) }
        );
        let key = &c.key;
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        println!(
            "     pattern {}  flow {}  field {}  channel {}  mapping {}",
            key.pattern,
            opt(&key.flow),
            opt(&key.field),
            opt(&key.channel),
            opt(&key.mapping)
        );
        println!("     {}", key.fingerprint);
        println!("     {}  first {}  last {}", states.join(", "), time(c.first_seen), time(c.last_seen));
    }
    if !clusters.is_empty() {
        println!("\nfix the cause once, then `handoff exceptions act --cluster ID` acts on every open member");
    }
    Ok(())
}
