//! `handoff bench mapping`: a full Shopify order webhook from raw bytes to the NetSuite
//! salesOrder payload (connector mapping, canonical command, jq mapping compiled once,
//! pre-flight check), against `serde_json` parsing the same bytes into a `Value`, on one core
//! in the same run.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use handoff_mapping::Mappings;
use serde_json::{Value, json};

/// The order the issue names: Shopify's 2026-07 REST order, about 17 KB compact.
const FIXTURE: &str = "../shared/fixtures/shopify/rest_2026-07_order_get.json";

pub fn run(payload: Option<&Path>, iterations: usize) -> anyhow::Result<()> {
    let path = payload.map(Path::to_path_buf).unwrap_or_else(|| Path::new(FIXTURE).to_path_buf());
    let text = std::fs::read(&path).with_context(|| format!("reading {} (give --payload FILE)", path.display()))?;
    let mut order: Value = serde_json::from_slice(&text)?;
    if let Some(inner) = order.get("order").cloned() {
        order = inner; // the webhook body is the resource without the REST wrapper
    }
    let body = serde_json::to_vec(&order)?;
    let mappings = Mappings::shipped()?;
    let settings = json!({"customer_id": null, "version_field": "custbody_handoff_version"});
    let header = |name: &str| match name {
        "x-shopify-topic" => Some("orders/create"),
        "x-shopify-event-id" => Some("bench-1"),
        "x-shopify-api-version" => Some("2026-07"),
        _ => None,
    };
    let to_netsuite = |bytes: &[u8]| -> anyhow::Result<String> {
        let event = handoff_connectors::shopify::event(&header, bytes)?;
        let command = json!({"external_ref": event.order_ref, "version": event.version, "order": event.order});
        let (_, payload) = mappings
            .transform("netsuite", "sales_order", &command, &settings)
            .map_err(|h| anyhow::anyhow!("held at {}: {}", h.field, h.reason))?;
        Ok(payload)
    };
    println!("payload: {} ({} bytes compact); {iterations} iterations each, one thread", path.display(), body.len());
    println!("netsuite payload: {} bytes", to_netsuite(&body)?.len());

    // Rounds alternate between the two, so that a busy machine slows both alike; each side's
    // median round is its figure.
    const ROUNDS: usize = 5;
    let per_round = (iterations / ROUNDS).max(1);
    let rate = |f: &dyn Fn() -> anyhow::Result<usize>| -> anyhow::Result<f64> {
        let start = Instant::now();
        let mut sink = 0;
        for _ in 0..per_round {
            sink += f()?;
        }
        std::hint::black_box(sink);
        Ok(per_round as f64 / start.elapsed().as_secs_f64())
    };
    let parse = || Ok(serde_json::from_slice::<Value>(std::hint::black_box(&body))?.as_object().map_or(0, |o| o.len()));
    let mapped = || Ok(to_netsuite(std::hint::black_box(&body))?.len());
    for _ in 0..per_round / 10 {
        parse()?;
        mapped()?;
    }
    let (mut parses, mut maps) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        parses.push(rate(&parse)?);
        maps.push(rate(&mapped)?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (parse, mapped) = (median(&mut parses), median(&mut maps));
    println!("serde_json::Value parse: {parse:>10.0} orders/s (median of {ROUNDS} alternating rounds)");
    println!("raw bytes -> NetSuite:   {mapped:>10.0} orders/s (reader, prepare, jq, pre-flight, totals check)");
    println!("ratio: {:.2} (the floor is 0.80)", mapped / parse);
    Ok(())
}
