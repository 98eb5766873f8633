//! `handoff bench rules`: events through the rules on one core, with 10^4 to 10^6 orders open.

use std::time::Instant;

use handoff_model::Money;
use handoff_rules::{Board, Deadlines, Fact, PaymentFact};
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn run(open: &[usize], events: usize) -> anyhow::Result<()> {
    println!("rules: {events} events per run on one core, applied to a board of open orders");
    println!("{:>12} {:>14} {:>12} {:>10}", "open orders", "events/s", "raised", "RSS MB");
    for &n in open {
        let (rate, raised) = measure(n, events);
        let rss_mb = crate::bench::rss_kb(std::process::id())? as f64 / 1024.0;
        println!("{n:>12} {rate:>14.0} {raised:>12} {rss_mb:>10.0}");
    }
    Ok(())
}

/// Opens `n` orders, then times `events` facts about random ones of them (ERP records, payments,
/// fulfillments, cancellations) while the clock walks past their deadlines.
fn measure(n: usize, events: usize) -> (f64, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
    let start: Timestamp = "2026-11-26T00:00:00Z".parse().expect("a start");
    let eur = "EUR".parse().expect("a currency");
    let money = |cents: i64| Money::new(rust_decimal::Decimal::new(cents, 2), eur);
    let mut board = Board::new(Deadlines::default());
    let mut changes = Vec::new();
    let refs: Vec<String> = (0..n).map(|i| format!("#{i}")).collect();
    let placed = |i: usize, at: Timestamp| Fact::Placed {
        channel: "shop".into(),
        at,
        total: money(1000 + (i % 9000) as i64),
        lines: 2,
        email: Some(format!("c{i}@example.com")),
    };
    // Open orders spread over the last day, each with an ERP record still to ship.
    for (i, order_ref) in refs.iter().take(n).enumerate() {
        let at = start + SignedDuration::from_secs((i % 86_400) as i64);
        board.apply(order_ref, placed(i, at), at, &mut changes);
        let erp = Fact::ErpRecord {
            system: "erp".into(),
            id: format!("SO-{i}"),
            at,
            total: Some(money(1000 + (i % 9000) as i64)),
            lines: Some(2),
            confidence: 1.0,
        };
        board.apply(order_ref, erp, at, &mut changes);
    }
    changes.clear();
    let mut now = start + SignedDuration::from_hours(24);
    let began = Instant::now();
    for e in 0..events {
        // A millisecond of simulated time per event: deadlines keep passing during the run.
        now += SignedDuration::from_millis(1);
        let i = rng.random_range(0..n);
        let fact = match rng.random_range(0..10) {
            0..=2 => Fact::ErpFulfilled { id: None, at: now },
            3..=4 => Fact::ChannelFulfilled { at: now },
            5 => Fact::Closed { at: now },
            6 => Fact::Payment(PaymentFact {
                payment_id: format!("pi_{e}"),
                amount: money(1000 + (i % 9000) as i64),
                captured_at: now,
                email: None,
                refunded: false,
                confidence: 1.0,
            }),
            // The ERP record changed again (a re-sync): every fact is about one of the `n`
            // open orders, so the board holds the number of orders the table says.
            _ => Fact::ErpRecord {
                system: "erp".into(),
                id: format!("SO-{i}"),
                at: now,
                total: Some(money(1000 + (i % 9000) as i64)),
                lines: Some(2),
                confidence: 1.0,
            },
        };
        board.apply(&refs[i], fact, now, &mut changes);
        if e % 1024 == 0 {
            board.advance(now, &mut changes);
        }
    }
    board.advance(now, &mut changes);
    let rate = events as f64 / began.elapsed().as_secs_f64();
    assert_eq!(board.len(), n, "the board holds exactly the open orders measured");
    (rate, changes.len())
}
