//! Each pattern: raised once its deadline passes, not before, and never on a clean order.

use handoff_model::{Money, Pattern};
use handoff_rules::{Action, Board, Change, Deadlines, Fact, Ledger, PaymentFact, evaluate};
use jiff::{SignedDuration, Timestamp};

fn at(minutes: i64) -> Timestamp {
    "2026-11-26T10:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(minutes)
}

fn eur(amount: &str) -> Money {
    Money::new(amount.parse().unwrap(), "EUR".parse().unwrap())
}

fn placed(minutes: i64) -> Fact {
    Fact::Placed {
        channel: "shop".into(),
        at: at(minutes),
        total: eur("28.58"),
        lines: 1,
        email: Some("ada@example.com".into()),
    }
}

fn erp(id: &str, minutes: i64) -> Fact {
    Fact::ErpRecord {
        system: "erp".into(),
        id: id.into(),
        at: at(minutes),
        total: Some(eur("28.58")),
        lines: Some(1),
        confidence: 1.0,
    }
}

fn paid(id: &str, minutes: i64, email: Option<&str>) -> Fact {
    Fact::Payment(PaymentFact {
        payment_id: id.into(),
        amount: eur("28.58"),
        captured_at: at(minutes),
        email: email.map(str::to_owned),
        refunded: false,
        confidence: 1.0,
    })
}

fn ledger(facts: Vec<Fact>) -> Ledger {
    let mut l = Ledger::new("#1001");
    facts.into_iter().for_each(|f| l.apply(f));
    l
}

/// The patterns found as of `minutes`.
fn found(l: &Ledger, minutes: i64) -> Vec<Pattern> {
    evaluate(l, &Deadlines::default(), at(minutes)).findings.iter().map(|f| f.pattern).collect()
}

#[test]
fn a_clean_order_raises_nothing_ever() {
    let l = ledger(vec![
        placed(0),
        paid("ch_1", 0, Some("ada@example.com")),
        erp("SO-1", 1),
        Fact::ErpFulfilled { id: None, at: at(60) },
        Fact::ChannelFulfilled { at: at(61) },
    ]);
    for minutes in [0, 14, 16, 61, 200, 100_000] {
        assert_eq!(found(&l, minutes), vec![], "at +{minutes}m");
    }
    let cancelled =
        ledger(vec![placed(0), erp("SO-1", 1), Fact::Closed { at: at(5) }, Fact::ErpCancelled { id: None, at: at(6) }]);
    assert_eq!(found(&cancelled, 100_000), vec![]);
    // Cancelled before it reached the ERP: there is nothing to create.
    assert_eq!(found(&ledger(vec![placed(0), Fact::Closed { at: at(1) }]), 100_000), vec![]);
}

#[test]
fn missing_order_fires_at_its_deadline_with_the_payment_as_evidence() {
    let l = ledger(vec![placed(0), paid("ch_1", 0, None)]);
    assert_eq!(found(&l, 14), vec![]);
    let v = evaluate(&l, &Deadlines::default(), at(15));
    assert_eq!(v.findings.len(), 1);
    assert_eq!(v.findings[0].pattern, Pattern::MissingOrder);
    assert!(v.findings[0].detail.contains("ch_1"), "{}", v.findings[0].detail);
    assert_eq!(v.findings[0].action, Action::CreateErpOrder);
    assert_eq!(evaluate(&l, &Deadlines::default(), at(1)).next_check, Some(at(15)));
}

#[test]
fn a_dead_letter_is_the_exception_to_work_not_a_missing_order() {
    let mut l = ledger(vec![placed(0), Fact::DeadLettered { command: "7".into() }]);
    assert_eq!(found(&l, 100), vec![]);
    l.apply(Fact::Delivered { command: "7".into() });
    assert_eq!(found(&l, 100), vec![Pattern::MissingOrder]);
}

#[test]
fn refunds_close_the_order_once_they_cover_its_total() {
    let mut l = ledger(vec![placed(0), erp("SO-1", 1), Fact::Refunded { amount: eur("20.00"), at: at(10) }]);
    assert_eq!(found(&l, 100), vec![]);
    l.apply(Fact::Refunded { amount: eur("8.58"), at: at(20) });
    assert_eq!(found(&l, 34), vec![]);
    assert_eq!(found(&l, 35), vec![Pattern::RollbackGap]);
}

#[test]
fn orphaned_payment_stands_alone_only_without_an_order() {
    let l = ledger(vec![paid("ch_9", 0, Some("x@example.com"))]);
    assert_eq!(found(&l, 14), vec![]);
    let v = evaluate(&l, &Deadlines::default(), at(15));
    assert_eq!(v.findings[0].pattern, Pattern::OrphanedPayment);
    assert_eq!(v.findings[0].action, Action::RefundPayment { payment_id: "ch_9".into() });
    let mut refunded = l.clone();
    refunded.apply(Fact::PaymentRefunded { payment_id: "ch_9".into() });
    assert_eq!(found(&refunded, 100), vec![]);
}

#[test]
fn duplicate_draft_names_the_record_to_keep() {
    let l = ledger(vec![placed(0), erp("SO-2", 3), erp("SO-1", 1)]);
    let v = evaluate(&l, &Deadlines::default(), at(3));
    assert_eq!(v.findings.len(), 1);
    assert_eq!(v.findings[0].action, Action::CancelDuplicates { keep: "SO-1".into(), cancel: vec!["SO-2".into()] });
    let mut fixed = l.clone();
    fixed.apply(Fact::ErpCancelled { id: Some("SO-2".into()), at: at(4) });
    assert_eq!(found(&fixed, 100), vec![]);
}

#[test]
fn status_void_in_either_direction() {
    let erp_shipped = ledger(vec![placed(0), erp("SO-1", 1), Fact::ErpFulfilled { id: None, at: at(60) }]);
    assert_eq!(found(&erp_shipped, 89), vec![]);
    assert_eq!(found(&erp_shipped, 90), vec![Pattern::StatusVoid]);
    let channel_shipped = ledger(vec![placed(0), erp("SO-1", 1), Fact::ChannelFulfilled { at: at(60) }]);
    assert_eq!(found(&channel_shipped, 89), vec![]);
    assert_eq!(found(&channel_shipped, 90), vec![Pattern::StatusVoid]);
}

#[test]
fn rollback_gap_when_the_erp_keeps_a_cancelled_order() {
    let l = ledger(vec![placed(0), erp("SO-1", 1), Fact::Closed { at: at(10) }]);
    assert_eq!(found(&l, 24), vec![]);
    assert_eq!(found(&l, 25), vec![Pattern::RollbackGap]);
    let shipped = ledger(vec![
        placed(0),
        erp("SO-1", 1),
        Fact::ErpFulfilled { id: None, at: at(5) },
        Fact::Closed { at: at(10) },
    ]);
    assert_eq!(found(&shipped, 25), vec![Pattern::RollbackGap]);
}

#[test]
fn transform_mismatch_when_the_erp_total_differs_beyond_rounding() {
    let mut l = ledger(vec![placed(0)]);
    l.apply(Fact::ErpRecord {
        system: "erp".into(),
        id: "SO-1".into(),
        at: at(1),
        total: Some(eur("28.59")),
        lines: Some(1),
        confidence: 1.0,
    });
    assert_eq!(found(&l, 100), vec![]);
    l.apply(Fact::ErpRecord {
        system: "erp".into(),
        id: "SO-1".into(),
        at: at(1),
        total: Some(eur("25.58")),
        lines: Some(1),
        confidence: 1.0,
    });
    assert_eq!(found(&l, 15), vec![]);
    let v = evaluate(&l, &Deadlines::default(), at(16));
    assert_eq!(v.findings[0].pattern, Pattern::TransformMismatch);
    assert_eq!(v.findings[0].field, Some("total"));
}

#[test]
fn the_board_raises_at_the_deadline_and_clears_when_the_cause_goes() {
    let mut board = Board::new(Deadlines::default());
    let mut changes = Vec::new();
    board.apply("#1", placed(0), at(0), &mut changes);
    board.apply("#2", placed(0), at(0), &mut changes);
    board.apply("#2", erp("SO-2", 1), at(1), &mut changes);
    assert_eq!(changes, vec![]);
    assert_eq!(board.next_deadline(), Some(at(15)));
    board.advance(at(14), &mut changes);
    assert_eq!(changes, vec![]);
    board.advance(at(15), &mut changes);
    assert!(
        matches!(&changes[..], [Change::Raised { order_ref, finding }] if order_ref == "#1" && finding.pattern == Pattern::MissingOrder)
    );
    changes.clear();
    board.advance(at(500), &mut changes);
    assert_eq!(changes, vec![], "raised once");
    board.apply("#1", erp("SO-1", 20), at(20), &mut changes);
    assert_eq!(
        changes,
        vec![Change::Cleared { order_ref: "#1".into(), pattern: Pattern::MissingOrder, subject: String::new() }]
    );
}

#[test]
fn a_resolved_finding_whose_cause_persists_is_raised_again() {
    let mut board = Board::new(Deadlines::default());
    let mut changes = Vec::new();
    board.apply("#1", placed(0), at(0), &mut changes);
    board.advance(at(15), &mut changes);
    assert_eq!(changes.len(), 1);
    changes.clear();
    board.recheck("#1", Pattern::MissingOrder, "", at(30), &mut changes);
    assert!(matches!(&changes[..], [Change::Raised { .. }]));
}

#[test]
fn a_payment_without_a_reference_is_claimed_by_its_order() {
    let mut board = Board::new(Deadlines::default());
    let mut changes = Vec::new();
    // The payment arrives first, keyed by its own id; the order turns up within the window.
    board.apply("pi_7", paid("pi_7", 0, Some("ada@example.com")), at(0), &mut changes);
    board.apply("#1", placed(2), at(2), &mut changes);
    assert!(board.ledger("pi_7").is_none());
    let order = board.ledger("#1").unwrap();
    assert_eq!(order.payments.len(), 1);
    assert_eq!(order.payments[0].confidence, 0.95);
    board.apply("#1", erp("SO-1", 3), at(3), &mut changes);
    board.advance(at(1000), &mut changes);
    assert_eq!(changes, vec![], "neither an orphan nor a missing order");

    // The other way round: an unpaid order, then a payment naming no order.
    board.apply("#2", placed(100), at(100), &mut changes);
    board.apply("pi_8", paid("pi_8", 101, None), at(101), &mut changes);
    assert_eq!(board.ledger("#2").unwrap().payments[0].confidence, 0.6);
    board.apply("#2", erp("SO-2", 102), at(102), &mut changes);
    // A payment far from any order stands alone.
    board.apply("pi_9", paid("pi_9", 5000, None), at(5000), &mut changes);
    board.advance(at(5015), &mut changes);
    assert!(
        matches!(&changes[..], [Change::Raised { order_ref, finding }] if order_ref == "pi_9" && finding.pattern == Pattern::OrphanedPayment)
    );
}

#[test]
fn history_learned_and_judged_once_raises_nothing_that_settled_in_time() {
    let mut board = Board::new(Deadlines::default());
    let mut changes = Vec::new();
    // Two settled orders and one whose ERP order never came, learned long after the fact.
    board.learn("#1", placed(0), &mut changes);
    board.learn("#1", erp("SO-1", 1), &mut changes);
    board.learn("#2", placed(0), &mut changes);
    board.learn("#2", erp("SO-2", 1), &mut changes);
    board.learn("#3", placed(0), &mut changes);
    board.judge(at(10_000), &mut changes);
    assert!(
        matches!(&changes[..], [Change::Raised { order_ref, finding }] if order_ref == "#3" && finding.pattern == Pattern::MissingOrder),
        "{changes:?}"
    );
    assert!(!board.contains("#1") && !board.contains("#2"), "settled orders leave the board");
    assert!(board.contains("#3"), "an order with a finding raised stays");
    assert_eq!(board.followed(), vec!["#3".to_owned()]);

    // A finding the store already holds open is not raised again, and clears when it goes.
    changes.clear();
    let mut again = Board::new(Deadlines::default());
    again.learn("#3", placed(0), &mut changes);
    again.know_raised("#3", Pattern::MissingOrder, "");
    again.judge(at(10_000), &mut changes);
    assert_eq!(changes, vec![]);
    again.learn("#3", erp("SO-3", 10_001), &mut changes);
    again.judge(at(10_001), &mut changes);
    assert_eq!(
        changes,
        vec![Change::Cleared { order_ref: "#3".into(), pattern: Pattern::MissingOrder, subject: String::new() }]
    );
}

#[test]
fn an_order_that_left_the_board_is_recalled_with_its_history() {
    let mut board = Board::new(Deadlines::default());
    let mut changes = Vec::new();
    board.learn("#1", placed(0), &mut changes);
    board.learn("#1", erp("SO-1", 1), &mut changes);
    board.judge(at(100), &mut changes);
    assert!(!board.contains("#1"));
    // The channel cancels it; the ERP record stays open: a Rollback Gap once the deadline passes.
    board.recall("#1", placed(0));
    board.recall("#1", erp("SO-1", 1));
    board.learn("#1", Fact::Closed { at: at(200) }, &mut changes);
    board.judge(at(200), &mut changes);
    assert_eq!(changes, vec![]);
    board.judge(at(215), &mut changes);
    assert!(matches!(&changes[..], [Change::Raised { finding, .. }] if finding.pattern == Pattern::RollbackGap));
}

#[test]
fn orders_flowing_through_leave_nothing_behind_on_the_board() {
    // Without a payment system nothing can claim a settled order: it leaves at once.
    let mut board = Board::new(Deadlines::default()).without_claims();
    let mut changes = Vec::new();
    for i in 0..1_000 {
        let order = format!("#{i}");
        board.learn(&order, placed(0), &mut changes);
        board.judge(at(0), &mut changes);
        assert!(board.next_deadline().is_some(), "a placed order waits for its ERP order");
        board.learn(&order, erp(&format!("SO-{i}"), 1), &mut changes);
        board.judge(at(1), &mut changes);
    }
    assert_eq!(changes, vec![]);
    assert!(board.is_empty(), "{} orders still followed", board.len());
    assert_eq!(board.next_deadline(), None, "no timer of a settled order is left behind");

    // With a payment system, a settled unpaid order waits out the window in which a payment
    // naming no order may claim it, then leaves.
    let mut board = Board::new(Deadlines::default());
    board.learn("#1", placed(0), &mut changes);
    board.learn("#1", erp("SO-1", 1), &mut changes);
    board.judge(at(1), &mut changes);
    assert!(board.contains("#1"));
    board.judge(at(16), &mut changes);
    assert!(board.is_empty() && board.next_deadline().is_none());
}
