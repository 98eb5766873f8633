//! What reading a canonical webhook costs: the JSON limits checked and then the event parsed
//! (two passes), the two in one pass (`json_limits::parse`), and the plain parse alone, on
//! the benchmarks' event of 22 lines. Prints nanoseconds an event, three rounds:
//! `cargo run --release -p handoff-connectors --example one_pass`.

use std::hint::black_box;
use std::time::Instant;

use handoff_connectors::json_limits;
use handoff_contract::JsonLimits;
use handoff_model::InboundEvent;
use serde_json::json;

const EVENTS: u32 = 200_000;

fn main() {
    let lines: Vec<_> = (0..22)
        .map(|n| json!({"sku": format!("SKU-00007-{n}"), "quantity": 1 + n % 3, "unit_price": "12.50", "tax": "2.50"}))
        .collect();
    let body = json!({
        "event_id": "bench-7", "kind": "order.created", "order_ref": "#B7",
        "occurred_at": "2026-11-26T10:00:00Z", "version": 1,
        "order": {
            "order_ref": "#B7", "channel": "web",
            "customer": {"email": "customer7@example.com", "name": "Ada Lovelace"},
            "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Square", "line2": "Flat 3",
                                 "city": "London", "region": "Greater London", "postal_code": "SW1Y 4JH", "country": "GB"},
            "lines": lines, "currency": "GBP",
            "totals": {"subtotal": "550.00", "tax": "0", "shipping": "0", "discount": "0", "total": "550.00"},
            "placed_at": "2026-11-26T09:59:58Z"
        }
    })
    .to_string();
    let limits = JsonLimits::default();
    let time = |read: &dyn Fn() -> InboundEvent| {
        let start = Instant::now();
        for _ in 0..EVENTS {
            black_box(read());
        }
        start.elapsed().as_nanos() as f64 / f64::from(EVENTS)
    };
    for round in 1..=3 {
        let two = time(&|| {
            json_limits::check(&body, &limits).expect("within the limits");
            serde_json::from_str(&body).expect("an event")
        });
        let one = time(&|| json_limits::parse(&body, &limits).expect("an event within the limits"));
        let plain = time(&|| serde_json::from_str(&body).expect("an event"));
        println!(
            "round {round}: checked then parsed {two:.0} ns, in one pass {one:.0} ns, parsed alone {plain:.0} ns ({} bytes)",
            body.len()
        );
    }
}
