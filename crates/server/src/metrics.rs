//! `GET /metrics` in Prometheus' text format. Counters and histograms are counted where things
//! happen (`handoff_engine::telemetry`, the store's writer); the depths (commands by state,
//! open exceptions by pattern, quarantine by system) are read from the store at each scrape,
//! so they are exact after a restart.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use handoff_model::Pattern;
use handoff_store::Store;
use metrics::gauge;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppState;

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often the histograms' pending samples are folded into their buckets (the exporter's
/// own default).
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process's recorder (once; later calls return the same handle). A process that
/// never calls it (the simulation, most tests) counts nothing and pays nothing.
pub fn install() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0])
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // A histogram keeps each sample until an upkeep folds it into its buckets; only a
        // scrape or this does it, so a hub nobody scrapes grew by its samples (about 24 bytes
        // an order, docs/BENCHMARKS.md) without it. The exporter's own installer spawns the
        // same upkeep; the bare recorder this hub installs does not.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).stack_size(64 * 1024).spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            }
        });
        if let Err(error) = spawned {
            tracing::error!(message = "the metrics' upkeep could not start; histograms grow until scraped", error = %error);
        }
        // Another recorder installed first (a test harness) keeps counting; ours then only
        // renders the depths.
        let _ = metrics::set_global_recorder(recorder);
        handoff_engine::telemetry::describe();
        handle
    })
}

pub(crate) async fn scrape<S: Store + Clone>(State(state): State<Arc<AppState<S>>>) -> Response {
    let Some(handle) = RECORDER.get() else {
        return (StatusCode::NOT_FOUND, "metrics are not enabled in this process").into_response();
    };
    if let Err(error) = depths(&state.store, &state.contract).await {
        tracing::error!(message = "reading depths for /metrics failed", error = %error);
        return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}

async fn depths<S: Store>(store: &S, contract: &handoff_contract::Contract) -> handoff_store::Result<()> {
    let counts = store.command_counts().await?;
    for state in ["pending", "in_flight", "dead_lettered"] {
        let n = counts.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
        gauge!("handoff_commands", "state" => state).set(n as f64);
    }
    let open = store.open_exceptions_by_pattern().await?;
    for pattern in Pattern::ALL {
        let n = open.iter().find(|(p, _)| p == pattern.as_str()).map_or(0, |(_, n)| *n);
        gauge!("handoff_open_exceptions", "pattern" => pattern.as_str()).set(n as f64);
    }
    let held = store.quarantine_depth().await?;
    for system in contract.systems.keys() {
        let n = held.iter().find(|(s, _)| s == system).map_or(0, |(_, n)| *n);
        gauge!("handoff_quarantine_depth", "system" => system.clone()).set(n as f64);
    }
    Ok(())
}
