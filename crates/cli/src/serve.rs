//! `handoff serve`: the hub.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use handoff_contract::Contract;
use handoff_engine::{Clock, Engine, Rng, SystemClock, Targets};
use handoff_server::AppState;
use handoff_sim::http::MockServer;
use handoff_sim::{Faults, MockSystem};
use handoff_store::heartbeat::Heartbeats;
use handoff_store::sqlite::{SqliteOptions, SqliteStore};

pub async fn run(config: &Path, data_dir: &Path, listen: Option<String>, simulate: bool) -> anyhow::Result<()> {
    handoff_server::metrics::install();
    let mut contract = Contract::load(config)?;
    if let Some(listen) = listen {
        // `--listen` is the address the hub serves on, and decides the cookies as `listen` would.
        contract.hub.listen = listen;
    }
    let contract = Arc::new(contract);
    let store = SqliteStore::open(data_dir, SqliteOptions::default())
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
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
    };

    // What `/ready` watches: each part beats while it runs, and stops beating if it dies.
    let heartbeats = Heartbeats::default();
    heartbeats.watch(store.writer_pulse());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let intake = engine.intake().beating(heartbeats.register("intake", handoff_engine::intake::PERIOD));
    let intake = tokio::spawn(intake.run(stopped.clone()));
    let dispatcher = engine.dispatcher().beating(heartbeats.register("dispatcher", handoff_engine::dispatcher::PERIOD));
    let dispatcher = tokio::spawn(Arc::new(dispatcher).run(contract.hub.max_in_flight, stopped.clone()));
    let rules = engine.rules().beating(heartbeats.register("rules", handoff_engine::rules::PERIOD));
    let rules = tokio::spawn(rules.run(stopped.clone()));
    let purge = tokio::spawn(handoff_engine::retention::run(
        contract.retention.clone(),
        store.clone(),
        clock.clone(),
        stopped.clone(),
    ));

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
        let beat = heartbeats.register(format!("poller:{name}"), period);
        let run = handoff_engine::poll::run(
            name.clone(),
            poller,
            store.clone(),
            clock.clone(),
            every,
            stopped.clone(),
            Some(beat),
        );
        pollers.push(tokio::spawn(run));
    }
    tracing::info!(message = "handoff serving", addr = %listener.local_addr()?, data = %store.path().display(), systems = contract.systems.len(), flows = contract.flows.len());
    let drift = Arc::new(match contract.mappings_dir(config) {
        Some(dir) => handoff_mapping::drift::Watch::load(&dir)?,
        None => handoff_mapping::drift::Watch::shipped()?,
    });
    let limits = contract.hub.limits.clone();
    let state = Arc::new(AppState { contract, store, clock, drift, heartbeats, targets });
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
