//! `handoff serve`: the hub.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use handoff_connectors::http_json::HttpJsonTarget;
use handoff_contract::{ConnectorKind, Contract};
use handoff_engine::{Clock, Engine, Rng, SystemClock, Target, Targets};
use handoff_server::AppState;
use handoff_store::Store;
use handoff_store::sqlite::{SqliteOptions, SqliteStore};

pub async fn run(config: &Path, data_dir: &Path, listen: Option<String>) -> anyhow::Result<()> {
    let contract = Arc::new(Contract::load(config)?);
    let store = SqliteStore::open(data_dir, SqliteOptions::default())
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    store.recover_in_flight(clock.now()).await?;
    let targets = targets(&contract)?;
    let engine = Engine { contract: contract.clone(), store: store.clone(), targets, clock: clock.clone(), rng: Rng::from_entropy() };

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let intake = tokio::spawn(engine.intake().run(stopped.clone()));
    let dispatcher = tokio::spawn(Arc::new(engine.dispatcher()).run(contract.hub.max_in_flight, stopped.clone()));

    let addr = listen.unwrap_or_else(|| contract.hub.listen.clone());
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("listening on {addr}"))?;
    tracing::info!(message = "handoff serving", addr = %listener.local_addr()?, data = %store.path().display(), systems = contract.systems.len(), flows = contract.flows.len());
    let app = handoff_server::router(Arc::new(AppState { contract, store, clock }));
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;

    tracing::info!(message = "stopping: finishing commands in flight");
    let _ = stop.send(true);
    let _ = tokio::join!(intake, dispatcher);
    Ok(())
}

fn targets(contract: &Contract) -> anyhow::Result<Targets> {
    let mut targets: Targets = HashMap::new();
    for (name, system) in &contract.systems {
        let Some(base_url) = &system.base_url else { continue };
        let timeout = system.timeout.unsigned_abs();
        let target: Arc<dyn Target> = match system.connector {
            ConnectorKind::HttpJson => Arc::new(HttpJsonTarget::new(base_url, timeout, system.idempotency_keys)?),
        };
        targets.insert(name.clone(), target);
    }
    Ok(targets)
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
