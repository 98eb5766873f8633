//! `handoff mock`: a simulated system on loopback, for tests, demos and trying a contract.

use std::sync::Arc;

use anyhow::Context;
use handoff_contract::ConnectorKind;
use handoff_sim::http::MockServer;
use handoff_sim::{Faults, MockSystem};

fn connector(s: &str) -> Result<ConnectorKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| e.to_string())
}

#[derive(clap::Args)]
pub struct MockArgs {
    /// The system's name; record ids are prefixed with it.
    #[arg(long, default_value = "erp")]
    name: String,
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: String,
    /// The vendor protocol it speaks (a contract's `connector`).
    #[arg(long, default_value = "http-json", value_parser = connector)]
    connector: ConnectorKind,
    /// The hub's webhook URL for this system; `POST /_fulfil` announces fulfillments there.
    #[arg(long)]
    notify: Option<String>,
    /// Seed of the fault dice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Apply, then drop the response, at this rate (0..1).
    #[arg(long, default_value_t = 0.0)]
    lost_ack: f64,
    /// Drop the request unapplied at this rate.
    #[arg(long, default_value_t = 0.0)]
    lost_request: f64,
    /// Apply, then answer after --slow-ack-ms, at this rate.
    #[arg(long, default_value_t = 0.0)]
    slow_ack: f64,
    #[arg(long, default_value_t = 10_000)]
    slow_ack_ms: u64,
    /// Apply, then answer 503, at this rate.
    #[arg(long, default_value_t = 0.0)]
    error_after_apply: f64,
    /// Answer 429 with Retry-After at this rate.
    #[arg(long, default_value_t = 0.0)]
    throttle: f64,
    #[arg(long, default_value_t = 1)]
    retry_after_s: u64,
    /// Answer everything 503 (change at run time with PUT /_faults).
    #[arg(long)]
    outage: bool,
    /// A field every order must carry (repeatable), e.g. customer.email.
    #[arg(long = "require")]
    required_fields: Vec<String>,
    /// Ignore Idempotency-Key, like a system without idempotency support.
    #[arg(long)]
    no_idempotency: bool,
}

pub async fn run(args: MockArgs) -> anyhow::Result<()> {
    let faults = Faults {
        lost_ack: args.lost_ack,
        lost_request: args.lost_request,
        slow_ack: args.slow_ack,
        slow_ack_ms: args.slow_ack_ms,
        error_after_apply: args.error_after_apply,
        throttle: args.throttle,
        retry_after_s: args.retry_after_s,
        outage: args.outage,
        required_fields: args.required_fields,
        idempotency_keys: !args.no_idempotency,
    };
    let system = Arc::new(MockSystem::new(args.name.clone(), faults, args.seed));
    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(message = "mock system serving", name = %args.name, addr = %listener.local_addr()?);
    let dialect = handoff_sim::dialect::for_connector(args.connector);
    MockServer::new(system, dialect, args.notify).serve(listener).await?;
    Ok(())
}
