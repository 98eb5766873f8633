//! The failure patterns, judged on seeded simulations: every divergence a naive relay plants is
//! detected by the live rules when its deadline passes (recall 100%), nothing else is raised,
//! and the same week through Handoff's write path leaves none of them unresolved.

use handoff_model::Pattern;
use handoff_sim::demo::{self, Raised};
use handoff_sim::week::{self, Fate, RelayFaults};
use handoff_store::memory::MemoryStore;
use jiff::{SignedDuration, Timestamp};

const ORDERS: usize = 3000;

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

/// When the rule for a planted divergence must fire: its deadline after the relay dropped it.
fn deadline(s: &week::Story) -> Timestamp {
    let secs = |n| SignedDuration::from_secs(n);
    match (s.planted.expect("planted"), s.fate) {
        (Pattern::MissingOrder, _) => s.placed_at + mins(15),
        (Pattern::OrphanedPayment, _) => s.placed_at + secs(5) + mins(15),
        (Pattern::DuplicateDraft, _) => s.placed_at + secs(90),
        (Pattern::TransformMismatch, _) => s.placed_at + secs(30) + mins(15),
        (Pattern::StatusVoid, Fate::Ship(at)) => at + mins(30),
        (Pattern::RollbackGap, Fate::Cancel(at)) => at + mins(15),
        (p, fate) => panic!("{p:?} planted with {fate:?}"),
    }
}

#[tokio::test]
async fn every_planted_divergence_is_detected_at_its_deadline_and_nothing_else() {
    for seed in [1, 2] {
        let stories = week::stories(seed, ORDERS, &RelayFaults::default());
        let found = demo::observe(MemoryStore::new(), &week::relay_history(&stories), &|_| {}).await;
        let planted = week::planted(&stories);
        for pattern in Pattern::ALL.into_iter().filter(|p| *p != Pattern::DeadDelivery) {
            let truth: Vec<_> = planted.iter().filter(|(_, p)| *p == pattern).collect();
            assert!(!truth.is_empty(), "seed {seed}: the relay planted no {pattern}");
            for (key, _) in &truth {
                let story = stories
                    .iter()
                    .find(|s| {
                        s.planted == Some(pattern)
                            && (s.order_ref == *key || key.ends_with(s.order_ref.trim_start_matches('#')))
                    })
                    .expect("a story");
                let hit: Vec<&Raised> = found.iter().filter(|f| f.pattern == pattern && f.order_ref == *key).collect();
                assert_eq!(hit.len(), 1, "seed {seed}: {pattern} of {key} detected once");
                assert_eq!(hit[0].opened_at, deadline(story), "seed {seed}: {pattern} of {key} opens at its deadline");
            }
            let raised = found.iter().filter(|f| f.pattern == pattern).count();
            assert_eq!(raised, truth.len(), "seed {seed}: {pattern}: raised {raised}, planted {}", truth.len());
        }
        assert_eq!(found.len(), planted.len(), "seed {seed}: no exception beyond the planted ones");
    }
}

#[tokio::test]
async fn a_clean_week_raises_nothing() {
    let none = RelayFaults {
        create_lost: 0.0,
        create_resent: 0.0,
        field_dropped: 0.0,
        fulfillment_lost: 0.0,
        cancel_lost: 0.0,
        checkout_failed: 0.0,
    };
    let stories = week::stories(3, ORDERS, &none);
    assert!(stories.iter().any(|s| matches!(s.fate, Fate::Cancel(_))), "cancellations travel too");
    let found = demo::observe(MemoryStore::new(), &week::relay_history(&stories), &|_| {}).await;
    assert_eq!(found, vec![], "no false exception on a clean run");
}

#[tokio::test]
async fn through_handoff_the_week_leaves_nothing_unresolved_but_what_needs_a_person() {
    let c = demo::compare(MemoryStore::new(), MemoryStore::new(), 4, ORDERS, &RelayFaults::default(), &|_| {}, &|_| {})
        .await;
    assert_eq!(c.false_in_relay, 0);
    assert_eq!(c.erp_duplicates, 0, "no duplicate ERP order");
    for pattern in [Pattern::MissingOrder, Pattern::DuplicateDraft, Pattern::RollbackGap, Pattern::StatusVoid] {
        let row = c.rows.get(&pattern).cloned().unwrap_or_default();
        assert!(row.relay > 0, "the relay leaves {pattern} behind");
        assert_eq!(row.detected_in_relay, row.relay, "{pattern} detected in the relay's week");
        assert_eq!(row.open, 0, "Handoff leaves no {pattern} unresolved: {row:?}");
    }
    let held = &c.rows[&Pattern::TransformMismatch];
    assert!(held.raised > 0 && held.open == held.raised, "each mismatch is held: {held:?}");
    assert_eq!(c.held_fields, vec!["order.customer.email".to_owned()], "held with its field");
    let orphans = &c.rows[&Pattern::OrphanedPayment];
    assert_eq!(orphans.raised, orphans.relay, "each orphaned payment detected: {orphans:?}");
}
