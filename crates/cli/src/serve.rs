//! `handoff serve`: the hub, on the embedded SQLite store or on a PostgreSQL database that
//! several hubs share.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use handoff_contract::Contract;
use handoff_contract::data_dir::StoreAt;
use handoff_engine::{Clock, Engine, Rng, SystemClock, Targets};
use handoff_server::AppState;
use handoff_sim::http::MockServer;
use handoff_sim::{Faults, MockSystem};
use handoff_store::Store;
use handoff_store::heartbeat::{Beat, Heartbeats, Pulse};
use handoff_store::postgres::{PgOptions, PgStore};
use handoff_store::sqlite::{SqliteOptions, SqliteStore};

pub async fn run(
    config: &Path,
    store: &StoreAt,
    listen: Option<String>,
    simulate: bool,
    lease: Option<jiff::SignedDuration>,
) -> anyhow::Result<()> {
    handoff_server::metrics::install();
    let mut contract = Contract::load(config)?;
    if let Some(listen) = listen {
        // `--listen` is the address the hub serves on, and decides the cookies as `listen` would.
        contract.hub.listen = listen;
    }
    let contract = Arc::new(contract);
    match store {
        StoreAt::Dir(data_dir) => {
            let sqlite = SqliteStore::open(data_dir, SqliteOptions::default())
                .with_context(|| format!("opening the store in {}", data_dir.display()))?;
            let pulse = sqlite.writer_pulse();
            let backend = Backend { store: sqlite, pulse: Some(pulse), lead: None, at: store.display() };
            hub(config, contract, backend, simulate).await
        }
        StoreAt::Postgres(url) => {
            let lease = lease_of(&contract, lease)?;
            let pg = PgStore::open(url, PgOptions { lease, ..PgOptions::default() })
                .await
                .with_context(|| format!("opening the store at {}", store.display()))?;
            let backend = Backend { store: pg.clone(), pulse: None, lead: Some(pg), at: store.display() };
            hub(config, contract, backend, simulate).await
        }
    }
}

/// How long a claim is this hub's alone: outlasting any attempt (a target's time-out, then its
/// settle time), by default twice over and at least a minute; a shorter one asked for (tests
/// pausing a hub past its lease) must still outlast one attempt.
fn lease_of(contract: &Contract, asked: Option<jiff::SignedDuration>) -> anyhow::Result<std::time::Duration> {
    let longest = contract.systems.values().map(|s| s.timeout + s.settle).max().unwrap_or_default();
    match asked {
        None => Ok((longest * 2).unsigned_abs().max(std::time::Duration::from_secs(60))),
        Some(lease) if lease > longest => Ok(lease.unsigned_abs()),
        Some(lease) => anyhow::bail!(
            "--lease {lease:#} is not longer than one attempt can last ({longest:#}: the longest time-out plus settle time)"
        ),
    }
}

/// The store a hub runs on.
struct Backend<S> {
    store: S,
    /// The store's writer thread, for `/ready`, if it has one.
    pulse: Option<Arc<Pulse>>,
    /// The database several hubs share, where the parts that must run alone are led.
    lead: Option<PgStore>,
    /// Where it is, for the log.
    at: String,
}

/// The hub on any store.
async fn hub<S: Store + Clone>(
    config: &Path,
    contract: Arc<Contract>,
    backend: Backend<S>,
    simulate: bool,
) -> anyhow::Result<()> {
    let Backend { store, pulse, lead, at: store_at } = backend;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    handoff_engine::dispatcher::recover_in_flight(&store, &contract, now).await?;
    let mappings = Arc::new(crate::held::mappings_of(&contract, config)?);
    let targets = targets(&contract, &mappings)?;
    let engine = Engine {
        contract: contract.clone(),
        store: store.clone(),
        targets: targets.clone(),
        clock: clock.clone(),
        rng: Rng::from_entropy(),
        recent: Arc::default(),
    };

    // What `/ready` watches: each part beats while it runs, and stops beating if it dies.
    let heartbeats = Heartbeats::default();
    if let Some(pulse) = pulse {
        heartbeats.watch(pulse);
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engine = Arc::new(engine);
    let parts = Parts { lead: lead.clone(), heartbeats: heartbeats.clone(), stopped: stopped.clone() };
    let intake = {
        let engine = engine.clone();
        parts.spawn(handoff_store::postgres::INTAKE_LEAD, handoff_engine::intake::PERIOD, move |beat, stopped| {
            engine.intake().beating(beat).run(stopped)
        })
    };
    // Every hub dispatches: claims are shared (see docs/postgres.md).
    let dispatcher = engine.dispatcher().beating(heartbeats.register("dispatcher", handoff_engine::dispatcher::PERIOD));
    let dispatcher = tokio::spawn(Arc::new(dispatcher).run(contract.hub.max_in_flight, stopped.clone()));
    let rules = {
        let engine = engine.clone();
        parts.spawn(handoff_store::postgres::RULES_LEAD, handoff_engine::rules::PERIOD, move |beat, stopped| {
            engine.rules().beating(beat).run(stopped)
        })
    };
    let purge = {
        let (retention, store, clock) = (contract.retention.clone(), store.clone(), clock.clone());
        // The purge has no heartbeat of its own; its lead is still one hub's at a time.
        parts.spawn_unwatched(handoff_store::postgres::PURGE_LEAD, move |stopped| {
            handoff_engine::retention::run(retention.clone(), store.clone(), clock.clone(), stopped)
        })
    };

    let addr = contract.hub.listen.clone();
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("listening on {addr}"))?;
    let admin = match &contract.hub.admin_listen {
        Some(admin) => Some(
            tokio::net::TcpListener::bind(admin)
                .await
                .with_context(|| format!("listening on {admin} (hub.admin_listen)"))?,
        ),
        None => None,
    };
    if simulate {
        simulate_targets(&contract, &listener.local_addr()?.to_string()).await?;
    }
    // Pollers start once the simulated systems (if any) listen.
    let mut pollers = Vec::new();
    for (name, system) in &contract.systems {
        let (Some(poller), Some(settings)) = (handoff_connectors::poller(name, system)?, &system.poll) else {
            continue;
        };
        let every = settings.every.unsigned_abs();
        let poller =
            handoff_engine::quarantine::naming_flow(poller, handoff_engine::quarantine::inbound_flow(&contract, name));
        let period = handoff_engine::poll::period(system.timeout.unsigned_abs());
        let (name, store, clock) = (name.clone(), store.clone(), clock.clone());
        pollers.push(parts.spawn(&handoff_store::postgres::poller_lead(&name), period, move |beat, stopped| {
            handoff_engine::poll::run(
                name.clone(),
                poller.clone(),
                store.clone(),
                clock.clone(),
                every,
                stopped,
                Some(beat),
            )
        }));
    }
    tracing::info!(message = "handoff serving", addr = %listener.local_addr()?, store = %store_at, systems = contract.systems.len(), flows = contract.flows.len());
    let drift = Arc::new(match contract.mappings_dir(config) {
        Some(dir) => handoff_mapping::drift::Watch::load(&dir)?,
        None => handoff_mapping::drift::Watch::shipped()?,
    });
    let limits = contract.hub.limits.clone();
    let recent = engine.recent.clone();
    let state = Arc::new(AppState { contract, store, clock, drift, mappings, heartbeats, targets, recent });
    match admin {
        None => handoff_server::serve(listener, handoff_server::router(state), &limits, shutdown_signal()).await?,
        Some(admin) => {
            // The console and the API on their own address; the public one serves webhooks only.
            tracing::info!(message = "console and API serving", addr = %admin.local_addr()?);
            let public = handoff_server::serve(
                listener,
                handoff_server::public_router(state.clone()),
                &limits,
                shutdown_signal(),
            );
            let admin = handoff_server::serve(admin, handoff_server::admin_router(state), &limits, shutdown_signal());
            let (public, admin) = tokio::join!(public, admin);
            public?;
            admin?;
        }
    }

    tracing::info!(message = "stopping: finishing commands in flight");
    let _ = stop.send(true);
    let _ = tokio::join!(intake, dispatcher, rules, purge);
    for poller in pollers {
        let _ = poller.await;
    }
    Ok(())
}

/// Starts the hub's parts. On a store several hubs share (`lead`), a part that must run in one
/// hub at a time (intake, the rules driver, each poller, the purge) runs only while this hub
/// leads it: until then it waits (and `/ready` shows it waiting), and if the lead is lost it
/// stops and waits again. On SQLite each part simply runs.
#[derive(Clone)]
struct Parts {
    lead: Option<PgStore>,
    heartbeats: Heartbeats,
    stopped: tokio::sync::watch::Receiver<bool>,
}

impl Parts {
    fn spawn<F, Fut>(&self, part: &str, period: std::time::Duration, mut start: F) -> tokio::task::JoinHandle<()>
    where
        F: FnMut(Beat, tokio::sync::watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let heartbeats = self.heartbeats.clone();
        let name = part.to_owned();
        let start = move |stopped| start(heartbeats.register(name.clone(), period), stopped);
        let Parts { lead, heartbeats, stopped } = self.clone();
        tokio::spawn(led(lead, part.to_owned(), Some(heartbeats), stopped, start))
    }

    fn spawn_unwatched<F, Fut>(&self, part: &str, start: F) -> tokio::task::JoinHandle<()>
    where
        F: FnMut(tokio::sync::watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(led(self.lead.clone(), part.to_owned(), None, self.stopped.clone(), start))
    }
}

async fn led<F, Fut>(
    lead: Option<PgStore>,
    part: String,
    heartbeats: Option<Heartbeats>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    mut start: F,
) where
    F: FnMut(tokio::sync::watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(pg) = lead else { return start(stopped).await };
    loop {
        // Following: a watched part waits for the lead, and says so.
        let following = heartbeats.as_ref().map(|h| h.register(part.clone(), std::time::Duration::from_secs(60)));
        if let Some(following) = &following {
            following.waiting();
        }
        let mut leadership = match pg.lead(&part, &mut stopped).await {
            Ok(Some(leadership)) => leadership,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(message = "cannot ask for the lead", part = %part, error = %error);
                continue;
            }
        };
        tracing::info!(message = "leading", part = %part);
        let (stop_part, part_stopped) = tokio::sync::watch::channel(false);
        let mut run = tokio::spawn(start(part_stopped));
        // The part registers its own beat as it starts, replacing the follower's.
        drop(following);
        let lost = tokio::select! {
            _ = leadership.lost() => true,
            _ = stopped.wait_for(|stop| *stop) => false,
            _ = &mut run => return,
        };
        let _ = stop_part.send(true);
        let _ = run.await;
        if !lost {
            return;
        }
        tracing::warn!(message = "lost the lead; following", part = %part);
    }
}

/// The contract's targets, as the hub sends to them (`exceptions act` asks them what they can do).
pub(crate) fn targets(contract: &Contract, mappings: &Arc<handoff_mapping::Mappings>) -> anyhow::Result<Targets> {
    let mut targets: Targets = HashMap::new();
    for (name, system) in &contract.systems {
        if let Some(target) = handoff_connectors::target_with(name, system, mappings)? {
            targets.insert(name.clone(), target);
        }
    }
    Ok(targets)
}

/// Serves a simulated system at each target's `base_url`; each announces its own events to
/// the hub's webhook for that system.
async fn simulate_targets(contract: &Contract, hub_addr: &str) -> anyhow::Result<()> {
    for (name, system) in &contract.systems {
        let Some(base_url) = &system.base_url else { continue };
        let url = reqwest::Url::parse(base_url).with_context(|| format!("systems.{name}.base_url"))?;
        let addr = format!("{}:{}", url.host_str().unwrap_or("127.0.0.1"), url.port_or_known_default().unwrap_or(80));
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("simulating {name} on {addr} (is something else listening there?)"))?;
        let mock = Arc::new(MockSystem::new(name.clone(), Faults::default(), 1));
        let dialect = handoff_sim::dialect::for_system(system);
        let server = MockServer::new(mock, dialect, Some(format!("http://{hub_addr}/webhooks/{name}")));
        tracing::info!(message = "simulated system serving", system = %name, addr = %addr);
        tokio::spawn(server.serve(listener));
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
